"""``benchmark --schema``: the dataset's joint order named on the command line, checked up front."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from keypoint_corrupt.cli.main import main
from keypoint_corrupt.schema import get_schema, remap

RHD = Path(__file__).resolve().parents[1] / "data" / "hands" / "rhd" / "test_rhd.json"

# A predictor that answers the ground truth it was given at construction, in hand21 order.
PREDICTOR = """
import json
import numpy as np
from keypoint_corrupt.schema import remap

class Truth:
    schema = "{schema}"

    def __init__(self, path):
        doc = json.load(open(path))
        points = {{a["image_id"]: a["keypoints"] for a in doc["annotations"]}}
        by_image = {{k: np.asarray(v, float).reshape(-1, 3)[:, :2] for k, v in points.items()}}
        self.points = [by_image[i["id"]] for i in doc["images"]]
        self.calls = 0

    def __call__(self, images):
        out = []
        for _ in images:
            out.append(remap(self.points[self.calls % len(self.points)], "rhd", self.schema))
            self.calls += 1
        return np.stack(out)
"""


def _run(tmp_path: Path, schema: str, *extra: str) -> int:
    user = tmp_path / f"truth_{schema}.py"
    user.write_text(PREDICTOR.format(schema=schema))
    argv = ["benchmark", "--data", str(RHD), "--predict", f"{user}:Truth", "--predict-arg", f"path={RHD}"]
    argv += [
        "--configs",
        "defocus-7",
        "--fraction",
        "1.0",
        "--batch-size",
        "1",
        "--no-progress",
        "--no-plots",
    ]
    return main([*argv, "--out", str(tmp_path / f"out_{schema}"), *extra])


def test_predictions_in_either_declared_order_score_the_same(tmp_path, capsys):
    assert _run(tmp_path, "rhd", "--schema", "rhd") == 0
    printed = capsys.readouterr().out
    # rPC of EPE divides by a clean EPE of 0: shown as "-" with the reason, never as nan.
    assert not re.search(r"\bnan\b", printed) and "rPC.mean_epe: division by zero" in printed
    assert _run(tmp_path, "hand21", "--schema", "rhd") == 0
    a = json.loads((tmp_path / "out_rhd" / "report.json").read_text())
    b = json.loads((tmp_path / "out_hand21" / "report.json").read_text())
    assert b["settings"]["schema"] == {"dataset": "rhd", "predict": "hand21", "reordered": True}
    assert a["settings"]["schema"] == {"dataset": "rhd", "predict": "rhd", "reordered": False}
    assert a["rows"] == b["rows"]
    # The truth, returned in order, is scored perfect on the clean row.
    assert a["rows"][0]["name"] == "standard" and a["rows"][0]["mean_epe"] == 0.0


def test_an_unknown_schema_is_one_line_before_any_work(tmp_path, capsys):
    assert _run(tmp_path, "rhd", "--schema", "nosuch") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--schema" in err[0] and "nosuch" in err[0]
    assert not (tmp_path / "out_rhd").exists()


def test_a_declared_schema_that_cannot_match_is_refused(tmp_path, capsys):
    assert _run(tmp_path, "coco17", "--schema", "rhd") == 2
    err = capsys.readouterr().err
    assert "cannot be scored" in err and "coco17" in err


def test_remap_is_the_permutation_the_predictor_relies_on():
    kp = np.arange(42.0).reshape(21, 2)
    back = remap(remap(kp, "rhd", "hand21"), "hand21", "rhd")
    np.testing.assert_array_equal(back, kp)
    assert get_schema("hand21").joints[0] == get_schema("rhd").joints[0] == "wrist"
