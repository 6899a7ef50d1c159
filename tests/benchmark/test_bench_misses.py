"""Misses (NaN predictions), scores, the predictions archive, schema declarations, PredictError."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import bench_user_predict as user
import numpy as np
import pytest

from keypoint_corrupt.benchmark import (
    PredictError,
    evaluate,
    load_predictions,
    recompute,
    split_output,
    write_report,
)
from keypoint_corrupt.benchmark.report import build_report
from keypoint_corrupt.metrics import corruption_summary, keypoint_metrics, metrics_from_errors

RHD_JSON = Path(__file__).resolve().parents[1] / "data" / "hands" / "rhd" / "test_rhd.json"
NAN = math.nan


# -- the rule, by hand -------------------------------------------------------------------------


def test_misses_by_hand():
    # 4 images x 2 joints; image 2 missed entirely, joint 1 of image 3 invisible (its NaN ignored)
    errors = np.array([[0.0, 5.0], [NAN, 15.0], [NAN, NAN], [10.0, NAN]])
    vis = np.array([[True, True], [True, True], [True, True], [True, False]])
    m = metrics_from_errors(errors, vis, thresholds=[0.0, 10.0, 20.0])
    # EPE over the joints found: joint 0 {0, 10}, joint 1 {5, 15}
    assert m.per_joint_mean_epe.tolist() == [5.0, 10.0] and m.per_joint_median_epe.tolist() == [5.0, 10.0]
    assert m.mean_epe == 7.5 and m.median_epe == 7.5
    # PCK over the visible joints, a miss wrong at every threshold: joint 0 /4, joint 1 /3
    np.testing.assert_allclose(
        m.per_joint_pck, [[1 / 4, 2 / 4, 2 / 4], [0.0, 1 / 3, 2 / 3]], rtol=0, atol=1e-15
    )
    auc0 = ((0.25 + 0.5) / 2 * 10 + (0.5 + 0.5) / 2 * 10) / 20
    auc1 = ((0 + 1 / 3) / 2 * 10 + (1 / 3 + 2 / 3) / 2 * 10) / 20
    assert m.per_joint_auc.tolist() == pytest.approx([auc0, auc1], abs=1e-15)
    assert m.auc == pytest.approx((auc0 + auc1) / 2, abs=1e-15)
    # detection: 4 of 7 visible joints; instances 0, 1, 3 found of 4
    assert (m.num_visible, m.num_found, m.num_missed) == (7, 4, 3)
    assert m.detection_rate == 4 / 7
    assert (m.num_instances, m.instances_found, m.instance_detection_rate) == (4, 3, 0.75)
    assert m.per_joint_visible.tolist() == [4, 3] and m.per_joint_found.tolist() == [2, 2]
    d = m.to_dict()
    assert d["num_found"] == 4 and d["detection_rate"] == 4 / 7 and d["instance_detection_rate"] == 0.75
    assert not any(k.endswith("_reason") for k in d)


def test_a_miss_is_a_wrong_answer_for_pck_and_is_left_out_of_epe():
    rng = np.random.default_rng(0)
    errors = rng.uniform(0, 40, (30, 5))
    errors[rng.random(errors.shape) < 0.3] = NAN
    vis = rng.random(errors.shape) < 0.8
    m = metrics_from_errors(errors, vis)
    far = metrics_from_errors(np.where(np.isnan(errors), 1e9, errors), vis)
    np.testing.assert_array_equal(m.per_joint_pck, far.per_joint_pck)
    assert m.auc == far.auc
    for j in range(5):
        found = errors[vis[:, j] & ~np.isnan(errors[:, j]), j]
        assert m.per_joint_mean_epe[j] == pytest.approx(found.mean(), rel=1e-14)
        assert m.per_joint_median_epe[j] == np.median(found)
    assert m.detection_rate == (vis & ~np.isnan(errors)).sum() / vis.sum()


def test_models_that_always_answer_are_unchanged():
    rng = np.random.default_rng(1)
    errors = rng.uniform(0, 40, (20, 4))
    m = metrics_from_errors(errors)
    assert m.mean_epe == pytest.approx(np.mean(errors.mean(axis=0)), rel=1e-15) and m.detection_rate == 1.0
    assert m.num_found == m.num_visible == 80 and m.instance_detection_rate == 1.0


def test_nothing_found_explains_itself():
    m = keypoint_metrics(np.full((3, 2, 2), NAN), np.zeros((3, 2, 2)))
    assert math.isnan(m.mean_epe) and math.isnan(m.median_epe)
    assert m.auc == 0.0 and m.pck.tolist() == [0.0] * 20  # every miss wrong
    assert m.detection_rate == 0.0 and m.instance_detection_rate == 0.0
    d = m.to_dict()
    assert d["mean_epe"] is None and d["mean_epe_reason"] == "0 of 6 visible joints found"
    assert d["median_epe_reason"] == "0 of 6 visible joints found" and "auc_reason" not in d
    none = metrics_from_errors(np.ones((2, 2)), np.zeros((2, 2), bool)).to_dict()
    assert none["auc"] is None and none["auc_reason"] == "no visible joint"
    assert none["detection_rate"] is None and none["detection_rate_reason"] == "no visible joint"


def test_mpc_uses_the_configurations_where_a_metric_exists():
    clean = keypoint_metrics(np.full((2, 1, 2), [3.0, 4.0]), np.zeros((2, 1, 2)))  # EPE 5
    found = keypoint_metrics(np.full((2, 1, 2), [6.0, 8.0]), np.zeros((2, 1, 2)))  # EPE 10
    lost = keypoint_metrics(np.full((2, 1, 2), NAN), np.zeros((2, 1, 2)))
    s = corruption_summary(clean, {"defocus-7": found, "motion-45": lost})
    assert s.mpc["mean_epe"] == 10.0 and s.rpc["mean_epe"] == 0.5  # motion-45 has no EPE
    assert s.excluded["mean_epe"] == ("motion-45",) and s.excluded["auc"] == ()
    assert s.mpc["auc"] == pytest.approx((found.auc + 0.0) / 2)  # AUC counts the misses
    assert s.by_family["motion"]["auc"] == 0.0 and math.isnan(s.by_family["motion"]["mean_epe"])
    assert "by_family.motion.mean_epe" in s.reasons
    only_lost = corruption_summary(clean, {"motion-45": lost})
    assert math.isnan(only_lost.mpc["mean_epe"]) and math.isnan(only_lost.rpc["mean_epe"])
    doc = only_lost.to_dict()
    assert doc["mPC"]["mean_epe"] is None and "none of the 1 configurations" in doc["reasons"]["mPC.mean_epe"]
    assert doc["rPC"]["mean_epe"] is None and doc["reasons"]["rPC.mean_epe"] == "no mPC mean_epe"


# -- through evaluate and the report ----------------------------------------------------------


def missing_predict(images, crops):
    """user.predict, but joints 0-2 never found and darker images (mean < 115.5) not found at all."""
    out = user.predict(images, crops)
    out[:, :3] = NAN
    dark = np.array([np.asarray(im, np.float64).mean() < 115.5 for im in images])
    out[dark] = NAN
    return out


def test_evaluate_with_misses_matches_a_hand_computation(val):
    res = evaluate(missing_predict, val, ["defocus-7", "noise-gaussian"], batch_size=3, examples=0)
    ref = evaluate(user.predict, val, ["defocus-7", "noise-gaussian"], batch_size=3, examples=0)
    for name, row in res.rows.items():
        pred, gt, vis = row.predictions, row.keypoints, row.visibility
        full = ref.rows[name].predictions
        missed = np.isnan(pred).any(axis=-1)
        np.testing.assert_array_equal(pred[~missed], full[~missed])  # found joints untouched
        m = row.metrics
        found = vis & ~missed
        assert m.num_visible == vis.sum() and m.num_found == found.sum()
        assert m.detection_rate == found.sum() / vis.sum()
        assert m.instance_detection_rate == found.any(axis=1).sum() / vis.any(axis=1).sum()
        err = np.sqrt(((pred - gt) ** 2).sum(-1))
        means, aucs = [], []
        for j in range(21):
            if not vis[:, j].any():
                continue
            hits = err[found[:, j], j]
            if hits.size:
                means.append(hits.mean())
            pck = [np.sum(hits <= t) / vis[:, j].sum() for t in m.thresholds]
            aucs.append(np.trapezoid(pck, m.thresholds) / 30.0)
        assert m.mean_epe == pytest.approx(np.mean(means), rel=1e-12)
        assert m.auc == pytest.approx(np.mean(aucs), rel=1e-12, abs=1e-15)
        assert m.per_joint_found[:3].tolist() == [0, 0, 0]
    standard = res.rows["standard"].metrics  # 3 of the 8 clean images are darker than 115.5
    assert (standard.num_found, standard.num_visible) == (5 * 18, 8 * 21)
    assert (standard.instances_found, standard.num_instances) == (5, 8)
    table = res.table()
    assert table[0]["detection_rate"] == 90 / 168 and table[0]["instance_detection_rate"] == 5 / 8


def row_killer(miss_call):
    """A predictor that misses everything on its ``miss_call``-th call (0-based)."""
    calls = []

    def predict(images, crops):
        calls.append(len(images))
        out = user.predict(images, crops)
        if len(calls) - 1 == miss_call:
            out[:] = NAN
        return out

    return predict


def assert_explained(md):
    """No table cell of report.md is NaN or a bare '-' (beyond the config column)."""
    for line in md.splitlines():
        if not line.startswith("| ") or line.startswith("| ---"):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert not any(c.lower() in ("nan", "inf", "-inf") or "nan" in c.lower().split() for c in cells), line
        assert "-" not in cells[2:], line


def test_an_all_miss_row_is_explained_in_every_file(val, tmp_path):
    # batch 8: call 0 = standard, call 1 = motion-45 (2 images), call 2 = defocus-7
    res = evaluate(row_killer(1), val, ["motion-45", "defocus-7"], batch_size=8, examples=0)
    lost = res.rows["motion-45"].metrics
    assert math.isnan(lost.mean_epe) and lost.auc == 0.0 and lost.num_found == 0
    files = write_report(res, tmp_path, label="mine", plots=False)
    n = lost.num_visible
    md = files["md"].read_text()
    assert_explained(md)
    line = next(ln for ln in md.splitlines() if ln.startswith("| motion | 45 |"))
    assert line.count(f"- (0 of {n} visible joints found)") == 2  # mean and median EPE
    assert f"0.0% (0/{n})" in line and "0.0% (0/2)" in line and "| 0.000 |" in line
    assert (
        f"- misses (mine): {n} of {sum(r.metrics.num_visible for r in res.rows.values())} visible joints"
        in md
    )
    assert "2 of 12 instances" in md and f"motion-45 {n}" in md
    assert "averages 1 of 2 configurations; left out, no visible joint found: motion-45" in md
    with files["csv"].open() as fh:
        rows = {r["row"]: r for r in csv.DictReader(fh)}
    assert "nan" not in files["csv"].read_text().lower()
    assert (
        rows["motion-45"]["mean_epe"] == ""
        and f"mean_epe: 0 of {n} visible joints found" in rows["motion-45"]["notes"]
    )
    assert rows["motion-45"]["num_found"] == "0" and float(rows["motion-45"]["detection_rate"]) == 0.0
    assert rows["standard"]["notes"] == "" and float(rows["standard"]["detection_rate"]) == 1.0
    doc = json.loads(files["json"].read_text())
    row = doc["rows"][1]
    assert row["name"] == "motion-45" and row["mean_epe"] is None and row["median_epe"] is None
    assert row["mean_epe_reason"] == f"0 of {n} visible joints found" and row["auc"] == 0.0
    assert doc["summary"]["excluded"] == {"mean_epe": ["motion-45"], "median_epe": ["motion-45"]}
    assert doc["summary"]["mPC"]["mean_epe"] == res.rows["defocus-7"].metrics.mean_epe
    # a compared model that finds everything: the differences of the lost row are explained
    other = evaluate(user.predict, val, ["motion-45", "defocus-7"], batch_size=8, examples=0)
    files = write_report(res, tmp_path, label="mine", compare=other, compare_label="full", plots=False)
    md = files["md"].read_text()
    assert "- (no mean_epe for mine)" in md and "- misses (full): none" in md
    assert_explained(md)
    assert "nan" not in files["csv"].read_text().lower()


def test_nothing_found_anywhere_keeps_the_summary_explained(val, tmp_path):
    def predict(images, crops):
        return np.full((len(images), 21, 2), NAN)

    res = evaluate(predict, val, ["motion-45"], batch_size=8, examples=1)
    files = write_report(res, tmp_path, plots=True)  # the figures survive NaN too
    md = files["md"].read_text()
    assert_explained(md)
    assert "| mean EPE (px) | - (0 of" in md and "- (no clean and no mPC mean_epe)" in md
    doc = json.loads(files["json"].read_text())
    assert doc["summary"]["clean"]["mean_epe"] is None
    assert doc["summary"]["reasons"]["clean.mean_epe"].startswith("0 of")


# -- scores, the predictions archive and recomputing -------------------------------------------


def scoring_predict(images, crops):
    """Misses plus a score column: B x J x 3."""
    out = missing_predict(images, crops)
    scores = np.where(np.isnan(out[..., 0]), 0.0, 0.9)
    return np.concatenate([out, scores[..., None]], axis=-1)


def test_scores_formats():
    kp = np.zeros((2, 3, 2))
    sc = np.ones((2, 3))
    a, s = split_output((kp, sc))
    assert a.shape == (2, 3, 2) and s.shape == (2, 3)
    a, s = split_output(np.concatenate([kp, sc[..., None]], -1))
    assert a.shape == (2, 3, 2) and s.tolist() == sc.tolist()
    assert split_output(kp)[1] is None
    with pytest.raises(ValueError, match=r"expected scores \(2, 3\)"):
        split_output((kp, np.ones(3)))


def test_recompute_from_the_saved_predictions_gives_identical_numbers(val, tmp_path):
    configs = ["defocus-7", "motion-45", "noise-gaussian"]
    res = evaluate(scoring_predict, val, configs, batch_size=3, examples=0)
    other = evaluate(row_killer(2), val, configs, batch_size=8, examples=0)
    assert res.rows["standard"].scores.shape == (8, 21)
    files = write_report(res, tmp_path, compare=other, plots=False)
    assert files["predictions"].name == "predictions.npz"
    saved = load_predictions(tmp_path)
    assert list(saved) == ["standard", *configs]
    for name, row in res.rows.items():
        np.testing.assert_array_equal(saved[name].predictions, row.predictions)  # NaN kept
        np.testing.assert_array_equal(saved[name].scores, row.scores)
        np.testing.assert_array_equal(saved[name].keypoints, row.keypoints)
        np.testing.assert_array_equal(saved[name].visibility, row.visibility)
        assert saved[name].ids == row.ids
    assert load_predictions(files["predictions_compare"])["standard"].scores is None
    doc = json.loads(files["json"].read_text())
    again = recompute(tmp_path)
    assert again["rows"] == doc["rows"] and again["summary"] == doc["summary"]
    assert again["thresholds"] == doc["thresholds"]
    other_again = recompute(tmp_path / "predictions_compare.npz")
    assert other_again["rows"] == doc["compare"]["rows"]
    assert other_again["summary"] == doc["compare"]["summary"]
    # other thresholds: a different protocol from the same predictions
    assert recompute(tmp_path, thresholds=[0.0, 50.0])["rows"][0]["auc"] != doc["rows"][0]["auc"]
    with pytest.raises(ValueError, match="not a benchmark predictions archive"):
        np.savez(tmp_path / "x.npz", a=np.zeros(1))
        recompute(tmp_path / "x.npz")


def test_infinite_coordinates_are_refused(val):
    def predict(images, crops):
        out = user.predict(images, crops)
        out[0, 5] = np.inf
        return out

    with pytest.raises(ValueError, match=r"infinite coordinates.*return NaN"):
        evaluate(predict, val, (), examples=0)


# -- schema declarations ----------------------------------------------------------------------


def rhd_dataset():
    from keypoint_corrupt.datasets import CocoKeypoints

    return CocoKeypoints(RHD_JSON, schema="rhd")


def rhd_predict(images, crops):
    """A fixed hand shape around the crop centre, in RHD's joint order."""
    return user.predict(images, crops)


