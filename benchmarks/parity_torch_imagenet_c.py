"""Agreement of the batched torch ImageNet-C kernels with the CPU kernels, sample by sample.

Usage::

    python benchmarks/parity_torch_imagenet_c.py [--device cpu|cuda] [--names fog,snow] [--textures DIR]

Each kernel of ``keypoint_corrupt.torch.imagenet_c`` (a missing one is skipped, with a note) runs
on two real photographs of ``tests/data`` at full size (the STB frame, 480 x 640, and COCO
000000196141, 429 x 640), each as a batch of 5 with severities 1 to 5 (one per sample), uint8 and
float32 (the uint8 image divided by 255); sample ``b`` is compared with
``keypoint_corrupt.functional.imagenet_c.<name>`` on image ``b`` with a generator in the same
state: ``numpy.random.default_rng(b)``, and ``numpy.random.RandomState(b)`` too (the legacy
draws). Printed per kernel and dtype: the largest difference in uint8 levels (float32 results
times 255) and the share of values that differ, as markdown rows. frost reads the textures from
``--textures``, else where the CPU kernel finds them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

from keypoint_corrupt.functional import imagenet_c as cpu
from keypoint_corrupt.torch import imagenet_c
from keypoint_corrupt.torch._batch import to_numpy

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
IMAGES = [DATA / "stb" / "SK_color_0.png", DATA / "body" / "coco" / "000000196141.jpg"]
SOURCES = {"Generator": np.random.default_rng, "RandomState": np.random.RandomState}


def measure(name: str, device: torch.device, textures: str | None) -> list[str]:
    """Markdown rows (uint8, float32) of kernel ``name``: max difference in levels and share differing."""
    kernel = imagenet_c.get_kernel(name)
    extra = {"textures": textures} if name == "frost" and textures else {}
    rows = []
    for dtype in ("uint8", "float32"):
        worst, differing, total = 0.0, 0, 0
        for path in IMAGES:
            bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if bgr is None:
                raise FileNotFoundError(f"cannot read the fixture {path}")
            rgb = np.ascontiguousarray(bgr[..., ::-1])
            x = torch.from_numpy(rgb).permute(2, 0, 1)[None].repeat(5, 1, 1, 1).contiguous()
            x = (x if dtype == "uint8" else x.to(torch.float32) / 255.0).to(device)
            for make in SOURCES.values():
                out = to_numpy(kernel(x, [1, 2, 3, 4, 5], rngs=[make(b) for b in range(5)], **extra))
                for b, image in enumerate(to_numpy(x)):
                    want = cpu.CORRUPTIONS[name](image, b + 1, rng=make(b), **extra)
                    diff = np.abs(out[b].astype(np.float64) - want.astype(np.float64))
                    diff *= 1.0 if dtype == "uint8" else 255.0
                    worst = max(worst, float(diff.max()))
                    differing += int(np.count_nonzero(diff))
                    total += diff.size
        rows.append(f"| {name} | {dtype} | {worst:.3g} levels | {differing / total:.4%} |")
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--names", default=",".join(imagenet_c.NAMES), help="comma-separated kernel names")
    ap.add_argument("--textures", help="folder of the frost textures (default: where frost finds them)")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    print(f"# torch {torch.__version__}, OpenCV {cv2.__version__}, device {device}")
    print("| kernel | dtype | max diff | differing values |")
    print("|---|---|---|---|")
    for name in args.names.split(","):
        try:
            rows = measure(name, device, args.textures)
        except NotImplementedError as exc:
            print(f"<!-- {name}: skipped ({exc}) -->")
            continue
        print("\n".join(rows), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
