"""Names of the bundled reference models: the one list, importable without torch.

:func:`keypoint_corrupt.models.build_model` builds them; the ``train`` and ``benchmark``
commands offer them as choices without importing torch.
"""

from __future__ import annotations

__all__ = ["MODEL_NAMES"]

#: Registry names of the bundled models (:func:`keypoint_corrupt.models.build_model`).
MODEL_NAMES: tuple[str, ...] = ("posenet-dense", "posenet-depthwise", "nerpe")
