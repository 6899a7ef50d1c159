"""The MPII protocol: top-down crops from MPII's ``center`` / ``scale``, PCKh@0.5 and the PCKh curve.

Per image (whole images, as the COCO protocol: :class:`~keypoint_corrupt.benchmark.sources.StreamSource`
with ``whole_images=True``, each image's corruption keyed by its file name), every person of MMPose's
MPII JSON (:class:`~keypoint_corrupt.datasets.mpii.MpiiPeople`) is cropped as MMPose's top-down MPII
models expect it, passed to ``predict(crops)`` (the COCO protocol's contract), mapped back to image
pixels, reordered by joint name to ``mpii16`` and scored with MPII's PCKh
(:func:`~keypoint_corrupt.body_metrics.pckh`, :func:`~keypoint_corrupt.body_metrics.pckh_curve`),
whose head sizes come from MPII's own annotation file (``--head-boxes``:
:func:`~keypoint_corrupt.body_metrics.load_mpii_head_boxes`), matched to each person by its joints.

Conventions:

* **Crop.** MPII's box is a square of side ``scale * 200`` px around ``center``, moved down by
  ``15 * scale`` px (MMPose's MPII reader does so "to avoid cropping limbs"); then the COCO
  protocol's crop (:func:`~keypoint_corrupt.benchmark.topdown.box_center_size`: padding 1.25, the
  model input's aspect ratio; :func:`~keypoint_corrupt.benchmark.topdown.crop_instance`). The model
  input is ``input_size``, else the predictor's, checked as the COCO protocol checks it; else
  :data:`DEFAULT_INPUT_SIZE` (256 x 256, MMPose's MPII default). Coordinates stay the file's
  (MMPose's 1-based shift is not applied).
* **Ground truth.** The file's ``joints`` and ``joints_vis`` (where a corruption moves the image
  content, the moved joints); head sizes are the clean annotation's.
* **Misses.** A joint not found (NaN) is wrong (:func:`~keypoint_corrupt.body_metrics.pckh`).
* **Mean.** MPII's total: PCKh pooled over the 14 joints other than pelvis and thorax.

With a suite, ``P`` = PCKh@0.5 for mPC, rPC and mRR (the suite machinery of the COCO protocol).

:func:`write_mpii_report` writes ``report.json``, ``report.md``, ``report.csv`` and
``mpii_predictions.json.gz`` (every row's people, predicted joints and scores, and the ground truth
where a corruption moved it; the same bytes on every run), from which :func:`recompute_mpii`
rebuilds every row's figures with the annotation file and the head boxes, without the model.

Examples
--------
>>> mpii_crop_box((100.0, 200.0), 1.0, (256, 256))[0].tolist()  # centre moved down 15 px
[100.0, 215.0]
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from keypoint_corrupt.benchmark.device_corrupt import device_corruptor
from keypoint_corrupt.benchmark.evaluate import PredictError, row_label, split_output
from keypoint_corrupt.benchmark.report import REPORT_FORMAT, check_output_dir, json_safe, report_header
from keypoint_corrupt.benchmark.sources import STANDARD, StreamSource
from keypoint_corrupt.benchmark.suite_report import (
    MPC_DEFINITION,
    fmt_figure,
    metric_block,
    metric_table_lines,
    plain_summary,
    suite_cells,
    suite_positions,
)
from keypoint_corrupt.benchmark.topdown import (
    BOX_PADDING,
    box_center_size,
    crop_instance,
    crop_to_image,
    resolve_input_size,
)
from keypoint_corrupt.body_metrics import (
    MPII_THRESHOLDS,
    PCKh,
    PCKhCurve,
    head_sizes_from_boxes,
    load_mpii_head_boxes,
    mean_relative_robustness,
    pckh,
    pckh_curve,
)
from keypoint_corrupt.datasets.mpii import MpiiPeople
from keypoint_corrupt.registry import CONFIGS, get_config
from keypoint_corrupt.schema import KeypointSchema, get_schema, remap
from keypoint_corrupt.suites import Suite

__all__ = [
    "DEFAULT_INPUT_SIZE",
    "MPII_PREDICTIONS_FILE",
    "MPII_PREDICTIONS_FORMAT",
    "MPII_REPORT_FILES",
    "MpiiResult",
    "MpiiRow",
    "build_mpii_report",
    "evaluate_mpii",
    "mpii_crop_box",
    "recompute_mpii",
    "write_mpii_report",
]

#: Model input (width, height) when the predictor declares none: MMPose's MPII top-down default.
DEFAULT_INPUT_SIZE: tuple[int, int] = (256, 256)
#: MPII's ``scale`` is the person's size in units of 200 px.
PIXEL_STD = 200.0
#: MMPose moves MPII's centre down by this many ``scale`` units of pixels.
CENTER_SHIFT = 15.0
#: Every row's people, predictions and scores (gzip JSON), from which :func:`recompute_mpii` rebuilds it.
MPII_PREDICTIONS_FILE = "mpii_predictions.json.gz"
MPII_PREDICTIONS_FORMAT = "keypoint-corrupt/mpii-predictions"
#: What :func:`write_mpii_report` writes, its JSON document first (``--out`` is checked against them).
MPII_REPORT_FILES = ("report.json", "report.csv", "report.md", MPII_PREDICTIONS_FILE)

PCKH_DEFINITION = (
    "PCKh@0.5: the share of annotated joints within 0.5 head sizes (0.6 x the head box diagonal, MPII's "
    "head boxes), pooled over the joints other than pelvis and thorax; in [0, 1], higher is better"
)
BOX_TEXT = (
    "MPII's center and scale of each person (the annotation file's, no detector): a square of side "
    "scale x 200 px around center moved down by 15 x scale px (MMPose)"
)
CROP_TEXT = (
    "square of side scale x 200 px around MPII's center moved down by 15 x scale px (MMPose), x 1.25 "
    "(padding), widened or heightened to the model input's aspect ratio; affine warp (bilinear, black "
    "outside the image); keypoints mapped back with the inverse map"
)
MISSES_TEXT = "a joint predicted as NaN is a miss and counts as wrong; ground truth never moves with it"
RPC_DEFINITION = "rPC = mPC / PCKh_clean: the share of clean PCKh@0.5 kept, 1 = unaffected"
MRR_DEFINITION = (
    "mRR (PoseBench) = mean over corruptions of (sum_s P_cs) / (Ns * P_clean) with P = PCKh@0.5; "
    "every corruption at the same severities; equals rPC then"
)
_SIZE_FROM = {
    "argument": "given",
    "predictor": "declared by the predictor",
    "default": "the predictor declares none: MMPose's MPII default",
}


def mpii_crop_box(
    center: Sequence[float], scale: float, input_size: tuple[int, int] = DEFAULT_INPUT_SIZE
) -> tuple[np.ndarray, np.ndarray]:
    """Return the centre and ``(w, h)`` of the region a person's crop shows (MMPose's MPII convention).

    Examples
    --------
    >>> c, s = mpii_crop_box((50.0, 60.0), 2.0, (192, 256))  # 400 px x 1.25 = 500 wide, 3:4 tall
    >>> c.tolist(), s.tolist()
    ([50.0, 90.0], [500.0, 666.6666666666666])
    """
    side = float(scale) * PIXEL_STD
    cx, cy = float(center[0]), float(center[1]) + CENTER_SHIFT * float(scale)
    return box_center_size([cx - side / 2, cy - side / 2, side, side], input_size, BOX_PADDING)


@dataclass(eq=False)
class MpiiRow:
    """One row (``standard`` or a configuration): PCKh@0.5, the PCKh curve, the predictions.

    Attributes
    ----------
    name, family : str
        The row and its corruption family.
    pckh : PCKh
        At 0.5 head sizes.
    curve : PCKhCurve
        At 0, 0.01, ..., 0.5.
    people : int
        People cropped and predicted.
    predictions : numpy.ndarray
        ``people x 16 x 2`` in image pixels, ``mpii16`` order (NaN: not found).
    person_index : tuple of int
        Each predicted person's index in the annotation file (MMPose's MPII JSON order).
    scores : numpy.ndarray or None
        ``people x 16`` the predictor's joint scores, ``mpii16`` order (NaN where it gave none).
    moved : dict
        Person index -> ``16 x 2`` ground truth where the corruption moved the image content.
    """

    name: str
    family: str
    pckh: PCKh
    curve: PCKhCurve
    people: int
    predictions: np.ndarray
    person_index: tuple[int, ...] = ()
    scores: np.ndarray | None = None
    moved: dict[int, np.ndarray] = field(default_factory=dict)

    @property
    def people_missed(self) -> int:
        """People for whom every joint is NaN (the predictor found no one)."""
        p = np.asarray(self.predictions, np.float64)
        return int((~np.isfinite(p).all(axis=-1)).all(axis=-1).sum()) if p.size else 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: PCKh@0.5 (``mean``, per joint, counts), the curve's AUC and values."""
        challenge, param = row_label(self.name)
        reason = self.pckh.reason
        if math.isnan(self.curve.auc) and not reason:
            reason = self.curve.reason
        return {
            "name": self.name,
            "family": self.family,
            "challenge": challenge,
            "config": param,
            "people": self.people,
            "people_missed": self.people_missed,
            "joints_missed": self.pckh.n_missed,
            "pckh": self.pckh.mean,
            "pckh_auc": self.curve.auc,
            "pckh_detail": self.pckh.as_dict(),
            "curve": {"thresholds": self.curve.thresholds.tolist(), "mean": self.curve.mean.tolist()},
            "reason": reason,
        }


