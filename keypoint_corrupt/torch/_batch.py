"""Batches as torch tensors: validation, per-sample random sources, and the RGB contract.

Every torch kernel takes ``images`` as a ``B x C x H x W`` tensor (uint8, or float32 in
[0, 1]; ``C`` of 1, 3 or 4; any device) and returns a new tensor of the same shape, dtype
and device. It works like the CPU kernels' :func:`~keypoint_corrupt.functional.imagenet_c._common.run_rgb`:
grey images are corrupted as their RGB stack and channel 0 is returned, an alpha channel
passes through, and a uint8 result is the float result clipped to [0, 255] and truncated.

Random draws are made per sample on the host, from one NumPy generator per sample, with
exactly the calls the CPU kernel makes, so sample ``b`` of a batch equals the CPU kernel run on
image ``b`` with the same generator (see ``docs/torch.md`` for which kernels are bit-exact).
"""

from __future__ import annotations

import functools
import numbers
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeAlias, TypeVar

import numpy as np
import torch

__all__ = [
    "HostRandom",
    "RngBatch",
    "check_batch",
    "check_rngs",
    "check_severities",
    "finish_rgb",
    "from_numpy",
    "host_map",
    "reflect101_index",
    "restore_channels",
    "rgb255",
    "rgb_values",
    "severity_groups",
    "shares_source",
    "source_key",
    "to_numpy",
]

#: One per-sample random source: what the CPU kernels' ``rng`` accepts.
HostRandom: TypeAlias = np.random.Generator | np.random.RandomState
#: What a torch kernel's ``rngs`` accepts: one int seed for the batch (spawned per sample), a
#: sequence of ``B`` ints, Generators or RandomStates (an int as the CPU kernels read it:
#: ``numpy.random.default_rng(seed)``), or None (fresh entropy).
RngBatch: TypeAlias = int | Sequence[int | HostRandom] | None

_CHANNELS = (1, 3, 4)


def check_batch(images: object, name: str = "images") -> torch.Tensor:
    """Return ``images`` detached if it is a ``B x C x H x W`` uint8 or float32 batch, else raise naming it.

    The corruptions are data transforms, not differentiable operations: a batch that requires
    grad is read through ``detach()`` and the result never requires grad.

    Examples
    --------
    >>> check_batch(torch.zeros(2, 3, 4, 5, dtype=torch.uint8)).shape
    torch.Size([2, 3, 4, 5])
    """
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(images).__name__}")
    if images.dtype not in (torch.uint8, torch.float32):
        raise TypeError(f"{name} must have dtype torch.uint8 or torch.float32, got {images.dtype}")
    if images.ndim != 4:
        raise ValueError(f"{name} must have shape B x C x H x W, got shape {tuple(images.shape)}")
    b, c, h, w = (int(v) for v in images.shape)
    if c not in _CHANNELS:
        raise ValueError(f"{name} must have 1, 3 or 4 channels, got shape {tuple(images.shape)}")
    if b == 0 or h == 0 or w == 0:
        raise ValueError(f"{name} is empty: shape {tuple(images.shape)}")
    images = images.detach()
    if images.dtype == torch.float32:
        lo, hi = float(images.min()), float(images.max())
        if not (np.isfinite(lo) and np.isfinite(hi)) or lo < 0.0 or hi > 1.0:
            raise ValueError(f"float32 {name} must hold finite values in [0, 1], got min={lo!r}, max={hi!r}")
    return images


def check_severities(severity: object, batch: int, levels: int = 5, name: str = "severity") -> list[int]:
    """Return one severity per sample: an int for all, or a sequence (or 1-D tensor) of ``batch``.

    Examples
    --------
    >>> check_severities(3, 2), check_severities([1, 5], 2)
    ([3, 3], [1, 5])
    """
    if isinstance(severity, torch.Tensor):
        severity = severity.detach().cpu().tolist()
    values = [severity] * batch if not isinstance(severity, (Sequence, np.ndarray)) else list(severity)
    if len(values) != batch:
        raise ValueError(f"{name} must be one int or {batch} ints (one per sample), got {len(values)}")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise TypeError(f"{name} must hold ints in 1..{levels}, got {v!r}")
        if not 1 <= int(v) <= levels:
            raise ValueError(f"{name} must be in 1..{levels}, got {v!r}")
        out.append(int(v))
    return out


