"""Body and animal metrics: COCO keypoint AP through pycocotools, MPII's PCKh, PoseBench's mRR.

References: pycocotools called directly on the same files (the oracle for AP / AR), COCO's
published OKS definition for hand-computed single-instance cases, MPII's PCKh definition
(head size 0.6 x the head box's diagonal, ``error <= threshold * head size``, annotated joints
only) for hand-computed PCKh, and ``docs/corruptions.md`` for mRR.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval, Params
from scipy.io import savemat

from keypoint_corrupt.body_metrics import (
    MPII_THRESHOLDS,
    CocoKeypointAP,
    coco_keypoint_ap,
    head_sizes_from_boxes,
    load_mpii_head_boxes,
    mean_relative_robustness,
    pckh,
    pckh_curve,
)
from keypoint_corrupt.schema import get_schema

DATA = Path(__file__).resolve().parent / "data"
COCO_FILE = DATA / "body" / "coco" / "test_coco.json"
WHOLEBODY_FILE = DATA / "body" / "coco" / "test_coco_wholebody.json"
AP10K_FILE = DATA / "animal" / "ap10k" / "test_ap10k.json"
MPII_JSON = DATA / "body" / "mpii" / "test_mpii.json"

STATS = ("ap", "ap50", "ap75", "ap_m", "ap_l", "ar", "ar50", "ar75", "ar_m", "ar_l")
# MMPose's AP-10K sigmas, in AP-10K's joint order (configs/_base_/datasets/ap10k.py).
MMPOSE_AP10K_SIGMAS = (
    0.025, 0.025, 0.026, 0.035, 0.035, 0.079, 0.072, 0.062, 0.079, 0.072,
    0.062, 0.107, 0.087, 0.089, 0.107, 0.087, 0.089,
)  # fmt: skip
# pycocotools' precision is tp / (tp + fp + eps): a perfect score is 1 within a few ulps.
ONE = pytest.approx(1.0, abs=1e-12)


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _as_results(data: dict, score: float = 1.0) -> list[dict]:
    """The ground truth's labelled instances as predictions."""
    return [
        {"image_id": a["image_id"], "category_id": a["category_id"], "keypoints": list(a["keypoints"]),
         "score": score}
        for a in data["annotations"]
        if a["num_keypoints"] > 0
    ]  # fmt: skip


def _jittered(data: dict, sigma: float, seed: int) -> list[dict]:
    """Gaussian jitter of every labelled instance, random scores, and two false positives."""
    rng = np.random.default_rng(seed)
    out = []
    for r in _as_results(data):
        kps = np.asarray(r["keypoints"], dtype=float).reshape(-1, 3)
        kps[:, :2] += rng.normal(0.0, sigma, (len(kps), 2))
        kps[:, 2] = rng.uniform(0.2, 1.0, len(kps))
        out.append({**r, "keypoints": kps.ravel().tolist(), "score": float(rng.uniform(0.3, 1.0))})
    for r in out[:2]:  # a copy 40 px off: a false positive at a middling score
        kps = np.asarray(r["keypoints"]).reshape(-1, 3)
        kps[:, 0] += 40.0
        out.append({**r, "keypoints": kps.ravel().tolist(), "score": 0.5})
    return out


def _pycocotools(data: dict, results: list[dict], sigmas=None, image_ids=None) -> np.ndarray:
    """The ten figures from pycocotools, called directly (the oracle)."""
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = copy.deepcopy(data)
        gt.createIndex()
        dt = gt.loadRes(copy.deepcopy(results))
        ev = COCOeval(gt, dt, "keypoints")
        if sigmas is not None:
            ev.params.kpt_oks_sigmas = np.asarray(sigmas, dtype=float)
        if image_ids is not None:
            ev.params.imgIds = image_ids
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return np.asarray(ev.stats, dtype=float)


def _stats(m: CocoKeypointAP) -> np.ndarray:
    """Our ten figures with NaN written as pycocotools' -1."""
    return np.array([-1.0 if math.isnan(getattr(m, s)) else getattr(m, s) for s in STATS])


def _single(ann_id: int = 442619) -> tuple[dict, dict]:
    """test_coco.json reduced to one image holding one instance; and that instance."""
    data = _load(COCO_FILE)
    ann = next(a for a in data["annotations"] if a["id"] == ann_id)
    data["annotations"] = [ann]
    data["images"] = [im for im in data["images"] if im["id"] == ann["image_id"]]
    return data, ann


