"""COCO keypoint annotation files for the corrupted subsets and the clean splits."""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from keypoint_corrupt._version import __version__
from keypoint_corrupt.datasets import Sample
from keypoint_corrupt.materialize.plan import CLEAN_DIR, Plan, config_params

__all__ = ["INFO_KEY", "annotation_entry", "clean_coco", "corrupted_coco", "keypoint_flags", "recorded_info"]


def keypoint_flags(sample: Sample) -> list[int | float]:
    """COCO ``v`` flags: a COCO source's own flags, else 2 (visible) / 0 (not labelled)."""
    raw = sample.meta.get("v")
    if raw is not None and len(raw) == sample.num_joints:
        return [int(v) if float(v).is_integer() else float(v) for v in raw]
    return [2 if v else 0 for v in sample.visibility.tolist()]


def _bbox(sample: Sample, flags: list[int | float], keypoints: np.ndarray) -> list[float]:
    src = sample.meta.get("bbox")
    if src is not None and len(src) == 4:
        return [float(v) for v in src]
    labelled = np.asarray([f > 0 for f in flags], dtype=bool)
    if not labelled.any():
        return [0.0, 0.0, 0.0, 0.0]
    pts = keypoints[labelled]
    x0, y0 = pts.min(axis=0).tolist()
    x1, y1 = pts.max(axis=0).tolist()
    return [x0, y0, x1 - x0, y1 - y0]


