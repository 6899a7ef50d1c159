"""Top-down evaluation of body (and animal) keypoints with COCO's OKS AP: the COCO-C protocol.

Per image (whole images, as ``benchmark --suite`` streams them and ``materialize --suite`` writes
them: :class:`~keypoint_corrupt.benchmark.sources.StreamSource` with ``whole_images=True``), every
instance's box is taken from the ground truth (``bbox``) or from a detections file (a COCO results
list with scores), enlarged and cropped as MMPose's top-down models expect it, passed to
``predict(crops)``, mapped back to image pixels, reordered by joint name to the dataset's schema,
written as COCO keypoint results and scored with
:func:`keypoint_corrupt.body_metrics.coco_keypoint_ap` (pycocotools' ``COCOeval``), one score per
row: the clean images and each corruption configuration.

Conventions (MMPose's top-down COCO evaluation):

* **Boxes.** Ground truth: each annotation's ``bbox`` clipped to the image (``[0, W - 1] x [0,
  H - 1]``), skipping crowd regions (``iscrowd``), annotations without a labelled keypoint and empty
  boxes, with box score 1. Detections: every box of the dataset's keypoint categories, as given,
  with its ``score``; no score threshold. A result keeps its box's category (COCOeval averages AP
  over the categories: AP-10K's species).
* **Images.** Ground-truth boxes: the images that hold an annotation. Detections: every image of
  the file, as COCOeval scores them by default, so that detections on an image without any
  annotation count as false positives; each is corrupted whole, once, with the generator of its
  file name, as an annotated image is.
* **Crop.** The box's centre; its size times :data:`BOX_PADDING` (1.25), then widened or heightened
  to the aspect ratio of the model input ``(w, h)``: the predictor's ``input_size`` when it declares
  one, else :data:`DEFAULT_INPUT_SIZE` (192 x 256, MMPose's COCO default). The crop is an affine warp
  (bilinear, black outside the image): crop pixel ``q`` shows image pixel ``(q - (w, h) / 2) / s +
  centre`` with ``s = w / box width = h / box height``; keypoints map back with the same formula.
* **Instance score** (MMPose's rescoring): the box score times the mean of the joint scores above
  :data:`KEYPOINT_SCORE_THRESHOLD` (0.2), 0 when none is above it.
* **No OKS-NMS.** Results are scored as predicted; MMPose applies OKS non-maximum suppression
  (threshold 0.9) to detections first, which no well-kept library here provides, so with a
  detections file duplicated detections of one person stay (each image's 20 best results count,
  COCOeval's ``maxDets``).
* **Misses** (the benchmark's policy: a miss costs what a very wrong answer costs). A joint the
  predictor did not find (NaN) stays NaN in the result, with score 0:
  :func:`~keypoint_corrupt.body_metrics.coco_keypoint_ap` boxes the result by the joints found and
  counts the missed joint as 0 in the OKS of every person, as a very wrong answer. An instance with
  no joint found gives no result at all (a person not found).

Examples
--------
>>> center, size = box_center_size([10.0, 20.0, 30.0, 80.0])  # x, y, w, h; input 192 x 256
>>> center.tolist(), size.tolist()  # 80 * 1.25 = 100 high, widened to 100 * 192 / 256 = 75
([25.0, 60.0], [75.0, 100.0])
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from keypoint_corrupt.benchmark.device_corrupt import device_corruptor
from keypoint_corrupt.benchmark.evaluate import PredictError, row_label, split_output
from keypoint_corrupt.benchmark.sources import STANDARD, StreamSource
from keypoint_corrupt.body_metrics import CocoKeypointAP, coco_keypoint_ap
from keypoint_corrupt.datasets import CocoIndex, CocoKeypoints, Sample, load_image
from keypoint_corrupt.registry import CONFIGS, get_config
from keypoint_corrupt.schema import KeypointSchema, get_schema, remap

__all__ = [
    "BOX_PADDING",
    "DEFAULT_INPUT_SIZE",
    "KEYPOINT_SCORE_THRESHOLD",
    "InstanceBox",
    "ResultArrays",
    "TopdownResult",
    "TopdownRow",
    "box_center_size",
    "crop_instance",
    "crop_to_image",
    "evaluate_topdown",
    "ground_truth_boxes",
    "instance_score",
    "load_detections",
    "resolve_input_size",
    "row_ground_truth",
]

#: Model input (width, height) when the predictor declares none: MMPose's COCO top-down default.
DEFAULT_INPUT_SIZE: tuple[int, int] = (192, 256)
#: Box enlargement before cropping (MMPose's ``padding``).
BOX_PADDING = 1.25
#: Joint scores above this count in an instance's score (MMPose's ``keypoint_score_thr``).
KEYPOINT_SCORE_THRESHOLD = 0.2

PROTOCOL_TEXT = {
    "boxes_gt": "ground-truth boxes: each annotation's bbox clipped to the image ([0, W - 1] x [0, H - 1]), "
    "box score 1; crowd regions (iscrowd), annotations without a labelled keypoint and empty boxes are "
    "skipped (MMPose's top-down COCO evaluation)",
    "boxes_detections": "detections: every box of the file's keypoint categories (COCO: person), as given, "
    "with its score; no score threshold",
    "crop": "box centre; box size x 1.25 (padding), then widened or heightened to the model input's aspect "
    "ratio; affine warp to the model input (bilinear, black outside the image); keypoints mapped back "
    "with the inverse map",
    "rescoring": "instance score = box score x mean of the joint scores above 0.2 (0 when none is above): "
    "MMPose's top-down rescoring",
    "nms": "none: results are scored as predicted (MMPose applies OKS-NMS at 0.9 to detections first; "
    "not done here), COCOeval keeps each image's 20 best-scored results",
    "misses": "a joint the model does not find (NaN) is a miss: score 0, it adds 0 to the OKS of every "
    "person (what a very wrong answer costs), and the result's area (which pycocotools takes from its "
    "keypoints) is the extent of the joints found; an instance with no joint found gives no result (a "
    "person not found, a false negative)",
    "images": "the images of the file that hold an annotation, each "
    "corrupted once with every person on it; COCOeval is restricted to them (with ground-truth boxes an "
    "image without annotation has no box to crop and nothing to score)",
    "images_detections": "every image of the file, as COCOeval scores them by default (imgIds: all images "
    "of the ground-truth file): an image without annotation is cropped at its detections, predicted and "
    "scored too, so its results count as false positives; each image is corrupted once (with every person "
    "on it), with the generator of its file name, sample_rng(seed, file name, configuration), and with "
    "--fraction below 1 the images of a row are drawn among all the images of the file",
}


# --------------------------------------------------------------------------------------------
# Geometry.


def _input_size(value: Any, where: str) -> tuple[int, int]:
    """Check a model input size ``(w, h)`` of two positive integers."""
    try:
        w, h = value
    except (TypeError, ValueError):
        raise ValueError(f"{where} must be (width, height), got {value!r}") from None
    for v in (w, h):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{where} must be two positive integers (width, height), got {value!r}")
    return int(w), int(h)


def box_center_size(
    bbox: Sequence[float] | np.ndarray,
    input_size: tuple[int, int] = DEFAULT_INPUT_SIZE,
    padding: float = BOX_PADDING,
) -> tuple[np.ndarray, np.ndarray]:
    """Return the centre and the ``(w, h)`` of the region a box's crop shows.

    The box's centre; its size times ``padding``, then the shorter side lengthened so that
    ``w / h`` is the model input's aspect ratio (MMPose's ``bbox_xyxy2cs`` and aspect-ratio fix).

    Parameters
    ----------
    bbox : sequence of 4 float
        ``x, y, w, h`` in image pixels (COCO's ``bbox``).
    input_size : (int, int)
        The model input ``(width, height)``.
    padding : float
        Enlargement of the box.

    Returns
    -------
    center, size : numpy.ndarray
        ``(x, y)`` and ``(w, h)`` in image pixels.

    Examples
    --------
    >>> c, s = box_center_size([0.0, 0.0, 100.0, 40.0], (192, 256))
    >>> c.tolist(), s.tolist()  # 125 x 50 after padding, heightened to 125 x 125 * 256 / 192
    ([50.0, 20.0], [125.0, 166.66666666666666])
    """
    x, y, w, h = (float(v) for v in bbox)
    width, height = _input_size(input_size, "input_size")
    center = np.array([x + 0.5 * w, y + 0.5 * h])
    bw, bh = w * padding, h * padding
    aspect = width / height
    if bw > bh * aspect:
        bh = bw / aspect
    else:
        bw = bh * aspect
    return center, np.array([bw, bh])


def _crop_matrix(center: np.ndarray, size: np.ndarray, input_size: tuple[int, int]) -> np.ndarray:
    """Return the 2 x 3 affine map from image to crop pixels: ``(p - center) * s + input / 2``."""
    s = input_size[0] / float(size[0])
    return np.array(
        [
            [s, 0.0, 0.5 * input_size[0] - s * float(center[0])],
            [0.0, s, 0.5 * input_size[1] - s * float(center[1])],
        ]
    )


def crop_instance(
    image: np.ndarray, center: np.ndarray, size: np.ndarray, input_size: tuple[int, int] = DEFAULT_INPUT_SIZE
) -> np.ndarray:
    """Warp the region ``center +- size / 2`` of ``image`` to the model input (``h x w x C``).

    Bilinear, black (0) outside the image, as MMPose's ``TopdownAffine``. The region must have the
    input's aspect ratio (:func:`box_center_size` gives it).

    Examples
    --------
    >>> img = np.zeros((100, 200, 3), np.uint8); img[50, 100] = 255
    >>> crop = crop_instance(img, np.array([100.0, 50.0]), np.array([48.0, 64.0]), (192, 256))
    >>> crop.shape, [int(v) for v in np.unravel_index(crop[..., 0].argmax(), crop.shape[:2])]
    ((256, 192, 3), [128, 96])
    """
    width, height = input_size
    out = cv2.warpAffine(
        image,
        _crop_matrix(center, size, input_size),
        (width, height),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0, 0),
    )
    if image.ndim == 3 and out.ndim == 2:  # OpenCV drops a trailing singleton channel
        out = out[..., None]
    return out


def crop_to_image(
    keypoints: np.ndarray,
    center: np.ndarray,
    size: np.ndarray,
    input_size: tuple[int, int] = DEFAULT_INPUT_SIZE,
) -> np.ndarray:
    """Map ``(..., 2)`` keypoints from crop pixels back to image pixels (inverse of :func:`crop_instance`).

    Examples
    --------
    >>> crop_to_image(np.array([[96.0, 128.0], [0.0, 0.0]]), np.array([100.0, 50.0]),
    ...               np.array([48.0, 64.0]), (192, 256)).tolist()
    [[100.0, 50.0], [76.0, 18.0]]
    """
    s = input_size[0] / float(size[0])
    half = 0.5 * np.array(input_size, dtype=np.float64)
    return (np.asarray(keypoints, np.float64) - half) / s + np.asarray(center, np.float64)


# --------------------------------------------------------------------------------------------
# Boxes.


@dataclass(frozen=True)
class InstanceBox:
    """One box to crop and predict: a ground-truth person or a detection.

    Attributes
    ----------
    image_id : object
        The COCO image id.
    category_id : object
        The category of the results it gives.
    bbox : tuple of 4 float
        ``x, y, w, h`` in image pixels (a ground-truth box already clipped to the image).
    score : float
        The box score (1 for ground-truth boxes).
    annotation_id : object
        The ground-truth annotation (``None`` for a detection).
    """

    image_id: Any
    category_id: Any
    bbox: tuple[float, float, float, float]
    score: float = 1.0
    annotation_id: Any = None


def _keypoint_categories(index: CocoIndex) -> set[Any]:
    """Return the ids of the categories that name keypoints (COCO: person; AP-10K: every species)."""
    cats = {c["id"] for c in index.categories if c.get("keypoints")}
    if not cats:
        raise ValueError(f"{index.path}: no category names keypoints; the COCO protocol scores keypoints")
    return cats


def ground_truth_boxes(index: CocoIndex) -> tuple[dict[Any, list[InstanceBox]], dict[str, int]]:
    """Return each image's ground-truth boxes and how many annotations were skipped, and why.

    MMPose's top-down COCO evaluation: ``bbox`` clipped to ``[0, W - 1] x [0, H - 1]`` (``width``
    and ``height`` of the image entry), box score 1; crowd regions, annotations without a labelled
    keypoint (``max(keypoints) == 0`` or ``num_keypoints == 0``) and empty boxes are skipped.

    Returns
    -------
    boxes : dict
        Image id -> boxes, in file order.
    skipped : dict
        ``{"crowd": n, "no_labelled_keypoint": n, "empty_box": n, "no_bbox": n}``.

    Examples
    --------
    >>> index = CocoIndex({"images": [{"id": 1, "file_name": "a.jpg", "width": 50, "height": 40}],
    ...     "categories": [{"id": 1, "name": "person", "keypoints": ["nose"]}],
    ...     "annotations": [{"id": 7, "image_id": 1, "category_id": 1, "bbox": [40, 5, 30, 10],
    ...                      "keypoints": [45, 10, 2]}]}, "a.json")
    >>> boxes, skipped = ground_truth_boxes(index)
    >>> boxes[1][0].bbox, skipped["crowd"]  # clipped to x <= 49
    ((40.0, 5.0, 9.0, 10.0), 0)
    """
    categories = _keypoint_categories(index)
    boxes: dict[Any, list[InstanceBox]] = {}
    skipped = {"crowd": 0, "no_labelled_keypoint": 0, "empty_box": 0, "no_bbox": 0}
    for ann in index.annotations:
        if ann["category_id"] not in categories:
            continue
        reason = _gt_skip_reason(ann)
        box = None if reason else _clipped_box(ann["bbox"], index.image(ann["image_id"]))
        if reason is None and box is None:
            reason = "empty_box"
        if reason is not None:
            skipped[reason] += 1
            continue
        assert box is not None
        boxes.setdefault(ann["image_id"], []).append(
            InstanceBox(ann["image_id"], ann["category_id"], box, 1.0, ann["id"])
        )
    return boxes, skipped


def _gt_skip_reason(ann: Mapping[str, Any]) -> str | None:
    if ann.get("iscrowd"):
        return "crowd"
    bbox = ann.get("bbox")
    if not isinstance(bbox, list) or len(bbox) != 4:
        return "no_bbox"
    kps = ann.get("keypoints") or []
    flat = np.asarray(kps, dtype=np.float64).ravel()
    if ann.get("num_keypoints") == 0 or not flat.size or np.nanmax(flat) == 0:
        return "no_labelled_keypoint"
    return None


def _clipped_box(bbox: Sequence[float], image: Mapping[str, Any]) -> tuple[float, float, float, float] | None:
    """``bbox`` clipped to the image as MMPose does; ``None`` when nothing is left."""
    x, y, w, h = (float(v) for v in bbox)
    width, height = image.get("width"), image.get("height")
    hi_x = float(width) - 1 if width else math.inf
    hi_y = float(height) - 1 if height else math.inf
    x1, y1 = min(max(x, 0.0), hi_x), min(max(y, 0.0), hi_y)
    x2, y2 = min(max(x + w, 0.0), hi_x), min(max(y + h, 0.0), hi_y)
    if x2 <= x1 or y2 <= y1:
        return None
    return (x1, y1, x2 - x1, y2 - y1)


def load_detections(
    detections: str | os.PathLike[str] | Sequence[Mapping[str, Any]], index: CocoIndex
) -> tuple[dict[Any, list[InstanceBox]], dict[str, int]]:
    """Read a detections file (a COCO results list with scores): each image's boxes.

    Only boxes of the dataset's keypoint categories count (``category_id``; COCO's person is 1;
    AP-10K's species), as given (not clipped), with their scores; no score threshold. A detection
    with an empty box is skipped. Its results keep its category.

    Parameters
    ----------
    detections : path or list of dict
        ``[{"image_id", "category_id", "bbox": [x, y, w, h], "score"}, ...]``.
    index : CocoIndex
        The ground truth; every detection's ``image_id`` must be one of its images.

    Returns
    -------
    boxes : dict
        Image id -> boxes, in file order.
    counts : dict
        ``{"read": n, "used": n, "other_category": n, "empty_box": n}``.

    Raises
    ------
    FileNotFoundError, ValueError
        A missing or unreadable file, or a malformed detection (naming it and the file).

    Examples
    --------
    >>> index = CocoIndex({"images": [{"id": 1, "file_name": "a.jpg"}],
    ...     "categories": [{"id": 1, "name": "person", "keypoints": ["nose"]}], "annotations": []}, "a.json")
    >>> boxes, counts = load_detections([{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4],
    ...                                   "score": 0.5}], index)
    >>> boxes[1][0].score, counts["used"]
    (0.5, 1)
    """
    where = "detections"
    if isinstance(detections, (str, os.PathLike)):
        where = str(detections)
        path = Path(detections)
        if not path.is_file():
            raise FileNotFoundError(f"detections file not found: {path}")
        try:
            detections = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise ValueError(f"{path}: not a JSON file ({exc})") from None
    if not isinstance(detections, list):
        raise ValueError(f"{where}: expected a COCO results list ([{{image_id, category_id, bbox, score}}])")
    categories = _keypoint_categories(index)
    counts = {"read": len(detections), "used": 0, "other_category": 0, "empty_box": 0}
    boxes: dict[Any, list[InstanceBox]] = {}
    for n, det in enumerate(detections):
        box, score = _check_detection(det, n, where, index)
        if isinstance(det["category_id"], (list, dict)) or det["category_id"] not in categories:
            counts["other_category"] += 1
            continue
        if box[2] <= 0 or box[3] <= 0:
            counts["empty_box"] += 1
            continue
        counts["used"] += 1
        boxes.setdefault(det["image_id"], []).append(
            InstanceBox(det["image_id"], det["category_id"], box, score)
        )
    return boxes, counts


def _check_detection(
    det: Any, n: int, where: str, index: CocoIndex
) -> tuple[tuple[float, float, float, float], float]:
    if not isinstance(det, Mapping):
        raise ValueError(f"{where}: detection {n} is not an object")
    missing = [k for k in ("image_id", "category_id", "bbox", "score") if k not in det]
    if missing:
        raise ValueError(f"{where}: detection {n} has no {', '.join(missing)}")
    if isinstance(det["image_id"], (list, dict)) or det["image_id"] not in index.coco.imgs:
        raise ValueError(
            f"{where}: detection {n} refers to image_id {det['image_id']!r}, not in {index.path}"
        )
    try:
        box = tuple(float(v) for v in det["bbox"])
        score = float(det["score"])
    except (TypeError, ValueError):
        raise ValueError(f"{where}: detection {n}: bbox must be 4 numbers and score a number") from None
    if len(box) != 4 or not all(math.isfinite(v) for v in (*box, score)):
        raise ValueError(f"{where}: detection {n}: bbox must be 4 finite numbers and score finite")
    return (box[0], box[1], box[2], box[3]), score


# --------------------------------------------------------------------------------------------
# From predictions to COCO results.


def instance_score(
    box_score: float, scores: np.ndarray, threshold: float = KEYPOINT_SCORE_THRESHOLD
) -> float:
    """MMPose's instance score: ``box_score`` times the mean of the joint scores above ``threshold``.

    0 when no joint score is above it. NaN scores (missed joints) count as 0.

    Examples
    --------
    >>> instance_score(0.5, np.array([0.9, 0.1, 0.7, np.nan]))  # 0.5 * (0.9 + 0.7) / 2
    0.4
    >>> instance_score(1.0, np.array([0.1, 0.2]))  # none above 0.2
    0.0
    """
    s = np.nan_to_num(np.asarray(scores, np.float64), nan=0.0)
    above = s[s > threshold]
    return float(box_score) * float(above.mean()) if above.size else 0.0


# --------------------------------------------------------------------------------------------
# Results.


@dataclass(frozen=True, eq=False)
class ResultArrays:
    """A row's COCO keypoint results, kept as arrays (a list of dicts costs several times the memory).

    Attributes
    ----------
    image_ids, category_ids : list
        Per result.
    keypoints : numpy.ndarray
        ``N x K x 3`` float64: ``x, y`` in image pixels (NaN for a missed joint) and the joint score.
    scores : numpy.ndarray
        ``N`` instance scores.
    """

    image_ids: list[Any]
    category_ids: list[Any]
    keypoints: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.image_ids)

    def to_list(self) -> list[dict[str, Any]]:
        """Return the COCO results list: image_id, category_id, keypoints ([x, y, s] * K) and score."""
        if not len(self):  # nobody found in this row: no results (reshape cannot infer 0 x -1)
            return []
        flat = self.keypoints.reshape(len(self), -1).tolist()
        return [
            {"image_id": i, "category_id": c, "keypoints": k, "score": float(s)}
            for i, c, k, s in zip(self.image_ids, self.category_ids, flat, self.scores, strict=True)
        ]


@dataclass(eq=False)
class TopdownRow:
    """One row: the clean images (``standard``) or one configuration, scored with OKS AP.

    Attributes
    ----------
    name, family : str
        The row (``"standard"`` or a configuration) and its corruption family.
    metric : CocoKeypointAP
        AP, AP50, AP75, APM, APL, AR ... of the row (pycocotools).
    image_ids : list
        The COCO images of the row.
    packed : ResultArrays
        The COCO keypoint results scored; :attr:`results` gives them as COCO's list of dicts.
    moved : dict
        Annotation id -> its keypoints ``(K, 2)`` where the corruption moved the image content
        (the ground truth of this row); empty for most corruptions.
    boxes : int
        Boxes cropped and predicted.
    instances_missed : int
        Boxes where the model found no joint (no result).
    joints_missed : int
        Missed joints of the instances with a result.
    """

    name: str
    family: str
    metric: CocoKeypointAP
    image_ids: list[Any]
    packed: ResultArrays
    moved: dict[Any, np.ndarray] = field(default_factory=dict)
    boxes: int = 0
    instances_missed: int = 0
    joints_missed: int = 0

    @property
    def results(self) -> list[dict[str, Any]]:
        """The COCO results list scored (built on each access from :attr:`packed`)."""
        return self.packed.to_list()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (without the results): the metric and the counts."""
        challenge, param = row_label(self.name)
        return {
            "name": self.name,
            "family": self.family,
            "challenge": challenge,
            "config": param,
            "images": len(self.image_ids),
            "boxes": self.boxes,
            "results": len(self.packed),
            "instances_missed": self.instances_missed,
            "joints_missed": self.joints_missed,
            **self.metric.as_dict(),
        }


