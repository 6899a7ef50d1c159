"""ImageNet-C's noise corruptions on ``B x C x H x W`` tensors: Gaussian, shot, impulse and speckle.

Sample ``b`` equals :mod:`keypoint_corrupt.functional.imagenet_c`'s kernel run on image ``b``
with the same NumPy source, bit for bit. The random draws are made on the host, per sample and
band of rows, by the CPU kernels' own draw functions (``_gaussian_band``, ``_impulse_band``,
``_shot_band``, ``_speckle_band``), in the CPU kernels' order; the arithmetic that turns them
into the image (offsets, scaling, clipping, salt and pepper, the float64 formulas of a
``RandomState``) runs batched on the tensor's device, once per severity.

Two draws depend on the image itself, so the host needs the image for them: shot noise (its
Poisson means, and for uint8 with a ``Generator`` the per-level alias tables) and uint8 speckle
noise with a ``Generator`` (alias tables). For those, the draws *are* the result, so the host
does the work and the device only finishes it (see ``docs/torch.md``).

``draws="device"`` is the fast mode for training pipelines: each sample's dense values come from
its own ``torch.Generator`` on the images' device, seeded by one 63-bit integer drawn from the
sample's NumPy source (:func:`device_generators`), with the CPU kernels' distributions. The
results are then a function of (seed, sample, configuration) only, but not the CPU kernels' own
values, and they differ between CPU and CUDA (their generators differ).

Examples
--------
>>> import torch
>>> x = torch.full((2, 3, 8, 8), 128, dtype=torch.uint8)
>>> gaussian_noise(x, [1, 5], rngs=[0, 1]).shape
torch.Size([2, 3, 8, 8])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from keypoint_corrupt.functional.imagenet_c import noise as cpu
from keypoint_corrupt.functional.imagenet_c._blocks import bands
from keypoint_corrupt.functional.imagenet_c._common import Draws, as_draws
from keypoint_corrupt.functional.imagenet_c.params import PARAMS
from keypoint_corrupt.torch._batch import (
    RngBatch,
    check_batch,
    check_rngs,
    check_severities,
    finish_rgb,
    host_map,
    rgb_values,
    to_numpy,
)

__all__ = [
    "DRAWS",
    "check_draws",
    "device_generators",
    "device_values",
    "gaussian_noise",
    "host_map",
    "impulse_noise",
    "salt_and_pepper",
    "shot_noise",
    "speckle_noise",
]

#: A host draw: (image b as H x W x 3 on the 0..255 scale or None, its shape, dtype, params,
#: draws) -> the sample's draws as H x W x 3 arrays (one or more).
HostDraw = Callable[[Any, tuple[int, int, int], np.dtype[Any], Any, Draws], tuple[np.ndarray, ...]]
#: A device apply: (the batch's RGB on 0..255, one parameter per sample, one torch generator per
#: sample) -> the result before :func:`finish`.
DeviceApply = Callable[[torch.Tensor, Sequence[float], Sequence[torch.Generator]], torch.Tensor]

#: The two ways the noise kernels draw their dense values: ``"host"`` (NumPy, per sample, the CPU
#: kernels' own draws: equal to the CPU path) and ``"device"`` (torch, per-sample generators on
#: the images' device: the same distributions, faster, not the CPU path's values).
DRAWS: tuple[str, ...] = ("host", "device")
_SEED_BOUND = 1 << 63


def check_draws(draws: object, name: str = "draws") -> str:
    """Return ``draws`` if it is ``"host"`` or ``"device"``, else raise a ValueError naming it.

    Examples
    --------
    >>> check_draws("device")
    'device'
    """
    if not isinstance(draws, str) or draws not in DRAWS:
        raise ValueError(
            f"{name} must be 'host' (NumPy draws, equal to the CPU path) or 'device' (torch draws on "
            f"the images' device, per-sample generators), got {draws!r}"
        )
    return draws


@torch.compiler.disable
def device_generators(sources: Sequence[object], device: torch.device) -> list[torch.Generator]:
    """One ``torch.Generator`` on ``device`` per sample, seeded from that sample's NumPy source.

    Each source gives one integer in ``[0, 2**63)`` (``Generator.integers`` or
    ``RandomState.randint``), so the torch values of a sample depend only on its source's
    state, never on the other samples of the batch.

    Examples
    --------
    >>> g = device_generators([np.random.default_rng(0)], torch.device("cpu"))[0]
    >>> g.initial_seed() == int(np.random.default_rng(0).integers(0, 2**63, dtype=np.int64))
    True
    """
    out = []
    for src in sources:
        if isinstance(src, np.random.RandomState):
            seed = int(src.randint(0, _SEED_BOUND, dtype=np.int64))
        elif isinstance(src, np.random.Generator):
            seed = int(src.integers(0, _SEED_BOUND, dtype=np.int64))
        else:
            raise TypeError(f"rngs items must be Generators or RandomStates here, got {src!r}")
        gen = torch.Generator(device=device)
        gen.manual_seed(seed)
        out.append(gen)
    return out


@torch.compiler.disable
def device_values(
    kind: str,
    shape: Sequence[int],
    gens: Sequence[torch.Generator],
    device: torch.device,
    mean: Sequence[float] | float = 0.0,
    std: Sequence[float] | float = 1.0,
) -> torch.Tensor:
    """``len(gens) x shape`` float32 values on ``device``: sample ``b`` from ``gens[b]`` alone.

    ``kind`` is ``"normal"`` (``N(mean[b], std[b]**2)``, scaled in the fill itself) or
    ``"uniform"`` (on [0, 1)). One fill call per sample: a single call cannot keep each
    sample's values its own generator's.

    Examples
    --------
    >>> gens = device_generators([np.random.default_rng(0)] * 2, torch.device("cpu"))
    >>> device_values("uniform", (3, 4, 5), gens, torch.device("cpu")).shape
    torch.Size([2, 3, 4, 5])
    """
    if kind not in ("normal", "uniform"):
        raise ValueError(f"kind must be 'normal' or 'uniform', got {kind!r}")
    n = len(gens)
    means = [float(mean)] * n if isinstance(mean, (int, float)) else [float(m) for m in mean]
    stds = [float(std)] * n if isinstance(std, (int, float)) else [float(v) for v in std]
    out = torch.empty((n, *shape), dtype=torch.float32, device=device)
    for b, gen in enumerate(gens):
        if kind == "normal":
            out[b].normal_(means[b], stds[b], generator=gen)
        else:
            out[b].uniform_(generator=gen)
    return out


@torch.compiler.disable
def _device_poisson(rates: torch.Tensor, gens: Sequence[torch.Generator]) -> torch.Tensor:
    """Poisson counts of ``rates`` (B x ...), sample ``b`` drawn from ``gens[b]``."""
    return torch.stack([torch.poisson(rates[b], generator=gen) for b, gen in enumerate(gens)])


def salt_and_pepper(
    values: torch.Tensor,
    u: torch.Tensor,
    amount: torch.Tensor | float,
    salt_below: torch.Tensor | float,
    full: float,
) -> torch.Tensor:
    """Return ``values`` with ``full`` where ``u < salt_below``, 0 where ``salt_below <= u < amount``.

    ``u`` (uniforms) broadcasts against ``values``; ``salt_below <= amount``. uint8 takes the
    arithmetic select, float32 two masked fills (the fastest of each on CPU).

    Examples
    --------
    >>> u = torch.tensor([0.1, 0.3, 0.5, 0.9])
    >>> salt_and_pepper(torch.full((4,), 9, dtype=torch.uint8), u, 0.6, 0.2, 255)
    tensor([255,   0,   0,   9], dtype=torch.uint8)
    """
    if values.dtype == torch.uint8:
        return values * (u >= amount) + (u < salt_below).to(torch.uint8) * int(full)
    return values.masked_fill(u < amount, 0.0).masked_fill_(u < salt_below, float(full))


def _per_sample(values: Sequence[float], like: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """One parameter per sample as a ``B x 1 x 1 x 1`` tensor on ``like``'s device."""
    return torch.tensor(list(values), dtype=dtype, device=like.device).view(-1, 1, 1, 1)


