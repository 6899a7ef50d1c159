"""Recheck a materialised output folder against its manifest."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, TypeGuard

from keypoint_corrupt.materialize.lock import running_holders
from keypoint_corrupt.materialize.manifest import MANIFEST, TOOL, shard_manifests
from keypoint_corrupt.materialize.plan import CLEAN_DIR, recorded_subset_dir, subset_dir
from keypoint_corrupt.materialize.repair import repair_command

__all__ = ["VerifyReport", "sha256_file", "verify_output"]


@dataclass
class VerifyReport:
    """Outcome of :func:`verify_output`.

    Attributes
    ----------
    out : pathlib.Path
        The folder checked.
    files : int
        Image files checked.
    annotation_files : int
        Annotation files checked.
    problems : list of str
        One line per problem (empty: everything matches).
    damaged : list of str
        The files among the problems that are missing or differ from the manifest (images,
        annotation files, or ``manifest.json`` itself when it cannot be read):
        ``materialize --repair`` rewrites them (:attr:`repair_hint`).
    notes : list of str
        Warnings that are not problems, e.g. a ``materialize`` run writing the folder now.
    """

    out: Path
    files: int = 0
    annotation_files: int = 0
    problems: list[str] = field(default_factory=list)
    damaged: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No problem found."""
        return not self.problems

    @property
    def repair_hint(self) -> str | None:
        """The command that rewrites :attr:`damaged` (``None`` when nothing is damaged)."""
        if not self.damaged:
            return None
        command = repair_command(os.path.abspath(self.out))
        if MANIFEST in self.damaged:
            return (
                f"to rebuild {MANIFEST} and rewrite what differs, run the original materialize command "
                f"with --repair ({command} plus the original options: they cannot be read from a "
                "damaged manifest)"
            )
        return f"to rewrite the {len(self.damaged)} damaged or missing file(s), run: {command}"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _safe_rel(path: object) -> TypeGuard[str]:
    if not isinstance(path, str) or not path:
        return False
    p = PurePosixPath(path)
    return not p.is_absolute() and ".." not in p.parts and "\\" not in path


def verify_output(
    out: str | os.PathLike[str], *, progress: Callable[[int], None] | None = None
) -> VerifyReport:
    """Check every file listed in ``out/manifest.json``: presence, size, SHA-256, annotation counts.

    Also reports an incomplete run, its source errors, and files under an ``images/``
    folder that the manifest does not list (e.g. temporary files of a killed run).

    Parameters
    ----------
    out : path
        A folder written by ``keypoint-corrupt materialize``.
    progress : callable, optional
        Called with the number of files checked after each one.

    Returns
    -------
    VerifyReport
    """
    root = Path(out)
    report = VerifyReport(root)
    for holder in running_holders(root):
        report.notes.append(
            f"a materialize run is writing {root} right now ({holder.describe()}): files may still change"
        )
    manifest = _read_manifest(root, report.problems)
    if manifest is None:
        unmerged = bool(shard_manifests(root))
        if (root / MANIFEST).is_file() or (not unmerged and any(root.glob("*/*/annotations.json"))):
            report.damaged.append(MANIFEST)
        return report
    _check_run(manifest, report.problems)
    listed = _check_files(root, manifest["files"], report, progress)
    for rec in manifest.get("annotation_files") or []:
        report.annotation_files += 1
        before = len(report.problems)
        _check_annotations(root, rec, listed, report.problems)
        if len(report.problems) > before and isinstance(rec, dict) and _safe_rel(rec.get("path")):
            report.damaged.append(str(rec["path"]))
    _check_unlisted(root, manifest, listed, report.problems)
    return report


def _read_manifest(root: Path, problems: list[str]) -> dict[str, Any] | None:
    """Parse ``root/manifest.json``; ``None`` (with the problem noted) if absent or not one of ours."""
    mpath = root / MANIFEST
    if not mpath.is_file():
        parts = [p.name for p in shard_manifests(root)]
        if parts:
            problems.append(
                f"{mpath} not found, only shard parts ({', '.join(parts)}): run materialize once more "
                "without --shard to merge them"
            )
        else:
            problems.append(f"{mpath} not found: not a keypoint-corrupt materialize output")
        return None
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        problems.append(f"{mpath}: cannot be read as JSON ({exc})")
        return None
    if (
        not isinstance(manifest, dict)
        or manifest.get("tool") != TOOL
        or not isinstance(manifest.get("files"), list)
    ):
        problems.append(f"{mpath}: not a keypoint-corrupt materialize manifest")
        return None
    return manifest


def _check_run(manifest: dict[str, Any], problems: list[str]) -> None:
    """Note an incomplete run and each source error it recorded."""
    if not manifest.get("complete"):
        problems.append(
            f"the run is incomplete: {manifest.get('written_files')} of {manifest.get('planned_files')} "
            "planned files written (re-run the same materialize command to finish it)"
        )
    for err in manifest.get("errors") or []:
        problems.append(f"source error: {err.get('message') if isinstance(err, dict) else err}")


def _check_files(
    root: Path, records: list[Any], report: VerifyReport, progress: Callable[[int], None] | None
) -> dict[tuple[str, str], set[str]]:
    """Check every listed image file; return the listed paths by (split, config)."""
    listed: dict[tuple[str, str], set[str]] = {}
    for rec in records:
        path = rec.get("path") if isinstance(rec, dict) else None
        if not _safe_rel(path):
            report.problems.append(f"manifest entry with an invalid path: {rec!r}")
            continue
        listed.setdefault((str(rec.get("split")), str(rec.get("config"))), set()).add(path)
        before = len(report.problems)
        _check_file(root, path, rec, report.problems)
        if len(report.problems) > before:
            report.damaged.append(path)
        report.files += 1
        if progress is not None:
            progress(report.files)
    return listed


