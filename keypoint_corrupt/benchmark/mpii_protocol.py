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
  input is the predictor's ``input_size``, else :data:`DEFAULT_INPUT_SIZE` (256 x 256, MMPose's MPII
  default). Coordinates stay the file's (MMPose's 1-based shift is not applied).
* **Ground truth.** The file's ``joints`` and ``joints_vis`` (where a corruption moves the image
  content, the moved joints); head sizes are the clean annotation's.
* **Misses.** A joint not found (NaN) is wrong (:func:`~keypoint_corrupt.body_metrics.pckh`).
* **Mean.** MPII's total: PCKh pooled over the 14 joints other than pelvis and thorax.

With a suite, ``P`` = PCKh@0.5 for mPC, rPC and mRR (the suite machinery of the COCO protocol).

Examples
--------
>>> mpii_crop_box((100.0, 200.0), 1.0, (256, 256))[0].tolist()  # centre moved down 15 px
[100.0, 215.0]
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from keypoint_corrupt._version import __version__
from keypoint_corrupt.benchmark.evaluate import PredictError, split_output
from keypoint_corrupt.benchmark.report import REPORT_FORMAT, check_output_dir, json_safe
from keypoint_corrupt.benchmark.sources import STANDARD, StreamSource
from keypoint_corrupt.benchmark.suite_report import (
    MPC_DEFINITION,
    metric_block,
    metric_table_lines,
    suite_cells,
)
from keypoint_corrupt.benchmark.topdown import BOX_PADDING, box_center_size, crop_instance, crop_to_image
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
    "MPII_REPORT_FILES",
    "MpiiResult",
    "MpiiRow",
    "build_mpii_report",
    "evaluate_mpii",
    "mpii_crop_box",
    "write_mpii_report",
]

#: Model input (width, height) when the predictor declares none: MMPose's MPII top-down default.
DEFAULT_INPUT_SIZE: tuple[int, int] = (256, 256)
#: MPII's ``scale`` is the person's size in units of 200 px.
PIXEL_STD = 200.0
#: MMPose moves MPII's centre down by this many ``scale`` units of pixels.
CENTER_SHIFT = 15.0
#: What :func:`write_mpii_report` writes, its JSON document first.
MPII_REPORT_FILES = ("report.json", "report.md")

PCKH_DEFINITION = (
    "PCKh@0.5: the share of annotated joints within 0.5 head sizes (0.6 x the head box diagonal, MPII's "
    "head boxes), pooled over the joints other than pelvis and thorax; in [0, 1], higher is better"
)
CROP_TEXT = (
    "square of side scale x 200 px around MPII's center moved down by 15 x scale px (MMPose), x 1.25 "
    "(padding), widened or heightened to the model input's aspect ratio; affine warp (bilinear, black "
    "outside the image); keypoints mapped back with the inverse map"
)


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
    """

    name: str
    family: str
    pckh: PCKh
    curve: PCKhCurve
    people: int
    predictions: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: PCKh@0.5 (``mean``, per joint, counts), the curve's AUC and values."""
        return {
            "name": self.name,
            "family": self.family,
            "people": self.people,
            "pckh": self.pckh.mean,
            "pckh_auc": self.curve.auc,
            "pckh_detail": self.pckh.as_dict(),
            "curve": {"thresholds": self.curve.thresholds.tolist(), "mean": self.curve.mean.tolist()},
            "reason": self.pckh.reason,
        }


@dataclass(eq=False)
class MpiiResult:
    """Everything :func:`evaluate_mpii` measured: rows, protocol, source, settings, timing."""

    rows: dict[str, MpiiRow]
    protocol: dict[str, Any]
    source: dict[str, Any]
    settings: dict[str, Any]
    timing: dict[str, Any]