def _run_device(
    images: torch.Tensor, severity: object, rngs: RngBatch, name: str, apply: DeviceApply
) -> torch.Tensor:
    """Device draws: one generator per sample, then the whole batch at once (per-sample parameters)."""
    images = check_batch(images)
    batch = int(images.shape[0])
    levels = check_severities(severity, batch)
    gens = device_generators(check_rngs(rngs, batch), images.device)
    params = [float(PARAMS[name][s - 1]) for s in levels]
    return finish_rgb(apply(rgb_values(images), params, gens), images)


def _dispatch(
    images: torch.Tensor,
    severity: object,
    rngs: RngBatch,
    draws: str,
    name: str,
    host: Callable[[], torch.Tensor],
    device: DeviceApply,
) -> torch.Tensor:
    if check_draws(draws) == "device":
        return _run_device(images, severity, rngs, name, device)
    return host()


def _banded_draws(
    band: Callable[[Any], Any], image: np.ndarray | None, shape: tuple[int, int, int], dtype: np.dtype[Any]
) -> tuple[np.ndarray, ...]:
    """Call ``band`` on each band of rows, as the CPU ``_banded`` does, and join the draws.

    Without ``image`` the band gets a zero stand-in of its shape and dtype (for draws that do
    not depend on the values).
    """
    parts = []
    for rows in bands(shape[0]):
        if image is not None:
            part = image[rows]
        else:
            part = np.broadcast_to(np.zeros((), dtype), (rows.stop - rows.start, *shape[1:]))
        drawn = band(part)
        parts.append(drawn if isinstance(drawn, tuple) else (drawn,))
    return tuple(np.concatenate(pieces, axis=0) for pieces in zip(*parts, strict=True))


