"""Contact sheets show exactly what the dataset layer produces."""

from __future__ import annotations

import numpy as np
import pytest

import keypoint_corrupt as kc
from keypoint_corrupt.datasets import sample_rng
from keypoint_corrupt.preview import contact_sheet, draw_annotations


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
