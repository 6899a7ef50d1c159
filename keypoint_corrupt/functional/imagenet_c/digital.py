"""ImageNet-C's digital corruptions: pixelate and JPEG compression, bit-exact with imagecorruptions.

imagecorruptions runs both through Pillow. ``pixelate`` shrinks the image with Pillow's BOX
filter and enlarges it back with NEAREST; OpenCV's ``INTER_AREA`` is a different filter
(fractional pixel weights, one rounding instead of Pillow's two), so Pillow's resampling is
reproduced here: its box windows and 22-bit fixed-point rounding, one axis at a time in
Pillow's order, and its nearest-neighbour source positions, all computed with Pillow's own
floating-point steps. Shrinking and enlarging along one axis leave the other axis alone, so
each axis is shrunk and enlarged back in one compiled pass over whole rows (numba), the
columns through two OpenCV transposes. ``jpeg_compression`` encodes with OpenCV, which wraps
the same libjpeg-turbo with the same defaults as Pillow (baseline, 4:2:0 chroma subsampling,
the standard quantisation tables scaled by ``quality``); the files come out byte-identical.

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
import threading
from collections.abc import Callable
from typing import Any, NamedTuple, cast

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
#: Work arrays up to this size are kept per thread and reused: the page faults of fresh ones
#: cost more than the resampling itself. Larger ones are allocated per call.
_SCRATCH_MAX_BYTES = 16 << 20
_scratch_space = threading.local()


class _AxisPlan(NamedTuple):
    """Pillow's BOX reduction and NEAREST enlargement along one axis, as index arrays.

    Output pixel ``r`` of the enlarged axis shows reduced pixel ``i = nearest[r]``, the mean
    of the ``taps[i]`` inputs from ``first[i]``: for uint8 Pillow's ``(sum * weight[i] +
    2**21) >> 22``, for float ``sum / divisor[i]``.
    """

    first: npt.NDArray[np.intp]
    taps: npt.NDArray[np.intp]
    weight: npt.NDArray[np.int32]
    divisor: npt.NDArray[np.float32]
    nearest: npt.NDArray[np.intp]


def _box_windows(in_size: int, out_size: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Pillow's BOX reduction along one axis (its ``precompute_coeffs``, box filter).

    Returns ``(first, count)``: output ``i`` averages inputs ``first[i]`` to
    ``first[i] + count[i] - 1`` (a box weighs each of its inputs 1 before normalisation, and
    the inputs inside it are consecutive).
    """
    scale = in_size / out_size
    support = 0.5 * max(scale, 1.0)
    inverse = 1.0 / max(scale, 1.0)
    centre = (np.arange(out_size) + 0.5) * scale
    start = np.maximum((centre - support + 0.5).astype(np.intp), 0)
    width = np.minimum((centre + support + 0.5).astype(np.intp), in_size) - start
    offsets = np.arange(math.ceil(support) * 2 + 1)
    # Pillow's box is 1 on (-0.5, 0.5]: evaluate it as Pillow does, ((x + xmin) - center + 0.5) * ss.
    arg = (start[:, None] + offsets - centre[:, None] + 0.5) * inverse
    inside = (arg > -0.5) & (arg <= 0.5) & (offsets < width[:, None])
    count = inside.sum(axis=1)
    first = np.where(count > 0, start + inside.argmax(axis=1), 0)
    return first.astype(np.intp), count.astype(np.intp)


def _nearest_sources(out_size: int, in_size: int) -> npt.NDArray[np.intp]:
    """Pillow's NEAREST source index per output pixel (its ``ImagingScaleAffine``).

    Pillow steps through the input by repeated addition of ``in / out`` from half a step, and
    truncates; ``cumsum`` adds in the same order, so rounding matches.
    """
    step = in_size / out_size
    position = np.cumsum(np.concatenate([[step * 0.5], np.full(out_size - 1, step)]))
    return np.minimum(position.astype(np.intp), in_size - 1)


@functools.lru_cache(maxsize=64)
def _axis_plan(size: int, reduced: int) -> _AxisPlan:
    """Shrink ``size`` pixels to ``reduced`` with Pillow's BOX, then enlarge back with NEAREST."""
    first, count = _box_windows(size, reduced)
    if count.max() > 257:  # the uint16 sums of the compiled loop hold 257 x 255 at most
        raise ValueError(f"pixelate cannot shrink {size} pixels to {reduced}: boxes over 257 pixels")
    # Pillow normalises each of n weights 1/n to 22 bits: (int)(0.5 + 1/n * 2**22).
    weight = [int(0.5 + (1.0 / n) * (1 << _PRECISION_BITS)) if n else 0 for n in count.tolist()]
    return _AxisPlan(
        first,
        count,
        np.array(weight, np.int32),
        np.maximum(count, 1).astype(np.float32),
        _nearest_sources(size, reduced),
    )