@dataclass(eq=False)
class TopdownResult:
    """Everything :func:`evaluate_topdown` measured.

    Attributes
    ----------
    rows : dict
        Row name -> :class:`TopdownRow`, ``standard`` first.
    protocol : dict
        The protocol statement: metric, sigmas, schemas, box source, crop, input size (and where it
        came from), rescoring, NMS, misses, images.
    source, settings, timing : dict
        Where the images came from (dataset, fraction, seed), the predictor, time spent.
    """

    rows: dict[str, TopdownRow]
    protocol: dict[str, Any]
    source: dict[str, Any]
    settings: dict[str, Any]
    timing: dict[str, Any]

    @property
    def standard(self) -> TopdownRow | None:
        """The clean row, if evaluated."""
        return self.rows.get(STANDARD)


# --------------------------------------------------------------------------------------------
# The evaluation.


@dataclass
class _Image:
    """One image of a row: its pixels and the (possibly moved) keypoints of its annotations."""

    image_id: Any
    image: np.ndarray
    keypoints: dict[Any, np.ndarray] = field(default_factory=dict)


@dataclass
class _Pending:
    """Crops waiting for the predictor, and what maps their answers back."""

    crops: list[np.ndarray] = field(default_factory=list)
    boxes: list[InstanceBox] = field(default_factory=list)
    frames: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)


