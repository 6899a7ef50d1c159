"""A `materialize` output is self-contained: it outlives, and does not depend on, where its sources were.

README's two commands run `materialize` from an installed package, then `pip install -e .`, which
removes the installed copy of the bundled sample the output was written from. Simulated here
without pip: the sample is copied to a temporary folder, materialised from there, and the copy is
moved away or deleted.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import cv2
import pytest

from keypoint_corrupt.cli.main import main
from keypoint_corrupt.datasets import CocoKeypoints, bundled_sample_root, write_synthetic_stb
from keypoint_corrupt.materialize import writer

REPO = Path(__file__).resolve().parents[2]
FREIHAND = REPO / "tests" / "data" / "hands" / "freihand"
USER_PREDICT = REPO / "tests" / "benchmark" / "bench_user_predict.py"
CONFIGS = "defocus-7,occlusion-20"


def load(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def annotation_files(out: Path) -> list[Path]:
    return sorted(out.glob("*/*/annotations.json"))


def stb_argv(root: Path, out: Path, *extra: str) -> list[str]:
    return ["materialize", "--dataset", "stb", "--root", str(root), "--out", str(out), "--configs", CONFIGS,
            "--workers", "1", *extra]  # fmt: skip


@pytest.fixture(scope="module")
def moved(tmp_path_factory):
    """An output written from a copy of the bundled sample that has since moved: (output, new source)."""
    tmp = tmp_path_factory.mktemp("selfcontained")
    src = tmp / "site-packages" / "stb_sample"
    shutil.copytree(bundled_sample_root(), src)
    out = tmp / "corrupted-sample"
    assert main(stb_argv(src, out, "--quiet")) == 0
    elsewhere = tmp / "repo" / "stb_sample"
    elsewhere.parent.mkdir()
    shutil.move(src, elsewhere)
    src.parent.rmdir()
    return out, elsewhere


@pytest.fixture
def output(moved, tmp_path):
    """A private copy of the moved output, for tests that run commands into it."""
    out = tmp_path / "corrupted-sample"
    shutil.copytree(moved[0], out)
    return out


def test_verify_passes_after_the_source_moved(moved, capsys):
    out, _ = moved
    assert main(["verify", str(out)]) == 0
    assert capsys.readouterr().out.startswith("OK: ")
    manifest = load(out / "manifest.json")
    clean = [f for f in manifest["files"] if f["config"] == "clean"]
    assert len(clean) == 40 + 8  # every source image of train and val, checked by verify's SHA-256
    for rec in clean:  # the source path is recorded, relative to the recorded root
        assert rec["source_path"] == "images/" + rec["path"].split("/clean/images/", 1)[1]
        assert not os.path.isabs(rec["source_path"])
    assert manifest["dataset"]["root"].endswith(os.path.join("site-packages", "stb_sample"))


def test_every_annotation_file_reads_its_images_from_the_output(moved):
    out, _ = moved
    texts = [p.read_text(encoding="utf-8") for p in annotation_files(out)]
    assert len(texts) == 2 * 3  # train, val x (2 configurations + clean)
    assert not any("site-packages" in text for text in texts)  # no path to where the source was
    for split in ("train", "val"):
        clean = CocoKeypoints(out / split / "clean" / "annotations.json")
        assert len(clean) == {"train": 40, "val": 8}[split]
        for sample in clean:
            assert Path(sample.image_path).is_relative_to(out / split / "clean" / "images")
            image = cv2.imread(str(sample.image_path), cv2.IMREAD_COLOR)
            assert image is not None and image.shape == (480, 640, 3), sample.image_path
        coco = load(out / split / "clean" / "annotations.json")
        assert all(im["file_name"].startswith("images/") for im in coco["images"])
        assert all((im["width"], im["height"]) == (640, 480) for im in coco["images"])


def test_train_reads_the_output_alone(moved, tmp_path):
    pytest.importorskip("torch")
    out, _ = moved
    argv = ["train", "--model", "posenet-depthwise", "--data", str(out), "--out", str(tmp_path / "run"),
            "--epochs", "1", "--batch-size", "8", "--crop-size", "32", "--device", "cpu",
            "--quiet"]  # fmt: skip
    assert main(argv) == 0
    assert main([*argv[:-3], "--train-set", "S-train*", "--out", str(tmp_path / "star"), "--quiet"]) == 0
    assert (tmp_path / "star" / "model.pt").is_file()


def test_benchmark_reads_the_output_alone(moved, tmp_path):
    out, _ = moved
    argv = ["benchmark", "--predict", f"{USER_PREDICT}:predict", "--data", str(out),
            "--out", str(tmp_path / "b"), "--no-progress", "--no-plots"]  # fmt: skip
    assert main(argv) == 0
    report = load(tmp_path / "b" / "report.json")
    assert [r["name"] for r in report["rows"]] == ["standard", "defocus-7", "occlusion-20"]


def test_rerun_from_the_new_place_resumes_with_nothing_to_write(moved, output, capsys):
    _, elsewhere = moved
    before = {p: p.read_bytes() for p in annotation_files(output)}
    assert main(stb_argv(elsewhere, output)) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("wrote 0 images") and "(existing)" not in captured.err
    assert {p: p.read_bytes() for p in annotation_files(output)} == before  # no path in them moved
    assert load(output / "manifest.json")["dataset"]["root"] == str(elsewhere)  # where it is now
    assert main(["verify", str(output)]) == 0


def test_rerun_with_the_default_bundled_sample_resumes_too(tmp_path, capsys):
    # The README's main command run twice, the second time from another installation: the
    # bundled sample at another path (here: a copy given as an STB root) is the same data.
    out = tmp_path / "corrupted-sample"
    argv = ["materialize", "--out", str(out), "--splits", "val", "--configs", "motion-15", "--workers", "1"]
    assert main([*argv, "--quiet"]) == 0
    copy = tmp_path / "elsewhere"
    shutil.copytree(bundled_sample_root(), copy)
    assert main([*argv[:1], "--dataset", "stb", "--root", str(copy), *argv[1:]]) == 0
    assert capsys.readouterr().out.startswith("wrote 0 images")


def test_missing_source_with_files_to_write_stops_in_one_line(moved, output, capsys):
    _, elsewhere = moved
    victim = sorted(output.glob("val/clean/images/*/*.png"))[0]
    victim.unlink()
    gone = elsewhere.parent / "gone"
    assert main(stb_argv(gone, output)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert str(gone) in err[0] and "--root" in err[0]
    assert not victim.exists()
    assert main(stb_argv(elsewhere, output, "--quiet")) == 0  # pointed at the sources: repaired
    assert victim.is_file() and main(["verify", str(output)]) == 0


def test_other_sources_are_still_refused(output, tmp_path, capsys):
    other = tmp_path / "other"  # the same layout and ids, other keypoints
    write_synthetic_stb(other, frames_per_sequence=2, seed=7)
    before = load(output / "manifest.json")
    assert main(stb_argv(other, output)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "other settings" in err[0] and "source annotations" in err[0], err
    assert load(output / "manifest.json") == before


def test_clean_copies_are_hard_links_on_one_file_system(tmp_path):
    src = tmp_path / "stb"
    shutil.copytree(bundled_sample_root(), src)
    out = tmp_path / "o"
    assert main(stb_argv(src, out, "--splits", "val", "--quiet")) == 0
    copies = sorted((out / "val" / "clean" / "images").glob("*/*.png"))
    assert len(copies) == 8
    for copy in copies:
        source = src / "images" / copy.relative_to(out / "val" / "clean" / "images")
        assert os.path.samefile(copy, source)  # the same inode: no extra disk


@pytest.mark.parametrize("err", [errno.EXDEV, errno.EPERM])
def test_clean_copies_are_copied_when_linking_fails(tmp_path, monkeypatch, err):
    def refuse(src, dst, *args, **kwargs):
        raise OSError(err, os.strerror(err), str(src), None, str(dst))

    monkeypatch.setattr(os, "link", refuse)  # --workers 1 renders in this process
    src = tmp_path / "stb"
    shutil.copytree(bundled_sample_root(), src)
    out = tmp_path / "o"
    assert main(stb_argv(src, out, "--splits", "val", "--quiet")) == 0
    manifest = {f["path"]: f for f in load(out / "manifest.json")["files"]}
    copies = sorted((out / "val" / "clean" / "images").glob("*/*.png"))
    assert len(copies) == 8
    for copy in copies:
        source = src / "images" / copy.relative_to(out / "val" / "clean" / "images")
        assert not os.path.samefile(copy, source)
        assert copy.read_bytes() == source.read_bytes()
        rec = manifest[copy.relative_to(out).as_posix()]
        assert (rec["sha256"], rec["size"]) == (sha256(source), source.stat().st_size)
    assert not [p for p in out.rglob("*") if ".tmp-" in p.name]
    assert main(["verify", str(out)]) == 0


def test_link_or_copy_is_atomic(tmp_path, monkeypatch):
    source = tmp_path / "a.bin"
    source.write_bytes(b"x" * 3_000_000)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    linked = tmp_path / "linked.bin"
    assert writer.link_or_copy(source, linked) == (digest, 3_000_000)
    assert os.path.samefile(source, linked)

    def cross_device(*args, **kwargs):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", cross_device)
    copied = tmp_path / "copied.bin"
    assert writer.link_or_copy(source, copied, fsync=True) == (digest, 3_000_000)
    assert not os.path.samefile(source, copied) and copied.read_bytes() == source.read_bytes()
    with pytest.raises(FileNotFoundError):
        writer.link_or_copy(tmp_path / "missing.bin", tmp_path / "never.bin")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "copied.bin", "linked.bin"]


def test_coco_output_survives_its_source(tmp_path, capsys):
    src = tmp_path / "hands" / "freihand"
    shutil.copytree(FREIHAND, src)
    out = tmp_path / "o"
    argv = ["materialize", "--dataset", "coco", "--out", str(out), "--configs", "motion-30", "--workers", "1"]
    assert main([*argv, "--annotations", str(src / "test_freihand.json"), "--quiet"]) == 0
    moved = tmp_path / "moved"
    shutil.move(src, moved)
    assert main(["verify", str(out)]) == 0
    clean = CocoKeypoints(out / "val" / "clean" / "annotations.json")
    assert len(clean) == 8
    for sample in clean:
        assert Path(sample.image_path).is_relative_to(out / "val" / "clean" / "images")
        assert cv2.imread(str(sample.image_path), cv2.IMREAD_COLOR) is not None
        name = Path(sample.image_path).name
        assert Path(sample.image_path).read_bytes() == (moved / name).read_bytes()
    manifest = load(out / "manifest.json")
    assert {f["source_path"] for f in manifest["files"]} == {p.name for p in moved.glob("*.jpg")}
    capsys.readouterr()
    assert main([*argv, "--annotations", str(moved / "test_freihand.json")]) == 0
    assert capsys.readouterr().out.startswith("wrote 0 images")
    assert main([*argv, "--annotations", str(src / "test_freihand.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(src / "test_freihand.json") in err[0] and "--annotations" in err[0], err


def test_missing_coco_image_folder_stops_before_any_work(tmp_path, capsys):
    out = tmp_path / "o"
    nowhere = tmp_path / "no-such-folder"
    argv = ["materialize", "--dataset", "coco", "--annotations", str(FREIHAND / "test_freihand.json")]
    assert main([*argv, "--images", str(nowhere), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(nowhere) in err[0], err
    assert err[0].startswith("keypoint-corrupt materialize: error:")
    assert not out.exists()
    data = ["--predict", f"{USER_PREDICT}:predict", "--data", str(FREIHAND / "test_freihand.json")]
    assert main(["benchmark", *data, "--images", str(nowhere), "--out", str(tmp_path / "b")]) == 2
    assert str(nowhere) in capsys.readouterr().err


def test_the_docs_python_coco_example_runs(tmp_path):
    text = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    block = re.search(r"## Python\n.*?```python\n(.*?)```", text, flags=re.S)
    assert block is not None
    code = block.group(1)
    coco = re.search(r"# or (DatasetSpec\(\"coco\".*\))\s*$", code, flags=re.M)
    assert coco is not None, "the Python example no longer shows the COCO dataset"
    out = tmp_path / "O"
    replacements = {
        coco.group(0): "",
        'DatasetSpec("stb", Path("/data/STB"))': coco.group(1),
        'Path("a.json")': f"Path({str(FREIHAND / 'test_freihand.json')!r})",
        '"/data/O"': repr(str(out)),
        "workers=8": "workers=2",
        "progress=True": "progress=False",
        "log=print": "log=None",
    }
    for old, new in replacements.items():
        assert old in code, old
        code = code.replace(old, new)
    namespace: dict = {}
    exec(compile(code, "docs/cli.md", "exec"), namespace)
    result = namespace["result"]
    assert result.complete and result.errors == []
    assert load(out / "manifest.json")["splits"] == ["val"]
    assert namespace["verify_output"](out).problems == []


def test_an_output_pointing_at_vanished_sources_fails_in_one_line(moved, output, tmp_path, capsys):
    # An output written before the clean split was copied into it pointed at the source images.
    for split in ("train", "val"):
        path = output / split / "clean" / "annotations.json"
        coco = load(path)
        for im in coco["images"]:
            im["file_name"] = f"/gone/site-packages/stb_sample/{im['file_name']}"
        path.write_text(json.dumps(coco), encoding="utf-8")
    argv = ["benchmark", "--predict", f"{USER_PREDICT}:predict", "--data", str(output),
            "--out", str(tmp_path / "b"), "--no-progress", "--no-plots"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "/gone/site-packages/" in err[0] and "materialize" in err[0], err
    from keypoint_corrupt.cli.data import training_data
    from keypoint_corrupt.cli.main import CliError

    with pytest.raises(CliError, match="lists images that are not on disk"):
        training_data(str(output), None, "S-train")
    # re-running the command that wrote it (sources where they are now) rewrites its annotations
    assert main(stb_argv(moved[1], output, "--quiet")) == 0
    assert main(argv) == 0


def test_linking_over_a_link_to_the_same_file_leaves_no_temporary_file(tmp_path):
    """``os.replace`` between two links to one inode does nothing: the temporary name would stay."""
    source = tmp_path / "a.png"
    source.write_bytes(b"pixels")
    folder = tmp_path / "clean" / "images"
    folder.mkdir(parents=True)
    target = folder / "a.png"
    os.link(source, target)  # a resume after a kill between the rename and the journal append
    assert writer.link_or_copy(source, target) == (hashlib.sha256(b"pixels").hexdigest(), 6)
    assert sorted(p.name for p in folder.iterdir()) == ["a.png"]
    assert os.path.samefile(source, target)


def test_verify_reports_a_stray_file_among_the_clean_copies(tmp_path, capsys):
    src = tmp_path / "stb"
    shutil.copytree(bundled_sample_root(), src)
    out = tmp_path / "o"
    assert main(stb_argv(src, out, "--splits", "val", "--quiet")) == 0
    copy = sorted((out / "val" / "clean" / "images").glob("*/*.png"))[0]
    stray = copy.with_name(writer.temp_name(copy).name)
    os.link(copy, stray)
    assert main(["verify", str(out)]) == 1
    assert f"{stray.relative_to(out).as_posix()}: on disk but not in the manifest" in capsys.readouterr().out
