"""Materialisation throughput: `keypoint-corrupt materialize` against a naive loop, in one process.

Usage::

    python benchmarks/bench_materialize.py [--frames 42] [--rounds 3] [--cache /tmp/kc_bench_stb]
                                           [--workers 1,2] [--json out.json]

A synthetic STB-layout tree at full resolution (640x480) is generated once into ``--cache``
(12 sequences x ``--frames`` frames x BB_left/BB_right; 42 frames give 1,008 source images,
S-train 840 + S-val 168). Each round then times, in a rotating order so that background load
hits all alike, and into fresh output folders:

* the naive baseline: one process; for each split, each configuration, each selected image:
  ``cv2.imread``, ``apply_corruption``, ``cv2.imwrite`` (PNG, OpenCV's default parameters);
* ``keypoint-corrupt materialize`` (through its entry point) with each ``--workers`` count,
  default options (PNG, no --fsync, journal, manifest, COCO annotations, clean split).

It reports images written per second (median over rounds), the ratio to the round's
baseline, a per-stage breakdown of one output's cost, and the projection for the full STB
(36,000 sources, 79,200 outputs): wall time and disk, the latter also from the real STB
frame in tests/data (synthetic frames compress far better than photographs).
Exit status 1 when 2 workers stay under 1.8x the baseline.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from keypoint_corrupt import CONFIGS, apply_corruption
from keypoint_corrupt.cli.main import main as cli_main
from keypoint_corrupt.datasets import STB, CorruptedDataset, load_image, sample_rng, write_synthetic_stb

FULL_STB_OUTPUTS = 79_200  # 11 configurations x 20% x 36,000 sources
TARGET = 1.8
REAL_FRAME = Path(__file__).resolve().parents[1] / "tests" / "data" / "stb" / "SK_color_0.png"


def ensure_tree(cache: Path, frames: int) -> Path:
    """The synthetic tree, generated once per (frames) and reused."""
    root = cache / f"stb_{frames}f"
    marker = root / ".complete"
    if not marker.is_file():
        shutil.rmtree(root, ignore_errors=True)
        t = time.perf_counter()
        write_synthetic_stb(root, frames_per_sequence=frames, seed=0)
        marker.write_text(str(frames))
        print(f"generated {root} in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    return root


def cpu_seconds() -> float:
    """User + system CPU time of this process and its reaped children (the workers)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def naive(root: Path, out: Path) -> int:
    """The baseline: per configuration, per selected image: imread, corrupt, imwrite."""
    n = 0
    for split in ("train", "val"):
        base = STB(root, split)
        ds = CorruptedDataset(base, CONFIGS)
        for config in CONFIGS:
            folder = out / split / config
            for i in ds.selections[config]:
                sample = base[i]
                img = cv2.imread(str(sample.image_path), cv2.IMREAD_COLOR)
                rng = sample_rng(0, sample.id, config)
                corrupted, _ = apply_corruption(
                    config, img, sample.keypoints, visibility=sample.visibility, rng=rng
                )
                dst = folder / f"{sample.id}.png"
                dst.parent.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(dst), corrupted)
                n += 1
    return n


def ours(root: Path, out: Path, workers: int) -> int:
    argv = ["materialize", "--dataset", "stb", "--root", str(root), "--out", str(out)]
    code = cli_main([*argv, "--workers", str(workers), "--quiet"])
    if code != 0:
        raise SystemExit(f"materialize failed with exit status {code}")
    manifest = json.loads((out / "manifest.json").read_text())
    return len(corrupted_files(manifest))


def corrupted_files(manifest: dict) -> list[dict]:
    """The corrupted images of a manifest (the baseline writes only those; the clean copies are links)."""
    return [f for f in manifest["files"] if f["config"] != "clean"]


def output_sizes(out: Path) -> list[int]:
    return [f["size"] for f in corrupted_files(json.loads((out / "manifest.json").read_text()))]


def stage_breakdown(root: Path, count: int = 120) -> dict[str, float]:
    """Milliseconds per output of each stage, over the first ``count`` outputs of S-val*."""
    base = STB(root, "val")
    ds = CorruptedDataset(base, CONFIGS)
    names = ("decode (per source)", "corrupt", "encode PNG", "sha256", "write", "fsync (only with --fsync)")
    stages = dict.fromkeys(names, 0.0)
    groups = list(ds.group_by_source().items())
    n_out = n_src = 0
    with tempfile.TemporaryDirectory() as tmp:
        for base_index, items in groups:
            if n_out >= count:
                break
            t0 = time.perf_counter()
            image = load_image(base[base_index])
            stages["decode (per source)"] += time.perf_counter() - t0
            n_src += 1
            sample = base[base_index]
            for _pos, config in items:
                t0 = time.perf_counter()
                out, _ = apply_corruption(
                    config, image, sample.keypoints, rng=sample_rng(0, sample.id, config)
                )
                t1 = time.perf_counter()
                _ok, buf = cv2.imencode(".png", cv2.cvtColor(out, cv2.COLOR_RGB2BGR))
                data = buf.tobytes()
                t2 = time.perf_counter()
                hashlib.sha256(data).hexdigest()
                t3 = time.perf_counter()
                path = Path(tmp, f"{n_out}.png")
                with open(path, "wb") as f:
                    f.write(data)
                    f.flush()
                    t4 = time.perf_counter()
                    os.fsync(f.fileno())
                t5 = time.perf_counter()
                stages["corrupt"] += t1 - t0
                stages["encode PNG"] += t2 - t1
                stages["sha256"] += t3 - t2
                stages["write"] += t4 - t3
                stages["fsync (only with --fsync)"] += t5 - t4
                n_out += 1
    per = {k: 1000 * v / n_out for k, v in stages.items() if k != "decode (per source)"}
    per["decode, shared by the outputs of a source"] = 1000 * stages["decode (per source)"] / n_out
    per["decode, once per output (naive)"] = 1000 * stages["decode (per source)"] / n_src
    return per


