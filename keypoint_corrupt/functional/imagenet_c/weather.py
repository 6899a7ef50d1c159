"""ImageNet-C weather: snow, frost and fog, and the extra spatter.

Given a ``numpy.random.RandomState``, each function makes imagecorruptions 1.1.2's draws and
repeats its arithmetic (same floating-point types, same operation order), so all four are
bit-exact to the reference on x86-64 (measured on every fixture, size and severity tested).
The speed comes from doing less, not from approximating:

* ``fog``: the diamond-square plasma is built level by level on compact arrays instead of
  strided views of the full map, and the last level is only assembled where the image is.
* ``frost``: the textures are decoded and resized once per image size (cached); the blend of
  two uint8 values is one lookup in a 256 x 256 table.
* ``snow``: the compiled ``clipped_zoom`` and motion blur of :mod:`.blur`.
* ``spatter``: OpenCV's separable filter for scikit-image's ``gaussian``.
* all: the per-pixel float64 arithmetic runs on bands of 32 rows that stay in cache
  (:mod:`._blocks`).

With a ``Generator`` (the default) the same distributions are drawn, faster: normal noise by
the Box-Muller transform in float32, snow's noise only where its zoom looks, fog's plasma in
float32 with fused updates and its final blend as ``x k + plasma k'``.

Float input (float32 in [0, 1]) runs the same arithmetic on ``image * 255`` and returns
float32 in [0, 1].
"""

from __future__ import annotations

import functools
import math
import os
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from keypoint_corrupt._validation import ImageArray, check_image
from keypoint_corrupt.functional.imagenet_c._blocks import bands, new_result, store
from keypoint_corrupt.functional.imagenet_c._common import (
    Draws,
    RandomSource,
    as_draws,
    check_severity,
    run_rgb,
)
from keypoint_corrupt.functional.imagenet_c._gaussian import gaussian_filter
from keypoint_corrupt.functional.imagenet_c._textures import FILENAMES, frost_folder, resized_texture
from keypoint_corrupt.functional.imagenet_c.blur import clipped_zoom, motion_blur_layer
from keypoint_corrupt.functional.imagenet_c.params import PARAMS

__all__ = ["fog", "frost", "snow", "spatter"]

Float64Array = npt.NDArray[np.float64]
FloatArray = npt.NDArray[np.floating]


def _unit_float32(rgb: ImageArray) -> npt.NDArray[np.float32]:
    # The reference's np.array(x, dtype=np.float32) / 255.
    unit: npt.NDArray[np.float32] = np.divide(rgb, np.float32(255.0), dtype=np.float32)
    return unit


def _normal(draws: Draws, loc: float, scale: float, shape: tuple[int, int]) -> FloatArray:
    """``normal(loc, scale, shape)``: float64 from a RandomState (its stream), else float32."""
    if draws.state is not None:
        return draws.state.normal(loc, scale, shape)
    assert draws.gen is not None
    layer = _box_muller(draws.gen, shape[0] * shape[1]).reshape(shape)
    layer *= np.float32(scale)
    layer += np.float32(loc)
    return layer


def _box_muller(gen: np.random.Generator, count: int) -> npt.NDArray[np.float32]:
    """Draw ``count`` standard normal float32 values by the Box-Muller transform.

    Exactly normal up to float32 resolution (the 24-bit uniforms cut the tails beyond 5.7
    sigma); about 3x faster here than NumPy's float32 ziggurat.
    """
    half = (count + 1) // 2
    uniform = gen.random((2, half), dtype=np.float32)
    radius = np.log1p(-uniform[0])  # 1 - u is in (0, 1]: the log is finite
    radius *= np.float32(-2.0)
    np.sqrt(radius, out=radius)
    angle = uniform[1]
    angle *= np.float32(2.0 * np.pi)
    out = np.empty(2 * half, np.float32)
    np.cos(angle, out=out[:half])
    np.sin(angle, out=out[half:])
    out[:half] *= radius
    out[half:] *= radius
    return out[:count]


# ---------------------------------------------------------------------------------------------
# Snow


