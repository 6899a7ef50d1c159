"""One parsed COCO keypoint file, shared by every reader of the package.

:class:`CocoIndex` reads and validates a COCO keypoint JSON once and indexes it with
``pycocotools.coco.COCO`` (images, annotations, annotations per image, categories), so that
the dataset reader, the materialiser, the benchmark and the CLI all see the same file the same
way, with the same error messages. :func:`load_coco_index` caches the parse of recently read
files: opening the same annotation file again (for its samples, then for its categories or
extra annotation fields) reads and hashes the bytes but parses nothing.

The index and everything it returns are shared: treat them as read-only.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools.coco import COCO

from keypoint_corrupt.schema import KeypointSchema, match_schema, schema_from_names

__all__ = ["CocoIndex", "JsonObject", "load_coco_index", "parse_keypoints"]

#: A JSON object of the file (an image, an annotation, a category).
JsonObject = Mapping[str, Any]

_TOP_LEVEL = ("images", "annotations", "categories")


class CocoIndex:
    """A validated COCO keypoint document and its ``pycocotools`` index.

    Parameters
    ----------
    document : object
        The parsed JSON (``json.loads`` of the file).
    path : path
        The file it came from (named in every error message).

    Checks that the top level is an object with ``images``, ``annotations`` and
    ``categories`` lists; that every category has an ``id``; that every image has an ``id``
    (not repeated) and a ``file_name``; and that every annotation has an ``id`` (not
    repeated), an ``image_id`` and a ``category_id`` that name a listed image and category.
    Keypoints are checked by :func:`parse_keypoints`, per reader (which field, how many
    joints).

    Raises
    ------
    ValueError
        The first problem found, naming the file and the entry.

    Examples
    --------
    >>> index = CocoIndex({
    ...     "images": [{"id": 1, "file_name": "1.jpg"}],
    ...     "categories": [{"id": 1, "name": "hand", "keypoints": ["wrist", "tip"], "skeleton": [[1, 2]]}],
    ...     "annotations": [{"id": 7, "image_id": 1, "category_id": 1, "keypoints": [5, 6, 2, 0, 0, 0]}]},
    ...     "a.json")
    >>> [a["id"] for a in index.annotations_of(1)], index.joint_names(1), index.skeleton(1)
    ([7], ('wrist', 'tip'), [[1, 2]])
    >>> index.coco.getAnnIds(imgIds=[1])  # the pycocotools index
    [7]
    """

    def __init__(self, document: Any, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not isinstance(document, dict):
            raise ValueError(
                f"{self.path}: expected a JSON object at the top level, got {type(document).__name__}"
            )
        for key in _TOP_LEVEL:
            if not isinstance(document.get(key), list):
                raise ValueError(f"{self.path}: missing or non-list field {key!r}")
        self.document: Mapping[str, Any] = document
        self._check_categories(document["categories"])
        images = self._check_images(document["images"])
        self._check_annotations(document["annotations"], images, document["categories"])
        self.coco = _pycocotools_index(document)

    def error(self, where: str, what: str) -> ValueError:
        """Build a ``ValueError`` naming the file and the entry: ``"<file>: <where>: <what>"``."""
        return ValueError(f"{self.path}: {where}: {what}")

    # -- validation ------------------------------------------------------------------------

    def _check_categories(self, categories: list[Any]) -> None:
        for n, cat in enumerate(categories):
            if not isinstance(cat, Mapping) or "id" not in cat:
                raise self.error(f"categories[{n}]", "missing field 'id'")
            self._check_id(cat["id"], f"categories[{n}]")

    def _check_images(self, images: list[Any]) -> set[Any]:
        seen: set[Any] = set()
        for n, im in enumerate(images):
            if not isinstance(im, Mapping):
                raise self.error(f"images[{n}]", "expected an object")
            for key in ("id", "file_name"):
                if key not in im:
                    raise self.error(f"images[{n}]", f"missing field {key!r}")
            self._check_id(im["id"], f"images[{n}]")
            if im["id"] in seen:
                raise self.error(f"images[{n}]", f"repeats image id {im['id']!r}")
            seen.add(im["id"])
        return seen

    def _check_annotations(self, annotations: list[Any], images: set[Any], categories: list[Any]) -> None:
        known_categories = {cat["id"] for cat in categories}
        seen: set[Any] = set()
        for n, ann in enumerate(annotations):
            if not isinstance(ann, Mapping):
                raise self.error(f"annotations[{n}]", "expected an object")
            for key in ("id", "image_id", "category_id"):
                if key not in ann:
                    raise self.error(f"annotations[{n}]", f"missing field {key!r}")
            self._check_id(ann["id"], f"annotations[{n}]")
            where = f"annotation {ann['id']!r}"
            if ann["id"] in seen:
                raise self.error(where, "repeats an annotation id (sample ids would not be unique)")
            seen.add(ann["id"])
            if _unhashable(ann["image_id"]) or ann["image_id"] not in images:
                raise self.error(where, f"refers to unknown image_id {ann['image_id']!r}")
            if _unhashable(ann["category_id"]) or ann["category_id"] not in known_categories:
                raise self.error(where, f"refers to unknown category_id {ann['category_id']!r}")

    def _check_id(self, value: Any, where: str) -> None:
        if _unhashable(value):
            raise self.error(where, f"'id' must be a number or a string, got {value!r}")

    # -- lookups ---------------------------------------------------------------------------

    @property
    def images(self) -> list[JsonObject]:
        """Every image, in file order."""
        images: list[JsonObject] = self.document["images"]
        return images

    @property
    def annotations(self) -> list[JsonObject]:
        """Every annotation, in file order."""
        annotations: list[JsonObject] = self.document["annotations"]
        return annotations

    @property
    def categories(self) -> list[JsonObject]:
        """Every category, in file order."""
        categories: list[JsonObject] = self.document["categories"]
        return categories

    @property
    def licenses(self) -> list[Any]:
        """The file's ``licenses`` (an image's ``license`` names one by id); empty when it has none.

        COCO's images are Flickr photos under the licence each names: a copy of the file
        (``materialize``) carries the list with the images.

        Examples
        --------
        >>> doc = {"images": [], "annotations": [], "categories": [], "info": {"year": 2017},
        ...        "licenses": [{"id": 4, "name": "Attribution License"}]}
        >>> index = CocoIndex(doc, "a.json")
        >>> [lic["id"] for lic in index.licenses], index.info
        ([4], {'year': 2017})
        """
        licenses = self.document.get("licenses")
        return list(licenses) if isinstance(licenses, list) else []

    @property
    def info(self) -> dict[str, Any]:
        """The file's ``info`` object (description, version, year, ...); empty when it has none.

        Examples
        --------
        >>> CocoIndex({"images": [], "annotations": [], "categories": []}, "a.json").info
        {}
        """
        info = self.document.get("info")
        return dict(info) if isinstance(info, Mapping) else {}

    def image(self, image_id: Any) -> JsonObject:
        """Return the image of an id (``KeyError`` if unknown)."""
        image: JsonObject = self.coco.imgs[image_id]
        return image

    def annotation(self, annotation_id: Any) -> JsonObject:
        """Return the annotation of an id (``KeyError`` if unknown)."""
        annotation: JsonObject = self.coco.anns[annotation_id]
        return annotation

    def category(self, category_id: Any) -> JsonObject:
        """Return the category of an id (``KeyError`` if unknown)."""
        category: JsonObject = self.coco.cats[category_id]
        return category

    def annotations_of(self, image_id: Any) -> list[JsonObject]:
        """Return the annotations of one image, in file order (empty if it has none)."""
        anns: list[JsonObject] = self.coco.imgToAnns.get(image_id, [])
        return list(anns)

    def joint_names(self, category_id: Any) -> tuple[str, ...] | None:
        """Return the category's ``keypoints`` (joint names), ``None`` when it has none.

        Raises
        ------
        ValueError
            If ``keypoints`` is not a list of strings.
        """
        names = self.category(category_id).get("keypoints")
        if names is None:
            return None
        if not isinstance(names, list) or not all(isinstance(x, str) for x in names):
            raise self.error(f"category {category_id!r}", "'keypoints' must be a list of joint names")
        return tuple(names)

    def skeleton(self, category_id: Any) -> list[list[int]] | None:
        """Return a copy of the category's ``skeleton`` (1-based joint pairs), or ``None``."""
        skeleton = self.category(category_id).get("skeleton")
        if not isinstance(skeleton, list):
            return None
        return [list(pair) if isinstance(pair, list) else pair for pair in skeleton]

    def schema(self, category_id: Any) -> KeypointSchema | None:
        """Return the category's keypoint schema, ``None`` when it names no joints.

        The preset whose joints match the category's names
        (:func:`~keypoint_corrupt.schema.match_schema`), else a generic schema named after the
        category from its own names and skeleton (:func:`~keypoint_corrupt.schema.schema_from_names`).
        """
        names = self.joint_names(category_id)
        if names is None:
            return None
        found = match_schema(names)
        if found is not None:
            return found
        cat = self.category(category_id)
        return schema_from_names(names, self.skeleton(category_id), name=str(cat.get("name", category_id)))

    def __repr__(self) -> str:
        return (
            f"CocoIndex({str(self.path)!r}, images={len(self.images)}, "
            f"annotations={len(self.annotations)}, categories={len(self.categories)})"
        )


