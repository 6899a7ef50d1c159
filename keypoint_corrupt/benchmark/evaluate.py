"""Evaluate any keypoint predictor on the clean split and on every corruption configuration.

The door is :func:`evaluate`: a ``predict`` callable from a batch of RGB images (and,
optionally, hand3d's ground-truth crop of each image) to keypoints in original-image pixels.
The bundled models (:mod:`keypoint_corrupt.benchmark.predictors`) come through the same
door; they additionally expose a ``preparer`` (the crop, run in DataLoader workers) and
``predict_prepared`` (the network, asynchronous on a GPU), which :func:`evaluate` uses to keep
an accelerator busy.

A predictor may miss: NaN coordinates mark a joint (or, all NaN, an instance) it did not find,
and it may return a score per joint (``B x J x 3`` or ``(keypoints, scores)``). It may declare
the joint order of what it returns (``predict.schema``); predictions are then reordered to the
dataset's schema before scoring. An exception inside the predictor becomes a
:class:`PredictError` naming the row and the images of the failing batch.
"""

from __future__ import annotations

import functools
import inspect
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from keypoint_corrupt.benchmark.device_corrupt import device_corruptor
from keypoint_corrupt.benchmark.sources import STANDARD, MaterializedSource, StreamSource, open_source
from keypoint_corrupt.crop import CropInfo, crop_parameters
from keypoint_corrupt.metrics import (
    PCK_THRESHOLDS,
    CorruptionSummary,
    KeypointMetrics,
    corruption_summary,
    keypoint_metrics,
)
from keypoint_corrupt.registry import CONFIGS, get_config

__all__ = [
    "STANDARD",
    "BenchmarkResult",
    "Example",
    "PredictError",
    "RowResult",
    "evaluate",
    "row_label",
    "split_output",
]