@dataclass
class _Plan:
    """What stays the same across the rows of one evaluation."""

    predict: Callable[..., Any]
    index: CocoIndex
    samples: dict[str, Sample]
    by_annotation: dict[Any, Sample]
    boxes: dict[Any, list[InstanceBox]]
    input_size: tuple[int, int]
    source_schema: KeypointSchema
    target_schema: KeypointSchema
    sigmas: np.ndarray
    batch_size: int
    predict_seconds: float = 0.0


@dataclass
class _RowAccumulator:
    """A row's results and counts, batch after batch."""

    result_images: list[Any] = field(default_factory=list)
    result_categories: list[Any] = field(default_factory=list)
    result_keypoints: list[np.ndarray] = field(default_factory=list)
    result_scores: list[float] = field(default_factory=list)
    image_ids: list[Any] = field(default_factory=list)
    moved: dict[Any, np.ndarray] = field(default_factory=dict)
    boxes: int = 0
    instances_missed: int = 0
    joints_missed: int = 0

    def packed(self, joints: int) -> ResultArrays:
        """Return the results as arrays."""
        kps = np.stack(self.result_keypoints) if self.result_keypoints else np.zeros((0, joints, 3))
        return ResultArrays(
            self.result_images, self.result_categories, kps, np.asarray(self.result_scores, np.float64)
        )


