"""What a materialisation writes: the datasets, every output file and the work units.

Everything here is a pure function of the options and the source annotations, so every
process (shards, workers, a resumed run) computes the same plan.
"""

from __future__ import annotations

import copy
import hashlib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath, PurePosixPath
from typing import Any, NamedTuple

import numpy as np

from keypoint_corrupt.datasets import STB, STB_SPLITS, CocoKeypoints, CorruptedDataset, Sample
from keypoint_corrupt.datasets.coco_index import CocoIndex, load_coco_index
from keypoint_corrupt.datasets.mpii import MpiiPeople
from keypoint_corrupt.registry import get_config
from keypoint_corrupt.schema import KeypointSchema, get_schema, match_schema
from keypoint_corrupt.suites import Suite, get_suite

__all__ = [
    "CLEAN_DIR",
    "FORMATS",
    "DatasetSpec",
    "MaterializeError",
    "OutputItem",
    "Plan",
    "WorkUnit",
    "build_plan",
    "dataset_identity",
    "image_samples",
    "output_stem",
    "shard_units",
    "skeleton_from_names",
    "subset_dir",
]

#: Output image formats and their file extensions.
FORMATS: dict[str, str] = {"png": ".png", "jpg": ".jpg"}
#: Folder of a split's clean annotations (``O/<split>/clean/annotations.json``).
CLEAN_DIR = "clean"
_FINGERS = ("thumb", "index", "middle", "ring", "little")
_FINGER_PARTS = ("mcp", "pip", "dip", "tip")
_SAFE_CHARS = re.compile(r"[^\w.\-+=,@ ]")
_SPLIT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
#: Keys of :meth:`DatasetSpec.describe` that say where the data is, not what it is.
_LOCATION_KEYS = frozenset({"root", "annotations", "images", "bundled"})


class MaterializeError(Exception):
    """A user-facing problem (bad option, refused output folder, failed write): one line."""


@dataclass(frozen=True)
class DatasetSpec:
    """Where the source samples come from.

    Attributes
    ----------
    kind : {"stb", "coco", "mpii"}
        Reader to use (``"mpii"``: MMPose's MPII JSON, :class:`~keypoint_corrupt.datasets.mpii.MpiiPeople`).
    root : pathlib.Path, optional
        STB root (``labels/`` + ``images/``).
    annotations : tuple of (str, pathlib.Path)
        COCO and MPII: ``(split name, annotation file)`` pairs.
    images : pathlib.Path, optional
        COCO image root (default: each annotation file's folder).
    bundled : bool
        The root is the synthetic sample shipped in the package.
    """

    kind: str
    root: Path | None = None
    annotations: tuple[tuple[str, Path], ...] = ()
    images: Path | None = None
    bundled: bool = False

    def __post_init__(self) -> None:
        if self.kind not in ("stb", "coco", "mpii"):
            raise MaterializeError(f"unknown dataset kind {self.kind!r}; valid: stb, coco, mpii")
        if self.kind == "stb" and self.root is None:
            raise MaterializeError("an STB dataset needs a root folder")
        if self.kind != "stb" and not self.annotations:
            raise MaterializeError(f"a {self.kind.upper()} dataset needs at least one annotation file")

    def split_names(self) -> tuple[str, ...]:
        """Return the splits this dataset can provide."""
        if self.kind == "stb":
            return tuple(STB_SPLITS)
        return tuple(name for name, _ in self.annotations)

    def default_splits(self) -> tuple[str, ...]:
        """Return the splits written when none are named: STB train and val; COCO every file's."""
        if self.kind == "stb":
            return ("train", "val")
        return self.split_names()

    def describe(self) -> dict[str, Any]:
        """JSON description with absolute paths (recorded in the manifest).

        Only :func:`dataset_identity` of it is compared on resume: where the data lives may change.
        """
        if self.kind == "stb":
            return {"kind": "stb", "root": str(_absolute(self.root)), "bundled": self.bundled}
        return {
            "kind": self.kind,
            "annotations": {name: str(_absolute(path)) for name, path in self.annotations},
            "images": str(_absolute(self.images)) if self.images is not None else None,
        }

    def open(self, split: str) -> STB | CocoKeypoints | MpiiPeople:
        """Read one split's samples (``FileNotFoundError`` / ``ValueError`` name the problem)."""
        if self.kind == "stb":
            return STB(_absolute(self.root), split)
        path = dict(self.annotations)[split]
        images = _absolute(self.images) if self.images is not None else None
        if images is not None and not images.is_dir():
            raise FileNotFoundError(f"{self.kind.upper()} image folder (--images) not found: {images}")
        if self.kind == "mpii":
            return MpiiPeople(_absolute(path), images)
        return CocoKeypoints(_absolute(path), images)

    def missing_hint(self) -> str:
        """Say what to pass when the sources are not where this spec says (moved, deleted, reinstalled)."""
        if self.kind == "stb":
            if self.bundled:
                return (
                    "the bundled sample is missing from this installation: reinstall keypoint-corrupt, "
                    "or pass --dataset stb --root DIR with a copy of it"
                )
            return "pass --root DIR with the STB tree's current location"
        return "pass --annotations [SPLIT=]FILE (and --images DIR) with the files' current location"

    def categories(self, split: str, samples: Sequence[Sample]) -> list[dict[str, Any]]:
        """COCO categories for the split's annotation files (joint names and skeleton).

        A COCO file's are its own, all of them, as they are (a copy); MPII's and STB's are built
        from their joint names and schema.
        """
        if self.kind == "coco":
            # The file open() read: load_coco_index serves it from its cache.
            index = load_coco_index(_absolute(dict(self.annotations)[split]))
            return copy.deepcopy([dict(cat) for cat in index.categories])
        if self.kind == "mpii":  # one category: MPII's 16 joints (mpii16), its skeleton by name
            joints = list(MpiiPeople.schema.joints)
            person = {"id": 1, "name": "person", "supercategory": "person", "keypoints": joints}
            return [{**person, "skeleton": skeleton_from_names(joints, MpiiPeople.schema)}]
        names = list(samples[0].meta["joint_names"]) if len(samples) else []
        return [
            {
                "id": 1,
                "name": "hand",
                "supercategory": "hand",
                "keypoints": names,
                "skeleton": skeleton_from_names(names),
            }
        ]


