"""Body and animal pose metrics: COCO's OKS keypoint AP, MPII's PCKh, PoseBench's mRR.

* :func:`coco_keypoint_ap` scores a COCO results list against a COCO keypoint file with
  ``pycocotools`` (``COCOeval(iouType="keypoints")``, the dataset's OKS sigmas): AP, AP50,
  AP75, APM, APL and the five ARs, as the COCO keypoint challenge reports them.
* :func:`pckh` and :func:`pckh_curve` are MPII's PCKh (Andriluka et al., CVPR 2014): a joint
  is correct when its error is at most ``threshold`` head sizes, the head size being
  ``0.6 * ||(x2 - x1, y2 - y1)||`` of the annotated head box (:func:`head_sizes_from_boxes`);
  only annotated joints count. :func:`load_mpii_head_boxes` reads the head boxes from MPII's
  own annotation file (MMPose's JSON does not carry them).
* :func:`mean_relative_robustness` is PoseBench's mRR as ``docs/corruptions.md`` defines it.

Misses follow the package's one rule (``docs/benchmark.md``, *Misses*): a joint predicted as
NaN costs exactly what a very wrong answer costs. In PCKh it is wrong at every threshold; in
OKS it adds 0 to the similarity.

Examples
--------
>>> import numpy as np
>>> gt = np.zeros((1, 2, 2))
>>> pred = np.array([[[3.0, 4.0], [30.0, 40.0]]])  # errors of 5 and 50 px
>>> r = pckh(pred, gt, np.ones((1, 2), bool), head_sizes_from_boxes([[0, 0, 30, 40]]))
>>> r.per_joint.tolist(), r.mean  # head size 0.6 * 50 = 30 px: 5 px is within 15 px, 50 px is not
([1.0, 0.0], 0.5)
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from keypoint_corrupt.schema import KeypointSchema, get_schema, match_schema

__all__ = [
    "MPII_HEAD_FACTOR",
    "MPII_THRESHOLDS",
    "CocoKeypointAP",
    "MpiiHeadBoxes",
    "PCKh",
    "PCKhCurve",
    "coco_keypoint_ap",
    "head_sizes_from_boxes",
    "load_mpii_head_boxes",
    "mean_relative_robustness",
    "pckh",
    "pckh_curve",
]

#: MPII's head-size factor: the head size is 0.6 times the head box's diagonal.
MPII_HEAD_FACTOR = 0.6
#: MPII's PCKh curve thresholds (``0:0.01:0.5`` in its evaluation code), in head sizes.
MPII_THRESHOLDS: np.ndarray = np.linspace(0.0, 0.5, 51)
MPII_THRESHOLDS.setflags(write=False)
#: Joints MPII leaves out of its total PCKh (the mean over the other 14 joints).
MPII_MEAN_EXCLUDES = ("pelvis", "thorax")

_STATS = ("ap", "ap50", "ap75", "ap_m", "ap_l", "ar", "ar50", "ar75", "ar_m", "ar_l")
# COCO's keypoint area ranges (pycocotools' Params for iouType="keypoints"), in px^2.
_AREAS = {"": (0.0, 1e5**2), "_m": (32.0**2, 96.0**2), "_l": (96.0**2, 1e5**2)}
_AREA_WORDS = {"": "any", "_m": "medium (32^2 to 96^2 px^2)", "_l": "large (over 96^2 px^2)"}
# Where a missed joint is put for pycocotools: so far that its OKS term exp(-d^2 / ...) is 0.
_FAR = 1.0e9

_HEAD_BOX_HELP = (
    "PCKh needs MPII's head boxes, which MMPose's JSON (mpii_val.json, test_mpii.json) does not "
    "carry. Use MPII's own annotation file annot/mpii_human_pose_v1_u12_1.mat (in "
    "mpii_human_pose_v1_u12_2.zip from http://human-pose.mpi-inf.mpg.de/#download) or MMPose's "
    "mpii_gt_val.mat (in https://download.openmmlab.com/mmpose/datasets/mpii_annotations.tar)"
)


def _json_float(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


# --- COCO keypoint AP ------------------------------------------------------------------------


@dataclass(frozen=True)
class CocoKeypointAP:
    """COCO keypoint AP / AR of one results list, as ``pycocotools`` computes them.

    Attributes
    ----------
    ap, ap50, ap75, ap_m, ap_l : float
        AP averaged over OKS thresholds 0.50:0.05:0.95, at OKS 0.5, at OKS 0.75, over medium
        (32^2 to 96^2 px^2) and large (over 96^2 px^2) instances; in [0, 1].
    ar, ar50, ar75, ar_m, ar_l : float
        The same for the recall (at most 20 results per image, COCO's keypoint setting).
    n_images : int
        Images evaluated.
    n_instances : int
        Ground-truth instances scored: not crowd and with at least one labelled keypoint
        (pycocotools ignores the others: a result on them is neither right nor wrong).
    n_results : int
        Results on the images evaluated.
    sigmas : tuple of float
        The OKS sigmas used, one per joint.
    reason : str
        Why a figure is NaN, ``""`` when all are defined (``"ap_m, ar_m: ..."``).
    n_ignored : int
        Ground-truth instances on the images evaluated that pycocotools ignores.
    missed_joints : int
        Joints of the results given as NaN (each adds 0 to its result's OKS).
    reasons : dict
        Figure name -> why it is NaN.

    A figure is NaN where pycocotools reports -1: no instance to score in that area range.

    Examples
    --------
    >>> gt = {"images": [{"id": 1, "width": 100, "height": 100}],
    ...       "categories": [{"id": 1, "name": "fly", "keypoints": ["head", "tail"]}],
    ...       "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0,
    ...                        "area": 2000.0, "bbox": [10, 10, 50, 40], "num_keypoints": 2,
    ...                        "keypoints": [20, 20, 2, 50, 40, 2]}]}
    >>> res = [{"image_id": 1, "category_id": 1, "keypoints": [20, 20, 1, 50, 40, 1], "score": 0.9}]
    >>> m = coco_keypoint_ap(gt, res, sigmas=[0.05, 0.05])
    >>> round(m.ap, 12), m.ap_l  # pycocotools' precision is tp / (tp + fp + eps)
    (1.0, nan)
    >>> print(m.reason)
    ap_l, ar_l: no ground-truth instance of large (over 96^2 px^2) area with a labelled keypoint
    on the 1 image(s) evaluated
    """

    ap: float
    ap50: float
    ap75: float
    ap_m: float
    ap_l: float
    ar: float
    ar50: float
    ar75: float
    ar_m: float
    ar_l: float
    n_images: int
    n_instances: int
    n_results: int
    sigmas: tuple[float, ...]
    reason: str = ""
    n_ignored: int = 0
    missed_joints: int = 0
    reasons: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict: NaN becomes ``None``; ``reason`` and ``reasons`` say why."""
        out: dict[str, Any] = {name: _json_float(getattr(self, name)) for name in _STATS}
        out.update(
            n_images=self.n_images,
            n_instances=self.n_instances,
            n_ignored=self.n_ignored,
            n_results=self.n_results,
            missed_joints=self.missed_joints,
            sigmas=list(self.sigmas),
            reason=self.reason,
            reasons=dict(self.reasons),
        )
        return out


