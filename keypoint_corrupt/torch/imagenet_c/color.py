"""ImageNet-C's colour corruptions on ``B x C x H x W`` tensors: brightness, contrast and saturate.

Nothing is drawn. ``brightness`` and ``saturate`` run the CPU kernels' float64 HSV round trip
(scikit-image's ``rgb2hsv`` / ``hsv2rgb`` operations, same operands in the same order) on the
device, so every value is bit-exact. ``contrast`` on uint8 takes exact integer channel sums on
the device, builds each sample's 256-level table with the CPU kernel's own float64 formula on
the host (a 256 x 3 table per sample; the CPU kernel's fallback to NumPy's mean where an entry
sits on an integer is taken per sample) and looks the levels up on the device: bit-exact. On
float32 it pulls every value towards its channel mean in float32 as the CPU kernel does; the
float64 mean is summed in another order than NumPy's and rounded to float32, so it could differ
in its last bit (not seen in the tests).

Examples
--------
>>> import torch
>>> x = torch.full((1, 3, 2, 2), 100, dtype=torch.uint8)
>>> brightness(x, 5)[0, :, 0, 0].tolist()
[227, 227, 227]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from keypoint_corrupt.functional.imagenet_c import color as cpu
from keypoint_corrupt.functional.imagenet_c.params import PARAMS
from keypoint_corrupt.torch._batch import (
    RngBatch,
    check_batch,
    check_rngs,
    check_severities,
    finish_rgb,
    rgb_values,
    severity_groups,
)

__all__ = ["brightness", "contrast", "saturate"]

Planes = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def _rgb_to_hsv(r: torch.Tensor, g: torch.Tensor, b: torch.Tensor) -> Planes:
    """Compute the CPU ``_rgb_to_hsv`` (scikit-image's ``rgb2hsv``), elementwise in float64."""
    value = torch.maximum(torch.maximum(r, g), b)
    delta = value - torch.minimum(torch.minimum(r, g), b)
    grey = delta == 0.0
    blue_max, green_max = b == value, g == value
    numerator = torch.where(blue_max, r - g, torch.where(green_max, b - r, g - b))
    offset = torch.where(blue_max, 4.0, torch.where(green_max, 2.0, 0.0)).to(value.dtype)
    saturation = delta / value
    hue = (offset + numerator / delta) / 6.0
    hue = torch.where(hue < 0, hue + 1.0, hue)
    zero = torch.zeros((), dtype=value.dtype, device=value.device)
    return torch.where(grey, zero, hue), torch.where(grey, zero, saturation), value


def _hsv_to_rgb(hue: torch.Tensor, saturation: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """Compute the CPU ``_hsv_to_rgb`` (scikit-image's ``hsv2rgb``); channels on dim 1."""
    sector = torch.floor(hue * 6)
    frac = hue * 6 - sector
    code = sector.to(torch.long) % 6
    a = torch.as_tensor(cpu._SECTOR_A, device=hue.device)
    b = torch.as_tensor(cpu._SECTOR_B, device=hue.device)
    channels = []
    for channel in range(3):
        weight = a[:, channel][code] + b[:, channel][code] * frac
        weight = weight * saturation
        channels.append(value * (1 - weight))
    return torch.stack(channels, dim=1)


def _hsv_adjusted(
    images: torch.Tensor,
    adjust: Callable[[Planes, Any], Planes],
    groups: dict[int, torch.Tensor],
    name: str,
) -> torch.Tensor:
    """Round-trip each severity group through HSV with ``adjust`` (its ``name`` parameters); finished."""
    images = images.detach()
    unit = rgb_values(images).to(torch.float64) / 255.0
    out = torch.empty(unit.shape, dtype=unit.dtype, device=unit.device)
    for level, index in groups.items():
        part = unit[index]
        hsv = adjust(_rgb_to_hsv(part[:, 0], part[:, 1], part[:, 2]), PARAMS[name][level - 1])
        out[index] = _hsv_to_rgb(*hsv) * 255
    stored = out.clamp(0.0, 255.0)  # the CPU ``store``: clipped, then uint8 or float32
    stored = stored.to(torch.uint8 if images.dtype == torch.uint8 else torch.float32)
    return finish_rgb(stored, images)


def _groups(images: object, severity: object, rngs: RngBatch) -> dict[int, torch.Tensor]:
    images = check_batch(images)
    assert isinstance(images, torch.Tensor)
    batch = int(images.shape[0])
    levels = check_severities(severity, batch)
    check_rngs(rngs, batch)  # validated, as the CPU kernels validate ``rng``; nothing is drawn
    # keyed by severity, not by parameter value: two severities may share their parameters
    return {s: index.to(images.device) for s, index in severity_groups(levels).items()}


def brightness(
    images: torch.Tensor, severity: int | Sequence[int] | torch.Tensor, rngs: RngBatch = None
) -> torch.Tensor:
    """Batched :func:`keypoint_corrupt.functional.imagenet_c.brightness`, bit-exact per sample.

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
    >>> brightness(torch.zeros(1, 1, 2, 2, dtype=torch.uint8), 1)[0, 0, 0, 0].item()
    25
    """
    groups = _groups(images, severity, rngs)
    return _hsv_adjusted(
        images, lambda hsv, shift: (hsv[0], hsv[1], (hsv[2] + shift).clamp(0, 1)), groups, "brightness"
    )


def saturate(
    images: torch.Tensor, severity: int | Sequence[int] | torch.Tensor, rngs: RngBatch = None
) -> torch.Tensor:
    """Batched :func:`keypoint_corrupt.functional.imagenet_c.saturate`, bit-exact per sample.

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
    >>> x = torch.tensor([200, 100, 100], dtype=torch.uint8).view(1, 3, 1, 1)
    >>> saturate(x, 2)[0, :, 0, 0].tolist()
    [200, 189, 189]
    """
    groups = _groups(images, severity, rngs)

    def adjust(hsv: Planes, params: tuple[float, float]) -> Planes:
        factor, offset = params
        return hsv[0], (hsv[1] * factor + offset).clamp(0, 1), hsv[2]

    return _hsv_adjusted(images, adjust, groups, "saturate")


@torch.compiler.disable
def _contrast_tables(images: torch.Tensor, factors: list[float]) -> torch.Tensor:
    """Each sample's uint8 table (``B x 3 x 256``) from exact integer channel sums."""
    rgb = rgb_values(images)
    height, width = int(images.shape[2]), int(images.shape[3])
    sums = rgb.to(torch.int64).sum(dim=(2, 3)).cpu().numpy().astype(np.float64)
    # The CPU formula, elementwise, for all samples at once: B x 256 x 3 (same float64 operations).
    factor: Any = np.asarray(factors, np.float64)[:, None, None]  # the formula broadcasts
    scaled = cpu._contrast_levels(sums[:, None, :] / (255.0 * height * width), factor)
    for b in np.flatnonzero((np.abs(scaled - np.rint(scaled)) < 1e-6).any(axis=(1, 2))).tolist():
        # As the CPU kernel: the mean as imagecorruptions takes it (NumPy's order, which
        # depends on the memory layout: contiguous H x W x 3 as the CPU kernel has it).
        sample = np.ascontiguousarray(rgb[b].permute(1, 2, 0).cpu().numpy())
        scaled[b] = cpu._contrast_levels((sample / 255.0).mean(axis=(0, 1)), factors[b])
    tables = scaled.astype(np.uint8).transpose(0, 2, 1)
    return torch.from_numpy(np.ascontiguousarray(tables)).to(images.device)


def contrast(
    images: torch.Tensor, severity: int | Sequence[int] | torch.Tensor, rngs: RngBatch = None
) -> torch.Tensor:
    """Batched :func:`keypoint_corrupt.functional.imagenet_c.contrast` (bit-exact on uint8).

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
    >>> x = torch.tensor([0, 100], dtype=torch.uint8).view(1, 1, 1, 2)
    >>> contrast(x, 1)[0, 0, 0].tolist()
    [30, 70]
    """
    images = check_batch(images)
    batch = int(images.shape[0])
    levels = check_severities(severity, batch)
    check_rngs(rngs, batch)
    factors = [PARAMS["contrast"][s - 1] for s in levels]
    if images.dtype == torch.uint8:
        tables = _contrast_tables(images, factors)
        index = rgb_values(images).to(torch.long).flatten(2)
        looked_up = torch.gather(tables, 2, index).view(batch, 3, *images.shape[2:])
        return finish_rgb(looked_up, images)
    rgb = rgb_values(images)
    means = rgb.to(torch.float64).mean(dim=(2, 3), keepdim=True).to(torch.float32)
    factor = torch.tensor(factors, dtype=torch.float32, device=images.device).view(batch, 1, 1, 1)
    return finish_rgb((rgb - means) * factor + means, images)
