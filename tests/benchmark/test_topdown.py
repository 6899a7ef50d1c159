"""Top-down evaluation with COCO's OKS AP (keypoint_corrupt.benchmark.topdown) on the real COCO fixture.

The references are independent of the module: the crop geometry is derived here from MMPose's
definition (box clipped to the image, centre, padding 1.25, the input's aspect ratio), and the
expected AP comes from pycocotools' COCOeval called directly on results built here. The fixture has
4 val2017 images with 14 people, 12 of them with a labelled keypoint (2 have none).
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from keypoint_corrupt.benchmark import PredictError
from keypoint_corrupt.benchmark.topdown import (
    DEFAULT_INPUT_SIZE,
    box_center_size,
    crop_instance,
    crop_to_image,
    evaluate_topdown,
    ground_truth_boxes,
    instance_score,
    load_detections,
)
from keypoint_corrupt.datasets import CocoIndex, CocoKeypoints
from keypoint_corrupt.schema import KeypointSchema, get_schema

DATA = Path(__file__).resolve().parents[1] / "data" / "body" / "coco"
COCO_FILE = DATA / "test_coco.json"
DETECTIONS = DATA / "test_coco_det_AP_H_56.json"
DOC = json.loads(COCO_FILE.read_text())
IMAGES = {im["id"]: im for im in DOC["images"]}
STATS = ("ap", "ap50", "ap75", "ap_m", "ap_l", "ar", "ar50", "ar75", "ar_m", "ar_l")


# --- independent references ------------------------------------------------------------------


def crop_frame(bbox, image=None, input_size=DEFAULT_INPUT_SIZE):
    """(centre (x, y), scale s): crop pixel = (p - centre) * s + input / 2."""
    x, y, w, h = (float(v) for v in bbox)
    if image is not None:
        x1, y1 = np.clip(x, 0, image["width"] - 1), np.clip(y, 0, image["height"] - 1)
        x2, y2 = np.clip(x + w, 0, image["width"] - 1), np.clip(y + h, 0, image["height"] - 1)
        x, y, w, h = x1, y1, x2 - x1, y2 - y1
    centre = np.array([x + w / 2, y + h / 2])
    pw, ph = 1.25 * w, 1.25 * h
    ratio = input_size[0] / input_size[1]
    pw = max(pw, ph * ratio)
    return centre, input_size[0] / pw


def to_crop(points, centre, s, input_size=DEFAULT_INPUT_SIZE):
    return (np.asarray(points, float) - centre) * s + np.array(input_size) / 2


def to_image(points, centre, s, input_size=DEFAULT_INPUT_SIZE):
    return (np.asarray(points, float) - np.array(input_size) / 2) / s + centre


def gt_instances():
    """The persons the protocol crops, in its order: images by first appearance, annotations in file order."""
    order = list(dict.fromkeys(a["image_id"] for a in DOC["annotations"]))
    out = []
    for image_id in order:
        for ann in DOC["annotations"]:
            if ann["image_id"] != image_id or ann.get("iscrowd") or ann["num_keypoints"] == 0:
                continue
            kp = np.asarray(ann["keypoints"], float).reshape(17, 3)
            out.append((ann, kp[:, :2], kp[:, 2] > 0))
    return out


def pycocotools_stats(results, image_ids=None):
    """The ten figures of pycocotools' COCOeval called directly (-1 -> NaN)."""
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(COCO_FILE))
        dt = gt.loadRes(results) if results else COCO()
        ev = COCOeval(gt, dt, iouType="keypoints")
        if image_ids is not None:
            ev.params.imgIds = sorted(image_ids)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {k: (np.nan if v == -1 else float(v)) for k, v in zip(STATS, ev.stats, strict=True)}


def figures(metric):
    return {k: getattr(metric, k) for k in STATS}


def assert_same(mine, reference):
    for k in STATS:
        assert mine[k] == pytest.approx(reference[k], abs=1e-12, nan_ok=True), k


class Oracle:
    """Answers from a queue, in the protocol's order; records the crops it is given."""

    def __init__(self, answers, schema="coco17", input_size=None):
        self.answers = list(answers)
        self.schema = schema
        if input_size is not None:
            self.input_size = input_size
        self.crops = []

    def __call__(self, crops):
        self.crops.extend(crops)
        mine, self.answers = self.answers[: len(crops)], self.answers[len(crops) :]
        return np.stack([a for a, _ in mine]), np.stack([s for _, s in mine])


