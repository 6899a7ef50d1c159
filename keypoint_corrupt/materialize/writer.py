"""Encoding and atomic writing of output files, and the per-source work done in each worker."""

from __future__ import annotations

import hashlib
import json
import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from keypoint_corrupt._paths import TOKEN as _TOKEN
from keypoint_corrupt._paths import fsync_folder, is_temp_name, temp_name, temp_target, write_atomic
from keypoint_corrupt._paths import replacing as _replacing
from keypoint_corrupt.datasets import CLEAN, CorruptedDataset
from keypoint_corrupt.materialize.journal import Journal
from keypoint_corrupt.materialize.lifeline import die_with_parent
from keypoint_corrupt.materialize.plan import WorkUnit
from keypoint_corrupt.registry import get_config

__all__ = [
    "CHANGED_SOURCE",
    "EncodeOptions",
    "OutputWriteError",
    "UnitResult",
    "WorkerContext",
    "changed_source",
    "encode_image",
    "fsync_folder",
    "holds_bytes",
    "init_worker",
    "is_temp_name",
    "json_bytes",
    "link_or_copy",
    "moved_keypoints",
    "process_units",
    "run_unit",
    "temp_name",
    "temp_target",
    "worker_journal_path",
    "write_atomic",
    "write_json_atomic",
]

#: The start of a source error of ``materialize --repair`` for a source whose bytes changed.
CHANGED_SOURCE = "source {source} changed since the output was written"


class OutputWriteError(Exception):
    """Writing an output file failed (full disk, permission, read-only file system, ...).

    Attributes
    ----------
    path : str
        The file that could not be written.
    errno : int or None
        The OS error number.
    reason : str
        The OS message.
    """

    def __init__(self, path: str, errno_: int | None, reason: str) -> None:
        super().__init__(path, errno_, reason)
        self.path = path
        self.errno = errno_
        self.reason = reason

    def __str__(self) -> str:
        return f"cannot write {self.path}: {self.reason}"


@dataclass(frozen=True)
class EncodeOptions:
    """How images are encoded: format and its fixed parameters (bytes depend only on these)."""

    image_format: str = "png"
    jpeg_quality: int = 95
    png_compression: int | None = None

    def params(self) -> list[int]:
        """Return the ``cv2.imencode`` parameter list."""
        if self.image_format == "jpg":
            return [cv2.IMWRITE_JPEG_QUALITY, int(self.jpeg_quality)]
        if self.png_compression is None:
            return []
        return [cv2.IMWRITE_PNG_COMPRESSION, int(self.png_compression)]

    @property
    def extension(self) -> str:
        """``.png`` or ``.jpg``."""
        return ".jpg" if self.image_format == "jpg" else ".png"


def encode_image(image_rgb: np.ndarray, options: EncodeOptions) -> bytes:
    """Encode an RGB uint8 image (OpenCV writes BGR) with fixed parameters."""
    bgr = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR) if image_rgb.ndim == 3 else image_rgb
    ok, buf = cv2.imencode(options.extension, bgr, options.params())
    if not ok:
        raise ValueError(f"OpenCV could not encode a {image_rgb.shape} image as {options.image_format}")
    return buf.tobytes()


def json_bytes(obj: Any) -> bytes:
    """``obj`` as compact, deterministic JSON (one line, newline-terminated), UTF-8."""
    return (json.dumps(obj, separators=(",", ":"), allow_nan=False) + "\n").encode("utf-8")


def write_json_atomic(path: Path, obj: Any, *, fsync: bool = True) -> str:
    """Write ``obj`` as compact, deterministic JSON atomically; return the bytes' SHA-256."""
    data = json_bytes(obj)
    write_atomic(path, data, fsync=fsync)
    return hashlib.sha256(data).hexdigest()


