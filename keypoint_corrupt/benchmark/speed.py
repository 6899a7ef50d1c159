"""Inference speed of the bundled models (the reference study's Table I), and a precision check.

What is timed: :meth:`ModelPredictor.run_crops` on a uint8 crop batch already on the device,
i.e. input scaling, the network and decoding to crop-pixel keypoints (PoseNet: score maps
upsampled to the crop and argmax; NerPE: its field decoded at one point per crop pixel).
Host-side image loading and cropping are not included (they run in DataLoader workers in
the evaluation). Each batch-1 call is bracketed by device synchronisations, after warm-up
calls; the throughput is measured over several calls at a large batch with one
synchronisation at each end.

This module imports torch.
"""

from __future__ import annotations

import math
import os
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from keypoint_corrupt._model_names import MODEL_NAMES
from keypoint_corrupt.benchmark import published as pub
from keypoint_corrupt.benchmark.predictors import ModelPredictor, load_predictor
from keypoint_corrupt.models import count_parameters
from keypoint_corrupt.models._torch import resolve_device

__all__ = [
    "SpeedResult",
    "machine_info",
    "measure_speed",
    "precision_check",
    "speed_defaults",
    "speed_markdown",
    "write_speed_report",
]


@dataclass(frozen=True)
class SpeedResult:
    """Speed of one model.

    Attributes
    ----------
    model : str
        Model name.
    parameters : int
        Parameter count.
    device, precision : str
        Where and how it ran.
    channels_last, compile, cuda_graphs : bool
        Options used.
    image_size : int
        Crop side.
    warmup, iters : int
        Batch-1 warm-up and timed calls.
    avg_ms, min_ms, median_ms : float
        Batch-1 time per image.
    avg_fps, max_fps : float
        ``1000 / avg_ms`` and ``1000 / min_ms``.
    large_batch, throughput_iters : int
        Batch size and calls of the throughput measurement.
    throughput : float
        Images per second at ``large_batch``.
    precision_check : dict, optional
        Mean EPE in fp32 and in ``precision`` on the same images (see :func:`precision_check`).
    """

    model: str
    parameters: int
    device: str
    precision: str
    channels_last: bool
    compile: bool
    cuda_graphs: bool
    image_size: int
    warmup: int
    iters: int
    avg_ms: float
    min_ms: float
    median_ms: float
    avg_fps: float
    max_fps: float
    large_batch: int
    throughput_iters: int
    throughput: float
    precision_check: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


def speed_defaults(device: torch.device) -> dict[str, int]:
    """Default measurement sizes: thorough on CUDA, short on CPU.

    Examples
    --------
    >>> speed_defaults(torch.device("cpu"))["large_batch"]
    8
    """
    if device.type == "cuda":
        return {"warmup": 10, "iters": 100, "large_batch": 256, "throughput_iters": 10}
    return {"warmup": 2, "iters": 10, "large_batch": 8, "throughput_iters": 2}


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(device: str | torch.device = "auto") -> dict[str, Any]:
    """Describe the machine: CPU, cores, torch / CUDA versions and the GPU if used.

    Examples
    --------
    >>> sorted(machine_info("cpu"))[:3]
    ['cpu', 'cpu_count', 'device']
    """
    dev = resolve_device(device)
    info: dict[str, Any] = {
        "device": str(dev),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }
    if dev.type == "cuda":
        props = torch.cuda.get_device_properties(dev)
        info.update(
            {
                "gpu": torch.cuda.get_device_name(dev),
                "gpu_memory_gib": round(props.total_memory / 2**30, 1),
                "cuda": torch.version.cuda,
                "cudnn": torch.backends.cudnn.version(),
            }
        )
    return info


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_calls(fn: Callable[[], Any], device: torch.device, warmup: int, iters: int) -> list[float]:
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(iters):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return times


