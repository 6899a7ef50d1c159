"""Sensor noise: additive Gaussian noise and salt-and-pepper (impulse) noise.

Both are exact samplers of the reference distributions (scikit-image's ``random_noise``
modes ``"gaussian"`` and ``"s&p"``), written for speed:

* Gaussian noise on uint8 images never materialises float noise. Rounding
  ``clip(v / 255 + n, 0, 1) * 255`` back to uint8 equals ``clip(v + D, 0, 255)`` with
  ``D = round(255 * n)``, an integer with a known discrete distribution. ``D`` is drawn by
  table lookup on 16 random bits; the ~0.3% of table cells that straddle two outcomes are
  resolved exactly with a fresh double-precision uniform, so the sample is exact, not an
  approximation.
* Salt and pepper marks each value independently with probability ``amount``, i.e. a
  Bernoulli process, whose gaps are geometric: drawing ``amount * N`` gaps instead of ``N``
  uniforms gives the same distribution at a fraction of the cost.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr

from keypoint_corrupt._validation import ImageArray, Seed, as_generator, check_float, check_image, max_value

__all__ = [
    "bernoulli_positions",
    "draw_gaussian_noise",
    "draw_salt_pepper",
    "gaussian_noise",
    "salt_pepper_noise",
]

_AMBIGUOUS = np.int16(-32768)
_OFFSETS = np.arange(-255, 256)  # beyond +-255 every uint8 value saturates, so D is clamped here


@functools.lru_cache(maxsize=32)
def _uint8_noise_table(
    mean: float, std: float, edge: float = 0.5
) -> tuple[npt.NDArray[np.int16], npt.NDArray[np.float64]]:
    """Inverse-CDF table of ``D = floor(255 * N(mean, std) + 1 - edge)`` clamped to [-255, 255].

    ``edge=0.5`` rounds to the nearest integer; ``edge=1.0`` truncates towards minus infinity
    (imagecorruptions' ``np.uint8(...)`` of a non-negative value). Returns ``(table, cdf)``:
    ``table[j]`` is the offset for uniforms in ``[j / 65536, (j + 1) / 65536)`` or
    ``_AMBIGUOUS`` when that interval spans two offsets.
    """
    cdf = ndtr(((_OFFSETS + edge) / 255.0 - mean) / std)
    cdf[-1] = 1.0
    edges = np.arange(65537, dtype=np.float64) / 65536.0
    first = np.searchsorted(cdf, edges[:-1], side="right")
    last = np.searchsorted(cdf, edges[1:], side="left")
    table = np.where(first == last, _OFFSETS[np.minimum(first, 510)], _AMBIGUOUS).astype(np.int16)
    table.setflags(write=False)
    cdf.setflags(write=False)
    return table, cdf


def _uint8_gaussian_offsets(
    size: int, mean: float, std: float, gen: np.random.Generator, edge: float = 0.5
) -> npt.NDArray[np.int16]:
    table, cdf = _uint8_noise_table(mean, std, edge)
    u = np.frombuffer(gen.bytes(2 * size), dtype=np.uint16)
    offsets = table.take(u)
    ambiguous = np.flatnonzero(offsets == _AMBIGUOUS)
    if ambiguous.size:
        fine = (u[ambiguous] + gen.random(ambiguous.size)) / 65536.0
        offsets[ambiguous] = _OFFSETS[np.minimum(np.searchsorted(cdf, fine, side="right"), 510)]
    return offsets


def gaussian_noise(
    image: ImageArray,
    *,
    var: float = 0.01,
    mean: float = 0.0,
    rng: Seed = None,
) -> ImageArray:
    """Add Gaussian noise to intensities on the [0, 1] scale and clip.

    Same distribution as ``skimage.util.random_noise(image, mode="gaussian", var=var,
    mean=mean)``: every value (every channel independently) gets ``N(mean, var)`` added on the
    [0, 1] scale and is clipped to [0, 1]; uint8 results are rounded back to 0-255.

    Parameters
    ----------
    image : numpy.ndarray
        uint8 or float32 (values in [0, 1]) image, HxW, HxWx1, HxWx3 or HxWx4. All channels,
        a fourth one included, are treated as intensities.
    var : float, default 0.01
        Variance on the [0, 1] scale (0.01 is a standard deviation of 25.5 grey levels).
    mean : float, default 0.0
        Mean of the noise on the [0, 1] scale, in [-1, 1].
    rng : numpy.random.Generator or int or None
        Source of randomness; an int seeds a fresh Generator, None uses OS entropy.

    Returns
    -------
    numpy.ndarray
        A new array of the same shape and dtype.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.full((480, 640, 3), 128, np.uint8)
    >>> out = gaussian_noise(img, var=0.01, rng=0)
    >>> round(float(out.std()) / 255, 2)
    0.1
    """
    check_image(image)
    noise = draw_gaussian_noise(image.shape, image.dtype, var=var, mean=mean, rng=rng)
    if image.dtype == np.uint8:
        out = image.astype(np.int16)
        out += noise.astype(np.int16, copy=False)
        np.clip(out, 0, 255, out=out)
        return out.astype(np.uint8)
    noise += image
    np.clip(noise, 0.0, 1.0, out=noise)
    return noise


def draw_gaussian_noise(
    shape: tuple[int, ...],
    dtype: npt.DTypeLike,
    *,
    var: float = 0.01,
    mean: float = 0.0,
    rng: Seed = None,
) -> npt.NDArray[np.int16] | npt.NDArray[np.float32]:
    """Draw the noise :func:`gaussian_noise` adds to an image of ``shape`` and ``dtype``.

    The draw step of :func:`gaussian_noise`, shared with the batched torch kernels: for uint8
    the integer offsets ``D`` (int16, added and clipped to 0..255), for float32 the noise on
    the [0, 1] scale (``N(mean, var)`` in float32, added and clipped to [0, 1]). For uint8
    with ``var == 0`` the offset is one int16 scalar and nothing is drawn.

    Examples
    --------
    >>> draw_gaussian_noise((4, 5, 3), np.uint8, rng=0).dtype
    dtype('int16')
    >>> draw_gaussian_noise((2, 2), np.float32, rng=0).shape
    (2, 2)
    """
    v = check_float(var, "var", low=0.0)
    m = check_float(mean, "mean", low=-1.0, high=1.0)
    gen = as_generator(rng)
    std = math.sqrt(v)
    if np.dtype(dtype) == np.uint8:
        if std == 0.0:
            return np.asarray(np.int16(np.round(255.0 * m)))
        return _uint8_gaussian_offsets(math.prod(shape), m, std, gen).reshape(shape)
    noise = gen.standard_normal(shape, dtype=np.float32)
    noise *= np.float32(std)
    noise += np.float32(m)
    return noise


def bernoulli_positions(n: int, p: float, rng: Seed = None) -> npt.NDArray[np.int64]:
    """Sorted indices in ``[0, n)`` each selected independently with probability ``p``.

    Sampled through the geometric gaps of the Bernoulli process, so the cost is
    proportional to the number of hits, ``p * n``, not to ``n``.

    Examples
    --------
    >>> idx = bernoulli_positions(1_000_000, 0.05, rng=0)
    >>> 49_000 < idx.size < 51_000
    True
    """
    gen = as_generator(rng)
    if n <= 0 or p <= 0.0:
        return np.zeros(0, dtype=np.int64)
    if p >= 1.0:
        return np.arange(n, dtype=np.int64)
    expected = n * p
    chunk = int(expected + 6.0 * math.sqrt(expected * (1.0 - p)) + 16)
    parts = []
    last = -1
    while True:
        # A gap past n ends the process; clamping keeps the running sum from overflowing
        # when p is tiny and numpy saturates the draws at the int64 maximum.
        gaps = np.minimum(gen.geometric(p, size=chunk), n + 1)
        hits = last + np.cumsum(gaps)
        if hits[-1] >= n:
            parts.append(hits[hits < n])
            break
        parts.append(hits)
        last = int(hits[-1])
    return np.concatenate(parts)


def salt_pepper_noise(
    image: ImageArray,
    *,
    amount: float = 0.05,
    salt_vs_pepper: float = 0.5,
    per_channel: bool = True,
    rng: Seed = None,
) -> ImageArray:
    """Replace random values with full scale (salt) or zero (pepper).

    With ``per_channel=True`` (the reference protocol) every channel value is hit
    independently with probability ``amount``, as scikit-image's ``mode="s&p"`` does, so noisy
    pixels show up red, green, blue or mixed (on RGB, about ``1 - (1 - amount)**3`` of the
    pixels change). With ``per_channel=False`` one mask is shared by all channels and hit
    pixels are pure black or white.

    Parameters
    ----------
    image : numpy.ndarray
        uint8 or float32 (values in [0, 1]) image, HxW, HxWx1, HxWx3 or HxWx4.
    amount : float, default 0.05
        Probability that a value (or pixel) is replaced, in [0, 1].
    salt_vs_pepper : float, default 0.5
        Fraction of replaced values that become salt (full scale), in [0, 1].
    per_channel : bool, default True
        Independent hits per channel value (True) or per pixel (False).
    rng : numpy.random.Generator or int or None
        Source of randomness.

    Returns
    -------
    numpy.ndarray
        A new array of the same shape and dtype.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.full((480, 640, 3), 128, np.uint8)
    >>> out = salt_pepper_noise(img, amount=0.05, rng=0)
    >>> round(float((out != 128).mean()), 2)
    0.05
    """
    check_image(image)
    hits, salt = draw_salt_pepper(
        image.shape, amount=amount, salt_vs_pepper=salt_vs_pepper, per_channel=per_channel, rng=rng
    )
    out: ImageArray = image.copy()
    flat: ImageArray = out.reshape(-1) if per_channel or out.ndim == 2 else out.reshape(-1, out.shape[2])
    flat[hits[salt]] = max_value(image)
    flat[hits[~salt]] = 0
    return out


def draw_salt_pepper(
    shape: tuple[int, ...],
    *,
    amount: float = 0.05,
    salt_vs_pepper: float = 0.5,
    per_channel: bool = True,
    rng: Seed = None,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """Draw what :func:`salt_pepper_noise` replaces in an image of ``shape``: positions and kinds.

    The draw step of :func:`salt_pepper_noise`, shared with the batched torch kernels.
    Returns ``(hits, salt)``: sorted flat positions into the image's values in C order
    (``per_channel=True`` or a 2-D shape) or into its pixels (``per_channel=False``), and
    for each whether it becomes salt (full scale) rather than pepper (zero).

    Examples
    --------
    >>> hits, salt = draw_salt_pepper((100, 100, 3), amount=0.05, rng=0)
    >>> hits.size == salt.size, bool(hits.max() < 30_000)
    (True, True)
    """
    a = check_float(amount, "amount", low=0.0, high=1.0)
    svp = check_float(salt_vs_pepper, "salt_vs_pepper", low=0.0, high=1.0)
    if not isinstance(per_channel, (bool, np.bool_)):
        raise TypeError(f"per_channel must be a bool, got {per_channel!r}")
    gen = as_generator(rng)
    n = math.prod(shape) if per_channel or len(shape) == 2 else math.prod(shape[:2])
    hits = bernoulli_positions(n, a, gen)
    salt = gen.random(hits.size) < svp
    return hits, salt
