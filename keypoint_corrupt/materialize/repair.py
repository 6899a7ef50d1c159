"""What ``materialize --repair`` needs to know: the options a folder was written with.

``keypoint-corrupt materialize --out O --repair`` reads them from ``O/manifest.json`` (or,
for an unfinished run, ``O/.keypoint-corrupt/settings.json``), so that the repair command
that ``verify`` prints is exact without repeating the original command line.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from keypoint_corrupt.materialize.journal import STATE_DIR
from keypoint_corrupt.materialize.manifest import MANIFEST, read_json, shard_manifests
from keypoint_corrupt.materialize.plan import DatasetSpec, MaterializeError

__all__ = ["recorded_options", "repair_command"]


def repair_command(out: Path | str) -> str:
    """Return the command that repairs the folder ``out`` (options read from its manifest).

    Examples
    --------
    >>> repair_command("/data/my out")
    "keypoint-corrupt materialize --repair --out '/data/my out'"
    """
    return f"keypoint-corrupt materialize --repair --out {shlex.quote(str(out))}"


def _spec(described: Any) -> DatasetSpec:
    """Rebuild a :class:`DatasetSpec` from its ``describe()`` record in a manifest."""
    if not isinstance(described, dict):
        raise MaterializeError("the manifest does not describe its dataset")
    if described.get("kind") == "stb":
        if described.get("bundled"):
            from keypoint_corrupt.datasets import bundled_sample_root

            return DatasetSpec("stb", bundled_sample_root(), bundled=True)
        return DatasetSpec("stb", Path(str(described["root"])))
    annotations = described.get("annotations")
    if described.get("kind") != "coco" or not isinstance(annotations, dict):
        raise MaterializeError(f"the manifest's dataset is not one this version reads: {described!r}")
    images = described.get("images")
    return DatasetSpec(
        "coco",
        annotations=tuple((str(k), Path(str(v))) for k, v in annotations.items()),
        images=Path(str(images)) if images else None,
    )


def recorded_options(out: Path) -> dict[str, Any] | None:
    """Return the settings a folder was written with, as :class:`MaterializeOptions` keywords.

    Read from ``manifest.json``, else the unfinished run's settings, else a shard's part
    manifest; ``None`` when none of them can be read. Keys: ``dataset``, ``splits``,
    ``configs``, ``fraction``, ``seed``, ``image_format``, ``jpeg_quality``,
    ``png_compression``.
    """
    for candidate in (out / MANIFEST, out / STATE_DIR / "settings.json", *shard_manifests(out)):
        data = read_json(candidate)
        if not isinstance(data, dict) or "source_digest" not in data:
            continue
        try:
            options: dict[str, Any] = {
                "dataset": _spec(data.get("dataset")),
                "splits": tuple(str(s) for s in data["splits"]),
                "configs": tuple(str(c["name"]) for c in data["configs"]),
                "fraction": float(data["fraction"]),
                "seed": int(data["seed"]),
                "image_format": str(data["image_format"]),
                "png_compression": data.get("png_compression"),
            }
            if data.get("jpeg_quality") is not None:
                options["jpeg_quality"] = int(data["jpeg_quality"])
        except (KeyError, TypeError, ValueError, MaterializeError):
            continue
        return options
    return None
