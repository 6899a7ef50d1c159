"""Reports of the COCO protocol: OKS AP per configuration, and per suite cell with mPC, rPC and mRR.

:func:`write_coco_report` writes what :func:`~keypoint_corrupt.benchmark.topdown.evaluate_topdown`
measured: ``report.json`` (the hand protocol's format name, with ``"protocol": "coco"``),
``report.md``, ``report.csv`` and ``coco_results.json.gz`` (every row's COCO results, from which
:func:`recompute_coco` rebuilds every AP with pycocotools). Every report states its protocol: the
box source, crop, model input, rescoring, NMS, misses, metric and OKS sigmas, and with a suite its
name, severities and cells.

With a suite, ``P`` is the COCO keypoint AP (Wang et al. 2021): the corruption x severity table,
**mPC** = ``(1/Nc) sum_c (1/Ns_c) sum_s AP_cs``, **rPC** = ``mPC / AP_clean`` (through
:mod:`~keypoint_corrupt.benchmark.suite_report`, as for the hand protocol) and PoseBench's **mRR**
(:func:`~keypoint_corrupt.body_metrics.mean_relative_robustness`, which needs every corruption at
the same severities).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from keypoint_corrupt.benchmark.report import REPORT_FORMAT, check_output_dir, json_safe, report_header
from keypoint_corrupt.benchmark.sources import STANDARD
from keypoint_corrupt.benchmark.suite_report import (
    MPC_DEFINITION,
    fmt_figure,
    metric_block,
    metric_table_lines,
    plain_summary,
    suite_cells,
    suite_positions,
)
from keypoint_corrupt.benchmark.topdown import TopdownResult, TopdownRow, row_ground_truth
from keypoint_corrupt.body_metrics import coco_keypoint_ap, mean_relative_robustness
from keypoint_corrupt.suites import Suite

__all__ = [
    "COCO_REPORT_FILES",
    "COCO_RESULTS_FILE",
    "COCO_RESULTS_FORMAT",
    "build_coco_report",
    "coco_suite_section",
    "recompute_coco",
    "write_coco_report",
]

#: The COCO results of every row (gzip JSON), from which :func:`recompute_coco` rebuilds the report.
COCO_RESULTS_FILE = "coco_results.json.gz"
COCO_RESULTS_FORMAT = "keypoint-corrupt/coco-results"
#: What :func:`write_coco_report` writes, its JSON document first (``--out`` is checked against them).
COCO_REPORT_FILES = ("report.json", "report.csv", "report.md", COCO_RESULTS_FILE)
#: The figures of a row, in report order.
FIGURES = ("ap", "ap50", "ap75", "ap_m", "ap_l", "ar", "ar50", "ar75", "ar_m", "ar_l")
_TITLE = {
    "ap": "AP",
    "ap50": "AP50",
    "ap75": "AP75",
    "ap_m": "APM",
    "ap_l": "APL",
    "ar": "AR",
    "ar50": "AR50",
    "ar75": "AR75",
    "ar_m": "ARM",
    "ar_l": "ARL",
}
_SHOWN = ("ap", "ap50", "ap75", "ap_m", "ap_l", "ar")

AP_DEFINITION = (
    "COCO keypoint AP: pycocotools' COCOeval(iouType='keypoints') with the dataset's OKS sigmas, AP averaged "
    "over OKS thresholds 0.50:0.05:0.95 (at most 20 results per image); in [0, 1], higher is better"
)
RPC_DEFINITION = "rPC = mPC / AP_clean: the share of clean AP kept, 1 = unaffected"
MRR_DEFINITION = (
    "mRR (PoseBench, as docs/corruptions.md defines it) = mean over corruptions of "
    "(sum_s AP_cs) / (Ns * AP_clean); every corruption at the same severities; equals rPC then"
)


class _Figures:
    """A row's figures as :func:`~keypoint_corrupt.benchmark.suite_report.metric_block` reads them."""

    def __init__(self, row: TopdownRow) -> None:
        self._row = row

    def __getattr__(self, name: str) -> float:
        if name in FIGURES:
            return float(getattr(self._row.metric, name))
        raise AttributeError(name)

    def reason(self, metric: str) -> str:
        """Return why ``metric`` is NaN in this row (``""`` when it is defined)."""
        return str(self._row.metric.reasons.get(metric, ""))


def _digest(values: Sequence[Any]) -> str:
    return hashlib.sha256("\n".join(map(str, values)).encode("utf-8")).hexdigest()


