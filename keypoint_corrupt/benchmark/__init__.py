"""Robustness benchmark: Table I (speed) and Table II (accuracy under corruption) for any keypoint model.

* :func:`evaluate` - any ``predict(images[, crops])`` callable on the clean split and on each
  corruption configuration, streamed or read back from a materialised output.
* :class:`BenchmarkResult` - per-row hand3d metrics, mPC / rPC, throughput.
* :func:`write_report` - ``report.md`` / ``.csv`` / ``.json``, ``pck_curves.png``, ``examples.png``
  and ``predictions.npz`` (the raw predictions; :func:`recompute` rebuilds every number from it);
  with ``suite=``, the corruption x severity tables, mPC, rPC, mCE against a ``baseline`` report
  (:mod:`~keypoint_corrupt.benchmark.suite_report`) and ``severity_curves.png``.
* :func:`evaluate_topdown` / :func:`evaluate_mpii` - the body and animal protocols (COCO OKS AP,
  MPII PCKh) with top-down crops; :func:`write_coco_report` / :func:`write_mpii_report` and
  :func:`recompute_coco` / :func:`recompute_mpii` (every figure again, from the results file).
* :class:`PredictError` - the predictor raised (row and image ids of the failing batch).
* :mod:`~keypoint_corrupt.benchmark.published` - the reference study's figures.
* ``ModelPredictor``, ``load_predictor``, ``measure_speed`` (need torch; imported on first use).

Importing this package does not import torch.

Examples
--------
>>> import numpy as np
>>> from keypoint_corrupt.benchmark import evaluate
>>> from keypoint_corrupt.datasets import STB, bundled_sample_root
>>> res = evaluate(lambda images, crops: np.repeat(crops.center[:, None], 21, 1),
...                STB(bundled_sample_root(), "val"), ["occlusion-30"])
>>> list(res.rows)
['standard', 'occlusion-30']
"""

from __future__ import annotations

import importlib
from typing import Any

from keypoint_corrupt.benchmark.callables import load_callable
from keypoint_corrupt.benchmark.coco_protocol import recompute_coco, write_coco_report
from keypoint_corrupt.benchmark.evaluate import (
    STANDARD,
    BenchmarkResult,
    Example,
    PredictError,
    RowResult,
    evaluate,
    row_label,
    split_output,
    wants_crops,
)
from keypoint_corrupt.benchmark.mpii_protocol import evaluate_mpii, recompute_mpii, write_mpii_report
from keypoint_corrupt.benchmark.predictions import (
    PREDICTIONS_FILE,
    RowPredictions,
    load_predictions,
    recompute,
    save_predictions,
)
from keypoint_corrupt.benchmark.published import TABLE_I, TABLE_II, published_row
from keypoint_corrupt.benchmark.report import build_report, load_baseline, mce_from_reports, write_report
from keypoint_corrupt.benchmark.sources import MaterializedSource, StreamSource, is_materialized
from keypoint_corrupt.benchmark.suite_report import (
    BaselineMismatchError,
    corruption_errors,
    mean_performance,
    suite_section,
)
from keypoint_corrupt.benchmark.topdown import evaluate_topdown
from keypoint_corrupt.crop import CropInfo, warp_crop

__all__ = [
    "PREDICTIONS_FILE",
    "STANDARD",
    "TABLE_I",
    "TABLE_II",
    "BaselineMismatchError",
    "BenchmarkResult",
    "CropInfo",
    "Example",
    "MaterializedSource",
    "ModelPredictor",
    "PredictError",
    "RowPredictions",
    "RowResult",
    "SpeedResult",
    "StreamSource",
    "build_report",
    "corruption_errors",
    "evaluate",
    "evaluate_mpii",
    "evaluate_topdown",
    "is_materialized",
    "load_baseline",
    "load_callable",
    "load_predictions",
    "load_predictor",
    "mce_from_reports",
    "mean_performance",
    "measure_speed",
    "published_row",
    "recompute",
    "recompute_coco",
    "recompute_mpii",
    "row_label",
    "save_predictions",
    "split_output",
    "suite_section",
    "wants_crops",
    "warp_crop",
    "write_coco_report",
    "write_mpii_report",
    "write_report",
]

# Names that need torch, and their modules: imported on first access.
_LAZY = {
    "ModelPredictor": "keypoint_corrupt.benchmark.predictors",
    "load_predictor": "keypoint_corrupt.benchmark.predictors",
    "SpeedResult": "keypoint_corrupt.benchmark.speed",
    "measure_speed": "keypoint_corrupt.benchmark.speed",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'keypoint_corrupt.benchmark' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
