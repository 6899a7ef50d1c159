"""Fixes of the torch package's review (issue 15): compile, shared generators, threads, fills, grads.

References: the CPU kernels run in a loop over the samples (``functional.imagenet_c``,
``registry.apply_corruption``) with the same generators; ``functional.fill_box``'s messages;
eager execution for the compiled modules.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from keypoint_corrupt.datasets.subsets import sample_rng
from keypoint_corrupt.functional import imagenet_c as FI
from keypoint_corrupt.registry import CONFIGS, apply_corruption, register_config, unregister_config
from keypoint_corrupt.suites import get_suite, register_suite, unregister_suite
from keypoint_corrupt.torch import Corruption, SuiteSampler, get_kernel
from keypoint_corrupt.torch import _batch as host_pool_module
from keypoint_corrupt.torch._batch import shares_source, to_numpy
from keypoint_corrupt.torch.imagenet_c import NAMES
from keypoint_corrupt.torch.imagenet_c import color as torch_color
from keypoint_corrupt.torch.reference import fill_boxes
from keypoint_corrupt.transforms import ImageNetC


def batch(b=2, h=20, w=30, seed=0, dtype="uint8"):
    x = torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (b, 3, h, w), dtype=np.uint8))
    return x if dtype == "uint8" else x.to(torch.float32) / 255.0


def keypoints(b=2, h=20, w=30):
    return torch.from_numpy(np.random.default_rng(1).random((b, 5, 2)) * [w, h])


# --- 1. torch.compile: the host NumPy steps are outside the graph, in every kernel module ---------

# one configuration per kernel module: noise, elastic, colour, digital, blur, weather, reference
COMPILED = [
    "imagenet-c.gaussian_noise-3",
    "imagenet-c.speckle_noise-4",
    "imagenet-c.elastic_transform-3",
    "imagenet-c.brightness-2",
    "imagenet-c.jpeg_compression-2",
    "imagenet-c.glass_blur-1",
    "imagenet-c.fog-2",
    "occlusion-20",
]


@pytest.mark.parametrize("name", COMPILED)
def test_every_kernel_module_compiles_with_aot_eager_and_gives_the_eager_result(name):
    torch._dynamo.reset()
    module = Corruption(name)
    compiled = torch.compile(module, backend="aot_eager")
    for dtype in ("uint8", "float32"):
        x = batch(dtype=dtype)
        assert torch.equal(compiled(x, [1, 2], keypoints()), module(x, [1, 2], keypoints()))


@pytest.mark.parametrize("name", ["imagenet-c.gaussian_noise-3", "imagenet-c.elastic_transform-3"])
def test_the_kernels_that_traced_numpy_compile_with_inductor(name):
    # uint8 Gaussian noise and the elastic transform crashed in Dynamo (NumPy traced as torch)
    torch._dynamo.reset()
    module = Corruption(name)
    x = batch(b=2, h=8, w=12)
    kps = keypoints(2, 8, 12)
    assert torch.equal(torch.compile(module)(x, [1, 2], kps), module(x, [1, 2], kps))


def test_an_imagenet_c_suite_sampler_compiles_and_reports_as_eager():
    torch._dynamo.reset()
    sampler = SuiteSampler("imagenet-c", severities=[2], seed=0)
    keys = ["k0", "k1", "k2"]
    assert len(set(sampler.choose(keys))) == 3  # three kernels in one batch
    compiled = torch.compile(sampler, backend="aot_eager")
    x = batch(b=3)
    assert torch.equal(compiled(x, keys, keypoints(3)), sampler(x, keys, keypoints(3)))


# --- 2. one generator shared by several samples: the CPU loop's draws, in sample order ------------


@pytest.mark.parametrize(
    "name", ["glass_blur", "motion_blur", "fog", "snow", "gaussian_noise", "elastic_transform"]
)
@pytest.mark.parametrize("maker", [np.random.default_rng, np.random.RandomState])
@pytest.mark.parametrize("severities", [[1, 3, 5], [5, 1, 3]])
def test_a_shared_generator_draws_sample_after_sample_as_the_cpu_loop(name, maker, severities):
    images = to_numpy(batch(b=3, h=17, w=23, seed=4))
    shared = maker(7)
    out = to_numpy(get_kernel(name)(batch(b=3, h=17, w=23, seed=4), severities, [shared] * 3))
    reference = maker(7)
    for b in range(3):
        want = getattr(FI, name)(images[b].copy(), severities[b], rng=reference)
        np.testing.assert_array_equal(out[b], want, err_msg=f"sample {b}")
    assert shared.uniform() == reference.uniform()  # advanced exactly as the loop


def test_a_drawn_severity_and_the_kernel_draws_alternate_per_sample_as_on_the_cpu():
    register_config(
        "test-torch-review-range", ImageNetC, {"corruption": "gaussian_noise", "severity": (1, 5)}
    )
    try:
        x = batch(b=4, seed=2)
        for order in ([0, 1, 2, 3], [3, 1, 0, 2]):
            shared = np.random.default_rng(4)
            out, info = Corruption("test-torch-review-range").corrupt(x[order], [shared] * 4)
            reference = np.random.default_rng(4)
            for b, img in enumerate(to_numpy(x[order])):
                want, cpu = apply_corruption("test-torch-review-range", img, rng=reference)
                np.testing.assert_array_equal(to_numpy(out)[b], want)
                assert info["severity"][b] == cpu["severity"]
            assert shared.random() == reference.random()
    finally:
        unregister_config("test-torch-review-range")


# --- 3. the thread pool: generators on one BitGenerator are one source ---------------------------


def test_generators_on_one_bit_generator_are_drawn_in_order_in_the_calling_thread(monkeypatch):
    bit = np.random.PCG64(7)
    gens = [np.random.Generator(bit) for _ in range(4)]
    assert shares_source(gens) and shares_source([np.random.RandomState(bit), gens[0]])
    assert not shares_source([np.random.default_rng(1), np.random.default_rng(1)])
    monkeypatch.setattr(host_pool_module.os, "cpu_count", lambda: 4)
    threads = []

    def work(b):
        threads.append(threading.current_thread())
        return b

    host_pool_module.host_map(work, range(4), gens, 1 << 20)
    assert threads == [threading.main_thread()] * 4
    images = np.random.default_rng(0).random((4, 130, 130, 3), dtype=np.float32)  # above the threshold
    x = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    one_stream = np.random.PCG64(7)
    out = to_numpy(get_kernel("gaussian_noise")(x, 3, [np.random.Generator(one_stream) for _ in range(4)]))
    reference = np.random.Generator(np.random.PCG64(7))
    for b in range(4):
        np.testing.assert_array_equal(out[b], FI.gaussian_noise(images[b], 3, rng=reference))


# --- 4. fill_boxes validates the fill as the CPU fill_box -----------------------------------------


@pytest.mark.parametrize(
    ("dtype", "fill", "message"),
    [
        (torch.uint8, 300.0, "fill must lie in [0, 255] for a uint8 image, got 300.0"),
        (torch.uint8, -1, "fill must lie in [0, 255] for a uint8 image, got -1"),
        (torch.float32, 200.0, "fill must lie in [0, 1] for a float32 image, got 200.0"),
        (torch.float32, -3, "fill must lie in [0, 1] for a float32 image, got -3"),
        (torch.float32, float("nan"), "fill must lie in [0, 1] for a float32 image, got nan"),
    ],
)
def test_fill_boxes_refuses_fills_outside_the_image_range(dtype, fill, message):
    from keypoint_corrupt.functional.occlusion import fill_box

    x = torch.zeros(1, 3, 4, 4, dtype=dtype)
    with pytest.raises(ValueError) as cpu:
        fill_box(to_numpy(x)[0], (0, 0, 2, 2), fill)
    assert str(cpu.value) == message
    with pytest.raises(ValueError) as got:
        fill_boxes(x, torch.tensor([[0, 0, 2, 2]]), fill)
    assert str(got.value) == message
    assert int(fill_boxes(x, torch.tensor([[0, 0, 2, 2]]), 1).sum()) == 12  # in range: painted


# --- 5. a batch that requires grad is read as data ------------------------------------------------


def test_every_kernel_and_configuration_takes_a_batch_that_requires_grad():
    base = batch(b=2, h=24, w=31, seed=3, dtype="float32")
    for name in NAMES:
        kernel = get_kernel(name)
        want = kernel(base.clone(), [2, 4], [1, 2])
        got = kernel(base.clone().requires_grad_(True), [2, 4], [1, 2])
        assert not got.requires_grad and torch.equal(got, want), name
    kps = torch.tensor([[[5.0, 5.0], [20.0, 15.0]]] * 2)
    for name in [*CONFIGS, "posebench.mask-3"]:
        module = Corruption(name)
        want = module(base.clone(), [1, 2], kps)
        got = module(base.clone().requires_grad_(True), [1, 2], kps)
        assert not got.requires_grad and torch.equal(got, want), name


# --- 6. SuiteSampler: the choice depends on the set asked for; info as Corruption.corrupt ----------


def test_the_sampler_normalises_its_severities_and_corruptions():
    a = SuiteSampler("imagenet-c", severities=[3, 1, 1], corruptions=["fog", "contrast", "fog"])
    b = SuiteSampler("imagenet-c", severities=[1, 3], corruptions=["contrast", "fog"])
    # sorted unique severities, corruptions in the suite's order (fog before contrast)
    assert a.configs == b.configs == get_suite("imagenet-c").configs([1, 3], ["fog", "contrast"])
    keys = [f"k{i}" for i in range(50)]
    assert a.choose(keys) == b.choose(keys)
    with pytest.raises(ValueError, match=r"severities must hold at least one severity.*got \[\]"):
        SuiteSampler("imagenet-c", severities=[])
    with pytest.raises(ValueError, match=r"corruptions must name at least one corruption.*got \[\]"):
        SuiteSampler("imagenet-c", corruptions=[])
    with pytest.raises(ValueError, match=r"corruptions of suite 'imagenet-c' are .* got \['fogg'\]"):
        SuiteSampler("imagenet-c", corruptions=["fogg"])
    with pytest.raises(TypeError, match="corruptions must be a sequence"):
        SuiteSampler("imagenet-c", corruptions="fog")


def test_the_sampler_reports_moved_keypoints_and_mask_boxes():
    register_config(
        "test-torch-review-elastic", ImageNetC, {"corruption": "elastic_transform", "severity": 4}
    )
    register_suite(
        "test-torch-review", {"elastic": ["test-torch-review-elastic"], "mask": ["posebench.mask-3"]}
    )
    try:
        sampler = SuiteSampler("test-torch-review", seed=5)
        keys = [f"s{i}" for i in range(8)]
        chosen = sampler.choose(keys)
        assert len(set(chosen)) == 2
        x = batch(b=8, h=40, w=48, seed=6)
        kps = torch.from_numpy(np.random.default_rng(2).random((8, 6, 2)) * [48, 40])
        out, info = sampler.sample(x, keys, keypoints=kps)
        assert info["config"] == chosen and info["keypoints"].shape == (8, 6, 2)
        assert info["boxes"].shape[0] == 8 and info["box"].tolist() == [[-1] * 4] * 8
        for b, img in enumerate(to_numpy(x)):
            rng = sample_rng(5, keys[b], chosen[b])
            if chosen[b] == "posebench.mask-3":
                want, cpu = apply_corruption(chosen[b], img, kps[b].numpy(), rng=rng)
                assert [tuple(r) for r in info["boxes"][b].tolist() if r[0] >= 0] == cpu["boxes"]
                assert torch.equal(info["keypoints"][b], kps[b])
            else:
                want, moved = FI.elastic_transform_with_keypoints(img, kps[b].numpy(), 4, rng=rng)
                np.testing.assert_array_equal(info["keypoints"][b].numpy(), moved)
                assert not torch.equal(info["keypoints"][b], kps[b])
                assert (info["boxes"][b] == -1).all()
            np.testing.assert_array_equal(to_numpy(out)[b], want)
    finally:
        unregister_suite("test-torch-review")
        unregister_config("test-torch-review-elastic")


# --- 7. elastic keypoints in any documented form; colour groups keyed by severity ----------------


def test_elastic_takes_one_array_per_sample_and_integer_tensors():
    x = batch(b=2, h=30, w=40)
    ragged = [np.array([[3.0, 4.0], [20.0, 10.0]]), np.array([[5.0, 5.0], [30.0, 20.0], [1.0, 2.0]])]
    out, moved = get_kernel("elastic_transform")(x, [2, 5], [0, 1], keypoints=ragged)
    for b, img in enumerate(to_numpy(x)):
        want, want_moved = FI.elastic_transform_with_keypoints(img, ragged[b], [2, 5][b], rng=b)
        np.testing.assert_array_equal(to_numpy(out)[b], want)
        np.testing.assert_array_equal(moved[b].numpy(), want_moved)
    ints = torch.tensor([[[3, 4], [20, 10]]] * 2)
    _, moved_int = get_kernel("elastic_transform")(x, 2, [0, 1], keypoints=ints)
    _, moved_float = get_kernel("elastic_transform")(x, 2, [0, 1], keypoints=ints.to(torch.float64))
    assert moved_int.dtype == torch.float64 and torch.equal(moved_int, moved_float)


def test_colour_groups_of_severities_sharing_parameters_are_both_corrupted(monkeypatch):
    params = dict(torch_color.PARAMS)
    params["brightness"] = (0.3, 0.3, 0.3, 0.4, 0.5)  # severities 1..3 share their shift
    monkeypatch.setattr(torch_color, "PARAMS", params)
    x = batch(b=3, seed=8)
    out = get_kernel("brightness")(x, [1, 2, 4])
    expected = get_kernel("brightness")(x, [3, 3, 4])  # the same shifts, one group
    assert torch.equal(out, expected)