def _stack(arrays: Sequence[np.ndarray], device: torch.device) -> torch.Tensor:
    """``H x W x 3`` host arrays -> one contiguous ``B x 3 x H x W`` tensor on ``device``.

    The transpose runs on the device, after the transfer.
    """
    return torch.from_numpy(np.stack(arrays)).to(device).permute(0, 3, 1, 2).contiguous()


Group = tuple[int, bool, torch.Tensor, tuple[torch.Tensor, ...]]


@torch.compiler.disable
def _draw_groups(
    images: torch.Tensor, severity: object, rngs: RngBatch, name: str, draw: HostDraw, needs_image: bool
) -> list[Group]:
    """Every sample's draws (host, in sample order), stacked per (severity, legacy) group on the device.

    Returns ``(severity, legacy, sample indices, drawn tensors)`` per group, in sorted order.
    Host work (NumPy draws): excluded from ``torch.compile`` graphs.
    """
    batch, _, height, width = (int(v) for v in images.shape)
    levels = check_severities(severity, batch)
    sources = [as_draws(g) for g in check_rngs(rngs, batch)]
    host = to_numpy(rgb_values(images)) if needs_image else [None] * batch
    dtype = np.dtype(np.uint8 if images.dtype == torch.uint8 else np.float32)
    shape = (height, width, 3)
    groups: dict[tuple[int, bool], list[int]] = {}
    for b, level in enumerate(levels):
        groups.setdefault((level, sources[b].legacy), []).append(b)

    def sample_draws(b: int) -> tuple[np.ndarray, ...]:
        return draw(host[b], shape, dtype, PARAMS[name][levels[b] - 1], sources[b])

    every = host_map(sample_draws, range(batch), [d.source for d in sources], batch * height * width)
    return [
        (
            level,
            legacy,
            torch.tensor(members, dtype=torch.long, device=images.device),
            tuple(_stack(column, images.device) for column in zip(*[every[b] for b in members], strict=True)),
        )
        for (level, legacy), members in sorted(groups.items())
    ]


def _run(
    images: torch.Tensor,
    severity: object,
    rngs: RngBatch,
    name: str,
    draw: HostDraw,
    apply: Callable[[torch.Tensor, tuple[torch.Tensor, ...], Any, bool], torch.Tensor],
    needs_image: bool,
) -> torch.Tensor:
    """Draw per sample on the host, then apply once per (severity, legacy) group on the device."""
    images = check_batch(images)
    values = rgb_values(images)
    groups = _draw_groups(images, severity, rngs, name, draw, needs_image)
    if len(groups) == 1:  # one severity and one kind of source: no gathering or scattering
        ((level, legacy, _, stacked),) = groups
        return finish_rgb(apply(values, stacked, PARAMS[name][level - 1], legacy), images)
    out = torch.empty_like(images)
    for level, legacy, index, stacked in groups:
        out[index] = finish_rgb(apply(values[index], stacked, PARAMS[name][level - 1], legacy), images[index])
    return out


