"""Bad input fails early with a message naming the argument and the value.

Arguments of the transforms and of the functional functions they wrap (kernel sizes, areas,
fills, noise parameters, keypoints, visibility, generators, bad images) are checked row by row
over the definitions table in ``test_transform_contract.py``; this module keeps the checks of
functional helpers that no transform argument reaches.
"""

from __future__ import annotations

import numpy as np
import pytest

from keypoint_corrupt import functional as F

IMG = np.zeros((32, 32, 3), np.uint8)
KPS = np.array([[5.0, 5.0], [20.0, 25.0]])


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: F.occlude(IMG, KPS, 0.1, center=(np.inf, 3)), ValueError, r"center must be finite"),
        (lambda: F.occlude(IMG, KPS, 0.1, center=(1, 2, 3)), TypeError, r"center must be an \(x, y\) pair"),
        (lambda: F.occlude(IMG, KPS, 0.1, center="ab"), TypeError, r"center must be an \(x, y\) pair"),
        (lambda: F.place_occluder(KPS, IMG.shape, 0.0), ValueError, r"area must be > 0.0, got 0.0"),
        (lambda: F.keypoint_roi(KPS, (0, 10)), ValueError, r"image_shape must have positive"),
        (lambda: F.keypoint_roi(KPS, None), TypeError, r"image_shape must be a shape tuple"),
        (lambda: F.keypoint_roi(KPS, IMG.shape, margin=-1), ValueError, r"margin must be >= 0.0, got -1"),
        (
            lambda: F.fill_box(IMG, (0, 0, 2, 2), (1, 2)),
            ValueError,
            r"fill must be a scalar or have 3 values",
        ),
        (lambda: F.fill_box(IMG[..., 0], (0, 0, 2, 2), 256), ValueError, r"fill must lie in \[0, 255\]"),
    ],
)
def test_bad_input_raises_clear_error(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_nan_and_inf_keypoints_count_as_invisible():
    kps = np.array([[5.0, 5.0], [20.0, 25.0], [np.nan, 3.0], [np.inf, 1e9]])
    assert F.keypoint_roi(kps, IMG.shape, margin=0.0) == (5.0, 5.0, 20.0, 25.0)
    all_nan = np.full((3, 2), np.nan)
    assert F.keypoint_roi(all_nan, IMG.shape) is None
    assert F.place_occluder(all_nan, IMG.shape, 0.3, rng=0) is None
    out, box = F.occlude(IMG + 9, all_nan, 0.3)
    assert box is None
    np.testing.assert_array_equal(out, IMG + 9)
