"""Benchmark reports: ``report.md`` (Table II layout), ``.csv``, ``.json``, figures, raw predictions.

The raw predictions are ``predictions.npz`` (see :mod:`keypoint_corrupt.benchmark.predictions`).

No NaN reaches a report unexplained: a figure that cannot exist (the EPE of a row where no
visible joint was found) is ``null`` in ``report.json`` with a ``<metric>_reason`` beside it (the
summary's ``reasons``), ``- (reason)`` in ``report.md`` and an empty cell with a ``notes`` entry in
``report.csv``. Every report says how many visible joints and instances the model missed.
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from keypoint_corrupt._paths import check_output_path
from keypoint_corrupt._version import __version__
from keypoint_corrupt.benchmark import published as pub
from keypoint_corrupt.benchmark.evaluate import BenchmarkResult, row_label
from keypoint_corrupt.benchmark.predictions import PREDICTIONS_FILE, save_predictions
from keypoint_corrupt.benchmark.suite_report import (
    baseline_block,
    check_baseline,
    suite_markdown,
    suite_section,
    suite_spec,
)
from keypoint_corrupt.metrics import SUMMARY_METRICS
from keypoint_corrupt.suites import Suite

__all__ = [
    "COMPARE_PREDICTIONS_FILE",
    "REPORT_FILES",
    "REPORT_FORMAT",
    "build_report",
    "check_output_dir",
    "load_baseline",
    "mce_from_reports",
    "published_columns",
    "render_markdown",
    "report_header",
    "write_report",
]

REPORT_FORMAT = "keypoint-corrupt/benchmark-report"
#: What :func:`write_report` writes in its folder; ``report.json`` carries :data:`REPORT_FORMAT`.
REPORT_FILES = (
    "report.json",
    "report.csv",
    "report.md",
    "pck_curves.png",
    "examples.png",
    "severity_curves.png",
    PREDICTIONS_FILE,
    "predictions_compare.npz",
)
#: The compared model's predictions archive.
COMPARE_PREDICTIONS_FILE = "predictions_compare.npz"
_METRICS = tuple(SUMMARY_METRICS)  # mean_epe, median_epe, auc
_HEAD = {"mean_epe": "mean EPE (px)", "median_epe": "median EPE (px)", "auc": "AUC"}
#: Detection columns of ``report.csv``.
_DETECTION = (
    "num_visible",
    "num_found",
    "detection_rate",
    "num_instances",
    "instances_found",
    "instance_detection_rate",
)


def _f(value: Any, digits: int = 3, why: str | None = None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return f"- ({why})" if why else "-"
    return f"{float(value):.{digits}f}"


def _cell(row: dict[str, Any], key: str) -> str:
    """Format a row's metric, or ``- (why it has none)``."""
    return _f(row.get(key), why=row.get(f"{key}_reason"))


def _found(row: dict[str, Any], found: str, total: str) -> str:
    """``found / total`` as ``97.5% (39/40)``; ``- (none visible)`` without a denominator."""
    whole = row.get(total)
    if whole is None:
        return "-"
    if whole == 0:
        return "- (no visible joint)"
    return f"{100 * row[found] / whole:.1f}% ({row[found]}/{whole})"


def _misses_line(title: str, rows: Sequence[dict[str, Any]]) -> str:
    visible = sum(r.get("num_visible", 0) for r in rows)
    found = sum(r.get("num_found", r.get("num_visible", 0)) for r in rows)
    instances = sum(r.get("num_instances", 0) for r in rows)
    inst_found = sum(r.get("instances_found", r.get("num_instances", 0)) for r in rows)
    if found == visible and inst_found == instances:
        return f"- misses ({title}): none, every visible joint was found"
    per_row = ", ".join(
        f"{r['name']} {r['num_visible'] - r['num_found']}"
        for r in rows
        if r.get("num_found", 0) < r.get("num_visible", 0)
    )
    return (
        f"- misses ({title}): {visible - found} of {visible} visible joints not found, "
        f"{instances - inst_found} of {instances} instances (by row: {per_row}); "
        "PCK and AUC count a miss as wrong, the EPEs are over the joints found"
    )


def _model_of(result: BenchmarkResult) -> str | None:
    pred = result.settings.get("predictor") or {}
    return pred.get("model") if isinstance(pred, dict) else None