def _unhashable(value: Any) -> bool:
    return isinstance(value, (list, dict))


def _pycocotools_index(document: dict[str, Any]) -> Any:
    """``pycocotools.coco.COCO`` over an already parsed document, without its progress prints."""
    coco = COCO()
    coco.dataset = document
    with contextlib.redirect_stdout(io.StringIO()):  # createIndex prints "creating index..."
        coco.createIndex()
    return coco


def parse_keypoints(
    raw: Any,
    num_joints: int,
    *,
    field: str = "keypoints",
    error: Callable[[str, str], Exception] | None = None,
    where: str = "",
) -> np.ndarray:
    """Read an annotation's keypoints as a float64 ``(J, 3)`` array of ``x, y, v``.

    Accepts flat ``[x, y, v, x, y, v, ...]`` (COCO) and nested ``[[x, y, v], ...]`` (some
    MMPose exports, e.g. RHD).

    Parameters
    ----------
    raw : object
        The annotation's keypoint field.
    num_joints : int
        Joints the category defines.
    field : str
        Name of the field (for messages).
    error : callable, optional
        ``error(where, what) -> Exception`` (e.g. :meth:`CocoIndex.error`); default a plain
        ``ValueError(f"{where}: {what}")``.
    where : str
        The entry, for messages (``"annotation 7"``).

    Raises
    ------
    ValueError
        Not a list, not numbers, not ``x, y, v`` triples, a joint count other than
        ``num_joints``, NaN / infinite coordinates of a labelled joint (``v != 0``), or a
        NaN / infinite ``v``. An unlabelled joint (``v == 0``) may have NaN or infinite
        coordinates: they are returned as ``0, 0``, how COCO writes an unlabelled joint.

    Examples
    --------
    >>> parse_keypoints([[1, 2, 2], [3, 4, 0]], 2).tolist()
    [[1.0, 2.0, 2.0], [3.0, 4.0, 0.0]]
    >>> parse_keypoints([1, 2, 2, 3, 4, 0], 2).tolist()
    [[1.0, 2.0, 2.0], [3.0, 4.0, 0.0]]
    >>> parse_keypoints([1, 2, 2, float("nan"), float("nan"), 0], 2).tolist()
    [[1.0, 2.0, 2.0], [0.0, 0.0, 0.0]]
    """
    fail = error if error is not None else _plain_error
    if not isinstance(raw, list):
        raise fail(where, f"{field!r} must be a list, got {type(raw).__name__}")
    nested = bool(raw) and all(isinstance(row, list) for row in raw)
    try:
        arr = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError):
        raise fail(where, f"{field!r} must hold numbers only") from None
    if nested:
        if arr.ndim != 2 or arr.shape[1] != 3:
            raise fail(where, f"nested {field!r} rows must be [x, y, v], got shape {arr.shape}")
    elif arr.ndim != 1 or arr.size % 3:
        raise fail(where, f"flat {field!r} must hold x, y, v triples, got {arr.size} values")
    arr = arr.reshape(-1, 3)
    if arr.shape[0] != num_joints:
        raise fail(where, f"has {arr.shape[0]} keypoints but its category defines {num_joints} joints")
    bad = ~np.isfinite(arr[:, :2]).all(axis=1)
    labelled = arr[:, 2] != 0
    if not np.isfinite(arr[:, 2]).all() or (bad & labelled).any():
        joints = ", ".join(str(j) for j in np.flatnonzero(bad & labelled | ~np.isfinite(arr[:, 2])))
        raise fail(
            where,
            f"{field!r} holds NaN or infinite values at labelled joint(s) {joints} "
            "(only an unlabelled joint, v = 0, may have NaN or infinite coordinates)",
        )
    arr[bad, :2] = 0.0  # an unlabelled joint's NaN / inf coordinates read as 0, 0 (COCO's convention)
    return arr


