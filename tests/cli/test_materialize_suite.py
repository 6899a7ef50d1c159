"""`keypoint-corrupt materialize --suite`: the COCO-C layout, whole images, determinism, resume, repair.

A suite's subsets go to ``OUT/<split>/<corruption>/<severity>/`` and corrupt each image once,
with every annotation of the image in the subset's annotation file, as COCO-C is laid out. The
pixels are checked against an independent recomputation (``apply_corruption`` with the image's
own random stream and all its keypoints), the annotations against the clean split's.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time

import cv2
import numpy as np
import pytest
from kc_cli_helpers import PY_CLI, decode_rgb, temp_files, tree_digest
from kc_cli_helpers import load_json as load

from keypoint_corrupt import _paths
from keypoint_corrupt.cli.main import main
from keypoint_corrupt.datasets import CocoKeypoints, CorruptedDataset, load_image, sample_rng
from keypoint_corrupt.datasets import corrupted as corrupted_module
from keypoint_corrupt.functional.imagenet_c import _textures
from keypoint_corrupt.materialize import run as run_module
from keypoint_corrupt.registry import apply_corruption, register_config, unregister_config
from keypoint_corrupt.suites import available_suites, get_suite, register_suite, unregister_suite
from keypoint_corrupt.transforms import ImageNetC

#: A user's suite: two blur levels and one occlusion level (keypoint-aware: it reads the keypoints).
TINY = "tiny-test-suite"
TINY_TABLE = {"blur": ("defocus-7", "defocus-13"), "occ": ("occlusion-20",)}


@pytest.fixture(scope="module")
def tiny_suite():
    register_suite(TINY, TINY_TABLE, replace=True)
    yield TINY
    unregister_suite(TINY)


@pytest.fixture(scope="module")
def small_coco(tmp_path_factory, fixtures_dir):
    """The four COCO body fixtures (14 people, up to 5 per image) at a quarter of their size."""
    src = fixtures_dir / "body" / "coco"
    root = tmp_path_factory.mktemp("small_coco")
    coco = load(src / "test_coco.json")
    factor = 4
    for im in coco["images"]:
        bgr = cv2.imread(str(src / im["file_name"]), cv2.IMREAD_COLOR)
        small = cv2.resize(bgr, (im["width"] // factor, im["height"] // factor), interpolation=cv2.INTER_AREA)
        assert cv2.imwrite(str(root / im["file_name"]), small, [cv2.IMWRITE_JPEG_QUALITY, 95])
        im["width"], im["height"] = small.shape[1], small.shape[0]
    for ann in coco["annotations"]:
        kps = ann["keypoints"]
        ann["keypoints"] = [v / factor if i % 3 < 2 else v for i, v in enumerate(kps)]
        ann["bbox"] = [v / factor for v in ann["bbox"]]
        ann["area"] = ann["area"] / factor**2
    (root / "val.json").write_text(json.dumps(coco))
    return root / "val.json"


def coco_args(ann, *extra):
    return ["materialize", "--dataset", "coco", "--annotations", str(ann), *extra]


@pytest.fixture(scope="module")
def coco_out(tmp_path_factory, small_coco, tiny_suite):
    out = tmp_path_factory.mktemp("coco_suite") / "out"
    argv = coco_args(small_coco, "--suite", tiny_suite, "--out", str(out), "--workers", "1", "--quiet")
    assert main(argv) == 0
    return out


def test_layout_is_split_corruption_severity_with_every_image(coco_out, small_coco):
    folders = sorted(p.parent.relative_to(coco_out).as_posix() for p in coco_out.rglob("annotations.json"))
    assert folders == ["val/blur/1", "val/blur/2", "val/clean", "val/occ/1"]
    source = load(small_coco)
    names = sorted(im["file_name"].replace(".jpg", ".png") for im in source["images"])
    for folder in ["val/blur/1", "val/blur/2", "val/occ/1"]:
        on_disk = sorted(p.name for p in (coco_out / folder / "images").iterdir())
        assert on_disk == names  # the fraction is 1.0 with a suite: every image, once
    manifest = load(coco_out / "manifest.json")
    assert manifest["complete"] and manifest["suite"] == TINY and manifest["severities"] == [1, 2]
    assert manifest["fraction"] == 1.0
    places = {c["name"]: (c["corruption"], c["severity"]) for c in manifest["configs"]}
    assert places == {"defocus-7": ("blur", 1), "defocus-13": ("blur", 2), "occlusion-20": ("occ", 1)}
    assert main(["verify", str(coco_out)]) == 0


def test_each_subset_lists_every_annotation_of_every_image_as_the_clean_split(coco_out, small_coco):
    from pycocotools.coco import COCO

    clean = load(coco_out / "val" / "clean" / "annotations.json")
    assert len(clean["annotations"]) == len(load(small_coco)["annotations"]) == 14
    for folder in ["blur/1", "blur/2", "occ/1"]:
        path = coco_out / "val" / folder / "annotations.json"
        subset = load(path)
        # the same ids, keypoints, boxes and categories as the clean file: only the files differ
        strip = ("source_id",)
        assert [{k: v for k, v in a.items() if k not in strip} for a in subset["annotations"]] == [
            {k: v for k, v in a.items() if k not in strip} for a in clean["annotations"]
        ]
        assert [im["id"] for im in subset["images"]] == [im["id"] for im in clean["images"]]
        assert [im["file_name"].replace(".png", ".jpg") for im in subset["images"]] == [
            im["file_name"] for im in clean["images"]
        ]
        assert subset["categories"] == clean["categories"]
        assert subset["info"]["keypoint_corrupt"]["suite"] == TINY
        api = COCO(str(path))
        assert len(api.getAnnIds()) == 14 and len(api.getImgIds()) == 4


def test_each_image_is_corrupted_once_with_its_own_stream_and_all_its_keypoints(coco_out, small_coco):
    """Independent recomputation: the image's random stream (seed, file name, configuration) and
    the keypoints of every person on it (the occluder depends on them)."""
    source = load(small_coco)
    people = {}
    for ann in source["annotations"]:
        people.setdefault(ann["image_id"], []).append(np.asarray(ann["keypoints"], float).reshape(-1, 3))
    for im in source["images"]:
        kps = np.concatenate(people[im["id"]])
        person = np.repeat(np.arange(len(people[im["id"]])), 17)
        image = decode_rgb(small_coco.parent / im["file_name"])
        stem = im["file_name"].replace(".jpg", ".png")
        for folder, config in [("blur/2", "defocus-13"), ("occ/1", "occlusion-20")]:
            want, _ = apply_corruption(
                config,
                image,
                kps[:, :2],
                visibility=kps[:, 2] > 0,
                instances=person,
                rng=sample_rng(0, im["file_name"], config),
            )
            got = decode_rgb(coco_out / "val" / folder / "images" / stem)
            np.testing.assert_array_equal(got, want)


def test_stb_suite_writes_the_configs_bytes_under_corruption_and_severity(tmp_path, capsys):
    """An STB image has one sample: the suite's files are the --configs files, moved to the new layout."""
    suite_out, configs_out = tmp_path / "s", tmp_path / "c"
    common = ["materialize", "--splits", "val", "--workers", "1", "--quiet"]
    assert main([*common, "--out", str(suite_out), "--suite", "costa2021", "--severities", "2"]) == 0
    assert (
        main([*common, "--out", str(configs_out), "--fraction", "1", "--configs", "motion-30,occlusion-20"])
        == 0
    )
    for name, folder in [("motion-30", "motion/2"), ("occlusion-20", "occlusion/2")]:
        ours = tree_digest(suite_out / "val" / folder / "images")
        theirs = tree_digest(configs_out / "val" / name / "images")
        assert ours == theirs and len(ours) == 8
    # costa2021's noises have one level: no severity 2, no folder
    assert sorted(p.name for p in (suite_out / "val").iterdir()) == [
        "clean",
        "defocus",
        "motion",
        "occlusion",
    ]
    assert load(suite_out / "manifest.json")["severities"] == [2]


