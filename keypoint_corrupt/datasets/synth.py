"""A synthetic STB: the exact on-disk layout, with a drawn left hand at the labelled joints.

The real STB cannot be redistributed, so tests, the CLI and the demo run on this stand-in.
Each frame poses an articulated left hand (palm centre plus five fingers of four joints,
STB joint order) in millimetres in the Bumblebee2 left camera frame, writes the joints to
``labels/<seq>_BB.mat`` and (through the inverse of the documented depth-to-colour
transform) ``labels/<seq>_SK.mat``, and renders the three colour views that the STB reader
opens (``BB_left``, ``BB_right``, ``SK_color``). Every projection uses the official intrinsics,
so the drawn hand sits exactly where the STB reader projects the labels.

Everything is a pure function of ``(seed, sequence, frame count)``: one sequence is
identical whether it is generated alone or with the others.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from keypoint_corrupt._paths import replacing, write_atomic
from keypoint_corrupt._validation import check_int
from keypoint_corrupt.datasets.stb import (
    BB_BASELINE_MM,
    BB_INTRINSICS,
    IMAGE_SIZE,
    SK_COLOR_INTRINSICS,
    SK_DEPTH_TO_COLOR_ROTVEC,
    SK_DEPTH_TO_COLOR_T_MM,
    STB_SEQUENCES,
    CameraIntrinsics,
    project_points,
)

__all__ = ["SynthFrame", "synth_sequence", "write_synthetic_stb"]

W, H = IMAGE_SIZE
_FINGERS = ("little", "ring", "middle", "index", "thumb")  # STB joint order
# Hand model, left hand, palm towards the camera (thumb on the image's left), in mm:
# x right, y down (fingers point to -y), z away from the camera.
_MCP = {
    "index": (-24.0, -38.0, 0.0),
    "middle": (-4.0, -42.0, 0.0),
    "ring": (15.0, -38.0, 0.0),
    "little": (32.0, -29.0, 0.0),
    "thumb": (-30.0, 6.0, -8.0),
}
_DIRECTION = {
    "index": (-0.12, -1.0, 0.0),
    "middle": (-0.02, -1.0, 0.0),
    "ring": (0.10, -1.0, 0.0),
    "little": (0.24, -1.0, 0.0),
    "thumb": (-0.78, -0.58, -0.22),
}
_BONES = {  # mcp->pip, pip->dip, dip->tip
    "index": (40.0, 24.0, 19.0),
    "middle": (45.0, 28.0, 21.0),
    "ring": (42.0, 27.0, 20.0),
    "little": (33.0, 20.0, 18.0),
    "thumb": (34.0, 29.0, 25.0),
}
_RADIUS = {
    "index": (9.0, 7.0),
    "middle": (9.5, 7.5),
    "ring": (9.0, 7.0),
    "little": (7.5, 6.0),
    "thumb": (11.0, 8.5),
}
_PALM_NORMAL = np.array([0.0, 0.0, -1.0])  # fingers curl towards the camera
_THUMB_CURL = np.array([0.6, -0.1, -0.8])
# Outline of the palm (mm), clockwise from the index knuckle, and the wrist/forearm axis.
_PALM_OUTLINE = (
    (-34.0, -40.0), (-4.0, -49.0), (17.0, -45.0), (34.0, -36.0), (41.0, -12.0),
    (37.0, 22.0), (24.0, 46.0), (-20.0, 46.0), (-38.0, 24.0), (-40.0, -12.0),
)  # fmt: skip
_FOREARM = ((0.0, 40.0), (0.0, 115.0), (0.0, 300.0))  # wrist, sleeve edge, far end
_SKIN_TONES = (
    (238, 199, 172), (226, 178, 146), (207, 152, 118), (184, 130, 98), (150, 102, 72), (112, 76, 56),
)  # fmt: skip
_SLEEVES = ((52, 64, 96), (120, 34, 40), (40, 40, 44), (70, 110, 70), (180, 180, 176), (96, 72, 120))
_CANVAS = (1100, 720)  # background canvas (w, h) that the views crop; see _background
_BG_DEPTH_MM = 1800.0
_COLOR_CAMERAS = ("BB_left", "BB_right", "SK_color")


@dataclass(frozen=True)
class SynthFrame:
    """One generated frame: joints in the BB-left and SK-depth frames, and render helpers (mm)."""

    bb: np.ndarray  # (21, 3) STB order, BB left camera frame
    sk: np.ndarray  # (21, 3) STB order, RealSense depth camera frame
    parts: tuple[tuple[str, np.ndarray], ...]  # extra 3D points for drawing, BB left frame


def _rng(seed: int, *key: object) -> np.random.Generator:
    h = hashlib.blake2b(digest_size=32, person=b"kc-synth-stb")
    for part in (seed, *key):
        data = str(part).encode()
        h.update(len(data).to_bytes(8, "little") + data)
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(int.from_bytes(h.digest(), "little"))))


def _unit(v: Iterable[float]) -> np.ndarray:
    a = np.asarray(tuple(v), dtype=np.float64)
    unit: np.ndarray = a / np.linalg.norm(a)
    return unit


def _rotation(roll: float, yaw: float, pitch: float) -> np.ndarray:
    rz, _ = cv2.Rodrigues(np.array([0.0, 0.0, roll]))
    ry, _ = cv2.Rodrigues(np.array([0.0, yaw, 0.0]))
    rx, _ = cv2.Rodrigues(np.array([pitch, 0.0, 0.0]))
    return rz @ ry @ rx


def _finger(name: str, flex: Sequence[float] | np.ndarray, spread: float, scale: float) -> np.ndarray:
    """(4, 3) mcp, pip, dip, tip of one finger in the hand frame."""
    d = _unit(_DIRECTION[name])
    curl = _THUMB_CURL if name == "thumb" else _PALM_NORMAL
    curl = _unit(curl - curl.dot(d) * d)
    side = np.cross(d, curl)
    d = np.cos(spread) * d + np.sin(spread) * side  # abduction, in the palm plane
    pts = [np.asarray(_MCP[name]) * scale]
    angle = 0.0
    for bone, a in zip(_BONES[name], flex, strict=True):
        angle += a
        pts.append(pts[-1] + scale * bone * (np.cos(angle) * d + np.sin(angle) * curl))
    return np.array(pts)


def _pose(rng: np.random.Generator, counting: bool, frame: int) -> dict[str, np.ndarray]:
    """Joint angles of one frame: counting gestures (fingers up or folded) or random articulation."""
    flex = {}
    if counting:
        up = {"index": 1, "middle": 2, "ring": 3, "little": 4, "thumb": 5}
        count = frame % 6
        for f in _FINGERS:
            if up[f] <= count:
                base = np.radians([4.0, 4.0, 2.0])
            else:
                base = np.radians([45.0, 60.0, 35.0] if f == "thumb" else [75.0, 95.0, 55.0])
            flex[f] = base + rng.normal(0.0, np.radians(5.0), 3)
    else:
        for f in _FINGERS:
            flex[f] = rng.uniform(0.0, np.radians(80.0), 3) * (0.7 if f == "thumb" else 1.0)
    return flex


def _hand_frame(rng: np.random.Generator, counting: bool, frame: int, scale: float) -> SynthFrame:
    flex = _pose(rng, counting, frame)
    local = np.zeros((21, 3))
    for k, f in enumerate(_FINGERS):
        spread = rng.normal(0.0, np.radians(4.0))
        local[1 + 4 * k : 5 + 4 * k] = _finger(f, flex[f], spread, scale)
    outline = np.array([(x, y, 0.0) for x, y in _PALM_OUTLINE]) * scale
    forearm = np.array([(x, y, 0.0) for x, y in _FOREARM]) * scale
    thenar = np.array([[-16.0, 24.0, -3.0]]) * scale
    limit = 1.0 if counting else 1.6
    for _ in range(200):  # rejection: every joint inside every view, with a margin
        rot = _rotation(*(rng.uniform(-1.0, 1.0, 3) * np.radians([30.0, 30.0, 20.0]) * limit))
        z = rng.uniform(480.0, 640.0)
        u, v = rng.uniform(340.0, 470.0), rng.uniform(200.0, 300.0)
        intr = BB_INTRINSICS
        t = np.array([(u - intr.cx) * z / intr.fx, (v - intr.cy) * z / intr.fy, z])
        bb = local @ rot.T + t
        if _in_view(bb):
            break
    else:  # pragma: no cover - the ranges above make this practically unreachable
        rot, t = np.eye(3), np.array([60.0, 0.0, 560.0])
        bb = local @ rot.T + t
    parts = (
        ("outline", outline @ rot.T + t),
        ("forearm", forearm @ rot.T + t),
        ("thenar", thenar @ rot.T + t),
    )
    return SynthFrame(bb=bb, sk=_color_to_depth(_bb_to_color(bb)), parts=parts)


def _bb_to_color(bb: np.ndarray) -> np.ndarray:
    # The RealSense sits beside the Bumblebee2; a plain offset keeps the hand in its view.
    color: np.ndarray = bb + np.array([-60.0, 20.0, 10.0])
    return color


def _depth_to_color_rot() -> np.ndarray:
    rot, _ = cv2.Rodrigues(np.asarray(SK_DEPTH_TO_COLOR_ROTVEC, dtype=np.float64))
    return rot


def _color_to_depth(color: np.ndarray) -> np.ndarray:
    # Inverse of the documented ``color = (depth - T) @ R``.
    depth: np.ndarray = color @ _depth_to_color_rot().T + np.asarray(SK_DEPTH_TO_COLOR_T_MM)
    return depth


def _in_view(bb: np.ndarray, margin: float = 12.0) -> bool:
    views = (
        project_points(bb, BB_INTRINSICS),
        project_points(bb - [BB_BASELINE_MM, 0.0, 0.0], BB_INTRINSICS),
        project_points(_bb_to_color(bb), SK_COLOR_INTRINSICS),
    )
    return all(
        (uv[:, 0] >= margin).all() and (uv[:, 0] < W - margin).all()
        and (uv[:, 1] >= margin).all() and (uv[:, 1] < H - margin).all()
        for uv in views
    )  # fmt: skip


def synth_sequence(sequence: str, frames: int, seed: int = 0) -> list[SynthFrame]:
    """Generate the hand poses of one sequence (``Counting``: number gestures; ``Random``: free).

    Examples
    --------
    >>> f = synth_sequence("B1Counting", 2)[0]
    >>> f.bb.shape, f.sk.shape
    ((21, 3), (21, 3))
    """
    _check_sequence(sequence)
    frames = check_int(frames, "frames")
    rng = _rng(seed, "pose", sequence)
    scale = rng.uniform(0.95, 1.05)
    counting = sequence.endswith("Counting")
    return [_hand_frame(rng, counting, i, scale) for i in range(frames)]


def _check_sequence(sequence: str) -> None:
    if sequence not in STB_SEQUENCES:
        raise ValueError(f"unknown STB sequence {sequence!r}; valid: {', '.join(STB_SEQUENCES)}")


# -- drawing -------------------------------------------------------------------------------

_SHIFT = 4  # sub-pixel bits for OpenCV drawing
_ONE = 1 << _SHIFT


def _fx(p: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(p) * _ONE).astype(np.int32)


def _background(seed: int, background: str) -> np.ndarray:
    """Paint a room-like RGB canvas: banded low-frequency colour field, furniture and patterned areas.

    Flat regions and hard-edged bands keep PNGs small (the bundled sample ships in the
    wheel), while the texture still gives blur and noise something to act on.
    """
    rng = _rng(seed, "background", background)
    cw, ch = _CANVAS
    # Muted, wall-like colours: a random hue pulled towards grey.
    base = rng.uniform(70, 190, 3)
    base = 0.55 * base + 0.45 * base.mean()
    palette = np.clip(base + rng.normal(0, 14, (6, 1)) + rng.normal(0, 8, (6, 3)), 20, 235)
    field = cv2.resize(rng.random((5, 7)), (cw, ch), interpolation=cv2.INTER_CUBIC)
    bands = np.clip((field - field.min()) * (6 / np.ptp(field)), 0, 5).astype(np.uint8)
    canvas: np.ndarray = palette.astype(np.uint8)[bands]
    for _ in range(int(rng.integers(4, 8))):  # furniture, posters, shelves
        x0, y0 = int(rng.integers(0, cw - 80)), int(rng.integers(0, ch - 80))
        w, h = int(rng.integers(60, 320)), int(rng.integers(40, 260))
        color = tuple(int(c) for c in 0.6 * rng.integers(20, 235, 3) + 0.4 * base)
        kind = rng.integers(0, 4)
        if kind == 0:
            cv2.rectangle(canvas, (x0, y0), (x0 + w, y0 + h), color, -1)
        elif kind == 1:
            cv2.circle(canvas, (x0, y0), int(h // 2), color, -1, cv2.LINE_AA)
        elif kind == 2:  # striped panel
            step = int(rng.integers(8, 24))
            other = tuple(int(c) for c in np.clip(np.array(color) + rng.integers(-60, 60, 3), 0, 255))
            for y in range(y0, y0 + h, step):
                cv2.rectangle(canvas, (x0, y), (x0 + w, y + step // 2), color if y // step % 2 else other, -1)
        else:  # checkerboard tiles
            step = int(rng.integers(12, 30))
            other = tuple(int(c) for c in np.clip(np.array(color) + rng.integers(-70, 70, 3), 0, 255))
            for j, y in enumerate(range(y0, y0 + h, step)):
                for i, x in enumerate(range(x0, x0 + w, step)):
                    cv2.rectangle(
                        canvas, (x, y), (x + step - 1, y + step - 1), color if (i + j) % 2 else other, -1
                    )
    for _ in range(int(rng.integers(2, 5))):  # cables, edges of tables
        p0 = (int(rng.integers(0, cw)), int(rng.integers(0, ch)))
        p1 = (int(rng.integers(0, cw)), int(rng.integers(0, ch)))
        cv2.line(
            canvas,
            p0,
            p1,
            tuple(int(c) for c in rng.integers(0, 255, 3)),
            int(rng.integers(2, 7)),
            cv2.LINE_AA,
        )
    return canvas


def _view_background(canvas: np.ndarray, camera: str) -> np.ndarray:
    """Crop (and for the RealSense, rescale) the canvas as seen by one camera."""
    disparity = round(BB_INTRINSICS.fx * BB_BASELINE_MM / _BG_DEPTH_MM)
    x0, y0 = 200, 110
    view: np.ndarray
    if camera == "BB_left":
        view = canvas[y0 : y0 + H, x0 : x0 + W].copy()
        return view
    if camera == "BB_right":
        view = canvas[y0 : y0 + H, x0 + disparity : x0 + disparity + W].copy()
        return view
    # The RealSense's wider field of view sees more of the wall; it sits 60 mm to the right.
    s = BB_INTRINSICS.fx / SK_COLOR_INTRINSICS.fx
    cw, ch = int(W * s), int(H * s)
    cx = x0 + W // 2 + round(BB_INTRINSICS.fx * 60.0 / _BG_DEPTH_MM)
    cy = y0 + H // 2 - round(BB_INTRINSICS.fx * 20.0 / _BG_DEPTH_MM)
    crop = canvas[cy - ch // 2 : cy - ch // 2 + ch, cx - cw // 2 : cx - cw // 2 + cw]
    return cv2.resize(crop, (W, H), interpolation=cv2.INTER_NEAREST)


@dataclass(frozen=True)
class _Part:
    z: float  # mean depth: parts are painted far to near
    kind: str  # "poly" or "segment"
    points: np.ndarray  # (N, 2) px
    radii: tuple[float, float]  # px, for segments
    color: tuple[float, float, float]


def _shade(color: Sequence[float], z: float, z_ref: float, factor: float = 1.0) -> tuple[float, float, float]:
    # Nearer parts catch more light: a cheap depth cue that also separates overlapping fingers.
    k = factor * (1.0 + 0.0015 * (z_ref - z))
    r, g, b = (float(np.clip(c * k, 0, 255)) for c in color)
    return r, g, b


def _hand_parts(
    pts: dict[str, np.ndarray], intr: CameraIntrinsics, skin: Sequence[float], sleeve: Sequence[float]
) -> list[_Part]:
    """List the hand as paintable parts (palm polygon, tapered segments), sorted far to near."""
    joints = pts["joints"]
    z_ref = float(joints[0, 2])
    parts: list[_Part] = []

    def segment(
        p0: np.ndarray,
        p1: np.ndarray,
        r0: float,
        r1: float,
        color: Sequence[float],
        factor: float = 1.0,
        z_bias: float = 0.0,
    ) -> None:
        z = float((p0[2] + p1[2]) / 2)
        uv = project_points(np.stack([p0, p1]), intr)
        radii = (r0 * intr.fx / p0[2], r1 * intr.fx / p1[2])
        parts.append(_Part(z + z_bias, "segment", uv, radii, _shade(color, z, z_ref, factor)))

    palm = project_points(pts["outline"], intr)
    parts.append(_Part(z_ref + 6.0, "poly", palm, (0.0, 0.0), _shade(skin, z_ref, z_ref, 0.97)))
    wrist, sleeve_edge, far = pts["forearm"]
    segment(wrist, sleeve_edge, 27.0, 30.0, skin, 0.95, z_bias=20.0)
    segment(sleeve_edge, far, 38.0, 42.0, sleeve, z_bias=40.0)  # always behind the hand
    segment(pts["thenar"][0], joints[17], 17.0, 12.0, skin, 0.98)
    for k, f in enumerate(_FINGERS):
        radii = np.linspace(*_RADIUS[f], 4)
        j = joints[1 + 4 * k : 5 + 4 * k]
        for s in range(3):
            segment(j[s], j[s + 1], radii[s], radii[s + 1], skin, 1.0 + 0.02 * k)
    return sorted(parts, key=lambda p: -p.z)


def _draw_part(img: np.ndarray, part: _Part, outline: bool) -> None:
    color: tuple[float, ...] = part.color
    # No anti-aliasing on the hand: its soft edges tripled the PNG sizes of the bundled sample.
    line = cv2.LINE_8
    grow = 1.6 if outline else 0.0
    if outline:
        color = tuple(c * 0.62 for c in part.color)
    if part.kind == "poly":
        pts = _fx(part.points)
        cv2.fillPoly(img, [pts], color, line, _SHIFT)
        if outline:
            cv2.polylines(img, [pts], True, color, 3, line, _SHIFT)
        return
    (p0, p1), (r0, r1) = part.points, part.radii
    r0, r1 = r0 + grow, r1 + grow
    d = p1 - p0
    n = np.array([-d[1], d[0]]) / max(float(np.hypot(*d)), 1e-6)
    quad = np.array([p0 + n * r0, p1 + n * r1, p1 - n * r1, p0 - n * r0])
    cv2.fillConvexPoly(img, _fx(quad), color, line, _SHIFT)
    for p, r in ((p0, r0), (p1, r1)):
        cv2.circle(img, tuple(int(c) for c in _fx(p)), round(r * _ONE), color, -1, line, _SHIFT)


def _render_color(background: np.ndarray, parts: list[_Part]) -> np.ndarray:
    img: np.ndarray = background.copy()
    for part in parts:  # far to near: each part's dark rim separates it from what lies behind
        _draw_part(img, part, outline=True)
        _draw_part(img, part, outline=False)
    return img


def _render_frame(
    frame: SynthFrame,
    canvas_views: dict[str, np.ndarray],
    skin: Sequence[float],
    sleeve: Sequence[float],
) -> dict[str, np.ndarray]:
    extra = dict(frame.parts)
    bb_pts = {"joints": frame.bb, **extra}
    right_pts = {k: v - [BB_BASELINE_MM, 0.0, 0.0] for k, v in bb_pts.items()}
    color_pts = {k: _bb_to_color(v) for k, v in bb_pts.items()}
    return {
        "BB_left": _render_color(canvas_views["BB_left"], _hand_parts(bb_pts, BB_INTRINSICS, skin, sleeve)),
        "BB_right": _render_color(
            canvas_views["BB_right"], _hand_parts(right_pts, BB_INTRINSICS, skin, sleeve)
        ),
        "SK_color": _render_color(
            canvas_views["SK_color"], _hand_parts(color_pts, SK_COLOR_INTRINSICS, skin, sleeve)
        ),
    }


def write_synthetic_stb(
    out: str | os.PathLike[str],
    frames_per_sequence: int = 2,
    sequences: Sequence[str] | None = None,
    seed: int = 0,
    *,
    images: bool = True,
) -> Path:
    """Write a synthetic dataset in STB's exact layout.

    Writes ``images/<seq>/{BB_left,BB_right,SK_color}_<i>.png`` (640x480) and
    ``labels/<seq>_BB.mat`` / ``labels/<seq>_SK.mat`` (``handPara``, 3 x 21 x frames, mm).

    Parameters
    ----------
    out : path
        Destination folder (created if needed). Existing files are replaced: each file is
        written to a temporary sibling and renamed over the old one, so that a hard link to an
        old file (a ``materialize`` output's clean copy) keeps its bytes.
    frames_per_sequence : int, default 2
        Frames per sequence (the real dataset has 1500).
    sequences : sequence of str, optional
        Which of the 12 sequences to write (default all).
    seed : int, default 0
        Non-negative seed; each sequence depends only on ``seed`` and its own name.
    images : bool, default True
        ``False`` writes the label files and empty sequence folders only (fast, for tests
        of listing, which never opens images).

    Returns
    -------
    pathlib.Path
        ``out``.

    Examples
    --------
    >>> import tempfile
    >>> from keypoint_corrupt.datasets import STB
    >>> root = write_synthetic_stb(tempfile.mkdtemp(), 1, ["B1Counting", "B1Random"])
    >>> len(STB(root, "val"))
    4
    """
    frames = check_int(frames_per_sequence, "frames_per_sequence")
    seed = check_int(seed, "seed", minimum=0)
    if sequences is None:
        seqs = STB_SEQUENCES
    else:
        if isinstance(sequences, str):
            sequences = (sequences,)
        seqs = tuple(sequences)
        for s in seqs:
            _check_sequence(s)
        if not seqs or len(set(seqs)) != len(seqs):
            raise ValueError(f"sequences must name distinct STB sequences, got {seqs}")
    from scipy.io import savemat

    root = Path(out)
    (root / "labels").mkdir(parents=True, exist_ok=True)
    png = [cv2.IMWRITE_PNG_COMPRESSION, 9]
    if hasattr(cv2, "IMWRITE_PNG_FILTER"):  # OpenCV >= 4.10; unfiltered rows suit flat colours best
        png += [cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_NONE]
    backgrounds: dict[str, dict[str, np.ndarray]] = {}
    for seq in seqs:
        poses = synth_sequence(seq, frames, seed)
        seq_dir = root / "images" / seq
        seq_dir.mkdir(parents=True, exist_ok=True)
        for kind, attr in (("BB", "bb"), ("SK", "sk")):
            para = np.stack([getattr(p, attr).T for p in poses], axis=-1)  # (3, 21, frames)
            # a new file renamed over the old one: never written through a hard link to it
            with replacing(root / "labels" / f"{seq}_{kind}.mat") as tmp, open(tmp, "wb") as f:
                savemat(f, {"handPara": para}, do_compression=True)
        if not images:
            continue
        if seq[:2] not in backgrounds:  # Counting and Random share their background, as in STB
            canvas = _background(seed, seq[:2])
            backgrounds[seq[:2]] = {cam: _view_background(canvas, cam) for cam in _COLOR_CAMERAS}
        views = backgrounds[seq[:2]]
        look = _rng(seed, "look", seq)
        skin = _SKIN_TONES[int(look.integers(len(_SKIN_TONES)))]
        sleeve = _SLEEVES[int(look.integers(len(_SLEEVES)))]
        for i, pose in enumerate(poses):
            for cam, rgb in _render_frame(pose, views, skin, sleeve).items():
                # RGB -> BGR for OpenCV; renamed over the old file, never written through a hard
                # link to it (a materialize output's clean copy of it)
                ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]), png)
                if not ok:
                    raise OSError(f"OpenCV could not encode {seq_dir / f'{cam}_{i}.png'}")
                write_atomic(seq_dir / f"{cam}_{i}.png", buf.tobytes(), fsync=False)
    return root
