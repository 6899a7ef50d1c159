"""`materialize --suite` writes every image of a COCO file, those without annotation too (COCO-C).

COCO's evaluation with a detector's boxes scores every image of the ground-truth file, and
``benchmark --protocol coco --detections`` streams them all; a suite's output holds them all too.
Fixture: ``test_coco_unannotated.json`` is ``test_coco.json`` plus image id 1 (an MPII frame showing
a person, ``mpii_052475643.jpg``) without any annotation. References: the corruption recomputed
here with ``apply_corruption`` and the image's own generator, the crops that the streamed COCO
protocol cuts from the image, pycocotools reading the files, and a run on ``test_coco.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from kc_cli_helpers import decode_rgb, tree_digest
from kc_cli_helpers import load_json as load
from pycocotools.coco import COCO

from keypoint_corrupt.benchmark.topdown import box_center_size, crop_instance, evaluate_topdown
from keypoint_corrupt.cli.main import main
from keypoint_corrupt.datasets import load_image
from keypoint_corrupt.datasets.subsets import sample_rng, select_subset
from keypoint_corrupt.registry import apply_corruption
from keypoint_corrupt.suites import register_suite, unregister_suite

DATA = Path(__file__).resolve().parents[1] / "data" / "body" / "coco"
PLAIN = DATA / "test_coco.json"
COCO_FILE = DATA / "test_coco_unannotated.json"
DETECTIONS = DATA / "test_coco_det_unannotated.json"
DOC = json.loads(COCO_FILE.read_text())
EMPTY_ID, EMPTY_NAME = 1, "mpii_052475643.jpg"
SUITE = "unannotated-test-suite"
#: Two severities of a noise, and PoseBench's keypoint-aware mask (an image without keypoints too).
TABLE = {
    "gaussian_noise": ("imagenet-c.gaussian_noise-1", "imagenet-c.gaussian_noise-3"),
    "mask": ("posebench.mask-3",),
}
FOLDERS = {
    "imagenet-c.gaussian_noise-1": "gaussian_noise/1",
    "imagenet-c.gaussian_noise-3": "gaussian_noise/2",
}
FOLDERS["posebench.mask-3"] = "mask/1"
CONFIGS = tuple(FOLDERS)


def run(ann, out, *extra):
    argv = ["materialize", "--data", str(ann), "--out", str(out), "--workers", "1", "--quiet"]
    return main([*argv, *extra])


def empty_entry(doc):
    """The image entry of the image without annotation (its source_id is the COCO file_name)."""
    [entry] = [im for im in doc["images"] if im.get("source_file", "").endswith("mpii_052475643.jpg")]
    return entry


@pytest.fixture(scope="module")
def suite():
    register_suite(SUITE, TABLE, replace=True)
    yield SUITE
    unregister_suite(SUITE)


@pytest.fixture(scope="module")
def outputs(tmp_path_factory, suite):
    """The suite written from the file with the unannotated image, and from test_coco.json."""
    root = tmp_path_factory.mktemp("unannotated")
    assert run(COCO_FILE, root / "full", "--suite", suite) == 0
    assert run(PLAIN, root / "plain", "--suite", suite) == 0
    return root / "full", root / "plain"


def empty_output(out, config):
    """The corrupted file of the image without annotation in one subset, found through annotations.json."""
    folder = out / "val" / FOLDERS[config]
    return folder / empty_entry(load(folder / "annotations.json"))["file_name"]


def test_the_image_without_annotation_is_written_for_every_corruption_and_severity(outputs):
    full, _ = outputs
    for config, folder in FOLDERS.items():
        written = sorted(p for p in (full / "val" / folder / "images").rglob("*") if p.is_file())
        assert len(written) == 5, config  # the four annotated images and the one without
        assert empty_output(full, config) in written and empty_output(full, config).suffix == ".png"
    clean = full / "val" / "clean"
    copy = clean / empty_entry(load(clean / "annotations.json"))["file_name"]
    assert copy.read_bytes() == (DATA / EMPTY_NAME).read_bytes()  # the clean copy, byte for byte
    manifest = load(full / "manifest.json")
    assert manifest["complete"] and manifest["planned_files"] == manifest["written_files"] == 4 * 5
    recorded = [f for f in manifest["files"] if f["source_id"] == EMPTY_NAME]
    assert sorted(f["config"] for f in recorded) == sorted([*CONFIGS, "clean"])
    assert all(f["source_path"] == EMPTY_NAME for f in recorded)  # inside the image folder: relative


def test_its_pixels_are_the_corruption_with_its_file_names_generator(outputs):
    full, _ = outputs
    source = load_image(DATA / EMPTY_NAME)
    for config in CONFIGS:
        expected, _ = apply_corruption(
            config,
            source.copy(),
            np.zeros((0, 2)),
            visibility=np.zeros(0, bool),
            rng=sample_rng(0, EMPTY_NAME, config),
        )
        written = decode_rgb(empty_output(full, config))
        np.testing.assert_array_equal(written, expected, err_msg=config)  # PNG: lossless
        assert not np.array_equal(written, source), config


class Recorder:
    """A predictor that keeps every crop it is given and answers the crop's centre."""

    schema = "coco17"

    def __init__(self):
        self.crops = []

    def __call__(self, crops):
        self.crops.extend(np.asarray(c).copy() for c in crops)
        return np.full((len(crops), 17, 2), [96.0, 128.0]), np.full((len(crops), 17), 0.5)