def _oks(ann: dict, pred_xy: np.ndarray, sigmas) -> float:
    """COCO's OKS: mean over labelled joints of exp(-d^2 / (2 s^2 k^2)), s^2 = area, k = 2 sigma."""
    gt = np.asarray(ann["keypoints"], dtype=float).reshape(-1, 3)
    labelled = gt[:, 2] > 0
    d2 = ((pred_xy - gt[:, :2]) ** 2).sum(axis=1)
    terms = np.exp(-d2 / (2.0 * ann["area"] * (2.0 * np.asarray(sigmas)) ** 2))
    return float(np.where(np.isnan(terms), 0.0, terms)[labelled].mean())


OKS_THRESHOLDS = np.round(np.arange(0.5, 0.951, 0.05), 2)


# --- sigmas ----------------------------------------------------------------------------------


def test_coco17_sigmas_are_pycocotools_own():
    theirs = Params(iouType="keypoints").kpt_oks_sigmas
    np.testing.assert_allclose(get_schema("coco17").sigmas, theirs, rtol=1e-12, atol=0)
    m = coco_keypoint_ap(COCO_FILE, _as_results(_load(COCO_FILE)))
    assert m.sigmas == tuple(theirs)  # pycocotools' own array, to the last bit


def test_ap10k_sigmas_are_mmposes_joint_by_joint():
    schema = get_schema("ap10k")
    np.testing.assert_allclose(schema.sigmas, MMPOSE_AP10K_SIGMAS, rtol=0, atol=1e-15)
    for left, right in schema.flip_pairs:  # a joint and its mirror image share their sigma
        assert schema.sigmas[schema.index(left)] == schema.sigmas[schema.index(right)], (left, right)
    assert schema.sigmas[schema.index("left_front_paw")] == 0.062  # a wrist's, not an elbow's


# --- COCO keypoint AP ------------------------------------------------------------------------


def test_ground_truth_as_predictions_scores_one_on_coco():
    data = _load(COCO_FILE)
    m = coco_keypoint_ap(COCO_FILE, _as_results(data))
    assert [getattr(m, s) for s in STATS] == [ONE] * 10
    no_keypoints = [a for a in data["annotations"] if a["num_keypoints"] == 0]
    assert len(no_keypoints) == 2  # the fixture's instances without any labelled keypoint ...
    assert (m.n_images, m.n_instances, m.n_ignored, m.n_results) == (4, 12, 2, 12)  # ... are ignored
    assert m.reason == "" and m.reasons == {} and m.missed_joints == 0
    np.testing.assert_array_equal(_stats(m), _pycocotools(data, _as_results(data)))


def test_crowd_regions_are_ignored_not_missed():
    data = _load(COCO_FILE)
    target = 488308  # a medium-sized person
    others = {**data, "annotations": [a for a in data["annotations"] if a["id"] != target]}
    results = _as_results(others)
    missed = coco_keypoint_ap(data, results)  # an ordinary instance not predicted costs recall
    assert missed.ar == pytest.approx(11 / 12) and missed.ap_m < 1.0
    crowd = copy.deepcopy(data)
    next(a for a in crowd["annotations"] if a["id"] == target)["iscrowd"] = 1
    m = coco_keypoint_ap(crowd, results)  # a crowd region not predicted costs nothing
    assert (m.ap, m.ar, m.ap_m, m.n_instances, m.n_ignored) == (ONE, ONE, ONE, 11, 3)
    on_crowd = coco_keypoint_ap(crowd, _as_results(data))  # and a result on it is no false positive
    assert (on_crowd.ap, on_crowd.ap_m) == (ONE, ONE)
    np.testing.assert_array_equal(_stats(on_crowd), _pycocotools(crowd, _as_results(data)))


@pytest.mark.parametrize(("sigma", "seed"), [(2.0, 0), (6.0, 1)])
def test_jittered_predictions_give_exactly_pycocotools_figures(sigma, seed):
    data = _load(COCO_FILE)
    results = _jittered(data, sigma, seed)
    m = coco_keypoint_ap(COCO_FILE, results)
    np.testing.assert_array_equal(_stats(m), _pycocotools(data, results))
    assert 0.05 < m.ap < 0.99 and m.n_results == len(results) == 14  # the jitter matters
    subset = [40083, 196141]
    part = coco_keypoint_ap(data, results, image_ids=subset)
    np.testing.assert_array_equal(_stats(part), _pycocotools(data, results, image_ids=subset))
    assert (part.n_images, part.n_instances, part.n_ignored) == (2, 6, 2)
    assert part.n_results == sum(r["image_id"] in subset for r in results)


