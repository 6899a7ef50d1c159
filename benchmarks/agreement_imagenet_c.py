"""Agreement of the ImageNet-C kernels with imagecorruptions 1.1.2, on real images of several sizes.

Usage::

    python benchmarks/agreement_imagenet_c.py [--seeds 2] [--markdown]

For every corruption and severity, each image is corrupted by imagecorruptions (NumPy's global
state seeded with ``s``) and by ours with ``numpy.random.RandomState(s)``; the worst case over
images and seeds is reported: the share of identical uint8 values, the largest difference and
the PSNR. ``impulse_noise`` draws from scikit-image's own generator in imagecorruptions, so only
its distribution can agree: for it the share of changed values is compared instead. Needs
``pip install --no-deps imagecorruptions==1.1.2`` (loaded through ``tests/imagenet_c_oracle.py``).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import cv2
import numpy as np

from keypoint_corrupt.functional import imagenet_c

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from imagenet_c_oracle import reference  # noqa: E402

DATA = ROOT / "tests" / "data"
IMAGES = {
    "STB": DATA / "stb" / "SK_color_0.png",
    "RHD": DATA / "hands" / "rhd" / "00111.png",
    "COCO": DATA / "body" / "coco" / "000000196141.jpg",
    "MPII": DATA / "body" / "mpii" / "005808361.jpg",
}
#: imagecorruptions' glass blur takes seconds per call: it runs on the two smallest images only.
SLOW = {"glass_blur": ("RHD", "224 crop")}


def load_images() -> dict[str, np.ndarray]:
    images = {name: np.ascontiguousarray(cv2.imread(str(path))[..., ::-1]) for name, path in IMAGES.items()}
    stb = images["STB"]
    images["224 crop"] = np.ascontiguousarray(stb[100:324, 200:424])
    images["small crop"] = np.ascontiguousarray(stb[50:147, 300:431])
    return images


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def compare(name: str, severity: int, images: dict[str, np.ndarray], seeds: int) -> dict[str, float]:
    func = imagenet_c.CORRUPTIONS[name]
    worst = {"identical": 1.0, "max_diff": 0.0, "psnr": math.inf}
    for label, img in images.items():
        if name in SLOW and label not in SLOW[name]:
            continue
        for seed in range(seeds):
            ours = func(img, severity, rng=np.random.RandomState(seed))
            ref = reference(name, img, severity, seed)
            if name == "impulse_noise":  # distributions only: compare the share of changed values
                gap = abs(float((ours != img).mean()) - float((ref != img).mean()))
                worst["changed_gap"] = max(worst.get("changed_gap", 0.0), gap)
                continue
            diff = np.abs(ours.astype(np.int16) - ref.astype(np.int16))
            worst["identical"] = min(worst["identical"], float((diff == 0).mean()))
            worst["max_diff"] = max(worst["max_diff"], float(diff.max()))
            worst["psnr"] = min(worst["psnr"], psnr(ours, ref))
    return worst


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--only", help="comma-separated corruption names (default: all 19)")
    args = parser.parse_args()
    images = load_images()
    print("sizes:", ", ".join(f"{k} {v.shape[1]}x{v.shape[0]}" for k, v in images.items()))
    names = args.only.split(",") if args.only else list(imagenet_c.CORRUPTIONS)
    print("| corruption | worst identical share (severities 1-5) | max diff | min PSNR (dB) |")
    print("| --- | --- | --- | --- |")
    for name in names:
        rows = [compare(name, s, images, args.seeds) for s in range(1, 6)]
        if name == "impulse_noise":
            gaps = " / ".join(f"{r['changed_gap'] * 100:.2f}" for r in rows)
            print(f"| {name} | distribution only: changed values differ by {gaps} points | - | - |")
            continue
        ident = " / ".join(f"{r['identical'] * 100:.3f}%" for r in rows)
        max_diff = max(r["max_diff"] for r in rows)
        worst_psnr = min(r["psnr"] for r in rows)
        print(f"| {name} | {ident} | {max_diff:g} | {worst_psnr:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
