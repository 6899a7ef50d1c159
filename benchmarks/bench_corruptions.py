"""Speed of the corruption kernels against their anchors, in one process.

Usage::

    python benchmarks/bench_corruptions.py [--rounds 60] [--threads 1] [--json out.json]

Every candidate is timed once per round, round-robin, and the median over rounds is
reported, so background load hits all candidates alike. The image is a 640x480 RGB uint8
frame (the real STB frame from tests/data).
Exit status 1 when a target from issue 2 is missed.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import albumentations as A
import cv2
import numpy as np
from skimage.util import random_noise

import keypoint_corrupt as kc
from keypoint_corrupt import functional as F

STB_FRAME = Path(__file__).resolve().parents[1] / "tests" / "data" / "stb" / "SK_color_0.png"


def load_image() -> tuple[np.ndarray, str]:
    if STB_FRAME.is_file():
        bgr = cv2.imread(str(STB_FRAME), cv2.IMREAD_COLOR)
        if bgr is not None and bgr.shape == (480, 640, 3):
            return np.ascontiguousarray(bgr[..., ::-1]), "real STB frame SK_color_0.png"
    return np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8), "seeded random image"


def candidates(img: np.ndarray) -> dict[str, callable]:
    kps = np.array([[250.0, 150.0], [420.0, 360.0], [330.0, 250.0]])
    gen = np.random.default_rng(0)
    a_motion = A.MotionBlur(
        blur_limit=(45, 45), angle_range=(0, 0), direction_range=(0, 0), allow_shifted=False, p=1.0
    )
    a_gauss = A.GaussNoise(std_range=(0.1, 0.1), mean_range=(0, 0), per_channel=True, p=1.0)
    a_sp = A.SaltAndPepper(amount=(0.05, 0.05), salt_vs_pepper=(0.5, 0.5), p=1.0)
    t_motion, t_gauss, t_sp = (
        kc.make_corruption("motion-45"),
        kc.make_corruption("noise-gaussian"),
        (kc.make_corruption("noise-saltpepper")),
    )
    for t in (a_motion, a_gauss, a_sp, t_motion, t_gauss, t_sp):
        t.set_random_seed(0)
    return {
        "defocus-21 (ours)": lambda: F.defocus_blur(img, 21),
        "cv2.GaussianBlur 21": lambda: cv2.GaussianBlur(img, (21, 21), 0),
        "motion-45 (ours)": lambda: F.motion_blur(img, 45),
        "motion-45 transform (ours)": lambda: t_motion(image=img),
        "A.MotionBlur 45 horizontal": lambda: a_motion(image=img),
        "gaussian (ours)": lambda: F.gaussian_noise(img, var=0.01, rng=gen),
        "gaussian transform (ours)": lambda: t_gauss(image=img),
        "skimage gaussian": lambda: random_noise(img, mode="gaussian", var=0.01, rng=gen),
        "A.GaussNoise std 0.1": lambda: a_gauss(image=img),
        "salt&pepper per channel (ours)": lambda: F.salt_pepper_noise(img, amount=0.05, rng=gen),
        "salt&pepper transform (ours)": lambda: t_sp(image=img),
        "skimage s&p": lambda: random_noise(img, mode="s&p", amount=0.05, rng=gen),
        "A.SaltAndPepper 0.05": lambda: a_sp(image=img),
        "occlusion-30 (ours)": lambda: F.occlude(img, kps, 0.3, rng=gen),
    }


def measure(funcs: dict[str, callable], rounds: int, reps: int) -> dict[str, dict[str, float]]:
    """Median ms per candidate, warm and cold.

    Each round runs every candidate in turn (so drifting background load hits all alike) as
    a block of ``reps`` back-to-back calls. ``cold`` is the block's first call, made right
    after the other candidates flushed the caches; ``warm`` is the median of the rest.
    """
    warm: dict[str, list[float]] = {k: [] for k in funcs}
    cold: dict[str, list[float]] = {k: [] for k in funcs}
    for f in funcs.values():  # warm-up: caches, lazy imports, noise tables
        f()
    for _ in range(rounds):
        for name, f in funcs.items():
            times = []
            for _ in range(reps):
                t0 = time.perf_counter()
                f()
                times.append(time.perf_counter() - t0)
            cold[name].append(times[0])
            warm[name].extend(times[1:])
    return {
        k: {"warm": statistics.median(warm[k]) * 1e3, "cold": statistics.median(cold[k]) * 1e3} for k in funcs
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--reps", type=int, default=5, help="back-to-back calls per candidate and round")
    ap.add_argument(
        "--threads", type=int, default=1, help="cv2.setNumThreads (anchors were taken on one core)"
    )
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)
    cv2.setNumThreads(args.threads)
    img, source = load_image()
    both = measure(candidates(img), args.rounds, args.reps)
    ms = {k: v["warm"] for k, v in both.items()}
    print(
        f"# {source}, {img.shape[1]}x{img.shape[0]} RGB uint8; "
        f"{args.rounds} rounds x {args.reps} calls; cv2 threads {args.threads}"
    )
    print(
        f"# python {platform.python_version()}, numpy {np.__version__}, opencv {cv2.__version__}, "
        f"albumentations {A.__version__}, {platform.machine()}"
    )
    width = max(map(len, ms))
    print(f"{'candidate':<{width}}  {'warm ms':>8}  {'cold ms':>8}")
    for name, v in both.items():
        print(f"{name:<{width}}  {v['warm']:8.3f}  {v['cold']:8.3f}")

    checks = [
        ("motion-45 vs A.MotionBlur", ms["A.MotionBlur 45 horizontal"] / ms["motion-45 (ours)"], ">=", 20.0),
        ("gaussian vs skimage", ms["skimage gaussian"] / ms["gaussian (ours)"], ">=", 3.0),
        ("gaussian vs A.GaussNoise", ms["A.GaussNoise std 0.1"] / ms["gaussian (ours)"], ">=", 1.5),
        ("s&p vs skimage", ms["skimage s&p"] / ms["salt&pepper per channel (ours)"], ">=", 4.0),
        (
            "s&p vs A.SaltAndPepper",
            ms["A.SaltAndPepper 0.05"] / ms["salt&pepper per channel (ours)"],
            ">=",
            1.0,
        ),
        ("defocus time / cv2.GaussianBlur", ms["defocus-21 (ours)"] / ms["cv2.GaussianBlur 21"], "<=", 1.10),
        ("occlusion-30 ms", ms["occlusion-30 (ours)"], "<=", 0.5),
    ]
    print("\ntargets (warm medians):")
    failed = 0
    for label, value, op, target in checks:
        ok = value >= target if op == ">=" else value <= target
        failed += not ok
        unit = "" if label.endswith("ms") else "x"
        print(f"{label:<34} {value:8.2f}{unit}  target {op} {target:g}{unit}  {'ok' if ok else 'MISSED'}")
    if args.json:
        args.json.write_text(json.dumps({"ms": both, "checks": checks}, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