def _load_ground_truth(ground_truth: Mapping[str, Any] | str | os.PathLike[str]) -> dict[str, Any]:
    if isinstance(ground_truth, Mapping):
        data = dict(ground_truth)
    elif isinstance(ground_truth, (str, os.PathLike)):
        path = Path(ground_truth)
        if not path.is_file():
            raise FileNotFoundError(f"ground_truth: no COCO keypoint file at {str(path)!r}")
        with path.open(encoding="utf-8") as f:
            data = json.load(f)
        if not isinstance(data, dict):
            raise ValueError(f"ground_truth {str(path)!r} is not a COCO dataset (a JSON object)")
    else:
        raise TypeError(
            f"ground_truth must be a COCO dataset dict or a path, got {type(ground_truth).__name__}"
        )
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise ValueError(f"ground_truth has no {key!r} list: not a COCO keypoint dataset")
    return data


def _joint_names(categories: list[Any]) -> tuple[str, ...] | None:
    lists = {tuple(str(n) for n in c["keypoints"]) for c in categories if c.get("keypoints")}
    if len(lists) > 1:
        raise ValueError(
            "ground_truth: the categories name different keypoints; evaluate one keypoint layout at a time"
        )
    return next(iter(lists)) if lists else None


def _resolve_sigmas(
    sigmas: Sequence[float] | np.ndarray | KeypointSchema | str | None, names: tuple[str, ...] | None
) -> np.ndarray:
    from pycocotools.cocoeval import Params

    if sigmas is None:
        schema = match_schema(names) if names is not None else None
        if schema is None or schema.sigmas is None:
            what = f"joints {list(names)}" if names is not None else "unnamed joints"
            found = f" (schema {schema.name!r} has none)" if schema is not None else ""
            raise ValueError(
                f"sigmas=None: no keypoint schema with OKS sigmas matches the dataset's {what}{found}; "
                "pass sigmas (one per joint, or a schema name)"
            )
        values = np.asarray(schema.sigmas, dtype=np.float64)
    elif isinstance(sigmas, (str, KeypointSchema)):
        schema = get_schema(sigmas)
        if schema.sigmas is None:
            raise ValueError(f"sigmas={schema.name!r}: that schema has no OKS sigmas")
        values = np.asarray(schema.sigmas, dtype=np.float64)
    else:
        values = np.asarray(sigmas, dtype=np.float64)
        if values.ndim != 1 or not values.size or not np.all(np.isfinite(values) & (values > 0)):
            raise ValueError(f"sigmas must be a 1-D sequence of positive finite numbers, got {sigmas!r}")
    if names is not None and len(values) != len(names):
        raise ValueError(f"sigmas has {len(values)} values for the dataset's {len(names)} joints")
    coco = np.asarray(Params(iouType="keypoints").kpt_oks_sigmas, dtype=np.float64)
    if values.shape == coco.shape and np.allclose(values, coco, rtol=0.0, atol=1e-12):
        return coco  # COCO's own: exactly pycocotools' array
    return values


def _check_annotations(data: dict[str, Any], k: int) -> list[dict[str, Any]]:
    images = {im["id"] for im in data["images"]}
    categories = {c["id"] for c in data["categories"]}
    seen: set[Any] = set()
    out = []
    for i, ann in enumerate(data["annotations"]):
        where = f"ground_truth annotations[{i}] (id {ann.get('id')!r})"
        for key in ("id", "image_id", "category_id", "keypoints", "area", "bbox"):
            if key not in ann:
                raise ValueError(f"{where} has no {key!r}, which COCO's keypoint evaluation needs")
        if ann["id"] in seen:
            raise ValueError(f"{where}: duplicate annotation id {ann['id']!r}")
        seen.add(ann["id"])
        if ann["image_id"] not in images or ann["category_id"] not in categories:
            raise ValueError(
                f"{where}: image_id {ann['image_id']!r} or category_id {ann['category_id']!r} unknown"
            )
        kps = np.asarray(ann["keypoints"], dtype=np.float64)
        if kps.shape != (3 * k,):
            raise ValueError(f"{where}: {kps.size} keypoint values, expected {3 * k} (x, y, v per joint)")
        copy = dict(ann)  # pycocotools writes an "ignore" flag into each annotation
        if "num_keypoints" not in copy:  # COCO's definition: the joints labelled (v > 0)
            copy["num_keypoints"] = int(np.count_nonzero(kps[2::3] > 0))
        copy.setdefault("iscrowd", 0)  # COCO's default; pycocotools indexes it unconditionally
        out.append(copy)
    return out


