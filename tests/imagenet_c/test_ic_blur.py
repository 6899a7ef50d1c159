"""ImageNet-C blurs: agreement with imagecorruptions 1.1.2, with scipy and with formulas; float input.

On x86-64 every blur is bit-exact to the reference (the same floating-point operations in the
same order). Elsewhere (e.g. macOS arm64, whose scipy wheels fuse multiply-adds in the
Gaussian filter) the issue's acceptance bound applies: >= 99% of values identical, none off by
more than 2 levels.
"""

from __future__ import annotations

import math
import platform

import numpy as np
import pytest
import scipy.ndimage as ndi
from hypothesis import given, settings
from hypothesis import strategies as st
from ic_images import fixture_rgb
from imagenet_c_oracle import reference, require_oracle

from keypoint_corrupt.functional.imagenet_c import _blur_jit, blur
from keypoint_corrupt.functional.imagenet_c.params import PARAMS

BLURS = ("defocus_blur", "glass_blur", "motion_blur", "zoom_blur", "gaussian_blur")
EXACT_PLATFORM = platform.machine().lower() in {"x86_64", "amd64"}


def _assert_agrees(ours: np.ndarray, ref: np.ndarray) -> None:
    assert ours.shape == ref.shape and ours.dtype == ref.dtype == np.uint8
    if EXACT_PLATFORM:
        np.testing.assert_array_equal(ours, ref)
        return
    diff = np.abs(ours.astype(np.int16) - ref)
    assert np.mean(diff == 0) >= 0.99 and diff.max() <= 2


def _oracle_case(name: str, image_name: str, severity: int) -> None:
    require_oracle()
    image = fixture_rgb(image_name)
    seed = 1000 * severity + len(image_name)
    ours = getattr(blur, name)(image, severity, rng=np.random.RandomState(seed))
    _assert_agrees(ours, reference(name, image, severity, seed))


# ---------------------------------------------------------------------------------------------
# Agreement with imagenet-c's reference on real images