def _data_entry(row: TopdownRow) -> dict[str, Any]:
    return {
        "images": len(row.image_ids),
        "boxes": row.boxes,
        "results": len(row.results),
        "instances": row.metric.n_instances,
        "image_ids_sha256": _digest(row.image_ids),
    }


def coco_suite_section(
    suite: Suite | str | Mapping[str, Any],
    rows: Mapping[str, TopdownRow],
    severities: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Build the ``suite`` section of a COCO-protocol report: AP by corruption and severity, mPC, rPC, mRR.

    Parameters
    ----------
    suite : Suite, str or mapping
        The suite (or its name, or :func:`~keypoint_corrupt.benchmark.suite_report.suite_spec`'s dict).
    rows : mapping
        Row name -> :class:`~keypoint_corrupt.benchmark.topdown.TopdownRow`: ``standard`` and every
        configuration of ``suite.configs(severities)``.
    severities : sequence of int, optional
        The severities benchmarked (default: all of the suite's).

    Returns
    -------
    dict
        :func:`~keypoint_corrupt.benchmark.suite_report.suite_cells`' fields, ``primary_metric``
        (``"ap"``), ``definitions``, ``metrics.ap`` (``clean``, ``cells``, ``by_corruption``,
        ``by_severity``, ``mPC``, ``rPC``, ``mRR``, ``cells_used``, ``excluded``, ``reasons``),
        ``data`` (images, boxes, results and instances of the clean row and of each cell) and
        ``baseline`` (``None``: mCE is not computed for this protocol).

    Raises
    ------
    ValueError
        ``standard`` or a cell's configuration is missing from ``rows``.
    """
    cells = suite_cells(suite, severities)
    if STANDARD not in rows:
        raise ValueError("a suite report needs the clean row 'standard'")
    missing = [cfg for row in cells["table"].values() for cfg in row.values() if cfg not in rows]
    if missing:
        raise ValueError(f"the result has no row for {', '.join(missing)} of suite {cells['name']!r}")
    clean = _Figures(rows[STANDARD])
    by_cell = {c: {sv: _Figures(rows[cfg]) for sv, cfg in row.items()} for c, row in cells["table"].items()}
    block = metric_block("ap", clean, by_cell, cells["severities"], higher_is_better=True)
    block["mRR"], why = _mrr(block["clean"], block["cells"])
    if why:
        block["reasons"]["mRR"] = why
    data = {
        "clean": _data_entry(rows[STANDARD]),
        "cells": {cfg: _data_entry(rows[cfg]) for row in cells["table"].values() for cfg in row.values()},
    }
    definitions = {"ap": AP_DEFINITION, "mPC": MPC_DEFINITION, "rPC": RPC_DEFINITION, "mRR": MRR_DEFINITION}
    return {
        **cells,
        "primary_metric": "ap",
        "definitions": definitions,
        "metrics": {"ap": block},
        "data": data,
        "baseline": None,
    }


def _mrr(clean: float, cells: Mapping[str, Mapping[str, float]]) -> tuple[float, str]:
    """PoseBench's mRR of the AP table, or NaN and why it does not exist."""
    try:
        return mean_relative_robustness(clean, {c: row for c, row in cells.items() if row}), ""
    except ValueError as exc:
        return math.nan, str(exc)


def _summary(rows: Mapping[str, Any]) -> dict[str, Any]:
    """Return mPC (the plain mean of AP over the configurations) and rPC, without a suite's table."""
    corrupted = {n: r.metric.ap for n, r in rows.items() if n != STANDARD}
    clean = rows[STANDARD].metric.ap if STANDARD in rows else math.nan
    return plain_summary("ap", "AP", clean, corrupted)


def build_coco_report(
    result: TopdownResult,
    *,
    label: str = "model",
    command: str | None = None,
    suite: Suite | str | None = None,
    severities: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Build ``report.json`` of a COCO-protocol benchmark (NaN written as ``null`` with its reason).

    Top level: ``format`` (the benchmark report's), ``protocol`` (``"coco"``), ``coco`` (the
    protocol statement of :class:`~keypoint_corrupt.benchmark.topdown.TopdownResult`), ``rows``
    (per row: the counts and the ten figures with ``reasons``), ``summary`` (plain mPC / rPC of AP
    over the configurations), ``suite`` (:func:`coco_suite_section`, or ``None``), ``source``,
    ``settings``, ``timing``, ``label``, ``command``, ``created``.
    """
    doc = {
        **report_header(label, command, "coco"),
        "coco": dict(result.protocol),
        "rows": [row.to_dict() for row in result.rows.values()],
        "summary": _summary(result.rows),
        "suite": coco_suite_section(suite, result.rows, severities) if suite is not None else None,
        "source": dict(result.source),
        "settings": dict(result.settings),
        "timing": dict(result.timing),
    }
    safe: dict[str, Any] = json_safe(doc)
    return safe


# --------------------------------------------------------------------------------------------
# report.md and report.csv


def _protocol_lines(doc: Mapping[str, Any]) -> list[str]:
    p = doc["coco"]
    boxes = p["boxes"]
    if boxes["source"] == "detections":
        c = boxes["counts"]
        box_line = (
            f"detections from `{boxes['file']}`: {c['used']} boxes used of {c['read']} "
            f"({c['other_category']} of another category, {c['empty_box']} empty); {boxes['definition']}"
        )
    else:
        skipped = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in boxes["skipped"].items() if n)
        box_line = (
            f"ground truth, {boxes['boxes']} boxes ({skipped or 'none'} skipped); {boxes['definition']}"
        )
    size = p["input_size"]
    size_from = {
        "predictor": "declared by the predictor",
        "argument": "given",
        "default": "the predictor declares none: MMPose's COCO default",
    }[p["input_size_from"]]
    images = p["images"]
    sigmas = ", ".join(f"{s:g}" for s in p["sigmas"])
    schema = p["schema"]
    order = "reordered by joint name" if schema["reordered"] else "same joint order"
    return [
        "- protocol: COCO, top-down (one crop per person box, `predict(crops)`)",
        f"- boxes: {box_line}",
        f"- crop: {p['crop']}; model input {size[0]} x {size[1]} (w x h, {size_from})",
        f"- instance score: {p['rescoring']}",
        f"- NMS: {p['nms']}",
        f"- misses: {p['misses']}",
        f"- metric: {p['metric']}",
        f"- OKS sigmas ({schema['dataset']}): {sigmas}",
        f"- joints: dataset `{schema['dataset']}`, predictor `{schema['predict']}` ({order})",
        f"- images: {images['evaluated']} of the {images['in_file']} of `{p['annotation_file']}` scored "
        f"({_unannotated(images)}); {images['definition']}",
    ]


def _unannotated(images: Mapping[str, Any]) -> str:
    """How many images hold no annotation, and whether they were scored (with detections they are)."""
    total, scored = images["without_annotation"], images.get("without_annotation_evaluated", 0)
    if scored:
        return f"{scored} of them without any annotation: their results are false positives"
    return f"{total} without any annotation, not evaluated"


def _suite_lines(sec: Mapping[str, Any], label: str, source: Mapping[str, Any]) -> list[str]:
    d = sec["definitions"]
    block = sec["metrics"]["ap"]
    total = len(sec["corruptions"]) * len(sec["severities"])
    absent = sec.get("not_in_suite") or {}
    lines = [
        f"## Suite `{sec['name']}`: AP by corruption and severity",
        "",
        f"- suite: `{sec['name']}`" + (f" ({sec['description']})" if sec.get("description") else ""),
        f"- protocol of the suite: {sec.get('protocol') or '(none stated by the suite)'}",
        f"- severities: {', '.join(map(str, sec['severities']))}; {len(sec['corruptions'])} corruptions; "
        f"{total - sum(len(v) for v in absent.values())} of {total} cells; "
        f"fraction {source.get('fraction')}, seed {source.get('seed')}",
    ]
    if absent:
        listed = "; ".join(
            f"{c}: {', '.join(map(str, v))}" for c, v in absent.items() if c not in sec["left_out"]
        )
        if listed:
            lines.append(f"- not in the suite (shown as `·`, left out of every mean): {listed}")
    if sec["left_out"]:
        lines.append(
            f"- no cell at these severities, left out of the table, mPC and mRR: {', '.join(sec['left_out'])}"
        )
    lines += [f"- P: {d['ap']}", f"- {d['mPC']}", f"- {d['rPC']}", f"- {d['mRR']}", ""]
    lines += [f"### {label}: AP (P)", ""]
    lines += metric_table_lines(sec, "ap")
    why = block.get("reasons") or {}
    lines += [f"mRR {fmt_figure(block.get('mRR'), why.get('mRR'))} (x 100 for PoseBench's percent).", ""]
    return lines


def _rows_lines(doc: Mapping[str, Any]) -> list[str]:
    head = "| row | images | boxes | results | persons not found | " + " | ".join(_TITLE[k] for k in _SHOWN)
    lines = [head + " |", "| --- | " + " | ".join("---:" for _ in range(4 + len(_SHOWN))) + " |"]
    for row in doc["rows"]:
        reasons = row.get("reasons") or {}
        figures = " | ".join(fmt_figure(row[k], reasons.get(k)) for k in _SHOWN)
        lines.append(
            f"| {row['name']} | {row['images']} | {row['boxes']} | {row['results']} | "
            f"{row['instances_missed']} | {figures} |"
        )
    return [*lines, ""]


def render_coco_markdown(doc: Mapping[str, Any]) -> str:
    """Render ``report.md`` of a COCO-protocol report from its JSON document."""
    label = doc["label"]
    title = f"# Robustness benchmark, COCO protocol: {label}"
    if doc.get("suite"):
        title += f", suite {doc['suite']['name']}"
    src = doc["source"]
    predictor = (doc.get("settings") or {}).get("predictor") or {}
    lines = [title, "", f"- model: {label} ({predictor.get('name', '?')})"]
    lines += _protocol_lines(doc)
    if doc.get("command"):
        lines.append(f"- command: `{doc['command']}`")
    lines.append("")
    if doc.get("suite"):
        lines += _suite_lines(doc["suite"], label, src)
    lines += ["## AP per row", "", *_rows_lines(doc)]
    s = doc["summary"]
    why = s.get("reasons") or {}
    lines += [
        "## mPC / rPC over the configurations",
        "",
        f"{s['definition']}: clean {fmt_figure(s['clean'])}, mPC {fmt_figure(s['mPC'], why.get('mPC'))}, "
        f"rPC {fmt_figure(s['rPC'], why.get('rPC'))}"
        + (f"; left out (no AP): {', '.join(s['excluded'])}" if s["excluded"] else ""),
        "",
    ]
    notes = [f"- {row['name']}: {row['reason']}" for row in doc["rows"] if row.get("reason")]
    if notes:
        lines += ["Figures that do not exist (`-`):", "", *notes, ""]
    t = doc["timing"]
    share = t.get("predict_share")
    lines += [
        "## Timing",
        "",
        f"{t['images']} images in {t['seconds']:.1f} s"
        + (f", {100 * share:.0f}% in the predictor" if share is not None else ""),
        "",
    ]
    return "\n".join(lines)


def write_coco_csv(doc: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write ``report.csv``: one line per row (counts, the ten figures, suite cell, notes)."""
    import csv

    out = Path(path)
    where = suite_positions(doc.get("suite"))
    head = ["row", "challenge", "config", "images", "boxes", "results", "instances_missed", "joints_missed"]
    head += [*FIGURES, "n_instances", "suite_corruption", "suite_severity", "notes"]
    with out.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(head)
        for row in doc["rows"]:
            cell = (
                ("clean", "clean") if row["name"] == STANDARD and where else where.get(row["name"], ("", ""))
            )
            values = ["" if row[k] is None else repr(float(row[k])) for k in FIGURES]
            counts = [row[k] for k in ("images", "boxes", "results", "instances_missed", "joints_missed")]
            notes = row.get("reason") or ""
            writer.writerow(
                [
                    row["name"],
                    row["challenge"],
                    row["config"],
                    *counts,
                    *values,
                    row["n_instances"],
                    *cell,
                    notes,
                ]
            )
    return out


# --------------------------------------------------------------------------------------------
# The results file, and recomputing from it.


def _results_document(result: TopdownResult) -> dict[str, Any]:
    rows = {}
    for name, row in result.rows.items():
        rows[name] = {
            "image_ids": list(row.image_ids),
            "results": json_safe(row.results),
            "moved": [[ann, np.asarray(kp, np.float64).tolist()] for ann, kp in row.moved.items()],
        }
    return {
        "format": COCO_RESULTS_FORMAT,
        "format_version": 1,
        "annotation_file": result.protocol.get("annotation_file"),
        "sigmas": list(result.protocol["sigmas"]),
        "rows": rows,
    }


def write_coco_report(
    result: TopdownResult,
    out_dir: str | os.PathLike[str],
    *,
    label: str = "model",
    command: str | None = None,
    suite: Suite | str | None = None,
    severities: Sequence[int] | None = None,
) -> dict[str, Path]:
    """Write ``report.json``, ``report.md``, ``report.csv`` and ``coco_results.json.gz`` in ``out_dir``.

    Files of an earlier report there are replaced; any other file of those names is not
    (:func:`~keypoint_corrupt.benchmark.report.check_output_dir`).

    Returns
    -------
    dict
        File kind -> path (``json``, ``md``, ``csv``, ``results``).

    Examples
    --------
    >>> import json, pathlib, tempfile, cv2
    >>> from keypoint_corrupt.benchmark.topdown import evaluate_topdown
    >>> from keypoint_corrupt.schema import get_schema
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = cv2.imwrite(str(d / "a.png"), np.zeros((120, 100, 3), np.uint8))
    >>> person = {"id": 1, "image_id": 1, "category_id": 1, "bbox": [25, 15, 30, 75], "area": 2250.0,
    ...           "num_keypoints": 17, "keypoints": [v for j in range(17) for v in (30 + j, 20 + 4 * j, 2)]}
    >>> _ = (d / "a.json").write_text(json.dumps({"annotations": [person],
    ...     "images": [{"id": 1, "file_name": "a.png", "width": 100, "height": 120}],
    ...     "categories": [{"id": 1, "name": "person", "keypoints": list(get_schema("coco17").joints)}]}))
    >>> def centre(crops):
    ...     return np.full((len(crops), 17, 2), [96.0, 128.0]), np.full((len(crops), 17), 0.5)
    >>> res = evaluate_topdown(centre, d / "a.json", configs=())
    >>> sorted(write_coco_report(res, d / "report"))
    ['csv', 'json', 'md', 'results']
    """
    out = check_output_dir(out_dir, COCO_REPORT_FILES, REPORT_FORMAT)
    doc = build_coco_report(result, label=label, command=command, suite=suite, severities=severities)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {"json": out / "report.json", "md": out / "report.md"}
    files["json"].write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    files["md"].write_text(render_coco_markdown(doc), encoding="utf-8")
    files["csv"] = write_coco_csv(doc, out / "report.csv")
    files["results"] = out / COCO_RESULTS_FILE
    # mtime=0 and no file name in the header: the same results give the same bytes on every run
    payload = json.dumps(_results_document(result)).encode("utf-8")
    files["results"].write_bytes(gzip.compress(payload, mtime=0))
    return files


def recompute_coco(
    path: str | os.PathLike[str], ground_truth: str | os.PathLike[str] | None = None
) -> dict[str, dict[str, Any]]:
    """Rescore every row of a COCO-protocol report from its ``coco_results.json.gz`` with pycocotools.

    Parameters
    ----------
    path : path
        The report folder (or its ``coco_results.json.gz``).
    ground_truth : path, optional
        The COCO keypoint file; default the one the results file records.

    Returns
    -------
    dict
        Row name -> :meth:`~keypoint_corrupt.body_metrics.CocoKeypointAP.as_dict`: equal to the
        figures of ``report.json``'s rows.
    """
    from keypoint_corrupt.datasets import load_coco_index

    file = Path(path)
    if file.is_dir():
        file = file / COCO_RESULTS_FILE
    with gzip.open(file, "rt", encoding="utf-8") as f:
        doc = json.load(f)
    if not isinstance(doc, dict) or doc.get("format") != COCO_RESULTS_FORMAT:
        raise ValueError(f"{file} is not a COCO results file of a benchmark (format {COCO_RESULTS_FORMAT!r})")
    source = ground_truth or doc["annotation_file"]
    if not Path(source).is_file():
        raise FileNotFoundError(
            f"{file}: its ground truth {source} is not there; "
            "pass ground_truth= the COCO file it was scored on"
        )
    index = load_coco_index(source)
    out = {}
    for name, row in doc["rows"].items():
        moved = {ann: np.asarray(kp, np.float64) for ann, kp in row["moved"]}
        results = [
            dict(r, keypoints=[math.nan if v is None else v for v in r["keypoints"]]) for r in row["results"]
        ]
        metric = coco_keypoint_ap(
            row_ground_truth(index, moved), results, sigmas=doc["sigmas"], image_ids=row["image_ids"]
        )
        out[name] = json_safe(metric.as_dict())
    return out