def gt_answers(perturb=None, scores=None, input_size=DEFAULT_INPUT_SIZE):
    """Each person's ground truth in its crop (NaN at unlabelled joints), optionally moved in crop pixels."""
    out = []
    for n, (ann, kp, labelled) in enumerate(gt_instances()):
        centre, s = crop_frame(ann["bbox"], IMAGES[ann["image_id"]], input_size)
        crop_kp = to_crop(kp, centre, s, input_size)
        crop_kp[~labelled] = np.nan
        if perturb is not None:
            crop_kp = crop_kp + perturb[n]
        out.append((crop_kp, np.ones(17) if scores is None else scores[n]))
    return out


@pytest.fixture(scope="module")
def coco():
    return CocoKeypoints(COCO_FILE)


# --- geometry ---------------------------------------------------------------------------------


def test_box_center_size_pads_and_takes_the_inputs_aspect_ratio():
    c, size = box_center_size([10.0, 20.0, 30.0, 80.0], (192, 256))
    assert c.tolist() == [25.0, 60.0] and size.tolist() == [75.0, 100.0]  # tall: widened to 3:4
    c, size = box_center_size([0.0, 0.0, 100.0, 40.0], (192, 256))
    assert c.tolist() == [50.0, 20.0] and size == pytest.approx([125.0, 125.0 * 256 / 192])  # wide
    c, size = box_center_size([0.0, 0.0, 100.0, 40.0], (100, 100), padding=1.0)
    assert size.tolist() == [100.0, 100.0]


@settings(max_examples=200, deadline=None)
@given(
    box=st.tuples(*[st.floats(-500, 500)] * 2, *[st.floats(0.5, 800)] * 2),
    size=st.tuples(st.integers(8, 512), st.integers(8, 512)),
    point=st.tuples(st.floats(-1000, 1000), st.floats(-1000, 1000)),
)
def test_the_crop_region_holds_the_padded_box_at_the_inputs_aspect_ratio(box, size, point):
    centre, region = box_center_size(box, size)
    assert region[0] / region[1] == pytest.approx(size[0] / size[1], rel=1e-9)
    assert region[0] >= 1.25 * box[2] * (1 - 1e-12) and region[1] >= 1.25 * box[3] * (1 - 1e-12)
    assert min(region[0] / (1.25 * box[2]), region[1] / (1.25 * box[3])) == pytest.approx(
        1.0
    )  # one side fits
    ref_centre, s = crop_frame(box, None, size)
    assert centre == pytest.approx(ref_centre) and size[0] / region[0] == pytest.approx(s)
    q = to_crop(point, ref_centre, s, size)
    assert crop_to_image(q, centre, region, size) == pytest.approx(point, abs=1e-6)


def test_the_crop_shows_the_box_region_and_maps_back_exactly():
    image = np.zeros((300, 400, 3), np.uint8)
    point = np.array([250.0, 120.0])
    image[120, 250] = (255, 80, 10)
    bbox = [200.0, 60.0, 90.0, 150.0]
    centre, size = box_center_size(bbox)
    crop = crop_instance(image, centre, size)
    assert crop.shape == (256, 192, 3) and crop.dtype == np.uint8
    ref_centre, s = crop_frame(bbox)
    q = to_crop(point, ref_centre, s)
    peak = np.unravel_index(crop[..., 0].astype(float).argmax(), crop.shape[:2])
    assert np.hypot(peak[1] - q[0], peak[0] - q[1]) < 1.0  # the marked pixel lands where MMPose puts it
    assert crop_to_image(q, centre, size) == pytest.approx(point)
    far = crop_instance(image + 200, np.array([-500.0, -500.0]), size)  # outside the image: black
    assert far.shape == (256, 192, 3) and not far.any()


def test_instance_score_is_mmposes_rescoring():
    assert instance_score(0.8, np.array([0.9, 0.5, 0.1, 0.2])) == pytest.approx(0.8 * 0.7)  # > 0.2 only
    assert instance_score(1.0, np.array([0.1, np.nan])) == 0.0


# --- boxes ------------------------------------------------------------------------------------


