"""Decoding sample images: RGB uint8, or an error that names the file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from keypoint_corrupt.datasets.sample import Sample

__all__ = ["ImageDecodeError", "load_image"]

#: Decode straight to RGB where OpenCV can (>= 4.10): the same pixels as BGR plus a swap,
#: one pass fewer.
_IMREAD_RGB: int = getattr(cv2, "IMREAD_COLOR_RGB", 0)
_JPEG_SOI = b"\xff\xd8"
_JPEG_SOS = b"\xff\xda"
_JPEG_EOI = b"\xff\xd9"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class ImageDecodeError(OSError):
    """An image file exists but cannot be decoded (corrupt, truncated or not an image)."""


def _truncation_problem(data: bytes) -> str | None:
    """Say why ``data`` looks cut short, or ``None``.

    OpenCV 4.x decodes a truncated JPEG into a grey-filled image with only a log warning, so
    the two common formats are checked structurally before decoding.
    """
    if data.startswith(_JPEG_SOI):
        # Entropy-coded data cannot contain FF D9 (0xFF is always stuffed), so a complete
        # file has an end-of-image marker after its last start-of-scan marker.
        if data.rfind(_JPEG_EOI) < data.rfind(_JPEG_SOS):
            return "truncated JPEG (no end-of-image marker after the last scan)"
    elif data.startswith(_PNG_SIGNATURE):
        end = data.rfind(b"IEND")
        if end < 0 or len(data) < end + 8:  # chunk type + 4-byte CRC
            return "truncated PNG (no IEND chunk)"
    return None


def load_image(source: Sample | str | os.PathLike[str]) -> np.ndarray:
    """Read an image as RGB uint8, HxWx3.

    Grey images are expanded to three channels, 16-bit images are scaled to 8 bits and an
    alpha channel is dropped (OpenCV's ``IMREAD_COLOR``).

    Parameters
    ----------
    source : Sample or path
        A :class:`Sample` (its ``image_path`` is read) or a file path.

    Returns
    -------
    numpy.ndarray
        (H, W, 3) uint8, RGB order.

    Raises
    ------
    FileNotFoundError
        If the file does not exist (the message names it).
    ImageDecodeError
        If the file is truncated, corrupt or not an image (the message names it).

    Examples
    --------
    >>> from keypoint_corrupt.datasets import STB, bundled_sample_root
    >>> img = load_image(STB(bundled_sample_root(), "val")[0])
    >>> img.shape, img.dtype
    ((480, 640, 3), dtype('uint8'))
    """
    path = Path(source.image_path if isinstance(source, Sample) else source)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"image file not found: {path}") from None
    except IsADirectoryError:
        raise ImageDecodeError(f"cannot read image {path}: it is a directory") from None
    if not data:
        raise ImageDecodeError(f"cannot decode image {path}: the file is empty")
    problem = _truncation_problem(data)
    if problem:
        raise ImageDecodeError(f"cannot decode image {path}: {problem}")
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), _IMREAD_RGB or cv2.IMREAD_COLOR)
    if image is None:
        raise ImageDecodeError(f"cannot decode image {path}: corrupt or unsupported image data")
    return image if _IMREAD_RGB else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def load_item(sample: Sample, sample_id: str | None = None) -> dict[str, Any]:
    """Load a clean sample as the dict that models and benchmarks consume.

    Returns ``image`` (decoded RGB uint8), ``keypoints``, ``visibility`` (the sample's own
    arrays) and ``id`` (``sample_id`` or the sample's id).

    Examples
    --------
    >>> from keypoint_corrupt.datasets import STB, bundled_sample_root
    >>> sorted(load_item(STB(bundled_sample_root(), "val")[0]))
    ['id', 'image', 'keypoints', 'visibility']
    """
    return {
        "image": load_image(sample),
        "keypoints": sample.keypoints,
        "visibility": sample.visibility,
        "id": sample_id or sample.id,
    }
