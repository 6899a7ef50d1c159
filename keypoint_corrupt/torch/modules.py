"""``torch.nn.Module`` wrappers: one configuration, and a suite sampler for training loops.

:class:`Corruption` runs one registered configuration on a batch: a reference one
(``defocus-7`` ... ``noise-saltpepper``, through :mod:`keypoint_corrupt.torch.reference`), an
ImageNet-C one (``imagenet-c.fog-3``, through the kernel of
:func:`keypoint_corrupt.torch.imagenet_c.get_kernel`), or a PoseBench one whose corruption is
an ImageNet-C kernel (PoseBench uses ImageNet-C's parameters for those), or PoseBench's
keypoint-aware mask (squares drawn on the host by ``functional.posebench.draw_mask``, painted
on the device with one mask).
:class:`SuiteSampler` gives every sample a (corruption, severity) of a suite drawn from the
seed and the sample's key, and corrupts the batch one configuration group at a time.

Both keep the CPU path's determinism: sample ``b`` corrupted with generator ``g`` equals
:func:`~keypoint_corrupt.registry.apply_corruption` with ``g``; the sampler uses
``sample_rng(seed, key, config)``, the generator of
:class:`~keypoint_corrupt.datasets.CorruptedDataset`. Under ``torch.compile`` the host draws
are excluded from the graph (``torch.compiler.disable``): the graph breaks there and the device
maths is compiled.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from keypoint_corrupt.datasets.subsets import sample_rng
from keypoint_corrupt.functional import imagenet_c as cpu_imagenet_c
from keypoint_corrupt.registry import get_config
from keypoint_corrupt.suites import get_suite
from keypoint_corrupt.torch import reference
from keypoint_corrupt.torch._batch import RngBatch, check_batch
from keypoint_corrupt.torch.imagenet_c import get_kernel
from keypoint_corrupt.transforms import CorruptionTransform, ImageNetC, PoseBench

__all__ = ["Corruption", "SuiteSampler"]


def _suite_kernel(name: str) -> tuple[Callable[..., Any], int | tuple[int, int], bool]:
    """``(kernel, severity spec, moves keypoints)`` of an ImageNet-C or shared PoseBench configuration."""
    cfg = get_config(name)
    corruption = str(cfg.params.get("corruption", ""))
    if cfg.transform is PoseBench and corruption == "mask":
        return _posebench_mask, cfg.params.get("severity", 1), False  # draws through the transform
    shared = (
        cfg.transform is PoseBench
        and corruption in cpu_imagenet_c.CORRUPTIONS
        and PoseBench._KERNELS.get(corruption) is cpu_imagenet_c.CORRUPTIONS[corruption]
    )
    if cfg.transform is not ImageNetC and not shared:
        raise NotImplementedError(
            f"no torch kernel for configuration {name!r} ({cfg.transform.__name__}"
            f"{'(' + repr(corruption) + ')' if corruption else ''}); the torch path runs the reference "
            "configurations, ImageNet-C's, PoseBench's mask and its corruptions shared with ImageNet-C"
        )
    severity = cfg.params.get("severity", 1)
    moves = (
        cfg.transform is ImageNetC
        and corruption == "elastic_transform"
        and cfg.params.get("move_keypoints", True)
    )
    return get_kernel(str(corruption)), severity, bool(moves)


def _posebench_mask(
    images: torch.Tensor,
    transform: CorruptionTransform,
    gens: Sequence[np.random.Generator],
    keypoints: Any = None,
    visibility: Any = None,
    instances: Any = None,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """PoseBench's mask on a batch: severity, target and squares drawn on the host, painted with one mask."""
    drawn = reference.draw_batch(transform, images.shape, gens, keypoints, visibility, instances)
    boxes = np.full((len(drawn), max(1, *(len(d["boxes"]) for d in drawn)), 4), -1, dtype=np.int64)
    for b, d in enumerate(drawn):
        if d["boxes"]:
            boxes[b, : len(d["boxes"])] = d["boxes"]
    on_device = torch.from_numpy(boxes).to(images.device)
    info: dict[str, Any] = {"severity": [d["severity"] for d in drawn], "boxes": on_device}
    if instances is not None:
        info["target_instance"] = [d.get("target_instance") for d in drawn]
    return reference.fill_boxes(images, on_device, 0), info


