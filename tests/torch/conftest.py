"""Fixtures of the torch tests: real images as batches, and the CPU reference of a batch.

torch is installed wherever these tests run (CI installs the ``models`` extra), so nothing
here is skipped: a missing torch is an error, not a silent pass.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

DATA = Path(__file__).resolve().parents[1] / "data"
STB_FRAME = DATA / "stb" / "SK_color_0.png"
COCO_IMAGE = DATA / "body" / "coco" / "000000000785.jpg"


def read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert bgr is not None, f"cannot read fixture {path}"
    return np.ascontiguousarray(bgr[..., ::-1])


def as_batch(arrays: list[np.ndarray], dtype: str = "uint8") -> torch.Tensor:
    """``H x W x C`` uint8 arrays as a ``B x C x H x W`` batch (float32: divided by 255 in float32)."""
    batch = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    return batch if dtype == "uint8" else batch.to(torch.float32) / 255.0


@pytest.fixture(name="as_batch", scope="session")
def as_batch_fixture():
    """:func:`as_batch`, for test modules (conftest is not importable by name)."""
    return as_batch


@pytest.fixture(scope="session")
def real_pair() -> list[np.ndarray]:
    """The STB frame and a COCO photograph, cropped to one odd size (301 x 413) so they batch."""
    crops = [read_rgb(STB_FRAME)[90:391, 101:514], read_rgb(COCO_IMAGE)[:301, :413]]
    assert all(c.shape == (301, 413, 3) for c in crops)
    return [np.ascontiguousarray(c) for c in crops]
