"""imagecorruptions 1.1.2 as a test oracle, with a shim for its call sites broken on today's stack.

Only the three broken call sites are patched, inside imagecorruptions' own module namespace
(nothing global is changed): ``pkg_resources.resource_filename`` (setuptools >= 81 no longer
ships ``pkg_resources``), ``np.float_`` (removed in NumPy 2) and scikit-image's ``gaussian``
``multichannel`` keyword (removed in 0.19; ``channel_axis=-1`` is its replacement).
imagecorruptions is installed with ``pip install --no-deps imagecorruptions==1.1.2`` (its
``opencv-python`` requirement would overwrite ``opencv-python-headless``'s cv2).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types
import warnings
from typing import Any

import numpy as np
import pytest


def _numpy_with_float_() -> types.ModuleType:
    compat = types.ModuleType("numpy_compat")
    compat.__getattr__ = lambda name: getattr(np, name)  # type: ignore[method-assign]
    compat.float_ = np.float64  # type: ignore[attr-defined]
    return compat


def _gaussian_with_multichannel(gaussian: Any) -> Any:
    def patched(image: Any, *args: Any, multichannel: bool | None = None, **kwargs: Any) -> Any:
        if multichannel:
            kwargs.setdefault("channel_axis", -1)
        return gaussian(image, *args, **kwargs)

    return patched


def _load() -> types.ModuleType | None:
    spec = importlib.util.find_spec("imagecorruptions")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = next(iter(spec.submodule_search_locations))
    stub = types.ModuleType("pkg_resources")
    stub.resource_filename = lambda _pkg, rel: os.path.join(folder, rel)  # type: ignore[attr-defined]
    had = sys.modules.get("pkg_resources")
    sys.modules["pkg_resources"] = stub
    try:
        with warnings.catch_warnings():  # its scipy.ndimage.interpolation import is deprecated
            warnings.simplefilter("ignore", DeprecationWarning)
            import imagecorruptions
            import imagecorruptions.corruptions as corruptions
    finally:
        if had is None:
            sys.modules.pop("pkg_resources", None)
        else:
            sys.modules["pkg_resources"] = had
    corruptions.np = _numpy_with_float_()
    corruptions.gaussian = _gaussian_with_multichannel(corruptions.gaussian)
    return imagecorruptions


_MODULE = _load()


def require_oracle() -> types.ModuleType:
    """The patched imagecorruptions package; without it a test skips, or fails under CI (``CI`` set)."""
    if _MODULE is None:
        why = "imagecorruptions 1.1.2 is not installed (pip install --no-deps imagecorruptions==1.1.2)"
        if os.environ.get("CI"):
            pytest.fail(why)  # README's test command installs it: CI must never skip the oracle
        pytest.skip(why)
    return _MODULE


def reference(name: str, image: np.ndarray, severity: int, seed: int) -> np.ndarray:
    """imagecorruptions' ``corrupt(image, severity, name)`` with the global state seeded by ``seed``.

    The global state is saved and restored around the call.
    """
    module = require_oracle()
    # imagecorruptions draws from NumPy's global state: that legacy API is the point here.
    saved = np.random.get_state()  # noqa: NPY002
    try:
        np.random.seed(seed)  # noqa: NPY002
        return np.asarray(module.corrupt(image, severity=severity, corruption_name=name))
    finally:
        np.random.set_state(saved)  # noqa: NPY002
