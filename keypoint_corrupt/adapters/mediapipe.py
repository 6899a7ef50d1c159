"""MediaPipe Hands as a ready ``predict(images, crops)`` callable (21 joints, ``hand21`` order).

The model runs on the **whole image** (MediaPipe's own palm detector finds the hands), on the
CPU, with the ``.tflite`` models that ship inside the ``mediapipe`` 0.10.14 wheel: nothing is
downloaded. ``crops`` (the ground-truth crop of each image) is **not** used for inference; it is
used only to *choose* which detected hand is the annotated one, see :class:`MediaPipeHands`.

Install (``mediapipe`` itself goes in with ``--no-deps``: its own requirement
``opencv-contrib-python`` writes the same ``cv2/`` folder as this project's
``opencv-python-headless``, and ``jax``/``jaxlib``/``sounddevice`` are not needed for Hands)::

    pip install "keypoint-corrupt[mediapipe]" && pip install --no-deps mediapipe==0.10.14

Examples
--------
Which detected hand is kept, given the ground-truth crop box (no MediaPipe needed here):

>>> import numpy as np
>>> left = np.tile([[10.0, 10.0], [30.0, 40.0]], (11, 1))[:21]     # a hand at x 10..30
>>> right = left + [100.0, 0.0]                                     # another at x 110..130
>>> choose_hand([left, right], box=np.array([95.0, 0.0, 150.0, 60.0]), center=np.array([120.0, 25.0]))
1
>>> choose_hand([left], box=np.array([95.0, 0.0, 150.0, 60.0]), center=np.array([120.0, 25.0])) is None
True
>>> HAND21_TO_RHD[:5]  # RHD's joint k is hand21's joint HAND21_TO_RHD[k] (wrist, thumb tip ... cmc)
(0, 4, 3, 2, 1)
"""

from __future__ import annotations

import importlib
import threading
import warnings
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from keypoint_corrupt.crop import CropInfo

__all__ = ["HAND21_TO_RHD", "INSTALL_HINT", "MEDIAPIPE_VERSION", "MediaPipeHands", "choose_hand"]

#: The mediapipe release this adapter is written and measured against (its wheel ships the
#: hand models and the ``mp.solutions`` API; the 1.x releases ship no model files).
MEDIAPIPE_VERSION = "0.10.14"

INSTALL_HINT = (
    f"MediaPipeHands needs mediapipe {MEDIAPIPE_VERSION}. Install it with: "
    'pip install "keypoint-corrupt[mediapipe]" '
    f"&& pip install --no-deps mediapipe=={MEDIAPIPE_VERSION}   (--no-deps keeps opencv-python-headless "
    "as the only OpenCV: mediapipe's own requirement opencv-contrib-python writes the same cv2/ folder)"
)

#: ``rhd_keypoints = hand21_keypoints[HAND21_TO_RHD]`` (and, being its own inverse, back again):
#: both orders start at the wrist; hand21 runs each finger base to tip, RHD tip to base.
HAND21_TO_RHD: tuple[int, ...] = (0, *(4 * f + k for f in range(5) for k in (4, 3, 2, 1)))

NUM_JOINTS = 21

# mediapipe 0.10.14 with protobuf 4.25 warns on every graph output; nothing to act on.
_PROTOBUF_WARNING = r"SymbolDatabase\.GetPrototype\(\) is deprecated"