def _unit64(values: torch.Tensor) -> torch.Tensor:
    """``np.divide(rgb, 255.0, dtype=np.float64)``."""
    return values.to(torch.float64) / 255.0


# --- Gaussian -----------------------------------------------------------------------------------


def _gaussian_draw(
    image: Any, shape: tuple[int, int, int], dtype: np.dtype[Any], scale: float, draws: Draws
) -> tuple[np.ndarray, ...]:
    if draws.legacy:
        return (draws.normal(0.0, scale, shape),)
    gen = cpu._generator(draws)
    return _banded_draws(lambda part: cpu._gaussian_band(part.shape, dtype, scale, gen), None, shape, dtype)


def _gaussian_apply(
    values: torch.Tensor, drawn: tuple[torch.Tensor, ...], scale: float, legacy: bool
) -> torch.Tensor:
    (noise,) = drawn
    if legacy:
        return (_unit64(values) + noise).clamp(0, 1) * 255
    if values.dtype == torch.uint8:
        return (noise + values.to(torch.int16)).clamp(0, 255).to(torch.uint8)
    return noise.mul_(torch.tensor(255.0 * scale, dtype=torch.float32)).add_(values)


def gaussian_noise(
    images: torch.Tensor,
    severity: int | Sequence[int] | torch.Tensor,
    rngs: RngBatch = None,
    *,
    draws: str = "host",
) -> torch.Tensor:
    """Batched :func:`keypoint_corrupt.functional.imagenet_c.gaussian_noise`, bit-exact per sample.

    Parameters
    ----------
    images : torch.Tensor
        ``B x C x H x W``, uint8 or float32 in [0, 1], C of 1, 3 or 4, any device.
    severity : int, sequence of int or torch.Tensor
        1 to 5, one for all or one per sample.
    rngs : int, sequence or None
        Per-sample NumPy sources (see :func:`keypoint_corrupt.torch._batch.check_rngs`).
    draws : {"host", "device"}, default "host"
        ``"host"``: NumPy draws, equal to the CPU kernel. ``"device"``: torch draws on the
        images' device from per-sample generators (:func:`device_generators`), same
        distribution, not the CPU kernel's values.

    Returns
    -------
    torch.Tensor
        A new batch of the same shape, dtype and device.

    Examples
    --------
    >>> import torch
    >>> out = gaussian_noise(torch.zeros(1, 1, 4, 4), 1, rngs=[0])
    >>> out.dtype, out.shape
    (torch.float32, torch.Size([1, 1, 4, 4]))
    """
    return _dispatch(
        images,
        severity,
        rngs,
        draws,
        "gaussian_noise",
        lambda: _run(images, severity, rngs, "gaussian_noise", _gaussian_draw, _gaussian_apply, False),
        _gaussian_device,
    )


def _gaussian_device(
    values: torch.Tensor, scales: Sequence[float], gens: Sequence[torch.Generator]
) -> torch.Tensor:
    """``v + 255 c z``: finish clips it and truncates uint8, as ``np.uint8(clip(x + n, 0, 1) * 255)``."""
    noise = device_values("normal", values.shape[1:], gens, values.device, std=[255.0 * c for c in scales])
    return noise.add_(values)


# --- shot ---------------------------------------------------------------------------------------


def _shot_draw(
    image: Any, shape: tuple[int, int, int], dtype: np.dtype[Any], photons: int, draws: Draws
) -> tuple[np.ndarray, ...]:
    if draws.legacy:
        return (np.asarray(draws.poisson(cpu._unit(image) * photons)),)
    gen = cpu._generator(draws)
    return _banded_draws(lambda part: cpu._shot_band(part, photons, gen), image, shape, dtype)


