"""A test-only top-down "model" for AP-10K (never collected): each animal's ground truth plus a seeded jitter.

There is no animal model in the project; this oracle stands in for one so that the documented command
``keypoint-corrupt benchmark --protocol coco --data tests/data/animal/ap10k/test_ap10k.json ... --predict
tests/benchmark/ap10k_oracle.py:JitteredTruth`` runs end to end with an AP that is known to be high but
below 1.0. It answers crop after crop in the protocol's order (every row: images by first appearance,
boxes in file order; ``benchmark/topdown.py``), placing the animal's labelled joints in the crop as
MMPose crops a box (centre of the box clipped to the image, padding 1.25, widened to the 192 x 256
input), then moves each by a fixed Gaussian offset drawn once from ``seed``, in crop pixels. The answers
do not look at the pixels, so every row gets the same AP.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

#: The AP-10K fixture, the default ``data``.
AP10K = Path(__file__).resolve().parents[1] / "data" / "animal" / "ap10k" / "test_ap10k.json"
INPUT_W, INPUT_H, PADDING = 192.0, 256.0, 1.25


def crop_frame(bbox, image):
    """Centre (image pixels) and scale (crop pixels per image pixel) of a box's crop."""
    x, y, w, h = (float(v) for v in bbox)
    x1, y1 = np.clip(x, 0, image["width"] - 1), np.clip(y, 0, image["height"] - 1)
    x2, y2 = np.clip(x + w, 0, image["width"] - 1), np.clip(y + h, 0, image["height"] - 1)
    w, h = x2 - x1, y2 - y1
    return np.array([x1 + w / 2, y1 + h / 2]), INPUT_W / max(PADDING * w, PADDING * h * INPUT_W / INPUT_H)


class JitteredTruth:
    """``predict(crops)``: the ground truth of each animal in its crop, plus ``pixels`` of seeded jitter."""

    schema = "ap10k"

    def __init__(self, data=AP10K, seed=0, pixels=4.0):
        doc = json.loads(Path(data).read_text(encoding="utf-8"))
        images = {im["id"]: im for im in doc["images"]}
        order = list(dict.fromkeys(a["image_id"] for a in doc["annotations"]))
        rng = np.random.default_rng(int(seed))
        self.answers, self.next = [], 0
        for image_id in order:
            for ann in doc["annotations"]:
                if ann["image_id"] != image_id or ann.get("iscrowd") or ann["num_keypoints"] == 0:
                    continue
                kp = np.asarray(ann["keypoints"], float).reshape(-1, 3)
                centre, s = crop_frame(ann["bbox"], images[image_id])
                crop = (kp[:, :2] - centre) * s + [INPUT_W / 2, INPUT_H / 2]
                self.answers.append(crop + rng.normal(0.0, float(pixels), crop.shape))

    def __call__(self, crops):
        out = []
        for _ in crops:
            out.append(self.answers[self.next % len(self.answers)])
            self.next += 1
        return np.stack(out), np.full((len(out), out[0].shape[0]), 0.9)
