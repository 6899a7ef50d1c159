"""Crop information handed to predictors: hand3d's ground-truth crop, as centre and scale.

hand3d evaluates PoseNet on a 256 x 256 crop placed with the ground-truth keypoints
(``../shared/docs/stb-format.md``). The geometry lives in :mod:`keypoint_corrupt.crop`
(NumPy/OpenCV only, so user predictors need no torch); here scales are always hand3d's,
i.e. for a 256 crop, and a crop of another ``size`` covers the same region.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from keypoint_corrupt import crop as _crop

__all__ = ["CROP_SIZE", "CropInfo", "crop_parameters", "uncrop", "warp_crop"]

CROP_SIZE = _crop.CROP_SIZE


def crop_parameters(keypoints: np.ndarray, visibility: np.ndarray, image_shape: tuple[int, ...]):
    """hand3d's crop centre (x, y) and scale (crop px per source px at 256) from ground truth."""
    center, scale = _crop.crop_parameters(keypoints, visibility, image_shape, CROP_SIZE)
    return np.asarray(center, np.float64), float(scale)


def warp_crop(image: np.ndarray, center: Sequence[float], scale: float, size: int = CROP_SIZE) -> np.ndarray:
    """Cut the ``size x size`` crop for hand3d's ``scale`` (defined at 256), mid-grey outside.

    Examples
    --------
    >>> img = np.zeros((480, 640, 3), np.uint8); img[240, 320] = 255
    >>> warp_crop(img, (320.0, 240.0), 1.0, size=128).shape
    (128, 128, 3)
    """
    return _crop.warp_crop(image, center, float(scale) * size / CROP_SIZE, size)


def uncrop(keypoints: Any, center: Any, scale: Any, size: int = CROP_SIZE) -> np.ndarray:
    """Map ``B x J x 2`` crop-pixel keypoints back to source pixels (divide by the crop scale).

    ``center`` is ``B x 2``, ``scale`` ``B`` (hand3d's, for a 256 crop).

    Examples
    --------
    >>> uncrop(np.array([[[138.0, 128.0]]]), np.array([[300.0, 200.0]]), np.array([2.0])).tolist()
    [[[305.0, 200.0]]]
    """
    c = np.asarray(center, dtype=np.float64).reshape(-1, 1, 2)
    s = np.asarray(scale, dtype=np.float64).reshape(-1, 1, 1) * (size / CROP_SIZE)
    return _crop.uncrop_keypoints(keypoints, c, s, size)


@dataclass(frozen=True)
class CropInfo:
    """hand3d's ground-truth crop of each image of a batch, passed to ``predict(images, crops)``.

    Attributes
    ----------
    center : numpy.ndarray
        ``B x 2`` crop centres (x, y) in source pixels.
    scale : numpy.ndarray
        ``B`` crop pixels per source pixel of the 256 x 256 crop (``clip(256 / extent, 1, 10)``).
    size : int
        The crop side the scale refers to (256).

    Examples
    --------
    >>> info = CropInfo(np.array([[320.0, 240.0]]), np.array([2.0]))
    >>> info.box().tolist()  # (x0, y0, x1, y1) of the crop in source pixels
    [[256.0, 176.0, 384.0, 304.0]]
    """

    center: np.ndarray
    scale: np.ndarray
    size: int = CROP_SIZE

    def __len__(self) -> int:
        return len(self.scale)

    def box(self) -> np.ndarray:
        """``B x 4`` crop boxes ``(x0, y0, x1, y1)`` in source pixels."""
        half = 0.5 * self.size / np.asarray(self.scale, np.float64)
        c = np.asarray(self.center, np.float64)
        return np.stack([c[:, 0] - half, c[:, 1] - half, c[:, 0] + half, c[:, 1] + half], axis=1)

    def crop(self, images: Any, size: int = CROP_SIZE) -> np.ndarray:
        """Cut every image's crop: ``B x size x size x 3`` uint8 (images: array or list)."""
        triples = zip(images, self.center, self.scale, strict=True)
        return np.stack([warp_crop(np.asarray(im), c, s, size) for im, c, s in triples])

    def to_source(self, keypoints: Any, size: int = CROP_SIZE) -> np.ndarray:
        """Map ``B x J x 2`` keypoints from ``size`` crop pixels back to source pixels."""
        return uncrop(keypoints, self.center, self.scale, size)
