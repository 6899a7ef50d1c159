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

Examples
--------
>>> import torch
>>> x = torch.full((2, 3, 8, 8), 128, dtype=torch.uint8)
>>> gaussian_noise(x, [1, 5], rngs=[0, 1]).shape
torch.Size([2, 3, 8, 8])
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

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
    to_numpy,
)

__all__ = ["gaussian_noise", "host_map", "impulse_noise", "shot_noise", "speckle_noise"]

_T = TypeVar("_T")
#: Below this many values per batch the host work runs in the calling thread.
_THREADED_VALUES = 1 << 16

#: A host draw: (image b as H x W x 3 on the 0..255 scale or None, its shape, dtype, params,
#: draws) -> the sample's draws as H x W x 3 arrays (one or more).
HostDraw = Callable[[Any, tuple[int, int, int], np.dtype[Any], Any, Draws], tuple[np.ndarray, ...]]


def rgb_values(images: torch.Tensor) -> torch.Tensor:
    """Return the batch's RGB on the 0..255 scale as the CPU kernels see it (uint8, or float32 x 255).

    Examples
    --------
    >>> rgb_values(torch.zeros(1, 1, 2, 2, dtype=torch.uint8)).shape
    torch.Size([1, 3, 2, 2])
    """
    rgb = images[:, :3] if images.shape[1] >= 3 else images.expand(-1, 3, -1, -1)
    if images.dtype == torch.uint8:
        return rgb
    return rgb * torch.tensor(255.0, dtype=torch.float32, device=images.device)


def finish(result: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Finish a ``B x 3 x H x W`` result (any float dtype, or uint8) as the CPU ``run_rgb`` does.

    ``result`` is consumed (modified in place). A float result is clipped in its own dtype
    (float64 stays float64, as NumPy clips the ``RandomState`` formulas), then truncated to
    uint8 or divided by 255 and cast to float32.

    Examples
    --------
    >>> like = torch.zeros(1, 1, 1, 1, dtype=torch.uint8)
    >>> finish(torch.full((1, 3, 1, 1), 254.9999999, dtype=torch.float64), like).item()
    254
    """
    if result.dtype != torch.uint8 or like.dtype != torch.uint8:
        result = result.clamp_(0.0, 255.0)  # the kernels' own result: consumed in place
        result = result.to(torch.uint8) if like.dtype == torch.uint8 else result.div_(255.0).to(torch.float32)
    if like.shape[1] == 1:
        return result[:, :1].contiguous()
    if like.shape[1] == 4:
        return torch.cat([result, like[:, 3:]], dim=1)
    return result.contiguous()


@functools.cache
def _host_pool(pid: int) -> ThreadPoolExecutor:
    """One pool per process: a forked child (a DataLoader worker) must not reuse its parent's threads."""
    return ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1), thread_name_prefix=f"kc-host-{pid}")


def host_map(
    work: Callable[[int], _T], samples: Sequence[int], sources: Sequence[object], values: int
) -> list[_T]:
    """Run ``work(b)`` for every sample ``b`` on the host: in a thread pool for large batches.

    NumPy's generators and OpenCV release the GIL, so per-sample draws run in parallel. The
    threads are used only when every sample has its own random source (distinct objects), so
    each sample's draws are the same whatever the scheduling; ``values`` is the batch's size
    in values, below :data:`_THREADED_VALUES` everything runs in the calling thread.

    Examples
    --------
    >>> host_map(lambda b: b * b, [0, 1, 2], [None, None, None], 10)
    [0, 1, 4]
    """
    distinct = len({id(sources[b]) for b in samples}) == len(samples)
    if len(samples) < 2 or values < _THREADED_VALUES or not distinct or (os.cpu_count() or 1) < 2:
        return [work(b) for b in samples]
    return list(_host_pool(os.getpid()).map(work, samples))


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
    check_batch(images)
    batch, _, height, width = (int(v) for v in images.shape)
    levels = check_severities(severity, batch)
    sources = [as_draws(g) for g in check_rngs(rngs, batch)]
    values = rgb_values(images)
    host = to_numpy(values) if needs_image else [None] * batch
    dtype = np.dtype(np.uint8 if images.dtype == torch.uint8 else np.float32)
    shape = (height, width, 3)
    groups: dict[tuple[int, bool], list[int]] = {}
    for b, level in enumerate(levels):
        groups.setdefault((level, sources[b].legacy), []).append(b)

    def sample_draws(b: int) -> tuple[np.ndarray, ...]:
        return draw(host[b], shape, dtype, PARAMS[name][levels[b] - 1], sources[b])

    every = host_map(sample_draws, range(batch), [d.source for d in sources], batch * height * width)
    if len(groups) == 1:  # one severity and one kind of source: no gathering or scattering
        ((_, legacy),) = groups
        stacked = tuple(_stack(column, images.device) for column in zip(*every, strict=True))
        return finish(apply(values, stacked, PARAMS[name][levels[0] - 1], legacy), images)
    out = torch.empty_like(images)
    for (level, legacy), members in sorted(groups.items()):
        stacked = tuple(
            _stack(column, images.device) for column in zip(*[every[b] for b in members], strict=True)
        )
        index = torch.tensor(members, dtype=torch.long, device=images.device)
        out[index] = finish(apply(values[index], stacked, PARAMS[name][level - 1], legacy), images[index])
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
    images: torch.Tensor, severity: int | Sequence[int] | torch.Tensor, rngs: RngBatch = None
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
    return _run(images, severity, rngs, "gaussian_noise", _gaussian_draw, _gaussian_apply, False)


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
    images: torch.Tensor, severity: int | Sequence[int] | torch.Tensor, rngs: RngBatch = None
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
    return _run(images, severity, rngs, "shot_noise", _shot_draw, _shot_apply, True)


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
    images: torch.Tensor, severity: int | Sequence[int] | torch.Tensor, rngs: RngBatch = None
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
    return _run(images, severity, rngs, "impulse_noise", _impulse_draw, _impulse_apply, False)


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
    images: torch.Tensor, severity: int | Sequence[int] | torch.Tensor, rngs: RngBatch = None
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
    return _run(images, severity, rngs, "speckle_noise", _speckle_draw, _speckle_apply, needs_image)
