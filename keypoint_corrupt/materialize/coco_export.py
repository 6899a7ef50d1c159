"""COCO keypoint annotation files for the corrupted subsets and the clean splits."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from keypoint_corrupt._version import __version__
from keypoint_corrupt.datasets import Sample
from keypoint_corrupt.materialize.plan import CLEAN_DIR, Plan, config_params

__all__ = ["annotation_entry", "clean_coco", "corrupted_coco", "keypoint_flags"]


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
    ann_id: int,
    image_id: int,
    cache: dict[str, dict[str, Any]] | None = None,
    moved: list[list[float]] | None = None,
) -> dict[str, Any]:
    """One COCO annotation: the source's keypoints, flat ``[x, y, v, ...]``.

    ``moved`` replaces the keypoints' ``x, y`` where the corruption moved the image content
    (reported by the corruption, see :func:`~keypoint_corrupt.materialize.writer.moved_keypoints`);
    the flags stay the source's. ``bbox`` is the source annotation's when it has one, else the
    box of the labelled keypoints; ``area`` is ``w * h``. ``cache`` (sample id -> fields) saves
    recomputing the fields of a sample that several subsets share (not used with ``moved``).
    """
    if moved is not None:
        cache = None
    body = cache.get(sample.id) if cache is not None else None
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
    return {"id": ann_id, "image_id": image_id, **body}


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


def _document(
    plan: Plan, split: str, config: str, images: list[dict[str, Any]], annotations: list[dict[str, Any]]
) -> dict[str, Any]:
    """Return a COCO file's top level (the same for the clean split and every subset)."""
    return {
        "info": _info(plan, split, config),
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": plan.categories[split],
    }


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
    annotations, and the ids are the clean split's (image: its clean copy's position;
    annotation: its position in the split), so a subset's file lists what the clean file
    lists for those images; an image of the COCO file without annotation is listed with none.
    Either way the ids stay the same whichever files a partial run has written. ``file_name``
    is relative to the annotation file's folder (``images/...``). An image of several people
    corrupted by a keypoint-aware configuration (occlusion, PoseBench's mask) names the person
    it was placed on as ``target_annotation_id``.
    """
    images, annotations = [], []
    prefix = f"{plan.config_dir(split, config)}/"
    for item in plan.by_subset[(split, config)]:
        if item.path not in done:
            continue
        entry = done[item.path]
        image_id, anns = _image_annotations(plan, split, item.base_index, item.position, entry, cache)
        image: dict[str, Any] = {
            "id": image_id,
            "file_name": item.path[len(prefix) :],
            "width": int(entry["width"]),
            "height": int(entry["height"]),
            "source_id": item.sample_id,
            "source_file": item.source_path,
            "corruption": config,
        }
        if "box" in entry:
            image["occluder_box"] = entry["box"]
        if "target_instance" in entry:  # the person a keypoint-aware corruption was placed on
            image["target_annotation_id"] = anns[int(entry["target_instance"])]["id"]
        images.append(image)
        annotations.extend(anns)
    return _document(plan, split, config, images, annotations)


def _image_annotations(
    plan: Plan,
    split: str,
    index: int,
    position: int,
    entry: Mapping[str, Any],
    cache: dict[str, dict[str, Any]] | None,
) -> tuple[int, list[dict[str, Any]]]:
    """Return the image id and the annotations of one corrupted output (``index`` in ``plan.samples``).

    Keypoints that the corruption moved (``entry["keypoints"]``, those of all the image's
    annotations in order) are split back per annotation.
    """
    members = plan.members[split][index]
    moved = entry.get("keypoints")
    annotated = plan.annotations[split]
    if plan.suite is None:
        return position, [annotation_entry(annotated[members[0]], position, position, cache, moved)]
    image_id = plan.copy_of[split][index] + 1  # an image without annotation has no members
    out, start = [], 0
    for a in members:
        joints = annotated[a].num_joints
        part = None if moved is None else moved[start : start + joints]
        out.append(annotation_entry(annotated[a], a + 1, image_id, cache, part))
        start += joints
    return image_id, out


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
    annotation are listed too, with none. Image ids are the copy's 1-based position in
    the split and annotation ids the sample's, so they do not depend on which files a partial run
    wrote. ``width`` / ``height`` are the decoded image's. Joined with the corrupted subsets it
    gives S-train* (clean + corrupted copies).
    """
    copies = plan.by_subset[(split, CLEAN_DIR)]
    prefix = f"{plan.config_dir(split, CLEAN_DIR)}/"
    images: list[dict[str, Any]] = []
    for item in copies:
        entry = done.get(item.path)
        if entry is None:
            continue
        images.append(
            {
                "id": item.position,
                "file_name": item.path[len(prefix) :],
                "width": int(entry["width"]),
                "height": int(entry["height"]),
                "source_file": item.source_path,
            }
        )
    annotations = []
    for i, sample in enumerate(plan.annotations[split]):
        item = copies[plan.clean_of[split][i]]
        if item.path in done:
            annotations.append(annotation_entry(sample, i + 1, item.position, cache))
    return _document(plan, split, CLEAN_DIR, images, annotations)
