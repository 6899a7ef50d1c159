"""Training loop, prediction and EPE evaluation for the reference models.

:func:`train` is the whole of ``keypoint-corrupt train``: the command only parses its
options and builds the dataset. A dataset is any map-style sequence whose items are dicts
with ``image`` (RGB uint8 ``H x W x 3``), ``keypoints`` (``J x 2`` float pixels) and
``visibility`` (``J`` bools); every item is cropped with hand3d's ground-truth crop
(:func:`~keypoint_corrupt.crop.hand_crop`) before it reaches the model.

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
import random
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from keypoint_corrupt.crop import CENTER_JOINT, hand_crop
from keypoint_corrupt.models._torch import nn, resolve_device, torch
from keypoint_corrupt.models.checkpoint import MODEL_NAMES, build_model, read_checkpoint, save
from keypoint_corrupt.models.heatmaps import Align, DecodeMethod, decode_score_maps, posenet_loss
from keypoint_corrupt.models.nerpe import NerPE, continuous_targets, nerpe_loss, sample_queries
from keypoint_corrupt.models.posenet import PoseNet

__all__ = [
    "CropDataset",
    "TrainResult",
    "evaluate",
    "predict",
    "seed_worker",
    "train",
]

#: hand3d's training augmentation: truncated-normal noise (std, px) on the labels and on the crop centre.
KEYPOINT_NOISE_STD = 2.5
CENTER_NOISE_STD = 20.0
#: Published initial learning rates (hand3d's PoseNet training; NerPE's released config).
DEFAULT_LR = {"posenet-dense": 1e-4, "posenet-depthwise": 1e-4, "nerpe": 1e-3}
LAST_CHECKPOINT = "last.pt"
FINAL_MODEL = "model.pt"


def _truncated_normal(rng: np.random.Generator, std: float, shape: tuple[int, ...]) -> np.ndarray:
    # TensorFlow's truncated_normal: redraw values beyond two standard deviations.
    out = rng.normal(0.0, std, shape)
    bad = np.abs(out) > 2 * std
    while bad.any():
        out[bad] = rng.normal(0.0, std, int(bad.sum()))
        bad = np.abs(out) > 2 * std
    return out


class CropDataset:
    """Wrap a keypoint dataset into hand3d crops ready for batching.

    Parameters
    ----------
    dataset : sequence of mapping
        Items with ``image`` (RGB uint8 ``H x W x 3``), ``keypoints`` (``J x 2``) and
        ``visibility`` (``J``).
    crop_size : int
        Side of the crops.
    augment : bool
        hand3d's training noise: keypoints jittered by a truncated normal (std 2.5 px)
        and the crop centre by one of std 20 px, both in source pixels.
    seed : int
        Seed of the per-sample augmentation (with :meth:`set_epoch` and the index).
    center_joint : int
        See :func:`~keypoint_corrupt.crop.hand_crop`.

    Examples
    --------
    >>> item = {"image": np.zeros((120, 160, 3), np.uint8),
    ...         "keypoints": np.full((21, 2), 60.0), "visibility": np.ones(21, bool)}
    >>> sample = CropDataset([item], 64)[0]
    >>> sample["image"].shape, sample["keypoints"].dtype
    ((64, 64, 3), dtype('float32'))
    """

    def __init__(
        self,
        dataset: Sequence[Mapping[str, Any]],
        crop_size: int = 256,
        *,
        augment: bool = False,
        seed: int = 0,
        center_joint: int = CENTER_JOINT,
    ):
        self.dataset = dataset
        self.crop_size = int(crop_size)
        self.augment = bool(augment)
        self.seed = int(seed)
        self.center_joint = int(center_joint)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation draw of ``epoch``."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.dataset[index]
        image = np.asarray(item["image"])
        if image.dtype != np.uint8:
            raise TypeError(f"dataset item {index}: image must be uint8, got {image.dtype}")
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"dataset item {index}: image must be H x W x 3 RGB, got shape {image.shape}")
        keypoints = np.asarray(item["keypoints"], dtype=np.float64)
        visibility = np.asarray(item.get("visibility", np.ones(len(keypoints), bool))).astype(bool)
        offset = None
        if self.augment:
            rng = np.random.default_rng([self.seed, self.epoch, int(index)])
            keypoints = keypoints + _truncated_normal(rng, KEYPOINT_NOISE_STD, keypoints.shape)
            offset = _truncated_normal(rng, CENTER_NOISE_STD, (2,))
        crop = hand_crop(
            image, keypoints, visibility, self.crop_size, center_joint=self.center_joint, center_offset=offset
        )
        return {
            "image": np.ascontiguousarray(crop.image),
            "keypoints": crop.keypoints.astype(np.float32),
            "visibility": crop.visibility,
            "center": crop.center.astype(np.float64),
            "scale": np.float64(crop.scale),
            "index": int(index),
        }


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: seed NumPy and ``random`` from the worker's torch seed.

    The crops' own randomness is seeded per sample; this covers randomness inside the
    wrapped dataset (e.g. on-the-fly corruptions).
    """
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)  # noqa: NPY002 (third-party code may draw from the legacy global state)
    random.seed(seed)