def test_ground_truth_boxes_follow_mmposes_filter(coco):
    boxes, skipped = ground_truth_boxes(coco.coco_index)
    assert sum(len(v) for v in boxes.values()) == 12
    assert skipped == {"crowd": 0, "no_labelled_keypoint": 2, "empty_box": 0, "no_bbox": 0}
    # the box of the person at the image's left edge starts at x = 0.5: unchanged; clipping is tested here:
    index = CocoIndex(
        {
            "images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 50}],
            "categories": [{"id": 1, "name": "person", "keypoints": ["nose"]}],
            "annotations": [
                {"id": 1, "image_id": 1, "category_id": 1, "bbox": [-10, 5, 50, 100], "keypoints": [5, 9, 2]},
                {"id": 2, "image_id": 1, "category_id": 1, "bbox": [0, 0, 9, 9], "keypoints": [1, 1, 2],
                 "iscrowd": 1},
                {"id": 3, "image_id": 1, "category_id": 1, "bbox": [120, 5, 9, 9], "keypoints": [1, 1, 2]},
            ],
        },
        "a.json",
    )  # fmt: skip
    boxes, skipped = ground_truth_boxes(index)
    assert [b.bbox for b in boxes[1]] == [(0.0, 5.0, 40.0, 44.0)]
    assert skipped["crowd"] == 1 and skipped["empty_box"] == 1


def test_detections_are_read_per_image_with_their_scores(coco):
    boxes, counts = load_detections(DETECTIONS, coco.coco_index)
    raw = json.loads(DETECTIONS.read_text())
    assert counts == {"read": 118, "used": 118, "other_category": 0, "empty_box": 0}
    assert {k: len(v) for k, v in boxes.items()} == {i: sum(d["image_id"] == i for d in raw) for i in IMAGES}
    first = boxes[785][0]
    assert (
        first.score == raw[0]["score"] and first.bbox == tuple(raw[0]["bbox"]) and first.annotation_id is None
    )


@pytest.mark.parametrize(
    ("detections", "message"),
    [
        ({"image_id": 1}, "expected a COCO results list"),
        ([{"image_id": 785, "bbox": [0, 0, 1, 1], "score": 1}], "detection 0 has no category_id"),
        ([{"image_id": 9, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 1}], "image_id 9, not in"),
        ([{"image_id": 785, "category_id": 1, "bbox": [0, 0, 1], "score": 1}], "detection 0: bbox must be 4"),
        ([{"image_id": 785, "category_id": 1, "bbox": [0, 0, 1, 1], "score": "x"}], "detection 0: bbox"),
    ],
)
def test_malformed_detections_are_named(coco, detections, message):
    with pytest.raises(ValueError, match=message):
        load_detections(detections, coco.coco_index)


# --- AP ---------------------------------------------------------------------------------------


def test_ground_truth_keypoints_give_ap_1(coco):
    oracle = Oracle(gt_answers())
    res = evaluate_topdown(oracle, coco, configs=())
    row = res.rows["standard"]
    assert list(res.rows) == ["standard"] and not oracle.answers  # every person cropped once
    assert len(oracle.crops) == 12 and {c.shape for c in oracle.crops} == {(256, 192, 3)}
    assert (row.metric.ap, row.metric.ap50, row.metric.ap75, row.metric.ar) == (1.0, 1.0, 1.0, 1.0)
    assert row.metric.n_instances == 12 and row.metric.n_images == 4 and len(row.results) == 12
    assert row.joints_missed == sum(int((~lab).sum()) for _, _, lab in gt_instances())  # unlabelled: NaN
    assert res.protocol["input_size"] == [192, 256] and res.protocol["input_size_from"] == "default"
    assert res.protocol["boxes"]["source"] == "ground truth" and res.protocol["schema"]["dataset"] == "coco17"
    assert res.protocol["sigmas"] == pytest.approx(get_schema("coco17").sigmas)


def test_a_known_perturbation_gives_what_pycocotools_gives(coco):
    rng = np.random.default_rng(7)
    offsets = rng.normal(0.0, 6.0, (12, 17, 2))
    scores = rng.uniform(0.0, 1.0, (12, 17))
    res = evaluate_topdown(Oracle(gt_answers(offsets, scores)), coco, configs=(), batch_size=5)
    expected = []
    for n, (ann, kp, labelled) in enumerate(gt_instances()):
        _, s = crop_frame(ann["bbox"], IMAGES[ann["image_id"]])
        moved = kp + offsets[n] / s  # an offset in crop pixels is offset / s image pixels
        sc = np.where(labelled, scores[n], 0.0)  # unlabelled joints were NaN: misses, score 0
        moved[~labelled] = kp[labelled][0]  # any finite place: pycocotools ignores unlabelled joints
        score = sc[sc > 0.2].mean()
        expected.append({"image_id": ann["image_id"], "category_id": 1, "score": float(score),
                         "keypoints": np.column_stack([moved, sc]).ravel().tolist()})  # fmt: skip
    metric = res.rows["standard"].metric
    reference = pycocotools_stats(expected)
    assert 0.2 < reference["ap"] < 0.95  # a real test: neither perfect nor lost
    assert_same(figures(metric), reference)


