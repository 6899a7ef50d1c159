"""Bad input fails early with a message naming the argument and the value."""

from __future__ import annotations

import numpy as np
import pytest

import keypoint_corrupt as kc
from keypoint_corrupt import functional as F

IMG = np.zeros((32, 32, 3), np.uint8)
KPS = np.array([[5.0, 5.0], [20.0, 25.0]])


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: F.defocus_blur(IMG, 8), ValueError, r"kernel_size must be odd.*8"),
        (lambda: F.defocus_blur(IMG, 0), ValueError, r"kernel_size must be >= 1, got 0"),
        (lambda: F.defocus_blur(IMG, -3), ValueError, r"kernel_size.*-3"),
        (lambda: F.defocus_blur(IMG, 7.0), TypeError, r"kernel_size must be an integer, got 7.0"),
        (lambda: F.motion_blur(IMG, True), TypeError, r"kernel_size must be an integer, got True"),
        (lambda: F.motion_blur(IMG, "15"), TypeError, r"kernel_size must be an integer, got '15'"),
        (lambda: F.motion_blur([[1, 2]], 3), TypeError, r"image must be a numpy.ndarray, got list"),
        (lambda: F.motion_blur(np.zeros((0, 5), np.uint8), 3), ValueError, r"image is empty"),
        (
            lambda: F.motion_blur(np.zeros((4, 4, 3), np.float64), 3),
            TypeError,
            r"dtype uint8 or float32.*float64",
        ),
        (lambda: F.motion_blur(np.zeros((4, 4, 3), np.uint16), 3), TypeError, r"uint16"),
        (
            lambda: F.motion_blur(np.zeros((4, 4, 2), np.uint8), 3),
            ValueError,
            r"1, 3 or 4 channels.*\(4, 4, 2\)",
        ),
        (lambda: F.motion_blur(np.zeros((4,), np.uint8), 3), ValueError, r"ndim=1"),
        (lambda: F.motion_blur(np.zeros((2, 4, 4, 3), np.uint8), 3), ValueError, r"ndim=4"),
        (lambda: F.motion_blur(np.full((4, 4), 1.5, np.float32), 3), ValueError, r"\[0, 1\].*max=1.5"),
        (lambda: F.motion_blur(np.full((4, 4), np.nan, np.float32), 3), ValueError, r"finite"),
        (lambda: F.occlude(IMG, KPS, 0.0), ValueError, r"area must be > 0.0, got 0.0"),
        (lambda: F.occlude(IMG, KPS, 1.5), ValueError, r"area must be <= 1.0, got 1.5"),
        (lambda: F.occlude(IMG, KPS, 0.1, margin=-0.1), ValueError, r"margin must be >= 0.0, got -0.1"),
        (lambda: F.occlude(IMG, [1, 2, 3], 0.1), ValueError, r"keypoints must have shape \(N, 2\).*\(3,\)"),
        (lambda: F.occlude(IMG, np.zeros((3, 1)), 0.1), ValueError, r"keypoints.*\(3, 1\)"),
        (lambda: F.occlude(IMG, [["a", "b"]], 0.1), TypeError, r"keypoints must be numeric"),
        (
            lambda: F.occlude(IMG, KPS, 0.1, visibility=[1, 1, 1]),
            ValueError,
            r"visibility must have shape \(2,\)",
        ),
        (lambda: F.occlude(IMG, KPS, 0.1, fill=300), ValueError, r"fill must lie in \[0, 255\].*300"),
        (
            lambda: F.occlude(IMG, KPS, 0.1, fill=(1, 2)),
            ValueError,
            r"fill must be a scalar or have 3 values",
        ),
        (lambda: F.occlude(IMG, KPS, 0.1, center=(np.inf, 3)), ValueError, r"center must be finite"),
        (lambda: F.occlude(IMG, KPS, 0.1, rng="seed"), TypeError, r"rng must be a numpy.random.Generator"),
        (lambda: F.gaussian_noise(IMG, var=-0.01), ValueError, r"var must be >= 0.0, got -0.01"),
        (lambda: F.gaussian_noise(IMG, var=float("nan")), ValueError, r"var must be finite"),
        (lambda: F.gaussian_noise(IMG, mean=2.0), ValueError, r"mean must be <= 1.0, got 2.0"),
        (lambda: F.gaussian_noise(IMG, rng=-1), ValueError, r"rng seed must be >= 0, got -1"),
        (lambda: F.salt_pepper_noise(IMG, amount=1.2), ValueError, r"amount must be <= 1.0, got 1.2"),
        (lambda: F.salt_pepper_noise(IMG, salt_vs_pepper=-1), ValueError, r"salt_vs_pepper must be >= 0.0"),
        (lambda: F.salt_pepper_noise(IMG, per_channel="yes"), TypeError, r"per_channel must be a bool"),
        (lambda: F.keypoint_roi(KPS, (0, 10)), ValueError, r"image_shape must have positive"),
        (lambda: F.keypoint_roi(KPS, None), TypeError, r"image_shape must be a shape tuple"),
        (lambda: kc.DefocusBlur(4), ValueError, r"kernel_size must be odd.*4"),
        (lambda: kc.HorizontalMotionBlur(0), ValueError, r"kernel_size must be >= 1, got 0"),
        (lambda: kc.KeypointOcclusion(0), ValueError, r"area must be > 0.0, got 0"),
        (lambda: kc.KeypointOcclusion(0.1, margin=-1), ValueError, r"margin must be >= 0.0, got -1"),
        (lambda: kc.KeypointOcclusion(0.1, fill=-1), ValueError, r"fill must be a non-negative"),
        (lambda: kc.KeypointOcclusion(0.1, visibility_label=3), TypeError, r"visibility_label must be a str"),
        (lambda: kc.GaussianNoise(var=-1), ValueError, r"var must be >= 0.0, got -1"),
        (lambda: kc.SaltPepperNoise(amount=2), ValueError, r"amount must be <= 1.0, got 2"),
        (lambda: kc.SaltPepperNoise(per_channel=1), TypeError, r"per_channel must be a bool"),
        (lambda: kc.DefocusBlur(7, p=2), ValueError, r"p must be <= 1.0, got 2"),
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
    out, box = F.occlude(IMG + 9, all_nan, 0.3)
    assert box is None
    np.testing.assert_array_equal(out, IMG + 9)
