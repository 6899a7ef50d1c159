"""ImageNet-C's noise corruptions: Gaussian, shot (Poisson), impulse (salt and pepper) and speckle.

With a ``numpy.random.RandomState`` every function but :func:`impulse_noise` makes exactly
imagecorruptions' draws on float64 ``HxWx3`` arrays and evaluates its formula in float64, so
the two agree bit for bit when seeded alike.

With a ``Generator`` (the default) uint8 images never materialise float noise: the result of
each value is ``np.uint8(clip(f(v, noise), 0, 1) * 255)``, an integer whose distribution
depends only on ``v``. Gaussian noise adds an integer offset drawn from the exact table of
:mod:`keypoint_corrupt.functional.noise`; shot and speckle noise draw the result from a
per-level Walker alias table (one random byte picks a bucket, a 16-bit word decides between
the bucket and its alias, a further uniform settles the 1/65536 of words that tie), so the
samples follow the reference distribution exactly (to float64 rounding), not approximately.
Float32 images get the same formulas in float32. The work runs a band of rows at a time; one
function per kernel makes one band's draws (``_gaussian_band``, ``_impulse_band``, ``_shot_band``,
``_speckle_band``), and the batched torch kernels (``keypoint_corrupt.torch``) call the same ones.

:func:`impulse_noise` goes through scikit-image's own generator in imagecorruptions (not
NumPy's global state), so it cannot be reproduced draw for draw; here every value is hit
independently with probability ``amount`` and turned to 0 or 255 with even odds, the same
distribution, for a ``Generator`` and a ``RandomState`` alike (the latter seeds a
``Generator`` from four of its draws).

Examples
--------
>>> import numpy as np
>>> img = np.full((64, 64, 3), 128, np.uint8)
>>> a = gaussian_noise(img, 3, rng=np.random.RandomState(0))
>>> b = gaussian_noise(img, 3, rng=np.random.RandomState(0))
>>> bool((a == b).all()), a.dtype
(True, dtype('uint8'))
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr, pdtr

from keypoint_corrupt._validation import ImageArray
from keypoint_corrupt.functional.imagenet_c._blocks import bands, new_result, store
from keypoint_corrupt.functional.imagenet_c._common import (
    Draws,
    RandomSource,
    as_draws,
    check_severity,
    run_rgb,
)
from keypoint_corrupt.functional.imagenet_c.params import PARAMS
from keypoint_corrupt.functional.noise import _uint8_gaussian_offsets

__all__ = ["gaussian_noise", "impulse_noise", "shot_noise", "speckle_noise"]

_LEVELS = np.arange(256)


def _unit(rgb: ImageArray) -> npt.NDArray[np.float64]:
    """Return the image on [0, 1] in float64, as imagecorruptions' ``np.array(x) / 255.``."""
    return np.divide(rgb, 255.0, dtype=np.float64)


class _AliasTables(NamedTuple):
    """Walker alias tables of 256 per-level distributions over the outcomes 0..255.

    For input level ``v`` and a uniform bucket ``j``, the outcome is ``j`` with probability
    ``keep[v, j]`` and ``alias[v, j]`` otherwise. ``keep`` is split into a 16-bit integer part
    ``threshold = floor(keep * 65536)`` and the ``fraction`` left over, so that a 16-bit random
    word decides all but the 1/65536 of draws that land exactly on the threshold.
    """

    threshold: npt.NDArray[np.uint16]
    fraction: npt.NDArray[np.float64]
    alias: npt.NDArray[np.uint8]


def _alias_tables(cdf: npt.NDArray[np.float64]) -> _AliasTables:
    """Build the alias tables of the distributions ``cdf[v, k] = P(out <= k | input v)`` (Vose's method)."""
    pmf = np.diff(cdf, axis=1, prepend=0.0)
    keep = np.ones((256, 256))
    alias = np.tile(np.arange(256, dtype=np.uint8), (256, 1))
    for v in range(256):
        scaled = (pmf[v] * 256).tolist()
        small = [j for j in range(256) if scaled[j] < 1.0]
        large = [j for j in range(256) if scaled[j] >= 1.0]
        while small and large:
            less, more = small.pop(), large.pop()
            keep[v, less] = scaled[less]
            alias[v, less] = more
            scaled[more] = (scaled[more] + scaled[less]) - 1.0
            (small if scaled[more] < 1.0 else large).append(more)
        # What is left over holds probability 1 (up to rounding): it keeps its own outcome.
    scaled_keep = keep * 65536.0
    threshold = np.minimum(np.floor(scaled_keep), 65535)
    fraction = scaled_keep - threshold
    tables = _AliasTables(threshold.astype(np.uint16), fraction, alias)
    for table in tables:
        table.setflags(write=False)
    return tables


