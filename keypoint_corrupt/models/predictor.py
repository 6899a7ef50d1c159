"""The one inference path of the bundled models: crops in, keypoints in source pixels out.

:class:`ModelPredictor` runs a PoseNet or NerPE on hand3d's ground-truth crops: it cuts the
crops (:class:`~keypoint_corrupt.crop.CropInfo`), scales them
(:func:`~keypoint_corrupt.models.posenet.preprocess_images`), runs the network, decodes
(PoseNet: score maps upsampled to the crop and argmax, as hand3d; NerPE: its confidence field
at one point per crop pixel) and maps the keypoints back to original-image pixels by dividing
by the crop scale. It is a ``predict(images, crops)`` callable for the robustness benchmark
(:func:`keypoint_corrupt.benchmark.evaluate`), and :func:`predict` / :func:`validate` (the
validation of :func:`~keypoint_corrupt.models.train`) run datasets through it.

For speed, the benchmark also uses two extra members: the picklable
:attr:`ModelPredictor.preparer` cuts the crops in DataLoader workers, and
:meth:`ModelPredictor.predict_prepared` uploads a (pinned) uint8 batch, runs the network and
decoding on the device and starts an asynchronous copy of the result, so the next batch is
prepared while the GPU works. GPU options: channels-last memory, bf16 autocast,
``torch.compile`` and CUDA graphs.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from keypoint_corrupt.crop import CROP_SIZE, CropInfo
from keypoint_corrupt.metrics import KeypointMetrics, keypoint_metrics
from keypoint_corrupt.models._torch import channels_last as channels_last_memory
from keypoint_corrupt.models._torch import nn, resolve_device, torch
from keypoint_corrupt.models.checkpoint import load
from keypoint_corrupt.models.data import CropDataset
from keypoint_corrupt.models.heatmaps import DecodeMethod, decode_score_maps
from keypoint_corrupt.models.nerpe import NerPE
from keypoint_corrupt.models.posenet import PoseNet, preprocess_images
from keypoint_corrupt.schema import KeypointSchema

__all__ = [
    "PRECISIONS",
    "CropPreparer",
    "ModelPredictor",
    "predict",
    "validate",
]

PRECISIONS = ("fp32", "bf16")
NerPEMode = Literal["standard", "progressive"]


@dataclass(frozen=True)
class CropPreparer:
    """Cut hand3d's crop (uint8 ``size x size x 3``): what DataLoader workers run.

    ``center`` and ``scale`` are one image's entries of a :class:`~keypoint_corrupt.crop.CropInfo`
    for ``CROP_SIZE`` (256), as the benchmark computes them; the crop covers that region at
    ``size`` pixels.

    Examples
    --------
    >>> CropPreparer(64)(np.zeros((480, 640, 3), np.uint8), (320.0, 240.0), 2.0).shape
    (64, 64, 3)
    """

    size: int = CROP_SIZE

    def __call__(self, image: np.ndarray, center: Any, scale: float) -> np.ndarray:
        """Crop one RGB uint8 image."""
        info = CropInfo(np.asarray([center], np.float64), np.asarray([scale], np.float64))
        return np.ascontiguousarray(info.crop([image], self.size)[0])


class _Pending:
    """A batch launched on the device; :meth:`result` waits for it and maps back to source pixels."""

    def __init__(self, coords: torch.Tensor, crops: CropInfo, size: int) -> None:
        self.crops = crops
        self.size = size
        self.event: torch.cuda.Event | None = None
        if coords.device.type == "cuda":
            host = torch.empty(coords.shape, dtype=coords.dtype, pin_memory=True)
            host.copy_(coords, non_blocking=True)
            self.event = torch.cuda.Event()
            self.event.record()
            self.coords = host
        else:
            self.coords = coords

    def result(self) -> np.ndarray:
        if self.event is not None:
            self.event.synchronize()
        return self.crops.to_source(self.coords.double().numpy(), self.size)


class ModelPredictor:
    """A bundled model as a ``predict(images, crops)`` callable.

    Parameters
    ----------
    model : PoseNet or NerPE
        The network (moved to ``device`` and put in eval mode).
    device : str or torch.device
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
    crop_size : int
        Side of the crop fed to the network (hand3d: 256; a multiple of 8).
    precision : {"fp32", "bf16"}
        ``"bf16"``: bfloat16 autocast around the network; decoding stays in float32.
    channels_last : bool, optional
        Channels-last memory format (default: on CUDA).
    compile : bool
        ``torch.compile`` the network + decoding.
    cuda_graphs : bool
        Replay CUDA graphs captured per batch shape (CUDA only; falls back to eager with a
        warning if capture fails). On CUDA, ``torch.backends.cudnn.benchmark`` is switched on
        (crop shapes are fixed); PyTorch's default TF32 convolutions stay as they are.
    nerpe_mode : {"standard", "progressive"}
        NerPE decoding at one point per crop pixel: dense argmax or coarse-to-fine.
    posenet_method : {"argmax", "quadratic"}
        PoseNet decoding (:func:`~keypoint_corrupt.models.decode_score_maps`; hand3d: argmax).
    name : str, optional
        Label in reports (default: the model's registry name).
    cudnn_benchmark : bool
        On CUDA, switch on ``torch.backends.cudnn.benchmark`` (process-wide; fastest kernels for
        the fixed crop shapes, not bit-reproducible). The benchmark's :func:`load_predictor`
        asks for it; :func:`predict` and :func:`validate` leave the setting alone.

    Notes
    -----
    Call it as ``predictor(images, crops)`` (``crops``: a :class:`~keypoint_corrupt.crop.CropInfo`);
    it returns ``B x J x 2`` keypoints in original-image pixels.

    Examples
    --------
    >>> from keypoint_corrupt.crop import CropInfo
    >>> pred = ModelPredictor(PoseNet("dense", refinement_stages=0), device="cpu", crop_size=64)
    >>> images = np.zeros((2, 120, 160, 3), np.uint8)
    >>> crops = CropInfo(np.array([[80.0, 60.0], [70.0, 50.0]]), np.array([2.0, 3.0]))
    >>> pred(images, crops).shape
    (2, 21, 2)
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        device: str | torch.device = "auto",
        crop_size: int = CROP_SIZE,
        precision: str = "fp32",
        channels_last: bool | None = None,
        compile: bool = False,
        cuda_graphs: bool = False,
        nerpe_mode: NerPEMode = "standard",
        posenet_method: DecodeMethod = "argmax",
        name: str | None = None,
        cudnn_benchmark: bool = False,
    ) -> None:
        if not isinstance(model, (PoseNet, NerPE)):
            raise TypeError(f"model must be a PoseNet or NerPE, got {type(model).__name__}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        if isinstance(crop_size, bool) or not isinstance(crop_size, int) or crop_size < 8 or crop_size % 8:
            raise ValueError(f"crop_size must be a positive multiple of 8, got {crop_size!r}")
        if nerpe_mode not in ("standard", "progressive"):
            raise ValueError(f"nerpe_mode must be 'standard' or 'progressive', got {nerpe_mode!r}")
        if posenet_method not in ("argmax", "quadratic"):
            raise ValueError(f"posenet_method must be 'argmax' or 'quadratic', got {posenet_method!r}")
        self.device = resolve_device(device)
        self.device_type = self.device.type
        self.crop_size = crop_size
        self.precision = precision
        self.channels_last = self.device.type == "cuda" if channels_last is None else bool(channels_last)
        self.compile = bool(compile)
        self.cuda_graphs = bool(cuda_graphs) and self.device.type == "cuda"
        if cuda_graphs and self.device.type != "cuda":
            warnings.warn("cuda_graphs needs a CUDA device; running eagerly", stacklevel=2)
        self.nerpe_mode: NerPEMode = nerpe_mode
        self.posenet_method: DecodeMethod = posenet_method
        if cudnn_benchmark and self.device.type == "cuda":
            # Fixed crop shapes: let cuDNN pick the fastest convolution algorithms. A process-wide
            # switch, so only on request (the benchmark), never for training's validation.
            torch.backends.cudnn.benchmark = True
        self.model: PoseNet | NerPE = model.to(self.device).eval()
        if self.channels_last:
            self.model = channels_last_memory(self.model)
        self.model_name = str(getattr(model, "model_name", type(model).__name__))
        self.name = name or self.model_name
        header = getattr(model, "checkpoint_header", None)
        self.checkpoint: dict[str, Any] = dict(header) if isinstance(header, dict) else {}
        self.preparer = CropPreparer(crop_size)
        self._run: Callable[[torch.Tensor], torch.Tensor] = self._forward
        if self.compile:
            self._run = torch.compile(self._forward, dynamic=False)
        self._graphs: dict[tuple[int, ...], tuple[torch.cuda.CUDAGraph, torch.Tensor, torch.Tensor]] = {}
        self._graph_pool: Any = None  # torch.cuda.graph_pool_handle(): an opaque handle

    # -- construction helpers ------------------------------------------------------------------

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike[str], **kwargs: Any) -> ModelPredictor:
        """Load a checkpoint written by :func:`keypoint_corrupt.models.save`."""
        return cls(load(path), **kwargs)

    # -- the network ---------------------------------------------------------------------------

    def _forward(self, crops_u8: torch.Tensor) -> torch.Tensor:
        """uint8 ``B x S x S x 3`` crops on the device -> ``B x J x 2`` float32 crop-pixel coordinates."""
        x = preprocess_images(crops_u8, channels_last=self.channels_last)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            if isinstance(self.model, NerPE):
                coords = self.model.decode(x, self.crop_size, self.nerpe_mode)
            else:
                maps = self.model(x)[-1]
        if isinstance(self.model, NerPE):
            return coords.float()
        # hand3d: upsample the score maps to the crop and take the argmax, in float32.
        coords, _ = decode_score_maps(maps.float(), self.crop_size, self.posenet_method)
        return coords

    def _graphed(self, x: torch.Tensor) -> torch.Tensor:
        key = tuple(x.shape)
        entry = self._graphs.get(key)
        if entry is None:
            try:
                static_in = x.clone()
                stream = torch.cuda.Stream()
                stream.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(stream):
                    for _ in range(3):  # warm-up (cuDNN autotuning, compile) outside the capture
                        self._run(static_in)
                torch.cuda.current_stream().wait_stream(stream)
                if self._graph_pool is None:
                    self._graph_pool = torch.cuda.graph_pool_handle()
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph, pool=self._graph_pool):
                    static_out = self._run(static_in)
                entry = (graph, static_in, static_out)
            except Exception as exc:  # capture is best effort: fall back to eager
                warnings.warn(f"CUDA graph capture failed ({exc}); running eagerly", stacklevel=2)
                self.cuda_graphs = False
                return self._run(x)
            self._graphs[key] = entry
        graph, static_in, static_out = entry
        static_in.copy_(x)
        graph.replay()
        return static_out.clone()

    @torch.inference_mode()
    def run_crops(self, crops_u8: torch.Tensor) -> torch.Tensor:
        """Run network + decoding on a uint8 ``B x S x S x 3`` batch (any device) -> device coords."""
        x = crops_u8.to(self.device, non_blocking=True)
        if self.cuda_graphs:
            return self._graphed(x)
        return self._run(x)

    # -- the benchmark door --------------------------------------------------------------------

    @torch.inference_mode()
    def predict_prepared(self, crops_u8: np.ndarray | torch.Tensor, center: Any, scale: Any) -> _Pending:
        """Launch a batch of crops cut by :attr:`preparer`; ``.result()`` gives source pixels.

        ``center`` (``B x 2``) and ``scale`` (``B``) describe the crops for ``CROP_SIZE``, as
        for :attr:`preparer`.
        """
        if not isinstance(crops_u8, torch.Tensor):
            crops_u8 = torch.from_numpy(np.ascontiguousarray(crops_u8))
        crops = CropInfo(np.asarray(center, np.float64), np.asarray(scale, np.float64))
        return _Pending(self.run_crops(crops_u8), crops, self.crop_size)

    def __call__(self, images: Any, crops: CropInfo | None) -> np.ndarray:
        """``B x J x 2`` keypoints in source pixels for a batch of RGB uint8 images and their crops."""
        if crops is None:
            raise ValueError("the bundled models need the crop information (hand3d's ground-truth crop)")
        cut = torch.from_numpy(np.ascontiguousarray(crops.crop(images, self.crop_size)))
        return _Pending(self.run_crops(cut), crops, self.crop_size).result()

    def describe(self) -> dict[str, Any]:
        """JSON description for reports."""
        info: dict[str, Any] = {
            "name": self.name,
            "model": self.model_name,
            "device": str(self.device),
            "crop_size": self.crop_size,
            "precision": self.precision,
            "channels_last": self.channels_last,
            "compile": self.compile,
            "cuda_graphs": self.cuda_graphs,
        }
        if isinstance(self.model, NerPE):
            info["nerpe_mode"] = self.nerpe_mode
        elif self.posenet_method != "argmax":
            info["posenet_method"] = self.posenet_method
        if self.device.type == "cuda":
            info["device_name"] = torch.cuda.get_device_name(self.device)
        for key in ("train_set", "seed", "created"):
            if self.checkpoint.get(key) is not None:
                info[key] = self.checkpoint[key]
        return info


