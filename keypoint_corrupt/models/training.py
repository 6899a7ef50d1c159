"""Training loop for the reference models.

:func:`train` is the whole of ``keypoint-corrupt train``: the command only parses its
options and builds the dataset. A dataset is any map-style sequence whose items are dicts
with ``image`` (RGB uint8 ``H x W x 3``), ``keypoints`` (``J x 2`` float pixels) and
``visibility`` (``J`` bools); every item is cropped with hand3d's ground-truth crop
(:class:`~keypoint_corrupt.models.data.CropDataset`) before it reaches the model, centred by
joint name with ``schema=`` (the dataset's ``.schema``) or on joint 12 by default. Validation
runs :func:`~keypoint_corrupt.models.predictor.validate` (the benchmark's predictor and
:mod:`keypoint_corrupt.metrics`).

Reproducibility: the model is initialised from ``seed``; every epoch's order comes from a
``torch.Generator`` seeded with ``(seed, epoch)``; each sample's augmentation from a NumPy
generator seeded with ``(seed, epoch, index)``; NerPE's query points from ``(seed, step)``.
So a run, an interrupted and resumed run, and any ``num_workers`` see the same data. GPU
kernels (cuDNN, atomics) may still differ in the last bits between runs.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np

from keypoint_corrupt._model_names import MODEL_NAMES
from keypoint_corrupt.crop import CROP_SIZE
from keypoint_corrupt.models._torch import channels_last as channels_last_memory
from keypoint_corrupt.models._torch import nn, resolve_device, torch
from keypoint_corrupt.models.checkpoint import build_model, read_checkpoint, save
from keypoint_corrupt.models.data import CropDataset, crop_center, seed_worker
from keypoint_corrupt.models.heatmaps import posenet_loss
from keypoint_corrupt.models.nerpe import NerPE, continuous_targets, nerpe_loss, sample_queries
from keypoint_corrupt.models.posenet import PoseNet, preprocess_images
from keypoint_corrupt.models.predictor import validate
from keypoint_corrupt.schema import KeypointSchema

__all__ = ["DEFAULT_LR", "TrainResult", "lr_at", "train"]

#: Published initial learning rates (hand3d's PoseNet training; NerPE's released config).
DEFAULT_LR = {"posenet-dense": 1e-4, "posenet-depthwise": 1e-4, "nerpe": 1e-3}
LAST_CHECKPOINT = "last.pt"
FINAL_MODEL = "model.pt"
LrSchedule = Literal["hand3d", "constant"]


class _EpochSampler(torch.utils.data.Sampler[int]):
    """A permutation fixed by (seed, epoch), optionally skipping the first ``skip`` samples (resume)."""

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed, self.epoch, self.skip = n, seed, 0, 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = epoch, skip

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return iter(torch.randperm(self.n, generator=g)[self.skip :].tolist())

    def __len__(self) -> int:
        return self.n - self.skip


@dataclass
class TrainResult:
    """What :func:`train` produced.

    Attributes
    ----------
    model : torch.nn.Module
        The trained model (eval mode, on the training device).
    out_dir : pathlib.Path
    checkpoint : pathlib.Path
        ``last.pt``: weights, header and training state (for ``resume``).
    final : pathlib.Path
        ``model.pt``: weights and header only (for :func:`keypoint_corrupt.models.load`).
    loss_curve : pathlib.Path
        ``loss_curve.png``.
    history : pathlib.Path
        ``history.json``: per-step and per-epoch losses, validation EPE, timings.
    step_losses, epoch_losses : list of float
    val_epe : list of float
        hand3d mean EPE (source pixels) after each epoch, when a validation set was given.
    skipped_steps : int
        Mixed precision: updates the gradient scaler skipped (inf / NaN gradients).
    seconds : float
        Wall time of this call.
    """

    model: nn.Module
    out_dir: Path
    checkpoint: Path
    final: Path
    loss_curve: Path
    history: Path
    step_losses: list[float] = field(default_factory=list)
    epoch_losses: list[float] = field(default_factory=list)
    val_epe: list[float] = field(default_factory=list)
    skipped_steps: int = 0
    seconds: float = 0.0


@dataclass
class _Progress:
    """Where a run stands; saved in ``last.pt`` (as a plain dict) and restored on resume."""

    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    step_losses: list[float] = field(default_factory=list)
    epoch_losses: list[float] = field(default_factory=list)
    val_epe: list[float] = field(default_factory=list)
    # Losses of the epoch in progress (kept across an interrupt).
    epoch_partial: list[float] = field(default_factory=list)
    skipped_steps: int = 0  # mixed precision: updates the gradient scaler skipped
    train_seconds: float = 0.0

    @classmethod
    def from_dict(cls, saved: Mapping[str, Any]) -> _Progress:
        return cls(**{f.name: saved[f.name] for f in fields(cls) if f.name in saved})


@dataclass(frozen=True)
class _LossSettings:
    amp: bool
    posenet_resolution: Literal["crop", "map"]
    posenet_sigma: float
    nerpe_subcells: int
    nerpe_sigma: float

    def describe(self, model_name: str) -> str:
        if model_name == "nerpe":
            return f"nerpe sigma={self.nerpe_sigma:g}, {self.nerpe_subcells}x{self.nerpe_subcells} sub-cells"
        return f"posenet sigma={self.posenet_sigma:g} px, {self.posenet_resolution} resolution"


@dataclass
class _Run:
    """Everything one training run holds."""

    model_name: str
    model: PoseNet | NerPE
    device: torch.device
    channels_last: bool
    seed: int
    crops: CropDataset
    sampler: _EpochSampler
    loader: torch.utils.data.DataLoader[dict[str, Any]]
    steps_per_epoch: int
    lr: float
    lr_schedule: LrSchedule
    loss: _LossSettings
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    header: dict[str, Any]
    progress: _Progress = field(default_factory=_Progress)
    query_gen: torch.Generator | None = None

    @property
    def batch_size(self) -> int:
        return int(self.loader.batch_size or 1)


def lr_at(step: int, total: int, lr: float, schedule: LrSchedule = "hand3d") -> float:
    """Learning rate of step ``step`` (0-based) out of ``total``.

    ``"hand3d"``: ``lr`` for the first ``ceil(total / 3)`` steps, then ``lr / 10``, then
    ``lr / 100`` from step ``2 * ceil(total / 3)`` (hand3d: 1e-4 -> 1e-5 -> 1e-6 at 10k and 20k
    of 30k iterations). ``"constant"``: ``lr``.

    Examples
    --------
    >>> [f"{lr_at(s, 30_000, 1e-4):.0e}" for s in (0, 9_999, 10_000, 20_000)]
    ['1e-04', '1e-04', '1e-05', '1e-06']
    """
    if schedule == "constant":
        return lr
    third = max(1, math.ceil(total / 3))
    return lr * 0.1 ** min(2, step // third)


def _loss(
    model: nn.Module,
    images: torch.Tensor,
    keypoints: torch.Tensor,
    visibility: torch.Tensor,
    settings: _LossSettings,
    generator: torch.Generator | None,
) -> torch.Tensor:
    size = (int(images.shape[-2]), int(images.shape[-1]))
    with torch.autocast(device_type=images.device.type, dtype=torch.float16, enabled=settings.amp):
        if isinstance(model, NerPE):
            feats = model.features(images)
            grid = (int(feats.shape[-2]), int(feats.shape[-1]))
            queries = sample_queries(
                images.shape[0],
                grid,
                size,
                settings.nerpe_subcells,
                generator=generator,
                device=images.device,
            )
            pred = model.query_features(feats, queries, size)
        else:
            maps = model(images)
    # Losses in float32 whatever autocast did.
    if isinstance(model, NerPE):
        target = continuous_targets(queries, keypoints, visibility, size, sigma=settings.nerpe_sigma)
        return nerpe_loss(pred.float(), target, visibility)
    return posenet_loss(
        [m.float() for m in maps],
        keypoints,
        visibility,
        size,
        settings.posenet_sigma,
        resolution=settings.posenet_resolution,
    )


def _check_arguments(
    model_name: str,
    dataset: Sequence[Mapping[str, Any]],
    *,
    epochs: int,
    batch_size: int,
    crop_size: int,
    lr_schedule: str,
) -> int:
    """Raise on a bad argument, before any work; return the number of joints of the data."""
    if model_name not in MODEL_NAMES:
        raise ValueError(f"unknown model {model_name!r}; expected one of {', '.join(MODEL_NAMES)}")
    if len(dataset) == 0:
        raise ValueError("dataset is empty")
    if crop_size % 8:
        raise ValueError(f"crop_size must be a multiple of 8, got {crop_size!r}")
    if lr_schedule not in ("hand3d", "constant"):
        raise ValueError(f"lr_schedule must be 'hand3d' or 'constant', got {lr_schedule!r}")
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be >= 1, got {epochs!r}, {batch_size!r}")
    return int(np.asarray(dataset[0]["keypoints"]).shape[0])


def _check_crop_center(
    center_joint: int | None, schema: KeypointSchema | str | None, joints: int
) -> tuple[int | None, KeypointSchema | None]:
    """Resolve and check the crop centre (:func:`crop_center`) against the data's ``joints``."""
    if center_joint is not None and (
        isinstance(center_joint, bool) or not isinstance(center_joint, (int, np.integer))
    ):
        raise TypeError(f"center_joint must be an int, got {center_joint!r}")
    joint, resolved = crop_center(center_joint, schema)
    if resolved is not None and len(resolved) != joints:
        raise ValueError(
            f"schema {resolved.name!r} has {len(resolved)} joints, the data {joints}: "
            f"{', '.join(resolved.joints)}"
        )
    if joint is not None and not 0 <= joint < joints:
        raise ValueError(
            f"center_joint={joint} is out of range: the data has {joints} joints (0..{joints - 1})"
        )
    return joint, resolved