def _absolute(path: Path | None) -> Path:
    assert path is not None
    return Path(os.path.abspath(Path(path).expanduser()))


def dataset_identity(described: Any) -> Any:
    """Return the part of a :meth:`DatasetSpec.describe` that says what the data is, not where it is.

    Resuming compares this (with the ``source_digest`` of the samples' content), so that an
    output stays resumable when the dataset or the package that bundles it moves.

    Examples
    --------
    >>> dataset_identity({"kind": "stb", "root": "/a", "bundled": True})
    {'kind': 'stb'}
    """
    if not isinstance(described, Mapping):
        return described
    return {k: v for k, v in described.items() if k not in _LOCATION_KEYS}


def skeleton_from_names(names: Sequence[str], schema: KeypointSchema | str | None = None) -> list[list[int]]:
    """COCO skeleton (1-based joint pairs) for joints named ``names``, from their keypoint schema.

    The schema is ``schema`` when given (it must have ``len(names)`` joints), else the preset
    that :func:`~keypoint_corrupt.schema.match_schema` finds for the names; its edges are the
    skeleton. Without either (or when it has no edges), a 21-joint hand named ``palm`` or ``wrist`` and
    ``<finger>_<mcp|pip|dip|tip>`` (thumb, index, middle, ring, little) in any order is still
    recognised; other names give ``[]``.

    Examples
    --------
    >>> from keypoint_corrupt.datasets import stb_joint_names
    >>> skeleton_from_names(stb_joint_names())[:2]
    [[1, 5], [5, 4]]
    >>> skeleton_from_names(["nose", "left_eye", "right_eye"] + ["x"] * 14)
    []
    """
    resolved = get_schema(schema) if schema is not None else match_schema(names)
    if resolved is not None and len(resolved) == len(names) and resolved.edges:
        return [[a + 1, b + 1] for a, b in resolved.edge_indices()]
    index = {name: i + 1 for i, name in enumerate(names)}
    root = index.get("palm", index.get("wrist"))
    if root is None:
        return []
    pairs: list[list[int]] = []
    for finger in _FINGERS:
        chain = [f"{finger}_{part}" for part in _FINGER_PARTS]
        if any(joint not in index for joint in chain):
            return []
        prev = root
        for j in (index[joint] for joint in chain):
            pairs.append([prev, j])
            prev = j
    return pairs


