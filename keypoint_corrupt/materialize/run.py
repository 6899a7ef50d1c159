"""Materialise corrupted subsets on disk: resumable, shardable, deterministic.

The run, in order:

1. check the output path, build the plan (every output file and work unit) from the
   options and the sources, and lock the output folder (:mod:`.lock`: one run at a time,
   shards side by side);
2. check the output folder: a folder written with other settings is refused (unless
   ``overwrite``); stale temporary files of a killed run are removed;
3. read what is already done (the journals and a previous manifest; each file's size is
   checked on disk, or its SHA-256 with ``repair``);
4. render the pending work units (one decode per source image) in-process or in a pool;
   the process that writes a file appends it to its journal right after the atomic rename;
5. write the annotation files and the manifest (atomically), or a shard's part manifest.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import multiprocessing
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias, TypedDict

from keypoint_corrupt._paths import check_output_path
from keypoint_corrupt.datasets.corrupted import check_runnable
from keypoint_corrupt.materialize.coco_export import clean_coco, corrupted_coco
from keypoint_corrupt.materialize.journal import STATE_DIR, Journal, journal_name, read_journals
from keypoint_corrupt.materialize.lock import OutputLock, is_lock_file
from keypoint_corrupt.materialize.manifest import (
    MANIFEST,
    build_manifest,
    build_settings,
    read_json,
    settings_differences,
    shard_manifest_name,
    shard_manifests,
)
from keypoint_corrupt.materialize.mpii_export import MPII_FILE, mpii_people
from keypoint_corrupt.materialize.plan import (
    CLEAN_DIR,
    DatasetSpec,
    MaterializeError,
    Plan,
    WorkUnit,
    build_plan,
    recorded_subset_dir,
    shard_units,
    subset_dir,
)
from keypoint_corrupt.materialize.verify import sha256_file
from keypoint_corrupt.materialize.writer import (
    EncodeOptions,
    OutputWriteError,
    UnitResult,
    WorkerContext,
    holds_bytes,
    init_worker,
    json_bytes,
    process_units,
    run_unit,
    temp_target,
    write_atomic,
    write_json_atomic,
)
from keypoint_corrupt.registry import CONFIGS
from keypoint_corrupt.suites import Suite, get_suite

__all__ = ["MaterializeOptions", "MaterializeResult", "SourceError", "default_workers", "materialize"]

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
        Splits to write; empty (the default): every split of the dataset (STB: train and val;
        COCO: every annotation file's).
    configs : tuple of str, optional
        Configurations to write (default: the eleven of the reference study); not with
        ``suite``.
    suite : str, optional
        A registered suite (:mod:`keypoint_corrupt.suites`): write its configurations at
        ``severities`` to ``<split>/<corruption>/<severity>/``, each corrupting whole images
        with all their annotations (see ``docs/cli.md``).
    severities : tuple of int, optional
        The suite's severities to write (default: all of them).
    fraction : float, optional
        Share of each split corrupted per configuration (default: 0.2; with ``suite``, 1.0:
        every image, as COCO-C is built).
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
        ``fsync`` every file before its rename, its folder after it, and the journal every
        second (survives power loss, not only ``kill -9``; 1-4 ms per file measured).
    repair : bool
        Check every file's SHA-256 (not only its size) against the manifest and journals,
        and rewrite exactly the files that differ or are missing, and the annotation files
        and manifest if their bytes differ. The folder must hold this tool's output.
    """

    out: Path
    dataset: DatasetSpec
    splits: tuple[str, ...] = ()
    configs: tuple[str, ...] | None = None
    suite: str | None = None
    severities: tuple[int, ...] | None = None
    fraction: float | None = None
    seed: int = 0
    workers: int = 1
    image_format: str = "png"
    jpeg_quality: int = 95
    png_compression: int | None = None
    shard: tuple[int, int] | None = None
    overwrite: bool = False
    fsync: bool = False
    repair: bool = False


