"""``draws="device"``: the noise kernels' fast mode, torch values from per-sample generators.

Checked here: each sample's result is a function of its own generator (and image and severity)
only, whatever the batch order, split or neighbours; the distributions equal the CPU kernels'
(uint8: a chi-square goodness of fit against the exact per-level distribution written from
the formulas, which the CPU kernels' own output passes too; float32: two-sample
Kolmogorov-Smirnov or chi-square tests against the CPU kernels on the same flat grey image);
the salt and pepper shares; ``draws`` is validated and ignored where nothing dense is drawn.
``draws="host"`` (the default) stays bit-exact with the CPU path: the parity tests of
``test_reference.py`` and ``test_ic_noise_color.py`` run it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from scipy import stats
from scipy.special import ndtr

from keypoint_corrupt import functional as F
from keypoint_corrupt.functional import imagenet_c as cpu_ic
from keypoint_corrupt.functional.imagenet_c.params import PARAMS
from keypoint_corrupt.torch import Corruption, SuiteSampler, apply_config, config_rngs
from keypoint_corrupt.torch import reference as R
from keypoint_corrupt.torch.imagenet_c import noise as N

STB_FRAME = Path(__file__).resolve().parents[1] / "data" / "stb" / "SK_color_0.png"
IC_NAMES = ("gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise")
REF_NAMES = ("noise-gaussian", "noise-saltpepper")
GREY = 100  # the flat image of the distribution checks (0..255)
#: CUDA runs the same checks with CUDA's generators (other values, same distributions).
DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]
P_MIN = 1e-4  # fixed seeds: a deterministic test; a correct sampler passes with probability 1 - 1e-4


def _device(name: str, images: torch.Tensor, severity, rngs) -> torch.Tensor:
    """Run kernel or configuration ``name`` with device draws (severity ignored by the reference ones)."""
    if name in REF_NAMES:
        return apply_config(name, images, rngs=rngs, draws="device")[0]
    return getattr(N, name)(images, severity, rngs=rngs, draws="device")


def _cpu(name: str, image: np.ndarray, severity: int, seed: int) -> np.ndarray:
    """The CPU kernel of ``name`` on one ``H x W x C`` image."""
    gen = np.random.default_rng(seed)
    if name == "noise-gaussian":
        return F.gaussian_noise(image, var=0.01, mean=0.0, rng=gen)
    if name == "noise-saltpepper":
        return F.salt_pepper_noise(image, amount=0.05, salt_vs_pepper=0.5, per_channel=True, rng=gen)
    return getattr(cpu_ic, name)(image, severity, rng=gen)


@pytest.fixture(scope="module")
def tiles() -> torch.Tensor:
    """Four different 24 x 32 crops of the STB frame, uint8, as a batch."""
    rgb = cv2.imread(str(STB_FRAME), cv2.IMREAD_COLOR)[..., ::-1]
    crops = [rgb[y : y + 24, x : x + 32] for y, x in ((40, 60), (200, 300), (300, 100), (120, 500))]
    return torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).contiguous()


def _as(images: torch.Tensor, dtype: str) -> torch.Tensor:
    return images if dtype == "uint8" else images.to(torch.float32) / 255.0


ALL = [*IC_NAMES, *REF_NAMES]


# --- per-sample determinism -------------------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ["uint8", "float32"])
@pytest.mark.parametrize("name", ALL)
def test_a_sample_depends_on_its_own_generator_only(name, dtype, device, tiles):
    x = _as(tiles, dtype).to(device)
    seeds, severities = [11, 12, 13, 14], [1, 3, 5, 2]
    full = _device(name, x, severities, seeds)
    assert full.shape == x.shape and full.dtype == x.dtype
    assert torch.equal(full, _device(name, x, severities, seeds)), "not reproducible"
    perm = [2, 0, 3, 1]
    moved = _device(name, x[perm], [severities[i] for i in perm], [seeds[i] for i in perm])
    assert torch.equal(moved, full[perm]), "depends on the batch order"
    parts = [_device(name, x[i : i + 1], [severities[i]], [seeds[i]]) for i in range(4)]
    assert torch.equal(torch.cat(parts), full), "depends on the batch split"
    others = torch.flip(x, dims=[2])  # other images and seeds around sample 0
    others[0] = x[0]
    mixed = _device(name, others, [severities[0], 5, 5, 5], [seeds[0], 99, 98, 97])
    assert torch.equal(mixed[0], full[0]), "depends on the other samples"
    assert not torch.equal(full[0], _device(name, x[:1], [severities[0]], [seeds[0] + 100])[0])


@pytest.mark.parametrize("name", ALL)
def test_device_draws_are_not_the_host_draws(name, tiles):
    host = (
        apply_config(name, tiles, rngs=[0, 1, 2, 3])[0]
        if name in REF_NAMES
        else getattr(N, name)(tiles, 3, rngs=[0, 1, 2, 3], draws="host")
    )
    assert not torch.equal(_device(name, tiles, 3, [0, 1, 2, 3]), host)


def test_a_generator_passed_in_gives_one_seed():
    """The torch seed is the sample generator's next 63-bit integer: nothing else is drawn from it."""
    gen = np.random.default_rng(5)
    (torch_gen,) = N.device_generators([gen], torch.device("cpu"))
    want = np.random.default_rng(5)
    assert torch_gen.initial_seed() == int(want.integers(0, 2**63, dtype=np.int64))
    assert gen.random() == want.random()
    (legacy,) = N.device_generators([np.random.RandomState(5)], torch.device("cpu"))
    assert legacy.initial_seed() == int(np.random.RandomState(5).randint(0, 2**63, dtype=np.int64))


