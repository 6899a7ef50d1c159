"""The transforms inside albumentations pipelines: keypoints, visibility, serialisation, seeding."""

from __future__ import annotations

import subprocess
import sys

import albumentations as A
import numpy as np
import pytest

import keypoint_corrupt as kc
from keypoint_corrupt import functional as F

KP_XY = A.KeypointParams(format="xy")

NON_DEFAULT = [
    kc.DefocusBlur(kernel_size=13, p=0.7),
    kc.HorizontalMotionBlur(kernel_size=30, p=0.6),
    kc.KeypointOcclusion(area=0.25, margin=0.3, fill=(10, 20, 30), visibility_label="vis", p=0.9),
    kc.GaussianNoise(var=0.02, mean=0.1, p=0.5),
    kc.SaltPepperNoise(amount=0.1, salt_vs_pepper=0.3, per_channel=False, p=0.4),
]


def _hand():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    kps = [(20.0, 30.0), (300.0, 200.0), (319.0, 239.0), (0.0, 0.0), (160.5, 120.25), (250.0, 40.0)]
    return img, kps


def _init_args(t):
    return {k: getattr(t, k) for k in t.get_transform_init_args_names()}


@pytest.mark.parametrize("name", kc.CONFIGS)
def test_no_transform_drops_moves_or_alters_a_keypoint(name):
    img, kps = _hand()
    # occlusion-30 with margin 0.15 covers keypoints; remove_invisible=True is the default.
    pipe = A.Compose([kc.make_corruption(name)], keypoint_params=KP_XY, seed=1)
    out = pipe(image=img, keypoints=kps)
    assert [tuple(k) for k in out["keypoints"]] == kps
    assert out["image"].shape == img.shape and out["image"].dtype == img.dtype
    assert not np.array_equal(out["image"], img)


@pytest.mark.parametrize("name", kc.CONFIGS)
def test_transform_equals_functional_core(name):
    img, kps = _hand()
    t = kc.make_corruption(name)
    t.set_random_seed(5)
    got = t(image=img, keypoints=kps)["image"]
    cfg = kc.get_config(name)
    if cfg.family == "defocus":
        np.testing.assert_array_equal(got, F.defocus_blur(img, cfg.params["kernel_size"]))
    elif cfg.family == "motion":
        np.testing.assert_array_equal(got, F.motion_blur(img, cfg.params["kernel_size"]))
    elif cfg.family == "occlusion":
        # the transform's generator (seed 5) draws the centre exactly as the functional core does
        ref, _ = F.occlude(img, kps, cfg.params["area"], rng=np.random.default_rng(5))
        np.testing.assert_array_equal(got, ref)
    else:  # noise: same marginal behaviour, checked statistically in test_noise
        assert got.shape == img.shape and not np.array_equal(got, img)


def test_occlusion_uses_keypoints_after_geometric_transforms():
    img = np.full((100, 200, 3), 255, np.uint8)
    kps = [(10.0, 10.0), (40.0, 60.0)]  # left part of the image
    pipe = A.Compose([A.HorizontalFlip(p=1.0), kc.KeypointOcclusion(0.5)], keypoint_params=KP_XY, seed=0)
    out = pipe(image=img, keypoints=kps)
    _ys, xs = np.nonzero((out["image"] == 0).all(axis=2))
    flipped_roi = F.keypoint_roi([(200 - x, y) for x, y in kps], img.shape)  # albumentations flips x -> W - x
    cx = (xs.min() + xs.max() + 1) / 2
    assert flipped_roi[0] - 0.5 <= cx <= flipped_roi[2] + 0.5
    assert xs.min() > 100  # on the flipped (right) side


def test_occlusion_honours_a_visibility_label_field():
    img = np.full((200, 200, 3), 255, np.uint8)
    kps = [(120.0, 120.0), (180.0, 170.0), (0.0, 0.0)]  # COCO-style invisible at the origin
    vis = [2, 2, 0]
    labelled = A.Compose(
        [kc.KeypointOcclusion(1.0, margin=0.0, visibility_label="vis")],
        keypoint_params=A.KeypointParams(format="xy", label_fields=["cls", "vis"]),
        seed=0,
    )
    out = labelled(image=img, keypoints=kps, vis=vis, cls=[1, 2, 3])
    black = (out["image"] == 0).all(axis=2)
    ys, xs = np.nonzero(black)
    # area 1.0 of the visible ROI (120..180 x 120..170): side sqrt(60 * 50) = 54.8, not the
    # 175 px the invisible origin would give, centred inside the visible ROI
    assert black.sum() == 55 * 55
    assert 120 <= (xs.min() + xs.max() + 1) / 2 <= 180 and 120 <= (ys.min() + ys.max() + 1) / 2 <= 170
    assert list(out["vis"]) == vis and [tuple(k) for k in out["keypoints"]] == kps