@dataclass(eq=False)
class MpiiResult:
    """Everything :func:`evaluate_mpii` measured: rows, protocol, source, settings, timing."""

    rows: dict[str, MpiiRow]
    protocol: dict[str, Any]
    source: dict[str, Any]
    settings: dict[str, Any]
    timing: dict[str, Any]


def _schemas(predict: Callable[..., Any]) -> tuple[KeypointSchema, KeypointSchema]:
    target = get_schema("mpii16")
    declared = getattr(predict, "schema", None)
    source = target if declared is None else get_schema(declared)
    try:
        remap(np.zeros((1, len(source), 2)), source, target)
    except ValueError as exc:
        raise ValueError(f"predict declares schema {source.name!r}, not scorable as mpii16: {exc}") from exc
    return source, target


@dataclass
class _Batch:
    crops: list[np.ndarray]
    frames: list[tuple[np.ndarray, np.ndarray]]
    names: list[str]


def _predict(
    predict: Callable[..., Any],
    batch: _Batch,
    schemas: tuple[KeypointSchema, KeypointSchema],
    size: Any,
    row: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Run ``predict`` on a batch; return image-pixel keypoints ``N x 16 x 2`` and scores ``N x 16``."""
    try:
        answer = predict(batch.crops)
    except Exception as exc:
        raise PredictError(row, list(dict.fromkeys(batch.names)), exc) from exc
    coords, scores = split_output(answer)
    source, target = schemas
    n, k = len(batch.crops), len(source)
    if coords.shape != (n, k, 2):
        raise ValueError(
            f"predict returned keypoints of shape {coords.shape} for {n} crops; expected ({n}, {k}, 2) "
            f"(crop pixels, schema {source.name!r})"
        )
    if np.isinf(coords).any():
        raise ValueError(f"predict returned infinite keypoints (row {row}); return NaN for a joint not found")
    sc = np.full((n, k), np.nan) if scores is None else np.asarray(scores, np.float64)
    if source.joints != target.joints:
        coords = np.asarray(remap(coords, source, target), np.float64)
        sc = np.asarray(remap(sc, source, target, axis=-1), np.float64)
    out = np.stack([crop_to_image(c, *frame, size) for c, frame in zip(coords, batch.frames, strict=True)])
    return out, sc


@dataclass
class _RowData:
    """A row's people (annotation indices), predictions, scores, ground truth and annotated flags."""

    people: list[int]
    pred: np.ndarray
    scores: np.ndarray
    gt: np.ndarray
    visible: np.ndarray


def _run_row(
    predict: Callable[..., Any],
    source: StreamSource,
    group: int,
    schemas: tuple[KeypointSchema, KeypointSchema],
    size: tuple[int, int],
    batch_size: int,
) -> _RowData:
    """Crop and predict every person of a row."""
    name, count = source.groups[group]
    people, gts, vis, preds, scores = [], [], [], [], []
    batch = _Batch([], [], [])
    for i in range(count):
        _, ann, _ = source._entries[group][i]  # the person (same package)
        sample = source.base[ann]
        item = source.item(group, i)
        center, box = mpii_crop_box(sample.meta["center"], sample.meta["scale"], size)
        batch.crops.append(crop_instance(np.asarray(item["image"]), center, box, size))
        batch.frames.append((center, box))
        batch.names.append(str(sample.meta["image_id"]))
        people.append(ann)
        gts.append(np.asarray(item["keypoints"], np.float64))
        vis.append(np.asarray(sample.visibility, bool))
        if len(batch.crops) >= batch_size or i == count - 1:
            p, s = _predict(predict, batch, schemas, size, name)
            preds.append(p)
            scores.append(s)
            batch = _Batch([], [], [])
    k = len(schemas[1])
    if not people:
        return _RowData(
            [], np.zeros((0, k, 2)), np.zeros((0, k)), np.zeros((0, k, 2)), np.zeros((0, k), bool)
        )
    return _RowData(people, np.concatenate(preds), np.concatenate(scores), np.stack(gts), np.stack(vis))


def _head_sizes(people: MpiiPeople, head_boxes: str | os.PathLike[str]) -> tuple[np.ndarray, str]:
    """Return each person's head size (0.6 x its head box diagonal, matched by joints) and the layout."""
    heads = load_mpii_head_boxes(head_boxes)
    joints = np.stack([s.keypoints for s in people]) if len(people) else np.zeros((0, 16, 2))
    visible = np.stack([s.visibility for s in people]) if len(people) else np.zeros((0, 16), bool)
    names = [str(s.meta["image_id"]) for s in people]
    return head_sizes_from_boxes(heads.boxes_for(joints, visible, names)), heads.layout


def _score_row(name: str, data: _RowData, sizes: np.ndarray, moved: dict[int, np.ndarray]) -> MpiiRow:
    """PCKh@0.5 and the PCKh curve of a row's predictions (the run and :func:`recompute_mpii` share it)."""
    hs = sizes[data.people] if data.people else np.zeros(0)
    return MpiiRow(
        name,
        _family(name),
        pckh(data.pred, data.gt, data.visible, hs, 0.5, schema="mpii16"),
        pckh_curve(data.pred, data.gt, data.visible, hs, MPII_THRESHOLDS, schema="mpii16"),
        len(data.people),
        data.pred,
        tuple(data.people),
        data.scores,
        moved,
    )


def _moved(people: MpiiPeople, data: _RowData) -> dict[int, np.ndarray]:
    """Return the ground truth of the people whose joints the corruption moved (others: the file's)."""
    out = {}
    for ann, gt in zip(data.people, data.gt, strict=True):
        if not np.array_equal(gt, people[ann].keypoints, equal_nan=True):
            out[ann] = gt
    return out


def _sha256(path: str | os.PathLike[str]) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def evaluate_mpii(
    predict: Callable[..., Any],
    dataset: MpiiPeople | str | os.PathLike[str],
    head_boxes: str | os.PathLike[str],
    configs: Sequence[str] = CONFIGS,
    fraction: float = 1.0,
    seed: int = 0,
    batch_size: int = 16,
    *,
    images: str | os.PathLike[str] | None = None,
    input_size: tuple[int, int] | None = None,
    standard: bool = True,
    corrupt_on: str | None = None,
) -> MpiiResult:
    """Evaluate a top-down predictor on MPII with PCKh@0.5 and the PCKh curve, clean and per configuration.

    Parameters
    ----------
    predict : callable
        ``predict(crops) -> (keypoints, scores)`` as for the COCO protocol; it may declare
        ``schema`` (answers are reordered by joint name to ``mpii16``) and ``input_size``.
    dataset : MpiiPeople or path
        MMPose's MPII JSON.
    head_boxes : path
        MPII's annotation file with the head boxes (``mpii_human_pose_v1_u12_1.mat`` or MMPose's
        ``mpii_gt_val.mat``).
    configs, fraction, seed, batch_size, standard, corrupt_on
        As :func:`~keypoint_corrupt.benchmark.topdown.evaluate_topdown`.
    images : path, optional
        The image folder of a ``dataset`` path (default: the JSON's folder).
    input_size : (int, int), optional
        The model input ``(width, height)``, two positive integers; default the predictor's
        ``input_size``, else 256 x 256 (checked as the COCO protocol checks it).

    Returns
    -------
    MpiiResult

    Raises
    ------
    FileNotFoundError, ValueError
        A missing file, a person without a head box, a wrong answer of ``predict``.
    PredictError
        ``predict`` raised.

    Examples
    --------
    >>> evaluate_mpii(lambda crops: None, "no/such/mpii.json", "h.mat", input_size=(256, 0))
    Traceback (most recent call last):
    ...
    ValueError: input_size must be two positive integers (width, height), got (256, 0)
    """
    if not callable(predict):
        raise TypeError(f"predict must be callable, got {type(predict).__name__}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    for name in configs:
        get_config(name)
    size, size_from = resolve_input_size(input_size, predict, default=DEFAULT_INPUT_SIZE)
    people = dataset if isinstance(dataset, MpiiPeople) else MpiiPeople(dataset, images)
    schemas = _schemas(predict)
    sizes, layout = _head_sizes(people, head_boxes)
    source = StreamSource(people, configs, fraction, seed, standard=standard, whole_images=True)
    if corrupt_on is not None:
        source.corruptor = device_corruptor(corrupt_on, source)
    if not source.groups:
        raise ValueError("nothing to evaluate: no configuration and standard=False")
    started = time.perf_counter()
    rows: dict[str, MpiiRow] = {}
    for group, (name, _) in enumerate(source.groups):
        data = _run_row(predict, source, group, schemas, size, batch_size)
        rows[name] = _score_row(name, data, sizes, _moved(people, data))
    seconds = time.perf_counter() - started
    protocol = {
        "name": "mpii",
        "metric": PCKH_DEFINITION,
        "primary_metric": "pckh",
        "thresholds": MPII_THRESHOLDS.tolist(),
        "boxes": {"source": "mpii_center_scale", "definition": BOX_TEXT},
        "crop": CROP_TEXT,
        "padding": BOX_PADDING,
        "input_size": list(size),
        "input_size_from": size_from,
        "misses": MISSES_TEXT,
        "schema": {
            "dataset": "mpii16",
            "predict": schemas[0].name,
            "reordered": schemas[0].joints != schemas[1].joints,
        },
        # absolute, so that recompute_mpii works from any folder
        "head_boxes": {
            "file": str(Path(head_boxes).resolve()),
            "layout": layout,
            "sha256": _sha256(head_boxes),
        },
        "annotation_file": str(Path(people.annotation_file).resolve()),
        "annotation_sha256": _sha256(people.annotation_file),
        "people": len(people),
    }
    settings = {
        "batch_size": batch_size,
        "predictor": {"name": getattr(predict, "__name__", type(predict).__name__)},
        "corrupt_on": corrupt_on,
    }
    timing = {"seconds": seconds, "people": sum(r.people for r in rows.values())}
    return MpiiResult(rows, protocol, source.describe(), settings, timing)


def _family(name: str) -> str:
    return STANDARD if name == STANDARD else get_config(name).family


class _Figures:
    """A row's PCKh@0.5 as :func:`~keypoint_corrupt.benchmark.suite_report.metric_block` reads it."""

    def __init__(self, row: MpiiRow) -> None:
        self.pckh = float(row.pckh.mean)
        self._reason = row.pckh.reason

    def reason(self, metric: str) -> str:
        """Why the row's PCKh is NaN (``""`` when defined)."""
        return self._reason if math.isnan(self.pckh) else ""


def _suite_section(suite: Suite | str, rows: Mapping[str, MpiiRow], severities: Sequence[int] | None) -> Any:
    cells = suite_cells(suite, severities)
    missing = [cfg for row in cells["table"].values() for cfg in row.values() if cfg not in rows]
    if STANDARD not in rows or missing:
        raise ValueError(
            f"a suite report needs the clean row and every cell; missing {missing or [STANDARD]}"
        )
    by_cell = {c: {sv: _Figures(rows[cfg]) for sv, cfg in row.items()} for c, row in cells["table"].items()}
    block = metric_block(
        "pckh", _Figures(rows[STANDARD]), by_cell, cells["severities"], higher_is_better=True
    )
    try:
        block["mRR"] = mean_relative_robustness(
            block["clean"], {c: r for c, r in block["cells"].items() if r}
        )
    except ValueError as exc:
        block["mRR"] = math.nan
        block["reasons"]["mRR"] = str(exc)
    definitions = {
        "pckh": PCKH_DEFINITION,
        "mPC": MPC_DEFINITION,
        "rPC": RPC_DEFINITION,
        "mRR": MRR_DEFINITION,
    }
    return {**cells, "primary_metric": "pckh", "definitions": definitions, "metrics": {"pckh": block}}


def _summary(rows: Mapping[str, Any]) -> dict[str, Any]:
    """Return mPC (the plain mean of PCKh@0.5 over the configurations) and rPC, without a suite."""
    corrupted = {n: float(r.pckh.mean) for n, r in rows.items() if n != STANDARD}
    clean = float(rows[STANDARD].pckh.mean) if STANDARD in rows else math.nan
    return plain_summary("pckh", "PCKh@0.5", clean, corrupted)


def build_mpii_report(
    result: MpiiResult,
    *,
    label: str = "model",
    command: str | None = None,
    suite: Suite | str | None = None,
    severities: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Build ``report.json`` of an MPII-protocol benchmark (NaN written as ``null`` with its reason).

    Top level: ``format``, ``protocol`` (``"mpii"``), ``mpii`` (the protocol statement: boxes,
    crop, model input, misses, metric, head-box file, annotation file), ``rows`` (per row: counts,
    PCKh@0.5, per joint, the curve and its AUC, ``reason``), ``summary`` (plain mPC / rPC over the
    configurations), ``suite`` (or ``None``), ``source``, ``settings``, ``timing``.
    """
    doc = {
        **report_header(label, command, "mpii"),
        "mpii": dict(result.protocol),
        "rows": [row.to_dict() for row in result.rows.values()],
        "summary": _summary(result.rows),
        "suite": _suite_section(suite, result.rows, severities) if suite is not None else None,
        "source": dict(result.source),
        "settings": dict(result.settings),
        "timing": dict(result.timing),
    }
    safe: dict[str, Any] = json_safe(doc)
    return safe


# --------------------------------------------------------------------------------------------
# report.md and report.csv


def _protocol_lines(doc: Mapping[str, Any]) -> list[str]:
    p = doc["mpii"]
    size = p["input_size"]
    schema = p["schema"]
    order = "reordered by joint name" if schema.get("reordered") else "same joint order"
    heads = p["head_boxes"]
    sec = doc.get("suite")
    src = doc.get("source") or {}
    if sec:
        suite = f"`{sec['name']}`, severities {', '.join(map(str, sec['severities']))}"
    else:
        suite = f"none ({max(len(doc['rows']) - 1, 0)} configurations besides the clean row)"
    return [
        "- protocol: MPII, top-down (one crop per person, `predict(crops)`)",
        f"- suite: {suite}; fraction {src.get('fraction')}, seed {src.get('seed')}",
        f"- boxes: {p['boxes']['definition']}",
        f"- crop: {p['crop']}; model input {size[0]} x {size[1]} (w x h, "
        f"{_SIZE_FROM.get(p.get('input_size_from', ''), '?')})",
        f"- misses: {p['misses']}",
        f"- metric: {p['metric']}",
        f"- head boxes: `{heads['file']}` ({heads['layout']}), each matched to its person by the joints",
        f"- joints: dataset `{schema['dataset']}`, predictor `{schema['predict']}` ({order})",
        f"- people: {p['people']} of `{p['annotation_file']}`",
    ]


def _suite_lines(sec: Mapping[str, Any], label: str) -> list[str]:
    d = sec["definitions"]
    block = sec["metrics"]["pckh"]
    why = block.get("reasons") or {}
    lines = [f"## Suite `{sec['name']}`: PCKh@0.5 by corruption and severity", ""]
    if sec.get("description"):
        lines.append(f"- suite: `{sec['name']}` ({sec['description']})")
    lines.append(f"- protocol of the suite: {sec.get('protocol') or '(none stated by the suite)'}")
    lines += [f"- P: {d['pckh']}", f"- {d['mPC']}", f"- {d['rPC']}", f"- {d['mRR']}"]
    if sec["left_out"]:
        lines.append(f"- no cell at these severities, left out: {', '.join(sec['left_out'])}")
    lines += ["", f"### {label}: PCKh@0.5 (P)", ""]
    lines += metric_table_lines(sec, "pckh")
    lines += [f"mRR {fmt_figure(block.get('mRR'), why.get('mRR'))} (x 100 for PoseBench's percent).", ""]
    return lines


def _joint_names(doc: Mapping[str, Any]) -> list[str]:
    return list(get_schema(doc["mpii"]["schema"]["dataset"]).joints)


def _rows_lines(doc: Mapping[str, Any]) -> list[str]:
    lines = [
        "| row | people | people not found | joints missed | PCKh@0.5 | AUC (0-0.5) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in doc["rows"]:
        lines.append(
            f"| {r['name']} | {r['people']} | {r['people_missed']} | {r['joints_missed']} | "
            f"{fmt_figure(r['pckh'])} | {fmt_figure(r['pckh_auc'])} |"
        )
    joints = _joint_names(doc)
    lines += ["", "PCKh@0.5 per joint (`-`: never annotated in the row):", ""]
    lines += ["| row | " + " | ".join(joints) + " |", "| --- | " + " | ".join("---:" for _ in joints) + " |"]
    for r in doc["rows"]:
        lines.append(
            f"| {r['name']} | " + " | ".join(fmt_figure(v) for v in r["pckh_detail"]["per_joint"]) + " |"
        )
    return [*lines, ""]


def render_mpii_markdown(doc: Mapping[str, Any]) -> str:
    """Render ``report.md`` of an MPII-protocol report from its JSON document."""
    title = f"# Robustness benchmark, MPII protocol: {doc['label']}"
    sec = doc.get("suite")
    if sec:
        title += f", suite {sec['name']}"
    lines = [title, "", *_protocol_lines(doc)]
    if doc.get("command"):
        lines.append(f"- command: `{doc['command']}`")
    lines.append("")
    if sec:
        lines += _suite_lines(sec, doc["label"])
    lines += ["## PCKh per row", "", *_rows_lines(doc)]
    s = doc["summary"]
    why = s.get("reasons") or {}
    lines += [
        "## mPC / rPC over the configurations",
        "",
        f"{s['definition']}: clean {fmt_figure(s['clean'])}, mPC {fmt_figure(s['mPC'], why.get('mPC'))}, "
        f"rPC {fmt_figure(s['rPC'], why.get('rPC'))}"
        + (f"; left out (no PCKh): {', '.join(s['excluded'])}" if s["excluded"] else ""),
        "",
    ]
    notes = [f"- {r['name']}: {r['reason']}" for r in doc["rows"] if r.get("reason")]
    if notes:
        lines += ["Figures that do not exist (`-`):", "", *notes, ""]
    t = doc["timing"]
    lines += ["## Timing", "", f"{t['people']} people in {t['seconds']:.1f} s", ""]
    return "\n".join(lines)


def write_mpii_csv(doc: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write ``report.csv``: one line per row (suite cell, counts, PCKh@0.5 and per joint by name, notes)."""
    out = Path(path)
    where = suite_positions(doc.get("suite"))
    joints = _joint_names(doc)
    head = ["row", "challenge", "config", "suite_corruption", "suite_severity", "people", "people_missed"]
    head += ["joints_missed", "n_visible", "n_correct", "pckh", "pckh_auc", *(f"pckh_{j}" for j in joints)]
    head += ["notes"]
    with out.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(head)
        for r in doc["rows"]:
            cell = ("clean", "clean") if r["name"] == STANDARD and where else where.get(r["name"], ("", ""))
            d = r["pckh_detail"]
            values = [
                "" if v is None else repr(float(v)) for v in (r["pckh"], r["pckh_auc"], *d["per_joint"])
            ]
            counts = [r["people"], r["people_missed"], r["joints_missed"], d["n_visible"], d["n_correct"]]
            writer.writerow(
                [r["name"], r["challenge"], r["config"], *cell, *counts, *values, r.get("reason") or ""]
            )
    return out


# --------------------------------------------------------------------------------------------
# The predictions file, and recomputing from it.


def _array(value: np.ndarray) -> list[Any]:
    out: list[Any] = json_safe(np.asarray(value, np.float64).tolist())
    return out


def _predictions_document(result: MpiiResult) -> dict[str, Any]:
    p = result.protocol
    rows = {}
    for name, row in result.rows.items():
        scores = row.scores if row.scores is not None else np.full(row.predictions.shape[:2], np.nan)
        rows[name] = {
            "people": [int(i) for i in row.person_index],
            "keypoints": _array(row.predictions),
            "scores": _array(scores),
            "moved": [[int(ann), _array(kp)] for ann, kp in sorted(row.moved.items())],
        }
    return {
        "format": MPII_PREDICTIONS_FORMAT,
        "format_version": 1,
        "schema": "mpii16",
        "joints": _joint_names({"mpii": p}),
        "annotation_file": p.get("annotation_file"),
        "annotation_sha256": p.get("annotation_sha256"),
        "head_boxes": p["head_boxes"].get("file"),
        "head_boxes_sha256": p["head_boxes"].get("sha256"),
        "rows": rows,
    }


def write_mpii_report(
    result: MpiiResult,
    out_dir: str | os.PathLike[str],
    *,
    label: str = "model",
    command: str | None = None,
    suite: Suite | str | None = None,
    severities: Sequence[int] | None = None,
) -> dict[str, Path]:
    """Write ``report.json``, ``report.md``, ``report.csv`` and ``mpii_predictions.json.gz`` in ``out_dir``.

    Files of an earlier report there are replaced; any other file of those names is not
    (:func:`~keypoint_corrupt.benchmark.report.check_output_dir`). The predictions file holds no
    time stamp (gzip ``mtime`` 0): the same predictions give the same bytes on every run.

    Returns
    -------
    dict
        File kind -> path (``json``, ``md``, ``csv``, ``predictions``).

    Examples
    --------
    >>> import pathlib, tempfile, cv2
    >>> from scipy.io import savemat
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = cv2.imwrite(str(d / "a.png"), np.zeros((300, 200, 3), np.uint8))
    >>> joints = [[100.0, 40.0 + 12 * j] for j in range(16)]
    >>> _ = (d / "mpii.json").write_text(json.dumps([{"image": "a.png", "joints": joints,
    ...     "joints_vis": [1] * 16, "center": [100.0, 130.0], "scale": 1.2}]))
    >>> savemat(d / "heads.mat", {"headboxes_src": np.array([[[80.0], [20.0]], [[120.0], [50.0]]]),
    ...     "pos_gt_src": np.array(joints)[:, :, None], "jnt_missing": np.zeros((16, 1))})
    >>> def centre(crops):  # every joint at the crop's centre: (100, 148) in the image
    ...     return np.full((len(crops), 16, 2), 128.0), np.ones((len(crops), 16))
    >>> res = evaluate_mpii(centre, d / "mpii.json", d / "heads.mat", configs=())
    >>> sorted(write_mpii_report(res, d / "report"))
    ['csv', 'json', 'md', 'predictions']
    >>> recompute_mpii(d / "report")["standard"]["pckh"] == 3 / 14  # head size 30: 3 joints within 15 px
    True
    """
    out = check_output_dir(out_dir, MPII_REPORT_FILES, REPORT_FORMAT)
    doc = build_mpii_report(result, label=label, command=command, suite=suite, severities=severities)
    out.mkdir(parents=True, exist_ok=True)
    files = {"json": out / "report.json", "md": out / "report.md"}
    files["json"].write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    files["md"].write_text(render_mpii_markdown(doc), encoding="utf-8")
    files["csv"] = write_mpii_csv(doc, out / "report.csv")
    files["predictions"] = out / MPII_PREDICTIONS_FILE
    payload = json.dumps(_predictions_document(result)).encode("utf-8")
    files["predictions"].write_bytes(gzip.compress(payload, mtime=0))
    return files


def _nan_array(value: Any, shape: tuple[int, ...]) -> np.ndarray:
    def conv(v: Any) -> Any:
        return [conv(x) for x in v] if isinstance(v, list) else (math.nan if v is None else v)

    return np.asarray(conv(value), np.float64).reshape(shape)


def _check_same(path: str | os.PathLike[str], recorded: str | None, what: str) -> None:
    if not Path(path).is_file():
        raise FileNotFoundError(f"{what} not found: {str(path)!r} (pass {what}= to recompute_mpii)")
    if recorded and _sha256(path) != recorded:
        raise ValueError(
            f"{what} {str(path)!r} is not the file the run used (sha256 {recorded[:12]}..., now "
            f"{_sha256(path)[:12]}...)"
        )


def recompute_mpii(
    path: str | os.PathLike[str],
    data: str | os.PathLike[str] | None = None,
    head_boxes: str | os.PathLike[str] | None = None,
) -> dict[str, dict[str, Any]]:
    """Rebuild every row's PCKh figures from a report's ``mpii_predictions.json.gz``, without the model.

    Parameters
    ----------
    path : path
        The report folder (or its ``mpii_predictions.json.gz``).
    data : path, optional
        MMPose's MPII JSON; default the one the predictions file records.
    head_boxes : path, optional
        MPII's head-box ``.mat``; default the one the predictions file records.

    Returns
    -------
    dict
        Row name -> the row of ``report.json`` (:meth:`MpiiRow.to_dict`, NaN as ``None``): equal
        to the report's rows.

    Raises
    ------
    ValueError
        Not a predictions file of this protocol, or ``data`` / ``head_boxes`` differ (SHA-256)
        from the files the run used.

    Examples
    --------
    >>> recompute_mpii("no/such/report")
    Traceback (most recent call last):
    ...
    FileNotFoundError: no mpii_predictions.json.gz at 'no/such/report/mpii_predictions.json.gz'
    """
    file = Path(path)
    if file.is_dir() or not file.suffix:
        file = file / MPII_PREDICTIONS_FILE
    if not file.is_file():
        raise FileNotFoundError(f"no {MPII_PREDICTIONS_FILE} at {str(file)!r}")
    with gzip.open(file, "rt", encoding="utf-8") as f:
        doc = json.load(f)
    if not isinstance(doc, dict) or doc.get("format") != MPII_PREDICTIONS_FORMAT:
        raise ValueError(f"{file} is not an MPII predictions file (format {MPII_PREDICTIONS_FORMAT!r})")
    data_file = data if data is not None else doc["annotation_file"]
    heads_file = head_boxes if head_boxes is not None else doc["head_boxes"]
    _check_same(data_file, doc.get("annotation_sha256"), "data")
    _check_same(heads_file, doc.get("head_boxes_sha256"), "head_boxes")
    people = MpiiPeople(data_file)
    sizes, _ = _head_sizes(people, heads_file)
    k = len(get_schema(doc["schema"]))
    out = {}
    for name, row in doc["rows"].items():
        idx = [int(i) for i in row["people"]]
        moved = {int(ann): _nan_array(kp, (k, 2)) for ann, kp in row["moved"]}
        gt = [moved.get(i, people[i].keypoints) for i in idx]
        data_ = _RowData(
            idx,
            _nan_array(row["keypoints"], (len(idx), k, 2)),
            _nan_array(row["scores"], (len(idx), k)),
            np.stack(gt) if idx else np.zeros((0, k, 2)),
            np.stack([people[i].visibility for i in idx]) if idx else np.zeros((0, k), bool),
        )
        out[name] = json_safe(_score_row(name, data_, sizes, moved).to_dict())
    return out