@pytest.mark.parametrize("name", IC_NAMES)
def test_channels_follow_the_rgb_contract(name, tiles):
    """Grey is corrupted as its RGB stack (channel 0 returned), alpha passes through."""
    rgba = torch.cat([tiles, tiles[:, :1].flip(2)], dim=1)
    out = _device(name, rgba, 4, [0, 1, 2, 3])
    assert torch.equal(out[:, 3], rgba[:, 3])
    assert torch.equal(out[:, :3], _device(name, tiles, 4, [0, 1, 2, 3]))
    grey = _device(name, tiles[:, :1], 4, [0, 1, 2, 3])
    assert grey.shape == (4, 1, 24, 32)
    assert torch.equal(
        grey, _device(name, tiles[:, :1].expand(-1, 3, -1, -1).contiguous(), 4, [0, 1, 2, 3])[:, :1]
    )


# --- distributions ---------------------------------------------------------------------------------


def _levels_pmf(name: str, severity: int) -> np.ndarray:
    """The exact distribution of the uint8 result for a flat image of level ``GREY`` (from the formulas)."""
    v = GREY
    k = np.arange(256, dtype=np.float64)
    if name in ("noise-gaussian", "gaussian_noise", "speckle_noise"):
        if name == "noise-gaussian":  # round(v + 255 N(0, 0.01)), clipped
            cdf = ndtr((k + 0.5 - v) / 255.0 / 0.1)
        elif name == "gaussian_noise":  # floor(v + 255 c z), clipped
            cdf = ndtr((k + 1 - v) / (255.0 * PARAMS[name][severity - 1]))
        else:  # floor(v (1 + c z)), clipped
            cdf = ndtr(((k + 1) / v - 1.0) / PARAMS[name][severity - 1])
        cdf[-1] = 1.0
        return np.diff(cdf, prepend=0.0)
    pmf = np.zeros(256)
    if name == "shot_noise":  # uint8(clip(K / p, 0, 1) * 255), K ~ Poisson(v / 255 p)
        p = PARAMS[name][severity - 1]
        counts = np.arange(p + 1)
        outcome = (np.clip(counts / float(p), 0, 1) * 255).astype(np.uint8)
        mass = stats.poisson.pmf(counts, v / 255.0 * p)
        mass[-1] = stats.poisson.sf(p - 1, v / 255.0 * p)
        np.add.at(pmf, outcome, mass)
        return pmf
    amount = PARAMS[name][severity - 1] if name == "impulse_noise" else 0.05
    pmf[[0, v, 255]] = amount / 2, 1.0 - amount, amount / 2
    return pmf


