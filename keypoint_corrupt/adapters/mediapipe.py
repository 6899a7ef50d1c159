"""MediaPipe Hands and MediaPipe Pose as ready predictors, CPU, models bundled in the wheel.

* :class:`MediaPipeHands` - a ``predict(images, crops)`` callable (21 joints, ``hand21`` order).
  The model runs on the **whole image** (MediaPipe's own palm detector finds the hands).
  ``crops`` (the ground-truth crop of each image) is **not** used for inference; it is used
  only to *choose* which detected hand is the annotated one.
* :class:`MediaPipePose` - a body top-down predictor ``predict(crops, schema_name="coco17")``:
  one person per crop, 17 joints in ``coco17`` order mapped by name from MediaPipe's 33 pose
  landmarks (:func:`landmark_indices`), with per-joint scores.

Both run with the ``.tflite`` models that ship inside the ``mediapipe`` 0.10.14 wheel: nothing
is downloaded. Install (``mediapipe`` itself goes in with ``--no-deps``: its own requirement
``opencv-contrib-python`` writes the same ``cv2/`` folder as this project's
``opencv-python-headless``, and ``jax``/``jaxlib``/``sounddevice`` are needed by neither
solution)::

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

Which pose landmark feeds each COCO joint, by name (MediaPipe's own list comes from its
``PoseLandmark`` enum at run time; here a short stand-in):

>>> landmark_indices(["NOSE", "LEFT_EYE_INNER", "LEFT_EYE", "RIGHT_EYE"], ["nose", "right_eye", "left_eye"])
(0, 3, 2)
"""

from __future__ import annotations

import importlib
import sys
import threading
import warnings
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np

from keypoint_corrupt.schema import KeypointSchema, canonical_joint_names, get_schema

if TYPE_CHECKING:
    from keypoint_corrupt.crop import CropInfo

__all__ = [
    "HAND21_TO_RHD",
    "INSTALL_HINT",
    "MEDIAPIPE_VERSION",
    "MediaPipeHands",
    "MediaPipePose",
    "choose_hand",
    "landmark_indices",
]

#: The mediapipe release these adapters are written and measured against (its wheel ships the
#: hand models, the pose detector, ``pose_landmark_full`` and the ``mp.solutions`` API; the 1.x
#: releases ship no model files).
MEDIAPIPE_VERSION = "0.10.14"

