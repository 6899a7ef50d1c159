"""The manifest: settings, versions and every output file with its source and SHA-256."""

from __future__ import annotations

import json
import platform
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from keypoint_corrupt._version import __version__
from keypoint_corrupt.materialize.plan import Plan, config_params, dataset_identity
from keypoint_corrupt.materialize.writer import EncodeOptions

__all__ = [
    "MANIFEST",
    "SCHEMA_VERSION",
    "build_manifest",
    "build_settings",
    "read_json",
    "settings_differences",
    "shard_manifest_name",
    "shard_manifests",
    "versions",
]

MANIFEST = "manifest.json"
SCHEMA_VERSION = 1
TOOL = "keypoint-corrupt materialize"
#: Versions whose change can change output bytes: a resume across them is refused.
_BYTE_AFFECTING = ("keypoint_corrupt", "numpy", "opencv")
_SETTINGS_KEYS = (
    "dataset",
    "splits",
    "suite",
    "severities",
    "configs",
    "fraction",
    "seed",
    "image_format",
    "jpeg_quality",
    "png_compression",
    "source_digest",
    "versions",
)


#: A shard's part manifest, beside ``manifest.json``: the one place that spells its name.
_SHARD_MANIFEST = "manifest.shard-{k}-of-{n}.json"


def shard_manifest_name(shard: tuple[int, int]) -> str:
    """Name of shard ``(k, n)``'s part manifest: ``manifest.shard-K-of-N.json``.

    Examples
    --------
    >>> shard_manifest_name((2, 8))
    'manifest.shard-2-of-8.json'
    """
    return _SHARD_MANIFEST.format(k=shard[0], n=shard[1])


def shard_manifests(out: Path) -> list[Path]:
    """Every shard's part manifest in the folder ``out``, sorted by name (none if it is no folder)."""
    if not out.is_dir():
        return []
    return sorted(out.glob(_SHARD_MANIFEST.format(k="*", n="*")))


def _dist_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def versions() -> dict[str, str | None]:
    """Python, the package and its dependencies' versions."""
    import scipy

    return {
        "python": platform.python_version(),
        "keypoint_corrupt": __version__,
        "numpy": np.__version__,
        "opencv": cv2.__version__,
        "albumentations": _dist_version("albumentations"),
        "scipy": scipy.__version__,
        "tqdm": _dist_version("tqdm"),
    }


def build_settings(plan: Plan, encode: EncodeOptions) -> dict[str, Any]:
    """Everything the output bytes depend on; a resume with other settings is refused.

    ``suite`` and ``severities`` are present only when a suite is written (a ``--configs``
    output's settings are as they were before suites existed).
    """
    suite = {} if plan.suite is None else {"suite": plan.suite.name, "severities": list(plan.severities)}
    return {
        "dataset": plan.spec.describe(),
        "splits": list(plan.splits),
        **suite,
        "configs": config_params(plan.configs, plan.suite),
        "fraction": plan.fraction,
        "seed": plan.seed,
        "image_format": encode.image_format,
        "jpeg_quality": encode.jpeg_quality if encode.image_format == "jpg" else None,
        "png_compression": encode.png_compression if encode.image_format == "png" else None,
        "source_digest": plan.source_digest,
        "versions": versions(),
    }


def settings_differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Human-readable differences between recorded and requested settings (empty: same)."""
    diffs = []
    for key in _SETTINGS_KEYS:
        a, b = old.get(key), new.get(key)
        if key == "dataset":  # what the data is, not where it lives (source_digest: its content)
            a, b = dataset_identity(a), dataset_identity(b)
        if key == "versions":
            a = {k: (a or {}).get(k) for k in _BYTE_AFFECTING}
            b = {k: (b or {}).get(k) for k in _BYTE_AFFECTING}
            for k in _BYTE_AFFECTING:
                if a[k] != b[k]:
                    diffs.append(f"{k} version {a[k]} (existing) vs {b[k]} (now)")
            continue
        if a == b:
            continue
        if key == "configs":
            names_a = [c.get("name") for c in a or []]
            names_b = [c.get("name") for c in b or []]
            if names_a != names_b:
                diffs.append(f"configs {','.join(map(str, names_a))} (existing) vs {','.join(names_b)} (now)")
            else:
                diffs.append("configuration parameters differ")
        elif key == "source_digest":
            diffs.append("the source annotations (sample ids or keypoints) differ")
        elif key == "dataset":
            diffs.append(f"dataset {_short(a)} (existing) vs {_short(b)} (now)")
        else:
            diffs.append(f"{key} {_short(a)} (existing) vs {_short(b)} (now)")
    return diffs


def _short(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def read_json(path: Path) -> Any:
    """Parse a JSON file (``None`` when missing or unreadable)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None


def build_manifest(
    plan: Plan,
    settings: Mapping[str, Any],
    done: Mapping[str, Mapping[str, Any]],
    *,
    errors: Sequence[Mapping[str, Any]] = (),
    annotation_files: Sequence[Mapping[str, Any]] = (),
    shard: tuple[int, int] | None = None,
    paths: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Build the manifest of the files in ``done``, in plan order.

    Parameters
    ----------
    plan, settings
        The run's plan and :func:`build_settings`.
    done : mapping
        Relative path -> journal entry, for files known to be complete on disk.
    errors : sequence of dict
        Sources that could not be rendered.
    annotation_files : sequence of dict
        ``{"path", "sha256", "images", "annotations"}`` of each annotation file written.
    shard : (k, n), optional
        Set for a shard's part manifest.
    paths : sequence of str, optional
        The planned outputs this manifest covers (default: the whole plan); ``complete`` is
        true when every one of them is in ``done`` and there are no errors.
    """
    planned = list(plan.by_path) if paths is None else list(paths)
    planned_set = set(planned)
    files = []
    for item in plan.items:
        if item.path not in planned_set or item.path not in done:
            continue
        entry = done[item.path]
        record: dict[str, Any] = {
            "path": item.path,
            "split": item.split,
            "config": item.config,
            "source_id": item.sample_id,
            "source_path": item.source_path,
            "sha256": entry["sha256"],
            "size": int(entry["size"]),
            "width": int(entry["width"]),
            "height": int(entry["height"]),
        }
        if "box" in entry:
            record["box"] = entry["box"]
        if "target_instance" in entry:
            record["target_instance"] = entry["target_instance"]
        if "keypoints" in entry:
            record["keypoints"] = entry["keypoints"]
        files.append(record)
    complete = len(files) == len(planned) and not errors
    counts = {
        split: {
            "sources": len(plan.samples[split]),
            "configs": {c: len(plan.by_subset[(split, c)]) for c in plan.configs},
        }
        for split in plan.splits
    }
    return {
        "tool": TOOL,
        "schema_version": SCHEMA_VERSION,
        "complete": complete,
        "shard": None if shard is None else f"{shard[0]}/{shard[1]}",
        **{k: settings[k] for k in _SETTINGS_KEYS if k in settings},
        "counts": counts,
        "planned_files": len(planned),
        "written_files": len(files),
        "files": files,
        "annotation_files": list(annotation_files),
        "errors": list(errors),
    }
