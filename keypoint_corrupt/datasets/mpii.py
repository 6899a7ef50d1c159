"""MPII people in MMPose's JSON form: one :class:`~keypoint_corrupt.datasets.Sample` per person.

MMPose's ``mpii_val.json`` / ``mpii_train.json`` is a list of people, each with ``image`` (the
file name), ``joints`` (16 x 2, MPII's joint order: ``mpii16``), ``joints_vis`` (16 flags),
``center`` (2) and ``scale`` (the person's height / 200 px). PCKh's head boxes are not in this
file (MPII's own ``.mat`` holds them: :func:`keypoint_corrupt.body_metrics.load_mpii_head_boxes`).

A file that ``keypoint-corrupt materialize`` writes (``mpii.json`` beside each subset's
``annotations.json``) adds to each person ``source_id`` and ``source_image``, the source
person's sample id and image name: they are kept as the sample's id and ``image_id``, so that
head boxes are matched on the source's image names and each image's corruption stream is the
source's.

Examples
--------
>>> import json, pathlib, tempfile
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> person = {"image": "a.jpg", "joints": [[float(j), 2.0 * j] for j in range(16)],
...           "joints_vis": [1] * 15 + [0], "center": [8.0, 16.0], "scale": 1.5}
>>> _ = (d / "mpii.json").write_text(json.dumps([person]))
>>> people = MpiiPeople(d / "mpii.json")
>>> len(people), people[0].id, int(people[0].visibility.sum()), people[0].meta["scale"]
(1, 'a.jpg#0', 15, 1.5)
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from keypoint_corrupt.datasets.sample import Sample, SampleList
from keypoint_corrupt.schema import KeypointSchema, get_schema

__all__ = ["MPII_DATASET", "MpiiPeople"]

#: ``Sample.meta["dataset"]`` of MPII people: their images are corrupted whole, keyed by file name.
MPII_DATASET = "mpii"


class MpiiPeople(SampleList):
    """The people of an MMPose MPII JSON file, in file order.

    Sample ``i`` has id ``"<image>#<i>"``, ``keypoints`` the 16 ``joints`` (``mpii16`` order,
    the file's pixels), ``visibility`` ``joints_vis`` and ``meta`` ``dataset`` (``"mpii"``),
    ``image_id`` (the file name), ``annotation_id`` (``i``), ``center`` and ``scale``. A person
    with ``source_id`` and ``source_image`` (a materialised ``mpii.json``) has those as its id and
    ``image_id`` instead; its image is still ``image`` under the image folder.
    ``schema`` is the ``mpii16`` :class:`~keypoint_corrupt.schema.KeypointSchema`; ``root`` (also
    ``image_root``, as :class:`~keypoint_corrupt.datasets.CocoKeypoints` names it) the image folder;
    ``records`` the file's people as it holds them (dicts, in file order).

    Parameters
    ----------
    annotation_file : path
        The JSON list.
    image_root : path, optional
        The image folder (default: the JSON's folder).
    """

    schema: KeypointSchema = get_schema("mpii16")

    def __init__(
        self, annotation_file: str | os.PathLike[str], image_root: str | os.PathLike[str] | None = None
    ) -> None:
        self.annotation_file = Path(annotation_file)
        if not self.annotation_file.is_file():
            raise FileNotFoundError(f"MPII annotation file not found: {self.annotation_file}")
        self.root = Path(image_root) if image_root is not None else self.annotation_file.parent
        self.image_root = self.root
        try:
            doc = json.loads(self.annotation_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise ValueError(f"{self.annotation_file}: not a JSON file ({exc})") from None
        if not isinstance(doc, list):
            beside = self.annotation_file.parent / "mpii.json"
            hint = f"; the MPII JSON of this folder is {beside}" if beside.is_file() else ""
            raise ValueError(
                f"{self.annotation_file}: expected MMPose's MPII JSON, a list of people "
                f"({{image, joints, joints_vis, center, scale}}){hint}"
            )
        n = len(self.schema)
        self.records: list[dict[str, Any]] = doc
        self._samples = [self._person(p, i, n) for i, p in enumerate(doc)]
        seen: dict[str, int] = {}
        for i, sample in enumerate(self._samples):
            if sample.id in seen:
                raise ValueError(
                    f"{self.annotation_file}: persons {seen[sample.id]} and {i} have the same id "
                    f"{sample.id!r}"
                )
            seen[sample.id] = i

    def _person(self, person: Any, i: int, n: int) -> Sample:
        where = f"{self.annotation_file}: person {i}"
        if not isinstance(person, dict):
            raise ValueError(f"{where} is not an object")
        missing = [k for k in ("image", "joints", "joints_vis", "center", "scale") if k not in person]
        if missing:
            raise ValueError(f"{where} has no {', '.join(missing)}")
        try:
            joints = np.asarray(person["joints"], np.float64).reshape(-1, 2)
            vis = np.asarray(person["joints_vis"], np.float64).ravel() > 0
            center = [float(v) for v in person["center"]]
            scale = float(person["scale"])
        except (TypeError, ValueError):
            raise ValueError(f"{where}: joints, joints_vis, center and scale must be numbers") from None
        if joints.shape != (n, 2) or vis.shape != (n,) or len(center) != 2:
            raise ValueError(
                f"{where}: expected {n} joints (mpii16), {n} joints_vis and a 2-number center, got "
                f"{joints.shape[0]}, {vis.shape[0]} and {len(center)}"
            )
        if not (np.isfinite(scale) and scale > 0 and np.all(np.isfinite(center))):
            raise ValueError(f"{where}: center must be finite and scale positive, got {center}, {scale}")
        image = str(person["image"])
        sample_id, source_image = f"{image}#{i}", image
        if "source_id" in person or "source_image" in person:  # a materialised file: the source's names
            named = (person.get("source_id"), person.get("source_image"))
            if not all(isinstance(v, str) and v for v in named):
                raise ValueError(f"{where}: source_id and source_image must both be non-empty strings")
            sample_id, source_image = str(named[0]), str(named[1])
        meta = {
            "dataset": MPII_DATASET,
            "image_id": source_image,
            "annotation_id": i,
            "center": tuple(center),
            "scale": scale,
        }
        return Sample(sample_id, self.root / image, joints, vis, meta)
