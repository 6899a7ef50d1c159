"""The append-only journal of completed files: what makes a run resumable after ``kill -9``.

A line is appended (and flushed) only after its file has been renamed into place, so every
journal line names a complete file. A run killed mid-line leaves a torn last line, which
readers skip and writers terminate before appending.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["STATE_DIR", "Journal", "journal_name", "read_journals"]

#: Hidden folder of an unfinished output: ``settings.json`` and ``journal/*.jsonl``.
STATE_DIR = ".keypoint-corrupt"
_REQUIRED = ("path", "sha256", "size", "width", "height")


def journal_name(shard: tuple[int, int] | None) -> str:
    """``main.jsonl`` for a whole run, ``shard-K-of-N.jsonl`` for one shard."""
    return "main.jsonl" if shard is None else f"shard-{shard[0]}-of-{shard[1]}.jsonl"


class Journal:
    """Append completed-file entries to one JSON-lines file.

    Parameters
    ----------
    path : pathlib.Path
        The journal file (created if absent).
    fsync : bool, default True
        Also ``fsync`` the journal, at most every ``fsync_interval`` seconds and on close.
    fsync_interval : float, default 1.0
        Seconds between ``fsync`` calls.
    """

    def __init__(self, path: Path, *, fsync: bool = True, fsync_interval: float = 1.0) -> None:
        self.path = path
        self._fsync = fsync
        self._interval = fsync_interval
        self._last_sync = time.monotonic()
        torn = path.is_file() and path.stat().st_size > 0 and not _ends_with_newline(path)
        self._file = open(path, "a", encoding="utf-8")  # closed by close()
        if torn:
            self._file.write("\n")  # terminate a line cut by a kill, so the next one parses
            self._file.flush()

    def append(self, entries: Iterable[dict[str, Any]]) -> None:
        """Write one line per entry and flush them to the OS."""
        for entry in entries:
            self._file.write(json.dumps(entry, separators=(",", ":")) + "\n")
        self._file.flush()
        if self._fsync and time.monotonic() - self._last_sync >= self._interval:
            os.fsync(self._file.fileno())
            self._last_sync = time.monotonic()

    def close(self) -> None:
        """Flush, ``fsync`` and close."""
        if self._file.closed:
            return
        try:
            self._file.flush()
            if self._fsync:
                os.fsync(self._file.fileno())
        finally:
            self._file.close()


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


def read_journals(directory: Path) -> dict[str, dict[str, Any]]:
    """Every valid entry of every ``*.jsonl`` journal in ``directory``, keyed by path.

    Torn or malformed lines are skipped; for a path written more than once the last entry
    (in file name order, then line order) wins.
    """
    done: dict[str, dict[str, Any]] = {}
    if not directory.is_dir():
        return done
    for journal in sorted(directory.glob("*.jsonl")):
        with open(journal, encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(entry, dict) and all(k in entry for k in _REQUIRED):
                    done[str(entry["path"])] = entry
    return done
