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
from keypoint_corrupt.torch._batch import RngBatch, check_batch, shares_source
from keypoint_corrupt.torch.imagenet_c import get_kernel
from keypoint_corrupt.torch.imagenet_c.noise import check_draws
from keypoint_corrupt.transforms import CorruptionTransform, ImageNetC, PoseBench

__all__ = ["DEVICE_DRAWS", "Corruption", "SuiteSampler"]

#: The corruptions whose dense random values ``draws="device"`` draws with torch on the device:
#: the reference noise configurations and ImageNet-C's four noise kernels. The others ignore
#: ``draws``: their random draws are a few scalars (occluder boxes, angles, severities) or
#: structural (fog's plasma, glass blur's swaps, elastic fields) and stay NumPy's.
DEVICE_DRAWS: frozenset[str] = frozenset(
    {"noise-gaussian", "noise-saltpepper", "gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise"}
)


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
    draws : {"host", "device"}, default "host"
        ``"host"``: every random value is NumPy's, drawn per sample as the CPU path draws it
        (sample ``b`` equals the CPU result). ``"device"``: the noise corruptions
        (:data:`DEVICE_DRAWS`) draw their dense values with a per-sample ``torch.Generator``
        on the images' device, seeded from the sample's generator: same distributions, a
        function of (seed, sample, configuration) only, faster, but not the CPU's values (and
        CPU and CUDA differ). Other corruptions ignore it.

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

    def __init__(self, name: str, draws: str = "host") -> None:
        super().__init__()
        self.name = name
        self.draws = check_draws(draws)
        self._reference = reference.supports_config(name)
        self._transform = get_config(name).build()
        if not self._reference:
            self._kernel, self._severity, self._moves = _suite_kernel(name)
        cfg = get_config(name)
        family = str(cfg.params.get("corruption", "")) or str(getattr(cfg.transform, "family", ""))
        #: Whether ``draws`` changes anything for this configuration.
        self.device_draws = draws == "device" and family in DEVICE_DRAWS

    def extra_repr(self) -> str:  # noqa: D102
        return repr(self.name) + (", draws='device'" if self.draws == "device" else "")

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
            return reference.apply_config(
                self.name, images, rngs, keypoints, visibility, instances, draws=self.draws
            )
        images = check_batch(images)
        gens = reference.check_generators(rngs, int(images.shape[0]))
        if self._kernel is _posebench_mask:
            return _posebench_mask(images, self._transform, gens, keypoints, visibility, instances)
        if isinstance(self._severity, tuple) and shares_source(gens):
            # One generator for several samples: the CPU loop draws sample b's severity, then its
            # kernel draws, then sample b + 1's severity; so do the same, sample by sample.
            return self._one_by_one(images, gens, keypoints)
        severities = _draw_severities(self._severity, gens)
        info: dict[str, Any] = {"severity": severities}
        if self._moves and keypoints is not None:
            out, moved = self._kernel(images, severities, gens, keypoints=keypoints)
            info["keypoints"] = moved
            return out, info
        if self.device_draws:
            return self._kernel(images, severities, gens, draws="device"), info
        return self._kernel(images, severities, gens), info

    def _one_by_one(
        self, images: torch.Tensor, gens: Sequence[np.random.Generator], keypoints: Any
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        """Corrupt sample after sample (a generator shared by samples), joining the results."""
        outs, severities, moved = [], [], []
        for b in range(int(images.shape[0])):
            index = torch.tensor([b], dtype=torch.long)
            out, info = self.corrupt(images[b : b + 1], [gens[b]], _subset(keypoints, index))
            outs.append(out)
            severities.extend(info["severity"])
            if "keypoints" in info:
                moved.append(info["keypoints"])
        joined: dict[str, Any] = {"severity": severities}
        if moved:
            joined["keypoints"] = (
                torch.cat(moved) if isinstance(moved[0], torch.Tensor) else [k for m in moved for k in m]
            )
        return torch.cat(outs), joined


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
    draws : {"host", "device"}, default "host"
        Passed to every :class:`Corruption`: ``"device"`` draws the noise corruptions' values
        with torch on the device (per-sample generators seeded from ``sample_rng(seed, key,
        config)``), the fast mode for training; ``"host"`` equals the CPU path.

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
        draws: str = "host",
    ) -> None:
        super().__init__()
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be an int >= 0, got {seed!r}")
        table = get_suite(suite)
        self.suite = table.name
        self.seed = int(seed)
        self.draws = check_draws(draws)
        levels, names = _normalised(table, severities, corruptions)
        self.configs: tuple[str, ...] = table.configs(levels, names)
        if not self.configs:
            raise ValueError(
                f"suite {self.suite!r} has no configuration for severities={severities!r} and "
                f"corruptions={corruptions!r}"
            )
        self.corruptions = nn.ModuleDict(
            {name.replace(".", "/"): Corruption(name, draws=draws) for name in self.configs}
        )

    def extra_repr(self) -> str:  # noqa: D102
        draws = ", draws='device'" if self.draws == "device" else ""
        return f"{self.suite!r}, {len(self.configs)} configurations, seed={self.seed}{draws}"

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
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        """Corrupt the batch and report what was drawn, as :meth:`Corruption.corrupt` does.

        Returns ``(images, info)``; ``info`` holds ``config`` (the configuration of every sample),
        ``severity`` (its severity in the suite), ``box`` (``B x 4`` occluder boxes, -1 where
        none), with ``keypoints`` given ``keypoints`` (``B x J x 2``, moved where an elastic
        configuration with ``move_keypoints=True`` moved them, else as given; one array per
        sample stays one per sample), where a configuration paints several boxes (PoseBench's
        mask) ``boxes`` (``B x M x 4``, -1 padded), and with ``instances`` ``target_instance``.
        """
        images = check_batch(images)
        batch = int(images.shape[0])
        if len(keys) != batch:
            raise ValueError(f"keys must hold one key per sample ({batch}), got {len(keys)}")
        out = images.clone()
        device = images.device
        boxes = torch.full((batch, 4), -1, dtype=torch.int64, device=device)
        moved = _keypoints_out(keypoints)
        squares: list[torch.Tensor | None] = [None] * batch
        targets: list[Any] = [None] * batch
        for name, index, gens in self._plan(keys):
            index = index.to(device)
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
                boxes.index_copy_(0, index, info["box"].to(device))
            _record(index, info, squares, targets, moved)
        chosen = self.choose(keys)
        result: dict[str, Any] = {
            "config": chosen,
            "severity": [get_suite(self.suite).locate(name)[1] for name in chosen],
            "box": boxes,
        }
        if moved is not None:
            result["keypoints"] = _join_keypoints(moved, keypoints)
        if any(sq is not None for sq in squares):
            result["boxes"] = _pad_boxes(squares, device)
        if instances is not None:
            result["target_instance"] = targets
        return out, result


