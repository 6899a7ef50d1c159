"""The ImageNet-C corruptions (Hendrycks and Dietterich, ICLR 2019), exact, fast and keypoint-aware.

One function per corruption, with imagecorruptions' names and the signature
``name(image, severity, rng=None)``: the 15 standard corruptions of COCO-C, MPII-C and
OCHuman-C (:data:`STANDARD`) and the 4 held-out extras (:data:`EXTRA`), at severities 1 to 5
with the parameters of :data:`PARAMS`.

* ``image``: uint8 or float32 (values in [0, 1]), HxW, HxWx1, HxWx3 or HxWx4, any size; a
  new array of the same shape and dtype is returned and the input is never modified.
* ``rng``: an int seed or a ``numpy.random.Generator`` (the library's convention), or a
  ``numpy.random.RandomState``: then every function draws exactly what imagecorruptions 1.1.2
  draws from NumPy's global state, in the same order, so the two agree when seeded alike
  (``impulse_noise`` excepted: imagecorruptions draws it from scikit-image's own generator,
  and this one matches its distribution). ``None`` draws fresh OS entropy.

``elastic_transform`` moves the image content: :func:`elastic_transform_with_keypoints`
returns the keypoints moved with it. The other corruptions leave keypoints where they are.
See ``docs/corruptions.md`` for which corruptions are bit-exact and the measured agreement.

Examples
--------
>>> import numpy as np
>>> from keypoint_corrupt.functional import imagenet_c
>>> img = np.full((32, 32, 3), 128, np.uint8)
>>> imagenet_c.contrast(img, 3).shape
(32, 32, 3)
>>> sorted(imagenet_c.CORRUPTIONS)[:2]
['brightness', 'contrast']
"""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType
from typing import Any

from keypoint_corrupt.functional.imagenet_c._common import RandomSource
from keypoint_corrupt.functional.imagenet_c.blur import (
    defocus_blur,
    gaussian_blur,
    glass_blur,
    motion_blur,
    zoom_blur,
)
from keypoint_corrupt.functional.imagenet_c.color import brightness, contrast, saturate
from keypoint_corrupt.functional.imagenet_c.digital import jpeg_compression, pixelate
from keypoint_corrupt.functional.imagenet_c.elastic import (
    elastic_field,
    elastic_transform,
    elastic_transform_with_keypoints,
    move_keypoints,
)
from keypoint_corrupt.functional.imagenet_c.noise import (
    gaussian_noise,
    impulse_noise,
    shot_noise,
    speckle_noise,
)
from keypoint_corrupt.functional.imagenet_c.params import EXTRA, GROUPS, PARAMS, STANDARD
from keypoint_corrupt.functional.imagenet_c.weather import fog, frost, snow, spatter

__all__ = [
    "CORRUPTIONS",
    "EXTRA",
    "GROUPS",
    "PARAMS",
    "STANDARD",
    "RandomSource",
    "brightness",
    "contrast",
    "defocus_blur",
    "elastic_field",
    "elastic_transform",
    "elastic_transform_with_keypoints",
    "fog",
    "frost",
    "gaussian_blur",
    "gaussian_noise",
    "glass_blur",
    "impulse_noise",
    "jpeg_compression",
    "motion_blur",
    "move_keypoints",
    "pixelate",
    "saturate",
    "shot_noise",
    "snow",
    "spatter",
    "speckle_noise",
    "zoom_blur",
]

#: Every corruption by name, in imagecorruptions' order (the 15 standard, then the 4 extras).
CORRUPTIONS: MappingProxyType[str, Callable[..., Any]] = MappingProxyType(
    {name: globals()[name] for name in (*STANDARD, *EXTRA)}
)
