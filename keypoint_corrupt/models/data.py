"""Datasets as hand3d crops ready for batching: what training and prediction feed the models.

A keypoint dataset is any map-style sequence whose items are mappings with ``image`` (RGB
uint8 ``H x W x 3``), ``keypoints`` (``J x 2`` float pixels) and ``visibility`` (``J``
bools); :class:`CropDataset` cuts hand3d's ground-truth crop of every item
(:func:`~keypoint_corrupt.crop.hand_crop`), optionally with hand3d's training noise. The crop
centres on the ``schema``'s anchor joints, found by name (``schema=``), or on one joint index
(``center_joint=``; neither: hand3d's joint 12, the middle MCP in RHD / STB order).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from keypoint_corrupt.crop import CENTER_JOINT, CROP_SIZE, hand_crop
from keypoint_corrupt.models._torch import torch
from keypoint_corrupt.schema import KeypointSchema, get_schema

__all__ = ["CENTER_NOISE_STD", "KEYPOINT_NOISE_STD", "CropDataset", "crop_center", "seed_worker"]

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


def crop_center(
    center_joint: int | None = None, schema: KeypointSchema | str | None = None
) -> tuple[int | None, KeypointSchema | None]:
    """Resolve the crop-centre arguments to ``(center_joint, None)`` or ``(None, schema)``.

    ``schema`` (a preset name or :class:`~keypoint_corrupt.schema.KeypointSchema`): the crop
    centres on its ``crop_anchor`` joints, by name. ``center_joint``: on that joint index.
    Neither: hand3d's joint 12 (:data:`~keypoint_corrupt.crop.CENTER_JOINT`), the default crop.

    Raises
    ------
    ValueError
        For both arguments at once, or an unknown schema name.

    Examples
    --------
    >>> crop_center()
    (12, None)
    >>> crop_center(schema="hand21")[1].anchor_indices()  # hand21's middle MCP
    [9]
    """
    if center_joint is not None and schema is not None:
        raise ValueError(
            f"pass center_joint= or schema=, not both (got center_joint={center_joint!r}, "
            f"schema={getattr(schema, 'name', schema)!r})"
        )
    if schema is not None:
        return None, get_schema(schema)
    return (CENTER_JOINT if center_joint is None else center_joint), None


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
    center_joint : int, optional
        Joint index the crop is centred on (see :func:`~keypoint_corrupt.crop.hand_crop`).
    schema : KeypointSchema or str, optional
        The items' joint order: the crop centres on the schema's visible ``crop_anchor``
        joints (middle-finger MCP for the hand presets), found by name. Exclusive with
        ``center_joint`` (``ValueError`` naming both); neither: joint 12, hand3d's crop.

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
        center_joint: int | None = None,
        schema: KeypointSchema | str | None = None,
    ) -> None:
        self.dataset = dataset
        self.crop_size = int(crop_size)
        self.augment = bool(augment)
        self.seed = int(seed)
        joint, self.schema = crop_center(center_joint, schema)
        self.center_joint = None if joint is None else int(joint)
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
            image,
            keypoints,
            visibility,
            self.crop_size,
            center_joint=self.center_joint,
            center_offset=offset,
            schema=self.schema,
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