def _box_enlarge_rows(
    src: npt.NDArray[Any],
    plan_first: npt.NDArray[np.intp],
    plan_taps: npt.NDArray[np.intp],
    plan_weight: npt.NDArray[np.int32],
    plan_divisor: npt.NDArray[np.float32],
    plan_nearest: npt.NDArray[np.intp],
    acc: npt.NDArray[Any],
    out: npt.NDArray[Any],
    fixed_point: bool,
) -> None:
    """Row ``r`` of ``out`` is box ``plan_nearest[r]`` of ``src``'s rows (see :class:`_AxisPlan`).

    Compiled with numba (:func:`_compiled_box_enlarge_rows`). uint8 rows are summed in uint16
    ``acc`` and rounded in int32 as Pillow does (``sum * weight`` stays below 2**31); float
    rows are summed in ``acc`` of their dtype and divided. Each box is computed for the first
    output row that shows it; the next ones copy that row.
    """
    length = src.shape[1]
    half = np.int32(1 << (_PRECISION_BITS - 1))
    for r in range(plan_nearest.shape[0]):
        row_out = out[r]
        box = plan_nearest[r]
        if r > 0 and box == plan_nearest[r - 1]:
            previous = out[r - 1]
            for k in range(length):  # explicit loops: numba's slice assignment is far slower
                row_out[k] = previous[k]
            continue
        for k in range(length):
            acc[k] = 0
        for t in range(plan_taps[box]):
            row = src[plan_first[box] + t]
            for k in range(length):
                acc[k] += row[k]
        if fixed_point:
            weight = plan_weight[box]
            for k in range(length):
                row_out[k] = np.int32(np.int32(acc[k]) * weight + half) >> np.int32(_PRECISION_BITS)
        else:
            divisor = plan_divisor[box]
            for k in range(length):
                row_out[k] = acc[k] / divisor


@functools.cache
def _compiled_box_enlarge_rows() -> Callable[..., None]:
    """:func:`_box_enlarge_rows` compiled (on first use; cached on disk across processes)."""
    import numba  # a heavy import: deferred until pixelate is first called

    return cast(Callable[..., None], numba.njit(cache=True, nogil=True)(_box_enlarge_rows))


def _scratch(slot: int, shape: tuple[int, ...], dtype: np.dtype[Any]) -> npt.NDArray[Any]:
    """Return a work array of ``shape``, reused across calls in this thread (uninitialised)."""
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > _SCRATCH_MAX_BYTES:
        return np.empty(shape, dtype)
    buffers: list[npt.NDArray[np.uint8]] = getattr(_scratch_space, "buffers", [])
    _scratch_space.buffers = buffers
    while len(buffers) <= slot:
        buffers.append(np.empty(0, np.uint8))
    if buffers[slot].size < nbytes:
        buffers[slot] = np.empty(nbytes, np.uint8)
    return buffers[slot][:nbytes].view(dtype).reshape(shape)


def _transpose(image: ImageArray, out: ImageArray) -> ImageArray:
    """Swap rows and columns of ``image`` (whole pixels) into ``out``, via OpenCV."""
    swapped: ImageArray = cv2.transpose(image, dst=out)
    return swapped


def _box_enlarge(image: ImageArray, plan: _AxisPlan, out: ImageArray) -> ImageArray:
    """Box-reduce ``image`` along axis 0 and enlarge it back with nearest neighbour, into ``out``.

    Along one axis the two steps leave the other alone, so Pillow's shrink-both-then-enlarge
    is the same as shrink-and-enlarge one axis at a time; the other axis is reached by
    transposing, which keeps every loop on whole contiguous rows.
    """
    rows = image.reshape(image.shape[0], -1)
    fixed_point = image.dtype == np.uint8
    acc = np.empty(rows.shape[1], np.uint16 if fixed_point else image.dtype)
    _compiled_box_enlarge_rows()(rows, *plan, acc, out.reshape(out.shape[0], -1), fixed_point)
    return out


def _vertical_first(height: int, width: int, reduced_height: int, reduced_width: int) -> bool:
    """Pillow 13's pass order: vertical first when the height loses over twice the width's pixels.

    The passes round to 8 bits in between, so their order matters (earlier releases always
    began with the horizontal one; the two differ by one level here and there on images more
    than twice as tall as wide).
    """
    height_loss = height - reduced_height
    return height_loss > 0 and height_loss > 2 * (width - reduced_width)


def _pixelate_kernel(rgb: ImageArray, factor: float, draws: Draws) -> ImageArray:
    height, width, channels = rgb.shape
    reduced_width, reduced_height = max(1, int(width * factor)), max(1, int(height * factor))
    rows, columns = _axis_plan(height, reduced_height), _axis_plan(width, reduced_width)
    upright, transposed = (height, width, channels), (width, height, channels)
    # The result overwrites the kernel's own copy of the image once that is read (fresh pages
    # cost more than the work); the steps in between use two reused work arrays, slots 0 and 1.
    image = np.ascontiguousarray(rgb)
    if _vertical_first(height, width, reduced_height, reduced_width):
        done_rows = _box_enlarge(image, rows, _scratch(1, upright, image.dtype))
        swapped = _transpose(done_rows, _scratch(0, transposed, image.dtype))
        done = _box_enlarge(swapped, columns, _scratch(1, transposed, image.dtype))
        return _transpose(done, image)
    swapped = _transpose(image, _scratch(0, transposed, image.dtype))
    done_columns = _box_enlarge(swapped, columns, _scratch(1, transposed, image.dtype))
    upright_again = _transpose(done_columns, _scratch(0, upright, image.dtype))
    return _box_enlarge(upright_again, rows, image)


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
