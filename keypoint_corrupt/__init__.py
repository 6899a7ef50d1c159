"""keypoint_corrupt: make keypoint datasets hard on purpose.

Keypoint-aware image corruptions (defocus, horizontal motion blur, keypoint-ROI occlusion,
Gaussian and per-channel salt-and-pepper noise) as pure functions
(:mod:`keypoint_corrupt.functional`) and as albumentations transforms, plus the eleven
named configurations of the reference robustness protocol.

Examples
--------
>>> import numpy as np, keypoint_corrupt as kc
>>> kc.CONFIGS[:3]
('defocus-7', 'defocus-13', 'defocus-21')
>>> t = kc.make_corruption("motion-30")
>>> t(image=np.zeros((48, 64, 3), np.uint8))["image"].shape
(48, 64, 3)
"""

import importlib
import os
import types

# albumentations checks PyPI on import (a blocking network call, pointless on offline
# cluster nodes, and urging an upgrade past the MIT releases we pin); users can still opt in.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from keypoint_corrupt import functional, transforms
from keypoint_corrupt._version import __version__
from keypoint_corrupt.registry import (
    CONFIGS,
    CorruptionConfig,
    apply_corruption,
    available_configs,
    get_config,
    make_corruption,
    register_config,
    unregister_config,
)
from keypoint_corrupt.transforms import *  # noqa: F403  (every public transform, from transforms.__all__)

__all__ = [
    "CONFIGS",
    "CorruptionConfig",
    "__version__",
    "apply_corruption",
    "available_configs",
    "functional",
    "get_config",
    "make_corruption",
    "register_config",
    "transforms",
    "unregister_config",
]
__all__ += transforms.__all__


def __getattr__(name: str) -> types.ModuleType:
    # `keypoint_corrupt.models` needs torch: import it only on first use, so the rest of the
    # package works without the `models` extra (the import then explains how to install it).
    if name == "models":
        return importlib.import_module("keypoint_corrupt.models")
    raise AttributeError(f"module 'keypoint_corrupt' has no attribute {name!r}")
