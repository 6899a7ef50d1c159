"""Corruption and SuiteSampler modules, the ImageNet-C kernel lookup, and torch.compile.

References: ``registry.apply_corruption`` and ``CorruptedDataset``'s generators
(``sample_rng``) on the CPU; eager execution for the compiled modules.
"""

from __future__ import annotations

import collections

import numpy as np
import pytest
import torch

from keypoint_corrupt.datasets.subsets import sample_rng
from keypoint_corrupt.registry import CONFIGS, apply_corruption, register_config, unregister_config
from keypoint_corrupt.suites import get_suite
from keypoint_corrupt.torch import Corruption, SuiteSampler, imagenet_c
from keypoint_corrupt.torch import modules as M
from keypoint_corrupt.torch._batch import to_numpy
from keypoint_corrupt.transforms import ImageNetC

KPS = np.array([[20.0, 15.0], [50.0, 40.0], [35.0, 30.0]])


def small_batch(b=6, c=3, h=48, w=64, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (b, c, h, w), dtype=np.uint8))


def test_a_reference_module_equals_the_cpu_path():
    x = small_batch()
    kps = torch.tensor(np.stack([KPS] * 6))
    out, info = Corruption("occlusion-20").corrupt(x, rngs=list(range(6)), keypoints=kps)
    for b, (img, got) in enumerate(zip(to_numpy(x), to_numpy(out), strict=True)):
        want, cpu_info = apply_corruption("occlusion-20", img, KPS, rng=b)
        np.testing.assert_array_equal(got, want)
        assert tuple(info["box"][b].tolist()) == cpu_info["box"]


def test_an_imagenet_c_module_runs_its_kernel_within_one_level_of_the_cpu_path():
    x = small_batch(b=3)
    out = Corruption("imagenet-c.contrast-3")(x, rngs=[0, 1, 2])
    for b, (img, got) in enumerate(zip(to_numpy(x), to_numpy(out), strict=True)):
        want, _ = apply_corruption("imagenet-c.contrast-3", img, rng=b)
        assert np.abs(got.astype(int) - want.astype(int)).max() <= 1


def test_a_severity_range_is_drawn_first_from_each_generator_as_the_cpu_transform_does(monkeypatch):
    calls = []

    def fake_kernel(images, severity, rngs=None):
        calls.append((list(severity), [g.random() for g in rngs]))
        return images

    monkeypatch.setattr(M, "get_kernel", lambda name: fake_kernel)
    register_config("test-torch-range", ImageNetC, {"corruption": "contrast", "severity": (2, 4)})
    try:
        Corruption("test-torch-range")(small_batch(b=4), rngs=[10, 11, 12, 13])
    finally:
        unregister_config("test-torch-range")
    ((severities, next_draws),) = calls
    for seed, severity, nxt in zip((10, 11, 12, 13), severities, next_draws, strict=True):
        g = np.random.default_rng(seed)
        assert severity == int(g.integers(2, 5)) and nxt == g.random()


def test_posebench_shared_corruptions_use_the_imagenet_c_kernel_and_its_own_are_refused():
    x = small_batch(b=2)
    out = Corruption("posebench.motion_blur-2")(x, rngs=[3, 4])
    for b, (img, got) in enumerate(zip(to_numpy(x), to_numpy(out), strict=True)):
        want, _ = apply_corruption("posebench.motion_blur-2", img, rng=(3, 4)[b])
        assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
    with pytest.raises(NotImplementedError, match=r"'posebench\.darkness-3'.*PoseBench"):
        Corruption("posebench.darkness-3")
    with pytest.raises(ValueError, match=r"'imagenet-c\.fog-9'"):
        Corruption("imagenet-c.fog-9")


def test_an_elastic_configuration_that_moves_keypoints_reports_them_as_the_cpu_path():
    register_config("test-torch-elastic", ImageNetC, {"corruption": "elastic_transform", "severity": 4})
    try:
        x = small_batch(b=2)
        kps = torch.tensor(np.stack([KPS, KPS[::-1].copy()]))
        out, info = Corruption("test-torch-elastic").corrupt(x, [1, 2], kps)
        for b, img in enumerate(to_numpy(x)):
            want, cpu_info = apply_corruption("test-torch-elastic", img, kps[b].numpy(), rng=1 + b)
            assert np.abs(to_numpy(out)[b].astype(int) - want.astype(int)).max() <= 1
            np.testing.assert_allclose(info["keypoints"][b].numpy(), cpu_info["keypoints"], atol=1e-5)
        assert "keypoints" not in Corruption("imagenet-c.elastic_transform-4").corrupt(x, [1, 2], kps)[1]
    finally:
        unregister_config("test-torch-elastic")


@pytest.mark.parametrize("with_keypoints", [True, False])
def test_posebench_mask_paints_the_cpu_squares(with_keypoints):
    x = small_batch(b=3)
    kps = torch.tensor(np.stack([KPS, KPS + 5, KPS * 0.5]))
    vis = torch.tensor([[True, True, True], [False, True, True], [False, False, False]])
    args = (kps, vis) if with_keypoints else (None, None)
    out, info = Corruption("posebench.mask-4").corrupt(x, [5, 6, 7], *args)
    for b, (img, got) in enumerate(zip(to_numpy(x), to_numpy(out), strict=True)):
        k, v = (kps[b].numpy(), vis[b].numpy()) if with_keypoints else (None, None)
        want, cpu_info = apply_corruption("posebench.mask-4", img, k, visibility=v, rng=5 + b)
        np.testing.assert_array_equal(got, want)
        drawn = [tuple(r) for r in info["boxes"][b].tolist() if r[0] >= 0]
        assert drawn == cpu_info["boxes"] and drawn