def test_predictions_declared_in_another_order_are_reordered():
    from keypoint_corrupt.schema import remap

    ds = rhd_dataset()
    assert ds.schema.name == "rhd"

    def in_rhd(images, crops):
        return rhd_predict(images, crops)

    def in_hand21(images, crops):
        return remap(rhd_predict(images, crops), "rhd", "hand21")

    in_rhd.schema = "rhd"
    in_hand21.schema = "hand21"
    configs = ["defocus-7", "occlusion-30"]
    a = evaluate(in_rhd, ds, configs, fraction=0.5, examples=0)
    b = evaluate(in_hand21, ds, configs, fraction=0.5, examples=0)
    assert b.settings["schema"] == {"dataset": "rhd", "predict": "hand21", "reordered": True}
    assert a.settings["schema"]["reordered"] is False
    da, db = build_report(a), build_report(b)
    assert da["rows"] == db["rows"] and da["summary"] == db["summary"]
    for name in a.rows:
        np.testing.assert_array_equal(a.rows[name].predictions, b.rows[name].predictions)
    # undeclared, the hand21 order would be scored as RHD's: other numbers
    undeclared = evaluate(lambda images, crops: in_hand21(images, crops), ds, configs, fraction=0.5)
    assert undeclared.rows["standard"].metrics.mean_epe != a.rows["standard"].metrics.mean_epe
    # an explicit schema= wins over the dataset's
    c = evaluate(in_hand21, list(ds), configs, fraction=0.5, examples=0, schema="rhd")
    assert build_report(c)["rows"] == da["rows"]


