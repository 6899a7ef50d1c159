"""The eleven reference configurations on torch batches equal the CPU path, sample by sample.

References: ``registry.apply_corruption`` (the CPU path: OpenCV's GaussianBlur and blur, the
NumPy noise and occlusion kernels) with generators in the same state, on real images.
"""

from __future__ import annotations

import zlib

import cv2
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from keypoint_corrupt import functional as F
from keypoint_corrupt.datasets import STB, CorruptedDataset, bundled_sample_root
from keypoint_corrupt.datasets.images import load_image
from keypoint_corrupt.registry import CONFIGS, apply_corruption
from keypoint_corrupt.torch import reference as R
from keypoint_corrupt.torch._batch import to_numpy

KEYPOINTS = np.array([[120.0, 80.0], [300.0, 220.0], [200.0, 150.0], [-40.0, 500.0]])
VISIBLE = np.array([True, True, True, False])
NOTHING_VISIBLE = np.zeros(4, dtype=bool)
SEEDS = (11, 12)
#: The parity tests also run on a GPU where one is present (docs/torch.md: "On a GPU").
DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]


def cpu_reference(name, arrays, visibility, seeds):
    outs, boxes = [], []
    for img, vis, seed in zip(arrays, visibility, seeds, strict=True):
        out, info = apply_corruption(name, img, KEYPOINTS, visibility=vis, rng=np.random.default_rng(seed))
        outs.append(out)
        boxes.append(info.get("box") or (-1, -1, -1, -1))
    return outs, boxes


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ["uint8", "float32"])
@pytest.mark.parametrize("name", CONFIGS)
def test_every_configuration_matches_the_cpu_path_on_real_images(name, dtype, device, real_pair, as_batch):
    batch = as_batch(real_pair, dtype).to(device)
    before = batch.clone()
    visibility = [VISIBLE, NOTHING_VISIBLE]  # the second sample's occluder cannot be placed
    out, info = R.apply_config(
        name,
        batch,
        rngs=[np.random.default_rng(s) for s in SEEDS],
        keypoints=torch.tensor(np.stack([KEYPOINTS] * 2)),
        visibility=torch.tensor(np.stack(visibility)),
    )
    expected, boxes = cpu_reference(name, to_numpy(batch), visibility, SEEDS)
    assert torch.equal(batch, before), "the input batch was modified"
    assert out.dtype == batch.dtype and out.shape == batch.shape and out.device == batch.device
    assert info["box"].tolist() == [list(b) for b in boxes]
    for got, want in zip(to_numpy(out), expected, strict=True):
        if dtype == "float32" and name.startswith("defocus"):
            # OpenCV's float32 separable filter sums in another order: a few float32 ulps (docs/torch.md)
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
        else:
            np.testing.assert_array_equal(got, want)
    if name.startswith("occlusion"):
        assert boxes[0][0] >= 0 and boxes[1] == (-1, -1, -1, -1)


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("channels", [1, 4])
@pytest.mark.parametrize("size", [(1, 1), (7, 13)])
def test_grey_alpha_and_tiny_images_match_the_cpu_path(name, channels, size, as_batch):
    rng = np.random.default_rng([zlib.crc32(name.encode()), channels, *size])
    arrays = [rng.integers(0, 256, (*size, channels), dtype=np.uint8) for _ in range(3)]
    kps = np.array([[0.5, 0.5], [size[1] - 0.5, size[0] - 0.5]])
    for dtype in ("uint8", "float32"):
        batch = as_batch(arrays, dtype)
        out, _ = R.apply_config(name, batch, rngs=[1, 2, 3], keypoints=[kps] * 3)
        for img, got, seed in zip(to_numpy(batch), to_numpy(out), (1, 2, 3), strict=True):
            cpu_in = img[..., 0] if channels == 1 else img  # grey as the 2-D image the CPU path takes
            want, _ = apply_corruption(name, cpu_in, kps, rng=seed)
            want = want.reshape(got.shape)
            tol = 1e-6 if dtype == "float32" and name.startswith("defocus") else 0
            np.testing.assert_allclose(got, want, rtol=0, atol=tol)


@settings(max_examples=25, deadline=None)
@given(
    h=st.integers(1, 24),
    w=st.integers(1, 40),
    k=st.integers(1, 300),
    seed=st.integers(0, 2**16),
)
def test_motion_blur_is_bit_exact_for_any_length_and_size(as_batch, h, w, k, seed):
    img = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    got = R.motion_blur(as_batch([img]), k)
    np.testing.assert_array_equal(to_numpy(got)[0], F.motion_blur(img, k))
    batch = as_batch([img], "float32")
    np.testing.assert_array_equal(to_numpy(R.motion_blur(batch, k))[0], F.motion_blur(to_numpy(batch)[0], k))


