"""Reports: report.md / .csv / .json, the figures, and the published figures as data."""

from __future__ import annotations

import csv
import dataclasses
import json

import bench_user_predict as user
import numpy as np
import pytest

from keypoint_corrupt.benchmark import evaluate, published_row, write_report
from keypoint_corrupt.benchmark.published import TABLE_I, TABLE_II, published_variant
from keypoint_corrupt.benchmark.report import build_report
from keypoint_corrupt.registry import CONFIGS


@pytest.fixture(scope="module")
def results(val):
    a = evaluate(user.predict, val, batch_size=8)
    b = evaluate(user.predict_images_only, val, batch_size=8)
    return a, b


def test_published_tables_are_complete():
    assert set(TABLE_II["S-train"]) == {"standard", *CONFIGS}
    assert set(TABLE_II["S-train*"]) == set(CONFIGS)
    assert published_row("dense", "standard") == {"mean_epe": 16.958, "median_epe": 6.095, "auc": 0.733}
    assert published_row("depthwise", "noise-saltpepper", "S-train*")["mean_epe"] == 28.826
    assert published_row("dense", "standard", "S-train*") is None
    assert published_row("dense", "my-config") is None
    assert TABLE_I["dense"]["avg_ms"] == 29.31 and TABLE_I["depthwise"]["min_ms"] == 20.55
    assert published_variant("posenet-dense") == "dense" and published_variant("user:fn") is None
    with pytest.raises(ValueError):
        published_row("sparse", "standard")
    with pytest.raises(ValueError):
        published_row("dense", "standard", "S-test")


def test_report_files_hold_every_row(results, tmp_path):
    a, _ = results
    files = write_report(a, tmp_path, label="user", command="keypoint-corrupt benchmark --predict x:y")
    assert sorted(files) == ["csv", "examples", "json", "md", "pck_curves", "predictions"]
    for path in files.values():
        assert path.is_file() and path.stat().st_size > 0
    assert files["pck_curves"].read_bytes()[:4] == b"\x89PNG"
    doc = json.loads(files["json"].read_text())
    assert [r["name"] for r in doc["rows"]] == ["standard", *CONFIGS]
    for row in doc["rows"]:
        metrics = a.rows[row["name"]].metrics
        assert row["mean_epe"] == metrics.mean_epe and row["auc"] == metrics.auc
        assert row["images"] == len(a.rows[row["name"]].ids)
        assert len(row["per_joint"]["mean_epe"]) == 21 and len(row["pck"]) == 20
    assert doc["summary"]["mPC"]["auc"] == pytest.approx(a.summary.mpc["auc"])
    assert doc["published"] is None  # a user model: no published column
    assert doc["command"].endswith("--predict x:y")
    md = files["md"].read_text()
    assert "| Standard | - | 8 |" in md
    for name in ("| defocus | 7 |", "| motion | 45 |", "| occlusion | 20% |", "| noise salt&pepper | - |"):
        assert name in md
    assert "mPC" in md and "rPC" in md and "images/s" in md
    with files["csv"].open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["row"] for r in rows] == ["standard", *CONFIGS]
    assert float(rows[3]["median_epe"]) == a.rows[CONFIGS[2]].metrics.median_epe


def test_compare_and_published_columns(results, val, tmp_path):
    a, b = results
    # pretend the first model is a PoseNet: STB data + posenet -> published columns
    a = dataclasses.replace(a, settings={**a.settings, "predictor": {"model": "posenet-depthwise"}})
    doc = build_report(a, label="A", compare=b, compare_label="B", train_set="S-train*")
    files = write_report(a, tmp_path, label="A", compare=b, compare_label="B", train_set="S-train*")
    diff = {d["name"]: d for d in doc["difference"]}
    for name in a.rows:
        assert diff[name]["auc"] == pytest.approx(b.rows[name].metrics.auc - a.rows[name].metrics.auc)
        assert diff[name]["mean_epe"] == pytest.approx(
            b.rows[name].metrics.mean_epe - a.rows[name].metrics.mean_epe
        )
    assert doc["compare"]["label"] == "B" and len(doc["compare"]["rows"]) == 12
    assert list(doc["published"]["rows"]) == ["depthwise"]
    assert doc["published"]["rows"]["depthwise"]["standard"] is None  # no S-train* standard row
    assert doc["published"]["rows"]["depthwise"]["motion-30"]["auc"] == 0.609
    md = files["md"].read_text()
    assert "Δ AUC" in md and "published depthwise (S-train*)" in md
    assert "| motion | 30 |" in md and "27.930 / 7.373 / 0.609" in md
    header = files["csv"].read_text().splitlines()[0].split(",")
    assert "diff_auc" in header and "published_depthwise_auc" in header
    with pytest.raises(ValueError, match="same rows"):
        build_report(a, compare=evaluate(user.predict, val, ["defocus-7"], examples=0))


def test_report_without_plots_and_nan_safe_json(val, tmp_path):
    res = evaluate(user.predict, val, ["occlusion-10"], examples=0)
    res.rows["occlusion-10"].metrics.per_joint_auc[0] = np.nan  # e.g. a joint never visible
    files = write_report(res, tmp_path, plots=False)
    assert sorted(files) == ["csv", "json", "md", "predictions"]
    doc = json.loads(files["json"].read_text())  # strict JSON: NaN written as null
    assert doc["rows"][1]["per_joint"]["auc"][0] is None
