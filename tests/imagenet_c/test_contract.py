"""The contract of every ImageNet-C corruption: layouts and dtypes, seeds, arguments refused by name.

All 19 of ``imagenet_c.CORRUPTIONS``; frost reads synthetic textures (the ``synthetic_frost``
fixture), so the contract holds without imagecorruptions installed.
"""

from __future__ import annotations

import numpy as np
import pytest
from ic_images import corruption, fixture_rgb

from keypoint_corrupt.functional.imagenet_c import CORRUPTIONS

NAMES = tuple(CORRUPTIONS)
# The corruptions that draw from rng; the others must give the same image whatever the seed.
RANDOM = (
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "speckle_noise",
    "glass_blur",
    "motion_blur",
    "snow",
    "frost",
    "fog",
    "spatter",
    "elastic_transform",
)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape", [(34, 45), (34, 45, 1), (34, 45, 3), (34, 45, 4)])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_layouts_and_dtypes(name, shape, dtype, synthetic_frost):
    f = corruption(name, synthetic_frost)
    image = np.random.default_rng(0).integers(0, 256, shape).astype(np.uint8)
    if dtype == np.float32:
        image = (image / 255.0).astype(np.float32)
    before = image.copy()
    out = f(image, 3, rng=7)
    assert out.shape == image.shape and out.dtype == image.dtype
    np.testing.assert_array_equal(image, before)
    if dtype == np.float32:
        assert out.min() >= 0.0 and out.max() <= 1.0
    if len(shape) == 3 and shape[2] == 4:
        np.testing.assert_array_equal(out[:, :, 3], image[:, :, 3])
    if len(shape) == 2:  # a grey image is corrupted as its RGB stack
        rgb = np.repeat(image[:, :, None], 3, axis=2)
        np.testing.assert_array_equal(out, f(rgb, 3, rng=7)[:, :, 0])


@pytest.mark.parametrize("name", NAMES)
def test_seeds_are_reproducible(name, synthetic_frost):
    image = fixture_rgb("coco_tiny")
    f = corruption(name, synthetic_frost)
    first = f(image, 4, rng=3)
    np.testing.assert_array_equal(f(image, 4, rng=3), first)
    np.testing.assert_array_equal(
        f(image, 4, rng=np.random.default_rng(3)), first
    )  # an int seeds a Generator
    np.testing.assert_array_equal(
        f(image, 4, rng=np.random.RandomState(3)), f(image, 4, rng=np.random.RandomState(3))
    )
    if name in RANDOM:
        assert not np.array_equal(f(image, 4, rng=4), first)
    else:
        np.testing.assert_array_equal(f(image, 4, rng=4), first)


@pytest.mark.parametrize("name", NAMES)
def test_bad_severity_and_rng_are_refused_by_name(name, synthetic_frost):
    image = np.zeros((33, 33, 3), np.uint8)
    f = corruption(name, synthetic_frost)
    with pytest.raises(ValueError, match=r"severity must be in 1\.\.5, got 6"):
        f(image, 6)
    with pytest.raises(ValueError, match=r"severity must be in 1\.\.5, got 0"):
        f(image, 0)
    with pytest.raises(TypeError, match="severity"):
        f(image, 2.0)
    with pytest.raises(TypeError, match="rng"):
        f(image, 1, rng="seed")
    with pytest.raises(TypeError, match="rng"):
        f(image, 1, rng=1.5)
    with pytest.raises(ValueError, match="rng"):
        f(image, 1, rng=-1)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    ("bad", "error"),
    [
        pytest.param(np.zeros((8, 8, 3), np.float64), TypeError, id="float64"),
        pytest.param(np.zeros((8, 8, 3), np.int16), TypeError, id="int16"),
        pytest.param(np.zeros((8, 8, 3), np.int32), TypeError, id="int32"),
        pytest.param(np.zeros((8, 8, 2), np.uint8), ValueError, id="two_channels"),
        pytest.param(np.zeros((0, 8, 3), np.uint8), ValueError, id="empty"),
        pytest.param(np.zeros((2, 8, 8, 3), np.uint8), ValueError, id="batch"),
        pytest.param(np.full((8, 8, 3), 2.0, np.float32), ValueError, id="float_above_one"),
        pytest.param([[0, 1], [2, 3]], TypeError, id="list"),
    ],
)
def test_bad_images_are_refused_by_name(name, bad, error, synthetic_frost):
    with pytest.raises(error, match="image"):
        corruption(name, synthetic_frost)(bad, 1)