@pytest.fixture(scope="module")
def stb_reference(tmp_path_factory):
    """An uninterrupted one-worker costa2021 run (severity 1) of the bundled sample's val split."""
    out = tmp_path_factory.mktemp("stb_suite") / "out"
    assert main([*STB_SUITE, "--out", str(out), "--workers", "1"]) == 0
    return out


STB_SUITE = ["materialize", "--splits", "val", "--suite", "costa2021", "--severities", "1", "--quiet"]


def test_workers_and_shards_give_identical_bytes(tmp_path, stb_reference):
    want = tree_digest(stb_reference)
    two = tmp_path / "two"
    assert main([*STB_SUITE, "--out", str(two), "--workers", "2"]) == 0
    assert tree_digest(two) == want
    sharded = tmp_path / "sharded"
    for k in ("2", "1"):
        assert main([*STB_SUITE, "--out", str(sharded), "--workers", "1", "--shard", f"{k}/2"]) == 0
    assert not (sharded / "manifest.json").exists()
    assert main([*STB_SUITE, "--out", str(sharded), "--workers", "1"]) == 0  # the merge
    assert tree_digest(sharded) == want


class FailingReplace:
    """``os`` for the atomic writer, whose ``replace`` of image files fails after ``after`` calls."""

    def __init__(self, after):
        self.after, self.calls = after, 0

    def __getattr__(self, name):
        return getattr(os, name)

    def replace(self, src, dst):
        if str(dst).endswith(".png"):
            if self.calls >= self.after:
                raise OSError(28, os.strerror(28), str(dst))
            self.calls += 1
        return os.replace(src, dst)


