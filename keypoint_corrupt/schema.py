"""Keypoint schemas: which joint sits at which index, by name.

A :class:`KeypointSchema` names a dataset's joints in order and carries what code needs to
know about them: the skeleton (for drawing and COCO ``skeleton`` fields), left/right pairs,
OKS sigmas where the dataset publishes them, and the joints whose mean centres a crop. Code
that indexes joints asks the schema (``schema.index("middle_finger_mcp")``) instead of
hard-coding positions, and :func:`remap` moves keypoints between orders by name.

Presets (:func:`available_schemas`):

* ``"rhd"`` - RHD / hand3d order: wrist, then each finger from tip to base.
* ``"hand21"`` - FreiHAND, OneHand10K, CMU Panoptic, COCO-WholeBody hands, MediaPipe: wrist,
  then each finger from base to tip.
* ``"stb"`` - STB's file order: palm centre, then little, ring, middle, index, thumb, base to tip.
* ``"stb_rhd"`` - STB reordered by hand3d into RHD's order, palm centre at index 0.
* ``"stb_wrist"`` - STB's file order with hand3d's wrist estimate in place of the palm (the
  reordered array with the wrist is ``"rhd"`` itself).
* ``"coco17"``, ``"mpii16"``, ``"ap10k"`` - COCO persons, MPII persons, AP-10K animals.

Hand joints use MediaPipe's names in every hand preset (``wrist``, ``thumb_cmc``,
``thumb_mcp``, ``thumb_ip``, ``thumb_tip``, ``index_finger_mcp`` ... ``pinky_tip``), so the
presets remap into each other. STB's root is its palm centre, named ``"palm"``: it is not the
wrist, and :func:`remap` refuses to pass it off as one. hand3d treats STB's palm as RHD's
joint 0; to do the same, rename it (``get_schema("stb_rhd").renamed({"palm": "wrist"})``
equals ``"rhd"`` in all but its name). STB labels its thumb ``mcp, pip, dip, tip`` from the
base; hand3d puts those where RHD has its thumb base ... tip, so they are named ``thumb_cmc``,
``thumb_mcp``, ``thumb_ip``, ``thumb_tip`` here.

NumPy only: every layer of the package may use this module.

Examples
--------
>>> import numpy as np
>>> from keypoint_corrupt.schema import get_schema, remap
>>> rhd = get_schema("rhd")
>>> rhd.joints[:3], rhd.index("middle_finger_mcp")
(('wrist', 'thumb_tip', 'thumb_ip'), 12)
>>> kp = np.arange(21 * 2, dtype=float).reshape(21, 2)  # RHD order
>>> remap(kp, "rhd", "hand21")[1].tolist()  # hand21's joint 1 (thumb_cmc) is RHD's joint 4
[8.0, 9.0]
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "KeypointSchema",
    "available_schemas",
    "canonical_joint_names",
    "get_schema",
    "match_schema",
    "register_schema",
    "remap",
    "schema_from_names",
]


@dataclass(frozen=True)
class KeypointSchema:
    """An ordered set of named joints, with skeleton, flip pairs, OKS sigmas and crop anchor.

    Parameters
    ----------
    name : str
        The schema's name (the key :func:`register_schema` files it under).
    joints : tuple of str
        Joint names in index order; unique.
    edges : tuple of (str, str)
        Skeleton, by joint name (drawing order).
    flip_pairs : tuple of (str, str)
        Joints that swap under a horizontal flip (left/right).
    sigmas : tuple of float, optional
        Per-joint OKS sigmas, where the dataset defines them.
    crop_anchor : tuple of str
        Joints whose mean (over the visible ones) centres a crop; empty: the centre of the
        visible joints' bounding box.

    Raises
    ------
    ValueError
        For duplicate joints, edges / pairs / anchors naming unknown joints, or sigmas of the
        wrong length.

    Examples
    --------
    A user-defined schema in a few lines:

    >>> fly = KeypointSchema(
    ...     "fly", ("head", "thorax", "abdomen"), edges=(("head", "thorax"), ("thorax", "abdomen")),
    ...     crop_anchor=("thorax",),
    ... )
    >>> len(fly), fly.index("abdomen"), fly.edge_indices()
    (3, 2, [(0, 1), (1, 2)])
    """

    name: str
    joints: tuple[str, ...]
    edges: tuple[tuple[str, str], ...] = ()
    flip_pairs: tuple[tuple[str, str], ...] = ()
    sigmas: tuple[float, ...] | None = None
    crop_anchor: tuple[str, ...] = ()
    _lookup: dict[str, int] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        joints = tuple(str(j) for j in self.joints)
        if isinstance(self.joints, str) or not joints:
            raise ValueError(f"schema {self.name!r}: joints must be a non-empty sequence of names")
        dupes = sorted({j for j in joints if joints.count(j) > 1})
        if dupes:
            raise ValueError(f"schema {self.name!r}: duplicate joint names {dupes}")
        lookup = {j: i for i, j in enumerate(joints)}
        edges = tuple((str(a), str(b)) for a, b in self.edges)
        flips = tuple((str(a), str(b)) for a, b in self.flip_pairs)
        anchor = (self.crop_anchor,) if isinstance(self.crop_anchor, str) else tuple(self.crop_anchor)
        unknown = [j for pair in (*edges, *flips) for j in pair if j not in lookup]
        unknown += [j for j in anchor if j not in lookup]
        if unknown:
            raise ValueError(
                f"schema {self.name!r}: unknown joints {sorted(set(unknown))}; it has {list(joints)}"
            )
        sigmas = None if self.sigmas is None else tuple(float(s) for s in self.sigmas)
        if sigmas is not None and len(sigmas) != len(joints):
            raise ValueError(f"schema {self.name!r}: {len(sigmas)} sigmas for {len(joints)} joints")
        object.__setattr__(self, "joints", joints)
        object.__setattr__(self, "edges", edges)
        object.__setattr__(self, "flip_pairs", flips)
        object.__setattr__(self, "sigmas", sigmas)
        object.__setattr__(self, "crop_anchor", anchor)
        object.__setattr__(self, "_lookup", lookup)

    def __len__(self) -> int:
        return len(self.joints)

    def index(self, joint: str) -> int:
        """Index of ``joint``; ``ValueError`` naming the joint and the schema if it has none."""
        try:
            return self._lookup[joint]
        except (KeyError, TypeError):
            raise ValueError(
                f"schema {self.name!r} has no joint {joint!r}; its joints: {', '.join(self.joints)}"
            ) from None

    def indices(self, joints: Iterable[str]) -> list[int]:
        """Return the indices of ``joints``, in the given order."""
        return [self.index(j) for j in joints]

    def edge_indices(self) -> list[tuple[int, int]]:
        """Return the skeleton as 0-based index pairs."""
        return [(self._lookup[a], self._lookup[b]) for a, b in self.edges]

    def flip_indices(self) -> list[tuple[int, int]]:
        """Return the flip pairs as 0-based index pairs."""
        return [(self._lookup[a], self._lookup[b]) for a, b in self.flip_pairs]

    def anchor_indices(self) -> list[int]:
        """Return the indices of the crop anchor joints."""
        return [self._lookup[j] for j in self.crop_anchor]

    def renamed(self, names: Mapping[str, str], name: str | None = None) -> KeypointSchema:
        """Return this schema with some joints renamed (``{"palm": "wrist"}``), under ``name``.

        Examples
        --------
        >>> get_schema("stb_rhd").renamed({"palm": "wrist"}).joints == get_schema("rhd").joints
        True
        """
        for old in names:
            self.index(old)

        def r(j: str) -> str:
            return names.get(j, j)

        return KeypointSchema(
            self.name if name is None else name,
            tuple(r(j) for j in self.joints),
            tuple((r(a), r(b)) for a, b in self.edges),
            tuple((r(a), r(b)) for a, b in self.flip_pairs),
            self.sigmas,
            tuple(r(j) for j in self.crop_anchor),
        )


_REGISTRY: dict[str, KeypointSchema] = {}


def register_schema(schema: KeypointSchema) -> KeypointSchema:
    """File ``schema`` under its name so :func:`get_schema` and :func:`match_schema` find it.

    Re-registering an equal schema is a no-op; another schema under a taken name is an error.

    Examples
    --------
    >>> s = register_schema(KeypointSchema("doc_pair", ("a", "b"), edges=(("a", "b"),)))
    >>> get_schema("doc_pair") is s
    True
    """
    if not isinstance(schema, KeypointSchema):
        raise TypeError(f"register_schema expects a KeypointSchema, got {type(schema).__name__}")
    known = _REGISTRY.get(schema.name)
    if known is not None and known != schema:
        raise ValueError(f"a different schema is already registered as {schema.name!r}")
    _REGISTRY[schema.name] = schema
    return schema


def get_schema(name: str | KeypointSchema) -> KeypointSchema:
    """Return the registered schema ``name`` (a :class:`KeypointSchema` is returned as is).

    Examples
    --------
    >>> len(get_schema("coco17")), get_schema("coco17").joints[0]
    (17, 'nose')
    """
    if isinstance(name, KeypointSchema):
        return name
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown keypoint schema {name!r}; known: {', '.join(_REGISTRY)}") from None


def available_schemas() -> tuple[str, ...]:
    """Return the names of the registered schemas, presets first.

    Examples
    --------
    >>> available_schemas()[:3]
    ('hand21', 'rhd', 'stb')
    """
    return tuple(_REGISTRY)


# --- name matching ---------------------------------------------------------------------------

_THUMB_PARTS = ("cmc", "mcp", "ip", "tip")
_FINGER_PARTS = ("mcp", "pip", "dip", "tip")
_FINGER_PREFIX = {
    "thumb": "thumb",
    "index": "index_finger",
    "forefinger": "index_finger",
    "index_finger": "index_finger",
    "middle": "middle_finger",
    "middle_finger": "middle_finger",
    "ring": "ring_finger",
    "ring_finger": "ring_finger",
    "little": "pinky",
    "little_finger": "pinky",
    "pinky": "pinky",
    "pinky_finger": "pinky",
}
_FINGER_RE = re.compile(
    r"^(thumb|index|forefinger|middle|ring|little|pinky)(?:_?finger)?_?([1-4]|cmc|mcp|ip|pip|dip|tip)$"
)
_SIDE_RE = re.compile(r"^([lr])_")
_WORDS = {"f_paw": "front_paw", "b_paw": "back_paw", "root_tail": "root_of_tail", "hand_root": "wrist"}


def _canonical(name: str) -> str:
    key = re.sub(r"[\s\-.]+", "_", str(name).strip().lower())
    key = re.sub(r"_+", "_", key).strip("_")
    key = _SIDE_RE.sub(lambda m: "left_" if m.group(1) == "l" else "right_", key)
    for short, long in _WORDS.items():
        key = key.replace(short, long)
    m = _FINGER_RE.match(key)
    if m:
        finger, part = m.groups()
        parts = _THUMB_PARTS if finger == "thumb" else _FINGER_PARTS
        part = parts[int(part) - 1] if part.isdigit() else part  # mmpose: thumb1 = base, thumb4 = tip
        key = f"{_FINGER_PREFIX[finger]}_{part}"
    return key


def canonical_joint_names(names: Sequence[str]) -> tuple[str, ...]:
    """Normalise joint names the way :func:`match_schema` compares them.

    Case, spaces, hyphens and repeated underscores are folded; ``L_``/``R_`` become
    ``left_``/``right_``; finger synonyms map to MediaPipe's names (``forefinger3`` ->
    ``index_finger_dip``, ``little_tip`` -> ``pinky_tip``; MMPose's ``thumb1..4`` run base to tip);
    a thumb labelled ``mcp, pip, dip, tip`` (STB) becomes ``cmc, mcp, ip, tip``.

    Examples
    --------
    >>> canonical_joint_names(["Wrist", "forefinger1", "L_F_Paw", "Root of tail"])
    ('wrist', 'index_finger_mcp', 'left_front_paw', 'root_of_tail')
    >>> canonical_joint_names(["thumb_mcp", "thumb_pip", "thumb_dip", "thumb_tip"])
    ('thumb_cmc', 'thumb_mcp', 'thumb_ip', 'thumb_tip')
    """
    keys = [_canonical(n) for n in names]
    if {"thumb_pip", "thumb_dip"} & set(keys) and not {"thumb_cmc", "thumb_ip"} & set(keys):
        stb_thumb = {"thumb_mcp": "thumb_cmc", "thumb_pip": "thumb_mcp", "thumb_dip": "thumb_ip"}
        keys = [stb_thumb.get(k, k) for k in keys]
    return tuple(keys)


def match_schema(names: Sequence[str]) -> KeypointSchema | None:
    """Return the registered schema whose joints are ``names`` in order (normalised), else None.

    Names are compared through :func:`canonical_joint_names`. Only the names are compared:
    a file whose names disagree with its points (the RHD fixture) needs its schema passed.

    Examples
    --------
    >>> match_schema(["wrist"] + [f"{f}{i}" for f in ("thumb", "forefinger", "middle_finger",
    ...     "ring_finger", "pinky_finger") for i in range(1, 5)]).name
    'hand21'
    >>> match_schema(["a", "b"]) is None
    True
    """
    keys = canonical_joint_names(names)
    for schema in _REGISTRY.values():
        if len(schema) == len(keys) and canonical_joint_names(schema.joints) == keys:
            return schema
    return None


def schema_from_names(
    names: Sequence[str] | None,
    skeleton: Iterable[Sequence[int]] | None = None,
    *,
    name: str = "custom",
    joints: int | None = None,
) -> KeypointSchema:
    """Build a generic schema from a file's own joint names and 1-based COCO skeleton.

    Missing names (``None``) become ``joint_0 ... joint_{J-1}`` (``joints`` gives J); repeated
    names get a ``_<index>`` suffix. Skeleton pairs outside the joints are dropped.

    Examples
    --------
    >>> s = schema_from_names(["head", "tail"], [[1, 2]], name="worm")
    >>> s.edges
    (('head', 'tail'),)
    """
    if names is None:
        listed = [f"joint_{i}" for i in range(joints or 0)]
    else:
        listed = [str(n) for n in names]
    seen = {n: listed.count(n) for n in listed}
    unique = tuple(n if seen[n] == 1 else f"{n}_{i}" for i, n in enumerate(listed))
    edges = []
    for pair in skeleton or ():
        if len(pair) == 2 and all(isinstance(k, (int, np.integer)) and 1 <= k <= len(unique) for k in pair):
            edges.append((unique[int(pair[0]) - 1], unique[int(pair[1]) - 1]))
    return KeypointSchema(name, unique, tuple(edges))


def remap(
    keypoints: np.ndarray,
    source: KeypointSchema | str,
    target: KeypointSchema | str,
    *,
    axis: int = -2,
) -> np.ndarray:
    """Reorder keypoints from ``source``'s joint order to ``target``'s, by joint name.

    Parameters
    ----------
    keypoints : numpy.ndarray
        ``(..., J_source, D)`` array (or any array whose ``axis`` runs over the joints, e.g.
        ``axis=-1`` for ``(..., J)`` visibility).
    source, target : KeypointSchema or str
        Schemas (or registered names).
    axis : int
        The joint axis; default -2.

    Returns
    -------
    numpy.ndarray
        ``(..., J_target, D)``: a new array.

    Raises
    ------
    ValueError
        If the joint axis does not have ``len(source)`` entries, or listing the target joints
        that ``source`` does not have.

    Examples
    --------
    >>> import numpy as np
    >>> kp = np.arange(21 * 2, dtype=float).reshape(21, 2)
    >>> back = remap(remap(kp, "rhd", "hand21"), "hand21", "rhd")
    >>> bool((back == kp).all())
    True
    >>> remap(np.zeros((21, 2)), "stb_rhd", "rhd")
    Traceback (most recent call last):
    ...
    ValueError: cannot remap from 'stb_rhd' to 'rhd': 'stb_rhd' has no joint(s) wrist
    """
    src, dst = get_schema(source), get_schema(target)
    arr = np.asarray(keypoints)
    if arr.ndim == 0 or arr.shape[axis] != len(src):
        raise ValueError(
            f"keypoints have shape {arr.shape}: expected {len(src)} joints of {src.name!r} on axis {axis}"
        )
    missing = [j for j in dst.joints if j not in src._lookup]
    if missing:
        raise ValueError(
            f"cannot remap from {src.name!r} to {dst.name!r}: "
            f"{src.name!r} has no joint(s) {', '.join(missing)}"
        )
    return np.take(arr, [src._lookup[j] for j in dst.joints], axis=axis)


# --- presets ---------------------------------------------------------------------------------

_FINGERS = ("thumb", "index_finger", "middle_finger", "ring_finger", "pinky")


def _finger(finger: str) -> tuple[str, ...]:
    """Return a finger's four joints, base to tip."""
    return tuple(f"{finger}_{p}" for p in (_THUMB_PARTS if finger == "thumb" else _FINGER_PARTS))