def _make_loader(
    crops: CropDataset, batch_size: int, seed: int, num_workers: int, pin_memory: bool
) -> tuple[_EpochSampler, torch.utils.data.DataLoader[dict[str, Any]], int]:
    """Build the seeded sampler, the DataLoader over it and the number of steps per epoch."""
    drop_last = len(crops) >= batch_size
    sampler = _EpochSampler(len(crops), seed)
    loader: torch.utils.data.DataLoader[dict[str, Any]] = torch.utils.data.DataLoader(
        crops,
        batch_size=batch_size,
        sampler=sampler,
        drop_last=drop_last,
        num_workers=num_workers,
        worker_init_fn=seed_worker,
        generator=torch.Generator().manual_seed(seed),
        pin_memory=pin_memory,
        persistent_workers=False,
    )
    return sampler, loader, len(crops) // batch_size if drop_last else 1


def _resume(run: _Run, path: Path) -> None:
    """Load model, optimizer, scaler and progress from ``last.pt`` after checking it is this run's."""
    if not path.is_file():
        raise FileNotFoundError(f"cannot resume: no checkpoint at {path}")
    payload = read_checkpoint(path)
    header = payload["header"]
    if header["model"] != run.model_name:
        raise ValueError(f"{path} holds {header['model']!r}, not {run.model_name!r}")
    config = run.model.config()
    if header.get("config") != config:
        raise ValueError(f"{path} was trained with config {header.get('config')}, not {config}")
    run.model.load_state_dict(payload["state_dict"])
    saved = payload["training_state"] or {}
    run.optimizer.load_state_dict(saved["optimizer"])
    if saved.get("scaler"):
        run.scaler.load_state_dict(saved["scaler"])
    run.progress = _Progress.from_dict(saved)


