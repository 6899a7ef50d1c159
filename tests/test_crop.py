"""hand3d's ground-truth hand crop and its inverse (torch-free)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keypoint_corrupt.crop import CropInfo, crop_parameters, hand_crop, uncrop_keypoints, warp_crop


def spread_hand(center=(320.0, 240.0), radius=40.0, joints=21, seed=0):
    rng = np.random.default_rng(seed)
    kp = np.asarray(center) + rng.uniform(-radius, radius, (joints, 2))
    kp[12] = center
    return kp


def test_parameters_follow_stb_format_formula():
    kp = spread_hand()
    c = kp[12]
    extent = 2 * np.max(np.maximum(kp.max(0) - c, c - kp.min(0)))
    center, scale = crop_parameters(kp, None, (480, 640))
    np.testing.assert_array_equal(center, c)
    assert scale == pytest.approx(np.clip(256 / np.clip(extent, 50, 500), 1, 10))


def test_extent_and_scale_are_clipped():
    tiny = spread_hand(radius=5.0)
    assert crop_parameters(tiny, None, (480, 640))[1] == pytest.approx(256 / 50)  # extent clipped to 50
    huge = spread_hand(radius=230.0)
    assert crop_parameters(huge, None, (480, 640))[1] == 1.0  # scale never below 1


def test_only_visible_joints_in_the_image_set_the_extent():
    kp = spread_hand(radius=20.0)
    vis = np.ones(21, bool)
    base = crop_parameters(kp, vis, (480, 640))[1]
    far = kp.copy()
    far[3] = [600.0, 20.0]
    vis_far = vis.copy()
    vis_far[3] = False
    assert crop_parameters(far, vis_far, (480, 640))[1] == pytest.approx(base)
    # Visible but outside the image: clipped to the border (x = 640) before measuring.
    outside = spread_hand(center=(600.0, 240.0), radius=10.0)
    outside[3] = [5000.0, 240.0]
    assert crop_parameters(outside, vis, (480, 640))[1] == pytest.approx(256 / (2 * (640 - 600)))


def test_center_falls_back_to_the_box_centre_when_joint_12_is_hidden():
    kp = spread_hand()
    vis = np.ones(21, bool)
    vis[12] = False
    center, _ = crop_parameters(kp, vis, (480, 640))
    visible = kp[vis]
    np.testing.assert_allclose(center, (visible.min(0) + visible.max(0)) / 2)


def test_wrist_extent_option_uses_hand3ds_extrapolated_wrist():
    kp = spread_hand(radius=30.0)
    kp[0] = kp[12] + [0.0, 40.0]
    kp[16] = kp[12] + [0.0, -20.0]  # wrist = kp16 + 2 (kp0 - kp16) = centre + (0, 100)
    _, scale = crop_parameters(kp, None, (480, 640), wrist_extent=True)
    assert scale == pytest.approx(256 / 200)


def test_crop_pixels_agree_with_crop_keypoints():
    image = np.zeros((480, 640, 3), np.uint8)
    kp = spread_hand(radius=35.0, seed=3)
    kp_round = np.round(kp)
    for x, y in kp_round[:5]:
        image[int(y), int(x)] = 255
    crop = hand_crop(image, kp_round, np.ones(21, bool))
    assert crop.image.shape == (256, 256, 3) and crop.image.dtype == np.uint8
    assert crop.scale > 3  # each bright source pixel is blown up to a blob...
    for x, y in crop.keypoints[:5]:
        assert crop.image[round(y), round(x), 0] > 200  # ...and the crop keypoint lies on it


def test_outside_the_image_is_mid_grey():
    image = np.zeros((100, 100, 3), np.uint8)
    kp = np.tile([[5.0, 5.0]], (21, 1)) + np.random.default_rng(0).uniform(-3, 3, (21, 2))
    crop = hand_crop(image, kp)
    assert crop.image[0, 0].tolist() == [128, 128, 128]
    assert crop.image[255, 255].tolist() == [0, 0, 0]
    gray = hand_crop(np.zeros((100, 100), np.float32), kp)
    assert gray.image.shape == (256, 256) and gray.image[0, 0] == pytest.approx(0.5)


def test_smaller_sizes_are_the_256_crop_resampled():
    kp = spread_hand(radius=50.0)
    image = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    full = hand_crop(image, kp, size=256)
    small = hand_crop(image, kp, size=64)
    assert small.scale == pytest.approx(full.scale / 4)
    np.testing.assert_allclose(small.keypoints, full.keypoints / 4)


@settings(max_examples=40, deadline=None)
@given(
    cx=st.floats(0, 640),
    cy=st.floats(0, 480),
    radius=st.floats(1, 400),
    size=st.sampled_from([32, 64, 256]),
    seed=st.integers(0, 1000),
)
def test_uncrop_inverts_the_crop(cx, cy, radius, size, seed):
    kp = spread_hand((cx, cy), radius, seed=seed)
    image = np.zeros((48, 64, 3), np.uint8)  # the image content does not matter here
    crop = hand_crop(image, kp, size=size)
    np.testing.assert_allclose(crop.to_source(crop.keypoints), kp, atol=1e-9 * max(1.0, radius))
    np.testing.assert_allclose(uncrop_keypoints(crop.keypoints, crop.center, crop.scale, size), kp, atol=1e-6)
    assert 1.0 * size / 256 <= crop.scale <= 10.0 * size / 256 + 1e-12


def test_bad_keypoints_are_rejected():
    with pytest.raises(ValueError, match="J x 2"):
        hand_crop(np.zeros((10, 10, 3), np.uint8), np.zeros((21, 3)))
    with pytest.raises(ValueError, match="visibility"):
        hand_crop(np.zeros((10, 10, 3), np.uint8), np.zeros((21, 2)), np.ones(20, bool))


def test_one_scale_convention_for_every_crop_size():
    # scale = crop pixels per source pixel of the crop it is used with, at every size; CropInfo
    # carries the size its scale refers to and converts for crops of another side.
    rng = np.random.default_rng(3)
    image = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
    kp = spread_hand((150.0, 110.0), 40.0)
    c256, s256 = crop_parameters(kp, None, image.shape)
    info = CropInfo(c256[None], np.array([s256]))
    assert info.size == 256 and len(info) == 1
    for size in (32, 64, 256):
        ref = hand_crop(image, kp, size=size)
        center, scale = crop_parameters(kp, None, image.shape, size)
        assert scale == s256 * size / 256 == ref.scale == info.resized(size).scale[0]
        np.testing.assert_array_equal(warp_crop(image, center, scale, size), ref.image)
        np.testing.assert_array_equal(info.crop(image[None], size)[0], ref.image)
        np.testing.assert_array_equal(info.resized(size).crop([image])[0], ref.image)
        np.testing.assert_allclose(info.to_source(ref.keypoints[None], size)[0], kp, atol=1e-9)
        np.testing.assert_allclose(uncrop_keypoints(ref.keypoints, center, scale, size), kp, atol=1e-9)
        np.testing.assert_allclose(info.resized(size).box(), info.box())
    # the box is the source square the crop shows
    x0, y0, x1, y1 = info.box()[0]
    assert (x1 - x0, y1 - y0) == pytest.approx((256 / s256, 256 / s256))
    assert ((x0 + x1) / 2, (y0 + y1) / 2) == pytest.approx(tuple(c256))


def test_crop_info_handles_batches_of_different_images():
    images = [np.full((60, 80, 3), 10, np.uint8), np.full((90, 70, 3), 200, np.uint8)]
    info = CropInfo(np.array([[40.0, 30.0], [35.0, 45.0]]), np.array([2.0, 4.0]), size=64)
    crops = info.crop(images)
    assert crops.shape == (2, 64, 64, 3) and crops.dtype == np.uint8
    assert crops[0, 32, 32, 0] == 10 and crops[1, 32, 32, 0] == 200
    centre = np.full((2, 1, 2), 32.0)
    np.testing.assert_allclose(info.to_source(centre)[:, 0], info.center)
    shifted = info.to_source(centre + np.array([8.0, 0.0]))  # 8 crop pixels right = 8 / scale source pixels
    np.testing.assert_allclose(shifted[:, 0, 0], [44.0, 37.0])
    with pytest.raises(ValueError):
        info.crop(images[:1])  # one crop per image


# -- the crop centre from a keypoint schema ------------------------------------------------------


def test_default_centre_is_the_rhd_schemas_anchor():
    from keypoint_corrupt.schema import remap

    kp = spread_hand(seed=3)
    vis = np.arange(21) % 5 != 1
    default = crop_parameters(kp, vis, (480, 640))
    for schema in ("rhd", "stb_rhd"):
        c, s = crop_parameters(kp, vis, (480, 640), schema=schema)
        assert np.array_equal(c, default[0]) and s == default[1]
    # the same hand in FreiHAND's order gets the same crop, found by name
    c, s = crop_parameters(
        remap(kp, "rhd", "hand21"), remap(vis, "rhd", "hand21", axis=-1), (480, 640), schema="hand21"
    )
    assert np.array_equal(c, default[0]) and s == default[1]


def test_freihand_crop_is_centred_on_the_middle_mcp(fixtures_dir):
    from keypoint_corrupt.datasets import CocoKeypoints, load_image

    ds = CocoKeypoints(fixtures_dir / "hands" / "freihand" / "test_freihand.json")
    mcp, tip = ds.schema.index("middle_finger_mcp"), ds.schema.index("middle_finger_tip")
    assert (mcp, tip) == (9, 12)  # index 12, hand3d's centre, is the fingertip in this order
    for sample in ds:
        image = load_image(sample)
        kp, vis = sample.keypoints, sample.visibility
        crop = hand_crop(image, kp, vis, schema=ds.schema)
        lo, hi = kp[vis].min(axis=0), kp[vis].max(axis=0)
        assert np.all(crop.center >= lo) and np.all(crop.center <= hi)  # inside the hand's box
        assert vis[mcp] and np.allclose(crop.center, kp[mcp])
        assert np.linalg.norm(crop.center - kp[tip]) > 5.0  # not the fingertip
        np.testing.assert_allclose(crop.keypoints[mcp], [128.0, 128.0])


def test_several_anchor_joints_centre_on_their_visible_mean():
    from keypoint_corrupt.schema import KeypointSchema

    body = KeypointSchema(
        "test_hips", ("head", "left_hip", "right_hip"), crop_anchor=("left_hip", "right_hip")
    )
    kp = np.array([[100.0, 50.0], [90.0, 150.0], [130.0, 160.0]])
    c, _ = crop_parameters(kp, None, (480, 640), schema=body)
    assert c.tolist() == [110.0, 155.0]
    c, _ = crop_parameters(kp, [True, True, False], (480, 640), schema=body)
    assert c.tolist() == [90.0, 150.0]
    c, _ = crop_parameters(kp, [True, False, False], (480, 640), schema=body)
    assert c.tolist() == [100.0, 50.0]  # no anchor visible: the visible box's centre
    no_anchor = KeypointSchema("test_plain", ("a", "b", "c"))
    c, _ = crop_parameters(kp, None, (480, 640), schema=no_anchor)
    assert c.tolist() == [110.0, 105.0]


def test_schema_and_center_joint_are_checked():
    kp = spread_hand()
    with pytest.raises(ValueError, match="center_joint or schema"):
        crop_parameters(kp, None, (480, 640), center_joint=12, schema="rhd")
    with pytest.raises(ValueError, match="'coco17' has 17 joints, the keypoints 21"):
        crop_parameters(kp, None, (480, 640), schema="coco17")
