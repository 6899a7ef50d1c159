"""Keypoint metrics of the reference protocol, and summaries of performance under corruption.

The keypoint metrics follow hand3d's ``EvalUtil`` (``../shared/docs/stb-format.md``), which the
reference study (Costa et al.) reports:

* the end-point error (EPE) of a joint is the Euclidean distance in pixels between the
  prediction and the ground truth; only visible joints count;
* per joint, over the images where it is visible: the mean EPE, the median EPE and the PCK
  curve ``PCK_j(t) = share of errors <= t`` for ``t`` in ``linspace(0, 30, 20)`` px, whose
  normalised area is ``AUC_j = trapz(PCK_j, t) / trapz(1, t)``;
* the reported figures are the averages over joints of the per-joint mean EPE, median EPE
  and AUC (joints never visible are left out), and the PCK curve averaged over joints.

Misses. A prediction with a NaN coordinate is a *miss* (the model did not find the joint).
One rule holds everywhere: PCK and AUC count a visible miss as wrong at every threshold (the
denominator is the visible joints); the EPEs are taken over the visible joints *found*, and the
detection rates say how many that is (``num_found / num_visible``; an instance counts as found
when any of its visible joints is). Where an EPE cannot exist (nothing found), it is NaN and
:meth:`KeypointMetrics.reason` says why. A model that always answers gets hand3d's numbers.

Corruption summaries follow the COCO-C / MPII-C benchmarks (Michaelis et al. 2019,
Wang et al. 2021): ``mPC`` is the mean of a metric over the corruption configurations and
``rPC = mPC / P_clean``. For the error metrics (lower is better) the ratio is inverted,
``rPC = EPE_clean / mPC``, so that for every metric rPC is the share of clean performance
kept under corruption (1 = unaffected, 0.5 = error doubled / AUC halved).

Nothing here imports torch.

Examples
--------
>>> import numpy as np
>>> gt = np.zeros((2, 1, 2))
>>> pred = np.array([[[3.0, 4.0]], [[0.0, 0.0]]])  # errors 5 px and 0 px
>>> m = keypoint_metrics(pred, gt)
>>> m.mean_epe, m.median_epe
(2.5, 2.5)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "PCK_THRESHOLDS",
    "SUMMARY_METRICS",
    "CorruptionSummary",
    "KeypointMetrics",
    "auc",
    "corruption_summary",
    "keypoint_errors",
    "keypoint_metrics",
    "metrics_from_errors",
    "pck_curve",
]

#: hand3d's PCK thresholds in pixels: ``linspace(0, 30, 20)``.
PCK_THRESHOLDS: np.ndarray = np.linspace(0.0, 30.0, 20)
PCK_THRESHOLDS.setflags(write=False)

#: Metrics summarised under corruption, and whether higher is better.
SUMMARY_METRICS: dict[str, bool] = {"mean_epe": False, "median_epe": False, "auc": True}


def _trapezoid(y: np.ndarray, x: np.ndarray) -> float:
    # NumPy's trapz / trapezoid formula, spelled out (the name changed across NumPy versions).
    return float((np.diff(x) * (y[1:] + y[:-1]) / 2.0).sum())


def _thresholds(thresholds: Sequence[float] | np.ndarray) -> np.ndarray:
    t = np.asarray(thresholds, dtype=np.float64)
    if t.ndim != 1 or t.size < 2:
        raise ValueError(f"thresholds must be a 1-D array of at least 2 values, got shape {t.shape}")
    if not np.all(np.isfinite(t)) or np.any(np.diff(t) <= 0):
        raise ValueError("thresholds must be finite and strictly increasing")
    return t


def keypoint_errors(pred: Any, gt: Any) -> np.ndarray:
    """End-point errors: Euclidean distances between predicted and true keypoints.

    Parameters
    ----------
    pred, gt : array_like
        ``N x J x 2`` (or ``J x 2``) keypoints (x, y) in pixels.

    Returns
    -------
    numpy.ndarray
        ``N x J`` (or ``J``) float64 distances.

    Examples
    --------
    >>> keypoint_errors([[0.0, 0.0], [1.0, 1.0]], [[3.0, 4.0], [1.0, 1.0]]).tolist()
    [5.0, 0.0]
    """
    p = np.asarray(pred, dtype=np.float64)
    g = np.asarray(gt, dtype=np.float64)
    if p.shape != g.shape or p.ndim < 2 or p.shape[-1] != 2:
        raise ValueError(f"pred and gt must have the same (..., J, 2) shape, got {p.shape} and {g.shape}")
    errors: np.ndarray = np.sqrt(np.sum(np.square(p - g), axis=-1))
    return errors


def pck_curve(errors: Any, thresholds: Sequence[float] | np.ndarray = PCK_THRESHOLDS) -> np.ndarray:
    """Share of errors at or below each threshold (hand3d counts ``error <= t``).

    Parameters
    ----------
    errors : array_like
        Errors in pixels (any shape; NaN counts as a miss).
    thresholds : array_like
        Increasing thresholds in pixels.

    Returns
    -------
    numpy.ndarray
        One value in [0, 1] per threshold (NaN when ``errors`` is empty).

    Examples
    --------
    >>> pck_curve([0.0, 5.0, 10.0, 40.0], [0.0, 5.0, 30.0]).tolist()
    [0.25, 0.5, 0.75]
    """
    e = np.asarray(errors, dtype=np.float64).reshape(-1)
    t = _thresholds(thresholds)
    if e.size == 0:
        return np.full(t.shape, np.nan)
    curve: np.ndarray = np.mean(e[:, None] <= t[None, :], axis=0)
    return curve


def auc(pck: Any, thresholds: Sequence[float] | np.ndarray = PCK_THRESHOLDS) -> float:
    """Normalised area under a PCK curve: ``trapz(pck, t) / trapz(1, t)``.

    Examples
    --------
    >>> auc([0.0, 1.0], [0.0, 30.0])
    0.5
    """
    t = _thresholds(thresholds)
    p = np.asarray(pck, dtype=np.float64)
    if p.shape != t.shape:
        raise ValueError(f"pck has shape {p.shape}, expected one value per threshold {t.shape}")
    return _trapezoid(p, t) / _trapezoid(np.ones_like(t), t)


def _nanmean(values: np.ndarray) -> float:
    finite = values[~np.isnan(values)]
    return float(np.mean(finite)) if finite.size else math.nan


def _rate(part: int, whole: int) -> float:
    return part / whole if whole else math.nan


@dataclass(frozen=True, eq=False)
class KeypointMetrics:
    """hand3d's 2D metrics of one set of predictions.

    Attributes
    ----------
    mean_epe, median_epe : float
        Averages over joints of each joint's mean / median EPE (pixels).
    auc : float
        Average over joints of each joint's PCK AUC, in [0, 1].
    pck : numpy.ndarray
        ``T`` PCK values averaged over joints.
    thresholds : numpy.ndarray
        ``T`` thresholds in pixels.
    per_joint_mean_epe, per_joint_median_epe, per_joint_auc : numpy.ndarray
        ``J`` values; NaN for a joint that is never visible.
    per_joint_pck : numpy.ndarray
        ``J x T``; NaN rows for joints never visible.
    num_images : int
        Images evaluated.
    num_visible : int
        Visible (image, joint) pairs that were scored.
    num_found : int
        Of those, the pairs with a prediction (no NaN coordinate).
    num_instances, instances_found : int
        Images (instances) with at least one visible joint; those with at least one found.
    per_joint_visible, per_joint_found : numpy.ndarray
        ``J`` counts of visible and of found joints.

    A miss (NaN prediction) counts as wrong in PCK and AUC at every threshold; the EPEs are
    over the joints found. :attr:`detection_rate` and :attr:`instance_detection_rate` give
    the shares found, and :meth:`reason` explains a NaN figure.

    Examples
    --------
    >>> m = keypoint_metrics([[[0.0, 0.0]], [[np.nan, np.nan]]], np.zeros((2, 1, 2)),
    ...                      thresholds=[0.0, 30.0])
    >>> m.mean_epe, m.auc, m.detection_rate, m.instance_detection_rate
    (0.0, 0.5, 0.5, 0.5)
    """

    mean_epe: float
    median_epe: float
    auc: float
    pck: np.ndarray
    thresholds: np.ndarray
    per_joint_mean_epe: np.ndarray
    per_joint_median_epe: np.ndarray
    per_joint_auc: np.ndarray
    per_joint_pck: np.ndarray
    num_images: int
    num_visible: int
    num_found: int = -1
    num_instances: int = -1
    instances_found: int = -1
    per_joint_visible: np.ndarray | None = None
    per_joint_found: np.ndarray | None = None

    def __post_init__(self) -> None:
        # Built without the miss counts (older callers): everything visible was found.
        if self.num_found < 0:
            object.__setattr__(self, "num_found", int(self.num_visible))
        if self.num_instances < 0:
            object.__setattr__(self, "num_instances", int(self.num_images))
        if self.instances_found < 0:
            object.__setattr__(self, "instances_found", int(self.num_instances))

    @property
    def detection_rate(self) -> float:
        """Visible joints found / visible joints (NaN when nothing is visible)."""
        return _rate(self.num_found, self.num_visible)

    @property
    def instance_detection_rate(self) -> float:
        """Instances with a visible joint found / instances with a visible joint."""
        return _rate(self.instances_found, self.num_instances)

    @property
    def num_missed(self) -> int:
        """Visible joints not found (NaN predictions)."""
        return int(self.num_visible - self.num_found)

    def reason(self, metric: str) -> str | None:
        """Why ``metric`` has no value (``None`` when it has one).

        Examples
        --------
        >>> m = keypoint_metrics(np.full((2, 1, 2), np.nan), np.zeros((2, 1, 2)))
        >>> m.reason("mean_epe"), m.reason("auc"), m.auc
        ('0 of 2 visible joints found', None, 0.0)
        """
        value = getattr(self, metric)
        if not math.isnan(float(value)):
            return None
        if self.num_visible == 0:
            return "no visible joint"
        if self.num_found == 0:
            return f"0 of {self.num_visible} visible joints found"
        return "undefined"

    def to_dict(self, per_joint: bool = True) -> dict[str, Any]:
        """JSON-ready dict: NaN becomes ``None``, with a ``<metric>_reason`` beside it."""
        out: dict[str, Any] = {
            "mean_epe": _json_float(self.mean_epe),
            "median_epe": _json_float(self.median_epe),
            "auc": _json_float(self.auc),
            "num_images": int(self.num_images),
            "num_visible": int(self.num_visible),
            "num_found": int(self.num_found),
            "detection_rate": _json_float(self.detection_rate),
            "num_instances": int(self.num_instances),
            "instances_found": int(self.instances_found),
            "instance_detection_rate": _json_float(self.instance_detection_rate),
            "thresholds": [float(t) for t in self.thresholds],
            "pck": [_json_float(v) for v in self.pck],
        }
        for key in (*SUMMARY_METRICS, "detection_rate", "instance_detection_rate"):
            why = self.reason(key)
            if why is not None:
                out[f"{key}_reason"] = why
        if per_joint:
            out["per_joint"] = {
                "mean_epe": [_json_float(v) for v in self.per_joint_mean_epe],
                "median_epe": [_json_float(v) for v in self.per_joint_median_epe],
                "auc": [_json_float(v) for v in self.per_joint_auc],
            }
            if self.per_joint_visible is not None and self.per_joint_found is not None:
                out["per_joint"]["visible"] = [int(v) for v in self.per_joint_visible]
                out["per_joint"]["found"] = [int(v) for v in self.per_joint_found]
        return out

    def summary(self) -> dict[str, float]:
        """``{"mean_epe", "median_epe", "auc"}``."""
        return {"mean_epe": self.mean_epe, "median_epe": self.median_epe, "auc": self.auc}


def _json_float(value: float) -> float | None:
    value = float(value)
    return None if math.isnan(value) else value


def metrics_from_errors(
    errors: Any,
    visibility: Any = None,
    thresholds: Sequence[float] | np.ndarray = PCK_THRESHOLDS,
) -> KeypointMetrics:
    """hand3d's metrics from an ``N x J`` array of end-point errors.

    Parameters
    ----------
    errors : array_like
        ``N x J`` errors in pixels; NaN is a miss (wrong in PCK / AUC, left out of the EPEs).
    visibility : array_like, optional
        ``N x J`` bools; only visible joints are scored (default: all).
    thresholds : array_like
        PCK thresholds in pixels (default ``linspace(0, 30, 20)``).

    Returns
    -------
    KeypointMetrics

    Examples
    --------
    >>> m = metrics_from_errors([[0.0, 10.0], [2.0, 99.0]], [[True, True], [True, False]])
    >>> m.per_joint_mean_epe.tolist(), m.mean_epe  # joint means 1 and 10, averaged
    ([1.0, 10.0], 5.5)
    """
    err = np.asarray(errors, dtype=np.float64)
    if err.ndim != 2:
        raise ValueError(f"errors must be N x J, got shape {err.shape}")
    vis = np.ones(err.shape, bool) if visibility is None else np.asarray(visibility).astype(bool)
    if vis.shape != err.shape:
        raise ValueError(f"visibility has shape {vis.shape}, errors {err.shape}")
    t = _thresholds(thresholds)
    num_joints = err.shape[1]
    mean_j = np.full(num_joints, np.nan)
    median_j = np.full(num_joints, np.nan)
    auc_j = np.full(num_joints, np.nan)
    pck_j = np.full((num_joints, t.size), np.nan)
    found = vis & ~np.isnan(err)
    for j in range(num_joints):
        data = err[vis[:, j], j]
        if data.size == 0:
            continue  # hand3d skips joints without data
        pck_j[j] = pck_curve(data, t)  # a miss (NaN) is wrong at every threshold
        auc_j[j] = auc(pck_j[j], t)
        hits = data[~np.isnan(data)]
        if hits.size:  # the EPEs are over the joints found
            mean_j[j] = np.mean(hits)
            median_j[j] = np.median(hits)
    scored = ~np.isnan(auc_j)
    pck = np.mean(pck_j[scored], axis=0) if scored.any() else np.full(t.shape, np.nan)
    return KeypointMetrics(
        mean_epe=_nanmean(mean_j),
        median_epe=_nanmean(median_j),
        auc=_nanmean(auc_j),
        pck=pck,
        thresholds=t.copy(),
        per_joint_mean_epe=mean_j,
        per_joint_median_epe=median_j,
        per_joint_auc=auc_j,
        per_joint_pck=pck_j,
        num_images=int(err.shape[0]),
        num_visible=int(vis.sum()),
        num_found=int(found.sum()),
        num_instances=int(vis.any(axis=1).sum()),
        instances_found=int(found.any(axis=1).sum()),
        per_joint_visible=vis.sum(axis=0),
        per_joint_found=found.sum(axis=0),
    )


def keypoint_metrics(
    pred: Any,
    gt: Any,
    visibility: Any = None,
    thresholds: Sequence[float] | np.ndarray = PCK_THRESHOLDS,
) -> KeypointMetrics:
    """hand3d's 2D metrics of predictions against ground truth.

    Parameters
    ----------
    pred, gt : array_like
        ``N x J x 2`` keypoints (x, y) in the same pixels (original-image pixels for the
        reference protocol: crop-pixel errors divided by the crop scale). A NaN coordinate in
        ``pred`` is a miss.
    visibility : array_like, optional
        ``N x J`` bools; invisible joints are not scored (default: all visible).
    thresholds : array_like
        PCK thresholds in pixels.

    Returns
    -------
    KeypointMetrics

    Examples
    --------
    >>> import numpy as np
    >>> gt = np.zeros((4, 1, 2))
    >>> pred = np.array([[[0.0, 0.0]], [[0.0, 3.0]], [[0.0, 6.0]], [[0.0, 60.0]]])
    >>> m = keypoint_metrics(pred, gt, thresholds=[0.0, 30.0])
    >>> m.mean_epe, m.median_epe, m.pck.tolist(), m.auc
    (17.25, 4.5, [0.25, 0.75], 0.5)
    """
    p = np.asarray(pred, dtype=np.float64)
    if p.ndim != 3:
        raise ValueError(f"pred must be N x J x 2, got shape {p.shape}")
    return metrics_from_errors(keypoint_errors(p, gt), visibility, thresholds)


@dataclass(frozen=True)
class CorruptionSummary:
    """Performance under corruption, COCO-C / MPII-C style.

    Attributes
    ----------
    clean : dict
        Metric -> value on clean data (``P_clean``).
    mpc : dict
        Metric -> mean over the corruption configurations where the metric exists (mPC).
    rpc : dict
        Metric -> ``mPC / P_clean`` for AUC, ``P_clean / mPC`` for the EPEs: the share of clean
        performance kept (1 = unaffected).
    delta : dict
        Metric -> ``mPC - P_clean``.
    by_family : dict
        Family -> metric -> mean over that family's configurations where it exists.
    configs : tuple of str
        The configurations averaged.
    excluded : dict
        Metric -> configurations left out of its means because it does not exist there (an
        EPE where no visible joint was found). AUC always exists where a joint is visible:
        misses count as wrong.
    reasons : dict
        ``"<part>.<metric>"`` (``clean``, ``mPC``, ``rPC``, ``delta``, ``by_family.<family>``)
        -> why that figure is NaN.
    """

    clean: dict[str, float]
    mpc: dict[str, float]
    rpc: dict[str, float]
    delta: dict[str, float]
    by_family: dict[str, dict[str, float]] = field(default_factory=dict)
    configs: tuple[str, ...] = ()
    excluded: dict[str, tuple[str, ...]] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN becomes ``None``; ``reasons`` says why)."""

        def clean_map(m: Mapping[str, float]) -> dict[str, float | None]:
            return {k: _json_float(v) for k, v in m.items()}

        return {
            "configs": list(self.configs),
            "clean": clean_map(self.clean),
            "mPC": clean_map(self.mpc),
            "rPC": clean_map(self.rpc),
            "delta": clean_map(self.delta),
            "by_family": {f: clean_map(m) for f, m in self.by_family.items()},
            "excluded": {k: list(v) for k, v in self.excluded.items() if v},
            "reasons": dict(self.reasons),
            "rPC_convention": "AUC: mPC / clean; EPE: clean / mPC (share of clean performance kept)",
            "mPC_convention": "mean over the configurations where the metric exists (see excluded)",
        }


