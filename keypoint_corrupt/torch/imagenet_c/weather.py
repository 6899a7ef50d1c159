"""Batched ImageNet-C weather on torch tensors: snow, frost, fog and the extra spatter.

Sample ``b`` equals :mod:`keypoint_corrupt.functional.imagenet_c`'s kernel run on image ``b``
with the generator ``rngs[b]``: the random parts are drawn per sample on the host by the CPU
kernels' own draw steps, the rest runs batched on the tensor's device (see ``docs/torch.md``):

* ``snow``: noise layer and angle drawn on the host; the zoom (the CPU kernel's scipy tables,
  by gather), threshold, motion streaks (per-sample taps) and blend on the device. The blend's
  grey level is ``0.299 R + 0.587 G + 0.114 B`` in float32, where OpenCV's ``cvtColor`` uses
  FMAs (and another rounding in each row's last, vector-width-dependent columns): one float32
  ulp apart, so a uint8 value may differ by one level.
* ``frost``: texture and crop drawn on the host (textures decoded and resized once per size,
  as on the CPU); the blend on the device: bit-exact.
* ``fog``: the plasma fractal is built per sample on the host by the CPU kernel's draw step
  (its draws outnumber its values, so shipping the plasma costs less than shipping the draws);
  the blend on the device: bit-exact.
* ``spatter``: the noise and the liquid layer on the host (Canny, distance transform and
  histogram equalisation are OpenCV image processing with no exact torch counterpart); the
  blend on the device: bit-exact.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from keypoint_corrupt.functional.imagenet_c._common import Draws
from keypoint_corrupt.functional.imagenet_c._textures import frost_folder
from keypoint_corrupt.functional.imagenet_c.blur import _crop_and_size, _motion_taps, _zoom_axis
from keypoint_corrupt.functional.imagenet_c.weather import (
    _MUD_RGB,
    _WATER_RGB,
    fog_plasma,
    frost_crop,
    snow_draws,
    spatter_layer,
)
from keypoint_corrupt.torch._batch import RngBatch, check_batch
from keypoint_corrupt.torch.imagenet_c.blur import (
    Severity,
    each_sample,
    pack_taps,
    run_groups,
    shifted_sum,
    store,
    zoom_apply,
    zoom_tensors,
)

__all__ = ["fog", "frost", "snow", "spatter"]


#: cvtColor's RGB-to-grey weights as float32 values (0.299, 0.587, 0.114).
_GREY = tuple(float(np.float32(v)) for v in (0.299, 0.587, 0.114))
#: spatter's water colour as float32 values (its mud colour stays float64: the CPU kernel's types).
_WATER32 = tuple(float(np.float32(v)) for v in _WATER_RGB)


# ---------------------------------------------------------------------------------------------
# Snow


@torch.compiler.disable
def _snow_host(
    params: tuple[float, ...], draws: list[Draws], height: int, width: int, device: torch.device
) -> Any:
    # The draws (the CPU draw step) and every table, as tensors: layers, per-sample threshold
    # and float32 flag, the zoom tables and the streak taps, and the blend's float32 constants.
    zoom, threshold, radius, sigma, blend = params[2:]
    drawn = each_sample(
        lambda b: snow_draws(draws[b], params, (height, width)), draws, height * width * len(draws)
    )
    single = [layer.dtype == np.float32 for layer, _ in drawn]  # a Generator's layer: float32
    top, crop_h, out_h = _crop_and_size(height, zoom)
    left, crop_w, out_w = _crop_and_size(width, zoom)
    rows, row_weights = _zoom_axis(out_h, crop_h, top)
    cols, col_weights = _zoom_axis(out_w, crop_w, left)
    # clipped_zoom returns the layer's dtype; a float32 layer compares with float32(threshold).
    cut = [float(np.float32(threshold)) if s else float(threshold) for s in single]
    taps = [_motion_taps(int(radius), sigma, angle, out_h, out_w) for _, angle in drawn]
    return (
        torch.from_numpy(np.stack([layer.astype(np.float64) for layer, _ in drawn])).to(device)[:, None],
        torch.tensor(single, device=device).view(-1, 1, 1, 1),
        torch.tensor(cut, dtype=torch.float64, device=device).view(-1, 1, 1, 1),
        zoom_tensors(rows, row_weights, cols, col_weights, device),
        pack_taps(taps, device),
        (float(np.float32(blend)), float(np.float32(1 - blend))),
    )


def _snow_group(
    rgb: torch.Tensor, is_u8: bool, params: tuple[float, ...], draws: list[Draws]
) -> torch.Tensor:
    h, w = int(rgb.shape[2]), int(rgb.shape[3])
    layers, is_single, cut, tables, taps, (keep, whiten) = _snow_host(params, draws, h, w, rgb.device)
    flakes = zoom_apply(layers, *tables)
    flakes = torch.where(is_single, flakes.to(torch.float32).to(torch.float64), flakes)
    flakes = torch.where(flakes < cut, 0.0, flakes).clamp(0.0, 1.0)
    streaks = torch.round(shifted_sum(flakes, *taps) * 255)
    levels = streaks[:, :, :h, :w].to(torch.uint8).to(torch.float64) / 255.0
    turned = levels.flip(2, 3)
    unit = rgb / 255.0  # float32, as the CPU kernel's division
    grey = unit[:, 0:1] * _GREY[0] + unit[:, 1:2] * _GREY[1]
    grey = grey + unit[:, 2:3] * _GREY[2]
    lifted = grey * 1.5 + 0.5
    whitened = torch.maximum(unit, lifted) * whiten
    mixed = unit * keep + whitened
    values = (levels + mixed.to(torch.float64) + turned) * 255.0
    return store(values, is_u8)


def snow(images: torch.Tensor, severity: Severity, rngs: RngBatch = None) -> torch.Tensor:
    """Batched ImageNet-C snow: flakes drawn per sample on the host, zoom, streaks and blend batched.

    Parameters
    ----------
    images : torch.Tensor
        ``B x C x H x W``, uint8 or float32 in [0, 1], C of 1, 3 or 4, any device.
    severity : int, sequence of int or torch.Tensor
        1 to 5, for the batch or per sample.
    rngs : int, sequence or None
        One NumPy source per sample (a RandomState draws as imagecorruptions does).

    Returns
    -------
    torch.Tensor
        A new batch of the same shape, dtype and device.

    Examples
    --------
    >>> out = snow(torch.zeros(2, 3, 24, 32, dtype=torch.uint8), [1, 3], rngs=[0, 1])
    >>> out.shape, out.dtype
    (torch.Size([2, 3, 24, 32]), torch.uint8)
    """
    return run_groups(images, severity, rngs, "snow", _snow_group)


# ---------------------------------------------------------------------------------------------
# Frost


@torch.compiler.disable
def _frost_folder(images: torch.Tensor, textures: str | os.PathLike[str] | None) -> str:
    check_batch(images)  # the batch first, then the textures
    return str(frost_folder(textures))


@torch.compiler.disable
def _frost_host(
    weights: tuple[float, float],
    draws: list[Draws],
    folder: str,
    height: int,
    width: int,
    device: torch.device,
) -> tuple[torch.Tensor, tuple[float, float], tuple[float, float]]:
    # The crops (the CPU draw step) and the weights in float64 and float32.
    pixels = height * width * len(draws)
    crops = np.stack(each_sample(lambda b: frost_crop(draws[b], folder, height, width), draws, pixels))
    crop = torch.from_numpy(crops).to(device).permute(0, 3, 1, 2)
    pair = (float(weights[0]), float(weights[1]))
    return crop, pair, (float(np.float32(pair[0])), float(np.float32(pair[1])))


def frost(
    images: torch.Tensor,
    severity: Severity,
    rngs: RngBatch = None,
    *,
    textures: str | os.PathLike[str] | None = None,
) -> torch.Tensor:
    """Batched ImageNet-C frost: texture crops drawn on the host, the blend on the device; bit-exact.

    The textures are found as the CPU kernel finds them (``textures``, else
    ``$KEYPOINT_CORRUPT_FROST_DIR``, else an installed imagecorruptions).

    Parameters
    ----------
    images : torch.Tensor
        ``B x C x H x W``, uint8 or float32 in [0, 1], C of 1, 3 or 4, any device.
    severity : int, sequence of int or torch.Tensor
        1 to 5, for the batch or per sample.
    rngs : int, sequence or None
        One NumPy source per sample.
    textures : str or os.PathLike, optional
        Folder of the frost photographs.

    Returns
    -------
    torch.Tensor
        A new batch of the same shape, dtype and device.

    Examples
    --------
    >>> frost(torch.zeros(1, 3, 8, 8, dtype=torch.uint8), 1, textures="/nonexistent")
    Traceback (most recent call last):
    ...
    FileNotFoundError: frost texture /nonexistent/frost1.png not found (from textures=...); install them ...
    """
    folder = _frost_folder(images, textures)

    def group(
        rgb: torch.Tensor, is_u8: bool, weights: tuple[float, float], draws: list[Draws]
    ) -> torch.Tensor:
        h, w = int(rgb.shape[2]), int(rgb.shape[3])
        crop, (a64, b64), (a32, b32) = _frost_host(weights, draws, folder, h, w, rgb.device)
        if is_u8:  # the CPU table: uint8(clip(a x + b f, 0, 255)) in float64
            return store(a64 * rgb.to(torch.float64) + b64 * crop.to(torch.float64), True)
        blended: torch.Tensor = rgb * a32 + crop.to(torch.float32) * b32
        return blended

    return run_groups(images, severity, rngs, "frost", group)


# ---------------------------------------------------------------------------------------------
# Fog


@torch.compiler.disable
def _fog_host(
    params: tuple[float, float], draws: list[Draws], height: int, width: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    # The plasma of every sample (the CPU draw step) and which samples draw from a RandomState.
    pixels = height * width * len(draws)
    plasmas = each_sample(
        lambda b: fog_plasma(draws[b], params, height, width).astype(np.float64), draws, pixels
    )
    legacy = torch.tensor([source.legacy for source in draws], device=device).view(-1, 1, 1, 1)
    return torch.from_numpy(np.stack(plasmas)).to(device)[:, None], legacy


def _fog_group(
    rgb: torch.Tensor, is_u8: bool, params: tuple[float, float], draws: list[Draws]
) -> torch.Tensor:
    strength = float(params[0])
    plasma, legacy = _fog_host(params, draws, int(rgb.shape[2]), int(rgb.shape[3]), rgb.device)
    brightest = rgb.amax(dim=(1, 2, 3), keepdim=True).to(torch.float64) / 255.0
    # A RandomState: the reference's float64 arithmetic, operation for operation.
    exact = rgb.to(torch.float64) / 255.0 + strength * plasma
    exact = exact * brightest / (brightest + strength) * 255.0
    # A Generator: x * 255k + plasma * 255sk in float32, k = max(x) / (max(x) + s).
    gain = brightest / (brightest + strength)
    fast = rgb * gain.to(torch.float32) + plasma.to(torch.float32) * (255.0 * strength * gain).to(
        torch.float32
    )
    return torch.where(legacy, store(exact, is_u8), store(fast, is_u8))


def fog(images: torch.Tensor, severity: Severity, rngs: RngBatch = None) -> torch.Tensor:
    """Batched ImageNet-C fog: plasma built per sample on the host, the blend on the device; bit-exact.

    Parameters
    ----------
    images : torch.Tensor
        ``B x C x H x W``, uint8 or float32 in [0, 1], C of 1, 3 or 4, any device.
    severity : int, sequence of int or torch.Tensor
        1 to 5, for the batch or per sample.
    rngs : int, sequence or None
        One NumPy source per sample (a RandomState draws as imagecorruptions does).

    Returns
    -------
    torch.Tensor
        A new batch of the same shape, dtype and device.

    Examples
    --------
    >>> out = fog(torch.full((2, 3, 24, 32), 200, dtype=torch.uint8), 2, rngs=[0, 1])
    >>> bool((out <= 200).all())
    True
    """
    return run_groups(images, severity, rngs, "fog", _fog_group)


# ---------------------------------------------------------------------------------------------
# Spatter


@torch.compiler.disable
def _spatter_host(
    params: tuple[float, ...], draws: list[Draws], height: int, width: int, device: torch.device
) -> torch.Tensor:
    # Every sample's liquid layer (the CPU draw step: noise, Gaussian, OpenCV edges), float32.
    pixels = height * width * len(draws)
    layers = np.stack(each_sample(lambda b: spatter_layer(draws[b], params, height, width), draws, pixels))
    return torch.from_numpy(layers).to(device)[:, None]


def _spatter_group(
    rgb: torch.Tensor, is_u8: bool, params: tuple[float, ...], draws: list[Draws]
) -> torch.Tensor:
    layer = _spatter_host(params, draws, int(rgb.shape[2]), int(rgb.shape[3]), rgb.device)
    unit = rgb / 255.0  # float32
    if params[5] == 0:  # water: x + sheen * colour in float32, clipped to [0, 1]
        colour = torch.tensor(_WATER32, device=rgb.device).view(1, 3, 1, 1)
        return store((unit + layer * colour).clamp(0.0, 1.0) * 255.0, is_u8)
    colour64 = torch.tensor(_MUD_RGB, dtype=torch.float64, device=rgb.device).view(1, 3, 1, 1)
    darker = (unit * (1 - layer)).to(torch.float64)
    return store((darker + colour64 * layer.to(torch.float64)) * 255.0, is_u8)


def spatter(images: torch.Tensor, severity: Severity, rngs: RngBatch = None) -> torch.Tensor:
    """Batched ImageNet-C spatter (an extra): liquid layers on the host, the blend on the device; bit-exact.

    Parameters
    ----------
    images : torch.Tensor
        ``B x C x H x W``, uint8 or float32 in [0, 1], C of 1, 3 or 4, any device.
    severity : int, sequence of int or torch.Tensor
        1 to 5, for the batch or per sample.
    rngs : int, sequence or None
        One NumPy source per sample (a RandomState draws as imagecorruptions does).

    Returns
    -------
    torch.Tensor
        A new batch of the same shape, dtype and device.

    Examples
    --------
    >>> spatter(torch.full((2, 3, 24, 32), 100, dtype=torch.uint8), [1, 4], rngs=[0, 1]).shape
    torch.Size([2, 3, 24, 32])
    """
    return run_groups(images, severity, rngs, "spatter", _spatter_group)
