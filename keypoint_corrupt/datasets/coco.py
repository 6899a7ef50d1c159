"""Keypoint sets in COCO format: RHD, FreiHAND, OneHand10K, Panoptic, COCO bodies, MMPose exports."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, overload

import numpy as np

from keypoint_corrupt.datasets.sample import Sample

__all__ = ["CocoKeypoints"]


class CocoKeypoints(Sequence[Sample]):
    """A COCO keypoint annotation file as a sequence of :class:`Sample`, one per annotation.

    Keypoints may be flat ``[x, y, v, x, y, v, ...]`` (COCO) or nested ``[[x, y, v], ...]``
    (some MMPose exports); ``v == 0`` means not labelled / invisible, any other value
    visible. Joint names come from the annotation's category (``categories[].keypoints``).

    Parameters
    ----------
    annotation_file : path
        The COCO JSON file.
    image_root : path, optional
        Folder that ``images[].file_name`` is relative to; default: the annotation file's folder.
    keypoint_field : str, default "keypoints"
        Annotation field holding the keypoints, e.g. ``"lefthand_kpts"`` for COCO-WholeBody hands.
    joint_names : sequence of str, optional
        Names to use instead of the category's (needed when ``keypoint_field`` holds another
        joint set than the category describes, as with COCO-WholeBody hands).

    Sample ids read ``"<file_name>#<annotation id>"``; ``meta`` holds ``image_id``,
    ``annotation_id``, ``category_id``, ``category``, ``joint_names``, ``width``, ``height``,
    ``bbox`` and the raw flags ``v``.

    Raises
    ------
    FileNotFoundError
        If the annotation file is missing.
    ValueError
        If the file is not JSON, lacks a required field, refers to unknown images or
        categories, repeats an annotation id, or has keypoint counts that disagree with the
        category; the message names the file (and the annotation).

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
    """

    def __init__(
        self,
        annotation_file: str | os.PathLike[str],
        image_root: str | os.PathLike[str] | None = None,
        *,
        keypoint_field: str = "keypoints",
        joint_names: Sequence[str] | None = None,
    ) -> None:
        path = Path(annotation_file)
        if not path.is_file():
            raise FileNotFoundError(f"COCO annotation file not found: {path}")
        if not isinstance(keypoint_field, str) or not keypoint_field:
            raise TypeError(f"keypoint_field must be a non-empty str, got {keypoint_field!r}")
        self.annotation_file = path
        self.image_root = Path(image_root) if image_root is not None else path.parent
        self.keypoint_field = keypoint_field
        try:
            coco = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: not a JSON file ({exc})") from None
        if not isinstance(coco, Mapping):
            raise ValueError(f"{path}: expected a JSON object at the top level, got {type(coco).__name__}")
        for key in ("images", "annotations", "categories"):
            if not isinstance(coco.get(key), list):
                raise ValueError(f"{path}: missing or non-list field {key!r}")

        override = None
        if joint_names is not None:
            if isinstance(joint_names, str) or not all(isinstance(n, str) for n in joint_names):
                raise TypeError(f"joint_names must be a sequence of str, got {joint_names!r}")
            override = tuple(joint_names)
        self._categories = self._read_categories(coco["categories"], override)
        images = self._read_images(coco["images"])
        self._samples: list[Sample] = []
        seen: set[Any] = set()
        for n, ann in enumerate(coco["annotations"]):
            sample = self._read_annotation(n, ann, images, seen)
            self._samples.append(sample)

    def _err(self, where: str, what: str) -> ValueError:
        return ValueError(f"{self.annotation_file}: {where}: {what}")

    def _read_categories(
        self, categories: list[Any], override: tuple[str, ...] | None
    ) -> dict[Any, tuple[str, tuple[str, ...] | None]]:
        out: dict[Any, tuple[str, tuple[str, ...] | None]] = {}
        for n, cat in enumerate(categories):
            if not isinstance(cat, Mapping) or "id" not in cat:
                raise self._err(f"categories[{n}]", "missing field 'id'")
            names = cat.get("keypoints")
            if override is not None:
                names = override
            elif names is not None:
                if not isinstance(names, list) or not all(isinstance(x, str) for x in names):
                    raise self._err(f"category {cat['id']!r}", "'keypoints' must be a list of joint names")
                names = tuple(names)
            out[cat["id"]] = (str(cat.get("name", cat["id"])), names)
        return out

    def _read_images(self, images: list[Any]) -> dict[Any, Mapping[str, Any]]:
        out: dict[Any, Mapping[str, Any]] = {}
        for n, im in enumerate(images):
            if not isinstance(im, Mapping):
                raise self._err(f"images[{n}]", "expected an object")
            for key in ("id", "file_name"):
                if key not in im:
                    raise self._err(f"images[{n}]", f"missing field {key!r}")
            if im["id"] in out:
                raise self._err(f"images[{n}]", f"repeats image id {im['id']!r}")
            out[im["id"]] = im
        return out

    def _read_annotation(
        self, n: int, ann: Any, images: Mapping[Any, Mapping[str, Any]], seen: set[Any]
    ) -> Sample:
        if not isinstance(ann, Mapping):
            raise self._err(f"annotations[{n}]", "expected an object")
        for key in ("id", "image_id", "category_id", self.keypoint_field):
            if key not in ann:
                raise self._err(f"annotations[{n}]", f"missing field {key!r}")
        where = f"annotation {ann['id']!r}"
        if ann["id"] in seen:
            raise self._err(where, "repeats an annotation id (sample ids would not be unique)")
        seen.add(ann["id"])
        if ann["image_id"] not in images:
            raise self._err(where, f"refers to unknown image_id {ann['image_id']!r}")
        if ann["category_id"] not in self._categories:
            raise self._err(where, f"refers to unknown category_id {ann['category_id']!r}")
        cat_name, names = self._categories[ann["category_id"]]
        if names is None:
            raise self._err(f"category {ann['category_id']!r}", "has no 'keypoints' joint names")
        kps = self._parse_keypoints(ann[self.keypoint_field], len(names), where)
        im = images[ann["image_id"]]
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
                "category": cat_name,
                "joint_names": names,
                "width": im.get("width"),
                "height": im.get("height"),
                "bbox": tuple(float(v) for v in bbox) if isinstance(bbox, list) else None,
                "v": flags,
            },
        )

    def _parse_keypoints(self, raw: Any, num_joints: int, where: str) -> np.ndarray:
        field = self.keypoint_field
        if not isinstance(raw, list):
            raise self._err(where, f"{field!r} must be a list, got {type(raw).__name__}")
        nested = bool(raw) and all(isinstance(row, list) for row in raw)
        try:
            arr = np.asarray(raw, dtype=np.float64)
        except (TypeError, ValueError):
            raise self._err(where, f"{field!r} must hold numbers only") from None
        if nested:
            if arr.ndim != 2 or arr.shape[1] != 3:
                raise self._err(where, f"nested {field!r} rows must be [x, y, v], got shape {arr.shape}")
        elif arr.ndim != 1 or arr.size % 3:
            raise self._err(where, f"flat {field!r} must hold x, y, v triples, got {arr.size} values")
        arr = arr.reshape(-1, 3)
        if arr.shape[0] != num_joints:
            raise self._err(
                where, f"has {arr.shape[0]} keypoints but its category defines {num_joints} joints"
            )
        if not np.isfinite(arr).all():
            raise self._err(where, f"{field!r} holds NaN or infinite values")
        return arr

    @property
    def joint_names(self) -> tuple[str, ...] | None:
        """The joint names, when every annotated category shares them (else ``None``)."""
        names = {s.meta["joint_names"] for s in self._samples}
        return names.pop() if len(names) == 1 else None

    @property
    def ids(self) -> list[str]:
        """Every sample id, in file order."""
        return [s.id for s in self._samples]

    def __len__(self) -> int:
        return len(self._samples)

    @overload
    def __getitem__(self, index: int) -> Sample: ...

    @overload
    def __getitem__(self, index: slice) -> list[Sample]: ...

    def __getitem__(self, index: int | slice) -> Sample | list[Sample]:
        return self._samples[index]

    def __repr__(self) -> str:
        return f"CocoKeypoints({str(self.annotation_file)!r}, samples={len(self)})"