def _goodness_of_fit(levels: np.ndarray, pmf: np.ndarray) -> float:
    """Chi-square p-value of uint8 ``levels`` against ``pmf``, neighbouring levels merged to expect >= 5."""
    observed = np.bincount(levels.ravel(), minlength=256).astype(np.float64)
    expected = pmf * levels.size
    assert observed[expected == 0].sum() == 0, "an impossible level occurred"
    obs, exp, o, e = [], [], 0.0, 0.0
    for i in range(256):
        o, e = o + observed[i], e + expected[i]
        if e >= 5:
            obs.append(o)
            exp.append(e)
            o, e = 0.0, 0.0
    obs[-1] += o
    exp[-1] += e
    exp_arr = np.asarray(exp) * (sum(obs) / sum(exp))
    if len(obs) == 1:
        return 1.0
    return float(stats.chisquare(obs, exp_arr).pvalue)


def _two_sample(a: np.ndarray, b: np.ndarray) -> float:
    """p-value that ``a`` and ``b`` share a distribution: chi-square on few distinct values, else KS."""
    values = np.unique(np.concatenate([a, b]))
    if values.size > 300:
        return float(stats.ks_2samp(a, b).pvalue)
    table = np.stack([np.searchsorted(values, x) for x in (a, b)])
    counts = np.stack([np.bincount(row, minlength=values.size) for row in table]).astype(np.float64)
    counts = counts[:, counts.sum(0) > 0]
    if counts.shape[1] == 1:
        return 1.0
    return float(stats.chi2_contingency(counts).pvalue)


CASES = [(name, s) for name in IC_NAMES for s in range(1, 6)] + [(name, 1) for name in REF_NAMES]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(("name", "severity"), CASES)
def test_uint8_levels_follow_the_exact_distribution(name, severity, device):
    """uint8: device results and CPU results both fit the per-level distribution of the formulas."""
    flat = torch.full((8, 3, 96, 96), GREY, dtype=torch.uint8, device=device)
    got = _device(name, flat, severity, list(range(8))).cpu().numpy()
    pmf = _levels_pmf(name, severity)
    assert _goodness_of_fit(got, pmf) > P_MIN
    host = np.stack([_cpu(name, np.full((96, 96, 3), GREY, np.uint8), severity, 50 + i) for i in range(8)])
    assert _goodness_of_fit(host, pmf) > P_MIN  # the formula is the CPU kernel's distribution
    mean = float((pmf * np.arange(256)).sum())
    sd = math.sqrt(float((pmf * (np.arange(256) - mean) ** 2).sum()))
    assert abs(got.mean() - mean) < 5 * sd / math.sqrt(got.size) + 1e-9


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(("name", "severity"), CASES)
def test_float32_matches_the_cpu_kernel_distribution(name, severity, device):
    flat = torch.full((8, 3, 96, 96), GREY / 255.0, dtype=torch.float32, device=device)
    got = _device(name, flat, severity, list(range(8))).cpu().numpy().ravel()
    image = np.full((96, 96, 3), GREY / 255.0, np.float32)
    host = np.concatenate([_cpu(name, image, severity, 50 + i).ravel() for i in range(8)])
    assert _two_sample(got, host) > P_MIN
    assert got.min() >= 0.0 and got.max() <= 1.0


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ["uint8", "float32"])
@pytest.mark.parametrize(("amount", "salt_vs_pepper"), [(0.05, 0.5), (0.2, 0.9), (0.1, 0.0), (0.3, 1.0)])
def test_salt_and_pepper_shares(amount, salt_vs_pepper, dtype, device):
    x = _as(torch.full((4, 3, 64, 64), GREY, dtype=torch.uint8, device=device), dtype)
    full = 255 if dtype == "uint8" else 1.0
    for per_channel in (True, False):
        out = R.salt_pepper_noise(
            x,
            [1, 2, 3, 4],
            amount=amount,
            salt_vs_pepper=salt_vs_pepper,
            per_channel=per_channel,
            draws="device",
        )
        unit = out if per_channel else out[:, :1]
        if not per_channel:  # one draw per pixel: every channel alike
            assert torch.equal(out, unit.expand_as(out))
        n = unit.numel()
        for share, p in (
            ((unit == full).float().mean(), amount * salt_vs_pepper),
            ((unit == 0).float().mean(), amount * (1 - salt_vs_pepper)),
        ):
            assert abs(float(share) - p) <= 5 * math.sqrt(p * (1 - p) / n) + 1e-12
        assert bool(((out == full) | (out == 0) | (out == x)).all())