class PredictError(Exception):
    """The predict callable raised an exception (chained as ``__cause__``).

    Attributes
    ----------
    config : str
        The row being evaluated (``"standard"`` or a configuration name).
    image_ids : list of str
        The sample ids of the failing batch.
    original : BaseException
        The predictor's exception.

    Examples
    --------
    >>> err = PredictError(config="motion-45", image_ids=["a", "b"], original=TypeError("bad"))
    >>> str(err)
    'predict raised TypeError: bad (configuration motion-45, images a, b)'
    """

    def __init__(self, config: str, image_ids: Sequence[str], original: BaseException) -> None:
        self.config = config
        self.image_ids = list(image_ids)
        self.original = original
        shown = ", ".join(self.image_ids[:5])
        if len(self.image_ids) > 5:
            shown += f", ... ({len(self.image_ids)} images)"
        super().__init__(
            f"predict raised {type(original).__name__}: {original} (configuration {config}, images {shown})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.config, self.image_ids, self.original))


@dataclass(eq=False)
class RowResult:
    """One row of the report: the clean split (``standard``) or one configuration.

    Attributes
    ----------
    name : str
        ``"standard"`` or the configuration name.
    family : str
        Corruption family (``"standard"`` for the clean row).
    metrics : KeypointMetrics
        hand3d's metrics of the row.
    ids : list of str
        Source sample ids, in evaluation order.
    predictions, keypoints : numpy.ndarray
        ``N x J x 2`` predictions and ground truth (original-image pixels).
    visibility : numpy.ndarray
        ``N x J`` bools.
    scores : numpy.ndarray or None
        ``N x J`` per-joint scores when the predictor returned them (NaN for a batch
        without), else ``None``. Scores are kept, not used by the metrics.

    ``predictions`` holds NaN where the predictor missed a joint (in the dataset's joint
    order, after any schema reordering).
    """

    name: str
    family: str
    metrics: KeypointMetrics
    ids: list[str]
    predictions: np.ndarray
    keypoints: np.ndarray
    visibility: np.ndarray
    scores: np.ndarray | None = None

    def to_dict(self, per_joint: bool = True, predictions: bool = False) -> dict[str, Any]:
        """JSON-ready dict."""
        challenge, param = row_label(self.name)
        out: dict[str, Any] = {
            "name": self.name,
            "family": self.family,
            "challenge": challenge,
            "config": param,
            "images": len(self.ids),
            **self.metrics.to_dict(per_joint=per_joint),
        }
        if predictions:
            out["ids"] = list(self.ids)
            out["predictions"] = self.predictions.tolist()
        return out


@dataclass(eq=False)
class Example:
    """One evaluated image kept for the examples figure."""

    row: str
    id: str
    image: np.ndarray
    keypoints: np.ndarray
    visibility: np.ndarray
    prediction: np.ndarray
    #: The dataset's joint schema (its edges are drawn), when known.
    schema: Any = None


@dataclass(eq=False)
class BenchmarkResult:
    """Everything :func:`evaluate` measured.

    Attributes
    ----------
    rows : dict
        Row name -> :class:`RowResult`: ``"standard"`` first (when evaluated), then each
        configuration in the order requested.
    summary : CorruptionSummary or None
        mPC / rPC over the configurations, relative to ``standard`` (needs both).
    source : dict
        Where the samples came from (streamed or materialised, dataset, split, fraction, seed).
    settings : dict
        Batch size, workers, predictor description...
    timing : dict
        ``seconds`` (wall time), ``images``, ``images_per_second`` of the whole benchmark,
        ``predict_seconds`` (inside the predictor, including waiting for the device),
        ``data_wait_seconds`` (waiting for corrupted / cropped batches) and their shares.
    examples : list of Example
        A few images per row with their predictions.
    """

    rows: dict[str, RowResult]
    summary: CorruptionSummary | None
    source: dict[str, Any]
    settings: dict[str, Any]
    timing: dict[str, Any]
    examples: list[Example] = field(default_factory=list)

    @property
    def standard(self) -> RowResult | None:
        """The clean row, if evaluated."""
        return self.rows.get(STANDARD)

    @property
    def thresholds(self) -> np.ndarray:
        """PCK thresholds (pixels)."""
        return next(iter(self.rows.values())).metrics.thresholds

    def table(self) -> list[dict[str, Any]]:
        """One dict per row: name, challenge, config, images, the metrics and detection rates."""
        out = []
        for row in self.rows.values():
            challenge, param = row_label(row.name)
            out.append(
                {
                    "name": row.name,
                    "challenge": challenge,
                    "config": param,
                    "images": len(row.ids),
                    "mean_epe": row.metrics.mean_epe,
                    "median_epe": row.metrics.median_epe,
                    "auc": row.metrics.auc,
                    "detection_rate": row.metrics.detection_rate,
                    "instance_detection_rate": row.metrics.instance_detection_rate,
                }
            )
        return out

    def to_dict(self, per_joint: bool = True, predictions: bool = False) -> dict[str, Any]:
        """JSON-ready dict of the whole result (without the example images)."""
        return {
            "source": dict(self.source),
            "settings": dict(self.settings),
            "thresholds": [float(t) for t in self.thresholds],
            "rows": [r.to_dict(per_joint, predictions) for r in self.rows.values()],
            "summary": self.summary.to_dict() if self.summary is not None else None,
            "timing": dict(self.timing),
        }


def row_label(name: str) -> tuple[str, str]:
    """Table II's (challenge, config) cells of a row name.

    Examples
    --------
    >>> row_label("standard"), row_label("occlusion-20"), row_label("noise-gaussian")
    (('Standard', '-'), ('occlusion', '20%'), ('noise gaussian', '-'))
    """
    if name == STANDARD:
        return "Standard", "-"
    try:
        family = get_config(name).family
    except ValueError:
        return name, "-"
    if name.startswith(f"{family}-"):
        param = name[len(family) + 1 :]
        if param.isdigit():
            return family, f"{param}%" if family == "occlusion" else param
        pretty = {"saltpepper": "salt&pepper"}.get(param, param)
        return f"{family} {pretty}", "-"
    return family, name


def _family(name: str) -> str:
    if name == STANDARD:
        return STANDARD
    try:
        return get_config(name).family
    except ValueError:
        return name


# --------------------------------------------------------------------------------------------
# Items and batches (module level: DataLoader workers pickle them under 'spawn').


class _EvalItems:
    """Every (row, item) of a source as one map-style dataset, ready for a DataLoader."""

    def __init__(
        self,
        source: Any,
        need_crops: bool,
        preparer: Callable[..., Any] | None,
        schema: Any = None,
        defer: bool = False,
    ) -> None:
        self.source = source
        self.schema = schema  # the dataset's joint schema: the crop centres on its anchor joints
        self.need_crops = need_crops or preparer is not None
        self.preparer = preparer
        self.defer = defer  # corrupted rows: the clean image, corrupted later on a device
        self.index = [(g, i) for g, (_, n) in enumerate(source.groups) for i in range(n)]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, k: int) -> dict[str, Any]:
        group, index = self.index[k]
        if self.defer:
            deferred = self.source.deferred(group, index)
            if deferred is not None:
                return {"group": group, "index": index, "deferred": deferred}
        return self.finish(group, index, self.source.item(group, index))

    def finish(self, group: int, index: int, item: Mapping[str, Any]) -> dict[str, Any]:
        """Turn a source item into a batch item: its crop (and the prepared input), or its image."""
        image = np.asarray(item["image"])
        out: dict[str, Any] = {
            "group": group,
            "index": index,
            "id": item["id"],
            "keypoints": np.asarray(item["keypoints"], np.float64),
            "visibility": np.asarray(item["visibility"], bool),
        }
        if self.need_crops:
            out["center"], out["scale"] = crop_parameters(
                out["keypoints"], out["visibility"], image.shape, schema=self.schema
            )
        if self.preparer is not None:
            out["prepared"] = self.preparer(image, out["center"], out["scale"])
        else:
            out["image"] = image
        return out