def predict(
    model: nn.Module,
    dataset: Sequence[Mapping[str, Any]],
    *,
    crop_size: int = CROP_SIZE,
    batch_size: int = 16,
    device: str | torch.device = "cpu",
    center_joint: int | None = None,
    schema: KeypointSchema | str | None = None,
    method: DecodeMethod = "argmax",
    nerpe_mode: NerPEMode = "standard",
    channels_last: bool = False,
    num_workers: int = 0,
) -> np.ndarray:
    """Predict keypoints in source pixels, on hand3d's ground-truth crops (a :class:`ModelPredictor`).

    Parameters
    ----------
    model : PoseNet or NerPE
        The model (run on ``device``; its train / eval mode, device and memory format are
        restored afterwards).
    dataset : sequence of mapping
        Items as for :func:`~keypoint_corrupt.models.train` (the ground-truth keypoints place
        the crop).
    crop_size : int
        Crop side fed to the model.
    batch_size, device, num_workers, channels_last
        Inference settings.
    center_joint : int, optional
        Crop centre joint index (default 12, hand3d's middle MCP in RHD / STB order).
    schema : KeypointSchema or str, optional
        The dataset's joint order: the crop centres on its ``crop_anchor`` joints, by name
        (:class:`~keypoint_corrupt.models.CropDataset`). Exclusive with ``center_joint``.
    method : {"argmax", "quadratic"}
        PoseNet decoding (:func:`~keypoint_corrupt.models.heatmaps.decode_score_maps`;
        hand3d: ``"argmax"``).
    nerpe_mode : {"standard", "progressive"}
        NerPE decoding at one point per crop pixel.

    Returns
    -------
    numpy.ndarray
        ``N x J x 2`` (x, y) in source pixels.
    """
    was_training = model.training
    home = next(model.parameters()).device
    predictor = ModelPredictor(
        model,
        device=device,
        crop_size=crop_size,
        channels_last=channels_last,
        nerpe_mode=nerpe_mode,
        posenet_method=method,
    )
    crops = CropDataset(dataset, crop_size, augment=False, center_joint=center_joint, schema=schema)
    loader: torch.utils.data.DataLoader[dict[str, Any]] = torch.utils.data.DataLoader(
        crops, batch_size=batch_size, shuffle=False, num_workers=num_workers
    )
    out: list[np.ndarray] = []
    try:
        for batch in loader:
            info = CropInfo(batch["center"].numpy(), batch["scale"].numpy(), crop_size)
            out.append(_Pending(predictor.run_crops(batch["image"]), info, crop_size).result())
    finally:
        # Give the caller's model back as it came: mode, device and memory format.
        model.train(was_training)
        model.to(home)
        if predictor.channels_last:
            model.to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]
    return np.concatenate(out, 0)


def validate(
    model: nn.Module, dataset: Sequence[Mapping[str, Any]], **predict_kwargs: Any
) -> KeypointMetrics:
    """hand3d's 2D metrics of :func:`predict` on ground-truth crops, in source pixels.

    Parameters
    ----------
    model : PoseNet or NerPE
        The model.
    dataset : sequence of mapping
        Items with ``image``, ``keypoints`` and ``visibility``.
    **predict_kwargs
        Passed to :func:`predict` (``center_joint=`` or ``schema=`` place the crop).

    Returns
    -------
    keypoint_corrupt.metrics.KeypointMetrics
        ``mean_epe`` and ``median_epe`` (averages over joints of each joint's mean / median
        error where it is visible: hand3d's reported figures), ``auc``, PCK, counts.
    """
    pred = predict(model, dataset, **predict_kwargs)
    gt = np.stack([np.asarray(item["keypoints"], np.float64) for item in dataset])
    vis = np.stack(
        [np.asarray(item.get("visibility", np.ones(len(gt[0]), bool))).astype(bool) for item in dataset]
    )
    return keypoint_metrics(pred, gt, vis)
