"""``keypoint-corrupt benchmark`` end to end on the bundled sample (CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import bench_user_predict as user
import numpy as np
import pytest
from bench_helpers import TINY_CROP, direct_items, direct_user_rows

from keypoint_corrupt.cli.main import main
from keypoint_corrupt.metrics import keypoint_metrics
from keypoint_corrupt.registry import CONFIGS

USER_FILE = Path(user.__file__)


def read_report(out: Path) -> dict:
    for name in ("report.md", "report.csv", "report.json"):
        assert (out / name).is_file(), name
    return json.loads((out / "report.json").read_text())


def test_cli_bundled_model_checkpoint(tiny_checkpoint, val, tmp_path, capsys):
    pytest.importorskip("torch")
    from keypoint_corrupt.models import load
    from keypoint_corrupt.models import predict as models_predict

    out = tmp_path / "r"
    code = main(
        [
            "benchmark",
            "--model",
            "posenet-dense",
            "--weights",
            str(tiny_checkpoint),
            "--crop-size",
            str(TINY_CROP),
            "--batch-size",
            "8",
            "--device",
            "cpu",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 0
    doc = read_report(out)
    assert (out / "pck_curves.png").stat().st_size > 0 and (out / "examples.png").stat().st_size > 0
    assert [r["name"] for r in doc["rows"]] == ["standard", *CONFIGS]
    # numbers match a direct computation: the models package's own predict + the metrics
    model = load(tiny_checkpoint)
    for row, (name, items) in zip(doc["rows"], direct_items(val).items(), strict=True):
        assert row["name"] == name and row["images"] == len(items)
        pred = models_predict(model, items, crop_size=TINY_CROP, batch_size=8)
        gt = np.stack([it["keypoints"] for it in items])
        vis = np.stack([it["visibility"] for it in items])
        m = keypoint_metrics(pred, gt, vis)
        assert row["mean_epe"] == pytest.approx(m.mean_epe, rel=1e-12)
        assert row["median_epe"] == pytest.approx(m.median_epe, rel=1e-12)
        assert row["auc"] == pytest.approx(m.auc, abs=1e-12)
    # STB + a PoseNet: the published figures alongside, protocol from the checkpoint header
    assert list(doc["published"]["rows"]) == ["dense"] and doc["published"]["train_set"] == "S-train"
    assert doc["settings"]["predictor"]["crop_size"] == TINY_CROP
    md = (out / "report.md").read_text()
    assert "published dense (S-train)" in md and "16.958 / 6.095 / 0.733" in md
    assert f"--crop-size {TINY_CROP}" in doc["command"]
    printed = capsys.readouterr().out
    assert "noise-saltpepper" in printed and "mPC" in printed


def test_cli_user_predict_by_path_matches_direct_computation(val, tmp_path):
    out = tmp_path / "r"
    code = main(
        ["benchmark", "--predict", f"{USER_FILE}:predict", "--out", str(out), "--no-progress", "--no-plots"]
    )
    assert code == 0
    doc = read_report(out)
    assert not (out / "pck_curves.png").exists()
    assert doc["published"] is None and doc["label"].endswith(":predict")
    direct = direct_user_rows(user.predict, val)
    assert [r["name"] for r in doc["rows"]] == list(direct)
    for row in doc["rows"]:
        m = direct[row["name"]][1]
        assert row["mean_epe"] == pytest.approx(m.mean_epe, rel=1e-12)
        assert row["median_epe"] == pytest.approx(m.median_epe, rel=1e-12)
        assert row["auc"] == pytest.approx(m.auc, abs=1e-12)
        assert row["pck"] == pytest.approx(m.pck.tolist(), abs=1e-12)


def test_cli_module_predict_compare_and_materialized_data(val, tmp_path, monkeypatch):
    mat = pytest.importorskip("keypoint_corrupt.materialize")
    from keypoint_corrupt.datasets import bundled_sample_root

    monkeypatch.chdir(USER_FILE.parent)  # 'bench_user_predict' importable from the current directory
    data = tmp_path / "o"
    spec = mat.DatasetSpec("stb", bundled_sample_root(), bundled=True)
    mat.materialize(
        mat.MaterializeOptions(data, spec, splits=("val",), configs=("motion-15", "noise-gaussian"))
    )
    common = ["benchmark", "--predict", "bench_user_predict:predict", "--no-progress", "--no-plots"]
    streamed, read = tmp_path / "s", tmp_path / "m"
    argv = [*common, "--configs", "motion-15,noise-gaussian", "--out", str(streamed)]
    assert main([*argv, "--compare-predict", "bench_user_predict:predict_images_only"]) == 0
    assert main([*common, "--data", str(data), "--out", str(read)]) == 0
    a, b = read_report(streamed), read_report(read)
    assert b["source"]["source"] == "materialized" and b["published"] is None
    assert [r["name"] for r in b["rows"]] == ["standard", "motion-15", "noise-gaussian"]
    for ra, rb in zip(a["rows"], b["rows"], strict=True):
        assert (ra["mean_epe"], ra["median_epe"], ra["auc"]) == (rb["mean_epe"], rb["median_epe"], rb["auc"])
    comp = {r["name"]: r for r in a["compare"]["rows"]}
    for d, r in zip(a["difference"], a["rows"], strict=True):
        assert d["auc"] == pytest.approx(comp[r["name"]]["auc"] - r["auc"])
    assert "Δ mean EPE (px)" in (streamed / "report.md").read_text()


def test_cli_speed_on_cpu(tmp_path, capsys):
    pytest.importorskip("torch")
    out = tmp_path / "speed"
    argv = ["benchmark", "--speed", "--device", "cpu", "--image-size", "16", "--iters", "2", "--warmup", "1"]
    argv += ["--large-batch", "2", "--throughput-iters", "1", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "Table I" in printed and "published dense" in printed and "Depthwise vs dense" in printed
    doc = json.loads((out / "speed.json").read_text())
    assert [r["model"] for r in doc["results"]] == ["posenet-dense", "posenet-depthwise", "nerpe"]
    for r in doc["results"]:
        assert r["avg_ms"] > 0 and r["min_ms"] <= r["avg_ms"] and r["throughput"] > 0
        assert r["iters"] == 2 and r["large_batch"] == 2 and r["image_size"] == 16
    assert doc["results"][0]["parameters"] == 17_518_847
    assert doc["machine"]["device"] == "cpu" and (out / "speed.md").is_file()


def test_cli_speed_bf16_precision_check(tmp_path, capsys):
    pytest.importorskip("torch")
    argv = ["benchmark", "--speed", "--model", "posenet-depthwise", "--device", "cpu", "--precision", "bf16"]
    argv += ["--image-size", "16", "--iters", "1", "--warmup", "0", "--large-batch", "1"]
    argv += ["--throughput-iters", "1", "--check-images", "2", "--no-progress", "--out", str(tmp_path)]
    assert main(argv) == 0
    doc = json.loads((tmp_path / "speed.json").read_text())
    check = doc["results"][0]["precision_check"]
    assert check["images"] == 2 and check["abs_diff"] >= 0 and "random" in check["weights"]
    assert "mean EPE fp32 / this precision" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "choose the model"),
        (["--model", "nerpe"], "--weights is required"),
        (["--weights", "missing.pt"], "checkpoint not found"),
        (["--predict", "no_such_module_xyz:predict"], "No module named"),
        (["--predict", "bench_user_predict"], "MODULE:NAME"),
        (["--model", "nerpe", "--predict", "a:b"], "replaces --model"),
        (["--predict", "numpy:zeros", "--configs", "defocus-8"], "unknown configuration"),
        (["--predict", "numpy:zeros", "--data", "nowhere/"], "--data not found"),
        (["--predict", "numpy:zeros", "--fraction", "0"], "--fraction"),
        (["--predict", "numpy:zeros", "--crop-size", "30"], "multiples of 8"),
        (["--predict", f"{USER_FILE}:predict_wrong_shape", "--configs", "defocus-7"], "expected"),
    ],
)
def test_cli_errors_are_one_line_exit_2(argv, message, tmp_path, capsys):
    code = main(["benchmark", *argv, "--out", str(tmp_path / "r"), "--no-progress"])
    assert code == 2
    lines = capsys.readouterr().err.splitlines()
    errors = [line for line in lines if not line.startswith("keypoint-corrupt benchmark: warning: ")]
    assert len(errors) == 1 and message in errors[0], lines  # (the 8-image sample draws the warning)


def test_cli_data_that_is_not_a_dataset(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("x")
    assert main(["benchmark", "--predict", "numpy:zeros", "--data", str(tmp_path / "notes.txt")]) == 2
    assert main(["benchmark", "--predict", "numpy:zeros", "--data", str(tmp_path)]) == 2
    assert "not an STB root" in capsys.readouterr().err