def output_stem(sample: Sample) -> str:
    """Relative output path of a sample's corrupted image, without extension.

    STB keeps the source's relative name (``B1Counting/BB_left_0``). A COCO sample is one
    annotation, so its name is the image's ``file_name`` without extension plus the
    annotation id (``00017620_17620``): two hands on one image give two files. Unsafe
    characters become ``_`` and ``..`` or absolute parts are dropped.

    Examples
    --------
    >>> output_stem(Sample("B1Counting/BB_left_0", "x.png", [[0.0, 0.0]], [True]))
    'B1Counting/BB_left_0'
    >>> output_stem(Sample("a/00017620.jpg#17620", "x.jpg", [[0.0, 0.0]], [True], {"dataset": "coco"}))
    'a/00017620_17620'
    """
    sid = sample.id
    if sample.meta.get("dataset") in ("coco", "mpii") and "#" in sid:
        file_name, ann = sid.rsplit("#", 1)
        stem = PurePosixPath(file_name.replace("\\", "/"))
        sid = f"{stem.with_suffix('') if stem.suffix else stem}_{ann}"
    parts = [p for p in sid.replace("\\", "/").split("/") if p not in ("", ".", "..")]
    parts = [_SAFE_CHARS.sub("_", p) for p in parts]
    if not parts:
        raise MaterializeError(f"cannot derive an output file name from sample id {sample.id!r}")
    return "/".join(parts)


class OutputItem(NamedTuple):
    """One output file of the plan: a corrupted image, or (config ``clean``) a source image's copy."""

    split: str
    #: A configuration name, or :data:`CLEAN_DIR` for the clean copy of a source image.
    config: str
    #: The sample (for a clean copy: the first sample of its image).
    base_index: int
    #: 1-based position within its (split, config): the COCO image id (and annotation id of a
    #: corrupted subset).
    position: int
    #: Path relative to the output folder, POSIX separators.
    path: str
    sample_id: str
    #: The source image, relative to the dataset's root where it is inside it (see
    #: :func:`source_names`), else absolute.
    source_path: str


def _sanitized(parts: Sequence[str]) -> list[str]:
    parts = [p for p in parts if p not in ("", ".", "..")]
    return [_SAFE_CHARS.sub("_", p) for p in parts]


def _inside(path: str, root: str | os.PathLike[str] | None) -> str | None:
    """Absolute normalised ``path`` relative to ``root`` (POSIX), or ``None`` when not inside it."""
    if root is None:
        return None
    prefix = os.path.join(os.path.abspath(root), "")
    if not path.startswith(prefix) or len(path) == len(prefix):
        return None
    return path[len(prefix) :].replace(os.sep, "/")


def source_names(base: Sequence[Sample], sample: Sample) -> tuple[str, str]:
    """Return a sample's recorded source path and its image's clean copy name (under ``clean/images/``).

    The source path is relative to the dataset's root (STB: ``images/B1Counting/BB_left_0.png``;
    COCO: the image folder, i.e. ``file_name``) when the image is inside it, else absolute. The
    clean copy keeps the image's path under the image folder, sanitised as
    :func:`output_stem` does (an image outside it keeps its absolute path's parts).

    Examples
    --------
    >>> from keypoint_corrupt.datasets import STB, bundled_sample_root
    >>> stb = STB(bundled_sample_root(), "val")
    >>> source_names(stb, stb[0])
    ('images/B1Counting/BB_left_0.png', 'B1Counting/BB_left_0.png')
    """
    path = os.path.abspath(sample.image_path)
    image_root = getattr(base, "image_root", None)
    source = _inside(path, getattr(base, "root", None) or image_root)
    under_images = _inside(path, image_root)
    if under_images is not None:
        parts = _sanitized(under_images.split("/"))
    else:
        parts = _sanitized(PurePath(path).parts[1:])
    if not parts:
        raise MaterializeError(f"cannot derive a file name for the clean copy of {path}")
    return source if source is not None else path, "/".join(parts)