def _hand(name: str, root: str, fingers: Sequence[str], tip_first: bool) -> KeypointSchema:
    joints = [root]
    for f in fingers:
        chain = _finger(f)
        joints.extend(reversed(chain) if tip_first else chain)
    edges = []
    for f in _FINGERS:  # drawing order: thumb .. pinky, root to base, then along the finger
        prev = root
        for j in _finger(f):
            edges.append((prev, j))
            prev = j
    return KeypointSchema(name, tuple(joints), tuple(edges), crop_anchor=("middle_finger_mcp",))


def _pairs(pairs: str) -> tuple[tuple[str, str], ...]:
    return tuple((f"left_{p}", f"right_{p}") for p in pairs.split())


_COCO_JOINTS = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)
# COCO's published skeleton (1-based in the annotation files).
_COCO_SKELETON = (
    (16, 14), (14, 12), (17, 15), (15, 13), (12, 13), (6, 12), (7, 13), (6, 7), (6, 8), (7, 9),
    (8, 10), (9, 11), (2, 3), (1, 2), (1, 3), (2, 4), (3, 5), (4, 6), (5, 7),
)  # fmt: skip
# pycocotools' COCOeval keypoint sigmas.
_COCO_SIGMAS = (
    0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062,
    0.107, 0.107, 0.087, 0.087, 0.089, 0.089,
)  # fmt: skip

