"""ImageNet-C's elastic transform, with the keypoints moved by the same displacement field.

The field is imagecorruptions' (after Simard et al. 2003): two layers of uniform noise in
``[-0.005 H, 0.005 H]`` (H the height, for both components), each smoothed by a Gaussian of
sigma ``(0.01 H, 0.01 W)`` (truncated at 3 sigma, reflected borders) and scaled by the
severity's ``alpha``. It is a *backward* map: the output pixel ``(i, j)`` takes the input at
``(i + dy[i, j], j + dx[i, j])``, bilinearly, with reflected borders (SciPy's ``"reflect"``,
OpenCV's ``BORDER_REFLECT``).

A keypoint therefore moves to the point ``p'`` whose sample position is the keypoint itself,
``p' + d(p') = p``, with ``d`` the bilinear interpolation of the field. :func:`move_keypoints`
solves that to far below a thousandth of a pixel. Keypoints are continuous
pixel coordinates (pixel ``i`` covers ``[i, i + 1)``), so the field's value at pixel ``(i, j)``
belongs to the point ``(j + 0.5, i + 0.5)``.

The field is smooth, but its displacements are about as many pixels at every image size (the
noise range grows with the height, the 1% smoothing averages more of it) while its smoothing
length shrinks with the image, so its slope grows as the image shrinks: it folds
(``det(I + grad d) <= 0`` in places: content appears twice or mirrored, and a point can have
several images) on 320 x 320 images from severity 1 and on 640 x 480 from severity 3
(measured). :func:`move_keypoints` then returns one of the images: the one Newton's method
reaches from ``p - d(p)``, or, where Newton stalls, the one nearest to ``p - d(p)`` (a
non-mirrored one if any) found by inverting every cell of the field within reach. Every
returned point satisfies ``p' + d(p') = p`` to 1e-7 px.
"""

from __future__ import annotations

import functools
from typing import Any, TypeAlias

import cv2
import numpy as np
import numpy.typing as npt

from keypoint_corrupt._validation import ImageArray, KeypointsLike, check_image, check_keypoints
from keypoint_corrupt.functional.imagenet_c._blocks import bands, new_result, store
from keypoint_corrupt.functional.imagenet_c._common import (
    Draws,
    RandomSource,
    as_draws,
    check_severity,
    run_rgb,
)
from keypoint_corrupt.functional.imagenet_c._gaussian import gaussian_filter
from keypoint_corrupt.functional.imagenet_c.params import PARAMS

__all__ = ["elastic_field", "elastic_transform", "elastic_transform_with_keypoints", "move_keypoints"]

#: A backward displacement field ``(dx, dy)``: two float32 HxW arrays.
Field: TypeAlias = tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]

# uint8 value -> value / 255 in float32, as imagecorruptions' ``np.array(x, np.float32) / 255.``
_UNIT_LUT = np.arange(256, dtype=np.float32) / np.float32(255.0)
_NEWTON_STEPS = 40
_TOLERANCE = 1e-9  # px: Newton stops below this residual |p' + d(p') - p|
_SOLVED = 1e-7  # px: a residual this small counts as a solution


def _check_shape(shape: tuple[int, ...]) -> tuple[int, int]:
    try:
        dims = tuple(int(s) for s in shape)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"shape must be a tuple of ints (H, W[, C]), got {shape!r}") from exc
    if len(dims) < 2 or dims[0] < 1 or dims[1] < 1:
        raise ValueError(f"shape must be (H, W[, C]) with H, W >= 1, got {shape!r}")
    return dims[0], dims[1]


def _smoothed_noise_layer(height: int, width: int, alpha: float, draws: Draws) -> npt.NDArray[np.float32]:
    half_range = height * 0.005  # imagecorruptions uses the height for both components
    sigma_yx = (height * 0.01, width * 0.01)
    if draws.state is not None:
        noise = draws.state.uniform(-half_range, half_range, size=(height, width))
        return (gaussian_filter(noise, sigma_yx, 3.0, "reflect") * alpha).astype(np.float32)
    assert draws.gen is not None
    noise32 = draws.gen.random((height, width), dtype=np.float32)
    noise32 *= np.float32(2.0 * half_range)
    noise32 -= np.float32(half_range)
    smooth = gaussian_filter(noise32, sigma_yx, 3.0, "reflect", precise=False)
    smooth *= np.float32(alpha)
    return smooth