def test_unmatched_schema_is_refused_before_the_model_runs():
    ds = rhd_dataset()
    calls = []

    def stb_order(images, crops):
        calls.append(1)
        return rhd_predict(images, crops)

    stb_order.schema = "stb"
    with pytest.raises(ValueError, match=r"declares schema 'stb'.*'rhd'.*no joint\(s\) wrist") as info:
        evaluate(stb_order, ds, ["defocus-7"])
    assert calls == []
    assert isinstance(info.value.__cause__, ValueError)
    stb_order.schema = "coco17"
    with pytest.raises(ValueError, match="thumb_tip"):
        evaluate(stb_order, ds, ())
    assert calls == []


# -- PredictError -----------------------------------------------------------------------------


def test_predict_error_names_the_row_and_the_images(val):
    calls = []

    def predict(images, crops):
        calls.append(1)
        if len(calls) == 3:
            raise TypeError("expected float32 input")
        return user.predict(images, crops)

    # batch 4: calls 0, 1 = standard, call 2 = motion-45 (its 2 images)
    with pytest.raises(PredictError) as info:
        evaluate(predict, val, ["motion-45"], batch_size=4, examples=0)
    err = info.value
    ids = evaluate(user.predict, val, ["motion-45"], examples=0).rows["motion-45"].ids
    assert err.config == "motion-45" and err.image_ids == ids
    assert isinstance(err.original, TypeError) and err.__cause__ is err.original
    expected = "predict raised TypeError: expected float32 input (configuration motion-45, images "
    assert str(err) == expected + ", ".join(ids) + ")"


def test_predict_error_shortens_long_batches(val):
    def predict(images, crops):
        raise RuntimeError("CUDA out of memory")

    with pytest.raises(
        PredictError,
        match=r"RuntimeError: CUDA out of memory \(configuration standard, images .*, \.\.\. \(8 images\)\)",
    ) as info:
        evaluate(predict, val, (), batch_size=8)
    assert len(info.value.image_ids) == 8