class SourceError(TypedDict):
    """A source image that could not be rendered (listed under ``errors`` in the manifest)."""

    split: str
    source_id: str
    source_path: str
    message: str


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
    rewritten : list of str
        With ``repair``: the files (images, annotation files, manifest) that were rewritten
        because they were missing or differed, in the order written.
    """

    written: int
    already_done: int
    planned: int
    errors: list[SourceError]
    seconds: float
    complete: bool
    manifest: Path
    shard: tuple[int, int] | None = None
    rewritten: list[str] = field(default_factory=list)

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
        if o.repair:
            raise MaterializeError("--repair works on a merged folder: run it without --shard")
    if o.repair and o.overwrite:
        raise MaterializeError("--repair keeps what is intact and --overwrite replaces everything: pick one")


def _chosen_configs(o: MaterializeOptions) -> tuple[Suite | None, tuple[str, ...], float]:
    """Return the suite, the configurations and the fraction that the options ask for."""
    if o.suite is None:
        if o.severities is not None:
            raise MaterializeError(f"severities {list(o.severities)} need a suite")
        return (
            None,
            CONFIGS if o.configs is None else tuple(o.configs),
            0.2 if o.fraction is None else o.fraction,
        )
    if o.configs is not None:
        raise MaterializeError(f"give a suite ({o.suite!r}) with its severities, or configurations, not both")
    try:
        suite = get_suite(o.suite)
        configs = suite.configs(severities=o.severities)
    except ValueError as exc:
        raise MaterializeError(str(exc)) from None
    return suite, configs, 1.0 if o.fraction is None else o.fraction


def _check_runnable(configs: Sequence[str]) -> None:
    """Refuse, before any work, configurations that lack files they need (frost's photographs)."""
    try:
        check_runnable(configs)
    except (ValueError, FileNotFoundError) as exc:  # an unknown name; frost without its photographs
        raise MaterializeError(str(exc)) from None


def _check_out_path(out: Path, repair: bool) -> None:
    """Refuse an output path that cannot be a folder, before any work (one line each)."""
    try:
        check_output_path(out, want="folder")
    except ValueError as exc:
        raise MaterializeError(str(exc)) from None
    if repair and not out.is_dir():
        raise MaterializeError(f"--repair: {out} does not exist; nothing to repair")


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
        Bad options, a configuration without the files it needs (frost's photographs),
        unreadable annotations, a refused output folder, a configuration that fails on an
        image, or a failed write (full disk, permission, read-only file system); no partial
        file is left under a final name and the run can be resumed.
    """
    started = time.perf_counter()
    say = log or (lambda _msg: None)
    _check_options(options)
    out = Path(os.path.abspath(options.out))
    _check_out_path(out, options.repair)
    suite, configs, fraction = _chosen_configs(options)
    _check_runnable(configs)
    plan = build_plan(
        options.dataset, options.splits, configs, fraction, options.seed, options.image_format, suite=suite
    )
    encode = EncodeOptions(options.image_format, options.jpeg_quality, options.png_compression)
    settings = build_settings(plan, encode)
    try:
        with OutputLock(out, options.shard, say) as lock:
            return _materialize(options, plan, encode, settings, out, progress, say, started, lock)
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
        raise MaterializeError(_write_failure(str(exc.filename or out), exc.errno, exc.strerror)) from None


def _write_failure(path: str, err: int | None, reason: str | None) -> str:
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
    lock: OutputLock,
) -> MaterializeResult:
    """Run steps 2-5 of the module docstring in the output folder ``out``."""
    _prepare_output(out, plan, settings, options, say)
    lock.accepted = True  # from here on, the folder is this run's: a failure leaves its state
    state = _prepare_state(out, settings)
    scope = _Scope.of(plan, options.shard)
    removed = remove_temp_files(out, plan.splits, scope.own)
    if removed:
        say(f"removed {removed} temporary file(s) left by an interrupted run")
    recorded = _recorded_entries(out, state)
    done = _load_done(out, plan, recorded, say, options.repair)
    pending = _pending_units(scope.units, done)
    already = len(scope.paths) - sum(len(u.outputs) for u in pending)
    manifest_path = out / (MANIFEST if options.shard is None else shard_manifest_name(options.shard))
    recorder = _Recorder(plan, settings, scope, done, manifest_path, say)
    # A repair leaves the manifest alone unless its final bytes differ: no checkpoints (the
    # journal records what it rewrites, and re-running the repair resumes it).
    recorder.checkpoints = not options.repair
    if options.repair:  # a source that cannot be rendered again keeps its files' records
        recorder.recorded = recorded
    if pending:
        ctx = WorkerContext(
            plan.datasets,
            out,
            encode,
            options.fsync,
            state / "journal" / journal_name(scope.shard),
            keep_identical=options.repair,
            recorded_sources=_recorded_sources(plan, recorded) if options.repair else {},
        )
        _render(pending, ctx, options.workers, recorder, lambda: recorder.show_progress(progress, already))
    complete = _conclude(out, plan, settings, recorder)
    return MaterializeResult(
        written=recorder.written,
        already_done=already + recorder.unchanged,
        planned=len(scope.paths),
        errors=list(recorder.errors),
        seconds=time.perf_counter() - started,
        complete=complete,
        manifest=manifest_path,
        shard=options.shard,
        rewritten=recorder.rewritten if options.repair else [],
    )


def _prepare_state(out: Path, settings: dict[str, Any]) -> Path:
    """Create the state folder (journals) and record the settings there; return the folder."""
    state = out / STATE_DIR
    (state / "journal").mkdir(parents=True, exist_ok=True)
    if read_json(state / "settings.json") != settings:
        write_json_atomic(state / "settings.json", settings)
    return state


@dataclass(frozen=True)
class _Scope:
    """What this run writes: the whole plan, or one shard's work units."""

    shard: tuple[int, int] | None
    units: list[WorkUnit]
    #: Relative output paths of ``units``, in plan order.
    paths: list[str]
    #: For a shard, ``paths`` as a set (its temporary files are the only ones it removes).
    own: set[str] | None

    @classmethod
    def of(cls, plan: Plan, shard: tuple[int, int] | None) -> _Scope:
        units = shard_units(plan.units, shard)
        paths = [path for unit in units for _, path in unit.outputs]
        return cls(shard, units, paths, set(paths) if shard is not None else None)


def _pending_units(units: Iterable[WorkUnit], done: Mapping[str, object]) -> list[WorkUnit]:
    """Return the units with outputs not yet done, each reduced to those outputs."""
    pending = []
    for unit in units:
        missing = tuple(o for o in unit.outputs if o[1] not in done)
        if missing:
            pending.append(WorkUnit(unit.split, unit.base_index, missing))
    return pending


class _Recorder:
    """The coordinating process's side of a run: takes each unit's result as it arrives.

    It adds the files written (already journaled by their writer) to ``done``, collects
    source errors, advances the progress bar, stops the run on a failed write, and writes
    the manifest as a checkpoint (``complete`` false) at the start and every
    ``_CHECKPOINT_SECONDS``.
    """

    def __init__(
        self,
        plan: Plan,
        settings: dict[str, Any],
        scope: _Scope,
        done: dict[str, dict[str, Any]],
        manifest_path: Path,
        say: Callable[[str], None],
    ) -> None:
        self.plan = plan
        self.settings = settings
        self.scope = scope
        self.done = done
        self.manifest_path = manifest_path
        self.say = say
        self.written = 0
        #: Whether :meth:`checkpoint` writes the manifest.
        self.checkpoints = True
        #: Files found already holding the rendered bytes (``repair``), not rewritten.
        self.unchanged = 0
        #: Relative paths of the files written, in order (images, then JSON files).
        self.rewritten: list[str] = []
        self.errors: list[SourceError] = []
        #: ``repair``: the files recorded before this run; a unit that fails keeps its records
        #: (the manifest goes on naming what its files should hold).
        self.recorded: Mapping[str, dict[str, Any]] = {}
        self._bar: Any = None
        self._last_checkpoint = time.monotonic()

    def checkpoint(self) -> None:
        """Write the manifest of what is done so far, marked incomplete (unless ``checkpoints`` is off)."""
        if not self.checkpoints:
            return
        manifest = build_manifest(
            self.plan,
            self.settings,
            self.done,
            errors=self.errors,
            shard=self.scope.shard,
            paths=self.scope.paths if self.scope.shard else None,
        )
        manifest["complete"] = False
        write_json_atomic(self.manifest_path, manifest)
        self._last_checkpoint = time.monotonic()

    def show_progress(self, enabled: bool, initial: int) -> None:
        """Start the progress bar (once the workers exist: tqdm starts a thread)."""
        self._bar = _progress_bar(enabled, len(self.scope.paths), initial)

    def close_progress(self) -> None:
        """Close the progress bar, if any (idempotent)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __call__(self, result: UnitResult) -> None:
        """Record one unit's result; raise its write error, if any, to stop the run."""
        if result.entries:
            kept = set(result.unchanged)
            for entry in result.entries:
                self.done[entry["path"]] = entry
                if entry["path"] not in kept:
                    self.rewritten.append(entry["path"])
            self.written += len(result.entries) - len(kept)
            self.unchanged += len(kept)
        if result.error is not None:
            for _, path in result.unit.outputs:
                if path not in self.done and path in self.recorded:
                    self.done[path] = self.recorded[path]
            self._source_error(result.unit, result.error)
        if self._bar is not None:
            self._bar.update(len(result.unit.outputs))
        if result.write_error is not None:
            raise result.write_error
        if result.corruption_error is not None:  # not the source's fault: every image would fail alike
            raise MaterializeError(
                f"{result.corruption_error}; stopped, keeping the files written so far: fix the cause and "
                "re-run the same command to resume"
            )
        if time.monotonic() - self._last_checkpoint > _CHECKPOINT_SECONDS:
            self.checkpoint()

    def _source_error(self, unit: WorkUnit, message: str) -> None:
        sample = self.plan.samples[unit.split][unit.base_index]
        self.errors.append(
            {
                "split": unit.split,
                "source_id": sample.id,
                "source_path": str(sample.image_path),
                "message": message,
            }
        )
        self.say(f"error: {message}")

    def sorted_errors(self) -> list[SourceError]:
        """Sort the source errors in plan order (split, then source id) and return them."""
        splits = self.plan.splits
        self.errors.sort(key=lambda e: (splits.index(e["split"]), e["source_id"]))
        return self.errors


def _render(
    units: Sequence[WorkUnit],
    ctx: WorkerContext,
    workers: int,
    recorder: _Recorder,
    on_start: Callable[[], None],
) -> None:
    """Render ``units``; on any failure, remove temporary files and checkpoint before re-raising."""
    recorder.checkpoint()
    try:
        _execute(units, ctx, min(workers, len(units)), recorder, on_start)
    except BaseException:
        recorder.close_progress()
        with contextlib.suppress(OSError):
            remove_temp_files(ctx.out, recorder.plan.splits, recorder.scope.own)
            recorder.checkpoint()
        raise
    finally:
        recorder.close_progress()


def _conclude(out: Path, plan: Plan, settings: dict[str, Any], recorder: _Recorder) -> bool:
    """Write the final manifest (a shard's part, or the whole run's with its annotation files).

    Return whether the scope is complete.
    """
    errors = recorder.sorted_errors()
    if recorder.scope.shard is None:
        return _finalize(out, plan, settings, recorder.done, errors, recorder.rewritten)
    manifest = build_manifest(
        plan, settings, recorder.done, errors=errors, shard=recorder.scope.shard, paths=recorder.scope.paths
    )
    write_json_atomic(recorder.manifest_path, manifest)
    return bool(manifest["complete"])


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
    return found is not None and found.group(1) == "pthreads"


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
    """Run every unit: in this process for one worker, else in a pool of ``workers`` processes.

    ``on_result`` receives each unit's result in this process; ``on_start`` is called once
    the workers exist (e.g. to start a progress bar's thread).
    """
    if workers <= 1:
        _run_in_process(units, ctx, on_result, on_start)
    else:
        _run_in_pool(units, ctx, workers, on_result, on_start)


def _run_in_process(
    units: Iterable[WorkUnit],
    ctx: WorkerContext,
    on_result: Callable[[UnitResult], None],
    on_start: Callable[[], None],
) -> None:
    """Render the units one after the other here, journaling into the run's own journal."""
    on_start()
    journal = Journal(ctx.journal, fsync=ctx.fsync) if ctx.journal is not None else None
    try:
        for unit in units:
            on_result(run_unit(ctx, unit, journal))
    finally:
        if journal is not None:
            journal.close()


_Task: TypeAlias = "Future[list[UnitResult]]"


def _run_in_pool(
    units: Sequence[WorkUnit],
    ctx: WorkerContext,
    workers: int,
    on_result: Callable[[UnitResult], None],
    on_start: Callable[[], None],
) -> None:
    """Render the units in a process pool, at most ``_IN_FLIGHT_PER_WORKER`` tasks per worker queued.

    On a failure (a failed write, a dead worker, Ctrl-C), queued tasks are cancelled and the
    results of those already running are still recorded before the failure propagates.
    """
    batches = _batches(units, workers)
    pool, inflight = _start_pool(ctx, workers, next(batches, None))
    on_start()
    with pool:
        try:
            _drain(pool, batches, inflight, workers * _IN_FLIGHT_PER_WORKER, on_result)
        except BaseException:
            _salvage(inflight, on_result)
            raise


def _start_pool(
    ctx: WorkerContext, workers: int, first: list[WorkUnit] | None
) -> tuple[ProcessPoolExecutor, set[_Task]]:
    """Start the pool (with ``fork``, submitting the first task starts every worker)."""
    import cv2

    mp_ctx, forking = _pool_context()
    inflight: set[_Task] = set()
    threads = cv2.getNumThreads()
    if forking:
        cv2.setNumThreads(1)  # shut OpenCV's pool down so that no child inherits its state
    try:
        pool = ProcessPoolExecutor(
            workers, mp_context=mp_ctx, initializer=init_worker, initargs=(ctx, os.getpid(), forking)
        )
        if first is not None:
            inflight.add(pool.submit(process_units, first))
    finally:
        if forking:
            cv2.setNumThreads(threads)
    return pool, inflight


def _drain(
    pool: ProcessPoolExecutor,
    batches: Iterator[list[WorkUnit]],
    inflight: set[_Task],
    window: int,
    on_result: Callable[[UnitResult], None],
) -> None:
    """Keep ``window`` tasks queued until every batch is done; ``inflight`` is updated in place."""
    while True:
        while len(inflight) < window:
            batch = next(batches, None)
            if batch is None:
                break
            inflight.add(pool.submit(process_units, batch))
        if not inflight:
            return
        finished, _ = wait(inflight, return_when=FIRST_COMPLETED)
        inflight -= finished
        failure: BaseException | None = None
        for fut in finished:  # record every finished unit before stopping on a failure
            failure = _record(fut, on_result) or failure
        if failure is not None:
            raise failure


def _record(fut: _Task, on_result: Callable[[UnitResult], None]) -> BaseException | None:
    """Pass a finished task's results on; return the first failure (a dead worker too)."""
    try:
        results = fut.result()
    except Exception as exc:
        return exc
    failure: BaseException | None = None
    for result in results:
        try:
            on_result(result)
        except Exception as exc:
            failure = failure or exc
    return failure


def _salvage(inflight: set[_Task], on_result: Callable[[UnitResult], None]) -> None:
    """After a failure: cancel the queued tasks, wait for the running ones and keep what they wrote."""
    for fut in inflight:
        fut.cancel()
    for fut in inflight:
        if fut.cancelled():
            continue
        with contextlib.suppress(Exception):
            _record(fut, on_result)


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
    errors: Sequence[SourceError],
    rewritten: list[str],
) -> bool:
    """Annotation files, then the manifest; a complete run drops its journal and shard parts.

    A JSON file that already holds the bytes is left as it is (appended to ``rewritten``
    only when written).
    """
    records = _write_annotations(out, plan, done, rewritten)
    manifest = build_manifest(plan, settings, done, errors=errors, annotation_files=records)
    _write_json_if_changed(out, MANIFEST, manifest, rewritten)
    if manifest["complete"]:
        for part in shard_manifests(out):
            part.unlink()
        shutil.rmtree(out / STATE_DIR, ignore_errors=True)
    return bool(manifest["complete"])


def _write_json_if_changed(out: Path, rel: str, obj: Any, rewritten: list[str]) -> str:
    """Write ``obj`` as :func:`write_json_atomic` does unless the file already holds those bytes.

    Return the bytes' SHA-256; append ``rel`` to ``rewritten`` when the file was written.
    """
    data = json_bytes(obj)
    if not holds_bytes(out / rel, data):
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        write_atomic(out / rel, data)
        rewritten.append(rel)
    return hashlib.sha256(data).hexdigest()


def _write_annotations(
    out: Path, plan: Plan, done: Mapping[str, Mapping[str, Any]], rewritten: list[str]
) -> list[dict[str, Any]]:
    """Write each split's corrupted subsets' and clean COCO files; return their manifest records.

    An MPII split's folders also get MMPose's MPII JSON (:data:`MPII_FILE`), recorded after the
    folder's COCO file with ``format`` ``"mpii"``, its ``images`` and ``people``.
    """
    records: list[dict[str, Any]] = []
    for split in plan.splits:
        cache: dict[str, dict[str, Any]] = {}
        for name in [*plan.configs, CLEAN_DIR]:
            if name == CLEAN_DIR:
                coco = clean_coco(plan, split, done, cache)
            else:
                coco = corrupted_coco(plan, split, name, done, cache)
            rel = f"{plan.config_dir(split, name)}/annotations.json"
            sha = _write_json_if_changed(out, rel, coco, rewritten)
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
            if split in plan.mpii_records:
                people = mpii_people(plan, split, name, done)
                rel = f"{plan.config_dir(split, name)}/{MPII_FILE}"
                sha = _write_json_if_changed(out, rel, people, rewritten)
                images = len({p["image"] for p in people})
                records.append(
                    {
                        "path": rel,
                        "split": split,
                        "config": name,
                        "sha256": sha,
                        "format": "mpii",
                        "images": images,
                        "people": len(people),
                    }
                )
    return records


def _recorded_settings(out: Path) -> dict[str, Any] | None:
    for candidate in (out / STATE_DIR / "settings.json", out / MANIFEST, *shard_manifests(out)):
        data = read_json(candidate)
        if isinstance(data, dict) and "source_digest" in data:
            return data
    return None


def _prepare_output(
    out: Path, plan: Plan, settings: dict[str, Any], options: MaterializeOptions, say: Callable[[str], None]
) -> None:
    """Refuse a folder written with other settings or by something else (unless ``overwrite``).

    Called with the folder locked, so the folder and its state folder (holding the lock)
    exist; the state folder alone does not make a folder foreign.
    """
    overwrite = options.overwrite
    out.mkdir(parents=True, exist_ok=True)
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
    if options.repair:
        if not any((out / path).exists() for path in _json_paths(plan)):
            raise MaterializeError(
                f"--repair: {out} holds no keypoint-corrupt output of these settings (no manifest.json, "
                "no annotation file); run materialize without --repair"
            )
        say(
            "--repair: manifest.json is missing or unreadable: rendering every file again and "
            "rewriting those that differ"
        )
        return
    if any(entry.name != STATE_DIR for entry in out.iterdir()):
        if not overwrite:
            raise MaterializeError(
                f"{out} is not empty and holds no keypoint-corrupt manifest; choose an empty or new folder, "
                "or pass --overwrite to write into it (replacing its <split>/<config> folders)"
            )
        _clear(out, plan, None)


def _json_paths(plan: Plan) -> list[str]:
    """Return the annotation files that a run of ``plan`` writes."""
    names = [*plan.configs, CLEAN_DIR]
    files = ["annotations.json", *([MPII_FILE] if plan.mpii_records else [])]
    return [f"{plan.config_dir(split, name)}/{f}" for split in plan.splits for name in names for f in files]


def _clear(out: Path, plan: Plan, recorded: Mapping[str, Any] | None) -> None:
    """Remove what this tool writes (previous and planned folders); leave anything else.

    The lock files in the state folder stay: this run holds them.
    """
    folders = {plan.config_dir(split, name) for split in plan.splits for name in [*plan.configs, CLEAN_DIR]}
    if recorded is not None:
        for split in recorded.get("splits") or []:
            folders.add(subset_dir(str(split), CLEAN_DIR))
            for record in recorded.get("configs") or []:
                folder = recorded_subset_dir(str(split), record) if isinstance(record, dict) else None
                if folder is not None:
                    folders.add(folder)
    state = out / STATE_DIR
    for entry in os.listdir(state) if state.is_dir() else []:
        if not is_lock_file(entry):
            target = state / entry
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            else:
                target.unlink()
    for part in [out / MANIFEST, *shard_manifests(out)]:
        with contextlib.suppress(FileNotFoundError):
            part.unlink()
    # A recorded folder comes from a file on disk: never one outside ``out``.
    inside = sorted(f for f in folders if not Path(f).is_absolute() and ".." not in Path(f).parts)
    for folder in inside:
        target = out / folder
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
    for parent in sorted({p for f in inside for p in Path(f).parents if p != Path(".")}, reverse=True):
        with contextlib.suppress(OSError):
            (out / parent).rmdir()  # a suite's <split>/<corruption>, then <split>: only if empty


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


_ENTRY_KEYS = ("path", "sha256", "size", "width", "height", "box", "target_instance", "keypoints")


def _manifest_entries(data: Any) -> dict[str, dict[str, Any]]:
    """Return the files listed by a manifest (or a shard's part) as journal entries."""
    found: dict[str, dict[str, Any]] = {}
    if isinstance(data, dict) and isinstance(data.get("files"), list):
        for rec in data["files"]:
            if isinstance(rec, dict) and "path" in rec:
                found[str(rec["path"])] = {k: rec[k] for k in _ENTRY_KEYS if k in rec}
    return found


def _recorded_entries(out: Path, state: Path) -> dict[str, dict[str, Any]]:
    """Every file recorded as written: a previous manifest's, shards' parts' and journal entries."""
    candidates = _manifest_entries(read_json(out / MANIFEST))
    for part in shard_manifests(out):
        candidates.update(_manifest_entries(read_json(part)))
    candidates.update(read_journals(state / "journal"))
    return candidates


def _recorded_sources(plan: Plan, recorded: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """Source image path -> the SHA-256 recorded for its clean copy (what ``repair`` checks)."""
    found: dict[str, str] = {}
    for path, entry in recorded.items():
        item = plan.by_path.get(path)
        if item is not None and item.config == CLEAN_DIR and isinstance(entry.get("sha256"), str):
            found[str(plan.samples[item.split][item.base_index].image_path)] = entry["sha256"]
    return found


def _load_done(
    out: Path,
    plan: Plan,
    candidates: Mapping[str, dict[str, Any]],
    say: Callable[[str], None],
    repair: bool = False,
) -> dict[str, dict[str, Any]]:
    """Files known complete among the recorded ones (:func:`_recorded_entries`), checked on disk.

    The check compares each file's size with the record, or with ``repair`` its SHA-256.
    """
    done: dict[str, dict[str, Any]] = {}
    stale = 0
    for path, entry in candidates.items():
        if path not in plan.by_path:
            continue
        if _hash_matches(out / path, entry) if repair else _size_matches(out / path, entry):
            done[path] = entry
        else:
            stale += 1
    if stale:
        what = "differ from their recorded SHA-256" if repair else "have another size"
        say(f"{stale} file(s) recorded as written are missing or {what} on disk; rewriting them")
    return done


def _hash_matches(path: Path, entry: Mapping[str, Any]) -> bool:
    try:
        return _size_matches(path, entry) and sha256_file(path) == entry["sha256"]
    except (OSError, KeyError):
        return False


def _size_matches(path: Path, entry: Mapping[str, Any]) -> bool:
    try:
        return path.stat().st_size == int(entry["size"])
    except (OSError, KeyError, TypeError, ValueError):
        return False