INSTALL_HINT = (
    f"The MediaPipe adapters (MediaPipeHands, MediaPipePose) need mediapipe {MEDIAPIPE_VERSION}. "
    "Install it with: "
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


def _import_mediapipe(solution: str) -> ModuleType:
    """Import mediapipe, checking ``mediapipe.solutions.<solution>``; ImportError says what to install."""
    try:
        mp = importlib.import_module("mediapipe")
    except ImportError as exc:
        raise ImportError(f"{INSTALL_HINT}. ({type(exc).__name__}: {exc})") from exc
    except Exception as exc:  # e.g. protobuf 5 ("Descriptors cannot be created directly")
        raise ImportError(
            f"mediapipe is installed but does not import ({type(exc).__name__}: {exc}); it needs "
            f"protobuf>=4.25.3,<5. {INSTALL_HINT}"
        ) from exc
    if not hasattr(mp, "solutions") or not hasattr(mp.solutions, solution):
        version = getattr(mp, "__version__", "?")
        raise ImportError(f"mediapipe {version} has no mediapipe.solutions.{solution}. {INSTALL_HINT}")
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


def _as_images(images: Any, who: str = "MediaPipeHands", what: str = "images") -> list[np.ndarray]:
    """``images`` (a ``B x H x W x 3`` array or a list) as contiguous RGB uint8 arrays, checked.

    ``who`` and ``what`` name the adapter and its argument in the error messages.
    """
    if isinstance(images, np.ndarray):
        if images.ndim != 4:
            raise ValueError(
                f"{what} must be B x H x W x 3 (or a list of H x W x 3), got shape {images.shape}"
            )
        seq: list[Any] = list(images)
    else:
        seq = list(images)
    out = []
    for i, im in enumerate(seq):
        arr = np.asarray(im)
        if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3 or 0 in arr.shape:
            raise ValueError(
                f"{what.rstrip('s')} {i}: {who} takes RGB uint8 H x W x 3 {what}, got {arr.dtype} {arr.shape}"
            )
        out.append(np.ascontiguousarray(arr))
    return out


_S = TypeVar("_S", bound="_MediaPipeSolution")


class _MediaPipeSolution:
    """The life cycle both adapters share: one lazily built ``mp.solutions`` graph behind a lock.

    A subclass names its solution (``_solution_name``), lists its settings (:meth:`_settings`,
    the keyword arguments of its constructor: they make the repr and the pickled state) and builds
    the graph (:meth:`_build`). :meth:`_process` runs one image through it.
    """

    _solution_name: ClassVar[str]

    def __init__(self) -> None:
        self._mp = _import_mediapipe(self._solution_name)
        self._solution: Any = None
        self._lock = threading.Lock()

    def _settings(self) -> dict[str, Any]:
        raise NotImplementedError

    def _build(self) -> Any:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._settings().items())
        return f"{type(self).__name__}({args})"

    def _process(self, image: np.ndarray) -> Any:
        """Run one checked RGB uint8 image through the graph (built on first use)."""
        with self._lock, warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_PROTOBUF_WARNING, category=UserWarning)
            if self._solution is None:
                self._solution = self._build()
            return self._solution.process(image)

    def close(self) -> None:
        """Release the MediaPipe graph (a later call builds a new one)."""
        with self._lock:
            solution, self._solution = self._solution, None
        if solution is not None:
            solution.close()

    def __enter__(self: _S) -> _S:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if sys.is_finalizing():  # the pose graph's close() blocks forever during interpreter exit
            return
        try:
            self.close()
        except Exception:  # a half-built object: nothing to release
            pass

    def __getstate__(self) -> dict[str, Any]:
        """Pickle the settings only; the copy imports mediapipe and builds its own graph."""
        return self._settings()

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)  # type: ignore[misc]


class MediaPipeHands(_MediaPipeSolution):
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
    _solution_name = "hands"

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
        super().__init__()

    def _settings(self) -> dict[str, Any]:
        return {
            "model_complexity": self.model_complexity,
            "max_num_hands": self.max_num_hands,
            "min_detection_confidence": self.min_detection_confidence,
        }

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

    def _build(self) -> Any:
        return self._mp.solutions.hands.Hands(
            static_image_mode=True,
            max_num_hands=self.max_num_hands,
            model_complexity=self.model_complexity,
            min_detection_confidence=self.min_detection_confidence,
        )

    def detect(self, image: np.ndarray) -> list[np.ndarray]:
        """Every hand MediaPipe finds in one RGB uint8 image: ``21 x 2`` source-pixel keypoints each."""
        (image,) = _as_images([image])
        height, width = image.shape[:2]
        result = self._process(image)
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


# -- MediaPipe Pose -------------------------------------------------------------------------------


