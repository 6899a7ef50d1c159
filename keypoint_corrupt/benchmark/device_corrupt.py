"""Corrupt a benchmark's streamed images in batches on a torch device (``benchmark --corrupt-on``).

The DataLoader workers decode the clean images; the main process stacks the items of a batch
that share a configuration and an image size, corrupts them with
:class:`keypoint_corrupt.torch.Corruption` on the device, each with the generator the CPU path
gives it (``sample_rng(seed, unit id, config)``), and hands the images back to the host, where
the crops are cut exactly as on the CPU path. Where a torch kernel is bit-exact with its NumPy
kernel (``docs/torch.md`` lists them: all but snow and float32 defocus blur, within a level),
every number of the report is the CPU path's. An image with several people is corrupted once.

torch is imported when a :class:`DeviceCorruptor` is built, never with this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeAlias

import numpy as np

from keypoint_corrupt.benchmark.sources import StreamSource
from keypoint_corrupt.datasets.subsets import sample_rng

__all__ = ["DeviceCorruptor", "device_corruptor"]

#: One corrupted item: its image (RGB uint8 on the host) and its unit's moved keypoints, if moved.
_Result: TypeAlias = tuple[np.ndarray, np.ndarray | None]


class DeviceCorruptor:
    """Corrupt deferred items (:meth:`StreamSource.deferred`) on ``device``, batched.

    Parameters
    ----------
    device : str
        A torch device (``"cuda"``, ``"cuda:1"``, ``"cpu"``, ``"mps"``).
    seed : int
        The stream's seed (every item's generator is ``sample_rng(seed, unit.id, config)``).

    Raises
    ------
    ImportError
        PyTorch is not installed.
    ValueError
        ``device`` is not a torch device, or not available here.

    Examples
    --------
    >>> from keypoint_corrupt.benchmark.sources import StreamSource
    >>> from keypoint_corrupt.datasets import STB, bundled_sample_root
    >>> src = StreamSource(STB(bundled_sample_root(), "val"), ["occlusion-20"])
    >>> d = src.deferred(1, 0)
    >>> [(image, moved)] = DeviceCorruptor("cpu", seed=0)([d])
    >>> bool((image == src.item(1, 0)["image"]).all()), moved is None
    (True, True)
    """

    def __init__(self, device: str, seed: int = 0) -> None:
        try:
            import torch
        except ImportError:
            raise ValueError(
                f"corrupt_on={device!r} needs PyTorch, which is not installed: "
                'pip install "keypoint-corrupt[models]"'
            ) from None

        try:
            self.device = torch.device(device)
            torch.empty(1, device=self.device)
        except (RuntimeError, AssertionError) as exc:
            raise ValueError(f"corrupt_on={device!r} is not a torch device available here: {exc}") from None
        self.seed = int(seed)
        self._modules: dict[str, Any] = {}

    def module(self, config: str) -> Any:
        """Return the torch module of ``config`` (built once); ``NotImplementedError`` if it has none."""
        found = self._modules.get(config)
        if found is None:
            from keypoint_corrupt.torch import Corruption

            found = self._modules[config] = Corruption(config)
        return found

    def __call__(self, deferred: Sequence[dict[str, Any]]) -> list[_Result]:
        """Return each item's corrupted image (RGB uint8, on the host) and moved unit keypoints (or None)."""
        # A unit (an image with several people, each an item) is corrupted once.
        first: dict[tuple[str, str], int] = {}
        for i, d in enumerate(deferred):
            first.setdefault((d["config"], d["unit"].id), i)
        groups: dict[tuple[str, tuple[int, ...], int], list[int]] = {}
        for i in first.values():
            d = deferred[i]
            groups.setdefault((d["config"], tuple(d["image"].shape), len(d["unit"].keypoints)), []).append(i)
        done: dict[int, _Result] = {}
        for (config, _, _), members in groups.items():
            done.update(zip(members, self._run(config, [deferred[i] for i in members]), strict=True))
        return [done[first[(d["config"], d["unit"].id)]] for d in deferred]

    def _run(
        self, config: str, items: Sequence[dict[str, Any]]
    ) -> list[tuple[np.ndarray, np.ndarray | None]]:
        import torch

        images = torch.from_numpy(np.stack([d["image"] for d in items])).permute(0, 3, 1, 2)
        units = [d["unit"] for d in items]
        rngs = [sample_rng(self.seed, u.id, config) for u in units]
        keypoints = torch.from_numpy(np.stack([u.keypoints for u in units]))
        visibility = torch.from_numpy(np.stack([u.visibility for u in units]))
        instances = [u.instances for u in units]
        kwargs: dict[str, Any] = {}
        if any(i is not None for i in instances):
            kwargs["instances"] = instances
        corrupted, info = self.module(config).corrupt(
            images.contiguous().to(self.device), rngs, keypoints, visibility, **kwargs
        )
        host = corrupted.permute(0, 2, 3, 1).contiguous().cpu().numpy()
        moved = info.get("keypoints")
        moved_host = None if moved is None else np.asarray(torch.as_tensor(moved).cpu().numpy(), np.float64)
        return [(host[b], None if moved_host is None else moved_host[b]) for b in range(len(items))]


def device_corruptor(corrupt_on: str, source: object) -> DeviceCorruptor:
    """Build the ``corrupt_on`` corruptor of a stream, with every configuration's torch kernel checked first.

    Raises
    ------
    ValueError
        ``source`` is not a stream (a materialised output is already corrupted), the device
        is not available, or a configuration has no torch kernel (named).

    Examples
    --------
    >>> from keypoint_corrupt.benchmark.sources import StreamSource
    >>> from keypoint_corrupt.datasets import STB, bundled_sample_root
    >>> device_corruptor("cpu", StreamSource(STB(bundled_sample_root(), "val"), ["defocus-7"])).device
    device(type='cpu')
    """
    if not isinstance(source, StreamSource):
        raise ValueError(
            f"corrupt_on={corrupt_on!r} corrupts streamed images; a materialised output is already corrupted"
        )
    corruptor = DeviceCorruptor(corrupt_on, source.seed)
    for config in source.configs:
        try:
            corruptor.module(config)
        except NotImplementedError as exc:
            raise ValueError(f"corrupt_on={corrupt_on!r}: {exc}") from None
    return corruptor
