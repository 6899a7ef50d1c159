"""Contact sheets show exactly what the dataset layer produces."""

from __future__ import annotations

import numpy as np
import pytest

import keypoint_corrupt as kc
from keypoint_corrupt.datasets import sample_rng
from keypoint_corrupt.preview import contact_sheet, draw_annotations, skeleton_segments


def test_sheet_layout_and_tiles_match_per_sample_generators(fixture_hands):
    name, img, kps, vis = fixture_hands[0]
    sheet = contact_sheet(img, kps, vis, sample_id=name, seed=3, tile_width=img.shape[1])
    h, w = img.shape[:2]
    assert sheet.shape == (3 * (h + 22), 4 * w, 3)
    # tile 7 (row 1, col 3) is occlusion-10: exactly the dataset's image for that id, annotated
    out, info = kc.apply_corruption(
        "occlusion-10", img, kps, visibility=vis, rng=sample_rng(3, name, "occlusion-10")
    )
    roi = kc.functional.keypoint_roi(kps, img.shape, visibility=vis)
    want = draw_annotations(out, kps, vis, roi=roi, box=info["box"], radius=3)
    tile = sheet[1 * (h + 22) + 22 : 2 * (h + 22), 3 * w : 4 * w]
    np.testing.assert_array_equal(tile, want)


def test_sheet_rejects_non_rgb_images():
    with pytest.raises(ValueError, match="RGB uint8 HxWx3"):
        contact_sheet(np.zeros((10, 10), np.uint8), [[1, 1]])


def test_draw_annotations_skips_invisible_and_nan_points():
    img = np.zeros((30, 30, 3), np.uint8)
    out = draw_annotations(img, [[5, 5], [20, 20], [np.nan, 1]], [True, False, True], radius=2)
    assert out[5, 5].any() and not out[20, 20].any()
    assert not img.any()


def _fanned_hand() -> np.ndarray:
    """A 21-joint hand in hand21 order (wrist, then each finger base to tip), fingers upright."""
    pts = [(70.0, 135.0)]
    for x in (20, 45, 70, 95, 120):  # thumb .. pinky
        pts += [(float(x), float(y)) for y in (80, 60, 40, 20)]
    return np.array(pts)


def test_draw_annotations_joins_joints_by_the_schemas_names():
    img = np.zeros((150, 140, 3), np.uint8)
    hand = _fanned_hand()

    def drawn(out, a, b):  # the midpoint of the segment from point a to point b
        x, y = (hand[a] + hand[b]) / 2
        return bool(out[round(y), round(x)].any())

    out = draw_annotations(img, hand, schema="hand21")
    assert drawn(out, 0, 5)  # wrist -> index MCP
    assert not drawn(out, 0, 8)  # never wrist -> index tip
    assert drawn(out, 5, 6) and drawn(out, 7, 8)  # along the index finger

    # the same points read as RHD (tip to base): point 8 is the index MCP, joined to the wrist
    assert drawn(draw_annotations(img, hand, schema="rhd"), 0, 8)
    # without a schema nothing is joined, as before
    plain = draw_annotations(img, hand)
    assert not drawn(plain, 0, 5) and not drawn(plain, 5, 6)
    # a hidden joint drops its bones
    vis = np.ones(21, bool)
    vis[5] = False
    assert not drawn(draw_annotations(img, hand, vis, schema="hand21"), 0, 5)


def test_skeleton_segments_are_the_edges_between_visible_joints():
    vis = np.ones(21, bool)
    assert skeleton_segments("hand21", vis) == kc.schema.get_schema("hand21").edge_indices()
    vis[8] = False
    segments = skeleton_segments("hand21", vis)
    assert (0, 5) in segments and (7, 8) not in segments and len(segments) == 19
    with pytest.raises(ValueError, match="schema 'coco17' has 17 joints, the keypoints 21"):
        draw_annotations(np.zeros((8, 8, 3), np.uint8), _fanned_hand(), schema="coco17")


def test_sheet_draws_the_schemas_skeleton_on_every_tile():
    img = np.zeros((150, 140, 3), np.uint8)
    hand = _fanned_hand()
    plain = contact_sheet(img, hand, configs=["defocus-7"], columns=2, tile_width=140)
    bones = contact_sheet(img, hand, configs=["defocus-7"], columns=2, tile_width=140, schema="hand21")
    want = draw_annotations(img, hand, roi=kc.functional.keypoint_roi(hand, img.shape), schema="hand21")
    for col in (0, 1):  # clean and defocus-7 (a black image stays black)
        tile = (slice(22, None), slice(140 * col, 140 * (col + 1)))
        np.testing.assert_array_equal(bones[tile], want)
        assert not (plain[tile] == bones[tile]).all()
