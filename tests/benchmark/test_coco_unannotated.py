"""The COCO protocol with detections scores every image of the file, those without annotation too.

Fixture: ``test_coco_unannotated.json`` is ``test_coco.json`` plus one image (id 1, an MPII frame
showing a person, ``mpii_052475643.jpg``) without any annotation; ``test_coco_det_unannotated.json``
is ``test_coco_det_AP_H_56.json`` plus three hand-placed detections on that image. COCOeval scores
every image of the ground-truth file by default, so those three detections are false positives.
The reference is pycocotools' COCOeval called directly on results built here.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
from pathlib import Path

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from keypoint_corrupt.benchmark.coco_protocol import recompute_coco, write_coco_report
from keypoint_corrupt.benchmark.topdown import (
    box_center_size,
    crop_instance,
    evaluate_topdown,
)
from keypoint_corrupt.cli.main import main
from keypoint_corrupt.datasets import CocoKeypoints, load_image
from keypoint_corrupt.datasets.subsets import sample_rng, select_subset
from keypoint_corrupt.registry import apply_corruption

DATA = Path(__file__).resolve().parents[1] / "data" / "body" / "coco"
PLAIN = DATA / "test_coco.json"
PLAIN_DETS = DATA / "test_coco_det_AP_H_56.json"
COCO_FILE = DATA / "test_coco_unannotated.json"
DETECTIONS = DATA / "test_coco_det_unannotated.json"
DOC = json.loads(COCO_FILE.read_text())
EMPTY_ID = 1
EMPTY_NAME = "mpii_052475643.jpg"
STATS = ("ap", "ap50", "ap75", "ap_m", "ap_l", "ar", "ar50", "ar75", "ar_m", "ar_l")
NOISE = "imagenet-c.gaussian_noise-3"
MASK = "posebench.mask-3"  # keypoint-aware: an image without keypoints must still be corrupted


def crop_frame(bbox, input_size=(192, 256)):
    """(centre, scale) of MMPose's crop of an unclipped detection box (derived here, not imported)."""
    x, y, w, h = (float(v) for v in bbox)
    pw = max(1.25 * w, 1.25 * h * input_size[0] / input_size[1])
    return np.array([x + w / 2, y + h / 2]), input_size[0] / pw


def pycocotools_stats(gt_file, results, image_ids=None):
    """The ten figures of COCOeval called directly; ``image_ids`` None: pycocotools' default (all images)."""
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_file))
        ev = COCOeval(gt, gt.loadRes(results), iouType="keypoints")
        if image_ids is not None:
            ev.params.imgIds = sorted(image_ids)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {k: (np.nan if v == -1 else float(v)) for k, v in zip(STATS, ev.stats, strict=True)}


def _iou(a, b):
    w = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return w * h / (a[2] * a[3] + b[2] * b[3] - w * h)


def protocol_order(detections):
    """Detections in the order the protocol crops them: annotated images by first annotation, then the
    images without annotation in file order; boxes in file order within an image."""
    order = list(dict.fromkeys(a["image_id"] for a in DOC["annotations"]))
    order += [im["id"] for im in DOC["images"] if im["id"] not in order]
    return sorted(detections, key=lambda d: order.index(d["image_id"]))


class Posed:
    """A perfect pose behind the detector: per box (in the protocol's order, again for every row), the
    keypoints of the person it overlaps best (IoU >= 0.5), else a fixed pose; moved by the crop's contrast
    so that a corruption changes the answer."""

    schema = "coco17"
    POSE = np.array(
        [[96, 40], [102, 34], [90, 34], [110, 38], [82, 38], [122, 78], [70, 78], [132, 118], [60, 118],
         [136, 152], [56, 152], [112, 150], [80, 150], [114, 196], [78, 196], [116, 238], [76, 238]],
        float,
    )  # fmt: skip
    SCORES = np.linspace(0.3, 0.95, 17)

    def __init__(self, detections=DETECTIONS):
        people = [a for a in DOC["annotations"] if a["num_keypoints"] > 0]
        self.answers, self.next, self.crops = [], 0, []
        for det in protocol_order(json.loads(Path(detections).read_text())):
            centre, s = crop_frame(det["bbox"])
            here = [
                (_iou(det["bbox"], a["bbox"]), n)
                for n, a in enumerate(people)
                if a["image_id"] == det["image_id"]
            ]
            best, n = max(here, default=(0.0, -1))
            kp = np.asarray(people[n]["keypoints"], float).reshape(17, 3)[:, :2] if best >= 0.5 else None
            self.answers.append((kp - centre) * s + [96.0, 128.0] if kp is not None else self.POSE)

    @staticmethod
    def shift(crop):
        return np.array([10.0 * (0.35 - np.asarray(crop, float).std() / 128.0), 0.0])

    def __call__(self, crops):
        out = []
        for crop in crops:
            out.append(self.answers[self.next % len(self.answers)] + self.shift(crop))
            self.next += 1
            self.crops.append(crop)
        return np.stack(out), np.tile(self.SCORES, (len(crops), 1))


