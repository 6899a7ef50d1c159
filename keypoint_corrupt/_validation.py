"""Argument checks shared by the functional core.

Every public function validates its inputs here so that bad input fails early with a
message naming the argument and the offending value, instead of deep inside OpenCV.
"""

from __future__ import annotations

import numbers
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

#: An image array: uint8, or float32 with values in [0, 1]; HxW, HxWx1, HxWx3 or HxWx4
#: (the dtype and layout are checked at run time by :func:`check_image`).
ImageArray: TypeAlias = npt.NDArray[Any]
#: Anything :func:`numpy.asarray` turns into an (N, D >= 2) array of keypoints.
KeypointsLike: TypeAlias = npt.ArrayLike
#: Per-keypoint visibility flags: booleans or numbers (non-zero is visible).
VisibilityLike: TypeAlias = npt.ArrayLike
#: A source of randomness: a Generator, an int seed, or None (fresh OS entropy).
Seed: TypeAlias = int | np.random.Generator | None

SUPPORTED_DTYPES = (np.dtype(np.uint8), np.dtype(np.float32))
SUPPORTED_CHANNELS = (1, 3, 4)


def check_image(image: object, name: str = "image") -> ImageArray:
    """Return ``image`` if it is a supported image array, else raise.

    Supported: ``uint8`` or ``float32`` (values in [0, 1]) arrays of shape HxW, HxWx1,
    HxWx3 or HxWx4 with H, W > 0.
    """
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(image).__name__}")
    if image.dtype not in SUPPORTED_DTYPES:
        raise TypeError(f"{name} must have dtype uint8 or float32, got dtype {image.dtype}")
    if image.ndim not in (2, 3):
        raise ValueError(f"{name} must have shape HxW or HxWxC, got shape {image.shape} (ndim={image.ndim})")
    if image.ndim == 3 and image.shape[2] not in SUPPORTED_CHANNELS:
        raise ValueError(f"{name} must have 1, 3 or 4 channels, got shape {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"{name} is empty: shape {image.shape}")
    if image.dtype == np.float32:
        lo, hi = float(image.min()), float(image.max())
        if not (np.isfinite(lo) and np.isfinite(hi)) or lo < 0.0 or hi > 1.0:
            raise ValueError(f"float32 {name} must hold finite values in [0, 1], got min={lo!r}, max={hi!r}")
    return image


def check_int(value: object, name: str, *, minimum: int = 1) -> int:
    """Return ``value`` as an int if it is an integer >= ``minimum`` (bools rejected)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return int(value)


def check_float(
    value: object,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> float:
    """Return ``value`` as a float if it is a finite real number inside the given bounds."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    v = float(value)
    if not np.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if low is not None and (v < low or (v == low and not low_inclusive)):
        raise ValueError(f"{name} must be {'>=' if low_inclusive else '>'} {low}, got {value!r}")
    if high is not None and (v > high or (v == high and not high_inclusive)):
        raise ValueError(f"{name} must be {'<=' if high_inclusive else '<'} {high}, got {value!r}")
    return v


def check_keypoints(keypoints: object, name: str = "keypoints") -> npt.NDArray[np.float64]:
    """Return keypoints as a float64 (N, 2) array of x, y.

    Accepts any (N, D) array-like with D >= 2 (columns after x, y are ignored, which covers
    COCO ``[x, y, v]`` rows and albumentations' internal (N, 5 + L) arrays). N may be 0.
    """
    try:
        arr = np.asarray(keypoints, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be numeric (N, 2) array-like, got {type(keypoints).__name__}") from exc
    if arr.ndim == 1 and arr.size == 0:
        return np.zeros((0, 2), dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] < 2:
        raise ValueError(f"{name} must have shape (N, 2) (extra columns allowed), got shape {arr.shape}")
    return arr[:, :2]


def check_visibility(visibility: object, n: int, name: str = "visibility") -> npt.NDArray[np.bool_]:
    """Return a boolean (n,) mask; ``None`` means all visible. Non-zero values count as visible."""
    if visibility is None:
        return np.ones(n, dtype=bool)
    arr = np.asarray(visibility)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},) to match the keypoints, got shape {arr.shape}")
    if arr.dtype == bool:
        return arr
    try:
        vals = arr.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be boolean or numeric, got dtype {arr.dtype}") from exc
    return np.nan_to_num(vals, nan=0.0) > 0


def as_generator(rng: object, name: str = "rng") -> np.random.Generator:
    """Turn a Generator, an int seed or None (fresh OS entropy) into a Generator."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        if rng < 0:
            raise ValueError(f"{name} seed must be >= 0, got {rng!r}")
        return np.random.default_rng(int(rng))
    raise TypeError(f"{name} must be a numpy.random.Generator, an int seed or None, got {type(rng).__name__}")


def max_value(image: ImageArray) -> float:
    """Full-scale intensity for the image's dtype: 255 for uint8, 1.0 for float32."""
    return 255.0 if image.dtype == np.uint8 else 1.0
