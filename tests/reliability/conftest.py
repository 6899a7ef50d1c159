"""Fixtures for the reliability tests (faults: kills, concurrent runs, damaged files)."""

from __future__ import annotations

from pathlib import Path

import kc_cli_helpers
import pytest
from kc_cli_helpers import PY_CLI

from keypoint_corrupt.cli.main import main


@pytest.fixture(scope="session")
def py_cli() -> tuple[str, ...]:
    return tuple(PY_CLI)


@pytest.fixture(scope="session")
def tree_digest():
    return kc_cli_helpers.tree_digest


@pytest.fixture(scope="session")
def sample_output(tmp_path_factory) -> Path:
    """An uninterrupted one-worker run over the bundled sample (train + val, all 11 configs).

    Never modify it (copy it first): its clean copies may be hard links to the sample's files.
    """
    out = tmp_path_factory.mktemp("sample_output") / "out"
    assert main(["materialize", "--out", str(out), "--workers", "1", "--quiet"]) == 0
    return out
