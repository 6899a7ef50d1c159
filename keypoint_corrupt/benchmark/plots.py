"""Figures of a benchmark: PCK curves, predictions over corrupted images, performance by severity.

Matplotlib's object API with the Agg canvas only (no pyplot state, no display needed).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from keypoint_corrupt.benchmark.evaluate import STANDARD, BenchmarkResult, Example
from keypoint_corrupt.schema import KeypointSchema, get_schema

__all__ = ["HAND_EDGES", "plot_examples", "plot_pck_curves", "plot_severity_curves"]

#: Bones of a 21-joint hand in hand3d's (RHD) order (the ``"rhd"`` schema's edges): the default
#: for 21 joints when no schema is given.
HAND_EDGES: tuple[tuple[int, int], ...] = tuple(get_schema("rhd").edge_indices())


def _edges(schema: KeypointSchema | str | None, joints: int) -> list[tuple[int, int]]:
    """Return the bones to draw for ``joints`` keypoints: the schema's, else RHD's for 21 joints."""
    if schema is not None:
        resolved = get_schema(schema)
        if len(resolved) != joints:
            raise ValueError(f"schema {resolved.name!r} has {len(resolved)} joints, the examples {joints}")
        return resolved.edge_indices()
    return list(HAND_EDGES) if joints == 21 else []


def _save(fig: Figure, path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=110)
    return path


def plot_pck_curves(results: Sequence[tuple[str, BenchmarkResult]], path: str | os.PathLike[str]) -> Path:
    """Write one panel per model with one PCK curve per row (standard in black).

    Parameters
    ----------
    results : sequence of (label, BenchmarkResult)
        One or more models evaluated on the same rows.
    path : path
        Output PNG.

    Returns
    -------
    pathlib.Path
    """
    n = len(results)
    fig = Figure(figsize=(6.4 * n, 4.8), layout="constrained")
    axes = fig.subplots(1, n, squeeze=False)[0]
    for ax, (label, res) in zip(axes, results, strict=True):
        names = list(res.rows)
        colours = _colours(len(names))
        for name, colour in zip(names, colours, strict=True):
            m = res.rows[name].metrics
            standard = name == STANDARD
            style = {"color": "black" if standard else colour, "linewidth": 2.4 if standard else 1.3}
            ax.plot(m.thresholds, m.pck, label=f"{name} (AUC {m.auc:.3f})", **style)
        ax.set_xlim(float(res.thresholds[0]), float(res.thresholds[-1]))
        ax.set_ylim(0.0, 1.0)
        ax.set_xlabel("threshold (px)")
        ax.set_ylabel("PCK")
        ax.set_title(f"PCK per configuration: {label}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    return _save(fig, path)


def _colours(n: int) -> list[tuple[float, float, float, float]]:
    from matplotlib import colormaps

    cmap = colormaps["tab20"]
    return [cmap(i % 20) for i in range(n)]


def _draw_hand(
    ax, kp: np.ndarray, vis: np.ndarray, colour: str, marker: str, edges: Sequence[tuple[int, int]]
) -> None:
    for a, b in edges:
        if vis[a] and vis[b]:
            ax.plot([kp[a, 0], kp[b, 0]], [kp[a, 1], kp[b, 1]], color=colour, linewidth=1.0, alpha=0.9)
    ax.scatter(kp[vis, 0], kp[vis, 1], s=9, c=colour, marker=marker, linewidths=0.8, zorder=3)


def plot_examples(
    examples: Sequence[Example],
    path: str | os.PathLike[str],
    compare: dict[tuple[str, str], np.ndarray] | None = None,
    labels: tuple[str, str] = ("prediction", "compare"),
    columns: int = 4,
    schema: KeypointSchema | str | None = None,
) -> Path:
    """Write a grid of evaluated images: ground truth (green), prediction (red), compare (blue).

    Each panel is zoomed on the hand (the ground-truth box, grown by 60%).

    Parameters
    ----------
    examples : sequence of Example
        From :attr:`BenchmarkResult.examples`.
    path : path
        Output PNG.
    compare : dict, optional
        ``(row, id) -> J x 2`` predictions of a second model.
    labels : (str, str)
        Legend labels of the prediction and of the comparison.
    columns : int
        Panels per figure row.
    schema : KeypointSchema or str, optional
        The keypoints' schema (e.g. the dataset's ``.schema``): its edges are drawn. Default:
        an example's own ``schema`` attribute if it has one, else RHD's bones for 21 joints
        (pass ``"hand21"`` for FreiHAND-order hands, whose wrist joins the finger bases).

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> import tempfile, pathlib
    >>> kp = np.random.default_rng(0).uniform(20, 60, (21, 2))
    >>> ex = Example("standard", "a", np.zeros((80, 80, 3), np.uint8), kp, np.ones(21, bool), kp + 1)
    >>> out = plot_examples([ex], pathlib.Path(tempfile.mkdtemp()) / "ex.png", schema="hand21")
    >>> out.name
    'ex.png'
    """
    n = max(1, len(examples))
    cols = min(columns, n)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(3.2 * cols, 3.0 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).reshape(-1)
    for ax in axes:
        ax.set_axis_off()
    for ax, ex in zip(axes, examples, strict=False):
        h, w = ex.image.shape[:2]
        ax.imshow(ex.image, interpolation="bilinear")
        vis = np.asarray(ex.visibility, bool)
        edges = _edges(schema if schema is not None else getattr(ex, "schema", None), len(vis))
        _draw_hand(ax, np.asarray(ex.keypoints), vis, "lime", "o", edges)
        _draw_hand(ax, np.asarray(ex.prediction), vis, "red", "x", edges)
        other = (compare or {}).get((ex.row, ex.id))
        if other is not None:
            _draw_hand(ax, np.asarray(other), vis, "deepskyblue", "+", edges)
        pts = np.asarray(ex.keypoints)[vis] if vis.any() else np.array([[w / 2, h / 2]])
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        half = 0.8 * max(float(np.max(hi - lo)), 40.0)
        mid = 0.5 * (lo + hi)
        ax.set_xlim(max(-0.5, mid[0] - half), min(w - 0.5, mid[0] + half))
        ax.set_ylim(min(h - 0.5, mid[1] + half), max(-0.5, mid[1] - half))
        ax.set_title(f"{ex.row}\n{ex.id}", fontsize=7)
    legend = f"green: ground truth, red: {labels[0]}" + (f", blue: {labels[1]}" if compare else "")
    fig.suptitle(legend, fontsize=9)
    return _save(fig, path)


def plot_severity_curves(
    sections: Sequence[tuple[str, Mapping[str, Any]]], path: str | os.PathLike[str]
) -> Path:
    """Write performance against severity: one line per corruption, the clean figure dashed.

    One row of panels per model, one panel per metric of the suite tables (AUC, mean EPE).
    A corruption with one severity is a single marker; a missing cell breaks its line.

    Parameters
    ----------
    sections : sequence of (label, suite section)
        The ``suite`` sections of ``report.json`` (``None`` where a value does not exist).
    path : path
        Output PNG.

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> import tempfile, pathlib
    >>> block = {"clean": 0.8, "cells": {"blur": {"1": 0.7, "2": 0.5}, "noise": {"1": 0.4}}}
    >>> sec = {"name": "mine", "severities": [1, 2], "corruptions": ["blur", "noise"],
    ...        "metrics": {"auc": block, "mean_epe": {"clean": 5.0, "cells": {"blur": {"1": 6.0}}}}}
    >>> plot_severity_curves([("model", sec)], pathlib.Path(tempfile.mkdtemp()) / "s.png").name
    's.png'
    """
    metrics = ("auc", "mean_epe")
    titles = {"auc": "AUC (higher is better)", "mean_epe": "mean EPE, px (lower is better)"}
    fig = Figure(figsize=(6.0 * len(metrics), 4.2 * len(sections)), layout="constrained")
    axes = fig.subplots(len(sections), len(metrics), squeeze=False)
    for row, (label, sec) in zip(axes, sections, strict=True):
        severities = [int(s) for s in sec["severities"]]
        left_out = set(sec.get("left_out") or ())  # no cell at these severities: no line
        shown = [c for c in sec["corruptions"] if c not in left_out]
        colours = _distinct_colours(len(shown))
        for ax, metric in zip(row, metrics, strict=True):
            block = sec["metrics"][metric]
            for c, colour in zip(shown, colours, strict=True):
                cells = block["cells"].get(c, {})
                ys = [np.nan if cells.get(str(s)) is None else float(cells[str(s)]) for s in severities]
                ax.plot(severities, ys, marker="o", markersize=4, color=colour, label=c)
            if block.get("clean") is not None:
                ax.axhline(float(block["clean"]), color="black", linestyle="--", linewidth=1.4, label="clean")
            ax.set_xticks(severities)
            ax.set_xlabel("severity")
            ax.set_ylabel(titles[metric])
            ax.set_title(f"{label}: suite {sec['name']}", fontsize=9)
            if metric == "auc":
                ax.set_ylim(0.0, 1.0)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7, loc="best")
    return _save(fig, path)


def _distinct_colours(n: int) -> list[tuple[float, float, float, float]]:
    """tab20's ten strong colours first, then their pale partners (neighbours stay distinct)."""
    from matplotlib import colormaps

    cmap = colormaps["tab20"]
    return [cmap((2 * i) % 20 + (i // 10) % 2) for i in range(n)]