def _collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    shapes = {it["keypoints"].shape for it in items}
    if len(shapes) != 1:
        raise ValueError(f"a batch mixes keypoint layouts {sorted(shapes)}; evaluate one joint set at a time")
    batch: dict[str, Any] = {
        "group": [it["group"] for it in items],
        "index": [it["index"] for it in items],
        "id": [it["id"] for it in items],
        "keypoints": np.stack([it["keypoints"] for it in items]),
        "visibility": np.stack([it["visibility"] for it in items]),
    }
    if "center" in items[0]:
        batch["center"] = np.stack([it["center"] for it in items])
        batch["scale"] = np.array([it["scale"] for it in items], np.float64)
    if "image" in items[0]:
        images = [it["image"] for it in items]
        same = len({(im.shape, im.dtype) for im in images}) == 1
        batch["images"] = np.stack(images) if same else images
    if "prepared" in items[0]:
        import torch  # only bundled-model preparers get here; a tensor can be pinned

        batch["prepared"] = torch.from_numpy(np.stack([it["prepared"] for it in items]))
    return batch


def _batches(sizes: Sequence[int], batch_size: int) -> list[list[int]]:
    out: list[list[int]] = []
    start = 0
    for n in sizes:
        for lo in range(0, n, batch_size):
            out.append(list(range(start + lo, start + min(n, lo + batch_size))))
        start += n
    return out


def _as_list(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return items


class _DeviceStep:
    """The main process's step for ``corrupt_on``: corrupt a batch's deferred items, then collate."""

    def __init__(self, items: _EvalItems, corruptor: Callable[[list[dict[str, Any]]], list[Any]]) -> None:
        self.items = items
        self.corruptor = corruptor

    def __call__(self, raw: list[dict[str, Any]]) -> dict[str, Any]:
        waiting = [it for it in raw if "deferred" in it]
        done = iter(self.corruptor([it["deferred"] for it in waiting]) if waiting else [])
        ready = []
        for it in raw:
            if "deferred" in it:
                image, moved = next(done)
                item = self.items.source.finish_deferred(it["deferred"], image, moved)
                it = self.items.finish(it["group"], it["index"], item)
            ready.append(it)
        return _collate(ready)


def _iterate(
    items: _EvalItems,
    batches: list[list[int]],
    num_workers: int,
    pin_memory: bool,
    step: Callable[[list[dict[str, Any]]], dict[str, Any]] | None = None,
) -> Iterator[dict[str, Any]]:
    if num_workers == 0 and not pin_memory:
        for b in batches:
            raw = [items[k] for k in b]
            yield _collate(raw) if step is None else step(raw)
        return
    try:
        from torch.utils.data import DataLoader, Dataset
    except ImportError as exc:  # pragma: no cover
        raise ImportError("num_workers > 0 and pin_memory need PyTorch (or use num_workers=0)") from exc
    import multiprocessing

    import cv2

    fork = num_workers > 0 and "fork" in multiprocessing.get_all_start_methods()
    # _EvalItems is a map-style dataset (len, [k]); torch is optional, so it does not subclass Dataset.
    dataset = cast("Dataset[dict[str, Any]]", items)
    loader: DataLoader[dict[str, Any]] = DataLoader(
        dataset,
        batch_sampler=batches,
        num_workers=num_workers,
        collate_fn=_collate if step is None else _as_list,
        pin_memory=pin_memory and step is None,  # deferred batches are finished here, unpinned
        prefetch_factor=4 if num_workers else None,
        multiprocessing_context="fork" if fork else None,
    )
    # A child forked while OpenCV's thread pool is alive deadlocks in its first parallel call
    # (and cannot even resize the pool): shut the pool down around the fork. The workers
    # inherit one OpenCV thread each (torch sets one intra-op thread in every worker).
    threads = cv2.getNumThreads()
    if fork:
        cv2.setNumThreads(1)
    try:
        iterator = iter(loader)  # starts the workers
    finally:
        if fork:
            cv2.setNumThreads(threads)
    if step is None:
        yield from iterator
    else:
        yield from map(step, iterator)


# --------------------------------------------------------------------------------------------
# Calling the predictor.


def wants_crops(predict: Callable[..., Any]) -> bool:
    """Whether ``predict`` takes the crop information as a second argument.

    True when it has a parameter named ``crops``, a second positional parameter without a
    default, or ``*args``.
    """
    try:
        sig = inspect.signature(predict)
    except (TypeError, ValueError):
        return False
    params = list(sig.parameters.values())
    if "crops" in sig.parameters:
        return True
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params):
        return True
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    positional = [p for p in params if p.kind in kinds]
    return len(positional) >= 2 and positional[1].default is inspect.Parameter.empty