def annotation_entry(
    sample: Sample,
    ann_id: Any,
    image_id: Any,
    cache: dict[str, dict[str, Any]] | None = None,
    moved: list[list[float]] | None = None,
    source: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One COCO annotation of ``sample``, with id ``ann_id`` on image ``image_id``.

    ``source`` is the annotation as the COCO source file holds it (a COCO source): every field
    of it is kept as it is (``area``, ``iscrowd``, ``segmentation``, ``bbox``, ``num_keypoints``,
    ``category_id`` and any other), ``id`` and ``image_id`` become ``ann_id`` and ``image_id``
    (the source's own with a suite), and ``source_id`` names the sample. Without ``source``
    (STB, MPII) the entry is built: flat ``[x, y, v, ...]`` keypoints, ``bbox`` the source's
    when it has one, else the box of the labelled keypoints, ``area`` ``w * h`` and
    ``iscrowd`` 0.

    ``moved`` replaces the keypoints' ``x, y`` where the corruption moved the image content
    (reported by the corruption, see :func:`~keypoint_corrupt.materialize.writer.moved_keypoints`);
    the flags stay the source's (and a source's nested ``[[x, y, v], ...]`` stays nested).
    ``cache`` (sample id -> fields) saves recomputing the fields of a sample that several
    subsets share (not used with ``moved``).

    Examples
    --------
    >>> s = Sample("a.jpg#7", "a.jpg", [[5.0, 6.0]], [True], {"dataset": "coco"})
    >>> raw = {"id": 7, "image_id": 3, "category_id": 1, "keypoints": [5, 6, 2], "area": 40.5,
    ...        "iscrowd": 0, "segmentation": [[1, 1, 9, 1, 9, 9]], "bbox": [1, 1, 8, 8]}
    >>> e = annotation_entry(s, 7, 3, source=raw, moved=[[5.5, 6.0]])
    >>> e["keypoints"], e["area"], e["segmentation"], e["source_id"]
    ([5.5, 6.0, 2], 40.5, [[1, 1, 9, 1, 9, 9]], 'a.jpg#7')
    """
    if moved is not None:
        cache = None
    body = cache.get(sample.id) if cache is not None else None
    if body is None and source is not None:
        body = {**source, "keypoints": _source_keypoints(source, sample, moved), "source_id": sample.id}
        if cache is not None:
            cache[sample.id] = body
    if body is None:
        flags = keypoint_flags(sample)
        points = sample.keypoints if moved is None else np.asarray(moved, dtype=np.float64).reshape(-1, 2)
        flat: list[float | int] = []
        for (x, y), v in zip(points.tolist(), flags, strict=True):
            flat.extend((x, y, v))
        bbox = _bbox(sample, flags, points)
        is_coco = sample.meta.get("dataset") == "coco"
        body = {
            "category_id": sample.meta.get("category_id", 1) if is_coco else 1,
            "keypoints": flat,
            "num_keypoints": sum(1 for v in flags if v > 0),
            "bbox": bbox,
            "area": bbox[2] * bbox[3],
            "iscrowd": 0,
            "source_id": sample.id,
        }
        if sample.meta.get("dataset") == "mpii":  # MPII's person frame: its top-down crop can be rebuilt
            body.update(center=list(sample.meta["center"]), scale=sample.meta["scale"])
        if cache is not None:
            cache[sample.id] = body
    if source is not None:
        return {**body, "id": ann_id, "image_id": image_id}  # the source's field order, ids replaced
    return {"id": ann_id, "image_id": image_id, **body}


def _source_keypoints(source: Mapping[str, Any], sample: Sample, moved: list[list[float]] | None) -> Any:
    """Return a source annotation's ``keypoints`` as written: as they are, unless moved (or not finite).

    Moved keypoints keep the source's flags and its form (flat, or nested ``[x, y, v]`` rows);
    an unlabelled joint's NaN / infinite coordinates (which JSON cannot hold) are written ``0, 0``,
    as the reader reads them.
    """
    raw = source.get("keypoints")
    if not isinstance(raw, list):
        return raw
    nested = bool(raw) and all(isinstance(row, list) for row in raw)
    values = [v for row in raw for v in row] if nested else raw
    finite = all(not isinstance(v, float) or math.isfinite(v) for v in values)
    if moved is None and finite:
        return raw
    points = sample.keypoints if moved is None else np.asarray(moved, dtype=np.float64).reshape(-1, 2)
    flags = values[2::3]
    rows = [[float(x), float(y), v] for (x, y), v in zip(points.tolist(), flags, strict=True)]
    return rows if nested else [v for row in rows for v in row]


#: Key of ``info`` that holds this package's record in a COCO source's copy (the source's ``info`` kept).
INFO_KEY = "keypoint_corrupt"


def _info(plan: Plan, split: str, config: str) -> dict[str, Any]:
    info: dict[str, Any] = {
        "description": f"keypoint-corrupt: {config} of split {split}",
        "version": __version__,
        "split": split,
        "config": config,
        "seed": plan.seed,
        "fraction": plan.fraction,
    }
    if config != CLEAN_DIR:
        info["corruption"] = config_params([config], plan.suite)[0]
    if plan.suite is not None:
        info["suite"] = plan.suite.name
    return info


def recorded_info(document: Any) -> dict[str, Any] | None:
    """Return what this package recorded in a written file's ``info`` (``None`` if nothing).

    A COCO source's file keeps the source's ``info`` and holds ours under :data:`INFO_KEY`; an
    STB or MPII file's ``info`` is ours.

    Examples
    --------
    >>> recorded_info({"info": {"year": 2017, "keypoint_corrupt": {"seed": 0}}})
    {'seed': 0}
    >>> recorded_info({"info": {"seed": 1}}), recorded_info([])
    ({'seed': 1}, None)
    """
    info = document.get("info") if isinstance(document, dict) else None
    if not isinstance(info, dict):
        return None
    ours = info.get(INFO_KEY)
    return ours if isinstance(ours, dict) else info


def _document(
    plan: Plan, split: str, config: str, images: list[dict[str, Any]], annotations: list[dict[str, Any]]
) -> dict[str, Any]:
    """Return a COCO file's top level (the same for the clean split and every subset).

    A COCO source's ``info`` (ours under :data:`INFO_KEY`), ``licenses`` and ``categories`` are
    copied from it; STB's and MPII's are ours.
    """
    index = plan.coco_index.get(split)
    if index is None:
        info, licenses = _info(plan, split, config), []
    else:
        info = {**copy.deepcopy(index.info), INFO_KEY: _info(plan, split, config)}
        licenses = copy.deepcopy(index.licenses)
    return {
        "info": info,
        "licenses": licenses,
        "images": images,
        "annotations": annotations,
        "categories": plan.categories[split],
    }


def _source_image(plan: Plan, split: str, index: int) -> Mapping[str, Any] | None:
    """Return the COCO source's image entry of ``plan.samples[split][index]`` (``None``: not COCO)."""
    coco = plan.coco_index.get(split)
    if coco is None:
        return None
    return coco.image(plan.samples[split][index].meta["image_id"])  # an image's sample (suite) too


def _image_entry(
    source: Mapping[str, Any] | None, image_id: Any, file_name: str, entry: Mapping[str, Any]
) -> dict[str, Any]:
    """Return an image entry: the source's fields (COCO: ``license``, ``coco_url``...); the output's file."""
    image = dict(source) if source is not None else {}
    image.update(id=image_id, file_name=file_name, width=int(entry["width"]), height=int(entry["height"]))
    return image


def corrupted_coco(
    plan: Plan,
    split: str,
    config: str,
    done: Mapping[str, Mapping[str, Any]],
    cache: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """COCO file of one corrupted subset, listing the outputs present in ``done``.

    Without a suite, each output is one annotation: image and annotation ids are the output's
    1-based position in the subset. With a suite, each output is an image with all its
    annotations; a COCO source's images and annotations keep their own ids (those of its
    detections files), an STB or MPII source's ids are the clean split's (image: its clean
    copy's position; annotation: its position in the split); an image of the COCO file without
    annotation is listed with none. Either way the ids stay the same whichever files a partial
    run has written. A COCO source's image entries keep the source's fields (``license``,
    ``coco_url``, ``flickr_url``, ``date_captured``, ...) and its annotations every field of the
    source's (:func:`annotation_entry`). ``file_name`` is the output's, relative to the annotation
    file's folder (``images/...``), ``width`` / ``height`` the decoded image's. An image of several
    people corrupted by a keypoint-aware configuration (occlusion, PoseBench's mask) names the
    person it was placed on as ``target_annotation_id``.
    """
    images, annotations = [], []
    prefix = f"{plan.config_dir(split, config)}/"
    for item in plan.by_subset[(split, config)]:
        if item.path not in done:
            continue
        entry = done[item.path]
        source = _source_image(plan, split, item.base_index)
        image_id, anns = _image_annotations(plan, split, item.base_index, item.position, entry, cache)
        image = _image_entry(source, image_id, item.path[len(prefix) :], entry)
        image.update(source_id=item.sample_id, source_file=item.source_path, corruption=config)
        if "box" in entry:
            image["occluder_box"] = entry["box"]
        if "target_instance" in entry:  # the person a keypoint-aware corruption was placed on
            target = int(entry["target_instance"])  # among the image's samples (its members)
            image["target_annotation_id"] = (
                anns[target]["id"]
                if plan.suite is None
                else _annotation_id(plan, split, plan.members[split][item.base_index][target])
            )
        images.append(image)
        annotations.extend(anns)
    return _document(plan, split, config, images, annotations)


def _annotation_id(plan: Plan, split: str, a: int) -> Any:
    """Return the written id of ``plan.annotations[split][a]``: a COCO source's own, else ``a + 1``."""
    raw = _source_annotation(plan, split, a)
    return raw["id"] if raw is not None else a + 1


def _source_annotation(plan: Plan, split: str, a: int) -> Mapping[str, Any] | None:
    """Return the COCO source's own annotation of ``plan.annotations[split][a]`` (``None``: not COCO)."""
    coco = plan.coco_index.get(split)
    if coco is None:
        return None
    return coco.annotation(plan.annotations[split][a].meta["annotation_id"])


def _image_annotations(
    plan: Plan,
    split: str,
    index: int,
    position: int,
    entry: Mapping[str, Any],
    cache: dict[str, dict[str, Any]] | None,
) -> tuple[Any, list[dict[str, Any]]]:
    """Return the image id and the annotations of one corrupted output (``index`` in ``plan.samples``).

    Keypoints that the corruption moved (``entry["keypoints"]``, those of all the image's
    annotations in order) are split back per annotation.
    """
    members = plan.members[split][index]
    moved = entry.get("keypoints")
    annotated = plan.annotations[split]
    if plan.suite is None:
        raw = _source_annotation(plan, split, members[0])
        return position, [annotation_entry(annotated[members[0]], position, position, cache, moved, raw)]
    parts: list[list[list[float]] | None] = []
    start = 0
    for a in members:
        joints = annotated[a].num_joints
        parts.append(None if moved is None else moved[start : start + joints])
        start += joints
    source = _source_image(plan, split, index)
    coco = plan.coco_index.get(split)
    if source is None or coco is None:  # STB, MPII: the clean split's positions
        image_id = plan.copy_of[split][index] + 1
        pairs = zip(members, parts, strict=True)
        out = [annotation_entry(annotated[a], a + 1, image_id, cache, p) for a, p in pairs]
        return image_id, out
    # COCO: every annotation of the image, in file order (a crowd region without keypoints too)
    mine = {annotated[a].meta["annotation_id"]: (a, p) for a, p in zip(members, parts, strict=True)}
    out = []
    for raw in coco.annotations_of(source["id"]):
        if raw["id"] in mine:
            a, part = mine[raw["id"]]
            out.append(annotation_entry(annotated[a], raw["id"], raw["image_id"], cache, part, raw))
        else:
            out.append(dict(raw))
    return source["id"], out


def clean_coco(
    plan: Plan,
    split: str,
    done: Mapping[str, Mapping[str, Any]],
    cache: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """COCO file of a whole clean split, pointing at the clean copies inside the output.

    ``file_name`` is relative to the annotation file's folder (``images/...``: the copies of
    the source images under ``<split>/clean/images/``), so the output folder is self-contained:
    it stays usable when the dataset (or the package that bundles it) moves or goes away. Only
    copies present in ``done`` are listed, with their annotations (a source that could not be
    read is left out, as in the corrupted subsets); with a suite, a COCO file's images without
    annotation are listed too, with none. A COCO source's images and annotations keep their
    own ids and fields (with or without a suite: the file is the source's, its ``file_name``
    the copy's), so its detections files apply; an STB or MPII source's image ids are the copy's
    1-based position in the split and annotation ids the sample's. Either way they do not depend
    on which files a partial run wrote. ``width`` / ``height`` are the decoded image's. Joined
    with the corrupted subsets it gives S-train* (clean + corrupted copies).
    """
    copies = plan.by_subset[(split, CLEAN_DIR)]
    prefix = f"{plan.config_dir(split, CLEAN_DIR)}/"
    images: list[dict[str, Any]] = []
    image_ids: list[Any] = []
    for item in copies:
        source = _source_image(plan, split, item.base_index)
        image_ids.append(source["id"] if source is not None else item.position)
        entry = done.get(item.path)
        if entry is None:
            continue
        image = _image_entry(source, image_ids[-1], item.path[len(prefix) :], entry)
        image["source_file"] = item.source_path
        images.append(image)
    annotated = plan.annotations[split]
    coco = plan.coco_index.get(split)
    if coco is None:  # STB, MPII: the split's samples
        annotations = [
            annotation_entry(sample, i + 1, image_ids[plan.clean_of[split][i]], cache)
            for i, sample in enumerate(annotated)
            if copies[plan.clean_of[split][i]].path in done
        ]
        return _document(plan, split, CLEAN_DIR, images, annotations)
    # COCO: the file's annotations of the images listed, in file order (crowd regions too)
    listed = {im["id"] for im in images}
    sample_of = {s.meta["annotation_id"]: s for s in annotated}
    annotations = []
    for raw in coco.annotations:
        if raw["image_id"] not in listed:
            continue
        sample = sample_of.get(raw["id"])
        if sample is None:  # a crowd region without keypoints: as it is
            annotations.append(dict(raw))
        else:
            annotations.append(annotation_entry(sample, raw["id"], raw["image_id"], cache, None, raw))
    return _document(plan, split, CLEAN_DIR, images, annotations)