@pytest.mark.parametrize(("shift", "ap"), [((3, 4), 0.9), ((6, 8), 0.7), ((9, 12), 0.4), ((12, 16), 0.2)])
def test_every_keypoint_shifted_gives_the_hand_computed_ap(shift, ap):
    data, ann = _single()
    kps = np.asarray(ann["keypoints"], dtype=float).reshape(-1, 3)
    kps[:, :2] += shift
    oks = _oks(ann, kps[:, :2], get_schema("coco17").sigmas)
    assert np.abs(oks - OKS_THRESHOLDS).min() > 1e-3  # no threshold on a knife edge
    expected = float(np.mean(oks >= OKS_THRESHOLDS))  # one instance: matched at t iff OKS >= t
    assert expected == pytest.approx(ap)
    res = [{"image_id": ann["image_id"], "category_id": 1, "keypoints": kps.ravel().tolist(), "score": 0.7}]
    m = coco_keypoint_ap(data, res)
    assert (m.ap, m.ar, m.ap_l, m.ar_l) == pytest.approx((expected,) * 4, abs=1e-12)
    assert (m.ap50, m.ap75) == pytest.approx((float(oks >= 0.5), float(oks >= 0.75)), abs=1e-12)
    assert math.isnan(m.ap_m) and "medium" in m.reasons["ap_m"] and "ap_m, ar_m" in m.reason


def test_missed_joints_add_nothing_to_oks():
    data, ann = _single()
    kps = np.asarray(ann["keypoints"], dtype=float).reshape(-1, 3)
    kps[[0, 3, 5, 9, 16], :2] = np.nan  # 5 of the 17 labelled joints missed: OKS = 12 / 17
    result = {"image_id": ann["image_id"], "category_id": 1, "keypoints": kps.ravel().tolist(), "score": 0.9}
    before = copy.deepcopy(result)
    m = coco_keypoint_ap(data, [result])
    assert 12 / 17 == pytest.approx(_oks(ann, kps[:, :2], get_schema("coco17").sigmas))
    assert m.ap == pytest.approx(np.mean(12 / 17 >= OKS_THRESHOLDS), abs=1e-12)  # 0.5 .. 0.7 matched
    assert m.ap == pytest.approx(0.5, abs=1e-12) and m.missed_joints == 5
    assert json.dumps(result) == json.dumps(before)  # the caller's result is left as it was


def test_a_result_with_every_joint_missed_is_a_false_positive_of_no_area():
    data, ann = _single()
    right = {"image_id": ann["image_id"], "category_id": 1, "keypoints": ann["keypoints"], "score": 0.5}
    nothing = {**right, "keypoints": [math.nan, math.nan, 0.0] * 17, "score": 0.9}
    m = coco_keypoint_ap(data, [right, nothing])
    assert m.ap50 == pytest.approx(0.5, abs=1e-12)  # a false positive ranked first: precision 1/2
    assert m.missed_joints == 17
    far = np.asarray(ann["keypoints"], float) + [5000.0, 5000.0, 0.0] * 17
    wrong = _pycocotools(data, [right, {**nothing, "keypoints": far.tolist()}])  # a very wrong answer
    every_area = [STATS.index(s) for s in ("ap", "ap50", "ap75", "ar", "ar50", "ar75")]
    np.testing.assert_array_equal(_stats(m)[every_area], wrong[every_area])
    # Without any joint it has no extent: in no area range, so APL is that of the right one alone.
    assert m.ap_l == _pycocotools(data, [right])[STATS.index("ap_l")] == ONE


