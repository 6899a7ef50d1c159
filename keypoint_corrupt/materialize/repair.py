"""What ``materialize --repair`` needs to know: the options a folder was written with.

``keypoint-corrupt materialize --out O --repair`` reads them from ``O/manifest.json`` (or,
for an unfinished run, ``O/.keypoint-corrupt/settings.json``), so that the repair command
that ``verify`` prints is exact without repeating the original command line.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from keypoint_corrupt._version import __version__
from keypoint_corrupt.materialize.coco_export import recorded_info
from keypoint_corrupt.materialize.journal import STATE_DIR
from keypoint_corrupt.materialize.manifest import MANIFEST, read_json, shard_manifests
from keypoint_corrupt.materialize.plan import CLEAN_DIR, DatasetSpec, MaterializeError, config_params

__all__ = ["annotation_differences", "recorded_options", "repair_command"]


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
    if described.get("kind") not in ("coco", "mpii") or not isinstance(annotations, dict):
        raise MaterializeError(f"the manifest's dataset is not one this version reads: {described!r}")
    images = described.get("images")
    return DatasetSpec(
        str(described["kind"]),
        annotations=tuple((str(k), Path(str(v))) for k, v in annotations.items()),
        images=Path(str(images)) if images else None,
    )


def recorded_options(out: Path) -> dict[str, Any] | None:
    """Return the settings a folder was written with, as :class:`MaterializeOptions` keywords.

    Read from ``manifest.json``, else the unfinished run's settings, else a shard's part
    manifest; ``None`` when none of them can be read. Keys: ``dataset``, ``splits``,
    ``configs`` (``None`` for a suite), ``suite`` and ``severities`` (``None`` without a suite),
    ``fraction``, ``seed``, ``image_format``, ``jpeg_quality``, ``png_compression``.
    """
    for candidate in (out / MANIFEST, out / STATE_DIR / "settings.json", *shard_manifests(out)):
        data = read_json(candidate)
        if not isinstance(data, dict) or "source_digest" not in data:
            continue
        try:
            suite = data.get("suite")
            options: dict[str, Any] = {
                "dataset": _spec(data.get("dataset")),
                "splits": tuple(str(s) for s in data["splits"]),
                "suite": None if suite is None else str(suite),
                "severities": None if suite is None else tuple(int(s) for s in data["severities"]),
                "configs": None if suite is not None else tuple(str(c["name"]) for c in data["configs"]),
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


def _same(a: Any, b: Any) -> bool:
    """Whether two values are equal as JSON (tuples and lists alike)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _written_folders(out: Path) -> tuple[set[str], set[str]]:
    """Return the splits and configurations that ``out`` holds ``<split>/<config>/images`` folders of.

    A suite's ``<split>/<corruption>/<severity>/images`` folders name no configuration: their
    annotation files do.
    """
    from keypoint_corrupt.registry import CONFIGS

    splits, configs = set(), set()
    for folder in out.glob("*/*/images"):
        name = folder.parent.name
        if folder.is_dir() and (name == CLEAN_DIR or name in CONFIGS):
            splits.add(folder.parent.parent.name)
            if name != CLEAN_DIR:
                configs.add(name)
    return splits, configs


def _annotation_files(out: Path) -> list[Path]:
    """Return every ``<split>/<config>/annotations.json`` (suites: ``<split>/<corruption>/<severity>/``)."""
    return sorted([*out.glob("*/*/annotations.json"), *out.glob("*/*/*/annotations.json")])


def annotation_differences(out: Path, values: Mapping[str, Any]) -> list[str]:
    """How the options ``values`` differ from those that the annotation files in ``out`` record.

    What ``materialize --repair`` checks when the folder has no readable manifest: each
    ``<split>/<config>/annotations.json`` records its split and configuration (with its
    parameters), the seed, the fraction and the package version in ``info`` (a COCO source's
    file: in ``info["keypoint_corrupt"]``), and its images' file names the format; the folders
    show which splits and configurations were written.
    ``values`` holds ``splits``, ``configs``, ``seed``, ``fraction`` and ``image_format``, and
    ``suite`` (a name or ``None``) when a suite is meant: its configurations are ``configs``.
    Returns one phrase per difference, ``seed 3 (existing) vs 0 (now)``; empty: none.
    """
    from keypoint_corrupt.suites import get_suite

    suite = get_suite(values["suite"]) if values.get("suite") else None
    diffs: list[str] = []

    def differ(what: str, existing: Any, now: Any) -> None:
        text = f"{what} {existing} (existing) vs {now} (now)"
        if not _same(existing, now) and text not in diffs:
            diffs.append(text)

    splits, configs = _written_folders(out)
    extension = ".jpg" if values.get("image_format") == "jpg" else ".png"
    for path in _annotation_files(out):
        data = read_json(path)
        info = recorded_info(data)  # a COCO source's file: ours under info["keypoint_corrupt"]
        if not isinstance(info, dict) or "seed" not in info or "config" not in info:
            continue
        config = str(info["config"])
        splits.add(str(info.get("split")))
        differ("seed", info.get("seed"), values.get("seed"))
        differ("fraction", info.get("fraction"), values.get("fraction"))
        differ("keypoint_corrupt version", info.get("version"), __version__)
        if config == CLEAN_DIR:
            continue
        configs.add(config)
        differ("suite", info.get("suite"), values.get("suite"))
        known = config in values.get("configs", ())
        if known and not _same(info.get("corruption"), config_params([config], suite)[0]):
            diffs.append(f"the parameters of {config} differ")
        images = data.get("images")
        first = images[0] if isinstance(images, list) and images and isinstance(images[0], dict) else {}
        name = str(first.get("file_name", ""))
        if name and not name.endswith(extension):
            differ("format", name.rsplit(".", 1)[-1], extension[1:])
    if splits:
        differ("splits", ",".join(sorted(splits)), ",".join(sorted(values.get("splits", ()))))
    if configs:
        differ("configs", ",".join(sorted(configs)), ",".join(sorted(values.get("configs", ()))))
    return diffs
