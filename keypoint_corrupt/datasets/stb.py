"""The Stereo Hand Pose Tracking Benchmark (STB, Zhang et al. 2016), read as laid out on disk.

Layout, cameras, joint order and splits follow ``stb-format.md``: 12 sequences
(``B1Counting`` ... ``B6Random``), per-sequence label files ``labels/<seq>_BB.mat`` (3D joints
in the Bumblebee2 left camera frame) and ``labels/<seq>_SK.mat`` (RealSense depth camera
frame), each holding ``handPara`` of shape (3, 21, frames) in millimetres.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import SupportsIndex, overload

import cv2
import numpy as np

from keypoint_corrupt._stb_layout import STB_SEQUENCES
from keypoint_corrupt.datasets.sample import Sample
from keypoint_corrupt.schema import KeypointSchema, get_schema

__all__ = [
    "BB_BASELINE_MM",
    "SK_DEPTH_TO_COLOR_ROTVEC",
    "SK_DEPTH_TO_COLOR_T_MM",
    "STB",
    "STB_CAMERAS",
    "STB_JOINT_NAMES",
    "STB_SEQUENCES",
    "STB_SPLITS",
    "STB_TO_RHD",
    "CameraIntrinsics",
    "depth_to_color",
    "load_stb_labels",
    "project_points",
    "stb_joint_names",
]


@dataclass(frozen=True)
class CameraIntrinsics:
    """Pinhole intrinsics: ``u = fx * x / z + cx``, ``v = fy * y / z + cy``."""

    fx: float
    fy: float
    cx: float
    cy: float


BB_INTRINSICS = CameraIntrinsics(822.79041, 822.79041, 318.47345, 250.31296)
SK_COLOR_INTRINSICS = CameraIntrinsics(607.92271, 607.88192, 314.78337, 236.42484)
#: Bumblebee2 stereo baseline: the right view sees ``x_right = x_left - 120.054``.
BB_BASELINE_MM = 120.054
#: Official colour->depth extrinsics; depth->colour is ``(depth_xyz - T) @ R``.
SK_DEPTH_TO_COLOR_ROTVEC = (0.00531, -0.01196, 0.00301)
SK_DEPTH_TO_COLOR_T_MM = (-24.0381, -0.4563, -1.2326)
IMAGE_SIZE = (640, 480)  # width, height

#: Camera name -> (label file suffix, intrinsics).
STB_CAMERAS: dict[str, tuple[str, CameraIntrinsics]] = {
    "BB_left": ("BB", BB_INTRINSICS),
    "BB_right": ("BB", BB_INTRINSICS),
    "SK_color": ("SK", SK_COLOR_INTRINSICS),
}

#: The reference split: S-train = B2..B6 (30,000 BB images), S-val = B1 (6,000).
STB_SPLITS: dict[str, tuple[str, ...]] = {
    "train": STB_SEQUENCES[2:],
    "val": STB_SEQUENCES[:2],
    "all": STB_SEQUENCES,
}

_FINGERS_STB = ("little", "ring", "middle", "index", "thumb")
#: STB's own joint order: palm centre, then mcp, pip, dip, tip of little, ring, middle, index, thumb.
STB_JOINT_NAMES: tuple[str, ...] = (
    "palm",
    *(f"{f}_{j}" for f in _FINGERS_STB for j in ("mcp", "pip", "dip", "tip")),
)
#: hand3d's reordering into the RHD order: ``rhd[i] = stb[STB_TO_RHD[i]]``.
STB_TO_RHD: tuple[int, ...] = (0, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1)
_RING_MCP = {"stb": 5, "rhd": 16}  # the joint pushed through the palm to make the wrist
#: (joint_order, root_joint) -> the keypoint schema of the samples (:mod:`keypoint_corrupt.schema`).
_SCHEMAS = {
    ("stb", "palm"): "stb",
    ("stb", "wrist"): "stb_wrist",
    ("rhd", "palm"): "stb_rhd",
    ("rhd", "wrist"): "rhd",
}


def stb_joint_names(joint_order: str = "rhd", root_joint: str = "palm") -> tuple[str, ...]:
    """Joint names in the given order, ``"wrist"`` replacing ``"palm"`` if asked.

    Examples
    --------
    >>> stb_joint_names("rhd")[:3]
    ('palm', 'thumb_tip', 'thumb_dip')
    """
    names = STB_JOINT_NAMES if joint_order == "stb" else tuple(STB_JOINT_NAMES[i] for i in STB_TO_RHD)
    return (root_joint, *names[1:])


def project_points(xyz: np.ndarray, intrinsics: CameraIntrinsics) -> np.ndarray:
    """Pinhole projection of (..., 3) camera-frame points (mm) to (..., 2) pixels."""
    xyz = np.asarray(xyz, dtype=np.float64)
    z = xyz[..., 2]
    u = intrinsics.fx * xyz[..., 0] / z + intrinsics.cx
    v = intrinsics.fy * xyz[..., 1] / z + intrinsics.cy
    return np.stack([u, v], axis=-1)


def depth_to_color(depth_xyz: np.ndarray) -> np.ndarray:
    """RealSense depth-camera coordinates to colour-camera coordinates: ``(xyz - T) @ R``."""
    rot, _ = cv2.Rodrigues(np.asarray(SK_DEPTH_TO_COLOR_ROTVEC, dtype=np.float64))
    color: np.ndarray = (np.asarray(depth_xyz, dtype=np.float64) - np.asarray(SK_DEPTH_TO_COLOR_T_MM)) @ rot
    return color


def load_stb_labels(path: str | os.PathLike[str]) -> np.ndarray:
    """Read one STB label file: ``handPara`` as a float64 (3, 21, frames) array in mm.

    Raises
    ------
    FileNotFoundError
        If the file is missing.
    ValueError
        If it is not a MATLAB file with a (3, 21, N) numeric ``handPara``; the message names
        the file.
    """
    from scipy.io import loadmat  # scipy.io is slow to import; only label reading needs it

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"STB label file not found: {path}")
    try:
        mat = loadmat(str(path), variable_names=["handPara"])
    except Exception as exc:  # scipy raises several unrelated types for a damaged file
        raise ValueError(f"cannot read STB label file {path}: {exc}") from exc
    if "handPara" not in mat:
        raise ValueError(f"STB label file {path} holds no 'handPara' array")
    try:
        para = np.asarray(mat["handPara"], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"STB label file {path}: handPara is not numeric") from exc
    if para.ndim == 2 and para.shape == (3, 21):  # MATLAB drops a trailing singleton frame axis
        para = para[:, :, None]
    if para.ndim != 3 or para.shape[:2] != (3, 21) or para.shape[2] == 0:
        raise ValueError(f"STB label file {path}: handPara must have shape (3, 21, frames), got {para.shape}")
    return para


@dataclass(frozen=True)
class _Block:
    sequence: str
    camera: str
    image_dir: Path
    uv: np.ndarray  # (frames, 21, 2), pixels, in the requested joint order
    xyz: np.ndarray  # (frames, 21, 3), mm, camera frame


def _choice(value: str, name: str, valid: Iterable[str]) -> str:
    valid = tuple(valid)
    if value not in valid:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, valid))}; got {value!r}")
    return value


class STB(Sequence[Sample]):
    """STB as a sequence of :class:`Sample`, one per (sequence, camera, frame).

    Label files are read once, when the dataset is built; images are not opened (or even
    listed) until a sample's image is loaded, so building the full 36,000-image index only
    reads 12 or 24 small ``.mat`` files.

    Parameters
    ----------
    root : path
        The dataset folder, holding ``labels/`` and either ``images/<seq>/`` or ``<seq>/``
        directly. Passing the ``images/`` folder itself also works when ``labels/`` sits
        next to it.
    split : {"train", "val", "all"}, default "train"
        ``train`` = B2..B6, ``val`` = B1 (the reference results' S-train / S-val).
    cameras : sequence of str, default ("BB_left", "BB_right")
        Any of ``BB_left``, ``BB_right`` (3D points from ``_BB.mat``) and ``SK_color``
        (from ``_SK.mat`` through the official depth-to-colour transform).
    joint_order : {"rhd", "stb"}, default "rhd"
        ``rhd``: hand3d's reordering (0 root, 1-4 thumb tip->mcp, ..., 17-20 little);
        ``stb``: the files' own order.
    root_joint : {"palm", "wrist"}, default "palm"
        ``wrist`` replaces joint 0 by hand3d's ``use_wrist_coord`` estimate
        ``ring_mcp + 2 * (palm - ring_mcp)``, computed separately in 3D (``meta["xyz"]``)
        and in 2D (``keypoints``), as hand3d does.

    Samples are ordered by sequence, then camera, then frame. Ids read
    ``"<sequence>/<camera>_<frame>"``; ``meta`` holds ``sequence``, ``camera``, ``frame``,
    ``xyz`` (21 x 3 camera-frame mm), ``joint_names``, ``width`` and ``height``. Every STB
    joint is visible.

    ``schema`` is the samples' :class:`~keypoint_corrupt.schema.KeypointSchema`: ``"stb_rhd"``
    (the default: RHD order, palm centre at 0), ``"rhd"`` (RHD order with the wrist),
    ``"stb"`` (file order) or ``"stb_wrist"``. Its names are MediaPipe's (``thumb_cmc`` is
    what STB calls ``thumb_mcp``, hand3d's mapping); ``joint_names`` keeps STB's own labels.

    Raises
    ------
    FileNotFoundError
        If ``root``, its ``labels/`` folder, a sequence folder or a label file is missing
        (the message names the path).
    ValueError
        For an unknown split, camera, joint order or root joint, or a malformed label file.

    Examples
    --------
    >>> from keypoint_corrupt.datasets import bundled_sample_root
    >>> val = STB(bundled_sample_root(), "val")
    >>> val[0].id, val[0].keypoints.shape, val.schema.name
    ('B1Counting/BB_left_0', (21, 2), 'stb_rhd')
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str = "train",
        cameras: Sequence[str] = ("BB_left", "BB_right"),
        joint_order: str = "rhd",
        root_joint: str = "palm",
    ) -> None:
        self.split = _choice(split, "split", STB_SPLITS)
        self.joint_order = _choice(joint_order, "joint_order", _RING_MCP)
        self.root_joint = _choice(root_joint, "root_joint", ("palm", "wrist"))
        if isinstance(cameras, str):
            cameras = (cameras,)
        cams = tuple(cameras)
        if not cams:
            raise ValueError("cameras must name at least one camera")
        for cam in cams:
            _choice(cam, "each camera", STB_CAMERAS)
        if len(set(cams)) != len(cams):
            raise ValueError(f"cameras must not repeat a camera, got {cams}")
        self.cameras = cams
        self.root, self.image_root, self.label_root = self._resolve_root(Path(root))
        self.joint_names = stb_joint_names(self.joint_order, self.root_joint)
        self.schema: KeypointSchema = get_schema(_SCHEMAS[self.joint_order, self.root_joint])

        self._blocks: list[_Block] = []
        for seq in STB_SPLITS[self.split]:
            image_dir = self.image_root / seq
            if not image_dir.is_dir():
                raise FileNotFoundError(f"STB sequence folder not found: {image_dir}")
            labels: dict[str, np.ndarray] = {}
            for cam in cams:
                kind, intrinsics = STB_CAMERAS[cam]
                if kind not in labels:  # one read per label file, shared by BB left and right
                    labels[kind] = load_stb_labels(self.label_root / f"{seq}_{kind}.mat")
                xyz = np.ascontiguousarray(labels[kind].transpose(2, 1, 0))  # (frames, 21, 3)
                if kind == "SK":
                    xyz = depth_to_color(xyz)
                elif cam == "BB_right":
                    xyz = xyz - np.array([BB_BASELINE_MM, 0.0, 0.0])
                self._blocks.append(_Block(seq, cam, image_dir, *self._keypoints(xyz, intrinsics)))
        self._starts: list[int] = np.cumsum([0] + [len(b.uv) for b in self._blocks]).tolist()

    @staticmethod
    def _resolve_root(root: Path) -> tuple[Path, Path, Path]:
        if not root.is_dir():
            raise FileNotFoundError(f"STB root folder not found: {root}")
        if (root / "labels").is_dir():
            images = root / "images"
            return root, images if images.is_dir() else root, root / "labels"
        if root.name == "images" and (root.parent / "labels").is_dir():
            return root.parent, root, root.parent / "labels"
        raise FileNotFoundError(f"not an STB root: no labels/ folder in {root}")

    def _keypoints(self, xyz: np.ndarray, intrinsics: CameraIntrinsics) -> tuple[np.ndarray, np.ndarray]:
        if self.joint_order == "rhd":
            xyz = xyz[:, STB_TO_RHD]
        uv = project_points(xyz, intrinsics)
        if self.root_joint == "wrist":
            # hand3d pushes the ring mcp through the palm centre, in 3D and 2D separately
            # (the 2D wrist is not the projection of the 3D one).
            ring = _RING_MCP[self.joint_order]
            xyz = xyz.copy()
            xyz[:, 0] = xyz[:, ring] + 2.0 * (xyz[:, 0] - xyz[:, ring])
            uv[:, 0] = uv[:, ring] + 2.0 * (uv[:, 0] - uv[:, ring])
        uv.setflags(write=False)
        xyz.setflags(write=False)
        return uv, xyz

    def __len__(self) -> int:
        return self._starts[-1]

    @overload
    def __getitem__(self, index: int) -> Sample: ...

    @overload
    def __getitem__(self, index: slice) -> list[Sample]: ...

    def __getitem__(self, index: int | slice) -> Sample | list[Sample]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        i = self._index(index)
        b = bisect.bisect_right(self._starts, i) - 1
        block, frame = self._blocks[b], i - self._starts[b]
        return Sample(
            id=f"{block.sequence}/{block.camera}_{frame}",
            image_path=block.image_dir / f"{block.camera}_{frame}.png",
            keypoints=block.uv[frame],
            visibility=np.ones(21, dtype=bool),
            meta={
                "dataset": "stb",
                "sequence": block.sequence,
                "camera": block.camera,
                "frame": frame,
                "xyz": block.xyz[frame],
                "joint_names": self.joint_names,
                "width": IMAGE_SIZE[0],
                "height": IMAGE_SIZE[1],
            },
        )

    def _index(self, index: object) -> int:
        if not isinstance(index, SupportsIndex):
            raise TypeError(f"STB indices must be integers or slices, got {type(index).__name__}")
        i = index.__index__()
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"STB index {index} out of range for {n} samples")
        return i

    @property
    def ids(self) -> list[str]:
        """Every sample id, in order, without building the samples."""
        return [f"{b.sequence}/{b.camera}_{f}" for b in self._blocks for f in range(len(b.uv))]

    @property
    def sequences(self) -> tuple[str, ...]:
        """The sequences of the split, in order."""
        return STB_SPLITS[self.split]

    def __repr__(self) -> str:
        return (
            f"STB(root={str(self.root)!r}, split={self.split!r}, cameras={self.cameras}, "
            f"joint_order={self.joint_order!r}, root_joint={self.root_joint!r}, samples={len(self)})"
        )
