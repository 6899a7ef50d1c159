"""Keypoint-aware occlusion: a filled square placed inside the keypoints' region of interest.

Placing the square takes three steps, ROI -> centre -> box (:func:`keypoint_roi`,
:func:`occlusion_center`, :func:`occluder_box`), chained once in :func:`place_occluder`;
:func:`occlude` and :class:`~keypoint_corrupt.transforms.KeypointOcclusion` both use it and
then paint with :func:`fill_box`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple, TypeAlias

import numpy as np
import numpy.typing as npt

from keypoint_corrupt._validation import (
    ImageArray,
    KeypointsLike,
    Seed,
    VisibilityLike,
    as_generator,
    check_float,
    check_image,
    check_keypoints,
    check_visibility,
    max_value,
)

__all__ = [
    "MIN_ROI_FRACTION",
    "Box",
    "Occluder",
    "PixelBox",
    "Point",
    "choose_instance",
    "fill_box",
    "keypoint_roi",
    "occlude",
    "occluder_box",
    "occlusion_center",
    "place_occluder",
    "square_box",
]

#: A continuous box ``(x0, y0, x1, y1)`` in pixels.
Box: TypeAlias = tuple[float, float, float, float]
#: A pixel box ``(x0, y0, x1, y1)``, end exclusive: the pixels ``image[y0:y1, x0:x1]``.
PixelBox: TypeAlias = tuple[int, int, int, int]
#: A point ``(x, y)`` in pixels.
Point: TypeAlias = tuple[float, float]


#: Side of a degenerate ROI axis, as a fraction of the image's shorter side (see :func:`keypoint_roi`).
MIN_ROI_FRACTION = 0.1


class Occluder(NamedTuple):
    """A placed occluder: its drawn ``center`` and the pixel ``box`` it covers."""

    center: Point
    box: PixelBox


def _image_hw(image_shape: Sequence[int]) -> tuple[int, int]:
    try:
        h, w = int(image_shape[0]), int(image_shape[1])
    except (TypeError, IndexError, ValueError) as exc:
        raise TypeError(f"image_shape must be a shape tuple (H, W, ...), got {image_shape!r}") from exc
    if h <= 0 or w <= 0:
        raise ValueError(f"image_shape must have positive height and width, got {image_shape!r}")
    return h, w


def keypoint_roi(
    keypoints: KeypointsLike,
    image_shape: Sequence[int],
    margin: float = 0.15,
    visibility: VisibilityLike | None = None,
) -> Box | None:
    """Region of interest of the visible keypoints, grown by a margin and clipped to the image.

    The box spans the min/max of the visible keypoints; each side is then pushed out by
    ``margin`` times the box width (left and right) and height (top and bottom), and the
    result is clipped to ``[0, W] x [0, H]`` (continuous pixel coordinates: pixel ``i``
    covers ``[i, i + 1)``).

    Degenerate cases are explicit, never a zero-size box:

    * an axis along which the visible keypoints span less than one pixel (a single visible
      keypoint, or keypoints on one row or column) gets a side of
      ``max(1, MIN_ROI_FRACTION * min(H, W))`` pixels centred on them, before clipping;
    * when the box, clipped to the image, is empty (every visible keypoint lies outside the
      image, far enough that even the grown box misses it), the result is ``None``, exactly
      as when no keypoint is visible: there is nothing in the image to occlude.

    Keypoints with a NaN or infinite coordinate count as invisible, as do those whose
    ``visibility`` is false or zero.

    Parameters
    ----------
    keypoints : array-like
        (N, 2) x, y in pixels; extra columns (COCO ``v``, albumentations' internals) are ignored.
    image_shape : sequence of int
        The image's shape; only H and W are used.
    margin : float, default 0.15
        Non-negative growth per side, as a fraction of the box's width and height.
    visibility : array-like of bool, optional
        (N,) flags; default all visible.

    Returns
    -------
    tuple of float or None
        ``(x0, y0, x1, y1)`` with ``x0 < x1`` and ``y0 < y1``, or ``None`` when no keypoint is
        visible or the box lies outside the image.

    Examples
    --------
    >>> keypoint_roi([[10, 20], [30, 60]], (100, 100), margin=0.1)
    (8.0, 16.0, 32.0, 64.0)
    >>> keypoint_roi([[50, 50]], (100, 200))  # one keypoint: a 10 x 10 box (0.1 * 100)
    (45.0, 45.0, 55.0, 55.0)
    >>> keypoint_roi([[-30, -40], [-10, -20]], (100, 100)) is None  # all outside the image
    True
    """
    pts = check_keypoints(keypoints)
    h, w = _image_hw(image_shape)
    m = check_float(margin, "margin", low=0.0)
    vis = check_visibility(visibility, len(pts)) & np.isfinite(pts).all(axis=1)
    if not vis.any():
        return None
    sel = pts[vis]
    min_side = max(1.0, MIN_ROI_FRACTION * min(h, w))
    x0, x1 = _roi_axis(float(sel[:, 0].min()), float(sel[:, 0].max()), m, min_side, w)
    y0, y1 = _roi_axis(float(sel[:, 1].min()), float(sel[:, 1].max()), m, min_side, h)
    if x1 <= x0 or y1 <= y0:  # the grown box misses the image
        return None
    return (x0, y0, x1, y1)


def _roi_axis(lo: float, hi: float, margin: float, min_side: float, size: int) -> tuple[float, float]:
    """One axis of :func:`keypoint_roi`: grown by ``margin`` (to ``min_side`` if under a pixel), clipped."""
    if hi - lo < 1.0:
        mid = (lo + hi) / 2.0
        lo, hi = mid - min_side / 2.0, mid + min_side / 2.0
    else:
        d = margin * (hi - lo)
        lo, hi = lo - d, hi + d
    return float(np.clip(lo, 0, size)), float(np.clip(hi, 0, size))


def _round_half_up(v: float) -> int:
    return math.floor(v + 0.5)


def square_box(center: Point, side: float, image_shape: Sequence[int]) -> PixelBox:
    """Pixel box ``(x0, y0, x1, y1)`` (end exclusive) of a square, clipped to the image.

    A pixel is covered when its centre ``(i + 0.5)`` lies inside the square (ties round up),
    so the painted area matches ``side**2`` to within one row and column.

    Examples
    --------
    >>> square_box((50.0, 50.0), 30.0, (100, 100))
    (35, 35, 65, 65)
    """
    h, w = _image_hw(image_shape)
    cx, cy = center
    half = side / 2.0
    x0 = min(max(_round_half_up(cx - half), 0), w)
    x1 = min(max(_round_half_up(cx + half), 0), w)
    y0 = min(max(_round_half_up(cy - half), 0), h)
    y1 = min(max(_round_half_up(cy + half), 0), h)
    return (x0, y0, max(x0, x1), max(y0, y1))


def fill_box(image: ImageArray, box: PixelBox | None, fill: float | Sequence[float] = 0) -> ImageArray:
    """Return a copy of ``image`` with ``image[y0:y1, x0:x1]`` set to ``fill``.

    Parameters
    ----------
    image : numpy.ndarray
        uint8 or float32 image.
    box : tuple of int or None
        ``(x0, y0, x1, y1)``, end exclusive; ``None`` paints nothing.
    fill : float or sequence of float, default 0
        Scalar or one value per channel, in the image's scale (0-255 or 0-1).

    Returns
    -------
    numpy.ndarray
        The painted copy.

    Examples
    --------
    >>> import numpy as np
    >>> int(fill_box(np.ones((4, 4), np.uint8), (1, 1, 3, 3), 0).sum())
    12
    """
    channels = 1 if image.ndim == 2 else image.shape[2]
    arr = np.asarray(fill, dtype=np.float64).reshape(-1)
    if arr.size not in (1, channels):
        raise ValueError(f"fill must be a scalar or have {channels} values (one per channel), got {fill!r}")
    top = max_value(image)
    if not np.isfinite(arr).all() or (arr < 0).any() or (arr > top).any():
        raise ValueError(f"fill must lie in [0, {top:g}] for a {image.dtype} image, got {fill!r}")
    out: ImageArray = image.copy()
    if box is not None:
        x0, y0, x1, y1 = box
        out[y0:y1, x0:x1] = arr[0] if image.ndim == 2 else np.broadcast_to(arr, (channels,))
    return out


def occluder_box(roi: Box, area: float, center: Point, image_shape: Sequence[int]) -> PixelBox:
    """Pixel box of a square of ``area`` times the ROI's area, centred at ``center``.

    The side is never below one pixel, so a square centred inside the image always covers
    at least one pixel (this only matters for a sliver of ROI left after clipping).

    Examples
    --------
    >>> occluder_box((20.0, 20.0, 80.0, 80.0), 0.25, (50.0, 50.0), (100, 100))
    (35, 35, 65, 65)
    >>> occluder_box((0.0, 0.0, 0.2, 0.2), 0.3, (0.1, 0.1), (100, 100))
    (0, 0, 1, 1)
    """
    side = max(1.0, math.sqrt(area * (roi[2] - roi[0]) * (roi[3] - roi[1])))
    return square_box(center, side, image_shape)


def occlusion_center(roi: Box, rng: Seed = None) -> Point:
    """Draw an occluder centre uniformly inside ``roi``.

    Exactly two uniform draws (x, then y) are consumed, so the same generator state gives the
    same centre whatever the occluder's area (occlusion-10/20/30 share their centres).

    Examples
    --------
    >>> x, y = occlusion_center((20.0, 30.0, 80.0, 90.0), rng=0)
    >>> 20 <= x <= 80 and 30 <= y <= 90
    True
    """
    gen = as_generator(rng)
    x0, y0, x1, y1 = roi
    return float(gen.uniform(x0, x1)), float(gen.uniform(y0, y1))


def _check_center(center: Point) -> Point:
    try:
        cx, cy = (float(c) for c in center)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"center must be an (x, y) pair of numbers, got {center!r}") from exc
    if not (np.isfinite(cx) and np.isfinite(cy)):
        raise ValueError(f"center must be finite, got {center!r}")
    return (cx, cy)


def choose_instance(
    instances: npt.ArrayLike,
    keypoints: KeypointsLike,
    image_shape: Sequence[int],
    visibility: VisibilityLike | None = None,
    rng: Seed = None,
) -> int | None:
    """Choose the one person (or hand, or animal) of an image that a keypoint-aware corruption targets.

    An image with several instances is corrupted once, whole; an occluder or a mask placed over
    all of their keypoints together would cover the space between them. So one instance is the
    target: drawn uniformly among the *usable* ones, those with at least one visible, finite
    keypoint inside the image. With a single usable instance nothing is drawn (one instance per
    image, STB's case, draws exactly what it drew before), and with none the result is ``None``.
    The draw comes first from ``rng``, so with the image's generator the choice is deterministic
    and the configurations that share a random stream (occlusion-10/20/30) target the same one.

    Parameters
    ----------
    instances : array-like of int
        (N,) each keypoint's instance index, ``0 .. M-1`` (e.g. ``np.repeat(range(M), joints)``).
    keypoints : array-like
        (N, 2) x, y in pixels (extra columns ignored).
    image_shape : sequence of int
        The image's shape; only H and W are used.
    visibility : array-like of bool, optional
        (N,) flags; default all visible.
    rng : numpy.random.Generator or int or None
        Source of the draw.

    Returns
    -------
    int or None
        The target's instance index, or ``None`` when no instance is usable.

    Examples
    --------
    >>> kps = [[10, 10], [12, 14], [70, 80], [0, 0]]
    >>> choose_instance([0, 0, 1, 2], kps, (100, 100), visibility=[1, 1, 0, 0], rng=0)  # only 0 usable
    0
    >>> choose_instance([0, 0, 1, 1], kps, (100, 100), rng=0) in (0, 1)
    True
    """
    pts = check_keypoints(keypoints)
    owner = np.asarray(instances)
    if owner.shape != (len(pts),) or not np.issubdtype(owner.dtype, np.integer) or (owner < 0).any():
        raise ValueError(
            f"instances must hold one non-negative int instance index per keypoint ({len(pts)}), "
            f"got {np.asarray(instances).tolist()!r}"
        )
    h, w = _image_hw(image_shape)
    usable = check_visibility(visibility, len(pts)) & np.isfinite(pts[:, :2]).all(axis=1)
    with np.errstate(invalid="ignore"):
        usable &= (pts[:, 0] >= 0) & (pts[:, 0] < w) & (pts[:, 1] >= 0) & (pts[:, 1] < h)
    candidates = np.unique(owner[usable])
    if candidates.size == 0:
        return None
    if candidates.size == 1:
        return int(candidates[0])
    return int(candidates[as_generator(rng).integers(candidates.size)])


def place_occluder(
    keypoints: KeypointsLike,
    image_shape: Sequence[int],
    area: float,
    *,
    margin: float = 0.15,
    visibility: VisibilityLike | None = None,
    center: Point | None = None,
    rng: Seed = None,
) -> Occluder | None:
    """Place an occluder from keypoints: ROI, then centre, then pixel box.

    The ROI is :func:`keypoint_roi`; the centre is ``center`` or, by default,
    :func:`occlusion_center` (two uniform draws from ``rng``); the box is
    :func:`occluder_box`, a square of side ``sqrt(area * roi_width * roi_height)`` (at least
    one pixel) clipped to the image. A single visible keypoint, or keypoints on one row or
    column, get a minimum ROI (see :func:`keypoint_roi`), so a drawn occluder always covers
    at least one pixel. This is the one implementation of the placement, shared by :func:`occlude` and
    :class:`~keypoint_corrupt.transforms.KeypointOcclusion`.

    Parameters
    ----------
    keypoints : array-like
        (N, 2) x, y in pixels (extra columns ignored).
    image_shape : sequence of int
        The image's shape; only H and W are used.
    area : float
        Occluder area as a fraction of the ROI's area, in (0, 1].
    margin : float, default 0.15
        ROI growth per side (see :func:`keypoint_roi`).
    visibility : array-like of bool, optional
        (N,) flags; invisible, NaN or infinite keypoints do not shape the ROI.
    center : tuple of float, optional
        Fixed ``(x, y)`` centre in pixels; default drawn from ``rng``.
    rng : numpy.random.Generator or int or None
        Source of the random centre (not used when ``center`` is given).

    Returns
    -------
    Occluder or None
        ``(center, box)``, or ``None`` when :func:`keypoint_roi` is ``None``: no keypoint is
        visible, or the visible ones all lie outside the image (nothing is drawn then).

    Examples
    --------
    >>> place_occluder([[20, 20], [80, 80]], (100, 100), 0.25, margin=0.0, center=(50, 50))
    Occluder(center=(50.0, 50.0), box=(35, 35, 65, 65))
    """
    a = check_float(area, "area", low=0.0, high=1.0, low_inclusive=False)
    roi = keypoint_roi(keypoints, image_shape, margin=margin, visibility=visibility)
    if roi is None:
        return None
    point = occlusion_center(roi, rng) if center is None else _check_center(center)
    return Occluder(point, occluder_box(roi, a, point, image_shape))


def occlude(
    image: ImageArray,
    keypoints: KeypointsLike,
    area: float,
    *,
    margin: float = 0.15,
    center: Point | None = None,
    rng: Seed = None,
    fill: float | Sequence[float] = 0,
    visibility: VisibilityLike | None = None,
) -> tuple[ImageArray, PixelBox | None]:
    """Cover part of the hand with a filled square placed from its keypoints.

    The square is placed by :func:`place_occluder`: its side is
    ``sqrt(area * roi_width * roi_height)`` where the ROI is :func:`keypoint_roi`; its centre
    is ``center`` or, by default, a uniform draw inside the ROI. The square is clipped to the
    image and painted with :func:`fill_box`. Keypoints are never moved or removed.

    When no keypoint is visible, or the visible keypoints all lie outside the image (their ROI
    misses it), the image is returned unchanged (as a copy) and the box is ``None``. A single
    visible keypoint gets a minimum ROI (see :func:`keypoint_roi`) and is occluded.

    Parameters
    ----------
    image : numpy.ndarray
        uint8 or float32 (values in [0, 1]) image, HxW, HxWx1, HxWx3 or HxWx4.
    keypoints : array-like
        (N, 2) x, y in pixels (extra columns ignored).
    area : float
        Occluder area as a fraction of the ROI's area, in (0, 1].
    margin : float, default 0.15
        ROI growth per side (see :func:`keypoint_roi`).
    center : tuple of float, optional
        Fixed ``(x, y)`` centre in pixels; default drawn from ``rng``.
    rng : numpy.random.Generator or int or None
        Source of the random centre.
    fill : float or sequence of float, default 0
        Fill value in the image's scale (0-255 for uint8, 0-1 for float32), one per channel or scalar.
    visibility : array-like of bool, optional
        (N,) flags; invisible, NaN or infinite keypoints do not shape the ROI.

    Returns
    -------
    image : numpy.ndarray
        A new array of the same shape and dtype.
    box : tuple of int or None
        The painted pixels ``image[y0:y1, x0:x1]`` as ``(x0, y0, x1, y1)``; ``None`` if nothing
        could be placed (no visible keypoint, or none near the image).

    Examples
    --------
    >>> import numpy as np
    >>> img = np.full((100, 100, 3), 200, np.uint8)
    >>> out, box = occlude(img, [[20, 20], [80, 80]], 0.25, margin=0.0, center=(50, 50))
    >>> box
    (35, 35, 65, 65)
    >>> int(out[50, 50, 0]), int(out[10, 10, 0])
    (0, 200)
    """
    check_image(image)
    occluder = place_occluder(
        keypoints, image.shape, area, margin=margin, visibility=visibility, center=center, rng=rng
    )
    box = None if occluder is None else occluder.box
    return fill_box(image, box, fill), box
