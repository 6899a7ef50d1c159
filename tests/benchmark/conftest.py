"""Fixtures of the benchmark tests: the bundled sample and a tiny checkpoint."""

from __future__ import annotations

import pytest

from keypoint_corrupt.datasets import STB, bundled_sample_root


@pytest.fixture(scope="session")
def val():
    """The bundled sample's validation split: 8 images (B1Counting / B1Random, BB left / right)."""
    return STB(bundled_sample_root(), "val")


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A randomly initialised PoseNet without refinement stages, saved with the models package."""
    torch = pytest.importorskip("torch")
    from keypoint_corrupt.models import PoseNet, save

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save(PoseNet("dense", refinement_stages=0), path, train_set="S-train", seed=0)
    return path
