"""Helpers shared by the CLI and reliability tests (imported by name: tests/ is on sys.path)."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

#: Run the CLI in a fresh interpreter (a process to kill -9), as `python -m`.
PY_CLI = [sys.executable, "-m", "keypoint_corrupt"]
#: The installed console script.
CONSOLE_SCRIPT = Path(sys.executable).with_name("keypoint-corrupt")


def tree_digest(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``root`` (hidden ones included)."""
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath, name)
            out[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def temp_files(root: Path) -> list[str]:
    return [
        str(Path(d, n)) for d, _s, files in os.walk(root) for n in files if n.startswith(".") and ".tmp-" in n
    ]


def load_json(path: str | os.PathLike[str]) -> Any:
    """A JSON file's content."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def decode_rgb(path: str | os.PathLike[str]) -> Any:
    """An image file as RGB uint8, decoded by OpenCV (the reference decoder of the tests)."""
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert bgr is not None, path
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def write_mmpose_head_boxes(path: Path, people: Any, head: tuple[float, float, float, float]) -> Path:
    """Write MMPose's ``mpii_gt_val.mat`` for ``people`` (an MpiiPeople), each head box ``head``."""
    import numpy as np
    from scipy.io import savemat

    hb = np.zeros((2, 2, len(people)))
    hb[0, 0], hb[0, 1], hb[1, 0], hb[1, 1] = head
    savemat(
        path,
        {
            "headboxes_src": hb,
            "pos_gt_src": np.stack([s.keypoints for s in people]).transpose(1, 2, 0),
            "jnt_missing": (~np.stack([s.visibility for s in people])).T.astype(float),
        },
    )
    return path
