"""The one sample model shared by every dataset reader."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, overload

import numpy as np

__all__ = ["Sample", "SampleList"]


def _frozen(arr: np.ndarray) -> np.ndarray:
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class Sample:
    """One annotated image: where it is and where its keypoints are.

    Immutable: the arrays are read-only and ``meta`` is a read-only mapping, so a sample can
    be shared between datasets, workers and caches without defensive copies.

    Attributes
    ----------
    id : str
        Stable, unique identifier within its dataset, e.g. ``"B1Counting/BB_left_0"`` or
        ``"00017620.jpg#17620"``. Subset draws and per-sample random streams hash it.
    image_path : pathlib.Path
        The image file (not opened until :func:`~keypoint_corrupt.datasets.load_image`).
    keypoints : numpy.ndarray
        (J, 2) float64 x, y in pixels.
    visibility : numpy.ndarray
        (J,) bool; ``False`` marks a joint that is not annotated or not visible.
    meta : Mapping
        Reader-specific extras (sequence, camera, frame, joint names, 3D points, ...).

    Examples
    --------
    >>> s = Sample("a#1", "a.png", [[1.0, 2.0], [3.0, 4.0]], [True, False])
    >>> s.keypoints.shape, s.visibility.tolist(), s.num_joints
    ((2, 2), [True, False], 2)
    """

    id: str
    image_path: Path
    keypoints: np.ndarray
    visibility: np.ndarray
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise TypeError(f"Sample id must be a non-empty str, got {self.id!r}")
        object.__setattr__(self, "image_path", Path(self.image_path))
        kps = np.array(self.keypoints, dtype=np.float64)  # a copy: callers keep their arrays
        if kps.ndim != 2 or kps.shape[1] != 2:
            raise ValueError(f"Sample {self.id!r}: keypoints must have shape (J, 2), got {kps.shape}")
        vis = np.array(self.visibility)
        if vis.shape != (kps.shape[0],):
            raise ValueError(
                f"Sample {self.id!r}: visibility must have shape ({kps.shape[0]},), got {vis.shape}"
            )
        object.__setattr__(self, "keypoints", _frozen(kps))
        object.__setattr__(self, "visibility", _frozen(vis.astype(bool)))
        object.__setattr__(self, "meta", MappingProxyType(dict(self.meta)))

    @property
    def num_joints(self) -> int:
        """Number of joints J."""
        return int(self.keypoints.shape[0])

    @property
    def instances(self) -> np.ndarray | None:
        """Each joint's instance (person) index, for a whole image of several; else ``None``.

        An image's sample built by :func:`~keypoint_corrupt.materialize.plan.image_samples` holds
        the joints of all its annotations, and ``meta["instance_joints"]`` their counts; a
        keypoint-aware corruption then targets one of them.

        Examples
        --------
        >>> kps = [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]
        >>> s = Sample("x.jpg", "x.jpg", kps, [1, 1, 1], {"instance_joints": (2, 1)})
        >>> s.instances.tolist(), Sample("a", "a.png", [[1.0, 2.0]], [True]).instances
        ([0, 0, 1], None)
        """
        counts = self.meta.get("instance_joints")
        if counts is None:
            return None
        counts = [int(c) for c in counts]
        if sum(counts) != self.num_joints or min(counts, default=0) < 0:
            raise ValueError(
                f"Sample {self.id!r}: meta['instance_joints'] {counts} does not add up to its "
                f"{self.num_joints} joints"
            )
        return np.repeat(np.arange(len(counts)), counts)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sample):
            return NotImplemented
        return (
            self.id == other.id
            and self.image_path == other.image_path
            and np.array_equal(self.keypoints, other.keypoints)
            and np.array_equal(self.visibility, other.visibility)
        )

    def __hash__(self) -> int:
        return hash((self.id, self.image_path))

    def __reduce__(self) -> tuple[Any, ...]:
        # MappingProxyType does not pickle; rebuild from a plain dict (DataLoader spawn workers).
        return (Sample, (self.id, self.image_path, self.keypoints, self.visibility, dict(self.meta)))

    def __repr__(self) -> str:
        return (
            f"Sample(id={self.id!r}, image_path={str(self.image_path)!r}, joints={self.num_joints}, "
            f"visible={int(self.visibility.sum())})"
        )


class SampleList(Sequence[Sample]):
    """A reader whose samples are all built at construction, held in ``self._samples``.

    The sequence protocol and ``ids`` are defined once here for the readers that load a whole
    annotation file up front (COCO, COCO-WholeBody hands, MPII).

    Examples
    --------
    >>> def one(i):
    ...     return Sample(f"s{i}", Path("x.png"), np.zeros((1, 2)), np.ones(1, bool))
    >>> class Two(SampleList):
    ...     def __init__(self):
    ...         self._samples = [one(0), one(1)]
    >>> Two().ids, len(Two()[0:1])
    (['s0', 's1'], 1)
    """

    _samples: list[Sample]

    @property
    def ids(self) -> list[str]:
        """Every sample id, in order."""
        return [s.id for s in self._samples]

    def __len__(self) -> int:
        return len(self._samples)

    @overload
    def __getitem__(self, index: int) -> Sample: ...

    @overload
    def __getitem__(self, index: slice) -> list[Sample]: ...

    def __getitem__(self, index: int | slice) -> Sample | list[Sample]:
        return self._samples[index]

    def __iter__(self) -> Iterator[Sample]:
        return iter(self._samples)
