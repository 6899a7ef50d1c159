"""The one place where :mod:`keypoint_corrupt.models` imports PyTorch.

PyTorch is an optional dependency (the ``models`` extra). Every module of this package
imports ``torch`` through here, so a missing installation fails with one clear message
instead of a bare ``ModuleNotFoundError`` from deep inside a model file.
"""

from __future__ import annotations

INSTALL_HINT = 'pip install "keypoint-corrupt[models]"'

try:
    import torch
    import torch.nn.functional as F
    from torch import nn
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        f"keypoint_corrupt.models needs PyTorch, which is not installed. Install it with: {INSTALL_HINT}"
    ) from exc

__all__ = ["INSTALL_HINT", "F", "nn", "torch"]
