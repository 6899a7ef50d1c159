"""Where benchmark samples come from: streamed corruptions or a materialised output folder.

Both give the same rows, in the same order: ``standard`` (the whole clean split) and then
each configuration's corrupted subset, items in base order. Items are plain dicts with
``image`` (RGB uint8), ``keypoints`` (float64 ``J x 2``, as the samples hold them, or where a
corruption moved them, as the annotation files record them), ``visibility`` (bool ``J``) and
``id`` (the source sample's id). A stream with ``whole_images`` corrupts what
``materialize --suite`` writes: each image once, with the keypoints of all its annotations,
and then gives one item per annotation of it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from keypoint_corrupt.datasets import CLEAN, CocoKeypoints, CorruptedDataset, Sample, load_item
from keypoint_corrupt.datasets.corrupted import keypoints_after
from keypoint_corrupt.materialize.plan import image_samples, recorded_subset_dir
from keypoint_corrupt.materialize.writer import moved_keypoints
from keypoint_corrupt.registry import CONFIGS, get_config
from keypoint_corrupt.schema import KeypointSchema

__all__ = [
    "MaterializedSource",
    "StreamSource",
    "check_materialized_images",
    "find_materialized_root",
    "is_materialized",
    "open_source",
]

STANDARD = "standard"
_ANNOTATIONS = "annotations.json"
_MANIFEST = "manifest.json"


class StreamSource:
    """Corrupt on the fly: the clean split plus each configuration's subset.

    Parameters
    ----------
    base : sequence of Sample
        The split (``STB``, ``CocoKeypoints``, ...).
    configs : sequence of str
        Configurations, one row each.
    fraction, seed : float, int
        Subset draw and noise (as :class:`~keypoint_corrupt.datasets.CorruptedDataset`).
    standard : bool
        Include the clean ``standard`` row (the whole split).
    whole_images : bool
        Corrupt whole images as ``materialize --suite`` does
        (:func:`~keypoint_corrupt.materialize.plan.image_samples`): the subset draw is over
        images, each image's generator is keyed by the image's id, keypoint-aware corruptions
        see every person of it, and each annotation of a drawn image is one item of the row.
        Without it (``materialize`` without ``--suite``), each annotation's copy of its image is
        corrupted and drawn separately. A dataset of one sample per image (STB) is the same
        either way.
    """

    kind = "stream"

    def __init__(
        self,
        base: Sequence[Sample],
        configs: Sequence[str] = CONFIGS,
        fraction: float = 0.2,
        seed: int = 0,
        standard: bool = True,
        whole_images: bool = False,
    ) -> None:
        self.base = base
        self.configs = tuple(configs)
        self.whole_images = bool(whole_images)
        self.dataset = None
        # What is corrupted (an image, or an annotation) and the annotations each one carries.
        units: Sequence[Sample] = base
        members: list[tuple[int, ...]] = [(i,) for i in range(len(base))]
        starts = [0] * len(base)  # each annotation's first joint in its unit's keypoints
        if self.whole_images and self.configs:
            samples = [base[i] for i in range(len(base))]
            units, members = image_samples(samples)
            for group in members:
                offset = 0
                for a in group:
                    starts[a] = offset
                    offset += len(samples[a].keypoints)
        self._members = members
        if self.configs:
            self.dataset = CorruptedDataset(units, self.configs, fraction, seed, mode="subset")
        self.fraction = float(fraction)
        self.seed = int(seed)
        self.groups: list[tuple[str, int]] = []
        # Per row: (dataset position, annotation index in base, its first joint in the unit).
        self._entries: list[list[tuple[int, int, int]]] = []
        if standard:
            self.groups.append((STANDARD, len(base)))
            self._entries.append([(-1, i, 0) for i in range(len(base))])
        if self.dataset is not None:
            by_config: dict[str, list[tuple[int, int, int]]] = {c: [] for c in self.configs}
            for pos, entry in enumerate(self.dataset.plan):
                by_config[entry.config] += [(pos, a, starts[a]) for a in members[entry.base_index]]
            for name in self.configs:
                self.groups.append((name, len(by_config[name])))
                self._entries.append(by_config[name])
        self._last: tuple[int, dict[str, Any]] | None = None  # the last corrupted unit
        #: Corrupts :meth:`deferred` items instead of the NumPy kernels when set (``corrupt_on``:
        #: a :class:`~keypoint_corrupt.benchmark.device_corrupt.DeviceCorruptor`).
        self.corruptor: Callable[[list[dict[str, Any]]], list[Any]] | None = None
        #: Units corrupted together by :attr:`corruptor` (the images of one device batch).
        self.device_batch = 32
        self._device_done: dict[int, Any] = {}  # dataset position -> (image, moved keypoints)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_last": None, "_device_done": {}}  # workers: no image in the pickle

    def item(self, group: int, index: int) -> dict[str, Any]:
        """Item ``index`` of row ``group``."""
        pos, ann, start = self._entries[group][index]
        sample = self.base[ann]
        if pos < 0:
            return load_item(sample)
        assert self.dataset is not None
        if self.corruptor is not None:  # a device corrupts: the same item, from its deferred form
            deferred = self.deferred(group, index)
            assert deferred is not None
            if pos not in self._device_done:
                self._corrupt_ahead(group, index)
            image, moved = self._device_done[pos]
            return self.finish_deferred(deferred, image.copy(), moved)
        if self._last is None or self._last[0] != pos:  # the annotations of an image come in a row
            self._last = (pos, self.dataset[pos])
        it = self._last[1]
        unit_index = self.dataset.plan[pos].base_index
        # Ground truth in float64 from the sample (the dataset item carries float32 for torch), or
        # where the corruption moved it, rounded as materialize records it: what its COCO file holds.
        keypoints = sample.keypoints
        moved = moved_keypoints(it["keypoints"], self.dataset.base[unit_index].keypoints)
        if moved is not None:
            keypoints = np.asarray(moved[start : start + len(sample.keypoints)], dtype=np.float64)
        image = it["image"]
        if len(self._members[unit_index]) > 1:  # each annotation's item owns its image
            image = image.copy()
        return {"image": image, "keypoints": keypoints, "visibility": sample.visibility, "id": sample.id}

    def _corrupt_ahead(self, group: int, index: int) -> None:
        """Corrupt the next :attr:`device_batch` units of the row from ``index`` in one device call.

        Items are read in order (a protocol walks a row image by image), so the units ahead are
        corrupted together and kept until the next call; the results are each unit's alone.
        """
        assert self.corruptor is not None
        units: dict[int, dict[str, Any]] = {}
        for i in range(index, len(self._entries[group])):
            pos = self._entries[group][i][0]
            if pos not in units:
                if len(units) == self.device_batch:
                    break
                deferred = self.deferred(group, i)
                assert deferred is not None
                units[pos] = deferred
        results = self.corruptor(list(units.values()))
        self._device_done = dict(zip(units, results, strict=True))

    def deferred(self, group: int, index: int) -> dict[str, Any] | None:
        """Item ``index`` of row ``group`` before its corruption, for a device that corrupts batches.

        ``None`` for an item of the clean row. Otherwise what the corruption reads: the clean
        ``image`` of the unit (the annotation, or with ``whole_images`` its whole image), the
        ``unit`` sample (its id keys the generator, ``sample_rng(seed, unit.id, config)``, and
        its keypoints, visibility and instances place keypoint-aware corruptions), the
        ``config``, and where the item's joints lie in the unit's; :meth:`finish_deferred`
        turns the corrupted image into exactly the item that :meth:`item` gives.

        Examples
        --------
        >>> from keypoint_corrupt.datasets import STB, bundled_sample_root
        >>> src = StreamSource(STB(bundled_sample_root(), "val"), ["motion-15"])
        >>> src.deferred(0, 0) is None, src.deferred(1, 0)["config"]
        (True, 'motion-15')
        """
        pos, ann, start = self._entries[group][index]
        if pos < 0:
            return None
        assert self.dataset is not None
        entry = self.dataset.plan[pos]
        return {
            "image": self.dataset.source_image(entry.base_index),
            "unit": self.dataset.base[entry.base_index],
            "config": entry.config,
            "annotation": ann,
            "start": start,
        }

    def finish_deferred(
        self, deferred: dict[str, Any], image: np.ndarray, moved: np.ndarray | None = None
    ) -> dict[str, Any]:
        """Return the item of a :meth:`deferred` one, from its corrupted image and moved keypoints.

        ``moved`` is what the corruption reported for the unit's keypoints (``info["keypoints"]``
        of a corruption that moves the content), else ``None``; the item then holds them as
        :meth:`item` does (labelled joints only, rounded as ``materialize`` records them).
        """
        sample = self.base[deferred["annotation"]]
        keypoints = sample.keypoints
        if moved is not None:
            unit = deferred["unit"]
            rendered = keypoints_after({"keypoints": moved}, unit.keypoints, unit.visibility).astype(
                np.float32
            )
            recorded = moved_keypoints(rendered, unit.keypoints)
            if recorded is not None:
                start = deferred["start"]
                keypoints = np.asarray(recorded[start : start + len(sample.keypoints)], dtype=np.float64)
        return {"image": image, "keypoints": keypoints, "visibility": sample.visibility, "id": sample.id}

    def describe(self) -> dict[str, Any]:
        """JSON description of the source."""
        name = type(self.base).__name__
        info: dict[str, Any] = {"source": self.kind, "dataset": name}
        info.update(fraction=self.fraction, seed=self.seed)
        if self.whole_images:
            info["whole_images"] = True
        root = getattr(self.base, "root", None)
        if root is not None:
            info["root"] = str(root)
        split = getattr(self.base, "split", None)
        if split is not None:
            info["split"] = str(split)
        ann = getattr(self.base, "annotation_file", None)
        if ann is not None:
            info["annotation_file"] = str(ann)
        info["is_stb"] = name == "STB"
        return info


def is_materialized(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` looks like a ``keypoint-corrupt materialize`` output (or one split of it)."""
    try:
        find_materialized_root(path)
    except (FileNotFoundError, ValueError):
        return False
    return True