def _as_summary(value: KeypointMetrics | Mapping[str, float]) -> dict[str, float]:
    if isinstance(value, KeypointMetrics):
        return value.summary()
    return {k: float(value[k]) for k in SUMMARY_METRICS}


def _reason_of(value: KeypointMetrics | Mapping[str, float], metric: str) -> str:
    if isinstance(value, KeypointMetrics):
        return value.reason(metric) or "undefined"
    return "undefined"


def _family(name: str) -> str:
    from keypoint_corrupt.registry import get_config

    try:
        return get_config(name).family
    except ValueError:
        return name


def _mean_existing(values: Sequence[float]) -> float:
    kept = [v for v in values if not math.isnan(v)]
    return float(np.mean(kept)) if kept else math.nan


def _ratio_reasons(
    base: Mapping[str, float], mpc: Mapping[str, float], rpc: Mapping[str, float], reasons: dict[str, str]
) -> None:
    for k in SUMMARY_METRICS:
        missing = [part for part, v in (("clean", base[k]), ("mPC", mpc[k])) if math.isnan(v)]
        if missing:
            reasons[f"delta.{k}"] = reasons[f"rPC.{k}"] = f"no {' and no '.join(missing)} {k}"
        elif math.isnan(rpc[k]):
            reasons[f"rPC.{k}"] = f"division by zero ({k} 0)"


