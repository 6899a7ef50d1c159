"""Synthetic hands for the model tests (NumPy and OpenCV only: importable without torch)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest


def synthetic_hand(seed: int, size: int = 96, joints: int = 21) -> dict:
    """A dark image with one coloured disc per joint, joints spread around the centre."""
    rng = np.random.default_rng(seed)
    image = np.full((size, size, 3), 30, np.uint8)
    keypoints = rng.uniform(0.3 * size, 0.7 * size, (joints, 2))
    for j, (x, y) in enumerate(keypoints):
        colour = (255, int(12 * j) % 256, 255 - int(12 * j) % 256)
        cv2.circle(image, (round(x), round(y)), 2, colour, -1)
    return {"image": image, "keypoints": keypoints, "visibility": np.ones(joints, bool)}


@pytest.fixture
def hands():
    """Factory: ``hands(n, distinct=...)`` synthetic dataset items."""

    def make(n: int, distinct: bool = True, size: int = 96) -> list[dict]:
        return [synthetic_hand(i if distinct else 0, size) for i in range(n)]

    return make
