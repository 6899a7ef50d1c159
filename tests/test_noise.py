"""Gaussian and salt-and-pepper noise: exact distributions, skimage parity, properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import stats
from skimage.util import random_noise

from keypoint_corrupt.functional import bernoulli_positions, gaussian_noise, salt_pepper_noise


def _output_pmf(v, mean, std):
    """Exact P(out = k), k = 0..255, for round(clip(v/255 + N(mean, std), 0, 1) * 255)."""
    k = np.arange(256)
    upper = stats.norm.cdf((k + 0.5 - v) / 255, mean, std)  # P(v + 255 n < k + 0.5)
    upper[-1] = 1.0
    return np.diff(np.concatenate([[0.0], upper]))


@pytest.mark.parametrize(
    "v, mean, var", [(128, 0.0, 0.01), (128, 0.05, 0.0025), (30, -0.1, 0.04), (250, 0, 0.01)]
)
def test_uint8_gaussian_output_follows_the_exact_distribution(v, mean, var):
    img = np.full((1000, 1000), v, np.uint8)
    out = gaussian_noise(img, var=var, mean=mean, rng=0)
    counts = np.bincount(out.ravel(), minlength=256)
    expected = _output_pmf(v, mean, np.sqrt(var)) * out.size
    keep = expected >= 20  # pool sparse tail cells so the chi-square approximation holds
    obs = np.concatenate([counts[keep], [counts[~keep].sum()]])
    exp = np.concatenate([expected[keep], [expected[~keep].sum()]])
    assert stats.chisquare(obs, exp).pvalue > 1e-4


def test_uint8_gaussian_tails_and_clipping_are_exact():
    std = 0.1
    img = np.zeros((2000, 1000), np.uint8)
    out = gaussian_noise(img, var=std**2, rng=1)
    p_zero = stats.norm.cdf(0.5 / 255, 0, std)  # everything rounding to <= 0 clips to 0
    n = out.size
    assert abs((out == 0).mean() - p_zero) < 4 * np.sqrt(p_zero * (1 - p_zero) / n)
    p_tail = stats.norm.sf((76.5) / 255, 0, std)  # offsets >= 77 (3 sigma)
    got = (out >= 77).mean()
    assert abs(got - p_tail) < 5 * np.sqrt(p_tail / n)
    top = gaussian_noise(np.full((500, 500), 255, np.uint8), var=std**2, rng=2)
    assert abs((top == 255).mean() - p_zero) < 0.005


def test_uint8_gaussian_matches_skimage_random_noise():
    ramp = np.tile(np.arange(256, dtype=np.uint8), (400, 12))
    ours = gaussian_noise(ramp, var=0.01, rng=3)
    ref = np.round(random_noise(ramp, mode="gaussian", var=0.01, rng=4) * 255).astype(np.uint8)
    for v in (0, 5, 60, 128, 200, 250, 255):
        a = np.bincount(ours[ramp == v], minlength=256)
        b = np.bincount(ref[ramp == v], minlength=256)
        table = np.array([a, b])
        table = table[:, table.sum(axis=0) > 10]
        assert stats.chi2_contingency(table).pvalue > 1e-4, v


def test_float32_gaussian_noise_statistics_and_clipping():
    img = np.full((800, 800, 3), 0.5, np.float32)
    out = gaussian_noise(img, var=0.01, mean=0.02, rng=5)
    assert out.dtype == np.float32 and out.shape == img.shape
    noise = (out - img).ravel()
    assert noise.mean() == pytest.approx(0.02, abs=5e-4)
    assert noise.std() == pytest.approx(0.1, abs=5e-4)
    edge = gaussian_noise(np.zeros((500, 500), np.float32), var=0.01, rng=6)
    assert edge.min() == 0.0 and (edge == 0).mean() == pytest.approx(0.5, abs=0.005)


def test_zero_variance_adds_only_the_mean():
    img = np.array([[0, 100, 250]], np.uint8)
    np.testing.assert_array_equal(gaussian_noise(img, var=0.0, mean=0.02, rng=0), [[5, 105, 255]])
    np.testing.assert_array_equal(gaussian_noise(img, var=0.0, rng=0), img)


def test_noise_is_reproducible_per_seed_and_differs_between_seeds():
    img = np.full((64, 64, 3), 128, np.uint8)
    for fn in (gaussian_noise, salt_pepper_noise):
        np.testing.assert_array_equal(fn(img, rng=11), fn(img, rng=np.random.default_rng(11)))
        assert not np.array_equal(fn(img, rng=11), fn(img, rng=12))


@pytest.mark.parametrize("amount, svp", [(0.05, 0.5), (0.2, 0.8), (0.01, 0.0)])
def test_per_channel_salt_pepper_rates(amount, svp):
    img = np.full((600, 600, 3), 128, np.uint8)
    out = salt_pepper_noise(img, amount=amount, salt_vs_pepper=svp, rng=7)
    changed = out != 128
    n = changed.size
    assert abs(changed.mean() - amount) < 5 * np.sqrt(amount * (1 - amount) / n)
    salt = (out == 255).sum() / max(changed.sum(), 1)
    assert abs(salt - svp) < 0.02
    pix = changed.any(axis=2).mean()
    assert pix == pytest.approx(1 - (1 - amount) ** 3, abs=0.004)
    assert set(np.unique(out)) <= {0, 128, 255}


def test_per_channel_salt_pepper_gives_coloured_pixels_like_skimage():
    img = np.full((500, 500, 3), 128, np.uint8)
    ours = salt_pepper_noise(img, amount=0.05, rng=8)
    ref = (random_noise(img, mode="s&p", amount=0.05, rng=9) * 255).round().astype(np.uint8)
    for out in (ours, ref):
        changed = out != 128
        partly = changed.any(axis=2) & ~changed.all(axis=2)
        assert partly.mean() > 0.1  # most noisy pixels change only some channels: coloured
    assert (ours != 128).mean() == pytest.approx((ref != 128).mean(), abs=0.002)
    assert (ours != 128).any(axis=2).mean() == pytest.approx((ref != 128).any(axis=2).mean(), abs=0.004)


def test_shared_mask_salt_pepper_gives_black_and_white_pixels():
    img = np.full((500, 500, 3), 128, np.uint8)
    out = salt_pepper_noise(img, amount=0.05, per_channel=False, rng=10)
    changed = (out != 128).any(axis=2)
    assert changed.mean() == pytest.approx(0.05, abs=0.003)
    hit = out[changed]
    assert ((hit == 0).all(axis=1) | (hit == 255).all(axis=1)).all()


def test_salt_pepper_extremes_and_float():
    img = np.full((20, 20, 3), 0.5, np.float32)
    np.testing.assert_array_equal(salt_pepper_noise(img, amount=0.0, rng=0), img)
    full = salt_pepper_noise(img, amount=1.0, salt_vs_pepper=1.0, rng=0)
    assert full.dtype == np.float32 and (full == 1.0).all()
    assert (salt_pepper_noise(img, amount=1.0, salt_vs_pepper=0.0, rng=0) == 0).all()


@given(st.integers(0, 5000), st.floats(0, 1), st.integers(0, 2**32 - 1))
@settings(max_examples=200, deadline=None)
def test_bernoulli_positions_are_sorted_unique_and_in_range(n, p, seed):
    idx = bernoulli_positions(n, p, rng=seed)
    assert idx.dtype == np.int64
    assert ((idx >= 0) & (idx < n)).all()
    assert (np.diff(idx) > 0).all()
    if p == 1.0:
        assert idx.size == n


def test_bernoulli_positions_are_an_iid_bernoulli_process():
    n, p = 200_000, 0.03
    counts = [bernoulli_positions(n, p, rng=s).size for s in range(200)]
    # counts ~ Binomial(n, p): compare mean and variance
    assert np.mean(counts) == pytest.approx(n * p, rel=0.003)
    assert np.var(counts) == pytest.approx(n * p * (1 - p), rel=0.3)
    idx = bernoulli_positions(n, p, rng=1)
    block = np.bincount(idx // 1000, minlength=n // 1000)
    assert stats.chisquare(block).pvalue > 1e-3  # uniform over the array


_shapes = st.one_of(
    st.tuples(st.integers(1, 16), st.integers(1, 16)),
    st.tuples(st.integers(1, 16), st.integers(1, 16), st.sampled_from([1, 3, 4])),
)
images = st.one_of(
    arrays(np.uint8, _shapes),
    arrays(np.float32, _shapes, elements=st.floats(0, 1, width=32)),
)


@given(images, st.integers(0, 2**32 - 1))
@settings(max_examples=100, deadline=None)
def test_noise_keeps_shape_dtype_range_and_never_touches_input(img, seed):
    before = img.copy()
    for out in (
        gaussian_noise(img, rng=seed),
        salt_pepper_noise(img, rng=seed),
        salt_pepper_noise(img, per_channel=False, rng=seed),
    ):
        assert out.shape == img.shape and out.dtype == img.dtype
        if out.dtype == np.float32:
            assert out.min() >= 0 and out.max() <= 1
    np.testing.assert_array_equal(img, before)


@pytest.mark.parametrize("p", [5e-324, 1e-300, 1e-20])
def test_bernoulli_positions_survive_tiny_probabilities(p):
    # numpy saturates geometric draws at the int64 maximum for tiny p; sums must not overflow.
    assert bernoulli_positions(10_000, p, rng=0).size == 0
