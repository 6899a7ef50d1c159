"""Fixtures for the end-to-end CLI tests: a reference output of the bundled sample, helpers."""

from __future__ import annotations

from pathlib import Path

import pytest
from kc_cli_helpers import tree_digest

from keypoint_corrupt.cli.main import main
from keypoint_corrupt.datasets import bundled_sample_root
from keypoint_corrupt.functional.imagenet_c import _textures


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


@pytest.fixture(params=["empty folder in the variable", "no package, no variable"])
def no_frost_textures(request, tmp_path, monkeypatch):
    """Frost's photographs unavailable: the variable names an empty folder, or nothing provides them."""
    if request.param.startswith("empty"):
        empty = tmp_path / "empty"
        empty.mkdir()
        monkeypatch.setenv(_textures.ENV_VAR, str(empty))
        return f"{empty / 'frost1.png'} not found"
    monkeypatch.delenv(_textures.ENV_VAR, raising=False)
    monkeypatch.setattr(_textures, "_installed_folder", lambda: None)
    return "none were found"
