"""``keypoint-corrupt benchmark --protocol coco`` end to end on the real COCO fixture (4 images, 14 people).

The command must give what the Python API gives (``evaluate_topdown`` with the same predictor), the
report must state its protocol, its suite figures must follow their definitions (recomputed here from
the rows), and ``recompute_coco`` must rebuild every AP from the results file.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from kc_cli_helpers import PY_CLI

from keypoint_corrupt.benchmark.coco_protocol import recompute_coco
from keypoint_corrupt.benchmark.topdown import evaluate_topdown
from keypoint_corrupt.cli.main import main
from keypoint_corrupt.suites import register_suite, unregister_suite

DATA = Path(__file__).resolve().parents[1] / "data" / "body" / "coco"
COCO_FILE = DATA / "test_coco.json"
DETECTIONS = DATA / "test_coco_det_AP_H_56.json"
SUITE = "kc-test-coco-protocol"
CONFIGS = (
    "imagenet-c.gaussian_noise-1",
    "imagenet-c.gaussian_noise-4",
    "imagenet-c.contrast-1",
    "imagenet-c.contrast-4",
)

# Top-down "models" for the command line, written to a file as a user's would be. Each answers, crop
# after crop in the protocol's order (images by first appearance, boxes in file order), the keypoints of
# the person its box shows (ground-truth boxes; detections: the person it overlaps best, else a fixed
# pose), placed in the crop as MMPose crops a box and shifted by the crop's contrast, so that a
# corruption changes the answer.
MODEL = """
import json

import numpy as np

POSE = np.array([[96, 40], [102, 34], [90, 34], [110, 38], [82, 38], [122, 78], [70, 78], [132, 118],
                 [60, 118], [136, 152], [56, 152], [112, 150], [80, 150], [114, 196], [78, 196],
                 [116, 238], [76, 238]], float)


def crop_frame(bbox, image=None):
    x, y, w, h = (float(v) for v in bbox)
    if image is not None:
        x1, y1 = np.clip(x, 0, image["width"] - 1), np.clip(y, 0, image["height"] - 1)
        x2, y2 = np.clip(x + w, 0, image["width"] - 1), np.clip(y + h, 0, image["height"] - 1)
        x, y, w, h = x1, y1, x2 - x1, y2 - y1
    return np.array([x + w / 2, y + h / 2]), 192.0 / max(1.25 * w, 1.25 * h * 192 / 256)


def iou(a, b):
    w = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return w * h / (a[2] * a[3] + b[2] * b[3] - w * h)


class _Queue:
    schema = "coco17"

    def __call__(self, crops):
        out = []
        for crop in crops:
            kp = self.answers[self.next % len(self.answers)]
            self.next += 1
            out.append(kp + [10.0 * (0.35 - np.asarray(crop, float).std() / 128.0), 0.0])
        return np.stack(out), np.full((len(out), 17), 0.9)


class GroundTruth(_Queue):
    def __init__(self, data):
        doc = json.load(open(data))
        images = {im["id"]: im for im in doc["images"]}
        order = list(dict.fromkeys(a["image_id"] for a in doc["annotations"]))
        self.answers, self.next = [], 0
        for image_id in order:
            for ann in doc["annotations"]:
                if ann["image_id"] == image_id and ann["num_keypoints"] > 0 and not ann.get("iscrowd"):
                    kp = np.asarray(ann["keypoints"], float).reshape(17, 3)
                    centre, s = crop_frame(ann["bbox"], images[image_id])
                    crop = (kp[:, :2] - centre) * s + [96.0, 128.0]
                    crop[kp[:, 2] == 0] = np.nan
                    self.answers.append(crop)


class Detected(_Queue):
    def __init__(self, data, detections):
        doc = json.load(open(data))
        dets = json.load(open(detections))
        order = list(dict.fromkeys(a["image_id"] for a in doc["annotations"]))
        people = [a for a in doc["annotations"] if a["num_keypoints"] > 0]
        self.answers, self.next = [], 0
        for det in sorted(dets, key=lambda d: order.index(d["image_id"])):
            centre, s = crop_frame(det["bbox"])
            here = [(iou(det["bbox"], a["bbox"]), n) for n, a in enumerate(people)
                    if a["image_id"] == det["image_id"]]
            best, n = max(here)
            kp = np.asarray(people[n]["keypoints"], float).reshape(17, 3)[:, :2]
            self.answers.append((kp - centre) * s + [96.0, 128.0] if best >= 0.5 else POSE)