def test_a_stopped_run_resumes_to_the_same_bytes(tmp_path, stb_reference, monkeypatch, capsys):
    out = tmp_path / "o"
    monkeypatch.setattr(_paths, "os", FailingReplace(7))
    assert main([*STB_SUITE, "--out", str(out), "--workers", "1"]) == 2
    assert "no space left on device" in capsys.readouterr().err
    manifest = load(out / "manifest.json")
    assert manifest["complete"] is False and len(manifest["files"]) == 7
    assert temp_files(out) == []
    monkeypatch.undo()
    assert main([*STB_SUITE, "--out", str(out), "--workers", "1"]) == 0
    assert tree_digest(out) == tree_digest(stb_reference)


def wait_for_the_lock(path, seconds=30.0):
    """Wait until no process holds ``path``'s lock (the kernel drops it when the last holder exits)."""
    import fcntl

    deadline = time.monotonic() + seconds
    fd = os.open(path, os.O_RDWR)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                assert time.monotonic() < deadline, f"{path} still locked after {seconds} s"
                time.sleep(0.01)
            else:
                fcntl.flock(fd, fcntl.LOCK_UN)
                return
    finally:
        os.close(fd)


@pytest.mark.slow
@pytest.mark.skipif(os.name != "posix", reason="kills a process group and reads its flock")
def test_kill_9_mid_run_then_resume(tmp_path, stb_reference):
    out = tmp_path / "o"
    cmd = [*PY_CLI, *STB_SUITE, "--out", str(out), "--workers", "2"]
    journal = out / ".keypoint-corrupt" / "journal"
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None and sum(1 for f in journal.glob("*.jsonl") for _ in f.open()) < 5:
            assert time.monotonic() < deadline, "nothing journaled within 120 s"
            time.sleep(0.002)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    if proc.returncode == 0:
        pytest.skip("the run finished before it could be killed")
    wait_for_the_lock(out / ".keypoint-corrupt" / "lock")  # killed workers close it as they exit
    assert main(["verify", str(out), "--quiet"]) == 1  # the run is incomplete
    assert main([*STB_SUITE, "--out", str(out), "--workers", "2"]) == 0
    assert temp_files(out) == []
    assert tree_digest(out) == tree_digest(stb_reference)


