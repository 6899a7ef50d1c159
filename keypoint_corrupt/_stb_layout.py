"""STB's sequence names and the bundled sample's arguments: constants, importable without NumPy.

:mod:`keypoint_corrupt.datasets` uses them, and so does ``keypoint-corrupt synth-stb``'s help,
which must not import the dataset layer (NumPy, OpenCV, albumentations) to print them.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BUNDLED_SAMPLE_ARGS", "STB_SEQUENCES"]

#: The 12 STB sequences, B1..B6, each Counting and Random.
STB_SEQUENCES: tuple[str, ...] = tuple(f"B{b}{kind}" for b in range(1, 7) for kind in ("Counting", "Random"))

#: The ``write_synthetic_stb`` / ``synth-stb`` arguments that produced the bundled tree:
#: all 12 sequences, 2 frames each (72 images, about 1.2 MB).
BUNDLED_SAMPLE_ARGS: dict[str, Any] = {"frames_per_sequence": 2, "sequences": None, "seed": 0}