def _plain_error(where: str, what: str) -> ValueError:
    return ValueError(f"{where}: {what}" if where else what)


# -- the cache -------------------------------------------------------------------------------

_CACHE_SIZE = 2
_cache: OrderedDict[tuple[str, str, str], CocoIndex] = OrderedDict()
_cache_lock = threading.Lock()


def load_coco_index(path: str | os.PathLike[str]) -> CocoIndex:
    """Read, validate and index a COCO keypoint file; recently read files are not parsed again.

    The cache holds the last two files, keyed by the path (as given and absolute) and a
    BLAKE2b digest of the bytes, so a file rewritten in place is always parsed afresh.

    Raises
    ------
    FileNotFoundError
        If the file is missing.
    ValueError
        If it is not JSON, or not a valid COCO keypoint document (see :class:`CocoIndex`).
    """
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"COCO annotation file not found: {file}")
    data = file.read_bytes()
    key = (str(file), os.path.abspath(file), hashlib.blake2b(data, digest_size=32).hexdigest())
    with _cache_lock:
        index = _cache.get(key)
        if index is not None:
            _cache.move_to_end(key)
            return index
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{file}: not a JSON file ({exc})") from None
    index = CocoIndex(document, file)
    with _cache_lock:
        _cache[key] = index
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return index