@settings(max_examples=25, deadline=None)
@given(h=st.integers(1, 24), w=st.integers(1, 40), half=st.integers(0, 15), seed=st.integers(0, 2**16))
def test_defocus_blur_is_bit_exact_on_uint8_for_any_odd_kernel(as_batch, h, w, half, seed):
    img = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    k = 2 * half + 1
    got = R.defocus_blur(as_batch([img]), k)
    np.testing.assert_array_equal(to_numpy(got)[0], cv2.GaussianBlur(img, (k, k), 0))
    batch = as_batch([img], "float32")
    want = F.defocus_blur(to_numpy(batch)[0], k)
    np.testing.assert_allclose(to_numpy(R.defocus_blur(batch, k))[0], want, rtol=0, atol=1e-6)


def test_the_tf32_proof_column_pass_of_cuda_is_exact_too(real_pair):
    img = real_pair[0]
    x = torch.from_numpy(img).permute(2, 0, 1).reshape(1, 3, *img.shape[:2]).to(torch.float32)
    for k in (7, 21):
        taps = torch.tensor(R.defocus_taps(k, True))
        split = R._separable_fixed(x, taps, split=True)
        assert torch.equal(split, R._separable_fixed(x, taps, split=False))
        out = split.add_(32768.0).mul_(1.0 / 65536.0).to(torch.uint8)[0].permute(1, 2, 0).numpy()
        np.testing.assert_array_equal(out, cv2.GaussianBlur(img, (k, k), 0))


def test_the_ieee_float32_context_sets_and_restores_cudnns_setting():
    conv = torch.backends.cudnn.conv
    before = conv.fp32_precision
    with R._exact_float32(torch.device("cuda")):  # only the flag is touched: no GPU needed
        assert conv.fp32_precision == "ieee"
    assert conv.fp32_precision == before


def test_fixed_point_taps_sum_to_256_and_follow_opencvs_small_tables():
    # OpenCV's 7-tap table [1, 3.5, 7, 9, 7, 3.5, 1] / 32, times 256
    assert R.defocus_taps(7, True) == (8.0, 28.0, 56.0, 72.0, 56.0, 28.0, 8.0)
    for k in (3, 5, 9, 13, 21, 31):
        taps = R.defocus_taps(k, True)
        assert sum(taps) == 256 and taps == taps[::-1] and all(float(t).is_integer() for t in taps)
    assert abs(sum(R.defocus_taps(21, False)) - 1.0) < 1e-6


def test_fill_boxes_paints_each_sample_its_own_box_with_per_channel_fill():
    x = torch.full((3, 3, 5, 6), 200, dtype=torch.uint8)
    boxes = torch.tensor([[0, 0, 2, 1], [-1, -1, -1, -1], [4, 3, 6, 5]])
    out = R.fill_boxes(x, boxes, (10, 20, 30.9))
    for b, img in enumerate(to_numpy(x)):
        box = None if boxes[b, 0] < 0 else tuple(boxes[b].tolist())
        np.testing.assert_array_equal(to_numpy(out)[b], F.fill_box(img, box, (10, 20, 30.9)))


def test_dataset_items_equal_a_torch_batch_of_the_base_samples(as_batch):
    base = STB(bundled_sample_root(), "val")
    for config in ("occlusion-20", "noise-gaussian"):
        ds = CorruptedDataset(base, [config], fraction=1.0, seed=5, mode="subset")
        items = [ds[i] for i in range(len(ds))]
        samples = [base[e.base_index] for e in ds.plan]
        batch = as_batch([load_image(s) for s in samples])
        out, info = R.apply_config(
            config,
            batch,
            rngs=R.config_rngs(5, [s.id for s in samples], config),
            keypoints=[s.keypoints for s in samples],
            visibility=[s.visibility for s in samples],
        )
        assert len(items) >= 2
        for b, item in enumerate(items):
            np.testing.assert_array_equal(to_numpy(out)[b], item["image"])
            assert info["box"][b].tolist() == item["box"].tolist()
        if config.startswith("occlusion"):
            assert (info["box"][:, 0] >= 0).all()


def test_config_rngs_follow_the_configurations_stream():
    a = R.config_rngs(3, ["s1", "s2"], "occlusion-10")
    b = R.config_rngs(3, ["s1", "s2"], "occlusion-30")  # the same "occlusion" stream
    c = R.config_rngs(3, ["s1", "s2"], "noise-gaussian")
    firsts = [[g.random() for g in gens] for gens in (a, b, c)]
    assert firsts[0] == firsts[1] and firsts[0] != firsts[2] and firsts[0][0] != firsts[0][1]
    with pytest.raises(TypeError, match="'s1'"):
        R.config_rngs(3, "s1", "occlusion-10")