def _subset(values: Any, index: torch.Tensor) -> Any:
    """Rows ``index`` of a per-sample tensor or sequence (None stays None)."""
    if values is None:
        return None
    if isinstance(values, torch.Tensor):
        return values.index_select(0, index.to(values.device))
    return [values[i] for i in index.tolist()]


class Corruption(nn.Module):
    """One registered configuration as a module: ``forward(images, rngs, keypoints, visibility)``.

    Parameters
    ----------
    name : str
        A reference configuration (``"defocus-7"``), an ImageNet-C one (``"imagenet-c.fog-3"``)
        a PoseBench one shared with ImageNet-C (``"posebench.motion_blur-2"``) or PoseBench's
        mask (``"posebench.mask-3"``).

    Raises
    ------
    ValueError
        Unknown name (the registry's message).
    NotImplementedError
        No torch kernel for it (PoseBench's colour quantisation and darkness, or a kernel module
        not written yet).

    Examples
    --------
    >>> m = Corruption("motion-15")
    >>> m(torch.zeros(2, 3, 8, 8, dtype=torch.uint8)).shape
    torch.Size([2, 3, 8, 8])
    """

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self._reference = reference.supports_config(name)
        self._transform = get_config(name).build()
        if not self._reference:
            self._kernel, self._severity, self._moves = _suite_kernel(name)

    def extra_repr(self) -> str:  # noqa: D102
        return repr(self.name)

    def forward(
        self,
        images: torch.Tensor,
        rngs: RngBatch = None,
        keypoints: Any = None,
        visibility: Any = None,
        instances: Any = None,
    ) -> torch.Tensor:
        """Return the corrupted batch (same shape, dtype, device); :meth:`corrupt` also reports the draws."""
        return self.corrupt(images, rngs, keypoints, visibility, instances)[0]

    def corrupt(
        self,
        images: torch.Tensor,
        rngs: RngBatch = None,
        keypoints: Any = None,
        visibility: Any = None,
        instances: Any = None,
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        """Corrupt the batch and report the draws: ``box`` (B x 4, occlusion), ``severity``, ``keypoints``.

        ``keypoints`` (``B x J x 2``) are read by occlusion and PoseBench's mask (whose squares
        are reported as ``boxes``, ``B x M x 4``, -1 padded) and moved by an ImageNet-C
        ``elastic_transform`` configuration with ``move_keypoints=True`` (then
        ``info["keypoints"]``); ``visibility`` (``B x J``) is read by occlusion and the mask, and
        ``instances`` (``B x J``, each keypoint's person) make them target one instance per image
        (``info["target_instance"]``), as the CPU path does.
        """
        if self._reference:
            return reference.apply_config(self.name, images, rngs, keypoints, visibility, instances)
        check_batch(images)
        gens = reference.check_generators(rngs, int(images.shape[0]))
        if self._kernel is _posebench_mask:
            return _posebench_mask(images, self._transform, gens, keypoints, visibility, instances)
        severities = _draw_severities(self._severity, gens)
        info: dict[str, Any] = {"severity": severities}
        if self._moves and keypoints is not None:
            out, moved = self._kernel(images, severities, gens, keypoints=keypoints)
            info["keypoints"] = moved
            return out, info
        return self._kernel(images, severities, gens), info


@torch.compiler.disable
def _draw_severities(spec: int | tuple[int, int], gens: Sequence[np.random.Generator]) -> list[int]:
    """Return one severity per sample: the fixed one, or drawn first from each generator (as on the CPU)."""
    if isinstance(spec, tuple):
        low, high = spec
        return [int(g.integers(low, high + 1)) for g in gens]
    return [int(spec)] * len(gens)


def _key_index(seed: int, suite: str, key: str, n: int) -> int:
    """Return an index in ``0..n-1`` from BLAKE2b(seed, suite, key): the same on every machine."""
    digest = hashlib.blake2b(
        f"{seed}\x00{suite}\x00{key}".encode(), digest_size=8, person=b"kc.suite"
    ).digest()
    return int.from_bytes(digest, "little") % n


class SuiteSampler(nn.Module):
    """Corrupt each sample with a (corruption, severity) of a suite chosen from (seed, sample key).

    Sample ``key`` gets configuration ``configs[BLAKE2b(seed, suite, key) mod len(configs)]``
    (uniform over the suite's corruption x severity cells, to within 2**-64) and is corrupted
    with the generator ``sample_rng(seed, key, config)``: exactly the item
    :class:`~keypoint_corrupt.datasets.CorruptedDataset` (same seed) gives for that sample and
    configuration. The batch is corrupted one configuration group at a time: the loop runs over
    groups (at most ``len(configs)``), never over samples. For new draws every epoch, put the
    epoch in the key (``f"{id}@{epoch}"``).

    Parameters
    ----------
    suite : str
        A suite name (``"imagenet-c"``, ``"costa2021"``, ...).
    severities : sequence of int, optional
        Severities to draw from (default all).
    corruptions : sequence of str, optional
        Corruptions to draw from (default all).
    seed : int, default 0
        Seed of the choice and of the corruption draws.

    Examples
    --------
    >>> sampler = SuiteSampler("costa2021", seed=0, corruptions=["defocus", "motion"])
    >>> out = sampler(torch.zeros(4, 3, 16, 16, dtype=torch.uint8), keys=["a", "b", "c", "d"])
    >>> out.shape, len(sampler.choose(["a", "b"]))
    (torch.Size([4, 3, 16, 16]), 2)
    """

    def __init__(
        self,
        suite: str,
        severities: Sequence[int] | None = None,
        corruptions: Sequence[str] | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be an int >= 0, got {seed!r}")
        self.suite = get_suite(suite).name
        self.seed = int(seed)
        self.configs: tuple[str, ...] = get_suite(suite).configs(severities, corruptions)
        self.corruptions = nn.ModuleDict({name.replace(".", "/"): Corruption(name) for name in self.configs})

    def extra_repr(self) -> str:  # noqa: D102
        return f"{self.suite!r}, {len(self.configs)} configurations, seed={self.seed}"

    @torch.compiler.disable
    def choose(self, keys: Sequence[str | int]) -> list[str]:
        """Return the configuration of every key (ints are read as their decimal string).

        Examples
        --------
        >>> SuiteSampler("costa2021").choose(["x"]) == SuiteSampler("costa2021").choose(["x"])
        True
        """
        if isinstance(keys, (str, bytes)):
            raise TypeError(f"keys must be a sequence of sample keys, got the string {keys!r}")
        out = []
        for key in keys:
            if not isinstance(key, (str, int, np.integer)) or isinstance(key, bool):
                raise TypeError(f"keys must hold str or int sample keys, got {key!r}")
            out.append(self.configs[_key_index(self.seed, self.suite, str(key), len(self.configs))])
        return out

    @torch.compiler.disable
    def _plan(self, keys: Sequence[str | int]) -> list[tuple[str, torch.Tensor, list[np.random.Generator]]]:
        chosen = self.choose(keys)
        groups: dict[str, list[int]] = {}
        for i, name in enumerate(chosen):
            groups.setdefault(name, []).append(i)
        return [
            (
                name,
                torch.tensor(idx, dtype=torch.long),
                [sample_rng(self.seed, str(keys[i]), name) for i in idx],
            )
            for name, idx in groups.items()
        ]

    def forward(
        self,
        images: torch.Tensor,
        keys: Sequence[str | int],
        keypoints: Any = None,
        visibility: Any = None,
        instances: Any = None,
    ) -> torch.Tensor:
        """Return the corrupted batch; ``keys`` (one per sample) choose the configurations (see sample)."""
        return self.sample(images, keys, keypoints, visibility, instances)[0]

    def sample(
        self,
        images: torch.Tensor,
        keys: Sequence[str | int],
        keypoints: Any = None,
        visibility: Any = None,
        instances: Any = None,
    ) -> tuple[torch.Tensor, list[str], torch.Tensor]:
        """Corrupt the batch: ``(images, configuration per sample, occluder boxes B x 4, -1 when none)``."""
        check_batch(images)
        if len(keys) != int(images.shape[0]):
            raise ValueError(f"keys must hold one key per sample ({int(images.shape[0])}), got {len(keys)}")
        out = images.clone()
        boxes = torch.full((int(images.shape[0]), 4), -1, dtype=torch.int64, device=images.device)
        for name, index, gens in self._plan(keys):
            index = index.to(images.device)
            module = cast(Corruption, self.corruptions[name.replace(".", "/")])
            part, info = module.corrupt(
                images.index_select(0, index),
                gens,
                _subset(keypoints, index),
                _subset(visibility, index),
                _subset(instances, index),
            )
            out.index_copy_(0, index, part)
            if "box" in info:
                boxes.index_copy_(0, index, info["box"].to(images.device))
        return out, self.choose(keys), boxes