def landmark_indices(
    landmark_names: Sequence[str], schema: KeypointSchema | str | Sequence[str] = "coco17"
) -> tuple[int, ...]:
    """For each joint of ``schema``, the index of the landmark of the same name.

    Names are compared as :func:`keypoint_corrupt.schema.canonical_joint_names` normalises them,
    so MediaPipe's ``PoseLandmark`` names (``LEFT_SHOULDER``) meet the schemas' joint names
    (``left_shoulder``). No index is written down anywhere: the order comes from the two lists.

    Parameters
    ----------
    landmark_names : sequence of str
        The model's landmark names, in the model's output order (for MediaPipe Pose, the
        ``PoseLandmark`` enum's names sorted by value).
    schema : KeypointSchema, str or sequence of str
        The target joint order: a schema, a registered schema name, or a list of joint names.

    Returns
    -------
    tuple of int
        ``keypoints_in_schema = landmarks[list(indices)]``.

    Raises
    ------
    ValueError
        Listing the joints of ``schema`` that no landmark is named after, or when two landmarks
        share a name.

    Examples
    --------
    >>> landmark_indices(["NOSE", "LEFT_EYE", "RIGHT_EYE"], ["right_eye", "nose"])
    (2, 0)
    >>> landmark_indices(["NOSE"], "coco17")
    Traceback (most recent call last):
    ...
    ValueError: schema 'coco17': no landmark named left_eye, right_eye, ... (16 joints); the landmarks ...
    """
    if isinstance(schema, (str, KeypointSchema)):
        target = get_schema(schema)
        label, joints = target.name, target.joints
    else:
        label, joints = "custom", tuple(str(j) for j in schema)
    landmarks = canonical_joint_names([str(n) for n in landmark_names])
    dupes = sorted({n for n in landmarks if landmarks.count(n) > 1})
    if dupes:
        raise ValueError(f"landmark_names name {dupes} more than once: {list(landmark_names)}")
    lookup = {n: i for i, n in enumerate(landmarks)}
    wanted = canonical_joint_names(joints)
    missing = [j for j, key in zip(joints, wanted, strict=True) if key not in lookup]
    if missing:
        shown = ", ".join(missing[:4]) + (f", ... ({len(missing)} joints)" if len(missing) > 4 else "")
        raise ValueError(
            f"schema {label!r}: no landmark named {shown}; the landmarks are {list(landmark_names)}"
        )
    return tuple(lookup[key] for key in wanted)