def test_misses_cost_what_a_very_wrong_answer_costs(coco):
    answers = gt_answers()
    rng = np.random.default_rng(3)
    missed = {}
    for n in (0, 3, 4, 8):  # a few labelled joints of four people: not found
        labelled = np.flatnonzero(gt_instances()[n][2])
        missed[n] = rng.choice(labelled, 4, replace=False)
        answers[n][0][missed[n]] = np.nan
    answers[6] = (np.full((17, 2), np.nan), np.ones(17))  # a whole person not found
    res = evaluate_topdown(Oracle(answers), coco, configs=())
    row = res.rows["standard"]
    assert row.instances_missed == 1 and len(row.results) == 11
    for result in row.results:  # NaN joints stay NaN with score 0 in the results
        kp = np.asarray(result["keypoints"]).reshape(17, 3)
        assert (kp[np.isnan(kp[:, 0]), 2] == 0).all()
    # the reference: the same results with each missed joint 10,000 px away (an OKS term of 0)
    expected = []
    for n, (ann, kp, labelled) in enumerate(gt_instances()):
        if n == 6:
            continue
        points = kp.copy()
        sc = labelled.astype(float)
        if n in missed:
            points[missed[n]] += [1e4, 0.0]
            sc[missed[n]] = 0.0
        points[~labelled] = kp[labelled][0]
        expected.append({"image_id": ann["image_id"], "category_id": 1, "score": float(sc[sc > 0.2].mean()),
                         "keypoints": np.column_stack([points, sc]).ravel().tolist()})  # fmt: skip
    reference = pycocotools_stats(expected)
    mine = figures(row.metric)
    # every figure over all areas; APM / APL also depend on the result's extent, which the far joint
    # would stretch (body_metrics boxes a result by the joints found)
    for k in ("ap", "ap50", "ap75", "ar", "ar50", "ar75"):
        assert mine[k] == pytest.approx(reference[k], abs=1e-12), k
    # 11 of 12 people found; the four with missed joints fall below the high OKS thresholds only
    assert reference["ar50"] == pytest.approx(11 / 12) and reference["ar"] < 11 / 12


def test_a_row_where_nobody_is_found_scores_zero_without_crashing(coco):
    nobody = [(np.full((17, 2), np.nan), np.zeros(17)) for _ in gt_answers()]
    row = evaluate_topdown(Oracle(nobody), coco, configs=()).rows["standard"]
    assert len(row.results) == 0 and row.instances_missed == len(nobody)
    assert row.metric.ap == 0.0 and row.metric.ar == 0.0


def _iou(a, b):
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    w = max(0.0, min(ax2, bx2) - max(a[0], b[0]))
    h = max(0.0, min(ay2, by2) - max(a[1], b[1]))
    return w * h / (a[2] * a[3] + b[2] * b[3] - w * h)


def test_detections_give_what_pycocotools_gives(coco):
    # Per detection box (images in order, boxes in file order): the keypoints of the person it overlaps
    # best (IoU >= 0.5) placed in its crop, else a fixed pose: a perfect pose model behind a real detector.
    detections = json.loads(DETECTIONS.read_text())
    people = gt_instances()
    template = np.nanmean(np.stack([a for a, _ in gt_answers()]), axis=0)
    scores = np.linspace(0.05, 0.95, 17)
    order = list(dict.fromkeys(a["image_id"] for a in DOC["annotations"]))
    answers, expected = [], []
    for det in sorted(detections, key=lambda d: order.index(d["image_id"])):  # stable: file order per image
        centre, s = crop_frame(det["bbox"])  # detections are not clipped
        ious = [
            _iou(det["bbox"], ann["bbox"]) if ann["image_id"] == det["image_id"] else 0 for ann, *_ in people
        ]
        best = int(np.argmax(ious))
        crop_kp = to_crop(people[best][1], centre, s) if ious[best] >= 0.5 else template
        answers.append((crop_kp, scores))
        flat = np.column_stack([to_image(crop_kp, centre, s), scores]).ravel().tolist()
        score = float(det["score"] * scores[scores > 0.2].mean())
        expected.append({"image_id": det["image_id"], "category_id": 1, "score": score, "keypoints": flat})
    res = evaluate_topdown(Oracle(answers), coco, configs=(), detections=DETECTIONS, batch_size=7)
    row = res.rows["standard"]
    reference = pycocotools_stats(expected)
    assert len(row.results) == row.boxes == 118
    assert 0.5 < reference["ap"] < 1.0  # duplicated detections (no OKS-NMS) and misplaced boxes cost
    assert_same(figures(row.metric), reference)
    assert res.protocol["boxes"]["source"] == "detections" and res.protocol["boxes"]["counts"]["used"] == 118


