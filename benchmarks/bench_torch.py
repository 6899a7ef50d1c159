"""Speed of the batched torch corruptions against the CPU kernels and kornia, in one process.

Usage::

    python benchmarks/bench_torch.py [--rounds 5] [--batch 32] [--size 256] [--threads 1]
                                     [--device cpu|cuda] [--grid] [--json out.json]
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


def candidates(
    arrays: np.ndarray, device: torch.device
) -> tuple[dict[str, Callable[[], object]], dict[str, str]]:
    """``name -> call``, and which configuration each belongs to (columns of the table)."""
    x = torch.from_numpy(arrays).permute(0, 3, 1, 2).contiguous().to(device)
    xf = x.to(torch.float32) / 255.0
    kps = torch.tensor(np.stack([KEYPOINTS] * len(arrays)))
    calls: dict[str, Callable[[], object]] = {}
    column: dict[str, str] = {}
    for name in CONFIGS:
        calls[f"{name} torch uint8"] = lambda n=name: apply_config(n, x, rngs=0, keypoints=kps)
        calls[f"{name} torch float32"] = lambda n=name: apply_config(n, xf, rngs=0, keypoints=kps)
        calls[f"{name} cpu loop"] = lambda n=name: [
            apply_corruption(n, a, KEYPOINTS, rng=i) for i, a in enumerate(arrays)
        ]
        column.update(
            {f"{name} torch uint8": "u8", f"{name} torch float32": "f32", f"{name} cpu loop": "cpu"}
        )
        for k in (f"{name} torch uint8", f"{name} torch float32", f"{name} cpu loop"):
            column[k + "#config"] = name
    for name, call in kornia_candidates(xf).items():
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
    """Images/s of the 15 x 5 ImageNet-C grid on the batch (uint8), kernel by kernel and overall."""
    x = torch.from_numpy(arrays).permute(0, 3, 1, 2).contiguous().to(device)
    per: dict[str, float] = {}
    skipped: dict[str, str] = {}
    for name in cpu_imagenet_c.STANDARD:
        try:
            kernel = imagenet_c.get_kernel(name)
        except NotImplementedError as exc:
            skipped[name] = str(exc)
            continue
        kernel(x, 1, rngs=0)  # warm-up (tables, lazy imports, autotuning)
        sync()
        t0 = time.perf_counter()
        for _ in range(rounds):
            for s in range(1, 6):
                kernel(x, s, rngs=s)
        sync()
        per[name] = (time.perf_counter() - t0) / (5 * rounds)  # seconds per batch and severity
    total = sum(per.values())
    images = len(arrays) * len(per)
    return {
        "images_per_s": images / total if total else float("nan"),
        "per_kernel_images_per_s": {k: len(arrays) / v for k, v in per.items()},
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
    rows = []
    for name in CONFIGS:
        cell = {column[k]: v for k, v in ms.items() if column.get(k + "#config") == name}
        row = {"config": name, **{f"{c} ms": v for c, v in cell.items()}}
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
    calls, column = candidates(arrays, device)
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
        for name, v in g["per_kernel_images_per_s"].items():  # type: ignore[union-attr]
            print(f"  {name:<18} {v:10.0f} images/s")
        for name, why in g["skipped"].items():  # type: ignore[union-attr]
            print(f"  {name:<18} skipped: {why}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
