"""Interruptions, resumption, failed writes and unreadable sources."""

from __future__ import annotations

import contextlib
import errno
import json
import multiprocessing
import os
import random
import shutil
import signal
import subprocess
import time

import pytest
from kc_cli_helpers import PY_CLI, temp_files, tree_digest

from keypoint_corrupt import _paths
from keypoint_corrupt.cli.main import main
from keypoint_corrupt.datasets import load_image
from keypoint_corrupt.materialize import run as materialize_run
from keypoint_corrupt.materialize import writer

JOURNALS = ".keypoint-corrupt/journal"


def journal_paths(out):
    """Paths in every journal: the run's own and one per pool worker."""
    paths = []
    for path in sorted((out / JOURNALS).glob("*.jsonl")):
        for line in path.read_text().splitlines():
            try:
                paths.append(json.loads(line)["path"])
            except (ValueError, KeyError):
                pass  # a torn last line
    return paths


def force_fork(monkeypatch):
    """Pool workers must inherit the patched modules: fork even where an earlier test left a thread."""
    monkeypatch.setattr(materialize_run, "_pool_context", lambda: (multiprocessing.get_context("fork"), True))


def images_on_disk(out):
    return sorted(p.relative_to(out).as_posix() for p in out.glob("*/*/images/**/*.png"))


def assert_consistent_after_kill(out, journaled):
    """No partial file under a final name; the manifest only lists files that are on disk."""
    on_disk = images_on_disk(out)
    assert set(journaled) <= set(on_disk)
    for rel in on_disk:  # every file under its final name is complete (a cut PNG fails to load)
        assert load_image(out / rel).shape == (480, 640, 3)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] is False
    assert {f["path"] for f in manifest["files"]} <= set(on_disk)


def stat_of(out, paths):
    return {p: ((out / p).stat().st_ino, (out / p).stat().st_mtime_ns) for p in paths}


#: The bundled sample with every source in every configuration (48 x 11 outputs): a run long
#: enough (seconds) to be killed part-way through, and still quick to resume.
FULL = ("--fraction", "1.0")
#: Seconds a killed run may take to journal its first files (interpreter start, imports, plan).
START_TIMEOUT = 120


@pytest.fixture(scope="module")
def full_reference(tmp_path_factory):
    """An uninterrupted run of ``FULL``: its tree digest and its number of images."""
    out = tmp_path_factory.mktemp("full") / "out"
    assert main(["materialize", "--out", str(out), *FULL, "--workers", "2", "--quiet"]) == 0
    return tree_digest(out), len(images_on_disk(out))


def kill_9_after(out, workers, files):
    """Run `materialize` in a fresh process group; SIGKILL the whole group once ``files`` are journaled.

    Returns the paths journaled at that moment. Skips if the run finished first.
    """
    cmd = [*PY_CLI, "materialize", "--out", str(out), *FULL, "--workers", str(workers), "--quiet"]
    log = out.parent / "killed.stderr"
    with open(log, "wb") as stderr:
        proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while len(journal_paths(out)) < files and proc.poll() is None:
            assert time.monotonic() < deadline, f"no {files} files journaled within {START_TIMEOUT} s"
            time.sleep(0.002)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # the coordinator and its pool workers alike
        proc.wait(timeout=60)
    if proc.returncode == 0:
        pytest.skip("the run finished before it could be killed")
    assert proc.returncode == -signal.SIGKILL, log.read_text()
    return journal_paths(out)


#: Further kill points, drawn at random once (a fixed seed, so that a failure reproduces):
#: files journaled before the kill, spread over the run (528 images at ``FULL``).
RANDOM_KILL_POINTS = list(zip((2, 1), random.Random(20240511).sample(range(20, 450), 2), strict=True))


@pytest.mark.slow
@pytest.mark.parametrize(("workers", "files"), [(1, 7), (2, 5), *RANDOM_KILL_POINTS])
def test_kill_9_mid_run_then_resume(tmp_path, full_reference, capsys, workers, files):
    digest, total = full_reference
    out = tmp_path / "o"
    journaled = kill_9_after(out, workers, files)
    assert files <= len(journaled) < total
    assert len(set(journaled)) == len(journaled)
    assert_consistent_after_kill(out, journaled)
    # a process journals each file right after its rename: a kill can only catch one file per
    # process between the two
    unrecorded = set(images_on_disk(out)) - set(journaled)
    assert len(unrecorded) <= workers, unrecorded
    assert main(["verify", str(out)]) == 1
    assert "the run is incomplete" in capsys.readouterr().out
    before = stat_of(out, journaled)

    assert main(["materialize", "--out", str(out), *FULL, "--workers", str(workers)]) == 0
    summary = capsys.readouterr().out
    done = len(journaled)  # an unjournaled file is written again, with the same bytes
    assert summary.startswith(f"wrote {total - done:,} images") and f"{done:,} already on disk" in summary
    assert stat_of(out, journaled) == before  # completed files were not rewritten
    assert temp_files(out) == []
    assert tree_digest(out) == digest


