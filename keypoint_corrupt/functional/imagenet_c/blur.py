"""ImageNet-C blurs: defocus, glass, motion, zoom and Gaussian blur.

All five are bit-exact to imagecorruptions 1.1.2 on uint8 input (the same floating-point
operations in the same order; see :mod:`._blur_jit`), and faster:

* ``defocus_blur``: the same OpenCV call as the reference (``cv2.filter2D`` of ``image / 255``
  in float64 with the anti-aliased disk), once on the three channels instead of per channel.
* ``gaussian_blur`` and the two Gaussian passes of ``glass_blur``: a compiled copy of scipy's
  ``gaussian_filter`` (``mode="nearest"``, truncate 4) with the clip, scale and truncation fused.
* ``glass_blur``: the sequential pixel moves compiled, their offsets drawn in one call per
  iteration (for a ``RandomState`` the same stream as imagecorruptions' per-pixel
  ``randint(-d, d, size=(2,))`` calls).
* ``motion_blur``: one compiled pass over the taps instead of ``2 * radius + 1`` ``np.roll``
  copies.
* ``zoom_blur``: the order-1 zooms of all the centre crops computed and summed in one compiled
  pass, from scipy's own coordinate mapping and weights.

Float input (float32 in [0, 1]) runs the same arithmetic on ``image * 255``, without the
reference's intermediate uint8 rounding in ``glass_blur`` (which exists only because the
reference works in uint8); the result is returned as float32 in [0, 1].

:func:`motion_blur_layer` and :func:`clipped_zoom` are imagecorruptions' ``_motion_blur`` and
``clipped_zoom`` helpers, exact, for the weather corruptions.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import numpy.typing as npt

from keypoint_corrupt._validation import ImageArray
from keypoint_corrupt.functional.imagenet_c._common import (
    Draws,
    RandomSource,
    as_draws,
    check_severity,
    run_rgb,
)
from keypoint_corrupt.functional.imagenet_c.params import PARAMS

__all__ = ["defocus_blur", "gaussian_blur", "glass_blur", "motion_blur", "zoom_blur"]

FloatArray = npt.NDArray[np.floating]
IntArray = npt.NDArray[np.int64]


# ---------------------------------------------------------------------------------------------
# Shared pieces


def _unit_f64(rgb: ImageArray) -> npt.NDArray[np.float64]:
    # image / 255 in float64, as the reference's np.array(x) / 255.
    return np.divide(rgb, 255.0, dtype=np.float64)


def _gaussian_half_kernel(sigma: float) -> npt.NDArray[np.float64]:
    # scipy.ndimage.gaussian_filter1d's weights (truncate 4.0) from the centre outwards, made
    # with the same NumPy operations so that they are the same doubles.
    radius = int(4.0 * float(sigma) + 0.5)
    taps = np.arange(-radius, radius + 1)
    phi = np.exp(-0.5 / (sigma * sigma) * taps**2)
    phi = phi / phi.sum()
    return np.ascontiguousarray(phi[radius:])


def _gaussian_255(rgb: ImageArray, sigma: float) -> ImageArray:
    """``gaussian(rgb / 255, sigma) * 255``: clipped and truncated to uint8 for uint8 input, else float64."""
    from keypoint_corrupt.functional.imagenet_c import _blur_jit

    half = _gaussian_half_kernel(sigma)
    if rgb.dtype == np.uint8:
        out: ImageArray = _blur_jit.gaussian_u8(np.ascontiguousarray(rgb), half)
        return out
    blurred: ImageArray = _blur_jit.gaussian_f64(_unit_f64(rgb), half)
    return blurred * 255.0


# ---------------------------------------------------------------------------------------------
# Gaussian blur


def _gaussian_blur_kernel(rgb: ImageArray, sigma: float, draws: Draws) -> ImageArray:
    return _gaussian_255(rgb, sigma)


def gaussian_blur(image: ImageArray, severity: int, rng: RandomSource = None) -> ImageArray:
    """Gaussian blur of ImageNet-C (an extra): sigma 1, 2, 3, 4, 6 pixels.

    Bit-exact to imagecorruptions' ``gaussian_blur`` (scikit-image's ``gaussian`` on
    ``image / 255``, borders replicated). Nothing is random; ``rng`` is only validated.

    Parameters
    ----------
    image : numpy.ndarray
        uint8 or float32 (values in [0, 1]) image, HxW, HxWx1, HxWx3 or HxWx4.
    severity : int
        1 to 5.
    rng : int, numpy.random.Generator, numpy.random.RandomState or None
        Unused (the corruption is deterministic).

    Returns
    -------
    numpy.ndarray
        A new array of the same shape and dtype.

    Examples
    --------
    >>> img = np.zeros((32, 32), np.uint8); img[16, 16] = 255
    >>> out = gaussian_blur(img, 1)
    >>> int(out[16, 16]), int(out[16, 17]), int(out[16, 20])
    (40, 24, 0)
    """
    sigma = PARAMS["gaussian_blur"][check_severity(severity) - 1]
    return run_rgb(image, _gaussian_blur_kernel, sigma, as_draws(rng))


# ---------------------------------------------------------------------------------------------
# Glass blur


def _glass_offsets(draws: Draws, max_delta: int, count: int) -> npt.NDArray[np.integer]:
    # One (dx, dy) per visited pixel. RandomState: a single randint call of shape (count, 2)
    # yields the same numbers as imagecorruptions' count calls of shape (2,) (legacy bounded
    # integers take one 32-bit output per try and buffer nothing between calls).
    if draws.gen is not None:
        return draws.gen.integers(-max_delta, max_delta, size=(count, 2), dtype=np.int8)
    offsets: npt.NDArray[np.integer] = draws.randint(-max_delta, max_delta, (count, 2))
    return offsets


def _glass_blur_kernel(rgb: ImageArray, params: tuple[float, int, int], draws: Draws) -> ImageArray:
    sigma, max_delta, iterations = params
    # uint8 input: the first blur is truncated to uint8 as in the reference; float input: kept.
    work = _gaussian_255(rgb, sigma)
    glass_moves(work, max_delta, iterations, draws)
    return _gaussian_255(work, sigma)


def glass_moves(work: ImageArray, max_delta: int, iterations: int, draws: Draws) -> None:
    """Glass blur's random pixel moves on ``work`` (HxWxC, C-contiguous), in place: its draw step.

    Draws the offsets of each iteration and applies them, as the CPU kernel and the torch kernel
    both do (the moves are sequential: one pixel's source may be a pixel moved just before).

    Examples
    --------
    >>> work = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
    >>> glass_moves(work, 1, 1, as_draws(0))  # rows and columns 2..3 take a neighbour's value
    >>> work.shape, bool((work[0] == np.arange(12).reshape(4, 3)).all())
    ((4, 4, 3), True)
    """
    from keypoint_corrupt.functional.imagenet_c import _blur_jit

    height, width = work.shape[:2]
    visits = max(height - 2 * max_delta, 0) * max(width - 2 * max_delta, 0)
    for _ in range(iterations):
        _blur_jit.glass_shuffle(work, _glass_offsets(draws, max_delta, visits), max_delta)


def glass_blur(image: ImageArray, severity: int, rng: RandomSource = None) -> ImageArray:
    """Glass blur of ImageNet-C: Gaussian blur, local pixel moves, Gaussian blur again.

    Parameters (sigma, maximum offset d, iterations) per severity: (0.7, 1, 2), (0.9, 2, 1),
    (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2). Each iteration visits the pixels from the bottom
    right to the top left (``d`` pixels in from the border) and copies into each the pixel at
    a random offset in ``[-d, d)`` in x and y; the pixel it was copied from keeps its value
    (imagecorruptions' "swap" of two NumPy views is a copy, and this reproduces it).

    Bit-exact to imagecorruptions' ``glass_blur`` for uint8 input and a ``RandomState``
    seeded like NumPy's global state. For float input the intermediate uint8 rounding of the
    reference is skipped.

    Parameters
    ----------
    image : numpy.ndarray
        uint8 or float32 (values in [0, 1]) image, HxW, HxWx1, HxWx3 or HxWx4.
    severity : int
        1 to 5.
    rng : int, numpy.random.Generator, numpy.random.RandomState or None
        Source of the pixel offsets (see :func:`keypoint_corrupt.functional.imagenet_c.as_draws`).

    Returns
    -------
    numpy.ndarray
        A new array of the same shape and dtype.

    Examples
    --------
    >>> img = np.full((32, 32, 3), 90, np.uint8)
    >>> glass_blur(img, 3, rng=0).shape
    (32, 32, 3)
    >>> a = glass_blur(np.arange(1024, dtype=np.uint8).reshape(32, 32), 5, rng=1)
    >>> bool((a == glass_blur(np.arange(1024, dtype=np.uint8).reshape(32, 32), 5, rng=1)).all())
    True
    """
    params = PARAMS["glass_blur"][check_severity(severity) - 1]
    return run_rgb(image, _glass_blur_kernel, params, as_draws(rng))


# ---------------------------------------------------------------------------------------------
# Defocus blur


def _defocus_disk(radius: int, alias_sigma: float) -> npt.NDArray[np.float32]:
    # imagecorruptions' disk(): a 0/1 disk of the radius on a grid of at least 17 x 17,
    # normalised to sum 1 in float32, then anti-aliased with a small Gaussian.
    half = max(radius, 8)
    axis = np.arange(-half, half + 1)
    inside = axis[:, None] ** 2 + axis[None, :] ** 2 <= radius**2
    disk = inside.astype(np.float32) / np.float32(np.count_nonzero(inside))
    size = 3 if radius <= 8 else 5
    kernel: npt.NDArray[np.float32] = cv2.GaussianBlur(disk, ksize=(size, size), sigmaX=alias_sigma)
    return kernel


def _defocus_blur_kernel(rgb: ImageArray, params: tuple[int, float], draws: Draws) -> ImageArray:
    # One filter2D over the three channels gives the reference's per-channel results bit for
    # bit (checked in the tests); OpenCV filters this kernel size in the frequency domain.
    blurred: ImageArray = cv2.filter2D(_unit_f64(rgb), -1, _defocus_disk(*params))
    blurred *= 255.0
    return blurred


def defocus_blur(image: ImageArray, severity: int, rng: RandomSource = None) -> ImageArray:
    """Defocus blur of ImageNet-C: convolution with an anti-aliased disk.

    Disk radius and anti-aliasing sigma per severity: (3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5),
    (10, 0.5). Borders are reflected (OpenCV's default). Bit-exact to imagecorruptions'
    ``defocus_blur``, with the same OpenCV call. Nothing is random; ``rng`` is only validated.

    Parameters
    ----------
    image : numpy.ndarray
        uint8 or float32 (values in [0, 1]) image, HxW, HxWx1, HxWx3 or HxWx4.
    severity : int
        1 to 5.
    rng : int, numpy.random.Generator, numpy.random.RandomState or None
        Unused (the corruption is deterministic).

    Returns
    -------
    numpy.ndarray
        A new array of the same shape and dtype.

    Examples
    --------
    The anti-aliasing blurs the disk against the edge of its grid at radius 8 and 10 and
    adds weight there, so those severities brighten flat areas by about 1%, as the reference
    does:

    >>> img = np.full((32, 32, 3), 200, np.uint8)
    >>> [int(defocus_blur(img, s)[16, 16, 0]) for s in (1, 2, 3, 4, 5)]
    [199, 199, 199, 202, 202]
    """
    params = PARAMS["defocus_blur"][check_severity(severity) - 1]
    return run_rgb(image, _defocus_blur_kernel, params, as_draws(rng))


# ---------------------------------------------------------------------------------------------
# Motion blur


def _motion_taps(
    radius: int, sigma: float, angle_degrees: float, height: int, width: int
) -> tuple[IntArray, npt.NDArray[np.float64]]:
    # imagecorruptions' _motion_blur taps: 2 * radius + 1 one-sided Gaussian weights along a line
    # at the angle, copy i shifted by (dy, dx) rounded from i steps of unit length; taps stop at
    # the first shift that reaches the image size. Same NumPy operations, same doubles.
    count = 2 * radius + 1
    steps = np.arange(count)
    weights = np.exp(-(steps**2) / (2 * (sigma**2))) / (np.sqrt(2 * np.pi) * sigma)
    weights = weights / np.sum(weights)
    end = (count * np.sin(np.deg2rad(angle_degrees)), count * np.cos(np.deg2rad(angle_degrees)))
    length = math.hypot(end[0], end[1])
    dy = -np.ceil(steps * end[0] / length - 0.5).astype(np.int64)
    dx = -np.ceil(steps * end[1] / length - 0.5).astype(np.int64)
    outside = np.flatnonzero((np.abs(dy) >= height) | (np.abs(dx) >= width))
    kept = int(outside[0]) if outside.size else count
    return np.stack([dy[:kept], dx[:kept]], axis=1), np.ascontiguousarray(weights[:kept])


def motion_blur_layer(
    image: npt.NDArray[np.generic], radius: int, sigma: float, angle_degrees: float
) -> npt.NDArray[np.float64]:
    """Motion-blur a layer exactly as imagecorruptions' ``_motion_blur(x, radius, sigma, angle)``.

    The sum of ``2 * radius + 1`` copies of ``image`` shifted along a line at
    ``angle_degrees`` (copy ``i`` about ``i`` pixels back along it, borders replicated),
    weighted by a one-sided Gaussian of ``sigma`` taps normalised to sum 1; copies whose shift
    reaches the image size are left out, as in the reference.

    Parameters
    ----------
    image : numpy.ndarray
        HxW or HxWxC array, uint8 or float.
    radius : int
        Number of taps is ``2 * radius + 1``.
    sigma : float
        Gaussian sigma, in taps.
    angle_degrees : float
        Direction of the motion.

    Returns
    -------
    numpy.ndarray
        float64 array of the shape of ``image``.

    Examples
    --------
    At angle 0 copy ``i`` is shifted ``i`` pixels to the left, so a dot leaves a fading trail
    to its left:

    >>> img = np.zeros((32, 32)); img[16, 16] = 1.0
    >>> out = motion_blur_layer(img, 3, 2.0, 0.0)
    >>> [round(float(v), 3) for v in out[16, 9:18]]
    [0.0, 0.004, 0.015, 0.045, 0.108, 0.202, 0.294, 0.333, 0.0]
    """
    from keypoint_corrupt.functional.imagenet_c import _blur_jit

    if image.ndim not in (2, 3):
        raise ValueError(f"image must be HxW or HxWxC, got shape {image.shape}")
    if radius < 0 or not sigma > 0:
        raise ValueError(f"radius must be >= 0 and sigma > 0, got radius={radius!r}, sigma={sigma!r}")
    shifts, weights = _motion_taps(radius, sigma, angle_degrees, image.shape[0], image.shape[1])
    stack = np.ascontiguousarray(image.reshape(image.shape[0], image.shape[1], -1))
    out: npt.NDArray[np.float64] = _blur_jit.motion_sum_f64(stack, shifts, weights)
    return out.reshape(image.shape)


def motion_angle(draws: Draws) -> float:
    """Draw motion_blur's angle, uniform in [-45, 45) degrees (shared with the torch kernel).

    Examples
    --------
    >>> -45 <= motion_angle(as_draws(0)) < 45
    True
    """
    return float(draws.uniform(-45, 45))


def _motion_blur_kernel(rgb: ImageArray, params: tuple[int, float], draws: Draws) -> ImageArray:
    from keypoint_corrupt.functional.imagenet_c import _blur_jit

    radius, sigma = params
    angle = motion_angle(draws)
    if rgb.dtype != np.uint8:
        return motion_blur_layer(rgb, radius, sigma, angle)
    shifts, weights = _motion_taps(radius, sigma, angle, rgb.shape[0], rgb.shape[1])
    out: ImageArray = _blur_jit.motion_sum_u8(np.ascontiguousarray(rgb), shifts, weights)
    return out


def motion_blur(image: ImageArray, severity: int, rng: RandomSource = None) -> ImageArray:
    """Motion blur of ImageNet-C: a one-sided Gaussian streak at a random angle.

    (radius, sigma) per severity: (10, 3), (15, 5), (15, 8), (15, 12), (20, 15); the angle is
    drawn uniformly in [-45, 45) degrees (one ``uniform`` call). See
    :func:`motion_blur_layer`. Bit-exact to imagecorruptions' ``motion_blur`` for uint8 input
    and a ``RandomState`` seeded like NumPy's global state.

    Parameters
    ----------
    image : numpy.ndarray
        uint8 or float32 (values in [0, 1]) image, HxW, HxWx1, HxWx3 or HxWx4.
    severity : int
        1 to 5.
    rng : int, numpy.random.Generator, numpy.random.RandomState or None
        Source of the angle.

    Returns
    -------
    numpy.ndarray
        A new array of the same shape and dtype.

    Examples
    --------
    >>> img = np.zeros((40, 40, 3), np.uint8); img[:, 20:] = 255
    >>> out = motion_blur(img, 2, rng=np.random.RandomState(0))
    >>> out.shape, int(out[20, 5, 0]), 0 < int(out[20, 19, 0]) < 255, int(out[20, 35, 0])
    ((40, 40, 3), 0, True, 255)
    """
    params = PARAMS["motion_blur"][check_severity(severity) - 1]
    return run_rgb(image, _motion_blur_kernel, params, as_draws(rng))


# ---------------------------------------------------------------------------------------------
# Zoom blur


def _zoom_axis(out_len: int, in_len: int, offset: int) -> tuple[IntArray, npt.NDArray[np.float64]]:
    # scipy.ndimage.zoom (order 1, grid_mode False) along one axis: output k samples input
    # k * (in - 1) / (out - 1); weights 1 - t and 1 - (1 - t) as scipy computes them; a
    # coordinate past in - 1 (rounding) is outside ("constant" mode: the output is 0).
    scale = (in_len - 1) / (out_len - 1) if out_len > 1 else 1.0
    coords = np.arange(out_len) * scale
    valid = coords <= in_len - 1
    start = np.floor(np.where(valid, coords, 0.0))
    near = 1.0 - (coords - start)
    table = np.empty((out_len, 3), np.int64)
    table[:, 0] = start.astype(np.int64) + offset
    table[:, 1] = np.minimum(start.astype(np.int64) + 1, in_len - 1) + offset
    table[:, 2] = valid
    weights = np.stack([near, 1.0 - near], axis=1)
    return table, weights


def _crop_and_size(length: int, factor: float) -> tuple[int, int, int]:
    # clipped_zoom's centre crop (start, length) and the zoomed length scipy gives it.
    crop = int(np.ceil(length / float(factor)))
    return (length - crop) // 2, crop, round(crop * float(factor))


def clipped_zoom(image: FloatArray, factor: float) -> FloatArray:
    """Zoom the centre ``1/factor`` crop by ``factor``, exactly as imagecorruptions' ``clipped_zoom``.

    ``scipy.ndimage.zoom(crop, (factor, factor[, 1]), order=1)``, bit-exact: the output has
    ``round(crop * factor)`` rows and columns (at least the image's, usually one or two more;
    the caller crops) and the dtype of ``image``.

    Parameters
    ----------
    image : numpy.ndarray
        HxW or HxWxC float32 or float64 array.
    factor : float
        Zoom factor, >= 1.

    Returns
    -------
    numpy.ndarray
        The zoomed crop.

    Examples
    --------
    The centre 2 x 2 of a 4 x 4 ramp, zoomed back to 4 x 4 (corners on corners):

    >>> img = np.arange(16, dtype=np.float32).reshape(4, 4)
    >>> np.round(clipped_zoom(img, 2.0), 2)
    array([[ 5.  ,  5.33,  5.67,  6.  ],
           [ 6.33,  6.67,  7.  ,  7.33],
           [ 7.67,  8.  ,  8.33,  8.67],
           [ 9.  ,  9.33,  9.67, 10.  ]], dtype=float32)
    """
    from keypoint_corrupt.functional.imagenet_c import _blur_jit

    if image.dtype not in (np.float32, np.float64) or image.ndim not in (2, 3):
        raise TypeError(
            f"image must be an HxW or HxWxC float32/float64 array, got {image.dtype} {image.shape}"
        )
    if not factor >= 1:  # a crop larger than the image is not defined
        raise ValueError(f"factor must be >= 1, got {factor!r}")
    top, crop_h, out_h = _crop_and_size(image.shape[0], factor)
    left, crop_w, out_w = _crop_and_size(image.shape[1], factor)
    rows, row_weights = _zoom_axis(out_h, crop_h, top)
    cols, col_weights = _zoom_axis(out_w, crop_w, left)
    stack = np.ascontiguousarray(image.reshape(image.shape[0], image.shape[1], -1))
    out = np.empty((out_h, out_w, stack.shape[2]), image.dtype)
    _blur_jit.zoom_linear(stack, rows, row_weights, cols, col_weights, out)
    return out if image.ndim == 3 else out[:, :, 0]


def _zoom_tables(
    height: int, width: int, factors: tuple[float, ...]
) -> tuple[IntArray, npt.NDArray[np.float64], IntArray, npt.NDArray[np.float64], IntArray]:
    # Every layer's row and column tables, cut to the image (zoom_blur keeps [:H, :W]).
    rows = np.zeros((len(factors), height, 3), np.int64)
    row_weights = np.zeros((len(factors), height, 2))
    cols = np.zeros((len(factors), width, 3), np.int64)
    col_weights = np.zeros((len(factors), width, 2))
    sizes = np.zeros((len(factors), 2), np.int64)
    for k, factor in enumerate(factors):
        top, crop_h, out_h = _crop_and_size(height, factor)
        left, crop_w, out_w = _crop_and_size(width, factor)
        sizes[k] = min(out_h, height), min(out_w, width)
        table, weights = _zoom_axis(out_h, crop_h, top)
        rows[k, : sizes[k, 0]], row_weights[k, : sizes[k, 0]] = table[:height], weights[:height]
        table, weights = _zoom_axis(out_w, crop_w, left)
        cols[k, : sizes[k, 1]], col_weights[k, : sizes[k, 1]] = table[:width], weights[:width]
    return rows, row_weights, cols, col_weights, sizes


def _zoom_blur_kernel(rgb: ImageArray, factors: tuple[float, ...], draws: Draws) -> ImageArray:
    from keypoint_corrupt.functional.imagenet_c import _blur_jit

    unit: npt.NDArray[np.float32] = _blur_jit.unit_float32(np.ascontiguousarray(rgb))
    tables = _zoom_tables(rgb.shape[0], rgb.shape[1], factors)
    total: npt.NDArray[np.float32] = _blur_jit.zoom_blur_sum(unit, *tables)
    # The reference's float32 arithmetic: (x + sum) / (n + 1), clipped to [0, 1], times 255.
    if rgb.dtype == np.uint8:
        final: ImageArray = _blur_jit.zoom_blur_mean_u8(unit, total, len(factors) + 1)
        return final
    mean: npt.NDArray[np.float32] = (unit + total) / np.float32(len(factors) + 1)
    scaled: ImageArray = np.clip(mean, np.float32(0), np.float32(1)) * np.float32(255)
    return scaled


def zoom_blur(image: ImageArray, severity: int, rng: RandomSource = None) -> ImageArray:
    """Zoom blur of ImageNet-C: the mean of the image and centre crops zoomed by 11 to 16 factors.

    Factors per severity: 1 to 1.11 by 0.01, 1 to 1.16 by 0.01, 1 to 1.21 by 0.02, 1 to 1.26
    by 0.02, 1 to 1.31 by 0.03 (NumPy ``arange`` values). Each layer is the centre
    ``1/factor`` crop zoomed back with linear interpolation (``scipy.ndimage.zoom``, order 1)
    and cut to the image. Bit-exact to imagecorruptions' ``zoom_blur``. Nothing is random;
    ``rng`` is only validated.

    Parameters
    ----------
    image : numpy.ndarray
        uint8 or float32 (values in [0, 1]) image, HxW, HxWx1, HxWx3 or HxWx4.
    severity : int
        1 to 5.
    rng : int, numpy.random.Generator, numpy.random.RandomState or None
        Unused (the corruption is deterministic).

    Returns
    -------
    numpy.ndarray
        A new array of the same shape and dtype.

    Examples
    --------
    >>> img = np.full((32, 32, 3), 120, np.uint8)
    >>> int(zoom_blur(img, 1)[16, 16, 0])
    120
    """
    factors = PARAMS["zoom_blur"][check_severity(severity) - 1]
    return run_rgb(image, _zoom_blur_kernel, factors, as_draws(rng))