def check_rngs(rngs: object, batch: int, name: str = "rngs") -> list[HostRandom]:
    """Return one NumPy random source per sample.

    An int seeds the batch: sample ``b`` gets ``default_rng(SeedSequence(seed).spawn(batch)[b])``.
    A sequence gives each sample its own source; an int in it is read as the CPU kernels read
    ``rng=int`` (``default_rng(int)``), so ``rngs=[7]`` equals ``F.imagenet_c.<name>(..., rng=7)``.

    Examples
    --------
    >>> a, b = check_rngs([7, 7], 2)
    >>> a.random() == b.random() == np.random.default_rng(7).random()
    True
    """
    if rngs is None:
        return [np.random.default_rng() for _ in range(batch)]
    if isinstance(rngs, numbers.Integral) and not isinstance(rngs, bool):
        if rngs < 0:
            raise ValueError(f"{name} seed must be >= 0, got {rngs!r}")
        return [np.random.default_rng(s) for s in np.random.SeedSequence(int(rngs)).spawn(batch)]
    if not isinstance(rngs, Sequence) or isinstance(rngs, (str, bytes)):
        raise TypeError(
            f"{name} must be an int seed, a sequence of {batch} per-sample sources or None, got {rngs!r}"
        )
    if len(rngs) != batch:
        raise ValueError(f"{name} must hold one source per sample ({batch}), got {len(rngs)}")
    out: list[HostRandom] = []
    for r in rngs:
        if isinstance(r, (np.random.Generator, np.random.RandomState)):
            out.append(r)
        elif isinstance(r, numbers.Integral) and not isinstance(r, bool) and int(r) >= 0:
            out.append(np.random.default_rng(int(r)))
        else:
            raise TypeError(f"{name} items must be Generators, RandomStates or ints >= 0, got {r!r}")
    return out


@functools.lru_cache(maxsize=256)
def _reflect101(size: int, before: int, after: int) -> torch.Tensor:
    # Source index of every padded position under BORDER_REFLECT_101 (OpenCV's borderInterpolate).
    out = np.empty(size + before + after, dtype=np.int64)
    for i, p in enumerate(range(-before, size + after)):
        if size == 1:
            p = 0
        while p < 0 or p >= size:
            p = -p if p < 0 else 2 * size - 2 - p
        out[i] = p
    return torch.from_numpy(out)


@torch.compiler.disable
def reflect101_index(size: int, before: int, after: int, device: torch.device) -> torch.Tensor:
    """Source index of positions ``-before .. size + after - 1`` under OpenCV's ``BORDER_REFLECT_101``.

    Any pad width (repeated reflections on tiny images, as ``cv2.borderInterpolate``); a
    cached host table, moved to ``device``.

    Examples
    --------
    >>> reflect101_index(3, 4, 2, torch.device("cpu")).tolist()
    [0, 1, 2, 1, 0, 1, 2, 1, 0]
    """
    return _reflect101(size, before, after).to(device)


def source_key(source: object) -> int:
    """Identity of the random stream behind ``source``: its ``BitGenerator`` (Generator, RandomState).

    Two ``Generator`` objects built on one ``BitGenerator`` draw from one stream, so they count
    as one source; any other object is its own identity.

    Examples
    --------
    >>> bg = np.random.PCG64(0)
    >>> source_key(np.random.Generator(bg)) == source_key(np.random.Generator(bg))
    True
    """
    if isinstance(source, np.random.Generator):
        return id(source.bit_generator)
    if isinstance(source, np.random.RandomState):
        return id(source._bit_generator)
    return id(source)


def shares_source(sources: Sequence[object]) -> bool:
    """Whether two of ``sources`` draw from one random stream (see :func:`source_key`).

    Then the draws must be made sample after sample, each sample's draws complete before the
    next sample's, as a loop over the CPU kernel makes them.

    Examples
    --------
    >>> g = np.random.default_rng(0)
    >>> shares_source([g, g]), shares_source([g, np.random.default_rng(0)])
    (True, False)
    """
    return len({source_key(s) for s in sources}) < len(sources)


def to_numpy(images: torch.Tensor) -> list[np.ndarray]:
    """Each sample as the CPU kernels' ``H x W x C`` array (uint8 or float32), on the host.

    Examples
    --------
    >>> to_numpy(torch.zeros(2, 3, 4, 5, dtype=torch.uint8))[0].shape
    (4, 5, 3)
    """
    host = images.detach().permute(0, 2, 3, 1).contiguous().cpu().numpy()
    return [host[b] for b in range(host.shape[0])]


def from_numpy(arrays: Sequence[np.ndarray], like: torch.Tensor) -> torch.Tensor:
    """Stack ``H x W x C`` (or ``H x W``) arrays into a ``B x C x H x W`` tensor on ``like``'s device.

    Examples
    --------
    >>> from_numpy([np.zeros((4, 5, 3), np.uint8)], torch.zeros(1)).shape
    torch.Size([1, 3, 4, 5])
    """
    stacked = np.stack([a if a.ndim == 3 else a[:, :, None] for a in arrays])
    return torch.from_numpy(stacked).permute(0, 3, 1, 2).contiguous().to(like.device)


def rgb_values(images: torch.Tensor) -> torch.Tensor:
    """Return the batch's RGB on the 0..255 scale as the CPU kernels see it (uint8, or float32 x 255).

    Grey is repeated to three channels; alpha is left out. uint8 stays uint8 (the integer
    kernels work on it); float32 is multiplied by 255 in float32, as the CPU kernels do.

    Examples
    --------
    >>> rgb_values(torch.zeros(1, 1, 2, 2, dtype=torch.uint8)).shape
    torch.Size([1, 3, 2, 2])
    """
    rgb = images[:, :3] if images.shape[1] >= 3 else images.expand(-1, 3, -1, -1)
    if images.dtype == torch.uint8:
        return rgb
    return rgb * torch.tensor(255.0, dtype=torch.float32, device=images.device)