def _check_results(
    results: Sequence[Mapping[str, Any]], images: set[Any], categories: set[Any], k: int
) -> tuple[list[dict[str, Any]], dict[int, np.ndarray]]:
    """Results reduced to COCO's four keys; misses (NaN joints) filled for pycocotools' box.

    Returns the results and, per result index, the joints missed.
    """
    if isinstance(results, (str, bytes, Mapping)) or not isinstance(results, Sequence):
        raise TypeError(f"results must be a list of COCO result dicts, got {type(results).__name__}")
    out: list[dict[str, Any]] = []
    misses: dict[int, np.ndarray] = {}
    for i, r in enumerate(results):
        where = f"results[{i}]"
        if not isinstance(r, Mapping) or any(
            key not in r for key in ("image_id", "category_id", "keypoints")
        ):
            raise ValueError(f"{where} must be a dict with image_id, category_id, keypoints and score")
        if r["image_id"] not in images:
            raise ValueError(f"{where}: image_id {r['image_id']!r} is not an image of the ground truth")
        if r["category_id"] not in categories:
            raise ValueError(
                f"{where}: category_id {r['category_id']!r} is not a keypoint category of the ground truth"
            )
        score = float(r.get("score", math.nan))
        if not math.isfinite(score):
            raise ValueError(f"{where}: score must be a finite number, got {r.get('score')!r}")
        kps = np.asarray(r["keypoints"], dtype=np.float64).copy()
        if kps.shape != (3 * k,):
            raise ValueError(f"{where}: {kps.size} keypoint values, expected {3 * k} (x, y, score per joint)")
        xy = kps.reshape(k, 3)[:, :2]
        missed = ~np.all(np.isfinite(xy), axis=1)
        if missed.any():
            # pycocotools boxes a result by its keypoints' extent: the joints found make it.
            xy[missed] = xy[~missed][0] if (~missed).any() else 0.0
            kps[2::3][missed] = 0.0
            misses[i] = np.flatnonzero(missed)
        out.append({"image_id": r["image_id"], "category_id": r["category_id"],
                    "keypoints": kps.tolist(), "score": score})  # fmt: skip
    return out, misses


def _image_ids(image_ids: Sequence[Any] | None, images: list[Any]) -> list[Any]:
    known = [im["id"] for im in images]
    if image_ids is None:
        return sorted(known)
    ids = list(image_ids)
    unknown = sorted({str(i) for i in ids} - {str(i) for i in known})
    if unknown or not ids:
        raise ValueError(
            f"image_ids must name images of the ground truth; unknown: {unknown or 'none given'}"
        )
    return sorted(set(ids))


def _undefined_reasons(stats: dict[str, float], counts: dict[str, int], n_images: int) -> dict[str, str]:
    reasons: dict[str, str] = {}
    for name in _STATS:
        if not math.isnan(stats[name]):
            continue
        suffix = name[-2:] if name[-2:] in _AREAS else ""
        if counts[suffix] == 0:
            area = f" of {_AREA_WORDS[suffix]} area" if suffix else ""
            where = f"on the {n_images} image(s) evaluated"
            reasons[name] = f"no ground-truth instance{area} with a labelled keypoint {where}"
        else:
            reasons[name] = "pycocotools reports no value (-1)"
    return reasons


def _join_reasons(reasons: dict[str, str]) -> str:
    groups: dict[str, list[str]] = {}
    for name in _STATS:
        if name in reasons:
            groups.setdefault(reasons[name], []).append(name)
    return "; ".join(f"{', '.join(names)}: {why}" for why, names in groups.items())


