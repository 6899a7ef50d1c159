"""Summarise a ``benchmarks/gpu/session.sh`` work folder as Markdown on stdout.

Usage::

    python benchmarks/gpu/summarize.py /tmp/kc_gpu > summary.md

Sections: the steps with exit status and seconds; one row per training run (samples,
epochs, training seconds, first and final validation mean EPE); then every ``speed.md`` and
the head of every ``report.md``, as the benchmark wrote them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


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


def main(work: Path) -> int:
    lines = ["# GPU session summary", ""]
    steps = work / "steps.md"
    if steps.is_file():
        lines += ["## Steps", "", steps.read_text().rstrip(), ""]
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
    sys.exit(main(Path(sys.argv[1])))
