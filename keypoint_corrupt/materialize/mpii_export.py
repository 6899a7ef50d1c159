"""MMPose's MPII JSON (``mpii.json``) for the corrupted subsets and the clean split of an MPII source.

Beside each ``annotations.json`` of an MPII source, ``mpii.json`` lists the same people in the
form that MPII users read (MMPose's ``MpiiDataset``, :class:`~keypoint_corrupt.datasets.mpii.MpiiPeople`,
``benchmark --protocol mpii``): a list of people, each the source's entry as it is (``joints``,
``joints_vis``, ``center``, ``scale`` and any other field), with ``image`` the output's file
relative to the subset's folder, ``joints`` moved where the corruption moved them (as in
``annotations.json``), and the extras ``source_id`` and ``source_image`` (the source person's
sample id and image name: what head boxes are matched on).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from keypoint_corrupt.materialize.plan import CLEAN_DIR, Plan

__all__ = ["MPII_FILE", "mpii_people", "mpii_person"]

#: File name of MMPose's MPII JSON beside each subset's ``annotations.json``.
MPII_FILE = "mpii.json"


def _finite(value: Any) -> Any:
    """Return a joint coordinate as JSON can hold it: a non-finite number (unlabelled joint) becomes 0."""
    if isinstance(value, float) and not math.isfinite(value):
        return 0.0
    return value


def mpii_person(
    record: Mapping[str, Any], image: str, source_id: str, source_image: str, moved: list[list[float]] | None
) -> dict[str, Any]:
    """One person of ``mpii.json``: the source's ``record`` with the output's ``image`` and the extras.

    ``moved`` replaces ``joints`` where the corruption moved them; a non-finite coordinate
    (which JSON cannot hold) is written 0.

    Examples
    --------
    >>> rec = {"image": "a.jpg", "joints": [[5.0, 6.0]], "joints_vis": [1], "center": [5, 6], "scale": 1.2}
    >>> mpii_person(rec, "images/a.png", "a.jpg#0", "a.jpg", [[5.5, 6.0]])  # doctest: +NORMALIZE_WHITESPACE
    {'image': 'images/a.png', 'joints': [[5.5, 6.0]], 'joints_vis': [1], 'center': [5, 6], 'scale': 1.2,
     'source_id': 'a.jpg#0', 'source_image': 'a.jpg'}
    """
    joints = record["joints"] if moved is None else moved
    return {
        **record,
        "image": image,
        "joints": [[_finite(v) for v in row] for row in joints],
        "source_id": source_id,
        "source_image": source_image,
    }


def mpii_people(
    plan: Plan, split: str, config: str, done: Mapping[str, Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Return ``mpii.json`` of one subset (``config``, or :data:`CLEAN_DIR`) of an MPII split.

    Every person of each output present in ``done`` (with a suite: every person of the image;
    without: the output's person; clean: every person of the copied images), in the source
    file's order, ``image`` relative to the subset's folder (``images/...``). The people are the
    same as those of the subset's ``annotations.json``, whichever files a partial run wrote.

    Examples
    --------
    >>> import json, pathlib, tempfile
    >>> from keypoint_corrupt.materialize.plan import DatasetSpec, build_plan
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> person = {"image": "a.jpg", "joints": [[8.0, 9.0]] * 16, "joints_vis": [1] * 16,
    ...           "center": [8.0, 9.0], "scale": 0.5}
    >>> _ = (d / "p.json").write_text(json.dumps([person]))
    >>> spec = DatasetSpec("mpii", annotations=(("val", d / "p.json"),))
    >>> plan = build_plan(spec, (), ("defocus-7",), 1.0, 0, "png")
    >>> done = {item.path: {} for item in plan.items}
    >>> [(p["image"], p["source_id"]) for p in mpii_people(plan, "val", "defocus-7", done)]
    [('images/a_0.png', 'a.jpg#0')]
    """
    records = plan.mpii_records[split]
    annotated = plan.annotations[split]
    prefix = f"{plan.config_dir(split, config)}/"
    people: list[tuple[int, dict[str, Any]]] = []
    on_copy: dict[int, list[int]] = {}  # clean copy index -> its people
    for a, copy in enumerate(plan.clean_of[split]):
        on_copy.setdefault(copy, []).append(a)
    for item in plan.by_subset[(split, config)]:
        entry = done.get(item.path)
        if entry is None:
            continue
        image = item.path[len(prefix) :]
        if config == CLEAN_DIR:  # every person of the image, as the source holds them
            members = on_copy.get(item.position - 1, [])
            parts: list[list[list[float]] | None] = [None] * len(members)
        else:
            members = list(plan.members[split][item.base_index])
            parts = _split_moved(entry.get("keypoints"), [annotated[a].num_joints for a in members])
        for a, part in zip(members, parts, strict=True):
            sample = annotated[a]
            record = records[int(sample.meta["annotation_id"])]
            people.append((a, mpii_person(record, image, sample.id, str(sample.meta["image_id"]), part)))
    people.sort(key=lambda pair: pair[0])
    return [person for _, person in people]


def _split_moved(moved: Any, counts: list[int]) -> list[list[list[float]] | None]:
    """Split an output's moved keypoints (all its people's, in order) back per person."""
    if moved is None:
        return [None] * len(counts)
    parts: list[list[list[float]] | None] = []
    start = 0
    for n in counts:
        parts.append([list(p) for p in moved[start : start + n]])
        start += n
    return parts