def _import_mediapipe() -> ModuleType:
    """Import mediapipe, or raise ImportError saying exactly what to install."""
    try:
        mp = importlib.import_module("mediapipe")
    except ImportError as exc:
        raise ImportError(f"{INSTALL_HINT}. ({type(exc).__name__}: {exc})") from exc
    except Exception as exc:  # e.g. protobuf 5 ("Descriptors cannot be created directly")
        raise ImportError(
            f"mediapipe is installed but does not import ({type(exc).__name__}: {exc}); it needs "
            f"protobuf>=4.25.3,<5. {INSTALL_HINT}"
        ) from exc
    if not hasattr(mp, "solutions") or not hasattr(mp.solutions, "hands"):
        version = getattr(mp, "__version__", "?")
        raise ImportError(f"mediapipe {version} has no mediapipe.solutions.hands. {INSTALL_HINT}")
    return mp


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two ``x0, y0, x1, y1`` boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def choose_hand(hands: Sequence[np.ndarray], box: np.ndarray, center: np.ndarray) -> int | None:
    """Index of the detected hand that is the annotated one, or None when none of them is.

    Parameters
    ----------
    hands : sequence of numpy.ndarray
        Each detected hand's ``21 x 2`` keypoints in source pixels.
    box : numpy.ndarray
        The ground-truth crop square ``x0, y0, x1, y1`` (``CropInfo.box()``); it covers every
        visible annotated joint.
    center : numpy.ndarray
        The ground-truth crop centre ``x, y``.

    Returns
    -------
    int or None
        The hand whose keypoint bounding box overlaps ``box`` most (intersection over union);
        ties go to the hand whose box centre is nearest ``center``. None when no hand's box
        overlaps ``box`` at all: what was found is another hand, and the annotated one is a miss.
    """
    best: int | None = None
    best_key = (0.0, 0.0)
    for i, kp in enumerate(hands):
        own = np.concatenate([kp.min(axis=0), kp.max(axis=0)])
        overlap = _iou(own, np.asarray(box, np.float64))
        if overlap <= 0.0:
            continue
        distance = float(np.hypot(*(0.5 * (own[:2] + own[2:]) - np.asarray(center, np.float64))))
        key = (overlap, -distance)
        if best is None or key > best_key:
            best, best_key = i, key
    return best


def _as_images(images: Any) -> list[np.ndarray]:
    if isinstance(images, np.ndarray):
        if images.ndim != 4:
            raise ValueError(
                f"images must be B x H x W x 3 (or a list of H x W x 3), got shape {images.shape}"
            )
        seq: list[Any] = list(images)
    else:
        seq = list(images)
    out = []
    for i, im in enumerate(seq):
        arr = np.asarray(im)
        if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
            raise ValueError(
                f"image {i}: MediaPipeHands takes RGB uint8 H x W x 3 images, got {arr.dtype} {arr.shape}"
            )
        out.append(np.ascontiguousarray(arr))
    return out


