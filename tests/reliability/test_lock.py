"""One run writes an output folder at a time (shards: one per part); refused runs leave no trace."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from keypoint_corrupt.cli.main import main
from keypoint_corrupt.materialize import lock as lock_module
from keypoint_corrupt.materialize.lock import OutputLock

STATE = ".keypoint-corrupt"
#: Seconds a started run may take to journal its first files (interpreter start, imports, plan).
START_TIMEOUT = 120
SMALL = ["--splits", "val", "--configs", "defocus-7,occlusion-20", "--workers", "1"]


def held(out: Path, shard=None) -> OutputLock:
    """The lock of ``out`` taken by this process, as a run would take it."""
    lock = OutputLock(out, shard, lambda _msg: None)
    lock.acquire()
    return lock


def journaled(out: Path) -> int:
    return sum(
        len(p.read_bytes().splitlines()) for p in (out / STATE / "journal").glob("*.jsonl") if p.is_file()
    )


def test_a_second_run_stops_at_once_naming_the_holder(tmp_path, capsys):
    out = tmp_path / "o"
    lock = held(out)
    try:
        started = time.monotonic()
        assert main(["materialize", "--out", str(out), *SMALL, "--quiet"]) == 2
        assert time.monotonic() - started < 60
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err
        assert f"{out} is in use: another run is writing it (pid {os.getpid()}, started " in err
        assert not list(out.glob("val"))  # nothing written
    finally:
        lock.release()
    assert main(["materialize", "--out", str(out), *SMALL, "--quiet"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "val"]  # no lock file left


def test_two_real_runs_at_once(tmp_path, py_cli, capsys):
    """A run in another process holds the folder; a second one is refused; the first completes."""
    out = tmp_path / "o"
    cmd = [*py_cli, "materialize", "--out", str(out), "--fraction", "1.0", "--workers", "1", "--quiet"]
    proc = subprocess.Popen(cmd, start_new_session=True, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while journaled(out) < 3 and proc.poll() is None:
            assert time.monotonic() < deadline, "the first run journaled nothing"
            time.sleep(0.01)
        if proc.poll() is not None:
            pytest.skip("the first run finished before the second started")
        rc = main(["materialize", "--out", str(out), "--fraction", "1.0", "--workers", "1"])
        err = capsys.readouterr().err
        if rc == 0:  # only possible if the first run had finished: never two at once
            assert proc.poll() is not None, err
            pytest.skip("the first run finished before the second started")
        assert rc == 2 and f"is in use: another run is writing it (pid {proc.pid}, " in err, err
        assert proc.wait(timeout=300) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        if proc.stderr:
            proc.stderr.close()
    assert main(["verify", str(out), "--quiet"]) == 0
    assert not (out / STATE).exists()


def test_a_dead_runs_lock_is_taken_over(tmp_path, capsys):
    out = tmp_path / "o"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    pid = int(dead.stdout)
    (out / STATE).mkdir(parents=True)
    record = {"pid": pid, "host": socket.gethostname(), "started": "2024-05-01T12:00:03+00:00", "shard": None}
    (out / STATE / "lock").write_text(json.dumps(record) + "\n")  # as a killed run leaves it
    assert main(["materialize", "--out", str(out), *SMALL]) == 0
    err = capsys.readouterr().err
    assert "taking over the lock of an earlier run that ended without releasing it" in err
    assert f"pid {pid}, started 2024-05-01 12:00:03" in err
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "val"]


def test_shards_run_side_by_side_but_not_twice_or_beside_a_whole_run(tmp_path, tree_digest, capsys):
    out = tmp_path / "o"
    reference = tmp_path / "ref"
    assert main(["materialize", "--out", str(reference), *SMALL, "--quiet"]) == 0
    argv = ["materialize", "--out", str(out), *SMALL, "--quiet"]

    shard1 = held(out, (1, 2))  # shard 1/2 runs (here: this process holds its locks)
    try:
        assert main([*argv, "--shard", "2/2"]) == 0  # another shard: fine
        assert main([*argv, "--shard", "1/2"]) == 2  # the same shard twice: refused
        err = capsys.readouterr().err
        assert f"(pid {os.getpid()}, started " in err and "shard 1/2" in err, err
        assert main(argv) == 2  # the merge waits for the shards
        err = capsys.readouterr().err
        assert "is in use" in err and err.count("\n") == 1, err
    finally:
        shard1.release()
    whole = held(out)
    try:
        assert main([*argv, "--shard", "1/2"]) == 2  # no shard beside a whole run
        assert f"another run is writing it (pid {os.getpid()}, " in capsys.readouterr().err
    finally:
        whole.release()
    assert main([*argv, "--shard", "1/2"]) == 0
    assert main(argv) == 0  # the merge
    assert tree_digest(out) == tree_digest(reference)


def test_refusals_are_one_line_and_leave_the_folder_as_it_was(tmp_path, capsys):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    assert main(["materialize", "--out", str(foreign), *SMALL, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "holds no keypoint-corrupt manifest" in err and err.count("\n") == 1
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]  # no lock or state folder left

    a_file = tmp_path / "file"
    a_file.write_text("x")
    for out, message in [
        (a_file, "exists and is not a folder"),
        (a_file / "o", "which is not a folder"),
    ]:
        assert main(["materialize", "--out", str(out), *SMALL, "--quiet"]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and "Traceback" not in err, err
    assert a_file.read_text() == "x"
    link = tmp_path / "dangling"
    link.symlink_to(tmp_path / "nowhere")
    assert main(["materialize", "--out", str(link), *SMALL, "--quiet"]) == 2
    assert "broken symbolic link" in capsys.readouterr().err
    assert not (tmp_path / "nowhere").exists()


def test_without_fcntl_runs_go_unlocked_with_a_note(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(lock_module, "fcntl", None)
    out = tmp_path / "o"
    assert main(["materialize", "--out", str(out), *SMALL]) == 0
    assert "file locking is not available here" in capsys.readouterr().err


def test_verify_warns_while_a_run_holds_the_folder(tmp_path, sample_output, capsys):
    out = tmp_path / "o"
    shutil.copytree(sample_output, out)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        (out / STATE).mkdir()
        record = {"pid": sleeper.pid, "host": socket.gethostname(), "started": "2024-05-01T12:00:03+00:00"}
        (out / STATE / "lock").write_text(json.dumps(record))
        assert main(["verify", str(out)]) == 0  # read-only: it takes no lock
        err = capsys.readouterr().err
        assert f"warning: a materialize run is writing {out} right now (pid {sleeper.pid}, " in err
    finally:
        sleeper.kill()
        sleeper.wait(timeout=60)


def test_a_refused_shard_leaves_a_complete_folder_as_it_was(tmp_path, tree_digest, capsys):
    out = tmp_path / "o"
    assert main(["materialize", "--out", str(out), *SMALL, "--quiet"]) == 0
    before = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    digest = tree_digest(out)
    assert main(["materialize", "--out", str(out), *SMALL, "--seed", "1", "--shard", "1/2", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "other settings" in err and err.count("\n") == 1, err
    assert not (out / STATE).exists()  # no lock and no lock.shard-1-of-2 left
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == before
    assert tree_digest(out) == digest


def test_a_refused_shard_beside_a_running_shard_keeps_its_lock(tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["materialize", "--out", str(out), *SMALL, "--quiet"]) == 0
    shard2 = held(out, (2, 2))  # shard 2/2 runs, holding "lock" shared
    argv = ["materialize", "--out", str(out), *SMALL, "--seed", "1", "--shard", "1/2", "--quiet"]
    try:
        assert main(argv) == 2
        capsys.readouterr()
        assert (out / STATE / "lock").exists() and (out / STATE / "lock.shard-2-of-2").exists()
    finally:
        shard2.release()


def test_an_accepted_run_never_removes_a_later_runs_lock(tmp_path):
    """Run A completes (its state folder removed), run B starts, then A releases: B's lock stays."""
    out = tmp_path / "o"
    a = held(out)
    a.accepted = True  # what materialize sets once the folder passed its checks
    shutil.rmtree(out / STATE)  # A's complete run drops its state folder
    b = held(out)
    try:
        a.release()
        assert (out / STATE / "lock").is_file()
        with pytest.raises(Exception, match="is in use"):
            held(out)  # B still holds the folder
    finally:
        b.release()
