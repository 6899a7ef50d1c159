"""User predict callables for the benchmark tests (imported by path or as a module, never collected).

They only look at the images and the crop information, like a real user's model would, and
depend on the image content so that every corruption changes their output.
"""

from __future__ import annotations

import numpy as np

# A fixed hand shape around the crop centre, in units of the crop's half-size.
_RNG = np.random.default_rng(1234)
JOINT_OFFSETS = _RNG.uniform(-0.6, 0.6, (21, 2))
# The same for COCO's 17 body joints (drawn after the hand's, which stay as they were).
BODY_OFFSETS = _RNG.uniform(-0.6, 0.6, (17, 2))


def image_shift(image: np.ndarray) -> float:
    """A deterministic, content-dependent shift in pixels (mean intensity, 0..20 px)."""
    return float(np.asarray(image, np.float64).mean() / 255.0 * 20.0)


def predict(images, crops):
    """Every joint near the crop centre, moved by the image's brightness."""
    return _near_the_centre(images, crops, JOINT_OFFSETS)


def predict_body(images, crops):
    """:func:`predict` for COCO's 17 body joints."""
    return _near_the_centre(images, crops, BODY_OFFSETS)


def _near_the_centre(images, crops, offsets):
    half = 0.5 * crops.size / np.asarray(crops.scale, np.float64)
    out = crops.center[:, None, :] + offsets[None] * half[:, None, None]
    shift = np.array([image_shift(im) for im in images])
    out = out.copy()
    out[..., 0] += shift[:, None]
    out[..., 1] -= 0.5 * shift[:, None]
    return out


def predict_images_only(images):
    """No crop information: joints on a grid in the image, shifted by brightness."""
    out = []
    for im in images:
        h, w = im.shape[:2]
        base = np.stack([np.linspace(0.3 * w, 0.7 * w, 21), np.linspace(0.35 * h, 0.65 * h, 21)], axis=1)
        out.append(base + image_shift(im))
    return np.stack(out)


def predict_wrong_shape(images, crops):
    """Returns 20 joints instead of 21."""
    return np.zeros((len(crops), 20, 2))
