"""`materialize` of a COCO file keeps what COCO's evaluation reads: ids, areas, crowds, licences.

OKS is normalised by the ground truth's ``area``; a crowd region (``iscrowd: 1``) makes the
detections inside it ignored; a detector's results file and MMPose's ``bbox_file`` name the
source's image ids; each image's Flickr licence is named by its ``license`` id. The fixture is
``test_coco.json`` with two crowd regions added (iscrowd 1, no labelled keypoint: all-zero
keypoints, as COCO's person_keypoints files write them, which COCOeval needs), an RLE mask over
the small people at the right edge of image 196141 and a polygon over those behind the man of
image 40083, where the detector found them. The oracle is pycocotools' COCOeval on the source
file, with results built from the real detections file.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
from pathlib import Path

import numpy as np
import pytest
from kc_cli_helpers import load_json as load

from keypoint_corrupt.benchmark.topdown import evaluate_topdown
from keypoint_corrupt.datasets import CocoKeypoints
from keypoint_corrupt.registry import register_config, unregister_config
from keypoint_corrupt.suites import register_suite, unregister_suite
from keypoint_corrupt.transforms import ImageNetC

mat = pytest.importorskip("keypoint_corrupt.materialize")
COCO = pytest.importorskip("pycocotools.coco").COCO
COCOeval = pytest.importorskip("pycocotools.cocoeval").COCOeval

DATA = Path(__file__).resolve().parents[1] / "data" / "body" / "coco"
SOURCE = DATA / "test_coco.json"
DETECTIONS = DATA / "test_coco_det_AP_H_56.json"
SUITE = "kc-test-coco-fidelity"
ELASTIC = "kc-test-fidelity-elastic"  # moves the keypoints with the content
NOISE = "imagenet-c.gaussian_noise-1"
CROWD_ID, CROWD_IMAGE, CROWD_BOX = 900100196141, 196141, (594, 78, 36, 44)
POLYGON_ID, POLYGON_IMAGE, POLYGON = (
    900100040083,
    40083,
    [110.0, 130.0, 156.0, 130.0, 156.0, 196.0, 110.0, 196.0],
)


def rle_box(height, width, box):
    """COCO's uncompressed RLE (column-major run lengths, starting with zeros) of a filled box."""
    x, y, w, h = box
    mask = np.zeros((height, width), np.uint8)
    mask[y : y + h, x : x + w] = 1
    flat = mask.flatten(order="F")
    edges = np.flatnonzero(np.diff(flat)) + 1
    runs = np.diff(np.concatenate([[0], edges, [flat.size]])).tolist()
    return {"counts": ([0] if flat[0] else []) + runs, "size": [height, width]}, int(mask.sum())


def crowd_doc():
    doc = load(SOURCE)
    image = next(im for im in doc["images"] if im["id"] == CROWD_IMAGE)
    rle, area = rle_box(image["height"], image["width"], CROWD_BOX)
    crowds = [
        (CROWD_IMAGE, CROWD_ID, rle, area, [float(v) for v in CROWD_BOX]),
        (POLYGON_IMAGE, POLYGON_ID, [POLYGON], 46.0 * 66.0, [110.0, 130.0, 46.0, 66.0]),
    ]
    for image_id, ann_id, segmentation, area, bbox in crowds:
        crowd = {
            "segmentation": segmentation,
            "num_keypoints": 0,
            "area": area,
            "iscrowd": 1,
            "keypoints": [0] * 51,
            "image_id": image_id,
            "bbox": bbox,
            "category_id": 1,
            "id": ann_id,
        }
        at = max(i for i, a in enumerate(doc["annotations"]) if a["image_id"] == image_id)
        doc["annotations"].insert(at if image_id == POLYGON_IMAGE else at + 1, crowd)  # between people too
    return doc


@pytest.fixture(scope="module")
def crowd_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("crowd") / "person_keypoints_crowd.json"
    path.write_text(json.dumps(crowd_doc()))
    return path


@pytest.fixture(scope="module")
def suite():
    register_config(
        ELASTIC, ImageNetC, {"corruption": "elastic_transform", "severity": 2, "move_keypoints": True}
    )
    register_suite(SUITE, {"gaussian_noise": [NOISE], "elastic": [ELASTIC]})
    yield SUITE
    unregister_suite(SUITE)
    unregister_config(ELASTIC)


def _materialize(out, source, **options):
    spec = mat.DatasetSpec("coco", annotations=(("val", source),), images=DATA)
    result = mat.materialize(mat.MaterializeOptions(out, spec, splits=("val",), **options))
    assert result.complete
    return out / "val"


@pytest.fixture(scope="module")
def suite_out(tmp_path_factory, crowd_file, suite):
    return _materialize(tmp_path_factory.mktemp("coco_c") / "out", crowd_file, suite=suite)


def without(entry, *keys):
    return {k: v for k, v in entry.items() if k not in keys}


