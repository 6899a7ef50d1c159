"""Fixtures for the end-to-end CLI tests: a reference output of the bundled sample, helpers."""

from __future__ import annotations

from pathlib import Path

import pytest
from kc_cli_helpers import tree_digest

from keypoint_corrupt.cli.main import main
from keypoint_corrupt.datasets import bundled_sample_root


@pytest.fixture(scope="session")
def bundled() -> Path:
    return bundled_sample_root()


@pytest.fixture(scope="session")
def reference(tmp_path_factory) -> Path:
    """An uninterrupted one-worker run over the bundled sample (train + val, all 11 configs)."""
    out = tmp_path_factory.mktemp("reference") / "out"
    assert main(["materialize", "--out", str(out), "--workers", "1", "--quiet"]) == 0
    return out


@pytest.fixture(scope="session")
def reference_digest(reference) -> dict[str, str]:
    return tree_digest(reference)
