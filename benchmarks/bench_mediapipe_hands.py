"""MediaPipe Hands under the eleven corruptions, on the four real hand sets in tests/data.

Every image of each set, every configuration (``fraction=1.0``), whole images in; the hand
MediaPipe finds is matched to the annotated one by the ground-truth crop box (see
docs/adapters.md). Prints one Markdown table (hands found and mean EPE per set and row) and
writes each set's full report, with its raw predictions (``predictions.npz``), under ``--out``.

    pip install -e ".[mediapipe]" && pip install --no-deps mediapipe==0.10.14
    python benchmarks/bench_mediapipe_hands.py --out reports/mediapipe-hands
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from keypoint_corrupt.adapters.mediapipe import MediaPipeHands
from keypoint_corrupt.benchmark import evaluate, write_report
from keypoint_corrupt.datasets import CocoKeypoints
from keypoint_corrupt.registry import CONFIGS

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "hands"
# RHD's file names its joints misleadingly (tests/data/README.md): its order is given, not matched.
SETS = {"freihand": None, "onehand10k": None, "panoptic": None, "rhd": "rhd"}


def _cell(metrics) -> str:
    found = f"{metrics.instances_found}/{metrics.num_instances}"
    epe = "-" if math.isnan(metrics.mean_epe) else f"{metrics.mean_epe:.1f}"
    return f"{found} | {epe}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("reports/mediapipe-hands"), help="report folders")
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise (default 0)")
    args = parser.parse_args()
    results = {}
    with MediaPipeHands() as predict:
        for name, schema in SETS.items():
            (annotations,) = sorted((DATA / name).glob("*.json"))
            dataset = CocoKeypoints(annotations, schema=schema)
            result = evaluate(predict, dataset, configs=CONFIGS, fraction=1.0, seed=args.seed, batch_size=8)
            write_report(result, args.out / name, label=f"MediaPipe Hands on {name}")
            results[name] = result
    names = list(SETS)
    print("| row | " + " | ".join(f"{n} found | {n} EPE px" for n in names) + " |")
    print("| --- | " + " | ".join("---: | ---:" for _ in names) + " |")
    for row in results[names[0]].rows:
        print(f"| {row} | " + " | ".join(_cell(results[n].rows[row].metrics) for n in names) + " |")
    for name in names:
        s = results[name].summary
        if s is not None:
            print(f"{name}: mPC AUC {s.mpc['auc']:.3f}, rPC AUC {s.rpc['auc']:.3f}")


if __name__ == "__main__":
    main()