class _EpochSampler(torch.utils.data.Sampler):
    """A permutation fixed by (seed, epoch), optionally skipping the first ``skip`` samples (resume)."""

    def __init__(self, n: int, seed: int):
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
    seconds: float = 0.0


def _to_input(images: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    # uint8 B x H x W x 3 travels to the device (4x less than float), then is scaled there.
    x = images.to(device, non_blocking=True).permute(0, 3, 1, 2).float() / 255.0 - 0.5
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x.contiguous()


def _adam(params: list[torch.Tensor], lr: float) -> torch.optim.Optimizer:
    # Fused Adam: one kernel per step instead of a dozen elementwise passes over 17.5 M weights.
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):  # torch < 2.4 fuses on CUDA only
        return torch.optim.Adam(params, lr=lr)


def _grad_scaler(enabled: bool) -> Any:
    if hasattr(torch, "amp") and hasattr(torch.amp, "GradScaler"):
        return torch.amp.GradScaler("cuda", enabled=enabled)
    return torch.cuda.amp.GradScaler(enabled=enabled)  # torch < 2.3


def _lr_at(step: int, total: int, lr: float, schedule: str) -> float:
    if schedule == "constant":
        return lr
    # hand3d: 1e-4 -> 1e-5 -> 1e-6 over thirds of training (10k / 20k of 30k iterations).
    third = max(1, math.ceil(total / 3))
    return lr * 0.1 ** min(2, step // third)


def _loss(
    model: nn.Module,
    images: torch.Tensor,
    keypoints: torch.Tensor,
    visibility: torch.Tensor,
    *,
    amp: bool,
    generator: torch.Generator | None,
    posenet_resolution: Literal["crop", "map"],
    posenet_sigma: float,
    nerpe_subcells: int,
    nerpe_sigma: float,
) -> torch.Tensor:
    size = tuple(images.shape[-2:])
    with torch.autocast(device_type=images.device.type, dtype=torch.float16, enabled=amp):
        if isinstance(model, NerPE):
            feats = model.features(images)
            queries = sample_queries(
                images.shape[0],
                feats.shape[-2:],
                size,
                nerpe_subcells,
                generator=generator,
                device=images.device,
            )
            pred = model.query_features(feats, queries, size)
        else:
            maps = model(images)
    # Losses in float32 whatever autocast did.
    if isinstance(model, NerPE):
        target = continuous_targets(queries, keypoints, visibility, size, sigma=nerpe_sigma)
        return nerpe_loss(pred.float(), target, visibility)
    return posenet_loss(
        [m.float() for m in maps], keypoints, visibility, size, posenet_sigma, resolution=posenet_resolution
    )


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
    crop_size: int = 256,
    augment: bool = True,
    lr_schedule: Literal["hand3d", "constant"] = "hand3d",
    num_workers: int = 0,
    amp: bool | None = None,
    channels_last: bool | None = None,
    model_kwargs: Mapping[str, Any] | None = None,
    center_joint: int = CENTER_JOINT,
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
        ``visibility`` (``J``); keypoints in hand3d's joint order (see ``center_joint``).
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
        Evaluated after every epoch with :func:`evaluate` (hand3d mean EPE, source pixels).
    train_set : str, optional
        Recorded in checkpoint headers (``"S-train"`` or ``"S-train*"``).
    crop_size : int
        Side of the hand crops fed to the model (256 as hand3d; a multiple of 8).
    augment : bool
        hand3d's label and crop-centre noise (:class:`CropDataset`).
    lr_schedule : {"hand3d", "constant"}
        ``"hand3d"``: ``lr``, ``lr / 10``, ``lr / 100`` over thirds of the total steps.
    num_workers : int
        DataLoader workers.
    amp, channels_last : bool, optional
        Override the CUDA defaults.
    model_kwargs : mapping, optional
        Constructor arguments (``num_keypoints`` defaults to the dataset's J).
    center_joint : int
        Joint the crop is centred on (12 = middle MCP in hand3d's order).
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
    if lr is None:
        lr = DEFAULT_LR[model_name]
    dev = resolve_device(device)
    amp = dev.type == "cuda" if amp is None else bool(amp)
    channels_last = dev.type == "cuda" if channels_last is None else bool(channels_last)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    last_path, final_path = out / LAST_CHECKPOINT, out / FINAL_MODEL

    sigma = float(posenet_sigma) if posenet_sigma is not None else 25.0 * crop_size / 256
    kwargs = dict(model_kwargs or {})
    kwargs.setdefault("num_keypoints", int(np.asarray(dataset[0]["keypoints"]).shape[0]))
    torch.manual_seed(seed)
    model = build_model(model_name, **kwargs)
    header_info: dict[str, Any] = {
        "train_set": train_set,
        "seed": seed,
        "crop_size": crop_size,
        "batch_size": batch_size,
        "lr": lr,
        "lr_schedule": lr_schedule,
        "augment": augment,
        "epochs": epochs,
        "loss": f"posenet sigma={sigma:g} px, {posenet_loss_resolution} resolution"
        if model_name != "nerpe"
        else f"nerpe sigma={nerpe_sigma:g}, {nerpe_subcells}x{nerpe_subcells} sub-cells",
        **dict(info or {}),
    }

    crops = CropDataset(dataset, crop_size, augment=augment, seed=seed, center_joint=center_joint)
    drop_last = len(crops) >= batch_size
    steps_per_epoch = len(crops) // batch_size if drop_last else 1
    total_steps = steps_per_epoch * epochs
    sampler = _EpochSampler(len(crops), seed)
    loader = torch.utils.data.DataLoader(
        crops,
        batch_size=batch_size,
        sampler=sampler,
        drop_last=drop_last,
        num_workers=num_workers,
        worker_init_fn=seed_worker,
        generator=torch.Generator().manual_seed(seed),
        pin_memory=dev.type == "cuda",
        persistent_workers=False,
    )

    model.to(dev)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    # Created after the move, so a resumed optimizer state lands on the training device.
    optimizer = _adam(list(model.parameters()), lr)
    scaler = _grad_scaler(enabled=amp and dev.type == "cuda")
    state: dict[str, Any] = {
        "epoch": 0,
        "step_in_epoch": 0,
        "global_step": 0,
        "step_losses": [],
        "epoch_losses": [],
        "val_epe": [],
        "epoch_partial": [],  # losses of the epoch in progress (kept across an interrupt)
        "skipped_steps": 0,  # mixed precision: updates the gradient scaler skipped
        "train_seconds": 0.0,
    }
    if resume:
        if not last_path.is_file():
            raise FileNotFoundError(f"cannot resume: no checkpoint at {last_path}")
        payload = read_checkpoint(last_path)
        header = payload["header"]
        if header["model"] != model_name:
            raise ValueError(f"{last_path} holds {header['model']!r}, not {model_name!r}")
        if header.get("config") != model.config():
            raise ValueError(
                f"{last_path} was trained with config {header.get('config')}, not {model.config()}"
            )
        model.load_state_dict(payload["state_dict"])
        saved = payload["training_state"] or {}
        optimizer.load_state_dict(saved["optimizer"])
        if saved.get("scaler"):
            scaler.load_state_dict(saved["scaler"])
        state.update({k: saved[k] for k in state if k in saved})

    query_gen = torch.Generator(device=dev) if isinstance(model, NerPE) else None

    def checkpoint(path: Path, with_state: bool) -> None:
        training_state = None
        if with_state:
            training_state = {
                **state,
                "optimizer": optimizer.state_dict(),
                "scaler": scaler.state_dict() if scaler.is_enabled() else None,
            }
        save(model, path, training_state=training_state, **header_info, epochs_completed=state["epoch"])

    from tqdm.auto import tqdm

    epoch_start = time.perf_counter()
    try:
        while state["epoch"] < epochs:
            epoch = state["epoch"]
            crops.set_epoch(epoch)
            sampler.set_epoch(epoch, skip=state["step_in_epoch"] * batch_size)
            model.train()
            epoch_start = time.perf_counter()
            running: list[float] = state["epoch_partial"]
            bar = tqdm(
                loader,
                total=steps_per_epoch,
                initial=state["step_in_epoch"],
                desc=f"{model_name} epoch {epoch + 1}/{epochs}",
                disable=not progress,
                leave=False,
                dynamic_ncols=True,
            )
            for batch in bar:
                for group in optimizer.param_groups:
                    group["lr"] = _lr_at(state["global_step"], total_steps, lr, lr_schedule)
                images = _to_input(batch["image"], dev, channels_last)
                keypoints = batch["keypoints"].to(dev, non_blocking=True)
                visibility = batch["visibility"].to(dev, non_blocking=True)
                if query_gen is not None:
                    query_gen.manual_seed(seed * 1_000_003 + state["global_step"])
                loss = _loss(
                    model,
                    images,
                    keypoints,
                    visibility,
                    amp=amp,
                    generator=query_gen,
                    posenet_resolution=posenet_loss_resolution,
                    posenet_sigma=sigma,
                    nerpe_subcells=nerpe_subcells,
                    nerpe_sigma=nerpe_sigma,
                )
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                value = float(loss.detach())
                if math.isfinite(value):
                    state["step_losses"].append(value)
                    running.append(value)
                elif scaler.is_enabled():
                    # float16 overflow: the scaler has skipped this update and lowered its scale.
                    state["skipped_steps"] += 1
                else:
                    raise FloatingPointError(f"loss became {value} at step {state['global_step']}")
                state["global_step"] += 1
                state["step_in_epoch"] += 1
                recent = np.mean(running[-20:]) if running else float("nan")
                bar.set_postfix(loss=f"{recent:.4g}", lr=f"{optimizer.param_groups[0]['lr']:.0e}")
            bar.close()
            state["train_seconds"] += time.perf_counter() - epoch_start
            state["epoch_losses"].append(float(np.mean(running)) if running else float("nan"))
            state["epoch_partial"] = []
            state["epoch"] += 1
            state["step_in_epoch"] = 0
            if val_dataset is not None:
                metrics = evaluate(
                    model,
                    val_dataset,
                    crop_size=crop_size,
                    batch_size=batch_size,
                    device=dev,
                    center_joint=center_joint,
                    channels_last=channels_last,
                )
                state["val_epe"].append(metrics["mean_epe"])
                header_info["val_mean_epe"] = metrics["mean_epe"]
                header_info["val_median_epe"] = metrics["median_epe"]
            checkpoint(last_path, with_state=True)
    except KeyboardInterrupt:
        state["train_seconds"] += time.perf_counter() - epoch_start
        checkpoint(last_path, with_state=True)  # resumable mid-epoch
        raise

    model.eval()
    checkpoint(final_path, with_state=False)
    curve = out / "loss_curve.png"
    _plot_losses(curve, state["step_losses"], state["epoch_losses"], steps_per_epoch)
    history = out / "history.json"
    history.write_text(
        json.dumps(
            {
                "model": model_name,
                "train_set": train_set,
                "seed": seed,
                "device": str(dev),
                "amp": amp,
                "channels_last": channels_last,
                "epochs": epochs,
                "steps_per_epoch": steps_per_epoch,
                "train_seconds": state["train_seconds"],
                "skipped_steps": state["skipped_steps"],
                "epoch_losses": state["epoch_losses"],
                "val_mean_epe": state["val_epe"],
                "step_losses": state["step_losses"],
            },
            indent=1,
        )
    )
    return TrainResult(
        model=model,
        out_dir=out,
        checkpoint=last_path,
        final=final_path,
        loss_curve=curve,
        history=history,
        step_losses=list(state["step_losses"]),
        epoch_losses=list(state["epoch_losses"]),
        val_epe=list(state["val_epe"]),
        seconds=time.perf_counter() - started,
    )


@torch.no_grad()
def predict(
    model: nn.Module,
    dataset: Sequence[Mapping[str, Any]],
    *,
    crop_size: int = 256,
    batch_size: int = 16,
    device: str | torch.device = "cpu",
    center_joint: int = CENTER_JOINT,
    method: DecodeMethod = "argmax",
    align: Align = "tf1",
    nerpe_mode: Literal["standard", "progressive"] = "standard",
    channels_last: bool = False,
    num_workers: int = 0,
) -> np.ndarray:
    """Predict keypoints in source pixels, on hand3d's ground-truth crops.

    Parameters
    ----------
    model : PoseNet or NerPE
        The model (moved to ``device`` by the caller).
    dataset : sequence of mapping
        Items as for :func:`train` (the ground-truth keypoints place the crop).
    crop_size : int
        Crop side fed to the model.
    batch_size, device, num_workers, channels_last
        Inference settings.
    center_joint : int
        Crop centre joint.
    method, align : str
        PoseNet decoding (:func:`~keypoint_corrupt.models.heatmaps.decode_score_maps`;
        hand3d: ``"argmax"``, ``"tf1"``).
    nerpe_mode : {"standard", "progressive"}
        NerPE decoding at one point per crop pixel.

    Returns
    -------
    numpy.ndarray
        ``N x J x 2`` (x, y) in source pixels.
    """
    dev = resolve_device(device)
    crops = CropDataset(dataset, crop_size, augment=False, center_joint=center_joint)
    loader = torch.utils.data.DataLoader(crops, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    was_training = model.training
    model.eval()
    out: list[np.ndarray] = []
    try:
        for batch in loader:
            images = _to_input(batch["image"], dev, channels_last)
            if isinstance(model, NerPE):
                coords = model.decode(images, crop_size, nerpe_mode)
            elif isinstance(model, PoseNet):
                coords, _ = decode_score_maps(model(images)[-1], crop_size, method, align=align)
            else:
                raise TypeError(f"cannot predict with {type(model).__name__}")
            coords = coords.double().cpu().numpy()
            scale = batch["scale"].numpy()[:, None, None]
            center = batch["center"].numpy()[:, None, :]
            out.append((coords - 0.5 * crop_size) / scale + center)
    finally:
        model.train(was_training)
    return np.concatenate(out, 0)


def evaluate(
    model: nn.Module, dataset: Sequence[Mapping[str, Any]], **predict_kwargs: Any
) -> dict[str, float]:
    """hand3d's 2D errors on ground-truth crops, in source pixels.

    Parameters
    ----------
    model : PoseNet or NerPE
        The model.
    dataset : sequence of mapping
        Items with ``image``, ``keypoints`` and ``visibility``.
    **predict_kwargs
        Passed to :func:`predict`.

    Returns
    -------
    dict
        ``mean_epe`` and ``median_epe``: averages over joints of each joint's mean and
        median error over the images where it is visible (hand3d's reported figures);
        ``pooled_mean_epe``: mean over all visible joints; ``count``: visible joints.
    """
    pred = predict(model, dataset, **predict_kwargs)
    gt = np.stack([np.asarray(item["keypoints"], np.float64) for item in dataset])
    vis = np.stack(
        [np.asarray(item.get("visibility", np.ones(len(gt[0]), bool))).astype(bool) for item in dataset]
    )
    err = np.linalg.norm(pred - gt, axis=-1)
    per_joint_mean = [err[vis[:, j], j].mean() for j in range(err.shape[1]) if vis[:, j].any()]
    per_joint_median = [np.median(err[vis[:, j], j]) for j in range(err.shape[1]) if vis[:, j].any()]
    return {
        "mean_epe": float(np.mean(per_joint_mean)) if per_joint_mean else float("nan"),
        "median_epe": float(np.mean(per_joint_median)) if per_joint_median else float("nan"),
        "pooled_mean_epe": float(err[vis].mean()) if vis.any() else float("nan"),
        "count": int(vis.sum()),
    }