def published_columns(
    results: Sequence[BenchmarkResult], train_set: str = "S-train"
) -> list[tuple[str, dict[str, dict[str, float] | None]]]:
    """Return the published Table II columns to show: one per PoseNet variant benchmarked on STB.

    Returns ``[(variant, {row name: figures or None})]``; empty unless the data is STB.
    """
    out: list[tuple[str, dict[str, dict[str, float] | None]]] = []
    for res in results:
        if not res.source.get("is_stb"):
            continue
        variant = pub.published_variant(_model_of(res))
        if variant is None or any(v == variant for v, _ in out):
            continue
        out.append((variant, {name: pub.published_row(variant, name, train_set) for name in res.rows}))
    return out


def report_header(label: str, command: str | None, protocol: str | None = None) -> dict[str, Any]:
    """Return the fields every ``report.json`` opens with: format, version, creation, command, label.

    ``protocol`` (``"coco"``, ``"mpii"``) names a body protocol's report; the hand protocol's
    has none.

    Examples
    --------
    >>> list(report_header("mine", None, "coco"))
    ['format', 'format_version', 'protocol', 'package_version', 'created', 'command', 'label']
    """
    head: dict[str, Any] = {"format": REPORT_FORMAT, "format_version": 1}
    if protocol is not None:
        head["protocol"] = protocol
    head.update(
        package_version=__version__,
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        command=command,
        label=label,
    )
    return head


