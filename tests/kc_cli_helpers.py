"""Helpers shared by the CLI and reliability tests (imported by name: tests/ is on sys.path)."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

#: Run the CLI in a fresh interpreter (a process to kill -9), as `python -m`.
PY_CLI = [sys.executable, "-m", "keypoint_corrupt"]
#: The installed console script.
CONSOLE_SCRIPT = Path(sys.executable).with_name("keypoint-corrupt")


def tree_digest(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``root`` (hidden ones included)."""
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath, name)
            out[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def temp_files(root: Path) -> list[str]:
    return [
        str(Path(d, n)) for d, _s, files in os.walk(root) for n in files if n.startswith(".") and ".tmp-" in n
    ]
