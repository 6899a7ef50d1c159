"""Materialise corrupted subsets on disk: resumable, shardable, deterministic.

The run, in order:

1. build the plan (every output file and work unit) from the options and the sources;
2. check the output folder: a folder written with other settings is refused (unless
   ``overwrite``); stale temporary files of a killed run are removed;
3. read what is already done (the journals and a previous manifest; each file's size is
   checked on disk);
4. render the pending work units (one decode per source image) in-process or in a pool;
   the process that writes a file appends it to its journal right after the atomic rename;
5. write the annotation files and the manifest (atomically), or a shard's part manifest.
"""

from __future__ import annotations

import contextlib
import errno
import multiprocessing
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keypoint_corrupt.materialize.coco_export import clean_coco, corrupted_coco
from keypoint_corrupt.materialize.journal import STATE_DIR, Journal, journal_name, read_journals
from keypoint_corrupt.materialize.manifest import (
    MANIFEST,
    build_manifest,
    build_settings,
    read_json,
    settings_differences,
    shard_manifest_name,
)
from keypoint_corrupt.materialize.plan import (
    CLEAN_DIR,
    DatasetSpec,
    MaterializeError,
    Plan,
    WorkUnit,
    build_plan,
    shard_units,
)
from keypoint_corrupt.materialize.writer import (
    EncodeOptions,
    OutputWriteError,
    UnitResult,
    WorkerContext,
    init_worker,
    process_units,
    run_unit,
    temp_target,
    write_json_atomic,
)
from keypoint_corrupt.registry import CONFIGS

__all__ = ["MaterializeOptions", "MaterializeResult", "default_workers", "materialize"]

#: Test hook: exit abruptly (as ``kill -9`` would) after this many journal entries.
CRASH_ENV = "KC_TEST_CRASH_AFTER"
_CHECKPOINT_SECONDS = 60.0
_IN_FLIGHT_PER_WORKER = 3
#: Work units (source images, ~2 outputs each) per pool task at most.
_UNITS_PER_TASK = 8


