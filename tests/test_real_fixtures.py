"""All eleven configurations on real annotated hand images (RHD, FreiHAND, OneHand10K, Panoptic, STB)."""

from __future__ import annotations

import albumentations as A
import cv2
import numpy as np

import keypoint_corrupt as kc


def test_every_configuration_on_every_real_hand(fixture_hands):
    for name, img, kps, vis in fixture_hands:
        before = img.copy()
        for cfg in kc.CONFIGS:
            out, info = kc.apply_corruption(cfg, img, kps, visibility=vis, rng=0)
            assert out.shape == img.shape and out.dtype == np.uint8, (name, cfg)
            assert not np.array_equal(out, img), (name, cfg)
            if cfg.startswith("occlusion"):
                assert info["box"] is not None
        np.testing.assert_array_equal(img, before)


def test_pipeline_on_real_hands_keeps_every_keypoint_with_visibility(fixture_hands):
    pipe = A.Compose(
        [A.HorizontalFlip(p=1.0), kc.KeypointOcclusion(0.3, visibility_label="vis"), kc.SaltPepperNoise()],
        keypoint_params=A.KeypointParams(format="xy", label_fields=["vis"], remove_invisible=False),
        seed=0,
    )
    for name, img, kps, vis in fixture_hands:
        out = pipe(image=img, keypoints=kps, vis=vis.astype(int))
        assert len(out["keypoints"]) == len(kps), name
        # albumentations 2.0.8 flips pixel coordinates: x -> W - 1 - x
        np.testing.assert_allclose(
            np.asarray(out["keypoints"])[:, 0], img.shape[1] - 1 - kps[:, 0], atol=1e-4
        )


def test_real_stb_frame_through_blur_and_noise(fixtures_dir):
    bgr = cv2.imread(str(fixtures_dir / "stb" / "SK_color_0.png"), cv2.IMREAD_COLOR)
    assert bgr is not None and bgr.shape == (480, 640, 3)
    rgb = np.ascontiguousarray(bgr[..., ::-1])
    np.testing.assert_array_equal(kc.functional.defocus_blur(rgb, 21), cv2.GaussianBlur(rgb, (21, 21), 0))
    noisy = kc.functional.salt_pepper_noise(rgb, rng=0)
    assert 0.04 < (noisy != rgb).mean() < 0.06
