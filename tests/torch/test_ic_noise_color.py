"""Batched torch noise and colour kernels against the CPU kernels of ``functional.imagenet_c``.

The reference of sample ``b`` is the library's own CPU kernel run on image ``b`` with a NumPy
source in the same state as ``rngs[b]``; every kernel here is bit-exact (``docs/torch.md``).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

import keypoint_corrupt.functional.imagenet_c as F  # noqa: E402
from keypoint_corrupt.torch import _batch as batch_module  # noqa: E402
from keypoint_corrupt.torch._batch import to_numpy  # noqa: E402
from keypoint_corrupt.torch.imagenet_c import color, noise  # noqa: E402

NOISE = ("gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise")
COLOR = ("brightness", "contrast", "saturate")
KERNELS = {**{n: getattr(noise, n) for n in NOISE}, **{n: getattr(color, n) for n in COLOR}}
SEVERITIES = [1, 2, 3, 4, 5]  # one batch holds every severity
DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]


def _batch(kind: str, dtype: str, real: list[np.ndarray] | None = None, count: int = 5) -> torch.Tensor:
    """``count`` images of one layout: random (odd sizes, 1x1) or shrunk crops of the real pair."""
    if kind == "real":
        assert real is not None
        small = [cv2.resize(r, (69, 51), interpolation=cv2.INTER_AREA) for r in real]
        stack = np.stack([np.roll(small[b % 2], 7 * b, axis=1) for b in range(count)]).transpose(0, 3, 1, 2)
    else:
        shape = {"grey": (1, 7, 13), "rgb1x1": (3, 1, 1), "rgb": (3, 13, 7), "rgba": (4, 13, 9)}[kind]
        stack = np.random.default_rng(len(kind)).integers(0, 256, (count, *shape), dtype=np.uint8)
    x = torch.from_numpy(np.ascontiguousarray(stack))
    return x if dtype == "uint8" else x.to(torch.float32) / 255.0


def _compare(name: str, x: torch.Tensor, severities: list[int], make_rng) -> float:
    """Run the torch kernel on ``x`` and the CPU kernel per sample; return the max |difference|."""
    before = x.clone()
    out = KERNELS[name](x, severities, rngs=[make_rng(b) for b in range(x.shape[0])])
    assert torch.equal(x, before), "the input batch was modified"
    assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
    worst = 0.0
    for b, (image, got) in enumerate(zip(to_numpy(x), to_numpy(out), strict=True)):
        ref = getattr(F, name)(image, severities[b], rng=make_rng(b))
        assert got.shape == ref.shape and got.dtype == ref.dtype
        worst = max(worst, float(np.abs(got.astype(np.float64) - ref.astype(np.float64)).max()))
    return worst


@pytest.mark.parametrize("dtype", ["uint8", "float32"])
@pytest.mark.parametrize("kind", ["grey", "rgb1x1", "rgba", "real"])
@pytest.mark.parametrize("name", [*NOISE, *COLOR])
def test_every_severity_matches_the_cpu_kernel_bit_for_bit(name, kind, dtype, real_pair) -> None:
    x = _batch(kind, dtype, real_pair)
    assert _compare(name, x, SEVERITIES, lambda b: np.random.default_rng(100 + b)) == 0.0


@pytest.mark.parametrize("dtype", ["uint8", "float32"])
@pytest.mark.parametrize("name", NOISE)
def test_random_states_draw_as_the_cpu_kernel_does(name, dtype) -> None:
    # A RandomState takes the imagecorruptions path (float64 formulas; impulse seeds a Generator).
    x = _batch("rgb", dtype)
    assert _compare(name, x, SEVERITIES, lambda b: np.random.RandomState(7 + b)) == 0.0


def test_generators_and_random_states_mix_in_one_batch() -> None:
    x = _batch("rgba", "uint8", count=4)

    def make(b):
        return np.random.default_rng(b) if b % 2 else np.random.RandomState(b)

    for name in ("gaussian_noise", "speckle_noise"):
        assert _compare(name, x, [3, 3, 5, 5], make) == 0.0


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", [*NOISE, *COLOR])
def test_real_images_at_full_size(name, device, real_pair) -> None:
    for dtype, severity in (("uint8", 3), ("float32", 5)):
        x = torch.from_numpy(np.stack(real_pair)).permute(0, 3, 1, 2).contiguous()
        x = (x if dtype == "uint8" else x.to(torch.float32) / 255.0).to(device)
        assert _compare(name, x, [severity, severity], lambda b: np.random.default_rng(b)) == 0.0


def test_contrast_of_flat_images_takes_the_reference_mean() -> None:
    # Flat images put table entries on integers, where the truncation depends on how the mean is
    # summed: the CPU kernel then recomputes it NumPy's way, and so must the batch.
    x = torch.stack([torch.full((3, 9, 11), v, dtype=torch.uint8) for v in (0, 51, 128, 255, 77)])
    assert _compare("contrast", x, SEVERITIES, lambda b: b) == 0.0


@settings(max_examples=12, deadline=None)
@given(
    name=st.sampled_from([*NOISE, *COLOR]),
    height=st.integers(1, 40),
    width=st.integers(1, 40),
    channels=st.sampled_from([1, 3, 4]),
    severities=st.lists(st.integers(1, 5), min_size=1, max_size=3),
    seed=st.integers(0, 2**32 - 1),
)
def test_any_shape_and_severities_match(name, height, width, channels, severities, seed) -> None:
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(rng.integers(0, 256, (len(severities), channels, height, width), dtype=np.uint8))
    assert _compare(name, x, severities, lambda b: np.random.default_rng(seed + b)) == 0.0


def test_an_int_seed_spawns_one_source_per_sample() -> None:
    x = _batch("rgb", "uint8", count=3)
    a = noise.gaussian_noise(x, 4, rngs=11)
    b = noise.gaussian_noise(x, 4, rngs=11)
    assert torch.equal(a, b) and not torch.equal(a[0], a[1])


@pytest.mark.parametrize("name", [*NOISE, *COLOR])
def test_errors_name_the_argument_and_the_value(name) -> None:
    kernel = KERNELS[name]
    x = _batch("rgb", "uint8", count=2)
    with pytest.raises(ValueError, match=r"severity must be one int or 2 ints .* got 3"):
        kernel(x, [1, 2, 3], rngs=[0, 1])
    with pytest.raises(ValueError, match=r"severity must be in 1..5, got 6"):
        kernel(x, [1, 6], rngs=[0, 1])
    with pytest.raises(TypeError, match=r"images must have dtype .* got torch.int32"):
        kernel(x.to(torch.int32), 1, rngs=[0, 1])
    with pytest.raises(ValueError, match=r"rngs must hold one source per sample \(2\), got 1"):
        kernel(x, 1, rngs=[0])


def test_one_generator_shared_by_the_batch_draws_sample_after_sample(real_pair) -> None:
    # Large batches draw in host threads, but only when every sample has its own source: a
    # shared generator is drawn from sample 0 first, then sample 1, as a loop over the CPU kernel.
    x = torch.from_numpy(np.stack(real_pair)).permute(0, 3, 1, 2).contiguous()
    shared = np.random.default_rng(9)
    out = noise.gaussian_noise(x, [2, 4], rngs=[shared, shared])
    again = np.random.default_rng(9)
    for b, image in enumerate(to_numpy(x)):
        assert np.array_equal(to_numpy(out)[b], F.gaussian_noise(image, [2, 4][b], rng=again))


def test_host_map_uses_threads_only_for_distinct_sources_and_keeps_order(monkeypatch) -> None:
    import threading

    def where(b: int) -> tuple[int, str]:
        return b, threading.current_thread().name

    monkeypatch.setattr(batch_module, "_THREADED_PIXELS", 0)
    monkeypatch.setattr(batch_module.os, "cpu_count", lambda: 4)
    distinct = batch_module.host_map(where, range(6), [object() for _ in range(6)], 1)
    assert [b for b, _ in distinct] == list(range(6))
    assert all(name.startswith("kc-host") for _, name in distinct)
    shared = object()
    assert all(
        name == threading.current_thread().name
        for _, name in batch_module.host_map(where, range(6), [shared] * 6, 1)
    )
    # and a threaded batch equals the CPU kernels sample by sample
    x = _batch("rgba", "float32", count=4)
    assert _compare("speckle_noise", x, [1, 2, 4, 5], lambda b: np.random.default_rng(40 + b)) == 0.0
