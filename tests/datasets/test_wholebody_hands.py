"""WholeBodyHands: the hands of the COCO-WholeBody fixture as a 21-joint (hand21) dataset."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from keypoint_corrupt.benchmark import evaluate
from keypoint_corrupt.datasets import (
    WHOLEBODY_HAND_JOINTS,
    CocoKeypoints,
    CorruptedDataset,
    WholeBodyHands,
    load_image,
)
from keypoint_corrupt.schema import canonical_joint_names, get_schema, remap

WB = Path(__file__).resolve().parents[1] / "data" / "body" / "coco" / "test_coco_wholebody.json"
DOC = json.loads(WB.read_text())
FILE_NAMES = {im["id"]: im["file_name"] for im in DOC["images"]}


def _file_hands(hands=("left", "right")):
    """The valid hands, straight from the JSON: id -> (21, 3) x, y, v in the file's order."""
    out = {}
    for ann in DOC["annotations"]:
        for hand in hands:
            points = np.asarray(ann[f"{hand}hand_kpts"], float).reshape(21, 3)
            if ann[f"{hand}hand_valid"] and (points[:, 2] > 0).any():
                out[f"{FILE_NAMES[ann['image_id']]}#{ann['id']}:{hand}"] = points
    return out


@pytest.fixture(scope="module")
def hands():
    return WholeBodyHands(WB)


def test_wholebody_hand_order_is_hand21_by_name():
    # The file's hand points (MMPose's names, side dropped) are hand21's joints, in its order.
    assert canonical_joint_names(WHOLEBODY_HAND_JOINTS) == get_schema("hand21").joints
    assert WHOLEBODY_HAND_JOINTS[:6] == ("hand_root", "thumb1", "thumb2", "thumb3", "thumb4", "forefinger1")


def test_counts_of_valid_hands_match_the_file(hands):
    expected = _file_hands()
    # The fixture: 14 people, 5 valid left hands and 5 valid right hands, each with labelled points.
    left = sum(bool(a["lefthand_valid"]) for a in DOC["annotations"])
    right = sum(bool(a["righthand_valid"]) for a in DOC["annotations"])
    assert len(hands) == len(expected) == left + right == 10
    assert len(WholeBodyHands(WB, hands=["left"])) == left == 5
    assert len(WholeBodyHands(WB, hands=("right",))) == right == 5


def test_keypoints_and_visibility_equal_the_file(hands):
    expected = _file_hands()
    assert hands.ids == list(expected)  # file order, left before right
    for sample in hands:
        points = expected[sample.id]
        np.testing.assert_array_equal(sample.keypoints, points[:, :2])
        np.testing.assert_array_equal(sample.visibility, points[:, 2] != 0)
        np.testing.assert_array_equal(sample.meta["v"], points[:, 2])
        ann = next(a for a in DOC["annotations"] if a["id"] == sample.meta["annotation_id"])
        assert sample.meta["bbox"] == tuple(ann[f"{sample.meta['hand']}hand_box"])
        assert sample.meta["person_bbox"] == tuple(ann["bbox"])
        assert sample.image_path == WB.parent / FILE_NAMES[ann["image_id"]]
        assert sample.image_path.is_file()
        # the hand's box is its own: it holds the mean of the labelled points (the boxes are
        # loose, some points lie a few pixels outside)
        x, y, w, h = sample.meta["bbox"]
        cx, cy = sample.keypoints[sample.visibility].mean(axis=0)
        assert x <= cx <= x + w and y <= cy <= y + h, sample.id


def test_schema_is_hand21_and_ids_are_unique_and_stable(hands):
    assert hands.schema is get_schema("hand21")
    assert hands.joint_names == hands[0].meta["joint_names"] == get_schema("hand21").joints
    assert len(set(hands.ids)) == len(hands)
    again = WholeBodyHands(str(WB), hands=("left", "right"))
    assert again.ids == hands.ids
    assert WholeBodyHands(WB, hands=("right", "left")).ids != hands.ids  # person by person, in that order
    assert sorted(WholeBodyHands(WB, hands=("right", "left")).ids) == sorted(hands.ids)
    assert hands[0].id == "000000000785.jpg#442619:right"


def test_a_same_order_coco_read_agrees(hands):
    # The older route (one hand field, schema forced) gives the same points for the valid hands.
    left = {s.id: s for s in CocoKeypoints(WB, keypoint_field="lefthand_kpts", schema="hand21")}
    for sample in WholeBodyHands(WB, hands=["left"]):
        np.testing.assert_array_equal(sample.keypoints, left[sample.id.removesuffix(":left")].keypoints)