def build_report(
    result: BenchmarkResult,
    *,
    label: str = "model",
    compare: BenchmarkResult | None = None,
    compare_label: str = "compare",
    train_set: str = "S-train",
    command: str | None = None,
    suite: Suite | str | None = None,
    severities: Sequence[int] | None = None,
    baseline: str | os.PathLike[str] | dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Build the JSON document of a benchmark (what ``report.json`` holds).

    Top-level ``rows``, ``summary``, ``timing``, ``source``, ``settings`` and ``thresholds``
    describe the model; ``compare`` holds the same for the second model and ``difference``
    the per-row ``compare - model`` differences; ``published`` the paper's figures when the
    data is STB and a model is a PoseNet. With ``suite``, ``suite`` (and ``compare.suite``)
    holds the corruption x severity tables, mPC and rPC
    (:func:`~keypoint_corrupt.benchmark.suite_report.suite_section`), and with ``baseline`` (a
    ``report.json`` of the same suite, its folder or its loaded document) ``suite.baseline``
    holds mCE against it.

    Raises
    ------
    ValueError
        A suite row is missing from ``result``, or the baseline does not match
        (:class:`~keypoint_corrupt.benchmark.suite_report.BaselineMismatchError`).
    """
    if baseline is not None and suite is None:
        raise ValueError("a baseline (mCE) needs a suite: pass suite=")
    doc: dict[str, Any] = {
        **report_header(label, command),
        **result.to_dict(),
        "compare": None,
        "difference": None,
        "published": None,
    }
    if compare is not None:
        if list(compare.rows) != list(result.rows):
            raise ValueError("the compared results must have the same rows")
        doc["compare"] = {"label": compare_label, **compare.to_dict()}
        doc["difference"] = [
            _difference(name, row.metrics, compare.rows[name].metrics, label, compare_label)
            for name, row in result.rows.items()
        ]
    if suite is not None:
        _add_suite(doc, result, compare, suite, severities, baseline)
    cols = published_columns([result] + ([compare] if compare is not None else []), train_set)
    if cols:
        doc["published"] = {
            "source": pub.SOURCE,
            "train_set": train_set,
            "rows": {variant: figures for variant, figures in cols},
            "table_i": {variant: dict(pub.TABLE_I[variant]) for variant, _ in cols},
        }
    return json_safe(doc)


def load_baseline(path: str | os.PathLike[str]) -> tuple[dict[str, Any], str]:
    """Read a baseline for mCE: a suite benchmark's ``report.json`` (or the folder holding it).

    Returns
    -------
    (dict, str)
        The document and the file it was read from.

    Raises
    ------
    FileNotFoundError, ValueError
        No such file; not JSON; not a benchmark report; a report without a suite.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "report.json"
    >>> _ = p.write_text('{"format": "keypoint-corrupt/benchmark-report", "suite": null}')
    >>> load_baseline(p)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: .../report.json is a benchmark report without a suite (written without --suite); ...
    """
    file = Path(path)
    if file.is_dir():
        file = file / "report.json"
    if not file.is_file():
        raise FileNotFoundError(f"{file} not found (a report.json of 'keypoint-corrupt benchmark --suite')")
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"{file} is not a readable JSON report: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != REPORT_FORMAT:
        raise ValueError(f"{file} is not a benchmark report (no format {REPORT_FORMAT!r})")
    if not isinstance(doc.get("suite"), dict):
        raise ValueError(
            f"{file} is a benchmark report without a suite (written without --suite); "
            "mCE needs the baseline's corruption x severity table"
        )
    return doc, str(file)


def mce_from_reports(report: str | os.PathLike[str], baseline: str | os.PathLike[str]) -> dict[str, Any]:
    """Compute the mCE of one suite report against another from the two ``report.json`` files alone.

    Both reports carry every ``P_cs`` (``suite.metrics.auc.cells``), so this needs neither the
    models nor the predictions. The result equals the ``suite.baseline`` section that
    ``write_report(..., baseline=baseline)`` wrote.

    Parameters
    ----------
    report, baseline : path
        ``report.json`` files (or their folders) of ``benchmark --suite``, same suite and data.

    Returns
    -------
    dict
        :func:`~keypoint_corrupt.benchmark.suite_report.baseline_block`'s section (JSON form).

    Raises
    ------
    ValueError
        Either is not a suite report, or they do not match (suite, severities, PCK range, data).
    """
    doc, _ = load_baseline(report)
    base, base_path = load_baseline(baseline)
    check_baseline(doc["suite"], base["suite"], doc.get("source"), base.get("source"))
    block: dict[str, Any] = json_safe(baseline_block(doc["suite"], base, base_path))
    return block


def _add_suite(
    doc: dict[str, Any],
    result: BenchmarkResult,
    compare: BenchmarkResult | None,
    suite: Suite | str | dict[str, Any],
    severities: Sequence[int] | None,
    baseline: str | os.PathLike[str] | dict[str, Any] | None,
) -> None:
    """``doc["suite"]`` (and ``doc["compare"]["suite"]``), with mCE against ``baseline`` if given."""
    base_doc, base_path = (None, None)
    if isinstance(baseline, dict):
        base_doc = baseline
    elif baseline is not None:
        base_doc, base_path = load_baseline(baseline)
    parts = [(doc, result)] + ([(doc["compare"], compare)] if compare is not None else [])
    for part, res in parts:
        section = json_safe(suite_section(suite, res.rows, severities))
        if base_doc is not None:
            check_baseline(section, base_doc["suite"], res.source, base_doc.get("source"))
            section["baseline"] = baseline_block(section, base_doc, base_path)
        part["suite"] = section


def _difference(name: str, mine: Any, other: Any, label: str, other_label: str) -> dict[str, Any]:
    """One row of ``difference``: ``compare - model``, with a reason where one side has no value."""
    out: dict[str, Any] = {"name": name}
    for k in _METRICS:
        a, b = getattr(mine, k), getattr(other, k)
        out[k] = b - a
        missing = [lab for lab, v in ((label, a), (other_label, b)) if math.isnan(v)]
        if missing:
            out[f"{k}_reason"] = f"no {k} for {' and '.join(missing)}"
    return out


def json_safe(obj: Any) -> Any:
    """``obj`` with NaN/inf as ``None``, tuples as lists and NumPy scalars as Python numbers.

    Every report's JSON goes through this (each ``None`` has a reason beside it).

    Examples
    --------
    >>> import numpy as np
    >>> json_safe({"a": float("nan"), "b": (1, np.float32(0.5))})
    {'a': None, 'b': [1, 0.5]}
    """
    if isinstance(obj, float):
        return None if math.isnan(obj) or math.isinf(obj) else obj
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # NumPy scalars
        return json_safe(obj.item())
    return obj


def _head_lines(doc: dict[str, Any], comp: dict[str, Any] | None) -> list[str]:
    """Return the title and the opening list of ``report.md``: data, models, misses, command."""
    label = doc["label"]
    src = doc["source"]
    title = f"# Robustness benchmark: {label}" + (f" vs {comp['label']}" if comp else "")
    if doc.get("suite"):
        title += f", suite {doc['suite']['name']}"
    lines = [title, ""]
    data = src.get("dataset") or "?"
    where = src.get("root") or src.get("annotation_file") or ""
    desc = f"{data} {src.get('split', '')}".strip()
    lines.append(f"- data: {desc} ({src['source']}{', ' + where if where else ''})")
    lines.append(f"- corrupted subsets: fraction {src.get('fraction')}, seed {src.get('seed')}")
    for title, part in (("model", doc), ("compare", comp)):
        if part is None:
            continue
        pred = part["settings"].get("predictor") or {}
        text = ", ".join(f"{k} {v}" for k, v in pred.items() if k != "name")
        lines.append(f"- {title}: {part.get('label', label)}" + (f" ({text})" if text else ""))
    lines.append(_misses_line(label, doc["rows"]))
    if comp:
        lines.append(_misses_line(comp["label"], comp["rows"]))
    if doc.get("command"):
        lines.append(f"- command: `{doc['command']}`")
    lines.append(f"- keypoint-corrupt {doc['package_version']}, {doc['created']}")
    lines.append("")
    return lines


def render_markdown(doc: dict[str, Any]) -> str:
    """Render ``report.md`` from :func:`build_report`'s document."""
    label = doc["label"]
    comp = doc.get("compare")
    published = doc.get("published")
    src = doc["source"]
    lines = _head_lines(doc, comp)
    if doc.get("suite"):
        parts = [(label, doc["suite"])] + ([(comp["label"], comp["suite"])] if comp else [])
        lines += suite_markdown(parts, src)

    lines.append("## Per configuration (Table II layout)")
    lines.append("")
    lines.append(
        "Mean EPE, median EPE (original-image pixels) and AUC of PCK over 0-30 px, each averaged over joints "
        "as hand3d does. Standard is the whole clean split; each configuration its corrupted subset. "
        "A joint the model did not find (NaN) is a miss: wrong at every PCK threshold, left out of the EPEs. "
        "'joints found' = visible joints found / visible joints; 'instances found' = images with a "
        "visible joint found / images with a visible joint."
    )
    lines.append("")
    head = ["challenge", "config", "images"] + [f"{label} {_HEAD[k]}" for k in _METRICS]
    head += [f"{label} joints found", f"{label} instances found"]
    if comp:
        head += [f"{comp['label']} {_HEAD[k]}" for k in _METRICS]
        head += [f"{comp['label']} joints found", f"{comp['label']} instances found"]
        head += [f"Δ {_HEAD[k]}" for k in _METRICS]
    if published:
        head += [f"published {v} ({published['train_set']}) mean / median / AUC" for v in published["rows"]]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("| " + " | ".join("---" for _ in head) + " |")
    comp_rows = {r["name"]: r for r in comp["rows"]} if comp else {}
    diffs = {d["name"]: d for d in doc["difference"] or []}
    for row in doc["rows"]:
        name = row["name"]
        challenge, param = row_label(name)
        cells = [challenge, param, str(row["images"])] + [_cell(row, k) for k in _METRICS]
        cells += [_found(row, "num_found", "num_visible"), _found(row, "instances_found", "num_instances")]
        if comp:
            other = comp_rows[name]
            cells += [_cell(other, k) for k in _METRICS]
            cells += [
                _found(other, "num_found", "num_visible"),
                _found(other, "instances_found", "num_instances"),
            ]
            cells += [_signed(diffs[name][k], diffs[name].get(f"{k}_reason")) for k in _METRICS]
        if published:
            for figures in published["rows"].values():
                p = figures.get(name)
                cells.append(" / ".join(_f(p[k]) for k in _METRICS) if p else "-")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    if published:
        lines.append(
            f"Published figures: {published['source']}, trained on {published['train_set']}, STB S-val/S-val*"
            " (6,000 images). They are comparable only for a model trained as in the paper and evaluated"
            " on the real STB; the bundled sample is synthetic."
        )
        lines.append("")

    if doc.get("summary"):
        lines += _summary_section(doc, comp)
    lines += _timing_section(doc, comp)
    lines.append("## Files")
    lines.append("")
    lines.append("- `report.md` (this file), `report.csv` (one line per row),")
    lines.append("  `report.json` (everything, with per-joint figures)")
    lines.append("- `pck_curves.png` (one PCK curve per configuration),")
    lines.append("  `examples.png` (predictions over a few images of each row)")
    if doc.get("suite"):
        lines.append("- `severity_curves.png` (AUC and mean EPE against severity, one line per corruption)")
    lines.append(
        f"- `{PREDICTIONS_FILE}`" + (f", `{COMPARE_PREDICTIONS_FILE}`" if comp else "") + " (the raw"
    )
    lines.append("  predictions per row, NaN for misses, with ids, ground truth and visibility;")
    lines.append("  `keypoint_corrupt.benchmark.recompute(folder)` recomputes every number above)")
    lines.append("")
    return "\n".join(lines)


def _signed(value: Any, why: str | None = None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return f"- ({why})" if why else "-"
    return f"{float(value):+.3f}"


def _summary_section(doc: dict[str, Any], comp: dict[str, Any] | None) -> list[str]:
    parts = [(doc["label"], doc["summary"])]
    if comp and comp["summary"]:
        parts.append((comp["label"], comp["summary"]))
    lines = ["## Under corruption: mPC and rPC", ""]
    lines.append(
        "mPC: mean over the configurations where the metric exists (no EPE where nothing was found). "
        "rPC: share of clean performance kept (COCO-C / MPII-C): "
        "mPC / clean for AUC, clean / mPC for the EPEs, so 1 = unaffected and 0.5 = error doubled."
    )
    if doc.get("suite"):
        lines.append(
            "This is the plain mean over configurations; the suite's mPC above weighs each corruption "
            "the same, so the two differ where corruptions have unequal numbers of severities."
        )
    lines.append("")
    head = ["metric"]
    for name, _ in parts:
        head += [f"{name} clean", f"{name} mPC", f"{name} rPC"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("| " + " | ".join("---" for _ in head) + " |")
    for k in _METRICS:
        cells = [_HEAD[k]]
        for _, s in parts:
            why = s.get("reasons") or {}
            cells += [_f(s[part][k], why=why.get(f"{part}.{k}")) for part in ("clean", "mPC", "rPC")]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    for name, s in parts:
        groups: dict[tuple[str, ...], list[str]] = {}
        for k, left_out in (s.get("excluded") or {}).items():
            groups.setdefault(tuple(left_out), []).append(_HEAD[k])
        for left_out, heads in groups.items():
            lines.append(
                f"{name}: the mPC of {' and '.join(heads)} averages {len(s['configs']) - len(left_out)} of "
                f"{len(s['configs'])} configurations; left out, no visible joint found: "
                f"{', '.join(left_out)}."
            )
            lines.append("")
    lines.append("Mean per family:")
    lines.append("")
    head = ["family"] + [f"{name} {_HEAD[k]}" for name, _ in parts for k in _METRICS]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("| " + " | ".join("---" for _ in head) + " |")
    for fam in parts[0][1]["by_family"]:
        cells = [fam]
        for _, s in parts:
            fam_row = s["by_family"].get(fam, {})
            why = s.get("reasons") or {}
            cells += [_f(fam_row.get(k), why=why.get(f"by_family.{fam}.{k}")) for k in _METRICS]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    return lines


def _timing_section(doc: dict[str, Any], comp: dict[str, Any] | None) -> list[str]:
    lines = ["## Throughput of the whole benchmark", ""]
    lines.append(
        "Wall time over every row, including loading, corrupting and cropping images; "
        "'in predictor' includes waiting for the device, 'waiting for data' is time the predictor sat idle."
    )
    lines.append("")
    lines.append(
        "| model | images | seconds | images/s | in predictor | waiting for data | batch | workers |"
    )
    lines.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for part in [doc] + ([comp] if comp else []):
        t = part["timing"]
        s = part["settings"]
        lines.append(
            f"| {part.get('label', doc['label'])} | {t['images']} | {_f(t['seconds'], 2)} | "
            f"{_f(t['images_per_second'], 1)} | {_pct(t['predict_share'])} | {_pct(t['data_wait_share'])} | "
            f"{s['batch_size']} | {s['num_workers']} |"
        )
    lines.append("")
    return lines


def _pct(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{100 * float(value):.0f}%"


def write_csv(doc: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """``report.csv``: one line per row with the model's (and compare's, difference's, paper's) figures."""
    comp = doc.get("compare")
    published = doc.get("published")
    head = ["row", "challenge", "config", "images", *_METRICS, *_DETECTION]
    if comp:
        head += [f"compare_{k}" for k in (*_METRICS, *_DETECTION)] + [f"diff_{k}" for k in _METRICS]
    if published:
        head += [f"published_{v}_{k}" for v in published["rows"] for k in _METRICS]
    cell_of = _suite_cells(doc.get("suite"))
    if cell_of:
        head += ["suite_corruption", "suite_severity"]
    head.append("notes")
    comp_rows = {r["name"]: r for r in comp["rows"]} if comp else {}
    diffs = {d["name"]: d for d in doc["difference"] or []}
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(head)
        for row in doc["rows"]:
            name = row["name"]
            challenge, param = row_label(name)
            cells: list[Any] = [name, challenge, param, row["images"], *(_csv(row[k]) for k in _METRICS)]
            cells += [_csv_any(row.get(k)) for k in _DETECTION]
            notes = _notes("", row)
            if comp:
                other = comp_rows[name]
                cells += [_csv(other[k]) for k in _METRICS] + [_csv_any(other.get(k)) for k in _DETECTION]
                cells += [_csv(diffs[name][k]) for k in _METRICS]
                notes += _notes("compare ", other) + _notes("diff ", diffs[name])
            if published:
                for figures in published["rows"].values():
                    p = figures.get(name)
                    cells += [_csv(p[k]) if p else "" for k in _METRICS]
            if cell_of:
                cells += list(cell_of.get(name, ("clean", "") if name == "standard" else ("", "")))
            writer.writerow([*cells, "; ".join(notes)])
    return path


def _suite_cells(section: dict[str, Any] | None) -> dict[str, tuple[str, str]]:
    """Map each configuration of a suite section's table to its (corruption, severity); {} without."""
    if not section:
        return {}
    return {cfg: (c, s) for c, row in section["table"].items() for s, cfg in row.items()}


def _csv(value: Any) -> str:
    return "" if value is None else repr(float(value))


def _csv_any(value: Any) -> str:
    if value is None:
        return ""
    return str(value) if isinstance(value, int) else repr(float(value))


def _notes(prefix: str, row: dict[str, Any]) -> list[str]:
    """``<prefix><metric>: <reason>`` for each empty cell of ``row``."""
    return [f"{prefix}{k[: -len('_reason')]}: {v}" for k, v in row.items() if k.endswith("_reason")]


def check_output_dir(
    out_dir: str | os.PathLike[str],
    files: Sequence[str] = REPORT_FILES,
    report_format: str = REPORT_FORMAT,
) -> Path:
    """Check that a report may be written in ``out_dir`` without replacing anyone else's files.

    ``out_dir`` may be missing (it is created), empty, or hold unrelated files. If any of
    ``files`` is already there, the folder must hold an earlier report: ``files[0]`` (a JSON
    document) with ``"format": report_format``. So re-running a benchmark into the same folder
    replaces its own report, and nothing a user wrote is overwritten. Cheap: call it before
    any work (the ``benchmark`` command does, before loading a model).

    Parameters
    ----------
    out_dir : path
        The output folder.
    files : sequence of str
        The file names the report writes, its JSON document first (default :data:`REPORT_FILES`).
    report_format : str
        The ``format`` field of that JSON document (default :data:`REPORT_FORMAT`).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    NotADirectoryError
        If ``out_dir``, or a folder above it, is a file.
    FileExistsError
        If writing would replace a file that an earlier report did not write.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "report.md").write_text("my notes")
    >>> check_output_dir(d)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    FileExistsError: .../report.md exists and is not from an earlier benchmark report; ...
    """
    out = Path(out_dir)
    try:
        check_output_path(out, want="folder", option="")
    except ValueError as exc:  # the documented type for "not a folder" (an OSError, as before)
        raise NotADirectoryError(str(exc)) from None
    present = [name for name in files if (out / name).exists() or (out / name).is_symlink()]
    if not present or _is_report(out / files[0], report_format):
        return out
    raise FileExistsError(
        f"{out / present[0]} exists and is not from an earlier benchmark report; "
        "move it or choose another output folder"
    )


def _is_report(path: Path, report_format: str) -> bool:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(doc, dict) and doc.get("format") == report_format


def write_report(
    result: BenchmarkResult,
    out_dir: str | os.PathLike[str],
    *,
    label: str = "model",
    compare: BenchmarkResult | None = None,
    compare_label: str = "compare",
    train_set: str = "S-train",
    command: str | None = None,
    plots: bool = True,
    suite: Suite | str | None = None,
    severities: Sequence[int] | None = None,
    baseline: str | os.PathLike[str] | dict[str, Any] | None = None,
) -> dict[str, Path]:
    """Write ``report.md``, ``report.csv``, ``report.json``, ``predictions.npz`` and the figures.

    ``predictions.npz`` (``predictions_compare.npz`` for ``compare``) keeps the raw predictions of
    every row, so that :func:`~keypoint_corrupt.benchmark.recompute` rebuilds every number.
    With ``suite``, the report opens with the suite's corruption x severity tables, mPC and rPC
    (and mCE against ``baseline``), the archive records the suite, and ``severity_curves.png``
    plots performance against severity.

    Parameters
    ----------
    result : BenchmarkResult
        From :func:`~keypoint_corrupt.benchmark.evaluate`.
    out_dir : path
        Output folder (created). Files of an earlier report there are replaced; any other
        file of the same name is not (:func:`check_output_dir`).
    label, compare_label : str
        Names of the models in the report.
    compare : BenchmarkResult, optional
        A second model on the same rows: its columns and the differences (compare - model).
    train_set : {"S-train", "S-train*"}
        Which published protocol to show alongside (STB + PoseNet only).
    command : str, optional
        The command line, recorded in the report.
    plots : bool
        Write ``pck_curves.png`` and ``examples.png`` (and ``severity_curves.png`` with a suite).
    suite : Suite or str, optional
        Arrange the rows as this suite's table (``result`` must hold ``standard`` and every
        configuration of ``suite.configs(severities)``).
    severities : sequence of int, optional
        The severities benchmarked (default: all of the suite's).
    baseline : path or dict, optional
        A ``report.json`` of the same suite for another model (or its folder, or the loaded
        document): mCE against it. Checked (suite, severities, PCK range, data) before
        anything is written.

    Returns
    -------
    dict
        File kind -> path.

    Raises
    ------
    NotADirectoryError, FileExistsError
        From :func:`check_output_dir`, before anything is written.
    ValueError
        From :func:`build_report` (a suite row missing, a baseline that does not match),
        before anything is written.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from keypoint_corrupt.benchmark import evaluate
    >>> from keypoint_corrupt.datasets import STB, bundled_sample_root
    >>> res = evaluate(lambda im, crops: np.repeat(crops.center[:, None], 21, 1),
    ...                STB(bundled_sample_root(), "val"), ["defocus-7"])
    >>> sorted(write_report(res, tempfile.mkdtemp(), plots=False))
    ['csv', 'json', 'md', 'predictions']
    """
    out = check_output_dir(out_dir)
    doc = build_report(
        result,
        label=label,
        compare=compare,
        compare_label=compare_label,
        train_set=train_set,
        command=command,
        suite=suite,
        severities=severities,
        baseline=baseline,
    )
    spec = suite_spec(suite, severities) if suite is not None else None
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    files["json"] = out / "report.json"
    files["json"].write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    files["csv"] = write_csv(doc, out / "report.csv")
    files["md"] = out / "report.md"
    files["md"].write_text(render_markdown(doc), encoding="utf-8")
    files["predictions"] = save_predictions(result, out / PREDICTIONS_FILE, suite=spec)
    if compare is not None:
        files["predictions_compare"] = save_predictions(compare, out / COMPARE_PREDICTIONS_FILE, suite=spec)
    if plots:
        from keypoint_corrupt.benchmark.plots import plot_examples, plot_pck_curves, plot_severity_curves

        models = [(label, result)] + ([(compare_label, compare)] if compare is not None else [])
        files["pck_curves"] = plot_pck_curves(models, out / "pck_curves.png")
        other = None
        if compare is not None:
            other = {(ex.row, ex.id): ex.prediction for ex in compare.examples}
        files["examples"] = plot_examples(
            result.examples, out / "examples.png", other, labels=(label, compare_label)
        )
        if doc.get("suite"):
            sections = [(label, doc["suite"])] + (
                [(compare_label, doc["compare"]["suite"])] if compare else []
            )
            files["severity_curves"] = plot_severity_curves(sections, out / "severity_curves.png")
    return files
