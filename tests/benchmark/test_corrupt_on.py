"""``evaluate(..., corrupt_on=DEVICE)``: the torch kernels corrupt the stream, with the same numbers.

The reference is the NumPy path itself: the same predictor, whose output depends on every
pixel it is given, must return exactly the same predictions (so every figure of the report is
the same) when the images are corrupted in batches by :mod:`keypoint_corrupt.torch`.
"""

from __future__ import annotations

import numpy as np
import pytest

from keypoint_corrupt.benchmark import evaluate
from keypoint_corrupt.benchmark.sources import StreamSource
from keypoint_corrupt.registry import CONFIGS

pytest.importorskip("torch")


def pixel_predictor(images, crops):
    """Every joint at the crop centre, moved by the image's mean and its first row: any pixel counts."""
    stack = [np.asarray(im, np.float64) for im in images]
    shift = np.array([[im.mean(), im[0].mean()] for im in stack])
    return np.repeat(crops.center[:, None, :], 21, axis=1) + shift[:, None, :] / 10


def _predictions(result):
    return {name: (row.ids, row.predictions) for name, row in result.rows.items()}


def _assert_same(a, b):
    assert list(a.rows) == list(b.rows)
    for name in a.rows:
        assert a.rows[name].ids == b.rows[name].ids, name
        np.testing.assert_array_equal(a.rows[name].predictions, b.rows[name].predictions, err_msg=name)
        assert a.rows[name].metrics.to_dict() == b.rows[name].metrics.to_dict(), name


def test_the_eleven_configurations_give_the_numpy_paths_numbers(val):
    want = evaluate(pixel_predictor, val, CONFIGS, fraction=0.5, seed=3)
    got = evaluate(pixel_predictor, val, CONFIGS, fraction=0.5, seed=3, corrupt_on="cpu", batch_size=3)
    _assert_same(want, got)
    assert got.settings["corrupt_on"] == "cpu" and want.settings["corrupt_on"] is None


def test_the_device_path_is_taken_and_workers_only_decode(val, monkeypatch):
    calls = []
    original = StreamSource.item

    def counting(self, group, index):
        if self.groups[group][0] != "standard":
            calls.append((group, index))
        return original(self, group, index)

    monkeypatch.setattr(StreamSource, "item", counting)
    res = evaluate(pixel_predictor, val, ["occlusion-30"], fraction=1.0, corrupt_on="cpu", examples=0)
    assert calls == [] and len(res.rows["occlusion-30"].ids) == 8  # never the NumPy corruption


def test_workers_and_a_suite_on_whole_images_give_the_same_numbers(val):
    configs = ["imagenet-c.motion_blur-2", "imagenet-c.contrast-4", "posebench.mask-3"]
    want = evaluate(pixel_predictor, val, configs, fraction=1.0, whole_images=True)
    got = evaluate(
        pixel_predictor, val, configs, fraction=1.0, whole_images=True, corrupt_on="cpu", num_workers=2
    )
    _assert_same(want, got)


def test_bad_uses_are_named(val, tmp_path):
    with pytest.raises(ValueError, match=r"corrupt_on='nowhere' is not a torch device available here"):
        evaluate(pixel_predictor, val, ["motion-15"], corrupt_on="nowhere")
    with pytest.raises(ValueError, match=r"corrupt_on='cpu': .*posebench\.darkness-2"):
        evaluate(pixel_predictor, val, ["posebench.darkness-2"], corrupt_on="cpu")


def crop_predictor(crops):
    """COCO-17 joints spread over the crop, moved by its pixels; every joint scored by its mean."""
    kps, scores = [], []
    for c in crops:
        h, w = c.shape[:2]
        grid = np.stack([np.linspace(0.2, 0.8, 17) * w, np.linspace(0.1, 0.9, 17) * h], axis=1)
        kps.append(grid + c.mean(axis=(0, 1))[:2] / 25)
        scores.append(np.full(17, 0.3 + c[0].mean() / 510))
    return np.asarray(kps), np.asarray(scores)