def _save(run: _Run, path: Path, *, with_state: bool) -> None:
    training_state = None
    if with_state:
        training_state = {
            **asdict(run.progress),
            "optimizer": run.optimizer.state_dict(),
            "scaler": run.scaler.state_dict() if run.scaler.is_enabled() else None,
        }
    save(run.model, path, training_state=training_state, **run.header, epochs_completed=run.progress.epoch)


def _step(run: _Run, batch: Mapping[str, torch.Tensor], total_steps: int) -> None:
    """One optimisation step; records the loss, or counts the step the gradient scaler skipped."""
    progress = run.progress
    for group in run.optimizer.param_groups:
        group["lr"] = lr_at(progress.global_step, total_steps, run.lr, run.lr_schedule)
    images = preprocess_images(batch["image"], run.device, channels_last=run.channels_last)
    keypoints = batch["keypoints"].to(run.device, non_blocking=True)
    visibility = batch["visibility"].to(run.device, non_blocking=True)
    if run.query_gen is not None:
        run.query_gen.manual_seed(run.seed * 1_000_003 + progress.global_step)
    loss = _loss(run.model, images, keypoints, visibility, run.loss, run.query_gen)
    run.optimizer.zero_grad(set_to_none=True)
    scale = run.scaler.get_scale()
    run.scaler.scale(loss).backward()
    run.scaler.step(run.optimizer)
    run.scaler.update()
    # The scaler lowers its scale exactly when it found inf / NaN gradients and skipped the update.
    skipped = run.scaler.is_enabled() and run.scaler.get_scale() < scale
    value = float(loss.detach())
    if skipped:
        progress.skipped_steps += 1
    if math.isfinite(value):
        progress.step_losses.append(value)
        progress.epoch_partial.append(value)
    elif not skipped:
        raise FloatingPointError(f"loss became {value} at step {progress.global_step}")
    progress.global_step += 1
    progress.step_in_epoch += 1


