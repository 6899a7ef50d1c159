"""Ready predictors for pretrained third-party models, as ``predict(images, crops)`` callables.

Each adapter imports its model's package only when it is built, so importing
``keypoint_corrupt.adapters`` never needs the optional packages.

* :class:`~keypoint_corrupt.adapters.mediapipe.MediaPipeHands` - MediaPipe Hands (21 hand
  joints, ``hand21`` order), CPU, models bundled in the ``mediapipe`` 0.10.14 wheel. Install:
  ``pip install "keypoint-corrupt[mediapipe]" && pip install --no-deps mediapipe==0.10.14``
  (see ``docs/adapters.md``).

From the command line: ``keypoint-corrupt benchmark --predict
keypoint_corrupt.adapters.mediapipe:MediaPipeHands ...``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MediaPipeHands"]


def __getattr__(name: str) -> Any:
    if name == "MediaPipeHands":
        from keypoint_corrupt.adapters.mediapipe import MediaPipeHands

        return MediaPipeHands
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