def find_materialized_root(path: str | os.PathLike[str], split: str | None = None) -> tuple[Path, str]:
    """Locate a split folder ``O/<split>`` of a materialised output.

    Parameters
    ----------
    path : path
        The output folder ``O`` (with ``manifest.json``) or one of its split folders.
    split : str, optional
        Split to read; default ``"val"`` when present, else the only split.

    Returns
    -------
    (pathlib.Path, str)
        The split folder and the split name.
    """
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"materialised output not found: {root}")

    def subsets(d: Path) -> list[str]:
        return sorted(p.name for p in d.iterdir() if p.is_dir() and (p / _ANNOTATIONS).is_file())

    if subsets(root) and split in (None, root.name):  # a split folder itself
        return root, root.name
    splits = sorted(p.name for p in root.iterdir() if p.is_dir() and subsets(p))
    if not splits:
        raise ValueError(f"{root} is not a materialised output (no <split>/<config>/{_ANNOTATIONS})")
    if split is None:
        if "val" in splits:
            split = "val"
        elif len(splits) == 1:
            split = splits[0]
        else:
            raise ValueError(f"{root} holds several splits ({', '.join(splits)}); choose one")
    if split not in splits:
        raise ValueError(f"{root} has no split {split!r}; it holds: {', '.join(splits)}")
    return root / split, split