def _run_epoch(run: _Run, epochs: int, total_steps: int, show_progress: bool) -> None:
    """Run the rest of the current epoch (all of it unless resuming mid-epoch)."""
    from tqdm.auto import tqdm

    progress = run.progress
    run.crops.set_epoch(progress.epoch)
    run.sampler.set_epoch(progress.epoch, skip=progress.step_in_epoch * run.batch_size)
    run.model.train()
    bar = tqdm(
        run.loader,
        total=run.steps_per_epoch,
        initial=progress.step_in_epoch,
        desc=f"{run.model_name} epoch {progress.epoch + 1}/{epochs}",
        disable=not show_progress,
        leave=False,
        dynamic_ncols=True,
    )
    for batch in bar:
        _step(run, batch, total_steps)
        recent = np.mean(progress.epoch_partial[-20:]) if progress.epoch_partial else float("nan")
        bar.set_postfix(loss=f"{recent:.4g}", lr=f"{run.optimizer.param_groups[0]['lr']:.0e}")
    bar.close()
    running = progress.epoch_partial
    progress.epoch_losses.append(float(np.mean(running)) if running else float("nan"))
    progress.epoch_partial = []
    progress.epoch += 1
    progress.step_in_epoch = 0


def _validate(run: _Run, val_dataset: Sequence[Mapping[str, Any]]) -> None:
    metrics = validate(
        run.model,
        val_dataset,
        crop_size=run.crops.crop_size,
        batch_size=run.batch_size,
        device=run.device,
        center_joint=run.crops.center_joint,
        schema=run.crops.schema,
        channels_last=run.channels_last,
    )
    run.progress.val_epe.append(metrics.mean_epe)
    run.header["val_mean_epe"] = metrics.mean_epe
    run.header["val_median_epe"] = metrics.median_epe


def _write_history(run: _Run, path: Path) -> None:
    progress = run.progress
    history = {
        "model": run.model_name,
        "train_set": run.header["train_set"],
        "seed": run.seed,
        "device": str(run.device),
        "amp": run.loss.amp,
        "channels_last": run.channels_last,
        "epochs": run.header["epochs"],
        "schema": run.header["schema"],
        "center_joint": run.header["center_joint"],
        "steps_per_epoch": run.steps_per_epoch,
        "train_seconds": progress.train_seconds,
        "skipped_steps": progress.skipped_steps,
        "epoch_losses": progress.epoch_losses,
        "val_mean_epe": progress.val_epe,
        "step_losses": progress.step_losses,
    }
    path.write_text(json.dumps(history, indent=1))


def _plot_losses(
    path: Path, step_losses: list[float], epoch_losses: list[float], steps_per_epoch: int
) -> None:
    # The object-oriented Agg API: no pyplot, no global backend switch, safe in threads.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    if step_losses:
        ax.plot(np.arange(1, len(step_losses) + 1), step_losses, lw=0.8, alpha=0.6, label="step")
    if epoch_losses:
        ax.plot(
            np.arange(1, len(epoch_losses) + 1) * steps_per_epoch,
            epoch_losses,
            "o-",
            lw=1.5,
            label="epoch mean",
        )
    if step_losses and min(step_losses) > 0:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)