def link_or_copy(source: str | os.PathLike[str], path: Path, *, fsync: bool = False) -> tuple[str, int]:
    """Place the file ``source`` at ``path`` atomically; return its SHA-256 and size.

    A hard link where the file system allows it (same device: no extra disk, no copying),
    else (``EXDEV``, ``EPERM``, ...) a copy, hashed as it is copied. Either goes to a hidden
    temporary sibling first (:func:`temp_name`), then is renamed over ``path``; on any error the
    temporary file is removed and the ``OSError`` propagates. With ``fsync``, a copy is
    ``fsync``-ed before its rename and the folder after it.
    """
    h = hashlib.sha256()
    size = 0
    with _replacing(path, fsync=fsync) as tmp:
        try:
            _hard_link(source, tmp)
        except OSError:
            with open(source, "rb") as src, open(tmp, "wb") as dst:
                while block := src.read(1 << 20):
                    h.update(block)
                    dst.write(block)
                    size += len(block)
                dst.flush()
                if fsync:
                    os.fsync(dst.fileno())
        else:
            with open(tmp, "rb") as f:
                while block := f.read(1 << 20):
                    h.update(block)
                    size += len(block)
    return h.hexdigest(), size


def _hard_link(source: str | os.PathLike[str], target: Path) -> None:
    try:
        os.link(source, target)
    except FileExistsError:  # a temporary name left by a killed process with the same pid
        os.unlink(target)
        os.link(source, target)


def clean_copy_entry(
    ctx: WorkerContext, source: str | os.PathLike[str], rel: str, image: Any
) -> dict[str, Any]:
    """Place a source image itself at ``ctx.out / rel`` (:func:`link_or_copy`); return its journal entry.

    ``image`` is the decoded source (its size is recorded). ``OSError`` propagates.
    """
    path = ctx.out / rel
    if path.parent not in ctx.made:
        path.parent.mkdir(parents=True, exist_ok=True)
        ctx.made.add(path.parent)
    digest, size = link_or_copy(source, path, fsync=ctx.fsync)
    return {
        "path": rel,
        "sha256": digest,
        "size": size,
        "width": int(image.shape[1]),
        "height": int(image.shape[0]),
    }


@dataclass(frozen=True)
class WorkerContext:
    """What a worker needs: the datasets to render from and where and how to write.

    ``journal`` is the run's journal file: the process that renders in-process appends to
    it, and each pool worker to its own sibling (:func:`worker_journal_path`), right after
    each file's rename, so that a kill loses at most the file being renamed.
    """

    datasets: dict[str, CorruptedDataset]
    out: Path
    encode: EncodeOptions
    fsync: bool = False
    journal: Path | None = None
    #: ``materialize --repair``: leave a file that already holds the rendered bytes untouched.
    keep_identical: bool = False
    #: ``materialize --repair``: the SHA-256 that the output records for each source image's
    #: clean copy, by source path. A source whose bytes differ now is a source error, and
    #: nothing is written from it (its corrupted subsets came from the recorded bytes).
    recorded_sources: Mapping[str, str] = field(default_factory=dict)
    #: Output folders this process has already created (one ``mkdir`` per folder, not per file).
    made: set[Path] = field(default_factory=set, compare=False, repr=False)


@dataclass
class UnitResult:
    """Outcome of one work unit.

    Attributes
    ----------
    unit : WorkUnit
        The unit.
    entries : list of dict
        One journal entry per written file (path, sha256, size, width, height, box).
    error : str or None
        Why the source could not be rendered (it names the file); nothing was written then.
    write_error : OutputWriteError or None
        A failed write (full disk, permission, ...): the run must stop. ``entries`` still
        lists the files of this unit written before it.
    corruption_error : str or None
        A configuration failed on a source image that was read: not the source's fault, and
        likely to fail on every image, so the run must stop. Nothing was written from the unit.
    unchanged : list of str
        With ``keep_identical``: the paths in ``entries`` that already held these bytes
        and were left as they were.
    """

    unit: WorkUnit
    entries: list[dict[str, Any]]
    error: str | None = None
    write_error: OutputWriteError | None = None
    unchanged: list[str] = field(default_factory=list)
    corruption_error: str | None = None


_CONTEXT: WorkerContext | None = None
_JOURNAL: Journal | None = None


def worker_journal_path(journal: Path) -> Path:
    """Return one pool worker's journal: ``<stem>.<pid>-<token>.jsonl`` beside the run's.

    Examples
    --------
    >>> worker_journal_path(Path("journal/main.jsonl")).name.startswith("main.")
    True
    """
    return journal.with_name(f"{journal.stem}.{os.getpid()}-{_TOKEN}{journal.suffix}")


