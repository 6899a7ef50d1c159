"""ImageNet-C's digital corruptions: pixelate and JPEG compression, bit-exact, through OpenCV and NumPy.

imagecorruptions runs both through Pillow. ``pixelate`` shrinks the image with Pillow's BOX
filter and enlarges it back with NEAREST; OpenCV's ``INTER_AREA`` is a different filter
(fractional pixel weights, one rounding instead of Pillow's two), so Pillow's resampling is
reproduced here: its box weights and 22-bit fixed-point rounding, one axis at a time in
Pillow's order, and its nearest-neighbour source positions, all computed with Pillow's own
floating-point steps (OpenCV's ``INTER_NEAREST_EXACT`` picks the same pixels and does the
enlargement where a check says so). ``jpeg_compression`` encodes with OpenCV, which wraps the same
libjpeg-turbo with the same defaults as Pillow (baseline, 4:2:0 chroma subsampling, the
standard quantisation tables scaled by ``quality``); the files come out byte-identical.

Float32 images are pixelated without rounding (box means in float32); JPEG needs 8-bit
samples, so float images are rounded to the nearest level before encoding.

Examples
--------
>>> import numpy as np
>>> img = np.zeros((64, 64, 3), np.uint8)
>>> img[:, 1::2] = 255  # one-pixel stripes
>>> out = pixelate(img, 2)  # halved: every pair of columns averages to mid-grey
>>> sorted(np.unique(out).tolist())
[128]
"""

from __future__ import annotations

import functools
import math
from typing import Any

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

__all__ = ["jpeg_compression", "pixelate"]

_PRECISION_BITS = 22  # Pillow's fixed point for 8-bit resampling: 32 - 8 - 2