def _sample_levels(rgb: npt.NDArray[np.uint8], tables: _AliasTables, gen: np.random.Generator) -> ImageArray:
    """Draw once per value of ``rgb`` from its level's distribution, by the alias method."""
    levels = rgb.reshape(-1)
    buckets = gen.integers(0, 256, size=levels.size, dtype=np.uint8)
    words = gen.integers(0, 1 << 16, size=levels.size, dtype=np.uint16)
    index = levels.astype(np.uint16)
    index <<= 8
    index |= buckets
    threshold = tables.threshold.reshape(-1).take(index)
    keep = words < threshold
    edge = np.flatnonzero(words == threshold)
    keep[edge] = gen.random(edge.size) < tables.fraction.reshape(-1).take(index[edge])
    # outcome = bucket where kept, else alias; branch-free (np.where is slow on random masks)
    outcome = tables.alias.reshape(-1).take(index)
    buckets ^= outcome
    buckets &= keep.view(np.uint8) * np.uint8(255)
    outcome ^= buckets
    return outcome.reshape(rgb.shape)


@functools.lru_cache(maxsize=5)
def _shot_tables(photons: int) -> _AliasTables:
    """Per-level table of ``np.uint8(clip(Poisson(v / 255 * photons) / photons, 0, 1) * 255)``."""
    counts = np.arange(photons + 1)
    outcome = (np.clip(counts / float(photons), 0, 1) * 255).astype(np.uint8)  # the reference's arithmetic
    # Largest count whose outcome is <= k; counts >= photons all give 255.
    top_count = np.searchsorted(outcome[:-1], _LEVELS, side="right") - 1
    lam = (_LEVELS / 255.0 * photons)[:, None]
    cdf = pdtr(top_count[None, :], lam)
    cdf[:, -1] = 1.0
    return _alias_tables(cdf)


@functools.lru_cache(maxsize=5)
def _speckle_tables(scale: float) -> _AliasTables:
    """Per-level table of ``np.uint8(clip(v + v * N(0, scale), 0, 255))`` (0 stays 0)."""
    v = np.maximum(_LEVELS, 1)[:, None].astype(np.float64)
    # out <= k  <=>  v * (1 + n) < k + 1
    cdf = ndtr(((_LEVELS[None, :] + 1) / v - 1.0) / scale)
    cdf[0] = 1.0
    cdf[:, -1] = 1.0
    return _alias_tables(cdf)


def _generator(draws: Draws) -> np.random.Generator:
    """Return the ``Generator`` to draw from; a ``RandomState`` seeds one with four of its draws."""
    if draws.gen is not None:
        return draws.gen
    return np.random.default_rng(draws.randint(0, 1 << 32, 4))


def _banded(rgb: ImageArray, sample: Callable[[ImageArray], ImageArray]) -> ImageArray:
    """Apply ``sample`` (values on the 0..255 scale) to bands of rows of ``rgb``, into a new result.

    Per-band temporaries stay small and cached (see ``_blocks``); the draws are independent, so
    drawing band by band samples the same distribution.
    """
    out = new_result(rgb)
    for rows in bands(rgb.shape[0]):
        values = sample(rgb[rows])
        if values.dtype == np.uint8:
            out[rows] = values
        else:
            store(values, out[rows])
    return out


def _gaussian_band(
    shape: tuple[int, ...], dtype: np.dtype[Any], scale: float, gen: np.random.Generator
) -> npt.NDArray[Any]:
    """One band's draws: int16 level offsets for uint8 (``floor(255 n)``), else float32 standard normals."""
    if dtype == np.uint8:
        return _uint8_gaussian_offsets(math.prod(shape), 0.0, scale, gen, edge=1.0).reshape(shape)
    return gen.standard_normal(shape, dtype=np.float32)