def test_verify_and_repair_read_the_suite_back(tmp_path, stb_reference, capsys):
    out = tmp_path / "o"
    shutil.copytree(stb_reference, out)
    damaged = out / "val" / "motion" / "1" / "images" / "B1Counting" / "BB_left_0.png"
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    (out / "val" / "occlusion" / "1" / "annotations.json").unlink()
    assert main(["verify", str(out)]) == 1
    report = capsys.readouterr()
    assert "val/motion/1/images/B1Counting/BB_left_0.png: sha256" in report.out
    assert "val/occlusion/1/annotations.json: missing" in report.out
    assert "keypoint-corrupt materialize --repair --out" in report.err
    # no --suite, --severities, --fraction, --splits: all read back from the manifest
    assert main(["materialize", "--out", str(out), "--repair", "--workers", "1"]) == 0
    repaired = capsys.readouterr().out
    assert "val/motion/1/images/B1Counting/BB_left_0.png" in repaired
    assert "val/occlusion/1/annotations.json" in repaired and "rewrote 2 file(s)" in repaired
    assert tree_digest(out) == tree_digest(stb_reference)


def test_repair_without_a_manifest_checks_the_suite_against_the_annotation_files(
    tmp_path, stb_reference, capsys
):
    out = tmp_path / "o"
    shutil.copytree(stb_reference, out)
    (out / "manifest.json").unlink()
    argv = ["materialize", "--out", str(out), "--repair", "--workers", "1", "--quiet", "--splits", "val"]
    assert main([*argv, "--configs", "defocus-7,motion-15,occlusion-10,noise-gaussian,noise-saltpepper"]) == 2
    assert "suite costa2021 (existing) vs None (now)" in capsys.readouterr().err
    assert main([*argv, "--suite", "costa2021", "--severities", "1"]) == 0
    assert tree_digest(out) == tree_digest(stb_reference)


def test_a_suite_run_refuses_a_folder_of_other_settings(tmp_path, stb_reference, capsys):
    out = tmp_path / "o"
    shutil.copytree(stb_reference, out)
    assert main([*STB_SUITE[:-3], "--severities", "2", "--quiet", "--out", str(out), "--workers", "1"]) == 2
    assert "severities [1] (existing) vs [2] (now)" in capsys.readouterr().err
    assert main([*STB_SUITE, "--out", str(out), "--workers", "1", "--overwrite"]) == 0
    assert tree_digest(out) == tree_digest(stb_reference)


def test_overwrite_clears_a_suite_output_for_a_configs_output(tmp_path, stb_reference):
    out = tmp_path / "o"
    shutil.copytree(stb_reference, out)
    argv = ["materialize", "--splits", "val", "--configs", "motion-15", "--out", str(out), "--quiet"]
    assert main([*argv, "--overwrite", "--workers", "1"]) == 0
    assert sorted(p.name for p in (out / "val").iterdir()) == ["clean", "motion-15"]
    assert main(["verify", str(out)]) == 0