@pytest.fixture(scope="module")
def detected():
    """One evaluation with detections on the file with an unannotated image: clean, noise and mask rows."""
    model = Posed()
    res = evaluate_topdown(model, COCO_FILE, (NOISE, MASK), detections=DETECTIONS, batch_size=9)
    return model, res


def _results_by_hand(model, res):
    """The clean row's results rebuilt from the model's answers, the crops it saw and the detection boxes."""
    dets = protocol_order(json.loads(DETECTIONS.read_text()))
    out = []
    for det, answer, crop in zip(dets, model.answers, model.crops[: len(dets)], strict=True):
        centre, s = crop_frame(det["bbox"])
        image_kp = (answer + Posed.shift(crop) - [96.0, 128.0]) / s + centre
        flat = np.column_stack([image_kp, Posed.SCORES]).ravel().tolist()
        out.append({"image_id": det["image_id"], "category_id": 1, "keypoints": flat,
                    "score": float(det["score"] * Posed.SCORES.mean())})  # fmt: skip
    return out


def test_the_fixture_adds_one_image_without_annotation_and_detections_on_it():
    assert [im["id"] for im in DOC["images"]][-1] == EMPTY_ID
    assert not [a for a in DOC["annotations"] if a["image_id"] == EMPTY_ID]
    assert (DATA / EMPTY_NAME).is_file()
    dets = json.loads(DETECTIONS.read_text())
    assert dets[: len(json.loads(PLAIN_DETS.read_text()))] == json.loads(PLAIN_DETS.read_text())
    assert sum(d["image_id"] == EMPTY_ID for d in dets) == 3
    [empty] = CocoKeypoints(COCO_FILE).unannotated_images()
    assert (empty.id, empty.meta["image_id"], empty.keypoints.shape) == (EMPTY_NAME, EMPTY_ID, (0, 2))


def test_detections_on_the_unannotated_image_are_scored_as_pycocotools_scores_them(detected):
    model, res = detected
    row = res.rows["standard"]
    assert row.image_ids == [785, 40083, 196141, 197388, EMPTY_ID] and row.boxes == len(row.results) == 121
    expected = _results_by_hand(model, res)
    for mine, ref in zip(row.results, expected, strict=True):
        assert mine["image_id"] == ref["image_id"] and mine["score"] == pytest.approx(ref["score"], abs=1e-12)
        np.testing.assert_allclose(mine["keypoints"], ref["keypoints"], atol=1e-9)
    everything = pycocotools_stats(COCO_FILE, expected)  # pycocotools' default: every image of the file
    for k in STATS:
        assert getattr(row.metric, k) == pytest.approx(everything[k], abs=1e-12, nan_ok=True), k
    # (2) without the unannotated image (what the protocol did before), its false positives would not
    # count: the same results scored on the annotated images only, or on the original file, give more
    annotated = pycocotools_stats(COCO_FILE, expected, image_ids=[785, 40083, 196141, 197388])
    plain = [r for r in expected if r["image_id"] != EMPTY_ID]
    assert pycocotools_stats(PLAIN, plain)["ap"] == pytest.approx(annotated["ap"], abs=1e-12)
    assert row.metric.ap < annotated["ap"] - 0.005 and row.metric.ar == pytest.approx(annotated["ar"])
    assert row.metric.n_images == 5