class Closing(GroundTruth):
    def __init__(self, data, marker):
        super().__init__(data)
        self.marker = marker

    def close(self):
        open(self.marker, "w").write("closed")


def broken(crops):
    raise RuntimeError("out of memory")
"""


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "topdown_model.py"
    path.write_text(MODEL)
    return path


@pytest.fixture(scope="module")
def model(model_file):
    spec = importlib.util.spec_from_file_location("kc_test_topdown_model", model_file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def suite():
    register_suite(SUITE, {"gaussian_noise": list(CONFIGS[:2]), "contrast": list(CONFIGS[2:])})
    yield SUITE
    unregister_suite(SUITE)


def _run(model_file, out, *extra, model="GroundTruth"):
    argv = ["benchmark", "--protocol", "coco", "--data", str(COCO_FILE), "--images", str(DATA)]
    argv += ["--predict", f"{model_file}:{model}", "--predict-arg", f"data={COCO_FILE}"]
    return main([*argv, "--out", str(out), "--no-progress", *extra])


def _errors(capsys):
    """The error lines on stderr (a 4-image set also draws the few-images warning)."""
    return [line for line in capsys.readouterr().err.splitlines() if ": error: " in line]


def test_suite_end_to_end(model_file, model, suite, tmp_path, capsys):
    out = tmp_path / "coco-c"
    assert _run(model_file, out, "--suite", suite, "--severities", "1,2") == 0
    printed = capsys.readouterr().out
    doc = json.loads((out / "report.json").read_text())
    assert doc["protocol"] == "coco" and doc["format"] == "keypoint-corrupt/benchmark-report"
    rows = {r["name"]: r for r in doc["rows"]}
    assert list(rows) == ["standard", *CONFIGS]
    # the command is the API: the same predictor, the same AP in every row
    api = evaluate_topdown(model.GroundTruth(COCO_FILE), COCO_FILE, CONFIGS)
    for name, row in api.rows.items():
        for k in ("ap", "ap50", "ap75", "ar"):
            assert rows[name][k] == pytest.approx(getattr(row.metric, k), abs=1e-12), (name, k)
    clean = rows["standard"]["ap"]
    assert 0.5 < clean < 1.0  # the people's own keypoints, shifted a little
    assert len({rows[c]["ap"] for c in CONFIGS}) > 1  # corruptions change the answers
    # the suite's figures, from their definitions
    sec = doc["suite"]
    m = sec["metrics"]["ap"]
    assert sec["name"] == suite and sec["severities"] == [1, 2] and sec["primary_metric"] == "ap"
    cells = {"gaussian_noise": [rows[c]["ap"] for c in CONFIGS[:2]]}
    cells["contrast"] = [rows[c]["ap"] for c in CONFIGS[2:]]
    assert m["cells"] == {c: {"1": v[0], "2": v[1]} for c, v in cells.items()}
    mpc = np.mean([np.mean(v) for v in cells.values()])
    assert m["clean"] == clean and m["mPC"] == pytest.approx(mpc) and m["rPC"] == pytest.approx(mpc / clean)
    rr = [sum(v) / (2 * clean) for v in cells.values()]
    assert m["mRR"] == pytest.approx(np.mean(rr))  # equal to rPC with every corruption at both severities
    assert sec["data"]["clean"]["images"] == 4 and sec["data"]["clean"]["boxes"] == 12
    # the protocol, stated in the JSON and the markdown
    coco = doc["coco"]
    assert coco["boxes"]["source"] == "ground truth" and coco["padding"] == 1.25
    assert coco["input_size"] == [192, 256] and coco["input_size_from"] == "default"
    assert coco["schema"] == {"dataset": "coco17", "predict": "coco17", "reordered": False}
    assert len(coco["sigmas"]) == 17 and coco["images"]["evaluated"] == 4
    md = (out / "report.md").read_text()
    for text in (
        "COCO protocol",
        "boxes: ground truth, 12 boxes",
        "192 x 256",
        "OKS sigmas (coco17): 0.026",
        "NMS: none",
        "misses:",
        f"Suite `{suite}`",
        "mRR",
        "| gaussian_noise |",
        "--protocol coco",
    ):
        assert text in md, text
    with (out / "report.csv").open() as f:
        table = list(csv.DictReader(f))
    assert [r["row"] for r in table] == ["standard", *CONFIGS]
    assert table[1]["suite_corruption"] == "gaussian_noise" and table[1]["suite_severity"] == "1"
    assert float(table[0]["ap"]) == clean
    # every AP again from the results file
    again = recompute_coco(out)
    for name, row in rows.items():
        assert again[name] == {k: row[k] for k in again[name]}, name
    assert f"suite {suite}: AP mPC {m['mPC']:.3f}" in printed and "standard" in printed


def test_detections_end_to_end(model_file, model, tmp_path):
    out = tmp_path / "dets"
    extra = ["--configs", "imagenet-c.gaussian_noise-3", "--detections", str(DETECTIONS)]
    assert _run(model_file, out, *extra, "--predict-arg", f"detections={DETECTIONS}", model="Detected") == 0
    doc = json.loads((out / "report.json").read_text())
    boxes = doc["coco"]["boxes"]
    assert boxes["source"] == "detections" and boxes["file"] == str(DETECTIONS)
    assert boxes["counts"] == {"read": 118, "used": 118, "other_category": 0, "empty_box": 0}
    predictor = model.Detected(COCO_FILE, DETECTIONS)
    api = evaluate_topdown(predictor, COCO_FILE, ["imagenet-c.gaussian_noise-3"], detections=DETECTIONS)
    for row in doc["rows"]:
        assert row["boxes"] == 118 and 0.3 < row["ap"] < 1.0
        assert row["ap"] == pytest.approx(api.rows[row["name"]].metric.ap, abs=1e-12)
    assert doc["suite"] is None and doc["summary"]["mPC"] == doc["rows"][1]["ap"]
    assert "detections from" in (out / "report.md").read_text()


def test_the_hand_protocol_stays_the_default(tmp_path):
    user = Path(__file__).with_name("bench_user_predict.py")
    argv = [
        "benchmark",
        "--predict",
        f"{user}:predict_body",
        "--data",
        str(COCO_FILE),
        "--configs",
        "noise-gaussian",
    ]
    assert main([*argv, "--out", str(tmp_path / "hand"), "--no-plots", "--no-progress"]) == 0
    doc = json.loads((tmp_path / "hand" / "report.json").read_text())
    assert "protocol" not in doc and doc["rows"][0]["images"] == 14  # one row item per annotation
    assert (tmp_path / "hand" / "predictions.npz").is_file()


def test_an_error_inside_predict_is_one_line_exit_1(model_file, tmp_path, capsys):
    argv = ["benchmark", "--protocol", "coco", "--data", str(COCO_FILE), "--configs", "noise-gaussian"]
    assert (
        main([*argv, "--predict", f"{model_file}:broken", "--out", str(tmp_path / "r"), "--no-progress"]) == 1
    )
    err = _errors(capsys)
    assert len(err) == 1 and "predict raised RuntimeError: out of memory (configuration standard" in err[0]


P, D, F = ["--protocol", "coco"], ["--data", str(COCO_FILE)], ["--predict", "m.py:f"]
MPII_FILE = COCO_FILE.parents[1] / "mpii" / "test_mpii.json"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--detections", str(DETECTIONS), *F, *D], f"--detections {DETECTIONS} needs --protocol coco"),
        ([*P, *F], "--protocol coco needs --data FILE.json"),
        ([*P, *F, "--data", str(DATA)], "--protocol coco needs --data FILE.json"),
        ([*P, *D], "--protocol coco needs --predict MODULE:NAME"),
        (
            [*P, *D, "--model", "posenet-dense", "--weights", "w.pt"],
            "--protocol coco does not take --model, --weights",
        ),
        ([*P, *D, *F, "--compare-predict", "m.py:g"], "--protocol coco does not take --compare-predict"),
        ([*P, *D, *F, "--suite", "costa2021", "--baseline", "r"], "--protocol coco does not take --baseline"),
        ([*P, "--speed"], "--protocol coco applies to the accuracy benchmark, not to --speed"),
        ([*P, *D, *F, "--detections", "nope.json"], "--detections not found: nope.json"),
        ([*P, *D, *F, "--suite", "no-such-suite"], "--suite: "),
        ([*P, *D, *F, "--severities", "2"], "--severities 2 needs --suite NAME"),
        (
            [*P, *F, "--data", str(MPII_FILE), "--images", str(MPII_FILE.parent)],
            f"--data {MPII_FILE} is MpiiPeople data (use --protocol mpii)",
        ),
        (
            ["--protocol", "mpii", *F, "--data", str(DATA)],
            "--protocol mpii needs --predict MODULE:NAME and --data FILE.json",
        ),
        (
            ["--protocol", "mpii", "--speed"],
            "--protocol mpii applies to the accuracy benchmark, not to --speed",
        ),
    ],
)
def test_argument_errors_are_named(argv, message, tmp_path, capsys):
    assert main(["benchmark", *argv, "--out", str(tmp_path / "r"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_a_malformed_detections_file_is_named_before_the_model_loads(model_file, tmp_path, capsys):
    bad = tmp_path / "dets.json"
    bad.write_text(json.dumps([{"image_id": 785, "category_id": 1, "bbox": [1, 2, 3, 4]}]))
    assert _run(tmp_path / "absent_model.py", tmp_path / "r", "--detections", str(bad)) == 2
    err = capsys.readouterr().err
    assert f"--detections {bad}: detection 0 has no score" in err and "absent_model" not in err


def test_out_refuses_a_file_an_earlier_report_did_not_write(model_file, tmp_path, capsys):
    out = tmp_path / "r"
    out.mkdir()
    (out / "coco_results.json.gz").write_bytes(b"mine")
    assert _run(model_file, out, "--configs", "noise-gaussian") == 2
    assert (
        "coco_results.json.gz exists and is not from an earlier benchmark report" in capsys.readouterr().err
    )
    assert (out / "coco_results.json.gz").read_bytes() == b"mine"
    other = tmp_path / "again"
    for _ in range(2):  # its own earlier report is replaced
        assert _run(model_file, other, "--configs", "noise-gaussian") == 0
    assert json.loads((other / "report.json").read_text())["rows"][0]["ap"] > 0.5


def test_the_command_closes_its_model_when_it_is_its_own_process(model_file, tmp_path):
    # A model released only at interpreter exit can hang there (MediaPipe's graph): the command closes it.
    marker = tmp_path / "closed"
    argv = ["benchmark", "--protocol", "coco", "--data", str(COCO_FILE), "--configs", "noise-gaussian"]
    argv += ["--predict", f"{model_file}:Closing", "--predict-arg", f"data={COCO_FILE}"]
    argv += ["--predict-arg", f"marker={marker}", "--no-progress"]
    assert main([*argv, "--out", str(tmp_path / "in-process")]) == 0
    assert not marker.exists()  # inside someone else's program the model stays open
    done = subprocess.run(
        [*PY_CLI, *argv, "--out", str(tmp_path / "own")], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert marker.read_text() == "closed"


def test_the_reported_command_spells_configs_as_typed():
    from keypoint_corrupt.cli.benchmark import _command_line
    from keypoint_corrupt.cli.main import build_parser

    args = build_parser().parse_args(["benchmark", "--configs", "motion-15,defocus-7", "--no-plots"])
    args.configs = ("motion-15", "defocus-7")  # as run() leaves it after parsing the names
    assert "--configs motion-15,defocus-7" in _command_line(args)


def test_two_runs_write_the_same_results_file(model_file, tmp_path):
    for name in ("a", "b"):
        assert _run(model_file, tmp_path / name, "--configs", "imagenet-c.gaussian_noise-3") == 0
    first, second = ((tmp_path / n / "coco_results.json.gz").read_bytes() for n in ("a", "b"))
    assert first == second
    assert first[4:8] == b"\0\0\0\0"  # the gzip header's MTIME: no timestamp, whatever the second
