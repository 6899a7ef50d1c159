"""``keypoint-corrupt train`` end to end on a tiny generated STB-layout tree (CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from keypoint_corrupt import CONFIGS  # noqa: E402
from keypoint_corrupt.cli.main import main  # noqa: E402
from keypoint_corrupt.datasets import write_synthetic_stb  # noqa: E402


@pytest.fixture(scope="module")
def tiny_stb(tmp_path_factory):
    root = tmp_path_factory.mktemp("stb")
    write_synthetic_stb(root, frames_per_sequence=1, seed=1)
    return root  # train: 10 sequences x 1 frame x 2 cameras = 20 images; val: 4


def _train(tiny_stb, out, *extra):
    return main(
        ["train", "--model", "posenet-depthwise", "--data", str(tiny_stb), "--out", str(out),
         "--epochs", "1", "--batch-size", "4", "--crop-size", "32", "--device", "cpu", "--quiet", *extra]
    )  # fmt: skip


def test_train_s_train_writes_weights_curve_and_history(tiny_stb, tmp_path, capsys):
    out = tmp_path / "run"
    assert _train(tiny_stb, out) == 0
    summary = capsys.readouterr().out
    assert "trained posenet-depthwise for 1 epoch(s)" in summary and "validation mean EPE" in summary
    for name in ("model.pt", "last.pt", "loss_curve.png", "history.json"):
        assert (out / name).is_file(), name
    from keypoint_corrupt.models import load

    model = load(out / "model.pt")
    assert model.checkpoint_header["train_set"] == "S-train"
    history = json.loads((out / "history.json").read_text())
    # 20 training images in batches of 4: one epoch of 5 steps, then one validation on the 4 val images
    assert history["model"] == "posenet-depthwise" and history["train_set"] == "S-train"
    assert (history["epochs"], history["steps_per_epoch"], history["device"]) == (1, 5, "cpu")
    assert len(history["step_losses"]) == 5 and all(np.isfinite(history["step_losses"]))
    assert history["epoch_losses"] == pytest.approx([np.mean(history["step_losses"])])
    assert len(history["val_mean_epe"]) == 1 and history["val_mean_epe"][0] > 0
    assert model.checkpoint_header["val_mean_epe"] == history["val_mean_epe"][0]


@pytest.mark.parametrize("fraction", [0.05, 0.2])
def test_train_s_train_star_adds_the_corrupted_subsets(tiny_stb, tmp_path, capsys, fraction):
    out = tmp_path / "star"
    assert _train(tiny_stb, out, "--train-set", "S-train*", "--fraction", str(fraction)) == 0
    err = capsys.readouterr().err
    assert err == ""  # --quiet
    from keypoint_corrupt.models import load

    assert load(out / "model.pt").checkpoint_header["train_set"] == "S-train*"
    # S-train* = the 20 clean images plus round(fraction x 20) corrupted ones per configuration,
    # appended; the run's epoch is that many images in batches of 4 (the last partial one dropped).
    size = 20 + len(CONFIGS) * round(fraction * 20)
    assert json.loads((out / "history.json").read_text())["steps_per_epoch"] == size // 4
    from keypoint_corrupt.cli.data import training_data

    items, val, info, schema = training_data(str(tiny_stb), None, "S-train*", fraction=fraction)
    assert len(items) == size and len(val) == 4 and info["source"] == "stream"
    assert schema.name == "stb_rhd"  # STB's own: the crop centres on its middle MCP, joint 12
    assert {items[i]["config"] for i in range(len(items))} == {"clean", *CONFIGS}


def test_train_refuses_to_clobber_or_resume_nothing(tiny_stb, tmp_path, capsys):
    assert _train(tiny_stb, tmp_path / "none", "--resume") == 2
    assert "no checkpoint" in capsys.readouterr().err
    out = tmp_path / "once"
    assert _train(tiny_stb, out) == 0
    assert _train(tiny_stb, out) == 2
    assert "--resume" in capsys.readouterr().err
    assert _train(tiny_stb, out, "--resume", "--epochs", "2") == 0


def test_train_rejects_bad_arguments(tiny_stb, tmp_path, capsys):
    assert _train(tiny_stb, tmp_path / "x", "--fraction", "1.5") == 2
    assert "--fraction must be in (0, 1]" in capsys.readouterr().err
    missing = str(tmp_path / "missing")
    assert main(["train", "--model", "nerpe", "--data", missing, "--out", str(tmp_path)]) == 2
    assert "--data not found" in capsys.readouterr().err


FREIHAND = Path(__file__).parent / "data" / "hands" / "freihand" / "test_freihand.json"


def _one_line_error(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_train_schema_is_checked_up_front(tiny_stb, tmp_path, capsys):
    out = tmp_path / "never"
    assert _train(tiny_stb, out, "--schema", "nosuch") == 2
    line = _one_line_error(capsys)
    assert "--schema" in line and "'nosuch'" in line and "hand21" in line
    assert _train(tiny_stb, out, "--schema", "rhd", "--center-joint", "12") == 2
    line = _one_line_error(capsys)
    assert "--schema" in line and "--center-joint" in line
    assert _train(tiny_stb, out, "--schema", "coco17") == 2  # 17 joints for 21-joint data
    assert "17 joints" in _one_line_error(capsys)
    assert _train(tiny_stb, out, "--center-joint", "21") == 2
    assert "--center-joint 21 is out of range" in _one_line_error(capsys)
    assert not out.exists() or not any(out.iterdir())


def test_train_crops_hand21_data_on_its_middle_mcp(tmp_path, monkeypatch):
    from keypoint_corrupt.cli.data import training_data
    from keypoint_corrupt.models import CropDataset, load
    from keypoint_corrupt.models import training as training_module

    items, val, _, schema = training_data(str(FREIHAND), None, "S-train")
    assert schema.name == "hand21" and val is None and len(items) == 8
    built = []

    class Recording(CropDataset):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            built.append(self)

    monkeypatch.setattr(training_module, "CropDataset", Recording)
    out = tmp_path / "frei"
    argv = ["train", "--model", "posenet-depthwise", "--data", str(FREIHAND), "--out", str(out),
            "--epochs", "1", "--batch-size", "4", "--crop-size", "32", "--device", "cpu",
            "--quiet"]  # fmt: skip
    assert main(argv) == 0
    (crops,) = built
    assert crops.schema.name == "hand21" and crops.center_joint is None
    crops.augment = False
    for i in range(len(items)):  # the middle MCP (hand21 joint 9), not the fingertip (joint 12)
        np.testing.assert_array_equal(crops[i]["center"], items[i]["keypoints"][9])
    header = load(out / "model.pt").checkpoint_header
    assert (header["schema"], header["center_joint"]) == ("hand21", None)
    history = json.loads((out / "history.json").read_text())
    assert (history["schema"], history["center_joint"]) == ("hand21", None)

    # --center-joint still wins (an index, recorded as such); --schema names the order explicitly
    built.clear()
    assert main([*argv[:6], str(tmp_path / "index"), *argv[7:], "--center-joint", "12"]) == 0
    assert (built[0].center_joint, built[0].schema) == (12, None)
    built.clear()
    assert main([*argv[:6], str(tmp_path / "named"), *argv[7:], "--schema", "rhd"]) == 0
    assert (built[0].center_joint, built[0].schema.name) == (None, "rhd")
