"""Helpers of the benchmark tests: direct computations from the datasets layer (never collected)."""

from __future__ import annotations

import numpy as np

from keypoint_corrupt.datasets import CorruptedDataset, load_image
from keypoint_corrupt.metrics import keypoint_metrics
from keypoint_corrupt.registry import CONFIGS

#: Crop side used with the tiny model (PoseNet needs a multiple of 8); keeps CPU tests fast.
TINY_CROP = 16


def direct_items(base, configs=CONFIGS, fraction=0.2, seed=0):
    """``{row: [item, ...]}``: standard (whole clean split) then each configuration's subset.

    Built straight from the datasets layer, without the benchmark's sources or batching.
    """
    rows = {"standard": []}
    for sample in base:
        rows["standard"].append(
            {
                "image": load_image(sample),
                "keypoints": sample.keypoints,
                "visibility": sample.visibility,
                "id": sample.id,
            }
        )
    if configs:
        ds = CorruptedDataset(base, configs, fraction, seed, mode="subset")
        for name in configs:
            rows[name] = []
        for i in range(len(ds)):
            item = dict(ds[i])
            sample = base[item["base_index"]]
            item["keypoints"] = sample.keypoints  # float64 ground truth (items carry float32)
            rows[item["config"]].append(item)
    return rows


def direct_user_rows(predict, base, configs=CONFIGS):
    """Metrics of a user ``predict(images, crops)`` computed image by image."""
    from keypoint_corrupt.benchmark import CropInfo
    from keypoint_corrupt.crop import crop_parameters

    out = {}
    for name, items in direct_items(base, configs).items():
        preds, gts, viss = [], [], []
        for it in items:
            kp = np.asarray(it["keypoints"], np.float64)
            vis = np.asarray(it["visibility"], bool)
            center, scale = crop_parameters(kp, vis, it["image"].shape)
            info = CropInfo(np.asarray([center]), np.asarray([scale]))
            preds.append(np.asarray(predict(it["image"][None], info), np.float64)[0])
            gts.append(kp)
            viss.append(vis)
        out[name] = (np.stack(preds), keypoint_metrics(np.stack(preds), np.stack(gts), np.stack(viss)))
    return out