def coco_keypoint_ap(
    ground_truth: Mapping[str, Any] | str | os.PathLike[str],
    results: Sequence[Mapping[str, Any]],
    *,
    sigmas: Sequence[float] | np.ndarray | KeypointSchema | str | None = None,
    image_ids: Sequence[Any] | None = None,
) -> CocoKeypointAP:
    """COCO keypoint AP / AR of ``results`` against ``ground_truth``, computed by pycocotools.

    Runs ``pycocotools.cocoeval.COCOeval(gt, dt, "keypoints")`` with ``kpt_oks_sigmas`` set,
    ``evaluate()``, ``accumulate()`` and ``summarize()`` (its prints swallowed), and returns
    its ten figures. pycocotools' rules hold: crowd regions and instances without a labelled
    keypoint are ignored (a result on them is neither right nor wrong), at most 20 results
    per image count (the highest scores), and a result's area is its keypoints' extent.

    Parameters
    ----------
    ground_truth : dict or path
        A COCO keypoint dataset (``images``, ``annotations`` with ``keypoints``, ``area``,
        ``bbox``, ``iscrowd``, ``num_keypoints``; ``categories`` with ``keypoints`` names), or
        the path of its JSON file. Neither it nor ``results`` is modified.
    results : list of dict
        COCO results: ``{"image_id", "category_id", "keypoints": [x, y, s] * K, "score"}``;
        other keys are dropped (a ``bbox`` would change pycocotools' area of the result). A
        joint given as NaN is a miss: it adds 0 to the OKS, as a very wrong answer does, and
        is left out of the result's extent (a result with no joint found has none: a false
        positive in the all-areas figures, in neither the medium nor the large ones).
    sigmas : sequence of float, schema or schema name, optional
        OKS sigmas, one per joint. Default: those of the schema matching the dataset's joint
        names (``coco17``: pycocotools' own array; ``ap10k``: MMPose's AP-10K sigmas).
    image_ids : sequence, optional
        Evaluate these images only (default: every image of ``ground_truth``).

    Returns
    -------
    CocoKeypointAP

    Raises
    ------
    ValueError
        Naming the field or value for malformed input, a result on an unknown image or
        category, or a dataset whose joints have no known sigmas.

    Examples
    --------
    >>> gt = {"images": [{"id": 7}], "categories": [{"id": 1, "keypoints": ["a", "b"]}],
    ...       "annotations": [{"id": 1, "image_id": 7, "category_id": 1, "area": 5000.0,
    ...                        "bbox": [0, 0, 100, 50], "num_keypoints": 2, "iscrowd": 0,
    ...                        "keypoints": [10, 10, 2, 90, 40, 2]}]}
    >>> res = [{"image_id": 7, "category_id": 1, "keypoints": [10, 10, 1, float("nan"), 0, 0],
    ...         "score": 1.0}]
    >>> m = coco_keypoint_ap(gt, res, sigmas=[0.1, 0.1])
    >>> round(m.ap50, 12), m.ap75, m.missed_joints  # OKS (1 + 0) / 2 = 0.5: a match at 0.5, not at 0.75
    (1.0, 0.0, 1)
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    data = _load_ground_truth(ground_truth)
    names = _joint_names(data["categories"])
    sig = _resolve_sigmas(sigmas, names)
    k = len(sig)
    anns = _check_annotations(data, k)
    cats = [dict(c) for c in data["categories"]]
    images = [dict(im) for im in data["images"]]
    ids = _image_ids(image_ids, images)
    keypoint_cats = {c["id"] for c in cats if c.get("keypoints")} or {c["id"] for c in cats}
    res, misses = _check_results(results, {im["id"] for im in images}, keypoint_cats, k)
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {"images": images, "annotations": anns, "categories": cats}
        gt.createIndex()
        if res:
            dt = gt.loadRes(res)
        else:
            dt = COCO()
            dt.dataset = {"images": list(images), "annotations": [], "categories": [dict(c) for c in cats]}
            dt.createIndex()
        for i, joints in misses.items():  # after loadRes boxed the result by the joints found
            kps = dt.dataset["annotations"][i]["keypoints"]
            for j in joints:
                kps[3 * j] = kps[3 * j + 1] = _FAR
        ev = COCOeval(gt, dt, iouType="keypoints")
        ev.params.kpt_oks_sigmas = sig
        ev.params.imgIds = ids
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    stats = {name: (math.nan if v == -1 else float(v)) for name, v in zip(_STATS, ev.stats, strict=True)}
    wanted = set(ids)
    on_images = [a for a in anns if a["image_id"] in wanted]
    scored = [a for a in on_images if not a.get("iscrowd") and a["num_keypoints"] > 0]
    counts = {s: sum(lo <= a["area"] <= hi for a in scored) for s, (lo, hi) in _AREAS.items()}
    reasons = _undefined_reasons(stats, counts, len(ids))
    return CocoKeypointAP(
        **stats,
        n_images=len(ids),
        n_instances=len(scored),
        n_results=sum(r["image_id"] in wanted for r in res),
        sigmas=tuple(float(s) for s in sig),
        reason=_join_reasons(reasons),
        n_ignored=len(on_images) - len(scored),
        missed_joints=int(sum(len(j) for j in misses.values())),
        reasons=reasons,
    )


# --- MPII PCKh -------------------------------------------------------------------------------


def head_sizes_from_boxes(boxes: Any) -> np.ndarray:
    """MPII's head sizes: ``0.6 * ||(x2 - x1, y2 - y1)||`` of each head box.

    Parameters
    ----------
    boxes : array_like
        ``(..., 4)`` head boxes ``(x1, y1, x2, y2)`` (MPII's ``annorect`` ``x1, y1, x2, y2``).

    Returns
    -------
    numpy.ndarray
        ``(...)`` head sizes in pixels.

    Examples
    --------
    >>> head_sizes_from_boxes([[10, 20, 40, 60], [0, 0, 5, 12]]).tolist()
    [30.0, 7.8]
    """
    b = np.asarray(boxes, dtype=np.float64)
    if b.ndim == 0 or b.shape[-1] != 4:
        raise ValueError(f"boxes must have shape (..., 4) as (x1, y1, x2, y2), got shape {b.shape}")
    if not np.all(np.isfinite(b)):
        raise ValueError("boxes must be finite")
    result: np.ndarray = MPII_HEAD_FACTOR * np.hypot(b[..., 2] - b[..., 0], b[..., 3] - b[..., 1])
    return result


@dataclass(frozen=True, eq=False)
class PCKh:
    """MPII's PCKh at one threshold.

    Attributes
    ----------
    threshold : float
        In head sizes (0.5 for PCKh@0.5).
    mean : float
        The share of annotated joints within ``threshold`` head sizes, pooled over the joints
        not in ``excluded`` (MPII's total; x 100 for MPII's percent).
    per_joint : numpy.ndarray
        ``J`` shares; NaN for a joint never annotated.
    per_joint_visible, per_joint_correct : numpy.ndarray
        ``J`` counts of annotated joints and of those correct.
    n_visible, n_correct, n_missed : int
        Over the joints in the mean: annotated, correct, and predicted as NaN (misses, wrong).
    joints : tuple of str or None
        Joint names, when a schema was given.
    excluded : tuple of str
        Joints left out of the mean (MPII: pelvis and thorax).
    reason : str
        Why ``mean`` or a per-joint value is NaN; ``""`` when none is.

    Examples
    --------
    >>> r = pckh(np.zeros((2, 1, 2)), np.zeros((2, 1, 2)), [[True], [False]], [10.0, 10.0])
    >>> r.mean, r.n_visible, r.as_dict()["per_joint"]
    (1.0, 1, [1.0])
    """

    threshold: float
    mean: float
    per_joint: np.ndarray
    per_joint_visible: np.ndarray
    per_joint_correct: np.ndarray
    n_visible: int
    n_correct: int
    n_missed: int
    joints: tuple[str, ...] | None
    excluded: tuple[str, ...]
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN becomes ``None``; ``reason`` says why)."""
        return {
            "threshold": self.threshold,
            "mean": _json_float(self.mean),
            "per_joint": [_json_float(v) for v in self.per_joint],
            "per_joint_visible": [int(v) for v in self.per_joint_visible],
            "per_joint_correct": [int(v) for v in self.per_joint_correct],
            "n_visible": self.n_visible,
            "n_correct": self.n_correct,
            "n_missed": self.n_missed,
            "joints": None if self.joints is None else list(self.joints),
            "excluded": list(self.excluded),
            "reason": self.reason,
        }


@dataclass(frozen=True, eq=False)
class PCKhCurve:
    """MPII's PCKh over a range of thresholds.

    Attributes
    ----------
    thresholds : numpy.ndarray
        ``T`` thresholds in head sizes.
    mean : numpy.ndarray
        ``T`` pooled PCKh values over the joints not in ``excluded``.
    per_joint : numpy.ndarray
        ``T x J``; NaN columns for joints never annotated.
    auc : float
        Area under ``mean`` over the thresholds, divided by their range (in [0, 1]).
    joints, excluded, n_visible, n_missed, reason
        As in :class:`PCKh`.

    Examples
    --------
    >>> c = pckh_curve([[[3.0, 0.0]]], [[[0.0, 0.0]]], [[True]], [10.0], [0.0, 0.2, 0.4])
    >>> c.mean.tolist(), c.auc  # error 0.3 head sizes
    ([0.0, 0.0, 1.0], 0.25)
    """

    thresholds: np.ndarray
    mean: np.ndarray
    per_joint: np.ndarray
    auc: float
    joints: tuple[str, ...] | None
    excluded: tuple[str, ...]
    n_visible: int
    n_missed: int
    reason: str = ""


def _pckh_inputs(
    pred: Any, gt: Any, visible: Any, head_sizes: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Normalised errors (inf for misses), annotated flags and the miss flags, each N x J."""
    p = np.asarray(pred, dtype=np.float64)
    g = np.asarray(gt, dtype=np.float64)
    if g.ndim != 3 or g.shape[-1] != 2 or p.shape != g.shape:
        raise ValueError(f"pred and gt must both be N x J x 2, got shapes {p.shape} and {g.shape}")
    v = np.asarray(visible)
    if v.shape != g.shape[:2]:
        raise ValueError(f"visible must be N x J = {g.shape[:2]}, got shape {v.shape}")
    v = v.astype(bool)
    h = np.asarray(head_sizes, dtype=np.float64)
    if h.shape != (g.shape[0],):
        raise ValueError(f"head_sizes must have one value per instance ({g.shape[0]}), got shape {h.shape}")
    bad = np.flatnonzero(~(np.isfinite(h) & (h > 0)))
    if bad.size:
        raise ValueError(
            f"head_sizes[{bad[0]}] = {float(h[bad[0]])!r}: head sizes must be positive and finite"
        )
    if not np.all(np.isfinite(g[v])):
        raise ValueError("gt has a non-finite coordinate on a visible joint")
    missed = ~np.all(np.isfinite(p), axis=-1)
    with np.errstate(invalid="ignore"):
        dist = np.linalg.norm(p - g, axis=-1) / h[:, None]
    dist[missed] = np.inf
    return dist, v, missed & v


def _mean_joints(
    schema: KeypointSchema | str | None, exclude: Sequence[str] | None, j: int
) -> tuple[tuple[str, ...] | None, tuple[str, ...], np.ndarray]:
    """Joint names, the names left out of the mean, and the J mask of joints in the mean."""
    keep = np.ones(j, dtype=bool)
    if schema is None:
        if exclude:
            raise ValueError(f"exclude={list(exclude)!r} names joints: pass the schema that names them")
        return None, (), keep
    s = get_schema(schema)
    if len(s) != j:
        raise ValueError(f"schema {s.name!r} has {len(s)} joints, the keypoints {j}")
    if exclude is None:
        excluded = tuple(n for n in MPII_MEAN_EXCLUDES if n in s.joints)
    else:
        excluded = (exclude,) if isinstance(exclude, str) else tuple(exclude)
    keep[s.indices(excluded)] = False
    return s.joints, excluded, keep


def _shares(correct: np.ndarray, visible: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        out: np.ndarray = np.where(visible > 0, correct / np.maximum(visible, 1), np.nan)
    return out


def _pckh_reason(per_joint_visible: np.ndarray, n_visible: int, joints: tuple[str, ...] | None) -> str:
    parts = []
    if n_visible == 0:
        parts.append("mean: no annotated joint among the joints averaged")
    never = np.flatnonzero(per_joint_visible == 0)
    if never.size:
        named = [joints[i] if joints is not None else f"joint {i}" for i in never]
        parts.append(f"per_joint: never annotated: {', '.join(named)}")
    return "; ".join(parts)


def pckh(
    pred: Any,
    gt: Any,
    visible: Any,
    head_sizes: Any,
    threshold: float = 0.5,
    *,
    schema: KeypointSchema | str | None = None,
    exclude: Sequence[str] | None = None,
) -> PCKh:
    """MPII's PCKh: the share of annotated joints within ``threshold`` head sizes.

    A joint is correct when ``||pred - gt|| <= threshold * head_size`` (MPII's evaluation
    uses ``<=``). Only annotated joints count (``visible``: MPII's ``1 - jnt_missing``,
    MMPose's ``joints_vis``); a NaN prediction is a miss and wrong.

    Parameters
    ----------
    pred, gt : array_like
        ``N x J x 2`` predicted and ground-truth joints, in pixels.
    visible : array_like
        ``N x J`` flags of the annotated joints.
    head_sizes : array_like
        ``N`` head sizes in pixels (:func:`head_sizes_from_boxes`).
    threshold : float
        In head sizes; 0.5 for PCKh@0.5.
    schema : KeypointSchema or str, optional
        Names the ``J`` joints (``"mpii16"``).
    exclude : sequence of str, optional
        Joints left out of the mean. Default: MPII's ``pelvis`` and ``thorax`` when the schema
        has them (MPII's total is over the other 14 joints), none otherwise; ``()`` keeps all.

    Returns
    -------
    PCKh

    Examples
    --------
    >>> gt = np.zeros((1, 3, 2))
    >>> pred = np.array([[[5.0, 0.0], [6.0, 0.0], [np.nan, np.nan]]])  # 0.5, 0.6 head sizes, a miss
    >>> r = pckh(pred, gt, [[1, 1, 1]], [10.0])
    >>> r.per_joint.tolist(), r.n_missed
    ([1.0, 0.0, 0.0], 1)
    """
    t = float(threshold)
    if not (math.isfinite(t) and t >= 0):
        raise ValueError(f"threshold must be a finite number >= 0, got {threshold!r}")
    dist, vis, missed = _pckh_inputs(pred, gt, visible, head_sizes)
    joints, excluded, keep = _mean_joints(schema, exclude, dist.shape[1])
    correct = (dist <= t) & vis
    per_visible = vis.sum(axis=0)
    per_correct = correct.sum(axis=0)
    n_visible = int(per_visible[keep].sum())
    n_correct = int(per_correct[keep].sum())
    return PCKh(
        threshold=t,
        mean=n_correct / n_visible if n_visible else math.nan,
        per_joint=_shares(per_correct, per_visible),
        per_joint_visible=per_visible,
        per_joint_correct=per_correct,
        n_visible=n_visible,
        n_correct=n_correct,
        n_missed=int(missed[:, keep].sum()),
        joints=joints,
        excluded=excluded,
        reason=_pckh_reason(per_visible, n_visible, joints),
    )


def pckh_curve(
    pred: Any,
    gt: Any,
    visible: Any,
    head_sizes: Any,
    thresholds: Sequence[float] | np.ndarray = MPII_THRESHOLDS,
    *,
    schema: KeypointSchema | str | None = None,
    exclude: Sequence[str] | None = None,
) -> PCKhCurve:
    """MPII's PCKh curve: :func:`pckh` at each of ``thresholds`` (default ``0:0.01:0.5``).

    Parameters are those of :func:`pckh`; ``thresholds`` must be finite, ``>= 0`` and strictly
    increasing (at least two).

    Returns
    -------
    PCKhCurve

    Examples
    --------
    >>> gt = np.zeros((2, 1, 2))
    >>> pred = np.array([[[1.0, 0.0]], [[4.0, 0.0]]])  # 0.1 and 0.4 head sizes
    >>> c = pckh_curve(pred, gt, np.ones((2, 1)), [10.0, 10.0])
    >>> c.mean[[0, 10, 40, 50]].tolist()
    [0.0, 0.5, 1.0, 1.0]
    """
    t = np.asarray(thresholds, dtype=np.float64)
    if t.ndim != 1 or t.size < 2 or not np.all(np.isfinite(t)) or t[0] < 0 or np.any(np.diff(t) <= 0):
        raise ValueError(
            f"thresholds must be >= 2 finite, non-negative, increasing values, got {thresholds!r}"
        )
    dist, vis, missed = _pckh_inputs(pred, gt, visible, head_sizes)
    joints, excluded, keep = _mean_joints(schema, exclude, dist.shape[1])
    correct = (dist[None] <= t[:, None, None]) & vis[None]  # T x N x J
    per_visible = vis.sum(axis=0)
    per_correct = correct.sum(axis=1)  # T x J
    n_visible = int(per_visible[keep].sum())
    mean = per_correct[:, keep].sum(axis=1) / n_visible if n_visible else np.full(t.size, np.nan)
    area = float((np.diff(t) * (mean[1:] + mean[:-1]) / 2.0).sum()) / float(t[-1] - t[0])
    return PCKhCurve(
        thresholds=t,
        mean=mean,
        per_joint=_shares(per_correct, per_visible[None]),
        auc=area,
        joints=joints,
        excluded=excluded,
        n_visible=n_visible,
        n_missed=int(missed[:, keep].sum()),
        reason=_pckh_reason(per_visible, n_visible, joints),
    )


# --- MPII head boxes -------------------------------------------------------------------------

# MMPose's mpii_gt_val.mat names its joints MPII's way (dataset_joints).
_MPII_SHORT = {
    "rank": "right_ankle", "rkne": "right_knee", "rhip": "right_hip", "lhip": "left_hip",
    "lkne": "left_knee", "lank": "left_ankle", "pelv": "pelvis", "thor": "thorax",
    "neck": "upper_neck", "head": "head_top", "rwri": "right_wrist", "relb": "right_elbow",
    "rsho": "right_shoulder", "lsho": "left_shoulder", "lelb": "left_elbow", "lwri": "left_wrist",
}  # fmt: skip


@dataclass(frozen=True, eq=False)
class MpiiHeadBoxes:
    """Head boxes read from an MPII annotation file, one per annotated person.

    Attributes
    ----------
    boxes : numpy.ndarray
        ``N x 4`` head boxes ``(x1, y1, x2, y2)`` in the file's (MATLAB, 1-based) pixels.
    joints : numpy.ndarray
        ``N x 16 x 2`` the person's annotated joints in ``mpii16`` order; NaN where missing.
    labelled : numpy.ndarray
        ``N x 16`` flags of the annotated joints.
    images : tuple of str or None
        Each person's image file name (``mpii_gt_val.mat`` has none: its order is MMPose's
        ``mpii_val.json``).
    people : tuple of int or None
        Each person's 0-based index in its image's ``annorect``.
    layout : str
        ``"mpii_release"`` (``mpii_human_pose_v1_u12_1.mat``) or ``"mmpose_gt"``
        (``mpii_gt_val.mat``).
    path : str
        The file read.
    """

    boxes: np.ndarray
    joints: np.ndarray
    labelled: np.ndarray
    images: tuple[str, ...] | None
    people: tuple[int, ...] | None
    layout: str
    path: str

    def __len__(self) -> int:
        return len(self.boxes)

    @property
    def head_sizes(self) -> np.ndarray:
        """``N`` head sizes, ``0.6`` times each box's diagonal (:func:`head_sizes_from_boxes`)."""
        return head_sizes_from_boxes(self.boxes)

    def boxes_for(
        self, joints: Any, visible: Any, images: Sequence[str] | None = None, *, tolerance: float = 1.0
    ) -> np.ndarray:
        """Return the head box of each given person, found by its annotated joints (and image).

        A person of the file matches when it is on the same image (where both name one) and
        every joint annotated in both lies within ``tolerance`` pixels; exactly one must.

        Parameters
        ----------
        joints : array_like
            ``M x 16 x 2`` joints in ``mpii16`` order, in the file's pixels (MMPose's MPII
            JSON ``joints``).
        visible : array_like
            ``M x 16`` annotated flags (MMPose's ``joints_vis``).
        images : sequence of str, optional
            Each person's image file name.
        tolerance : float
            Pixels.

        Returns
        -------
        numpy.ndarray
            ``M x 4`` head boxes.
        """
        q = np.asarray(joints, dtype=np.float64)
        v = np.asarray(visible).astype(bool)
        if q.ndim != 3 or q.shape[1:] != (16, 2) or v.shape != q.shape[:2]:
            raise ValueError(f"joints must be M x 16 x 2 and visible M x 16, got {q.shape} and {v.shape}")
        if images is not None and len(images) != len(q):
            raise ValueError(f"images has {len(images)} names for {len(q)} people")
        by_image: dict[str, list[int]] = {}
        for i, name in enumerate(self.images or ()):
            by_image.setdefault(name, []).append(i)
        out = np.empty((len(q), 4))
        for m in range(len(q)):
            named = images is not None and self.images is not None
            cand = np.asarray(
                by_image.get(images[m], []) if named and images else range(len(self)), dtype=int
            )
            common = self.labelled[cand] & v[m] & np.all(np.isfinite(q[m]), axis=-1)
            with np.errstate(invalid="ignore"):
                close = np.abs(self.joints[cand] - q[m]).max(axis=-1) <= tolerance
            hits = cand[common.any(axis=1) & np.all(close | ~common, axis=1)]
            if hits.size != 1:
                where = f" on image {images[m]!r}" if images is not None else ""
                raise ValueError(
                    f"person {m}{where}: {hits.size} people of {self.path!r} have its annotated joints "
                    f"(within {tolerance} px); expected exactly one"
                )
            out[m] = self.boxes[hits[0]]
        return out


def _items(value: Any) -> list[Any]:
    """Return a MATLAB struct array, cell array or single struct as a list (empty for [])."""
    from scipy.io.matlab import mat_struct

    if value is None:
        return []
    if isinstance(value, mat_struct):
        return [value]
    if isinstance(value, np.ndarray):
        return list(value.ravel())
    return [value]


def _number(value: Any) -> float | None:
    arr = np.asarray(value)
    if arr.size != 1 or arr.dtype.kind not in "biuf":
        return None
    return float(arr.reshape(()))


def _annopoints(rect: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    joints = np.full((n, 2), np.nan)
    annopoints = getattr(rect, "annopoints", None)
    points = getattr(annopoints, "point", None) if not isinstance(annopoints, np.ndarray) else None
    for point in _items(points):
        jid, x, y = (_number(getattr(point, f, None)) for f in ("id", "x", "y"))
        if jid is None or x is None or y is None or not 0 <= jid < n:
            continue
        joints[int(jid)] = (x, y)
    return joints, np.all(np.isfinite(joints), axis=1)


def _release_layout(release: Any, path: str) -> MpiiHeadBoxes:
    # MPII's point ids 0..15 are the joints in mpii16's order (r ankle ... l wrist).
    n = len(get_schema("mpii16"))
    boxes, joints, labelled, images, people = [], [], [], [], []
    for entry in _items(getattr(release, "annolist", None)):
        image = getattr(entry, "image", None)
        name = str(getattr(image, "name", ""))
        for person, rect in enumerate(_items(getattr(entry, "annorect", None))):
            box = [_number(getattr(rect, f, None)) for f in ("x1", "y1", "x2", "y2")]
            if any(b is None for b in box):
                continue  # a person without a head box (MPII's test set, unannotated people)
            j, lab = _annopoints(rect, n)
            boxes.append(box)
            joints.append(j)
            labelled.append(lab)
            images.append(name)
            people.append(person)
    if not boxes:
        raise ValueError(f"{path!r} holds MPII's RELEASE struct but no head box (annorect x1, y1, x2, y2). "
                         + _HEAD_BOX_HELP)  # fmt: skip
    return MpiiHeadBoxes(
        boxes=np.asarray(boxes, dtype=np.float64),
        joints=np.asarray(joints),
        labelled=np.asarray(labelled),
        images=tuple(images),
        people=tuple(people),
        layout="mpii_release",
        path=path,
    )


def _gt_layout(mat: Mapping[str, Any], path: str) -> MpiiHeadBoxes:
    hb = np.asarray(mat["headboxes_src"], dtype=np.float64)
    if hb.size % 4 or hb.shape[:2] != (2, 2):
        raise ValueError(f"{path!r}: headboxes_src must be 2 x 2 x N, got shape {hb.shape}")
    hb = hb.reshape(2, 2, -1)
    boxes = np.stack([hb[0, 0], hb[0, 1], hb[1, 0], hb[1, 1]], axis=1)
    n = len(boxes)
    mpii = get_schema("mpii16")
    joints = np.full((n, len(mpii), 2), np.nan)
    labelled = np.zeros((n, len(mpii)), dtype=bool)
    if "pos_gt_src" in mat and "jnt_missing" in mat:
        pos = np.asarray(mat["pos_gt_src"], dtype=np.float64).reshape(-1, 2, n).transpose(2, 0, 1)
        present = np.asarray(mat["jnt_missing"]).reshape(-1, n).T == 0
        if "dataset_joints" in mat:
            names = [_MPII_SHORT.get(str(x).strip(), str(x).strip()) for x in np.ravel(mat["dataset_joints"])]
        else:
            names = list(mpii.joints)  # MPII's own order
        order = [names.index(j) if j in names else -1 for j in mpii.joints]
        for dst, src in enumerate(order):
            if src >= 0:
                joints[:, dst] = np.where(present[:, src, None], pos[:, src], np.nan)
                labelled[:, dst] = present[:, src]
    return MpiiHeadBoxes(boxes, joints, labelled, None, None, "mmpose_gt", path)


def load_mpii_head_boxes(path: str | os.PathLike[str]) -> MpiiHeadBoxes:
    """Read MPII's head boxes from its annotation file (``.mat``, via ``scipy.io.loadmat``).

    Two layouts are read:

    * MPII's release, ``mpii_human_pose_v1_u12_1.mat``: ``RELEASE.annolist(i).annorect(r)``
      with the head box ``x1, y1, x2, y2`` and ``annopoints.point`` (``id``, ``x``, ``y``);
      people without a head box (the test set) are left out.
    * MMPose's ``mpii_gt_val.mat``: ``headboxes_src`` (2 x 2 x N, corners x coordinates),
      ``pos_gt_src`` (16 x 2 x N), ``jnt_missing`` (16 x N), ``dataset_joints``, in the order
      of MMPose's ``mpii_val.json``.

    Parameters
    ----------
    path : str or path-like
        The ``.mat`` file.

    Returns
    -------
    MpiiHeadBoxes

    Raises
    ------
    FileNotFoundError, ValueError
        When the file is missing or holds neither layout; the message says where MPII's head
        boxes are published.

    Examples
    --------
    >>> load_mpii_head_boxes("no/such/mpii_gt_val.mat")
    Traceback (most recent call last):
    ...
    FileNotFoundError: no MPII annotation file at 'no/such/mpii_gt_val.mat'. PCKh needs MPII's head boxes, ...
    """
    from scipy.io import loadmat

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no MPII annotation file at {str(p)!r}. {_HEAD_BOX_HELP}")
    try:
        mat = loadmat(str(p), struct_as_record=False, squeeze_me=True)
    except (ValueError, TypeError, OSError, NotImplementedError) as exc:
        raise ValueError(
            f"{str(p)!r} is not a MATLAB file scipy can read ({exc}). {_HEAD_BOX_HELP}"
        ) from None
    if "RELEASE" in mat:
        return _release_layout(mat["RELEASE"], str(p))
    if "headboxes_src" in mat:
        return _gt_layout(mat, str(p))
    keys = sorted(k for k in mat if not k.startswith("__"))
    raise ValueError(
        f"{str(p)!r} has no MPII head boxes (neither RELEASE nor headboxes_src; it holds {keys}). "
        + _HEAD_BOX_HELP
    )


# --- mRR -------------------------------------------------------------------------------------


def mean_relative_robustness(
    clean: float, cells: Mapping[str, Mapping[Any, float] | Sequence[float]]
) -> float:
    """PoseBench's mRR: the mean over corruptions of ``RR_i = mean_s(P_{i,s}) / P_clean``.

    With ``S`` severities per corruption ``RR_i = (sum_s P_{i,s}) / (S * P_clean)`` (``S = 5``
    in PoseBench; ``docs/corruptions.md``, *mRR*), so that with every corruption at the same
    severities mRR equals Wang et al.'s ``rPC = mPC / P_clean``. A share: x 100 for PoseBench's
    percent.

    Parameters
    ----------
    clean : float
        The metric on clean data (``AP_clean``), > 0.
    cells : mapping
        Corruption -> its values per severity (a mapping severity -> value, or a sequence);
        every corruption at the same severities.

    Returns
    -------
    float

    Examples
    --------
    >>> mean_relative_robustness(0.5, {"fog": [0.5, 0.25], "noise": [0.25, 0.25]})  # (0.75 + 0.5) / 2
    0.625
    """
    c = float(clean)
    if not (math.isfinite(c) and c > 0):
        raise ValueError(f"clean must be a positive finite value, got {clean!r}")
    if not isinstance(cells, Mapping) or not cells:
        raise ValueError("cells must map at least one corruption to its values per severity")
    severities: list[Any] | None = None
    total = 0.0
    for name, row in cells.items():
        keys = list(row) if isinstance(row, Mapping) else list(range(1, len(row) + 1))
        values = [float(row[s]) for s in keys] if isinstance(row, Mapping) else [float(x) for x in row]
        if not values:
            raise ValueError(f"cells[{name!r}] has no severity")
        if severities is None:
            severities = keys
        elif sorted(map(str, keys)) != sorted(map(str, severities)):
            raise ValueError(
                f"cells[{name!r}] has severities {keys}, another corruption {severities}: "
                "mRR needs every corruption at the same severities"
            )
        bad = [s for s, v in zip(keys, values, strict=True) if not math.isfinite(v)]
        if bad:
            raise ValueError(f"cells[{name!r}] has no value at severity {bad[0]!r}")
        total += math.fsum(values)
    # mean_i (sum_s P_is) / (S * P_clean), every corruption at the same S severities
    return total / (len(cells) * len(severities or ()) * c)
