"""`verify` finds damage and prints the repair command; `materialize --repair` rewrites exactly that."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from keypoint_corrupt.cli.main import main


def replace_bytes(path: Path, data: bytes) -> None:
    """Give ``path`` new content under a new inode (never edit in place: an output's clean copy
    can be a hard link to the source dataset)."""
    path.unlink()
    path.write_bytes(data)


def flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    replace_bytes(path, bytes(data))


def stats(root: Path) -> dict[str, tuple[int, int]]:
    """Relative path -> (inode, mtime_ns) of every file under ``root``."""
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            st = Path(dirpath, name).stat()
            out[Path(dirpath, name).relative_to(root).as_posix()] = (st.st_ino, st.st_mtime_ns)
    return out


@pytest.fixture
def copy(tmp_path, sample_output) -> Path:
    out = tmp_path / "o"
    shutil.copytree(sample_output, out)
    return out


def test_verify_hints_and_repair_rewrites_exactly_the_damaged_files(copy, sample_output, tree_digest, capsys):
    flipped = sorted(copy.glob("val/noise-saltpepper/images/*/*.png"))[0]
    deleted = sorted(copy.glob("train/motion-15/images/*/*.png"))[0]
    truncated = copy / "val" / "occlusion-20" / "annotations.json"
    flip_byte(flipped)
    deleted.unlink()
    replace_bytes(truncated, truncated.read_bytes()[:50])
    damaged = {p.relative_to(copy).as_posix() for p in (flipped, deleted, truncated)}

    assert main(["verify", str(copy)]) == 1
    captured = capsys.readouterr()
    for rel in damaged:
        assert rel in captured.out
    hint = f"keypoint-corrupt materialize --repair --out {copy}"
    assert f"to rewrite the 3 damaged or missing file(s), run: {hint}" in captured.err

    before = stats(copy)
    # the plain resume checks sizes only: it notices the missing file and the truncated annotations
    # but not the flipped byte, which is what --repair is for
    assert main(["materialize", "--out", str(copy), "--repair", "--workers", "1"]) == 0
    captured = capsys.readouterr()
    listed = [line.strip() for line in captured.out.splitlines() if line.startswith("  ")]
    assert sorted(listed) == sorted(damaged), captured.out
    assert captured.out.startswith(f"repaired {copy}: rewrote 3 file(s):")
    assert "\nverify: OK, " in captured.out
    after = stats(copy)
    assert set(after) == set(before) | damaged
    changed = {rel for rel in after if before.get(rel) != after[rel]}
    assert changed == damaged  # every other file keeps its inode and mtime
    assert tree_digest(copy) == tree_digest(sample_output)
    assert main(["verify", str(copy), "--quiet"]) == 0

    # repairing an intact folder rewrites nothing
    assert main(["materialize", "--out", str(copy), "--repair", "--workers", "2"]) == 0
    assert f"nothing to repair in {copy}: every file matches" in capsys.readouterr().out
    assert stats(copy) == after


def test_repair_rebuilds_a_damaged_manifest_with_the_original_options(
    copy, sample_output, tree_digest, capsys
):
    manifest = copy / "manifest.json"
    replace_bytes(manifest, manifest.read_bytes()[:100])
    flipped = sorted(copy.glob("val/defocus-7/images/*/*.png"))[0]
    flip_byte(flipped)
    before = stats(copy)

    assert main(["verify", str(copy)]) == 1
    err = capsys.readouterr().err
    assert "run the original materialize command with --repair" in err and "--repair --out" in err

    assert main(["materialize", "--out", str(copy), "--repair", "--workers", "2"]) == 0
    captured = capsys.readouterr()
    assert "manifest.json is missing or unreadable" in captured.err
    listed = sorted(line.strip() for line in captured.out.splitlines() if line.startswith("  "))
    assert listed == sorted([flipped.relative_to(copy).as_posix(), "manifest.json"])
    after = stats(copy)
    assert {rel for rel in after if before.get(rel) != after[rel]} == set(listed)
    assert tree_digest(copy) == tree_digest(sample_output)


def test_repair_reads_its_options_from_the_manifest(tmp_path, tree_digest, capsys):
    out = tmp_path / "o"
    argv = ["--out", str(out), "--splits", "val", "--configs", "defocus-7,occlusion-20", "--seed", "3"]
    assert main(["materialize", *argv, "--format", "jpg", "--workers", "1", "--quiet"]) == 0
    reference = tree_digest(out)
    victim = sorted(out.glob("val/occlusion-20/images/*/*.jpg"))[0]
    victim.unlink()
    assert main(["materialize", "--out", str(out), "--repair", "--workers", "1"]) == 0
    assert victim.relative_to(out).as_posix() in capsys.readouterr().out
    assert tree_digest(out) == reference
    # options given with --repair must be the recorded ones: a repair never changes settings
    assert main(["materialize", "--out", str(out), "--repair", "--seed", "4", "--quiet"]) == 2
    assert "seed 3 (existing) vs 4 (now)" in capsys.readouterr().err
    assert tree_digest(out) == reference


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--shard", "1/2"], "--repair works on a merged folder"),
        (["--overwrite"], "pick one"),
    ],
)
def test_repair_refuses_bad_combinations(copy, capsys, extra, message):
    assert main(["materialize", "--out", str(copy), "--repair", "--quiet", *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_repair_needs_an_output_to_repair(tmp_path, capsys):
    assert main(["materialize", "--out", str(tmp_path / "none"), "--repair", "--quiet"]) == 2
    assert "nothing to repair" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    assert main(["materialize", "--out", str(foreign), "--repair", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "holds no keypoint-corrupt output" in err and err.count("\n") == 1
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]  # no lock or state left


def _rewrite_in_place(path: Path) -> None:
    """Give ``path`` other (valid) pixels in place: the same inode, as an editor saving over it does."""
    import cv2

    image = cv2.imread(str(path))
    image[:8, :8] = 255 - image[:8, :8]
    ok, buf = cv2.imencode(".png", image)
    assert ok
    with open(path, "r+b") as f:
        f.truncate(0)
        f.write(buf.tobytes())


def test_repair_refuses_a_source_edited_in_place_through_its_clean_copy(tmp_path, capsys):
    from keypoint_corrupt.datasets import bundled_sample_root

    src = tmp_path / "stb"
    shutil.copytree(bundled_sample_root(), src)
    out = tmp_path / "o"
    argv = ["--dataset", "stb", "--root", str(src), "--out", str(out), "--splits", "val",
            "--configs", "defocus-7,occlusion-20", "--workers", "1"]  # fmt: skip
    assert main(["materialize", *argv, "--quiet"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    clean = next(f for f in manifest["files"] if f["config"] == "clean")
    source = src / clean["source_path"]
    assert os.path.samefile(source, out / clean["path"])
    _rewrite_in_place(source)  # edited through the hard link: the clean copy changed with it
    capsys.readouterr()

    assert main(["materialize", *argv, "--repair"]) == 1
    captured = capsys.readouterr()
    assert f"source {source} changed since the output was written" in captured.err, captured.err
    assert "restore it, or rewrite the whole output with --overwrite" in captured.err
    after = json.loads((out / "manifest.json").read_text())
    kept = {f["path"]: f["sha256"] for f in after["files"]}
    assert kept[clean["path"]] == clean["sha256"]  # the record still names the original bytes
    assert main(["verify", str(out), "--quiet"]) == 1
    assert main(["materialize", *argv, "--repair", "--quiet"]) == 1  # and a second repair refuses too


def test_repair_without_a_manifest_refuses_options_other_than_the_annotation_files(
    tmp_path, tree_digest, capsys
):
    out = tmp_path / "o"
    argv = ["--out", str(out), "--splits", "val", "--configs", "defocus-7,occlusion-20", "--seed", "3"]
    assert main(["materialize", *argv, "--workers", "1", "--quiet"]) == 0
    (out / "manifest.json").unlink()
    reference = tree_digest(out)
    for extra, words in [
        ([], ["seed 3 (existing) vs 0 (now)", "splits val (existing) vs train,val (now)"]),
        ([*argv[2:], "--fraction", "0.5"], ["fraction 0.2 (existing) vs 0.5 (now)"]),
        ([*argv[2:4], "--seed", "3"], ["configs defocus-7,occlusion-20 (existing) vs "]),
        ([*argv[2:], "--format", "jpg"], ["format png (existing) vs jpg (now)"]),
    ]:
        assert main(["materialize", "--out", str(out), "--repair", *extra, "--quiet"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "no readable manifest" in err, err
        for word in words:
            assert word in err, (word, err)
        assert tree_digest(out) == reference
    assert main(["materialize", *argv, "--repair", "--workers", "1", "--quiet"]) == 0
    assert main(["verify", str(out), "--quiet"]) == 0