def test_they_are_the_images_that_the_streamed_coco_protocol_crops(outputs):
    full, _ = outputs
    model = Recorder()
    res = evaluate_topdown(model, COCO_FILE, CONFIGS, detections=DETECTIONS, batch_size=32)
    dets = json.loads(DETECTIONS.read_text())
    mine = [d for d in dets if d["image_id"] == EMPTY_ID]
    per_row = len(dets)
    assert len(model.crops) == per_row * (1 + len(CONFIGS)) and len(mine) == 3
    for n, config in enumerate(CONFIGS, start=1):
        assert res.rows[config].image_ids[-1] == EMPTY_ID  # the images without annotation come last
        written = decode_rgb(empty_output(full, config))
        crops = model.crops[(n + 1) * per_row - len(mine) : (n + 1) * per_row]
        for det, crop in zip(mine, crops, strict=True):
            centre, size = box_center_size(det["bbox"])
            np.testing.assert_array_equal(crop, crop_instance(written, centre, size), err_msg=config)


def test_every_annotation_file_lists_it_without_annotation_and_pycocotools_reads_it(outputs):
    full, _ = outputs
    for folder in ["clean", *FOLDERS.values()]:
        path = full / "val" / folder / "annotations.json"
        doc = load(path)
        entry = empty_entry(doc)
        assert entry["id"] == EMPTY_ID and (entry["width"], entry["height"]) == (854, 480), folder
        assert not [a for a in doc["annotations"] if a["image_id"] == entry["id"]], folder
        assert "target_annotation_id" not in entry  # the mask had no person to target there
        if folder != "clean":
            assert entry["source_id"] == EMPTY_NAME and entry["file_name"].endswith("052475643.png")
        gt = COCO(str(path))
        # the source's ids: those of its detections file
        assert sorted(gt.getImgIds()) == sorted(im["id"] for im in DOC["images"])
        assert gt.getAnnIds(imgIds=[EMPTY_ID]) == [] and len(gt.getAnnIds()) == 14
        assert (path.parent / gt.loadImgs([EMPTY_ID])[0]["file_name"]).is_file()


def test_the_annotated_images_and_their_annotations_are_unchanged(outputs):
    full, plain = outputs
    for folder in ["clean", *FOLDERS.values()]:
        new, old = (
            load(full / "val" / folder / "annotations.json"),
            load(plain / "val" / folder / "annotations.json"),
        )
        assert new["annotations"] == old["annotations"], folder  # same ids, keypoints, boxes
        assert new["images"][:4] == [{**im} for im in old["images"]], folder
        for im in old["images"]:
            a, b = full / "val" / folder / im["file_name"], plain / "val" / folder / im["file_name"]
            assert a.read_bytes() == b.read_bytes(), (folder, im["file_name"])


def test_verify_shards_resume_and_repair(outputs, tmp_path, capsys):
    full, _ = outputs
    assert main(["verify", str(full)]) == 0
    want = tree_digest(full)
    sharded = tmp_path / "sharded"
    assert run(COCO_FILE, sharded, "--suite", SUITE, "--shard", "2/2") == 0
    assert run(COCO_FILE, sharded, "--suite", SUITE) == 0  # resumes shard 1's work and merges
    assert tree_digest(sharded) == want
    # a damaged corrupted copy of the image without annotation is found and rewritten
    damaged = empty_output(sharded, "posebench.mask-3")
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    empty_output(sharded, "imagenet-c.gaussian_noise-1").unlink()
    capsys.readouterr()
    assert main(["verify", str(sharded)]) == 1
    assert "052475643.png" in capsys.readouterr().out
    assert main(["materialize", "--out", str(sharded), "--repair", "--workers", "1"]) == 0
    assert "rewrote 2 file(s)" in capsys.readouterr().out
    assert tree_digest(sharded) == want


def test_a_fraction_draws_among_every_image_of_the_file(tmp_path, suite):
    out = tmp_path / "o"
    assert run(COCO_FILE, out, "--suite", suite, "--fraction", "0.4", "--seed", "5") == 0
    names = [im["file_name"] for im in DOC["images"]]
    drawn_empty = []
    for config, folder in FOLDERS.items():
        doc = load(out / "val" / folder / "annotations.json")
        assert sorted(im["source_id"] for im in doc["images"]) == sorted(select_subset(names, config, 0.4, 5))
        drawn_empty.append(EMPTY_NAME in {im["source_id"] for im in doc["images"]})
    assert any(drawn_empty) and not all(drawn_empty)  # seed 5: drawn for some configurations only
    assert main(["verify", str(out)]) == 0


def test_without_a_suite_nothing_changes(tmp_path):
    full, plain = tmp_path / "full", tmp_path / "plain"
    for ann, out in ((COCO_FILE, full), (PLAIN, plain)):
        assert run(ann, out, "--configs", "defocus-7", "--fraction", "0.5") == 0
    for folder in ("clean", "defocus-7"):
        new, old = (
            load(full / "val" / folder / "annotations.json"),
            load(plain / "val" / folder / "annotations.json"),
        )
        assert new["images"] == old["images"] and new["annotations"] == old["annotations"], folder
        # the files differ in the source's own info only (each keeps its source's)
        assert new["info"]["keypoint_corrupt"] == old["info"]["keypoint_corrupt"], folder
        assert {k: v for k, v in new.items() if k != "info"} == {k: v for k, v in old.items() if k != "info"}

    def images(folder):
        return {k: v for k, v in tree_digest(folder).items() if not k.endswith("annotations.json")}

    assert images(full / "val") == images(plain / "val")