def _row_images(source: StreamSource, group: int, samples: Mapping[str, Sample]) -> Iterator[_Image]:
    """Yield each image of a row once, with its annotations' keypoints, in order of first appearance.

    A corrupted row's items are :class:`StreamSource`'s (each image corrupted once, as
    ``materialize --suite`` writes it, its annotations in a row; keypoints where the corruption
    moved them); the clean row's image is decoded once, not once per annotation.
    """
    name, count = source.groups[group]
    by_image: dict[Any, list[tuple[int, Sample]]] = {}
    for i in range(count):
        sample = samples[_item_id(source, group, i)]
        by_image.setdefault(sample.meta["image_id"], []).append((i, sample))
    for image_id, members in by_image.items():
        if name == STANDARD:
            img = _Image(image_id, load_image(members[0][1]))
            for _, sample in members:
                if sample.meta.get("annotation_id") is not None:  # None: an image without annotation
                    img.keypoints[sample.meta["annotation_id"]] = sample.keypoints
        else:
            items = [source.item(group, i) for i, _ in members]
            img = _Image(image_id, np.asarray(items[0]["image"]))
            for item, (_, sample) in zip(items, members, strict=True):
                if sample.meta.get("annotation_id") is not None:
                    img.keypoints[sample.meta["annotation_id"]] = np.asarray(item["keypoints"], np.float64)
        yield img