class WorkUnit(NamedTuple):
    """One source image and every output that it feeds (decoded once)."""

    split: str
    base_index: int
    #: ``(config, relative output path)`` in configuration order, then ``(CLEAN_DIR, path)`` for
    #: the first sample of each source image: the clean copy (hard link, else copy).
    outputs: tuple[tuple[str, str], ...]


@dataclass
class Plan:
    """The full plan of one materialisation (all splits, all shards).

    Attributes
    ----------
    spec : DatasetSpec
        The source.
    splits : tuple of str
        Split names, in order.
    configs : tuple of str
        Configuration names, in order.
    fraction, seed : float, int
        Subset draw parameters.
    image_format : str
        ``"png"`` or ``"jpg"``.
    datasets : dict
        Split -> :class:`~keypoint_corrupt.datasets.CorruptedDataset` (mode ``"subset"``).
    samples : dict
        Split -> list of the split's :class:`Sample`.
    items : list of OutputItem
        Every output, ordered by split, then configuration (the clean copies last), then source.
    units : list of WorkUnit
        Every sample with at least one output (corrupted, or its image's clean copy), ordered
        by split then source.
    categories : dict
        Split -> COCO categories.
    source_digest : str
        SHA-256 over every split's sample ids, keypoints and visibility: the content of the
        annotations, not where they are.
    clean_of : dict
        Split -> for each annotation (each entry of ``annotations``), the index of its image's
        clean copy in ``by_subset[(split, CLEAN_DIR)]``.
    suite : Suite, optional
        The suite that ``configs`` come from: each subset is written to
        ``<split>/<corruption>/<severity>/`` and corrupts whole images (``samples`` holds one
        sample per image, with the keypoints of all its annotations, then, for a COCO file, one
        per image without annotation: every image of the file, as COCO's evaluation scores
        them). ``None``: each subset is ``<split>/<config>/`` and corrupts each annotation's
        sample.
    annotations : dict
        Split -> the dataset's own samples, one per annotation (the clean split's and the
        suite subsets' annotations); the same lists as ``samples`` without a suite.
    members : dict
        Split -> for each entry of ``samples``, the indices of its annotations in
        ``annotations`` (``(i,)`` without a suite; ``()`` for an image without annotation).
    copy_of : dict
        Split -> for each entry of ``samples``, the index of its image's clean copy in
        ``by_subset[(split, CLEAN_DIR)]`` (an STB or MPII suite subset's image id is that index + 1).
    coco_index : dict
        Split -> the parsed COCO file of a COCO source (its own images, annotations, licences and
        categories, which the written files keep); empty for STB and MPII.
    mpii_records : dict
        Split -> an MPII source's people as its file holds them (each subset's ``mpii.json`` keeps
        their fields); empty for STB and COCO.
    """

    spec: DatasetSpec
    splits: tuple[str, ...]
    configs: tuple[str, ...]
    fraction: float
    seed: int
    image_format: str
    datasets: dict[str, CorruptedDataset]
    samples: dict[str, list[Sample]]
    items: list[OutputItem]
    units: list[WorkUnit]
    categories: dict[str, list[dict[str, Any]]]
    source_digest: str
    clean_of: dict[str, list[int]] = field(default_factory=dict)
    suite: Suite | None = None
    annotations: dict[str, list[Sample]] = field(default_factory=dict)
    members: dict[str, list[tuple[int, ...]]] = field(default_factory=dict)
    copy_of: dict[str, list[int]] = field(default_factory=dict)
    coco_index: dict[str, CocoIndex] = field(default_factory=dict)
    mpii_records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    by_path: dict[str, OutputItem] = field(default_factory=dict)
    by_subset: dict[tuple[str, str], list[OutputItem]] = field(default_factory=dict)
    #: Configuration -> ``(corruption, severity)`` in :attr:`suite` (empty without a suite).
    places: dict[str, tuple[str, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.annotations:
            self.annotations = self.samples
        if not self.members:
            self.members = {split: [(i,) for i in range(len(s))] for split, s in self.samples.items()}
        self.places = {c: self.suite.locate(c) for c in self.configs} if self.suite is not None else {}
        self.by_path = {item.path: item for item in self.items}
        self.by_subset = {
            (split, config): [] for split in self.splits for config in (*self.configs, CLEAN_DIR)
        }
        for item in self.items:
            self.by_subset[(item.split, item.config)].append(item)

    @property
    def severities(self) -> tuple[int, ...]:
        """The suite severities written, ascending (empty without a suite)."""
        return tuple(sorted({severity for _, severity in self.places.values()}))

    def config_dir(self, split: str, config: str) -> str:
        """Relative folder of one (split, configuration), see :func:`subset_dir`."""
        return subset_dir(split, config, self.places.get(config))


def subset_dir(split: str, config: str, place: tuple[str, int] | None = None) -> str:
    """Relative folder of one subset: ``<split>/<config>``, or ``<split>/<corruption>/<severity>`` in a suite.

    ``place`` is the configuration's ``(corruption, severity)`` in the suite being written;
    the clean split is always ``<split>/clean``.

    Examples
    --------
    >>> subset_dir("val", "motion-30"), subset_dir("val", "motion-30", ("motion", 2))
    ('val/motion-30', 'val/motion/2')
    """
    if place is None:
        return f"{split}/{config}"
    return f"{split}/{place[0]}/{place[1]}"


def build_plan(
    spec: DatasetSpec,
    splits: Sequence[str],
    configs: Sequence[str],
    fraction: float,
    seed: int,
    image_format: str,
    suite: Suite | str | None = None,
) -> Plan:
    """Open the datasets and list every output and work unit.

    With ``suite`` (every configuration must belong to it), each subset goes to
    ``<split>/<corruption>/<severity>/`` and the unit of corruption is an image with all its
    annotations (:func:`image_samples`), as COCO-C is built: every image of a COCO file, those
    without annotation too (:meth:`~keypoint_corrupt.datasets.CocoKeypoints.unannotated_images`,
    after the annotated ones; with ``fraction`` below 1 drawn among all of them); without,
    ``<split>/<config>/`` and one corrupted file per annotation.

    Raises
    ------
    MaterializeError
        Unknown split, configuration or suite, bad fraction or seed, unreadable annotations,
        or two samples that would write the same file.
    """
    if image_format not in FORMATS:
        raise MaterializeError(f"unknown image format {image_format!r}; valid: {', '.join(FORMATS)}")
    splits = tuple(splits) or spec.default_splits()
    configs = tuple(configs)
    if len(set(splits)) != len(splits):
        raise MaterializeError(f"a split is repeated: {', '.join(splits)}")
    valid = spec.split_names()
    for split in splits:
        if split not in valid:
            raise MaterializeError(f"unknown split {split!r} for this dataset; valid: {', '.join(valid)}")
        if not _SPLIT_NAME.match(split) or split.endswith(".json"):
            raise MaterializeError(
                f"split name {split!r} names a folder: use letters, digits, '.', '_' and '-' only"
            )
    for name in configs:
        try:
            get_config(name)
        except ValueError as exc:
            raise MaterializeError(str(exc)) from None
    the_suite = _check_suite(suite, configs)
    places = {c: the_suite.locate(c) for c in configs} if the_suite is not None else {}
    ext = FORMATS[image_format]
    datasets: dict[str, CorruptedDataset] = {}
    samples: dict[str, list[Sample]] = {}
    annotations: dict[str, list[Sample]] = {}
    members: dict[str, list[tuple[int, ...]]] = {}
    categories: dict[str, list[dict[str, Any]]] = {}
    clean_of: dict[str, list[int]] = {}
    copy_of: dict[str, list[int]] = {}
    coco_index: dict[str, CocoIndex] = {}
    mpii_records: dict[str, list[dict[str, Any]]] = {}
    items: list[OutputItem] = []
    units: list[WorkUnit] = []
    digest = hashlib.sha256()
    for split in splits:
        base, annotations[split], categories[split] = _open_split(spec, split)
        coco_index.update(_coco_indexes(split, base))
        mpii_records.update(_mpii_records(split, base))
        _digest_samples(digest, split, annotations[split])
        if the_suite is not None:
            unannotated = _unannotated(base)
            _digest_images(digest, unannotated)
            split_samples, members[split] = _whole_images(annotations[split], unannotated)
        else:
            split_samples, members[split] = annotations[split], [(i,) for i in range(len(annotations[split]))]
        samples[split] = split_samples
        datasets[split] = ds = _subsets(split_samples, configs, fraction, seed)
        sources, clean_items, image_copy = _clean_copies(split, base, split_samples)
        copy_of[split] = image_copy
        clean_of[split] = [0] * len(annotations[split])
        for k, group in enumerate(members[split]):
            for a in group:
                clean_of[split][a] = image_copy[k]
        stems = _stems(split, split_samples, clean_items, ext, per_image=the_suite is not None)
        per_source: dict[int, list[tuple[str, str]]] = {}
        for config in configs:
            folder = subset_dir(split, config, places.get(config))
            for pos, i in enumerate(ds.selections[config], start=1):
                path = f"{folder}/images/{stems[i]}{ext}"
                items.append(OutputItem(split, config, i, pos, path, split_samples[i].id, sources[i]))
                per_source.setdefault(i, []).append((config, path))
        for item in clean_items:
            items.append(item)
            per_source.setdefault(item.base_index, []).append((CLEAN_DIR, item.path))
        units.extend(WorkUnit(split, i, tuple(out)) for i, out in sorted(per_source.items()))
    return Plan(
        spec=spec,
        splits=splits,
        configs=configs,
        fraction=datasets[splits[0]].fraction,
        seed=datasets[splits[0]].seed,
        image_format=image_format,
        datasets=datasets,
        samples=samples,
        items=items,
        units=units,
        categories=categories,
        source_digest=digest.hexdigest(),
        clean_of=clean_of,
        suite=the_suite,
        annotations=annotations,
        members=members,
        copy_of=copy_of,
        coco_index=coco_index,
        mpii_records=mpii_records,
    )


def _check_suite(suite: Suite | str | None, configs: Sequence[str]) -> Suite | None:
    """Return the suite object; each configuration must be in it, each corruption name a folder name."""
    if suite is None:
        return None
    try:
        found = get_suite(suite) if isinstance(suite, str) else suite
        for config in configs:
            found.locate(config)
    except ValueError as exc:
        raise MaterializeError(str(exc)) from None
    for corruption in found.corruptions:
        if corruption == CLEAN_DIR or not _SPLIT_NAME.match(corruption) or corruption.endswith(".json"):
            raise MaterializeError(
                f"suite {found.name!r}: corruption name {corruption!r} cannot name a folder beside "
                f"{CLEAN_DIR!r}: use letters, digits, '.', '_' and '-' only"
            )
    return found


def _open_split(
    spec: DatasetSpec, split: str
) -> tuple[STB | CocoKeypoints | MpiiPeople, list[Sample], list[dict[str, Any]]]:
    """Open one split: its reader, samples (one per annotation) and COCO categories.

    A missing source (the dataset moved, deleted, or the package that bundles it reinstalled)
    gives one line that names it and says what to pass instead.
    """
    try:
        base = spec.open(split)
        split_samples = [base[i] for i in range(len(base))]
        categories = spec.categories(split, split_samples)
    except FileNotFoundError as exc:
        raise MaterializeError(f"{exc}; {spec.missing_hint()}") from None
    except (OSError, ValueError, TypeError) as exc:
        raise MaterializeError(str(exc)) from None
    return base, split_samples, categories


def _coco_indexes(split: str, base: Sequence[Sample]) -> dict[str, CocoIndex]:
    """Return ``{split: the parsed file}`` for a COCO source (the files keep its fields); else empty."""
    return {split: base.coco_index} if isinstance(base, CocoKeypoints) else {}


def _mpii_records(split: str, base: Sequence[Sample]) -> dict[str, list[dict[str, Any]]]:
    """Return ``{split: the people as the file holds them}`` for an MPII source (``mpii.json`` keeps them)."""
    return {split: base.records} if isinstance(base, MpiiPeople) else {}


def _unannotated(base: Sequence[Sample]) -> list[Sample]:
    """Return a COCO split's images without annotation (a suite writes them too); none for STB, MPII."""
    if not isinstance(base, CocoKeypoints):
        return []
    try:
        return base.unannotated_images()
    except ValueError as exc:
        raise MaterializeError(str(exc)) from None


def _whole_images(
    annotations: Sequence[Sample], unannotated: Sequence[Sample]
) -> tuple[list[Sample], list[tuple[int, ...]]]:
    """Return a suite's units: each annotated image (:func:`image_samples`), then each one without.

    The samples are :func:`image_samples` of both lists, as the benchmark's stream builds them,
    so that an image is corrupted with the same sample there and here; an image without
    annotation has no members (``()``).
    """
    images, members = image_samples([*annotations, *unannotated])
    count = len(annotations)
    return images, [tuple(a for a in group if a < count) for group in members]


def _subsets(
    split_samples: list[Sample], configs: tuple[str, ...], fraction: float, seed: int
) -> CorruptedDataset:
    """Return the subset dataset that draws and renders every (sample, configuration) of a split."""
    try:
        return CorruptedDataset(split_samples, configs, fraction=fraction, seed=seed, mode="subset")
    except (ValueError, TypeError) as exc:
        raise MaterializeError(str(exc)) from None


def image_samples(samples: Sequence[Sample]) -> tuple[list[Sample], list[tuple[int, ...]]]:
    """Group annotation samples by image: one sample per image and the indices of its annotations.

    What a suite corrupts: a whole image, once, whatever number of people or hands it shows.
    An image's sample holds the keypoints and visibility of all its annotations, in order, and
    its id names the image (a COCO ``file_name``, the part of the sample id before ``#``), so
    its corruption's random stream is the image's: ``sample_rng(seed, image id, config)``, and
    ``meta["instance_joints"]`` the joint count of each annotation, so that a keypoint-aware
    corruption targets one person (:attr:`Sample.instances`), and ``meta["image_id"]`` the COCO
    image's id (its first sample's). A sample that is alone on its
    image and not COCO (STB) is used as it is.

    Examples
    --------
    >>> a = Sample("x.jpg#1", "x.jpg", [[1.0, 2.0]], [True], {"dataset": "coco"})
    >>> b = Sample("x.jpg#2", "x.jpg", [[3.0, 4.0]], [False], {"dataset": "coco"})
    >>> images, members = image_samples([a, b])
    >>> images[0].id, images[0].keypoints.tolist(), members
    ('x.jpg', [[1.0, 2.0], [3.0, 4.0]], [(0, 1)])
    """
    groups: dict[str, list[int]] = {}
    for i, s in enumerate(samples):
        groups.setdefault(str(s.image_path), []).append(i)
    images: list[Sample] = []
    for indices in groups.values():
        first = samples[indices[0]]
        coco = first.meta.get("dataset") in ("coco", "mpii")  # images named by file, people "#"
        if len(indices) == 1 and not coco:
            images.append(first)
            continue
        image_id = first.id.rsplit("#", 1)[0] if coco and "#" in first.id else first.id
        images.append(
            Sample(
                image_id,
                first.image_path,
                np.concatenate([samples[i].keypoints for i in indices]).reshape(-1, 2),
                np.concatenate([samples[i].visibility for i in indices]),
                {
                    "dataset": first.meta.get("dataset"),
                    "image_id": first.meta.get("image_id"),  # the id its file gives the image
                    "annotations": len(indices),
                    "instance_joints": tuple(samples[i].num_joints for i in indices),
                },
            )
        )
    return images, [tuple(indices) for indices in groups.values()]


def _stems(
    split: str, split_samples: Sequence[Sample], clean_items: Sequence[OutputItem], ext: str, per_image: bool
) -> list[str]:
    """Each sample's output name without extension; stop when two samples would write the same file.

    Per annotation: :func:`output_stem`. Per image (a suite): the image's clean copy name
    without its extension, so ``images/000000000785.jpg`` is corrupted to
    ``images/000000000785.png`` (or ``.jpg``).
    """
    if per_image:
        prefix = f"{split}/{CLEAN_DIR}/images/"
        names = [str(PurePosixPath(item.path[len(prefix) :]).with_suffix("")) for item in clean_items]
    else:
        names = [output_stem(s) for s in split_samples]
    stems: dict[str, str] = {}
    for s, stem in zip(split_samples, names, strict=True):
        if stem in stems:
            raise MaterializeError(
                f"samples {stems[stem]!r} and {s.id!r} of split {split!r} would both write "
                f"{stem}{ext}; their ids must differ after sanitising"
            )
        stems[stem] = s.id
    return names


def _clean_copies(
    split: str, base: Sequence[Sample], split_samples: Sequence[Sample]
) -> tuple[list[str], list[OutputItem], list[int]]:
    """Each sample's recorded source path, one clean-copy item per source image, each sample's copy.

    A clean copy is planned once per image (with its first sample: a COCO image with two hands
    is one file) under ``<split>/clean/images/``.
    """
    sources: list[str] = []
    clean_items: list[OutputItem] = []
    clean_of: list[int] = []
    by_image: dict[str, int] = {}
    names: dict[str, str] = {}
    for i, s in enumerate(split_samples):
        source, name = source_names(base, s)
        sources.append(source)
        key = str(s.image_path)
        if key not in by_image:
            path = f"{split}/{CLEAN_DIR}/images/{name}"
            if path in names:
                raise MaterializeError(
                    f"images {names[path]} and {key} of split {split!r} would both be copied to {path}; "
                    "their names must differ after sanitising"
                )
            names[path] = key
            by_image[key] = len(clean_items)
            clean_items.append(OutputItem(split, CLEAN_DIR, i, len(clean_items) + 1, path, s.id, source))
        clean_of.append(by_image[key])
    return sources, clean_items, clean_of


def _digest_samples(h: Any, split: str, samples: Sequence[Sample]) -> None:
    h.update(f"split\0{split}\0{len(samples)}\0".encode())
    for s in samples:
        h.update(s.id.encode("utf-8") + b"\0")
        h.update(np.ascontiguousarray(s.keypoints, dtype="<f8").tobytes())
        h.update(np.ascontiguousarray(s.visibility, dtype=bool).tobytes())


def _digest_images(h: Any, images: Sequence[Sample]) -> None:
    """Add the ids of a split's images without annotation (a suite writes them) to the source digest."""
    if images:
        h.update(f"images without annotation\0{len(images)}\0".encode())
        for s in images:
            h.update(s.id.encode("utf-8") + b"\0")


def shard_units(units: Sequence[WorkUnit], shard: tuple[int, int] | None) -> list[WorkUnit]:
    """Return the work units of shard ``(k, n)`` (1-based ``k``): every n-th unit, starting at ``k - 1``.

    Examples
    --------
    >>> shard_units(list(range(7)), (2, 3))
    [1, 4]
    """
    if shard is None:
        return list(units)
    k, n = shard
    return [u for i, u in enumerate(units) if i % n == k - 1]


def config_params(configs: Sequence[str], suite: Suite | None = None) -> list[dict[str, Any]]:
    """Describe configurations with their parameters (for the manifest and the settings check).

    With ``suite``, each record also holds the configuration's ``corruption`` and ``severity``
    in it (which name its folder).
    """
    out = []
    for name in configs:
        cfg = get_config(name)
        record: dict[str, Any] = {
            "name": name,
            "family": cfg.family,
            "transform": cfg.transform.__name__,
            "params": _jsonable(dict(cfg.params)),
            "rng_stream": cfg.rng_stream,
        }
        if suite is not None:
            record["corruption"], record["severity"] = suite.locate(name)
        out.append(record)
    return out


def recorded_subset_dir(split: str, record: Mapping[str, Any]) -> str | None:
    """Folder of one configuration record of a manifest (:func:`config_params`); ``None`` if unusable.

    Examples
    --------
    >>> recorded_subset_dir("val", {"name": "motion-30", "corruption": "motion", "severity": 2})
    'val/motion/2'
    """
    name = record.get("name")
    if not isinstance(name, str):
        return None
    corruption, severity = record.get("corruption"), record.get("severity")
    if isinstance(corruption, str) and isinstance(severity, int) and not isinstance(severity, bool):
        return subset_dir(split, name, (corruption, severity))
    return subset_dir(split, name)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)
