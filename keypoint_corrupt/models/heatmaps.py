"""Score maps for PoseNet: Gaussian targets, hand3d's loss, and decoding to coordinates.

Alignment. hand3d upsamples its 32 x 32 score maps to the 256 crop with TensorFlow 1's
``tf.image.resize_images`` (bilinear, ``align_corners=False`` without half-pixel centres),
which samples the small map at ``dst * 32 / 256``: score-map cell ``i`` sits on crop pixel
``8 i``. The network is trained against targets at crop resolution through that same
upsampling, so cell ``i`` *means* crop pixel ``8 i``. ``align="tf1"`` (the default
everywhere here) keeps that convention; ``align="half-pixel"`` uses the modern one (cell
``i`` centred on crop pixel ``8 i + 3.5``) for models trained with it.
"""

from __future__ import annotations

from typing import Literal

from keypoint_corrupt.models._torch import torch

__all__ = [
    "Align",
    "DecodeMethod",
    "cells_to_pixels",
    "decode_score_maps",
    "gaussian_score_maps",
    "posenet_loss",
    "upsample_score_maps",
]

Align = Literal["tf1", "half-pixel"]
DecodeMethod = Literal["argmax", "quadratic"]


def _check_align(align: str) -> None:
    if align not in ("tf1", "half-pixel"):
        raise ValueError(f"align must be 'tf1' or 'half-pixel', got {align!r}")