def default_workers() -> int:
    """Return the number of usable cores."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class MaterializeOptions:
    """Options of :func:`materialize` (see ``keypoint-corrupt materialize --help``).

    Attributes
    ----------
    out : pathlib.Path
        Output folder.
    dataset : DatasetSpec
        The source dataset.
    splits : tuple of str
        Splits to write.
    configs : tuple of str
        Configurations to write.
    fraction : float
        Share of each split corrupted per configuration.
    seed : int
        Seed of the subset draws and the corruption noise.
    workers : int
        Processes; 1 renders in the calling process.
    image_format : {"png", "jpg"}
        Output encoding.
    jpeg_quality : int
        JPEG quality (``jpg`` only).
    png_compression : int, optional
        zlib level 0-9 (``png`` only); ``None``: OpenCV's default (the fastest).
    shard : (k, n), optional
        Write only shard ``k`` of ``n`` (1-based).
    overwrite : bool
        Replace an output folder written with other settings (or not by this tool).
    fsync : bool
        ``fsync`` every file before its rename and the journal every second (survives power
        loss, not only ``kill -9``; 1-4 ms per file measured).
    """

    out: Path
    dataset: DatasetSpec
    splits: tuple[str, ...] = ("train", "val")
    configs: tuple[str, ...] = CONFIGS
    fraction: float = 0.2
    seed: int = 0
    workers: int = 1
    image_format: str = "png"
    jpeg_quality: int = 95
    png_compression: int | None = None
    shard: tuple[int, int] | None = None
    overwrite: bool = False
    fsync: bool = False


@dataclass
class MaterializeResult:
    """What a run did.

    Attributes
    ----------
    written : int
        Files written by this run.
    already_done : int
        Files of this run's scope found complete on disk.
    planned : int
        Files in this run's scope (the whole plan, or one shard's part).
    errors : list of dict
        Sources that could not be rendered (``split``, ``source_id``, ``source_path``, ``message``).
    seconds : float
        Wall time of the whole run (planning, rendering, annotations, manifest).
    complete : bool
        Every planned file of the scope is on disk and nothing failed.
    manifest : pathlib.Path
        The manifest written (``manifest.json`` or a shard's part).
    shard : (k, n) or None
        The shard this run wrote.
    """

    written: int
    already_done: int
    planned: int
    errors: list[dict[str, Any]]
    seconds: float
    complete: bool
    manifest: Path
    shard: tuple[int, int] | None = None

    @property
    def rate(self) -> float:
        """Files written per second."""
        return self.written / self.seconds if self.seconds > 0 else 0.0


def _check_options(o: MaterializeOptions) -> None:
    if isinstance(o.workers, bool) or not isinstance(o.workers, int) or o.workers < 1:
        raise MaterializeError(f"workers must be an integer >= 1, got {o.workers!r}")
    if not 0 <= o.jpeg_quality <= 100:
        raise MaterializeError(f"JPEG quality must be in 0..100, got {o.jpeg_quality}")
    if o.png_compression is not None and not 0 <= o.png_compression <= 9:
        raise MaterializeError(f"PNG compression must be in 0..9, got {o.png_compression}")
    if o.shard is not None:
        k, n = o.shard
        if n < 1 or not 1 <= k <= n:
            raise MaterializeError(f"shard must be K/N with 1 <= K <= N, got {k}/{n}")
        if o.overwrite:
            raise MaterializeError(
                "--overwrite cannot be combined with --shard (it would delete the other shards' files); "
                "clear the output folder once before starting the shards"
            )


def materialize(
    options: MaterializeOptions,
    *,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
) -> MaterializeResult:
    """Write the corrupted subsets, their COCO annotations and the manifest.

    Parameters
    ----------
    options : MaterializeOptions
        What to write and where.
    progress : bool, default False
        Show a tqdm bar (rate, ETA) on stderr.
    log : callable, optional
        Receives one-line notes and warnings.

    Returns
    -------
    MaterializeResult

    Raises
    ------
    MaterializeError
        Bad options, unreadable annotations, a refused output folder, or a failed write
        (full disk, permission, read-only file system); no partial file is left under a
        final name and the run can be resumed.
    """
    started = time.perf_counter()
    say = log or (lambda _msg: None)
    _check_options(options)
    plan = build_plan(
        options.dataset, options.splits, options.configs, options.fraction, options.seed, options.image_format
    )
    encode = EncodeOptions(options.image_format, options.jpeg_quality, options.png_compression)
    settings = build_settings(plan, encode)
    out = Path(os.path.abspath(options.out))
    try:
        return _materialize(options, plan, encode, settings, out, progress, say, started)
    except BrokenProcessPool:
        raise MaterializeError(
            "a worker process died (killed by the system, out of memory?); the files it and the others "
            "finished are journaled: re-run the same command to resume, with fewer --workers if memory "
            "is short"
        ) from None
    except OutputWriteError as exc:
        raise MaterializeError(_write_failure(exc.path, exc.errno, exc.reason)) from None
    except OSError as exc:
        if exc.errno is None:
            raise
        raise MaterializeError(_write_failure(exc.filename or str(out), exc.errno, exc.strerror)) from None


def _write_failure(path: Any, err: int | None, reason: str | None) -> str:
    what = {
        errno.ENOSPC: "no space left on device",
        errno.EDQUOT: "disk quota exceeded",
        errno.EACCES: "permission denied",
        errno.EPERM: "operation not permitted",
        errno.EROFS: "read-only file system",
    }.get(err or -1, reason or "I/O error")
    return (
        f"cannot write {path}: {what}; stopped without leaving partial files (completed files are "
        "kept in the journal): fix the problem and re-run the same command to resume"
    )


def _materialize(
    options: MaterializeOptions,
    plan: Plan,
    encode: EncodeOptions,
    settings: dict[str, Any],
    out: Path,
    progress: bool,
    say: Callable[[str], None],
    started: float,
) -> MaterializeResult:
    _prepare_output(out, plan, settings, options.overwrite, say)
    state = out / STATE_DIR
    (state / "journal").mkdir(parents=True, exist_ok=True)
    if read_json(state / "settings.json") != settings:
        write_json_atomic(state / "settings.json", settings)
    scope = shard_units(plan.units, options.shard)
    scope_paths = [path for unit in scope for _, path in unit.outputs]
    own = set(scope_paths) if options.shard is not None else None
    removed = remove_temp_files(out, plan.splits, own)
    if removed:
        say(f"removed {removed} temporary file(s) left by an interrupted run")

    done = _load_done(out, plan, state, say)
    pending = []
    for unit in scope:
        missing = tuple(o for o in unit.outputs if o[1] not in done)
        if missing:
            pending.append(WorkUnit(unit.split, unit.base_index, missing))
    todo = sum(len(u.outputs) for u in pending)
    already = len(scope_paths) - todo

    errors: list[dict[str, Any]] = []
    manifest_path = out / (MANIFEST if options.shard is None else shard_manifest_name(options.shard))

    def checkpoint() -> None:
        manifest = build_manifest(
            plan,
            settings,
            done,
            errors=errors,
            shard=options.shard,
            paths=scope_paths if options.shard else None,
        )
        manifest["complete"] = False
        write_json_atomic(manifest_path, manifest)

    written = 0
    if pending:
        checkpoint()
        bar = None
        crash_after = int(os.environ.get(CRASH_ENV, "0") or 0)
        last_checkpoint = time.monotonic()

        def on_result(result: UnitResult) -> None:
            nonlocal written, last_checkpoint
            if result.entries:  # already journaled by whoever wrote them
                for entry in result.entries:
                    done[entry["path"]] = entry
                written += len(result.entries)
                if crash_after and written >= crash_after:
                    os._exit(137)  # the test hook: die like kill -9 would
            if result.error is not None:
                sample = plan.samples[result.unit.split][result.unit.base_index]
                errors.append(
                    {
                        "split": result.unit.split,
                        "source_id": sample.id,
                        "source_path": str(sample.image_path),
                        "message": result.error,
                    }
                )
                say(f"error: {result.error}")
            if bar is not None:
                bar.update(len(result.unit.outputs))
            if result.write_error is not None:
                raise result.write_error
            if time.monotonic() - last_checkpoint > _CHECKPOINT_SECONDS:
                checkpoint()
                last_checkpoint = time.monotonic()

        def on_start() -> None:
            nonlocal bar
            bar = _progress_bar(progress, len(scope_paths), already)

        journal = state / "journal" / journal_name(options.shard)
        ctx = WorkerContext(plan.datasets, out, encode, options.fsync, journal)
        try:
            _execute(pending, ctx, min(options.workers, len(pending)), on_result, on_start)
        except BaseException:
            if bar is not None:
                bar.close()
            with contextlib.suppress(OSError):
                remove_temp_files(out, plan.splits, own)
                checkpoint()
            raise
        if bar is not None:
            bar.close()

    errors.sort(key=lambda e: (plan.splits.index(e["split"]), e["source_id"]))
    if options.shard is not None:
        manifest = build_manifest(plan, settings, done, errors=errors, shard=options.shard, paths=scope_paths)
        write_json_atomic(manifest_path, manifest)
        complete = manifest["complete"]
    else:
        complete = _finalize(out, plan, settings, done, errors)
    return MaterializeResult(
        written=written,
        already_done=already,
        planned=len(scope_paths),
        errors=errors,
        seconds=time.perf_counter() - started,
        complete=complete,
        manifest=manifest_path,
        shard=options.shard,
    )


def _progress_bar(enabled: bool, total: int, initial: int) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(
        total=total, initial=initial, unit="img", desc="materialize", file=sys.stderr, dynamic_ncols=True
    )


def _cv2_threads_are_pthreads() -> bool:
    import re

    import cv2

    found = re.search(r"Parallel framework:\s*(\S+)", cv2.getBuildInformation())
    return bool(found) and found.group(1) == "pthreads"


def _pool_context() -> tuple[multiprocessing.context.BaseContext, bool]:
    """Choose the workers' start method; also say whether it is ``fork``.

    ``fork`` starts workers instantly (they inherit the imported modules and the plan), but
    is only safe from a process with no other Python thread and with OpenCV's pthreads
    pool, which is shut down around the fork (a child forked from a process whose OpenCV
    pool threads are running deadlocks in its first parallel call). Otherwise workers
    fork from a fresh ``forkserver`` (imports take a few seconds once per process), or are
    spawned where neither exists.
    """
    import threading

    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1 and _cv2_threads_are_pthreads():
        return multiprocessing.get_context("fork"), True
    if "forkserver" in methods:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["keypoint_corrupt.materialize.writer"])
        return ctx, False
    return multiprocessing.get_context("spawn"), False  # pragma: no cover - Windows


def _execute(
    units: Sequence[WorkUnit],
    ctx: WorkerContext,
    workers: int,
    on_result: Callable[[UnitResult], None],
    on_start: Callable[[], None] = lambda: None,
) -> None:
    """Run every unit, in-process for one worker, else in a process pool with a bounded window.

    ``on_start`` is called once the workers exist (e.g. to start a progress bar's thread).
    """
    if workers <= 1:
        on_start()
        journal = Journal(ctx.journal, fsync=ctx.fsync) if ctx.journal is not None else None
        try:
            for unit in units:
                on_result(run_unit(ctx, unit, journal))
        finally:
            if journal is not None:
                journal.close()
        return
    import cv2

    mp_ctx, forking = _pool_context()
    batches = _batches(units, workers)
    inflight: set[Future[list[UnitResult]]] = set()
    threads = cv2.getNumThreads()
    if forking:
        cv2.setNumThreads(1)  # shut OpenCV's pool down so that no child inherits its state
    try:
        pool = ProcessPoolExecutor(workers, mp_context=mp_ctx, initializer=init_worker, initargs=(ctx,))
        batch = next(batches, None)
        if batch is not None:
            inflight.add(pool.submit(process_units, batch))  # with fork, this starts every worker
    finally:
        if forking:
            cv2.setNumThreads(threads)
    on_start()

    def record(fut: Future[list[UnitResult]]) -> BaseException | None:
        """Pass a finished task's results on; return the first failure (a dead worker too)."""
        try:
            results = fut.result()
        except Exception as exc:
            return exc
        failure = None
        for result in results:
            try:
                on_result(result)
            except Exception as exc:
                failure = failure or exc
        return failure

    with pool:
        try:
            while True:
                while len(inflight) < workers * _IN_FLIGHT_PER_WORKER:
                    batch = next(batches, None)
                    if batch is None:
                        break
                    inflight.add(pool.submit(process_units, batch))
                if not inflight:
                    break
                finished, inflight = wait(inflight, return_when=FIRST_COMPLETED)
                failure: BaseException | None = None
                for fut in finished:  # record every finished unit before stopping on a failure
                    failure = record(fut) or failure
                if failure is not None:
                    raise failure
        except BaseException:
            for fut in inflight:
                fut.cancel()
            for fut in inflight:  # units already running finish; keep what they wrote
                if fut.cancelled():
                    continue
                with contextlib.suppress(Exception):
                    record(fut)
            raise


def _batches(units: Sequence[WorkUnit], workers: int) -> Iterator[list[WorkUnit]]:
    """Group units into pool tasks: up to ``_UNITS_PER_TASK``, smaller towards the end.

    Batches cut the coordinator's per-task cost (pickling, futures, wake-ups), which
    competes with the workers for the same cores; shrinking them near the end keeps every
    worker busy until the last unit.
    """
    i = 0
    while i < len(units):
        size = max(1, min(_UNITS_PER_TASK, (len(units) - i) // (4 * workers)))
        yield list(units[i : i + size])
        i += size


def _finalize(
    out: Path,
    plan: Plan,
    settings: dict[str, Any],
    done: Mapping[str, Mapping[str, Any]],
    errors: list[dict[str, Any]],
) -> bool:
    """Annotation files, then the manifest; a complete run drops its journal and shard parts."""
    records = []
    for split in plan.splits:
        cache: dict[str, dict[str, Any]] = {}
        names = [*plan.configs, CLEAN_DIR]
        for name in names:
            if name == CLEAN_DIR:
                coco = clean_coco(plan, split, cache)
            else:
                coco = corrupted_coco(plan, split, name, done, cache)
            rel = f"{split}/{name}/annotations.json"
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            sha = write_json_atomic(out / rel, coco)
            records.append(
                {
                    "path": rel,
                    "split": split,
                    "config": name,
                    "sha256": sha,
                    "images": len(coco["images"]),
                    "annotations": len(coco["annotations"]),
                }
            )
    manifest = build_manifest(plan, settings, done, errors=errors, annotation_files=records)
    write_json_atomic(out / MANIFEST, manifest)
    if manifest["complete"]:
        for part in out.glob("manifest.shard-*-of-*.json"):
            part.unlink()
        shutil.rmtree(out / STATE_DIR, ignore_errors=True)
    return bool(manifest["complete"])


def _recorded_settings(out: Path) -> dict[str, Any] | None:
    for candidate in (
        out / STATE_DIR / "settings.json",
        out / MANIFEST,
        *sorted(out.glob("manifest.shard-*.json")),
    ):
        data = read_json(candidate)
        if isinstance(data, dict) and "source_digest" in data:
            return data
    return None


def _prepare_output(
    out: Path, plan: Plan, settings: dict[str, Any], overwrite: bool, say: Callable[[str], None]
) -> None:
    if out.exists() and not out.is_dir():
        raise MaterializeError(f"--out {out} exists and is not a folder")
    if not out.exists():
        out.mkdir(parents=True)
        return
    recorded = _recorded_settings(out)
    if recorded is not None:
        diffs = settings_differences(recorded, settings)
        if diffs and not overwrite:
            raise MaterializeError(
                f"{out} holds output written with other settings ({'; '.join(diffs)}); pass --overwrite "
                "to replace it, or choose another --out"
            )
        if overwrite:
            _clear(out, plan, recorded)
            say(f"--overwrite: removed the previous output in {out}")
        return
    if any(out.iterdir()):
        if not overwrite:
            raise MaterializeError(
                f"{out} is not empty and holds no keypoint-corrupt manifest; choose an empty or new folder, "
                "or pass --overwrite to write into it (replacing its <split>/<config> folders)"
            )
        _clear(out, plan, None)


def _clear(out: Path, plan: Plan, recorded: Mapping[str, Any] | None) -> None:
    """Remove what this tool writes (previous and planned folders); leave anything else."""
    splits = set(plan.splits)
    names = {*plan.configs, CLEAN_DIR}
    if recorded is not None:
        splits.update(str(s) for s in recorded.get("splits") or [])
        names.update(str(c.get("name")) for c in recorded.get("configs") or [] if isinstance(c, dict))
    shutil.rmtree(out / STATE_DIR, ignore_errors=True)
    for part in [out / MANIFEST, *out.glob("manifest.shard-*-of-*.json")]:
        with contextlib.suppress(FileNotFoundError):
            part.unlink()
    for split in splits:
        for name in names:
            target = out / split / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
        with contextlib.suppress(OSError):
            (out / split).rmdir()  # only if empty


def remove_temp_files(out: Path, splits: Iterable[str], scope: set[str] | None = None) -> int:
    """Delete temporary files left by killed writers under ``out``; return how many.

    With ``scope`` (relative output paths), only the temporary files of those outputs go:
    a shard never removes the files that another shard is writing right now.
    """
    removed = 0
    candidates = [(out, name) for name in os.listdir(out)] if scope is None else []
    for split in splits:
        for dirpath, _dirs, files in os.walk(out / split):
            candidates.extend((Path(dirpath), name) for name in files)
    for folder, name in candidates:
        target = temp_target(name)
        if target is None:
            continue
        if scope is not None and (folder / target).relative_to(out).as_posix() not in scope:
            continue
        with contextlib.suppress(FileNotFoundError):
            os.unlink(folder / name)
            removed += 1
    return removed


def _load_done(out: Path, plan: Plan, state: Path, say: Callable[[str], None]) -> dict[str, dict[str, Any]]:
    """Files known complete: journal entries and a previous manifest's files, checked on disk."""
    candidates: dict[str, dict[str, Any]] = {}
    manifest = read_json(out / MANIFEST)
    if isinstance(manifest, dict) and isinstance(manifest.get("files"), list):
        for rec in manifest["files"]:
            if isinstance(rec, dict) and "path" in rec:
                candidates[str(rec["path"])] = {
                    k: rec[k] for k in ("path", "sha256", "size", "width", "height", "box") if k in rec
                }
    for part in sorted(out.glob("manifest.shard-*-of-*.json")):
        data = read_json(part)
        if isinstance(data, dict) and isinstance(data.get("files"), list):
            for rec in data["files"]:
                if isinstance(rec, dict) and "path" in rec:
                    candidates[str(rec["path"])] = {
                        k: rec[k] for k in ("path", "sha256", "size", "width", "height", "box") if k in rec
                    }
    candidates.update(read_journals(state / "journal"))
    done: dict[str, dict[str, Any]] = {}
    stale = 0
    for path, entry in candidates.items():
        if path not in plan.by_path:
            continue
        try:
            ok = (out / path).stat().st_size == int(entry["size"])
        except (OSError, KeyError, TypeError, ValueError):
            ok = False
        if ok:
            done[path] = entry
        else:
            stale += 1
    if stale:
        say(f"{stale} file(s) recorded as written are missing or have another size on disk; rewriting them")
    return done