def _item_id(source: StreamSource, group: int, index: int) -> str:
    """Return the sample id of item ``index`` of row ``group`` without decoding its image (same package)."""
    _, ann, _ = source._entries[group][index]
    return str(source.base[ann].id)


def _checked_output(out: Any, n: int, plan: _Plan, row: str) -> tuple[np.ndarray, np.ndarray]:
    """Check the predictor's answer for ``n`` crops; return keypoints and scores in the dataset's order."""
    coords, scores = split_output(out)
    k = len(plan.source_schema)
    if coords.shape != (n, k, 2):
        raise ValueError(
            f"predict returned keypoints of shape {coords.shape} for {n} crops; expected ({n}, {k}, 2) "
            f"(crop pixels, the {k} joints of schema {plan.source_schema.name!r}) with scores ({n}, {k})"
        )
    if scores is None:  # keypoints only: every joint found has score 1
        scores = np.where(np.isfinite(coords).all(axis=-1), 1.0, 0.0)
    if np.isinf(coords).any():
        raise ValueError(f"predict returned infinite keypoints (row {row}); return NaN for a joint not found")
    valid = scores[np.isfinite(scores)]
    if valid.size and (valid.min() < 0.0 or valid.max() > 1.0):
        raise ValueError(
            f"predict returned joint scores from {valid.min():g} to {valid.max():g} (row {row}); "
            "expected scores in [0, 1]"
        )
    if plan.source_schema.joints != plan.target_schema.joints:
        coords = np.asarray(remap(coords, plan.source_schema, plan.target_schema), np.float64)
        scores = np.asarray(remap(scores[..., None], plan.source_schema, plan.target_schema))[..., 0]
    return coords, scores


