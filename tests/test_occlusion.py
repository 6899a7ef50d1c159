"""Keypoint ROI and occlusion: formulas, geometric properties and real hand fixtures."""

from __future__ import annotations

import math

import albumentations as A
import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import stats

import keypoint_corrupt as kc
from keypoint_corrupt import functional as F
from keypoint_corrupt.functional import keypoint_roi, occlude


def _independent_roi(kps, vis, h, w, margin):
    pts = [p for p, v in zip(kps, vis, strict=False) if v and all(math.isfinite(c) for c in p)]
    if not pts:
        return None
    clip = lambda v, hi: min(max(v, 0.0), hi)  # noqa: E731
    min_side = max(1.0, 0.1 * min(h, w))  # documented: a span under one pixel gets this side

    def axis(vals, size):
        lo, hi = min(vals), max(vals)
        if hi - lo < 1.0:
            return clip((lo + hi) / 2 - min_side / 2, size), clip((lo + hi) / 2 + min_side / 2, size)
        return clip(lo - margin * (hi - lo), size), clip(hi + margin * (hi - lo), size)

    (x0, x1), (y0, y1) = axis([p[0] for p in pts], w), axis([p[1] for p in pts], h)
    if x1 <= x0 or y1 <= y0:  # documented: a box outside the image is no ROI at all
        return None
    return (x0, y0, x1, y1)


coords = st.floats(-50, 350, allow_nan=False)
keypoint_lists = st.lists(st.tuples(coords, coords), min_size=1, max_size=21)


@given(keypoint_lists, st.integers(1, 300), st.integers(1, 300), st.floats(0, 1), st.data())
@settings(max_examples=200, deadline=None)
def test_roi_matches_independent_formula(kps, h, w, margin, data):
    vis = data.draw(st.lists(st.booleans(), min_size=len(kps), max_size=len(kps)))
    got = keypoint_roi(np.array(kps), (h, w, 3), margin=margin, visibility=vis)
    want = _independent_roi(kps, vis, h, w, margin)
    if want is None:
        assert got is None
    else:
        np.testing.assert_allclose(got, want, atol=1e-9)


def test_roi_example_and_margin_default():
    kps = [[100, 100], [200, 300]]
    assert keypoint_roi(kps, (480, 640)) == (85.0, 70.0, 215.0, 330.0)
    assert keypoint_roi(kps, (480, 640), margin=0.0) == (100.0, 100.0, 200.0, 300.0)
    assert keypoint_roi(kps, (250, 205), margin=0.5) == (50.0, 0.0, 205.0, 250.0)  # clipped


@given(
    keypoint_lists,
    st.integers(8, 200),
    st.integers(8, 200),
    st.floats(0.01, 1.0),
    st.floats(0, 0.5),
    st.integers(0, 2**32 - 1),
)
@settings(max_examples=200, deadline=None)
def test_occlusion_box_inside_image_centred_in_roi_and_sized(kps, h, w, area, margin, seed):
    img = np.full((h, w, 3), 200, np.uint8)
    before = img.copy()
    out, box = occlude(img, np.array(kps), area, margin=margin, rng=seed)
    np.testing.assert_array_equal(img, before)  # input untouched
    roi = keypoint_roi(np.array(kps), img.shape, margin=margin)
    if roi is None:  # the keypoints' box misses the image: explicitly nothing
        assert box is None
        np.testing.assert_array_equal(out, img)
        return
    x0, y0, x1, y1 = box
    assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h  # never a zero-size box
    # Exactly the box is painted, nothing else.
    painted = (out != before).any(axis=2)
    expected = np.zeros((h, w), bool)
    expected[y0:y1, x0:x1] = True
    np.testing.assert_array_equal(painted, expected)
    side = max(1.0, math.sqrt(area * (roi[2] - roi[0]) * (roi[3] - roi[1])))
    if x1 - x0 > 0 and 0 < x0 and x1 < w:  # not clipped: side and centre hold to a pixel
        assert abs((x1 - x0) - side) <= 1.0
        assert roi[0] - 1 <= (x0 + x1) / 2 <= roi[2] + 1
    if y1 - y0 > 0 and 0 < y0 and y1 < h:
        assert abs((y1 - y0) - side) <= 1.0
        assert roi[1] - 1 <= (y0 + y1) / 2 <= roi[3] + 1


