"""The advisory lock of an output folder: two runs never write one folder at once.

A run takes ``fcntl.flock`` locks on files in the folder's state directory
(``OUT/.keypoint-corrupt/``), which a complete run removes with the rest of its state:

* a whole run (or the merging run of shards) holds ``lock`` exclusively;
* shard ``K/N`` holds ``lock`` shared (shards run side by side, but never beside a whole
  run) and ``lock.shard-K-of-N`` exclusively (the same shard never runs twice at once).

The exclusive holder writes one JSON line into its lock file (pid, host, start time,
shard), which names it in the refusal of a second run, and empties it when it releases the
lock. The kernel releases a ``flock`` when its holder dies, so the lock of a killed run is
simply taken over; a lock file that still names a holder then says that the earlier run
ended without releasing it.

Where ``fcntl`` does not exist (Windows) or the file system does not support ``flock``,
runs are not locked and a note says so.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import json
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keypoint_corrupt.materialize.journal import STATE_DIR
from keypoint_corrupt.materialize.plan import MaterializeError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["LOCK_NAME", "Holder", "OutputLock", "is_lock_file", "running_holders"]

#: The whole folder's lock file, in ``OUT/.keypoint-corrupt/``.
LOCK_NAME = "lock"
#: Errors of a file system that cannot ``flock``: such runs go unlocked.
_UNSUPPORTED = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL, errno.ENOSYS}


def _shard_lock_name(shard: tuple[int, int]) -> str:
    return f"{LOCK_NAME}.shard-{shard[0]}-of-{shard[1]}"


def is_lock_file(name: str) -> bool:
    """Whether a name in the state directory is one of the lock files."""
    return name == LOCK_NAME or name.startswith(LOCK_NAME + ".shard-")


@dataclass(frozen=True)
class Holder:
    """A run as its lock file records it."""

    pid: int
    host: str
    started: str
    shard: str | None = None

    def describe(self) -> str:
        """``pid 1234, started 2024-05-01 12:00:03[, shard 2/8][, on host h]``."""
        text = f"pid {self.pid}, started {self.started.replace('T', ' ')[:19]}"
        if self.shard:
            text += f", shard {self.shard}"
        if self.host != socket.gethostname():
            text += f", on host {self.host}"
        return text

    def running(self) -> bool:
        """Whether the holder still runs (only known on this host; elsewhere: assumed)."""
        if self.host != socket.gethostname():
            return True
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except OSError:  # EPERM: it exists
            return True
        return True


def _read_holder(path: Path) -> Holder | None:
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8") or "null")
        return Holder(int(data["pid"]), str(data["host"]), str(data["started"]), data.get("shard"))
    except (OSError, ValueError, TypeError, KeyError):
        return None


def _holders(state: Path) -> list[Holder]:
    """Every holder that a lock file in ``state`` names (running or not), main lock first."""
    names = [LOCK_NAME]
    with contextlib.suppress(OSError):
        names += sorted(n for n in os.listdir(state) if n.startswith(LOCK_NAME + ".shard-"))
    return [h for h in (_read_holder(state / n) for n in names) if h is not None]


def running_holders(out: Path) -> list[Holder]:
    """Return the runs that the lock files of ``out`` name and that still run (``verify`` warns)."""
    return [h for h in _holders(out / STATE_DIR) if h.running() and h.pid != os.getpid()]


def _flock(path: Path, exclusive: bool) -> int | None:
    """Open (creating) and ``flock`` ``path`` without waiting; its fd, or ``None`` if another holds it.

    A lock file can be removed and created anew while we wait for it (a complete run
    removes its state folder): a lock taken on a file that no longer has that name is
    dropped and taken again on the current one.
    """
    assert fcntl is not None
    mode = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
    for _ in range(100):
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:  # the folder went away in between
            continue
        try:
            fcntl.flock(fd, mode)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        try:
            now = os.stat(path)
            same = (now.st_ino, now.st_dev) == (os.fstat(fd).st_ino, os.fstat(fd).st_dev)
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)
    raise MaterializeError(f"cannot lock {path}: it keeps being replaced")


class OutputLock:
    """The lock of one run in an output folder (see the module docstring).

    Parameters
    ----------
    out : pathlib.Path
        The output folder (created, with its state folder, on :meth:`acquire`).
    shard : (k, n), optional
        The shard this run writes.
    say : callable
        Receives notes (a lock taken over from a killed run; no locking available).
    """

    def __init__(self, out: Path, shard: tuple[int, int] | None, say: Callable[[str], None]) -> None:
        self.out = out
        self.shard = shard
        self.say = say
        self.state = out / STATE_DIR
        self._fds: list[int] = []
        self._owned: int | None = None  # the fd whose file names this run
        self._made: list[Path] = []
        #: Set by the run once it has accepted the folder (its settings checked): from then on
        #: :meth:`release` leaves the state folder alone (a complete run removed it already,
        #: and another run may have made a new one since).
        self.accepted = False

    def acquire(self) -> None:
        """Take the lock(s); raise :class:`MaterializeError` naming the holder if another run has them."""
        if fcntl is None:  # pragma: no cover - Windows
            self.say("note: file locking is not available here: nothing stops two runs into this folder")
            return
        self._made = [p for p in (self.out, self.state) if not p.exists()]
        try:
            self._take(self.state / LOCK_NAME, exclusive=self.shard is None)
            if self.shard is not None:
                self._take(self.state / _shard_lock_name(self.shard), exclusive=True)
        except OSError as exc:
            if exc.errno not in _UNSUPPORTED:
                self.release()
                raise
            self.release()
            self.say(
                f"note: this file system cannot lock files ({exc.strerror}): nothing stops two runs "
                "into this folder"
            )
        except BaseException:
            self.release()
            raise

    def _take(self, path: Path, exclusive: bool) -> None:
        fd = _flock(path, exclusive)
        if fd is None:
            raise MaterializeError(self._busy_message(path))
        self._fds.append(fd)
        if not exclusive:
            return
        stale = _read_holder(path)
        if stale is not None and stale.pid != os.getpid():
            self.say(
                f"note: taking over the lock of an earlier run that ended without releasing it "
                f"({stale.describe()}; killed?)"
            )
        record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "shard": None if self.shard is None else f"{self.shard[0]}/{self.shard[1]}",
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(record) + "\n").encode("utf-8"), 0)
        self._owned = fd

    def _busy_message(self, path: Path) -> str:
        holder = _read_holder(path)
        if holder is not None:
            who = [holder]
        elif path.name == LOCK_NAME:  # held shared: by shards
            who = [h for h in _holders(self.state) if h.shard and h.running()]
        else:
            who = []
        named = "; ".join(h.describe() for h in who) or "its pid is not recorded yet"
        what = "shards are" if who and all(h.shard for h in who) and len(who) > 1 else "another run is"
        return (
            f"{self.out} is in use: {what} writing it ({named}); wait for it to finish or stop it, "
            "then re-run (a killed run's lock is taken over)"
        )

    def release(self) -> None:
        """Release the lock(s): empty the holder record, unlock, close (idempotent).

        A run that was refused (never :attr:`accepted`) leaves no trace: while it holds the
        folder's lock exclusively (a shard: when no other run holds it), a state folder holding
        only lock files that it created is removed again, and so is an output folder it created.
        """
        if fcntl is None:  # pragma: no cover - Windows
            return
        if not self.accepted and self._made and self._alone():
            for folder in reversed(self._made):
                with contextlib.suppress(OSError):
                    _remove_if_bare(folder, lock_files=folder == self.state)
        self._made = []
        for fd in reversed(self._fds):
            with contextlib.suppress(OSError):
                if fd == self._owned:
                    os.ftruncate(fd, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        self._fds, self._owned = [], None

    def _alone(self) -> bool:
        """Whether no other run holds the folder's lock (a shard tries to take it exclusively)."""
        if self.shard is None or not self._fds:
            return self._owned is not None
        assert fcntl is not None
        try:
            fcntl.flock(self._fds[0], fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # other shards (or a merging run) hold it
            return False
        return True

    def __enter__(self) -> OutputLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _remove_if_bare(folder: Path, lock_files: bool) -> None:
    """Remove ``folder`` if it is empty (or, with ``lock_files``, holds only lock files)."""
    if lock_files:
        names = os.listdir(folder)
        if not all(is_lock_file(n) for n in names):
            return
        for name in names:
            os.unlink(folder / name)
    folder.rmdir()