@functools.lru_cache(maxsize=32)
def _box_taps(in_size: int, out_size: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Pillow's BOX reduction along one axis (its ``precompute_coeffs``, box filter).

    Returns ``(taps, counts)``: ``taps[t, i]`` is the ``t``-th input index averaged into
    output ``i``, or -1 past its ``counts[i]`` inputs (every weight of a box is 1 before
    normalisation, so an output is the mean of its inputs).
    """
    scale = in_size / out_size
    support = 0.5 * max(scale, 1.0)
    inverse = 1.0 / max(scale, 1.0)
    centre = (np.arange(out_size) + 0.5) * scale
    first = np.maximum((centre - support + 0.5).astype(np.intp), 0)
    width = np.minimum((centre + support + 0.5).astype(np.intp), in_size) - first
    offsets = np.arange(math.ceil(support) * 2 + 1)
    position = first[:, None] + offsets
    # Pillow's box is 1 on (-0.5, 0.5]: evaluate it as Pillow does, ((x + xmin) - center + 0.5) * ss.
    arg = (position - centre[:, None] + 0.5) * inverse
    inside = (arg > -0.5) & (arg <= 0.5) & (offsets < width[:, None])
    counts = inside.sum(axis=1)
    # Stable sort moves each row's inputs to the front, in order.
    order = np.argsort(~inside, axis=1, kind="stable")[:, : counts.max()]
    taps = np.where(
        np.take_along_axis(inside, order, axis=1), np.take_along_axis(position, order, axis=1), -1
    )
    return np.ascontiguousarray(taps.T), counts


@functools.lru_cache(maxsize=8)
def _mean_table(max_count: int) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint16]]:
    """Pillow's rounded mean of ``n`` uint8 values from their sum: ``table[base[n] + sum]``.

    Pillow normalises the weights (``1 / n`` each) to 22-bit integers and rounds
    ``(sum * weight + 2**21) >> 22``, clipped to 255.
    """
    base = np.zeros(max_count + 1, np.uint16)
    parts = [np.zeros(1, np.uint8)]  # n = 0 (no input) gives 0
    for n in range(1, max_count + 1):
        base[n] = base[n - 1] + 255 * (n - 1) + 1
        weight = int(0.5 + (1.0 / n) * (1 << _PRECISION_BITS))
        sums = np.arange(255 * n + 1, dtype=np.int64)
        rounded = (sums * weight + (1 << (_PRECISION_BITS - 1))) >> _PRECISION_BITS
        parts.append(np.minimum(rounded, 255).astype(np.uint8))
    return np.concatenate(parts), base


def _transposed(image: ImageArray, pad: bool = False) -> ImageArray:
    """Swap rows and columns (whole pixels, via OpenCV); ``pad`` appends one row of zeros."""
    swapped = np.empty((image.shape[1] + int(pad), image.shape[0], image.shape[2]), image.dtype)
    swapped[image.shape[1] :] = 0
    cv2.transpose(np.ascontiguousarray(image), dst=swapped[: image.shape[1]])
    return swapped


def _box_rows(padded: ImageArray, out_size: int) -> ImageArray:
    """Shrink ``padded[:-1]`` vertically to ``out_size`` rows with Pillow's BOX filter.

    The last row of ``padded`` is zeros, the input of the missing taps (index -1). Rows are
    gathered whole, which is fast; the horizontal pass runs on the transposed image.
    """
    taps, counts = _box_taps(padded.shape[0] - 1, out_size)
    tap_rows = padded.take(taps[0], axis=0)
    total: npt.NDArray[Any] = tap_rows.astype(np.uint16 if padded.dtype == np.uint8 else np.float32)
    for tap in taps[1:]:
        total += padded.take(tap, axis=0, out=tap_rows)
    rows = total.reshape(out_size, -1)
    if padded.dtype != np.uint8:
        rows /= np.maximum(counts, 1).astype(np.float32)[:, None]
        return total
    table, base = _mean_table(int(counts.max()))
    rows += base[counts][:, None]
    means: ImageArray = table.take(total)
    return means


def _box_shrink(image: ImageArray, out_width: int, out_height: int) -> ImageArray:
    """Shrink ``image`` with Pillow's BOX filter, one axis after the other, in Pillow's order.

    The passes round to 8 bits in between, so their order matters: Pillow 13 runs the vertical
    one first when the height loses more than twice as many pixels as the width (earlier
    releases always began with the horizontal one; the two differ by one level here and there
    on images more than twice as tall as wide).
    """
    height_loss = image.shape[0] - out_height
    if height_loss > 0 and height_loss > 2 * (image.shape[1] - out_width):
        padded = np.concatenate([image, np.zeros_like(image[:1])])
        columns = _box_rows(_transposed(_box_rows(padded, out_height), pad=True), out_width)
        return _transposed(columns)
    rows = _box_rows(_transposed(image, pad=True), out_width)
    return _box_rows(_transposed(rows, pad=True), out_height)


@functools.lru_cache(maxsize=64)
def _nearest_sources(out_size: int, in_size: int) -> npt.NDArray[np.intp]:
    """Pillow's NEAREST source index per output pixel (its ``ImagingScaleAffine``).

    Pillow steps through the input by repeated addition of ``in / out`` from half a step, and
    truncates; ``cumsum`` adds in the same order, so rounding matches.
    """
    step = in_size / out_size
    position = np.cumsum(np.concatenate([[step * 0.5], np.full(out_size - 1, step)]))
    return np.minimum(position.astype(np.intp), in_size - 1)


@functools.lru_cache(maxsize=64)
def _opencv_agrees(out_size: int, in_size: int) -> bool:
    """Whether OpenCV's ``INTER_NEAREST_EXACT`` picks Pillow's NEAREST sources (checked, not assumed)."""
    if in_size > np.iinfo(np.uint16).max:
        return False
    index = np.arange(in_size, dtype=np.uint16)[None, :]
    picked = cv2.resize(index, (out_size, 1), interpolation=cv2.INTER_NEAREST_EXACT)[0]
    return bool(np.array_equal(picked, _nearest_sources(out_size, in_size)))


def _nearest_enlarge(small: ImageArray, height: int, width: int) -> ImageArray:
    """Enlarge ``small`` to ``height`` x ``width`` as Pillow's NEAREST resize does."""
    if _opencv_agrees(height, small.shape[0]) and _opencv_agrees(width, small.shape[1]):
        enlarged: ImageArray = cv2.resize(small, (width, height), interpolation=cv2.INTER_NEAREST_EXACT)
        return enlarged.reshape(height, width, small.shape[2])
    columns = _transposed(_transposed(small).take(_nearest_sources(width, small.shape[1]), axis=0))
    rows: ImageArray = columns.take(_nearest_sources(height, small.shape[0]), axis=0)
    return rows


def _pixelate_kernel(rgb: ImageArray, factor: float, draws: Draws) -> ImageArray:
    height, width = rgb.shape[:2]
    small = _box_shrink(rgb, max(1, int(width * factor)), max(1, int(height * factor)))
    return _nearest_enlarge(small, height, width)


def _jpeg_kernel(rgb: ImageArray, quality: int, draws: Draws) -> ImageArray:
    pixels = rgb if rgb.dtype == np.uint8 else np.rint(rgb).astype(np.uint8)
    bgr = cv2.cvtColor(np.ascontiguousarray(pixels), cv2.COLOR_RGB2BGR)
    options = [
        cv2.IMWRITE_JPEG_QUALITY,
        quality,
        cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
        cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420,
    ]
    ok, encoded = cv2.imencode(".jpg", bgr, options)
    if not ok:
        raise RuntimeError(f"OpenCV could not encode a JPEG of shape {rgb.shape} at quality {quality}")
    decoded = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
    if decoded is None:
        raise RuntimeError(f"OpenCV could not decode its own JPEG of shape {rgb.shape}")
    return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)