def test_an_int_seed_spawns_reproducible_independent_samples():
    x = torch.full((2, 3, 16, 16), 128, dtype=torch.uint8)
    a, _ = R.apply_config("noise-gaussian", x, rngs=4)
    b, _ = R.apply_config("noise-gaussian", x, rngs=4)
    assert torch.equal(a, b) and not torch.equal(a[0], a[1])


def test_errors_name_the_argument_and_the_value():
    x = torch.zeros(2, 3, 8, 8, dtype=torch.uint8)
    with pytest.raises(ValueError, match="'defocus-8'"):
        R.apply_config("defocus-8", x)
    with pytest.raises(ValueError, match=r"'imagenet-c\.fog-3'.*ImageNetC"):
        R.apply_config("imagenet-c.fog-3", x)
    with pytest.raises(ValueError, match="keypoints=None"):
        R.apply_config("occlusion-10", x, rngs=[0, 1])
    with pytest.raises(ValueError, match=r"keypoints must hold one entry per sample \(2\), got 1"):
        R.apply_config("occlusion-10", x, rngs=[0, 1], keypoints=[[[1.0, 1.0]]])
    with pytest.raises(ValueError, match="rngs must hold one source per sample"):
        R.apply_config("motion-15", x, rngs=[0])
    with pytest.raises(ValueError, match=r"kernel_size must be odd.*8"):
        R.defocus_blur(x, 8)
    with pytest.raises(ValueError, match=r"fill must .* 3 values"):
        R.fill_boxes(x, torch.full((2, 4), -1), (1, 2))
    assert R.supports_config("noise-saltpepper") and not R.supports_config("posebench.mask-1")


def test_threaded_host_draws_give_the_serial_results():
    # 6 x 3 x 64 x 64 = 73,728 values: above the thread pool's threshold (_batch.host_map)
    x = torch.full((6, 3, 64, 64), 120, dtype=torch.uint8)
    threaded = [R.apply_config(n, x, rngs=list(range(6)))[0] for n in ("noise-gaussian", "noise-saltpepper")]
    shared = np.random.default_rng(9)  # one generator for two samples: drawn in order, serially
    two = R.apply_config("noise-gaussian", x[:2], rngs=[shared, shared])[0]
    for name, out in zip(("noise-gaussian", "noise-saltpepper"), threaded, strict=True):
        for b, img in enumerate(to_numpy(x)):
            np.testing.assert_array_equal(to_numpy(out)[b], apply_corruption(name, img, rng=b)[0])
    g = np.random.default_rng(9)
    for b, img in enumerate(to_numpy(x[:2])):
        np.testing.assert_array_equal(to_numpy(two)[b], apply_corruption("noise-gaussian", img, rng=g)[0])


@pytest.mark.parametrize("name", CONFIGS)
def test_a_channels_last_batch_gives_the_same_values(name):
    x = torch.from_numpy(np.random.default_rng(3).integers(0, 256, (2, 3, 9, 11), dtype=np.uint8))
    kps = [KEYPOINTS * 0.05] * 2
    want, _ = R.apply_config(name, x, rngs=[1, 2], keypoints=kps)
    got, _ = R.apply_config(name, x.contiguous(memory_format=torch.channels_last), rngs=[1, 2], keypoints=kps)
    assert torch.equal(got, want)


def test_with_instances_occlusion_targets_the_cpu_paths_person():
    rng = np.random.default_rng(4)
    arrays = [rng.integers(0, 256, (120, 160, 3), dtype=np.uint8) for _ in range(4)]
    kps = np.array([[20.0, 20.0], [40.0, 35.0], [30.0, 50.0], [110.0, 70.0], [140.0, 100.0], [125.0, 90.0]])
    instances = np.repeat([0, 1], 3)
    visibility = np.array(
        [[1, 1, 1, 1, 1, 1], [0, 0, 0, 1, 1, 1], [1, 1, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]], bool
    )
    batch = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    targets = []
    for name in ("occlusion-10", "occlusion-30"):
        out, info = R.apply_config(
            name,
            batch,
            rngs=[7, 8, 9, 10],
            keypoints=torch.tensor(np.stack([kps] * 4)),
            visibility=torch.tensor(visibility),
            instances=torch.tensor(np.stack([instances] * 4)),
        )
        for b, img in enumerate(arrays):
            want, cpu = apply_corruption(
                name, img, kps, visibility=visibility[b], instances=instances, rng=7 + b
            )
            np.testing.assert_array_equal(to_numpy(out)[b], want)
            assert info["target_instance"][b] == cpu["target_instance"]
            assert info["box"][b].tolist() == list(cpu["box"] or (-1, -1, -1, -1))
        targets.append(info["target_instance"])
    assert targets[0] == targets[1] and targets[0][1:] == [1, 0, None]  # the shared stream, the usable ones