def _shot_apply(
    values: torch.Tensor, drawn: tuple[torch.Tensor, ...], photons: int, legacy: bool
) -> torch.Tensor:
    (counts,) = drawn
    if legacy:
        return (counts.to(torch.float64) / float(photons)).clamp(0, 1) * 255
    if values.dtype == torch.uint8:
        return counts  # the levels themselves, drawn from the alias tables
    # the CPU stores counts * (255 / photons) (float64) clipped into float32
    return (counts.to(torch.float64) * (255.0 / photons)).clamp(0.0, 255.0).to(torch.float32)


def shot_noise(
    images: torch.Tensor,
    severity: int | Sequence[int] | torch.Tensor,
    rngs: RngBatch = None,
    *,
    draws: str = "host",
) -> torch.Tensor:
    """Batched :func:`keypoint_corrupt.functional.imagenet_c.shot_noise`, bit-exact per sample.

    The Poisson draws need the image (their means), so they are made on the host; for uint8
    with a ``Generator`` the draws are the result (alias tables) and the device only finishes it.

    Parameters
    ----------
    images : torch.Tensor
        ``B x C x H x W``, uint8 or float32 in [0, 1], C of 1, 3 or 4, any device.
    severity : int, sequence of int or torch.Tensor
        1 to 5, one for all or one per sample.
    rngs : int, sequence or None
        Per-sample NumPy sources.
    draws : {"host", "device"}, default "host"
        NumPy draws equal to the CPU kernel, or torch draws on the device (see
        :func:`gaussian_noise`).

    Returns
    -------
    torch.Tensor
        A new batch of the same shape, dtype and device.

    Examples
    --------
    >>> import torch
    >>> out = shot_noise(torch.full((1, 3, 4, 4), 255, dtype=torch.uint8), 5, rngs=[0])
    >>> set(out.unique().tolist()) <= {0, 85, 170, 255}
    True
    """
    return _dispatch(
        images,
        severity,
        rngs,
        draws,
        "shot_noise",
        lambda: _run(images, severity, rngs, "shot_noise", _shot_draw, _shot_apply, True),
        _shot_device,
    )


def _shot_device(
    values: torch.Tensor, photons: Sequence[float], gens: Sequence[torch.Generator]
) -> torch.Tensor:
    """``Poisson(v / 255 c)`` by ``torch.poisson``, then the CPU's float64 ``clip(k / c, 0, 1) * 255``."""
    per = _per_sample(photons, values, torch.float64)
    rates = values.to(torch.float32) * (per / 255.0).to(torch.float32)
    counts = _device_poisson(rates, gens).to(torch.float64)
    if values.dtype == torch.uint8:
        return (counts / per).clamp_(0.0, 1.0).mul_(255.0)
    return (counts * (255.0 / per)).clamp_(0.0, 255.0).to(torch.float32)


# --- impulse ------------------------------------------------------------------------------------


def _impulse_draw(
    image: Any, shape: tuple[int, int, int], dtype: np.dtype[Any], amount: float, draws: Draws
) -> tuple[np.ndarray, ...]:
    gen = cpu._generator(draws)
    return _banded_draws(lambda part: cpu._impulse_band(part.shape, amount, gen), None, shape, dtype)


def _impulse_apply(
    values: torch.Tensor, drawn: tuple[torch.Tensor, ...], amount: float, legacy: bool
) -> torch.Tensor:
    hit, salt = drawn
    out = values * ~hit
    if values.dtype == torch.uint8:
        return out + salt.to(torch.uint8) * 255
    return out + salt * torch.tensor(255.0, dtype=torch.float32)