def test_posebench_mask_and_the_sampler_target_one_instance_as_the_cpu_path():
    x = small_batch(b=3)
    kps = np.concatenate([KPS, KPS + np.array([0.0, 5.0])])
    instances = np.repeat([0, 1], 3)
    batch_kps = torch.tensor(np.stack([kps] * 3))
    batch_inst = torch.tensor(np.stack([instances] * 3))
    out, info = Corruption("posebench.mask-5").corrupt(x, [4, 5, 6], batch_kps, None, batch_inst)
    sampler = SuiteSampler("costa2021", corruptions=["occlusion"], seed=2)
    keys = ["p", "q", "r"]
    sampled, sampled_info = sampler.sample(x, keys, batch_kps, None, batch_inst)
    chosen, boxes = sampled_info["config"], sampled_info["box"]
    for b, img in enumerate(to_numpy(x)):
        want, cpu = apply_corruption("posebench.mask-5", img, kps, instances=instances, rng=4 + b)
        np.testing.assert_array_equal(to_numpy(out)[b], want)
        assert info["target_instance"][b] == cpu["target_instance"] is not None
        rng = sample_rng(2, keys[b], chosen[b])
        want, cpu = apply_corruption(chosen[b], img, kps, instances=instances, rng=rng)
        np.testing.assert_array_equal(to_numpy(sampled)[b], want)
        assert boxes[b].tolist() == list(cpu["box"])
        assert sampled_info["target_instance"][b] == cpu["target_instance"]


def test_get_kernel_imports_lazily_and_explains_what_is_missing(monkeypatch):
    assert set(imagenet_c.NAMES) == set(ImageNetC._KERNELS) and len(imagenet_c.NAMES) == 19
    with pytest.raises(ValueError, match="'fogg'"):
        imagenet_c.get_kernel("fogg")
    monkeypatch.setitem(imagenet_c.KERNELS, "fog", "no_such_group")
    with pytest.raises(
        NotImplementedError, match=r"'fog'.*keypoint_corrupt\.torch\.imagenet_c\.no_such_group"
    ):
        imagenet_c.get_kernel("fog")
    assert "fog" not in imagenet_c.available()
    monkeypatch.setitem(imagenet_c.KERNELS, "fog", "noise")  # a module without a function 'fog'
    with pytest.raises(NotImplementedError, match="defines no function 'fog'"):
        imagenet_c.get_kernel("fog")


def test_the_sampler_gives_each_key_its_dataset_corruption_whatever_the_batch():
    sampler = SuiteSampler("costa2021", seed=3)
    keys = [f"sample-{i}" for i in range(12)]
    x = small_batch(b=12)
    kps = torch.tensor(np.stack([KPS] * 12))
    out, info = sampler.sample(x, keys, keypoints=kps)
    chosen, boxes = info["config"], info["box"]
    assert torch.equal(info["keypoints"], kps)  # nothing in costa2021 moves keypoints
    assert chosen == sampler.choose(keys) == SuiteSampler("costa2021", seed=3).choose(keys)
    assert chosen != SuiteSampler("costa2021", seed=4).choose(keys)
    for b, (img, got) in enumerate(zip(to_numpy(x), to_numpy(out), strict=True)):
        want, info = apply_corruption(chosen[b], img, KPS, rng=sample_rng(3, keys[b], chosen[b]))
        np.testing.assert_array_equal(got, want)
        assert boxes[b].tolist() == list(info.get("box") or (-1, -1, -1, -1))
    # the same sample in another batch, at another position: the same result
    alone = sampler(x[5:6].flip(0), [keys[5]], keypoints=kps[:1])
    assert torch.equal(alone[0], out[5])


def test_the_sampler_draws_every_cell_about_uniformly_and_checks_its_arguments():
    sampler = SuiteSampler("imagenet-c", severities=[1, 5], corruptions=["contrast", "brightness"])
    # the suite's order, whatever the order asked for
    assert sampler.configs == get_suite("imagenet-c").configs([1, 5], ["brightness", "contrast"])
    counts = collections.Counter(sampler.choose(range(4000)))
    assert set(counts) == set(sampler.configs)
    assert all(900 < n < 1100 for n in counts.values()), counts  # 1000 expected, sd 27
    with pytest.raises(ValueError, match=r"one key per sample \(2\), got 1"):
        sampler(small_batch(b=2), ["a"])
    with pytest.raises(TypeError, match="'ab'"):
        sampler.choose("ab")
    with pytest.raises(ValueError, match="seed must be an int >= 0, got -1"):
        SuiteSampler("costa2021", seed=-1)


def test_compiled_modules_equal_eager_ones():
    x = small_batch(b=4, h=32, w=40)
    kps = torch.tensor(np.stack([KPS * 0.6] * 4))
    for name in ("defocus-13", "occlusion-30"):
        module = Corruption(name)
        compiled = torch.compile(module, backend="aot_eager")
        assert torch.equal(compiled(x, [1, 2, 3, 4], kps), module(x, [1, 2, 3, 4], kps))
    sampler = SuiteSampler("costa2021", seed=1)
    compiled = torch.compile(sampler, backend="aot_eager")
    keys = ["a", "b", "c", "d"]
    assert torch.equal(compiled(x, keys, kps), sampler(x, keys, kps))
    assert set(sampler.configs) == set(CONFIGS)