def _flush(plan: _Plan, pending: _Pending, row: str, acc: _RowAccumulator) -> _Pending:
    """Run the predictor on the pending crops, turn its answers into COCO results; return a new batch."""
    if not pending.crops:
        return pending
    t0 = time.perf_counter()
    try:
        answer = plan.predict(pending.crops)
    except Exception as exc:
        names = [str(plan.index.image(b.image_id).get("file_name", b.image_id)) for b in pending.boxes]
        raise PredictError(row, list(dict.fromkeys(names)), exc) from exc
    plan.predict_seconds += time.perf_counter() - t0
    coords, scores = _checked_output(answer, len(pending.crops), plan, row)
    for i, box in enumerate(pending.boxes):
        found = np.isfinite(coords[i]).all(axis=-1)
        acc.boxes += 1
        if not found.any():
            acc.instances_missed += 1  # a person not found: no result
            continue
        acc.joints_missed += int((~found).sum())
        center, size = pending.frames[i]
        points = crop_to_image(coords[i], center, size, plan.input_size)
        points[~found] = np.nan  # a miss, counted as body_metrics.coco_keypoint_ap says
        joint_scores = np.where(found, np.nan_to_num(scores[i], nan=0.0), 0.0)
        acc.result_images.append(box.image_id)
        acc.result_categories.append(box.category_id)
        acc.result_keypoints.append(np.column_stack([points, joint_scores]))
        acc.result_scores.append(instance_score(box.score, joint_scores))
    return _Pending()


def _run_row(plan: _Plan, source: StreamSource, group: int) -> _RowAccumulator:
    """Crop, predict and collect the results of one row, image after image."""
    name = source.groups[group][0]
    acc = _RowAccumulator()
    pending = _Pending()
    for img in _row_images(source, group, plan.samples):
        acc.image_ids.append(img.image_id)
        for ann_id, kp in img.keypoints.items():
            if not np.array_equal(kp, plan.by_annotation[ann_id].keypoints):
                acc.moved[ann_id] = kp  # the corruption moved the content: this row's ground truth
        for box in plan.boxes.get(img.image_id, []):
            center, size = box_center_size(box.bbox, plan.input_size)
            pending.crops.append(crop_instance(img.image, center, size, plan.input_size))
            pending.boxes.append(box)
            pending.frames.append((center, size))
            if len(pending.crops) >= plan.batch_size:
                pending = _flush(plan, pending, name, acc)
    _flush(plan, pending, name, acc)
    return acc


def row_ground_truth(index: CocoIndex, moved: Mapping[Any, np.ndarray] | None = None) -> dict[str, Any]:
    """Return the COCO document a row is scored against: the file's, with moved keypoints where any.

    A new document (pycocotools marks the annotations it evaluates): images and categories
    copied, each annotation copied with flat ``[x, y, v] * K`` keypoints (a nested file is
    flattened), ``x, y`` replaced where the row's corruption moved the content; ``v``, ``bbox``,
    ``area``, ``iscrowd`` and every other field stay the source's (as ``materialize`` writes a
    COCO source's annotations); a missing ``iscrowd`` is 0.

    Examples
    --------
    >>> index = CocoIndex({"images": [{"id": 1, "file_name": "a.jpg"}],
    ...     "categories": [{"id": 1, "name": "person", "keypoints": ["nose"]}],
    ...     "annotations": [{"id": 7, "image_id": 1, "category_id": 1, "keypoints": [[5, 6, 2]]}]}, "a.json")
    >>> row_ground_truth(index, {7: np.array([[5.5, 6.0]])})["annotations"][0]["keypoints"]
    [5.5, 6.0, 2.0]
    """
    from keypoint_corrupt.datasets.coco_index import parse_keypoints

    moved = moved or {}
    annotations = []
    for ann in index.annotations:
        entry = dict(ann)
        entry.setdefault("iscrowd", 0)  # absent: not a crowd region (pycocotools needs the field)
        names = index.joint_names(ann["category_id"])
        raw = ann.get("keypoints")
        if names is not None and raw is not None:
            kps = parse_keypoints(raw, len(names), error=index.error, where=f"annotation {ann['id']!r}")
            if ann["id"] in moved:
                kps[:, :2] = np.asarray(moved[ann["id"]], np.float64)
            entry["keypoints"] = [float(v) for v in kps.ravel()]
        annotations.append(entry)
    return {
        "images": [dict(im) for im in index.images],
        "annotations": annotations,
        "categories": copy.deepcopy(list(index.categories)),
    }


def resolve_input_size(
    input_size: tuple[int, int] | None,
    predict: Callable[..., Any],
    default: tuple[int, int] = DEFAULT_INPUT_SIZE,
) -> tuple[tuple[int, int], str]:
    """Return the model input ``(w, h)`` of a top-down protocol and where it came from.

    The argument when given, else the predictor's ``input_size``, else ``default``; each is
    checked (two positive ints) and a bad one is named in the error.

    Examples
    --------
    >>> resolve_input_size(None, lambda crops: None)
    ((192, 256), 'default')
    >>> resolve_input_size((256, 256), print)
    ((256, 256), 'argument')
    """
    if input_size is not None:
        return _input_size(input_size, "input_size"), "argument"
    declared = getattr(predict, "input_size", None)
    if declared is not None:
        return _input_size(declared, "predict.input_size"), "predictor"
    return default, "default"


def _resolve_schemas(
    predict: Callable[..., Any], dataset: CocoKeypoints
) -> tuple[KeypointSchema, KeypointSchema]:
    """Return the predictor's joint order and the dataset's, checked before any image is read."""
    if dataset.schema is None:
        raise ValueError(f"{dataset.annotation_file}: no keypoint schema (categories name different joints)")
    target = get_schema(dataset.schema)
    declared = getattr(predict, "schema", None)
    source = target if declared is None else get_schema(declared)
    try:
        remap(np.zeros((1, len(source), 2)), source, target)
    except ValueError as exc:
        raise ValueError(
            f"predict declares schema {source.name!r}, which cannot be scored against the dataset's "
            f"schema {target.name!r}: {exc}"
        ) from exc
    return source, target