def test_another_schema_reorders_by_name(hands):
    rhd = WholeBodyHands(WB, schema="rhd")
    assert rhd.schema.name == "rhd" and rhd.ids == hands.ids
    for a, b in zip(rhd, hands, strict=True):
        np.testing.assert_array_equal(a.keypoints, remap(b.keypoints, "hand21", "rhd"))
        thumb_tip = rhd.schema.index("thumb_tip")
        np.testing.assert_array_equal(a.keypoints[thumb_tip], b.keypoints[4])  # hand21: thumb tip is 4
    with pytest.raises(ValueError, match="has no joint"):
        WholeBodyHands(WB, schema="coco17")


def _write(tmp_path, **hand_fields):
    left = [5.0 + i for i in range(21) for _ in range(3)]
    ann = {"id": 3, "image_id": 1, "category_id": 1, "lefthand_kpts": left, "righthand_kpts": [0] * 63}
    ann.update(hand_fields)
    doc = {
        "images": [{"id": 1, "file_name": "a.jpg"}],
        "categories": [{"id": 1, "name": "person"}],
        "annotations": [ann],
    }
    path = tmp_path / "wb.json"
    path.write_text(json.dumps(doc))
    return path


def test_valid_flag_and_labelled_points_both_decide(tmp_path):
    # No flags: a hand with a labelled point counts; an all-zero one does not.
    assert WholeBodyHands(_write(tmp_path)).ids == ["a.jpg#3:left"]
    assert WholeBodyHands(_write(tmp_path, lefthand_valid=False)).ids == []
    # valid, but not one point labelled: skipped
    assert WholeBodyHands(_write(tmp_path, righthand_valid=True)).ids == ["a.jpg#3:left"]
    sample = WholeBodyHands(_write(tmp_path))[0]
    assert sample.meta["bbox"] is None and sample.meta["hand"] == "left"


def test_errors_name_the_argument_or_the_annotation(tmp_path):
    path = _write(tmp_path)
    for bad in ("left", [], ["left", "middle"]):
        with pytest.raises(ValueError, match="hands"):
            WholeBodyHands(path, hands=bad)
    with pytest.raises(ValueError, match="repeats"):
        WholeBodyHands(path, hands=["left", "left"])
    with pytest.raises(ValueError, match=r"annotation 3: 'righthand_kpts' has 60 values"):
        WholeBodyHands(_write(tmp_path, righthand_kpts=[0] * 60))
    path.write_text(path.read_text().replace('"righthand_kpts"', '"other"'))
    with pytest.raises(ValueError, match=r"wb\.json: annotation 3: missing field 'righthand_kpts'"):
        WholeBodyHands(path)
    assert WholeBodyHands(path, hands=["left"]).ids == ["a.jpg#3:left"]


def test_corrupted_dataset_over_the_hands(hands):
    ds = CorruptedDataset(hands, configs=("occlusion-20", "defocus-7"), fraction=0.5, seed=3)
    assert len(ds) == 2 * round(0.5 * len(hands))
    for i in range(len(ds)):
        item = ds[i]
        base = hands[item["base_index"]]
        assert item["id"] == base.id
        assert item["image"].shape == load_image(base).shape and item["image"].dtype == np.uint8
        np.testing.assert_allclose(item["keypoints"], base.keypoints, rtol=0, atol=1e-4)
        np.testing.assert_array_equal(item["visibility"], base.visibility)
        assert not np.array_equal(item["image"], load_image(base))  # corrupted


class _Truth:
    """Answers the ground truth, one image per call, in the order the benchmark asks."""

    def __init__(self, dataset, schema="hand21"):
        self.points = [remap(s.keypoints, "hand21", schema) for s in dataset]
        self.schema = schema
        self.calls = 0

    def __call__(self, images):
        out = []
        for _ in images:
            out.append(self.points[self.calls % len(self.points)])
            self.calls += 1
        return np.stack(out)


@pytest.mark.parametrize("schema", ["hand21", "rhd"])
def test_hand_benchmark_scores_the_truth_perfectly(hands, schema):
    res = evaluate(_Truth(hands, schema), hands, ["defocus-7"], fraction=1.0, batch_size=1, examples=0)
    assert list(res.rows) == ["standard", "defocus-7"]
    for row in res.rows.values():
        assert row.ids == hands.ids
        assert row.metrics.mean_epe == 0.0
        np.testing.assert_array_equal(row.keypoints, np.stack([s.keypoints for s in hands]))
    assert res.settings["schema"]["dataset"] == "hand21"


def test_a_wrong_predictor_is_not_scored_perfect(hands):
    truth = _Truth(hands)
    truth.points = [p + 3.0 for p in truth.points]
    res = evaluate(truth, hands, ["defocus-7"], fraction=1.0, batch_size=1, examples=0)
    assert res.rows["standard"].metrics.mean_epe == pytest.approx(3.0 * np.sqrt(2.0))