class MediaPipePose(_MediaPipeSolution):
    """MediaPipe Pose (``mediapipe`` 0.10.14, ``pose_landmark_full``) as a body top-down predictor.

    ``predict(crops, schema_name="coco17") -> (keypoints, scores)``: each crop (RGB uint8
    ``H x W x 3``, any size) holds one person, as a top-down benchmark cuts it around a box.
    MediaPipe runs on each crop on its own (``static_image_mode=True``: no tracking between
    crops); its pose detector finds the person inside the crop and its landmark model returns 33
    landmarks, of which the joints of ``schema_name`` are taken **by name**
    (:func:`landmark_indices`: ``LEFT_SHOULDER`` is ``left_shoulder``, MediaPipe's left and
    right being the person's, as in COCO).

    * ``keypoints``: ``N x K x 2`` float64 (x, y) in **crop pixels** (MediaPipe's normalised
      landmark times the crop's width and height; a landmark may fall outside the crop).
    * ``scores``: ``N x K`` float64 in [0, 1], each landmark's ``visibility``: the landmark
      model's estimate (after its sigmoid) that the joint is inside the crop and not occluded.
    * A crop where MediaPipe finds no person gives a row of NaN in both: a miss, not a low
      score.

    Parameters
    ----------
    model_complexity : int, default 1
        Only 1 (``pose_landmark_full.tflite``, shipped in the wheel). MediaPipe downloads the
        lite (0) and heavy (2) models from the internet when asked for them, so they are refused.
    min_detection_confidence : float, default 0.5
        The pose detector's score threshold.
    min_tracking_confidence : float, default 0.5
        MediaPipe's name; with ``static_image_mode=True`` it is the threshold on the landmark
        model's pose-presence score: below it the crop counts as having no person.

    The graph is built on the first call and reused; :meth:`close` (or leaving a ``with``
    block) releases it. Building the object imports mediapipe, raising an :class:`ImportError`
    that says what to install when it is missing. Calls are serialised by a lock.

    Examples
    --------
    >>> with MediaPipePose() as predict:  # doctest: +SKIP
    ...     keypoints, scores = predict(crops)   # N x 17 x 2 crop pixels, N x 17; NaN rows: no person
    """

    #: Joint order of the output by default (a ``keypoint_corrupt.schema`` preset).
    schema = "coco17"
    #: The crop ``(width, height)`` the adapter is measured with: square, as MediaPipe's pose
    #: landmark model takes 256 x 256 (any crop size works; MediaPipe resizes it).
    input_size = (256, 256)
    _solution_name = "pose"

    def __init__(
        self,
        model_complexity: int = 1,
        min_detection_confidence: float = 0.5,
        min_tracking_confidence: float = 0.5,
    ) -> None:
        if model_complexity != 1:
            raise ValueError(
                f"model_complexity must be 1 (pose_landmark_full, shipped in the mediapipe wheel), got "
                f"{model_complexity!r}: MediaPipe downloads the lite (0) and heavy (2) models at run time"
            )
        for name, value in (
            ("min_detection_confidence", min_detection_confidence),
            ("min_tracking_confidence", min_tracking_confidence),
        ):
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value!r}")
        self.model_complexity = 1
        self.min_detection_confidence = float(min_detection_confidence)
        self.min_tracking_confidence = float(min_tracking_confidence)
        super().__init__()
        enum = self._mp.solutions.pose.PoseLandmark
        #: MediaPipe's 33 landmark names in output order (the enum's names sorted by value).
        self.landmark_names: tuple[str, ...] = tuple(m.name for m in sorted(enum, key=int))

    def _settings(self) -> dict[str, Any]:
        return {
            "model_complexity": self.model_complexity,
            "min_detection_confidence": self.min_detection_confidence,
            "min_tracking_confidence": self.min_tracking_confidence,
        }

    def _build(self) -> Any:
        return self._mp.solutions.pose.Pose(
            static_image_mode=True,
            model_complexity=self.model_complexity,
            smooth_landmarks=False,
            enable_segmentation=False,
            min_detection_confidence=self.min_detection_confidence,
            min_tracking_confidence=self.min_tracking_confidence,
        )

    def describe(self) -> dict[str, Any]:
        """Describe the predictor for the benchmark report."""
        return {
            "name": "keypoint_corrupt.adapters.mediapipe:MediaPipePose",
            "model": "MediaPipe Pose (pose_landmark_full)",
            "mediapipe": getattr(self._mp, "__version__", "?"),
            **self._settings(),
            "schema": self.schema,
            "input": "one person per crop, top-down; static_image_mode=True",
            "scores": "landmark visibility",
        }

    def detect(self, crop: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """All 33 landmarks of the person in one RGB uint8 crop, or None when none is found.

        Returns ``(33 x 2 crop-pixel keypoints, 33 visibilities)`` in MediaPipe's order
        (:attr:`landmark_names`).
        """
        (crop,) = _as_images([crop], "MediaPipePose", "crops")
        height, width = crop.shape[:2]
        result = self._process(crop)
        if result.pose_landmarks is None:
            return None
        points = result.pose_landmarks.landmark
        xy = np.array([(p.x * width, p.y * height) for p in points], np.float64)
        visibility = np.clip(np.array([p.visibility for p in points], np.float64), 0.0, 1.0)
        return xy, visibility

    def __call__(
        self, crops: Any, schema_name: KeypointSchema | str = "coco17"
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(N x K x 2 crop-pixel keypoints, N x K scores)``, ``schema_name``'s order; NaN rows: misses."""
        if not isinstance(schema_name, (str, KeypointSchema)):
            raise TypeError(
                f"schema_name must be a schema name or a KeypointSchema, got {type(schema_name).__name__}"
            )
        indices = list(landmark_indices(self.landmark_names, schema_name))
        batch = _as_images(crops, "MediaPipePose", "crops")
        keypoints = np.full((len(batch), len(indices), 2), np.nan)
        scores = np.full((len(batch), len(indices)), np.nan)
        for i, crop in enumerate(batch):
            found = self.detect(crop)
            if found is not None:
                keypoints[i], scores[i] = found[0][indices], found[1][indices]
        return keypoints, scores