def _takes_crops_keyword(predict: Callable[..., Any]) -> bool:
    """Tell whether a ``crops`` parameter must be passed by name (not the second positional one)."""
    try:
        params = list(inspect.signature(predict).parameters.values())
    except (TypeError, ValueError):
        return False
    for i, p in enumerate(params):
        if p.name == "crops":
            return p.kind is inspect.Parameter.KEYWORD_ONLY or i != 1
    return False


class _Ready:
    def __init__(self, value: Any) -> None:
        self.value = value

    def result(self) -> Any:
        return self.value


def _as_array(out: Any) -> np.ndarray:
    """Return a predictor's output (array-like or torch tensor) as float64."""
    if hasattr(out, "detach"):  # a torch tensor, possibly on a GPU
        out = out.detach().cpu()
        if not out.dtype.is_floating_point or out.dtype.itemsize < 4:
            out = out.float()  # NumPy has no bfloat16
        out = out.numpy()
    return np.asarray(out, dtype=np.float64)


def split_output(out: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """Split a predictor's output into ``B x J x 2`` keypoints and optional ``B x J`` scores.

    Accepted: ``B x J x 2`` (x, y); ``B x J x 3`` (x, y, score); or a tuple
    ``(keypoints, scores)`` of a ``B x J x 2`` and a ``B x J`` array. Arrays may be any
    array-like or torch tensors. NaN coordinates mark a miss.

    Examples
    --------
    >>> kp, sc = split_output(np.array([[[1.0, 2.0, 0.9], [np.nan, np.nan, 0.1]]]))
    >>> kp.tolist(), sc.tolist()
    ([[[1.0, 2.0], [nan, nan]]], [[0.9, 0.1]])
    """
    first = _as_array(out[0]) if isinstance(out, tuple) and len(out) == 2 else None
    if first is not None and first.ndim == 3:
        coords, scores = first, _as_array(out[1])
        if scores.shape != coords.shape[:2]:
            raise ValueError(
                f"predict returned keypoints {coords.shape} with scores {scores.shape}; "
                f"expected scores {coords.shape[:2]} (B x J)"
            )
        return coords, scores
    arr = _as_array(out)
    if arr.ndim == 3 and arr.shape[-1] == 3:
        return arr[..., :2], arr[..., 2]
    return arr, None


# --------------------------------------------------------------------------------------------


def evaluate(
    predict: Callable[..., Any],
    dataset: Any,
    configs: Sequence[str] | None = CONFIGS,
    fraction: float = 0.2,
    seed: int = 0,
    batch_size: int = 16,
    *,
    split: str | None = None,
    standard: bool = True,
    with_crops: bool | None = None,
    num_workers: int = 0,
    pin_memory: bool | None = None,
    thresholds: Sequence[float] | np.ndarray = PCK_THRESHOLDS,
    examples: int = 1,
    progress: bool = False,
    schema: Any = None,
    whole_images: bool = False,
    corrupt_on: str | None = None,
) -> BenchmarkResult:
    """Benchmark a keypoint predictor on the clean split and under each corruption.

    Parameters
    ----------
    predict : callable
        ``predict(images)`` or ``predict(images, crops)`` -> ``B x J x 2`` keypoints (x, y)
        in original-image pixels (array-like or torch tensor); NaN for a joint it did not
        find; ``B x J x 3`` or ``(keypoints, scores)`` to add a score per joint. An optional
        attribute ``predict.schema`` (a schema name or ``KeypointSchema``) declares the
        joint order it returns. ``images`` is a ``B x H x W x 3``
        uint8 RGB array when all images of the batch share a size, else a list of ``H x W x 3``
        arrays. ``crops`` is a :class:`~keypoint_corrupt.benchmark.CropInfo` with hand3d's
        ground-truth crop of each image (centre, scale; ``crops.crop(images)`` cuts them,
        ``crops.to_source(kp)`` maps crop pixels back); it is passed when the callable has a
        ``crops`` parameter (by name unless it is the second one), a second required
        positional parameter or ``*args`` (or when ``with_crops=True``).
    dataset : sequence of Sample, CorruptedDataset or path
        A split to corrupt on the fly (``STB(root, "val")``, ``CocoKeypoints(...)``), a
        ``CorruptedDataset`` (its base, configurations, fraction and seed), or the folder of
        a materialised output (``keypoint-corrupt materialize``), read back. Both give the
        same numbers: the output read back equals streaming with its fraction and seed (and
        ``whole_images=True`` for an output of ``materialize --suite``).
    configs : sequence of str or None
        Configurations (one row each), default the eleven. Reading a materialised output,
        the default (or ``None``) means every configuration the output holds.
    fraction, seed : float, int
        Subset draw and corruption noise when streaming (a materialised output has its own).
    batch_size : int
        Images per ``predict`` call. Batches never mix rows.
    split : str, optional
        Split of a materialised output (default ``"val"`` or its only split).
    standard : bool
        Evaluate the clean split as the ``standard`` row (needed for mPC / rPC).
    with_crops : bool, optional
        Force passing (or not) the crop information.
    num_workers : int
        DataLoader worker processes that load, corrupt and crop images while the predictor
        runs (needs PyTorch; 0: in this process).
    pin_memory : bool, optional
        Pin batches for asynchronous host-to-GPU copies; default: when the predictor runs
        on CUDA.
    thresholds : array_like
        PCK thresholds in pixels (hand3d: ``linspace(0, 30, 20)``).
    examples : int
        Images per row kept (with predictions) for the examples figure.
    progress : bool
        Show progress bars over rows (configurations) and batches.
    schema : str or KeypointSchema, optional
        The dataset's joint schema; default ``dataset.schema`` when it has one. When it and
        the predictor's declared ``schema`` differ, predictions are reordered by joint name
        (:func:`keypoint_corrupt.schema.remap`) before scoring. A materialised output's is
        that of its annotation files (the source dataset's).
    whole_images : bool
        When streaming, corrupt whole images as ``materialize --suite`` does (``benchmark
        --suite`` sets it): the subset is drawn over images, each image is corrupted once
        with the generator of its id and every person's keypoints (a keypoint-aware
        corruption sees them all), and each of its annotations is scored on it. Default: each
        annotation's copy of its image separately, as ``materialize`` without a suite. The
        same for a dataset of one sample per image (STB).
    corrupt_on : str, optional
        A torch device (``"cuda"``, ``"cpu"``) that corrupts the streamed images in batches
        with :mod:`keypoint_corrupt.torch` (same generators as the NumPy path, so the same
        images where its kernels are bit-exact: ``docs/torch.md``); the workers then only
        decode, and the crops are cut after the corruption. Default: the NumPy kernels, in
        the workers. Needs PyTorch and a stream (not a materialised output).

    Returns
    -------
    BenchmarkResult

    Raises
    ------
    PredictError
        When the predictor raises; the original exception is chained.
    ValueError
        On a wrong output shape, infinite coordinates of a visible joint, or a declared
        schema whose joints cannot be matched to the dataset's (before the model runs).

    Examples
    --------
    >>> import numpy as np
    >>> from keypoint_corrupt.datasets import STB, bundled_sample_root
    >>> def predict(images, crops):  # every joint at the crop centre
    ...     return np.repeat(crops.center[:, None, :], 21, axis=1)
    >>> res = evaluate(predict, STB(bundled_sample_root(), "val"), ["defocus-7", "motion-15"])
    >>> [(name, len(r.ids)) for name, r in res.rows.items()]
    [('standard', 8), ('defocus-7', 2), ('motion-15', 2)]
    >>> 0.0 <= res.rows["standard"].metrics.auc <= 1.0
    True
    """
    _check_arguments(predict, batch_size, num_workers)
    source = open_source(
        dataset, configs, fraction, seed, split=split, standard=standard, whole_images=whole_images
    )
    if not source.groups:
        raise ValueError("nothing to evaluate: no configuration and standard=False")
    empty = [name for name, n in source.groups if n == 0]
    if empty:
        raise ValueError(f"no images to evaluate for {', '.join(empty)} (split empty or fraction too small)")
    dataset_schema = _dataset_schema(schema, dataset, source)
    reorder, schema_info = _schema_plan(predict, dataset_schema)
    caller = _Caller.of(predict, with_crops)
    if pin_memory is None:
        pin_memory = getattr(predict, "device_type", None) == "cuda"
    items = _EvalItems(source, caller.crops_wanted, caller.preparer, dataset_schema, corrupt_on is not None)
    step = None if corrupt_on is None else _DeviceStep(items, device_corruptor(corrupt_on, source))
    names = [name for name, _ in source.groups]
    sizes = [n for _, n in source.groups]
    collector = _Collector(names, reorder)
    bars = _Progress(names, [math.ceil(n / batch_size) for n in sizes], enabled=progress)
    iterator = _iterate(items, _batches(sizes, batch_size), num_workers, bool(pin_memory), step)
    clock = _run(iterator, caller, collector, bars)
    rows = collector.rows(thresholds)
    settings = {
        "batch_size": batch_size,
        "num_workers": num_workers,
        "pin_memory": bool(pin_memory),
        "with_crops": caller.crops_wanted or caller.preparer is not None,
        "predictor": _describe_predictor(predict),
        "cpu_count": os.cpu_count(),
        "schema": schema_info,
        "corrupt_on": corrupt_on,
    }
    timing = clock.timing(sum(sizes))
    kept = _examples(source, rows, examples, dataset_schema)
    return BenchmarkResult(rows, _summary(rows), source.describe(), settings, timing, kept)


# --------------------------------------------------------------------------------------------
# The steps of evaluate.


def _check_arguments(predict: Callable[..., Any], batch_size: int, num_workers: int) -> None:
    if not callable(predict):
        raise TypeError(f"predict must be callable, got {type(predict).__name__}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
        raise ValueError(f"num_workers must be a non-negative integer, got {num_workers!r}")


@dataclass(frozen=True)
class _Caller:
    """How to call the predictor on a batch: the prepared path, with crop information, or images only."""

    predict: Callable[..., Any]
    crops_wanted: bool
    crops_by_name: bool
    #: The bundled models' ``preparer`` (run in the DataLoader workers) when they also have
    #: ``predict_prepared``; else ``None``.
    preparer: Callable[..., Any] | None
    predict_prepared: Callable[..., Any] | None

    @classmethod
    def of(cls, predict: Callable[..., Any], with_crops: bool | None) -> _Caller:
        preparer = getattr(predict, "preparer", None)
        prepared = getattr(predict, "predict_prepared", None)
        if preparer is None or not callable(prepared):
            preparer = prepared = None
        crops_wanted = wants_crops(predict) if with_crops is None else bool(with_crops)
        return cls(predict, crops_wanted, _takes_crops_keyword(predict), preparer, prepared)

    def __call__(self, batch: dict[str, Any]) -> Any:
        """Start the prediction of a batch: a handle whose ``result()`` is the output."""
        if self.predict_prepared is not None:
            return self.predict_prepared(batch["prepared"], batch["center"], batch["scale"])
        if self.crops_wanted:
            info = CropInfo(batch["center"], batch["scale"])
            if self.crops_by_name:
                return _Ready(self.predict(batch["images"], crops=info))
            return _Ready(self.predict(batch["images"], info))
        return _Ready(self.predict(batch["images"]))


class _Collector:
    """Predictions, scores, ground truth, visibility and ids of every row, batch after batch."""

    def __init__(self, names: Sequence[str], reorder: _Reorder | None = None) -> None:
        self.names = list(names)
        self.reorder = reorder
        num_rows = len(self.names)
        self.preds: list[list[np.ndarray]] = [[] for _ in range(num_rows)]
        self.scores: list[list[np.ndarray | None]] = [[] for _ in range(num_rows)]
        self.gts: list[list[np.ndarray]] = [[] for _ in range(num_rows)]
        self.viss: list[list[np.ndarray]] = [[] for _ in range(num_rows)]
        self.ids: list[list[str]] = [[] for _ in range(num_rows)]

    def add(self, batch: dict[str, Any], output: Any) -> int:
        """Keep one batch's predictions (checked against its shape); return its row."""
        out, scores = split_output(output)
        if self.reorder is not None and out.ndim == 3:
            out, scores = self.reorder(out, scores)
        gt = batch["keypoints"]
        if out.shape != gt.shape:
            raise ValueError(
                f"predict returned shape {out.shape} for a batch of {len(gt)} images with "
                f"{gt.shape[1]} joints; expected {gt.shape} (B x J x 2, original-image pixels; "
                "B x J x 3 with a score column)"
            )
        g: int = batch["group"][0]
        infinite = np.isinf(out).any(axis=-1) & batch["visibility"]
        if infinite.any():
            ids = [batch["id"][i] for i in np.flatnonzero(infinite.any(axis=1))]
            raise ValueError(
                f"predict returned infinite coordinates for visible joints (configuration "
                f"{self.names[g]}, images {', '.join(ids[:5])}); return NaN for a joint it did not find"
            )
        self.preds[g].append(out)
        self.scores[g].append(scores)
        self.gts[g].append(gt)
        self.viss[g].append(batch["visibility"])
        self.ids[g].extend(batch["id"])
        return g

    def row_scores(self, g: int) -> np.ndarray | None:
        """Return the row's ``N x J`` scores (NaN for a batch without), ``None`` if no batch had any."""
        parts = self.scores[g]
        if all(s is None for s in parts):
            return None
        filled = [
            np.full(p.shape[:2], np.nan) if s is None else s
            for s, p in zip(parts, self.preds[g], strict=True)
        ]
        return np.concatenate(filled)

    def rows(self, thresholds: Sequence[float] | np.ndarray) -> dict[str, RowResult]:
        """Return one :class:`RowResult` per row, with its metrics."""
        rows: dict[str, RowResult] = {}
        for g, name in enumerate(self.names):
            pred = np.concatenate(self.preds[g])
            gt = np.concatenate(self.gts[g])
            vis = np.concatenate(self.viss[g])
            metrics = keypoint_metrics(pred, gt, vis, thresholds)
            scores = self.row_scores(g)
            rows[name] = RowResult(name, _family(name), metrics, self.ids[g], pred, gt, vis, scores)
        return rows


@dataclass
class _Clock:
    """Wall time of the benchmark, time inside the predictor and time waiting for batches."""

    seconds: float = 0.0
    predict_seconds: float = 0.0
    wait_seconds: float = 0.0

    def timing(self, images: int) -> dict[str, Any]:
        """Return the ``timing`` dict of :class:`BenchmarkResult`."""
        seconds = self.seconds

        def share(part: float) -> float:
            return part / seconds if seconds > 0 else math.nan

        return {
            "seconds": seconds,
            "images": images,
            "images_per_second": share(images),
            "predict_seconds": self.predict_seconds,
            "data_wait_seconds": self.wait_seconds,
            "predict_share": share(self.predict_seconds),
            "data_wait_share": share(self.wait_seconds),
        }


def _run(
    iterator: Iterator[dict[str, Any]], caller: _Caller, collector: _Collector, bars: _Progress
) -> _Clock:
    """Feed every batch to the predictor, collecting each result while the next batch runs."""
    clock = _Clock()

    def finish(batch: dict[str, Any], handle: Any) -> None:
        t0 = time.perf_counter()
        out = _guarded(handle.result, batch, collector.names)
        clock.predict_seconds += time.perf_counter() - t0
        bars.batch_done(collector.add(batch, out))

    started = time.perf_counter()
    pending: tuple[dict[str, Any], Any] | None = None
    try:
        while True:
            t0 = time.perf_counter()
            batch = next(iterator, None)
            clock.wait_seconds += time.perf_counter() - t0
            if batch is None:
                break
            bars.batch_started(batch["group"][0])
            t0 = time.perf_counter()
            handle = _guarded(functools.partial(caller, batch), batch, collector.names)  # async on a GPU
            clock.predict_seconds += time.perf_counter() - t0
            if pending is not None:
                finish(*pending)  # the previous batch, while this one runs
            pending = (batch, handle)
        if pending is not None:
            finish(*pending)
    finally:
        bars.close()
        close = getattr(iterator, "close", None)
        if close is not None:
            close()
    clock.seconds = time.perf_counter() - started
    return clock


def _guarded(call: Callable[[], Any], batch: dict[str, Any], names: Sequence[str]) -> Any:
    """Run ``call`` (the predictor on ``batch``); turn its exception into a :class:`PredictError`."""
    try:
        return call()
    except Exception as exc:
        raise PredictError(names[batch["group"][0]], batch["id"], exc) from exc


# --------------------------------------------------------------------------------------------
# Joint schemas: the predictor's declared order against the dataset's.


@dataclass(frozen=True)
class _Reorder:
    """Reorders a predictor's output from its declared schema to the dataset's."""

    source: Any
    target: Any

    def __call__(self, coords: np.ndarray, scores: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
        from keypoint_corrupt.schema import remap

        out = np.asarray(remap(coords, self.source, self.target), np.float64)
        if scores is not None:
            scores = np.asarray(remap(scores[..., None], self.source, self.target), np.float64)[..., 0]
        return out, scores


def _dataset_schema(schema: Any, dataset: Any, source: Any) -> Any:
    if schema is not None:
        return schema
    for holder in (dataset, getattr(dataset, "base", None), source):
        found = getattr(holder, "schema", None)
        if found is not None:
            return found
    return None


def _schema_name(schema: Any) -> str | None:
    if schema is None:
        return None
    from keypoint_corrupt.schema import get_schema

    return get_schema(schema).name


def _schema_plan(predict: Callable[..., Any], target: Any) -> tuple[_Reorder | None, dict[str, Any]]:
    """Check the predictor's declared schema against the dataset's, before any image is read.

    Returns the reordering to apply (``None`` when nothing is declared or the orders agree)
    and the ``settings["schema"]`` record.
    """
    declared = getattr(predict, "schema", None)
    info = {"dataset": _schema_name(target), "predict": _schema_name(declared), "reordered": False}
    if declared is None or target is None:
        return None, info
    from keypoint_corrupt.schema import get_schema, remap

    src, dst = get_schema(declared), get_schema(target)
    if tuple(src.joints) == tuple(dst.joints):
        return None, info
    try:
        remap(np.zeros((1, len(src.joints), 2)), src, dst)
    except ValueError as exc:
        raise ValueError(
            f"predict declares schema {src.name!r}, which cannot be scored against the dataset's "
            f"schema {dst.name!r}: {exc}"
        ) from exc
    return _Reorder(src, dst), {**info, "reordered": True}


def _summary(rows: dict[str, RowResult]) -> CorruptionSummary | None:
    corrupted = {n: r.metrics for n, r in rows.items() if n != STANDARD}
    if STANDARD in rows and corrupted:
        return corruption_summary(rows[STANDARD].metrics, corrupted)
    return None


def _describe_predictor(predict: Callable[..., Any]) -> dict[str, Any]:
    describe = getattr(predict, "describe", None)
    if callable(describe):
        described: dict[str, Any] = describe()
        return described
    return _callable_name(predict)


def _callable_name(fn: Any) -> dict[str, Any]:
    name = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    return {"name": f"{getattr(fn, '__module__', '?')}:{name}"}


def _examples(
    source: StreamSource | MaterializedSource, rows: dict[str, RowResult], per_row: int, schema: Any
) -> list[Example]:
    out: list[Example] = []
    if per_row <= 0:
        return out
    for g, (name, _) in enumerate(source.groups):
        row = rows[name]
        for i in range(min(per_row, len(row.ids))):
            image = np.asarray(source.item(g, i)["image"])  # rebuilt: items are pure functions
            kp, vis, pred = row.keypoints[i], row.visibility[i], row.predictions[i]
            out.append(Example(name, row.ids[i], image, kp, vis, pred, schema))
    return out


class _Progress:
    """Two tqdm bars: rows (configurations) and the batches of the current row."""

    def __init__(self, names: list[str], batches: list[int], enabled: bool) -> None:
        self.enabled = enabled and sum(batches) > 0
        self.names = names
        self.batches = batches
        self.done = [0] * len(names)
        self.current = -1
        self.outer: Any = None
        self.inner: Any = None
        if self.enabled:
            from tqdm.auto import tqdm

            self._tqdm = tqdm
            self.outer = tqdm(total=len(names), desc="configurations", unit="row", position=0)

    def batch_started(self, group: int) -> None:
        if not self.enabled or group == self.current:
            return
        if self.inner is not None:
            self.inner.close()
        self.current = group
        self.outer.set_postfix_str(self.names[group])
        self.inner = self._tqdm(
            total=self.batches[group], desc=self.names[group], unit="batch", position=1, leave=False
        )

    def batch_done(self, group: int) -> None:
        if not self.enabled:
            return
        self.done[group] += 1
        if group == self.current and self.inner is not None:
            self.inner.update(1)
        if self.done[group] == self.batches[group]:
            self.outer.update(1)

    def close(self) -> None:
        if self.inner is not None:
            self.inner.close()
        if self.outer is not None:
            self.outer.close()