class FailingOS:
    """``os`` for the writer module, whose ``replace`` of image files fails after ``after`` calls."""

    def __init__(self, after, err):
        self.after, self.err, self.calls = after, err, 0

    def __getattr__(self, name):
        return getattr(os, name)

    def replace(self, src, dst):
        if str(dst).endswith(".png"):
            if self.calls >= self.after:
                raise OSError(self.err, os.strerror(self.err), str(dst))
            self.calls += 1
        return os.replace(src, dst)


@pytest.mark.parametrize("workers", ["1", "2"])
@pytest.mark.parametrize(
    ("err", "message"), [(errno.ENOSPC, "no space left on device"), (errno.EACCES, "permission denied")]
)
def test_full_disk_or_permission_error_stops_cleanly_then_resumes(
    tmp_path, monkeypatch, capsys, reference_digest, err, message, workers
):
    out = tmp_path / "o"
    monkeypatch.setattr(_paths, "os", FailingOS(5, err))  # where the atomic rename happens
    force_fork(monkeypatch)
    assert main(["materialize", "--out", str(out), "--workers", workers, "--quiet"]) == 2
    stderr = capsys.readouterr().err
    assert message in stderr and "re-run the same command to resume" in stderr
    assert stderr.count("\n") == 1
    assert temp_files(out) == []  # no partial file anywhere
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] is False
    # the manifest describes exactly what is on disk
    assert sorted(f["path"] for f in manifest["files"]) == images_on_disk(out)
    # each process fails after its own 5 files; what another finished is kept
    assert len(manifest["files"]) == len(journal_paths(out))
    assert 5 <= len(manifest["files"]) <= 5 * int(workers)
    monkeypatch.undo()
    assert main(["materialize", "--out", str(out), "--workers", "1", "--quiet"]) == 0
    assert tree_digest(out) == reference_digest


def test_a_dead_worker_stops_with_a_clear_message_then_resumes(
    tmp_path, monkeypatch, capsys, reference_digest
):
    """A worker killed by the system (here: it exits abruptly on its 4th source) loses nothing."""
    out = tmp_path / "o"
    parent, real_run_unit, calls = os.getpid(), writer.run_unit, []

    def dying_run_unit(ctx, unit, journal=None):
        calls.append(unit)
        if os.getpid() != parent and len(calls) > 3:
            os._exit(9)  # what the OOM killer's SIGKILL looks like to the pool
        return real_run_unit(ctx, unit, journal)

    monkeypatch.setattr(writer, "run_unit", dying_run_unit)
    force_fork(monkeypatch)
    assert main(["materialize", "--out", str(out), "--workers", "2", "--quiet"]) == 2
    stderr = capsys.readouterr().err
    assert "a worker process died" in stderr and "re-run the same command to resume" in stderr
    assert stderr.count("\n") == 1  # one line, no traceback
    assert temp_files(out) == []
    journaled = journal_paths(out)
    assert len(journaled) >= 3  # each worker finished 3 sources before dying
    before = stat_of(out, journaled)
    monkeypatch.undo()
    assert main(["materialize", "--out", str(out), "--workers", "2", "--quiet"]) == 0
    assert stat_of(out, journaled) == before  # finished files were kept, not rewritten
    assert tree_digest(out) == reference_digest


def test_unreadable_sources_are_reported_and_the_rest_completes(tmp_path, bundled, reference, capsys):
    root = tmp_path / "stb"
    shutil.copytree(bundled, root)
    manifest = json.loads((reference / "manifest.json").read_text())
    val = [f for f in manifest["files"] if f["split"] == "val"]
    sources = sorted({f["source_id"] for f in val})[:2]
    truncated = root / "images" / f"{sources[0]}.png"
    missing = root / "images" / f"{sources[1]}.png"
    truncated.write_bytes(truncated.read_bytes()[:5000])
    missing.unlink()

    out = tmp_path / "o"
    argv = ["materialize", "--dataset", "stb", "--root", str(root), "--splits", "val", "--out", str(out)]
    assert main([*argv, "--workers", "2"]) == 1
    captured = capsys.readouterr()
    assert str(truncated) in captured.err and "truncated PNG" in captured.err
    assert str(missing) in captured.err and "not found" in captured.err
    lost = [f["path"] for f in val if f["source_id"] in sources]
    assert captured.out.startswith(f"wrote {len(val) - len(lost)} images")
    result = json.loads((out / "manifest.json").read_text())
    assert result["complete"] is False
    assert [e["source_path"] for e in result["errors"]] == [str(truncated), str(missing)]
    assert sorted(f["path"] for f in result["files"]) == images_on_disk(out)
    coco = json.loads((out / "val" / "defocus-7" / "annotations.json").read_text())
    assert len(coco["images"]) == len(
        [f for f in val if f["config"] == "defocus-7" and f["path"] not in lost]
    )
    assert main(["verify", str(out)]) == 1
    assert "source error: cannot decode image" in capsys.readouterr().out

    shutil.copy(bundled / "images" / f"{sources[0]}.png", truncated)
    shutil.copy(bundled / "images" / f"{sources[1]}.png", missing)
    assert main([*argv, "--workers", "1"]) == 0
    assert capsys.readouterr().out.startswith(f"wrote {len(lost)} images")
    assert tree_digest(out / "val") != {}
    for f in val:  # the same image bytes as the reference
        assert (out / f["path"]).read_bytes() == (reference / f["path"]).read_bytes()