def test_animals_keep_their_species_and_their_own_keypoints_give_ap_1():
    file = DATA.parents[1] / "animal" / "ap10k" / "test_ap10k.json"
    doc = json.loads(file.read_text())
    images = {im["id"]: im for im in doc["images"]}
    answers = []
    for ann in doc["annotations"]:  # one animal per image, two species
        kp = np.asarray(ann["keypoints"], float).reshape(17, 3)
        centre, s = crop_frame(ann["bbox"], images[ann["image_id"]])
        crop = to_crop(kp[:, :2], centre, s)
        crop[kp[:, 2] == 0] = np.nan
        answers.append((crop, np.ones(17)))
    res = evaluate_topdown(Oracle(answers, schema="ap10k"), file, configs=())
    row = res.rows["standard"]
    assert row.metric.ap == pytest.approx(1.0, abs=1e-12) and row.metric.n_instances == 2  # mean of 2 species
    assert [r["category_id"] for r in row.results] == [a["category_id"] for a in doc["annotations"]]
    assert len({a["category_id"] for a in doc["annotations"]}) == 2
    assert res.protocol["schema"]["dataset"] == "ap10k"
    assert res.protocol["sigmas"] == pytest.approx(get_schema("ap10k").sigmas)


def test_the_predictors_schema_is_remapped_by_joint_name(coco):
    coco17 = get_schema("coco17")
    order = np.random.default_rng(5).permutation(17)
    shuffled = KeypointSchema("coco17-shuffled", tuple(coco17.joints[i] for i in order))
    answers = [(kp[order], sc[order]) for kp, sc in gt_answers()]
    res = evaluate_topdown(Oracle(answers, schema=shuffled), coco, configs=())
    assert res.rows["standard"].metric.ap == 1.0
    assert res.protocol["schema"] == {"dataset": "coco17", "predict": "coco17-shuffled", "reordered": True}


def test_a_schema_without_the_datasets_joints_is_refused_before_predict(coco):
    calls = []

    def predict(crops):
        calls.append(crops)
        return np.zeros((len(crops), 21, 2)), np.ones((len(crops), 21))

    predict.schema = "hand21"
    with pytest.raises(ValueError, match=r"predict declares schema 'hand21'.*'coco17'"):
        evaluate_topdown(predict, coco, configs=())
    assert not calls


def test_the_declared_input_size_sets_the_crop(coco):
    oracle = Oracle(gt_answers(input_size=(128, 128)), input_size=(128, 128))
    res = evaluate_topdown(oracle, coco, configs=())
    assert {c.shape for c in oracle.crops} == {(128, 128, 3)}
    assert res.rows["standard"].metric.ap == 1.0
    assert res.protocol["input_size"] == [128, 128] and res.protocol["input_size_from"] == "predictor"


@pytest.mark.parametrize(
    ("output", "message"),
    [
        (lambda n: (np.zeros((n, 16, 2)), np.ones((n, 16))), r"expected \(\d+, 17, 2\)"),
        (lambda n: (np.full((n, 17, 2), np.inf), np.ones((n, 17))), "infinite keypoints"),
        (lambda n: (np.zeros((n, 17, 2)), np.full((n, 17), 3.0)), r"expected scores in \[0, 1\]"),
    ],
)
def test_wrong_answers_are_named(coco, output, message):
    with pytest.raises(ValueError, match=message):
        evaluate_topdown(lambda crops: output(len(crops)), coco, configs=())


def test_an_error_inside_predict_names_the_row_and_images(coco):
    def predict(crops):
        raise KeyError("joint")

    with pytest.raises(PredictError, match=r"predict raised KeyError.*configuration standard.*\.jpg"):
        evaluate_topdown(predict, coco, configs=())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, "batch_size must be a positive integer"),
        ({"input_size": (192,)}, r"input_size must be \(width, height\)"),
        ({"input_size": (0, 256)}, "input_size must be two positive integers"),
        ({"sigmas": [0.1] * 5}, "sigmas must be 17 positive numbers"),
        ({"configs": ("no-such-config",)}, "no-such-config"),
    ],
)
def test_argument_errors_are_named(coco, kwargs, message):
    with pytest.raises(ValueError, match=message):
        evaluate_topdown(Oracle(gt_answers()), coco, **{"configs": (), **kwargs})


