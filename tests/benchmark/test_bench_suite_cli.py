"""``keypoint-corrupt benchmark --suite`` end to end on the bundled sample, with a registered suite."""

from __future__ import annotations

import json
from pathlib import Path

import bench_user_predict as user
import numpy as np
import pytest
from bench_helpers import direct_items

from keypoint_corrupt.cli.main import main
from keypoint_corrupt.crop import crop_parameters
from keypoint_corrupt.metrics import keypoint_metrics
from keypoint_corrupt.suites import register_suite, unregister_suite

USER_FILE = Path(user.__file__)
SUITE = "kc-test-cli"
TABLE = {
    "blur": ["defocus-7", "defocus-21"],
    "motion": ["motion-15", "motion-45"],
    "noise": ["noise-gaussian"],
}


@pytest.fixture(scope="module")
def tiny_suite():
    register_suite(SUITE, TABLE, description="three corruptions", protocol="a protocol for the tests")
    yield SUITE
    unregister_suite(SUITE)


def _run(out, *extra, predict="predict"):
    argv = ["benchmark", "--predict", f"{USER_FILE}:{predict}", "--suite", SUITE, "--out", str(out)]
    return main([*argv, "--no-progress", *extra])


def _direct_auc(val, predict):
    """AUC of every row computed image by image (every image in every cell: --suite's fraction 1.0)."""
    from keypoint_corrupt.benchmark import CropInfo

    configs = [c for levels in TABLE.values() for c in levels]
    out = {}
    for name, items in direct_items(val, configs, fraction=1.0).items():
        preds, gts, viss = [], [], []
        for it in items:
            kp, vis = np.asarray(it["keypoints"], np.float64), np.asarray(it["visibility"], bool)
            center, scale = crop_parameters(kp, vis, it["image"].shape)
            preds.append(np.asarray(predict(it["image"][None], CropInfo(center[None], np.array([scale]))))[0])
            gts.append(kp)
            viss.append(vis)
        out[name] = keypoint_metrics(np.stack(preds), np.stack(gts), np.stack(viss)).auc
    return out


@pytest.fixture(scope="module")
def reports(tiny_suite, tmp_path_factory):
    root = tmp_path_factory.mktemp("suite-cli")
    assert _run(root / "base", "--no-plots", predict="predict_images_only") == 0
    assert _run(root / "mine", "--baseline", str(root / "base")) == 0
    return root


def test_suite_report_matches_a_direct_computation(reports, val, capsys):
    doc = json.loads((reports / "mine" / "report.json").read_text())
    sec = doc["suite"]
    direct = _direct_auc(val, user.predict)
    auc = sec["metrics"]["auc"]
    assert sec["name"] == SUITE and sec["severities"] == [1, 2] and sec["not_in_suite"] == {"noise": [2]}
    assert doc["source"]["fraction"] == 1.0 and "--fraction" not in doc["command"]
    assert "--suite kc-test-cli" in doc["command"] and "--baseline" in doc["command"]
    assert auc["clean"] == pytest.approx(direct["standard"], abs=1e-12)
    for c, levels in TABLE.items():
        for s, cfg in enumerate(levels, start=1):
            assert auc["cells"][c][str(s)] == pytest.approx(direct[cfg], abs=1e-12)
    by_corruption = [np.mean([direct[cfg] for cfg in levels]) for levels in TABLE.values()]
    assert auc["mPC"] == pytest.approx(np.mean(by_corruption), abs=1e-12)
    assert auc["rPC"] == pytest.approx(np.mean(by_corruption) / direct["standard"], abs=1e-12)
    base = json.loads((reports / "base" / "report.json").read_text())["suite"]["metrics"]["auc"]
    ce = [
        sum(1 - direct[cfg] for cfg in levels)
        / sum(1 - base["cells"][c][str(s)] for s in range(1, len(levels) + 1))
        for c, levels in TABLE.items()
    ]
    assert sec["baseline"]["mCE"] == pytest.approx(np.mean(ce), abs=1e-12)


def test_suite_report_files_state_the_protocol(reports):
    mine = reports / "mine"
    assert (mine / "severity_curves.png").stat().st_size > 0 and (mine / "pck_curves.png").is_file()
    assert not (reports / "base" / "severity_curves.png").exists()  # --no-plots
    md = (mine / "report.md").read_text()
    for text in (
        "# Robustness benchmark: ",
        ", suite kc-test-cli",
        "- suite: `kc-test-cli` (three corruptions)",
        "- protocol: a protocol for the tests",
        "- severities: 1, 2; 3 corruptions; 5 of 6 cells",
        "not in the suite (shown as `·`, left out of every mean): noise: 2",
        "P (metric of mPC, rPC, mCE): AUC of the PCK curve over 20 thresholds from 0 to 30 px",
        "clean: the whole split, 8 annotations",
        "each cell: the configuration's corrupted subset, 8 annotations (fraction 1.0, seed 0)",
        "- misses: ",
        "mPC = (1/Nc) sum_c (1/Ns_c) sum_s P_cs",
        "| corruption | clean | severity 1 | severity 2 | mean |",
        "#### mCE against ",
        "`severity_curves.png`",
    ):
        assert text in md, text


def test_suite_cli_prints_the_summary(tiny_suite, tmp_path, capsys):
    assert _run(tmp_path / "r", "--severities", "2", "--no-plots") == 0
    printed = capsys.readouterr().out
    assert f"suite {SUITE} (" in printed and "AUC mPC" in printed and "rPC" in printed
    doc = json.loads((tmp_path / "r" / "report.json").read_text())
    assert [r["name"] for r in doc["rows"]] == ["standard", "defocus-21", "motion-45"]
    assert doc["suite"]["not_in_suite"] == {"noise": [2]}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--severities", "1-3"], "--severities 1-3: severities of suite 'kc-test-cli' are 1..2, got [3]"),
        (["--severities", "x"], "--severities x: severities must look like 1-5"),
        (["--configs", "defocus-7"], "exclude each other"),
        (["--baseline", "BASE", "--severities", "1"], "severities: [1], baseline [1, 2]"),
        (["--baseline", "BASE", "--seed", "3"], "data seed: 3, baseline 0"),
        (["--baseline", "PLAIN"], "a benchmark report without a suite"),
        (["--speed"], "not to --speed"),
    ],
)
def test_suite_cli_errors(extra, message, reports, tmp_path, capsys):
    plain = reports / "plain"
    if not plain.exists():
        cmd = [
            "benchmark",
            "--predict",
            f"{USER_FILE}:predict",
            "--configs",
            "defocus-7",
            "--out",
            str(plain),
        ]
        assert main([*cmd, "--no-progress", "--no-plots"]) == 0
    extra = [{"BASE": str(reports / "base"), "PLAIN": str(plain)}.get(e, e) for e in extra]
    out = tmp_path / "r"
    capsys.readouterr()
    assert _run(out, *extra) == 2
    errors = [
        line
        for line in capsys.readouterr().err.splitlines()
        if not line.startswith("keypoint-corrupt benchmark: warning")
    ]
    assert len(errors) == 1 and message in errors[0], errors
    assert not out.exists()


def test_baseline_needs_a_suite(reports, tmp_path, capsys):
    argv = ["benchmark", "--predict", f"{USER_FILE}:predict", "--baseline", str(reports / "base")]
    assert main([*argv, "--out", str(tmp_path / "r")]) == 2
    assert "needs --suite NAME" in capsys.readouterr().err