def iou(a, b):
    w = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return w * h / (a[2] * a[3] + b[2] * b[3] - w * h)


def keypoint_results(source_doc):
    """COCO keypoint results on the real detections: the best-overlapping person's keypoints, shifted.

    Each detection answers the keypoints of the labelled person its box overlaps best (IoU >= 0.5),
    each joint shifted by a fixed pseudo-random offset (so OKS, and with it the area, matters);
    else a grid of points inside its box (a false positive, unless a crowd region covers it).
    """
    rng = np.random.default_rng(7)
    people = [a for a in source_doc["annotations"] if a["num_keypoints"] > 0 and not a["iscrowd"]]
    out = []
    for det in load(DETECTIONS):
        x, y, w, h = det["bbox"]
        mine = [a for a in people if a["image_id"] == det["image_id"]]
        best = max(mine, key=lambda a: iou(a["bbox"], det["bbox"]), default=None)
        if best is not None and iou(best["bbox"], det["bbox"]) >= 0.5:
            kp = np.asarray(best["keypoints"], float).reshape(17, 3)[:, :2]
            kp = kp + rng.normal(0.0, 0.03 * np.sqrt(w * h), size=kp.shape)
        else:
            u = np.linspace(0.2, 0.8, 17)
            kp = np.stack([x + u * w, y + u[::-1] * h], axis=1)
        flat = np.concatenate([kp, np.ones((17, 1))], axis=1).ravel()
        out.append({**det, "keypoints": flat.tolist()})
    return out


def coco_ap(gt_path, results):
    """COCOeval keypoint AP (pycocotools, without its prints)."""
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_path))
        ev = COCOeval(gt, gt.loadRes(copy.deepcopy(results)), "keypoints")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats[0]


def test_suite_annotations_are_the_sources_field_by_field(suite_out, crowd_file):
    src = load(crowd_file)
    for folder in ("clean", "gaussian_noise/1", "elastic/1"):
        doc = load(suite_out / folder / "annotations.json")
        assert len(doc["annotations"]) == len(src["annotations"]) == 16, folder
        moved = 0
        for ann, original in zip(doc["annotations"], src["annotations"], strict=True):
            assert ann["source_id"].endswith(f"#{original['id']}")
            if folder == "elastic/1":  # the keypoints follow the content; their flags stay
                got, want = np.reshape(ann["keypoints"], (-1, 3)), np.reshape(original["keypoints"], (-1, 3))
                np.testing.assert_array_equal(got[:, 2], want[:, 2])
                moved += not np.array_equal(got[:, :2], want[:, :2])
                ann = {**ann, "keypoints": original["keypoints"]}
            assert without(ann, "source_id") == original, (folder, original["id"])
        assert moved >= 10 if folder == "elastic/1" else moved == 0
        crowd = next(a for a in doc["annotations"] if a["id"] == CROWD_ID)
        assert crowd["iscrowd"] == 1 and isinstance(crowd["segmentation"], dict)  # written, as it was
        polygon = next(a for a in doc["annotations"] if a["id"] == POLYGON_ID)
        assert polygon["segmentation"] == [POLYGON] and polygon["image_id"] == POLYGON_IMAGE


def test_suite_images_licenses_info_and_categories_are_the_sources(suite_out, crowd_file):
    src = load(crowd_file)
    detected = {d["image_id"] for d in load(DETECTIONS)}
    for folder in ("clean", "gaussian_noise/1", "elastic/1"):
        doc = load(suite_out / folder / "annotations.json")
        assert doc["licenses"] == src["licenses"] and doc["categories"] == src["categories"], folder
        assert without(doc["info"], "keypoint_corrupt") == src["info"]
        config = {"clean": "clean", "gaussian_noise/1": NOISE, "elastic/1": ELASTIC}[folder]
        assert doc["info"]["keypoint_corrupt"]["config"] == config  # ours, beside the source's
        assert [im["id"] for im in doc["images"]] == [im["id"] for im in src["images"]]
        assert detected <= {im["id"] for im in doc["images"]}  # the detections file's ids
        for im, original in zip(doc["images"], src["images"], strict=True):
            ext = ".jpg" if folder == "clean" else ".png"
            assert im["file_name"] == "images/" + original["file_name"].replace(".jpg", ext)
            assert (suite_out / folder / im["file_name"]).is_file()
            assert (im["width"], im["height"]) == (original["width"], original["height"])  # decoded
            mine = without(im, "file_name", "source_id", "source_file", "corruption")
            assert mine == without(original, "file_name"), folder  # license, coco_url, flickr_url, ...


