"""The real images the ImageNet-C tests run on (imported by name: pytest puts this folder on sys.path).

``fixture_rgb(name)`` reads a fixture of ``tests/data`` (or a crop of one) as RGB uint8. Plain
names (``rhd``, ``coco``, ``coco_tiny``, ...) are the blur, noise, colour and digital tests'
images; the weather and elastic tests use other photos of the same datasets, named with the
photo's number (``coco_196141_tiny`` is a 33 x 47 crop of ``000000196141.jpg``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from keypoint_corrupt.functional.imagenet_c import CORRUPTIONS

FIXTURES = Path(__file__).resolve().parents[1] / "data"

_FILES = {
    "stb": "stb/SK_color_0.png",  # 480 x 640
    "rhd": "hands/rhd/00111.png",  # 320 x 320
    "rhd_01111": "hands/rhd/01111.png",  # 320 x 320
    "rhd_11111": "hands/rhd/11111.png",  # 320 x 320
    "coco": "body/coco/000000040083.jpg",  # 333 x 500
    "coco_196141": "body/coco/000000196141.jpg",  # 429 x 640
    "coco_785": "body/coco/000000000785.jpg",  # 425 x 640
    "mpii": "body/mpii/052475643.jpg",  # 480 x 854
    "mpii_060754485": "body/mpii/060754485.jpg",  # 720 x 1280
    "mpii_051423444": "body/mpii/051423444.jpg",  # 720 x 1280
    "mpii_hd": "body/mpii/004645041.jpg",  # 720 x 1280
}
_CROPS = {
    "coco_224": ("coco", (slice(60, 284), slice(150, 374))),
    "coco_tall": ("coco", (slice(5, 206), slice(7, 100))),  # 201 x 93: taller than twice its width
    "coco_tiny": ("coco", (slice(120, 153), slice(200, 247))),  # 33 x 47
    "stb_224": ("stb", (slice(200, 424), slice(300, 524))),
    "mpii_odd": ("mpii", (slice(101, 198), slice(333, 464))),  # 97 x 131
    "rhd_small": ("rhd", (slice(90, 154), slice(120, 216))),  # 64 x 96
    "coco_196141_224": ("coco_196141", (slice(20, 244), slice(100, 324))),
    "coco_196141_tiny": ("coco_196141", (slice(100, 133), slice(50, 97))),  # 33 x 47
    "mpii_060754485_odd": ("mpii_060754485", (slice(41, 138), slice(13, 144))),  # 97 x 131
    "coco_785_224": ("coco_785", (slice(100, 324), slice(150, 374))),
    "coco_785_tiny": ("coco_785", (slice(200, 233), slice(250, 297))),  # 33 x 47
    "mpii_051423444_odd": ("mpii_051423444", (slice(61, 158), slice(23, 154))),  # 97 x 131
}


@functools.cache
def fixture_rgb(name: str) -> np.ndarray:
    """A real fixture (or a crop of one), RGB uint8, read-only."""
    if name in _CROPS:
        source, window = _CROPS[name]
        image = np.ascontiguousarray(fixture_rgb(source)[window])
    else:
        bgr = cv2.imread(str(FIXTURES / _FILES[name]), cv2.IMREAD_COLOR)
        assert bgr is not None, _FILES[name]
        image = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    image.flags.writeable = False
    return image


def corruption(name: str, frost_textures: Path) -> Callable[..., Any]:
    """The corruption ``name``, with frost reading its textures from ``frost_textures``."""
    fn = CORRUPTIONS[name]
    return functools.partial(fn, textures=frost_textures) if name == "frost" else fn
