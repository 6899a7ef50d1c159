"""Summarise a ``benchmarks/gpu/session.sh`` work folder as Markdown on stdout.

Usage::

    python benchmarks/gpu/summarize.py /tmp/kc_gpu > summary.md
    python benchmarks/gpu/summarize.py --throughput /tmp/kc_gpu   # the torch stage's ratio only

Sections: the steps with exit status and seconds; the torch stage's figures (issue 15: the
pytest result, the agreement tables, bench_torch's table and ImageNet-C grid, and the whole
benchmark's images/s with NumPy and with device corruption against model-only speed); one
row per training run (samples, epochs, training seconds, first and final validation mean
EPE); then every ``speed.md`` and the head of every ``report.md``, as the benchmark wrote them.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any


def training_table(runs: Path) -> list[str]:
    rows = [
        "| run | device | epochs | steps/epoch | train s | val mean EPE, first epoch | final |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for run in sorted(p for p in runs.iterdir() if p.is_dir()) if runs.is_dir() else []:
        history = run / "history.json"
        if not history.is_file():
            note = "interrupted (last.pt only)" if (run / "last.pt").is_file() else "failed"
            rows.append(f"| {run.name} | {note} | | | | | |")
            continue
        h = json.loads(history.read_text())
        epe = h.get("val_mean_epe") or []
        first, last = (f"{epe[0]:.2f}", f"{epe[-1]:.2f}") if epe else ("-", "-")
        rows.append(
            f"| {run.name} | {h['device']} | {h['epochs']} | {h['steps_per_epoch']} | "
            f"{h['train_seconds']:.0f} | {first} | {last} |"
        )
    return rows


def _json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except (OSError, ValueError):
        return None


def throughput_table(torch_dir: Path) -> list[str]:
    """The whole benchmark's images/s, NumPy vs device corruption, against model-only speed.

    Model-only: ``benchmark --speed`` throughput of the same model, precision and batch (random
    weights), and, per run, images over the seconds spent inside the predictor.
    """
    speed = _json(torch_dir / "speed-model" / "speed.json")
    model = speed["results"][0] if speed and speed.get("results") else None
    rows = [
        "| run | images | seconds | images/s | in predictor | waiting for data | in-predictor images/s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    found: dict[str, float] = {}
    runs = (("bench-numpy", "NumPy corruption"), ("bench-device", "--corrupt-on device"))
    for name, label in runs:
        doc = _json(torch_dir / name / "report.json")
        if doc is None:
            rows.append(f"| {label} | missing | | | | | |")
            continue
        t = doc["timing"]
        found[name] = t["images_per_second"]
        in_run = t["images"] / t["predict_seconds"] if t["predict_seconds"] else math.nan
        rows.append(
            f"| {label} | {t['images']} | {t['seconds']:.1f} | {t['images_per_second']:.1f} | "
            f"{100 * t['predict_share']:.0f}% | {100 * t['data_wait_share']:.0f}% | {in_run:.1f} |"
        )
    lines = [*rows, ""]
    if model is None:
        return [*lines, "model-only speed: missing (speed-model/speed.json)", ""]
    lines.append(
        f"model-only (`benchmark --speed`, {model['model']}, {model['precision']}, channels-last "
        f"{model['channels_last']}, batch {model['large_batch']}): {model['throughput']:.1f} images/s"
    )
    lines.append("")
    for name, label in (("bench-device", "device corruption"), ("bench-numpy", "NumPy corruption")):
        if name in found:
            ratio = found[name] / model["throughput"]
            goal = " (goal >= 80%)" if name == "bench-device" else ""
            lines.append(f"- whole benchmark with {label} / model-only: {100 * ratio:.0f}%{goal}")
    return [*lines, ""]


def torch_section(work: Path) -> list[str]:
    """Issue 15's figures from ``work/torch``, or nothing when the torch stage did not run."""
    d = work / "torch"
    if not d.is_dir():
        return []
    lines = ["## Batched torch corruptions (issue 15)", ""]
    pytest_out = d / "pytest.txt"
    if pytest_out.is_file():
        tail = [line for line in pytest_out.read_text().splitlines() if line.strip()][-1:]
        lines += [f"pytest: `{tail[0] if tail else 'no output'}`", ""]
    for name, title in (
        ("parity-reference.md", "Agreement with the CPU path: the eleven configurations"),
        ("parity-imagenet-c.md", "Agreement with the CPU kernels: ImageNet-C"),
        ("bench_torch.md", "bench_torch: ms per batch against the CPU loop and kornia; ImageNet-C grid"),
    ):
        if (d / name).is_file():
            text = (d / name).read_text().rstrip()
            lines += [f"### {title}", "", text, ""]
    lines += ["### Whole benchmark: corruption on the device vs model-only speed", ""]
    return lines + throughput_table(d)


def main(work: Path) -> int:
    lines = ["# GPU session summary", ""]
    steps = work / "steps.md"
    if steps.is_file():
        lines += ["## Steps", "", steps.read_text().rstrip(), ""]
    lines += torch_section(work)
    lines += ["## Training (synthetic STB-layout data, not the real STB)", ""]
    lines += [*training_table(work / "runs"), ""]
    for md in sorted(work.glob("*/speed.md")):
        lines += [f"## {md.parent.name}", "", md.read_text().rstrip(), ""]
    for md in sorted(work.glob("*/report.md")):
        head = md.read_text().splitlines()[:60]
        lines += [f"## {md.parent.name}", "", *head, ""]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--throughput"]:
        print("\n".join(throughput_table(Path(sys.argv[2]) / "torch")))
        sys.exit(0)
    sys.exit(main(Path(sys.argv[1])))
