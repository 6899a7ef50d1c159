"""Ready predictors for pretrained models: hands ``predict(images, crops)``, bodies ``predict(crops)``.

Each adapter imports its model's package only when it is built, so importing
``keypoint_corrupt.adapters`` never needs the optional packages.

* :class:`~keypoint_corrupt.adapters.mediapipe.MediaPipeHands` - MediaPipe Hands (21 hand
  joints, ``hand21`` order), CPU, models bundled in the ``mediapipe`` 0.10.14 wheel. Install:
  ``pip install "keypoint-corrupt[mediapipe]" && pip install --no-deps mediapipe==0.10.14``
  (see ``docs/adapters.md``).
* :class:`~keypoint_corrupt.adapters.mediapipe.MediaPipePose` - MediaPipe Pose as a body
  top-down predictor ``predict(crops)``: 17 joints in ``coco17`` order (from its 33 landmarks,
  by name) and per-joint scores; same package and install.

From the command line: ``keypoint-corrupt benchmark --predict
keypoint_corrupt.adapters.mediapipe:MediaPipeHands ...``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MediaPipeHands", "MediaPipePose"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from keypoint_corrupt.adapters import mediapipe

        return getattr(mediapipe, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
