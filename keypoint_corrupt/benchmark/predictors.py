"""The bundled models (PoseNet dense / depthwise, NerPE) as benchmark predictors.

A :class:`ModelPredictor` is a ``predict(images, crops)`` callable like any user's: it cuts
hand3d's ground-truth crop of each image, runs the network, decodes (PoseNet: score maps
upsampled to the crop and argmax; NerPE: its confidence field at one point per crop pixel)
and maps the keypoints back to original-image pixels by dividing by the crop scale.

For speed, :func:`~keypoint_corrupt.benchmark.evaluate` also uses two extra members: the
picklable :attr:`ModelPredictor.preparer` cuts the crops in DataLoader workers, and
:meth:`ModelPredictor.predict_prepared` uploads a (pinned) uint8 batch, runs the network and
decoding on the device and starts an asynchronous copy of the result, so the next batch is
prepared while the GPU works. GPU options: channels-last memory, bf16 autocast,
``torch.compile`` and CUDA graphs.

This module imports torch.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from keypoint_corrupt.benchmark.crops import CROP_SIZE, warp_crop
from keypoint_corrupt.models import MODEL_NAMES, NerPE, PoseNet, build_model, decode_score_maps, load
from keypoint_corrupt.models._torch import resolve_device

__all__ = [
    "PRECISIONS",
    "CropPreparer",
    "ModelPredictor",
    "load_predictor",
]

PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class CropPreparer:
    """Cut hand3d's crop (uint8 ``size x size x 3``): what DataLoader workers run.

    Examples
    --------
    >>> CropPreparer(64)(np.zeros((480, 640, 3), np.uint8), (320.0, 240.0), 2.0).shape
    (64, 64, 3)
    """

    size: int = CROP_SIZE

    def __call__(self, image: np.ndarray, center: Any, scale: float) -> np.ndarray:
        """Crop one RGB uint8 image."""
        return np.ascontiguousarray(warp_crop(np.asarray(image), center, scale, self.size))


class _Pending:
    """A batch launched on the device; :meth:`result` waits for it and maps back to source pixels."""

    def __init__(self, coords: torch.Tensor, center: Any, scale: Any, size: int) -> None:
        self.center = np.asarray(center, np.float64)
        self.scale = np.asarray(scale, np.float64)
        self.size = size
        self.event: Any = None
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
        kp = self.coords.double().numpy()
        s = (self.scale * self.size / CROP_SIZE)[:, None, None]
        return (kp - 0.5 * self.size) / s + self.center[:, None, :]


class ModelPredictor:
    """A bundled model as a benchmark predictor.

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
    name : str, optional
        Label in reports (default: the model's registry name).

    Notes
    -----
    Call it as ``predictor(images, crops)`` (``crops``: a :class:`CropInfo`); it returns
    ``B x J x 2`` keypoints in original-image pixels.

    Examples
    --------
    >>> from keypoint_corrupt.benchmark.crops import CropInfo
    >>> pred = ModelPredictor(PoseNet("dense", refinement_stages=0), device="cpu", crop_size=64)
    >>> images = np.zeros((2, 120, 160, 3), np.uint8)
    >>> crops = CropInfo(np.array([[80.0, 60.0], [70.0, 50.0]]), np.array([2.0, 3.0]))
    >>> pred(images, crops).shape
    (2, 21, 2)
    """

    def __init__(
        self,
        model: torch.nn.Module,
        *,
        device: str | torch.device = "auto",
        crop_size: int = CROP_SIZE,
        precision: str = "fp32",
        channels_last: bool | None = None,
        compile: bool = False,
        cuda_graphs: bool = False,
        nerpe_mode: str = "standard",
        name: str | None = None,
    ) -> None:
        if not isinstance(model, (PoseNet, NerPE)):
            raise TypeError(f"model must be a PoseNet or NerPE, got {type(model).__name__}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        if isinstance(crop_size, bool) or not isinstance(crop_size, int) or crop_size < 8 or crop_size % 8:
            raise ValueError(f"crop_size must be a positive multiple of 8, got {crop_size!r}")
        if nerpe_mode not in ("standard", "progressive"):
            raise ValueError(f"nerpe_mode must be 'standard' or 'progressive', got {nerpe_mode!r}")
        self.device = resolve_device(device)
        self.device_type = self.device.type
        self.crop_size = crop_size
        self.precision = precision
        self.channels_last = self.device.type == "cuda" if channels_last is None else bool(channels_last)
        self.compile = bool(compile)
        self.cuda_graphs = bool(cuda_graphs) and self.device.type == "cuda"
        if cuda_graphs and self.device.type != "cuda":
            warnings.warn("cuda_graphs needs a CUDA device; running eagerly", stacklevel=2)
        self.nerpe_mode = nerpe_mode
        if self.device.type == "cuda":
            # Fixed crop shapes: let cuDNN pick the fastest convolution algorithms.
            torch.backends.cudnn.benchmark = True
        self.model = model.to(self.device).eval()
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.model_name = str(getattr(model, "model_name", type(model).__name__))
        self.name = name or self.model_name
        header = getattr(model, "checkpoint_header", None)
        self.checkpoint: dict[str, Any] = dict(header) if isinstance(header, dict) else {}
        self.preparer = CropPreparer(crop_size)
        self._run: Callable[[torch.Tensor], torch.Tensor] = self._forward
        if self.compile:
            self._run = torch.compile(self._forward, dynamic=False)
        self._graphs: dict[tuple[int, ...], Any] = {}
        self._graph_pool: Any = None

    # -- construction helpers ------------------------------------------------------------------

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike[str], **kwargs: Any) -> ModelPredictor:
        """Load a checkpoint written by :func:`keypoint_corrupt.models.save`."""
        return cls(load(path), **kwargs)

    # -- the network ---------------------------------------------------------------------------

    def _forward(self, crops_u8: torch.Tensor) -> torch.Tensor:
        """uint8 ``B x S x S x 3`` crops on the device -> ``B x J x 2`` float32 crop-pixel coordinates."""
        x = crops_u8.permute(0, 3, 1, 2).float() / 255.0 - 0.5
        x = x.contiguous(memory_format=torch.channels_last) if self.channels_last else x.contiguous()
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            if isinstance(self.model, NerPE):
                coords = self.model.decode(x, self.crop_size, self.nerpe_mode)
            else:
                maps = self.model(x)[-1]
        if isinstance(self.model, NerPE):
            return coords.float()
        # hand3d: upsample the score maps to the crop and take the argmax, in float32.
        coords, _ = decode_score_maps(maps.float(), self.crop_size, "argmax")
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
    def predict_prepared(self, crops_u8: Any, center: Any, scale: Any) -> _Pending:
        """Launch a batch of crops cut by :attr:`preparer`; ``.result()`` gives source pixels."""
        if not isinstance(crops_u8, torch.Tensor):
            crops_u8 = torch.from_numpy(np.ascontiguousarray(crops_u8))
        return _Pending(self.run_crops(crops_u8), center, scale, self.crop_size)

    def __call__(self, images: Any, crops: Any) -> np.ndarray:
        """``B x J x 2`` keypoints in source pixels for a batch of RGB uint8 images and their crops."""
        if crops is None:
            raise ValueError("the bundled models need the crop information (hand3d's ground-truth crop)")
        cut = np.stack(
            [self.preparer(im, c, s) for im, c, s in zip(images, crops.center, crops.scale, strict=True)]
        )
        return self.predict_prepared(cut, crops.center, crops.scale).result()

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
        if self.device.type == "cuda":
            info["device_name"] = torch.cuda.get_device_name(self.device)
        for key in ("train_set", "seed", "created"):
            if self.checkpoint.get(key) is not None:
                info[key] = self.checkpoint[key]
        return info


def load_predictor(
    model: str | None = None, weights: str | os.PathLike[str] | None = None, **kwargs: Any
) -> ModelPredictor:
    """Build a bundled model's predictor from its name and/or a checkpoint.

    Parameters
    ----------
    model : {"posenet-dense", "posenet-depthwise", "nerpe"}, optional
        Model name; checked against the checkpoint's. Without ``weights``, a randomly
        initialised network (useful for speed measurements only).
    weights : path, optional
        Checkpoint from :func:`keypoint_corrupt.models.save` (or ``keypoint-corrupt train``).
    **kwargs
        :class:`ModelPredictor` options.

    Examples
    --------
    >>> load_predictor("posenet-depthwise", device="cpu").model_name
    'posenet-depthwise'
    """
    if model is not None and model not in MODEL_NAMES:
        raise ValueError(f"unknown model {model!r}; expected one of {', '.join(MODEL_NAMES)}")
    if weights is None:
        if model is None:
            raise ValueError("give a model name, a checkpoint, or both")
        return ModelPredictor(build_model(model), **kwargs)
    path = Path(weights)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    net = load(path)
    if model is not None and net.model_name != model:
        raise ValueError(f"{path} holds a {net.model_name} model, not {model}")
    return ModelPredictor(net, **kwargs)
