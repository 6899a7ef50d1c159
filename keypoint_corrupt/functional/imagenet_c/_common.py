"""What every ImageNet-C kernel shares: the random source, the severity and the image contract.

A kernel works on an RGB image on the 0..255 scale (uint8 as given, or float32 for float
input) and returns its result on the same scale; :func:`run_rgb` wraps it into the library's
contract (uint8 or float32 in [0, 1]; HxW, HxWx1, HxWx3 or HxWx4; input never modified).

Grey images are corrupted as their RGB stack, which is what imagecorruptions' ``corrupt()``
does, and channel 0 of the result is returned (so noise keeps its per-pixel strength); an
alpha channel passes through unchanged. A uint8 result is the float result clipped to
[0, 255] and truncated, as imagecorruptions' ``np.uint8(...)`` does.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

from keypoint_corrupt._validation import ImageArray, check_image

__all__ = ["Draws", "RandomSource", "as_draws", "check_severity", "run_rgb"]

#: What the ``rng`` argument of an ImageNet-C function accepts.
RandomSource: TypeAlias = int | np.random.Generator | np.random.RandomState | None

#: A kernel: ``(rgb, params, draws) -> result`` on the 0..255 scale.
Kernel: TypeAlias = Callable[[ImageArray, Any, "Draws"], ImageArray]


class Draws:
    """The random source of one call: a ``Generator``, or a ``RandomState`` drawn like imagecorruptions.

    With a ``RandomState`` (``legacy`` is True) every method makes exactly the call that
    imagecorruptions makes on NumPy's global state, so the two agree when seeded alike. With a
    ``Generator`` the same distributions are drawn, by whatever method is fastest.

    Examples
    --------
    >>> d = as_draws(np.random.RandomState(0))
    >>> d.legacy, d.randint(-1, 1, 3).tolist() == np.random.RandomState(0).randint(-1, 1, 3).tolist()
    (True, True)
    """

    __slots__ = ("gen", "legacy", "state")

    def __init__(self, source: np.random.Generator | np.random.RandomState) -> None:
        self.state: np.random.RandomState | None = None
        self.gen: np.random.Generator | None = None
        if isinstance(source, np.random.RandomState):
            self.state = source
        else:
            self.gen = source
        self.legacy = self.state is not None

    @property
    def source(self) -> np.random.Generator | np.random.RandomState:
        """The wrapped generator or state."""
        src = self.state if self.state is not None else self.gen
        assert src is not None
        return src

    def normal(self, loc: float, scale: float, size: int | tuple[int, ...]) -> npt.NDArray[np.float64]:
        """``normal(loc, scale, size)`` in float64 (RandomState: the legacy polar method)."""
        return self.source.normal(loc, scale, size)

    def uniform(self, low: float, high: float, size: int | tuple[int, ...] | None = None) -> Any:
        """``uniform(low, high, size)``; a Python float when ``size`` is None."""
        return self.source.uniform(low, high, size)

    def poisson(self, lam: float | npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.int64]:
        """``poisson(lam)`` elementwise."""
        return np.asarray(self.source.poisson(lam))

    def randint(self, low: int, high: int, size: int | tuple[int, ...] | None = None) -> Any:
        """Integers in ``[low, high)``: ``RandomState.randint`` or ``Generator.integers``."""
        if self.state is not None:
            return self.state.randint(low, high, size)
        assert self.gen is not None
        return self.gen.integers(low, high, size)


def as_draws(rng: object, name: str = "rng") -> Draws:
    """Validate ``rng`` (int seed, Generator, RandomState or None) and wrap it.

    An int seeds ``numpy.random.default_rng`` (the library's convention); to reproduce
    imagecorruptions' draws pass ``numpy.random.RandomState(seed)``. ``None`` draws fresh OS
    entropy.
    """
    if isinstance(rng, (np.random.Generator, np.random.RandomState)):
        return Draws(rng)
    if rng is None:
        return Draws(np.random.default_rng())
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        if rng < 0:
            raise ValueError(f"{name} seed must be >= 0, got {rng!r}")
        return Draws(np.random.default_rng(int(rng)))
    raise TypeError(
        f"{name} must be an int seed, a numpy.random.Generator, a numpy.random.RandomState or None, "
        f"got {type(rng).__name__}"
    )


def check_severity(severity: object) -> int:
    """Return ``severity`` as an int in 1..5, else raise naming the argument and the value."""
    if isinstance(severity, bool) or not isinstance(severity, numbers.Integral):
        raise TypeError(f"severity must be an int in 1..5, got {severity!r}")
    if not 1 <= int(severity) <= 5:
        raise ValueError(f"severity must be in 1..5, got {severity!r}")
    return int(severity)


def _as_rgb(image: ImageArray) -> ImageArray:
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    return image[:, :, :3]


def _to_dtype(result: ImageArray, dtype: np.dtype[Any]) -> ImageArray:
    if result.dtype == np.uint8 and dtype == np.uint8:
        return result
    out = np.clip(result, 0.0, 255.0)
    if dtype == np.uint8:
        return out.astype(np.uint8)  # truncation, as imagecorruptions' np.uint8(...)
    return (out / 255.0).astype(np.float32)


def run_rgb(image: ImageArray, kernel: Kernel, params: Any, draws: Draws) -> ImageArray:
    """Run ``kernel`` on ``image`` under the library's image contract.

    The kernel receives an HxWx3 array on the 0..255 scale (uint8 input as is, float32 input
    times 255 in float32; never the caller's array) and returns an HxWx3 result on the same
    scale (uint8, already final, or float, clipped and truncated here).
    """
    check_image(image)
    rgb = _as_rgb(image)
    if image.dtype == np.float32:
        rgb = rgb * np.float32(255.0)
    elif np.shares_memory(rgb, image):  # HxWx3 itself or a view of RGBA: kernels may write in place
        rgb = rgb.copy()
    result = _to_dtype(kernel(rgb, params, draws), image.dtype)
    if image.ndim == 2:
        return np.ascontiguousarray(result[:, :, 0])
    if image.shape[2] == 1:
        return np.ascontiguousarray(result[:, :, :1])
    if image.shape[2] == 4:
        return np.concatenate([result, image[:, :, 3:]], axis=2)
    return result
