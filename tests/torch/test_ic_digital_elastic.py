"""Batched torch pixelate, JPEG and elastic kernels against the CPU kernels of ``functional.imagenet_c``.

The reference of sample ``b`` is the library's own CPU kernel run on image ``b`` with a NumPy
source in the same state as ``rngs[b]``; elastic keypoints are compared with the CPU
``elastic_transform_with_keypoints``. All three are bit-exact (``docs/torch.md``).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

import keypoint_corrupt.functional.imagenet_c as F  # noqa: E402
from keypoint_corrupt.torch._batch import to_numpy  # noqa: E402
from keypoint_corrupt.torch.imagenet_c import digital, elastic  # noqa: E402
from keypoint_corrupt.torch.imagenet_c.elastic import remap_reflect  # noqa: E402

KERNELS = {
    "pixelate": digital.pixelate,
    "jpeg_compression": digital.jpeg_compression,
    "elastic_transform": elastic.elastic_transform,
}
SEVERITIES = [1, 2, 3, 4, 5]
DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]


def _batch(kind: str, dtype: str, real: list[np.ndarray] | None = None, count: int = 5) -> torch.Tensor:
    """``count`` images of one layout: random (odd sizes, 1x1, tall) or shrunk crops of the real pair."""
    if kind == "real":
        assert real is not None
        small = [cv2.resize(r, (69, 51), interpolation=cv2.INTER_AREA) for r in real]
        stack = np.stack([np.roll(small[b % 2], 7 * b, axis=1) for b in range(count)]).transpose(0, 3, 1, 2)
    else:
        shape = {"grey": (1, 7, 13), "rgb1x1": (3, 1, 1), "rgba": (4, 13, 9), "tall": (3, 61, 19)}[kind]
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
@pytest.mark.parametrize("kind", ["grey", "rgb1x1", "rgba", "tall", "real"])
@pytest.mark.parametrize("name", list(KERNELS))
def test_every_severity_matches_the_cpu_kernel_bit_for_bit(name, kind, dtype, real_pair) -> None:
    # "tall" (61 x 19) makes pixelate take Pillow's vertical pass first.
    x = _batch(kind, dtype, real_pair)
    assert _compare(name, x, SEVERITIES, lambda b: np.random.default_rng(100 + b)) == 0.0


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", list(KERNELS))
def test_real_images_at_full_size(name, device, real_pair) -> None:
    for dtype, severity in (("uint8", 3), ("float32", 5)):
        x = torch.from_numpy(np.stack(real_pair)).permute(0, 3, 1, 2).contiguous()
        x = (x if dtype == "uint8" else x.to(torch.float32) / 255.0).to(device)
        assert _compare(name, x, [severity, 1], lambda b: np.random.default_rng(b)) == 0.0


@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_elastic_with_random_states_draws_imagecorruptions_field(dtype) -> None:
    x = _batch("rgba", dtype)
    assert _compare("elastic_transform", x, SEVERITIES, lambda b: np.random.RandomState(b)) == 0.0


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_elastic_keypoints_move_as_the_cpu_kernel_moves_them(dtype, real_pair) -> None:
    x = _batch("real", "uint8", real_pair, count=3)
    rng = np.random.default_rng(3)
    points = np.concatenate([rng.uniform(0, 51, (3, 6, 2)), rng.integers(0, 3, (3, 6, 1))], axis=2)
    points[1, 2, :2] = np.nan  # a missing joint stays missing
    keypoints = torch.from_numpy(points).to(dtype)
    out, moved = elastic.elastic_transform(x, [1, 3, 5], rngs=[5, 6, 7], keypoints=keypoints)
    assert moved.dtype == dtype and moved.shape == keypoints.shape
    for b, image in enumerate(to_numpy(x)):
        ref_image, ref_points = F.elastic_transform_with_keypoints(
            image, keypoints[b].to(torch.float64).numpy(), [1, 3, 5][b], rng=[5, 6, 7][b]
        )
        assert np.array_equal(to_numpy(out)[b], ref_image)
        np.testing.assert_array_equal(moved[b].numpy(), ref_points.astype(keypoints.numpy().dtype))
    assert torch.isnan(moved[1, 2, :2]).all() and torch.equal(moved[..., 2], keypoints[..., 2])
    # the points really move (a severity-5 field displaces by pixels)
    assert float(torch.nan_to_num(moved[2, :, :2] - keypoints[2, :, :2]).abs().max()) > 0.5


def test_remap_reflects_at_the_borders_as_opencv() -> None:
    rng = np.random.default_rng(0)
    values = rng.random((9, 14, 3), dtype=np.float32) * 255
    map_x = (np.arange(14, dtype=np.float32)[None] + rng.uniform(-30, 30, (9, 14))).astype(np.float32)
    map_y = (np.arange(9, dtype=np.float32)[:, None] + rng.uniform(-30, 30, (9, 14))).astype(np.float32)
    ref = cv2.remap(values, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    got = remap_reflect(
        torch.from_numpy(values).permute(2, 0, 1)[None],
        torch.from_numpy(map_x)[None],
        torch.from_numpy(map_y)[None],
    )
    np.testing.assert_array_equal(got[0].permute(1, 2, 0).numpy(), ref)


@settings(max_examples=10, deadline=None)
@given(
    name=st.sampled_from(list(KERNELS)),
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


@pytest.mark.parametrize("name", list(KERNELS))
def test_errors_name_the_argument_and_the_value(name) -> None:
    kernel = KERNELS[name]
    x = _batch("rgba", "uint8", count=2)
    with pytest.raises(ValueError, match=r"severity must be one int or 2 ints .* got 3"):
        kernel(x, [1, 2, 3], rngs=[0, 1])
    with pytest.raises(TypeError, match=r"severity must hold ints in 1..5, got 2.5"):
        kernel(x, [1, 2.5], rngs=[0, 1])
    with pytest.raises(TypeError, match=r"images must have dtype .* got torch.float64"):
        kernel(x.to(torch.float64), 1, rngs=[0, 1])
    with pytest.raises(ValueError, match=r"images must have shape B x C x H x W, got shape \(4, 13, 9\)"):
        kernel(x[0], 1, rngs=[0])


def test_elastic_keypoint_errors_name_the_argument() -> None:
    x = _batch("rgb1x1", "uint8", count=2)
    with pytest.raises(ValueError, match=r"keypoints must have shape 2 x J x 2 .* got \(3, 4, 2\)"):
        elastic.elastic_transform(x, 1, rngs=[0, 1], keypoints=torch.zeros(3, 4, 2))
    with pytest.raises(TypeError, match=r"keypoints must hold real numbers, got dtype torch.bool"):
        elastic.elastic_transform(x, 1, rngs=[0, 1], keypoints=torch.zeros(2, 4, 2, dtype=torch.bool))
    with pytest.raises(TypeError, match=r"keypoints must be a B x J x 2 tensor or array.*got str"):
        elastic.elastic_transform(x, 1, rngs=[0, 1], keypoints="kps")
    with pytest.raises(ValueError, match=r"keypoints\[1\] must have shape J x 2 .* got \(4,\)"):
        elastic.elastic_transform(x, 1, rngs=[0, 1], keypoints=[np.zeros((3, 2)), np.zeros(4)])


def test_grid_sample_instead_of_the_remap_would_be_within_one_level(real_pair) -> None:
    # Why the kernel emulates OpenCV's remap: torch's own bilinear sampler (reflection padding,
    # align_corners=False, the same field) rounds differently. The docs quote this measurement:
    # 1 level at most against OpenCV 5; OpenCV 4 moves positions by up to 1/64 px (4 levels here).
    from keypoint_corrupt.functional.imagenet_c import elastic as cpu
    from keypoint_corrupt.functional.imagenet_c._common import as_draws

    worst, differing, total = 0, 0, 0
    for image in real_pair:
        height, width = image.shape[:2]
        for severity in SEVERITIES:
            ref = F.elastic_transform(image, severity, rng=severity)
            dx, dy = cpu._field(height, width, severity, as_draws(np.random.default_rng(severity)))
            map_x = dx + np.arange(width, dtype=np.float32)[None]
            map_y = dy + np.arange(height, dtype=np.float32)[:, None]
            grid = torch.from_numpy(np.stack([(2 * map_x + 1) / width - 1, (2 * map_y + 1) / height - 1], -1))
            unit = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255.0
            warped = torch.nn.functional.grid_sample(
                unit, grid[None], mode="bilinear", padding_mode="reflection", align_corners=False
            )
            got = (warped * 255).clamp(0, 255).to(torch.uint8)[0].permute(1, 2, 0).numpy()
            diff = np.abs(got.astype(np.int64) - ref.astype(np.int64))
            worst, differing, total = (
                max(worst, int(diff.max())),
                differing + int((diff > 0).sum()),
                total + diff.size,
            )
    print(
        f"grid_sample vs CPU elastic_transform: max {worst} level(s), {differing / total:.2%} values differ"
    )
    assert worst <= (5 if elastic._opencv_fixed_point() else 1)


def test_remap_follows_opencv_4_or_5_arithmetic_by_hand() -> None:
    # Values 0 and 32 sampled at x = 0.3: OpenCV 4 rounds the position to 10/32 px (10.0);
    # OpenCV 5 interpolates at the float32 position itself (0.3 * 32 in float32).
    values = torch.tensor([[[[0.0, 32.0]]]])
    map_x, map_y = torch.tensor([[[0.3]]]), torch.zeros(1, 1, 1)
    assert remap_reflect(values, map_x, map_y, fixed_point=True).item() == 10.0
    exact = float(np.float32(0.3) - np.float32(0.0)) * 32.0
    assert remap_reflect(values, map_x, map_y, fixed_point=False).item() == pytest.approx(exact, abs=1e-5)
    # past the right border BORDER_REFLECT repeats the edge pixel: x = 1.5 mixes 32 and 32
    assert remap_reflect(values, torch.tensor([[[1.5]]]), map_y, fixed_point=True).item() == 32.0