def _input_size(predict: Callable[..., Any], input_size: tuple[int, int] | None) -> tuple[int, int]:
    value = input_size if input_size is not None else getattr(predict, "input_size", None)
    if value is None:
        return DEFAULT_INPUT_SIZE
    try:
        w, h = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"input_size must be (width, height), got {value!r}") from None
    if w < 1 or h < 1:
        raise ValueError(f"input_size must be two positive integers, got {value!r}")
    return w, h


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
) -> np.ndarray:
    """Run ``predict`` on a batch; return ``N x 16 x 2`` image-pixel keypoints in ``mpii16`` order."""
    try:
        answer = predict(batch.crops)
    except Exception as exc:
        raise PredictError(row, list(dict.fromkeys(batch.names)), exc) from exc
    coords, _ = split_output(answer)
    source, target = schemas
    n, k = len(batch.crops), len(source)
    if coords.shape != (n, k, 2):
        raise ValueError(
            f"predict returned keypoints of shape {coords.shape} for {n} crops; expected ({n}, {k}, 2) "
            f"(crop pixels, schema {source.name!r})"
        )
    if np.isinf(coords).any():
        raise ValueError(f"predict returned infinite keypoints (row {row}); return NaN for a joint not found")
    if source.joints != target.joints:
        coords = np.asarray(remap(coords, source, target), np.float64)
    out = np.stack([crop_to_image(c, *frame, size) for c, frame in zip(coords, batch.frames, strict=True)])
    return out