def init_worker(context: WorkerContext, coordinator: int | None = None, forked: bool = False) -> None:
    """Pool initializer: one OpenCV thread, Ctrl-C left to the parent, the worker's journal.

    With ``coordinator`` (the pid of the process running the pool), the worker also dies
    with its parent (:func:`~keypoint_corrupt.materialize.lifeline.die_with_parent`): the
    coordinator itself when ``forked``, else the ``forkserver``, which exits with it.
    """
    global _CONTEXT, _JOURNAL
    if coordinator is not None:
        die_with_parent(coordinator if forked else None, coordinator)
    _CONTEXT = context
    cv2.setNumThreads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if context.journal is not None:
        import multiprocessing.util

        _JOURNAL = Journal(worker_journal_path(context.journal), fsync=context.fsync)
        multiprocessing.util.Finalize(_JOURNAL, _JOURNAL.close, exitpriority=10)


def process_units(units: list[WorkUnit]) -> list[UnitResult]:
    """Pool task: :func:`run_unit` on each unit with the context given to :func:`init_worker`.

    Several units per task keep the coordinating process's share of the CPU small; the
    batch stops after a failed write or a failed corruption (the next ones would fail alike).
    """
    assert _CONTEXT is not None, "init_worker was not called"
    results = []
    for unit in units:
        results.append(run_unit(_CONTEXT, unit, _JOURNAL))
        if results[-1].write_error is not None or results[-1].corruption_error is not None:
            break
    return results


def run_unit(ctx: WorkerContext, unit: WorkUnit, journal: Journal | None = None) -> UnitResult:
    """Decode one source image once, corrupt it for each output, encode and write atomically.

    Each file written is appended to ``journal`` right after its rename. A source that
    cannot be read gives a result with ``error`` set, a configuration that fails on it one with
    ``corruption_error`` set. A failed write gives a result with ``write_error`` set, after the
    files written before it.
    """
    ds = ctx.datasets[unit.split]
    items = _render(ctx, unit)
    if isinstance(items, UnitResult):
        return items
    entries: list[dict[str, Any]] = []
    unchanged: list[str] = []
    made = ctx.made
    for config, rel in unit.outputs:
        item = items[config]
        image = item["image"]
        if config == CLEAN:  # the source image itself, hard-linked (else copied) into the output
            try:
                source = ds.base[unit.base_index].image_path
                kept = _kept_entry(ctx.out / rel, source, rel, image) if ctx.keep_identical else None
                if kept:
                    unchanged.append(rel)
                entry = kept or clean_copy_entry(ctx, source, rel, image)
            except OSError as exc:
                failure = OutputWriteError(str(ctx.out / rel), exc.errno, exc.strerror or str(exc))
                return UnitResult(unit, entries, write_error=failure, unchanged=unchanged)
            if journal is not None:
                journal.append([entry])
            entries.append(entry)
            continue
        try:
            data = encode_image(image, ctx.encode)
        except (ValueError, cv2.error) as exc:
            sample = ds.base[unit.base_index]
            message = f"cannot encode {config} of {sample.image_path}: {exc}"
            return UnitResult(unit, entries, message, unchanged=unchanged)
        path = ctx.out / rel
        try:
            if ctx.keep_identical and holds_bytes(path, data):
                unchanged.append(rel)
            else:
                if path.parent not in made:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    made.add(path.parent)
                write_atomic(path, data, fsync=ctx.fsync)
        except OSError as exc:
            failure = OutputWriteError(str(path), exc.errno, exc.strerror or str(exc))
            return UnitResult(unit, entries, write_error=failure, unchanged=unchanged)
        box = item["box"]
        entry = {
            "path": rel,
            "sha256": hashlib.sha256(data).hexdigest(),
            "size": len(data),
            "width": int(image.shape[1]),
            "height": int(image.shape[0]),
        }
        if get_config(config).family == "occlusion" or int(box[0]) >= 0:
            entry["box"] = [int(v) for v in box] if int(box[0]) >= 0 else None
        if int(item.get("target_instance", -1)) >= 0:  # the person a keypoint-aware corruption targeted
            entry["target_instance"] = int(item["target_instance"])
        moved = moved_keypoints(item["keypoints"], ds.base[unit.base_index].keypoints)
        if moved is not None:
            entry["keypoints"] = moved
        if journal is not None:
            journal.append([entry])
        entries.append(entry)
    return UnitResult(unit, entries, unchanged=unchanged)


