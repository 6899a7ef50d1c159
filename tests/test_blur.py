"""Defocus and motion blur against OpenCV references."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from keypoint_corrupt.functional import defocus_blur, defocus_sigma, motion_blur

SHAPES = [(48, 64), (48, 64, 1), (48, 64, 3), (48, 64, 4)]


def _image(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    if dtype == np.uint8:
        return rng.integers(0, 256, shape, dtype=np.uint8)
    return rng.random(shape, dtype=np.float32)


def _reference_motion(image, k):
    kernel = np.full((1, k), 1.0 / k, dtype=np.float32)
    out = cv2.filter2D(image, -1, kernel, anchor=(k // 2, 0), borderType=cv2.BORDER_REFLECT_101)
    return out.reshape(image.shape)


@pytest.mark.parametrize("k", [1, 3, 7, 13, 21, 31])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_defocus_is_bit_identical_to_cv2_gaussian_blur(k, shape, dtype):
    img = _image(shape, dtype)
    ref = cv2.GaussianBlur(img, (k, k), 0).reshape(shape)
    out = defocus_blur(img, k)
    assert out.dtype == img.dtype and out.shape == img.shape
    np.testing.assert_array_equal(out, ref)


def _impulse_response(k, size=41):
    """The 2D kernel defocus_blur applies: its response to a unit impulse away from the borders."""
    img = np.zeros((size, size), np.float32)
    img[size // 2, size // 2] = 1.0
    half = k // 2
    return defocus_blur(img, k)[
        size // 2 - half : size // 2 + half + 1, size // 2 - half : size // 2 + half + 1
    ]


def _sampled_gaussian(k, sigma):
    x = np.arange(k) - k // 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def test_defocus_sigma_is_the_documented_formula():
    for k, sigma in [(7, 1.4), (13, 2.3), (21, 3.5)]:  # the registry's descriptions
        assert defocus_sigma(k) == pytest.approx(0.3 * ((k - 1) / 2 - 1) + 0.8)
        assert defocus_sigma(k) == pytest.approx(sigma)


@pytest.mark.parametrize("k", [11, 13, 21, 31])
def test_defocus_kernel_is_the_sampled_gaussian_of_defocus_sigma(k):
    # Above 9 taps the blur is the separable sampled Gaussian with sigma = defocus_sigma(k).
    g = _sampled_gaussian(k, defocus_sigma(k))
    np.testing.assert_allclose(_impulse_response(k), np.outer(g, g), atol=1e-7)


@pytest.mark.parametrize(
    "k, table",
    [(7, np.array([1, 3.5, 7, 9, 7, 3.5, 1]) / 32), (9, np.array([4, 13, 30, 51, 60, 51, 30, 13, 4]) / 256)],
)
def test_small_defocus_kernels_use_opencvs_fixed_tables(k, table):
    # For k <= 9 (sigma 0) defocus_blur follows OpenCV's fixed tables rather than the formula
    # (documented in defocus_blur and docs/corruptions.md); for defocus-7 the table is within
    # 0.01 per tap of the sigma-1.4 Gaussian the formula would give.
    response = _impulse_response(k)
    np.testing.assert_allclose(response, np.outer(table, table), atol=1e-7)
    formula = _sampled_gaussian(k, defocus_sigma(k))
    assert np.abs(table - formula).max() < 0.01
    assert np.abs(response - np.outer(formula, formula)).max() > 1e-4  # really the table, not the formula


@pytest.mark.parametrize("k", [1, 2, 15, 30, 45, 64])
@pytest.mark.parametrize("shape", SHAPES)
def test_motion_blur_uint8_within_one_grey_level_of_filter2d(k, shape):
    img = _image(shape, np.uint8, seed=k)
    out = motion_blur(img, k)
    ref = _reference_motion(img, k)
    assert out.dtype == np.uint8 and out.shape == shape
    assert np.abs(out.astype(int) - ref.astype(int)).max() <= 1


@pytest.mark.parametrize("k", [15, 30, 45])
def test_motion_blur_float_matches_filter2d(k):
    img = _image((48, 64, 3), np.float32)
    np.testing.assert_allclose(motion_blur(img, k), _reference_motion(img, k), atol=1e-5)


@pytest.mark.parametrize("k", [15, 30, 45])
def test_motion_blur_matches_middle_row_kernel_of_reference_protocol(k):
    # The reference defines a k x k kernel whose middle row is 1/k; its anchor is the centre.
    img = _image((40, 80, 3), np.float32, seed=3)
    kernel = np.zeros((k, k), np.float32)
    kernel[k // 2, :] = 1.0 / k
    ref = cv2.filter2D(img, -1, kernel, anchor=(k // 2, k // 2), borderType=cv2.BORDER_REFLECT_101)
    np.testing.assert_allclose(motion_blur(img, k), ref, atol=1e-5)


@pytest.mark.parametrize("k", [15, 30, 45])
def test_motion_blur_never_shifts_vertically(k):
    img = np.zeros((60, 120), np.uint8)
    img[31, :] = 255  # a horizontal line stays exactly where it is
    np.testing.assert_array_equal(motion_blur(img, k), img)
    img = np.zeros((60, 120), np.float32)
    img[:, 40:80] = 1.0
    rows = motion_blur(img, k).sum(axis=1)
    assert np.allclose(rows, rows[0])


@pytest.mark.parametrize("k, shift", [(15, 0.0), (45, 0.0), (2, 0.5), (30, 0.5)])
def test_motion_blur_centroid_shift_is_documented_half_pixel_for_even_k(k, shift):
    img = np.zeros((5, 200), np.float32)
    img[:, 100] = 1.0
    row = motion_blur(img, k)[2]
    centroid = (row * np.arange(row.size)).sum() / row.sum()
    assert centroid == pytest.approx(100 + shift, abs=1e-4)


@given(
    arrays(np.uint8, st.tuples(st.integers(1, 12), st.integers(1, 12), st.sampled_from([1, 3, 4]))),
    st.integers(1, 50),
)
@settings(max_examples=60, deadline=None)
def test_blurs_keep_shape_dtype_and_never_touch_input(img, k):
    before = img.copy()
    out = motion_blur(img, k)
    assert out.shape == img.shape and out.dtype == img.dtype and out is not img
    odd = k | 1
    out = defocus_blur(img, odd)
    assert out.shape == img.shape and out.dtype == img.dtype
    np.testing.assert_array_equal(img, before)


def test_blur_of_constant_image_is_constant():
    img = np.full((30, 30, 3), 77, np.uint8)
    np.testing.assert_array_equal(motion_blur(img, 30), img)
    np.testing.assert_array_equal(defocus_blur(img, 21), img)