def test_the_coco_protocol_gives_the_numpy_paths_results_on_multi_person_images(fixtures_dir):
    from keypoint_corrupt.benchmark import evaluate_topdown

    data = fixtures_dir / "body" / "coco" / "test_coco.json"
    configs = ["imagenet-c.contrast-3", "occlusion-20", "posebench.mask-4"]  # the last two target a person
    want = evaluate_topdown(crop_predictor, data, configs, fraction=1.0, seed=1)
    got = evaluate_topdown(crop_predictor, data, configs, fraction=1.0, seed=1, corrupt_on="cpu")
    for name in want.rows:
        assert got.rows[name].results == want.rows[name].results, name
        assert got.rows[name].metric.as_dict() == want.rows[name].metric.as_dict(), name
    assert got.settings["corrupt_on"] == "cpu"


def test_the_cli_flag_writes_the_same_report(tmp_path, capsys):
    from pathlib import Path

    from keypoint_corrupt.cli.main import main

    user = Path(__file__).with_name("bench_user_predict.py")
    common = [
        "benchmark",
        "--predict",
        f"{user}:predict",
        "--configs",
        "motion-30,occlusion-10,noise-saltpepper",
    ]
    common += ["--fraction", "0.5", "--no-progress"]
    assert main([*common, "--out", str(tmp_path / "numpy")]) == 0
    assert main([*common, "--corrupt-on", "cpu", "--out", str(tmp_path / "torch")]) == 0
    assert (tmp_path / "numpy" / "report.csv").read_bytes() == (
        tmp_path / "torch" / "report.csv"
    ).read_bytes()
    assert main(["benchmark", "--speed", "--corrupt-on", "cpu"]) == 2
    assert "--corrupt-on apply to the accuracy benchmark" in capsys.readouterr().err


def test_protocols_corrupt_a_row_in_device_batches_and_each_image_once(fixtures_dir, monkeypatch):
    from keypoint_corrupt.benchmark import evaluate_topdown
    from keypoint_corrupt.benchmark.device_corrupt import DeviceCorruptor

    calls, units = [], []
    run = DeviceCorruptor._run

    def spy_call(self, deferred):
        calls.append(len(deferred))
        return call(self, deferred)

    def spy_run(self, config, items):
        units.extend((config, d["unit"].id) for d in items)
        return run(self, config, items)

    call = DeviceCorruptor.__call__
    monkeypatch.setattr(DeviceCorruptor, "__call__", spy_call)
    monkeypatch.setattr(DeviceCorruptor, "_run", spy_run)
    data = fixtures_dir / "body" / "coco" / "test_coco.json"
    evaluate_topdown(crop_predictor, data, ["imagenet-c.contrast-3"], corrupt_on="cpu", standard=False)
    assert calls == [4]  # the row's four images in one device call
    assert sorted(units) == sorted(set(units)) and len(units) == 4  # each image corrupted once


def test_hand_protocol_corrupts_an_image_of_several_people_once(fixtures_dir, monkeypatch):
    from keypoint_corrupt.benchmark.device_corrupt import DeviceCorruptor
    from keypoint_corrupt.datasets import CocoKeypoints

    units = []
    run = DeviceCorruptor._run

    def spy_run(self, config, items):
        units.extend(d["unit"].id for d in items)
        return run(self, config, items)

    monkeypatch.setattr(DeviceCorruptor, "_run", spy_run)
    coco = CocoKeypoints(fixtures_dir / "body" / "coco" / "test_coco.json")

    def predict(images, crops):
        return np.repeat(crops.center[:, None, :], 17, axis=1)

    res = evaluate(
        predict, coco, ["occlusion-20"], fraction=1.0, whole_images=True, corrupt_on="cpu", batch_size=32
    )
    assert len(res.rows["occlusion-20"].ids) == 14 and sorted(units) == sorted(set(units)) and len(units) == 4


def test_without_torch_the_error_names_the_option_and_the_extra(val, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ValueError, match=r"corrupt_on='cpu' needs PyTorch.*keypoint-corrupt\[models\]"):
        evaluate(pixel_predictor, val, ["motion-15"], corrupt_on="cpu")
