"""The hands of a COCO-WholeBody file as a 21-joint hand dataset (``hand21``)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from keypoint_corrupt.datasets.coco_index import CocoIndex, JsonObject, load_coco_index, parse_keypoints
from keypoint_corrupt.datasets.sample import Sample, SampleList
from keypoint_corrupt.schema import (
    KeypointSchema,
    canonical_joint_names,
    get_schema,
    remap,
    schema_from_names,
)

__all__ = ["WHOLEBODY_HANDS", "WHOLEBODY_HAND_JOINTS", "WholeBodyHands"]

#: COCO-WholeBody's names of one hand's 21 points, in the file's order, without the ``left_`` /
#: ``right_`` prefix (as MMPose's ``coco_wholebody`` metadata names points 91-111 and 112-132):
#: the hand root (wrist), then each finger from its base (1) to its tip (4).
WHOLEBODY_HAND_JOINTS: tuple[str, ...] = (
    "hand_root",
    *(
        f"{finger}{i}"
        for finger in ("thumb", "forefinger", "middle_finger", "ring_finger", "pinky_finger")
        for i in range(1, 5)
    ),
)

#: The hands a COCO-WholeBody annotation carries.
WHOLEBODY_HANDS: tuple[str, ...] = ("left", "right")

# The file's hand order as a schema of canonical names; samples are remapped from it by name.
_SOURCE = schema_from_names(canonical_joint_names(WHOLEBODY_HAND_JOINTS), name="coco_wholebody_hand")


class WholeBodyHands(SampleList):
    """The hands of a COCO-WholeBody annotation file, one :class:`Sample` per labelled hand.

    Each person annotation carries ``lefthand_kpts`` / ``righthand_kpts`` (21 ``x, y, v``
    triples), ``lefthand_box`` / ``righthand_box`` (``x, y, w, h``) and ``lefthand_valid`` /
    ``righthand_valid``. A hand becomes a sample when its ``*_valid`` flag is true (a file
    without the flag counts every hand as valid) and at least one of its points is labelled
    (``v != 0``); other hands are skipped. Samples come in file order, and within a person in
    the order of ``hands``. The points are reordered by joint name from the file's order
    (:data:`WHOLEBODY_HAND_JOINTS`) into ``schema``'s, so that the hand benchmark and
    :class:`~keypoint_corrupt.datasets.CorruptedDataset` work on them unchanged.

    Parameters
    ----------
    annotation_file : path or CocoIndex
        The COCO-WholeBody JSON file (read through
        :func:`~keypoint_corrupt.datasets.coco_index.load_coco_index`), or its index.
    image_root : path, optional
        Folder that ``images[].file_name`` is relative to; default: the annotation file's folder.
    hands : sequence of {"left", "right"}, default ("left", "right")
        Which hands to read (the person's own left and right).
    schema : KeypointSchema or str, default "hand21"
        The samples' joint order; any schema whose joints are all hand joints of ``hand21``'s
        names (``"hand21"``, ``"rhd"``, ...).

    Sample ids read ``"<file_name>#<annotation id>:<hand>"``. ``meta`` holds ``dataset``
    (``"coco_wholebody"``), ``image_id``, ``annotation_id``, ``category_id``, ``hand``
    (``"left"`` / ``"right"``), ``joint_names`` (the schema's), ``width``, ``height``,
    ``bbox`` (the hand's box ``x, y, w, h``, ``None`` when the file has none),
    ``person_bbox`` and the raw flags ``v`` (in the schema's order).

    Raises
    ------
    FileNotFoundError
        If the annotation file is missing.
    ValueError
        If ``hands`` is empty, repeats a hand or names another; if ``schema`` has a joint the
        file's hands lack; if an annotation lacks a hand's keypoint field or its keypoints are
        not 21 ``x, y, v`` triples (the message names the file and the annotation); and for
        every problem :class:`~keypoint_corrupt.datasets.CocoIndex` finds in the file.

    Examples
    --------
    >>> import tempfile, json, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> hand = [10 + i for i in range(21) for _ in range(3)]
    >>> _ = (d / "wb.json").write_text(json.dumps({
    ...     "images": [{"id": 1, "file_name": "1.jpg"}],
    ...     "categories": [{"id": 1, "name": "person"}],
    ...     "annotations": [{"id": 7, "image_id": 1, "category_id": 1,
    ...         "lefthand_kpts": hand, "lefthand_valid": True, "lefthand_box": [9, 9, 22, 22],
    ...         "righthand_kpts": [0] * 63, "righthand_valid": False, "righthand_box": [0, 0, 0, 0]}]}))
    >>> hands = WholeBodyHands(d / "wb.json")
    >>> hands.ids, hands.schema.name, hands[0].keypoints[:2].tolist()
    (['1.jpg#7:left'], 'hand21', [[10.0, 10.0], [11.0, 11.0]])
    """

    def __init__(
        self,
        annotation_file: str | os.PathLike[str] | CocoIndex,
        image_root: str | os.PathLike[str] | None = None,
        *,
        hands: Sequence[str] = WHOLEBODY_HANDS,
        schema: KeypointSchema | str = "hand21",
    ) -> None:
        if isinstance(hands, str) or not hands or not all(h in WHOLEBODY_HANDS for h in hands):
            raise ValueError(f"hands must be a non-empty sequence of 'left' / 'right', got {hands!r}")
        if len(set(hands)) != len(hands):
            raise ValueError(f"hands repeats a hand: {hands!r}")
        self.hands = tuple(hands)
        self.schema: KeypointSchema = get_schema(schema)
        remap(np.zeros((len(_SOURCE), 2)), _SOURCE, self.schema)  # a schema the hands cannot fill: now
        if isinstance(annotation_file, CocoIndex):
            index = annotation_file
        else:
            index = load_coco_index(annotation_file)
        self.coco_index = index
        self.annotation_file = index.path
        self.image_root = Path(image_root) if image_root is not None else index.path.parent
        self._samples = [
            sample
            for ann in index.annotations
            for hand in self.hands
            if (sample := self._read_hand(ann, hand)) is not None
        ]

    def _read_hand(self, ann: JsonObject, hand: str) -> Sample | None:
        index = self.coco_index
        field = f"{hand}hand_kpts"
        where = f"annotation {ann['id']!r}"
        if field not in ann:
            raise index.error(where, f"missing field {field!r}")
        raw = ann[field]
        if isinstance(raw, list) and len(raw) not in (len(_SOURCE), 3 * len(_SOURCE)):
            raise index.error(
                where, f"{field!r} has {len(raw)} values: a hand is 21 x, y, v triples (63 numbers)"
            )
        kps = parse_keypoints(raw, len(_SOURCE), field=field, error=index.error, where=f"{where} {field}")
        if not ann.get(f"{hand}hand_valid", True) or not (kps[:, 2] != 0).any():
            return None
        kps = remap(kps, _SOURCE, self.schema)
        flags = kps[:, 2].copy()
        flags.setflags(write=False)
        im = index.image(ann["image_id"])
        return Sample(
            id=f"{im['file_name']}#{ann['id']}:{hand}",
            image_path=self.image_root / str(im["file_name"]),
            keypoints=kps[:, :2],
            visibility=kps[:, 2] != 0,
            meta={
                "dataset": "coco_wholebody",
                "image_id": ann["image_id"],
                "annotation_id": ann["id"],
                "category_id": ann["category_id"],
                "hand": hand,
                "joint_names": self.schema.joints,
                "width": im.get("width"),
                "height": im.get("height"),
                "bbox": _box(ann.get(f"{hand}hand_box")),
                "person_bbox": _box(ann.get("bbox")),
                "v": flags,
            },
        )

    @property
    def joint_names(self) -> tuple[str, ...]:
        """The samples' joint names (the schema's)."""
        return self.schema.joints

    def __repr__(self) -> str:
        return f"WholeBodyHands({str(self.annotation_file)!r}, hands={self.hands!r}, samples={len(self)})"


def _box(value: Any) -> tuple[float, ...] | None:
    """Return an ``x, y, w, h`` list as a tuple of floats; ``None`` for anything else."""
    if isinstance(value, list) and len(value) == 4:
        return tuple(float(v) for v in value)
    return None
