"""Severity parameters of the ImageNet-C corruptions, as data.

The values are those of Hendrycks and Dietterich (ICLR 2019) as published in
``imagecorruptions`` 1.1.2 (Michaelis et al. 2019), the implementation every COCO-C, MPII-C and
OCHuman-C study uses. ``PARAMS[name][severity - 1]`` is the parameter set of one severity; the
meaning of each tuple's fields is given beside it and used by name in the kernels.

Examples
--------
>>> PARAMS["gaussian_noise"][2]
0.18
>>> len(PARAMS), STANDARD[:3]
(19, ('gaussian_noise', 'shot_noise', 'impulse_noise'))
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

__all__ = ["EXTRA", "GROUPS", "PARAMS", "STANDARD"]

#: The 15 standard corruptions, in imagecorruptions' order.
STANDARD: tuple[str, ...] = (
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "defocus_blur",
    "glass_blur",
    "motion_blur",
    "zoom_blur",
    "snow",
    "frost",
    "fog",
    "brightness",
    "contrast",
    "elastic_transform",
    "pixelate",
    "jpeg_compression",
)

#: The 4 held-out extras ("validation" corruptions in imagecorruptions).
EXTRA: tuple[str, ...] = ("speckle_noise", "gaussian_blur", "spatter", "saturate")

#: Hendrycks and Dietterich's four groups of the standard corruptions.
GROUPS: MappingProxyType[str, tuple[str, ...]] = MappingProxyType(
    {
        "noise": STANDARD[0:3],
        "blur": STANDARD[3:7],
        "weather": STANDARD[7:11],
        "digital": STANDARD[11:15],
    }
)


def _zoom_factors(count: int, step: float) -> tuple[float, ...]:
    # imagecorruptions uses np.arange(1, stop, step): these are its counts (float rounding puts
    # the stop itself into some ranges) and its values, 1 + i * delta with NumPy's delta.
    delta = (1.0 + step) - 1.0
    return tuple(1.0 + i * delta for i in range(count))


_TABLE: dict[str, tuple[Any, ...]] = {
    # scale of the N(0, scale) noise on [0, 1]
    "gaussian_noise": (0.08, 0.12, 0.18, 0.26, 0.38),
    # photons per unit intensity: Poisson(x * c) / c
    "shot_noise": (60, 25, 12, 5, 3),
    # salt-and-pepper amount (scikit-image "s&p", salt_vs_pepper 0.5)
    "impulse_noise": (0.03, 0.06, 0.09, 0.17, 0.27),
    # scale of the multiplicative N(0, scale) noise
    "speckle_noise": (0.15, 0.2, 0.35, 0.45, 0.6),
    # (disk radius, alias blur sigma)
    "defocus_blur": ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)),
    # (sigma, max_delta, iterations)
    "glass_blur": ((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2)),
    # (radius, sigma); the angle is drawn uniformly in [-45, 45) degrees
    "motion_blur": ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15)),
    # zoom factors averaged with the image
    "zoom_blur": (
        _zoom_factors(12, 0.01),  # np.arange(1, 1.11, 0.01)
        _zoom_factors(16, 0.01),  # np.arange(1, 1.16, 0.01)
        _zoom_factors(11, 0.02),  # np.arange(1, 1.21, 0.02)
        _zoom_factors(13, 0.02),  # np.arange(1, 1.26, 0.02)
        _zoom_factors(11, 0.03),  # np.arange(1, 1.31, 0.03)
    ),
    # Gaussian sigma (pixels)
    "gaussian_blur": (1, 2, 3, 4, 6),
    # (loc, scale, zoom, threshold, blur radius, blur sigma, blend)
    "snow": (
        (0.1, 0.3, 3, 0.5, 10, 4, 0.8),
        (0.2, 0.3, 2, 0.5, 12, 4, 0.7),
        (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
        (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
        (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55),
    ),
    # (image weight, frost weight)
    "frost": ((1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75)),
    # (fog strength, plasma wibble decay)
    "fog": ((1.5, 2), (2.0, 2), (2.5, 1.7), (2.5, 1.5), (3.0, 1.4)),
    # additive brightness in HSV value
    "brightness": (0.1, 0.2, 0.3, 0.4, 0.5),
    # contrast factor around the per-channel mean
    "contrast": (0.4, 0.3, 0.2, 0.1, 0.05),
    # displacement strength alpha (sigma is 1% of the image size, max delta 0.5% of the height)
    "elastic_transform": (250 * 0.05, 250 * 0.065, 250 * 0.085, 250 * 0.1, 250 * 0.12),
    # downscale factor (box filter down, nearest up)
    "pixelate": (0.6, 0.5, 0.4, 0.3, 0.25),
    # JPEG quality
    "jpeg_compression": (25, 18, 15, 10, 7),
    # (loc, scale, sigma, threshold, intensity, mode): mode 0 water, 1 mud
    "spatter": (
        (0.65, 0.3, 4, 0.69, 0.6, 0),
        (0.65, 0.3, 3, 0.68, 0.6, 0),
        (0.65, 0.3, 2, 0.68, 0.5, 0),
        (0.65, 0.3, 1, 0.65, 1.5, 1),
        (0.67, 0.4, 1, 0.65, 1.5, 1),
    ),
    # (saturation factor, saturation offset)
    "saturate": ((0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2)),
}

#: ``PARAMS[name][severity - 1]``: the parameters of each corruption at severities 1 to 5.
PARAMS: MappingProxyType[str, tuple[Any, ...]] = MappingProxyType(
    {name: _TABLE[name] for name in (*STANDARD, *EXTRA)}
)
