"""Datasets: one sample model for STB and COCO-format keypoint sets, and the corrupted sets.

* :class:`Sample` - an immutable annotated image (id, image path, keypoints, visibility, meta).
* :class:`STB` - the Stereo Hand Pose Tracking Benchmark read from its on-disk layout.
* :class:`CocoKeypoints` - any COCO keypoint file (RHD, FreiHAND, OneHand10K, Panoptic, ...).
* :class:`WholeBodyHands` - the hands of a COCO-WholeBody file as a ``hand21`` hand set.
* :class:`CocoIndex`, :func:`load_coco_index` - one validated, pycocotools-indexed parse of a
  COCO file, shared by the reader, the materialiser, the benchmark and the CLI.
* :func:`load_image` - RGB uint8 decoding that names the file it cannot read.
* :func:`select_subset`, :func:`sample_rng` - deterministic subset draws and per-image noise.
* :class:`CorruptedDataset` - S-train* / S-val* as a map-style (torch-compatible) dataset.
* :func:`bundled_sample_root`, :func:`write_synthetic_stb` - the synthetic STB sample.

Examples
--------
>>> from keypoint_corrupt.datasets import STB, CorruptedDataset, bundled_sample_root
>>> s_val_star = CorruptedDataset(STB(bundled_sample_root(), "val"), mode="subset")
>>> len(s_val_star)  # 11 configurations x round(0.2 * 8)
22
"""

from keypoint_corrupt.datasets.bundled import BUNDLED_SAMPLE_ARGS, bundled_sample_root
from keypoint_corrupt.datasets.coco import CocoKeypoints
from keypoint_corrupt.datasets.coco_index import CocoIndex, load_coco_index
from keypoint_corrupt.datasets.corrupted import CLEAN, MODES, CorruptedDataset, PlanEntry
from keypoint_corrupt.datasets.images import ImageDecodeError, load_image, load_item
from keypoint_corrupt.datasets.sample import Sample
from keypoint_corrupt.datasets.stb import (
    STB,
    STB_CAMERAS,
    STB_JOINT_NAMES,
    STB_SEQUENCES,
    STB_SPLITS,
    load_stb_labels,
    project_points,
    stb_joint_names,
)
from keypoint_corrupt.datasets.subsets import sample_rng, select_subset, transform_seed
from keypoint_corrupt.datasets.synth import synth_sequence, write_synthetic_stb
from keypoint_corrupt.datasets.wholebody import WHOLEBODY_HAND_JOINTS, WHOLEBODY_HANDS, WholeBodyHands

__all__ = [
    "BUNDLED_SAMPLE_ARGS",
    "CLEAN",
    "MODES",
    "STB",
    "STB_CAMERAS",
    "STB_JOINT_NAMES",
    "STB_SEQUENCES",
    "STB_SPLITS",
    "WHOLEBODY_HANDS",
    "WHOLEBODY_HAND_JOINTS",
    "CocoIndex",
    "CocoKeypoints",
    "CorruptedDataset",
    "ImageDecodeError",
    "PlanEntry",
    "Sample",
    "WholeBodyHands",
    "bundled_sample_root",
    "load_coco_index",
    "load_image",
    "load_item",
    "load_stb_labels",
    "project_points",
    "sample_rng",
    "select_subset",
    "stb_joint_names",
    "synth_sequence",
    "transform_seed",
    "write_synthetic_stb",
]
