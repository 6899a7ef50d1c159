"""The raw predictions of a benchmark (``predictions.npz``), and every reported number recomputed from them.

:func:`~keypoint_corrupt.benchmark.write_report` saves, beside ``report.json``, one NumPy archive
per model: ``predictions.npz`` (and ``predictions_compare.npz`` for a compared model). It holds,
for each row (``standard`` and each configuration), under the keys ``<row>/<field>``:

* ``ids`` - the source sample ids, in evaluation order (``N`` strings);
* ``predictions`` - ``N x J x 2`` predicted keypoints in original-image pixels, NaN where the
  predictor missed a joint (in the dataset's joint order, after any schema reordering);
* ``scores`` - ``N x J`` per-joint scores, only when the predictor returned them;
* ``keypoints`` - ``N x J x 2`` ground truth; ``visibility`` - ``N x J`` bools.

and, at the top level, ``rows`` (the row names in report order), ``thresholds`` (PCK, pixels),
``format`` and ``format_version``; a suite benchmark adds ``suite``, the suite as JSON text
(name, description, protocol, table, severities benchmarked), so that its tables need no
registry. :func:`recompute` rebuilds the report's rows, its mPC / rPC summary and its suite
section (mCE too, given the baseline report) from the archive alone, with the same functions the
benchmark uses, and gets identical numbers.

Examples
--------
>>> import tempfile, numpy as np
>>> from keypoint_corrupt.benchmark import evaluate, write_report
>>> from keypoint_corrupt.datasets import STB, bundled_sample_root
>>> res = evaluate(lambda im, crops: np.repeat(crops.center[:, None], 21, 1),
...                STB(bundled_sample_root(), "val"), ["defocus-7"], examples=0)
>>> out = tempfile.mkdtemp()
>>> _ = write_report(res, out, plots=False)
>>> again = recompute(out)
>>> again["rows"][1]["mean_epe"] == res.rows["defocus-7"].metrics.mean_epe
True
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from keypoint_corrupt.benchmark.evaluate import BenchmarkResult, RowResult, _family, _summary
from keypoint_corrupt.metrics import keypoint_metrics

__all__ = [
    "PREDICTIONS_FILE",
    "PREDICTIONS_FORMAT",
    "RowPredictions",
    "load_predictions",
    "recompute",
    "save_predictions",
]

#: The archive :func:`save_predictions` writes in a report folder.
PREDICTIONS_FILE = "predictions.npz"
#: Its ``format`` field.
PREDICTIONS_FORMAT = "keypoint-corrupt/benchmark-predictions"
_FIELDS = ("ids", "predictions", "scores", "keypoints", "visibility")


@dataclass(eq=False)
class RowPredictions:
    """One row of ``predictions.npz``.

    Attributes
    ----------
    name : str
        ``"standard"`` or the configuration.
    ids : list of str
        Sample ids.
    predictions, keypoints : numpy.ndarray
        ``N x J x 2`` predictions (NaN for misses) and ground truth.
    visibility : numpy.ndarray
        ``N x J`` bools.
    scores : numpy.ndarray or None
        ``N x J`` scores, when the predictor returned them.
    """

    name: str
    ids: list[str]
    predictions: np.ndarray
    keypoints: np.ndarray
    visibility: np.ndarray
    scores: np.ndarray | None = None


def save_predictions(
    result: BenchmarkResult, path: str | os.PathLike[str], suite: dict[str, Any] | None = None
) -> Path:
    """Write the raw predictions of ``result``, row by row, to a NumPy archive.

    Parameters
    ----------
    result : BenchmarkResult
        From :func:`~keypoint_corrupt.benchmark.evaluate`.
    path : path
        The ``.npz`` file to write.
    suite : dict, optional
        :func:`~keypoint_corrupt.benchmark.suite_report.suite_spec` of a suite benchmark,
        stored as JSON text under ``suite``.

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> from keypoint_corrupt.benchmark import evaluate
    >>> from keypoint_corrupt.datasets import STB, bundled_sample_root
    >>> res = evaluate(lambda im, crops: np.repeat(crops.center[:, None], 21, 1),
    ...                STB(bundled_sample_root(), "val"), (), examples=0)
    >>> p = save_predictions(res, pathlib.Path(tempfile.mkdtemp()) / "predictions.npz")
    >>> load_predictions(p)["standard"].predictions.shape
    (8, 21, 2)
    """
    arrays: dict[str, np.ndarray] = {
        "format": np.array(PREDICTIONS_FORMAT),
        "format_version": np.array(1),
        "rows": np.array(list(result.rows), dtype=str),
        "thresholds": np.asarray(result.thresholds, np.float64),
    }
    if suite is not None:
        arrays["suite"] = np.array(json.dumps(suite))
    for name, row in result.rows.items():
        arrays[f"{name}/ids"] = np.array(row.ids, dtype=str)
        arrays[f"{name}/predictions"] = np.asarray(row.predictions, np.float64)
        arrays[f"{name}/keypoints"] = np.asarray(row.keypoints, np.float64)
        arrays[f"{name}/visibility"] = np.asarray(row.visibility, bool)
        if row.scores is not None:
            arrays[f"{name}/scores"] = np.asarray(row.scores, np.float64)
    out = Path(path)
    with out.open("wb") as fh:  # a file object: NumPy adds no second ".npz"
        np.savez_compressed(fh, **arrays)  # type: ignore[arg-type]
    return out


def _archive(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    return p / PREDICTIONS_FILE if p.is_dir() else p


def _read(path: str | os.PathLike[str]) -> tuple[dict[str, RowPredictions], np.ndarray]:
    return _read_all(path)[:2]


def _read_all(
    path: str | os.PathLike[str],
) -> tuple[dict[str, RowPredictions], np.ndarray, dict[str, Any] | None]:
    """Rows, thresholds and the suite spec (``None`` without) of an archive."""
    file = _archive(path)
    with np.load(file, allow_pickle=False) as z:
        if "format" not in z.files or str(z["format"]) != PREDICTIONS_FORMAT:
            raise ValueError(f"{file} is not a benchmark predictions archive")
        rows: dict[str, RowPredictions] = {}
        for name in (str(n) for n in z["rows"]):
            scores = np.asarray(z[f"{name}/scores"]) if f"{name}/scores" in z.files else None
            rows[name] = RowPredictions(
                name,
                [str(i) for i in z[f"{name}/ids"]],
                np.asarray(z[f"{name}/predictions"]),
                np.asarray(z[f"{name}/keypoints"]),
                np.asarray(z[f"{name}/visibility"]),
                scores,
            )
        suite = json.loads(str(z["suite"])) if "suite" in z.files else None
        return rows, np.asarray(z["thresholds"]), suite


def load_predictions(path: str | os.PathLike[str]) -> dict[str, RowPredictions]:
    """Read ``predictions.npz`` (the file, or the report folder holding it).

    Returns
    -------
    dict
        Row name -> :class:`RowPredictions`, in report order.

    Examples
    --------
    See :func:`save_predictions`.
    """
    return _read(path)[0]


def recompute(
    path: str | os.PathLike[str],
    thresholds: Sequence[float] | np.ndarray | None = None,
    baseline: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Recompute a report's numbers from its saved predictions.

    Parameters
    ----------
    path : path
        A report folder (its ``predictions.npz``) or a predictions archive
        (``predictions_compare.npz`` for the compared model).
    thresholds : array_like, optional
        PCK thresholds; default those the benchmark used (saved in the archive).
    baseline : path, optional
        For a suite benchmark: the baseline's ``report.json`` (or folder), to recompute mCE.

    Returns
    -------
    dict
        ``{"thresholds", "rows", "summary", "suite"}`` in ``report.json``'s form: with the
        default thresholds, ``rows``, ``summary`` and ``suite`` equal the report's, value for
        value (``suite`` is ``None`` for a benchmark without a suite; its ``baseline`` is
        ``None`` unless ``baseline`` is given).

    Examples
    --------
    See the module's example.
    """
    saved, saved_thresholds, spec = _read_all(path)
    t = saved_thresholds if thresholds is None else thresholds
    rows: dict[str, RowResult] = {}
    for name, r in saved.items():
        metrics = keypoint_metrics(r.predictions, r.keypoints, r.visibility, t)
        rows[name] = RowResult(
            name, _family(name), metrics, r.ids, r.predictions, r.keypoints, r.visibility, r.scores
        )
    summary = _summary(rows)
    from keypoint_corrupt.benchmark.report import _add_suite, json_safe  # report imports this module

    doc: dict[str, Any] = {
        "thresholds": [float(v) for v in np.asarray(t, np.float64)],
        "rows": [row.to_dict() for row in rows.values()],
        "summary": summary.to_dict() if summary is not None else None,
        "suite": None,
    }
    if spec is not None:
        result = BenchmarkResult(rows, summary, {}, {}, {})
        _add_suite(doc, result, None, spec, spec["severities"], baseline)
    elif baseline is not None:
        raise ValueError(f"{_archive(path)} holds no suite: mCE needs a suite benchmark")

    # As report.json stores it: strict JSON (NaN -> null), floats round-tripped exactly.
    loaded: dict[str, Any] = json.loads(json.dumps(json_safe(doc), allow_nan=False))
    return loaded