def _run_row(
    predict: Callable[..., Any],
    source: StreamSource,
    group: int,
    schemas: tuple[KeypointSchema, KeypointSchema],
    size: tuple[int, int],
    batch_size: int,
) -> tuple[list[int], np.ndarray, np.ndarray, np.ndarray]:
    """Crop and predict every person of a row: (person indices, predictions, ground truth, visible)."""
    name, count = source.groups[group]
    people, gts, vis, preds = [], [], [], []
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
            preds.append(_predict(predict, batch, schemas, size, name))
            batch = _Batch([], [], [])
    k = len(schemas[1])
    if not people:
        return [], np.zeros((0, k, 2)), np.zeros((0, k, 2)), np.zeros((0, k), bool)
    return people, np.concatenate(preds), np.stack(gts), np.stack(vis)


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
    configs, fraction, seed, batch_size, standard
        As :func:`~keypoint_corrupt.benchmark.topdown.evaluate_topdown`.
    images : path, optional
        The image folder of a ``dataset`` path (default: the JSON's folder).
    input_size : (int, int), optional
        The model input; default the predictor's, else 256 x 256.

    Returns
    -------
    MpiiResult

    Raises
    ------
    FileNotFoundError, ValueError
        A missing file, a person without a head box, a wrong answer of ``predict``.
    PredictError
        ``predict`` raised.
    """
    if not callable(predict):
        raise TypeError(f"predict must be callable, got {type(predict).__name__}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    for name in configs:
        get_config(name)
    people = dataset if isinstance(dataset, MpiiPeople) else MpiiPeople(dataset, images)
    schemas = _schemas(predict)
    size = _input_size(predict, input_size)
    heads = load_mpii_head_boxes(head_boxes)
    joints = np.stack([s.keypoints for s in people]) if len(people) else np.zeros((0, 16, 2))
    visible = np.stack([s.visibility for s in people]) if len(people) else np.zeros((0, 16), bool)
    names = [str(s.meta["image_id"]) for s in people]
    sizes = head_sizes_from_boxes(heads.boxes_for(joints, visible, names))
    source = StreamSource(people, configs, fraction, seed, standard=standard, whole_images=True)
    if not source.groups:
        raise ValueError("nothing to evaluate: no configuration and standard=False")
    started = time.perf_counter()
    rows: dict[str, MpiiRow] = {}
    for group, (name, _) in enumerate(source.groups):
        idx, pred, gt, vis = _run_row(predict, source, group, schemas, size, batch_size)
        hs = sizes[idx] if idx else np.zeros(0)
        rows[name] = MpiiRow(
            name,
            _family(name),
            pckh(pred, gt, vis, hs, 0.5, schema="mpii16"),
            pckh_curve(pred, gt, vis, hs, MPII_THRESHOLDS, schema="mpii16"),
            len(idx),
            pred,
        )
    seconds = time.perf_counter() - started
    protocol = {
        "name": "mpii",
        "metric": PCKH_DEFINITION,
        "primary_metric": "pckh",
        "thresholds": MPII_THRESHOLDS.tolist(),
        "crop": CROP_TEXT,
        "padding": BOX_PADDING,
        "input_size": list(size),
        "schema": {"dataset": "mpii16", "predict": schemas[0].name},
        "head_boxes": {"file": str(head_boxes), "layout": heads.layout},
        "annotation_file": str(people.annotation_file),
        "people": len(people),
    }
    settings = {"batch_size": batch_size}
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
    definitions = {"pckh": PCKH_DEFINITION, "mPC": MPC_DEFINITION, "rPC": "rPC = mPC / PCKh_clean"}
    return {**cells, "primary_metric": "pckh", "definitions": definitions, "metrics": {"pckh": block}}


def build_mpii_report(
    result: MpiiResult,
    *,
    label: str = "model",
    command: str | None = None,
    suite: Suite | str | None = None,
    severities: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Build ``report.json`` of an MPII-protocol benchmark (NaN written as ``null`` with its reason)."""
    doc = {
        "format": REPORT_FORMAT,
        "format_version": 1,
        "protocol": "mpii",
        "package_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "label": label,
        "mpii": dict(result.protocol),
        "rows": [row.to_dict() for row in result.rows.values()],
        "suite": _suite_section(suite, result.rows, severities) if suite is not None else None,
        "source": dict(result.source),
        "settings": dict(result.settings),
        "timing": dict(result.timing),
    }
    safe: dict[str, Any] = json_safe(doc)
    return safe


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{float(value):.3f}"


def render_mpii_markdown(doc: Mapping[str, Any]) -> str:
    """Render ``report.md`` of an MPII-protocol report from its JSON document."""
    p = doc["mpii"]
    lines = [
        f"# Robustness benchmark, MPII protocol: {doc['label']}",
        "",
        "- protocol: MPII, top-down (one crop per person, `predict(crops)`)",
        f"- crop: {p['crop']}; model input {p['input_size'][0]} x {p['input_size'][1]}",
        f"- metric: {p['metric']}",
        f"- head boxes: `{p['head_boxes']['file']}` ({p['head_boxes']['layout']})",
        f"- people: {p['people']} of `{p['annotation_file']}`",
        "",
    ]
    sec = doc.get("suite")
    if sec:
        block = sec["metrics"]["pckh"]
        lines += [f"## Suite `{sec['name']}`: PCKh@0.5 by corruption and severity", ""]
        lines += metric_table_lines(sec, "pckh")
        lines += [f"mRR {_fmt(block.get('mRR'))}.", ""]
    lines += [
        "## PCKh per row",
        "",
        "| row | people | PCKh@0.5 | AUC (0-0.5) |",
        "| --- | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {r['name']} | {r['people']} | {_fmt(r['pckh'])} | {_fmt(r['pckh_auc'])} |" for r in doc["rows"]
    ]
    notes = [f"- {r['name']}: {r['reason']}" for r in doc["rows"] if r.get("reason")]
    return "\n".join([*lines, "", *notes, ""])


def write_mpii_report(
    result: MpiiResult,
    out_dir: str | os.PathLike[str],
    *,
    label: str = "model",
    command: str | None = None,
    suite: Suite | str | None = None,
    severities: Sequence[int] | None = None,
) -> dict[str, Path]:
    """Write ``report.json`` and ``report.md`` in ``out_dir``; return kind -> path (``json``, ``md``)."""
    out = check_output_dir(out_dir, MPII_REPORT_FILES, REPORT_FORMAT)
    doc = build_mpii_report(result, label=label, command=command, suite=suite, severities=severities)
    out.mkdir(parents=True, exist_ok=True)
    files = {"json": out / "report.json", "md": out / "report.md"}
    files["json"].write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    files["md"].write_text(render_mpii_markdown(doc), encoding="utf-8")
    return files
