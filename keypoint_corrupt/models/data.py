"""Datasets as hand3d crops ready for batching: what training and prediction feed the models.

A keypoint dataset is any map-style sequence whose items are mappings with ``image`` (RGB
uint8 ``H x W x 3``), ``keypoints`` (``J x 2`` float pixels) and ``visibility`` (``J``
bools); :class:`CropDataset` cuts hand3d's ground-truth crop of every item
(:func:`~keypoint_corrupt.crop.hand_crop`), optionally with hand3d's training noise.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from keypoint_corrupt.crop import CENTER_JOINT, CROP_SIZE, hand_crop
from keypoint_corrupt.models._torch import torch

__all__ = ["CENTER_NOISE_STD", "KEYPOINT_NOISE_STD", "CropDataset", "seed_worker"]

#: hand3d's training augmentation: truncated-normal noise (std, px) on the labels and on the crop centre.
KEYPOINT_NOISE_STD = 2.5
CENTER_NOISE_STD = 20.0


def _truncated_normal(rng: np.random.Generator, std: float, shape: tuple[int, ...]) -> np.ndarray:
    # TensorFlow's truncated_normal: redraw values beyond two standard deviations.
    out = rng.normal(0.0, std, shape)
    bad = np.abs(out) > 2 * std
    while bad.any():
        out[bad] = rng.normal(0.0, std, int(bad.sum()))
        bad = np.abs(out) > 2 * std
    return out


class CropDataset(torch.utils.data.Dataset[dict[str, Any]]):
    """Wrap a keypoint dataset into hand3d crops ready for batching.

    Parameters
    ----------
    dataset : sequence of mapping
        Items with ``image`` (RGB uint8 ``H x W x 3``), ``keypoints`` (``J x 2``) and
        ``visibility`` (``J``).
    crop_size : int
        Side of the crops.
    augment : bool
        hand3d's training noise: keypoints jittered by a truncated normal (std 2.5 px, so
        at most 5 px) and the crop centre by one of std 20 px, both in source pixels.
    seed : int
        Seed of the per-sample augmentation (with :meth:`set_epoch` and the index).
    center_joint : int
        See :func:`~keypoint_corrupt.crop.hand_crop`.

    Notes
    -----
    Items are dicts: ``image`` (uint8 crop), ``keypoints`` (float32 crop pixels),
    ``visibility``, ``center`` and ``scale`` (the crop, :mod:`keypoint_corrupt.crop`'s
    convention: crop pixels per source pixel of this ``crop_size``) and ``index``.

    Examples
    --------
    >>> item = {"image": np.zeros((120, 160, 3), np.uint8),
    ...         "keypoints": np.full((21, 2), 60.0), "visibility": np.ones(21, bool)}
    >>> sample = CropDataset([item], 64)[0]
    >>> sample["image"].shape, sample["keypoints"].dtype
    ((64, 64, 3), dtype('float32'))
    """

    def __init__(
        self,
        dataset: Sequence[Mapping[str, Any]],
        crop_size: int = CROP_SIZE,
        *,
        augment: bool = False,
        seed: int = 0,
        center_joint: int = CENTER_JOINT,
    ) -> None:
        self.dataset = dataset
        self.crop_size = int(crop_size)
        self.augment = bool(augment)
        self.seed = int(seed)
        self.center_joint = int(center_joint)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation draw of ``epoch``."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.dataset[index]
        image = np.asarray(item["image"])
        if image.dtype != np.uint8:
            raise TypeError(f"dataset item {index}: image must be uint8, got {image.dtype}")
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"dataset item {index}: image must be H x W x 3 RGB, got shape {image.shape}")
        keypoints = np.asarray(item["keypoints"], dtype=np.float64)
        visibility = np.asarray(item.get("visibility", np.ones(len(keypoints), bool))).astype(bool)
        offset = None
        if self.augment:
            rng = np.random.default_rng([self.seed, self.epoch, int(index)])
            keypoints = keypoints + _truncated_normal(rng, KEYPOINT_NOISE_STD, keypoints.shape)
            offset = _truncated_normal(rng, CENTER_NOISE_STD, (2,))
        crop = hand_crop(
            image, keypoints, visibility, self.crop_size, center_joint=self.center_joint, center_offset=offset
        )
        return {
            "image": np.ascontiguousarray(crop.image),
            "keypoints": crop.keypoints.astype(np.float32),
            "visibility": crop.visibility,
            "center": crop.center.astype(np.float64),
            "scale": np.float64(crop.scale),
            "index": int(index),
        }


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: seed NumPy and ``random`` from the worker's torch seed.

    The crops' own randomness is seeded per sample; this covers randomness inside the
    wrapped dataset (e.g. on-the-fly corruptions).
    """
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)  # noqa: NPY002 (third-party code may draw from the legacy global state)
    random.seed(seed)
