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
from keypoint_corrupt.metrics import SUMMARY_METRICS

__all__ = [
    "COMPARE_PREDICTIONS_FILE",
    "REPORT_FILES",
    "REPORT_FORMAT",
    "build_report",
    "check_output_dir",
    "published_columns",
    "render_markdown",
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


def build_report(
    result: BenchmarkResult,
    *,
    label: str = "model",
    compare: BenchmarkResult | None = None,
    compare_label: str = "compare",
    train_set: str = "S-train",
    command: str | None = None,
) -> dict[str, Any]:
    """Build the JSON document of a benchmark (what ``report.json`` holds).

    Top-level ``rows``, ``summary``, ``timing``, ``source``, ``settings`` and ``thresholds``
    describe the model; ``compare`` holds the same for the second model and ``difference``
    the per-row ``compare - model`` differences; ``published`` the paper's figures when the
    data is STB and a model is a PoseNet.
    """
    doc: dict[str, Any] = {
        "format": REPORT_FORMAT,
        "format_version": 1,
        "package_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "label": label,
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
    cols = published_columns([result] + ([compare] if compare is not None else []), train_set)
    if cols:
        doc["published"] = {
            "source": pub.SOURCE,
            "train_set": train_set,
            "rows": {variant: figures for variant, figures in cols},
            "table_i": {variant: dict(pub.TABLE_I[variant]) for variant, _ in cols},
        }
    return _json_safe(doc)


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


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, float):
        return None if math.isnan(obj) or math.isinf(obj) else obj
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # NumPy scalars
        return _json_safe(obj.item())
    return obj


def render_markdown(doc: dict[str, Any]) -> str:
    """Render ``report.md`` from :func:`build_report`'s document."""
    label = doc["label"]
    comp = doc.get("compare")
    published = doc.get("published")
    src = doc["source"]
    lines = [f"# Robustness benchmark: {label}" + (f" vs {comp['label']}" if comp else ""), ""]
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
            writer.writerow([*cells, "; ".join(notes)])
    return path


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
) -> dict[str, Path]:
    """Write ``report.md``, ``report.csv``, ``report.json``, ``predictions.npz`` and the two figures.

    ``predictions.npz`` (``predictions_compare.npz`` for ``compare``) keeps the raw predictions of
    every row, so that :func:`~keypoint_corrupt.benchmark.recompute` rebuilds every number.

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
        Write ``pck_curves.png`` and ``examples.png``.

    Returns
    -------
    dict
        File kind -> path.

    Raises
    ------
    NotADirectoryError, FileExistsError
        From :func:`check_output_dir`, before anything is written.

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
    out.mkdir(parents=True, exist_ok=True)
    doc = build_report(
        result,
        label=label,
        compare=compare,
        compare_label=compare_label,
        train_set=train_set,
        command=command,
    )
    files: dict[str, Path] = {}
    files["json"] = out / "report.json"
    files["json"].write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    files["csv"] = write_csv(doc, out / "report.csv")
    files["md"] = out / "report.md"
    files["md"].write_text(render_markdown(doc), encoding="utf-8")
    files["predictions"] = save_predictions(result, out / PREDICTIONS_FILE)
    if compare is not None:
        files["predictions_compare"] = save_predictions(compare, out / COMPARE_PREDICTIONS_FILE)
    if plots:
        from keypoint_corrupt.benchmark.plots import plot_examples, plot_pck_curves

        models = [(label, result)] + ([(compare_label, compare)] if compare is not None else [])
        files["pck_curves"] = plot_pck_curves(models, out / "pck_curves.png")
        other = None
        if compare is not None:
            other = {(ex.row, ex.id): ex.prediction for ex in compare.examples}
        files["examples"] = plot_examples(
            result.examples, out / "examples.png", other, labels=(label, compare_label)
        )
    return files
