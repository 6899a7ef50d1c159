"""SciPy's ``gaussian_filter`` (what scikit-image's ``gaussian`` calls) on OpenCV's separable filter.

imagecorruptions smooths its random layers with ``skimage.filters.gaussian``, i.e.
``scipy.ndimage.gaussian_filter``: a sampled Gaussian of radius ``int(truncate * sigma + 0.5)``
normalised to sum 1, applied along each axis. The same taps through ``cv2.sepFilter2D`` give the
same result (float64 to the last few ulps, float32 rounded as SciPy rounds it) several times
faster. SciPy's border modes map onto OpenCV's: ``"reflect"`` (``dcba|abcd``) is
``BORDER_REFLECT``, ``"nearest"`` is ``BORDER_REPLICATE``.
"""

from __future__ import annotations

import functools
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

__all__ = ["gaussian_filter", "gaussian_taps"]

_BORDERS = {"reflect": cv2.BORDER_REFLECT, "nearest": cv2.BORDER_REPLICATE}
_IDENTITY = np.ones(1)


@functools.lru_cache(maxsize=64)
def gaussian_taps(sigma: float, truncate: float) -> npt.NDArray[np.float64]:
    """Return the 1-D taps SciPy uses for ``sigma`` and ``truncate`` (``[1.0]`` for a tiny sigma).

    Examples
    --------
    >>> gaussian_taps(1.0, 3.0).size, round(float(gaussian_taps(1.0, 3.0).sum()), 12)
    (7, 1.0)
    """
    radius = int(truncate * sigma + 0.5)
    if sigma <= 1e-15 or radius == 0:
        return np.ones(1)
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    taps = np.exp(-0.5 / (sigma * sigma) * offsets * offsets)
    taps /= taps.sum()
    taps.setflags(write=False)
    return taps


def gaussian_filter(
    layer: npt.NDArray[Any],
    sigma_yx: tuple[float, float],
    truncate: float,
    mode: str,
    *,
    precise: bool = True,
) -> npt.NDArray[Any]:
    """Smooth a 2-D float32 or float64 ``layer`` like ``scipy.ndimage.gaussian_filter``.

    ``sigma_yx`` is (rows, columns); ``mode`` is ``"reflect"`` or ``"nearest"``. The result has
    the layer's dtype. SciPy filters a float32 layer one axis at a time in float64, rounding to
    float32 in between; ``precise`` (the default) does the same (identical values), while
    ``precise=False`` filters in float32 in one call (within about 1e-6, faster).

    Examples
    --------
    >>> out = gaussian_filter(np.eye(5), (1.0, 1.0), 4.0, "nearest")
    >>> out.shape, out.dtype.name
    ((5, 5), 'float64')
    """
    taps_y = gaussian_taps(float(sigma_yx[0]), truncate)
    taps_x = gaussian_taps(float(sigma_yx[1]), truncate)
    border = _BORDERS[mode]
    if layer.dtype == np.float32 and precise:
        rows = cv2.sepFilter2D(layer.astype(np.float64), cv2.CV_64F, _IDENTITY, taps_y, borderType=border)
        rows = rows.reshape(layer.shape).astype(np.float32).astype(np.float64)
        both = cv2.sepFilter2D(rows, cv2.CV_64F, taps_x, _IDENTITY, borderType=border)
        return both.reshape(layer.shape).astype(np.float32)
    depth = cv2.CV_64F if layer.dtype == np.float64 else cv2.CV_32F
    out = cv2.sepFilter2D(layer, depth, taps_x, taps_y, borderType=border)
    return out.reshape(layer.shape)
