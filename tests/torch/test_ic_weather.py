"""Batched torch weather corruptions against the CPU kernels of ``functional.imagenet_c``, sample by sample.

The references are the library's own CPU kernels, each run on image ``b`` with a generator in
the same state as ``rngs[b]``; frost reads synthetic textures (no imagecorruptions needed).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import keypoint_corrupt.functional.imagenet_c as F
from keypoint_corrupt.functional.imagenet_c import _textures
from keypoint_corrupt.torch._batch import to_numpy
from keypoint_corrupt.torch.imagenet_c import weather as T

COCO = Path(__file__).resolve().parents[1] / "data" / "body" / "coco" / "000000196141.jpg"
EXACT = ("frost", "fog", "spatter")
ALL = (*EXACT, "snow")
SEVERITIES = [1, 2, 3, 4, 5]  # one batch holds every severity


@pytest.fixture(scope="module")
def textures(tmp_path_factory) -> Path:
    """Six smooth random textures of different sizes and brightness, in place of the photographs."""
    folder = tmp_path_factory.mktemp("frost")
    rng = np.random.default_rng(3)
    for k, name in enumerate(_textures.FILENAMES):
        noise = cv2.GaussianBlur(rng.random((40 + 7 * k, 60 - 5 * k, 3)).astype(np.float32), (0, 0), 3)
        texture = np.clip(30 * k + 300 * (noise - noise.mean()) + 80, 0, 255).astype(np.uint8)
        assert cv2.imwrite(str(folder / name), texture)
    return folder


def _coco(height: int, width: int) -> np.ndarray:
    bgr = cv2.imread(str(COCO), cv2.IMREAD_COLOR)
    assert bgr is not None
    small = cv2.resize(bgr, (width * 3, height * 3), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(small[height : 2 * height, width : 2 * width, ::-1])


def _batch(kind: str, dtype: str, count: int = 5) -> torch.Tensor:
    """``count`` different images of one layout: random (odd sizes) or crops of a real COCO photo."""
    rng = np.random.default_rng(len(kind))
    if kind == "real":
        real = _coco(45, 61)
        stack = np.stack([np.roll(real, 7 * b, axis=0) for b in range(count)]).transpose(0, 3, 1, 2)
    else:
        shape = {"grey": (1, 7, 13), "rgb1x1": (3, 1, 1), "rgba": (4, 13, 9)}[kind]
        stack = rng.integers(0, 256, (count, *shape), dtype=np.uint8)
    x = torch.from_numpy(np.ascontiguousarray(stack))
    return x if dtype == "uint8" else x.to(torch.float32) / 255.0


def _compare(name, x, severities, make_rng, **kwargs) -> tuple[float, float]:
    """Run the torch kernel on the batch and the CPU kernel per sample: (max |diff|, share differing)."""
    before = x.clone()
    out = getattr(T, name)(x, severities, rngs=[make_rng(b) for b in range(x.shape[0])], **kwargs)
    assert torch.equal(x, before), "the input batch was modified"
    assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
    worst, differing, total = 0.0, 0, 0
    for b, (image, got) in enumerate(zip(to_numpy(x), to_numpy(out), strict=True)):
        ref = getattr(F, name)(image, severities[b], rng=make_rng(b), **kwargs)
        diff = np.abs(got.astype(np.float64) - ref.astype(np.float64))
        worst = max(worst, float(diff.max()))
        differing += int(np.count_nonzero(diff))
        total += diff.size
    return worst, differing / total


def _kwargs(name: str, textures: Path) -> dict[str, Path]:
    return {"textures": textures} if name == "frost" else {}


SOURCES = {"generator": np.random.default_rng, "randomstate": np.random.RandomState}


@pytest.mark.parametrize("source", ["generator", "randomstate"])
@pytest.mark.parametrize("kind", ["grey", "rgb1x1", "rgba", "real"])
@pytest.mark.parametrize("dtype", ["uint8", "float32"])
@pytest.mark.parametrize("name", ALL)
def test_each_sample_equals_the_cpu_kernel(name, dtype, kind, source, textures):
    x = _batch(kind, dtype)
    make = SOURCES[source]
    worst, share = _compare(name, x, SEVERITIES, lambda b: make(200 + b), **_kwargs(name, textures))
    if name in EXACT:
        assert worst == 0.0, (name, dtype, kind, source, worst, share)
    elif dtype == "uint8":  # snow: the grey level is float32 arithmetic, OpenCV's cvtColor an FMA
        assert worst <= 1.0 and share <= 0.01, (worst, share)
    else:  # float32 output: a few ulps of the 0..255 value, far inside 1/255
        assert worst <= 1e-6, (worst, share)


@pytest.mark.parametrize("name", ALL)
def test_a_batch_may_mix_generators_and_random_states(name, textures):
    # fog's blend differs by source kind (float64 exact vs float32 fast): chosen per sample.
    x = _batch("real", "uint8", 4)
    kinds = [np.random.RandomState, np.random.default_rng, np.random.default_rng, np.random.RandomState]
    worst, _ = _compare(name, x, [2, 2, 4, 4], lambda b: kinds[b](9 + b), **_kwargs(name, textures))
    assert worst <= (0.0 if name in EXACT else 1.0)


@pytest.mark.parametrize("name", ALL)
def test_large_batches_draw_in_host_threads_as_in_order(name, textures, monkeypatch):
    # Two samples of 96 x 128 per severity are above a lowered threads' threshold: each sample's
    # draws stay its own. The pool is spied on, so the test fails if the threads were not used.
    from keypoint_corrupt.torch import _batch as host_pool_module

    monkeypatch.setattr(host_pool_module, "_THREADED_PIXELS", 1 << 14)
    calls = []
    pool = host_pool_module._host_pool
    monkeypatch.setattr(host_pool_module, "_host_pool", lambda pid: calls.append(pid) or pool(pid))
    real = _coco(96, 128).transpose(2, 0, 1)
    x = torch.from_numpy(np.stack([np.roll(real, 9 * b, axis=2) for b in range(4)]))
    worst, _ = _compare(
        name, x, [2, 2, 5, 5], lambda b: np.random.default_rng(40 + b), **_kwargs(name, textures)
    )
    assert calls, "the host work did not run in threads"
    assert worst <= (0.0 if name in EXACT else 1.0)


def test_snow_differs_from_the_cpu_kernel_in_few_values_on_a_real_image():
    x = _batch("real", "uint8", 5)
    worst, share = _compare("snow", x, SEVERITIES, lambda b: np.random.default_rng(b))
    assert worst <= 1.0
    assert share <= 0.001, share


def test_frost_without_textures_says_where_it_looked(tmp_path):
    x = torch.zeros(1, 3, 8, 8, dtype=torch.uint8)
    with pytest.raises(FileNotFoundError, match=r"frost texture .*frost1\.png not found \(from textures=\)"):
        T.frost(x, 1, rngs=[0], textures=tmp_path)


def test_fog_refuses_images_whose_plasma_map_is_too_large():
    x = torch.zeros(1, 1, 1, 8193, dtype=torch.uint8)
    with pytest.raises(ValueError, match=r"image must be at most 8192 px on its longest side for fog"):
        T.fog(x, 1, rngs=[0])


def test_an_int_seed_spawns_one_source_per_sample():
    x = _batch("real", "uint8", 2)
    out = T.spatter(x, 4, rngs=21)
    sources = np.random.SeedSequence(21).spawn(2)
    for b in range(2):
        ref = F.spatter(to_numpy(x)[b], 4, rng=np.random.default_rng(sources[b]))
        np.testing.assert_array_equal(to_numpy(out)[b], ref)


def test_fog_by_its_formula_on_a_flat_image():
    # (x + s * plasma) * max(x) / (max(x) + s) on [0, 1]: a flat image never brightens, and where the
    # plasma is 0 (its minimum is on the map, not always on the image) the level falls to x k.
    x = torch.full((3, 3, 16, 16), 200, dtype=torch.uint8)
    out = T.fog(x, [1, 3, 5], rngs=[0, 1, 2])
    assert int(out.max()) <= 200
    for b, strength in enumerate((1.5, 2.5, 3.0)):
        floor = int(200 * (200 / 255) / (200 / 255 + strength))
        assert int(out[b].min()) >= floor


def test_errors_name_the_argument_and_the_value(textures):
    x = torch.zeros(2, 3, 8, 8, dtype=torch.uint8)
    with pytest.raises(ValueError, match=r"severity must be in 1\.\.5, got 0"):
        T.snow(x, [0, 1])
    with pytest.raises(TypeError, match=r"severity must hold ints in 1\.\.5, got 2\.5"):
        T.fog(x, 2.5)
    with pytest.raises(TypeError, match=r"images must be a torch.Tensor, got ndarray"):
        T.spatter(np.zeros((2, 3, 8, 8), np.uint8), 1)
    with pytest.raises(TypeError, match=r"rngs items must be Generators, RandomStates or ints >= 0, got 'a'"):
        T.frost(x, 1, rngs=["a", 1], textures=textures)
    with pytest.raises(TypeError, match=r"textures must be a folder path \(str or os.PathLike\), got int"):
        T.frost(x, 1, rngs=[0, 1], textures=3)


@pytest.mark.parametrize("name", ["fog", "spatter"])
def test_compiled_kernels_equal_eager_ones(name):
    # The host steps (plasma, liquid layers) are kept out of the graph; RandomState and Generator mixed.
    x = _batch("rgba", "uint8", 2)
    kinds = [np.random.RandomState, np.random.default_rng]
    compiled = torch.compile(getattr(T, name), backend="aot_eager")
    got = compiled(x, [2, 5], rngs=[kinds[b](b) for b in range(2)])
    assert torch.equal(got, getattr(T, name)(x, [2, 5], rngs=[kinds[b](b) for b in range(2)]))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
@pytest.mark.parametrize("name", ALL)
def test_on_the_gpu_each_sample_equals_the_cpu_kernel(name, textures):
    x = _batch("real", "uint8").cuda()
    worst, share = _compare(
        name, x, SEVERITIES, lambda b: np.random.default_rng(5 + b), **_kwargs(name, textures)
    )
    assert worst <= (0.0 if name in EXACT else 1.0), (worst, share)