def measure_speed(
    models: Sequence[str] = MODEL_NAMES,
    *,
    device: str | torch.device = "auto",
    image_size: int = 256,
    warmup: int | None = None,
    iters: int | None = None,
    large_batch: int | None = None,
    throughput_iters: int | None = None,
    precision: str = "fp32",
    channels_last: bool | None = None,
    compile: bool = False,
    cuda_graphs: bool = False,
    nerpe_mode: str = "standard",
    weights: Mapping[str, str | os.PathLike[str]] | None = None,
    check_data: Any = None,
    check_images: int = 32,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> list[SpeedResult]:
    """Measure Table I for the bundled models: batch-1 latency and large-batch throughput.

    Parameters
    ----------
    models : sequence of str
        Model names (default: dense, depthwise, NerPE).
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"``...
    image_size : int
        Crop side (hand3d: 256).
    warmup, iters, large_batch, throughput_iters : int, optional
        Measurement sizes; defaults from :func:`speed_defaults` (100 timed batch-1 calls and
        batch 256 on CUDA; short on CPU).
    precision, channels_last, compile, cuda_graphs, nerpe_mode
        :class:`~keypoint_corrupt.benchmark.predictors.ModelPredictor` options (NerPE's
        ``"standard"`` decoding evaluates every crop pixel; ``"progressive"`` is the
        practical choice at large batches).
    weights : mapping, optional
        Model name -> checkpoint; models without one are randomly initialised (the speed
        does not depend on the weights).
    check_data : sequence of Sample, optional
        When ``precision`` is not fp32: images on which :func:`precision_check` compares the
        mean EPE with fp32 (default: none, no check).
    check_images : int
        Images used by the precision check.
    seed : int
        Seed of the random initialisation and of the random input crops.
    log : callable, optional
        Called with one line per finished model.

    Returns
    -------
    list of SpeedResult

    Examples
    --------
    >>> res = measure_speed(["posenet-depthwise"], device="cpu", image_size=32, warmup=1, iters=2,
    ...                     large_batch=2, throughput_iters=1)
    >>> res[0].model, res[0].avg_ms > 0, res[0].throughput > 0
    ('posenet-depthwise', True, True)
    """
    dev = resolve_device(device)
    sizes = speed_defaults(dev)
    warmup = sizes["warmup"] if warmup is None else int(warmup)
    iters = sizes["iters"] if iters is None else int(iters)
    large_batch = sizes["large_batch"] if large_batch is None else int(large_batch)
    throughput_iters = sizes["throughput_iters"] if throughput_iters is None else int(throughput_iters)
    if iters < 1 or large_batch < 1 or throughput_iters < 1 or warmup < 0:
        raise ValueError("iters, large_batch and throughput_iters must be >= 1 and warmup >= 0")
    weights = dict(weights or {})
    gen = torch.Generator().manual_seed(seed)
    out: list[SpeedResult] = []
    for name in models:
        torch.manual_seed(seed)
        options = {
            "device": dev,
            "crop_size": image_size,
            "precision": precision,
            "channels_last": channels_last,
            "compile": compile,
            "cuda_graphs": cuda_graphs,
            "nerpe_mode": nerpe_mode,
        }
        predictor = load_predictor(name, weights.get(name), **options)
        one = torch.randint(0, 256, (1, image_size, image_size, 3), dtype=torch.uint8, generator=gen).to(dev)
        times = _time_calls(partial(predictor.run_crops, one), dev, warmup, iters)
        big = torch.randint(
            0, 256, (large_batch, image_size, image_size, 3), dtype=torch.uint8, generator=gen
        ).to(dev)
        for _ in range(min(2, max(1, warmup))):
            predictor.run_crops(big)
        _sync(dev)
        t0 = time.perf_counter()
        for _ in range(throughput_iters):
            predictor.run_crops(big)
        _sync(dev)
        elapsed = time.perf_counter() - t0
        check = None
        if precision != "fp32" and check_data is not None:
            check = precision_check(predictor, check_data, check_images, weights.get(name))
        avg, low = float(np.mean(times)) * 1000, float(np.min(times)) * 1000
        result = SpeedResult(
            model=name,
            parameters=count_parameters(predictor.model),
            device=str(dev),
            precision=precision,
            channels_last=predictor.channels_last,
            compile=predictor.compile,
            cuda_graphs=predictor.cuda_graphs,
            image_size=image_size,
            warmup=warmup,
            iters=iters,
            avg_ms=avg,
            min_ms=low,
            median_ms=float(np.median(times)) * 1000,
            avg_fps=1000.0 / avg if avg > 0 else math.inf,
            max_fps=1000.0 / low if low > 0 else math.inf,
            large_batch=large_batch,
            throughput_iters=throughput_iters,
            throughput=large_batch * throughput_iters / elapsed if elapsed > 0 else math.inf,
            precision_check=check,
        )
        out.append(result)
        if log is not None:
            log(
                f"{name}: batch 1 avg {avg:.2f} ms, min {low:.2f} ms; "
                f"batch {large_batch}: {result.throughput:.1f} images/s"
            )
        del predictor, one, big
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    return out


def precision_check(
    predictor: ModelPredictor, data: Any, images: int = 32, weights: Any = None
) -> dict[str, Any]:
    """Mean EPE of ``predictor`` and of the same model in fp32, on the same clean images.

    The target of the issue is ``|difference| < 0.05 px`` for a trained PoseNet; with random
    weights the score maps are nearly flat and the argmax is not a meaningful comparison.

    Parameters
    ----------
    predictor : ModelPredictor
        A reduced-precision predictor.
    data : sequence of Sample
        A split (its first ``images`` samples are used).
    images : int
        How many.
    weights : path, optional
        Recorded in the result.

    Returns
    -------
    dict
        ``images``, ``mean_epe_fp32``, ``mean_epe``, ``abs_diff``, ``moved_keypoints`` (share
        of keypoints whose prediction differs), ``weights``.
    """
    from keypoint_corrupt.benchmark.evaluate import evaluate

    subset = [data[i] for i in range(min(images, len(data)))]
    ref = ModelPredictor(
        predictor.model.float(),
        device=predictor.device,
        crop_size=predictor.crop_size,
        precision="fp32",
        channels_last=predictor.channels_last,
    )
    a = evaluate(ref, subset, (), batch_size=8, examples=0).rows["standard"]
    b = evaluate(predictor, subset, (), batch_size=8, examples=0).rows["standard"]
    moved = float(np.mean(np.any(a.predictions != b.predictions, axis=-1)))
    return {
        "images": len(subset),
        "mean_epe_fp32": a.metrics.mean_epe,
        "mean_epe": b.metrics.mean_epe,
        "abs_diff": abs(a.metrics.mean_epe - b.metrics.mean_epe),
        "moved_keypoints": moved,
        "weights": str(weights) if weights is not None else "random initialisation",
    }


def speed_markdown(
    results: Sequence[SpeedResult], machine: Mapping[str, Any], command: str | None = None
) -> str:
    """Table I layout: models as columns, the published dense / depthwise alongside."""
    lines = ["# Inference speed (Table I layout)", ""]
    where = machine.get("gpu") or machine.get("cpu")
    lines.append(f"- machine: {where}; {machine.get('cpu_count')} CPU cores; torch {machine.get('torch')}")
    if machine.get("cuda"):
        lines.append(f"- CUDA {machine['cuda']}, cuDNN {machine.get('cudnn')}")
    if command:
        lines.append(f"- command: `{command}`")
    if results:
        r0 = results[0]
        lines.append(
            f"- {r0.device}, {r0.precision}, channels-last {r0.channels_last}, compile {r0.compile}, "
            f"CUDA graphs {r0.cuda_graphs}; crop {r0.image_size} px; batch 1: {r0.warmup} warm-up + "
            f"{r0.iters} timed calls, each between device synchronisations; throughput: batch "
            f"{r0.large_batch} x {r0.throughput_iters} calls"
        )
    lines.append("")
    head = ["metric"] + [r.model for r in results] + [f"published {v}" for v in pub.VARIANTS]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("| " + " | ".join("---" for _ in head) + " |")

    def row(title: str, cells: list[str], published: list[str]) -> None:
        lines.append("| " + " | ".join([title, *cells, *published]) + " |")

    row(
        "avg inference, batch 1",
        [f"{r.avg_ms:.2f} ms ({r.avg_fps:.0f} fps)" for r in results],
        [f"{pub.TABLE_I[v]['avg_ms']:.2f} ms ({pub.TABLE_I[v]['avg_fps']:.0f} fps)" for v in pub.VARIANTS],
    )
    row(
        "min inference, batch 1",
        [f"{r.min_ms:.2f} ms ({r.max_fps:.0f} fps)" for r in results],
        [f"{pub.TABLE_I[v]['min_ms']:.2f} ms ({pub.TABLE_I[v]['min_fps']:.0f} fps)" for v in pub.VARIANTS],
    )
    row("median inference, batch 1", [f"{r.median_ms:.2f} ms" for r in results], ["-", "-"])
    row(
        "throughput",
        [f"{r.throughput:.1f} images/s (batch {r.large_batch})" for r in results],
        ["-", "-"],
    )
    row("parameters", [f"{r.parameters:,}" for r in results], ["-", "-"])
    checks = [r.precision_check for r in results]
    if any(checks):
        row(
            "mean EPE fp32 / this precision",
            [_check_cell(c) for c in checks],
            ["-", "-"],
        )
    lines.append("")
    by_name = {r.model: r for r in results}
    dense, depthwise = by_name.get("posenet-dense"), by_name.get("posenet-depthwise")
    if dense and depthwise:
        ratio = depthwise.avg_ms / dense.avg_ms
        verdict = "faster" if ratio < 1 else "slower"
        lines.append(
            f"Depthwise vs dense at batch 1: depthwise is {verdict} here, {depthwise.avg_ms:.2f} vs "
            f"{dense.avg_ms:.2f} ms per image ({ratio:.2f}x dense's time); the paper found it faster "
            f"({pub.TABLE_I['depthwise']['avg_ms']:.2f} vs {pub.TABLE_I['dense']['avg_ms']:.2f} ms)."
        )
        lines.append("")
    return "\n".join(lines)


def _check_cell(c: Mapping[str, Any] | None) -> str:
    if not c:
        return "-"
    return f"{c['mean_epe_fp32']:.3f} / {c['mean_epe']:.3f} px (Δ {c['abs_diff']:.3f}, {c['images']} images)"


def write_speed_report(
    results: Sequence[SpeedResult],
    machine: Mapping[str, Any],
    out_dir: str | os.PathLike[str],
    command: str | None = None,
) -> dict[str, Path]:
    """Write ``speed.md`` and ``speed.json`` in ``out_dir``."""
    import json

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {"md": out / "speed.md", "json": out / "speed.json"}
    files["md"].write_text(speed_markdown(results, machine, command), encoding="utf-8")
    doc = {
        "format": "keypoint-corrupt/speed-report",
        "format_version": 1,
        "command": command,
        "machine": dict(machine),
        "results": [r.to_dict() for r in results],
        "published_table_i": pub.TABLE_I,
    }
    files["json"].write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return files
