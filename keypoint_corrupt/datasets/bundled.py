"""The synthetic STB sample that ships inside the package (the default dataset)."""

from __future__ import annotations

from pathlib import Path

from keypoint_corrupt._stb_layout import BUNDLED_SAMPLE_ARGS

__all__ = ["BUNDLED_SAMPLE_ARGS", "bundled_sample_root"]


def bundled_sample_root() -> Path:
    """Root of the bundled synthetic STB tree (``images/`` + ``labels/``), for ``STB(root, ...)``.

    It is what the CLI and the demo use when no dataset is given. Regenerate it with
    ``keypoint-corrupt synth-stb --out keypoint_corrupt/data/stb_sample`` (the defaults are
    :data:`BUNDLED_SAMPLE_ARGS`).

    Raises
    ------
    FileNotFoundError
        If the installation lacks the package data.

    Examples
    --------
    >>> from keypoint_corrupt.datasets import STB
    >>> len(STB(bundled_sample_root(), "train")), len(STB(bundled_sample_root(), "val"))
    (40, 8)
    """
    root = Path(__file__).resolve().parent.parent / "data" / "stb_sample"
    if not (root / "labels").is_dir():
        raise FileNotFoundError(
            f"bundled STB sample not found at {root}; the package data is missing from this "
            "installation (regenerate it with 'keypoint-corrupt synth-stb --out DIR')"
        )
    return root