def _pair(size: int | tuple[int, int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def _source_index(
    n_out: int, n_in: int, align: Align, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    dst = torch.arange(n_out, device=device, dtype=torch.float32)
    if align == "tf1":
        src = dst * (n_in / n_out)
    else:
        src = ((dst + 0.5) * (n_in / n_out) - 0.5).clamp(min=0.0)
    lo = src.floor().long().clamp(max=n_in - 1)
    hi = (lo + 1).clamp(max=n_in - 1)
    return lo, hi, (src - lo.to(src.dtype)).clamp(0.0, 1.0)


def upsample_score_maps(
    maps: torch.Tensor, size: int | tuple[int, int], align: Align = "tf1"
) -> torch.Tensor:
    """Bilinearly upsample ``B x J x h x w`` score maps to ``size``.

    Parameters
    ----------
    maps : torch.Tensor
        ``B x J x h x w``.
    size : int or (int, int)
        Output ``(H, W)``.
    align : {"tf1", "half-pixel"}
        ``"tf1"`` reproduces TensorFlow 1's ``resize_images`` (hand3d):
        ``src = dst * h / H``, neighbours clamped at the border.

    Returns
    -------
    torch.Tensor
        ``B x J x H x W``.

    Examples
    --------
    >>> m = torch.zeros(1, 1, 4, 4); m[0, 0, 1, 2] = 1.0
    >>> up = upsample_score_maps(m, 32)
    >>> divmod(int(up[0, 0].argmax()), 32)  # cell (1, 2) lands on pixel (8, 16)
    (8, 16)
    """
    _check_align(align)
    out_h, out_w = _pair(size)
    in_h, in_w = maps.shape[-2:]
    y0, y1, wy = _source_index(out_h, in_h, align, maps.device)
    x0, x1, wx = _source_index(out_w, in_w, align, maps.device)
    wy = wy.to(maps.dtype)[:, None]
    wx = wx.to(maps.dtype)
    # Separable: rows first, then columns (index_select keeps autograd and AMP happy).
    rows = maps.index_select(-2, y0) * (1 - wy) + maps.index_select(-2, y1) * wy
    return rows.index_select(-1, x0) * (1 - wx) + rows.index_select(-1, x1) * wx


def cells_to_pixels(cells: torch.Tensor, stride: float, align: Align = "tf1") -> torch.Tensor:
    """Convert (fractional) score-map cell coordinates to crop pixels.

    Examples
    --------
    >>> cell = torch.tensor([2.0])
    >>> cells_to_pixels(cell, 8.0).item(), cells_to_pixels(cell, 8.0, "half-pixel").item()
    (16.0, 19.5)
    """
    _check_align(align)
    return cells * stride if align == "tf1" else (cells + 0.5) * stride - 0.5


def gaussian_score_maps(
    keypoints: torch.Tensor,
    visibility: torch.Tensor,
    size: int | tuple[int, int],
    sigma: float = 25.0,
    *,
    stride: float = 1.0,
    align: Align = "tf1",
    crop_size: int | tuple[int, int] | None = None,
    quantize: bool = True,
) -> torch.Tensor:
    """hand3d's Gaussian score-map targets.

    ``exp(-d^2 / sigma^2)`` (hand3d's formula: no factor 2) of the distance ``d`` in crop
    pixels between each map cell and the keypoint; zero for invisible joints and for
    joints outside the crop, as hand3d does.

    Parameters
    ----------
    keypoints : torch.Tensor
        ``B x J x 2`` (x, y) in crop pixels.
    visibility : torch.Tensor
        ``B x J`` bool or 0/1.
    size : int or (int, int)
        Map ``(H, W)``: the crop size for hand3d's crop-resolution targets, or the score-map
        size together with ``stride``.
    sigma : float
        In crop pixels (hand3d: 25 on the 256 crop).
    stride : float
        Crop pixels per map cell (1 at crop resolution, 8 for PoseNet's 32 x 32 maps).
    align : {"tf1", "half-pixel"}
        Where cell centres sit in crop pixels when ``stride > 1`` (see module notes).
    crop_size : int or (int, int), optional
        Crop ``(H, W)`` for the inside test; default ``size * stride``.
    quantize : bool
        Truncate keypoints to integer pixels first, as hand3d does.

    Returns
    -------
    torch.Tensor
        ``B x J x H x W`` float32.

    Examples
    --------
    >>> kp = torch.tensor([[[100.0, 60.0]]]); vis = torch.ones(1, 1)
    >>> t = gaussian_score_maps(kp, vis, 256)
    >>> t.shape, float(t[0, 0, 60, 100])
    (torch.Size([1, 1, 256, 256]), 1.0)
    """
    _check_align(align)
    height, width = _pair(size)
    crop_h, crop_w = _pair(crop_size) if crop_size is not None else (height * stride, width * stride)
    kp = keypoints.to(torch.float32)
    if quantize:
        kp = kp.trunc()
    device = kp.device
    ys = cells_to_pixels(torch.arange(height, device=device, dtype=torch.float32), stride, align)
    xs = cells_to_pixels(torch.arange(width, device=device, dtype=torch.float32), stride, align)
    dx2 = (xs.view(1, 1, 1, -1) - kp[..., 0, None, None]) ** 2
    dy2 = (ys.view(1, 1, -1, 1) - kp[..., 1, None, None]) ** 2
    inside = (kp[..., 0] > 0) & (kp[..., 0] < crop_w - 1) & (kp[..., 1] > 0) & (kp[..., 1] < crop_h - 1)
    keep = (visibility.to(device).bool() & inside).to(torch.float32)
    return torch.exp(-(dx2 + dy2) / float(sigma) ** 2) * keep[..., None, None]


def posenet_loss(
    stage_maps: list[torch.Tensor] | tuple[torch.Tensor, ...],
    keypoints: torch.Tensor,
    visibility: torch.Tensor,
    crop_size: int | tuple[int, int],
    sigma: float = 25.0,
    *,
    resolution: Literal["crop", "map"] = "crop",
    align: Align = "tf1",
) -> torch.Tensor:
    """hand3d's PoseNet training loss, summed over stages.

    Per stage: the maps are upsampled to the crop (``resolution="crop"``, as hand3d) and
    compared with :func:`gaussian_score_maps`; the loss is the visibility-weighted mean,
    over (image, joint), of the per-map root mean squared error:
    ``sum(vis * sqrt(mean_hw((pred - target)^2))) / (sum(vis) + 0.001)``.
    ``resolution="map"`` compares at score-map resolution instead (sigma in crop pixels
    still; cheaper, not hand3d's).

    Parameters
    ----------
    stage_maps : list of torch.Tensor
        ``B x J x h x w`` maps of every stage (``PoseNet.forward``).
    keypoints : torch.Tensor
        ``B x J x 2`` targets (x, y) in crop pixels.
    visibility : torch.Tensor
        ``B x J`` bool or 0/1.
    crop_size : int or (int, int)
        Side(s) of the input crop.
    sigma : float
        Target width in crop pixels.
    resolution : {"crop", "map"}
        Where the comparison happens.
    align : {"tf1", "half-pixel"}
        Score-map alignment (see module notes).

    Returns
    -------
    torch.Tensor
        Scalar float32.

    Examples
    --------
    >>> maps = [torch.zeros(2, 21, 8, 8)] * 3
    >>> kp = torch.full((2, 21, 2), 30.0); vis = torch.ones(2, 21)
    >>> float(posenet_loss(maps, kp, vis, 64)) > 0
    True
    """
    if resolution not in ("crop", "map"):
        raise ValueError(f"resolution must be 'crop' or 'map', got {resolution!r}")
    crop_h, crop_w = _pair(crop_size)
    h, w = stage_maps[0].shape[-2:]
    vis = visibility.to(torch.float32)
    if resolution == "crop":
        target = gaussian_score_maps(keypoints, vis, (crop_h, crop_w), sigma, align=align)
    else:
        target = gaussian_score_maps(
            keypoints, vis, (h, w), sigma, stride=crop_w / w, align=align, crop_size=(crop_h, crop_w)
        )
    total = torch.zeros((), device=target.device)
    for maps in stage_maps:
        pred = maps.float()
        if resolution == "crop":
            pred = upsample_score_maps(pred, (crop_h, crop_w), align)
        rmse = torch.sqrt((pred - target).square().mean(dim=(-2, -1)) + 1e-12)
        total = total + (vis * rmse).sum() / (vis.sum() + 0.001)
    return total


def _refine_quadratic(
    maps: torch.Tensor, iy: torch.Tensor, ix: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    h, w = maps.shape[-2:]

    def offset(lo: torch.Tensor, mid: torch.Tensor, hi: torch.Tensor, ok: torch.Tensor) -> torch.Tensor:
        # Fit the parabola in the log domain where it can (exact for a Gaussian peak).
        positive = (lo > 0) & (mid > 0) & (hi > 0)
        lo_, mid_, hi_ = (torch.where(positive, v.clamp_min(1e-30).log(), v) for v in (lo, mid, hi))
        curvature = lo_ - 2 * mid_ + hi_
        step = torch.where(curvature < 0, 0.5 * (lo_ - hi_) / curvature.clamp(max=-1e-12), 0.0)
        return torch.where(ok, step.clamp(-0.5, 0.5), 0.0)

    def at(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        flat = maps.flatten(-2)
        return flat.gather(-1, (y.clamp(0, h - 1) * w + x.clamp(0, w - 1))[..., None])[..., 0]

    mid = at(iy, ix)
    dx = offset(at(iy, ix - 1), mid, at(iy, ix + 1), (ix > 0) & (ix < w - 1))
    dy = offset(at(iy - 1, ix), mid, at(iy + 1, ix), (iy > 0) & (iy < h - 1))
    return ix + dx, iy + dy


def decode_score_maps(
    maps: torch.Tensor,
    crop_size: int | tuple[int, int] | None = None,
    method: DecodeMethod = "argmax",
    *,
    align: Align = "tf1",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Keypoint coordinates (crop pixels) from PoseNet score maps.

    Parameters
    ----------
    maps : torch.Tensor
        ``B x J x h x w`` score maps (the last stage of ``PoseNet.forward``).
    crop_size : int or (int, int), optional
        Crop ``(H, W)``; default ``8 * (h, w)``.
    method : {"argmax", "quadratic"}
        ``"argmax"``: hand3d's decoding, the argmax of the maps bilinearly upsampled to the
        crop (integer pixels; with ``align="tf1"`` a multiple of the stride).
        ``"quadratic"``: the score-map argmax refined per axis by the vertex of a parabola
        through it and its two neighbours, fitted to log scores when they are positive
        (exact for a Gaussian peak); offsets clipped to half a cell.
    align : {"tf1", "half-pixel"}
        Score-map alignment (see module notes).

    Returns
    -------
    coords : torch.Tensor
        ``B x J x 2`` float (x, y) in crop pixels.
    scores : torch.Tensor
        ``B x J`` score at the integer argmax.

    Examples
    --------
    >>> m = torch.zeros(1, 1, 32, 32); m[0, 0, 10, 20] = 1.0
    >>> decode_score_maps(m)[0].tolist()
    [[[160.0, 80.0]]]
    """
    if method not in ("argmax", "quadratic"):
        raise ValueError(f"method must be 'argmax' or 'quadratic', got {method!r}")
    _check_align(align)
    maps = maps.detach().float()
    h, w = maps.shape[-2:]
    crop_h, crop_w = _pair(crop_size) if crop_size is not None else (8 * h, 8 * w)
    if method == "argmax":
        up = upsample_score_maps(maps, (crop_h, crop_w), align)
        scores, idx = up.flatten(-2).max(dim=-1)
        coords = torch.stack(
            [(idx % crop_w).float(), torch.div(idx, crop_w, rounding_mode="floor").float()], -1
        )
        return coords, scores
    scores, idx = maps.flatten(-2).max(dim=-1)
    iy, ix = torch.div(idx, w, rounding_mode="floor"), idx % w
    cx, cy = _refine_quadratic(maps, iy, ix)
    coords = torch.stack(
        [cells_to_pixels(cx.float(), crop_w / w, align), cells_to_pixels(cy.float(), crop_h / h, align)], -1
    )
    return coords, scores