def test_occlusion_centres_are_uniform_in_roi():
    img = np.zeros((480, 640, 3), np.uint8)
    kps = np.array([[100.0, 120.0], [400.0, 300.0]])
    roi = keypoint_roi(kps, img.shape)
    gen = np.random.default_rng(7)
    centres = np.array([kc.functional.occlusion_center(roi, gen) for _ in range(4000)])
    for axis, (lo, hi) in enumerate([(roi[0], roi[2]), (roi[1], roi[3])]):
        u = (centres[:, axis] - lo) / (hi - lo)
        assert u.min() >= 0 and u.max() <= 1
        assert stats.kstest(u, "uniform").pvalue > 1e-3


def test_occlusion_sizes_share_their_centre_for_the_same_stream():
    img = np.full((480, 640, 3), 255, np.uint8)
    kps = np.array([[150.0, 100.0], [350.0, 380.0], [260.0, 200.0]])
    roi = keypoint_roi(kps, img.shape)
    for seed in range(20):
        infos = [
            kc.apply_corruption(name, img, kps, rng=np.random.default_rng(seed))[1]
            for name in ("occlusion-10", "occlusion-20", "occlusion-30")
        ]
        assert infos[0]["center"] == infos[1]["center"] == infos[2]["center"]
        for info, area in zip(infos, (0.1, 0.2, 0.3), strict=False):
            x0, y0, x1, y1 = info["box"]
            side = math.sqrt(area * (roi[2] - roi[0]) * (roi[3] - roi[1]))
            cx, cy = info["center"]
            assert (x0, y0, x1, y1) == (
                max(0, math.floor(cx - side / 2 + 0.5)),
                max(0, math.floor(cy - side / 2 + 0.5)),
                min(640, math.floor(cx + side / 2 + 0.5)),
                min(480, math.floor(cy + side / 2 + 0.5)),
            )


def test_fixed_centre_and_fill_values_on_every_layout():
    kps = [[20, 20], [80, 80]]
    for shape, dtype, fill, want in [
        ((100, 100), np.uint8, 7, 7),
        ((100, 100, 1), np.uint8, 9, 9),
        ((100, 100, 3), np.uint8, (10, 20, 30), [10, 20, 30]),
        ((100, 100, 4), np.float32, (0.1, 0.2, 0.3, 1.0), np.float32([0.1, 0.2, 0.3, 1.0])),
    ]:
        img = np.full(shape, 0.5 if dtype == np.float32 else 128, dtype)
        out, box = occlude(img, kps, 0.25, margin=0.0, center=(50, 50), fill=fill)
        assert box == (35, 35, 65, 65) and out.dtype == dtype and out.shape == shape
        np.testing.assert_array_equal(out[50, 50], want)
        np.testing.assert_array_equal(out[10, 10], img[10, 10])


def test_single_visible_keypoint_gets_the_minimum_roi_and_is_occluded():
    img = np.full((50, 80, 3), 100, np.uint8)
    kps = [[10, 12], [40, 40]]
    roi = keypoint_roi(kps, img.shape, visibility=[True, False])
    assert roi == (7.5, 9.5, 12.5, 14.5)  # side 0.1 * min(50, 80) = 5, centred on (10, 12)
    out, box = occlude(img, kps, 0.3, visibility=[True, False], rng=0)
    x0, y0, x1, y1 = box
    assert x1 > x0 and y1 > y0
    painted = (out != img).any(axis=2)
    assert painted.sum() == (x1 - x0) * (y1 - y0) and (out[y0:y1, x0:x1] == 0).all()
    # the same through the transform (explicit generator, as the dataset layer calls it)
    t = kc.KeypointOcclusion(0.3)
    _, info = t.corrupt(img, keypoints=[[10, 12]], rng=0)
    assert info["box"] == box and roi[0] <= info["center"][0] < roi[2]


def test_keypoints_on_one_line_get_the_minimum_side_across_it():
    # a horizontal row of keypoints: the width follows the keypoints, the height is the minimum
    roi = keypoint_roi([[10, 30], [50, 30.5]], (100, 200), margin=0.1)
    assert roi == (6.0, 25.25, 54.0, 35.25)
    out, box = occlude(np.full((100, 200), 9, np.uint8), [[10, 30], [50, 30.5]], 0.2, rng=3)
    assert box[2] > box[0] and box[3] > box[1] and (out == 0).sum() == (box[2] - box[0]) * (box[3] - box[1])