class MaterializedSource:
    """Read the rows back from a materialised output (``O/<split>/<config>/annotations.json``).

    An output written for a suite (``materialize --suite``) holds each configuration in
    ``O/<split>/<corruption>/<severity>/``; its manifest's ``configs`` records name the
    configuration of each such folder, and the rows keep the configuration names.

    Parameters
    ----------
    path : path
        The output folder (or one split folder).
    split : str, optional
        See :func:`find_materialized_root`.
    configs : sequence of str, optional
        Rows to read; default: every configuration present, in the reference order.
    standard : bool
        Include the clean ``standard`` row from ``O/<split>/clean/annotations.json``.
    """

    kind = "materialized"

    def __init__(
        self,
        path: str | os.PathLike[str],
        split: str | None = None,
        configs: Sequence[str] | None = None,
        standard: bool = True,
    ) -> None:
        self.split_dir, self.split = find_materialized_root(path, split)
        self.root = self.split_dir.parent
        self.manifest = _read_json(self.root / _MANIFEST) or {}
        folders = _subset_folders(self.split_dir, self.manifest)
        order = {name: i for i, name in enumerate(CONFIGS)}
        recorded = {name: i for i, name in enumerate(folders)}
        present = sorted(folders, key=lambda n: (order.get(n, len(order)), recorded[n], n))
        if configs is None:
            configs = present
        missing = [c for c in configs if c not in present]
        if missing:
            raise ValueError(
                f"{self.split_dir} has no subset for {', '.join(missing)}; "
                f"it holds: {', '.join(present) or 'none'}"
            )
        self.configs = tuple(configs)
        self.groups: list[tuple[str, int]] = []
        self._sets: list[tuple[CocoKeypoints, list[str]]] = []
        names = ([STANDARD] if standard else []) + list(self.configs)
        for name in names:
            folder = self.split_dir / CLEAN if name == STANDARD else folders[name]
            if not (folder / _ANNOTATIONS).is_file():
                raise ValueError(f"{folder / _ANNOTATIONS} not found (the clean split's annotations)")
            coco = CocoKeypoints(folder / _ANNOTATIONS)
            check_materialized_images(coco, self.root)
            self._sets.append((coco, _source_ids(coco)))
            self.groups.append((name, len(coco)))

    def item(self, group: int, index: int) -> dict[str, Any]:
        """Item ``index`` of row ``group``."""
        coco, ids = self._sets[group]
        return load_item(coco[index], ids[index])

    @property
    def schema(self) -> KeypointSchema | None:
        """The joint schema of the annotation files (the source dataset's, from its joint names).

        :func:`~keypoint_corrupt.benchmark.evaluate` centres the crops on its anchor joints, as it
        does for the source dataset streamed (``None``: hand3d's default anchor).
        """
        return self._sets[0][0].schema if self._sets else None

    def samples(self, name: str) -> CocoKeypoints:
        """Return the samples of one row (``"standard"`` or a configuration) as read from disk."""
        for (row, _), (coco, _) in zip(self.groups, self._sets, strict=True):
            if row == name:
                return coco
        raise KeyError(f"no row {name!r}; rows: {', '.join(r for r, _ in self.groups)}")

    def describe(self) -> dict[str, Any]:
        """JSON description of the source (from the manifest when there is one)."""
        dataset = self.manifest.get("dataset") or {}
        info: dict[str, Any] = {
            "source": self.kind,
            "root": str(self.root),
            "split": self.split,
            "dataset": dataset.get("kind"),
            "fraction": self.manifest.get("fraction"),
            "seed": self.manifest.get("seed"),
            "is_stb": dataset.get("kind") == "stb",
        }
        if dataset.get("bundled"):
            info["bundled"] = True
        if self.manifest.get("suite"):
            info["suite"] = self.manifest["suite"]
        return info


