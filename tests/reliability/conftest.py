"""Fixtures for the reliability tests (faults: kills, concurrent runs, damaged files)."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import pytest

from keypoint_corrupt.cli.main import main

#: Run the CLI in a fresh interpreter (a process to kill), as `python -m`.
PY_CLI = (sys.executable, "-m", "keypoint_corrupt")


def digest_tree(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``root`` (hidden ones included)."""
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath, name)
            out[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="session")
def py_cli() -> tuple[str, ...]:
    return PY_CLI


@pytest.fixture(scope="session")
def tree_digest():
    return digest_tree


@pytest.fixture(scope="session")
def sample_output(tmp_path_factory) -> Path:
    """An uninterrupted one-worker run over the bundled sample (train + val, all 11 configs).

    Never modify it (copy it first): its clean copies may be hard links to the sample's files.
    """
    out = tmp_path_factory.mktemp("sample_output") / "out"
    assert main(["materialize", "--out", str(out), "--workers", "1", "--quiet"]) == 0
    return out