_MPII_JOINTS = (
    "right_ankle",
    "right_knee",
    "right_hip",
    "left_hip",
    "left_knee",
    "left_ankle",
    "pelvis",
    "thorax",
    "upper_neck",
    "head_top",
    "right_wrist",
    "right_elbow",
    "right_shoulder",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
)
_MPII_EDGES = (
    ("right_ankle", "right_knee"), ("right_knee", "right_hip"), ("right_hip", "pelvis"),
    ("left_ankle", "left_knee"), ("left_knee", "left_hip"), ("left_hip", "pelvis"),
    ("pelvis", "thorax"), ("thorax", "upper_neck"), ("upper_neck", "head_top"),
    ("thorax", "right_shoulder"), ("right_shoulder", "right_elbow"), ("right_elbow", "right_wrist"),
    ("thorax", "left_shoulder"), ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"),
)  # fmt: skip

_AP10K_JOINTS = (
    "left_eye",
    "right_eye",
    "nose",
    "neck",
    "root_of_tail",
    "left_shoulder",
    "left_elbow",
    "left_front_paw",
    "right_shoulder",
    "right_elbow",
    "right_front_paw",
    "left_hip",
    "left_knee",
    "left_back_paw",
    "right_hip",
    "right_knee",
    "right_back_paw",
)
# AP-10K's skeleton as its annotation files give it (1-based).
_AP10K_SKELETON = (
    (1, 2), (1, 3), (2, 3), (3, 4), (4, 5), (4, 6), (6, 7), (7, 8), (4, 9), (9, 10), (10, 11),
    (5, 12), (12, 13), (13, 14), (5, 15), (15, 16), (16, 17),
)  # fmt: skip
# The sigmas AP-10K's evaluation uses (MMPose's ap10k dataset info: COCO's, joint by joint in
# AP-10K's order, where each limb runs shoulder, elbow, paw; the paper publishes none).
_AP10K_SIGMAS = (
    0.025, 0.025, 0.026, 0.035, 0.035, 0.079, 0.072, 0.062, 0.079, 0.072, 0.062,
    0.107, 0.087, 0.089, 0.107, 0.087, 0.089,
)  # fmt: skip