def corruption_summary(
    clean: KeypointMetrics | Mapping[str, float],
    corrupted: Mapping[str, KeypointMetrics | Mapping[str, float]],
    families: Mapping[str, str] | None = None,
) -> CorruptionSummary:
    """Summarise a model's performance under corruption (mPC, rPC).

    mPC averages each metric over the configurations where it exists: an EPE does not exist
    where no visible joint was found, and such configurations are listed in
    :attr:`CorruptionSummary.excluded`. AUC exists wherever a joint is visible (misses count
    as wrong), so its mPC always covers every configuration.

    Parameters
    ----------
    clean : KeypointMetrics or mapping
        Metrics on the clean split (``mean_epe``, ``median_epe``, ``auc``).
    corrupted : mapping
        Configuration name -> its metrics.
    families : mapping, optional
        Configuration name -> family; default: the registry's family of each name.

    Returns
    -------
    CorruptionSummary

    Examples
    --------
    >>> s = corruption_summary(
    ...     {"mean_epe": 10.0, "median_epe": 5.0, "auc": 0.8},
    ...     {"defocus-7": {"mean_epe": 20.0, "median_epe": 5.0, "auc": 0.6},
    ...      "motion-15": {"mean_epe": 30.0, "median_epe": 5.0, "auc": 0.2}})
    >>> s.mpc["auc"], s.rpc["auc"], s.mpc["mean_epe"], s.rpc["mean_epe"]
    (0.4, 0.5, 25.0, 0.4)
    """
    if not corrupted:
        raise ValueError("corrupted must hold at least one configuration")
    base = _as_summary(clean)
    rows = {name: _as_summary(v) for name, v in corrupted.items()}
    reasons: dict[str, str] = {}
    excluded = {k: tuple(n for n, r in rows.items() if math.isnan(r[k])) for k in SUMMARY_METRICS}
    mpc = {k: _mean_existing([r[k] for r in rows.values()]) for k in SUMMARY_METRICS}
    rpc: dict[str, float] = {}
    for k, higher_better in SUMMARY_METRICS.items():
        num, den = (mpc[k], base[k]) if higher_better else (base[k], mpc[k])
        rpc[k] = num / den if den != 0 and not math.isnan(den) else math.nan
        if math.isnan(base[k]):
            reasons[f"clean.{k}"] = _reason_of(clean, k)
        if math.isnan(mpc[k]):
            reasons[f"mPC.{k}"] = f"{k} exists in none of the {len(rows)} configurations"
    _ratio_reasons(base, mpc, rpc, reasons)
    delta = {k: mpc[k] - base[k] for k in SUMMARY_METRICS}
    fam_of = {name: (families or {}).get(name) or _family(name) for name in rows}
    by_family: dict[str, dict[str, float]] = {}
    for fam in dict.fromkeys(fam_of.values()):
        members = [rows[n] for n in rows if fam_of[n] == fam]
        by_family[fam] = {k: _mean_existing([r[k] for r in members]) for k in SUMMARY_METRICS}
        for k, v in by_family[fam].items():
            if math.isnan(v):
                reasons[f"by_family.{fam}.{k}"] = f"{k} exists in none of the family's configurations"
    return CorruptionSummary(base, mpc, rpc, delta, by_family, tuple(rows), excluded, reasons)