def real_frame_bytes() -> float | None:
    """Mean PNG size of the eleven configurations applied to the real STB frame."""
    bgr = cv2.imread(str(REAL_FRAME), cv2.IMREAD_COLOR)
    if bgr is None:
        return None
    rgb = bgr[..., ::-1].copy()
    kps = np.array([[260.0, 180.0], [380.0, 300.0], [320.0, 240.0]])
    sizes = []
    for config in CONFIGS:
        out, _ = apply_corruption(config, rgb, kps, rng=sample_rng(0, "real", config))
        sizes.append(len(cv2.imencode(".png", out[..., ::-1].copy())[1]))
    return float(np.mean(sizes))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=42, help="frames per sequence (default: 42)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (default: 3)")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "kc_bench_stb")
    parser.add_argument("--workers", default="1,2", help="worker counts to time (default: 1,2)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    args = parser.parse_args()
    worker_counts = [int(w) for w in args.workers.split(",")]

    root = ensure_tree(args.cache, args.frames)
    load_before = os.getloadavg()
    sources = len(STB(root, "train")) + len(STB(root, "val"))
    candidates = ["naive", *(f"workers={w}" for w in worker_counts)]
    rates: dict[str, list[float]] = {c: [] for c in candidates}
    cpu_ms: dict[str, list[float]] = {c: [] for c in candidates}
    ratios: dict[str, list[float]] = {c: [] for c in candidates[1:]}
    sizes: list[int] = []
    outputs = 0
    with tempfile.TemporaryDirectory(dir=args.cache) as scratch:
        for r in range(args.rounds):
            order = candidates[r % len(candidates) :] + candidates[: r % len(candidates)]
            round_rate = {}
            for cand in order:
                out = Path(scratch, f"{cand}-{r}")
                cpu0 = cpu_seconds()
                t0 = time.perf_counter()
                n = naive(root, out) if cand == "naive" else ours(root, out, int(cand.split("=")[1]))
                seconds = time.perf_counter() - t0
                cpu_ms[cand].append(1000 * (cpu_seconds() - cpu0) / n)
                outputs = n
                round_rate[cand] = n / seconds
                rates[cand].append(n / seconds)
                if cand != "naive" and not sizes:
                    sizes = output_sizes(out)
                print(f"round {r + 1}: {cand:<10} {n} images in {seconds:6.1f} s = {n / seconds:6.1f}/s")
                with contextlib.suppress(OSError):
                    shutil.rmtree(out)
            for cand in candidates[1:]:
                ratios[cand].append(round_rate[cand] / round_rate["naive"])

    load_after = os.getloadavg()
    breakdown = stage_breakdown(root)
    real_bytes = real_frame_bytes()
    mean_bytes = float(np.mean(sizes))
    print()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, OpenCV {cv2.__version__}, NumPy {np.__version__}"
    )
    print(
        f"load average (1, 5, 15 min) before: {', '.join(f'{v:.2f}' for v in load_before)}; "
        f"after: {', '.join(f'{v:.2f}' for v in load_after)}"
    )
    print(f"tree: {root} ({sources} source images, 640x480; {outputs} outputs, 11 configurations x 20%)")
    print(
        f"{'candidate':<12}{'images/s (median)':>18}{'vs naive':>10}{'CPU ms/image':>14}"
        f"{'full STB (79,200)':>20}"
    )
    for cand in candidates:
        rate = statistics.median(rates[cand])
        ratio = statistics.median(ratios[cand]) if cand in ratios else 1.0
        hours = FULL_STB_OUTPUTS / rate / 3600
        cpu = statistics.median(cpu_ms[cand])
        print(f"{cand:<12}{rate:>18.1f}{ratio:>9.2f}x{cpu:>14.1f}{hours:>18.2f} h")
    print("\nper-output cost of each stage (ms, one process):")
    for stage, ms in breakdown.items():
        print(f"  {stage:<44}{ms:6.2f}")
    print(
        f"\ndisk: mean {mean_bytes / 1e3:.0f} kB per output on this synthetic tree -> "
        f"{mean_bytes * FULL_STB_OUTPUTS / 1e9:.1f} GB for the full STB"
    )
    if real_bytes:
        print(
            f"      mean {real_bytes / 1e3:.0f} kB per output on the real STB frame -> "
            f"{real_bytes * FULL_STB_OUTPUTS / 1e9:.1f} GB for the full STB"
        )

    two = f"workers={max(worker_counts)}"
    result = {
        "sources": sources,
        "outputs": outputs,
        "rounds": args.rounds,
        "rates": rates,
        "ratios": ratios,
        "cpu_ms_per_image": cpu_ms,
        "stage_ms": breakdown,
        "mean_bytes_synthetic": mean_bytes,
        "mean_bytes_real_frame": real_bytes,
        "cores": os.cpu_count(),
        "load_before": load_before,
        "load_after": load_after,
    }
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    if two in ratios and max(worker_counts) >= 2 and statistics.median(ratios[two]) < TARGET:
        print(f"\nbelow target: {two} is {statistics.median(ratios[two]):.2f}x the naive loop (< {TARGET}x)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
