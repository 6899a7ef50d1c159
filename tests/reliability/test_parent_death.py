"""Pool workers die with their parent: `kill -9` of `materialize` leaves no orphan behind."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from keypoint_corrupt.cli.main import main

#: Seconds a started run may take to journal its first files (interpreter start, imports, plan).
START_TIMEOUT = 120
#: Seconds the orphaned workers may take to go (the kernel kills them at once; generous for a
#: loaded machine).
DEATH_TIMEOUT = 30
FULL = ("--fraction", "1.0")

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped by its new parent, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def children(pid: int) -> set[int]:
    """The processes whose parent is ``pid`` (a /proc scan)."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    found.add(int(entry))
    return found


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def journaled(out: Path) -> int:
    return sum(
        len(p.read_bytes().splitlines())
        for p in (out / ".keypoint-corrupt" / "journal").glob("*.jsonl")
        if p.is_file()
    )


@pytest.fixture(scope="module")
def full_digest(tmp_path_factory, tree_digest):
    out = tmp_path_factory.mktemp("full") / "out"
    assert main(["materialize", "--out", str(out), *FULL, "--workers", "2", "--quiet"]) == 0
    return tree_digest(out)


@pytest.mark.slow
@pytest.mark.parametrize("files", [4, 90])
def test_workers_die_when_the_parent_is_killed_then_resume(tmp_path, py_cli, full_digest, tree_digest, files):
    """`kill -9` of the parent alone (as `kill -9 $!` does); its two workers must follow it."""
    out = tmp_path / "o"
    cmd = [*py_cli, "materialize", "--out", str(out), *FULL, "--workers", "2", "--quiet"]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: set[int] = set()
    try:
        wait_until(
            lambda: proc.poll() is not None or (journaled(out) >= files and len(children(proc.pid)) >= 2),
            START_TIMEOUT,
            f"no {files} files journaled by 2 workers within {START_TIMEOUT} s",
        )
        workers = children(proc.pid)
        if proc.poll() is not None:
            pytest.skip("the run finished before it could be killed")
        os.kill(proc.pid, signal.SIGKILL)  # the parent only
        proc.wait(timeout=60)
        wait_until(
            lambda: not any(alive(pid) for pid in workers),
            DEATH_TIMEOUT,
            f"workers {sorted(p for p in workers if alive(p))} outlived their parent",
        )
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=60)
    assert len(workers) == 2
    # the run resumes to the same bytes as an uninterrupted one
    assert main(["materialize", "--out", str(out), *FULL, "--workers", "2", "--quiet"]) == 0
    assert tree_digest(out) == full_digest


#: A process that starts a child which calls die_with_parent, prints how and the child's pid,
#: then dies (exits abruptly, as a kill would leave it).
_ORPHAN = """
import os, sys, time
from keypoint_corrupt.materialize import lifeline
if sys.argv[1] == "thread":
    lifeline._set_pdeathsig = lambda sig: False  # the fallback used where prctl is missing
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(r)
    how = lifeline.die_with_parent(os.getppid())
    os.write(w, f"{how} {os.getpid()}".encode())
    time.sleep(120)
    os._exit(0)
os.close(w)
print(os.read(r, 100).decode(), flush=True)
os._exit(0)
"""


@pytest.mark.parametrize("how", ["prctl", "thread"])
def test_die_with_parent_follows_the_parent(how):
    done = subprocess.run([sys.executable, "-c", _ORPHAN, how], capture_output=True, text=True, timeout=120)
    got, pid = done.stdout.split()
    assert got == how
    try:
        wait_until(lambda: not alive(int(pid)), DEATH_TIMEOUT, f"{how}: the child outlived its parent")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)


def test_a_parent_that_died_before_prctl_is_noticed():
    """The race: the parent is gone (the process was reparented) before prctl took effect."""
    code = "from keypoint_corrupt.materialize import lifeline; lifeline.die_with_parent(1); print('alive')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and done.stdout == ""
