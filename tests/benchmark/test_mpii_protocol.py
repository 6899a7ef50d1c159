"""--protocol mpii: MPII crops, PCKh@0.5 with head boxes from a .mat, the CLI's refusals."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from kc_cli_helpers import write_mmpose_head_boxes

from keypoint_corrupt.benchmark.mpii_protocol import evaluate_mpii, mpii_crop_box, write_mpii_report
from keypoint_corrupt.datasets.mpii import MpiiPeople

DATA = Path(__file__).resolve().parents[1] / "data" / "body" / "mpii" / "test_mpii.json"
HEAD = (0.0, 0.0, 30.0, 40.0)  # diagonal 50: head size 0.6 * 50 = 30 px, PCKh@0.5 radius 15 px


def _mat(tmp_path: Path, people: MpiiPeople) -> Path:
    """MMPose's mpii_gt_val.mat layout: every person's joints and the same head box."""
    return write_mmpose_head_boxes(tmp_path / "mpii_gt_val.mat", people, HEAD)


def _offset_predictor(people: MpiiPeople, offsets: np.ndarray) -> Callable[..., Any]:
    """Answers ``gt + offsets`` in crop pixels, person after person (each row in file order)."""
    state = {"next": 0}

    def predict(crops: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        out = []
        for crop in crops:
            sample = people[state["next"] % len(people)]
            state["next"] += 1
            h, w = crop.shape[:2]
            center, size = mpii_crop_box(sample.meta["center"], sample.meta["scale"], (w, h))
            s = w / size[0]
            out.append((sample.keypoints + offsets - center) * s + np.array([w, h]) / 2)
        return np.stack(out), np.ones((len(crops), 16))

    predict.schema = "mpii16"  # type: ignore[attr-defined]
    return predict


def test_ground_truth_predictor_gives_pckh_one(tmp_path: Path) -> None:
    people = MpiiPeople(DATA)
    res = evaluate_mpii(
        _offset_predictor(people, np.zeros((16, 2))),
        people,
        _mat(tmp_path, people),
        configs=["imagenet-c.brightness-1"],
    )
    assert list(res.rows) == ["standard", "imagenet-c.brightness-1"]
    for row in res.rows.values():
        assert row.people == len(people) == 5
        assert row.pckh.mean == 1.0
        assert row.curve.mean[-1] == 1.0


def test_known_perturbation_gives_hand_computed_pckh(tmp_path: Path) -> None:
    people = MpiiPeople(DATA)
    offsets = np.zeros((16, 2))
    offsets[0::2, 0] = 10.0  # even joints 10 px off (<= 15: correct)
    offsets[1::2, 1] = 20.0  # odd joints 20 px off (> 15: wrong)
    res = evaluate_mpii(_offset_predictor(people, offsets), people, _mat(tmp_path, people), configs=())
    # By hand: annotated joints other than pelvis (6) and thorax (7); the even ones are correct.
    kept = [j for j in range(16) if j not in (6, 7)]
    visible = sum(int(s.visibility[j]) for s in people for j in kept)
    correct = sum(int(s.visibility[j]) for s in people for j in kept if j % 2 == 0)
    row = res.rows["standard"]
    assert row.pckh.n_visible == visible
    assert row.pckh.mean == pytest.approx(correct / visible)
    # 10 px = 1/3 head size: every even joint correct from threshold 0.34 up, none below 0.33.
    t = row.curve.thresholds
    assert np.all(row.curve.mean[t >= 0.34] == pytest.approx(correct / visible))
    assert np.all(row.curve.mean[t <= 0.33] == 0.0)
    files = write_mpii_report(res, tmp_path / "report")
    doc = json.loads(files["json"].read_text())
    assert doc["protocol"] == "mpii" and doc["rows"][0]["pckh"] == pytest.approx(correct / visible)


def test_cli_without_head_boxes_fails_plainly_before_the_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from keypoint_corrupt.cli.main import main

    argv = ["benchmark", "--protocol", "mpii", "--data", str(DATA), "--out", str(tmp_path / "r")]
    code = main([*argv, "--predict", "no_such_module_xyz:predict"])  # never imported: refused first
    err = capsys.readouterr().err
    assert code == 2
    assert "PCKh needs MPII's head boxes" in err and "no_such_module_xyz" not in err
    assert "no_such_module_xyz" not in sys.modules


PREDICTOR_FILE = '''
import numpy as np
from keypoint_corrupt.benchmark.mpii_protocol import mpii_crop_box
from keypoint_corrupt.datasets.mpii import MpiiPeople


class GroundTruth:
    """Answers each person's annotated joints, person after person in file order."""

    schema = "mpii16"

    def __init__(self, data):
        self.people = MpiiPeople(data)
        self.next = 0

    def __call__(self, crops):
        out = []
        for crop in crops:
            sample = self.people[self.next % len(self.people)]
            self.next += 1
            h, w = crop.shape[:2]
            center, size = mpii_crop_box(sample.meta["center"], sample.meta["scale"], (w, h))
            out.append((sample.keypoints - center) * (w / size[0]) + np.array([w, h]) / 2)
        return np.stack(out), np.ones((len(crops), 16))
'''


def test_cli_with_head_boxes_and_a_suite_end_to_end(tmp_path: Path) -> None:
    from keypoint_corrupt.cli.main import main

    (tmp_path / "gt_predict.py").write_text(PREDICTOR_FILE)
    people = MpiiPeople(DATA)
    out = tmp_path / "report"
    head_boxes = _mat(tmp_path, people)
    argv = ["benchmark", "--protocol", "mpii", "--data", str(DATA), "--head-boxes", str(head_boxes)]
    argv += ["--predict", f"{tmp_path / 'gt_predict.py'}:GroundTruth", "--predict-arg", f"data={DATA}"]
    argv += ["--suite", "imagenet-c", "--severities", "1", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    doc = json.loads((out / "report.json").read_text())
    assert doc["protocol"] == "mpii" and len(doc["rows"]) == 1 + 15
    assert all(row["pckh"] == 1.0 for row in doc["rows"])  # photometric: the joints stay put
    assert doc["suite"] is not None and "mPC" in json.dumps(doc["suite"])
    md = (out / "report.md").read_text()
    assert "PCKh" in md and "suite: `imagenet-c`, severities 1" in md and str(head_boxes) in md
    # report.csv: one line per row, the suite cell of each; recompute_mpii gives the report's rows
    from keypoint_corrupt.benchmark import recompute_mpii

    with (out / "report.csv").open(newline="") as f:
        lines = list(csv.DictReader(f))
    cells = {line["row"]: (line["suite_corruption"], line["suite_severity"]) for line in lines}
    assert cells["standard"] == ("clean", "clean")
    assert cells["imagenet-c.fog-1"] == ("fog", "1") and len(lines) == 16
    assert all(line["pckh"] == "1.0" and line["pckh_head_top"] == "1.0" for line in lines)
    assert recompute_mpii(out) == {row["name"]: row for row in doc["rows"]}
