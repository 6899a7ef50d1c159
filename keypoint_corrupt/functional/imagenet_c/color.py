"""ImageNet-C's colour corruptions: brightness, contrast and saturate.

None of them draws random numbers. ``brightness`` and ``saturate`` shift the value or scale
the saturation in HSV space; imagecorruptions goes through scikit-image's ``rgb2hsv`` and
``hsv2rgb``, and here the same float64 operations (same operands, same order, so the same IEEE
results: bit-exact) run on contiguous colour planes, a band of rows at a time, about ten times
faster. ``contrast`` pulls every channel towards its mean over the image; for uint8 images that is a
256-entry table per channel, built with the reference's float64 formula from channel means
computed exactly from integer sums. Where a table entry lands within 1e-6 of an integer (a
constant image, say), its truncation depends on the last bits of the mean, so the means are
then recomputed as imagecorruptions computes them (float64 quotients, NumPy's summation): the
result is bit-exact either way.

Examples
--------
>>> import numpy as np
>>> img = np.full((8, 8, 3), (200, 100, 50), np.uint8)
>>> brightness(img, 5)[0, 0].tolist()  # value 200/255 + 0.5 clips to 1
[255, 127, 63]
>>> contrast(img, 1)[0, 0].tolist()  # its own mean, truncated as imagecorruptions' float64 truncates
[199, 99, 49]
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import numpy.typing as npt

from keypoint_corrupt._validation import ImageArray
from keypoint_corrupt.functional.imagenet_c._blocks import bands, new_result, store
from keypoint_corrupt.functional.imagenet_c._common import (
    Draws,
    RandomSource,
    as_draws,
    check_severity,
    run_rgb,
)
from keypoint_corrupt.functional.imagenet_c.params import PARAMS

__all__ = ["brightness", "contrast", "saturate"]

Plane = npt.NDArray[np.float64]

# hsv2rgb picks each channel from (v, p, q, t) by hue sector; all four are v * (1 - w * s) with
# w = 0, 1, f and 1 - f, i.e. w = a + b * f with these (a, b) per sector and channel.
_SECTOR_A = np.array([[0, 1, 1], [0, 0, 1], [1, 0, 1], [1, 0, 0], [1, 1, 0], [0, 1, 0]], np.float64)
_SECTOR_B = np.array([[0, -1, 0], [1, 0, 0], [0, 0, -1], [0, 1, 0], [-1, 0, 0], [0, 0, 1]], np.float64)


def _unit_planes(rgb: ImageArray) -> tuple[Plane, Plane, Plane]:
    """Split ``rgb`` into contiguous float64 planes on [0, 1] (imagecorruptions' ``x / 255.``)."""
    r, g, b = (np.divide(plane, 255.0, dtype=np.float64) for plane in cv2.split(rgb))
    return r, g, b


def _rgb_to_hsv(r: Plane, g: Plane, b: Plane) -> tuple[Plane, Plane, Plane]:
    """Return scikit-image's ``rgb2hsv`` of the red, green and blue planes (on [0, 1])."""
    value = np.maximum(np.maximum(r, g), b)
    delta = value - np.minimum(np.minimum(r, g), b)
    grey = delta == 0.0
    # scikit-image assigns the hue for red, then green, then blue as the maximum, so on ties
    # blue wins over green over red; red's formula has no offset (0.0 + y == y).
    blue_max, green_max = b == value, g == value
    numerator = np.where(blue_max, r - g, np.where(green_max, b - r, g - b))
    offset = np.where(blue_max, 4.0, np.where(green_max, 2.0, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        saturation = delta / value
        hue = (offset + numerator / delta) / 6.0
    # hue is in (-1/6, 5/6), where NumPy's ``% 1.0`` adds 1 to the negative values only.
    np.add(hue, 1.0, out=hue, where=hue < 0)
    saturation[grey] = 0.0
    hue[grey] = 0.0
    return hue, saturation, value


def _hsv_to_rgb(hue: Plane, saturation: Plane, value: Plane) -> npt.NDArray[np.float64]:
    """Return scikit-image's ``hsv2rgb`` of the three planes, HxWx3."""
    sector = np.floor(hue * 6)
    frac = hue * 6 - sector
    code = sector.astype(np.uint8) % 6
    out = np.empty((*hue.shape, 3), np.float64)
    for channel in range(3):
        weight = _SECTOR_A[:, channel].take(code)
        weight += _SECTOR_B[:, channel].take(code) * frac
        weight *= saturation
        np.subtract(1, weight, out=weight)
        np.multiply(value, weight, out=out[..., channel])
    return out


def _hsv_adjusted(
    rgb: ImageArray, adjust: Callable[[Plane, Plane, Plane], tuple[Plane, Plane, Plane]]
) -> ImageArray:
    """Round-trip ``rgb`` through HSV with ``adjust`` applied, band by band (small temporaries)."""
    out = new_result(rgb)
    for rows in bands(rgb.shape[0]):
        values = _hsv_to_rgb(*adjust(*_rgb_to_hsv(*_unit_planes(rgb[rows]))))
        values *= 255  # in [0, 1] already: the same values as imagecorruptions' clip(x, 0, 1) * 255
        store(values, out[rows])
    return out


def _brightness_kernel(rgb: ImageArray, shift: float, draws: Draws) -> ImageArray:
    return _hsv_adjusted(rgb, lambda hue, sat, val: (hue, sat, np.clip(val + shift, 0, 1)))


def _saturate_kernel(rgb: ImageArray, params: tuple[float, float], draws: Draws) -> ImageArray:
    factor, offset = params
    return _hsv_adjusted(rgb, lambda hue, sat, val: (hue, np.clip(sat * factor + offset, 0, 1), val))


def _contrast_kernel(rgb: ImageArray, factor: float, draws: Draws) -> ImageArray:
    if rgb.dtype != np.uint8:  # rgb is the kernel's own copy: work in place
        means = rgb.mean(axis=(0, 1), dtype=np.float64).astype(np.float32)
        rgb -= means
        rgb *= np.float32(factor)
        rgb += means
        return rgb
    rgb = np.ascontiguousarray(rgb)
    sums = np.array(cv2.sumElems(rgb)[:3])  # exact: integer sums well below 2**53
    scaled = _contrast_levels(sums / (255.0 * rgb.shape[0] * rgb.shape[1]), factor)
    if np.any(np.abs(scaled - np.rint(scaled)) < 1e-6):
        # An entry sits on an integer, so its truncation depends on the mean's last bits: take
        # the mean as imagecorruptions does (float64 quotients, NumPy's summation order).
        scaled = _contrast_levels((rgb / 255.0).mean(axis=(0, 1)), factor)
    return cv2.LUT(rgb, scaled.astype(np.uint8).reshape(256, 1, 3))


def _contrast_levels(means: npt.NDArray[np.float64], factor: float) -> npt.NDArray[np.float64]:
    """Each level's result before truncation, per channel: the reference's float64 formula."""
    unit = np.arange(256)[:, None] / 255.0
    levels: npt.NDArray[np.float64] = np.clip((unit - means) * factor + means, 0, 1) * 255
    return levels


def brightness(image: ImageArray, severity: int, rng: RandomSource = None) -> ImageArray:
    """Brighten: add ``c`` to the HSV value (clipped to 1), keeping hue and saturation.

    ``c`` is 0.1, 0.2, 0.3, 0.4 or 0.5 (severities 1 to 5). Bit-exact with imagecorruptions
    (the same float64 HSV arithmetic as scikit-image). Grey images are brightened as their RGB
    stack, as imagecorruptions' ``corrupt()`` does; for them that is ``x + c``.

    Parameters
    ----------
    image : numpy.ndarray
        uint8 or float32 (values in [0, 1]) image, HxW, HxWx1, HxWx3 or HxWx4.
    severity : int
        1 to 5.
    rng : int, numpy.random.Generator, numpy.random.RandomState or None
        Accepted for a uniform signature and validated; nothing is drawn.

    Returns
    -------
    numpy.ndarray
        A new array of the same shape and dtype.

    Examples
    --------
    >>> import numpy as np
    >>> int(brightness(np.zeros((4, 4), np.uint8), 1)[0, 0])  # 0 + 0.1 * 255, truncated
    25
    """
    params = PARAMS["brightness"][check_severity(severity) - 1]
    return run_rgb(image, _brightness_kernel, params, as_draws(rng))


def contrast(image: ImageArray, severity: int, rng: RandomSource = None) -> ImageArray:
    """Lower the contrast: ``(x - mean) * c + mean`` per channel, the mean taken over the image.

    ``c`` is 0.4, 0.3, 0.2, 0.1 or 0.05 (severities 1 to 5).

    Parameters
    ----------
    image : numpy.ndarray
        uint8 or float32 (values in [0, 1]) image, HxW, HxWx1, HxWx3 or HxWx4.
    severity : int
        1 to 5.
    rng : int, numpy.random.Generator, numpy.random.RandomState or None
        Accepted for a uniform signature and validated; nothing is drawn.

    Returns
    -------
    numpy.ndarray
        A new array of the same shape and dtype.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.array([[0, 100]], np.uint8).repeat(32, 0)  # mean 50
    >>> contrast(img, 1)[0].tolist()  # 50 -+ 50 * 0.4, truncated
    [30, 70]
    """
    params = PARAMS["contrast"][check_severity(severity) - 1]
    return run_rgb(image, _contrast_kernel, params, as_draws(rng))


def saturate(image: ImageArray, severity: int, rng: RandomSource = None) -> ImageArray:
    """Change the saturation: ``s * a + b`` in HSV (clipped to [0, 1]), keeping hue and value.

    ``(a, b)`` is (0.3, 0), (0.1, 0), (2, 0), (5, 0.1) or (20, 0.2) (severities 1 to 5):
    desaturated at 1 and 2, oversaturated from 3. Bit-exact with imagecorruptions (the same
    float64 HSV arithmetic as scikit-image).

    Parameters
    ----------
    image : numpy.ndarray
        uint8 or float32 (values in [0, 1]) image, HxW, HxWx1, HxWx3 or HxWx4.
    severity : int
        1 to 5.
    rng : int, numpy.random.Generator, numpy.random.RandomState or None
        Accepted for a uniform signature and validated; nothing is drawn.

    Returns
    -------
    numpy.ndarray
        A new array of the same shape and dtype.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.full((4, 4, 3), (200, 100, 100), np.uint8)
    >>> saturate(img, 2)[0, 0].tolist()  # saturation 0.5 -> 0.05: 200 * 0.95, truncated
    [200, 189, 189]
    """
    params = PARAMS["saturate"][check_severity(severity) - 1]
    return run_rgb(image, _saturate_kernel, params, as_draws(rng))