def _by_name(joints: tuple[str, ...], skeleton: Iterable[tuple[int, int]]) -> tuple[tuple[str, str], ...]:
    return tuple((joints[a - 1], joints[b - 1]) for a, b in skeleton)


_STB_FINGERS = ("pinky", "ring_finger", "middle_finger", "index_finger", "thumb")
_RHD_FINGERS = ("thumb", "index_finger", "middle_finger", "ring_finger", "pinky")

for _preset in (
    _hand("hand21", "wrist", _RHD_FINGERS, tip_first=False),
    _hand("rhd", "wrist", _RHD_FINGERS, tip_first=True),
    _hand("stb", "palm", _STB_FINGERS, tip_first=False),
    _hand("stb_rhd", "palm", _RHD_FINGERS, tip_first=True),
    _hand("stb_wrist", "wrist", _STB_FINGERS, tip_first=False),
    KeypointSchema(
        "coco17",
        _COCO_JOINTS,
        _by_name(_COCO_JOINTS, _COCO_SKELETON),
        _pairs("eye ear shoulder elbow wrist hip knee ankle"),
        _COCO_SIGMAS,
    ),
    KeypointSchema(
        "mpii16",
        _MPII_JOINTS,
        _MPII_EDGES,
        _pairs("ankle knee hip wrist elbow shoulder"),
    ),
    KeypointSchema(
        "ap10k",
        _AP10K_JOINTS,
        _by_name(_AP10K_JOINTS, _AP10K_SKELETON),
        _pairs("eye shoulder elbow front_paw hip knee back_paw"),
        _AP10K_SIGMAS,
    ),
):
    register_schema(_preset)
del _preset