def test_ap10k_with_its_own_sigmas():
    data = _load(AP10K_FILE)
    assert len({a["category_id"] for a in data["annotations"]}) == 2  # two species, one joint layout
    m = coco_keypoint_ap(AP10K_FILE, _as_results(data))
    assert (m.ap, m.ap50, m.ap75, m.ap_l, m.ar, m.ar_l) == (ONE,) * 6
    assert m.sigmas == MMPOSE_AP10K_SIGMAS
    assert math.isnan(m.ap_m) and math.isnan(m.ar_m)  # both animals are large
    assert m.reasons["ap_m"].startswith("no ground-truth instance of medium")
    assert m.as_dict()["ap_m"] is None and "medium" in m.as_dict()["reason"]
    results = _jittered(data, 8.0, 3)
    jit = coco_keypoint_ap(AP10K_FILE, results)
    np.testing.assert_array_equal(_stats(jit), _pycocotools(data, results, sigmas=MMPOSE_AP10K_SIGMAS))
    assert jit.ap < 0.99
    # One animal with three limb joints 70 px off: OKS by hand with MMPose's sigmas.
    one = {**data, "annotations": [a for a in data["annotations"] if a["id"] == 6]}
    one["images"] = [im for im in data["images"] if im["id"] == one["annotations"][0]["image_id"]]
    kps = np.asarray(one["annotations"][0]["keypoints"], dtype=float).reshape(-1, 3)
    kps[get_schema("ap10k").indices(["left_elbow", "left_front_paw", "left_knee"]), 0] += 70.0
    oks = _oks(one["annotations"][0], kps[:, :2], MMPOSE_AP10K_SIGMAS)
    coco_oks = _oks(one["annotations"][0], kps[:, :2], Params(iouType="keypoints").kpt_oks_sigmas)
    assert np.abs(np.array([oks, coco_oks])[:, None] - OKS_THRESHOLDS).min() > 1e-3
    assert (np.mean(oks >= OKS_THRESHOLDS), np.mean(coco_oks >= OKS_THRESHOLDS)) == (0.8, 0.9)
    res = [{"image_id": 4, "category_id": 1, "keypoints": kps.ravel().tolist(), "score": 1.0}]
    assert coco_keypoint_ap(one, res).ap == pytest.approx(0.8, abs=1e-12)  # AP-10K's sigmas, not COCO's


def test_coco_wholebody_body_part():
    wholebody = _load(WHOLEBODY_FILE)
    assert "lefthand_kpts" in wholebody["annotations"][0]
    m = coco_keypoint_ap(WHOLEBODY_FILE, _as_results(wholebody))
    assert [getattr(m, s) for s in STATS] == [ONE] * 10 and m.n_instances == 12
    results = _jittered(wholebody, 4.0, 5)
    jit = coco_keypoint_ap(wholebody, results)
    np.testing.assert_array_equal(_stats(jit), _pycocotools(wholebody, results))
    assert jit.ap < 0.99


def test_no_results_score_zero_and_nothing_is_printed_or_changed(capsys):
    data = _load(COCO_FILE)
    before = copy.deepcopy(data)
    m = coco_keypoint_ap(data, [])
    assert [getattr(m, s) for s in STATS] == [0.0] * 10 and m.reason == "" and m.n_results == 0
    results = _jittered(data, 3.0, 0)
    kept = copy.deepcopy(results)
    coco_keypoint_ap(data, results)
    assert capsys.readouterr().out == ""  # pycocotools' prints are swallowed
    assert data == before and results == kept  # pycocotools marks its inputs; ours are untouched


def test_as_dict_is_json_without_nan():
    m = coco_keypoint_ap(AP10K_FILE, _as_results(_load(AP10K_FILE)))
    d = json.loads(json.dumps(m.as_dict(), allow_nan=False))
    assert d["ap"] == ONE and d["ar_m"] is None and d["reasons"]["ar_m"] == m.reasons["ar_m"]
    assert set(STATS) <= set(d) and d["n_instances"] == 2 and len(d["sigmas"]) == 17


def _bad_result(data: dict, **change) -> list[dict]:
    return [{**_as_results(data)[0], **change}]


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"image_id": 999}, ValueError, r"results\[0\]: image_id 999"),
        ({"category_id": 5}, ValueError, "category_id 5"),
        ({"keypoints": [1.0] * 50}, ValueError, "50 keypoint values, expected 51"),
        ({"score": math.nan}, ValueError, "score must be a finite number"),
    ],
)
def test_malformed_results_are_named(change, error, match):
    data = _load(COCO_FILE)
    with pytest.raises(error, match=match):
        coco_keypoint_ap(data, _bad_result(data, **change))


