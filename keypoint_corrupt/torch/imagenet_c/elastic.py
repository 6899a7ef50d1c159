"""ImageNet-C's elastic transform on ``B x C x H x W`` tensors, keypoints (``B x J x 2``) moved along.

Each sample's displacement field is made on the host by the CPU kernel's own
:func:`keypoint_corrupt.functional.imagenet_c.elastic._field` (the per-sample draws and their
Gaussian smoothing, so the field is bit-identical to the CPU one), and keypoints are moved by
the CPU :func:`~keypoint_corrupt.functional.imagenet_c.elastic.move_keypoints` with that field,
so they equal the CPU ``elastic_transform_with_keypoints`` result exactly. The warp itself runs
batched on the device and follows OpenCV's ``remap`` (``INTER_LINEAR``, ``BORDER_REFLECT``,
float32 maps) as OpenCV 5 computes it: the position's floor and fraction in float32, the four
neighbours (reflected at the borders), then two horizontal and one vertical interpolation, each
a fused multiply-add ``p0 + f * (p1 - p0)`` (emulated in float64 and rounded once to float32).
OpenCV 4 rounds the position to 1/32 pixel first and sums the four weighted neighbours in
float32; which of the two the installed OpenCV does is probed once. Both are bit-exact with the
CPU kernel in the tests (OpenCV 5.0 and 4.10, x86-64 with FMA);
``torch.nn.functional.grid_sample`` differs from them by rounding (see ``docs/torch.md``).

Examples
--------
>>> import torch
>>> x = torch.zeros(2, 3, 40, 60, dtype=torch.uint8)
>>> out, moved = elastic_transform(x, 2, rngs=[0, 1], keypoints=torch.full((2, 5, 2), 20.0))
>>> out.shape, moved.shape
(torch.Size([2, 3, 40, 60]), torch.Size([2, 5, 2]))
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, overload

import cv2
import numpy as np
import torch

from keypoint_corrupt.functional.imagenet_c import elastic as cpu
from keypoint_corrupt.functional.imagenet_c._common import as_draws
from keypoint_corrupt.torch._batch import (
    RngBatch,
    check_batch,
    check_rngs,
    check_severities,
    finish_rgb,
    host_map,
    rgb_values,
)

__all__ = ["elastic_transform", "remap_reflect"]

_INTER_BITS = 5  # OpenCV 4's remap: sample positions in 1/32 pixel
_TAB = 1 << _INTER_BITS


def _reflect(index: torch.Tensor, size: int) -> torch.Tensor:
    """OpenCV's ``BORDER_REFLECT`` (``fedcba|abcdefgh|hgfedcb``) of integer indices."""
    if size == 1:
        return torch.zeros_like(index)
    period = 2 * size
    index = index.remainder(period)
    return torch.where(index >= size, period - 1 - index, index)


@torch.compiler.disable  # an OpenCV call (once): outside torch.compile graphs
@functools.cache
def _opencv_fixed_point() -> bool:
    """Whether this OpenCV's ``remap`` rounds sample positions to 1/32 pixel (OpenCV 4) or not (5)."""
    probe = cv2.remap(
        np.array([[0.0, 1.0]], np.float32),
        np.array([[0.01]], np.float32),
        np.zeros((1, 1), np.float32),
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REFLECT,
    )
    return float(probe[0, 0]) == 0.0


