"""Suite reports: performance by corruption and severity, mPC, rPC and, against a baseline, mCE.

A suite (:mod:`keypoint_corrupt.suites`) is a table ``corruption -> configuration at severity
1, 2, ...``. A benchmark over a suite evaluates the clean split and every configuration of the
table; this module arranges the rows as that table and summarises it:

* ``P_cs``: the performance on corruption ``c`` at severity ``s``. The primary metric ``P`` is
  the AUC of the PCK curve (higher is better); the mean EPE is reported as a second table.
* **mPC** (Wang et al. 2021): ``(1/Nc) sum_c (1/Ns_c) sum_s P_cs``, the mean over corruptions of
  each corruption's mean over its severities. Only cells that exist count: a severity the suite
  does not define for a corruption (``costa2021``'s noises have one level) and a cell where the
  metric does not exist (an EPE where nothing was found) are left out, and the report names them.
  A corruption that has none of the severities benchmarked is left out of the tables and of every
  mean (mPC, mCE) and named. With every cell present this is the plain mean of the table.
* **rPC** = ``mPC / P_clean`` for a higher-is-better metric (AUC), ``P_clean / mPC`` for an error
  (EPE): the share of clean performance kept.
* **mCE** (Hendrycks and Dietterich 2019), against a baseline report of the same suite: with the
  error ``E = 1 - P``, ``CE_c = sum_s E_cs / sum_s E^base_cs`` and ``mCE = mean_c CE_c``; the
  relative ``rCE_c = sum_s (E_cs - E_clean) / sum_s (E^base_cs - E^base_clean)``, ``relative
  mCE = mean_c rCE_c``. Both are ratios (1 = as robust as the baseline; Hendrycks prints 100x).

Examples
--------
>>> cells = {"blur": {1: 0.8, 2: 0.6}, "noise": {1: 0.5}}
>>> mean_performance(cells)  # (0.7 + 0.5) / 2: each corruption weighs the same
0.6
>>> errors = corruption_errors(cells, {"blur": {1: 0.9, 2: 0.7}, "noise": {1: 0.5}})
>>> round(errors.ce["blur"], 6), errors.ce["noise"], round(errors.mce, 6)
(1.5, 1.0, 1.25)
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from keypoint_corrupt.benchmark.sources import STANDARD
from keypoint_corrupt.suites import Suite, get_suite

__all__ = [
    "PRIMARY_METRIC",
    "SUITE_METRICS",
    "BaselineMismatchError",
    "CorruptionErrors",
    "baseline_block",
    "check_baseline",
    "corruption_errors",
    "fmt_figure",
    "mean_performance",
    "metric_block",
    "metric_table_lines",
    "plain_summary",
    "relative_performance",
    "resolve_suite",
    "suite_cells",
    "suite_header",
    "suite_markdown",
    "suite_positions",
    "suite_section",
    "suite_spec",
]

#: The metric P of mPC, rPC and mCE.
PRIMARY_METRIC = "auc"
#: The metrics tabulated by corruption and severity: name -> higher is better.
SUITE_METRICS: dict[str, bool] = {"auc": True, "mean_epe": False}
_TITLE = {"auc": "AUC", "mean_epe": "mean EPE (px)"}

MPC_DEFINITION = (
    "mPC = (1/Nc) sum_c (1/Ns_c) sum_s P_cs (Wang et al. 2021): the mean over corruptions of each "
    "corruption's mean over its severities, over the cells that exist (a severity the suite does not "
    "define for a corruption, or a cell where the metric does not exist, is left out and named; a "
    "corruption the suite defines at none of the severities benchmarked is left out, and Nc counts "
    "the corruptions that have a cell); with every cell present, the plain mean of the table"
)
RPC_DEFINITION = (
    "rPC = mPC / P_clean for AUC (higher is better), P_clean / mPC for EPE (an error): "
    "the share of clean performance kept, 1 = unaffected"
)
MCE_DEFINITION = (
    "mCE (Hendrycks and Dietterich 2019) on P = AUC with the error E = 1 - P: "
    "CE_c = sum_s E_cs / sum_s E^base_cs, mCE = mean_c CE_c; relative CE_c = "
    "sum_s (E_cs - E_clean) / sum_s (E^base_cs - E^base_clean), relative mCE = mean_c of it; "
    "both means are over the corruptions the suite defines at one or more of the severities "
    "benchmarked; ratios, 1 = as robust as the baseline (Hendrycks prints them x100)"
)
MISSES_POLICY = (
    "a joint the model does not find (NaN prediction) is a miss: AUC counts it as wrong at every PCK "
    "threshold, so it lowers P and P exists wherever a joint is visible; the EPEs are over the joints "
    "found, so a cell where no visible joint is found has no EPE and is left out of the EPE mPC (named)"
)


def _value(v: Any) -> float:
    """Return a cell as a float: ``None`` (JSON's NaN) becomes NaN."""
    return math.nan if v is None else float(v)


def _mean(values: Iterable[Any]) -> float:
    kept = [x for x in (_value(v) for v in values) if not math.isnan(x)]
    return math.fsum(kept) / len(kept) if kept else math.nan


def mean_performance(cells: Mapping[str, Mapping[Any, Any]]) -> float:
    """mPC: the mean over corruptions of each corruption's mean over its severities.

    Parameters
    ----------
    cells : mapping
        ``cells[corruption][severity] = P_cs``. A missing severity, a NaN or a ``None`` value
        is left out; a corruption without any value is left out.

    Returns
    -------
    float
        NaN when no cell has a value.

    Examples
    --------
    >>> mean_performance({"a": {1: 0.2, 2: 0.4, 3: 0.6}, "b": {1: 0.9, 2: None}})
    0.65
    """
    return _mean(_mean(row.values()) for row in cells.values())


def relative_performance(mpc: float, clean: float, higher_is_better: bool = True) -> float:
    """rPC: ``mPC / P_clean`` (higher is better) or ``P_clean / mPC`` (an error); NaN when undefined.

    Examples
    --------
    >>> relative_performance(0.6, 0.8), relative_performance(12.0, 6.0, higher_is_better=False)
    (0.7499999999999999, 0.5)
    """
    num, den = (_value(mpc), _value(clean)) if higher_is_better else (_value(clean), _value(mpc))
    return num / den if den != 0 and not math.isnan(den) else math.nan


@dataclass(frozen=True)
class CorruptionErrors:
    """Hendrycks' corruption errors of a model against a baseline, per corruption and averaged.

    Attributes
    ----------
    ce, relative_ce : dict
        Corruption -> ``CE_c`` and relative ``CE_c`` (ratios; 1 = the baseline's).
    mce, relative_mce : float
        Their means over corruptions.
    reasons : dict
        ``"CE.<c>"``, ``"relative_CE.<c>"``, ``"mCE"``, ``"relative_mCE"`` -> why that figure is NaN.
    """

    ce: dict[str, float]
    mce: float
    relative_ce: dict[str, float]
    relative_mce: float
    reasons: dict[str, str] = field(default_factory=dict)


def _error(p: float, higher_is_better: bool) -> float:
    return 1.0 - p if higher_is_better else p


def _ratio(num: float, den: float, when_zero: str, reasons: dict[str, str], key: str) -> float:
    if den == 0:
        reasons[key] = when_zero
        return math.nan
    return num / den


def _one_corruption(
    name: str,
    mine: Mapping[Any, Any],
    base: Mapping[Any, Any],
    clean: tuple[float, float],
    higher_is_better: bool,
    reasons: dict[str, str],
) -> tuple[float, float]:
    """``(CE_c, relative CE_c)`` of one corruption; NaN with a reason where it does not exist."""
    levels = list(mine)
    if sorted(map(str, levels)) != sorted(map(str, base)):
        why = f"severities differ from the baseline's ({list(mine)} vs {list(base)})"
        reasons[f"CE.{name}"] = reasons[f"relative_CE.{name}"] = why
        return math.nan, math.nan
    by_str = {str(k): v for k, v in base.items()}
    pairs = [(_value(mine[s]), _value(by_str[str(s)])) for s in levels]
    missing = [str(s) for s, (a, b) in zip(levels, pairs, strict=True) if math.isnan(a) or math.isnan(b)]
    if missing:
        why = f"P missing at severity {', '.join(missing)}"
        reasons[f"CE.{name}"] = reasons[f"relative_CE.{name}"] = why
        return math.nan, math.nan
    err = [(_error(a, higher_is_better), _error(b, higher_is_better)) for a, b in pairs]
    no_error = "the baseline has no error under it (sum_s E^base_cs = 0)"
    ce = _ratio(math.fsum(a for a, _ in err), math.fsum(b for _, b in err), no_error, reasons, f"CE.{name}")
    e_clean, b_clean = (_error(_value(c), higher_is_better) for c in clean)
    if math.isnan(e_clean) or math.isnan(b_clean):
        reasons[f"relative_CE.{name}"] = "no clean P for the model or the baseline"
        return ce, math.nan
    rel = _ratio(
        math.fsum(a - e_clean for a, _ in err),
        math.fsum(b - b_clean for _, b in err),
        "the baseline lost nothing under it (sum_s (E^base_cs - E^base_clean) = 0)",
        reasons,
        f"relative_CE.{name}",
    )
    return ce, rel


def _mean_of_all(values: Mapping[str, float], key: str, reasons: dict[str, str]) -> float:
    """Return the mean over corruptions, or NaN (naming those without a value) if any lacks one."""
    lacking = [c for c, v in values.items() if math.isnan(v)]
    if lacking or not values:
        reasons[key] = f"no value for {', '.join(lacking) or 'any corruption'}"
        return math.nan
    return math.fsum(values.values()) / len(values)


def corruption_errors(
    cells: Mapping[str, Mapping[Any, Any]],
    baseline_cells: Mapping[str, Mapping[Any, Any]],
    clean: float = math.nan,
    baseline_clean: float = math.nan,
    higher_is_better: bool = True,
) -> CorruptionErrors:
    """Hendrycks' CE per corruption, mCE, and their relative forms, against a baseline.

    With ``E = 1 - P`` (``E = P`` when ``higher_is_better`` is False, an error metric):
    ``CE_c = sum_s E_cs / sum_s E^base_cs``, ``rCE_c = sum_s (E_cs - E_clean) / sum_s (E^base_cs -
    E^base_clean)``; ``mCE`` and the relative mCE are their means over corruptions.

    Parameters
    ----------
    cells, baseline_cells : mapping
        ``[corruption][severity] -> P`` of the model and of the baseline, on the same cells
        (severity keys may be ints or strings). ``None`` or NaN is a missing value.
    clean, baseline_clean : float
        ``P_clean`` of each (needed for the relative forms only).
    higher_is_better : bool
        Whether ``P`` is a performance (AUC) or an error.

    Returns
    -------
    CorruptionErrors
        A corruption with a missing cell has no CE (NaN with its reason), and then neither has
        mCE: averaging the rest would flatter a model that fails where the data are hardest.
        A corruption without any cell in ``cells`` (the suite defines none of the severities
        benchmarked for it) is not a corruption of this table: it is left out.

    Examples
    --------
    >>> e = corruption_errors({"a": {1: 0.6, 2: 0.4}}, {"a": {1: 0.8, 2: 0.7}}, 0.9, 0.9)
    >>> round(e.mce, 6), round(e.relative_mce, 6)  # (0.4 + 0.6) / (0.2 + 0.3); (0.3 + 0.5) / (0.1 + 0.2)
    (2.0, 2.666667)
    """
    reasons: dict[str, str] = {}
    ce: dict[str, float] = {}
    rel: dict[str, float] = {}
    for name, row in cells.items():
        if not row:
            continue  # no cell at these severities: not part of the table
        if name not in baseline_cells:
            reasons[f"CE.{name}"] = reasons[f"relative_CE.{name}"] = "not in the baseline"
            ce[name] = rel[name] = math.nan
            continue
        pair = (_value(clean), _value(baseline_clean))
        ce[name], rel[name] = _one_corruption(
            name, row, baseline_cells[name], pair, higher_is_better, reasons
        )
    mce = _mean_of_all(ce, "mCE", reasons)
    relative_mce = _mean_of_all(rel, "relative_mCE", reasons)
    return CorruptionErrors(ce, mce, rel, relative_mce, reasons)


# --------------------------------------------------------------------------------------------
# The suite section of report.json.


def resolve_suite(suite: Suite | str | Mapping[str, Any]) -> Suite:
    """Return a :class:`~keypoint_corrupt.suites.Suite` from itself, a registered name or a spec.

    Examples
    --------
    >>> resolve_suite("costa2021").config("defocus", 3)
    'defocus-21'
    """
    if isinstance(suite, Suite):
        return suite
    if isinstance(suite, str):
        return get_suite(suite)
    table = {c: tuple(v) for c, v in suite["table"].items()}
    return Suite(str(suite["name"]), table, str(suite.get("description", "")), str(suite.get("protocol", "")))


def _severities(suite: Suite, severities: Sequence[int] | None) -> tuple[int, ...]:
    wanted = tuple(suite.severities if severities is None else sorted(set(severities)))
    suite.configs(wanted)  # raises, naming the suite's range, for a severity it does not have
    return wanted


def suite_spec(suite: Suite | str, severities: Sequence[int] | None = None) -> dict[str, Any]:
    """Describe ``suite`` so that a report rebuilds it without the registry (in ``predictions.npz``).

    Examples
    --------
    >>> spec = suite_spec("costa2021", [1])
    >>> spec["severities"], spec["table"]["defocus"]
    ([1], ['defocus-7', 'defocus-13', 'defocus-21'])
    """
    s = resolve_suite(suite)
    return {
        "name": s.name,
        "description": s.description,
        "protocol": s.protocol,
        "table": {c: list(v) for c, v in s.table.items()},
        "severities": list(_severities(s, severities)),
    }


def _cell_configs(suite: Suite, severities: Sequence[int]) -> dict[str, dict[str, str]]:
    """``{corruption: {"<severity>": configuration}}`` for the requested severities that exist."""
    return {
        c: {str(s): names[s - 1] for s in severities if s <= len(names)} for c, names in suite.table.items()
    }


def _threshold_text(thresholds: np.ndarray) -> str:
    return (
        f"AUC of the PCK curve over {len(thresholds)} thresholds from {thresholds[0]:g} to "
        f"{thresholds[-1]:g} px (trapezoid rule, divided by the range), averaged over joints as "
        "hand3d does; in [0, 1], higher is better"
    )


def plain_summary(metric: str, label: str, clean: float, corrupted: Mapping[str, float]) -> dict[str, Any]:
    """Return mPC (the plain mean of a metric over the configurations) and rPC, without a suite's table.

    A configuration whose metric does not exist (NaN) is left out and named in ``excluded``;
    an mPC or rPC that does not exist is NaN with its reason in ``reasons``.

    Examples
    --------
    >>> s = plain_summary("ap", "AP", 0.8, {"fog-3": 0.4, "snow-1": float("nan")})
    >>> s["mPC"], s["rPC"], s["excluded"]
    (0.4, 0.5, ['snow-1'])
    >>> plain_summary("ap", "AP", 0.0, {"fog-3": 0.4})["reasons"]
    {'rPC': 'AP_clean is 0 (rPC = mPC / AP_clean)'}
    """
    excluded = [n for n, v in corrupted.items() if math.isnan(v)]
    kept = [v for v in corrupted.values() if not math.isnan(v)]
    mpc = math.fsum(kept) / len(kept) if kept else math.nan
    reasons: dict[str, str] = {}
    if math.isnan(mpc):
        reasons["mPC"] = f"{label} exists in no configuration" if corrupted else "no configuration evaluated"
    rpc = mpc / clean if clean and not math.isnan(clean) and not math.isnan(mpc) else math.nan
    if math.isnan(rpc) and "mPC" not in reasons:
        reasons["rPC"] = (
            "no clean row" if math.isnan(clean) else f"{label}_clean is 0 (rPC = mPC / {label}_clean)"
        )
    return {
        "metric": metric,
        "definition": f"mPC = the mean of {label} over the configurations evaluated; "
        f"rPC = mPC / {label}_clean",
        "clean": clean,
        "mPC": mpc,
        "rPC": rpc,
        "excluded": excluded,
        "reasons": reasons,
    }


def suite_positions(section: Mapping[str, Any] | None) -> dict[str, tuple[str, str]]:
    """Return each configuration's ``(corruption, severity)`` cell in a report's suite table.

    Examples
    --------
    >>> suite_positions({"table": {"fog": {"3": "imagenet-c.fog-3"}}})
    {'imagenet-c.fog-3': ('fog', '3')}
    >>> suite_positions(None)
    {}
    """
    if not section:
        return {}
    return {cfg: (c, s) for c, row in section["table"].items() for s, cfg in row.items()}


def suite_cells(suite: Suite | str | Mapping[str, Any], severities: Sequence[int] | None) -> dict[str, Any]:
    """Describe the cells of ``suite`` at ``severities``, whatever the metric (any protocol's suite section).

    ``name``, ``description``, ``protocol``, ``severities``, ``corruptions``, ``table``
    (``[corruption]["<severity>"]`` -> configuration), ``not_in_suite`` and ``left_out``.

    Examples
    --------
    >>> suite_cells("costa2021", [2])["table"]["defocus"], suite_cells("costa2021", [2])["left_out"]
    ({'2': 'defocus-13'}, ['noise-gaussian', 'noise-saltpepper'])
    """
    s = resolve_suite(suite)
    wanted = _severities(s, severities)
    cells = _cell_configs(s, wanted)
    absent = {c: [v for v in wanted if str(v) not in cells[c]] for c in cells}
    return {
        "name": s.name,
        "description": s.description,
        "protocol": s.protocol,
        "severities": list(wanted),
        "corruptions": list(s.corruptions),
        "table": cells,
        "not_in_suite": {c: v for c, v in absent.items() if v},
        "left_out": [c for c, row in cells.items() if not row],
    }


def suite_header(
    suite: Suite | str, severities: Sequence[int] | None, thresholds: Sequence[float] | np.ndarray
) -> dict[str, Any]:
    """Build the part of a suite section known before any evaluation (enough to check a baseline).

    Examples
    --------
    >>> h = suite_header("costa2021", None, [0.0, 15.0, 30.0])
    >>> h["severities"], h["not_in_suite"]["noise-gaussian"], h["table"]["motion"]["2"]
    ([1, 2, 3], [2, 3], 'motion-30')
    >>> suite_header("costa2021", [2, 3], [0.0, 30.0])["left_out"]  # the noises have severity 1 only
    ['noise-gaussian', 'noise-saltpepper']
    """
    t = np.asarray(thresholds, np.float64)
    return {
        **suite_cells(suite, severities),
        "primary_metric": PRIMARY_METRIC,
        "thresholds": {"from": float(t[0]), "to": float(t[-1]), "count": len(t)},
        "definitions": {
            "auc": _threshold_text(t),
            "mean_epe": "mean over joints of each joint's mean Euclidean error in original-image "
            "pixels, over the joints found; lower is better",
            "mPC": MPC_DEFINITION,
            "rPC": RPC_DEFINITION,
            "mCE": MCE_DEFINITION,
            "misses": MISSES_POLICY,
        },
    }


def metric_block(
    metric: str,
    clean: Any,
    cells: Mapping[str, Mapping[str, Any]],
    severities: Sequence[int],
    higher_is_better: bool | None = None,
) -> dict[str, Any]:
    """One metric's table, means, mPC and rPC, each NaN explained in ``reasons``.

    ``clean`` and each cell are figures objects: ``getattr(m, metric)`` is the value and
    ``m.reason(metric)`` why it is NaN (``""`` or ``None`` when defined). ``higher_is_better``
    defaults to :data:`SUITE_METRICS`' entry (a metric of another protocol passes it).
    """
    higher = SUITE_METRICS[metric] if higher_is_better is None else higher_is_better
    reasons: dict[str, str] = {}
    why_clean = clean.reason(metric)
    if why_clean:
        reasons["clean"] = why_clean
    values: dict[str, dict[str, float]] = {}
    excluded: list[str] = []
    for c, row in cells.items():
        if not row:
            continue  # the suite defines none of these severities for c: left out (header's left_out)
        values[c] = {}
        for s, m in row.items():
            values[c][s] = float(getattr(m, metric))
            why = m.reason(metric)
            if why:
                reasons[f"cells.{c}.{s}"] = why
                excluded.append(f"{c} {s}")
    by_corruption = {c: _mean(v.values()) for c, v in values.items()}
    by_severity = {str(s): _mean(v[str(s)] for v in values.values() if str(s) in v) for s in severities}
    for key, table in (("by_corruption", by_corruption), ("by_severity", by_severity)):
        for k, v in table.items():
            if math.isnan(v):
                reasons[f"{key}.{k}"] = f"{metric} exists in none of its cells"
    mpc = mean_performance(values)
    rpc = relative_performance(mpc, float(getattr(clean, metric)), higher)
    if math.isnan(mpc):
        reasons["mPC"] = f"{metric} exists in none of the cells"
    if math.isnan(rpc):
        reasons["rPC"] = _rpc_reason(float(getattr(clean, metric)), mpc, higher)
    return {
        "higher_is_better": higher,
        "clean": float(getattr(clean, metric)),
        "cells": values,
        "by_corruption": by_corruption,
        "by_severity": by_severity,
        "mPC": mpc,
        "rPC": rpc,
        "cells_used": sum(not math.isnan(v) for row in values.values() for v in row.values()),
        "excluded": excluded,
        "reasons": reasons,
    }


def _rpc_reason(clean: float, mpc: float, higher_is_better: bool) -> str:
    """Say why rPC does not exist: a missing operand, or the divisor that is 0.

    Examples
    --------
    >>> _rpc_reason(0.0, 0.15, True), _rpc_reason(4.0, 0.0, False)
    ('P_clean is 0 (rPC = mPC / P_clean)', 'mPC is 0 (rPC = P_clean / mPC)')
    """
    if math.isnan(clean):
        return "no clean value"
    if math.isnan(mpc):
        return "no mPC"
    if higher_is_better:
        return "P_clean is 0 (rPC = mPC / P_clean)"
    return "mPC is 0 (rPC = P_clean / mPC)"


def _ids_digest(ids: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(map(str, ids)).encode("utf-8")).hexdigest()


def _data_entry(row: Any) -> dict[str, Any]:
    m = row.metrics
    return {
        "annotations": len(row.ids),
        "with_visible_joint": int(m.num_instances),
        "visible_joints": int(m.num_visible),
        "found_joints": int(m.num_found),
        "ids_sha256": _ids_digest(row.ids),
    }


def suite_section(
    suite: Suite | str | Mapping[str, Any], rows: Mapping[str, Any], severities: Sequence[int] | None = None
) -> dict[str, Any]:
    """Build the ``suite`` section of ``report.json`` from a benchmark's rows.

    Parameters
    ----------
    suite : Suite, str or mapping
        The suite (or its name, or :func:`suite_spec`'s dict).
    rows : mapping
        Row name -> :class:`~keypoint_corrupt.benchmark.RowResult` (``standard`` and one row
        per configuration of the requested cells), as :func:`~keypoint_corrupt.benchmark.evaluate`
        returns them with ``configs=suite.configs(severities)``.
    severities : sequence of int, optional
        The severities benchmarked; default all of the suite's.

    Returns
    -------
    dict
        :func:`suite_header`'s fields, then ``metrics`` (per metric: ``clean``, ``cells``
        ``[corruption]["<severity>"]`` of the corruptions not ``left_out``, ``by_corruption``,
        ``by_severity``, ``mPC``, ``rPC``,
        ``cells_used``, ``excluded``, ``reasons``), ``data`` (annotations, visible joints and a
        SHA-256 of the sample ids of the clean split and of each cell's configuration) and
        ``baseline`` (``None``; see :func:`baseline_block`). Values are floats, NaN included.

    Raises
    ------
    ValueError
        A row of the table (or ``standard``) is missing.

    Examples
    --------
    >>> import numpy as np
    >>> from keypoint_corrupt.benchmark import evaluate
    >>> from keypoint_corrupt.datasets import STB, bundled_sample_root
    >>> from keypoint_corrupt.suites import get_suite
    >>> costa = get_suite("costa2021")
    >>> res = evaluate(lambda im, crops: np.repeat(crops.center[:, None], 21, 1),
    ...                STB(bundled_sample_root(), "val"), costa.configs([3]), examples=0)
    >>> sec = suite_section(costa, res.rows, [3])
    >>> sec["left_out"], list(sec["metrics"]["auc"]["cells"])  # the noises have severity 1 only
    (['noise-gaussian', 'noise-saltpepper'], ['defocus', 'motion', 'occlusion'])
    """
    s = resolve_suite(suite)
    if STANDARD not in rows:
        raise ValueError("a suite report needs the clean row 'standard' (evaluate with standard=True)")
    standard = rows[STANDARD]
    header = suite_header(s, severities, standard.metrics.thresholds)
    missing = [cfg for row in header["table"].values() for cfg in row.values() if cfg not in rows]
    if missing:
        raise ValueError(
            f"the result has no row for {', '.join(missing)} of suite {s.name!r}; evaluate with "
            f"configs=suite.configs({header['severities']})"
        )
    by_cell = {c: {sv: rows[cfg].metrics for sv, cfg in row.items()} for c, row in header["table"].items()}
    metrics = {k: metric_block(k, standard.metrics, by_cell, header["severities"]) for k in SUITE_METRICS}
    data = {
        "clean": _data_entry(standard),
        "cells": {cfg: _data_entry(rows[cfg]) for row in header["table"].values() for cfg in row.values()},
    }
    return {**header, "metrics": metrics, "data": data, "baseline": None}


# --------------------------------------------------------------------------------------------
# Baselines (mCE).


class BaselineMismatchError(ValueError):
    """The baseline report is not of the same suite, severities, thresholds or data."""


_SOURCE_KEYS = ("dataset", "split", "fraction", "seed")


def _data_problems(mine: Mapping[str, Any], theirs: Mapping[str, Any]) -> list[str]:
    """Rows whose number of annotations, or whose sample ids (by digest), differ from the baseline's."""
    problems = []
    other_ids = []
    pairs = [("the clean split", mine.get("clean"), theirs.get("clean"))]
    cells_b = theirs.get("cells") or {}
    pairs += [(cfg, entry, cells_b.get(cfg)) for cfg, entry in (mine.get("cells") or {}).items()]
    for what, a, b in pairs:
        if not a or not b:
            continue
        if a.get("annotations") != b.get("annotations"):
            problems.append(f"{what}: {a.get('annotations')} annotations, baseline {b.get('annotations')}")
        elif a.get("ids_sha256") and b.get("ids_sha256") and a["ids_sha256"] != b["ids_sha256"]:
            other_ids.append(what)
    if other_ids:
        shown = ", ".join(other_ids[:4]) + (f" and {len(other_ids) - 4} more" if len(other_ids) > 4 else "")
        problems.append(f"other samples (their ids differ) in {shown}")
    return problems


def check_baseline(
    section: Mapping[str, Any],
    baseline: Mapping[str, Any],
    source: Mapping[str, Any] | None = None,
    baseline_source: Mapping[str, Any] | None = None,
) -> None:
    """Refuse a baseline that was not measured on the same suite, severities, PCK range and data.

    ``section`` may be :func:`suite_header`'s (before evaluating: the data are not compared) or
    :func:`suite_section`'s; ``baseline`` is the baseline report's ``suite`` section. ``source``
    and ``baseline_source`` (the reports' ``source``) add the dataset, split, fraction and seed to
    the comparison where both record them. Sample ids are compared by their recorded digests.

    Raises
    ------
    BaselineMismatchError
        Naming every difference.

    Examples
    --------
    >>> a = suite_header("costa2021", [1, 2], [0.0, 30.0])
    >>> check_baseline(a, suite_header("costa2021", [1, 2, 3], [0.0, 30.0]))
    Traceback (most recent call last):
    ...
    keypoint_corrupt.benchmark.suite_report.BaselineMismatchError: severities: [1, 2], baseline [1, 2, 3]
    """
    problems = []
    for key in ("name", "severities", "primary_metric", "thresholds"):
        if section.get(key) != baseline.get(key):
            label = "suite" if key == "name" else key.replace("_", " ")
            problems.append(f"{label}: {section.get(key)}, baseline {baseline.get(key)}")
    same = all(section.get(k) == baseline.get(k) for k in ("name", "severities"))
    if same and section.get("table") != baseline.get("table"):
        problems.append("the suite's table (configuration of each cell) differs from the baseline's")
    for key in _SOURCE_KEYS:
        a, b = (source or {}).get(key), (baseline_source or {}).get(key)
        if a is not None and b is not None and a != b:
            problems.append(f"data {key}: {a}, baseline {b}")
    problems += _data_problems(section.get("data") or {}, baseline.get("data") or {})
    if problems:
        raise BaselineMismatchError("; ".join(problems))


def baseline_block(
    section: Mapping[str, Any], baseline_doc: Mapping[str, Any], report: str | None = None
) -> dict[str, Any]:
    """Build the ``suite.baseline`` section: mCE of ``section`` against a baseline report's.

    Parameters
    ----------
    section : mapping
        This model's :func:`suite_section` (floats or JSON's ``None``).
    baseline_doc : mapping
        The baseline's whole ``report.json`` (its ``label``, ``created`` and ``suite``); check
        it first with :func:`check_baseline`.
    report : str, optional
        Where the baseline report was read, recorded.

    Returns
    -------
    dict
        ``label``, ``report``, ``created``, ``metric``, ``error``, the baseline's ``clean`` and
        ``mPC``, ``CE`` and ``relative_CE`` per corruption, ``mCE``, ``relative_mCE``, ``reasons``.
    """
    theirs = baseline_doc["suite"]
    metric = section["primary_metric"]
    higher = SUITE_METRICS[metric]
    mine_m, theirs_m = section["metrics"][metric], theirs["metrics"][metric]
    errs = corruption_errors(
        mine_m["cells"], theirs_m["cells"], _value(mine_m["clean"]), _value(theirs_m["clean"]), higher
    )
    return {
        "label": baseline_doc.get("label"),
        "report": report,
        "created": baseline_doc.get("created"),
        "metric": metric,
        "error": f"1 - {_TITLE[metric]}" if higher else _TITLE[metric],
        "clean": _value(theirs_m["clean"]),
        "mPC": _value(theirs_m["mPC"]),
        "CE": errs.ce,
        "relative_CE": errs.relative_ce,
        "mCE": errs.mce,
        "relative_mCE": errs.relative_mce,
        "reasons": errs.reasons,
    }


# --------------------------------------------------------------------------------------------
# report.md


def fmt_figure(value: Any, why: str | None = None, digits: int = 3) -> str:
    """Format a report figure: ``digits`` decimals, or ``-`` (with its reason) where it does not exist.

    Examples
    --------
    >>> fmt_figure(0.12345), fmt_figure(float("nan"), "no clean row")
    ('0.123', '- (no clean row)')
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return f"- ({why})" if why else "-"
    return f"{float(value):.{digits}f}"


def _pct(value: Any, why: str | None = None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return f"- ({why})" if why else "-"
    return f"{100 * float(value):.1f}%"


def _counts(data: Mapping[str, Any], source: Mapping[str, Any]) -> str:
    clean = data.get("clean") or {}
    sizes = sorted({e["annotations"] for e in (data.get("cells") or {}).values()})
    each = str(sizes[0]) if len(sizes) == 1 else f"{sizes[0]} to {sizes[-1]}" if sizes else "0"
    subset = f"fraction {source.get('fraction')}, seed {source.get('seed')}"
    return (
        f"clean: the whole split, {clean.get('annotations')} annotations ({clean.get('with_visible_joint')} "
        f"with a visible joint, {clean.get('visible_joints')} visible joints); each cell: the "
        f"configuration's corrupted subset, {each} annotations ({subset})"
    )


def _protocol_lines(sec: Mapping[str, Any], source: Mapping[str, Any]) -> list[str]:
    d = sec["definitions"]
    absent = sec.get("not_in_suite") or {}
    total = len(sec["corruptions"]) * len(sec["severities"])
    present = total - sum(len(v) for v in absent.values())
    lines = [
        f"- suite: `{sec['name']}`" + (f" ({sec['description']})" if sec.get("description") else ""),
        f"- protocol: {sec.get('protocol') or '(none stated by the suite)'}",
        f"- severities: {', '.join(map(str, sec['severities']))}; {len(sec['corruptions'])} corruptions; "
        f"{present} of {total} cells",
    ]
    left_out = _left_out(sec)
    partly = {c: v for c, v in absent.items() if c not in left_out}
    if partly:
        listed = "; ".join(f"{c}: {', '.join(map(str, v))}" for c, v in partly.items())
        lines.append(
            f"- not in the suite (shown as `·`, left out of every mean): {listed}. A corruption's mean is "
            "over the severities it has."
        )
    if left_out:
        severities = ", ".join(map(str, sec["severities"]))
        lines.append(
            f"- not in the suite at severities {severities}, so left out of the tables, mPC and mCE: "
            f"{', '.join(left_out)}"
        )
    lines += [
        f"- P (metric of mPC, rPC, mCE): {d['auc']}. Second table: mean EPE, {d['mean_epe']}.",
        f"- data: {_counts(sec.get('data') or {}, source)}",
        f"- misses: {d['misses']}",
        f"- {d['mPC']}",
        f"- {d['rPC']}",
    ]
    return lines


def _left_out(sec: Mapping[str, Any]) -> list[str]:
    """Return the corruptions without any cell at the severities benchmarked."""
    table = sec.get("table") or {}
    return [c for c in sec["corruptions"] if c in table and not table[c]]


def metric_table_lines(sec: Mapping[str, Any], metric: str) -> list[str]:
    """Render one metric of a suite section: the corruption x severity table of report.md, its mPC line."""
    block = sec["metrics"][metric]
    why = block.get("reasons") or {}
    sevs = [str(s) for s in sec["severities"]]
    lines = [
        "| corruption | clean | " + " | ".join(f"severity {s}" for s in sevs) + " | mean |",
        "| --- | " + " | ".join("---:" for _ in range(len(sevs) + 2)) + " |",
    ]
    clean = fmt_figure(block["clean"], why.get("clean"))
    left_out = _left_out(sec)
    for c in (c for c in sec["corruptions"] if c not in left_out):
        row = block["cells"].get(c, {})
        cells = [fmt_figure(row[s], why.get(f"cells.{c}.{s}")) if s in row else "·" for s in sevs]
        mean = fmt_figure(block["by_corruption"].get(c), why.get(f"by_corruption.{c}"))
        lines.append(f"| {c} | {clean} | " + " | ".join(cells) + f" | {mean} |")
    means = [fmt_figure(block["by_severity"].get(s), why.get(f"by_severity.{s}")) for s in sevs]
    mpc = fmt_figure(block["mPC"], why.get("mPC"))
    lines.append(f"| mean over corruptions | {clean} | " + " | ".join(means) + f" | mPC {mpc} |")
    lines.append("")
    text = f"mPC {mpc}, rPC {fmt_figure(block['rPC'], why.get('rPC'))} ({block['cells_used']} cells averaged"
    if block.get("excluded"):
        text += f"; left out, no value: {', '.join(block['excluded'])}"
    lines += [text + ").", ""]
    return lines


def _baseline_lines(sec: Mapping[str, Any]) -> list[str]:
    b = sec.get("baseline")
    if not b:
        return []
    why = b.get("reasons") or {}
    lines = [
        f"#### mCE against {b.get('label')}" + (f" (`{b['report']}`)" if b.get("report") else ""),
        "",
        f"{sec['definitions']['mCE']}. Error E = {b['error']}. Baseline: clean {fmt_figure(b['clean'])}, "
        f"mPC {fmt_figure(b['mPC'])}.",
        "",
        "| corruption | CE | relative CE |",
        "| --- | ---: | ---: |",
    ]
    left_out = _left_out(sec)
    for c in (c for c in sec["corruptions"] if c not in left_out):
        ce = _pct(b["CE"].get(c), why.get(f"CE.{c}"))
        rel = _pct(b["relative_CE"].get(c), why.get(f"relative_CE.{c}"))
        lines.append(f"| {c} | {ce} | {rel} |")
    mce = _pct(b["mCE"], why.get("mCE"))
    lines.append(f"| **mCE** | {mce} | {_pct(b['relative_mCE'], why.get('relative_mCE'))} |")
    lines += [
        "",
        "100% = as robust as the baseline; below 100%, more robust. The relative CE divides by what "
        "the baseline lost from its clean P under that corruption: where that loss is small it is "
        "unstable, and where the baseline did better corrupted than clean it is negative.",
        "",
    ]
    return lines


def suite_markdown(parts: Sequence[tuple[str, Mapping[str, Any]]], source: Mapping[str, Any]) -> list[str]:
    """Render the suite section of ``report.md``: protocol, the tables of each model, mCE.

    ``parts`` holds ``(label, suite section)`` per model (its ``report.json`` form).
    """
    first = parts[0][1]
    lines = [f"## Suite `{first['name']}`: performance by corruption and severity", ""]
    lines += _protocol_lines(first, source)
    lines += ["- `·`: the suite has no such severity for that corruption", ""]
    for label, sec in parts:
        for metric in SUITE_METRICS:
            role = "P" if metric == sec["primary_metric"] else "second table"
            lines += [f"### {label}: {_TITLE[metric]} ({role})", ""]
            lines += metric_table_lines(sec, metric)
        lines += _baseline_lines(sec)
    return lines