def test_malformed_ground_truth_and_arguments_are_named(tmp_path):
    data = _load(COCO_FILE)
    results = _as_results(data)
    with pytest.raises(FileNotFoundError, match="no COCO keypoint file"):
        coco_keypoint_ap(tmp_path / "missing.json", results)
    no_area = copy.deepcopy(data)
    del no_area["annotations"][3]["area"]
    with pytest.raises(ValueError, match=r"annotations\[3\] \(id 1202706\) has no 'area'"):
        coco_keypoint_ap(no_area, results)
    with pytest.raises(ValueError, match="16 values for the dataset's 17 joints"):
        coco_keypoint_ap(data, results, sigmas=[0.05] * 16)
    with pytest.raises(ValueError, match=r"unknown: \['12345'\]"):
        coco_keypoint_ap(data, results, image_ids=[785, 12345])
    renamed = copy.deepcopy(data)
    renamed["categories"][0]["keypoints"] = [f"k{i}" for i in range(17)]
    with pytest.raises(ValueError, match="pass sigmas"):
        coco_keypoint_ap(renamed, results)
    m = coco_keypoint_ap(renamed, results, sigmas="coco17")  # a schema's sigmas by name
    assert m.ap == ONE


# --- MPII PCKh -------------------------------------------------------------------------------


def test_head_size_is_mpii_definition():
    assert head_sizes_from_boxes([10, 20, 40, 60]) == pytest.approx(0.6 * 50.0)
    np.testing.assert_allclose(head_sizes_from_boxes([[0, 0, 5, 12], [40, 60, 10, 20]]), [7.8, 30.0])
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 4\)"):
        head_sizes_from_boxes([[1, 2, 3]])


def test_pckh_hand_computed():
    # head sizes 10, 20, 10 px: PCKh@0.5 accepts errors up to 5, 10, 5 px (inclusive).
    gt = np.zeros((3, 3, 2))
    err = np.array([[3.0, 5.0, 6.0], [12.0, np.nan, 100.0], [0.0, 50.0, 4.9]])
    pred = np.stack([err, np.zeros_like(err)], axis=-1)
    visible = np.array([[1, 1, 1], [1, 1, 0], [1, 0, 1]])
    r = pckh(pred, gt, visible, [10.0, 20.0, 10.0])
    np.testing.assert_array_equal(r.per_joint_visible, [3, 2, 2])
    np.testing.assert_array_equal(r.per_joint_correct, [2, 1, 1])
    np.testing.assert_allclose(r.per_joint, [2 / 3, 1 / 2, 1 / 2])
    assert (r.mean, r.n_visible, r.n_correct, r.n_missed) == (4 / 7, 7, 4, 1)
    assert r.joints is None and r.excluded == () and r.reason == ""
    at_one = pckh(pred, gt, visible, [10.0, 20.0, 10.0], threshold=1.0)  # up to 10, 20, 10 px
    np.testing.assert_array_equal(at_one.per_joint_correct, [3, 1, 2])


def test_mpii_total_leaves_out_pelvis_and_thorax():
    mpii = get_schema("mpii16")
    gt = np.zeros((2, 16, 2))
    pred = gt.copy()
    pred[:, mpii.indices(["pelvis", "thorax"]), 0] = 50.0  # wrong by 5 head sizes
    r = pckh(pred, gt, np.ones((2, 16)), [10.0, 10.0], schema="mpii16")
    assert r.mean == 1.0 and r.excluded == ("pelvis", "thorax") and r.n_visible == 28
    assert r.per_joint[mpii.index("pelvis")] == 0.0 and r.joints == mpii.joints
    every = pckh(pred, gt, np.ones((2, 16)), [10.0, 10.0], schema="mpii16", exclude=())
    assert every.mean == 28 / 32
    never = pckh(pred, gt, np.zeros((2, 16)), [10.0, 10.0], schema="mpii16")
    assert math.isnan(never.mean) and "no annotated joint" in never.reason
    assert "never annotated: right_ankle" in never.reason
    assert never.as_dict()["mean"] is None


