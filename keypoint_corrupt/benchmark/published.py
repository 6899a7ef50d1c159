"""The reference study's published figures (Costa et al., Tables I and II), as data.

Figures are copied from ``../shared/docs/reference-results.md``: PoseNet dense and depthwise
trained on STB's S-train (protocol 1) or S-train* (protocol 2) and evaluated on S-val and
S-val*. EPEs are in pixels of the original 640 x 480 images, AUC over 0..30 px.

Note that the paper's depthwise AUC on clean S-val differs between its tables (Table I
0.723, Table II 0.743); both are kept as published.

Examples
--------
>>> published_row("dense", "motion-30")
{'mean_epe': 31.039, 'median_epe': 7.331, 'auc': 0.599}
>>> TABLE_I["depthwise"]["avg_ms"]
25.5
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "SOURCE",
    "STANDARD",
    "TABLE_I",
    "TABLE_II",
    "TRAIN_SETS",
    "VARIANTS",
    "published_row",
    "published_variant",
]

SOURCE = (
    "Costa et al., An Investigation of 2D Keypoints Detection on Challenging Scenarios Using "
    "Depthwise Separable Convolutions: A Hand Pose Estimation Case Study (Tables I and II)"
)
#: Name of the clean row (Table II's "standard").
STANDARD = "standard"
VARIANTS = ("dense", "depthwise")
TRAIN_SETS = ("S-train", "S-train*")

#: Table I: S-train -> S-val, per variant.
TABLE_I: dict[str, dict[str, float]] = {
    "dense": {
        "mean_epe": 16.95,
        "median_epe": 6.09,
        "auc": 0.733,
        "avg_ms": 29.31,
        "avg_fps": 34.0,
        "min_ms": 27.19,
        "min_fps": 37.0,
    },
    "depthwise": {
        "mean_epe": 17.60,
        "median_epe": 6.31,
        "auc": 0.723,
        "avg_ms": 25.50,
        "avg_fps": 39.0,
        "min_ms": 20.55,
        "min_fps": 49.0,
    },
}


def _r(mean: float, median: float, area: float) -> dict[str, float]:
    return {"mean_epe": mean, "median_epe": median, "auc": area}


#: Table II: ``TABLE_II[train_set][config][variant]`` = mean EPE, median EPE, AUC on S-val*.
#: The standard (clean) row exists for S-train only.
TABLE_II: dict[str, dict[str, dict[str, dict[str, float]]]] = {
    "S-train": {
        "standard": {"dense": _r(16.958, 6.095, 0.733), "depthwise": _r(17.608, 6.313, 0.743)},
        "defocus-7": {"dense": _r(22.745, 6.577, 0.681), "depthwise": _r(23.939, 6.785, 0.670)},
        "defocus-13": {"dense": _r(26.251, 7.121, 0.628), "depthwise": _r(27.923, 7.313, 0.623)},
        "defocus-21": {"dense": _r(21.790, 6.871, 0.664), "depthwise": _r(22.725, 7.357, 0.644)},
        "motion-15": {"dense": _r(26.331, 7.122, 0.627), "depthwise": _r(27.861, 7.298, 0.624)},
        "motion-30": {"dense": _r(31.039, 7.331, 0.599), "depthwise": _r(27.914, 7.730, 0.609)},
        "motion-45": {"dense": _r(32.475, 7.330, 0.597), "depthwise": _r(35.906, 7.592, 0.589)},
        "occlusion-10": {"dense": _r(18.372, 6.207, 0.722), "depthwise": _r(19.135, 6.427, 0.711)},
        "occlusion-20": {"dense": _r(22.085, 6.412, 0.697), "depthwise": _r(22.902, 6.663, 0.686)},
        "occlusion-30": {"dense": _r(28.583, 6.731, 0.662), "depthwise": _r(29.854, 6.980, 0.651)},
        "noise-gaussian": {"dense": _r(38.845, 7.326, 0.597), "depthwise": _r(38.997, 7.588, 0.587)},
        "noise-saltpepper": {"dense": _r(32.361, 7.323, 0.598), "depthwise": _r(38.895, 7.599, 0.588)},
    },
    "S-train*": {
        "defocus-7": {"dense": _r(23.153, 6.798, 0.671), "depthwise": _r(24.266, 7.062, 0.659)},
        "defocus-13": {"dense": _r(26.784, 7.387, 0.626), "depthwise": _r(26.120, 7.487, 0.626)},
        "defocus-21": {"dense": _r(21.816, 6.875, 0.663), "depthwise": _r(22.719, 7.354, 0.644)},
        "motion-15": {"dense": _r(24.761, 7.059, 0.644), "depthwise": _r(26.965, 7.279, 0.634)},
        "motion-30": {"dense": _r(28.027, 8.345, 0.585), "depthwise": _r(27.930, 7.373, 0.609)},
        "motion-45": {"dense": _r(28.422, 7.894, 0.609), "depthwise": _r(31.142, 8.111, 0.593)},
        "occlusion-10": {"dense": _r(18.725, 6.426, 0.717), "depthwise": _r(18.939, 6.663, 0.710)},
        "occlusion-20": {"dense": _r(21.444, 6.497, 0.696), "depthwise": _r(21.222, 6.563, 0.699)},
        "occlusion-30": {"dense": _r(27.783, 6.843, 0.667), "depthwise": _r(27.717, 6.800, 0.670)},
        "noise-gaussian": {"dense": _r(26.109, 7.062, 0.636), "depthwise": _r(25.610, 7.238, 0.637)},
        "noise-saltpepper": {"dense": _r(30.161, 8.075, 0.586), "depthwise": _r(28.826, 7.939, 0.599)},
    },
}


def published_variant(model: str | None) -> str | None:
    """Return the PoseNet variant a model name refers to (``"posenet-dense"`` -> ``"dense"``), else ``None``.

    Examples
    --------
    >>> published_variant("posenet-depthwise"), published_variant("nerpe")
    ('depthwise', None)
    """
    if not model:
        return None
    name = model.lower()
    for variant in VARIANTS:
        if name in (variant, f"posenet-{variant}", f"posenet_{variant}"):
            return variant
    return None


def published_row(variant: str, config: str, train_set: str = "S-train") -> dict[str, Any] | None:
    """Return the published mean EPE / median EPE / AUC of a variant on one row of Table II.

    Parameters
    ----------
    variant : {"dense", "depthwise"}
        PoseNet variant.
    config : str
        ``"standard"`` or a reference configuration name.
    train_set : {"S-train", "S-train*"}
        Training protocol.

    Returns
    -------
    dict or None
        ``None`` when the paper has no such row (e.g. standard under S-train*, or a user
        configuration).
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    if train_set not in TRAIN_SETS:
        raise ValueError(f"train_set must be one of {TRAIN_SETS}, got {train_set!r}")
    row = TABLE_II[train_set].get(config)
    return dict(row[variant]) if row else None
