"""`keypoint-corrupt materialize` end to end: layout, COCO files, keypoints, fractions, determinism."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest
from kc_cli_helpers import CONSOLE_SCRIPT, decode_rgb, tree_digest
from kc_cli_helpers import load_json as load

from keypoint_corrupt import CONFIGS
from keypoint_corrupt.cli.main import main
from keypoint_corrupt.datasets import STB, CocoKeypoints, CorruptedDataset
from keypoint_corrupt.datasets.stb import stb_joint_names
from keypoint_corrupt.materialize.writer import temp_target


def check_coco_schema(coco, num_joints=21):
    """The COCO keypoint schema, as pycocotools / mmpose read it."""
    assert {"images", "annotations", "categories"} <= set(coco)
    cats = {}
    for cat in coco["categories"]:
        assert isinstance(cat["id"], int) and isinstance(cat["name"], str) and cat["name"]
        assert len(cat["keypoints"]) == num_joints and all(isinstance(n, str) for n in cat["keypoints"])
        for a, b in cat["skeleton"]:
            assert 1 <= a <= num_joints and 1 <= b <= num_joints
        cats[cat["id"]] = cat
    images = {}
    for im in coco["images"]:
        assert isinstance(im["id"], int) and isinstance(im["file_name"], str)
        if "width" in im:
            assert im["width"] > 0 and im["height"] > 0
        assert im["id"] not in images
        images[im["id"]] = im
    ann_ids = set()
    for ann in coco["annotations"]:
        assert isinstance(ann["id"], int) and ann["id"] not in ann_ids
        ann_ids.add(ann["id"])
        assert ann["image_id"] in images and ann["category_id"] in cats
        kps = ann["keypoints"]
        assert isinstance(kps, list) and len(kps) == 3 * num_joints
        assert all(isinstance(v, (int, float)) for v in kps)
        assert all(v in (0, 1, 2) for v in kps[2::3])
        assert ann["num_keypoints"] == sum(1 for v in kps[2::3] if v > 0)
        _x, _y, w, h = ann["bbox"]
        assert w >= 0 and h >= 0 and ann["area"] == pytest.approx(w * h)
        assert ann["iscrowd"] == 0
    return images


def without(entry, *keys):
    return {k: v for k, v in entry.items() if k not in keys}


def test_bundled_layout_annotations_keypoints_and_pixels(reference, bundled):
    manifest = load(reference / "manifest.json")
    assert manifest["complete"] is True and manifest["errors"] == []
    assert manifest["dataset"] == {"kind": "stb", "root": str(bundled), "bundled": True}
    assert [c["name"] for c in manifest["configs"]] == list(CONFIGS)
    assert manifest["configs"][7]["params"] == {"area": 0.2, "margin": 0.15}
    assert {"keypoint_corrupt", "numpy", "opencv", "albumentations", "python"} <= set(manifest["versions"])
    assert (manifest["seed"], manifest["fraction"], manifest["splits"]) == (0, 0.2, ["train", "val"])
    assert not (reference / ".keypoint-corrupt").exists()  # a complete run keeps no journal

    by_path = {f["path"]: f for f in manifest["files"]}
    for split in ("train", "val"):
        base = STB(bundled, split)
        ds = CorruptedDataset(base, mode="subset")
        samples = {s.id: s for s in base}
        for config in CONFIGS:
            coco = load(reference / split / config / "annotations.json")
            images = check_coco_schema(coco)
            assert len(coco["images"]) == round(0.2 * len(base))  # the fraction holds per configuration
            assert coco["categories"][0]["keypoints"] == list(stb_joint_names())
            assert len(coco["categories"][0]["skeleton"]) == 20
            for ann in coco["annotations"]:
                im = images[ann["image_id"]]
                sample = samples[ann["source_id"]]
                kps = np.asarray(ann["keypoints"]).reshape(-1, 3)
                np.testing.assert_array_equal(kps[:, :2], sample.keypoints)  # exactly the source's
                assert (kps[:, 2] == 2).all()
                assert im["file_name"] == f"images/{sample.id}.png"
                rel = f"{split}/{config}/{im['file_name']}"
                rec = by_path[rel]
                source = sample.image_path.relative_to(bundled).as_posix()  # relative to the root
                assert (rec["source_id"], rec["source_path"]) == (sample.id, source)
                assert ("box" in rec) == config.startswith("occlusion")
        clean = load(reference / split / "clean" / "annotations.json")
        check_coco_schema(clean)
        assert len(clean["annotations"]) == len(base)
        # the clean split points at its own copies of the source images, inside the output
        assert [im["file_name"] for im in clean["images"]] == [f"images/{s.id}.png" for s in base]
        for im in clean["images"]:
            copy = reference / split / "clean" / im["file_name"]
            assert copy.read_bytes() == (bundled / im["file_name"]).read_bytes()
            assert by_path[f"{split}/clean/{im['file_name']}"]["source_path"] == im["source_file"]
        if split == "val":  # pixels: each file decodes to the dataset's own item
            for pos, entry in enumerate(ds.plan):
                sample = base[entry.base_index]
                rel = f"val/{entry.config}/images/{sample.id}.png"
                np.testing.assert_array_equal(decode_rgb(reference / rel), ds[pos]["image"])
                if entry.config.startswith("occlusion"):
                    assert by_path[rel]["box"] == ds[pos]["box"].tolist()
    assert manifest["written_files"] == len(manifest["files"]) == 110 + 48  # + the clean copies
    assert {a["path"] for a in manifest["annotation_files"]} == {
        f"{s}/{c}/annotations.json" for s in ("train", "val") for c in (*CONFIGS, "clean")
    }


def test_worker_counts_and_shards_give_identical_bytes(tmp_path, reference_digest, capsys):
    two = tmp_path / "two"
    assert main(["materialize", "--out", str(two), "--workers", "2", "--quiet"]) == 0
    assert tree_digest(two) == reference_digest

    sharded = tmp_path / "sharded"
    assert main(["materialize", "--out", str(sharded), "--workers", "1", "--shard", "1/2", "--quiet"]) == 0
    assert main(["materialize", "--out", str(sharded), "--workers", "2", "--shard", "2/2", "--quiet"]) == 0
    parts = [load(sharded / f"manifest.shard-{k}-of-2.json") for k in (1, 2)]
    assert all(p["complete"] for p in parts)
    assert sum(len(p["files"]) for p in parts) == 110 + 48
    assert not (sharded / "manifest.json").exists()
    assert main(["verify", str(sharded)]) == 1
    assert "without --shard to merge" in capsys.readouterr().out
    # the merge: finds every image written, writes the annotations and the manifest
    assert main(["materialize", "--out", str(sharded), "--workers", "1"]) == 0
    assert "wrote 0 images" in capsys.readouterr().out
    assert tree_digest(sharded) == reference_digest


def test_threaded_caller_uses_fork_server_with_identical_bytes(tmp_path, reference):
    # with another Python thread alive, workers are not forked from the caller
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait, daemon=True)
    thread.start()
    try:
        out = tmp_path / "o"
        argv = ["materialize", "--out", str(out), "--splits", "val", "--configs", "defocus-7,noise-gaussian"]
        assert main([*argv, "--workers", "2", "--quiet"]) == 0
    finally:
        stop.set()
        thread.join()
    for config in ("defocus-7", "noise-gaussian"):
        assert tree_digest(out / "val" / config) == tree_digest(reference / "val" / config)


def test_fixture_hands_coco_end_to_end(tmp_path, fixtures_dir):
    hands = fixtures_dir / "hands"
    sets = ("rhd", "freihand", "onehand10k", "panoptic")
    argv = ["materialize", "--dataset", "coco", "--out", str(tmp_path / "o"), "--workers", "1", "--quiet"]
    for name in sets:
        argv += ["--annotations", f"{name}={hands / name / f'test_{name}.json'}"]
    assert main([*argv, "--fraction", "0.5"]) == 0
    manifest = load(tmp_path / "o" / "manifest.json")
    assert manifest["splits"] == list(sets) and manifest["complete"]
    for name in sets:
        src = load(hands / name / f"test_{name}.json")
        src_anns = {a["id"]: a for a in src["annotations"]}
        src_files = {im["id"]: im["file_name"] for im in src["images"]}
        base = CocoKeypoints(hands / name / f"test_{name}.json")
        ds = CorruptedDataset(base, fraction=0.5)
        for config in CONFIGS:
            coco = load(tmp_path / "o" / name / config / "annotations.json")
            images = {im["id"]: im for im in coco["images"]}
            assert len(coco["annotations"]) == round(0.5 * len(src_anns))
            assert coco["categories"] == src["categories"]  # a COCO source's own, as they are
            for pos, ann in enumerate(coco["annotations"], start=1):
                file_name, ann_id = ann["source_id"].rsplit("#", 1)
                original = src_anns[int(ann_id)]
                assert src_files[original["image_id"]] == file_name
                # every field of the source's annotation as it is (nested keypoints too); without
                # a suite the ids are the output's position
                assert without(ann, "id", "image_id", "source_id") == without(original, "id", "image_id")
                assert ann["id"] == ann["image_id"] == pos
                out_file = tmp_path / "o" / name / config / images[ann["image_id"]]["file_name"]
                pos = ds.plan.index((base.ids.index(ann["source_id"]), config))
                np.testing.assert_array_equal(decode_rgb(out_file), ds[pos]["image"])
        clean = load(tmp_path / "o" / name / "clean" / "annotations.json")
        # the clean split: the source's annotations and image ids (its file_name the copy's)
        assert [without(a, "source_id") for a in clean["annotations"]] == src["annotations"]
        assert [without(im, "file_name", "source_file") for im in clean["images"]] == [
            without(im, "file_name") for im in src["images"]
        ]


@pytest.mark.slow
def test_console_script_on_freihand_fixture_and_verify(tmp_path, fixtures_dir):
    freihand = fixtures_dir / "hands" / "freihand"
    out = tmp_path / "o"
    cmd = [str(CONSOLE_SCRIPT), "materialize", "--dataset", "coco", "--out", str(out), "--workers", "2"]
    cmd += ["--annotations", str(freihand / "test_freihand.json"), "--images", str(freihand)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    # not a terminal: no progress bar, one summary line with the rate
    assert "\r" not in res.stderr and "%|" not in res.stderr
    assert res.stdout.startswith("wrote 30 images in ") and "images/s" in res.stdout  # 22 + 8 clean
    assert len(list((out / "val").glob("*/images/*.png"))) == 11 * round(0.2 * 8)
    res = subprocess.run(
        [str(CONSOLE_SCRIPT), "verify", str(out)], capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0 and res.stdout.startswith("OK: 30 image files and 12 annotation files")


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_on_a_terminal_and_quiet(tmp_path, capsys, monkeypatch):
    argv = ["materialize", "--out", str(tmp_path / "a"), "--splits", "val", "--configs", "motion-15"]
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main([*argv, "--workers", "1"]) == 0
    monkeypatch.undo()
    assert "bundled synthetic STB sample" in terminal.getvalue()
    assert "img/s" in terminal.getvalue() and "100%" in terminal.getvalue()
    out = capsys.readouterr().out
    assert out.startswith("wrote 10 images in ") and "images/s" in out  # 2 + the 8 clean copies
    argv[2] = str(tmp_path / "b")
    assert main([*argv, "--workers", "1", "--quiet"]) == 0
    assert capsys.readouterr() == ("", "")


def test_jpeg_output_is_deterministic(tmp_path):
    argv = ["materialize", "--splits", "val", "--configs", "defocus-13,occlusion-30", "--format", "jpg"]
    argv += ["--jpeg-quality", "90", "--quiet"]
    assert main([*argv, "--out", str(tmp_path / "a"), "--workers", "1"]) == 0
    assert main([*argv, "--out", str(tmp_path / "b"), "--workers", "2"]) == 0
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b")
    coco = load(tmp_path / "a" / "val" / "defocus-13" / "annotations.json")
    assert all(im["file_name"].endswith(".jpg") for im in coco["images"])
    assert load(tmp_path / "a" / "manifest.json")["jpeg_quality"] == 90
    assert decode_rgb(tmp_path / "a" / "val" / "defocus-13" / coco["images"][0]["file_name"]).shape == (
        480,
        640,
        3,
    )


def test_png_compression_reaches_the_encoder_and_the_manifest(tmp_path, reference, capsys):
    argv = ["materialize", "--splits", "val", "--configs", "defocus-7,noise-gaussian,occlusion-20"]
    argv += ["--workers", "1", "--quiet"]
    default = {f["path"]: f["size"] for f in load(reference / "manifest.json")["files"]}
    assert load(reference / "manifest.json")["png_compression"] is None
    sizes = {}
    for level in (0, 9):
        out = tmp_path / str(level)
        assert main([*argv, "--out", str(out), "--png-compression", str(level)]) == 0
        manifest = load(out / "manifest.json")
        assert manifest["png_compression"] == level
        sizes[level] = {f["path"]: f["size"] for f in manifest["files"] if f["config"] != "clean"}
        for path in sizes[level]:  # other bytes, the same pixels
            np.testing.assert_array_equal(decode_rgb(out / path), decode_rgb(reference / path))
    assert len(sizes[0]) == 6
    for path, size in sizes[0].items():
        assert size >= 480 * (640 * 3 + 1)  # level 0 stores the rows (and filter bytes) uncompressed
        assert size > default[path] > sizes[9][path]
    # the level is a setting: a resume with another one is refused
    assert main([*argv, "--out", str(tmp_path / "0"), "--png-compression", "9"]) == 2
    assert "png_compression 0 (existing) vs 9 (now)" in capsys.readouterr().err


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="names fsync-ed files through /proc")
def test_fsync_syncs_each_file_before_its_rename_and_its_folder_after(tmp_path, monkeypatch, reference):
    synced = []  # what each os.fsync call synced, by the name its descriptor had at that moment
    real_fsync = os.fsync

    def spy(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    argv = [
        "materialize",
        "--splits",
        "val",
        "--configs",
        "defocus-7,occlusion-20",
        "--workers",
        "1",
        "--quiet",
    ]
    plain, durable = tmp_path.resolve() / "plain", tmp_path.resolve() / "durable"
    assert main([*argv, "--out", str(plain)]) == 0
    assert not any(".png.tmp-" in name for name in synced)  # images are not synced by default
    synced.clear()
    assert main([*argv, "--out", str(durable), "--fsync"]) == 0

    files = [f["path"] for f in load(durable / "manifest.json")["files"] if f["config"] != "clean"]
    assert len(files) == 4  # the encoded ones (the clean copies are hard links)
    for rel in files:
        path = durable / rel
        own = [
            i
            for i, name in enumerate(synced)
            if os.path.dirname(name) == str(path.parent) and temp_target(os.path.basename(name)) == path.name
        ]
        assert len(own) == 1, rel  # synced once, under its temporary name: before the rename
        assert str(path.parent) in synced[own[0] + 1 :], rel  # then its folder, after the rename
    assert any(name.endswith("/.keypoint-corrupt/journal/main.jsonl") for name in synced)
    assert tree_digest(durable) == tree_digest(plain)
    for config in ("defocus-7", "occlusion-20"):
        assert tree_digest(durable / "val" / config / "images") == tree_digest(
            reference / "val" / config / "images"
        )


def test_changed_settings_are_refused_unless_overwrite(tmp_path, reference, bundled, capsys):
    out = tmp_path / "o"
    shutil.copytree(reference, out)
    # another dataset (a copy of the same one at another path resumes: tests/reliability)
    other = os.path.join(os.path.dirname(__file__), "..", "data", "hands", "freihand", "test_freihand.json")
    cases = {
        ("--seed", "1"): "seed 0 (existing) vs 1 (now)",
        ("--fraction", "0.3"): "fraction 0.2 (existing) vs 0.3 (now)",
        ("--configs", "defocus-7"): "configs",
        ("--splits", "val"): "splits",
        ("--format", "jpg"): "image_format",
        ("--dataset", "coco", "--annotations", other): "dataset",
    }
    for extra, message in cases.items():
        assert main(["materialize", "--out", str(out), "--quiet", *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and "--overwrite" in err, err
    assert tree_digest(out) == tree_digest(reference)  # nothing was touched

    argv = ["materialize", "--out", str(out), "--seed", "1", "--splits", "val", "--configs", "defocus-7"]
    assert main([*argv, "--overwrite", "--quiet"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "val"]
    assert sorted(p.name for p in (out / "val").iterdir()) == ["clean", "defocus-7"]
    fresh = tmp_path / "fresh"
    assert main([*argv[:2], str(fresh), *argv[3:], "--quiet"]) == 0
    assert tree_digest(out) == tree_digest(fresh)


def test_foreign_or_bad_output_folder(tmp_path, capsys):
    out = tmp_path / "o"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    argv = ["materialize", "--out", str(out), "--splits", "val", "--configs", "defocus-7", "--quiet"]
    assert main(argv) == 2
    assert "holds no keypoint-corrupt manifest" in capsys.readouterr().err
    assert main([*argv, "--overwrite"]) == 0
    assert (out / "notes.txt").read_text() == "mine"  # only what the tool writes is replaced
    (tmp_path / "file").write_text("x")
    assert main(["materialize", "--out", str(tmp_path / "file"), "--quiet"]) == 2
    assert "not a folder" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--configs", "defocus-8"], "unknown configuration(s) defocus-8"),
        (["--fraction", "0"], "--fraction must be in (0, 1]"),
        (["--splits", "test"], "unknown split 'test'"),
        (["--workers", "0"], "--workers must be >= 1"),
        (["--dataset", "stb"], "--dataset stb needs --root"),
        (["--dataset", "coco"], "--dataset coco needs --annotations"),
        (["--root", "x"], "need --dataset"),
        (["--png-compression", "12"], "PNG compression must be in 0..9"),
    ],
)
def test_bad_options_exit_2_with_one_line(tmp_path, capsys, argv, message):
    assert main(["materialize", "--out", str(tmp_path / "o"), "--quiet", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


def test_each_source_is_decoded_once_for_all_its_configurations(tmp_path, monkeypatch, reference):
    from keypoint_corrupt.datasets import corrupted

    decoded = []
    real = corrupted.load_image
    monkeypatch.setattr(corrupted, "load_image", lambda s: decoded.append(s.id) or real(s))
    assert main(["materialize", "--out", str(tmp_path / "o"), "--workers", "1", "--quiet"]) == 0
    files = load(reference / "manifest.json")["files"]
    sources = {(f["split"], f["source_id"]) for f in files}
    assert len(decoded) == len(sources) < len(files)  # 110 files from fewer decodes
    assert tree_digest(tmp_path / "o") == tree_digest(reference)