def remap_reflect(
    values: torch.Tensor, map_x: torch.Tensor, map_y: torch.Tensor, fixed_point: bool | None = None
) -> torch.Tensor:
    """OpenCV's ``remap`` (``INTER_LINEAR``, ``BORDER_REFLECT``) of a float32 ``N x C x H x W`` batch.

    ``map_x`` and ``map_y`` (``N x H x W`` float32) are the sample positions in pixel indices.
    ``fixed_point`` selects OpenCV 4's arithmetic (positions rounded to 1/32 pixel, the four
    products summed in float32) or OpenCV 5's (exact fraction, three fused lerps); by default
    the one of the installed OpenCV, found by one probe call.

    Examples
    --------
    >>> v = torch.arange(4.0).view(1, 1, 1, 4)
    >>> remap_reflect(v, torch.tensor([[[0.5, 1.0, 3.5, -0.5]]]), torch.zeros(1, 1, 4)).tolist()
    [[[[0.5, 1.0, 3.0, 0.0]]]]
    """
    batch, channels, height, width = (int(v) for v in values.shape)
    if fixed_point is None:
        fixed_point = _opencv_fixed_point()
    if fixed_point:
        fixed_x = torch.round(map_x * _TAB).to(torch.int64)  # round half to even, as cvRound
        fixed_y = torch.round(map_y * _TAB).to(torch.int64)
        x0, y0 = fixed_x >> _INTER_BITS, fixed_y >> _INTER_BITS
        fx = ((fixed_x & (_TAB - 1)).to(torch.float32) / _TAB).unsqueeze(1)
        fy = ((fixed_y & (_TAB - 1)).to(torch.float32) / _TAB).unsqueeze(1)
    else:
        floor_x, floor_y = torch.floor(map_x), torch.floor(map_y)
        fx, fy = (map_x - floor_x).unsqueeze(1), (map_y - floor_y).unsqueeze(1)
        x0, y0 = floor_x.to(torch.int64), floor_y.to(torch.int64)
    xs = (_reflect(x0, width), _reflect(x0 + 1, width))
    ys = (_reflect(y0, height), _reflect(y0 + 1, height))
    flat = values.reshape(batch, channels, height * width)
    out_shape = (batch, channels, *map_x.shape[1:])

    def tap(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        index = (y * width + x).reshape(batch, 1, -1).expand(batch, channels, -1)
        return flat.gather(2, index).reshape(out_shape)

    p00, p01, p10, p11 = tap(ys[0], xs[0]), tap(ys[0], xs[1]), tap(ys[1], xs[0]), tap(ys[1], xs[1])
    if fixed_point:  # OpenCV 4: exact table weights (multiples of 1/1024), summed in order
        total = p00 * ((1 - fy) * (1 - fx)) + p01 * ((1 - fy) * fx)
        total = total + p10 * (fy * (1 - fx))
        return total + p11 * (fy * fx)
    top = _fma(fx, p01 - p00, p00)
    bottom = _fma(fx, p11 - p10, p10)
    return _fma(fy, bottom - top, top)


def _fma(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Return ``a * b + c`` rounded once to float32, as OpenCV's vectorised ``v_fma`` computes it.

    The float32 product is exact in float64, so only the sum rounds there (and again to
    float32: the double rounding differs from a true fused multiply-add in rare ties only).
    """
    return (a.to(torch.float64) * b.to(torch.float64) + c.to(torch.float64)).to(torch.float32)


def _check_keypoints(keypoints: object, batch: int) -> list[np.ndarray]:
    """Each sample's keypoints as a float64 ``J x K`` host array (``K >= 2``), else raise naming them.

    ``keypoints`` is a ``B x J x K`` tensor or array (any real dtype), or one ``J x K`` array or
    tensor per sample (``J`` may differ between samples).
    """
    if isinstance(keypoints, torch.Tensor):
        if keypoints.is_complex() or keypoints.dtype == torch.bool:
            raise TypeError(f"keypoints must hold real numbers, got dtype {keypoints.dtype}")
        if keypoints.ndim != 3 or int(keypoints.shape[0]) != batch or int(keypoints.shape[2]) < 2:
            raise ValueError(
                f"keypoints must have shape {batch} x J x 2 (or more columns), got {tuple(keypoints.shape)}"
            )
        host = keypoints.detach().cpu().to(torch.float64).numpy()
        return [host[b] for b in range(batch)]
    if isinstance(keypoints, (str, bytes)) or not isinstance(keypoints, (Sequence, np.ndarray)):
        raise TypeError(
            f"keypoints must be a B x J x 2 tensor or array, or one J x 2 array per sample, got "
            f"{type(keypoints).__name__}"
        )
    if len(keypoints) != batch:
        raise ValueError(f"keypoints must hold one J x 2 array per sample ({batch}), got {len(keypoints)}")
    rows = []
    for b in range(batch):
        row = keypoints[b]
        row = row.detach().cpu().to(torch.float64).numpy() if isinstance(row, torch.Tensor) else row
        try:
            array = np.asarray(row, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"keypoints[{b}] must be a J x 2 array of numbers, got {row!r}") from None
        if array.ndim != 2 or array.shape[1] < 2:
            raise ValueError(f"keypoints[{b}] must have shape J x 2 (or more columns), got {array.shape}")
        rows.append(array)
    return rows


@torch.compiler.disable
def _elastic_host(
    images: torch.Tensor, severity: object, rngs: RngBatch, keypoints: object
) -> tuple[torch.Tensor, list[np.ndarray] | None]:
    """Each sample's field (the CPU ``_field``) as ``B x 2 x H x W`` on the device, and moved keypoints.

    Host work, in sample order per sample (field, then keypoints): excluded from ``torch.compile``.
    """
    batch, _, height, width = (int(v) for v in images.shape)
    levels = check_severities(severity, batch)
    sources = [as_draws(g) for g in check_rngs(rngs, batch)]
    rows = None if keypoints is None else _check_keypoints(keypoints, batch)
    generators = [d.source for d in sources]
    fields = host_map(
        lambda b: cpu._field(height, width, levels[b], sources[b]),
        range(batch),
        generators,
        batch * height * width,
    )
    field = torch.from_numpy(np.stack([np.stack(f) for f in fields])).to(images.device)
    if rows is None:
        return field, None
    moved = host_map(
        lambda b: cpu.move_keypoints(rows[b], fields[b]), range(batch), generators, batch * height * width
    )
    return field, moved


@torch.compiler.disable
def _moved_like(moved: list[np.ndarray], keypoints: object, device: torch.device) -> Any:
    """Return the moved keypoints in the form they came: a tensor as a tensor, else one per sample."""
    if isinstance(keypoints, torch.Tensor):
        dtype = keypoints.dtype if keypoints.is_floating_point() else torch.float64
        return torch.from_numpy(np.stack(moved)).to(dtype=dtype, device=keypoints.device)
    return [torch.from_numpy(np.asarray(m, dtype=np.float64)).to(device) for m in moved]


@overload
def elastic_transform(
    images: torch.Tensor,
    severity: int | Sequence[int] | torch.Tensor,
    rngs: RngBatch = ...,
    keypoints: None = ...,
) -> torch.Tensor: ...


@overload
def elastic_transform(
    images: torch.Tensor,
    severity: int | Sequence[int] | torch.Tensor,
    rngs: RngBatch,
    keypoints: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]: ...


@overload
def elastic_transform(
    images: torch.Tensor,
    severity: int | Sequence[int] | torch.Tensor,
    rngs: RngBatch,
    keypoints: np.ndarray | Sequence[Any],
) -> tuple[torch.Tensor, list[torch.Tensor]]: ...


def elastic_transform(
    images: torch.Tensor,
    severity: int | Sequence[int] | torch.Tensor,
    rngs: RngBatch = None,
    keypoints: torch.Tensor | np.ndarray | Sequence[Any] | None = None,
) -> torch.Tensor | tuple[torch.Tensor, Any]:
    """Batched :func:`keypoint_corrupt.functional.imagenet_c.elastic_transform`, keypoints optional.

    Parameters
    ----------
    images : torch.Tensor
        ``B x C x H x W``, uint8 or float32 in [0, 1], C of 1, 3 or 4, any device.
    severity : int, sequence of int or torch.Tensor
        1 to 5, one for all or one per sample.
    rngs : int, sequence or None
        Per-sample NumPy sources (the fields are drawn as the CPU kernel draws them).
    keypoints : torch.Tensor, numpy.ndarray or sequence, optional
        ``B x J x 2`` (or more columns, which pass through) pixel coordinates, any real dtype,
        or one ``J x 2`` array or tensor per sample (``J`` may differ); NaN rows (missing
        joints) stay as given.

    Returns
    -------
    torch.Tensor or tuple
        The warped batch (same shape, dtype, device); with ``keypoints``, ``(images, moved)``,
        ``moved`` as the CPU ``elastic_transform_with_keypoints`` moves them: for a tensor, a
        tensor of its dtype (float64 for an integer one) on its device; otherwise one float64
        ``J x 2`` tensor per sample on the images' device.

    Examples
    --------
    >>> import torch
    >>> elastic_transform(torch.zeros(1, 1, 16, 16), 1, rngs=[0]).shape
    torch.Size([1, 1, 16, 16])
    """
    images = check_batch(images)
    height, width = int(images.shape[2]), int(images.shape[3])
    field, moved = _elastic_host(images, severity, rngs, keypoints)  # B x 2 x H x W
    device = images.device
    map_x = field[:, 0] + torch.arange(width, dtype=torch.float32, device=device).view(1, 1, width)
    map_y = field[:, 1] + torch.arange(height, dtype=torch.float32, device=device).view(1, height, 1)
    values = rgb_values(images)
    if images.dtype == torch.uint8:
        # As the CPU kernel: interpolate value / 255 in float32, scale back, clip and truncate.
        unit = values.to(torch.float32) / torch.tensor(255.0, dtype=torch.float32, device=device)
        warped = remap_reflect(unit, map_x, map_y) * torch.tensor(255.0, dtype=torch.float32, device=device)
        result = finish_rgb(warped.clamp(0.0, 255.0).to(torch.uint8), images)
    else:
        result = finish_rgb(remap_reflect(values, map_x, map_y), images)
    if moved is None:
        return result
    return result, _moved_like(moved, keypoints, device)