def test_pckh_curve_hand_computed():
    # head size 16 px; errors of 2, 4 and 8 px are 0.125, 0.25 and 0.5 head sizes; one miss.
    gt = np.zeros((1, 4, 2))
    pred = np.array([[[2.0, 0.0], [4.0, 0.0], [0.0, 8.0], [np.nan, np.nan]]])
    c = pckh_curve(pred, gt, np.ones((1, 4)), [16.0], [0.0, 0.125, 0.25, 0.5])
    np.testing.assert_array_equal(c.mean, [0.0, 0.25, 0.5, 0.75])
    np.testing.assert_array_equal(c.per_joint[:, 3], [0.0] * 4)  # the miss: wrong everywhere
    area = (0.25 / 2 * 0.125 + 0.75 / 2 * 0.125 + 1.25 / 2 * 0.25) / 0.5
    assert c.auc == pytest.approx(area) and c.n_missed == 1 and c.n_visible == 4
    assert len(pckh_curve(pred, gt, np.ones((1, 4)), [16.0]).mean) == 51  # MPII's 0:0.01:0.5
    with pytest.raises(ValueError, match="increasing"):
        pckh_curve(pred, gt, np.ones((1, 4)), [16.0], [0.5, 0.25])


# Pixel offsets; nothing so small that scaling by 2^-3 would underflow and change a comparison.
_error = st.floats(-60, 60).map(lambda x: x if abs(x) > 1e-3 else 0.0)
_case = st.integers(1, 4).flatmap(
    lambda n: st.tuples(
        st.lists(_error, min_size=n * 4 * 2, max_size=n * 4 * 2),
        st.lists(st.booleans(), min_size=n * 4, max_size=n * 4),
        st.lists(st.floats(2.0, 40.0), min_size=n, max_size=n),
        st.lists(st.booleans(), min_size=n * 4, max_size=n * 4),
    )
)


@settings(max_examples=60, deadline=None)
@given(_case, st.integers(-3, 3))
def test_pckh_curve_is_pckh_at_each_threshold_and_scale_free(case, power):
    errors, visible, heads, missed = case
    n = len(heads)
    pred = np.asarray(errors).reshape(n, 4, 2)
    pred[np.asarray(missed).reshape(n, 4)] = np.nan
    gt = np.zeros_like(pred)
    vis = np.asarray(visible).reshape(n, 4)
    c = pckh_curve(pred, gt, vis, heads)
    for i in (0, 17, 50):
        r = pckh(pred, gt, vis, heads, threshold=MPII_THRESHOLDS[i])
        assert (c.mean[i] == r.mean) or (math.isnan(c.mean[i]) and math.isnan(r.mean))
        np.testing.assert_array_equal(c.per_joint[i], r.per_joint)
    if vis.any():
        assert np.all(np.diff(c.mean) >= 0)
    scale = 2.0**power  # exact in binary floating point: every comparison stays the same
    scaled = pckh_curve(pred * scale, gt, vis, np.asarray(heads) * scale)
    np.testing.assert_array_equal(scaled.mean, c.mean)


