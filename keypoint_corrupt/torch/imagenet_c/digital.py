"""ImageNet-C's digital corruptions on ``B x C x H x W`` tensors: pixelate and JPEG compression.

``pixelate`` runs the CPU kernel's reproduction of Pillow's BOX shrink and NEAREST enlargement
(the same per-axis plans, :func:`keypoint_corrupt.functional.imagenet_c.digital._axis_plan`)
on the device, once per severity: each output row or column sums its box's inputs in the CPU
kernel's order (exact integers for uint8, rounded with Pillow's 22-bit fixed point; float32
sums in the same order for float32), the two axes in Pillow's order with the 8-bit rounding in
between. It is bit-exact. ``jpeg_compression`` is a *host* kernel: libjpeg cannot run on the
device, so each sample goes through the CPU kernel on the host and comes back to the device.

Examples
--------
>>> import torch
>>> x = torch.arange(64, dtype=torch.uint8).view(1, 1, 8, 8)
>>> pixelate(x, 5)[0, 0, :2, :4].tolist()
[[14, 14, 14, 14], [14, 14, 14, 14]]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from keypoint_corrupt.functional.imagenet_c import digital as cpu
from keypoint_corrupt.functional.imagenet_c.params import PARAMS
from keypoint_corrupt.torch._batch import (
    RngBatch,
    check_batch,
    check_rngs,
    check_severities,
    finish_rgb,
    from_numpy,
    host_map,
    rgb_values,
    severity_groups,
    to_numpy,
)

__all__ = ["jpeg_compression", "pixelate"]


def _axis_pass(values: torch.Tensor, plan: cpu._AxisPlan, dim: int) -> torch.Tensor:
    """Shrink ``values`` along ``dim`` with the plan's boxes and enlarge back (uint8 or float32).

    Each box is summed once, tap by tap in the CPU kernel's order (a box of ``n`` taps adds its
    ``n`` inputs to zero), rounded or divided, and then shown by every output row that points
    at it (NEAREST).
    """
    size = int(values.shape[dim])
    device = values.device
    shape = [1] * values.ndim
    shape[dim] = -1
    fixed_point = values.dtype == torch.uint8
    acc: torch.Tensor | None = None
    for t in range(int(plan.taps.max(initial=0))):
        index = torch.as_tensor(np.minimum(plan.first + t, size - 1), device=device)
        rows = values.index_select(dim, index)
        rows = rows.to(torch.int32) if fixed_point else rows
        used = torch.as_tensor(t < plan.taps, device=device).view(shape)
        rows = torch.where(used, rows, torch.zeros((), dtype=rows.dtype, device=device))
        acc = rows if acc is None else acc + rows
    if acc is None:  # every box empty: Pillow's result is 0
        return torch.zeros_like(values)
    if fixed_point:
        # sum * weight stays below 2**31 (at most 257 x 255 times 2**22 / n), as in Pillow
        weight = torch.as_tensor(plan.weight, device=device).view(shape)
        half = 1 << (cpu._PRECISION_BITS - 1)
        boxes = ((acc * weight + half) >> cpu._PRECISION_BITS).to(torch.uint8)
    else:
        boxes = acc / torch.as_tensor(plan.divisor, device=device).view(shape)
    return boxes.index_select(dim, torch.as_tensor(plan.nearest, device=device))


def _pixelated(values: torch.Tensor, factor: float) -> torch.Tensor:
    """Run the CPU ``_pixelate_kernel`` on a ``N x 3 x H x W`` group (one factor)."""
    height, width = int(values.shape[2]), int(values.shape[3])
    reduced_width, reduced_height = max(1, int(width * factor)), max(1, int(height * factor))
    rows, columns = cpu._axis_plan(height, reduced_height), cpu._axis_plan(width, reduced_width)
    if cpu._vertical_first(height, width, reduced_height, reduced_width):
        return _axis_pass(_axis_pass(values, rows, 2), columns, 3)
    return _axis_pass(_axis_pass(values, columns, 3), rows, 2)


def pixelate(
    images: torch.Tensor, severity: int | Sequence[int] | torch.Tensor, rngs: RngBatch = None
) -> torch.Tensor:
    """Batched :func:`keypoint_corrupt.functional.imagenet_c.pixelate`, bit-exact per sample.

    Parameters
    ----------
    images : torch.Tensor
        ``B x C x H x W``, uint8 or float32 in [0, 1], C of 1, 3 or 4, any device.
    severity : int, sequence of int or torch.Tensor
        1 to 5, one for all or one per sample.
    rngs : int, sequence or None
        Validated for a uniform signature; nothing is drawn.

    Returns
    -------
    torch.Tensor
        A new batch of the same shape, dtype and device.

    Examples
    --------
    >>> import torch
    >>> x = torch.zeros(1, 3, 64, 64, dtype=torch.uint8)
    >>> x[..., 1::2] = 255
    >>> pixelate(x, 2).unique().tolist()
    [128]
    """
    images = check_batch(images)
    batch = int(images.shape[0])
    levels = check_severities(severity, batch)
    check_rngs(rngs, batch)
    values = rgb_values(images)
    out = torch.empty(values.shape, dtype=values.dtype, device=values.device)
    for level, index in severity_groups(levels).items():
        index = index.to(images.device)
        out[index] = _pixelated(values[index], PARAMS["pixelate"][level - 1])
    return finish_rgb(out, images)


def jpeg_compression(
    images: torch.Tensor, severity: int | Sequence[int] | torch.Tensor, rngs: RngBatch = None
) -> torch.Tensor:
    """Batched :func:`keypoint_corrupt.functional.imagenet_c.jpeg_compression` (a host kernel).

    Each sample is encoded and decoded by the CPU kernel (libjpeg) on the host: bit-exact, no
    faster than the CPU path; the batch comes back on its device.

    Parameters
    ----------
    images : torch.Tensor
        ``B x C x H x W``, uint8 or float32 in [0, 1], C of 1, 3 or 4, any device.
    severity : int, sequence of int or torch.Tensor
        1 to 5, one for all or one per sample.
    rngs : int, sequence or None
        Validated for a uniform signature; nothing is drawn.

    Returns
    -------
    torch.Tensor
        A new batch of the same shape, dtype and device.

    Examples
    --------
    >>> import torch
    >>> x = torch.full((1, 3, 16, 16), 200, dtype=torch.uint8)
    >>> int(jpeg_compression(x, 5)[0, 0, 8, 8])
    199
    """
    return _jpeg_host(check_batch(images), severity, rngs)


@torch.compiler.disable
def _jpeg_host(images: torch.Tensor, severity: object, rngs: RngBatch) -> torch.Tensor:
    # Host work (libjpeg per sample), excluded from torch.compile graphs.
    batch = int(images.shape[0])
    levels = check_severities(severity, batch)
    check_rngs(rngs, batch)
    host = to_numpy(images)
    size = batch * int(images.shape[2]) * int(images.shape[3])
    done = host_map(lambda b: cpu.jpeg_compression(host[b], levels[b]), range(batch), range(batch), size)
    return from_numpy(done, images)
