"""hand3d's hand crop around the ground-truth keypoints, and its inverse.

One convention throughout: ``scale`` is **crop pixels per source pixel of the crop it is used
with**, always paired with that crop's side ``size``. A crop maps source pixel ``uv`` to
``(uv - center) * scale + size / 2``; errors in crop pixels divided by ``scale`` are source
pixels. For hand3d's 256 crop ``scale`` is hand3d's own; the same region cut at another
``size`` has ``scale * size / 256`` (:meth:`CropInfo.resized`). The module needs only NumPy and
OpenCV (no torch), so user predictors can use it.

The protocol (``../shared/docs/stb-format.md``): centre on keypoint 12 (middle-finger MCP in
hand3d's order; for other joint orders pass ``schema=`` and the crop centres on the schema's
``crop_anchor`` joints by name, see :mod:`keypoint_corrupt.schema`); crop extent
``2 * max(max_xy - centre, centre - min_xy)`` over the visible keypoints clipped to the image,
clipped to [50, 500] px; ``scale = clip(256 / extent, 1, 10)``; a 256 x 256 crop around the
centre, keypoints mapping as ``uv' = (uv - centre) * scale + 128``.

The image is resampled with exactly that map (bilinear), so the crop and its keypoints agree
to floating-point precision. hand3d's ``tf.image.crop_and_resize`` call normalises its box
by the image size instead of ``size - 1`` and floors half the box, which shifts its crop by
under a pixel relative to its own keypoint formula; that quirk is not reproduced.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from keypoint_corrupt.schema import KeypointSchema, get_schema

__all__ = [
    "CENTER_JOINT",
    "CROP_SIZE",
    "CropInfo",
    "HandCrop",
    "crop_parameters",
    "hand_crop",
    "uncrop_keypoints",
    "warp_crop",
]

#: hand3d's crop size; the clipping bounds below are defined for it.
CROP_SIZE = 256
#: hand3d's centre joint: middle-finger MCP in hand3d's (RHD) joint order (``"rhd"``'s crop anchor).
CENTER_JOINT = 12
_EXTENT_RANGE = (50.0, 500.0)
_SCALE_RANGE = (1.0, 10.0)
# Used by hand3d when no keypoint is visible.
_FALLBACK_EXTENT = 200.0
# hand3d crops the mean-subtracted image (``image / 255 - 0.5``) and pads with 0, i.e. mid-grey.
_FILL_UINT8 = 127.5


@dataclass(frozen=True)
class HandCrop:
    """A hand crop and the transform that produced it.

    Attributes
    ----------
    image : numpy.ndarray
        ``size x size x C`` crop, same dtype as the source image.
    keypoints : numpy.ndarray
        ``J x 2`` float64 keypoints (x, y) in crop pixels.
    visibility : numpy.ndarray
        ``J`` bools, copied from the input.
    center : numpy.ndarray
        Crop centre (x, y) in source pixels.
    scale : float
        Crop pixels per source pixel (``size / 256`` times hand3d's scale).
    size : int
        Side of the crop.
    """

    image: np.ndarray
    keypoints: np.ndarray
    visibility: np.ndarray
    center: np.ndarray
    scale: float
    size: int

    def to_source(self, keypoints: np.ndarray) -> np.ndarray:
        """Map crop-pixel keypoints back to source pixels (see :func:`uncrop_keypoints`)."""
        return uncrop_keypoints(keypoints, self.center, self.scale, self.size)


def _as_keypoints(
    keypoints: np.ndarray, visibility: np.ndarray | Sequence[bool] | None
) -> tuple[np.ndarray, np.ndarray]:
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.ndim != 2 or kp.shape[1] != 2:
        raise ValueError(f"keypoints must be J x 2 (x, y), got shape {kp.shape}")
    vis = np.ones(len(kp), bool) if visibility is None else np.asarray(visibility).astype(bool)
    if vis.shape != (len(kp),):
        raise ValueError(f"visibility must have shape ({len(kp)},), got {vis.shape}")
    return kp, vis & np.isfinite(kp).all(axis=1)


def _anchor_joints(joints: int, center_joint: int | None, schema: KeypointSchema | str | None) -> list[int]:
    """Return the indices of the joints whose visible mean centres the crop."""
    if center_joint is not None and schema is not None:
        raise ValueError("pass center_joint or schema, not both")
    if schema is None:  # hand3d's default: joint 12, the RHD schema's anchor for 21 joints
        joint = CENTER_JOINT if center_joint is None else center_joint
        return [joint] if 0 <= joint < joints else []
    resolved = get_schema(schema)
    if len(resolved) != joints:
        raise ValueError(f"schema {resolved.name!r} has {len(resolved)} joints, the keypoints {joints}")
    return resolved.anchor_indices()


def crop_parameters(
    keypoints: np.ndarray,
    visibility: np.ndarray | Sequence[bool] | None,
    image_shape: tuple[int, ...],
    size: int = CROP_SIZE,
    *,
    center_joint: int | None = None,
    wrist_extent: bool = False,
    center_offset: tuple[float, float] | np.ndarray | None = None,
    schema: KeypointSchema | str | None = None,
) -> tuple[np.ndarray, float]:
    """Centre and scale of hand3d's crop for one hand.

    Parameters
    ----------
    keypoints : numpy.ndarray
        ``J x 2`` (x, y) source pixels.
    visibility : array of bool or None
        Visible joints (None: all). Only visible, finite joints set the extent.
    image_shape : tuple
        Source image shape ``(H, W, ...)``; the extent is measured on keypoints clipped to it.
    size : int
        Output side. The crop is hand3d's 256 crop resampled to ``size``, so the scale
        bounds [1, 10] are scaled by ``size / 256`` too.
    center_joint : int, optional
        Joint the crop is centred on; default 12 (middle MCP in hand3d's order) unless
        ``schema`` is given. When it is not visible, the centre of the visible joints'
        bounding box is used instead.
    wrist_extent : bool
        hand3d's STB reader measures the extent with joint 0 (palm centre) replaced by the
        wrist ``kp[16] + 2 * (kp[0] - kp[16])``. Off by default, as in ``stb-format.md``.
    center_offset : pair of float, optional
        Shift (x, y) in source pixels added to the centre before the extent is measured
        (hand3d's training-time ``crop_center_noise``; every keypoint stays inside).
    schema : KeypointSchema or str, optional
        The keypoints' joint order: the crop centres on the mean of the schema's visible
        ``crop_anchor`` joints (middle-finger MCP for the hand presets), found by name; the
        bounding-box centre when none is visible. Exclusive with ``center_joint``; ``"rhd"``
        gives the default crop.

    Returns
    -------
    center : numpy.ndarray
        (x, y) in source pixels.
    scale : float
        Crop pixels per source pixel.

    Examples
    --------
    >>> kp = np.array([[100.0, 100.0], [140.0, 120.0], [120.0, 110.0]])
    >>> c, s = crop_parameters(kp, None, (480, 640), center_joint=2)
    >>> c.tolist(), s  # extent 50 px (clipped from 40) -> 256 / 50
    ([120.0, 110.0], 5.12)

    The same hand in another joint order, centred by name:

    >>> hand = np.random.default_rng(0).uniform(100, 200, (21, 2))
    >>> from keypoint_corrupt.schema import remap
    >>> c, _ = crop_parameters(remap(hand, "rhd", "hand21"), None, (480, 640), schema="hand21")
    >>> bool((c == crop_parameters(hand, None, (480, 640))[0]).all())
    True
    """
    kp, vis = _as_keypoints(keypoints, visibility)
    if size < 1:
        raise ValueError(f"size must be positive, got {size!r}")
    height, width = image_shape[:2]
    if wrist_extent and len(kp) > 16 and vis[0] and vis[16]:
        kp = kp.copy()
        kp[0] = kp[16] + 2.0 * (kp[0] - kp[16])
    visible = kp[vis]
    anchor = [j for j in _anchor_joints(len(kp), center_joint, schema) if vis[j]]
    if len(anchor) == 1:
        center = kp[anchor[0]].copy()
    elif anchor:
        center = kp[anchor].mean(axis=0)
    elif len(visible):
        center = 0.5 * (visible.min(axis=0) + visible.max(axis=0))
    else:
        center = np.array([width / 2.0, height / 2.0])
    if center_offset is not None:
        center = center + np.asarray(center_offset, dtype=np.float64)
    if len(visible):
        lo = np.maximum(visible.min(axis=0), 0.0)
        hi = np.minimum(visible.max(axis=0), [float(width), float(height)])
        extent = float(np.max(2.0 * np.maximum(hi - center, center - lo)))
        extent = float(np.clip(extent, *_EXTENT_RANGE))
    else:
        extent = _FALLBACK_EXTENT
    scale = float(np.clip(CROP_SIZE / extent, *_SCALE_RANGE)) * size / CROP_SIZE
    return center, scale


def hand_crop(
    image: np.ndarray,
    keypoints: np.ndarray,
    visibility: np.ndarray | Sequence[bool] | None = None,
    size: int = CROP_SIZE,
    *,
    center_joint: int | None = None,
    wrist_extent: bool = False,
    center_offset: tuple[float, float] | np.ndarray | None = None,
    fill: float | None = None,
    schema: KeypointSchema | str | None = None,
) -> HandCrop:
    """Crop a hand as hand3d does for PoseNet (ground-truth crop, ``stb-format.md``).

    Parameters
    ----------
    image : numpy.ndarray
        ``H x W x C`` (or ``H x W``) uint8 or float32 image.
    keypoints : numpy.ndarray
        ``J x 2`` keypoints (x, y) in source pixels.
    visibility : array of bool, optional
        Visible joints; invisible ones are carried along but do not set the crop.
    size : int
        Output side (256 for PoseNet; smaller sizes give the 256 crop resampled).
    center_joint, wrist_extent, center_offset, schema
        See :func:`crop_parameters`.
    fill : float, optional
        Value outside the source image. Default mid-grey (127.5 on uint8, 0.5 on float),
        which is what hand3d's zero padding of the mean-subtracted image amounts to.

    Returns
    -------
    HandCrop
        Crop image, crop keypoints and the transform (``center``, ``scale``).

    Examples
    --------
    >>> img = np.zeros((480, 640, 3), np.uint8)
    >>> kp = np.tile([[320.0, 240.0]], (21, 1)) + np.random.default_rng(0).normal(0, 30, (21, 2))
    >>> crop = hand_crop(img, kp, np.ones(21, bool))
    >>> crop.image.shape, np.allclose(crop.to_source(crop.keypoints), kp)
    ((256, 256, 3), True)
    """
    image = np.asarray(image)
    if image.ndim not in (2, 3) or image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"image must be H x W or H x W x C, got shape {image.shape}")
    kp, _ = _as_keypoints(keypoints, visibility)
    vis = np.ones(len(kp), bool) if visibility is None else np.asarray(visibility).astype(bool)
    center, scale = crop_parameters(
        kp,
        visibility,
        image.shape,
        size,
        center_joint=center_joint,
        wrist_extent=wrist_extent,
        center_offset=center_offset,
        schema=schema,
    )
    crop = warp_crop(image, center, scale, size, fill=fill)
    crop_kp = (kp - center) * scale + 0.5 * size
    return HandCrop(crop, crop_kp, vis.copy(), center, scale, size)


def warp_crop(
    image: np.ndarray,
    center: np.ndarray | Sequence[float],
    scale: float,
    size: int = CROP_SIZE,
    *,
    fill: float | None = None,
) -> np.ndarray:
    """Resample the ``size x size`` crop centred at ``center`` (bilinear).

    Crop pixel ``q`` shows source pixel ``(q - size / 2) / scale + center``, the exact inverse
    of the keypoint map, so crops and keypoints agree to floating-point precision.

    Parameters
    ----------
    image : numpy.ndarray
        ``H x W x C`` or ``H x W`` uint8 or float32 image.
    center : pair of float
        Crop centre (x, y) in source pixels.
    scale : float
        Crop pixels per source pixel.
    size : int
        Output side.
    fill : float, optional
        Value outside the source image; default mid-grey (127.5 on uint8, 0.5 on float).

    Returns
    -------
    numpy.ndarray
        ``size x size (x C)`` crop, same dtype.

    Examples
    --------
    >>> img = np.zeros((480, 640, 3), np.uint8); img[240, 320] = 255
    >>> crop = warp_crop(img, (320.0, 240.0), 1.0)
    >>> crop.shape, tuple(int(v) for v in np.argwhere(crop[..., 0] == 255)[0])
    ((256, 256, 3), (128, 128))
    """
    if fill is None:
        fill = _FILL_UINT8 if image.dtype == np.uint8 else 0.5
    s = float(scale)
    cx, cy = float(center[0]), float(center[1])
    inv = np.array([[1.0 / s, 0.0, cx - 0.5 * size / s], [0.0, 1.0 / s, cy - 0.5 * size / s]])
    channels = 1 if image.ndim == 2 else image.shape[2]
    crop = cv2.warpAffine(
        image,
        inv,
        (size, size),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(fill,) * min(channels, 4),
    )
    if image.ndim == 3 and crop.ndim == 2:  # OpenCV drops a trailing singleton channel
        crop = crop[..., None]
    return crop


def uncrop_keypoints(
    keypoints: np.ndarray,
    center: np.ndarray | Sequence[float],
    scale: float | np.ndarray,
    size: int = CROP_SIZE,
) -> np.ndarray:
    """Map keypoints from crop pixels back to source pixels (inverse of :func:`hand_crop`).

    ``center`` and ``scale`` broadcast against ``keypoints`` (e.g. ``B x 1 x 2`` and
    ``B x 1 x 1`` for a batch).

    Parameters
    ----------
    keypoints : numpy.ndarray
        ``... x 2`` (x, y) in crop pixels.
    center : pair of float
        Crop centre (x, y) in source pixels.
    scale : float
        Crop pixels per source pixel.
    size : int
        Crop side.

    Returns
    -------
    numpy.ndarray
        ``(keypoints - size / 2) / scale + center``, float64.

    Examples
    --------
    >>> uncrop_keypoints(np.array([[128.0, 138.0]]), [300.0, 200.0], 2.0)
    array([[300., 205.]])
    """
    kp = np.asarray(keypoints, dtype=np.float64)
    return (kp - 0.5 * size) / np.asarray(scale, dtype=np.float64) + np.asarray(center, dtype=np.float64)


@dataclass(frozen=True)
class CropInfo:
    """hand3d's ground-truth crops of a batch (the benchmark passes one to ``predict(images, crops)``).

    Attributes
    ----------
    center : numpy.ndarray
        ``B x 2`` crop centres (x, y) in source pixels.
    scale : numpy.ndarray
        ``B`` crop pixels per source pixel of a ``size`` crop (for 256:
        ``clip(256 / extent, 1, 10)``, hand3d's scale).
    size : int
        The crop side ``scale`` refers to (256 unless built otherwise). :meth:`crop` and
        :meth:`to_source` work at any other side too, covering the same region.

    Examples
    --------
    >>> info = CropInfo(np.array([[320.0, 240.0]]), np.array([2.0]))
    >>> info.box().tolist()  # (x0, y0, x1, y1) of the crop in source pixels
    [[256.0, 176.0, 384.0, 304.0]]
    >>> small = info.resized(64)  # the same region as a 64 x 64 crop
    >>> small.scale.tolist(), small.box().tolist() == info.box().tolist()
    ([0.5], True)
    """

    center: np.ndarray
    scale: np.ndarray
    size: int = CROP_SIZE

    def __len__(self) -> int:
        return len(self.scale)

    def box(self) -> np.ndarray:
        """``B x 4`` crop boxes ``(x0, y0, x1, y1)`` in source pixels."""
        half = 0.5 * self.size / np.asarray(self.scale, np.float64)
        c = np.asarray(self.center, np.float64)
        return np.stack([c[:, 0] - half, c[:, 1] - half, c[:, 0] + half, c[:, 1] + half], axis=1)

    def resized(self, size: int | None = None) -> CropInfo:
        """Describe the same crops for a side of ``size`` pixels (scales times ``size / self.size``)."""
        if size is None or size == self.size:
            return self
        scale = np.asarray(self.scale, np.float64) * (size / self.size)
        return CropInfo(np.asarray(self.center, np.float64), scale, int(size))

    def crop(self, images: Iterable[Any], size: int | None = None) -> np.ndarray:
        """Cut every image's crop: ``B x size x size x C`` (images: array or list; default ``self.size``)."""
        info = self.resized(size)
        triples = zip(images, info.center, info.scale, strict=True)
        return np.stack([warp_crop(np.asarray(im), c, float(s), info.size) for im, c, s in triples])

    def to_source(self, keypoints: Any, size: int | None = None) -> np.ndarray:
        """Map ``B x J x 2`` keypoints from crop pixels of a ``size`` crop back to source pixels."""
        info = self.resized(size)
        c = np.asarray(info.center, dtype=np.float64).reshape(-1, 1, 2)
        s = np.asarray(info.scale, dtype=np.float64).reshape(-1, 1, 1)
        return uncrop_keypoints(np.asarray(keypoints), c, s, info.size)