def pixelate(image: ImageArray, severity: int, rng: RandomSource = None) -> ImageArray:
    """Pixelate: shrink by ``c`` with a box filter, then enlarge back with nearest neighbour.

    ``c`` is 0.6, 0.5, 0.4, 0.3 or 0.25 (severities 1 to 5); the small image is
    ``int(width * c)`` by ``int(height * c)`` (at least 1). Bit-exact with imagecorruptions
    (Pillow's BOX and NEAREST resampling, reproduced).

    Parameters
    ----------
    image : numpy.ndarray
        uint8 or float32 (values in [0, 1]) image, HxW, HxWx1, HxWx3 or HxWx4.
    severity : int
        1 to 5.
    rng : int, numpy.random.Generator, numpy.random.RandomState or None
        Accepted for a uniform signature and validated; nothing is drawn.

    Returns
    -------
    numpy.ndarray
        A new array of the same shape and dtype.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.arange(64, dtype=np.uint8).reshape(8, 8)
    >>> pixelate(img, 5)[:2, :4].tolist()  # 2x2 blocks of 4x4 pixels, rounded means
    [[14, 14, 14, 14], [14, 14, 14, 14]]
    """
    params = PARAMS["pixelate"][check_severity(severity) - 1]
    return run_rgb(image, _pixelate_kernel, params, as_draws(rng))


def jpeg_compression(image: ImageArray, severity: int, rng: RandomSource = None) -> ImageArray:
    """JPEG-compress at quality ``q`` and decode.

    ``q`` is 25, 18, 15, 10 or 7 (severities 1 to 5); colour JPEG with 4:2:0 chroma
    subsampling, as Pillow writes it for imagecorruptions (byte-identical files). Grey images
    are compressed as their RGB stack, as imagecorruptions' ``corrupt()`` does.

    Parameters
    ----------
    image : numpy.ndarray
        uint8 or float32 (values in [0, 1]; rounded to 8 bits first) image, HxW, HxWx1,
        HxWx3 or HxWx4.
    severity : int
        1 to 5.
    rng : int, numpy.random.Generator, numpy.random.RandomState or None
        Accepted for a uniform signature and validated; nothing is drawn.

    Returns
    -------
    numpy.ndarray
        A new array of the same shape and dtype.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.full((16, 16, 3), 200, np.uint8)
    >>> int(jpeg_compression(img, 5)[8, 8, 0])  # flat grey survives, within a level
    199
    """
    params = PARAMS["jpeg_compression"][check_severity(severity) - 1]
    return run_rgb(image, _jpeg_kernel, params, as_draws(rng))
