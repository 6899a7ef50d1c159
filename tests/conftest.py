"""Shared test fixtures: paths to the real annotated images in ``tests/data`` (see its README)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# Real images with real annotations, kept in the repository so that a bare clone passes.
FIXTURES = REPO_ROOT / "tests" / "data"
HANDS = FIXTURES / "hands"


@pytest.fixture(autouse=True)
def _torch_single_thread():
    """Run torch single-threaded in every test that has imported it, restoring the setting afterwards.

    On a small shared CI machine, OpenMP threads that spin-wait for busy cores make every
    convolution stall (measured here: 30 ms per tiny conv with 2 threads, 5x faster with 1).
    """
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _coco_files() -> list[Path]:
    return sorted(HANDS.glob("*/*.json"))


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        pytest.fail(f"test fixtures not found at {FIXTURES}")
    return FIXTURES


def load_fixture_hands() -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """Every annotated hand in the COCO fixtures: (name, RGB uint8 image, (21, 2) xy, (21,) visible)."""
    import cv2

    out = []
    for ann_file in _coco_files():
        coco = json.loads(ann_file.read_text())
        images = {im["id"]: im for im in coco["images"]}
        for ann in coco["annotations"]:
            kps = np.asarray(ann["keypoints"], dtype=np.float64).reshape(-1, 3)
            im = images[ann["image_id"]]
            bgr = cv2.imread(str(ann_file.parent / im["file_name"]), cv2.IMREAD_COLOR)
            assert bgr is not None, ann_file.parent / im["file_name"]
            out.append(
                (
                    f"{ann_file.parent.name}/{im['file_name']}",
                    bgr[..., ::-1].copy(),
                    kps[:, :2],
                    kps[:, 2] > 0,
                )
            )
    return out


@pytest.fixture(scope="session")
def fixture_hands(fixtures_dir):
    hands = load_fixture_hands()
    assert len(hands) >= 15
    return hands
