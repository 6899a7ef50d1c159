"""--protocol mpii: report.csv, mpii_predictions.json.gz (same bytes every run) and recompute_mpii.

On the real MPII fixture (tests/data/body/mpii: 5 people on 5 images) with a head-box .mat built here
(MMPose's mpii_gt_val.mat layout, every head box 30 x 40 px: head size 30 px, PCKh@0.5 radius 15 px).
"""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from kc_cli_helpers import write_mmpose_head_boxes

from keypoint_corrupt.benchmark import recompute_mpii
from keypoint_corrupt.benchmark.mpii_protocol import (
    MPII_PREDICTIONS_FILE,
    MPII_REPORT_FILES,
    evaluate_mpii,
    write_mpii_report,
)
from keypoint_corrupt.body_metrics import pckh_curve
from keypoint_corrupt.datasets.mpii import MpiiPeople
from keypoint_corrupt.schema import get_schema

DATA = Path(__file__).resolve().parents[1] / "data" / "body" / "mpii" / "test_mpii.json"
HEAD = (0.0, 0.0, 30.0, 40.0)  # diagonal 50: head size 0.6 * 50 = 30 px
MPII = get_schema("mpii16")
WRIST = MPII.joints.index("left_wrist")
IN_MEAN = np.array([j not in ("pelvis", "thorax") for j in MPII.joints])


def _mat(path: Path, people: MpiiPeople, head: tuple[float, float, float, float] = HEAD) -> Path:
    return write_mmpose_head_boxes(path, people, head)


def centre_predictor(crops: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Every joint at the crop's centre, left_wrist never found, the first crop of a call all NaN."""
    out = np.stack([np.tile([c.shape[1] / 2, c.shape[0] / 2], (len(MPII), 1)) for c in crops])
    out[:, WRIST] = np.nan
    out[0] = np.nan
    return out, np.tile(np.linspace(0.1, 0.9, len(MPII)), (len(crops), 1))


centre_predictor.schema = "mpii16"  # type: ignore[attr-defined]


def _by_hand(people: MpiiPeople, index: list[int]) -> tuple[int, int, int]:
    """Visible, correct and missed joints in MPII's mean for ``index`` (the first person all missed)."""
    visible = correct = missed = 0
    for n, i in enumerate(index):
        s = people[i]
        cx, cy = s.meta["center"][0], s.meta["center"][1] + 15.0 * s.meta["scale"]  # the crop's centre
        vis = s.visibility & IN_MEAN
        found = np.ones(len(MPII), bool) if n else np.zeros(len(MPII), bool)
        found[WRIST] = False
        near = np.hypot(s.keypoints[:, 0] - cx, s.keypoints[:, 1] - cy) <= 0.5 * 30.0
        visible += int(vis.sum())
        correct += int((vis & found & near).sum())
        missed += int((vis & ~found).sum())
    return visible, correct, missed


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, dict, Path, MpiiPeople]:
    tmp = tmp_path_factory.mktemp("mpii")
    people = MpiiPeople(DATA)
    heads = _mat(tmp / "mpii_gt_val.mat", people)
    res = evaluate_mpii(centre_predictor, people, heads, ["imagenet-c.brightness-1"], fraction=0.2, seed=0)
    files = write_mpii_report(res, tmp / "report", label="centre")
    return res, files, heads, people


def test_report_files_and_hand_computed_figures(run: tuple) -> None:
    res, files, _, people = run
    assert sorted(p.name for p in files.values()) == sorted(MPII_REPORT_FILES)
    doc = json.loads(files["json"].read_text())
    rows = {r["name"]: r for r in doc["rows"]}
    std = rows["standard"]
    assert list(res.rows["standard"].person_index) == [0, 1, 2, 3, 4]
    visible, correct, missed = _by_hand(people, [0, 1, 2, 3, 4])
    assert (std["pckh_detail"]["n_visible"], std["pckh_detail"]["n_correct"]) == (visible, correct)
    assert std["pckh"] == correct / visible and std["joints_missed"] == missed
    assert std["people_missed"] == 1
    # fraction 0.2, seed 0: one image, person 2 (no ankle annotated), all NaN (first of its call)
    cell = rows["imagenet-c.brightness-1"]
    assert list(res.rows["imagenet-c.brightness-1"].person_index) == [2]
    assert (cell["people"], cell["people_missed"], cell["pckh"]) == (1, 1, 0.0)
    per_joint = dict(zip(MPII.joints, cell["pckh_detail"]["per_joint"], strict=True))
    assert per_joint["right_ankle"] is None and per_joint["left_ankle"] is None
    assert "never annotated: right_ankle, left_ankle" in cell["reason"]


def test_csv_holds_the_json_figures_by_joint_name_and_explains_every_blank(run: tuple) -> None:
    _, files, _, _ = run
    doc = json.loads(files["json"].read_text())
    with files["csv"].open(newline="") as f:
        lines = list(csv.DictReader(f))
    assert [r["row"] for r in lines] == [r["name"] for r in doc["rows"]]
    for line, row in zip(lines, doc["rows"], strict=True):
        assert float(line["pckh"]) == row["pckh"] and float(line["pckh_auc"]) == row["pckh_auc"]
        assert int(line["people"]) == row["people"] and int(line["joints_missed"]) == row["joints_missed"]
        for joint, value in zip(MPII.joints, row["pckh_detail"]["per_joint"], strict=True):
            assert line[f"pckh_{joint}"] == ("" if value is None else repr(value))
            if value is None:
                assert joint in line["notes"]  # no blank without its reason
    md = files["md"].read_text()
    for statement in (
        "MPII's center and scale",
        "0.6 x the head box diagonal",
        "mpii_gt_val.mat",
        "suite: none",
    ):
        assert statement in md
    assert "never annotated: right_ankle, left_ankle" in md


