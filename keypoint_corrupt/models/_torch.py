"""The one place where :mod:`keypoint_corrupt.models` imports PyTorch.

PyTorch is an optional dependency (the ``models`` extra). Every module of this package
imports ``torch`` through here, so a missing installation fails with one clear message
instead of a bare ``ModuleNotFoundError`` from deep inside a model file.
"""

from __future__ import annotations

from typing import TypeVar

INSTALL_HINT = 'pip install "keypoint-corrupt[models]"'

try:
    import torch
    import torch.nn.functional as F
    from torch import nn
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        f"keypoint_corrupt.models needs PyTorch, which is not installed. Install it with: {INSTALL_HINT}"
    ) from exc

__all__ = ["INSTALL_HINT", "F", "channels_last", "nn", "resolve_device", "torch"]


ModuleT = TypeVar("ModuleT", bound=nn.Module)


def channels_last(module: ModuleT) -> ModuleT:
    """Convert a module's 4-D parameters and buffers to channels-last memory, in place.

    Examples
    --------
    >>> conv = channels_last(nn.Conv2d(3, 4, 3))
    >>> conv.weight.is_contiguous(memory_format=torch.channels_last)
    True
    """
    # torch's type stubs list no ``memory_format`` for Module.to, which accepts it at runtime.
    return module.to(memory_format=torch.channels_last)  # type: ignore[call-overload]


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` (or None) -> CUDA when available, else CPU; refuse CUDA when there is none.

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            f"device {str(device)!r} requested but no CUDA GPU is available (use 'cpu' or 'auto')"
        )
    return dev