@pytest.mark.parametrize("severity", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("image_name", ["stb", "rhd", "coco_224", "mpii_odd", "coco_tiny"])
@pytest.mark.parametrize("name", ["defocus_blur", "motion_blur", "gaussian_blur"])
def test_filters_match_the_reference(name, image_name, severity):
    _oracle_case(name, image_name, severity)


@pytest.mark.parametrize("name", ["defocus_blur", "motion_blur", "gaussian_blur"])
def test_filters_match_the_reference_on_a_1280x720_frame(name):
    _oracle_case(name, "mpii_hd", 4)


@pytest.mark.parametrize("severity", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("image_name", ["rhd", "coco_224", "mpii_odd", "coco_tiny"])
def test_zoom_blur_matches_the_reference(image_name, severity):
    _oracle_case("zoom_blur", image_name, severity)


def test_zoom_blur_matches_the_reference_on_the_full_frame():
    _oracle_case("zoom_blur", "stb", 2)  # 16 zoom layers of 640 x 480


@pytest.mark.parametrize("severity", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("image_name", ["rhd_small", "mpii_odd", "coco_tiny"])
def test_glass_blur_matches_the_reference(image_name, severity):
    # The reference takes ~9 us per pixel and iteration, so glass blur is checked on crops
    # here (and on the full 640 x 480 frame in the benchmark).
    _oracle_case("glass_blur", image_name, severity)


def test_glass_blur_matches_the_reference_on_a_320x320_image():
    _oracle_case("glass_blur", "rhd", 2)


@pytest.mark.parametrize("name", BLURS)
def test_grey_input_matches_the_reference(name):
    require_oracle()
    grey = np.ascontiguousarray(fixture_rgb("mpii_odd")[:, :, 1])
    ours = getattr(blur, name)(grey, 3, rng=np.random.RandomState(5))
    assert ours.shape == grey.shape
    _assert_agrees(ours, reference(name, grey, 3, 5)[:, :, 0])


@pytest.mark.parametrize("value", [0, 1, 128, 254, 255])
@pytest.mark.parametrize("name", BLURS)
def test_flat_images_match_the_reference(name, value):
    # Flat areas are where truncation to uint8 amplifies the last bit of a float.
    require_oracle()
    flat = np.full((40, 48, 3), value, np.uint8)
    for severity in (1, 5):
        ours = getattr(blur, name)(flat, severity, rng=np.random.RandomState(severity))
        _assert_agrees(ours, reference(name, flat, severity, severity))


# ---------------------------------------------------------------------------------------------
# The helpers shared with the weather corruptions


@settings(max_examples=40, deadline=None)
@given(
    height=st.integers(2, 70),
    width=st.integers(2, 70),
    factor=st.one_of(
        st.sampled_from([1.0, 1.01, 1.11, 1.2, 1.26, 1.3, 2.0, 2.5, 3.0, 4.5]), st.floats(1.0, 5.0)
    ),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**16),
)
def test_clipped_zoom_matches_the_reference(height, width, factor, dtype, seed):
    oracle = require_oracle().corruptions
    layer = np.random.default_rng(seed).normal(0.3, 0.4, (height, width, 1)).astype(dtype)
    expected = oracle.clipped_zoom(layer, factor)
    got = blur.clipped_zoom(layer, factor)
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(blur.clipped_zoom(layer[:, :, 0], factor), expected[:, :, 0])


@settings(max_examples=40, deadline=None)
@given(
    height=st.integers(1, 45),
    width=st.integers(1, 45),
    radius=st.integers(0, 20),
    sigma=st.sampled_from([3, 4, 5, 8, 12, 15, 0.7]),
    angle=st.floats(-180.0, 180.0),
    kind=st.sampled_from(["uint8", "float32", "float64-2d"]),
    seed=st.integers(0, 2**16),
)
def test_motion_blur_layer_matches_the_reference(height, width, radius, sigma, angle, kind, seed):
    # Small images reach the reference's early stop (a shift as long as the image).
    oracle = require_oracle().corruptions
    rng = np.random.default_rng(seed)
    if kind == "uint8":
        layer = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    elif kind == "float32":
        layer = rng.random((height, width, 3), dtype=np.float32)
    else:
        layer = rng.normal(0.5, 0.5, (height, width))
    expected = oracle._motion_blur(layer, radius, sigma, angle)
    got = blur.motion_blur_layer(layer, radius, sigma, angle)
    assert got.dtype == expected.dtype == np.float64
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize(("radius", "alias"), PARAMS["defocus_blur"])
def test_defocus_disk_is_the_reference_kernel(radius, alias):
    oracle = require_oracle().corruptions
    np.testing.assert_array_equal(blur._defocus_disk(radius, alias), oracle.disk(radius, alias_blur=alias))


# ---------------------------------------------------------------------------------------------
# Independent references: scipy and the definitions


@pytest.mark.parametrize("sigma", sorted({*PARAMS["gaussian_blur"], *(p[0] for p in PARAMS["glass_blur"])}))
def test_gaussian_is_scipys_gaussian_filter(sigma):
    unit = fixture_rgb("mpii_odd") / 255.0
    expected = ndi.gaussian_filter(unit, (sigma, sigma, 0), mode="nearest", truncate=4.0)
    got = _blur_jit.gaussian_f64(unit, blur._gaussian_half_kernel(sigma))
    if EXACT_PLATFORM:
        np.testing.assert_array_equal(got, expected)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    u8 = _blur_jit.gaussian_u8(
        np.ascontiguousarray(fixture_rgb("mpii_odd")), blur._gaussian_half_kernel(sigma)
    )
    np.testing.assert_array_equal(u8, (np.clip(got, 0, 1) * 255).astype(np.uint8))


@settings(max_examples=30, deadline=None)
@given(height=st.integers(1, 40), width=st.integers(1, 40), factor=st.floats(1.0, 4.0))
def test_clipped_zoom_is_scipys_zoom_of_the_centre_crop(height, width, factor):
    layer = np.random.default_rng(height * 100 + width).random((height, width, 2))
    crop_h, crop_w = math.ceil(height / factor), math.ceil(width / factor)
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    crop = layer[top : top + crop_h, left : left + crop_w]
    np.testing.assert_array_equal(
        blur.clipped_zoom(layer, factor), ndi.zoom(crop, (factor, factor, 1), order=1)
    )


def _motion_by_definition(layer: np.ndarray, radius: int, sigma: float, angle: float) -> np.ndarray:
    # Copy i moves i steps of unit length backwards along the angle, rounded half up (the
    # reference's step: the vector (2r+1)(sin, cos) over its length); edges replicated;
    # weights exp(-i^2 / (2 sigma^2)) normalised; stop at a shift as long as the image.
    taps = 2 * radius + 1
    weights = np.exp(-(np.arange(taps) ** 2) / (2 * sigma**2)) / (np.sqrt(2 * np.pi) * sigma)
    weights /= weights.sum()
    height, width = layer.shape[:2]
    out = np.zeros(layer.shape, np.float64)
    end_y, end_x = taps * np.sin(np.deg2rad(angle)), taps * np.cos(np.deg2rad(angle))
    length = math.hypot(end_y, end_x)
    for i in range(taps):
        dy = -math.ceil(i * end_y / length - 0.5)
        dx = -math.ceil(i * end_x / length - 0.5)
        if abs(dy) >= height or abs(dx) >= width:
            break
        rows = np.clip(np.arange(height) - dy, 0, height - 1)
        cols = np.clip(np.arange(width) - dx, 0, width - 1)
        out = out + weights[i] * layer[rows][:, cols]
    return out


@pytest.mark.parametrize("angle", [0.0, 30.0, -45.0, 90.0, 200.0])
def test_motion_blur_layer_follows_its_definition(angle):
    layer = np.random.default_rng(3).random((30, 41, 3))
    got = blur.motion_blur_layer(layer, 6, 3.0, angle)
    np.testing.assert_array_equal(got, _motion_by_definition(layer, 6, 3.0, angle))


def test_motion_blur_keeps_flat_images_flat():
    flat = np.full((50, 60), 0.25)
    np.testing.assert_allclose(blur.motion_blur_layer(flat, 15, 8, 33.0), flat, rtol=0, atol=1e-12)


def _glass_moves_by_definition(image: np.ndarray, offsets: np.ndarray, delta: int) -> np.ndarray:
    out = image.copy()
    n = 0
    for h in range(image.shape[0] - delta, delta, -1):
        for w in range(image.shape[1] - delta, delta, -1):
            dx, dy = offsets[n]
            out[h, w] = out[h + dy, w + dx]  # imagecorruptions' "swap" of views is this copy
            n += 1
    return out


@pytest.mark.parametrize("delta", [1, 2, 3, 4])
def test_glass_moves_follow_their_definition(delta):
    image = np.random.default_rng(delta).integers(0, 256, (23, 31, 3), dtype=np.uint8)
    visits = (23 - 2 * delta) * (31 - 2 * delta)
    offsets = np.random.default_rng(9).integers(-delta, delta, (visits, 2))
    got = image.copy()
    _blur_jit.glass_shuffle(got, offsets, delta)
    np.testing.assert_array_equal(got, _glass_moves_by_definition(image, offsets, delta))


@pytest.mark.parametrize("severity", [1, 2, 3, 4, 5])
def test_glass_blur_draws_exactly_what_the_reference_draws(severity):
    # After the call, the RandomState is where imagecorruptions' per-pixel randint(-d, d, (2,))
    # calls leave NumPy's global state: the same number of draws, in the same order.
    _, delta, iterations = PARAMS["glass_blur"][severity - 1]
    image = np.zeros((20, 26, 3), np.uint8)
    state = np.random.RandomState(11)
    blur.glass_blur(image, severity, rng=state)
    stepped = np.random.RandomState(11)
    for _ in range(iterations * (20 - 2 * delta) * (26 - 2 * delta)):
        stepped.randint(-delta, delta, size=(2,))
    assert state.randint(0, 2**31) == stepped.randint(0, 2**31)


def test_motion_blur_draws_one_angle():
    state = np.random.RandomState(4)
    blur.motion_blur(np.zeros((40, 40, 3), np.uint8), 2, rng=state)
    stepped = np.random.RandomState(4)
    stepped.uniform(-45, 45)
    assert state.randint(0, 2**31) == stepped.randint(0, 2**31)


def test_glass_offsets_from_a_generator_cover_the_reference_range():
    draws = blur.as_draws(np.random.default_rng(0))
    offsets = blur._glass_offsets(draws, 3, 5000)
    assert offsets.shape == (5000, 2)
    assert set(np.unique(offsets).tolist()) == {-3, -2, -1, 0, 1, 2}


# ---------------------------------------------------------------------------------------------
# Float input and the helpers' arguments (the contract of every corruption: test_contract.py)


@pytest.mark.parametrize("name", BLURS)
def test_float_input_is_the_uint8_arithmetic_without_truncation(name):
    image = fixture_rgb("coco_tiny")
    as_float = (image / 255.0).astype(np.float32)
    for severity in (1, 5):
        u8 = getattr(blur, name)(image, severity, rng=np.random.RandomState(2)).astype(np.float64)
        fl = getattr(blur, name)(as_float, severity, rng=np.random.RandomState(2)).astype(np.float64) * 255
        gap = fl - u8
        # uint8 output truncates the same value; glass blur truncates twice in uint8.
        limit = 2.0 if name == "glass_blur" else 1.0
        assert gap.min() > -1e-3 and gap.max() < limit + 1e-3
        assert gap.mean() > 0.25 * limit


def test_helper_arguments_are_checked():
    with pytest.raises(TypeError, match="float32/float64"):
        blur.clipped_zoom(np.zeros((8, 8), np.uint8), 2.0)
    with pytest.raises(ValueError, match=r"factor must be >= 1, got 0\.5"):
        blur.clipped_zoom(np.zeros((8, 8)), 0.5)
    with pytest.raises(ValueError, match="shape"):
        blur.motion_blur_layer(np.zeros(8), 3, 2.0, 0.0)
    with pytest.raises(ValueError, match="radius"):
        blur.motion_blur_layer(np.zeros((8, 8)), -1, 2.0, 0.0)
