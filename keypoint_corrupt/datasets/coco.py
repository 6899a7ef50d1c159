"""Keypoint sets in COCO format: RHD, FreiHAND, OneHand10K, Panoptic, COCO bodies, MMPose exports."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from keypoint_corrupt.datasets.coco_index import CocoIndex, JsonObject, load_coco_index, parse_keypoints
from keypoint_corrupt.datasets.sample import Sample, SampleList
from keypoint_corrupt.schema import KeypointSchema, get_schema, match_schema, schema_from_names

__all__ = ["CocoKeypoints"]


class CocoKeypoints(SampleList):
    """A COCO keypoint annotation file as a sequence of :class:`Sample`, one per annotation.

    Keypoints may be flat ``[x, y, v, x, y, v, ...]`` (COCO) or nested ``[[x, y, v], ...]``
    (some MMPose exports); ``v == 0`` means not labelled / invisible, any other value
    visible. An invisible joint may have NaN or infinite coordinates (some exports write
    missing joints so); they read as ``0, 0``, as COCO writes an unlabelled joint. Joint names
    come from the annotation's category (``categories[].keypoints``).

    Parameters
    ----------
    annotation_file : path or CocoIndex
        The COCO JSON file, read through :func:`~keypoint_corrupt.datasets.coco_index.load_coco_index`
        (parsed once, cached), or an index already built from it.
    image_root : path, optional
        Folder that ``images[].file_name`` is relative to; default: the annotation file's folder.
    keypoint_field : str, default "keypoints"
        Annotation field holding the keypoints, e.g. ``"lefthand_kpts"`` for COCO-WholeBody hands.
    joint_names : sequence of str, optional
        Names to use instead of the category's (needed when ``keypoint_field`` holds another
        joint set than the category describes, as with COCO-WholeBody hands).
    schema : KeypointSchema or str, optional
        The joints' schema (:mod:`keypoint_corrupt.schema`), for every category. Default: per
        category, the preset whose joints match the names (:func:`~keypoint_corrupt.schema.match_schema`),
        else a generic schema named after the category, built from the file's own names and
        skeleton. Pass it when the names mislead (the RHD fixture names its joints base to tip,
        its points run tip to base: ``schema="rhd"``). With ``keypoint_field`` other than
        ``"keypoints"`` and no ``joint_names``, the schema's joints name the points.

    A crowd region without keypoints (``iscrowd`` 1 and no ``keypoint_field``) is no sample: it
    stays in :attr:`coco_index` for the evaluation (COCOeval ignores the detections inside it).
    Every other annotation is one (a crowd region with COCO's all-zero keypoints too).

    Sample ids read ``"<file_name>#<annotation id>"``; ``meta`` holds ``image_id``,
    ``annotation_id``, ``category_id``, ``category``, ``joint_names``, ``width``, ``height``,
    ``bbox`` and the raw flags ``v``. ``coco_index`` is the shared :class:`CocoIndex` of the file
    (its pycocotools ``COCO`` object is ``coco_index.coco``). ``schema`` is the samples' schema
    (``None`` when categories differ; :meth:`schema_of` gives one category's).

    Raises
    ------
    FileNotFoundError
        If the annotation file is missing.
    ValueError
        If the file is not JSON, lacks a required field, refers to unknown images or
        categories, repeats an annotation id, has keypoint counts that disagree with the
        category, or NaN / infinite coordinates of a visible joint (``v != 0``); the message
        names the file (and the annotation). If ``schema`` has another number of joints than
        the category names, or is unknown.

    Examples
    --------
    >>> import tempfile, json, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "a.json").write_text(json.dumps({
    ...     "images": [{"id": 1, "file_name": "1.jpg"}],
    ...     "categories": [{"id": 1, "name": "hand", "keypoints": ["wrist", "tip"]}],
    ...     "annotations": [{"id": 7, "image_id": 1, "category_id": 1, "keypoints": [5, 6, 2, 0, 0, 0]}]}))
    >>> s = CocoKeypoints(d / "a.json")[0]
    >>> s.id, s.keypoints.tolist(), s.visibility.tolist()
    ('1.jpg#7', [[5.0, 6.0], [0.0, 0.0]], [True, False])
    >>> CocoKeypoints(d / "a.json").schema.joints  # no preset has these names: the file's own
    ('wrist', 'tip')
    """

    def __init__(
        self,
        annotation_file: str | os.PathLike[str] | CocoIndex,
        image_root: str | os.PathLike[str] | None = None,
        *,
        keypoint_field: str = "keypoints",
        joint_names: Sequence[str] | None = None,
        schema: KeypointSchema | str | None = None,
    ) -> None:
        if not isinstance(keypoint_field, str) or not keypoint_field:
            raise TypeError(f"keypoint_field must be a non-empty str, got {keypoint_field!r}")
        override = None
        if joint_names is not None:
            if isinstance(joint_names, str) or not all(isinstance(n, str) for n in joint_names):
                raise TypeError(f"joint_names must be a sequence of str, got {joint_names!r}")
            override = tuple(joint_names)
        if isinstance(annotation_file, CocoIndex):
            index = annotation_file
        else:
            index = load_coco_index(annotation_file)
        self.coco_index = index
        self.annotation_file = index.path
        self.image_root = Path(image_root) if image_root is not None else index.path.parent
        self.keypoint_field = keypoint_field
        forced = None if schema is None else get_schema(schema)
        if forced is not None and override is None and keypoint_field != "keypoints":
            override = forced.joints
        self._names: dict[Any, tuple[str, ...] | None] = {
            cat["id"]: override if override is not None else index.joint_names(cat["id"])
            for cat in index.categories
        }
        if forced is not None:
            self._names = {k: forced.joints if v is None else v for k, v in self._names.items()}
        self._schemas = {cat["id"]: self._category_schema(cat, forced) for cat in index.categories}
        self._samples = [
            self._read_annotation(n, ann)
            for n, ann in enumerate(index.annotations)
            if not (ann.get("iscrowd") and self.keypoint_field not in ann)  # a crowd region only
        ]

    def _category_schema(self, cat: JsonObject, forced: KeypointSchema | None) -> KeypointSchema | None:
        names = self._names[cat["id"]]
        if names is None:
            return None
        if forced is not None:
            if len(forced) != len(names):
                raise self.coco_index.error(
                    f"category {cat['id']!r}",
                    f"has {len(names)} joints but schema {forced.name!r} has {len(forced)}: "
                    f"{', '.join(forced.joints)}",
                )
            return forced
        if names == self.coco_index.joint_names(cat["id"]):
            return self.coco_index.schema(cat["id"])
        return match_schema(names) or schema_from_names(names, name=str(cat.get("name", cat["id"])))

    def _read_annotation(self, n: int, ann: JsonObject) -> Sample:
        index = self.coco_index
        if self.keypoint_field not in ann:
            raise index.error(f"annotations[{n}]", f"missing field {self.keypoint_field!r}")
        where = f"annotation {ann['id']!r}"
        names = self._names[ann["category_id"]]
        if names is None:
            raise index.error(f"category {ann['category_id']!r}", "has no 'keypoints' joint names")
        kps = parse_keypoints(
            ann[self.keypoint_field], len(names), field=self.keypoint_field, error=index.error, where=where
        )
        im = index.image(ann["image_id"])
        cat = index.category(ann["category_id"])
        bbox = ann.get("bbox")
        flags = kps[:, 2].copy()
        flags.setflags(write=False)
        return Sample(
            id=f"{im['file_name']}#{ann['id']}",
            image_path=self.image_root / str(im["file_name"]),
            keypoints=kps[:, :2],
            visibility=kps[:, 2] != 0,
            meta={
                "dataset": "coco",
                "image_id": ann["image_id"],
                "annotation_id": ann["id"],
                "category_id": ann["category_id"],
                "category": str(cat.get("name", cat["id"])),
                "joint_names": names,
                "width": im.get("width"),
                "height": im.get("height"),
                "bbox": tuple(float(v) for v in bbox) if isinstance(bbox, list) else None,
                "v": flags,
            },
        )

    @property
    def joint_names(self) -> tuple[str, ...] | None:
        """The joint names, when every annotated category shares them (else ``None``)."""
        names = {s.meta["joint_names"] for s in self._samples}
        return names.pop() if len(names) == 1 else None

    @property
    def schema(self) -> KeypointSchema | None:
        """The samples' keypoint schema, when every annotated category shares one (else ``None``)."""
        used = {s.meta["category_id"] for s in self._samples} or set(self._schemas)
        found = {self._schemas[c] for c in used}
        return found.pop() if len(found) == 1 else None

    def unannotated_images(self) -> list[Sample]:
        """Return one sample without keypoints per image that holds no annotation, in file order.

        COCO's evaluation scores every image of the ground-truth file (``person_keypoints_val2017.json``
        lists all 5000 val2017 images, about 2,300 without a person), and COCO-C holds them all: what
        ``benchmark --protocol coco --detections`` crops and scores besides the annotated images, and
        what ``materialize --suite`` writes besides them. The sample's id is the image's ``file_name``
        (the id that :func:`~keypoint_corrupt.materialize.plan.image_samples` gives an annotated image,
        so its corruption's generator is ``sample_rng(seed, file name, configuration)`` as theirs); it
        has zero joints, and ``meta`` names the image (``image_id``, ``file_name``, ``width``,
        ``height``; ``annotation_id`` ``None``). An image counts as annotated when a sample names it
        (a person without a labelled keypoint, or a crowd region with COCO's all-zero keypoints,
        too); an image whose only annotations are crowd regions without keypoints is listed here.

        Raises
        ------
        ValueError
            Such an image names the same image file as another image of the file (the two would
            share one corruption); the message names the file and both image ids.

        Examples
        --------
        >>> import json, pathlib, tempfile
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "a.json").write_text(json.dumps({
        ...     "images": [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "b.jpg"}],
        ...     "categories": [{"id": 1, "name": "person", "keypoints": ["nose"]}],
        ...     "annotations": [{"id": 7, "image_id": 1, "category_id": 1, "keypoints": [5, 6, 2]}]}))
        >>> found = CocoKeypoints(d / "a.json").unannotated_images()
        >>> [(s.id, s.keypoints.shape, s.meta["image_id"]) for s in found]
        [('b.jpg', (0, 2), 2)]
        """
        index = self.coco_index
        paths: dict[str, list[Any]] = {}
        for im in index.images:
            paths.setdefault(str(self.image_root / str(im["file_name"])), []).append(im["id"])
        annotated = {s.meta["image_id"] for s in self._samples}
        out = []
        for im in index.images:
            if im["id"] in annotated:
                continue
            name = str(im["file_name"])
            path = self.image_root / name
            if len(paths[str(path)]) > 1:
                first, second = paths[str(path)][:2]
                raise index.error(f"images {first!r} and {second!r}", f"name one image file {name!r}")
            meta = {
                "dataset": "coco",
                "image_id": im["id"],
                "annotation_id": None,
                "file_name": name,
                "width": im.get("width"),
                "height": im.get("height"),
            }
            out.append(Sample(name, path, np.zeros((0, 2)), np.zeros(0, dtype=bool), meta))
        return out

    def schema_of(self, category_id: Any) -> KeypointSchema | None:
        """Return a category's keypoint schema (``None`` if it names no joints; ``KeyError`` if unknown)."""
        return self._schemas[category_id]

    def __repr__(self) -> str:
        return f"CocoKeypoints({str(self.annotation_file)!r}, samples={len(self)})"
