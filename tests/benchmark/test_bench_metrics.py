"""keypoint_corrupt.metrics against independent references: hand3d's EvalUtil, scipy, hand arithmetic.

Each property is tested once. Docstring examples (run by tests/test_docstring_examples.py) are
not repeated here.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.integrate import trapezoid
from scipy.spatial.distance import euclidean
from scipy.stats import percentileofscore

from keypoint_corrupt.metrics import (
    PCK_THRESHOLDS,
    auc,
    corruption_summary,
    keypoint_errors,
    keypoint_metrics,
    metrics_from_errors,
    pck_curve,
)


def preds_from_errors(errors):
    """Predictions at distance ``errors`` (along x) from zero ground truth."""
    e = np.asarray(errors, np.float64)
    pred = np.zeros((*e.shape, 2))
    pred[..., 0] = e
    return pred, np.zeros_like(pred)


class HandEvalUtil:
    """hand3d's EvalUtil, re-typed from its published algorithm (lists per joint, <= thresholds)."""

    def __init__(self, num_kp):
        self.data = [[] for _ in range(num_kp)]

    def feed(self, gt, vis, pred):
        dist = np.sqrt(np.sum(np.square(gt - pred), axis=1))
        for i in range(len(gt)):
            if vis[i]:
                self.data[i].append(dist[i])

    def get_measures(self, val_min, val_max, steps):
        thresholds = np.linspace(val_min, val_max, steps)
        norm = np.sum(np.diff(thresholds) * 1.0)  # trapz of ones
        means, medians, aucs, curves = [], [], [], []
        for d in self.data:
            if not d:
                continue
            d = np.array(d)
            means.append(np.mean(d))
            medians.append(np.median(d))
            curve = np.array([np.mean((d <= t).astype(float)) for t in thresholds])
            curves.append(curve)
            area = np.sum(np.diff(thresholds) * (curve[1:] + curve[:-1]) / 2.0)
            aucs.append(area / norm)
        return np.mean(means), np.mean(medians), np.mean(aucs), np.mean(np.array(curves), 0)


# -- the helpers against scipy -----------------------------------------------------------------


coords = st.floats(-1e4, 1e4, allow_nan=False)
error_values = st.floats(0.0, 60.0, allow_nan=False)
# strictly increasing, 0.1 px apart at least
increasing_thresholds = st.lists(st.integers(0, 600), min_size=2, max_size=8, unique=True).map(
    lambda v: [x / 10 for x in sorted(v)]
)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 4).flatmap(lambda j: arrays(np.float64, (2, j, 2), elements=coords)))
def test_errors_match_scipy_euclidean(points):
    pred, gt = points
    expected = [euclidean(p, g) for p, g in zip(pred, gt, strict=True)]
    assert keypoint_errors(pred, gt).tolist() == pytest.approx(expected, rel=1e-12, abs=1e-9)
    with pytest.raises(ValueError, match="same"):
        keypoint_errors(np.zeros((2, 3, 2)), np.zeros((2, 4, 2)))