def rgb255(images: torch.Tensor) -> torch.Tensor:
    """Return the batch as float32 RGB on the 0..255 scale (``B x 3 x H x W``): what a kernel works on.

    :func:`rgb_values` in float32 (uint8 values convert exactly).

    Examples
    --------
    >>> rgb255(torch.full((1, 1, 2, 2), 0.5)).shape, float(rgb255(torch.full((1, 1, 2, 2), 0.5)).max())
    (torch.Size([1, 3, 2, 2]), 127.5)
    """
    return rgb_values(images).to(torch.float32)


def restore_channels(rgb: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Give a finished ``B x 3 x H x W`` result ``like``'s channels: grey takes channel 0, alpha is copied.

    Examples
    --------
    >>> like = torch.zeros(1, 4, 2, 2, dtype=torch.uint8)
    >>> restore_channels(torch.ones(1, 3, 2, 2, dtype=torch.uint8), like)[0, :, 0, 0].tolist()
    [1, 1, 1, 0]
    """
    if like.shape[1] == 1:
        return rgb[:, :1].contiguous()
    if like.shape[1] == 4:
        return torch.cat([rgb, like[:, 3:]], dim=1)
    return rgb.contiguous()


def finish_rgb(result: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Finish a kernel's ``B x 3 x H x W`` result (0..255 scale) as the CPU ``run_rgb`` does.

    A float result is clipped in its own dtype (float64 stays float64, as NumPy clips the
    ``RandomState`` formulas), then truncated to uint8 (as ``np.uint8``) or divided by 255 and
    cast to float32; a uint8 result of a uint8 kernel is taken as it is. ``result`` is
    consumed (clipped in place). Channels as :func:`restore_channels`.

    Examples
    --------
    >>> like = torch.zeros(1, 4, 2, 2, dtype=torch.uint8)
    >>> finish_rgb(torch.full((1, 3, 2, 2), 300.7), like)[0, :, 0, 0].tolist()
    [255, 255, 255, 0]
    >>> finish_rgb(torch.full((1, 3, 1, 1), 254.9999999, dtype=torch.float64), like[:, :1, :1, :1]).item()
    254
    """
    if result.dtype != torch.uint8 or like.dtype != torch.uint8:
        result = result.clamp_(0.0, 255.0)  # the kernels' own result: consumed in place
        result = result.to(torch.uint8) if like.dtype == torch.uint8 else result.div_(255.0).to(torch.float32)
    return restore_channels(result, like)


def severity_groups(severities: Sequence[int]) -> dict[int, torch.Tensor]:
    """Sample indices per severity, so a kernel runs once per level, not once per sample.

    Examples
    --------
    >>> {s: i.tolist() for s, i in severity_groups([2, 1, 2]).items()}
    {1: [1], 2: [0, 2]}
    """
    groups: dict[int, list[int]] = {}
    for b, s in enumerate(severities):
        groups.setdefault(s, []).append(b)
    return {s: torch.tensor(groups[s], dtype=torch.long) for s in sorted(groups)}


#: Below this many pixels per batch (``B x H x W``) the host work runs in the calling thread.
_THREADED_PIXELS = 1 << 16
_T = TypeVar("_T")


@functools.cache
def _host_pool(pid: int) -> ThreadPoolExecutor:
    """One pool per process: a forked child (a DataLoader worker) must not reuse its parent's threads."""
    return ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1), thread_name_prefix=f"kc-host-{pid}")


@torch.compiler.disable
def host_map(
    work: Callable[[int], _T], samples: Sequence[int], sources: Sequence[object], pixels: int
) -> list[_T]:
    """Run ``work(b)`` for every sample ``b`` on the host: in a thread pool for large batches.

    NumPy's generators and OpenCV release the GIL, so per-sample draws run in parallel. The
    threads are used only when every sample has its own random stream (distinct bit
    generators: :func:`~keypoint_corrupt.torch._batch.source_key`, so two ``Generator`` objects
    on one ``BitGenerator`` count as one), so each sample's draws are the same whatever the
    scheduling; otherwise the samples run one after the other, in order. ``pixels`` is the
    batch's size in pixels (``B x H x W``, channels not counted): below :data:`_THREADED_PIXELS`
    everything runs in the calling thread. Host work: excluded from ``torch.compile`` graphs.

    Examples
    --------
    >>> host_map(lambda b: b * b, [0, 1, 2], [None, None, None], 10)
    [0, 1, 4]
    """
    samples = list(samples)
    distinct = not shares_source([sources[b] for b in samples])
    if len(samples) < 2 or pixels < _THREADED_PIXELS or not distinct or (os.cpu_count() or 1) < 2:
        return [work(b) for b in samples]
    return list(_host_pool(os.getpid()).map(work, samples))