def test_ap_on_the_written_files_is_the_sources(suite_out, crowd_file):
    src = load(crowd_file)
    results = keypoint_results(src)
    want = coco_ap(crowd_file, results)
    assert 0.3 < want < 1.0
    # the oracle can tell: the box area for the OKS scale, or the crowd flag dropped, change the AP
    for change in ({"area": "box"}, {"iscrowd": 0}):
        doc = copy.deepcopy(src)
        for a in doc["annotations"]:
            a["area"] = a["bbox"][2] * a["bbox"][3] if change.get("area") else a["area"]
            a["iscrowd"] = change.get("iscrowd", a["iscrowd"])
        other = suite_out.parent / "changed.json"
        other.write_text(json.dumps(doc))
        assert coco_ap(other, results) != pytest.approx(want, abs=1e-4), change
    # the clean copy and a corruption that moves nothing: the same ground truth, the same AP
    for folder in ("clean", "gaussian_noise/1"):
        assert coco_ap(suite_out / folder / "annotations.json", results) == want, folder


def test_topdown_with_detections_on_the_written_clean_file_scores_as_the_source(suite_out, crowd_file):
    def predict(crops):  # a pose in the crop: the same answer for the same box, whatever the pixels
        u = np.linspace(0.3, 0.7, 17)
        one = np.stack([u * crops[0].shape[1], (1 - u) * crops[0].shape[0]], axis=1)
        return np.repeat(one[None], len(crops), axis=0)

    predict.schema = "coco17"
    written = evaluate_topdown(predict, suite_out / "clean" / "annotations.json", (), detections=DETECTIONS)
    source = evaluate_topdown(predict, CocoKeypoints(crowd_file, DATA), (), detections=DETECTIONS)
    a, b = written.rows["standard"], source.rows["standard"]
    assert a.results == b.results and a.image_ids == b.image_ids
    assert a.metric.as_dict() == b.metric.as_dict()
    assert coco_ap(suite_out / "clean" / "annotations.json", a.results) == coco_ap(crowd_file, a.results)


def test_without_a_suite_each_annotation_keeps_its_fields_and_todays_ids(tmp_path, crowd_file):
    out = _materialize(tmp_path / "o", crowd_file, configs=(NOISE,), fraction=1.0)
    src = load(crowd_file)
    by_id = {a["id"]: a for a in src["annotations"]}
    doc = load(out / NOISE / "annotations.json")
    assert len(doc["annotations"]) == len(doc["images"]) == 16  # one output per annotation, crowds too
    for pos, (ann, im) in enumerate(zip(doc["annotations"], doc["images"], strict=True), start=1):
        original = by_id[int(ann["source_id"].rsplit("#", 1)[1])]
        assert ann["id"] == ann["image_id"] == im["id"] == pos  # the output's position, as before
        assert without(ann, "id", "image_id", "source_id") == without(original, "id", "image_id")
        assert im["license"] == next(s["license"] for s in src["images"] if s["id"] == original["image_id"])
    assert doc["licenses"] == src["licenses"] and doc["categories"] == src["categories"]
    # the clean split is the source's file: its ids, so detections files apply
    clean = load(out / "clean" / "annotations.json")
    assert [without(a, "source_id") for a in clean["annotations"]] == src["annotations"]
    assert [im["id"] for im in clean["images"]] == [im["id"] for im in src["images"]]


def test_a_crowd_region_without_keypoints_is_written_as_it_is(tmp_path, suite):
    """A crowd region as an instances file writes it (no ``keypoints``): no sample, still written."""
    doc = crowd_doc()
    bare = next(a for a in doc["annotations"] if a["id"] == CROWD_ID)
    del bare["keypoints"], bare["num_keypoints"]
    # an image whose only annotation is a crowd region (the MPII frame, copied here as COCO's would be)
    doc["images"].append({**doc["images"][0], "id": 1, "file_name": "mpii_052475643.jpg"})
    doc["annotations"].append({**bare, "id": CROWD_ID + 1, "image_id": 1})
    (tmp_path / "img").mkdir()
    for im in doc["images"]:
        src = DATA / im["file_name"] if im["id"] != 1 else DATA.parent / "mpii" / "052475643.jpg"
        (tmp_path / "img" / im["file_name"]).write_bytes(src.read_bytes())
    path = tmp_path / "bare_crowd.json"
    path.write_text(json.dumps(doc))
    base = CocoKeypoints(path, tmp_path / "img")
    assert CROWD_ID not in {s.meta["annotation_id"] for s in base} and len(base) == 15
    assert [s.meta["image_id"] for s in base.unannotated_images()] == [1]  # no sample names it
    spec = mat.DatasetSpec("coco", annotations=(("val", path),), images=tmp_path / "img")
    out = tmp_path / "o"
    assert mat.materialize(mat.MaterializeOptions(out, spec, splits=("val",), suite=suite)).complete
    for folder in ("clean", "gaussian_noise/1"):
        written = load(out / "val" / folder / "annotations.json")
        assert [without(a, "source_id") for a in written["annotations"]] == doc["annotations"], folder
        assert [im["id"] for im in written["images"]] == [im["id"] for im in doc["images"]], folder
        back = CocoKeypoints(out / "val" / folder / "annotations.json")  # read back: the same samples
        assert [s.meta["annotation_id"] for s in back] == [s.meta["annotation_id"] for s in base]