def test_recompute_equals_the_report(run: tuple) -> None:
    _, files, _, _ = run
    doc = json.loads(files["json"].read_text())
    again = recompute_mpii(files["json"].parent)
    assert again == {r["name"]: r for r in doc["rows"]}
    assert recompute_mpii(files["predictions"]) == again
    with gzip.open(files["predictions"], "rt") as f:
        saved = json.load(f)
    assert saved["rows"]["standard"]["people"] == [0, 1, 2, 3, 4]
    assert saved["rows"]["standard"]["scores"][1][0] == pytest.approx(0.1)
    assert saved["rows"]["standard"]["keypoints"][0][0] == [None, None]  # a miss stays a miss


def test_recompute_refuses_other_head_boxes_and_other_files(run: tuple, tmp_path: Path) -> None:
    _, files, _, people = run
    other = _mat(tmp_path / "other.mat", people, (0.0, 0.0, 60.0, 80.0))
    with pytest.raises(ValueError, match=r"head_boxes .*other\.mat.* is not the file the run used"):
        recompute_mpii(files["json"].parent, head_boxes=other)
    bad = tmp_path / MPII_PREDICTIONS_FILE
    bad.write_bytes(gzip.compress(b'{"format": "keypoint-corrupt/coco-results"}'))
    with pytest.raises(ValueError, match="not an MPII predictions file"):
        recompute_mpii(tmp_path)


def test_same_bytes_every_run_and_moved_ground_truth_recomputed(tmp_path: Path) -> None:
    from keypoint_corrupt.registry import register_config, unregister_config
    from keypoint_corrupt.transforms import ImageNetC

    people = MpiiPeople(DATA)
    heads = _mat(tmp_path / "mpii_gt_val.mat", people, (0.0, 0.0, 600.0, 800.0))  # head size 600 px
    elastic = "kc-test-mpii-elastic"
    register_config(
        elastic, ImageNetC, {"corruption": "elastic_transform", "severity": 2, "move_keypoints": True}
    )
    try:
        runs = []
        for k in range(2):
            res = evaluate_mpii(centre_predictor, people, heads, [elastic, "imagenet-c.brightness-1"])
            runs.append((res, write_mpii_report(res, tmp_path / f"run{k}")))
        again = recompute_mpii(tmp_path / "run0")
    finally:
        unregister_config(elastic)
    (res, a), (_, b) = runs
    for kind in ("predictions", "csv"):
        assert a[kind].read_bytes() == b[kind].read_bytes()
    assert a["predictions"].read_bytes()[4:8] == b"\0\0\0\0"  # gzip mtime 0
    doc = json.loads(a["json"].read_text())
    assert again == {r["name"]: r for r in doc["rows"]}
    row = res.rows[elastic]
    assert len(row.moved) == 5 and not res.rows["imagenet-c.brightness-1"].moved
    # the file's own (unmoved) joints would give another curve: the moved ones are what is kept
    gt = np.stack([p.keypoints for p in people])
    vis = np.stack([p.visibility for p in people])
    unmoved = pckh_curve(row.predictions, gt, vis, np.full(5, 600.0), schema="mpii16")
    assert 0 < row.curve.auc < 1 and unmoved.auc != row.curve.auc


def test_input_size_is_checked_as_the_coco_protocol_checks_it(tmp_path: Path) -> None:
    from keypoint_corrupt.benchmark.topdown import evaluate_topdown

    coco = DATA.parents[1] / "coco" / "test_coco.json"

    def predict(crops: list[np.ndarray]) -> np.ndarray:
        return np.zeros((len(crops), 16, 2))

    for size in ((256.0, 256), (256, 0), (True, 256)):
        with pytest.raises(ValueError) as mpii_error:
            evaluate_mpii(predict, DATA, tmp_path / "none.mat", input_size=size)  # type: ignore[arg-type]
        with pytest.raises(ValueError) as coco_error:
            evaluate_topdown(predict, coco, configs=(), input_size=size)  # type: ignore[arg-type]
        assert str(mpii_error.value) == str(coco_error.value) and repr(size) in str(mpii_error.value)

    seen: list[tuple[int, ...]] = []

    def declared(crops: list[np.ndarray]) -> np.ndarray:
        seen.extend(c.shape for c in crops)
        return np.zeros((len(crops), 16, 2))

    declared.input_size = (192, 256)  # type: ignore[attr-defined]
    people = MpiiPeople(DATA)
    res = evaluate_mpii(declared, people, _mat(tmp_path / "h.mat", people), configs=())
    assert set(seen) == {(256, 192, 3)}
    assert res.protocol["input_size"] == [192, 256] and res.protocol["input_size_from"] == "predictor"
    declared.input_size = "big"  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match=r"predict\.input_size must be \(width, height\), got 'big'"):
        evaluate_mpii(declared, people, tmp_path / "h.mat", configs=())
