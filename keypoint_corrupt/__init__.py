"""keypoint_corrupt: make keypoint datasets hard on purpose.

Keypoint-aware image corruptions (defocus, horizontal motion blur, keypoint-ROI occlusion,
Gaussian and per-channel salt-and-pepper noise) as pure functions
(:mod:`keypoint_corrupt.functional`) and as albumentations transforms, plus the eleven
named configurations of the reference robustness protocol; the field's standard suites
(ImageNet-C / COCO-C and PoseBench) as transforms (:class:`ImageNetC`, :class:`PoseBench`),
named configurations and suites (:func:`get_suite`).

Examples
--------
>>> import numpy as np, keypoint_corrupt as kc
>>> kc.CONFIGS[:3]
('defocus-7', 'defocus-13', 'defocus-21')
>>> t = kc.make_corruption("motion-30")
>>> t(image=np.zeros((48, 64, 3), np.uint8))["image"].shape
(48, 64, 3)
"""

import contextlib
import importlib
import importlib.abc
import importlib.util
import os
import sys
import types
from typing import TYPE_CHECKING, Any

# albumentations checks PyPI on import (a blocking network call, pointless on offline
# cluster nodes, and urging an upgrade past the MIT releases we pin); users can still opt in.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from keypoint_corrupt._version import __version__  # noqa: F401  (in __all__)

if TYPE_CHECKING:  # what type checkers see; at run time these load on first use (__getattr__)
    # F401: re-exported, and listed in __all__ (built on first use by __getattr__)
    from keypoint_corrupt import functional, models, transforms  # noqa: F401
    from keypoint_corrupt.registry import (  # noqa: F401
        CONFIGS,
        CorruptionConfig,
        apply_corruption,
        available_configs,
        get_config,
        make_corruption,
        register_config,
        unregister_config,
    )
    from keypoint_corrupt.suites import (  # noqa: F401
        Suite,
        available_suites,
        get_suite,
        register_suite,
        unregister_suite,
    )
    from keypoint_corrupt.transforms import *  # noqa: F403  (every public transform)

# The public API loads on first use: albumentations imports torch when it is installed, and
# `import keypoint_corrupt` (the CLI's `--help` among others) should not pay for that.
_SUBMODULES = ("functional", "models", "transforms")
_REGISTRY_NAMES = (
    "CONFIGS",
    "CorruptionConfig",
    "apply_corruption",
    "available_configs",
    "get_config",
    "make_corruption",
    "register_config",
    "unregister_config",
)
_SUITE_NAMES = ("Suite", "available_suites", "get_suite", "register_suite", "unregister_suite")
_OWN_NAMES = (*_REGISTRY_NAMES, *_SUITE_NAMES, "__version__", "functional", "transforms")


def __getattr__(name: str) -> Any:
    # `keypoint_corrupt.models` needs torch: it is not in __all__, and importing it without the
    # `models` extra explains how to install it.
    if name in _SUBMODULES:
        value: Any = importlib.import_module(f"keypoint_corrupt.{name}")
    elif name in _REGISTRY_NAMES:
        value = getattr(importlib.import_module("keypoint_corrupt.registry"), name)
    elif name in _SUITE_NAMES:
        value = getattr(importlib.import_module("keypoint_corrupt.suites"), name)
    elif name == "__all__" or not name.startswith("_"):  # private names never import anything
        transforms_module = importlib.import_module("keypoint_corrupt.transforms")
        if name == "__all__":  # every public transform, from transforms.__all__
            value = sorted((*_OWN_NAMES, *transforms_module.__all__))
        elif name in transforms_module.__all__:
            value = getattr(transforms_module, name)
        else:
            raise AttributeError(f"module 'keypoint_corrupt' has no attribute {name!r}")
    else:
        raise AttributeError(f"module 'keypoint_corrupt' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_OWN_NAMES, *__getattr__("__all__")})


class _TransformsFollowAlbumentations(importlib.abc.MetaPathFinder):
    """Import ``keypoint_corrupt.transforms`` as soon as albumentations is imported.

    ``A.load`` / ``A.from_dict`` find a transform class only once it exists (albumentations'
    metaclass registers it), and "import keypoint_corrupt, then A.load" is documented to work
    (docs/corruptions.md). The transforms load lazily, so they follow albumentations in: at
    once if it is already imported, else right after whoever imports it first.
    """

    _busy = False

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != "albumentations" or self._busy:
            return None
        self._busy = True  # the lookup below walks sys.meta_path, this finder included
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self._busy = False
        loader = getattr(spec, "loader", None)
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        exec_module = loader.exec_module
        finder = self

        def exec_then_load_transforms(module: types.ModuleType) -> None:
            exec_module(module)
            # Only a real import gets here (a find_spec probe does not), so the finder's job is
            # done. The transforms must never break the user's `import albumentations`: an error
            # (or an import lock held by another thread) surfaces on first use of kc instead.
            with contextlib.suppress(ValueError):
                sys.meta_path.remove(finder)
            with contextlib.suppress(Exception):
                importlib.import_module("keypoint_corrupt.transforms")  # (or its import under way)

        loader.exec_module = exec_then_load_transforms
        return spec


if "albumentations" in sys.modules:
    importlib.import_module("keypoint_corrupt.transforms")
else:
    sys.meta_path.insert(0, _TransformsFollowAlbumentations())