def test_moved_keypoints_are_written_where_the_corruption_put_them(
    tmp_path, small_coco, monkeypatch, tiny_suite
):
    """A corruption that moves the content reports the moved keypoints: the annotations follow them."""
    shift = np.array([3.0, -2.0])

    def moving(name, image, keypoints=None, **kwargs):
        out, info = apply_corruption(name, image, keypoints, **kwargs)
        if name == "defocus-7":
            info = {**info, "keypoints": np.asarray(keypoints, float) + shift}
        return out, info

    monkeypatch.setattr(corrupted_module, "apply_corruption", moving)
    out = tmp_path / "o"
    assert (
        main(coco_args(small_coco, "--suite", tiny_suite, "--out", str(out), "--workers", "1", "--quiet"))
        == 0
    )
    clean = load(out / "val" / "clean" / "annotations.json")["annotations"]
    moved = load(out / "val" / "blur" / "1" / "annotations.json")["annotations"]
    kept = load(out / "val" / "blur" / "2" / "annotations.json")["annotations"]
    assert len(moved) == len(clean) == 14
    for m, k, c in zip(moved, kept, clean, strict=True):
        want = np.asarray(c["keypoints"], float).reshape(-1, 3)
        got = np.asarray(m["keypoints"], float).reshape(-1, 3)
        labelled = want[:, 2] > 0  # an unlabelled joint (0, 0, 0) marks no place: it stays
        np.testing.assert_allclose(got[labelled, :2], want[labelled, :2] + shift, atol=1e-4)
        assert got[~labelled].tolist() == want[~labelled].tolist()
        assert got[:, 2].tolist() == want[:, 2].tolist()  # the flags stay the source's
        assert k["keypoints"] == c["keypoints"]  # a corruption that moves nothing: labels as published
    records = [f for f in load(out / "manifest.json")["files"] if f["config"] == "defocus-7"]
    assert records and all("keypoints" in f for f in records)
    assert main(["verify", str(out)]) == 0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--suite", "costa2021", "--configs", "motion-15"], "--suite costa2021 and --configs motion-15"),
        (["--suite", "no-such-suite"], "--suite: unknown suite 'no-such-suite'"),
        (
            ["--suite", "costa2021", "--severities", "7"],
            "--severities 7: severities of suite 'costa2021' are 1..3",
        ),
        (["--suite", "costa2021", "--severities", "x"], "--severities x: severities must look like"),
        (["--severities", "1"], "--severities 1 needs --suite"),
    ],
)
def test_bad_suite_options_exit_2_with_one_line(tmp_path, capsys, extra, message):
    out = tmp_path / "o"
    assert main(["materialize", "--out", str(out), "--quiet", *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not out.exists()


def test_a_suite_corruption_named_like_a_folder_of_ours_is_refused(tmp_path, capsys):
    register_suite("clashing-test-suite", {"clean": ("defocus-7",)}, replace=True)
    try:
        argv = ["materialize", "--out", str(tmp_path / "o"), "--suite", "clashing-test-suite", "--quiet"]
        assert main(argv) == 2
        assert "corruption name 'clean' cannot name a folder" in capsys.readouterr().err
    finally:
        unregister_suite("clashing-test-suite")


def test_the_python_api_takes_a_suite_and_its_severities(tmp_path):
    from keypoint_corrupt.datasets import bundled_sample_root
    from keypoint_corrupt.materialize import DatasetSpec, MaterializeError, MaterializeOptions, materialize

    spec = DatasetSpec("stb", bundled_sample_root(), bundled=True)
    res = materialize(
        MaterializeOptions(tmp_path / "o", spec, splits=("val",), suite="costa2021", severities=(3,))
    )
    assert res.complete and res.written == 8 * 3 + 8  # defocus, motion, occlusion at 3; clean copies
    assert get_suite("costa2021").configs(severities=[3]) == ("defocus-21", "motion-45", "occlusion-30")
    with pytest.raises(MaterializeError, match="not both"):
        materialize(MaterializeOptions(tmp_path / "p", spec, suite="costa2021", configs=("defocus-7",)))
    with pytest.raises(MaterializeError, match="need a suite"):
        materialize(MaterializeOptions(tmp_path / "p", spec, severities=(1,)))


@pytest.mark.skipif("imagenet-c" not in available_suites(), reason="the imagenet-c suite is not registered")
def test_imagenet_c_writes_labels_as_published(tmp_path, small_coco):
    """COCO-C's protocol: elastic_transform moves the content, the annotations stay the clean ones."""
    out = tmp_path / "o"
    argv = coco_args(small_coco, "--suite", "imagenet-c", "--severities", "2", "--out", str(out), "--quiet")
    assert main([*argv, "--workers", "1"]) == 0
    suite = get_suite("imagenet-c")
    folders = sorted(p.parent.relative_to(out / "val").as_posix() for p in out.rglob("annotations.json"))
    assert folders == sorted(["clean", *(f"{c}/2" for c in suite.corruptions)])
    clean = load(out / "val" / "clean" / "annotations.json")["annotations"]
    for corruption in suite.corruptions:
        assert load(out / "val" / corruption / "2" / "annotations.json")["annotations"] == clean
    assert not any("keypoints" in f for f in load(out / "manifest.json")["files"])
    assert main(["verify", str(out)]) == 0


@pytest.fixture
def moving_elastic():
    """A user's elastic warp that moves the keypoints with the content (the registry's do not)."""
    name = "test-elastic-moving"
    params = {"corruption": "elastic_transform", "severity": 5, "move_keypoints": True}
    register_config(name, ImageNetC, params)
    yield name
    unregister_config(name)


@pytest.mark.parametrize("layout", ["configs", "suite"])
def test_a_warp_moves_only_the_labelled_keypoints(tmp_path, small_coco, moving_elastic, layout):
    """COCO's unlabelled joints (0, 0, v=0) stay 0, 0; each labelled one goes where the warp put it."""
    out = tmp_path / "o"
    if layout == "suite":
        register_suite("moving-test-suite", {"elastic": (moving_elastic,)}, replace=True)
        try:
            argv = coco_args(small_coco, "--suite", "moving-test-suite", "--out", str(out))
            assert main([*argv, "--workers", "1", "--quiet"]) == 0
        finally:
            unregister_suite("moving-test-suite")
        written = load(out / "val" / "elastic" / "1" / "annotations.json")["annotations"]
    else:
        argv = coco_args(small_coco, "--configs", moving_elastic, "--fraction", "1", "--out", str(out))
        assert main([*argv, "--workers", "1", "--quiet"]) == 0
        written = load(out / "val" / moving_elastic / "annotations.json")["annotations"]
    source = {a["id"]: a for a in load(small_coco)["annotations"]}
    images = {im["id"]: im["file_name"] for im in load(small_coco)["images"]}
    by_source_id = {f"{images[a['image_id']]}#{a['id']}": a for a in source.values()}
    unlabelled = moved = 0
    for ann in written:
        src = np.asarray(by_source_id[ann["source_id"]]["keypoints"], float).reshape(-1, 3)
        got = np.asarray(ann["keypoints"], float).reshape(-1, 3)
        assert got[:, 2].tolist() == src[:, 2].tolist()
        hidden = src[:, 2] == 0
        assert got[hidden].tolist() == src[hidden].tolist()  # 0, 0, 0 as the source wrote it
        unlabelled += int(hidden.sum())
        moved += int((np.abs(got[~hidden, :2] - src[~hidden, :2]) > 0.5).any(axis=1).sum())
    assert unlabelled > 0 and moved > 0  # the fixture has both kinds, and the warp moved joints
    # The dataset item carries the same keypoints (float32), so a stream and the files agree.
    coco = CocoKeypoints(small_coco)
    index = next(i for i, s in enumerate(coco) if not s.visibility.all())
    item = CorruptedDataset(coco, [moving_elastic], fraction=1.0)[index]
    sample = coco[item["base_index"]]
    hidden = ~sample.visibility
    assert hidden.any()
    np.testing.assert_array_equal(item["keypoints"][hidden], sample.keypoints[hidden].astype(np.float32))
    _, info = apply_corruption(
        moving_elastic,
        load_image(sample),
        sample.keypoints,
        visibility=sample.visibility,
        rng=sample_rng(0, sample.id, moving_elastic),
    )
    reported = np.asarray(info["keypoints"], np.float32)[:, :2]
    np.testing.assert_array_equal(item["keypoints"][~hidden], reported[~hidden])


@pytest.mark.skipif("imagenet-c" not in available_suites(), reason="the imagenet-c suite is not registered")
def test_missing_frost_textures_stop_the_run_before_any_work(tmp_path, small_coco, no_frost_textures, capsys):
    """One line naming the configurations, the missing textures and how to get them; nothing written."""
    out = tmp_path / "o"
    argv = coco_args(small_coco, "--suite", "imagenet-c", "--severities", "1,2", "--out", str(out))
    assert main([*argv, "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "imagenet-c.frost-1, imagenet-c.frost-2 cannot run" in err and no_frost_textures in err
    assert "pip install --no-deps imagecorruptions==1.1.2" in err and _textures.ENV_VAR in err
    assert "textures=" not in err and "source image" not in err  # no option a command line lacks
    assert not out.exists()


def test_a_corruption_that_fails_stops_the_run_without_blaming_the_source(
    tmp_path, small_coco, no_frost_textures, monkeypatch, capsys
):
    """The textures vanish after the check: frost's FileNotFoundError is the corruption's, not the image's."""
    monkeypatch.setattr(run_module, "check_runnable", lambda configs: None)
    out = tmp_path / "o"
    argv = coco_args(small_coco, "--configs", "defocus-7,imagenet-c.frost-1", "--fraction", "1")
    assert main([*argv, "--out", str(out), "--workers", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "imagenet-c.frost-1 failed on " in err[0] and "FileNotFoundError" in err[0]
    assert no_frost_textures in err[0] and "re-run the same command to resume" in err[0]
    manifest = load(out / "manifest.json")
    assert manifest["complete"] is False and manifest["errors"] == []  # no source error recorded


def test_a_source_that_cannot_be_read_is_still_a_source_error(tmp_path, small_coco, capsys):
    images = tmp_path / "images"
    shutil.copytree(small_coco.parent, images)
    broken = load(small_coco)["images"][0]["file_name"]
    (images / broken).write_bytes(b"not an image")
    out = tmp_path / "o"
    argv = coco_args(images / "val.json", "--configs", "defocus-7", "--fraction", "1", "--out", str(out))
    assert main([*argv, "--workers", "1", "--quiet"]) == 1
    assert "1 source image(s) could not be read" in capsys.readouterr().err
    errors = load(out / "manifest.json")["errors"]
    assert [e["source_path"].endswith(broken) for e in errors] == [True] * len(errors) and errors


def test_training_reads_every_subset_of_a_suite_output(tmp_path):
    """S-train* of a suite output: the clean split and each <corruption>/<severity> folder, as benchmark."""
    from keypoint_corrupt.benchmark.sources import MaterializedSource
    from keypoint_corrupt.cli.data import training_data

    out = tmp_path / "o"
    argv = ["materialize", "--splits", "train", "--suite", "costa2021", "--severities", "1,3", "--fraction"]
    assert main([*argv, "0.25", "--out", str(out), "--workers", "1", "--quiet"]) == 0
    items, _, _, _ = training_data(str(out), None, "S-train*")
    subsets = sorted((out / "train").glob("*/[0-9]/annotations.json"))
    assert len(subsets) == len(get_suite("costa2021").configs([1, 3])) == 8
    clean = load(out / "train" / "clean" / "annotations.json")["annotations"]
    assert len(items) == len(clean) + sum(len(load(f)["annotations"]) for f in subsets)
    rows = MaterializedSource(out, "train").groups  # what benchmark reads: the same subsets
    assert sorted(n for n, _ in rows[1:]) == sorted(get_suite("costa2021").configs([1, 3]))
    assert len(items) == sum(size for _, size in rows)


def test_the_occluder_targets_one_person_per_image_and_the_annotations_say_which(coco_out, small_coco):
    """Independent check: the occluder lies inside the grown box of the named person's labelled
    joints (and not of all people together), the choice is the image stream's first draw, and
    the named annotation is one of the image's people."""
    source = load(small_coco)
    subset = load(coco_out / "val" / "occ" / "1" / "annotations.json")
    by_image = {}
    for ann in subset["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    spread = 0
    for im in subset["images"]:
        people = by_image[im["id"]]
        labelled = [p for p in people if p["num_keypoints"] > 0]
        target = next(p for p in people if p["id"] == im["target_annotation_id"])
        assert target["num_keypoints"] > 0
        if len(labelled) > 1:  # the first draw of the image's stream picks among the labelled people
            rng = sample_rng(0, im["source_id"], "occlusion-20")
            assert labelled[int(rng.integers(len(labelled)))]["id"] == target["id"]
        pts = np.asarray(target["keypoints"], float).reshape(-1, 3)
        pts = pts[pts[:, 2] > 0, :2]
        (x0, y0), (x1, y1) = pts.min(axis=0), pts.max(axis=0)
        grow = 0.15 * np.array([x1 - x0, y1 - y0]) + 0.1 * min(im["width"], im["height"])
        bx0, by0, bx1, by1 = im["occluder_box"]
        cx, cy = (bx0 + bx1) / 2, (by0 + by1) / 2  # the centre is drawn inside the person's ROI
        assert x0 - grow[0] - 1 <= cx <= x1 + grow[0] + 1 and y0 - grow[1] - 1 <= cy <= y1 + grow[1] + 1
        spread += len(labelled) > 1
    assert spread >= 2  # the fixture has images of several labelled people
    assert {im["source_id"] for im in subset["images"]} == {im["file_name"] for im in source["images"]}