def snow_draws(draws: Draws, params: tuple[float, ...], shape: tuple[int, int]) -> tuple[FloatArray, float]:
    """Draw snow's random parts: the noise layer (not yet zoomed) and the streak angle.

    Shared by the CPU kernel and the torch kernel; the layer is float64 from a RandomState,
    float32 from a Generator, and is zoomed by ``clipped_zoom`` afterwards.

    Examples
    --------
    >>> layer, angle = snow_draws(as_draws(0), PARAMS["snow"][0], (8, 10))
    >>> layer.shape, layer.dtype.name, -135 <= angle < -45
    ((8, 10), 'float32', True)
    """
    loc, scale, zoom = params[:3]
    layer = _snow_noise(draws, loc, scale, zoom, shape)
    return layer, float(draws.uniform(-135, -45))


def _snow_noise(draws: Draws, loc: float, scale: float, zoom: float, shape: tuple[int, int]) -> FloatArray:
    """Draw the noise layer that ``clipped_zoom`` by ``zoom`` will zoom about its centre."""
    if draws.state is not None:
        return _normal(draws, loc, scale, shape)
    # The zoom keeps only the centre 1/zoom crop of the layer: draw just that.
    height, width = shape
    rows, cols = math.ceil(height / zoom), math.ceil(width / zoom)
    top, left = (height - rows) // 2, (width - cols) // 2
    layer = np.zeros(shape, np.float32)
    layer[top : top + rows, left : left + cols] = _normal(draws, loc, scale, (rows, cols))
    return layer


_LEVEL_TO_UNIT = np.arange(256) / 255.0  # uint8 level -> level / 255. in float64


def _snow_band(
    rgb: ImageArray, levels: npt.NDArray[np.uint8], turned: npt.NDArray[np.uint8], blend: float
) -> Any:
    """Blend image rows with their snow layer rows and the layer turned by 180 degrees."""
    # Per-pixel layers are stacked to 3 channels: NumPy is slow on a broadcast last axis.
    unit = _unit_float32(rgb)
    lifted = cv2.cvtColor(unit, cv2.COLOR_RGB2GRAY) * np.float32(1.5) + np.float32(0.5)
    whitened = cv2.merge([lifted] * 3)
    np.maximum(unit, whitened, out=whitened)
    whitened *= np.float32(1 - blend)
    unit *= np.float32(blend)
    unit += whitened
    # In float64, in the reference's order: (x + layer) + turned layer.
    out: ImageArray = cv2.LUT(cv2.merge([levels] * 3), _LEVEL_TO_UNIT)
    out += unit
    out += cv2.LUT(cv2.merge([turned] * 3), _LEVEL_TO_UNIT)
    out *= 255.0
    return out


def _snow_kernel(rgb: ImageArray, params: tuple[float, ...], draws: Draws) -> ImageArray:
    zoom, threshold, radius, sigma, blend = params[2:]
    height, width = rgb.shape[:2]
    layer, angle = snow_draws(draws, params, (height, width))
    flakes = clipped_zoom(layer, zoom)
    flakes[flakes < threshold] = 0
    np.clip(flakes, 0, 1, out=flakes)
    streaks = motion_blur_layer(flakes, int(radius), sigma, angle)
    # The reference rounds the layer to uint8 levels, then cuts it to the image.
    streaks *= 255
    np.rint(streaks, out=streaks)
    levels = streaks[:height, :width].astype(np.uint8)
    turned = levels[::-1, ::-1]
    out = new_result(rgb)
    for band in bands(height):
        store(_snow_band(rgb[band], levels[band], turned[band], blend), out[band])
    return out


def snow(image: ImageArray, severity: int, rng: RandomSource = None) -> ImageArray:
    """Snow of ImageNet-C: motion-blurred flakes over a whitened image.

    A normal noise layer is zoomed about its centre, thresholded, streaked by a motion blur at
    an angle drawn in [-135, -45) degrees, and added to the image twice (once rotated by 180
    degrees); the image is first pulled towards ``max(x, 1.5 grey + 0.5)``.

    Parameters
    ----------
    image : numpy.ndarray
        uint8 or float32 (values in [0, 1]), HxW, HxWx1, HxWx3 or HxWx4 (alpha passes through).
    severity : int
        1 to 5.
    rng : int, numpy.random.Generator, numpy.random.RandomState or None
        A ``RandomState`` draws exactly what imagecorruptions draws from the global state
        (``normal`` of size HxW, then the angle); a ``Generator`` draws only the noise the
        zoom keeps.

    Returns
    -------
    numpy.ndarray
        A new array of the same shape and dtype.

    Examples
    --------
    >>> img = np.zeros((48, 64, 3), np.uint8)
    >>> out = snow(img, 3, rng=0)
    >>> out.shape, int(out.min()) >= 0
    ((48, 64, 3), True)
    """
    params = PARAMS["snow"][check_severity(severity) - 1]
    return run_rgb(image, _snow_kernel, params, as_draws(rng))


