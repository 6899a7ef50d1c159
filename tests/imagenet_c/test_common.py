"""The shared contract of the ImageNet-C kernels: random source, severity, image layouts."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from keypoint_corrupt.functional.imagenet_c import params
from keypoint_corrupt.functional.imagenet_c._common import as_draws, check_severity, run_rgb


def _plus_100(rgb, _params, _draws):
    return rgb.astype(np.float64) + 100.0


@pytest.mark.parametrize("bad", [0, 6, -1])
def test_severity_out_of_range_names_the_value(bad):
    with pytest.raises(ValueError, match=f"severity must be in 1..5, got {bad}"):
        check_severity(bad)


@pytest.mark.parametrize("bad", [2.0, "3", True, None])
def test_severity_of_another_type_is_refused(bad):
    with pytest.raises(TypeError, match="severity must be an int"):
        check_severity(bad)


def test_severity_accepts_numpy_integers():
    assert check_severity(np.int64(4)) == 4


@pytest.mark.parametrize("bad", [1.5, "0", -3, [1]])
def test_rng_errors_name_the_argument(bad):
    with pytest.raises((TypeError, ValueError), match="rng"):
        as_draws(bad)


@given(st.integers(1, 4), st.integers(1, 40), st.integers(0, 2**32 - 1))
def test_bulk_randint_equals_imagecorruptions_pairs(delta, n, seed):
    # imagecorruptions draws randint(-d, d, size=(2,)) once per pixel; one bulk call of the
    # legacy generator yields the same values, which is what makes a fast exact glass blur possible.
    one_by_one = np.random.RandomState(seed)
    pairs = [one_by_one.randint(-delta, delta, size=(2,)) for _ in range(n)]
    bulk = as_draws(np.random.RandomState(seed)).randint(-delta, delta, (n, 2))
    np.testing.assert_array_equal(np.array(pairs), bulk)


def test_int_seed_means_a_generator():
    a = as_draws(7).normal(0.0, 1.0, 5)
    np.testing.assert_array_equal(a, np.random.default_rng(7).normal(0.0, 1.0, 5))


@pytest.mark.parametrize(
    ("shape", "dtype"),
    [((9, 7), np.uint8), ((9, 7, 1), np.uint8), ((9, 7, 3), np.float32), ((9, 7, 4), np.uint8)],
)
def test_layouts_round_trip(shape, dtype):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, shape).astype(np.uint8)
    if dtype == np.float32:
        img = (img / 255.0).astype(np.float32)
    before = img.copy()
    out = run_rgb(img, _plus_100, None, as_draws(0))
    assert out.shape == img.shape and out.dtype == img.dtype
    np.testing.assert_array_equal(img, before)
    scale = 255.0 if dtype == np.float32 else 1.0
    expected = np.minimum(img[..., :3].astype(np.float64) * scale + 100.0, 255.0)
    got = out[..., :3].astype(np.float64) * scale
    np.testing.assert_allclose(got, expected if dtype == np.float32 else np.floor(expected), atol=1e-3)
    if shape[-1] == 4:
        np.testing.assert_array_equal(out[..., 3], img[..., 3])


def test_uint8_results_are_truncated_like_imagecorruptions():
    img = np.zeros((2, 2, 3), np.uint8)
    out = run_rgb(img, lambda rgb, p, d: rgb + 12.99, None, as_draws(0))
    assert (out == 12).all()


def test_every_corruption_has_five_severities():
    assert set(params.PARAMS) == {*params.STANDARD, *params.EXTRA}
    assert all(len(v) == 5 for v in params.PARAMS.values())
    assert sum(len(g) for g in params.GROUPS.values()) == 15


@pytest.mark.parametrize("channels", [3, 4])
def test_kernels_get_a_private_copy(channels):
    img = np.full((4, 4, channels), 50, np.uint8)

    def scribble(rgb, _params, _draws):
        rgb[...] = 200  # a kernel may work in place
        return rgb

    run_rgb(img, scribble, None, as_draws(0))
    assert (img == 50).all()


def test_images_too_large_for_a_kernel_are_refused_by_name_before_any_draw():
    from keypoint_corrupt.functional import imagenet_c

    state = np.random.RandomState(0)
    before = state.get_state()[1].copy()
    with pytest.raises(ValueError, match=r"image must be at most 32766 px on each side .*\(2, 32767\)"):
        imagenet_c.elastic_transform(np.zeros((2, 32767), np.uint8), 1, rng=state)
    with pytest.raises(ValueError, match=r"image must be at most 8192 px on its longest side for fog"):
        imagenet_c.fog(np.zeros((1, 8193), np.uint8), 1, rng=state)
    np.testing.assert_array_equal(state.get_state()[1], before)  # nothing was drawn
    assert imagenet_c.fog(np.zeros((1, 8192), np.uint8), 1, rng=0).shape == (1, 8192)
