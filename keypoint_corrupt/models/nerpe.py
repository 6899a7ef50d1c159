"""NerPE: continuous heatmap regression with an implicit neural representation.

Hu et al., "Continuous Heatmap Regression for Pose Estimation via Implicit Neural
Representation" (NeurIPS 2024). An encoder produces a coarse feature grid; an MLP maps
(feature of a grid cell, query position relative to that cell) to one confidence per joint,
so the heatmap can be read at any continuous position. The four cells around a query each
predict, and the predictions are blended with the diagonally swapped areas (LIIF's local
ensemble), which makes the field continuous across cell borders.

Coordinates. Public functions take and return (x, y) in input pixels, pixel centres at
integers (the image spans [-0.5, W - 0.5]). A feature grid of ``h x w`` cells tiles the
image; cell ``(i, j)`` is centred on pixel ``((j + 0.5) W / w - 0.5, (i + 0.5) H / h - 0.5)``.
Target widths use NerPE's normalised units: pixels divided by ``max(H, W) / 2``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, overload

from keypoint_corrupt.models._torch import nn, torch
from keypoint_corrupt.models.posenet import LEAKY_SLOPE, PoseNetTrunk

__all__ = [
    "DecodeResult",
    "NerPE",
    "continuous_targets",
    "decode_field",
    "grid_points",
    "nerpe_loss",
    "sample_queries",
]

DecodeMode = Literal["standard", "progressive"]
Field = Callable[[torch.Tensor], torch.Tensor]


def _pair(size: int | Sequence[int]) -> tuple[int, int]:
    return (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))


class NerPE(nn.Module):
    """NerPE: an encoder feature grid and an MLP decoder queried at continuous positions.

    Parameters
    ----------
    num_keypoints : int
        Confidences per query (J).
    encoder : "posenet" or torch.nn.Module
        ``"posenet"`` (default): PoseNet's trunk up to the encoding (conv1_1 .. conv4_7,
        :class:`~keypoint_corrupt.models.posenet.PoseNetTrunk`), so NerPE and PoseNet see
        the same 128-channel, stride-8 features. A module must map ``B x 3 x H x W`` to
        ``B x C x h x w`` and expose ``out_channels``.
    feature_channels : int
        Channels the decoder reads per cell (released decoder: 256). When the encoder
        gives a different number (PoseNet's trunk: 128), a 1 x 1 convolution with a leaky
        ReLU projects it; being non-linear, it is not absorbed by the first MLP layer.
    hidden : sequence of int
        Hidden widths of the MLP (released: 256, 256, 128, 128, 128; ReLU between layers).
    local_ensemble : bool
        Blend the four nearest cells (True, as NerPE) or use the nearest cell only.

    Notes
    -----
    The decoder's input is ``[feature, dx, dy]`` with ``(dx, dy)`` the query's offset from
    the cell centre in cell units. Input images are scaled as for PoseNet
    (:func:`~keypoint_corrupt.models.posenet.preprocess_images`).

    Examples
    --------
    >>> model = NerPE()
    >>> images = torch.zeros(2, 3, 64, 64)
    >>> coords = torch.tensor([[[10.0, 20.5]], [[63.0, 0.0]]])
    >>> tuple(model.query(images, coords).shape)
    (2, 1, 21)
    >>> tuple(model.decode(images, 64).shape)
    (2, 21, 2)
    """

    def __init__(
        self,
        num_keypoints: int = 21,
        encoder: str | nn.Module = "posenet",
        *,
        feature_channels: int = 256,
        hidden: Sequence[int] = (256, 256, 128, 128, 128),
        local_ensemble: bool = True,
    ):
        super().__init__()
        if isinstance(num_keypoints, bool) or not isinstance(num_keypoints, int) or num_keypoints < 1:
            raise ValueError(f"num_keypoints must be a positive integer, got {num_keypoints!r}")
        if isinstance(encoder, str):
            if encoder != "posenet":
                raise ValueError(f"encoder must be 'posenet' or an nn.Module, got {encoder!r}")
            trunk = PoseNetTrunk()
            self.encoder: nn.Module = trunk
            self.encoder_name = "posenet"
            enc_channels = trunk.out_channels
        elif isinstance(encoder, nn.Module):
            out_channels = getattr(encoder, "out_channels", None)
            if not isinstance(out_channels, int):
                raise ValueError("a custom encoder must expose an integer `out_channels` attribute")
            self.encoder = encoder
            enc_channels = out_channels
            self.encoder_name = "custom"
        else:
            raise TypeError(f"encoder must be 'posenet' or an nn.Module, got {type(encoder).__name__}")
        self.num_keypoints = num_keypoints
        self.feature_channels = int(feature_channels)
        self.hidden = tuple(int(h) for h in hidden)
        self.local_ensemble = bool(local_ensemble)
        self.project: nn.Module
        if enc_channels == self.feature_channels:
            self.project = nn.Identity()
        else:
            self.project = nn.Sequential(
                nn.Conv2d(enc_channels, self.feature_channels, 1), nn.LeakyReLU(LEAKY_SLOPE)
            )
        layers: list[nn.Module] = []
        width = self.feature_channels + 2
        for h in self.hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, num_keypoints))
        self.decoder = nn.Sequential(*layers)

    @property
    def model_name(self) -> str:
        """Registry name: ``"nerpe"``."""
        return "nerpe"

    def config(self) -> dict[str, Any]:
        """Return the constructor arguments stored in checkpoints (a custom encoder as ``"custom"``)."""
        return {
            "num_keypoints": self.num_keypoints,
            "encoder": self.encoder_name,
            "feature_channels": self.feature_channels,
            "hidden": list(self.hidden),
            "local_ensemble": self.local_ensemble,
        }

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Feature grid ``B x C x h x w`` (``C = feature_channels``) of preprocessed images."""
        return self.project(self.encoder(images))

    def query_features(
        self, features: torch.Tensor, coords: torch.Tensor, image_size: int | Sequence[int]
    ) -> torch.Tensor:
        """Confidences at ``coords`` from a precomputed feature grid.

        Parameters
        ----------
        features : torch.Tensor
            ``B x C x h x w`` from :meth:`features`.
        coords : torch.Tensor
            ``B x N x 2`` (x, y) in input pixels.
        image_size : int or (int, int)
            Input ``(H, W)`` the grid tiles.

        Returns
        -------
        torch.Tensor
            ``B x N x J``.
        """
        height, width = _pair(image_size)
        b, c, h, w = features.shape
        # Positions stay float32 under autocast: cell indices must be exact.
        coords = coords.to(device=features.device, dtype=torch.float32)
        # Fractional cell coordinates: cell centres at integers.
        cx = (coords[..., 0] + 0.5) * (w / width) - 0.5
        cy = (coords[..., 1] + 0.5) * (h / height) - 0.5
        flat = features.flatten(2).transpose(1, 2)  # B x (h w) x C
        if self.local_ensemble:
            x0, y0 = cx.floor(), cy.floor()
            corners = [(x0 + a, y0 + bb) for bb in (0, 1) for a in (0, 1)]
        else:
            corners = [(cx.round(), cy.round())]
        ix = torch.stack([cxr.clamp(0, w - 1) for cxr, _ in corners], 1)  # B x K x N
        iy = torch.stack([cyr.clamp(0, h - 1) for _, cyr in corners], 1)
        rel = torch.stack([cx[:, None] - ix, cy[:, None] - iy], -1)  # B x K x N x 2, cell units
        index = (iy * w + ix).long().flatten(1)  # B x (K N)
        feats = flat.gather(1, index[..., None].expand(-1, -1, c)).view(b, *ix.shape[1:], c)
        pred = self.decoder(torch.cat([feats, rel.to(feats.dtype)], -1))  # B x K x N x J
        if not self.local_ensemble:
            return pred[:, 0]
        # Each corner is weighted by the area spanned with its diagonal opposite (bilinear
        # weights inside the grid; LIIF's rule, which stays well defined at the border).
        area = (rel[..., 0] * rel[..., 1]).abs() + 1e-9  # B x 4 x N
        weights = area.flip(1) / area.sum(1, keepdim=True)  # corner k <-> corner 3 - k
        return (pred * weights[..., None].to(pred.dtype)).sum(1)

    def query(self, images: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
        """Confidences at arbitrary continuous positions.

        Parameters
        ----------
        images : torch.Tensor
            ``B x 3 x H x W`` preprocessed images.
        coords : torch.Tensor
            ``B x N x 2`` (x, y) in input pixels.

        Returns
        -------
        torch.Tensor
            ``B x N x J`` confidences.
        """
        return self.query_features(self.features(images), coords, images.shape[-2:])

    def forward(self, images: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
        """Return confidences at ``coords``, like :meth:`query`."""
        return self.query(images, coords)

    @overload
    def decode(
        self,
        images: torch.Tensor,
        resolution: int | Sequence[int],
        mode: DecodeMode = ...,
        *,
        coarse: int | None = ...,
        radius: int = ...,
        return_result: Literal[False] = ...,
        chunk: int = ...,
    ) -> torch.Tensor: ...

    @overload
    def decode(
        self,
        images: torch.Tensor,
        resolution: int | Sequence[int],
        mode: DecodeMode = ...,
        *,
        coarse: int | None = ...,
        radius: int = ...,
        return_result: Literal[True],
        chunk: int = ...,
    ) -> DecodeResult: ...

    @torch.no_grad()
    def decode(
        self,
        images: torch.Tensor,
        resolution: int | Sequence[int],
        mode: DecodeMode = "standard",
        *,
        coarse: int | None = None,
        radius: int = 2,
        return_result: bool = False,
        chunk: int = 16384,
    ) -> torch.Tensor | DecodeResult:
        """Keypoint coordinates by maximising the confidence field.

        Parameters
        ----------
        images : torch.Tensor
            ``B x 3 x H x W`` preprocessed images.
        resolution : int or (int, int)
            Fine grid ``(R_h, R_w)`` the answer lies on (see :func:`grid_points`).
        mode : {"standard", "progressive"}
            See :func:`decode_field`.
        coarse : int, optional
            Progressive: target coarse grid side (default: the feature grid's side).
        radius : int
            Progressive: window radius in current steps.
        return_result : bool
            Return the full :class:`DecodeResult` (coordinates, scores, evaluations).
        chunk : int
            Queries per decoder call (memory bound).

        Returns
        -------
        torch.Tensor or DecodeResult
            ``B x J x 2`` (x, y) in input pixels.
        """
        feats = self.features(images)
        size = tuple(images.shape[-2:])
        result = decode_field(
            lambda q: self.query_features(feats, q, size),
            size,
            resolution,
            mode,
            batch_size=images.shape[0],
            device=images.device,
            coarse=coarse if coarse is not None else max(feats.shape[-2:]),
            radius=radius,
            chunk=chunk,
        )
        return result if return_result else result.coords


@dataclass(frozen=True)
class DecodeResult:
    """Output of :func:`decode_field`.

    Attributes
    ----------
    coords : torch.Tensor
        ``B x J x 2`` (x, y) in input pixels.
    scores : torch.Tensor
        ``B x J`` confidence at ``coords``.
    evaluations : int
        Query points evaluated per image.
    """

    coords: torch.Tensor
    scores: torch.Tensor
    evaluations: int


def grid_points(
    image_size: int | Sequence[int], resolution: int | Sequence[int], device=None
) -> torch.Tensor:
    """Pixel positions of an ``R_h x R_w`` decoding grid over an ``H x W`` image.

    Point ``(i, j)`` sits at ``((j + 0.5) W / R_w - 0.5, (i + 0.5) H / R_h - 0.5)``: the
    centres of an ``R_h x R_w`` tiling, as NerPE's heatmap decoding (``R = H`` gives the
    pixel centres).

    Returns
    -------
    torch.Tensor
        ``R_h x R_w x 2`` (x, y).

    Examples
    --------
    >>> grid_points(8, 2)[..., 0].tolist()
    [[1.5, 5.5], [1.5, 5.5]]
    """
    height, width = _pair(image_size)
    rh, rw = _pair(resolution)
    ys = (torch.arange(rh, device=device, dtype=torch.float32) + 0.5) * (height / rh) - 0.5
    xs = (torch.arange(rw, device=device, dtype=torch.float32) + 0.5) * (width / rw) - 0.5
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx, gy], -1)


def _evaluate(field: Field, coords: torch.Tensor, chunk: int) -> torch.Tensor:
    outs = [field(coords[:, i : i + chunk]) for i in range(0, coords.shape[1], chunk)]
    return torch.cat(outs, 1).float()


def decode_field(
    field: Field,
    image_size: int | Sequence[int],
    resolution: int | Sequence[int],
    mode: DecodeMode = "standard",
    *,
    batch_size: int = 1,
    device: torch.device | str | None = None,
    coarse: int = 32,
    radius: int = 2,
    chunk: int = 16384,
) -> DecodeResult:
    """Arg-maximise a per-joint confidence field on a fine grid, densely or coarse-to-fine.

    Parameters
    ----------
    field : callable
        ``field(coords)`` with ``coords`` ``B x N x 2`` (x, y) pixels returns ``B x N x J``.
    image_size : int or (int, int)
        ``(H, W)`` of the image the field lives on.
    resolution : int or (int, int)
        Fine grid ``(R_h, R_w)`` (:func:`grid_points`); answers lie on it.
    mode : {"standard", "progressive"}
        ``"standard"``: evaluate every fine-grid point, take each joint's argmax
        (``R_h R_w`` evaluations).
        ``"progressive"``: (1) evaluate a coarse sub-grid, every ``d0``-th fine point with
        ``d0`` the largest power of two such that the grid keeps at least ``coarse`` points
        per side, starting at ``d0 // 2``; take each joint's argmax. (2) For
        ``d = d0 / 2, d0 / 4, ..., 1``: evaluate the ``(2 radius + 1)^2`` fine points
        ``best + d * (-radius .. radius)`` (clipped to the grid) around each joint's current
        best and move there. The window (``radius * d`` fine steps) halves every level, so
        the cost is ``coarse_points + J * log2(d0) * (2 radius + 1)^2`` evaluations.
    batch_size : int
        B, the number of images the field answers for.
    device : torch.device or str, optional
        Where query coordinates are created.
    coarse : int
        Minimum coarse-grid points per side (progressive).
    radius : int
        Window radius in current steps (progressive).
    chunk : int
        Points per field call.

    Returns
    -------
    DecodeResult

    Examples
    --------
    >>> peak = torch.tensor([40.3, 17.8])
    >>> f = lambda q: torch.exp(-((q - peak) ** 2).sum(-1, keepdim=True) / 50.0)
    >>> r = decode_field(f, 64, 64, "progressive", batch_size=1, coarse=8)
    >>> r.coords.tolist(), r.evaluations < 64 * 64
    ([[[40.0, 18.0]]], True)
    """
    if mode not in ("standard", "progressive"):
        raise ValueError(f"mode must be 'standard' or 'progressive', got {mode!r}")
    if radius < 1:
        raise ValueError(f"radius must be >= 1, got {radius!r}")
    rh, rw = _pair(resolution)
    height, width = _pair(image_size)
    b = int(batch_size)

    def pixel(iy: torch.Tensor, ix: torch.Tensor) -> torch.Tensor:
        return torch.stack([(ix + 0.5) * (width / rw) - 0.5, (iy + 0.5) * (height / rh) - 0.5], -1)

    if mode == "standard":
        pts = grid_points((height, width), (rh, rw), device).view(1, -1, 2).expand(b, -1, -1)
        values = _evaluate(field, pts, chunk)  # B x N x J
        scores, idx = values.max(dim=1)
        iy, ix = torch.div(idx, rw, rounding_mode="floor").float(), (idx % rw).float()
        return DecodeResult(pixel(iy, ix), scores, rh * rw)

    step = 1 << max(0, math.floor(math.log2(max(1, min(rh, rw) // max(1, coarse)))))
    cy = torch.arange(step // 2, rh, step, dtype=torch.float32, device=device)
    cx = torch.arange(step // 2, rw, step, dtype=torch.float32, device=device)
    gy, gx = torch.meshgrid(cy, cx, indexing="ij")
    values = _evaluate(field, pixel(gy, gx).view(1, -1, 2).expand(b, -1, -1), chunk)
    evaluations = gy.numel()
    scores, idx = values.max(dim=1)  # B x J
    best_y, best_x = gy.flatten()[idx], gx.flatten()[idx]
    num_joints = scores.shape[1]
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32, device=idx.device)
    oy, ox = (o.flatten() for o in torch.meshgrid(offsets, offsets, indexing="ij"))
    joint = torch.arange(num_joints, device=idx.device)
    d = step
    while d > 1:
        d //= 2
        ys = (best_y[..., None] + d * oy).clamp(0, rh - 1)  # B x J x K
        xs = (best_x[..., None] + d * ox).clamp(0, rw - 1)
        k = ys.shape[-1]
        out = _evaluate(field, pixel(ys, xs).view(b, -1, 2), chunk).view(b, num_joints, k, num_joints)
        own = out[:, joint, :, joint].transpose(0, 1)  # B x J x K: joint j's score at its own window
        evaluations += num_joints * k
        scores, pick = own.max(dim=-1)
        best_y = ys.gather(-1, pick[..., None])[..., 0]
        best_x = xs.gather(-1, pick[..., None])[..., 0]
    return DecodeResult(pixel(best_y, best_x), scores, evaluations)


def sample_queries(
    batch_size: int,
    grid_size: int | Sequence[int],
    image_size: int | Sequence[int],
    subcells: int = 4,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """NerPE's training queries: one uniform point in every sub-cell of every grid cell.

    Each of the ``h x w`` feature cells is split into ``subcells x subcells`` sub-cells and
    one point is drawn uniformly inside each (stratified sampling: every region of the image
    is covered at every step, at sub-cell jitter).

    Parameters
    ----------
    batch_size : int
        B (independent draws per image).
    grid_size : int or (int, int)
        Feature grid ``(h, w)``.
    image_size : int or (int, int)
        Input ``(H, W)``.
    subcells : int
        Sub-cells per cell side. NerPE's released code uses 8 on a 16 x 16 grid for a 256
        input (one sample per 2 x 2 pixels); PoseNet's trunk gives a 32 x 32 grid, where 4
        keeps that density (16,384 queries per 256 x 256 image).
    generator : torch.Generator, optional
        For reproducible draws (must live on ``device``).
    device : torch.device or str, optional
        Where the result is created.

    Returns
    -------
    torch.Tensor
        ``B x (h w subcells^2) x 2`` (x, y) in input pixels.

    Examples
    --------
    >>> q = sample_queries(2, 8, 64, 4)
    >>> tuple(q.shape), bool((q >= -0.5).all() and (q <= 63.5).all())
    ((2, 1024, 2), True)
    """
    h, w = _pair(grid_size)
    height, width = _pair(image_size)
    nh, nw = h * subcells, w * subcells
    # Sub-cell corners in pixels (the image spans [-0.5, W - 0.5]).
    y0 = torch.arange(nh, device=device, dtype=torch.float32) * (height / nh) - 0.5
    x0 = torch.arange(nw, device=device, dtype=torch.float32) * (width / nw) - 0.5
    gy, gx = torch.meshgrid(y0, x0, indexing="ij")
    corner = torch.stack([gx, gy], -1).view(1, -1, 2)
    jitter = torch.rand(batch_size, nh * nw, 2, generator=generator, device=device)
    return corner + jitter * torch.tensor([width / nw, height / nh], device=device)


def continuous_targets(
    coords: torch.Tensor,
    keypoints: torch.Tensor,
    visibility: torch.Tensor,
    image_size: int | Sequence[int],
    *,
    kind: Literal["gaussian", "laplace"] = "gaussian",
    sigma: float = 0.06,
    b: float = 0.09,
) -> torch.Tensor:
    """Continuous confidence targets at query points.

    Gaussian ``exp(-d^2 / (2 sigma^2))`` or Laplace ``exp(-d / b)`` of the distance ``d``
    between query and joint, in NerPE's normalised units (pixels / (max(H, W) / 2));
    zero for invisible joints.

    Parameters
    ----------
    coords : torch.Tensor
        ``B x N x 2`` query points (x, y) in pixels.
    keypoints : torch.Tensor
        ``B x J x 2`` joints (x, y) in pixels.
    visibility : torch.Tensor
        ``B x J`` bool or 0/1.
    image_size : int or (int, int)
        Input ``(H, W)``.
    kind : {"gaussian", "laplace"}
        Target profile.
    sigma, b : float
        Widths in normalised units (NerPE: sigma 0.06, i.e. 7.68 px on a 256 input; b 0.09).

    Returns
    -------
    torch.Tensor
        ``B x N x J`` float32.

    Examples
    --------
    >>> point = torch.tensor([[[10.0, 10.0]]])
    >>> float(continuous_targets(point, point, torch.ones(1, 1), 256))
    1.0
    """
    if kind not in ("gaussian", "laplace"):
        raise ValueError(f"kind must be 'gaussian' or 'laplace', got {kind!r}")
    half = max(_pair(image_size)) / 2.0
    diff = (coords.float()[:, :, None, :] - keypoints.float()[:, None, :, :]) / half
    d2 = diff.square().sum(-1)
    target = torch.exp(-d2 / (2 * sigma**2)) if kind == "gaussian" else torch.exp(-d2.sqrt() / b)
    return target * visibility.float()[:, None, :]


def nerpe_loss(pred: torch.Tensor, target: torch.Tensor, visibility: torch.Tensor) -> torch.Tensor:
    """NerPE's loss: ``0.5 * MSE`` over the queries of visible joints.

    Parameters
    ----------
    pred, target : torch.Tensor
        ``B x N x J``.
    visibility : torch.Tensor
        ``B x J`` bool or 0/1; invisible joints do not contribute.

    Returns
    -------
    torch.Tensor
        Scalar float32.

    Examples
    --------
    >>> float(nerpe_loss(torch.ones(1, 4, 2), torch.zeros(1, 4, 2), torch.tensor([[1.0, 0.0]])))
    0.5
    """
    vis = visibility.float()[:, None, :]
    sq = (pred.float() - target.float()).square() * vis
    return 0.5 * sq.sum() / (vis.sum() * pred.shape[1]).clamp_min(1.0)
