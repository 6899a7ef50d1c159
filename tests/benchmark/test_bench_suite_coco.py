"""Streaming a suite on COCO scores exactly what ``materialize --suite`` writes (whole images).

COCO-C corrupts each image once, with every person on it; ``benchmark --suite`` streaming a
COCO file must give, cell by cell, the predictions and metrics of the same command on the
materialised output. The fixture has 4 images with 1, 3, 5 and 5 people (14 annotations).
"""

from __future__ import annotations

import json
from pathlib import Path

import bench_user_predict as user
import numpy as np
import pytest

from keypoint_corrupt.benchmark import evaluate, suite_section
from keypoint_corrupt.cli.main import main
from keypoint_corrupt.datasets import CocoKeypoints
from keypoint_corrupt.registry import register_config, unregister_config
from keypoint_corrupt.suites import get_suite, register_suite, unregister_suite
from keypoint_corrupt.transforms import ImageNetC

mat = pytest.importorskip("keypoint_corrupt.materialize")

COCO = Path(__file__).resolve().parents[1] / "data" / "body" / "coco" / "test_coco.json"
USER_FILE = Path(user.__file__)
SUITE = "kc-test-coco-suite"
ELASTIC = "kc-test-elastic-moving"  # moves the keypoints with the content: the files record where


@pytest.fixture(scope="module")
def suite():
    register_config(
        ELASTIC, ImageNetC, {"corruption": "elastic_transform", "severity": 2, "move_keypoints": True}
    )
    register_suite(
        SUITE,
        {
            "gaussian_noise": ["imagenet-c.gaussian_noise-3"],  # noise: keyed by the image's id
            "mask": ["posebench.mask-2", "posebench.mask-5"],  # keypoint-aware: every person's joints
            "elastic": [ELASTIC],
        },
    )
    yield get_suite(SUITE)
    unregister_suite(SUITE)
    unregister_config(ELASTIC)


@pytest.fixture(scope="module")
def base():
    return CocoKeypoints(COCO)


def _materialize(out, **options):
    spec = mat.DatasetSpec("coco", annotations=(("val", COCO),))
    result = mat.materialize(mat.MaterializeOptions(out, spec, splits=("val",), **options))
    assert result.complete
    return out


def assert_same_rows(a, b):
    assert list(a.rows) == list(b.rows)
    for name in a.rows:
        ra, rb = a.rows[name], b.rows[name]
        assert ra.ids == rb.ids, name
        np.testing.assert_array_equal(ra.keypoints, rb.keypoints, err_msg=name)
        np.testing.assert_array_equal(ra.visibility, rb.visibility, err_msg=name)
        np.testing.assert_array_equal(ra.predictions, rb.predictions, err_msg=name)
        assert ra.metrics.summary() == rb.metrics.summary(), name


def _image(sample_id):
    return sample_id.rsplit("#", 1)[0]


def test_cli_suite_streamed_on_coco_equals_the_materialized_output(suite, tmp_path):
    out = tmp_path / "coco-c"
    argv = ["materialize", "--dataset", "coco", "--annotations", f"val={COCO}", "--suite", SUITE]
    assert main([*argv, "--out", str(out), "--workers", "1", "--quiet"]) == 0
    docs = {}
    for name, data in (("stream", COCO), ("mat", out)):
        cmd = ["benchmark", "--predict", f"{USER_FILE}:predict_body", "--suite", SUITE, "--data", str(data)]
        assert main([*cmd, "--out", str(tmp_path / name), "--no-plots", "--no-progress"]) == 0
        docs[name] = json.loads((tmp_path / name / "report.json").read_text())
    stream, read = docs["stream"], docs["mat"]
    assert stream["source"]["source"] == "stream" and read["source"]["source"] == "materialized"
    # every cell (and the clean row): the same annotations, predictions, metrics, mPC and rPC
    assert stream["suite"] == read["suite"]
    assert stream["rows"] == read["rows"]
    assert stream["suite"]["data"]["clean"]["annotations"] == 14
    assert {e["annotations"] for e in stream["suite"]["data"]["cells"].values()} == {14}
    arrays = [np.load(tmp_path / name / "predictions.npz") for name in ("stream", "mat")]
    for row in stream["rows"]:
        for key in (f"{row['name']}/{k}" for k in ("ids", "predictions", "keypoints", "visibility")):
            np.testing.assert_array_equal(arrays[0][key], arrays[1][key], err_msg=key)


def test_suite_subsets_draw_images_and_match_materialize(suite, base, tmp_path):
    out = _materialize(tmp_path / "half", suite=SUITE, fraction=0.5)
    configs = suite.configs()
    read = evaluate(user.predict_body, out, configs, examples=0)
    streamed = evaluate(user.predict_body, base, configs, fraction=0.5, examples=0, whole_images=True)
    assert streamed.source["whole_images"] is True
    assert_same_rows(streamed, read)
    # batches of 3 cut through the 5 people of an image; workers rebuild the items alone
    again = evaluate(
        user.predict_body, base, configs, 0.5, batch_size=3, num_workers=2, examples=0, whole_images=True
    )
    assert_same_rows(again, read)
    assert suite_section(suite, streamed.rows) == suite_section(suite, read.rows)
    people = {}
    for s in base:
        people.setdefault(_image(s.id), []).append(s.id)
    for name in configs:
        ids = streamed.rows[name].ids
        images = sorted({_image(i) for i in ids})
        assert len(images) == 2, name  # half of the 4 images, each with every person on it
        assert sorted(ids) == sorted(i for im in images for i in people[im]), name


def test_a_moving_corruption_scores_the_moved_keypoints(suite, base, tmp_path):
    out = _materialize(tmp_path / "elastic", suite=SUITE, severities=(1,))
    streamed = evaluate(user.predict_body, base, [ELASTIC], fraction=1.0, examples=0, whole_images=True)
    assert_same_rows(streamed, evaluate(user.predict_body, out, [ELASTIC], examples=0))
    row = streamed.rows[ELASTIC]
    clean = {s.id: s for s in base}
    for i, kp in zip(row.ids, row.keypoints, strict=True):
        labelled = clean[i].visibility
        if labelled.any():  # its labels followed the warp (the content moves by several pixels)
            assert not np.array_equal(kp[labelled], clean[i].keypoints[labelled]), i
    assert sum(clean[i].visibility.any() for i in row.ids) == 12


def test_per_annotation_stream_equals_materialize_without_a_suite(base, tmp_path):
    # the clean row included: both centre the crops on the annotation files' schema (coco17)
    out = _materialize(tmp_path / "plain", configs=("noise-gaussian",), fraction=1.0)
    read = evaluate(user.predict_body, out, None, examples=0)
    assert list(read.rows) == ["standard", "noise-gaussian"]
    assert_same_rows(evaluate(user.predict_body, base, ["noise-gaussian"], fraction=1.0, examples=0), read)