def _resolve_sigmas(sigmas: Sequence[float] | np.ndarray | None, schema: KeypointSchema) -> np.ndarray:
    if sigmas is None:
        if schema.sigmas is None:
            raise ValueError(f"schema {schema.name!r} has no OKS sigmas; pass sigmas= (one per joint)")
        sigmas = schema.sigmas
    out = np.asarray(sigmas, np.float64)
    if out.shape != (len(schema),) or not np.all(np.isfinite(out)) or np.any(out <= 0):
        raise ValueError(
            f"sigmas must be {len(schema)} positive numbers (schema {schema.name!r}), got {sigmas!r}"
        )
    return out


def _check_call(predict: Callable[..., Any], batch_size: int, configs: Sequence[str]) -> None:
    if not callable(predict):
        raise TypeError(f"predict must be callable, got {type(predict).__name__}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    for name in configs:
        get_config(name)


def _describe(predict: Callable[..., Any]) -> dict[str, Any]:
    describe = getattr(predict, "describe", None)
    if callable(describe):
        described: dict[str, Any] = describe()
        return described
    name = getattr(predict, "__qualname__", None) or type(predict).__qualname__
    return {"name": f"{getattr(predict, '__module__', '?')}:{name}"}


def evaluate_topdown(
    predict: Callable[..., Any],
    dataset: CocoKeypoints | str | os.PathLike[str],
    configs: Sequence[str] = CONFIGS,
    fraction: float = 1.0,
    seed: int = 0,
    batch_size: int = 16,
    *,
    detections: str | os.PathLike[str] | Sequence[Mapping[str, Any]] | None = None,
    input_size: tuple[int, int] | None = None,
    sigmas: Sequence[float] | np.ndarray | None = None,
    standard: bool = True,
    progress: bool = False,
    corrupt_on: str | None = None,
) -> TopdownResult:
    """Evaluate a top-down keypoint predictor with COCO's OKS AP on the clean images and each configuration.

    Parameters
    ----------
    predict : callable
        ``predict(crops) -> (keypoints, scores)``: ``crops`` a list of ``h x w x 3`` uint8 RGB crops
        (the model input ``input_size``); ``keypoints`` ``N x K x 2`` in crop pixels (NaN for a joint
        not found), ``scores`` ``N x K`` in [0, 1] (or a ``N x K x 3`` array; keypoints alone give
        score 1 to every joint found). It may declare ``schema`` (its joint order: a preset name or
        a :class:`~keypoint_corrupt.schema.KeypointSchema`; default the dataset's), the answers are
        reordered by joint name, and ``input_size`` ``(w, h)``.
    dataset : CocoKeypoints or path
        A COCO keypoint file (one keypoint category) and its images.
    configs : sequence of str
        The corruption configurations, one row each (a suite's: ``suite.configs(severities)``).
    fraction, seed : float, int
        The share of images corrupted per configuration and the seed (as ``benchmark --suite``:
        each image corrupted once, with ``sample_rng(seed, image id, configuration)``).
    batch_size : int
        Crops per ``predict`` call.
    detections : path or list of dict, optional
        A COCO results list of person boxes with scores; default: the ground-truth boxes. With
        detections every image of the file is scored, as COCOeval does by default: an image
        without annotation too (:meth:`CocoKeypoints.unannotated_images`), so that its detections
        count as false positives; it is corrupted as an annotated image is (whole, with the
        generator of its file name, as ``materialize --suite`` writes it) and drawn with them when
        ``fraction`` is below 1.
    input_size : (int, int), optional
        The model input ``(w, h)``; default the predictor's ``input_size``, else 192 x 256.
    sigmas : sequence of float, optional
        OKS sigmas, one per joint of the dataset; default the dataset schema's (``coco17``:
        pycocotools' own).
    standard : bool
        Evaluate the clean images (row ``standard``).
    progress : bool
        A progress bar over the rows (tqdm, on stderr).
    corrupt_on : str, optional
        A torch device that corrupts each image with :mod:`keypoint_corrupt.torch` instead of
        the NumPy kernels (same generators; the same images where the kernels are bit-exact,
        ``docs/torch.md``), as :func:`~keypoint_corrupt.benchmark.evaluate` does.

    Returns
    -------
    TopdownResult
        One :class:`TopdownRow` per row (AP and the rest from pycocotools), and the protocol.

    Raises
    ------
    ValueError
        A wrong argument, schema, sigmas or detection, before any image is read; a wrong answer of
        ``predict`` (shape, infinite coordinates, scores outside [0, 1]).
    PredictError
        ``predict`` raised (the row and the images of the failing batch).

    Examples
    --------
    One person on a black image, and a model that puts every joint at the crop's centre:

    >>> import json, pathlib, tempfile, cv2
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = cv2.imwrite(str(d / "a.png"), np.zeros((120, 100, 3), np.uint8))
    >>> person = {"id": 1, "image_id": 1, "category_id": 1, "bbox": [25, 15, 30, 75], "area": 2250.0,
    ...           "num_keypoints": 17, "keypoints": [v for j in range(17) for v in (30 + j, 20 + 4 * j, 2)]}
    >>> _ = (d / "a.json").write_text(json.dumps({"annotations": [person],
    ...     "images": [{"id": 1, "file_name": "a.png", "width": 100, "height": 120}],
    ...     "categories": [{"id": 1, "name": "person", "keypoints": list(get_schema("coco17").joints)}]}))
    >>> def centre(crops):  # N crops -> N x 17 x 2 keypoints in crop pixels, N x 17 scores
    ...     return np.full((len(crops), 17, 2), [96.0, 128.0]), np.full((len(crops), 17), 0.5)
    >>> res = evaluate_topdown(centre, d / "a.json", configs=["imagenet-c.brightness-1"])
    >>> list(res.rows), res.rows["standard"].metric.ap, res.protocol["input_size_from"]
    (['standard', 'imagenet-c.brightness-1'], 0.0, 'default')
    """
    _check_call(predict, batch_size, configs)
    coco = dataset if isinstance(dataset, CocoKeypoints) else CocoKeypoints(dataset)
    index = coco.coco_index
    source_schema, target_schema = _resolve_schemas(predict, coco)
    oks_sigmas = _resolve_sigmas(sigmas, target_schema)
    size, size_from = resolve_input_size(input_size, predict)
    if detections is not None:
        boxes, box_counts = load_detections(detections, index)
    else:
        boxes, box_counts = ground_truth_boxes(index)
    samples = list(coco)
    # With detections, every image of the file is scored (COCOeval's default), those without
    # annotation too: their detections are false positives. Ground-truth boxes have none there.
    extra = coco.unannotated_images() if detections is not None else []
    plan = _Plan(
        predict,
        index,
        {s.id: s for s in [*samples, *extra]},
        {s.meta["annotation_id"]: s for s in samples},
        boxes,
        size,
        source_schema,
        target_schema,
        oks_sigmas,
        batch_size,
    )
    base: Sequence[Sample] = [*samples, *extra] if extra else coco
    source = StreamSource(base, configs, fraction, seed, standard=standard, whole_images=True)
    if corrupt_on is not None:
        source.corruptor = device_corruptor(corrupt_on, source)
    if not source.groups:
        raise ValueError("nothing to evaluate: no configuration and standard=False")
    started = time.perf_counter()
    rows: dict[str, TopdownRow] = {}
    for group, (name, _) in enumerate(_progress(source.groups, progress)):
        acc = _run_row(plan, source, group)
        packed = acc.packed(len(target_schema))
        metric = coco_keypoint_ap(
            row_ground_truth(index, acc.moved), packed.to_list(), sigmas=oks_sigmas, image_ids=acc.image_ids
        )
        rows[name] = TopdownRow(
            name, _family(name), metric, acc.image_ids, packed, acc.moved,
            acc.boxes, acc.instances_missed, acc.joints_missed,
        )  # fmt: skip
    seconds = time.perf_counter() - started
    protocol = _protocol(plan, detections, box_counts, size_from, coco, len(extra))
    settings = {
        "batch_size": batch_size,
        "predictor": _describe(predict),
        "cpu_count": os.cpu_count(),
        "corrupt_on": corrupt_on,
    }
    images = sum(len(r.image_ids) for r in rows.values())
    timing = {
        "seconds": seconds,
        "images": images,
        "images_per_second": images / seconds if seconds > 0 else math.nan,
        "predict_seconds": plan.predict_seconds,
        "predict_share": plan.predict_seconds / seconds if seconds > 0 else math.nan,
    }
    described = source.describe()
    if extra:  # the file's reader, as without them, and how many images it adds
        described = StreamSource(coco, (), fraction, seed, standard=False, whole_images=True).describe()
        described["images_without_annotation"] = len(extra)
    return TopdownResult(rows, protocol, described, settings, timing)


def _progress(groups: Sequence[tuple[str, int]], enabled: bool) -> Sequence[tuple[str, int]]:
    if not enabled:
        return groups
    from tqdm.auto import tqdm

    bar: Sequence[tuple[str, int]] = tqdm(groups, desc="configurations", unit="row")
    return bar


def _family(name: str) -> str:
    if name == STANDARD:
        return STANDARD
    try:
        return get_config(name).family
    except ValueError:
        return name


def _protocol(
    plan: _Plan,
    detections: Any,
    box_counts: dict[str, int],
    size_from: str,
    coco: CocoKeypoints,
    unannotated_scored: int,
) -> dict[str, Any]:
    """Return the protocol statement of a top-down evaluation (``report.json``'s ``protocol``)."""
    index = plan.index
    annotated = {s.meta["image_id"] for s in coco}
    scored = {im["id"] for im in index.images} if unannotated_scored else annotated
    if detections is None:
        box_source: dict[str, Any] = {"source": "ground truth", "definition": PROTOCOL_TEXT["boxes_gt"]}
        box_source["skipped"] = box_counts
    else:
        where = str(detections) if isinstance(detections, (str, os.PathLike)) else "(a list)"
        box_source = {"source": "detections", "file": where, "definition": PROTOCOL_TEXT["boxes_detections"]}
        box_source["counts"] = box_counts
    box_source["boxes"] = sum(len(v) for k, v in plan.boxes.items() if k in scored)
    return {
        "name": "coco",
        "metric": "COCO keypoint AP (OKS), pycocotools COCOeval(iouType='keypoints'): AP averaged over OKS "
        "thresholds 0.50:0.05:0.95, AP50, AP75, APM, APL, AR",
        "primary_metric": "ap",
        "sigmas": [float(s) for s in plan.sigmas],
        "schema": {
            "dataset": plan.target_schema.name,
            "predict": plan.source_schema.name,
            "reordered": plan.source_schema.joints != plan.target_schema.joints,
        },
        "boxes": box_source,
        "crop": PROTOCOL_TEXT["crop"],
        "padding": BOX_PADDING,
        "input_size": list(plan.input_size),
        "input_size_from": size_from,
        "rescoring": PROTOCOL_TEXT["rescoring"],
        "keypoint_score_threshold": KEYPOINT_SCORE_THRESHOLD,
        "nms": PROTOCOL_TEXT["nms"],
        "misses": PROTOCOL_TEXT["misses"],
        "images": {
            "definition": PROTOCOL_TEXT["images_detections" if detections is not None else "images"],
            "in_file": len(index.images),
            "evaluated": len(scored),
            "without_annotation": len(index.images) - len(annotated),
            "without_annotation_evaluated": unannotated_scored,
        },
        "annotation_file": str(Path(index.path).resolve()),  # recompute_coco from any folder
    }