def _subset_folders(split_dir: Path, manifest: dict[str, Any]) -> dict[str, Path]:
    """Map each configuration to its folder: ``<config>/``, or a suite's ``<corruption>/<severity>/``.

    The folders that the manifest's ``configs`` records place
    (:func:`~keypoint_corrupt.materialize.plan.recorded_subset_dir`, in its order), then any
    other ``<config>/`` holding annotations (an output without a readable manifest).
    """
    found: dict[str, Path] = {}
    for record in manifest.get("configs") or []:
        folder = recorded_subset_dir(split_dir.name, record) if isinstance(record, dict) else None
        if folder is not None and (split_dir.parent / folder / _ANNOTATIONS).is_file():
            found[record["name"]] = split_dir.parent / folder
    for p in sorted(split_dir.iterdir()):
        if p.is_dir() and p.name != CLEAN and (p / _ANNOTATIONS).is_file():
            found.setdefault(p.name, p)
    return found


def check_materialized_images(coco: CocoKeypoints, root: str | os.PathLike[str]) -> None:
    """Fail early, in one line, when a materialised annotation file's images are not on disk.

    ``file_name`` is relative to the annotation file's folder, so an output reads from itself
    wherever it is; this checks the file's first image (a quick test, not :func:`verify_output`)
    and names it. Outputs written before the clean split was copied into the output point at
    the source images, which a moved dataset or a reinstalled package takes away.

    Raises
    ------
    FileNotFoundError
        The first image is missing.
    """
    if not len(coco):
        return
    first = Path(coco[0].image_path)
    if not first.is_file():
        raise FileNotFoundError(
            f"{coco.annotation_file} lists images that are not on disk (first: {first}); re-run the "
            f"'keypoint-corrupt materialize' command that wrote {root} (with --root or --annotations where "
            "the sources are now) to restore them, then 'keypoint-corrupt verify'"
        )


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _source_ids(coco: CocoKeypoints) -> list[str]:
    """Return the source sample id of every annotation (``source_id``), else the reader's own id."""
    return [str(coco.coco_index.annotation(s.meta["annotation_id"]).get("source_id") or s.id) for s in coco]


def open_source(
    dataset: Any,
    configs: Sequence[str] | None = CONFIGS,
    fraction: float = 0.2,
    seed: int = 0,
    *,
    split: str | None = None,
    standard: bool = True,
    whole_images: bool = False,
) -> StreamSource | MaterializedSource:
    """Build the source of :func:`~keypoint_corrupt.benchmark.evaluate` from what the user passed.

    ``dataset`` may be a sequence of samples (streamed), a
    :class:`~keypoint_corrupt.datasets.CorruptedDataset` (its base, configurations, fraction
    and seed are used), a materialised output folder, or an existing source. ``whole_images``
    applies to a stream (see :class:`StreamSource`); a materialised output was written one way
    or the other.
    """
    if isinstance(dataset, (StreamSource, MaterializedSource)):
        return dataset
    if isinstance(dataset, (str, os.PathLike)):
        # The default (the eleven) means "every configuration the output holds".
        wanted = None if configs is None or configs is CONFIGS else configs
        return MaterializedSource(dataset, split, wanted, standard)
    if isinstance(dataset, CorruptedDataset):
        return StreamSource(
            dataset.base, dataset.configs, dataset.fraction, dataset.seed, standard, whole_images
        )
    for name in configs or ():
        get_config(name)
    configs = CONFIGS if configs is None else configs
    return StreamSource(dataset, configs, fraction, seed, standard, whole_images)