def test_the_report_says_what_was_scored(detected, tmp_path):
    _, res = detected
    images = res.protocol["images"]
    assert (images["in_file"], images["evaluated"]) == (5, 5)
    assert (images["without_annotation"], images["without_annotation_evaluated"]) == (1, 1)
    assert res.protocol["boxes"]["source"] == "detections" and res.protocol["boxes"]["boxes"] == 121
    assert res.source["images_without_annotation"] == 1 and res.source["dataset"] == "CocoKeypoints"
    md = (write_coco_report(res, tmp_path / "r")["md"]).read_text()
    assert (
        "5 of the 5 of" in md and "1 of them without any annotation: their results are false positives" in md
    )
    # ground-truth boxes on the same file: nothing to crop on the image without annotation, as before
    gt = evaluate_topdown(Posed(), COCO_FILE, (), batch_size=16)
    plain = evaluate_topdown(Posed(), PLAIN, (), batch_size=16)  # the same answers, crop after crop
    assert gt.rows["standard"].image_ids == plain.rows["standard"].image_ids == [785, 40083, 196141, 197388]
    assert gt.rows["standard"].results == plain.rows["standard"].results
    counts = {k: v for k, v in gt.protocol["images"].items() if k != "definition"}
    assert counts == {
        "in_file": 5,
        "evaluated": 4,
        "without_annotation": 1,
        "without_annotation_evaluated": 0,
    }


def test_the_unannotated_image_is_corrupted_whole_with_its_file_names_generator(detected):
    model, res = detected
    dets = [d for d in json.loads(DETECTIONS.read_text()) if d["image_id"] == EMPTY_ID]
    source = load_image(DATA / EMPTY_NAME)
    per_row = 121
    for n, config in enumerate((NOISE, MASK), start=1):
        image, _ = apply_corruption(
            config,
            source.copy(),
            np.zeros((0, 2)),
            visibility=np.zeros(0, bool),
            rng=sample_rng(0, EMPTY_NAME, config),
        )
        mine = model.crops[(n + 1) * per_row - 3 : (n + 1) * per_row]  # the last image's 3 crops of the row
        for det, crop in zip(dets, mine, strict=True):
            centre, size = box_center_size(det["bbox"])
            np.testing.assert_array_equal(crop, crop_instance(image, centre, size), err_msg=config)
        assert res.rows[config].image_ids[-1] == EMPTY_ID


def test_the_annotated_images_results_do_not_change(detected):
    _, res = detected
    before = evaluate_topdown(Posed(PLAIN_DETS), PLAIN, (NOISE, MASK), detections=PLAIN_DETS, batch_size=9)
    for name, row in before.rows.items():
        now = [r for r in res.rows[name].results if r["image_id"] != EMPTY_ID]
        assert now == row.results, name


def test_a_fraction_draws_among_every_image_of_the_file():
    res = evaluate_topdown(Posed(), COCO_FILE, (NOISE,), fraction=0.4, seed=3, detections=DETECTIONS)
    names = {im["file_name"]: im["id"] for im in DOC["images"]}
    drawn = select_subset(list(names), NOISE, 0.4, 3)
    assert sorted(res.rows[NOISE].image_ids) == sorted(names[n] for n in drawn) and len(drawn) == 2


def _cli(out, *extra):
    argv = ["benchmark", "--protocol", "coco", "--data", str(COCO_FILE), "--images", str(DATA)]
    argv += ["--predict", f"{__file__}:Posed", "--detections", str(DETECTIONS), "--configs", NOISE]
    return main([*argv, "--out", str(out), "--no-progress", *extra])


def test_the_command_is_deterministic_and_recompute_reproduces_it(tmp_path, capsys):
    for name in ("a", "b"):
        assert _cli(tmp_path / name) == 0
    printed = capsys.readouterr().out
    assert "5 of 5 images, 1 without annotation scored" in printed
    a, b = tmp_path / "a", tmp_path / "b"
    assert (a / "coco_results.json.gz").read_bytes() == (b / "coco_results.json.gz").read_bytes()
    assert (a / "report.csv").read_bytes() == (b / "report.csv").read_bytes()

    def stable(folder):
        doc = json.loads((folder / "report.json").read_text())
        for key in ("timing", "created", "command"):
            doc.pop(key)
        return doc

    assert stable(a) == stable(b)
    doc = json.loads((a / "report.json").read_text())
    again = recompute_coco(a)
    for row in doc["rows"]:
        assert again[row["name"]] == {k: row[k] for k in again[row["name"]]}, row["name"]
    with gzip.open(a / "coco_results.json.gz", "rt") as f:
        stored = json.load(f)
    assert stored["rows"]["standard"]["image_ids"][-1] == EMPTY_ID
    assert sum(r["image_id"] == EMPTY_ID for r in stored["rows"]["standard"]["results"]) == 3