# --- corrupted rows -----------------------------------------------------------------------------


def test_corrupted_rows_crop_the_image_materialize_writes(coco, tmp_path):
    from keypoint_corrupt.cli.main import main
    from keypoint_corrupt.datasets import load_image
    from keypoint_corrupt.suites import register_suite, unregister_suite

    suite = "kc-test-topdown-suite"
    register_suite(suite, {"gaussian_noise": ["imagenet-c.gaussian_noise-3"]})
    try:
        out = tmp_path / "coco-c"
        argv = ["materialize", "--dataset", "coco", "--annotations", f"val={COCO_FILE}", "--suite", suite]
        assert main([*argv, "--out", str(out), "--workers", "1", "--quiet"]) == 0
    finally:
        unregister_suite(suite)
    oracle = Oracle(gt_answers() * 2)
    res = evaluate_topdown(oracle, coco, configs=("imagenet-c.gaussian_noise-3",))
    assert list(res.rows) == ["standard", "imagenet-c.gaussian_noise-3"]
    noisy = res.rows["imagenet-c.gaussian_noise-3"]
    assert noisy.image_ids == res.rows["standard"].image_ids and len(noisy.results) == 12
    written = sorted((out / "val").rglob("*.png"))
    assert len(written) == 4
    for n, (ann, _, _) in enumerate(gt_instances()):
        name = Path(IMAGES[ann["image_id"]]["file_name"]).stem
        [png] = [p for p in written if p.stem == name]
        centre, size = box_center_size(_clipped(ann))
        expected = crop_instance(load_image(png), centre, size)
        np.testing.assert_array_equal(oracle.crops[12 + n], expected, err_msg=name)
        clean = crop_instance(load_image(DATA / IMAGES[ann["image_id"]]["file_name"]), centre, size)
        np.testing.assert_array_equal(oracle.crops[n], clean)
        assert not np.array_equal(oracle.crops[12 + n], clean)


def _clipped(ann):
    image = IMAGES[ann["image_id"]]
    x, y, w, h = ann["bbox"]
    x1, y1 = np.clip(x, 0, image["width"] - 1), np.clip(y, 0, image["height"] - 1)
    x2, y2 = np.clip(x + w, 0, image["width"] - 1), np.clip(y + h, 0, image["height"] - 1)
    return [x1, y1, x2 - x1, y2 - y1]


def test_a_moving_corruption_scores_against_the_moved_keypoints(coco):
    from keypoint_corrupt.benchmark import evaluate
    from keypoint_corrupt.registry import register_config, unregister_config
    from keypoint_corrupt.transforms import ImageNetC

    elastic = "kc-test-topdown-elastic"
    register_config(
        elastic, ImageNetC, {"corruption": "elastic_transform", "severity": 2, "move_keypoints": True}
    )
    try:
        # where the hand protocol's whole-image stream (equal to materialize's files, tested there) puts them
        reference = evaluate(lambda images: np.zeros((len(images), 17, 2)), coco, [elastic], fraction=1.0,
                             examples=0, whole_images=True).rows[elastic]  # fmt: skip
        moved = {
            int(i.rsplit("#", 1)[1]): kp for i, kp in zip(reference.ids, reference.keypoints, strict=True)
        }
        answers = gt_answers()
        for ann, _, labelled in gt_instances():
            centre, s = crop_frame(ann["bbox"], IMAGES[ann["image_id"]])  # the box stays the source's
            crop_kp = to_crop(moved[ann["id"]], centre, s)
            crop_kp[~labelled] = np.nan
            answers.append((crop_kp, np.ones(17)))
        res = evaluate_topdown(Oracle(answers), coco, configs=(elastic,))
    finally:
        unregister_config(elastic)
    row = res.rows[elastic]
    assert len(row.moved) == 12  # every person with a labelled joint moved with the content
    for ann_id, kp in row.moved.items():
        np.testing.assert_array_equal(kp, moved[ann_id])
    assert row.metric.ap == 1.0 and res.rows["standard"].metric.ap == 1.0
    # against the file's own (unmoved) keypoints the same results would not give 1
    from keypoint_corrupt.body_metrics import coco_keypoint_ap

    assert coco_keypoint_ap(DOC, row.results).ap < 0.99