def train(
    model_name: str,
    dataset: Sequence[Mapping[str, Any]],
    *,
    epochs: int,
    batch_size: int = 8,
    lr: float | None = None,
    device: str | torch.device = "cpu",
    seed: int = 0,
    out_dir: str | os.PathLike[str],
    resume: bool = False,
    val_dataset: Sequence[Mapping[str, Any]] | None = None,
    train_set: str | None = None,
    crop_size: int = CROP_SIZE,
    augment: bool = True,
    lr_schedule: LrSchedule = "hand3d",
    num_workers: int = 0,
    amp: bool | None = None,
    channels_last: bool | None = None,
    model_kwargs: Mapping[str, Any] | None = None,
    center_joint: int | None = None,
    schema: KeypointSchema | str | None = None,
    posenet_loss_resolution: Literal["crop", "map"] = "crop",
    posenet_sigma: float | None = None,
    nerpe_subcells: int = 4,
    nerpe_sigma: float = 0.06,
    progress: bool = True,
    info: Mapping[str, Any] | None = None,
) -> TrainResult:
    """Train PoseNet (dense or depthwise) or NerPE on hand3d crops of a keypoint dataset.

    Parameters
    ----------
    model_name : {"posenet-dense", "posenet-depthwise", "nerpe"}
        Which model to build (:func:`~keypoint_corrupt.models.build_model`).
    dataset : sequence of mapping
        Items with ``image`` (RGB uint8 ``H x W x 3``), ``keypoints`` (``J x 2``),
        ``visibility`` (``J``); the crop centre is found by ``schema`` or ``center_joint``.
    epochs : int
        Total epochs (when resuming: the total, not the number still to run).
    batch_size : int
        Images per step (hand3d: 8). The last incomplete batch of an epoch is dropped.
    lr : float, optional
        Initial Adam learning rate; default the published one: 1e-4 for PoseNet (hand3d),
        1e-3 for NerPE (its released configuration).
    device : str or torch.device
        ``"cuda"`` or ``"cpu"``. On CUDA, mixed precision (float16 autocast with a gradient
        scaler) and channels-last memory are on unless ``amp`` / ``channels_last`` say no.
    seed : int
        Seeds initialisation, data order, augmentation and NerPE's query sampling.
    out_dir : str or path-like
        Receives ``last.pt`` (after every epoch and on interrupt), ``model.pt``,
        ``loss_curve.png`` and ``history.json``.
    resume : bool
        Continue from ``out_dir/last.pt`` (model, optimizer, scaler, position in the epoch,
        history). Its model name and config must match.
    val_dataset : sequence of mapping, optional
        Evaluated after every epoch with :func:`~keypoint_corrupt.models.validate` (hand3d
        mean and median EPE, source pixels).
    train_set : str, optional
        Recorded in checkpoint headers (``"S-train"`` or ``"S-train*"``).
    crop_size : int
        Side of the hand crops fed to the model (256 as hand3d; a multiple of 8).
    augment : bool
        hand3d's label and crop-centre noise (:class:`CropDataset`).
    lr_schedule : {"hand3d", "constant"}
        ``"hand3d"``: ``lr``, ``lr / 10``, ``lr / 100`` over thirds of the total steps
        (:func:`lr_at`).
    num_workers : int
        DataLoader workers.
    amp, channels_last : bool, optional
        Override the CUDA defaults. ``amp=True`` means float16 autocast with a gradient
        scaler on any device (on CPU too, slowly); steps whose gradients overflow are
        skipped by the scaler and counted (``TrainResult.skipped_steps``).
    model_kwargs : mapping, optional
        Constructor arguments (``num_keypoints`` defaults to the dataset's J).
    center_joint : int, optional
        Joint index the crop is centred on; must be a joint of the data
        (``0 <= center_joint < J``), else ``ValueError`` before any work. Exclusive with
        ``schema``; neither: 12, the middle MCP in hand3d's (RHD / STB) order.
    schema : KeypointSchema or str, optional
        The data's joint order (a preset name or a schema, e.g. a dataset's ``.schema``):
        the crop centres on the schema's visible ``crop_anchor`` joints, found by name, so
        ``"hand21"`` data (FreiHAND, OneHand10K, Panoptic) is centred on its middle MCP, not
        on its joint 12 (the middle fingertip). It must have the data's J joints. Training
        crops and validation crops both use it. Passing it with ``center_joint`` is a
        ``ValueError`` naming both. The headers and ``history.json`` record ``schema`` (its
        name) and ``center_joint`` (the one in use; ``None`` with a schema).
    posenet_loss_resolution : {"crop", "map"}
        :func:`~keypoint_corrupt.models.heatmaps.posenet_loss` resolution (hand3d: crop).
    posenet_sigma : float, optional
        Score-map target width in crop pixels; default hand3d's 25 px on a 256 crop,
        scaled with ``crop_size``.
    nerpe_subcells, nerpe_sigma : int, float
        NerPE query sampling (:func:`~keypoint_corrupt.models.nerpe.sample_queries`) and
        target width (normalised units).
    progress : bool
        Show a tqdm progress bar with the running loss.
    info : mapping, optional
        Extra plain values for the checkpoint headers (e.g. the data path).

    Returns
    -------
    TrainResult

    Raises
    ------
    KeyboardInterrupt
        Re-raised after ``last.pt`` has been written, so the run can be resumed.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> data = [{"image": rng.integers(0, 255, (96, 96, 3), dtype=np.uint8),
    ...          "keypoints": rng.uniform(30, 66, (21, 2)), "visibility": np.ones(21, bool)}] * 2
    >>> import tempfile
    >>> result = train("posenet-dense", data, epochs=1, batch_size=2, crop_size=32,
    ...                out_dir=tempfile.mkdtemp(), progress=False)
    >>> len(result.step_losses), result.final.name
    (1, 'model.pt')
    """
    started = time.perf_counter()
    joints = _check_arguments(
        model_name,
        dataset,
        epochs=epochs,
        batch_size=batch_size,
        crop_size=crop_size,
        lr_schedule=lr_schedule,
    )
    center_joint, crop_schema = _check_crop_center(center_joint, schema, joints)
    lr = DEFAULT_LR[model_name] if lr is None else lr
    dev = resolve_device(device)
    amp = dev.type == "cuda" if amp is None else bool(amp)
    channels_last = dev.type == "cuda" if channels_last is None else bool(channels_last)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    last_path, final_path = out / LAST_CHECKPOINT, out / FINAL_MODEL
    settings = _LossSettings(
        amp=amp,
        posenet_resolution=posenet_loss_resolution,
        posenet_sigma=float(posenet_sigma) if posenet_sigma is not None else 25.0 * crop_size / CROP_SIZE,
        nerpe_subcells=nerpe_subcells,
        nerpe_sigma=nerpe_sigma,
    )

    kwargs = dict(model_kwargs or {})
    kwargs.setdefault("num_keypoints", joints)
    torch.manual_seed(seed)
    model = build_model(model_name, **kwargs).to(dev)
    if channels_last:
        channels_last_memory(model)
    crops = CropDataset(
        dataset, crop_size, augment=augment, seed=seed, center_joint=center_joint, schema=crop_schema
    )
    sampler, loader, steps_per_epoch = _make_loader(crops, batch_size, seed, num_workers, dev.type == "cuda")
    run = _Run(
        model_name=model_name,
        model=model,
        device=dev,
        channels_last=channels_last,
        seed=seed,
        crops=crops,
        sampler=sampler,
        loader=loader,
        steps_per_epoch=steps_per_epoch,
        lr=lr,
        lr_schedule=lr_schedule,
        loss=settings,
        # Fused Adam (one kernel per step), created after the move so a resumed state lands on the device.
        optimizer=torch.optim.Adam(model.parameters(), lr=lr, fused=True),
        scaler=torch.amp.GradScaler(dev.type, enabled=amp),
        header={
            "train_set": train_set,
            "seed": seed,
            "crop_size": crop_size,
            "batch_size": batch_size,
            "lr": lr,
            "lr_schedule": lr_schedule,
            "augment": augment,
            "epochs": epochs,
            "schema": None if crop_schema is None else crop_schema.name,
            "center_joint": center_joint,
            "loss": settings.describe(model_name),
            **dict(info or {}),
        },
        query_gen=torch.Generator(device=dev) if isinstance(model, NerPE) else None,
    )
    if resume:
        _resume(run, last_path)

    total_steps = steps_per_epoch * epochs
    try:
        while run.progress.epoch < epochs:
            epoch_start = time.perf_counter()
            try:
                _run_epoch(run, epochs, total_steps, progress)
            finally:
                run.progress.train_seconds += time.perf_counter() - epoch_start
            if val_dataset is not None:
                _validate(run, val_dataset)
            _save(run, last_path, with_state=True)
    except KeyboardInterrupt:
        _save(run, last_path, with_state=True)  # resumable mid-epoch
        raise

    model.eval()
    _save(run, final_path, with_state=False)
    curve, history = out / "loss_curve.png", out / "history.json"
    _plot_losses(curve, run.progress.step_losses, run.progress.epoch_losses, steps_per_epoch)
    _write_history(run, history)
    return TrainResult(
        model=model,
        out_dir=out,
        checkpoint=last_path,
        final=final_path,
        loss_curve=curve,
        history=history,
        step_losses=list(run.progress.step_losses),
        epoch_losses=list(run.progress.epoch_losses),
        val_epe=list(run.progress.val_epe),
        skipped_steps=run.progress.skipped_steps,
        seconds=time.perf_counter() - started,
    )
