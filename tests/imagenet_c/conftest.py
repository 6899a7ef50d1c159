"""Fixtures of the ImageNet-C tests (the images they read are in ``ic_images.py``)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from keypoint_corrupt.functional.imagenet_c import _textures


@pytest.fixture(scope="session")
def synthetic_frost(tmp_path_factory) -> Path:
    """Six smooth random textures of different brightness: frost without imagecorruptions."""
    folder = tmp_path_factory.mktemp("frost")
    rng = np.random.default_rng(0)
    for k, name in enumerate(_textures.FILENAMES):
        noise = cv2.GaussianBlur(rng.random((150, 200, 3)).astype(np.float32), (0, 0), 4)
        texture = np.clip(40 * k + 200 * (noise - noise.mean()) + 60, 0, 255).astype(np.uint8)
        assert cv2.imwrite(str(folder / name), texture)
    return folder
