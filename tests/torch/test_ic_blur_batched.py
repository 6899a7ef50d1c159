"""Batched torch blurs against the CPU kernels of ``functional.imagenet_c``, sample by sample.

Named ``..._batched`` because ``tests/imagenet_c/test_ic_blur.py`` already holds the module name
``test_ic_blur`` (the test folders have no ``__init__.py``). The references are the library's own
CPU kernels, each run on image ``b`` with a generator in the same state as ``rngs[b]``.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import keypoint_corrupt.functional.imagenet_c as F
from keypoint_corrupt.functional.imagenet_c import _blur_jit
from keypoint_corrupt.torch._batch import to_numpy
from keypoint_corrupt.torch.imagenet_c import blur as T

STB = Path(__file__).resolve().parents[1] / "data" / "stb" / "SK_color_0.png"
EXACT = ("gaussian_blur", "motion_blur", "zoom_blur", "glass_blur")
ALL = (*EXACT, "defocus_blur")
SEVERITIES = [1, 2, 3, 4, 5]  # one batch holds every severity


def _stb(height: int, width: int) -> np.ndarray:
    bgr = cv2.imread(str(STB), cv2.IMREAD_COLOR)
    assert bgr is not None
    small = cv2.resize(bgr, (width * 4, height * 4), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(small[height : 2 * height, width : 2 * width, ::-1])


def _batch(kind: str, dtype: str, count: int = 5) -> torch.Tensor:
    """``count`` different images of one layout: random (odd sizes) or crops of the real STB frame."""
    rng = np.random.default_rng(len(kind))
    if kind == "real":
        real = _stb(36, 48)
        stack = np.stack([np.roll(real, 5 * b, axis=1) for b in range(count)]).transpose(0, 3, 1, 2)
    else:
        shape = {"grey": (1, 7, 13), "rgb1x1": (3, 1, 1), "rgba": (4, 13, 9)}[kind]
        stack = rng.integers(0, 256, (count, *shape), dtype=np.uint8)
    x = torch.from_numpy(np.ascontiguousarray(stack))
    return x if dtype == "uint8" else x.to(torch.float32) / 255.0


def _compare(name: str, x: torch.Tensor, severities: list[int], make_rng) -> tuple[float, float]:
    """Run the torch kernel on the batch and the CPU kernel per sample: (max |diff|, share differing)."""
    before = x.clone()
    out = getattr(T, name)(x, severities, rngs=[make_rng(b) for b in range(x.shape[0])])
    assert torch.equal(x, before), "the input batch was modified"
    assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
    worst, differing, total = 0.0, 0, 0
    for b, (image, got) in enumerate(zip(to_numpy(x), to_numpy(out), strict=True)):
        ref = getattr(F, name)(image, severities[b], rng=make_rng(b))
        diff = np.abs(got.astype(np.float64) - ref.astype(np.float64))
        worst = max(worst, float(diff.max()))
        differing += int(np.count_nonzero(diff))
        total += diff.size
    return worst, differing / total


@pytest.mark.parametrize("kind", ["grey", "rgb1x1", "rgba", "real"])
@pytest.mark.parametrize("dtype", ["uint8", "float32"])
@pytest.mark.parametrize("name", ALL)
def test_each_sample_equals_the_cpu_kernel(name, dtype, kind):
    x = _batch(kind, dtype)
    worst, share = _compare(name, x, SEVERITIES, lambda b: np.random.default_rng(100 + b))
    if name in EXACT:
        assert worst == 0.0, (name, dtype, kind, worst, share)
    elif dtype == "uint8":  # defocus: two FFTs (OpenCV's and torch's) round differently
        assert worst <= 1.0 and share <= 0.01, (worst, share)
    else:  # float32 output: a few ulps of the 0..255 value, far inside 1/255
        assert worst <= 1e-6, (worst, share)


@pytest.mark.parametrize("name", ["motion_blur", "glass_blur"])
def test_random_states_draw_as_the_cpu_kernel(name):
    # A RandomState takes the legacy (imagecorruptions) path of the draws; a mixed batch too.
    x = _batch("real", "uint8", 4)
    sources = [np.random.RandomState, np.random.default_rng, np.random.RandomState, np.random.default_rng]
    worst, _ = _compare(name, x, [5, 5, 2, 2], lambda b: sources[b](7 + b))
    assert worst == 0.0


def test_glass_moves_of_a_large_batch_run_in_host_threads(monkeypatch):
    # Two samples of 96 x 128 per severity, above a lowered threads' threshold; the pool is spied on.
    from keypoint_corrupt.torch import _batch as host_pool_module

    monkeypatch.setattr(host_pool_module, "_THREADED_PIXELS", 1 << 14)
    calls = []
    pool = host_pool_module._host_pool
    monkeypatch.setattr(host_pool_module, "_host_pool", lambda pid: calls.append(pid) or pool(pid))
    real = _stb(96, 128).transpose(2, 0, 1)
    x = torch.from_numpy(np.stack([np.roll(real, 11 * b, axis=2) for b in range(4)]))
    worst, _ = _compare("glass_blur", x, [2, 2, 5, 5], lambda b: np.random.default_rng(60 + b))
    assert calls and worst == 0.0


def test_samples_with_the_same_draws_are_equal_and_different_draws_differ():
    x = _batch("real", "uint8", 1).repeat(3, 1, 1, 1)
    out = T.motion_blur(x, 3, rngs=[1, 1, 2])
    assert torch.equal(out[0], out[1])
    assert not torch.equal(out[0], out[2])


def test_an_int_seed_spawns_one_source_per_sample():
    x = _batch("real", "uint8", 2)
    out = T.glass_blur(x, 2, rngs=11)
    sources = np.random.SeedSequence(11).spawn(2)
    for b in range(2):
        ref = F.glass_blur(to_numpy(x)[b], 2, rng=np.random.default_rng(sources[b]))
        np.testing.assert_array_equal(to_numpy(out)[b], ref)


@settings(max_examples=25, deadline=None)
@given(
    height=st.integers(1, 9),
    width=st.integers(1, 9),
    taps=st.lists(
        st.tuples(st.integers(-12, 12), st.integers(-12, 12), st.floats(0, 1)), min_size=1, max_size=6
    ),
)
def test_motion_sum_equals_the_compiled_cpu_loop(height, width, taps):
    rng = np.random.default_rng(height * 10 + width)
    image = rng.random((height, width, 2))
    shifts = np.array([[dy, dx] for dy, dx, _ in taps], np.int64)
    weights = np.array([w for _, _, w in taps], np.float64)
    ref = _blur_jit.motion_sum_f64(np.ascontiguousarray(image), shifts, weights)
    x = torch.from_numpy(image).permute(2, 0, 1)[None]
    short = (shifts[:1], weights[:1])  # a second sample with fewer taps: padded with weight 0
    got = T.motion_sum(torch.cat([x, x]), [(shifts, weights), short])
    np.testing.assert_array_equal(got[0].permute(1, 2, 0).numpy(), ref)
    ref_short = _blur_jit.motion_sum_f64(np.ascontiguousarray(image), *short)
    np.testing.assert_array_equal(got[1].permute(1, 2, 0).numpy(), ref_short)


def test_gaussian_blur_by_hand():
    # sigma 1 (radius 4): a single 255 dot spreads as the outer product of scipy's taps.
    x = torch.zeros(1, 1, 15, 15, dtype=torch.uint8)
    x[0, 0, 7, 7] = 255
    taps = np.exp(-0.5 * np.arange(-4, 5) ** 2)
    taps /= taps.sum()
    expect = np.floor(np.outer(taps, taps) * 255 + 1e-9)
    np.testing.assert_array_equal(T.gaussian_blur(x, 1)[0, 0, 3:12, 3:12].numpy(), expect)


@pytest.mark.parametrize("name", ALL)
def test_flat_images_stay_flat_where_the_blur_keeps_the_level(name):
    # A flat grey image larger than the longest motion streak (31 taps at severity 3): every blur
    # keeps its level (defocus's disk sums to more than 1 only at severities 4-5); grey output
    # has one channel.
    x = torch.full((2, 1, 40, 44), 120, dtype=torch.uint8)
    out = getattr(T, name)(x, [1, 3], rngs=[0, 1])
    assert out.shape == (2, 1, 40, 44)
    assert set(out.flatten().tolist()) <= {119, 120}


def test_errors_name_the_argument_and_the_value():
    x = torch.zeros(2, 3, 8, 8, dtype=torch.uint8)
    with pytest.raises(ValueError, match=r"severity must be in 1\.\.5, got 6"):
        T.zoom_blur(x, [1, 6])
    with pytest.raises(ValueError, match=r"severity must be one int or 2 ints"):
        T.defocus_blur(x, [1, 2, 3])
    with pytest.raises(
        TypeError, match=r"images must have dtype torch.uint8 or torch.float32, got torch.float64"
    ):
        T.gaussian_blur(x.double(), 1)
    with pytest.raises(ValueError, match=r"images must have 1, 3 or 4 channels, got shape \(2, 2, 8, 8\)"):
        T.motion_blur(x[:, :2], 1)
    with pytest.raises(ValueError, match=r"rngs must hold one source per sample \(2\), got 1"):
        T.glass_blur(x, 1, rngs=[0])
    with pytest.raises(ValueError, match=r"float32 images must hold finite values in \[0, 1\]"):
        T.gaussian_blur(x.float() + 2.0, 1)


def test_compiled_kernels_equal_eager_ones():
    # The host steps are kept out of the graph: glass blur's moves and the Gaussian's taps.
    x = _batch("rgba", "uint8", 3)
    compiled = torch.compile(T.glass_blur, backend="aot_eager")
    assert torch.equal(compiled(x, [1, 3, 5], rngs=[0, 1, 2]), T.glass_blur(x, [1, 3, 5], rngs=[0, 1, 2]))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
@pytest.mark.parametrize("name", ALL)
def test_on_the_gpu_each_sample_equals_the_cpu_kernel(name):
    x = _batch("real", "uint8").cuda()
    worst, share = _compare(name, x, SEVERITIES, lambda b: np.random.default_rng(5 + b))
    assert worst <= (0.0 if name in EXACT else 1.0), (worst, share)