@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_gaussian_without_variance_equals_the_cpu_result(dtype):
    """``var=0`` draws nothing: the device mode gives the CPU's own result (rounding of the mean included)."""
    x = _as(
        torch.arange(4 * 3 * 5 * 7, dtype=torch.int64).remainder(256).to(torch.uint8).view(4, 3, 5, 7), dtype
    )
    out = R.gaussian_noise(x, [0, 1, 2, 3], var=0.0, mean=0.1, draws="device")
    host = x.permute(0, 2, 3, 1).numpy()
    want = np.stack([F.gaussian_noise(a, var=0.0, mean=0.1, rng=0) for a in host])
    assert np.array_equal(out.permute(0, 2, 3, 1).numpy(), want)


# --- the modules and the validation --------------------------------------------------------------------


def test_corruption_and_sampler_pass_device_draws(tiles):
    ids = ["a", "b", "c", "d"]
    m = Corruption("noise-gaussian", draws="device")
    assert m.device_draws and "draws='device'" in repr(m)
    rngs = config_rngs(0, ids, "noise-gaussian")
    want = apply_config("noise-gaussian", tiles, rngs=config_rngs(0, ids, "noise-gaussian"), draws="device")[
        0
    ]
    assert torch.equal(m(tiles, rngs=rngs), want)
    sampler = SuiteSampler(
        "imagenet-c", corruptions=["gaussian_noise", "impulse_noise"], seed=3, draws="device"
    )
    out = sampler(tiles, keys=ids)
    again = sampler(tiles[[3, 1]], keys=["d", "b"])  # another batch composition and order
    assert torch.equal(again, out[[3, 1]])
    host = SuiteSampler("imagenet-c", corruptions=["gaussian_noise", "impulse_noise"], seed=3)(
        tiles, keys=ids
    )
    assert not torch.equal(out, host)


@pytest.mark.parametrize("name", ["defocus-7", "occlusion-20", "imagenet-c.fog-2", "imagenet-c.contrast-3"])
def test_other_corruptions_ignore_draws(name, tiles):
    kps = torch.tensor([[[5.0, 5.0], [20.0, 15.0]]] * 4)
    device = Corruption(name, draws="device")
    assert not device.device_draws
    assert torch.equal(
        device(tiles, rngs=[1, 2, 3, 4], keypoints=kps),
        Corruption(name)(tiles, rngs=[1, 2, 3, 4], keypoints=kps),
    )


@pytest.mark.parametrize("bad", ["gpu", "Device", None, 1])
def test_a_bad_draws_value_is_named(bad, tiles):
    calls: list[Callable[[], object]] = [
        lambda: Corruption("noise-gaussian", draws=bad),
        lambda: SuiteSampler("costa2021", draws=bad),
        lambda: apply_config("defocus-7", tiles, draws=bad),
        lambda: R.gaussian_noise(tiles, 0, draws=bad),
        lambda: R.salt_pepper_noise(tiles, 0, draws=bad),
        *[lambda n=n: getattr(N, n)(tiles, 1, rngs=0, draws=bad) for n in IC_NAMES],
    ]
    for call in calls:
        with pytest.raises(ValueError, match=rf"draws must be 'host' .* got {re.escape(repr(bad))}"):
            call()


def test_compiled_module_gives_the_eager_result(tiles):
    """The per-sample generators sit outside the graph (``torch.compiler.disable``); the maths compiles."""
    m = Corruption("imagenet-c.speckle_noise-2", draws="device")
    compiled = torch.compile(m, backend="aot_eager")
    assert torch.equal(compiled(tiles, rngs=[1, 2, 3, 4]), m(tiles, rngs=[1, 2, 3, 4]))
