"""Compiled (numba) loops of the ImageNet-C blurs, each one operation-for-operation exact.

Every loop repeats the floating-point arithmetic of the call that imagecorruptions makes, in
the same order, so that the results are bit-identical to it, only faster:

* :func:`gaussian_u8` / :func:`gaussian_f64`: ``scipy.ndimage.gaussian_filter(x, (s, s, 0),
  mode="nearest")`` of ``x = image / 255``, which scikit-image's ``gaussian`` runs. scipy filters
  axis 0 then axis 1, in float64; each output is ``x[i] * w[0]`` plus ``(x[i-k] + x[i+k]) * w[k]``
  for ``k`` from the radius down to 1 (its symmetric-kernel loop; the x86-64 wheels do not fuse
  the multiply-add, and neither does numba without ``fastmath``).
* :func:`glass_shuffle`: glass blur's sequential pixel moves.
* :func:`motion_sum_f64` / :func:`motion_sum_u8`: imagecorruptions' motion blur, a float64
  sum of edge-replicated shifted copies in tap order.
* :func:`zoom_linear` / :func:`zoom_blur_sum`: ``scipy.ndimage.zoom(order=1)``: per output
  sample ``t = sum(v * w_row * w_col)`` over the four corners in C order, in float64, cast to
  the output dtype; an output whose source coordinate falls past the last input sample (by
  rounding) is 0, as in scipy's ``constant`` mode.

The loops compile on first use (about a second each) and are cached on disk (``cache=True``)
so later processes load them in milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba
import numpy as np

__all__ = [
    "gaussian_f64",
    "gaussian_u8",
    "glass_shuffle",
    "motion_sum_f64",
    "motion_sum_u8",
    "unit_float32",
    "zoom_blur_mean_u8",
    "zoom_blur_sum",
    "zoom_linear",
]

_F = TypeVar("_F", bound=Callable[..., Any])


def _jit(func: _F) -> _F:
    # No fastmath: contracting a*b+c into an FMA, or reordering a sum, would break exactness.
    return cast(_F, numba.njit(cache=True, nogil=True)(func))


# ---------------------------------------------------------------------------------------------
# Gaussian filter (scipy.ndimage.correlate1d's symmetric loop, mode "nearest")


@_jit
def _gaussian_row(unit: Any, y: int, half: Any, channels: int, column: Any, padded: Any, acc: Any) -> None:
    # Output row y of the two passes over unit (H, W * C) float64: axis 0 into `column`, then
    # axis 1 (along W, channels interleaved) into `acc`. half: weights w[0..r], centre outwards.
    height, length = unit.shape
    radius = half.shape[0] - 1
    width = length // channels
    centre = unit[y]
    for i in range(length):
        column[i] = centre[i] * half[0]
    for k in range(radius, 0, -1):
        above = unit[max(y - k, 0)]
        below = unit[min(y + k, height - 1)]
        wk = half[k]
        for i in range(length):
            column[i] += (above[i] + below[i]) * wk
    # Border: the first and last pixel repeated r times ("nearest").
    for j in range(radius):
        for c in range(channels):
            padded[j * channels + c] = column[c]
            padded[(width + radius + j) * channels + c] = column[(width - 1) * channels + c]
    for i in range(length):
        padded[radius * channels + i] = column[i]
    middle = padded[radius * channels : radius * channels + length]
    for i in range(length):
        acc[i] = middle[i] * half[0]
    for k in range(radius, 0, -1):
        wk = half[k]
        left = padded[(radius - k) * channels : (radius - k) * channels + length]
        right = padded[(radius + k) * channels : (radius + k) * channels + length]
        for i in range(length):
            acc[i] += (left[i] + right[i]) * wk


@_jit
def _unit_f64(image: Any) -> Any:
    # image / 255 in float64, as NumPy's true division computes it.
    out = np.empty(image.shape, np.float64)
    flat_in = image.reshape(image.size)
    flat_out = out.reshape(out.size)
    for i in range(flat_in.shape[0]):
        flat_out[i] = flat_in[i] / 255.0
    return out


@_jit
def gaussian_u8(image: Any, half: Any) -> Any:
    """``uint8(clip(gaussian_filter(image / 255), 0, 1) * 255)`` of an (H, W, C) uint8 image."""
    height, width, channels = image.shape
    length = width * channels
    unit = _unit_f64(image).reshape(height, length)
    column = np.empty(length, np.float64)
    padded = np.empty((width + 2 * (half.shape[0] - 1)) * channels, np.float64)
    acc = np.empty(length, np.float64)
    out = np.empty((height, length), np.uint8)
    for y in range(height):
        _gaussian_row(unit, y, half, channels, column, padded, acc)
        for i in range(length):
            out[y, i] = np.uint8(min(max(acc[i], 0.0), 1.0) * 255.0)
    return out.reshape(height, width, channels)


@_jit
def gaussian_f64(unit: Any, half: Any) -> Any:
    """``gaussian_filter(unit, (s, s, 0), mode="nearest")`` of an (H, W, C) float64 array."""
    height, width, channels = unit.shape
    length = width * channels
    flat = np.ascontiguousarray(unit).reshape(height, length)
    column = np.empty(length, np.float64)
    padded = np.empty((width + 2 * (half.shape[0] - 1)) * channels, np.float64)
    out = np.empty((height, length), np.float64)
    for y in range(height):
        _gaussian_row(flat, y, half, channels, column, padded, out[y])
    return out.reshape(height, width, channels)


# ---------------------------------------------------------------------------------------------
# Glass blur


@_jit
def glass_shuffle(image: Any, offsets: Any, max_delta: int) -> None:
    """Glass blur's pixel moves, in place: ``image[h, w] = image[h + dy, w + dx]``.

    Rows ``h`` from ``H - d`` down to ``d + 1``, and within each row columns ``w`` from
    ``W - d`` down to ``d + 1``; ``offsets[n] = (dx, dy)`` for the n-th visit. In
    imagecorruptions the tuple "swap" ``x[h, w], x[h', w'] = x[h', w'], x[h, w]`` assigns
    views of a 3-D array, so only the first assignment has an effect: each visit copies.
    """
    height, width, channels = image.shape
    n = 0
    for h in range(height - max_delta, max_delta, -1):
        for w in range(width - max_delta, max_delta, -1):
            src_w = w + offsets[n, 0]
            src_h = h + offsets[n, 1]
            n += 1
            for c in range(channels):
                image[h, w, c] = image[src_h, src_w, c]


# ---------------------------------------------------------------------------------------------
# Motion blur (imagecorruptions' _motion_blur)


@_jit
def _motion_row(image: Any, y: int, shifts: Any, weights: Any, acc: Any) -> None:
    # acc (W * C) = sum over taps of weights[i] * image[clamp(y - dy), clamp(x - dx)], in tap order.
    height, width, channels = image.shape
    for i in range(acc.shape[0]):
        acc[i] = 0.0
    for t in range(weights.shape[0]):
        dy = shifts[t, 0]
        dx = shifts[t, 1]
        wt = weights[t]
        row = image[min(max(y - dy, 0), height - 1)].reshape(width * channels)
        lo = min(max(dx, 0), width)  # columns x < dx read column 0
        hi = max(min(width + dx, width), lo)  # columns x >= W + dx read column W - 1
        for j in range(lo):
            for c in range(channels):
                acc[j * channels + c] += wt * row[c]
        inner = row[(lo - dx) * channels : (hi - dx) * channels]
        body = acc[lo * channels : hi * channels]
        for i in range(body.shape[0]):
            body[i] += wt * inner[i]
        for j in range(hi, width):
            for c in range(channels):
                acc[j * channels + c] += wt * row[(width - 1) * channels + c]


@_jit
def motion_sum_f64(image: Any, shifts: Any, weights: Any) -> Any:
    """Weighted float64 sum of shifted copies of an (H, W, C) C-contiguous image, in tap order.

    ``shifts[t] = (dy, dx)``: copy ``t`` is ``image[clamp(y - dy), clamp(x - dx)]`` (edges
    replicated), weighted by ``weights[t]``.
    """
    height, width, channels = image.shape
    out = np.empty((height, width * channels), np.float64)
    for y in range(height):
        _motion_row(image, y, shifts, weights, out[y])
    return out.reshape(height, width, channels)


@_jit
def motion_sum_u8(image: Any, shifts: Any, weights: Any) -> Any:
    """:func:`motion_sum_f64` clipped to [0, 255] and truncated to uint8."""
    height, width, channels = image.shape
    acc = np.empty(width * channels, np.float64)
    out = np.empty((height, width * channels), np.uint8)
    for y in range(height):
        _motion_row(image, y, shifts, weights, acc)
        for i in range(acc.shape[0]):
            out[y, i] = np.uint8(min(max(acc[i], 0.0), 255.0))
    return out.reshape(height, width, channels)


# ---------------------------------------------------------------------------------------------
# Linear zoom (scipy.ndimage.zoom, order=1, grid_mode=False, mode "constant")


@_jit
def _corners(a: Any, b: Any, p: int, q: int, wr0: float, wr1: float, wc0: float, wc1: float) -> float:
    # scipy's order-1 sample from rows a, b at flat offsets p, q: t += value * w_row * w_col
    # over the corners in C order, in float64.
    t: float = 0.0
    t += a[p] * wr0 * wc0
    t += a[q] * wr0 * wc1
    t += b[p] * wr1 * wc0
    t += b[q] * wr1 * wc1
    return t


@_jit
def _zoom_row(
    a: Any, b: Any, wr0: float, wr1: float, cols: Any, col_weights: Any, channels: int, out: Any
) -> None:
    # One output row of the order-1 zoom from input rows a, b (W * C each) with row weights
    # wr0, wr1; out[j, c] is 0 where the column is outside.
    for j in range(cols.shape[0]):
        p = cols[j, 0] * channels
        q = cols[j, 1] * channels
        for c in range(channels):
            if cols[j, 2] == 0:
                out[j * channels + c] = 0.0
            else:
                out[j * channels + c] = _corners(
                    a, b, p + c, q + c, wr0, wr1, col_weights[j, 0], col_weights[j, 1]
                )


@_jit
def zoom_linear(src: Any, rows: Any, row_weights: Any, cols: Any, col_weights: Any, out: Any) -> None:
    """Fill ``out`` (h, w, C) with the order-1 zoom of ``src`` (H, W, C) from per-axis tables.

    ``rows[i] = (r0, r1, valid)``, ``row_weights[i] = (w0, w1)`` (likewise for columns); an
    output whose row or column is not valid is 0.
    """
    height, width, channels = src.shape
    flat = src.reshape(height, width * channels)
    out_rows = out.reshape(out.shape[0], out.shape[1] * channels)
    row = np.empty(out.shape[1] * channels, np.float64)
    for i in range(out.shape[0]):
        if rows[i, 2] == 0:
            out_rows[i] = 0.0
            continue
        a = flat[rows[i, 0]]
        b = flat[rows[i, 1]]
        _zoom_row(a, b, row_weights[i, 0], row_weights[i, 1], cols, col_weights, channels, row)
        for x in range(row.shape[0]):
            out_rows[i, x] = row[x]  # cast to the output dtype, as scipy does


@_jit
def zoom_blur_sum(unit: Any, rows: Any, row_weights: Any, cols: Any, col_weights: Any, sizes: Any) -> Any:
    """Sum over zoom layers of :func:`zoom_linear` outputs, each cast to float32 and added in order.

    ``rows[k]``, ``row_weights[k]``, ... are layer ``k``'s tables over the whole image (indices
    into ``unit``, the crop offset included); ``sizes[k] = (h, w)`` the part of the image the
    layer covers (its output may be smaller than the image).
    """
    height, width, channels = unit.shape
    flat = unit.reshape(height, width * channels)
    total = np.zeros((height, width * channels), np.float32)
    for k in range(sizes.shape[0]):
        used = sizes[k, 1]
        # This layer's column table as flat offsets and contiguous weights.
        first = cols[k, :used, 0] * channels
        second = cols[k, :used, 1] * channels
        valid = cols[k, :used, 2] != 0
        wc0s = np.ascontiguousarray(col_weights[k, :used, 0])
        wc1s = np.ascontiguousarray(col_weights[k, :used, 1])
        for i in range(sizes[k, 0]):
            if rows[k, i, 2] == 0:
                continue  # the layer is 0 on this row
            a = flat[rows[k, i, 0]]
            b = flat[rows[k, i, 1]]
            wr0 = row_weights[k, i, 0]
            wr1 = row_weights[k, i, 1]
            out = total[i]
            for j in range(used):
                if not valid[j]:
                    continue
                p = first[j]
                q = second[j]
                wc0 = wc0s[j]
                wc1 = wc1s[j]
                for c in range(channels):
                    out[j * channels + c] += np.float32(_corners(a, b, p + c, q + c, wr0, wr1, wc0, wc1))
    return total.reshape(height, width, channels)


@_jit
def zoom_blur_mean_u8(unit: Any, total: Any, count: int) -> Any:
    """``uint8(clip((unit + total) / count, 0, 1) * 255)`` in float32, as the reference computes it."""
    out = np.empty(unit.shape, np.uint8)
    flat_unit = unit.reshape(unit.size)
    flat_total = total.reshape(total.size)
    flat_out = out.reshape(out.size)
    divisor = np.float32(count)
    for i in range(flat_unit.shape[0]):
        mean = (flat_unit[i] + flat_total[i]) / divisor
        flat_out[i] = np.uint8(min(max(mean, np.float32(0.0)), np.float32(1.0)) * np.float32(255.0))
    return out


@_jit
def unit_float32(image: Any) -> Any:
    """``(image / 255).astype(float32)``: the division in float64, then rounded to float32."""
    out = np.empty(image.shape, np.float32)
    flat_in = image.reshape(image.size)
    flat_out = out.reshape(out.size)
    for i in range(flat_in.shape[0]):
        flat_out[i] = np.float32(flat_in[i] / 255.0)
    return out
