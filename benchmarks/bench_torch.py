"""Speed of the batched torch corruptions against the CPU kernels and kornia, in one process.

Usage::

    python benchmarks/bench_torch.py [--rounds 5] [--batch 32] [--size 256] [--threads 1]
                                     [--device cpu|cuda] [--grid] [--only noise] [--json out.json]
    python benchmarks/bench_torch.py --parity [--batch 8] [--device cuda]   # agreement only

The batch is ``batch`` real 256 x 256 RGB tiles (crops of tests/data's STB frame and COCO
photographs), uint8, and the same divided by 255 as float32. Per reference operation it
times, round-robin (every candidate once per round, median over rounds):

* the torch kernel on the uint8 and on the float32 batch (``keypoint_corrupt.torch``),
* the CPU kernel of the library on each image in turn (the anchor: what a data loader does),
* kornia on the float32 batch, for the three operations kornia has (Gaussian blur
  ``kornia.filters.gaussian_blur2d``, horizontal motion blur ``kornia.filters.motion_blur`` with
  angle 0, Gaussian noise ``kornia.augmentation.RandomGaussianNoise``), when it is installed
  (``pip install "keypoint-corrupt[bench]"``).

The noise rows come twice: with the default exact host draws (NumPy, equal to the CPU path) and
``draws=device`` (torch draws from per-sample generators on the device, the fast mode; its
``cpu`` and ``kornia`` cells are the host row's, measured once). The ImageNet-C noise kernels
at severity 3 (``imagenet-c.<name>-3``, CPU anchor ``functional.imagenet_c.<name>`` per image)
are timed in both modes too. ``--only TEXT`` keeps the rows whose name contains ``TEXT``.

Ratios above 1 mean the torch kernel is faster. ``--device cuda`` runs the torch and kornia
candidates on the GPU (synchronised) and adds ``--grid``: images/s of the whole ImageNet-C
15 x 5 grid (every corruption at every severity on the batch), through the kernels of
``keypoint_corrupt.torch.imagenet_c.get_kernel`` (a kernel that is missing is skipped, with a note).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch

from keypoint_corrupt import functional as F
from keypoint_corrupt.functional import imagenet_c as cpu_imagenet_c
from keypoint_corrupt.registry import CONFIGS, apply_corruption
from keypoint_corrupt.torch import apply_config, imagenet_c

DEVICE = " draws=device"
#: Configurations that also get a ``draws=device`` row.
DEVICE_ROWS = ("noise-gaussian", "noise-saltpepper")
#: ImageNet-C noise kernels timed at this severity, in both draw modes.
IC_NOISE = ("gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise")
IC_SEVERITY = 3


def row_names() -> list[str]:
    """Every row of the table, in order: the configurations, the device-draw rows, ImageNet-C noise."""
    rows = list(CONFIGS) + [n + DEVICE for n in DEVICE_ROWS]
    for name in IC_NOISE:
        rows += [f"imagenet-c.{name}-{IC_SEVERITY}", f"imagenet-c.{name}-{IC_SEVERITY}{DEVICE}"]
    return rows


DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
SOURCES = [DATA / "stb" / "SK_color_0.png", *sorted((DATA / "body" / "coco").glob("*.jpg"))]
KEYPOINTS = np.array([[70.0, 60.0], [190.0, 200.0], [128.0, 120.0]])


def tiles(batch: int, size: int) -> np.ndarray:
    """``batch`` real ``size x size`` RGB crops, cycling over the fixture photographs and offsets."""
    images = [cv2.imread(str(p), cv2.IMREAD_COLOR)[..., ::-1] for p in SOURCES]
    out = []
    for i in range(batch):
        img = images[i % len(images)]
        h, w = img.shape[:2]
        if min(h, w) < size:
            img = cv2.resize(img, (max(w, size), max(h, size)))
            h, w = img.shape[:2]
        y = (37 * i) % (h - size + 1)
        x = (53 * i) % (w - size + 1)
        out.append(img[y : y + size, x : x + size])
    return np.ascontiguousarray(np.stack(out))


def kornia_candidates(xf: torch.Tensor) -> dict[str, Callable[[], object]]:
    try:
        import kornia
    except ImportError:
        print("# kornia is not installed: its columns are empty (pip install 'keypoint-corrupt[bench]')")
        return {}
    sigma = F.defocus_sigma(21)
    noise = kornia.augmentation.RandomGaussianNoise(mean=0.0, std=0.1, p=1.0)
    return {
        "defocus-21": lambda: kornia.filters.gaussian_blur2d(
            xf, (21, 21), (sigma, sigma), border_type="reflect", separable=True
        ),
        "motion-45": lambda: kornia.filters.motion_blur(xf, 45, 0.0, 0.0, border_type="reflect"),
        "noise-gaussian": lambda: noise(xf),
    }


def _row_calls(
    row: str, x: torch.Tensor, xf: torch.Tensor, kps: torch.Tensor, arrays: np.ndarray
) -> dict[str, Callable[[], object]]:
    """The u8, f32 and (host rows only) cpu calls of one table row."""
    base, draws = (row[: -len(DEVICE)], "device") if row.endswith(DEVICE) else (row, "host")
    if base.startswith("imagenet-c."):
        kernel_name, severity = base[len("imagenet-c.") :].rsplit("-", 1)
        kernel = imagenet_c.get_kernel(kernel_name)
        cpu_kernel = cpu_imagenet_c.CORRUPTIONS[kernel_name]
        s = int(severity)
        calls: dict[str, Callable[[], object]] = {
            "u8": lambda: kernel(x, s, rngs=0, draws=draws),
            "f32": lambda: kernel(xf, s, rngs=0, draws=draws),
        }
        if draws == "host":
            calls["cpu"] = lambda: [cpu_kernel(a, s, rng=i) for i, a in enumerate(arrays)]
        return calls
    calls = {
        "u8": lambda: apply_config(base, x, rngs=0, keypoints=kps, draws=draws),
        "f32": lambda: apply_config(base, xf, rngs=0, keypoints=kps, draws=draws),
    }
    if draws == "host":
        calls["cpu"] = lambda: [apply_corruption(base, a, KEYPOINTS, rng=i) for i, a in enumerate(arrays)]
    return calls


def candidates(
    arrays: np.ndarray, device: torch.device, only: str = ""
) -> tuple[dict[str, Callable[[], object]], dict[str, str]]:
    """``name -> call``, and the row and column of each (``column[name + "#config"]``, ``column[name]``)."""
    x = torch.from_numpy(arrays).permute(0, 3, 1, 2).contiguous().to(device)
    xf = x.to(torch.float32) / 255.0
    kps = torch.tensor(np.stack([KEYPOINTS] * len(arrays)))
    calls: dict[str, Callable[[], object]] = {}
    column: dict[str, str] = {}
    for row in row_names():
        if only not in row:
            continue
        for col, call in _row_calls(row, x, xf, kps, arrays).items():
            calls[f"{row} {col}"] = call
            column[f"{row} {col}"] = col
            column[f"{row} {col}#config"] = row
    for name, call in kornia_candidates(xf).items():
        if only not in name:
            continue
        calls[f"{name} kornia float32"] = call
        column[f"{name} kornia float32"] = "kornia"
        column[f"{name} kornia float32#config"] = name
    return calls, column


def measure(
    calls: dict[str, Callable[[], object]], rounds: int, sync: Callable[[], None]
) -> dict[str, float]:
    """Median ms per candidate over ``rounds`` round-robin rounds (after one warm-up call each)."""
    times: dict[str, list[float]] = {k: [] for k in calls}
    for f in calls.values():
        f()
    sync()
    for _ in range(rounds):
        for name, f in calls.items():
            t0 = time.perf_counter()
            f()
            sync()
            times[name].append(time.perf_counter() - t0)
    return {k: statistics.median(v) * 1e3 for k, v in times.items()}


def grid(
    arrays: np.ndarray, device: torch.device, rounds: int, sync: Callable[[], None]
) -> dict[str, object]:
    """Images/s of the 15 x 5 ImageNet-C grid on the batch (uint8), kernel by kernel and overall.

    Exact (host) draws; ``device_draws_images_per_s`` is the grid with the three noise kernels
    timed with ``draws="device"`` instead (the other kernels ignore ``draws``).
    """
    x = torch.from_numpy(arrays).permute(0, 3, 1, 2).contiguous().to(device)
    per: dict[str, float] = {}
    per_device: dict[str, float] = {}
    skipped: dict[str, str] = {}

    def timed(kernel: Callable[..., object], **kw: object) -> float:
        kernel(x, 1, rngs=0, **kw)  # warm-up (tables, lazy imports, autotuning)
        sync()
        t0 = time.perf_counter()
        for _ in range(rounds):
            for s in range(1, 6):
                kernel(x, s, rngs=s, **kw)
        sync()
        return (time.perf_counter() - t0) / (5 * rounds)  # seconds per batch and severity

    for name in cpu_imagenet_c.STANDARD:
        try:
            kernel = imagenet_c.get_kernel(name)
        except NotImplementedError as exc:
            skipped[name] = str(exc)
            continue
        per[name] = timed(kernel)
        per_device[name] = timed(kernel, draws="device") if name in IC_NOISE else per[name]
    total, total_device = sum(per.values()), sum(per_device.values())
    images = len(arrays) * len(per)
    return {
        "images_per_s": images / total if total else float("nan"),
        "per_kernel_images_per_s": {k: len(arrays) / v for k, v in per.items()},
        "device_draws_images_per_s": images / total_device if total_device else float("nan"),
        "device_draws_per_kernel_images_per_s": {
            k: len(arrays) / per_device[k] for k in per if k in IC_NOISE
        },
        "skipped": skipped,
    }


def parity(arrays: np.ndarray, device: torch.device) -> None:
    """Print, per reference configuration and dtype, the max difference to the CPU path and its share."""
    x = torch.from_numpy(arrays).permute(0, 3, 1, 2).contiguous().to(device)
    print("| configuration | dtype | max diff | differing values |")
    print("|---|---|---|---|")
    for name in CONFIGS:
        for batch in (x, x.to(torch.float32) / 255.0):
            out, _ = apply_config(
                name, batch, rngs=list(range(len(arrays))), keypoints=[KEYPOINTS] * len(arrays)
            )
            got = out.permute(0, 2, 3, 1).cpu().numpy().astype(np.float64)
            host = batch.permute(0, 2, 3, 1).cpu().numpy()
            want = np.stack([apply_corruption(name, a, KEYPOINTS, rng=i)[0] for i, a in enumerate(host)])
            diff = np.abs(got - want.astype(np.float64))
            scale = 1.0 if batch.dtype == torch.uint8 else 255.0
            print(
                f"| {name} | {str(batch.dtype)[6:]} | {diff.max() * scale:.3g} levels | "
                f"{(diff > 0).mean():.2%} |"
            )


def report(ms: dict[str, float], column: dict[str, str]) -> list[dict[str, object]]:
    """One row per measured table row; a ``draws=device`` row borrows its host row's cpu and kornia cells."""
    cells: dict[str, dict[str, float]] = {}
    for k, v in ms.items():
        cells.setdefault(column[k + "#config"], {})[column[k]] = v
    rows = []
    for name in row_names():
        if name not in cells:
            continue
        cell = dict(cells[name])
        if name.endswith(DEVICE):
            for col, v in cells.get(name[: -len(DEVICE)], {}).items():
                cell.setdefault(col, v)
        row = {"config": name, **{f"{c} ms": v for c, v in cell.items()}}
        if "cpu" in cell:
            row["cpu/u8"] = cell["cpu"] / cell["u8"]
        if "kornia" in cell:
            row["kornia/u8"] = cell["kornia"] / cell["u8"]
            row["kornia/f32"] = cell["kornia"] / cell["f32"]
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1, help="torch and cv2 threads (CPU)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--grid", action="store_true", help="also the ImageNet-C 15 x 5 grid (default with cuda)")
    ap.add_argument("--parity", action="store_true", help="only print the agreement with the CPU path")
    ap.add_argument("--only", default="", help="time only the rows whose name contains this text")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    sync: Callable[[], None] = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    arrays = tiles(args.batch, args.size)
    if args.parity:
        parity(arrays, device)
        return 0
    calls, column = candidates(arrays, device, args.only)
    ms = measure(calls, args.rounds, sync)
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    print(
        f"# batch {args.batch} x 3 x {args.size} x {args.size} (real tiles), device {device} ({gpu}), "
        f"{args.rounds} rounds, threads {args.threads}; torch {torch.__version__}, numpy {np.__version__}, "
        f"opencv {cv2.__version__}, python {platform.python_version()}"
    )
    print("# ms per batch (medians); ratios > 1: the torch uint8 / float32 kernel is faster")
    rows = report(ms, column)
    head = ["config", "u8 ms", "f32 ms", "cpu ms", "kornia ms", "cpu/u8", "kornia/u8", "kornia/f32"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for row in rows:
        cells = [str(row["config"])]
        for h in head[1:]:
            v = row.get(h)
            cells.append("" if v is None else f"{v:.1f}" if h.endswith("ms") else f"{v:.2f}")
        print("| " + " | ".join(cells) + " |")
    result: dict[str, object] = {"ms": ms, "rows": rows, "device": str(device), "batch": args.batch}
    if args.grid or device.type == "cuda":
        g = grid(arrays, device, max(1, args.rounds // 2), sync)
        result["grid"] = g
        print(f"\nImageNet-C 15 x 5 grid at {args.size}x{args.size}: {g['images_per_s']:.0f} images/s")
        print(f"  with draws=device for the noise kernels: {g['device_draws_images_per_s']:.0f} images/s")
        for name, v in g["per_kernel_images_per_s"].items():  # type: ignore[union-attr]
            print(f"  {name:<18} {v:10.0f} images/s")
        for name, v in g["device_draws_per_kernel_images_per_s"].items():  # type: ignore[union-attr]
            print(f"  {name + ' (device draws)':<30} {v:10.0f} images/s")
        for name, why in g["skipped"].items():  # type: ignore[union-attr]
            print(f"  {name:<18} skipped: {why}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