@settings(max_examples=40, deadline=None)
@given(st.lists(error_values, min_size=1, max_size=20), increasing_thresholds)
def test_pck_curve_matches_scipy_percentileofscore(errors, thresholds):
    # percentileofscore(kind="weak") is the percentage of scores <= t: hand3d's PCK
    expected = [percentileofscore(errors, t, kind="weak") / 100.0 for t in thresholds]
    assert pck_curve(errors, thresholds).tolist() == pytest.approx(expected, abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(
    increasing_thresholds.flatmap(
        lambda t: st.tuples(st.just(t), arrays(np.float64, len(t), elements=st.floats(0, 1)))
    )
)
def test_auc_matches_scipy_trapezoid(data):
    thresholds, pck = data
    expected = trapezoid(pck, thresholds) / (thresholds[-1] - thresholds[0])
    assert auc(pck, thresholds) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_pck_and_auc_validation():
    assert np.isnan(pck_curve([], [0.0, 1.0])).all()
    with pytest.raises(ValueError, match="increasing"):
        auc([0.0, 1.0], [1.0, 0.0])
    with pytest.raises(ValueError, match="one value per threshold"):
        auc([0.0, 1.0, 1.0], [0.0, 1.0])
    with pytest.raises(ValueError, match="at least 2"):
        pck_curve([1.0], [1.0])


# -- hand-computed cases -----------------------------------------------------------------------


def test_hand_computed_per_joint_then_over_joints():
    # joint 0: errors 0, 10, 25 (all visible); joint 1: 5, 40 and an invisible 999.
    errors = np.array([[0.0, 5.0], [10.0, 40.0], [25.0, 999.0]])
    vis = np.array([[True, True], [True, True], [True, False]])
    pred, gt = preds_from_errors(errors)
    m = keypoint_metrics(pred, gt, vis, thresholds=[0.0, 10.0, 20.0, 30.0])
    assert m.per_joint_mean_epe.tolist() == pytest.approx([35.0 / 3.0, 22.5])
    assert m.per_joint_median_epe.tolist() == pytest.approx([10.0, 22.5])
    # PCK joint 0: [1/3, 2/3, 2/3, 1] -> AUC (5 + 20/3 + 25/3) / 30 = 2/3
    # PCK joint 1: [0, 1/2, 1/2, 1/2] -> AUC (2.5 + 5 + 5) / 30 = 5/12
    assert m.per_joint_pck[0].tolist() == pytest.approx([1 / 3, 2 / 3, 2 / 3, 1.0])
    assert m.per_joint_pck[1].tolist() == pytest.approx([0.0, 0.5, 0.5, 0.5])
    assert m.per_joint_auc.tolist() == pytest.approx([2 / 3, 5 / 12])
    assert m.mean_epe == pytest.approx((35.0 / 3.0 + 22.5) / 2)
    assert m.median_epe == pytest.approx(16.25)
    assert m.auc == pytest.approx(13 / 24)
    assert m.pck.tolist() == pytest.approx([1 / 6, 7 / 12, 7 / 12, 3 / 4])
    assert m.num_images == 3 and m.num_visible == 5
    # hand3d averages per joint: not the pooled mean over all visible joints (16 px)
    assert m.mean_epe != pytest.approx(16.0)


def test_invisible_errors_are_ignored_whatever_they_are():
    errors = np.array([[1.0, 2.0], [3.0, np.nan]])
    vis = np.array([[True, True], [True, False]])
    m = metrics_from_errors(errors, vis)
    assert m.per_joint_mean_epe.tolist() == [2.0, 2.0]
    assert not math.isnan(m.auc)


def test_joint_never_visible_is_left_out_of_the_average():
    errors = np.array([[4.0, 100.0], [6.0, 100.0]])
    m = metrics_from_errors(errors, [[True, False], [True, False]])
    assert m.mean_epe == 5.0 and m.median_epe == 5.0
    assert math.isnan(m.per_joint_mean_epe[1]) and math.isnan(m.per_joint_auc[1])
    assert m.to_dict()["per_joint"]["mean_epe"] == [5.0, None]


def test_nothing_visible_gives_nan():
    m = metrics_from_errors(np.ones((2, 3)), np.zeros((2, 3), bool))
    assert math.isnan(m.mean_epe) and math.isnan(m.auc)
    assert m.to_dict(per_joint=False)["auc"] is None


def test_default_thresholds_are_hand3ds():
    assert PCK_THRESHOLDS.tolist() == np.linspace(0, 30, 20).tolist()
    assert not PCK_THRESHOLDS.flags.writeable


def test_shape_validation():
    with pytest.raises(ValueError, match="N x J x 2"):
        keypoint_metrics(np.zeros((3, 2)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="visibility"):
        metrics_from_errors(np.zeros((2, 3)), np.ones((3, 2), bool))


# -- corruption summaries ----------------------------------------------------------------------


def test_mpc_and_rpc_by_hand():
    clean = {"mean_epe": 10.0, "median_epe": 4.0, "auc": 0.8}
    rows = {
        "defocus-7": {"mean_epe": 20.0, "median_epe": 8.0, "auc": 0.6},
        "defocus-13": {"mean_epe": 40.0, "median_epe": 8.0, "auc": 0.4},
        "noise-gaussian": {"mean_epe": 30.0, "median_epe": 2.0, "auc": 0.2},
    }
    s = corruption_summary(clean, rows)
    assert s.mpc == pytest.approx({"mean_epe": 30.0, "median_epe": 6.0, "auc": 0.4})
    # AUC: mPC / clean; EPEs: clean / mPC (share of clean performance kept)
    assert s.rpc == pytest.approx({"mean_epe": 1 / 3, "median_epe": 4 / 6, "auc": 0.5})
    assert s.delta == pytest.approx({"mean_epe": 20.0, "median_epe": 2.0, "auc": -0.4})
    assert list(s.by_family) == ["defocus", "noise"]
    assert s.by_family["defocus"]["mean_epe"] == 30.0
    assert s.configs == ("defocus-7", "defocus-13", "noise-gaussian")
    doc = s.to_dict()
    assert doc["mPC"]["auc"] == pytest.approx(0.4) and "clean / mPC" in doc["rPC_convention"]


def test_summary_takes_metrics_objects_and_unknown_names():
    clean = metrics_from_errors(np.full((2, 2), 2.0))
    bad = metrics_from_errors(np.full((2, 2), 4.0))
    s = corruption_summary(clean, {"my-blur": bad}, families={"my-blur": "blur"})
    assert s.rpc["mean_epe"] == 0.5 and list(s.by_family) == ["blur"]
    assert list(corruption_summary(clean, {"not-registered": bad}).by_family) == ["not-registered"]
    with pytest.raises(ValueError, match="at least one"):
        corruption_summary(clean, {})


# -- against hand3d's EvalUtil -----------------------------------------------------------------

error_arrays = st.integers(1, 6).flatmap(
    lambda n: st.integers(1, 5).flatmap(
        lambda j: st.tuples(
            arrays(np.float64, (n, j), elements=st.floats(0.0, 60.0, allow_nan=False)),
            arrays(np.bool_, (n, j)),
        )
    )
)


@settings(max_examples=30, deadline=None)
@given(
    st.integers(1, 5), st.integers(1, 4), st.sampled_from([0.0, float(PCK_THRESHOLDS[3]), 30.0, 30.01, 1e4])
)
def test_auc_of_a_constant_error_is_the_area_under_a_step(n, j, error):
    # PCK is the step 1[error <= t] (an error exactly at a threshold counts from it on, as in
    # hand3d); the AUC is its trapezoid area over linspace(0, 30, 20), divided by 30.
    step = (error <= PCK_THRESHOLDS).astype(float)
    m = metrics_from_errors(np.full((n, j), error))
    assert m.pck.tolist() == step.tolist()
    assert m.auc == pytest.approx(trapezoid(step, PCK_THRESHOLDS) / 30.0, abs=1e-15)


@settings(max_examples=40, deadline=None)
@given(error_arrays, st.randoms(use_true_random=False))
def test_matches_hand3d_evalutil_and_ignores_image_order(data, rnd):
    errors, vis = data
    if not vis.any():
        return
    pred, gt = preds_from_errors(errors)
    util = HandEvalUtil(errors.shape[1])
    for i in range(len(errors)):
        util.feed(gt[i], vis[i], pred[i])
    ref = util.get_measures(0.0, 30.0, 20)
    m = keypoint_metrics(pred, gt, vis)
    assert m.mean_epe == pytest.approx(ref[0], rel=1e-12)
    assert m.median_epe == pytest.approx(ref[1], rel=1e-12)
    assert m.auc == pytest.approx(ref[2], rel=1e-12)
    assert m.pck == pytest.approx(ref[3], rel=1e-12)
    order = list(range(len(errors)))
    rnd.shuffle(order)
    shuffled = keypoint_metrics(pred[order], gt[order], vis[order])
    assert shuffled.auc == pytest.approx(m.auc, rel=1e-12)
    assert shuffled.median_epe == pytest.approx(m.median_epe, rel=1e-12)


def test_metrics_module_does_not_import_torch():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torch' or name.startswith('torch.'):\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import numpy as np\n"
        "import keypoint_corrupt.metrics, keypoint_corrupt.benchmark\n"
        "from keypoint_corrupt.benchmark import evaluate\n"
        "from keypoint_corrupt.datasets import STB, bundled_sample_root\n"
        "res = evaluate(lambda images: np.zeros((len(images), 21, 2)), STB(bundled_sample_root(), 'val'),"
        " ['defocus-7'])\n"
        "assert 'torch' not in sys.modules\n"
        "print(len(res.rows))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "2"