# ---------------------------------------------------------------------------------------------
# Frost


@functools.lru_cache(maxsize=8)
def _frost_table(image_weight: float, frost_weight: float) -> npt.NDArray[np.uint8]:
    # uint8(clip(a * x + b * f, 0, 255)) for every pair (x, f), in the reference's float64.
    levels = np.arange(256, dtype=np.float64)
    table = np.clip(np.add.outer(image_weight * levels, frost_weight * levels), 0, 255).astype(np.uint8)
    table.setflags(write=False)
    return table.ravel()


def frost_crop(draws: Draws, folder: str, height: int, width: int) -> npt.NDArray[np.uint8]:
    """Draw frost's random parts: the texture and the place of its ``height`` x ``width`` crop (RGB uint8).

    Shared by the CPU kernel and the torch kernel.

    Examples
    --------
    >>> frost_crop(as_draws(0), "/nonexistent", 8, 8)
    Traceback (most recent call last):
    ...
    FileNotFoundError: ...
    """
    index = int(draws.randint(0, 5))  # the reference's randint(5): frost6.jpg is never used
    texture = resized_texture(os.path.join(folder, FILENAMES[index]), height, width)
    top = int(draws.randint(0, texture.shape[0] - height))
    left = int(draws.randint(0, texture.shape[1] - width))
    return texture[top : top + height, left : left + width]


def _frost_kernel(rgb: ImageArray, params: tuple[tuple[float, float], str], draws: Draws) -> ImageArray:
    (image_weight, frost_weight), folder = params
    height, width = rgb.shape[:2]
    crop = frost_crop(draws, folder, height, width)
    if rgb.dtype != np.uint8:
        blended: ImageArray = rgb * np.float32(image_weight) + crop * np.float32(frost_weight)
        return blended
    table = _frost_table(image_weight, frost_weight)
    out = new_result(rgb)
    for band in bands(height, 64):
        pairs = np.left_shift(rgb[band], 8, dtype=np.uint16)
        pairs |= crop[band]
        table.take(pairs, out=out[band])
    return out


def frost(
    image: ImageArray,
    severity: int,
    rng: RandomSource = None,
    *,
    textures: str | os.PathLike[str] | None = None,
) -> ImageArray:
    """Frost of ImageNet-C: the image blended with a random crop of a frost photograph.

    ``a * image + b * frost`` with (a, b) = (1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7),
    (0.6, 0.75); the photograph (one of the first five of imagecorruptions' six, as its
    ``randint(5)`` picks) is scaled bicubically to 1.1 times the size that covers the image and
    cropped at a random place.

    The photographs are not part of this package. They are read from ``textures`` (a folder
    holding ``frost1.png`` .. ``frost6.jpg``), else from the folder named by the environment
    variable ``KEYPOINT_CORRUPT_FROST_DIR``, else from an installed ``imagecorruptions``
    (``pip install --no-deps imagecorruptions==1.1.2``); ``FileNotFoundError`` says so when
    none has them. Nothing is downloaded.

    Parameters
    ----------
    image : numpy.ndarray
        uint8 or float32 (values in [0, 1]), HxW, HxWx1, HxWx3 or HxWx4 (alpha passes through).
    severity : int
        1 to 5.
    rng : int, numpy.random.Generator, numpy.random.RandomState or None
        A ``RandomState`` draws exactly what imagecorruptions draws (``randint(5)``, then the
        crop's top row and left column).
    textures : str or os.PathLike, optional
        Folder of the frost photographs.

    Returns
    -------
    numpy.ndarray
        A new array of the same shape and dtype.

    Examples
    --------
    >>> img = np.zeros((48, 64, 3), np.uint8)
    >>> frost(img, 1, rng=0, textures="/nonexistent")
    Traceback (most recent call last):
    ...
    FileNotFoundError: frost texture /nonexistent/frost1.png not found (from textures=...); install them ...
    """
    weights = PARAMS["frost"][check_severity(severity) - 1]
    draws = as_draws(rng)
    check_image(image)
    folder = str(frost_folder(textures))
    return run_rgb(image, _frost_kernel, (weights, folder), draws)