def test_deleted_output_is_rewritten_on_rerun(tmp_path, reference, reference_digest, capsys):
    out = tmp_path / "o"
    shutil.copytree(reference, out)
    victim = next(out.glob("val/motion-30/images/*/*.png"))
    victim.unlink()
    assert main(["materialize", "--out", str(out), "--workers", "1"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("wrote 1 images") and "157 already on disk" in captured.out
    assert "missing or have another size" in captured.err
    assert tree_digest(out) == reference_digest


def test_truncated_fixture_jpeg_is_reported(tmp_path, fixtures_dir, capsys):
    images = tmp_path / "freihand"
    shutil.copytree(fixtures_dir / "hands" / "freihand", images)
    ann = images / "test_freihand.json"
    out = tmp_path / "o"
    argv = [
        "materialize",
        "--dataset",
        "coco",
        "--annotations",
        str(ann),
        "--out",
        str(out),
        "--workers",
        "1",
    ]
    assert main([*argv, "--configs", "motion-30", "--fraction", "1.0", "--quiet"]) == 0
    victim = images / "00050180.jpg"
    victim.write_bytes(victim.read_bytes()[:2000])
    out2 = tmp_path / "o2"
    argv[argv.index(str(out))] = str(out2)
    assert main([*argv, "--configs", "motion-30", "--fraction", "1.0"]) == 1
    captured = capsys.readouterr()
    assert f"error: cannot decode image {victim}: truncated JPEG" in captured.err
    assert captured.out.startswith("wrote 14 images")  # 7 corrupted + 7 clean copies
    manifest = json.loads((out2 / "manifest.json").read_text())
    assert [e["source_path"] for e in manifest["errors"]] == [str(victim)]
    good = sorted(p.name for p in (out / "val" / "motion-30" / "images").iterdir())
    assert sorted(p.name for p in (out2 / "val" / "motion-30" / "images").iterdir()) == [
        name for name in good if not name.startswith("00050180_")
    ]


def test_a_shard_removes_only_its_own_stale_temporary_files(tmp_path, reference, reference_digest, capsys):
    out = tmp_path / "o"
    argv = ["materialize", "--out", str(out), "--workers", "1", "--quiet"]
    assert main([*argv, "--shard", "1/2"]) == 0
    parts = {k: json.loads((out / f"manifest.shard-{k}-of-2.json").read_text()) for k in (1,)}
    own = parts[1]["files"][0]["path"]
    other = next(
        f["path"]
        for f in json.loads((reference / "manifest.json").read_text())["files"]
        if f["path"] not in {g["path"] for g in parts[1]["files"]}
    )
    stale = []
    for rel in (own, other):  # as a killed writer (or a running shard elsewhere) leaves them
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-999999-0badc0de")
        tmp.write_bytes(b"partial")
        stale.append(tmp)
    assert main([*argv, "--shard", "1/2"]) == 0
    assert not stale[0].exists() and stale[1].exists()  # shard 2's file is not shard 1's business
    assert main([*argv, "--shard", "2/2", "--overwrite"]) == 2
    assert "--overwrite cannot be combined with --shard" in capsys.readouterr().err
    assert main([*argv, "--shard", "2/2"]) == 0
    assert main(argv) == 0  # the merge
    assert not stale[1].exists()
    assert tree_digest(out) == reference_digest


def test_an_output_of_another_package_version_is_refused_not_resumed(tmp_path, reference, capsys):
    """Renderings change between versions (0.2.0: occluders target one person), so a resume of an
    older output would silently mix two renderings: it is refused and --overwrite named."""
    out = tmp_path / "o"
    shutil.copytree(reference, out)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["versions"]["keypoint_corrupt"] = "0.1.0"
    (out / "manifest.json").write_text(json.dumps(manifest))
    before = tree_digest(out / "val")
    assert main(["materialize", "--out", str(out), "--workers", "1"]) != 0
    err = capsys.readouterr().err
    assert "keypoint_corrupt version 0.1.0 (existing)" in err and "--overwrite" in err
    assert tree_digest(out / "val") == before