def _field(height: int, width: int, severity: int, draws: Draws) -> Field:
    alpha = PARAMS["elastic_transform"][severity - 1]
    dx = _smoothed_noise_layer(height, width, alpha, draws)
    dy = _smoothed_noise_layer(height, width, alpha, draws)
    return dx, dy


def elastic_field(shape: tuple[int, ...], severity: int, rng: RandomSource = None) -> Field:
    """Draw the backward displacement field of :func:`elastic_transform` for an image of ``shape``.

    Parameters
    ----------
    shape : tuple of int
        ``(H, W)`` or ``(H, W, C)``.
    severity : int
        1 to 5.
    rng : int, numpy.random.Generator, numpy.random.RandomState or None
        With a ``RandomState``, the draws are imagecorruptions' (two ``uniform`` calls of
        size HxW, x first).

    Returns
    -------
    tuple of numpy.ndarray
        ``(dx, dy)``, float32 HxW each: the output pixel ``(i, j)`` samples the input at
        ``(i + dy[i, j], j + dx[i, j])``.

    Examples
    --------
    >>> dx, dy = elastic_field((48, 64, 3), 3, rng=0)
    >>> dx.shape, dy.dtype.name
    ((48, 64), 'float32')
    """
    height, width = _check_shape(shape)
    sev = check_severity(severity)
    return _field(height, width, sev, as_draws(rng))


def _warp(rgb: ImageArray, field: Field) -> ImageArray:
    """Bilinear backward warp with reflected borders: final uint8 for uint8 input, else float32 0..255."""
    dx, dy = field
    height, width = dx.shape
    map_x = dx + np.arange(width, dtype=np.float32)[None, :]
    map_y = dy + np.arange(height, dtype=np.float32)[:, None]
    out = new_result(rgb)
    if rgb.dtype != np.uint8:
        out[...] = _remap(rgb, map_x, map_y)
        return out
    # Interpolate value / 255 in float32 and scale back, as imagecorruptions does, so that the
    # truncation to uint8 falls the same way; a band of rows at a time (cache-sized).
    unit = cv2.LUT(rgb, _UNIT_LUT)
    for band in bands(height):
        values = _remap(unit, map_x[band], map_y[band])
        values *= np.float32(255.0)
        store(values, out[band])
    return out