def _check_unlisted(
    root: Path, manifest: dict[str, Any], listed: dict[tuple[str, str], set[str]], problems: list[str]
) -> None:
    """Note files under an ``images/`` folder of the manifest (clean copies too) that it does not list."""
    known = {p for paths in listed.values() for p in paths}
    records = [c for c in manifest.get("configs") or [] if isinstance(c, dict)]
    for split in manifest.get("splits") or []:
        folders = [recorded_subset_dir(str(split), c) for c in records] + [subset_dir(str(split), CLEAN_DIR)]
        for folder in folders:
            if not _safe_rel(folder):
                continue
            images = root / folder / "images"
            for dirpath, _dirs, files in os.walk(images):
                for name in sorted(files):
                    rel = Path(dirpath, name).relative_to(root).as_posix()
                    if rel not in known:
                        problems.append(f"{rel}: on disk but not in the manifest")


def _check_file(root: Path, path: str, rec: dict[str, Any], problems: list[str]) -> None:
    full = root / path
    try:
        size = full.stat().st_size
    except FileNotFoundError:
        problems.append(f"{path}: missing")
        return
    except OSError as exc:
        problems.append(f"{path}: cannot be read ({exc.strerror})")
        return
    if size != rec.get("size"):
        problems.append(f"{path}: size {size} bytes, manifest says {rec.get('size')}")
        return
    try:
        digest = sha256_file(full)
    except OSError as exc:
        problems.append(f"{path}: cannot be read ({exc.strerror})")
        return
    if digest != rec.get("sha256"):
        problems.append(
            f"{path}: sha256 {digest[:12]}... differs from the manifest's {str(rec.get('sha256'))[:12]}..."
        )


def _check_annotations(
    root: Path, rec: Any, listed: dict[tuple[str, str], set[str]], problems: list[str]
) -> None:
    path = rec.get("path") if isinstance(rec, dict) else None
    if not _safe_rel(path):
        problems.append(f"manifest annotation entry with an invalid path: {rec!r}")
        return
    full = root / path
    try:
        data = full.read_bytes()
    except FileNotFoundError:
        problems.append(f"{path}: missing")
        return
    except OSError as exc:
        problems.append(f"{path}: cannot be read ({exc.strerror})")
        return
    if hashlib.sha256(data).hexdigest() != rec.get("sha256"):
        problems.append(f"{path}: sha256 differs from the manifest's")
    if rec.get("format") == "mpii":
        _check_mpii(path, data, rec, listed, problems)
        return
    try:
        coco = json.loads(data)
        images, annotations = coco["images"], coco["annotations"]
        if not (isinstance(images, list) and isinstance(annotations, list)):
            raise TypeError("images and annotations must be lists")
        if not isinstance(coco["categories"], list):
            raise TypeError("categories must be a list")
    except (ValueError, KeyError, TypeError):
        problems.append(f"{path}: not a COCO annotation file")
        return
    if len(images) != rec.get("images") or len(annotations) != rec.get("annotations"):
        problems.append(
            f"{path}: {len(images)} images / {len(annotations)} annotations, manifest says "
            f"{rec.get('images')} / {rec.get('annotations')}"
        )
    image_ids = {im.get("id") for im in images if isinstance(im, dict)}
    if any(not isinstance(a, dict) or a.get("image_id") not in image_ids for a in annotations):
        problems.append(f"{path}: an annotation refers to an image that the file does not list")
    key = (str(rec.get("split")), str(rec.get("config")))
    if key in listed or rec.get("config") != "clean":
        folder = PurePosixPath(path).parent
        names = {str(folder / str(im.get("file_name"))) for im in images if isinstance(im, dict)}
        expected = listed.get(key, set())
        if names != expected:
            problems.append(
                f"{path}: lists {len(names)} images, the manifest {len(expected)} files for "
                f"{key[0]}/{key[1]} ({len(names - expected)} unknown, {len(expected - names)} unlisted)"
            )


def _check_mpii(
    path: str, data: bytes, rec: dict[str, Any], listed: dict[tuple[str, str], set[str]], problems: list[str]
) -> None:
    """Check an ``mpii.json`` (MMPose's MPII JSON): its people, their images and the manifest's counts."""
    fields = ("image", "joints", "joints_vis", "center", "scale")
    try:
        people = json.loads(data)
        if not isinstance(people, list) or any(
            not isinstance(p, dict) or any(k not in p for k in fields) for p in people
        ):
            raise TypeError("a list of people")
    except (ValueError, TypeError):
        problems.append(f"{path}: not MMPose's MPII JSON (a list of {{{', '.join(fields)}}})")
        return
    folder = PurePosixPath(path).parent
    names = {str(folder / str(p["image"])) for p in people}
    if len(names) != rec.get("images") or len(people) != rec.get("people"):
        problems.append(
            f"{path}: {len(names)} images / {len(people)} people, manifest says "
            f"{rec.get('images')} / {rec.get('people')}"
        )
    key = (str(rec.get("split")), str(rec.get("config")))
    expected = listed.get(key, set())  # every MPII image shows a person: the same images
    if names != expected:
        problems.append(
            f"{path}: people on {len(names)} images, the manifest lists {len(expected)} files for "
            f"{key[0]}/{key[1]} ({len(names - expected)} unknown, {len(expected - names)} without a person)"
        )