class MediaPipeHands:
    """MediaPipe Hands (``mediapipe`` 0.10.14) as a ``predict(images, crops)`` callable.

    Each image goes in whole (``static_image_mode=True``: every image on its own, no
    tracking); the crops are never used for inference. Out come ``B x 21 x 2`` float64
    keypoints (x, y) in source pixels, in the ``hand21`` schema (wrist, then thumb CMC, MCP,
    IP, tip, then index, middle, ring, pinky each MCP, PIP, DIP, tip), and a row of NaN for an
    image where the annotated hand is not found (the metrics count NaN as a miss).

    **Ground truth is used only for the choice.** When MediaPipe finds several hands, the one
    kept is the one whose keypoint box overlaps the image's ground-truth crop box
    (``crops.box()``) most, as :func:`choose_hand` does; a detected hand that does not overlap
    the crop box at all is another hand, so the row is NaN. The keypoints themselves are
    MediaPipe's, unchanged. Without ``crops`` (``predict(images)``), the first hand MediaPipe
    reports is kept.

    Parameters
    ----------
    model_complexity : int, default 1
        0 (``hand_landmark_lite``) or 1 (``hand_landmark_full``).
    max_num_hands : int, default 2
        Hands MediaPipe looks for per image (2 lets the ground truth pick the right one).
    min_detection_confidence : float, default 0.5
        Palm detection threshold.

    The MediaPipe graph is built on the first call and kept for the next ones; :meth:`close`
    (or leaving a ``with`` block) releases it, and a later call builds it again. Building the
    object imports mediapipe, raising an :class:`ImportError` that says what to install when it
    is missing. Calls are serialised by a lock (one graph, one image at a time).

    Examples
    --------
    >>> with MediaPipeHands() as predict:  # doctest: +SKIP
    ...     keypoints = predict(images, crops)   # B x 21 x 2, source pixels, NaN rows for misses
    """

    #: Joint order of the output (a ``keypoint_corrupt.schema`` preset).
    schema = "hand21"
    num_joints = NUM_JOINTS

    def __init__(
        self, model_complexity: int = 1, max_num_hands: int = 2, min_detection_confidence: float = 0.5
    ) -> None:
        if model_complexity not in (0, 1):
            raise ValueError(f"model_complexity must be 0 or 1, got {model_complexity!r}")
        if not isinstance(max_num_hands, int) or isinstance(max_num_hands, bool) or max_num_hands < 1:
            raise ValueError(f"max_num_hands must be a positive int, got {max_num_hands!r}")
        if not 0.0 <= float(min_detection_confidence) <= 1.0:
            raise ValueError(f"min_detection_confidence must be in [0, 1], got {min_detection_confidence!r}")
        self.model_complexity = int(model_complexity)
        self.max_num_hands = int(max_num_hands)
        self.min_detection_confidence = float(min_detection_confidence)
        self._mp = _import_mediapipe()
        self._hands: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"MediaPipeHands(model_complexity={self.model_complexity}, max_num_hands={self.max_num_hands}, "
            f"min_detection_confidence={self.min_detection_confidence})"
        )

    def describe(self) -> dict[str, Any]:
        """Describe the predictor for the benchmark report (``settings["predictor"]``)."""
        return {
            "name": "keypoint_corrupt.adapters.mediapipe:MediaPipeHands",
            "model": "MediaPipe Hands",
            "mediapipe": getattr(self._mp, "__version__", "?"),
            "model_complexity": self.model_complexity,
            "max_num_hands": self.max_num_hands,
            "min_detection_confidence": self.min_detection_confidence,
            "schema": self.schema,
            "input": "whole image; ground-truth crops used only to choose among detected hands",
        }

    def _graph(self) -> Any:
        if self._hands is None:
            self._hands = self._mp.solutions.hands.Hands(
                static_image_mode=True,
                max_num_hands=self.max_num_hands,
                model_complexity=self.model_complexity,
                min_detection_confidence=self.min_detection_confidence,
            )
        return self._hands

    def detect(self, image: np.ndarray) -> list[np.ndarray]:
        """Every hand MediaPipe finds in one RGB uint8 image: ``21 x 2`` source-pixel keypoints each."""
        (image,) = _as_images([image])
        height, width = image.shape[:2]
        with self._lock, warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_PROTOBUF_WARNING, category=UserWarning)
            result = self._graph().process(image)
        hands = []
        for landmarks in result.multi_hand_landmarks or ():
            # Normalised [0, 1] coordinates over the image's width and height.
            xy = np.array([(p.x * width, p.y * height) for p in landmarks.landmark], np.float64)
            hands.append(xy)
        return hands

    def __call__(self, images: Any, crops: CropInfo | None = None) -> np.ndarray:
        """``B x 21 x 2`` keypoints (source pixels, ``hand21`` order; NaN rows for misses)."""
        batch = _as_images(images)
        boxes = centers = None
        if crops is not None:
            boxes = np.asarray(crops.box(), np.float64)
            centers = np.asarray(crops.center, np.float64)
            if len(boxes) != len(batch):
                raise ValueError(f"{len(batch)} images but {len(boxes)} crops")
        out = np.full((len(batch), NUM_JOINTS, 2), np.nan)
        for i, image in enumerate(batch):
            hands = self.detect(image)
            if not hands:
                continue
            if boxes is None or centers is None:
                out[i] = hands[0]
                continue
            chosen = choose_hand(hands, boxes[i], centers[i])
            if chosen is not None:
                out[i] = hands[chosen]
        return out

    def close(self) -> None:
        """Release the MediaPipe graph (a later call builds a new one)."""
        with self._lock:
            hands, self._hands = self._hands, None
        if hands is not None:
            hands.close()

    def __enter__(self) -> MediaPipeHands:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown or a half-built object: nothing to release
            pass

    def __getstate__(self) -> dict[str, Any]:
        """Pickle the settings only; the copy imports mediapipe and builds its own graph."""
        return {
            "model_complexity": self.model_complexity,
            "max_num_hands": self.max_num_hands,
            "min_detection_confidence": self.min_detection_confidence,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)  # type: ignore[misc]