def impulse_noise(
    images: torch.Tensor,
    severity: int | Sequence[int] | torch.Tensor,
    rngs: RngBatch = None,
    *,
    draws: str = "host",
) -> torch.Tensor:
    """Batched :func:`keypoint_corrupt.functional.imagenet_c.impulse_noise`, bit-exact per sample.

    Parameters
    ----------
    images : torch.Tensor
        ``B x C x H x W``, uint8 or float32 in [0, 1], C of 1, 3 or 4, any device.
    severity : int, sequence of int or torch.Tensor
        1 to 5, one for all or one per sample.
    rngs : int, sequence or None
        Per-sample NumPy sources.
    draws : {"host", "device"}, default "host"
        NumPy draws equal to the CPU kernel, or torch draws on the device (see
        :func:`gaussian_noise`).

    Returns
    -------
    torch.Tensor
        A new batch of the same shape, dtype and device.

    Examples
    --------
    >>> import torch
    >>> out = impulse_noise(torch.full((1, 3, 8, 8), 128, dtype=torch.uint8), 5, rngs=[0])
    >>> set(out.unique().tolist()) <= {0, 128, 255}
    True
    """
    return _dispatch(
        images,
        severity,
        rngs,
        draws,
        "impulse_noise",
        lambda: _run(images, severity, rngs, "impulse_noise", _impulse_draw, _impulse_apply, False),
        _impulse_device,
    )


def _impulse_device(
    values: torch.Tensor, amounts: Sequence[float], gens: Sequence[torch.Generator]
) -> torch.Tensor:
    """One uniform ``u`` per value: salt where ``u < c / 2``, pepper where ``c / 2 <= u < c``."""
    u = device_values("uniform", values.shape[1:], gens, values.device)
    amount = _per_sample(amounts, values, torch.float32)
    return salt_and_pepper(values, u, amount, amount * 0.5, 255.0)


# --- speckle ------------------------------------------------------------------------------------


def _speckle_draw(
    image: Any, shape: tuple[int, int, int], dtype: np.dtype[Any], scale: float, draws: Draws
) -> tuple[np.ndarray, ...]:
    if draws.legacy:
        return (draws.normal(0.0, scale, shape),)
    gen = cpu._generator(draws)
    return _banded_draws(lambda part: cpu._speckle_band(part, scale, gen), image, shape, dtype)


def _speckle_apply(
    values: torch.Tensor, drawn: tuple[torch.Tensor, ...], scale: float, legacy: bool
) -> torch.Tensor:
    (noise,) = drawn
    if legacy:
        x = _unit64(values)
        return (x + x * noise).clamp(0, 1) * 255
    if values.dtype == torch.uint8:
        return noise  # the levels themselves, drawn from the alias tables
    return (noise * torch.tensor(scale, dtype=torch.float32) + 1.0) * values


def speckle_noise(
    images: torch.Tensor,
    severity: int | Sequence[int] | torch.Tensor,
    rngs: RngBatch = None,
    *,
    draws: str = "host",
) -> torch.Tensor:
    """Batched :func:`keypoint_corrupt.functional.imagenet_c.speckle_noise`, bit-exact per sample.

    uint8 images with a ``Generator`` are sampled on the host (per-level alias tables).

    Parameters
    ----------
    images : torch.Tensor
        ``B x C x H x W``, uint8 or float32 in [0, 1], C of 1, 3 or 4, any device.
    severity : int, sequence of int or torch.Tensor
        1 to 5, one for all or one per sample.
    rngs : int, sequence or None
        Per-sample NumPy sources.
    draws : {"host", "device"}, default "host"
        NumPy draws equal to the CPU kernel, or torch draws on the device (see
        :func:`gaussian_noise`).

    Returns
    -------
    torch.Tensor
        A new batch of the same shape, dtype and device.

    Examples
    --------
    >>> import torch
    >>> int(speckle_noise(torch.zeros(1, 3, 4, 4, dtype=torch.uint8), 5, rngs=[0]).max())
    0
    """
    needs_image = images.dtype == torch.uint8 if isinstance(images, torch.Tensor) else False
    return _dispatch(
        images,
        severity,
        rngs,
        draws,
        "speckle_noise",
        lambda: _run(images, severity, rngs, "speckle_noise", _speckle_draw, _speckle_apply, needs_image),
        _speckle_device,
    )


def _speckle_device(
    values: torch.Tensor, scales: Sequence[float], gens: Sequence[torch.Generator]
) -> torch.Tensor:
    """``v (1 + c z)``: finish clips it and truncates uint8, as ``np.uint8(clip(v + v n, 0, 255))``."""
    noise = device_values("normal", values.shape[1:], gens, values.device, mean=1.0, std=scales)
    return noise.mul_(values)
