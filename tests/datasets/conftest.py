"""Fixtures for the dataset tests: the bundled sample and small generated STB trees."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from keypoint_corrupt.datasets import bundled_sample_root, write_synthetic_stb


@pytest.fixture(scope="session")
def bundled_root() -> Path:
    return bundled_sample_root()


@pytest.fixture(scope="session")
def val_tree(tmp_path_factory) -> Path:
    """A writable synthetic tree with the two S-val sequences, 3 frames each (images included)."""
    return write_synthetic_stb(tmp_path_factory.mktemp("stb_val"), 3, ["B1Counting", "B1Random"], seed=5)


@pytest.fixture
def labels_only_tree(tmp_path, bundled_root) -> Path:
    """A copy of the bundled labels with empty sequence folders (listing never opens images)."""
    shutil.copytree(bundled_root / "labels", tmp_path / "labels")
    for seq in (bundled_root / "images").iterdir():
        (tmp_path / "images" / seq.name).mkdir(parents=True)
    return tmp_path
