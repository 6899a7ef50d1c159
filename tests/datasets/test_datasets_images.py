"""``load_image`` decodes to exactly OpenCV's BGR pixels in RGB order, whatever the file."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from keypoint_corrupt.datasets import load_image

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}


def reference(path) -> np.ndarray:
    """The independent reference: ``cv2.imread`` (BGR) and a channel reversal."""
    return cv2.imread(str(path), cv2.IMREAD_COLOR)[..., ::-1]


def test_real_fixture_images_match_imread(fixtures_dir):
    paths = sorted(p for p in fixtures_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    assert len(paths) >= 10  # RHD, FreiHAND, OneHand10K, Panoptic and the STB frame
    for path in paths:
        img = load_image(path)
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3, path
        np.testing.assert_array_equal(img, reference(path), err_msg=str(path))


@pytest.mark.parametrize(
    ("suffix", "shape", "dtype"),
    [
        (".png", (37, 41), np.uint8),  # grey
        (".png", (37, 41, 4), np.uint8),  # alpha
        (".png", (37, 41, 3), np.uint16),  # 16-bit colour
        (".png", (37, 41), np.uint16),  # 16-bit grey
        (".jpg", (37, 41, 3), np.uint8),
        (".jpg", (37, 41), np.uint8),
        (".bmp", (37, 41, 3), np.uint8),
    ],
)
def test_grey_alpha_and_16_bit_files_match_imread(tmp_path, suffix, shape, dtype):
    rng = np.random.default_rng(3)
    path = tmp_path / f"img{suffix}"
    assert cv2.imwrite(str(path), rng.integers(0, np.iinfo(dtype).max, shape, dtype=dtype, endpoint=True))
    img = load_image(path)
    assert img.shape == (37, 41, 3) and img.dtype == np.uint8
    np.testing.assert_array_equal(img, reference(path))