@torch.compiler.disable
def _record(
    index: torch.Tensor,
    info: dict[str, Any],
    squares: list[torch.Tensor | None],
    targets: list[Any],
    moved: list[Any] | None,
) -> None:
    """Store a group's per-sample mask boxes, targets and moved keypoints at its samples' places."""
    for row, b in enumerate(index.tolist()):
        if "boxes" in info:
            squares[b] = info["boxes"][row]
        if "target_instance" in info:
            targets[b] = info["target_instance"][row]
        if "keypoints" in info and moved is not None:
            moved[b] = info["keypoints"][row]


def _normalised(
    suite: Any, severities: Sequence[int] | None, corruptions: Sequence[str] | None
) -> tuple[tuple[int, ...] | None, tuple[str, ...] | None]:
    """Severities sorted and unique, corruptions unique in the suite's order; empty ones refused.

    So the choice of a key depends on the set asked for, never on its order or repetitions.
    """
    levels: tuple[int, ...] | None = None
    names: tuple[str, ...] | None = None
    if severities is not None:
        if isinstance(severities, (str, bytes)) or not isinstance(severities, (Sequence, np.ndarray)):
            raise TypeError(f"severities must be a sequence of ints, got {severities!r}")
        if len(severities) == 0:
            raise ValueError(
                f"severities must hold at least one severity of suite {suite.name!r} "
                f"({suite.severities[0]}..{suite.severities[-1]}), got {list(severities)!r}"
            )
        for v in severities:
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise TypeError(f"severities must hold ints, got {v!r}")
        levels = tuple(sorted({int(v) for v in severities}))
    if corruptions is not None:
        if isinstance(corruptions, (str, bytes)) or not isinstance(corruptions, Sequence):
            raise TypeError(f"corruptions must be a sequence of corruption names, got {corruptions!r}")
        if len(corruptions) == 0:
            raise ValueError(
                f"corruptions must name at least one corruption of suite {suite.name!r} "
                f"({', '.join(suite.corruptions)}), got []"
            )
        unknown = [c for c in corruptions if c not in suite.table]
        if unknown:
            raise ValueError(
                f"corruptions of suite {suite.name!r} are {', '.join(suite.corruptions)}, got {unknown!r}"
            )
        wanted = set(corruptions)
        names = tuple(c for c in suite.corruptions if c in wanted)
    return levels, names


@torch.compiler.disable
def _keypoints_out(keypoints: Any) -> list[Any] | None:
    """Per-sample rows of the keypoints to report (each replaced by its moved row where moved)."""
    if keypoints is None:
        return None
    return [keypoints[b] for b in range(len(keypoints))]


@torch.compiler.disable
def _join_keypoints(rows: list[Any], keypoints: Any) -> Any:
    """Return the keypoints in the form given: a ``B x J x 2`` tensor (float), else one row per sample."""
    if isinstance(keypoints, torch.Tensor):
        dtype = keypoints.dtype if keypoints.is_floating_point() else torch.float64
        return torch.stack([torch.as_tensor(r).to(dtype=dtype, device=keypoints.device) for r in rows])
    return rows


@torch.compiler.disable
def _pad_boxes(squares: list[torch.Tensor | None], device: torch.device) -> torch.Tensor:
    """``B x M x 4`` int64 boxes, -1 padded (a sample without boxes: one row of -1)."""
    most = max(1, *(int(sq.shape[0]) for sq in squares if sq is not None))
    out = torch.full((len(squares), most, 4), -1, dtype=torch.int64, device=device)
    for b, sq in enumerate(squares):
        if sq is not None:
            out[b, : int(sq.shape[0])] = sq.to(device)
    return out