def test_keypoints_all_outside_the_image_are_explicitly_not_occluded():
    img = np.full((40, 60, 3), 100, np.uint8)
    outside = [[-30, 10], [-12, 25], [-20, 35]]  # left of the image, grown box still misses it
    assert keypoint_roi(outside, img.shape) is None
    assert F.place_occluder(outside, img.shape, 0.3, rng=0) is None
    out, box = occlude(img, outside, 0.3, rng=0)
    assert box is None
    np.testing.assert_array_equal(out, img)
    _, info = kc.KeypointOcclusion(0.3).corrupt(img, keypoints=outside, rng=0)
    assert info == {"box": None, "center": None}
    # inside a pipeline: a shift pushes every keypoint out (kept by remove_invisible=False)
    params = A.KeypointParams(format="xy", remove_invisible=False)
    shift = A.Affine(translate_px={"x": (-40, -40), "y": (0, 0)}, p=1.0)
    kps = [[10, 10], [30, 20]]
    with_occ = A.Compose([shift, kc.KeypointOcclusion(0.3, fill=255)], keypoint_params=params, seed=0)
    without = A.Compose([shift], keypoint_params=params, seed=0)
    got = with_occ(image=img, keypoints=kps)
    assert (np.asarray(got["keypoints"])[:, 0] < 0).all()
    np.testing.assert_array_equal(got["image"], without(image=img, keypoints=kps)["image"])
    # below a pixel off the edge (one keypoint), the minimum ROI reaches into the image:
    # a sliver of ROI, and an occluder of at least one pixel
    roi = keypoint_roi([[-1.0, 20.0]], img.shape)
    assert roi == (0.0, 18.0, 1.0, 22.0)
    out, box = occlude(img, [[-1.0, 20.0]], 0.1, rng=0)
    assert (
        box[2] - box[0] >= 1 and box[3] - box[1] >= 1 and (out[box[1] : box[3], box[0] : box[2]] == 0).all()
    )


def test_normal_hands_are_unchanged_by_the_degenerate_rules():
    # values of the code before the degenerate-ROI rules: a hand partly outside the image clips as before
    kps = [[-15.0, 40.0], [70.0, 90.0], [30.0, 130.0]]
    assert keypoint_roi(kps, (120, 160)) == (0.0, 26.5, 82.75, 120.0)
    _, box = occlude(np.full((120, 160), 50, np.uint8), kps, 0.2, rng=1)
    assert box == (23, 96, 62, 120)


def test_occlusion_on_real_hand_fixtures(fixture_hands):
    for name, img, kps, vis in fixture_hands:
        roi = keypoint_roi(kps, img.shape, visibility=vis)
        assert roi is not None, name
        for cfg, area in [("occlusion-10", 0.1), ("occlusion-30", 0.3)]:
            out, info = kc.apply_corruption(cfg, img, kps, visibility=vis, rng=1)
            x0, y0, x1, y1 = info["box"]
            assert (out[y0:y1, x0:x1] == 0).all(), name
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            assert roi[0] - 1 <= cx <= roi[2] + 1 and roi[1] - 1 <= cy <= roi[3] + 1, name
            painted = (x1 - x0) * (y1 - y0)
            roi_area = (roi[2] - roi[0]) * (roi[3] - roi[1])
            assert painted <= area * roi_area + 2 * math.sqrt(area * roi_area) + 1, name
            untouched = np.ones(img.shape[:2], bool)
            untouched[y0:y1, x0:x1] = False
            np.testing.assert_array_equal(out[untouched], img[untouched])


def test_invisible_coco_zero_keypoints_do_not_stretch_the_roi(fixture_hands):
    # OneHand10K marks invisible joints as (0, 0, 0): with visibility they are ignored.
    name, img, kps, vis = next(h for h in fixture_hands if not h[3].all())
    with_vis = keypoint_roi(kps, img.shape, visibility=vis)
    without = keypoint_roi(kps, img.shape)
    assert without[0] == 0.0 and without[1] == 0.0
    assert with_vis[0] > 0 and with_vis[1] > 0, name


@given(st.integers(0, 2**32 - 1))
@settings(max_examples=30, deadline=None)
def test_occlusion_is_deterministic_per_seed(seed):
    img = np.full((64, 64, 3), 50, np.uint8)
    kps = [[5, 5], [60, 50]]
    a = occlude(img, kps, 0.2, rng=seed)
    b = occlude(img, kps, 0.2, rng=np.random.default_rng(seed))
    assert a[1] == b[1]
    np.testing.assert_array_equal(a[0], b[0])
    assume(seed > 0)