def moved_keypoints(rendered: Any, source: np.ndarray) -> list[list[float]] | None:
    """Return the keypoints a corruption moved, rounded to 1e-4 px, or ``None`` when none moved.

    ``rendered`` are a rendered item's keypoints (float32: a corruption that moves the image
    content, such as an elastic warp configured to move keypoints, reports where the labelled
    ones went, and the unlabelled ones keep the source's ``0, 0``: see
    :func:`~keypoint_corrupt.datasets.corrupted.keypoints_after`); ``source`` the sample's. A
    keypoint that is not finite keeps the source's value (JSON has no NaN).

    Examples
    --------
    >>> src = np.array([[1.0, 2.0], [3.0, 4.0]])
    >>> moved_keypoints(src.astype(np.float32), src) is None
    True
    >>> moved_keypoints(np.array([[1.5, 2.0], [3.0, 4.0]], np.float32), src)
    [[1.5, 2.0], [3.0, 4.0]]
    """
    points = np.asarray(rendered, dtype=np.float64).reshape(-1, 2)
    if points.shape != source.shape or np.array_equal(points, source.astype(np.float32), equal_nan=True):
        return None
    points = np.where(np.isfinite(points), points, source)
    return [[round(float(x), 4), round(float(y), 4)] for x, y in points]


def _render(ctx: WorkerContext, unit: WorkUnit) -> dict[str, Any] | UnitResult:
    """Render a unit's outputs (config -> item), or return the failed result that says why not.

    Only a source that cannot be read or decoded (or, for ``--repair``, that changed) is a
    source error; an exception raised by a configuration on the decoded image is a
    ``corruption_error`` naming the configuration (a frost texture gone during the run is one).
    """
    ds = ctx.datasets[unit.split]
    sample = ds.base[unit.base_index]
    try:
        image = ds.source_image(unit.base_index)
    except OSError as exc:  # FileNotFoundError / ImageDecodeError name the file
        return UnitResult(unit, [], str(exc))
    if ctx.recorded_sources:
        changed = changed_source(sample.image_path, ctx.recorded_sources)
        if changed is not None:
            return UnitResult(unit, [], changed)
    items: dict[str, Any] = {}
    for config, _ in unit.outputs:  # one at a time, to name a failing one; none writes into `image`
        try:
            items.update(ds.render(unit.base_index, [config], image=image))
        except Exception as exc:
            message = f"{config} failed on {sample.image_path}: {type(exc).__name__}: {exc}"
            return UnitResult(unit, [], corruption_error=message)
    return items


def changed_source(source: str | os.PathLike[str], recorded: Mapping[str, str]) -> str | None:
    """Say why ``source`` no longer holds the bytes recorded for its clean copy (``None``: it does).

    ``recorded`` maps source paths to SHA-256; a source it does not list, or one that cannot
    be read (rendering it reports that), passes.
    """
    want = recorded.get(str(source))
    if want is None:
        return None
    h = hashlib.sha256()
    try:
        with open(source, "rb") as f:
            while block := f.read(1 << 20):
                h.update(block)
    except OSError:
        return None
    have = h.hexdigest()
    if have == want:
        return None
    return (
        CHANGED_SOURCE.format(source=source) + f": its SHA-256 is {have[:12]}..., the output recorded "
        f"{want[:12]}... (edited in place, through the output's hard link?); restore it, or rewrite the "
        "whole output with --overwrite"
    )


def _kept_entry(path: Path, source: str | os.PathLike[str], rel: str, image: Any) -> dict[str, Any] | None:
    """Return the entry of a clean copy ``path`` that already holds ``source``'s bytes, else ``None``.

    Used with ``keep_identical`` (``materialize --repair``), which leaves such a copy alone.
    """
    try:
        if not (os.path.samefile(path, source) or holds_bytes(path, Path(source).read_bytes())):
            return None
        data = path.read_bytes()
    except OSError:
        return None
    return {
        "path": rel,
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
        "width": int(image.shape[1]),
        "height": int(image.shape[0]),
    }


def holds_bytes(path: Path, data: bytes) -> bool:
    """Whether the file ``path`` exists and holds exactly ``data``."""
    try:
        if path.stat().st_size != len(data):
            return False
        return path.read_bytes() == data
    except OSError:
        return False
