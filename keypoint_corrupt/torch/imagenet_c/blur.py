"""Batched ImageNet-C blurs on torch tensors: defocus, glass, motion, zoom and Gaussian blur.

Each kernel takes a ``B x C x H x W`` batch (uint8, or float32 in [0, 1]; any device) and
returns sample ``b`` equal to :mod:`keypoint_corrupt.functional.imagenet_c`'s kernel run on
image ``b`` with the generator ``rngs[b]`` (see ``docs/torch.md`` for the measured agreement):

* ``gaussian_blur`` and ``zoom_blur``: the CPU kernels' float64 arithmetic in the same order
  (scipy's symmetric Gaussian loop with replicated borders; scipy's order-1 zoom from the CPU
  kernel's own index and weight tables), batched: bit-exact.
* ``motion_blur``: the angle is drawn per sample on the host (the CPU kernel's draw), its taps
  built there by the CPU kernel's own function, and the weighted sum of shifted copies runs
  batched as one gather per tap: bit-exact.
* ``defocus_blur``: the CPU kernel's anti-aliased disk applied in the frequency domain in
  float64 (as OpenCV's ``filter2D`` does for it), borders reflected as OpenCV does; the two
  FFTs round differently in the last bits of float64, so a uint8 value may truncate one level
  lower or higher.
* ``glass_blur``: both Gaussian blurs on the device; the sequential pixel moves between them
  cannot be parallelised and run on the host, per sample, with the CPU kernel's compiled loop
  and draws (the batch goes to the host and back once): bit-exact.

Severities are grouped: the image math runs once per severity present in the batch. The host
steps (checks, draws, tables) are excluded from ``torch.compile`` graphs (``torch.compiler.disable``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeAlias, TypeVar

import numpy as np
import torch

from keypoint_corrupt.functional.imagenet_c._common import Draws, as_draws
from keypoint_corrupt.functional.imagenet_c.blur import (
    _defocus_disk,
    _gaussian_half_kernel,
    _motion_taps,
    _zoom_tables,
    glass_moves,
    motion_angle,
)
from keypoint_corrupt.functional.imagenet_c.params import PARAMS
from keypoint_corrupt.torch._batch import (
    RngBatch,
    check_batch,
    check_rngs,
    check_severities,
    host_map,
    reflect101_index,
    restore_channels,
    rgb255,
    severity_groups,
    shares_source,
)

__all__ = ["defocus_blur", "gaussian_blur", "glass_blur", "motion_blur", "zoom_blur"]

Severity: TypeAlias = int | Sequence[int] | torch.Tensor
#: A severity group's kernel: ``(rgb 0..255 float32 N x 3 x H x W, input is uint8, params, draws)``
#: to a result on the 0..255 scale (uint8 final, else float: clipped and converted by the caller).
GroupKernel: TypeAlias = Callable[[torch.Tensor, bool, Any, list[Draws]], torch.Tensor]
_T = TypeVar("_T")


def each_sample(work: Callable[[int], _T], draws: list[Draws], pixels: int) -> list[_T]:
    """``[work(b) for b in range(len(draws))]``, in host threads for large batches (``host_map``).

    Threads are used only when every sample has its own source, so each sample's draws are the
    same in any order; ``pixels`` is the batch's size in pixels, ``B x H x W`` (small batches
    run in the calling thread).

    Examples
    --------
    >>> draws = [as_draws(0), as_draws(0)]
    >>> each_sample(lambda b: round(draws[b].uniform(0, 1), 3), draws, 10)
    [0.637, 0.637]
    """
    return host_map(work, list(range(len(draws))), [d.source for d in draws], pixels)


# ---------------------------------------------------------------------------------------------
# The batch driver, shared with the weather kernels
#
# Host steps (argument checks, NumPy draws and tables) are kept out of torch.compile's graphs
# (``torch.compiler.disable``): Dynamo would otherwise trace their NumPy code as torch operations,
# whose results need not be NumPy's bit for bit. The graph breaks there; the device maths compiles.


@torch.compiler.disable
def _plan(
    images: torch.Tensor, severity: Severity, rngs: RngBatch, name: str
) -> list[tuple[Any, torch.Tensor, list[Draws]]]:
    # (parameters, sample indices on the device, per-sample draws) of each severity group.
    # A source shared by several samples: one group per sample, in sample order, so each sample's
    # draws follow the previous sample's as in a loop over the CPU kernel.
    check_batch(images)
    batch = int(images.shape[0])
    severities = check_severities(severity, batch)
    sources = check_rngs(rngs, batch)
    if shares_source(sources):
        return [
            (PARAMS[name][level - 1], torch.tensor([b], device=images.device), [as_draws(sources[b])])
            for b, level in enumerate(severities)
        ]
    return [
        (PARAMS[name][level - 1], index.to(images.device), [as_draws(sources[i]) for i in index.tolist()])
        for level, index in severity_groups(severities).items()
    ]


def run_groups(
    images: torch.Tensor, severity: Severity, rngs: RngBatch, name: str, kernel: GroupKernel
) -> torch.Tensor:
    """Run ``kernel`` once per severity group of the batch and finish the result like ``run_rgb``.

    Examples
    --------
    >>> x = torch.full((2, 1, 3, 3), 7, dtype=torch.uint8)
    >>> run_groups(x, [1, 2], None, "gaussian_blur", lambda rgb, u8, p, d: rgb * p).flatten().tolist()[::9]
    [7, 14]
    """
    plan = _plan(images, severity, rngs, name)
    images = images.detach()  # a data corruption, not a differentiable operation
    rgb = rgb255(images)
    is_u8 = images.dtype == torch.uint8
    out = torch.empty((images.shape[0], 3, *images.shape[2:]), dtype=images.dtype, device=images.device)
    for params, on, draws in plan:
        result = kernel(rgb.index_select(0, on), is_u8, params, draws)
        out[on] = to_dtype(result, is_u8)
    return restore_channels(out, images)


def to_dtype(result: torch.Tensor, is_u8: bool) -> torch.Tensor:
    """Finish like the CPU ``_to_dtype``: clip to [0, 255] in its dtype, truncate to uint8 or divide by 255.

    Examples
    --------
    >>> to_dtype(torch.tensor([-1.0, 7.9, 300.0], dtype=torch.float64), True).tolist()
    [0, 7, 255]
    """
    if result.dtype == torch.uint8 and is_u8:
        return result
    clipped = result.clamp(0.0, 255.0)
    if is_u8:
        return clipped.to(torch.uint8)
    return (clipped / 255.0).to(torch.float32)


def store(values: torch.Tensor, is_u8: bool) -> torch.Tensor:
    """Store like the CPU ``_blocks.store``: clip, then uint8 (truncated) or float32 (still 0..255).

    Examples
    --------
    >>> store(torch.tensor([-3.0, 7.9, 300.0], dtype=torch.float64), True).tolist()
    [0, 7, 255]
    """
    clipped = values.clamp(0.0, 255.0)
    return clipped.to(torch.uint8 if is_u8 else torch.float32)


# ---------------------------------------------------------------------------------------------
# Gaussian (scipy's symmetric correlate1d loop, mode "nearest"), exact in float64


@torch.compiler.disable
def _half_taps(sigma: float) -> tuple[float, ...]:
    # The CPU kernel's Gaussian weights, centre outwards, as Python floats.
    return tuple(float(v) for v in _gaussian_half_kernel(sigma))


def _symmetric_pass(x: torch.Tensor, half: tuple[float, ...], dim: int) -> torch.Tensor:
    # out = x * w0, then += (x[i - k] + x[i + k]) * wk for k from the radius down to 1; borders
    # replicated. The order of scipy's loop (and the CPU kernel's), hence the same doubles.
    radius = len(half) - 1
    out = x * half[0]
    if radius == 0:
        return out
    length = x.shape[dim]
    index = torch.arange(-radius, length + radius, device=x.device).clamp_(0, length - 1)
    padded = x.index_select(2, index) if dim == 2 else x[..., index]  # (indexing is faster on the last dim)
    pair = torch.empty_like(out)
    for k in range(radius, 0, -1):  # in place: the same operations without new tensors
        torch.add(padded.narrow(dim, radius - k, length), padded.narrow(dim, radius + k, length), out=pair)
        out.add_(pair.mul_(half[k]))
    return out


def gaussian_255(values: torch.Tensor, sigma: float, to_u8: bool) -> torch.Tensor:
    """``gaussian(values / 255, sigma) * 255`` per channel: uint8 (clipped, truncated) or float64.

    Examples
    --------
    >>> x = torch.zeros(1, 3, 9, 9); x[0, :, 4, 4] = 255
    >>> int(gaussian_255(x, 1.0, True)[0, 0, 4, 4])
    40
    """
    half = _half_taps(sigma)
    unit = values.to(torch.float64) / 255.0
    blurred = _symmetric_pass(_symmetric_pass(unit, half, 2), half, 3)
    if to_u8:
        return (blurred.clamp(0.0, 1.0) * 255.0).to(torch.uint8)
    return blurred * 255.0


def _gaussian_group(rgb: torch.Tensor, is_u8: bool, sigma: float, draws: list[Draws]) -> torch.Tensor:
    return gaussian_255(rgb, sigma, is_u8)


def gaussian_blur(images: torch.Tensor, severity: Severity, rngs: RngBatch = None) -> torch.Tensor:
    """Batched ImageNet-C Gaussian blur (an extra): sigma 1, 2, 3, 4, 6 pixels; bit-exact to the CPU kernel.

    Parameters
    ----------
    images : torch.Tensor
        ``B x C x H x W``, uint8 or float32 in [0, 1], C of 1, 3 or 4, any device.
    severity : int, sequence of int or torch.Tensor
        1 to 5, for the batch or per sample.
    rngs : int, sequence or None
        Validated only (nothing is random).

    Returns
    -------
    torch.Tensor
        A new batch of the same shape, dtype and device.

    Examples
    --------
    >>> x = torch.zeros(1, 1, 32, 32, dtype=torch.uint8); x[0, 0, 16, 16] = 255
    >>> gaussian_blur(x, 1)[0, 0, 16, 15:18].tolist()
    [24, 40, 24]
    """
    return run_groups(images, severity, rngs, "gaussian_blur", _gaussian_group)


# ---------------------------------------------------------------------------------------------
# Glass blur


def _glass_group(
    rgb: torch.Tensor, is_u8: bool, params: tuple[float, int, int], draws: list[Draws]
) -> torch.Tensor:
    sigma, max_delta, iterations = params
    work = gaussian_255(rgb, sigma, is_u8)  # uint8 for uint8 input, as the CPU kernel (float64 else)
    return gaussian_255(_glass_host_moves(work, max_delta, iterations, draws), sigma, is_u8)


@torch.compiler.disable
def _glass_host_moves(
    work: torch.Tensor, max_delta: int, iterations: int, draws: list[Draws]
) -> torch.Tensor:
    # The sequential pixel moves: on the host, per sample, with the CPU kernel's loop and draws.
    host = work.permute(0, 2, 3, 1).contiguous().cpu().numpy()
    pixels = host.shape[0] * host.shape[1] * host.shape[2]
    each_sample(lambda b: glass_moves(host[b], max_delta, iterations, draws[b]), draws, pixels)
    return torch.from_numpy(host).to(work.device).permute(0, 3, 1, 2)


def glass_blur(images: torch.Tensor, severity: Severity, rngs: RngBatch = None) -> torch.Tensor:
    """Batched ImageNet-C glass blur: Gaussian blurs on the device, the pixel moves on the host.

    The moves are sequential (a pixel's source may have moved just before), so they run per
    sample on the host with the CPU kernel's compiled loop and draws; bit-exact to it.

    Parameters
    ----------
    images : torch.Tensor
        ``B x C x H x W``, uint8 or float32 in [0, 1], C of 1, 3 or 4, any device.
    severity : int, sequence of int or torch.Tensor
        1 to 5, for the batch or per sample.
    rngs : int, sequence or None
        One NumPy source per sample (see :func:`keypoint_corrupt.torch._batch.check_rngs`).

    Returns
    -------
    torch.Tensor
        A new batch of the same shape, dtype and device.

    Examples
    --------
    >>> x = torch.full((2, 3, 16, 16), 90, dtype=torch.uint8)
    >>> glass_blur(x, [1, 5], rngs=[0, 1]).shape
    torch.Size([2, 3, 16, 16])
    """
    return run_groups(images, severity, rngs, "glass_blur", _glass_group)


# ---------------------------------------------------------------------------------------------
# Defocus blur


@torch.compiler.disable
def _disk(params: tuple[int, float], device: torch.device) -> torch.Tensor:
    return torch.from_numpy(_defocus_disk(*params).astype(np.float64)).to(device)


def _defocus_group(
    rgb: torch.Tensor, is_u8: bool, params: tuple[int, float], draws: list[Draws]
) -> torch.Tensor:
    # As OpenCV's filter2D does for a kernel this large: the product of Fourier transforms, in
    # float64, of the image with its borders reflected (the disk is symmetric: convolution and
    # correlation agree). A direct conv2d in float64 is as close to OpenCV and 10x slower here.
    disk = _disk(params, rgb.device)
    pad = disk.shape[0] // 2
    h, w = int(rgb.shape[2]), int(rgb.shape[3])
    unit = rgb.to(torch.float64) / 255.0
    padded = unit.index_select(2, reflect101_index(h, pad, pad, rgb.device))
    padded = padded.index_select(3, reflect101_index(w, pad, pad, rgb.device))
    size = (h + 2 * pad, w + 2 * pad)
    spectrum = torch.fft.rfft2(padded) * torch.fft.rfft2(disk, s=size)
    blurred = torch.fft.irfft2(spectrum, s=size)[:, :, 2 * pad :, 2 * pad :]
    return blurred * 255.0


def defocus_blur(images: torch.Tensor, severity: Severity, rngs: RngBatch = None) -> torch.Tensor:
    """Batched ImageNet-C defocus blur: the CPU kernel's disk, by FFT in float64.

    Within one level of uint8 of the CPU kernel (both filter in the frequency domain and round
    differently in the last bits), borders reflected as OpenCV's default.

    Parameters
    ----------
    images : torch.Tensor
        ``B x C x H x W``, uint8 or float32 in [0, 1], C of 1, 3 or 4, any device.
    severity : int, sequence of int or torch.Tensor
        1 to 5, for the batch or per sample.
    rngs : int, sequence or None
        Validated only (nothing is random).

    Returns
    -------
    torch.Tensor
        A new batch of the same shape, dtype and device.

    Examples
    --------
    >>> x = torch.full((1, 3, 32, 32), 200, dtype=torch.uint8)
    >>> [int(defocus_blur(x, s)[0, 0, 16, 16]) for s in (1, 5)]
    [199, 202]
    """
    return run_groups(images, severity, rngs, "defocus_blur", _defocus_group)


# ---------------------------------------------------------------------------------------------
# Motion blur


def motion_sum(values: torch.Tensor, taps: Sequence[tuple[np.ndarray, np.ndarray]]) -> torch.Tensor:
    """Per-sample weighted float64 sum of shifted copies (edges replicated), in tap order.

    ``taps[b] = (shifts, weights)`` of :func:`~keypoint_corrupt.functional.imagenet_c.blur._motion_taps`:
    copy ``t`` of sample ``b`` reads ``values[b, :, clamp(y - dy), clamp(x - dx)]``. Samples with
    fewer taps get weight-0 ones (adding 0.0 changes nothing).

    Examples
    --------
    >>> x = torch.zeros(1, 1, 1, 4, dtype=torch.float64); x[0, 0, 0, 1] = 1.0
    >>> motion_sum(x, [(np.array([[0, 0], [0, -1]]), np.array([0.75, 0.25]))]).flatten().tolist()
    [0.25, 0.75, 0.0, 0.0]
    """
    return shifted_sum(values, *pack_taps(taps, values.device))


@torch.compiler.disable
def pack_taps(
    taps: Sequence[tuple[np.ndarray, np.ndarray]], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-sample taps as ``(dy, dx, weight)`` tensors of ``N x T``, padded with weight-0 taps.

    Examples
    --------
    >>> dy, dx, w = pack_taps([(np.array([[0, 1]]), np.array([1.0]))], torch.device("cpu"))
    >>> dy.tolist(), dx.tolist(), w.tolist()
    ([[0]], [[1]], [[1.0]])
    """
    count = max(len(weights) for _, weights in taps)
    shifts = np.zeros((len(taps), count, 2), np.int64)
    weights = np.zeros((len(taps), count), np.float64)
    for b, (sample_shifts, sample_weights) in enumerate(taps):
        shifts[b, : len(sample_weights)] = sample_shifts
        weights[b, : len(sample_weights)] = sample_weights
    dy, dx = torch.from_numpy(shifts).to(device).unbind(2)
    return dy, dx, torch.from_numpy(weights).to(device)


def shifted_sum(
    values: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, weight: torch.Tensor
) -> torch.Tensor:
    """Sum ``weight[b, t] * values[b, :, clamp(y - dy), clamp(x - dx)]`` over taps ``t`` in order, in float64.

    Examples
    --------
    >>> x = torch.tensor([[[[0.0, 1.0, 0.0]]]], dtype=torch.float64)
    >>> one = torch.ones(1, 1, dtype=torch.long)
    >>> shifted_sum(x, 0 * one, one, torch.ones(1, 1, dtype=torch.float64)).flatten().tolist()
    [0.0, 0.0, 1.0]
    """
    n, c, h, w = values.shape
    count = weight.shape[1]
    device = values.device
    rows_base = torch.arange(h, device=device)[None]
    cols_base = torch.arange(w, device=device)[None]
    x = values.to(torch.float64)
    out = torch.zeros_like(x)
    flat = x.reshape(n, c, h * w)
    for t in range(count):  # one gather per tap, of every sample's own shift
        rows = (rows_base - dy[:, t, None]).clamp_(0, h - 1)
        cols = (cols_base - dx[:, t, None]).clamp_(0, w - 1)
        index = (rows[:, :, None] * w + cols[:, None, :]).reshape(n, 1, h * w)
        copy = torch.gather(flat, 2, index.expand(n, c, h * w))
        out.add_(copy.mul_(weight[:, t, None, None]).view(n, c, h, w))
    return out


def _motion_group(
    rgb: torch.Tensor, is_u8: bool, params: tuple[int, float], draws: list[Draws]
) -> torch.Tensor:
    return shifted_sum(rgb, *_motion_host(params, draws, int(rgb.shape[2]), int(rgb.shape[3]), rgb.device))


@torch.compiler.disable
def _motion_host(
    params: tuple[int, float], draws: list[Draws], height: int, width: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    # Each sample's angle (the CPU kernel's draw) and taps (its function), packed.
    radius, sigma = params
    taps = [_motion_taps(radius, sigma, motion_angle(source), height, width) for source in draws]
    return pack_taps(taps, device)


def motion_blur(images: torch.Tensor, severity: Severity, rngs: RngBatch = None) -> torch.Tensor:
    """Batched ImageNet-C motion blur: per-sample angles drawn on the host, taps applied batched.

    Bit-exact to the CPU kernel (the same float64 sum in the same tap order).

    Parameters
    ----------
    images : torch.Tensor
        ``B x C x H x W``, uint8 or float32 in [0, 1], C of 1, 3 or 4, any device.
    severity : int, sequence of int or torch.Tensor
        1 to 5, for the batch or per sample.
    rngs : int, sequence or None
        One NumPy source per sample (each draws its angle as the CPU kernel does).

    Returns
    -------
    torch.Tensor
        A new batch of the same shape, dtype and device.

    Examples
    --------
    >>> x = torch.zeros(2, 3, 40, 40, dtype=torch.uint8); x[:, :, :, 20:] = 255
    >>> out = motion_blur(x, 2, rngs=[0, 1])
    >>> int(out[0, 0, 20, 5]), int(out[0, 0, 20, 35])
    (0, 255)
    """
    return run_groups(images, severity, rngs, "motion_blur", _motion_group)


# ---------------------------------------------------------------------------------------------
# Zoom blur


def zoom_gather(
    values: torch.Tensor, rows: np.ndarray, row_weights: np.ndarray, cols: np.ndarray, col_weights: np.ndarray
) -> torch.Tensor:
    """Zoom as scipy's order 1 does, from per-axis tables (the CPU kernel's), in float64.

    The result is ``N x C x len(rows) x len(cols)``. ``rows[i] = (r0, r1, valid)``,
    ``row_weights[i] = (w0, w1)``, likewise for columns; each output
    is ``((a w_r0) w_c0 + ...)`` over the four corners in the CPU loop's order; 0 where invalid.

    Examples
    --------
    >>> x = torch.tensor([[[[0.0, 2.0]]]], dtype=torch.float64)
    >>> rows, rw = np.array([[0, 0, 1]]), np.array([[1.0, 0.0]])
    >>> cols, cw = np.array([[0, 1, 1], [0, 1, 0]]), np.array([[0.5, 0.5], [1.0, 0.0]])
    >>> zoom_gather(x, rows, rw, cols, cw).flatten().tolist()
    [1.0, 0.0]
    """
    return zoom_apply(values, *zoom_tensors(rows, row_weights, cols, col_weights, values.device))


@torch.compiler.disable
def zoom_tensors(
    rows: np.ndarray, row_weights: np.ndarray, cols: np.ndarray, col_weights: np.ndarray, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return the tables of :func:`zoom_gather` as tensors on ``device`` (int64 indices, float64 weights).

    Examples
    --------
    >>> [t.dtype for t in zoom_tensors(np.zeros((1, 3), int), np.ones((1, 2)), np.zeros((1, 3), int),
    ...                                 np.ones((1, 2)), torch.device("cpu"))]
    [torch.int64, torch.float64, torch.int64, torch.float64]
    """
    return (
        torch.from_numpy(np.ascontiguousarray(rows, dtype=np.int64)).to(device),
        torch.from_numpy(np.ascontiguousarray(row_weights, dtype=np.float64)).to(device),
        torch.from_numpy(np.ascontiguousarray(cols, dtype=np.int64)).to(device),
        torch.from_numpy(np.ascontiguousarray(col_weights, dtype=np.float64)).to(device),
    )


def zoom_apply(
    values: torch.Tensor, rows_t: torch.Tensor, wr: torch.Tensor, cols_t: torch.Tensor, wc: torch.Tensor
) -> torch.Tensor:
    """:func:`zoom_gather` on tables already on the device (see :func:`zoom_tensors`).

    Examples
    --------
    >>> x = torch.tensor([[[[0.0, 2.0]]]], dtype=torch.float64)
    >>> t = zoom_tensors(np.array([[0, 0, 1]]), np.array([[1.0, 0.0]]), np.array([[0, 1, 1]]),
    ...                  np.array([[0.5, 0.5]]), x.device)
    >>> zoom_apply(x, *t).flatten().tolist()
    [1.0]
    """
    x = values.to(torch.float64)
    # Row weights first: (v w_r) is the same product before or after the column gather.
    upper = x.index_select(2, rows_t[:, 0]).mul_(wr[:, 0, None])
    lower = x.index_select(2, rows_t[:, 1]).mul_(wr[:, 1, None])
    first, second = cols_t[:, 0], cols_t[:, 1]
    wc0, wc1 = wc[None, :, 0], wc[None, :, 1]
    # ((v w_r) w_c) summed corner by corner in the CPU loop's order, in place.
    out = upper[..., first].mul_(wc0)
    out.add_(upper[..., second].mul_(wc1))
    out.add_(lower[..., first].mul_(wc0))
    out.add_(lower[..., second].mul_(wc1))
    invalid = (rows_t[:, 2, None] == 0) | (cols_t[None, :, 2] == 0)
    return out.masked_fill_(invalid, 0.0)


@torch.compiler.disable
def _zoom_layers(
    height: int, width: int, factors: tuple[float, ...], device: torch.device
) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
    # Every layer's tables (the CPU kernel's), on the device.
    rows, row_weights, cols, col_weights, _ = _zoom_tables(height, width, factors)
    return [
        zoom_tensors(rows[k], row_weights[k], cols[k], col_weights[k], device) for k in range(len(factors))
    ]


def _zoom_group(
    rgb: torch.Tensor, is_u8: bool, factors: tuple[float, ...], draws: list[Draws]
) -> torch.Tensor:
    h, w = int(rgb.shape[2]), int(rgb.shape[3])
    unit = (rgb.to(torch.float64) / 255.0).to(torch.float32)  # float32(x / 255), division in float64
    total = torch.zeros_like(unit)
    for tables in _zoom_layers(h, w, factors, rgb.device):  # added in order, each cast to float32 first
        total.add_(zoom_apply(unit, *tables).to(torch.float32))
    mean = (unit + total) / float(len(factors) + 1)
    return mean.clamp(0.0, 1.0) * 255.0


def zoom_blur(images: torch.Tensor, severity: Severity, rngs: RngBatch = None) -> torch.Tensor:
    """Batched ImageNet-C zoom blur: the CPU kernel's zoom tables applied by gather; bit-exact.

    Parameters
    ----------
    images : torch.Tensor
        ``B x C x H x W``, uint8 or float32 in [0, 1], C of 1, 3 or 4, any device.
    severity : int, sequence of int or torch.Tensor
        1 to 5, for the batch or per sample.
    rngs : int, sequence or None
        Validated only (nothing is random).

    Returns
    -------
    torch.Tensor
        A new batch of the same shape, dtype and device.

    Examples
    --------
    >>> x = torch.full((1, 3, 32, 32), 120, dtype=torch.uint8)
    >>> int(zoom_blur(x, 1)[0, 0, 16, 16])
    120
    """
    return run_groups(images, severity, rngs, "zoom_blur", _zoom_group)