def test_pckh_refuses_bad_input():
    gt = np.zeros((2, 3, 2))
    with pytest.raises(ValueError, match=r"head_sizes\[1\] = 0\.0"):
        pckh(gt, gt, np.ones((2, 3)), [10.0, 0.0])
    with pytest.raises(ValueError, match="N x J x 2"):
        pckh(gt[:, :2], gt, np.ones((2, 3)), [10.0, 10.0])
    with pytest.raises(ValueError, match="visible must be N x J"):
        pckh(gt, gt, np.ones((3, 2)), [10.0, 10.0])
    bad_gt = gt.copy()
    bad_gt[0, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite coordinate on a visible joint"):
        pckh(gt, bad_gt, np.ones((2, 3)), [10.0, 10.0])
    with pytest.raises(ValueError, match="pass the schema"):
        pckh(gt, gt, np.ones((2, 3)), [10.0, 10.0], exclude=["pelvis"])
    with pytest.raises(ValueError, match="'mpii16' has 16 joints"):
        pckh(gt, gt, np.ones((2, 3)), [10.0, 10.0], schema="mpii16")
    with pytest.raises(ValueError, match="threshold"):
        pckh(gt, gt, np.ones((2, 3)), [10.0, 10.0], threshold=-0.1)


# --- MPII head boxes -------------------------------------------------------------------------

# MMPose's mpii_gt_val.mat short joint names, in MPII's order.
MPII_SHORT = ("rank", "rkne", "rhip", "lhip", "lkne", "lank", "pelv", "thor", "neck", "head",
              "rwri", "relb", "rsho", "lsho", "lelb", "lwri")  # fmt: skip


def _struct_array(records: list[dict]) -> np.ndarray:
    """A MATLAB 1 x n struct array for savemat."""
    arr = np.zeros((1, len(records)), dtype=[(k, object) for k in records[0]])
    for i, rec in enumerate(records):
        for k, v in rec.items():
            arr[0, i][k] = v
    return arr


def _head_box(joints: np.ndarray) -> list[float]:
    """A made-up head box around upper neck and head top."""
    head = joints[[8, 9]]
    return [float(head[:, 0].min() - 12), float(head[:, 1].min() - 7), float(head[:, 0].max() + 9),
            float(head[:, 1].max() + 5)]  # fmt: skip


def _release_file(path: Path, people: list[dict]) -> list[list[float]]:
    """MPII's RELEASE layout holding the given people (one image each) plus an unannotated person."""
    annolist, boxes = [], []
    empty = np.zeros((0, 0))
    for k, person in enumerate(people):
        joints = np.asarray(person["joints"], dtype=float)
        points = [
            {"id": j, "x": joints[j, 0], "y": joints[j, 1], "is_visible": 1}
            for j in range(16)
            if person["joints_vis"][j]
        ]
        box = _head_box(joints)
        boxes.append(box)
        rect = {"x1": box[0], "y1": box[1], "x2": box[2], "y2": box[3],
                "annopoints": {"point": _struct_array(points)}, "scale": person["scale"],
                "objpos": {"x": person["center"][0], "y": person["center"][1]}}  # fmt: skip
        rects = [rect]
        if k == 1:  # a second person without a head box, as MPII's test people are
            rects.insert(0, {**{f: empty for f in ("x1", "y1", "x2", "y2", "annopoints")},
                             "scale": 1.0, "objpos": {"x": 1.0, "y": 2.0}})  # fmt: skip
        annolist.append({"image": {"name": person["image"]}, "annorect": _struct_array(rects)})
    release = {"annolist": _struct_array(annolist), "img_train": np.ones((1, len(people))), "version": "12"}
    savemat(path, {"RELEASE": release})
    return boxes


def test_mpii_release_layout_and_matching_mmpose_json(tmp_path):
    people = _load(MPII_JSON)
    boxes = _release_file(tmp_path / "mpii_human_pose_v1_u12_1.mat", people)
    hb = load_mpii_head_boxes(tmp_path / "mpii_human_pose_v1_u12_1.mat")
    assert hb.layout == "mpii_release" and len(hb) == len(people) == 5
    assert hb.images == tuple(p["image"] for p in people) and hb.people == (0, 1, 0, 0, 0)
    np.testing.assert_array_equal(hb.boxes, boxes)
    np.testing.assert_allclose(hb.head_sizes, [0.6 * math.hypot(b[2] - b[0], b[3] - b[1]) for b in boxes])
    vis = np.array([p["joints_vis"] for p in people], dtype=bool)
    np.testing.assert_array_equal(hb.labelled, vis)
    joints = np.array([p["joints"] for p in people], dtype=float)
    np.testing.assert_array_equal(hb.joints[vis], joints[vis])
    assert np.isnan(hb.joints[~vis]).all()
    order = [3, 0, 4, 1, 2]  # MMPose's JSON entries in any order find their boxes
    found = hb.boxes_for(joints[order], vis[order], [people[i]["image"] for i in order])
    np.testing.assert_array_equal(found, np.asarray(boxes)[order])
    np.testing.assert_array_equal(hb.boxes_for(joints, vis), boxes)  # by the joints alone
    with pytest.raises(ValueError, match="0 people"):
        hb.boxes_for(joints[:1] + 30.0, vis[:1])


def test_mmpose_gt_layout_reads_joints_by_name(tmp_path):
    rng = np.random.default_rng(0)
    n = 3
    corners = rng.uniform(0, 500, (2, 2, n))
    corners[1] += 40.0  # (x2, y2) beyond (x1, y1)
    pos = rng.uniform(0, 600, (16, 2, n))
    missing = np.zeros((16, n), dtype=int)
    missing[0, 1] = missing[7, 2] = 1
    perm = rng.permutation(16)  # the file's joint order, declared by its dataset_joints
    savemat(tmp_path / "mpii_gt_val.mat", {
        "dataset_joints": np.array([MPII_SHORT[i] for i in perm], dtype=object),
        "jnt_missing": missing[perm], "pos_gt_src": pos[perm], "headboxes_src": corners,
    })  # fmt: skip
    hb = load_mpii_head_boxes(str(tmp_path / "mpii_gt_val.mat"))
    assert hb.layout == "mmpose_gt" and hb.images is None and len(hb) == n
    np.testing.assert_array_equal(
        hb.boxes, np.stack([corners[0, 0], corners[0, 1], corners[1, 0], corners[1, 1]], 1)
    )
    np.testing.assert_allclose(hb.head_sizes, 0.6 * np.hypot(*(corners[1] - corners[0])))
    np.testing.assert_array_equal(hb.labelled, (missing == 0).T)
    np.testing.assert_array_equal(hb.joints[hb.labelled], pos.transpose(2, 0, 1)[(missing == 0).T])
    mpii = get_schema("mpii16")
    thorax = mpii.index("thorax")  # missing for the third person
    assert np.isnan(hb.joints[2, thorax]).all() and not hb.labelled[2, thorax] and hb.labelled[1, thorax]
    savemat(tmp_path / "one.mat", {"headboxes_src": corners[..., :1]})  # one person: squeezed dims
    assert load_mpii_head_boxes(tmp_path / "one.mat").boxes.shape == (1, 4)


def test_missing_or_unsupported_head_box_files_say_where_to_get_them(tmp_path):
    with pytest.raises(FileNotFoundError, match="no MPII annotation file") as exc:
        load_mpii_head_boxes(tmp_path / "mpii_gt_val.mat")
    assert "human-pose.mpi-inf.mpg.de" in str(exc.value) and "mpii_gt_val.mat" in str(exc.value)
    savemat(tmp_path / "other.mat", {"preds": np.zeros((2, 16, 2))})
    with pytest.raises(ValueError, match=r"no MPII head boxes .*\['preds'\].*mpii_human_pose_v1_u12_1\.mat"):
        load_mpii_head_boxes(tmp_path / "other.mat")
    (tmp_path / "junk.mat").write_bytes(b"not a MATLAB file at all" * 10)
    with pytest.raises(ValueError, match="not a MATLAB file scipy can read"):
        load_mpii_head_boxes(tmp_path / "junk.mat")
    savemat(
        tmp_path / "bare.mat",
        {
            "RELEASE": {
                "annolist": _struct_array([{"image": {"name": "a.jpg"}, "annorect": np.zeros((0, 0))}])
            }
        },
    )
    with pytest.raises(ValueError, match="no head box"):
        load_mpii_head_boxes(tmp_path / "bare.mat")


# --- mRR -------------------------------------------------------------------------------------


def test_mean_relative_robustness_by_hand():
    clean = 0.8
    cells = {
        "gaussian_noise": [0.8, 0.6, 0.4, 0.2, 0.0],  # RR = 2.0 / (5 * 0.8) = 0.5
        "fog": {1: 0.8, 2: 0.8, 3: 0.8, 4: 0.8, 5: 0.8},  # RR = 1
        "mask": {"5": 0.4, "4": 0.4, "3": 0.4, "2": 0.4, "1": 0.4},  # RR = 0.5
    }
    assert mean_relative_robustness(clean, cells) == pytest.approx((0.5 + 1.0 + 0.5) / 3)
    mpc = np.mean([0.8, 0.6, 0.4, 0.2, 0.0] + [0.8] * 5 + [0.4] * 5)
    assert mean_relative_robustness(clean, cells) == pytest.approx(mpc / clean)  # = rPC at 5 severities
    assert mean_relative_robustness(0.5, {"a": [0.25]}) == 0.5


def test_mean_relative_robustness_refuses_what_it_cannot_define():
    with pytest.raises(ValueError, match="clean must be a positive"):
        mean_relative_robustness(0.0, {"a": [0.1]})
    with pytest.raises(ValueError, match="same severities"):
        mean_relative_robustness(0.5, {"a": [0.1, 0.2], "b": [0.1]})
    with pytest.raises(ValueError, match=r"cells\['b'\] has no value at severity 2"):
        mean_relative_robustness(0.5, {"a": {1: 0.1, 2: 0.2}, "b": {1: 0.1, 2: math.nan}})
    with pytest.raises(ValueError, match="at least one corruption"):
        mean_relative_robustness(0.5, {})


def test_annotations_without_iscrowd_count_as_ordinary_instances():
    data = _load(COCO_FILE)
    for ann in data["annotations"]:
        ann.pop("iscrowd", None)
    assert coco_keypoint_ap(data, _as_results(data)).ap == ONE