# ---------------------------------------------------------------------------------------------
# Fog


def _plus_neighbour(grid: FloatArray, step: int, axis: int, out: FloatArray | None = None) -> FloatArray:
    """``grid + np.roll(grid, -step, axis)`` (periodic neighbour ``step`` ahead), without the roll's copy."""
    out = np.empty_like(grid) if out is None else out
    src, dst = (grid, out) if axis == 0 else (grid.T, out.T)
    if step == -1:
        np.add(src[1:], src[:-1], out=dst[1:])
        np.add(src[0], src[-1], out=dst[0])
    else:
        np.add(src[:-1], src[1:], out=dst[:-1])
        np.add(src[-1], src[0], out=dst[-1])
    return out


def _plasma_level(
    corners: FloatArray, wibble: float, draws: Draws
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """One diamond-square level: the square centres and the two kinds of diamond points.

    ``corners`` is the n x n grid of the level (periodic). Each new point is the mean of its
    four neighbours (the reference's sums, in its order) plus ``wibble * uniform(-wibble,
    wibble)``: in float64 from a RandomState, in float32 from a Generator. Buffers are reused:
    the last levels are megabytes.
    """
    n = corners.shape[0]
    noise = np.empty_like(corners)

    def displace(total: FloatArray) -> None:
        if draws.state is None:
            assert draws.gen is not None
            # total / 4 + wibble * (2 wibble r - wibble) in one pass, r uniform in [0, 1).
            draws.gen.random(dtype=np.float32, out=noise)
            cv2.addWeighted(total, 0.25, noise, 2.0 * wibble * wibble, -wibble * wibble, dst=total)
            return
        total /= 4
        total += np.multiply(draws.state.uniform(-wibble, wibble, (n, n)), wibble, out=noise)

    across = _plus_neighbour(corners, 1, axis=0)
    centres = _plus_neighbour(across, 1, axis=1)
    displace(centres)
    rows = _plus_neighbour(centres, -1, axis=0)
    rows += _plus_neighbour(corners, 1, axis=1, out=noise)
    displace(rows)
    cols = _plus_neighbour(centres, -1, axis=1)
    cols += across
    displace(cols)
    return centres, rows, cols


def _plasma(size: int, decay: float, draws: Draws, height: int, width: int) -> FloatArray:
    """Return imagecorruptions' ``plasma_fractal(size, decay)[:height, :width]`` (range [0, 1])."""
    corners: FloatArray = np.zeros((1, 1), np.float64 if draws.legacy else np.float32)
    wibble = 100.0
    while True:
        centres, rows, cols = _plasma_level(corners, wibble, draws)
        if 2 * corners.shape[0] == size:
            break
        grid = np.empty((2 * corners.shape[0],) * 2, corners.dtype)
        grid[0::2, 0::2], grid[0::2, 1::2] = corners, rows
        grid[1::2, 0::2], grid[1::2, 1::2] = cols, centres
        corners = grid
        wibble /= decay
    # The last level is only assembled where the image is; its extremes come from the parts.
    low = min(part.min() for part in (corners, rows, cols, centres))
    high = max(part.max() for part in (corners, rows, cols, centres))
    out = np.empty((height, width), corners.dtype)
    half_h, half_w = (height + 1) // 2, (width + 1) // 2
    out[0::2, 0::2] = corners[:half_h, :half_w]
    out[0::2, 1::2] = rows[:half_h, : width // 2]
    out[1::2, 0::2] = cols[: height // 2, :half_w]
    out[1::2, 1::2] = centres[: height // 2, : width // 2]
    out -= low
    out /= high - low
    return out


#: fog's plasma map is square, its side the next power of two of the image's longest side: 8192
#: (8K images) holds it in 0.5 GB of float64; beyond, a thin image would need gigabytes.
_MAX_PLASMA = 8192


def fog_plasma(draws: Draws, params: tuple[float, float], height: int, width: int) -> FloatArray:
    """Draw fog's plasma, cut to ``height`` x ``width`` (float64 from a RandomState, else float32).

    Shared by the CPU kernel and the torch kernel (the fractal is built level by level from its
    draws, on the host).

    Examples
    --------
    >>> plasma = fog_plasma(as_draws(np.random.RandomState(0)), PARAMS["fog"][0], 5, 7)
    >>> plasma.shape, plasma.dtype.name, bool(0 <= plasma.min() <= plasma.max() <= 1)
    ((5, 7), 'float64', True)
    """
    size = 1 << (max(height, width, 3) - 1).bit_length()  # next power of two, of H, W and 3 channels
    if size > _MAX_PLASMA:
        raise ValueError(
            f"image must be at most {_MAX_PLASMA} px on its longest side for fog, whose plasma map is "
            f"square (imagecorruptions'), got shape {(height, width)}: a {size}x{size} map; resize it first"
        )
    return _plasma(size, params[1], draws, height, width)


def _fog_kernel(rgb: ImageArray, params: tuple[float, float], draws: Draws) -> ImageArray:
    strength = params[0]
    height, width = rgb.shape[:2]
    plasma = fog_plasma(draws, params, height, width)
    brightest = float(rgb.max()) / 255.0  # max(x / 255.) is max(x) / 255.
    out = new_result(rgb)
    for band in bands(height):
        if draws.legacy:
            values = _fog_band_exact(rgb[band], plasma[band], strength, brightest)
        else:
            values = _fog_band_fast(rgb[band], plasma[band], strength, brightest)
        store(values, out[band])
    return out


def _fog_band_exact(rgb: ImageArray, plasma: FloatArray, strength: float, brightest: float) -> Any:
    # The reference's float64 arithmetic, operation for operation.
    unit = np.divide(rgb, 255.0, dtype=np.float64)
    unit += cv2.merge([strength * plasma] * 3)
    unit *= brightest
    unit /= brightest + strength
    unit *= 255.0
    return unit


def _fog_band_fast(rgb: ImageArray, plasma: FloatArray, strength: float, brightest: float) -> Any:
    """``255 * (x + s * plasma) * k`` with ``k = max(x) / (max(x) + s)``, as ``x * 255k + plasma * 255sk``."""
    gain = brightest / (brightest + strength)
    levels: ImageArray
    if rgb.dtype == np.uint8:
        levels = cv2.LUT(rgb, np.arange(256, dtype=np.float32) * np.float32(gain))
    else:
        levels = rgb * np.float32(gain)
    levels += cv2.merge([plasma * np.float32(255.0 * strength * gain)] * 3)
    return levels


def fog(image: ImageArray, severity: int, rng: RandomSource = None) -> ImageArray:
    """Fog of ImageNet-C: a diamond-square plasma added to the image, rescaled to its maximum.

    ``(x + s * plasma) * max(x) / (max(x) + s)`` on [0, 1] with (s, decay) = (1.5, 2), (2, 2),
    (2.5, 1.7), (2.5, 1.5), (3, 1.4); the plasma is a periodic diamond-square fractal on the
    next power of two of the image's longer side (at least 4), normalised to [0, 1] over the
    whole map, cut to the image at its top-left corner.

    Parameters
    ----------
    image : numpy.ndarray
        uint8 or float32 (values in [0, 1]), HxW, HxWx1, HxWx3 or HxWx4 (alpha passes through).
    severity : int
        1 to 5.
    rng : int, numpy.random.Generator, numpy.random.RandomState or None
        A ``RandomState`` draws exactly what imagecorruptions draws (three ``uniform`` calls
        per level of the fractal, coarse to fine).

    Returns
    -------
    numpy.ndarray
        A new array of the same shape and dtype.

    Examples
    --------
    >>> img = np.full((48, 64, 3), 200, np.uint8)
    >>> out = fog(img, 2, rng=0)
    >>> out.shape, bool((out <= 200).all())
    ((48, 64, 3), True)
    """
    params = PARAMS["fog"][check_severity(severity) - 1]
    return run_rgb(image, _fog_kernel, params, as_draws(rng))


# ---------------------------------------------------------------------------------------------
# Spatter

_WATER_RGB = (175 / 255.0, 238 / 255.0, 238 / 255.0)  # pale turquoise, in the reference's channel order
_MUD_RGB = (63 / 255.0, 42 / 255.0, 20 / 255.0)
_EMBOSS = np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]], dtype=np.float32)


def _water_sheen(liquid: FloatArray) -> npt.NDArray[np.float32]:
    """Return the water's strength: the liquid times an embossed distance-to-edge map, max 1."""
    level = (liquid * 255).astype(np.uint8)
    distance = cv2.distanceTransform(255 - cv2.Canny(level, 50, 150), cv2.DIST_L2, 5)
    _, distance = cv2.threshold(distance, 20, 20, cv2.THRESH_TRUNC)
    relief = cv2.equalizeHist(cv2.blur(distance, (3, 3)).astype(np.uint8))
    relief = cv2.blur(cv2.filter2D(relief, cv2.CV_8U, _EMBOSS), (3, 3)).astype(np.float32)
    sheen: npt.NDArray[np.float32] = level * relief
    peak = sheen.max()
    if peak > 0:  # the reference divides by zero (NaN image) when there is no liquid at all
        sheen /= peak
    return sheen


def _water_band(rgb: ImageArray, sheen: npt.NDArray[np.float32]) -> Any:
    unit = _unit_float32(rgb)
    unit += cv2.merge([sheen * np.float32(colour) for colour in _WATER_RGB])
    np.clip(unit, 0, 1, out=unit)
    unit *= np.float32(255)
    return unit


def _mud_band(rgb: ImageArray, mud: npt.NDArray[np.float32]) -> Any:
    unit = _unit_float32(rgb)
    unit *= cv2.merge([1 - mud] * 3)
    mud64 = mud.astype(np.float64)
    out = unit + cv2.merge([colour * mud64 for colour in _MUD_RGB])
    out *= 255.0
    return out


def spatter_layer(
    draws: Draws, params: tuple[float, ...], height: int, width: int
) -> npt.NDArray[np.float32]:
    """Draw spatter's random parts, the noise and the liquid layer made from it (HxW float32).

    Water (mode 0): the sheen times the intensity; mud (mode 1): the mud's strength. Shared by
    the CPU kernel and the torch kernel (the layer is OpenCV image processing on the host:
    Canny, distance transform, histogram equalisation).

    Examples
    --------
    >>> layer = spatter_layer(as_draws(0), PARAMS["spatter"][3], 16, 20)
    >>> layer.shape, layer.dtype.name
    ((16, 20), 'float32')
    """
    loc, scale, sigma, threshold, intensity, mode = params
    noise = _normal(draws, loc, scale, (height, width))
    liquid = gaussian_filter(noise, (sigma, sigma), 4.0, "nearest", precise=draws.legacy)
    liquid[liquid < threshold] = 0
    if mode == 0:
        sheen = _water_sheen(liquid)
        sheen *= intensity
        return sheen
    mask = (liquid > threshold).astype(np.float32)
    mud: npt.NDArray[np.float32] = gaussian_filter(
        mask, (intensity, intensity), 4.0, "nearest", precise=draws.legacy
    )
    mud[mud < 0.8] = 0
    return mud


def _spatter_kernel(rgb: ImageArray, params: tuple[float, ...], draws: Draws) -> ImageArray:
    height = rgb.shape[0]
    layer = spatter_layer(draws, params, height, rgb.shape[1])
    out = new_result(rgb)
    if params[5] == 0:
        for band in bands(height):
            store(_water_band(rgb[band], layer[band]), out[band])
        return out
    for band in bands(height):
        store(_mud_band(rgb[band], layer[band]), out[band])
    return out


def spatter(image: ImageArray, severity: int, rng: RandomSource = None) -> ImageArray:
    """Spatter of ImageNet-C (an extra): water drops (severities 1-3) or mud (4-5) on the lens.

    A smoothed normal noise layer, thresholded, marks the liquid. Water: its edges (Canny),
    a distance transform, histogram equalisation and an emboss give a sheen that is added in
    pale turquoise. Mud: the liquid mask, smoothed and thresholded at 0.8, paints the image
    brown.

    Parameters
    ----------
    image : numpy.ndarray
        uint8 or float32 (values in [0, 1]), HxW, HxWx1, HxWx3 or HxWx4 (alpha passes through).
    severity : int
        1 to 5.
    rng : int, numpy.random.Generator, numpy.random.RandomState or None
        A ``RandomState`` draws exactly what imagecorruptions draws (one ``normal`` of size HxW).

    Returns
    -------
    numpy.ndarray
        A new array of the same shape and dtype.

    Examples
    --------
    >>> img = np.full((48, 64, 3), 100, np.uint8)
    >>> spatter(img, 4, rng=0).shape
    (48, 64, 3)
    """
    params = PARAMS["spatter"][check_severity(severity) - 1]
    return run_rgb(image, _spatter_kernel, params, as_draws(rng))