def _impulse_band(
    shape: tuple[int, ...], amount: float, gen: np.random.Generator
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """One band's draws: ``(hit, salt)``, salt only where hit.

    Every value is hit with probability ``amount`` (one random byte thresholded; the byte equal
    to the threshold's integer part is split by a further uniform, so the probability is
    exact) and is then salt or pepper by a second byte. At ImageNet-C's amounts this beats
    drawing the gaps of the Bernoulli process (functional.noise.bernoulli_positions).
    """
    threshold = amount * 256.0
    whole = int(threshold)
    draw = gen.integers(0, 256, size=shape, dtype=np.uint8)
    hit = draw < whole
    edge = np.flatnonzero(draw == whole)
    hit.reshape(-1)[edge] = gen.random(edge.size) < threshold - whole
    salt = gen.integers(0, 256, size=shape, dtype=np.uint8) < 128
    salt &= hit
    return hit, salt


def _shot_band(part: ImageArray, photons: int, gen: np.random.Generator) -> npt.NDArray[Any]:
    """One band's draws: the final uint8 levels (alias tables), else float Poisson counts."""
    if part.dtype == np.uint8:
        return _sample_levels(part, _shot_tables(photons), gen)
    return gen.poisson(_unit(part) * photons)


def _speckle_band(part: ImageArray, scale: float, gen: np.random.Generator) -> npt.NDArray[Any]:
    """One band's draws: the final uint8 levels (alias tables), else float32 standard normals."""
    if part.dtype == np.uint8:
        return _sample_levels(part, _speckle_tables(scale), gen)
    return gen.standard_normal(part.shape, dtype=np.float32)


def _gaussian_kernel(rgb: ImageArray, scale: float, draws: Draws) -> ImageArray:
    if draws.legacy:
        x = _unit(rgb)
        return np.clip(x + draws.normal(0.0, scale, x.shape), 0, 1) * 255
    gen = _generator(draws)

    def sample(part: ImageArray) -> ImageArray:
        noise: ImageArray = _gaussian_band(part.shape, part.dtype, scale, gen)
        if part.dtype == np.uint8:
            # np.uint8(clip(v / 255 + n, 0, 1) * 255) == clip(v + floor(255 n), 0, 255)
            noise += part
            levels: ImageArray = np.clip(noise, 0, 255).astype(np.uint8)
            return levels
        noise *= np.float32(255.0 * scale)
        noise += part
        return noise

    return _banded(rgb, sample)


def _shot_kernel(rgb: ImageArray, photons: int, draws: Draws) -> ImageArray:
    if draws.legacy:
        return np.clip(draws.poisson(_unit(rgb) * photons) / float(photons), 0, 1) * 255
    gen = _generator(draws)
    if rgb.dtype == np.uint8:
        return _banded(rgb, lambda part: _shot_band(part, photons, gen))
    return _banded(rgb, lambda part: _shot_band(part, photons, gen) * (255.0 / photons))


def _impulse_kernel(rgb: ImageArray, amount: float, draws: Draws) -> ImageArray:
    gen = _generator(draws)

    def sample(part: ImageArray) -> ImageArray:
        hit, salt = _impulse_band(part.shape, amount, gen)
        # Branch-free select: np.where and masked copies are several times slower here.
        out: ImageArray = part * ~hit
        out += salt.view(np.uint8) * np.uint8(255) if out.dtype == np.uint8 else salt * np.float32(255.0)
        return out

    return _banded(rgb, sample)


def _speckle_kernel(rgb: ImageArray, scale: float, draws: Draws) -> ImageArray:
    if draws.legacy:
        x = _unit(rgb)
        return np.clip(x + x * draws.normal(0.0, scale, x.shape), 0, 1) * 255
    gen = _generator(draws)
    if rgb.dtype == np.uint8:
        return _banded(rgb, lambda part: _speckle_band(part, scale, gen))

    def sample(part: ImageArray) -> ImageArray:
        noise = _speckle_band(part, scale, gen)
        noise *= np.float32(scale)
        noise += np.float32(1.0)
        noise *= part
        return noise

    return _banded(rgb, sample)


def gaussian_noise(image: ImageArray, severity: int, rng: RandomSource = None) -> ImageArray:
    """Additive Gaussian noise: ``clip(x + N(0, c), 0, 1)`` on the [0, 1] scale, per value.

    ``c`` is 0.08, 0.12, 0.18, 0.26 or 0.38 (severities 1 to 5). Bit-exact with
    imagecorruptions given a ``RandomState``; an exact sample of the same distribution with a
    ``Generator``.

    Parameters
    ----------
    image : numpy.ndarray
        uint8 or float32 (values in [0, 1]) image, HxW, HxWx1, HxWx3 or HxWx4.
    severity : int
        1 to 5.
    rng : int, numpy.random.Generator, numpy.random.RandomState or None
        Source of randomness (see :mod:`keypoint_corrupt.functional.imagenet_c`).

    Returns
    -------
    numpy.ndarray
        A new array of the same shape and dtype.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.full((480, 640, 3), 128, np.uint8)
    >>> round(float(gaussian_noise(img, 1, rng=0).std()) / 255, 2)
    0.08
    """
    params = PARAMS["gaussian_noise"][check_severity(severity) - 1]
    return run_rgb(image, _gaussian_kernel, params, as_draws(rng))


def shot_noise(image: ImageArray, severity: int, rng: RandomSource = None) -> ImageArray:
    """Photon (Poisson) noise: ``Poisson(x * c) / c`` on the [0, 1] scale, clipped, per value.

    ``c``, the photons per unit intensity, is 60, 25, 12, 5 or 3 (severities 1 to 5).
    Bit-exact with imagecorruptions given a ``RandomState``; an exact sample of the same
    distribution with a ``Generator``.

    Parameters
    ----------
    image : numpy.ndarray
        uint8 or float32 (values in [0, 1]) image, HxW, HxWx1, HxWx3 or HxWx4.
    severity : int
        1 to 5.
    rng : int, numpy.random.Generator, numpy.random.RandomState or None
        Source of randomness.

    Returns
    -------
    numpy.ndarray
        A new array of the same shape and dtype.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.full((480, 640, 3), 255, np.uint8)
    >>> out = shot_noise(img, 5, rng=0)  # 3 photons: 0, 85, 170 or 255
    >>> sorted(np.unique(out).tolist())
    [0, 85, 170, 255]
    """
    params = PARAMS["shot_noise"][check_severity(severity) - 1]
    return run_rgb(image, _shot_kernel, params, as_draws(rng))


def impulse_noise(image: ImageArray, severity: int, rng: RandomSource = None) -> ImageArray:
    """Salt-and-pepper noise: each value becomes 0 or full scale with probability ``c``.

    ``c`` is 0.03, 0.06, 0.09, 0.17 or 0.27 (severities 1 to 5), and salt and pepper are
    equally likely, as scikit-image's ``random_noise(mode="s&p")`` that imagecorruptions
    calls. That call draws from scikit-image's own generator, so this function matches its
    distribution, not its draws, whatever ``rng`` is.

    Parameters
    ----------
    image : numpy.ndarray
        uint8 or float32 (values in [0, 1]) image, HxW, HxWx1, HxWx3 or HxWx4.
    severity : int
        1 to 5.
    rng : int, numpy.random.Generator, numpy.random.RandomState or None
        Source of randomness.

    Returns
    -------
    numpy.ndarray
        A new array of the same shape and dtype.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.full((480, 640, 3), 128, np.uint8)
    >>> round(float((impulse_noise(img, 5, rng=0) != 128).mean()), 2)
    0.27
    """
    params = PARAMS["impulse_noise"][check_severity(severity) - 1]
    return run_rgb(image, _impulse_kernel, params, as_draws(rng))


def speckle_noise(image: ImageArray, severity: int, rng: RandomSource = None) -> ImageArray:
    """Multiplicative noise: ``clip(x + x * N(0, c), 0, 1)`` on the [0, 1] scale, per value.

    ``c`` is 0.15, 0.2, 0.35, 0.45 or 0.6 (severities 1 to 5). Bit-exact with imagecorruptions
    given a ``RandomState``; an exact sample of the same distribution with a ``Generator``.

    Parameters
    ----------
    image : numpy.ndarray
        uint8 or float32 (values in [0, 1]) image, HxW, HxWx1, HxWx3 or HxWx4.
    severity : int
        1 to 5.
    rng : int, numpy.random.Generator, numpy.random.RandomState or None
        Source of randomness.

    Returns
    -------
    numpy.ndarray
        A new array of the same shape and dtype.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.zeros((32, 32, 3), np.uint8)
    >>> int(speckle_noise(img, 5, rng=0).max())  # black stays black
    0
    """
    params = PARAMS["speckle_noise"][check_severity(severity) - 1]
    return run_rgb(image, _speckle_kernel, params, as_draws(rng))