def test_occlusion_visibility_keyword_outside_compose_and_missing_label():
    img = np.full((50, 50, 3), 255, np.uint8)
    t = kc.KeypointOcclusion(0.5, visibility_label="visible")
    out = t(image=img, keypoints=[(10, 10), (40, 40)], visible=[False, False])
    np.testing.assert_array_equal(out["image"], img)  # nothing visible: unchanged
    pipe = A.Compose([t], keypoint_params=KP_XY)
    with pytest.raises(ValueError, match="visibility_label='visible'"):
        pipe(image=img, keypoints=[(10, 10)])


def test_occlusion_without_keypoints_is_a_clear_error():
    with pytest.raises(ValueError, match="keypoints"):
        kc.KeypointOcclusion(0.2)(image=np.zeros((8, 8, 3), np.uint8))


def test_occlusion_leaves_image_unchanged_when_no_keypoint_is_visible():
    img = np.full((60, 60, 3), 9, np.uint8)
    pipe = A.Compose([kc.KeypointOcclusion(0.3)], keypoint_params=KP_XY)
    out = pipe(image=img, keypoints=[])
    np.testing.assert_array_equal(out["image"], img)


@pytest.mark.parametrize("t", NON_DEFAULT, ids=lambda t: type(t).__name__)
def test_to_dict_from_dict_round_trips_every_argument(t):
    back = A.from_dict(A.to_dict(t))
    assert type(back) is type(t)
    assert _init_args(back) == _init_args(t)
    assert back.p == t.p
    # every __init__ argument is serialised (none silently dropped)
    import inspect

    names = set(inspect.signature(type(t).__init__).parameters) - {"self"}
    assert names <= set(A.to_dict(t)["transform"])


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_save_load_round_trips_a_pipeline(tmp_path, fmt):
    pipe = A.Compose(NON_DEFAULT, keypoint_params=A.KeypointParams(format="xy", label_fields=["vis"]))
    path = tmp_path / f"pipe.{fmt}"
    A.save(pipe, str(path), data_format=fmt)
    loaded = A.load(str(path), data_format=fmt)
    assert [_init_args(t) for t in loaded.transforms] == [_init_args(t) for t in NON_DEFAULT]


def test_load_in_a_fresh_process_after_importing_the_package(tmp_path):
    path = tmp_path / "pipe.json"
    A.save(A.Compose(NON_DEFAULT[:2]), str(path))
    code = (
        "import albumentations as A, keypoint_corrupt;"
        f"p = A.load({str(path)!r});"
        "print([type(t).__name__ for t in p.transforms], p.transforms[1].kernel_size)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "['DefocusBlur', 'HorizontalMotionBlur'] 30"


def test_same_seed_same_output_and_two_noise_transforms_draw_different_noise():
    img = np.full((120, 160, 3), 128, np.uint8)

    def run(seed, transforms):
        return A.Compose(transforms, seed=seed)(image=img)["image"]

    for make in (kc.GaussianNoise, kc.SaltPepperNoise):
        np.testing.assert_array_equal(run(3, [make()]), run(3, [make()]))
        assert not np.array_equal(run(3, [make()]), run(4, [make()]))
        once = run(3, [make()])
        twice = run(3, [make(), make()])
        # identical noise twice would leave the image equal to one pass (s&p) or correlated (gaussian)
        assert not np.array_equal(once, twice)
    noise1 = run(3, [kc.GaussianNoise(var=0.001)]).astype(int) - 128
    noise2 = run(3, [kc.GaussianNoise(var=0.001), kc.GaussianNoise(var=0.001)]).astype(int) - 128
    second = noise2 - noise1
    assert abs(np.corrcoef(noise1.ravel(), second.ravel())[0, 1]) < 0.05


def test_sampled_noise_differs_between_calls_of_one_pipeline():
    img = np.full((64, 64, 3), 128, np.uint8)
    pipe = A.Compose([kc.GaussianNoise()], seed=0)
    assert not np.array_equal(pipe(image=img)["image"], pipe(image=img)["image"])


def test_probability_p_is_honoured():
    img = np.full((16, 16, 3), 128, np.uint8)
    pipe = A.Compose([kc.DefocusBlur(3, p=0.0), kc.SaltPepperNoise(p=0.0)], seed=0)
    np.testing.assert_array_equal(pipe(image=img)["image"], img)


def test_transforms_accept_all_supported_layouts():
    for shape in [(32, 48), (32, 48, 1), (32, 48, 3), (32, 48, 4)]:
        for dtype in (np.uint8, np.float32):
            img = np.zeros(shape, dtype)
            for name in kc.CONFIGS:
                t = kc.make_corruption(name)
                out = t(image=img, keypoints=[(5, 5), (40, 30)])["image"]
                assert out.shape == shape and out.dtype == dtype, (name, shape, dtype)