def _remap(values: ImageArray, map_x: npt.NDArray[np.float32], map_y: npt.NDArray[np.float32]) -> ImageArray:
    out: ImageArray = cv2.remap(values, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return out.reshape(map_x.shape + values.shape[2:])


#: OpenCV's remap takes images whose sides are under SHRT_MAX.
_MAX_SIDE = 32766


def _check_warpable(image: ImageArray) -> None:
    """Validate ``image`` before anything is drawn, its size included."""
    check_image(image)
    if max(image.shape[:2]) > _MAX_SIDE:
        raise ValueError(
            f"image must be at most {_MAX_SIDE} px on each side for elastic_transform (OpenCV's "
            f"remap), got shape {image.shape}"
        )


def _warp_kernel(rgb: ImageArray, field: Field, _draws: Draws) -> ImageArray:
    return _warp(rgb, field)


def elastic_transform(image: ImageArray, severity: int, rng: RandomSource = None) -> ImageArray:
    """ImageNet-C elastic transform: a smooth random warp of the image (keypoints move with it).

    Use :func:`elastic_transform_with_keypoints` to get the moved keypoints as well.

    Parameters
    ----------
    image : numpy.ndarray
        uint8 or float32 (values in [0, 1]), HxW, HxWx1, HxWx3 or HxWx4 (alpha passes through).
    severity : int
        1 to 5.
    rng : int, numpy.random.Generator, numpy.random.RandomState or None
        A ``RandomState`` draws exactly what imagecorruptions draws from the global state.

    Returns
    -------
    numpy.ndarray
        A new array of the same shape and dtype.

    Examples
    --------
    >>> img = np.zeros((40, 60, 3), np.uint8)
    >>> elastic_transform(img, 2, rng=0).shape
    (40, 60, 3)
    """
    sev = check_severity(severity)
    draws = as_draws(rng)
    _check_warpable(image)
    field = _field(image.shape[0], image.shape[1], sev, draws)
    return run_rgb(image, _warp_kernel, field, draws)


def elastic_transform_with_keypoints(
    image: ImageArray, keypoints: KeypointsLike, severity: int, rng: RandomSource = None
) -> tuple[ImageArray, npt.NDArray[np.float64]]:
    """:func:`elastic_transform` and the keypoints moved by the same field.

    Parameters
    ----------
    image : numpy.ndarray
        As for :func:`elastic_transform`.
    keypoints : array-like
        (N, D) with D >= 2: x, y in pixels (pixel ``i`` covers ``[i, i + 1)``), then any
        columns, which pass through. NaN or infinite coordinates (missing joints) stay as given.
    severity : int
        1 to 5.
    rng : int, numpy.random.Generator, numpy.random.RandomState or None
        The same ``rng`` gives the same image as :func:`elastic_transform`.

    Returns
    -------
    tuple
        ``(image, moved)``: the warped image and a float64 (N, D) copy of the keypoints with
        x, y moved (see :func:`move_keypoints`).

    Examples
    --------
    >>> img = np.zeros((64, 64, 3), np.uint8)
    >>> out, moved = elastic_transform_with_keypoints(img, [[20.0, 30.0, 2.0]], 1, rng=0)
    >>> moved.shape, float(moved[0, 2])
    ((1, 3), 2.0)
    """
    sev = check_severity(severity)
    draws = as_draws(rng)
    _check_warpable(image)
    check_keypoints(keypoints)
    field = _field(image.shape[0], image.shape[1], sev, draws)
    return run_rgb(image, _warp_kernel, field, draws), move_keypoints(keypoints, field)


def _check_field(field: object) -> Field:
    if not isinstance(field, (tuple, list)) or len(field) != 2:
        raise TypeError(f"field must be a (dx, dy) pair of HxW arrays, got {type(field).__name__}")
    dx = np.asarray(field[0], dtype=np.float32)
    dy = np.asarray(field[1], dtype=np.float32)
    if dx.ndim != 2 or dx.shape != dy.shape or dx.size == 0:
        raise ValueError(f"field must hold two HxW arrays of one shape, got shapes {dx.shape} and {dy.shape}")
    if not (np.isfinite(dx).all() and np.isfinite(dy).all()):
        raise ValueError("field must be finite")
    return dx, dy


class _BilinearField:
    """The field between pixel centres (index space), held constant beyond the outer centres."""

    def __init__(self, field: Field) -> None:
        self.dx, self.dy = field
        self.height, self.width = self.dx.shape

    @functools.cached_property
    def reach(self) -> float:
        """The largest displacement: every solution lies this close to its target."""
        return float(np.hypot(self.dx, self.dy).max())

    @staticmethod
    def _cell(coord: npt.NDArray[np.float64], size: int) -> tuple[Any, Any, Any, Any]:
        clamped = np.clip(coord, 0.0, size - 1.0)
        lo = np.minimum(np.floor(clamped).astype(np.intp), max(size - 2, 0))
        hi = np.minimum(lo + 1, size - 1)
        inside = (coord > 0.0) & (coord < size - 1.0)
        return lo, hi, clamped - lo, inside

    def sample(self, qx: npt.NDArray[np.float64], qy: npt.NDArray[np.float64]) -> tuple[Any, Any, Any]:
        """Value ``(dx, dy)`` at the points and the Jacobian entries ``d(dx, dy)/d(x, y)``."""
        x0, x1, fx, in_x = self._cell(qx, self.width)
        y0, y1, fy, in_y = self._cell(qy, self.height)
        values = []
        grads = []
        for layer in (self.dx, self.dy):
            c00, c01, c10, c11 = (
                layer[y, x].astype(np.float64) for y, x in ((y0, x0), (y0, x1), (y1, x0), (y1, x1))
            )
            top = c00 + fx * (c01 - c00)
            bottom = c10 + fx * (c11 - c10)
            values.append(top + fy * (bottom - top))
            d_dx = np.where(in_x, (1.0 - fy) * (c01 - c00) + fy * (c11 - c10), 0.0)
            d_dy = np.where(in_y, bottom - top, 0.0)
            grads.append((d_dx, d_dy))
        return values[0], values[1], grads


def _newton_step(field: _BilinearField, qx: Any, qy: Any, tx: Any, ty: Any) -> tuple[Any, Any, Any, Any]:
    """Residual of ``q + d(q) = t``, the Newton step (a fixed-point step where singular), det(J)."""
    vx, vy, ((axx, axy), (ayx, ayy)) = field.sample(qx, qy)
    rx, ry = qx + vx - tx, qy + vy - ty
    jxx, jyy = 1.0 + axx, 1.0 + ayy
    det = jxx * jyy - axy * ayx
    singular = np.abs(det) < 1e-6
    safe = np.where(singular, 1.0, det)
    sx = np.where(singular, -rx, -(jyy * rx - axy * ry) / safe)
    sy = np.where(singular, -ry, -(jxx * ry - ayx * rx) / safe)
    return np.hypot(rx, ry), sx, sy, det


def _residual(field: _BilinearField, qx: Any, qy: Any, tx: Any, ty: Any) -> Any:
    vx, vy, _ = field.sample(qx, qy)
    return np.hypot(qx + vx - tx, qy + vy - ty)


def _newton(field: _BilinearField, qx: Any, qy: Any, tx: Any, ty: Any) -> tuple[Any, Any, Any, Any]:
    """Damped Newton iterations on ``q + d(q) = t`` from ``q``: ``(qx, qy, residual, det J)``."""
    for _ in range(_NEWTON_STEPS):
        res, sx, sy, det = _newton_step(field, qx, qy, tx, ty)
        active = res > _TOLERANCE
        if not active.any():
            break
        # Backtrack: the field is only piecewise bilinear, so a full step can overshoot a
        # cell edge; halve it until the residual drops.
        scale = np.ones_like(res)
        for _ in range(12):
            trial = _residual(field, qx + scale * sx, qy + scale * sy, tx, ty)
            worse = active & (trial >= res)
            if not worse.any():
                break
            scale = np.where(worse, scale * 0.5, scale)
        step = np.where(active, scale, 0.0)
        qx, qy = qx + step * sx, qy + step * sy
    res, _, _, det = _newton_step(field, qx, qy, tx, ty)
    return qx, qy, res, det


def _cross(ax: Any, ay: Any, bx: Any, by: Any) -> Any:
    return ax * by - ay * bx


def _cell_solutions(corners: tuple[Any, ...], hx: Any, hy: Any) -> tuple[Any, Any]:
    """Invert the bilinear map of a unit cell: the ``(u, v)`` with ``h = u e + v f + u v g``.

    ``corners`` are the moved corners' offsets ``(ex, ey, fx, fy, gx, gy)``; eliminating ``u``
    leaves ``k2 v^2 + k1 v + k0 = 0``. Returns both roots (NaN where absent), shape (..., 2).
    """
    ex, ey, fx, fy, gx, gy = corners
    k2 = _cross(gx, gy, fx, fy)
    k1 = _cross(ex, ey, fx, fy) + _cross(hx, hy, gx, gy)
    k0 = _cross(hx, hy, ex, ey)
    with np.errstate(divide="ignore", invalid="ignore"):
        root = np.sqrt(k1 * k1 - 4.0 * k2 * k0)
        linear = np.abs(k2) < 1e-12
        v = np.stack(
            [
                np.where(linear, -k0 / k1, (-k1 - root) / (2.0 * k2)),
                np.where(linear, np.nan, (-k1 + root) / (2.0 * k2)),
            ],
            axis=-1,
        )
        dir_x, dir_y = ex[..., None] + v * gx[..., None], ey[..., None] + v * gy[..., None]
        u = ((hx[..., None] - v * fx[..., None]) * dir_x + (hy[..., None] - v * fy[..., None]) * dir_y) / (
            dir_x * dir_x + dir_y * dir_y
        )
    return u, v


def _search(field: _BilinearField, tx: Any, ty: Any, guess_x: Any, guess_y: Any) -> tuple[Any, Any]:
    """Every solution near ``t``, cell by cell, where Newton stalled (a folded field).

    Solutions lie within ``max |d|`` of ``t``; each unit cell between pixel centres there is
    inverted exactly (the field is bilinear on it). Of the solutions, the one nearest to the
    first guess is kept, a non-mirrored one (det > 0) if there is one.
    """
    reach = int(np.ceil(field.reach)) + 1
    offsets = np.arange(-reach, reach + 1, dtype=np.float64)
    col = (np.floor(tx)[:, None, None] + offsets[None, None, :]).repeat(offsets.size, axis=1)
    row = (np.floor(ty)[:, None, None] + offsets[None, :, None]).repeat(offsets.size, axis=2)
    col, row = col.reshape(len(tx), -1), row.reshape(len(tx), -1)
    moved = []
    for dcol, drow in ((0, 0), (1, 0), (0, 1), (1, 1)):
        vx, vy, _ = field.sample(col + dcol, row + drow)
        moved.append((col + dcol + vx, row + drow + vy))
    (x00, y00), (x01, y01), (x10, y10), (x11, y11) = moved
    corners = (x01 - x00, y01 - y00, x10 - x00, y10 - y00, x00 - x01 - x10 + x11, y00 - y01 - y10 + y11)
    u, v = _cell_solutions(corners, tx[:, None] - x00, ty[:, None] - y00)
    inside = (u >= -1e-9) & (u <= 1 + 1e-9) & (v >= -1e-9) & (v <= 1 + 1e-9)
    qx = np.where(inside, col[..., None] + u, np.nan).reshape(len(tx), -1)
    qy = np.where(inside, row[..., None] + v, np.nan).reshape(len(tx), -1)
    point, cand = np.nonzero(np.isfinite(qx) & np.isfinite(qy))
    # Polish in float64 (the roots lose digits where a cell is nearly degenerate).
    sx, sy, res, det = _newton(field, qx[point, cand], qy[point, cand], tx[point], ty[point])
    distance = np.hypot(sx - guess_x[point], sy - guess_y[point])
    rank = np.where(res <= _SOLVED, np.where(det > 0, 0.0, 1e6), 2e6 + 1e6 * res) + distance
    best_x, best_y = guess_x.copy(), guess_y.copy()
    order = np.lexsort((rank, point))
    first = order[np.r_[True, point[order][1:] != point[order][:-1]]] if order.size else order
    best_x[point[first]], best_y[point[first]] = sx[first], sy[first]
    return best_x, best_y


def _solve(field: _BilinearField, tx: Any, ty: Any) -> tuple[Any, Any]:
    """Solve ``q + d(q) = t`` per point (index space): Newton from ``t - d(t)``, else a search."""
    vx, vy, _ = field.sample(tx, ty)
    guess_x, guess_y = tx - vx, ty - vy
    qx, qy, res, _ = _newton(field, guess_x, guess_y, tx, ty)
    stalled = res > _SOLVED
    if stalled.any():
        qx[stalled], qy[stalled] = _search(
            field, tx[stalled], ty[stalled], guess_x[stalled], guess_y[stalled]
        )
    return qx, qy


def _keypoint_copy(keypoints: KeypointsLike) -> npt.NDArray[np.float64]:
    check_keypoints(keypoints)
    copy = np.array(keypoints, dtype=np.float64)
    return copy if copy.ndim == 2 else np.zeros((0, 2))


def move_keypoints(keypoints: KeypointsLike, field: Field) -> npt.NDArray[np.float64]:
    """Move keypoints with a backward displacement field: the ``p'`` with ``p' + d(p') = p``.

    Parameters
    ----------
    keypoints : array-like
        (N, D) with D >= 2: x, y in pixels (pixel ``i`` covers ``[i, i + 1)``), then any
        columns, which pass through. Rows with a NaN or infinite coordinate stay as given.
    field : tuple of numpy.ndarray
        ``(dx, dy)`` as returned by :func:`elastic_field`; ``d`` between pixel centres is its
        bilinear interpolation, held constant beyond the outermost centres.

    Returns
    -------
    numpy.ndarray
        A float64 (N, D) copy with x, y moved; the residual ``|p' + d(p') - p|`` is below
        1e-7 px. Where the field folds a point can have several images; see the module notes
        for which one is returned.

    Examples
    --------
    >>> dx = np.full((10, 10), 2.0, np.float32); dy = np.zeros((10, 10), np.float32)
    >>> move_keypoints([[5.0, 5.0, 1.0], [np.nan, np.nan, 0.0]], (dx, dy)).tolist()
    [[3.0, 5.0, 1.0], [nan, nan, 0.0]]
    """
    moved = _keypoint_copy(keypoints)
    bilinear = _BilinearField(_check_field(field))
    valid = np.isfinite(moved[:, 0]) & np.isfinite(moved[:, 1])
    if valid.any():
        qx, qy = _solve(bilinear, moved[valid, 0] - 0.5, moved[valid, 1] - 0.5)
        moved[valid, 0] = qx + 0.5
        moved[valid, 1] = qy + 0.5
    return moved
