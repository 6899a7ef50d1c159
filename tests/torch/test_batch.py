"""The batch contract of keypoint_corrupt.torch._batch: checks, per-sample sources, the RGB round trip.

References: the CPU image contract (``functional.imagenet_c._common.run_rgb``: grey corrupted as
its RGB stack, alpha passed through, uint8 clipped and truncated) and NumPy's own generators.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from keypoint_corrupt.functional.imagenet_c._common import run_rgb
from keypoint_corrupt.torch import _batch as B


@pytest.mark.parametrize(
    ("images", "error", "message"),
    [
        (np.zeros((1, 3, 4, 4), np.uint8), TypeError, "images must be a torch.Tensor, got ndarray"),
        (torch.zeros(1, 3, 4, 4, dtype=torch.float64), TypeError, "got torch.float64"),
        (torch.zeros(3, 4, 4, dtype=torch.uint8), ValueError, r"B x C x H x W, got shape \(3, 4, 4\)"),
        (
            torch.zeros(1, 2, 4, 4, dtype=torch.uint8),
            ValueError,
            r"1, 3 or 4 channels, got shape \(1, 2, 4, 4\)",
        ),
        (torch.zeros(0, 3, 4, 4, dtype=torch.uint8), ValueError, r"empty: shape \(0, 3, 4, 4\)"),
        (torch.full((1, 3, 2, 2), 1.5), ValueError, "max=1.5"),
        (torch.full((1, 3, 2, 2), float("nan")), ValueError, "finite values"),
    ],
)
def test_check_batch_names_the_argument_and_the_value(images, error, message):
    with pytest.raises(error, match=message):
        B.check_batch(images)
    with pytest.raises(error, match=r"\bbatch\b"):
        B.check_batch(images, name="batch")


def test_check_severities_accepts_int_sequence_and_tensor_and_names_bad_values():
    assert B.check_severities(2, 3) == [2, 2, 2]
    assert B.check_severities(torch.tensor([1, 5]), 2) == [1, 5]
    with pytest.raises(ValueError, match=r"one int or 3 ints .* got 2"):
        B.check_severities([1, 2], 3)
    with pytest.raises(ValueError, match=r"severity must be in 1\.\.5, got 6"):
        B.check_severities([1, 6], 2)
    with pytest.raises(TypeError, match="got True"):
        B.check_severities(True, 1)
    with pytest.raises(TypeError, match=r"got 2\.0"):
        B.check_severities([2.0], 1)


def test_rngs_semantics_int_seed_sequence_and_sources():
    # one int seeds the batch: spawned children, independent and reproducible
    a = [g.random() for g in B.check_rngs(9, 3)]
    b = [g.random() for g in B.check_rngs(9, 3)]
    children = np.random.SeedSequence(9).spawn(3)
    assert a == b == [np.random.default_rng(c).random() for c in children] and len(set(a)) == 3
    # ints inside a sequence are read as the CPU kernels read rng=int
    assert B.check_rngs([7], 1)[0].random() == np.random.default_rng(7).random()
    # generators and RandomStates pass through as the same objects (their state advances)
    g, rs = np.random.default_rng(1), np.random.RandomState(1)
    got = B.check_rngs([g, rs], 2)
    assert got[0] is g and got[1] is rs
    # None: fresh entropy per sample
    first = [g.random() for g in B.check_rngs(None, 2)]
    assert first[0] != first[1]


@pytest.mark.parametrize(
    ("rngs", "error", "message"),
    [
        (-1, ValueError, "rngs seed must be >= 0, got -1"),
        ("seed", TypeError, "got 'seed'"),
        ([1, 2, 3], ValueError, r"one source per sample \(2\), got 3"),
        ([1, -2], TypeError, "got -2"),
        ([1, True], TypeError, "got True"),
    ],
)
def test_check_rngs_errors_name_the_value(rngs, error, message):
    with pytest.raises(error, match=message):
        B.check_rngs(rngs, 2)


@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_rgb255_and_finish_rgb_follow_the_cpu_contract_for_grey_alpha_and_truncation(channels, dtype):
    rng = np.random.default_rng(channels)
    arrays = [rng.integers(0, 256, (5, 7, channels), dtype=np.uint8) for _ in range(2)]
    if dtype == torch.float32:
        arrays = [(a / np.float32(255)).astype(np.float32) for a in arrays]
    images = B.from_numpy(arrays, torch.zeros(1))
    assert images.shape == (2, channels, 5, 7) and images.dtype == dtype

    def kernel_numpy(rgb, params, draws):  # float32 maths with values past 255 and below 0
        return rgb * np.float32(1.37) - np.float32(20.3)

    out = B.finish_rgb(B.rgb255(B.check_batch(images)) * 1.37 - 20.3, images)
    assert out.shape == images.shape and out.dtype == images.dtype
    for got, img in zip(B.to_numpy(out), arrays, strict=True):
        cpu_in = img[..., 0] if channels == 1 else img
        want = run_rgb(cpu_in, kernel_numpy, None, None).reshape(got.shape)
        np.testing.assert_array_equal(got, want)  # the same float32 maths: the same clip and truncation
        if channels == 4:
            np.testing.assert_array_equal(got[..., 3], img[..., 3])


def test_rgb255_and_finish_rgb_round_trip_exactly():
    x = torch.randint(0, 256, (2, 4, 3, 3), dtype=torch.uint8)
    assert torch.equal(B.finish_rgb(B.rgb255(x), x), x)
    grey = x[:, :1]
    assert B.rgb255(grey).shape == (2, 3, 3, 3)
    assert torch.equal(B.finish_rgb(B.rgb255(grey), grey), grey)
    f = x.to(torch.float32) / 255.0
    assert torch.equal(B.finish_rgb(B.rgb255(f), f)[:, :3], (f[:, :3] * 255.0) / 255.0)


def test_to_numpy_and_from_numpy_are_inverse_and_keep_the_layout():
    x = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5) / 200.0
    arrays = B.to_numpy(x)
    assert arrays[1].shape == (4, 5, 3) and arrays[1][2, 3, 1] == x[1, 1, 2, 3].item()
    assert torch.equal(B.from_numpy(arrays, x), x)
    assert B.from_numpy([np.zeros((4, 5), np.uint8)], x).shape == (1, 1, 4, 5)


def test_severity_groups_cover_every_sample_once():
    groups = B.severity_groups([3, 1, 3, 5, 1])
    assert list(groups) == [1, 3, 5]
    assert sorted(i for idx in groups.values() for i in idx.tolist()) == [0, 1, 2, 3, 4]
    assert groups[3].tolist() == [0, 2]
