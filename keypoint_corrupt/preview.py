"""Contact sheets and suite grids: one image under many corruptions, keypoints drawn.

:func:`contact_sheet` shows the clean image and each configuration (keypoints, ROI, occluder);
:func:`suite_grid` a suite's corruptions (rows) at each severity (columns) beside the clean image.

Rendering uses OpenCV only, so a sheet costs a few milliseconds and needs no display.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from keypoint_corrupt._paths import write_atomic
from keypoint_corrupt._validation import (
    ImageArray,
    KeypointsLike,
    VisibilityLike,
    check_image,
    check_keypoints,
    check_visibility,
)
from keypoint_corrupt.datasets.corrupted import keypoints_after
from keypoint_corrupt.datasets.subsets import sample_rng
from keypoint_corrupt.functional.occlusion import Box, PixelBox, keypoint_roi
from keypoint_corrupt.registry import CONFIGS, apply_corruption
from keypoint_corrupt.schema import KeypointSchema, get_schema
from keypoint_corrupt.suites import Suite, get_suite

# One colour per finger: root joint, thumb, index, middle, ring, pinky. Without a schema, a 21-joint
# hand is coloured by position (root first, then 4 joints per finger, thumb first: RHD and hand21).
_FINGER_COLOURS = [
    (255, 255, 255),
    (255, 80, 80),
    (255, 200, 0),
    (60, 220, 60),
    (0, 170, 255),
    (200, 90, 255),
]


_FINGER_WORDS = ("thumb", "index", "middle", "ring", "pinky")
_OTHER_COLOUR = (255, 255, 0)


def _joint_colour(j: int, n: int) -> tuple[int, int, int]:
    if n != 21:
        return _OTHER_COLOUR
    return _FINGER_COLOURS[0 if j == 0 else 1 + (j - 1) // 4]


def _schema_colours(schema: KeypointSchema) -> list[tuple[int, int, int]]:
    """Return one colour per joint of ``schema``: by finger name, white for a hand's root."""
    colours = []
    for joint in schema.joints:
        finger = next((i for i, w in enumerate(_FINGER_WORDS) if joint.startswith(w)), None)
        if finger is not None:
            colours.append(_FINGER_COLOURS[1 + finger])
        else:
            colours.append(_FINGER_COLOURS[0] if joint in ("wrist", "palm") else _OTHER_COLOUR)
    return colours


def skeleton_segments(schema: KeypointSchema | str, visible: VisibilityLike) -> list[tuple[int, int]]:
    """Return the bones :func:`draw_annotations` draws: ``schema``'s edges whose joints are both visible.

    Parameters
    ----------
    schema : KeypointSchema or str
        The keypoints' schema (or a registered name).
    visible : array-like of bool
        (N,) flags, N the schema's joint count.

    Returns
    -------
    list of (int, int)
        Joint index pairs, in the schema's drawing order.

    Examples
    --------
    >>> vis = [True] * 21
    >>> vis[5] = False  # hand21's index_finger_mcp
    >>> segs = skeleton_segments("hand21", vis)
    >>> (0, 1) in segs, (0, 5) in segs, (5, 6) in segs, len(segs)
    (True, False, False, 18)
    """
    resolved = get_schema(schema)
    vis = check_visibility(visible, len(resolved))
    return [(a, b) for a, b in resolved.edge_indices() if vis[a] and vis[b]]


def draw_annotations(
    image: ImageArray,
    keypoints: KeypointsLike,
    visibility: VisibilityLike | None = None,
    *,
    roi: Box | None = None,
    box: PixelBox | None = None,
    radius: int = 3,
    schema: KeypointSchema | str | None = None,
) -> ImageArray:
    """Draw visible keypoints (coloured per finger), the ROI (yellow) and an occluder box (red).

    Parameters
    ----------
    image : numpy.ndarray
        RGB uint8 image (not modified).
    keypoints : array-like
        (N, 2) pixel coordinates.
    visibility : array-like of bool, optional
        Only visible, finite keypoints are drawn.
    roi, box : tuple, optional
        Boxes ``(x0, y0, x1, y1)`` to outline.
    radius : int
        Keypoint radius in pixels.
    schema : KeypointSchema or str, optional
        The keypoints' schema: joints are coloured by finger name and its edges drawn (both
        joints visible, :func:`skeleton_segments`). Default: no edges, a 21-joint hand
        coloured by position.

    Returns
    -------
    numpy.ndarray
        An annotated RGB uint8 copy.

    Examples
    --------
    >>> import numpy as np
    >>> draw_annotations(np.zeros((20, 20, 3), np.uint8), [[10, 10]]).max()
    np.uint8(255)
    >>> hand = np.random.default_rng(0).uniform(5, 35, (21, 2))
    >>> draw_annotations(np.zeros((40, 40, 3), np.uint8), hand, schema="hand21").shape
    (40, 40, 3)
    """
    out = np.ascontiguousarray(image.copy())
    pts = check_keypoints(keypoints)
    vis = check_visibility(visibility, len(pts)) & np.isfinite(pts).all(axis=1)
    colours = [_joint_colour(j, len(pts)) for j in range(len(pts))]
    if schema is not None:
        resolved = get_schema(schema)
        if len(resolved) != len(pts):
            raise ValueError(f"schema {resolved.name!r} has {len(resolved)} joints, the keypoints {len(pts)}")
        colours = _schema_colours(resolved)
        for a, b in skeleton_segments(resolved, vis):
            ends = [(round(pts[k][0]), round(pts[k][1])) for k in (a, b)]
            cv2.line(out, ends[0], ends[1], colours[b], max(1, radius // 2), cv2.LINE_AA)
    if roi is not None:
        x0, y0, x1, y1 = (round(v) for v in roi)
        cv2.rectangle(out, (x0, y0), (max(x0, x1 - 1), max(y0, y1 - 1)), (255, 230, 0), 1, cv2.LINE_AA)
    if box is not None and box[2] > box[0] and box[3] > box[1]:
        cv2.rectangle(out, (box[0], box[1]), (box[2] - 1, box[3] - 1), (255, 40, 40), 1)
    for j, (p, v) in enumerate(zip(pts, vis, strict=True)):
        if v:
            centre = (round(p[0]), round(p[1]))
            cv2.circle(out, centre, radius + 1, (0, 0, 0), -1, cv2.LINE_AA)
            cv2.circle(out, centre, radius, colours[j], -1, cv2.LINE_AA)
    return out


def _label(tile: ImageArray, text: str) -> ImageArray:
    bar = np.full((22, tile.shape[1], 3), 30, np.uint8)
    scale = 0.5
    width = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0]
    if width > tile.shape[1] - 8:  # shrink a long name to fit its tile
        scale *= max(0.25, (tile.shape[1] - 8) / width)
    cv2.putText(bar, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return np.vstack([bar, tile])


def contact_sheet(
    image: ImageArray,
    keypoints: KeypointsLike,
    visibility: VisibilityLike | None = None,
    *,
    configs: Sequence[str] = CONFIGS,
    seed: int = 0,
    sample_id: str = "preview",
    margin: float = 0.15,
    tile_width: int = 320,
    columns: int = 4,
    schema: KeypointSchema | str | None = None,
) -> ImageArray:
    """Grid of the clean image and each configuration, with keypoints and ROI drawn.

    Each tile is corrupted with the generator the dataset layer would use for
    ``(seed, sample_id, config)``, so a sheet shows exactly what a materialised set holds.

    Parameters
    ----------
    image : numpy.ndarray
        RGB uint8 image, HxWx3.
    keypoints : array-like
        (N, 2) pixel coordinates.
    visibility : array-like of bool, optional
        (N,) flags; default all visible.
    configs : sequence of str
        Configuration names (default: the eleven reference ones).
    seed : int
        Dataset seed.
    sample_id : str
        Id used to derive each tile's generator.
    margin : float
        ROI margin to draw.
    tile_width : int
        Width of one tile in pixels (aspect ratio kept).
    columns : int
        Tiles per row.
    schema : KeypointSchema or str, optional
        The keypoints' schema, for finger colours and the skeleton (:func:`draw_annotations`).

    Returns
    -------
    numpy.ndarray
        The sheet as an RGB uint8 array.

    Examples
    --------
    >>> import numpy as np
    >>> sheet = contact_sheet(np.zeros((48, 64, 3), np.uint8), [[10, 10], [50, 40]], tile_width=64)
    >>> sheet.shape
    (210, 256, 3)
    """
    check_image(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be an RGB uint8 HxWx3 array, got {image.dtype} {image.shape}")
    pts = check_keypoints(keypoints)
    vis = check_visibility(visibility, len(pts))
    roi = keypoint_roi(pts, image.shape, margin=margin, visibility=vis)
    scale = tile_width / image.shape[1]
    size = (tile_width, max(1, round(image.shape[0] * scale)))

    def tile(img: ImageArray, title: str, box: PixelBox | None = None) -> ImageArray:
        small = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
        s_roi: Box | None = (
            None if roi is None else (roi[0] * scale, roi[1] * scale, roi[2] * scale, roi[3] * scale)
        )
        s_box: PixelBox | None = None if box is None else _scaled(box, scale)
        return _label(draw_annotations(small, pts * scale, vis, roi=s_roi, box=s_box, schema=schema), title)

    tiles = [tile(image, "clean")]
    for name in configs:
        out, info = apply_corruption(name, image, pts, visibility=vis, rng=sample_rng(seed, sample_id, name))
        tiles.append(tile(out, name, info.get("box")))
    blank = np.zeros_like(tiles[0])
    while len(tiles) % columns:
        tiles.append(blank)
    rows = [np.hstack(tiles[i : i + columns]) for i in range(0, len(tiles), columns)]
    return np.vstack(rows)


def _scaled(box: PixelBox, scale: float) -> PixelBox:
    x0, y0, x1, y1 = (round(v * scale) for v in box)
    return (x0, y0, x1, y1)


def save_png(path: str | os.PathLike[str], image: ImageArray) -> None:
    """Write an RGB uint8 array as PNG, raising ``OSError`` naming the path on failure."""
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(image[..., ::-1]))
    if not ok:
        raise OSError(f"could not encode PNG for {path}")
    write_atomic(Path(path), buf.tobytes(), fsync=False)  # never written through a hard link


def suite_grid(
    image: ImageArray,
    keypoints: KeypointsLike,
    visibility: VisibilityLike | None = None,
    *,
    suite: Suite | str,
    severities: Sequence[int] | None = None,
    seed: int = 0,
    sample_id: str = "preview",
    tile_width: int = 160,
    schema: KeypointSchema | str | None = None,
) -> ImageArray:
    """Grid of one image: a row per corruption of ``suite``, a clean column then one per severity.

    Each tile is corrupted with the generator that ``materialize --suite`` uses for
    ``(seed, sample_id, config)`` and labelled ``clean`` or ``<corruption> <severity>``. The
    keypoints are drawn where the annotation files put them: where the corruption moved them
    when it reports so (``info["keypoints"]``), else unchanged; an occluder box is outlined in
    red. A corruption without one of the requested severities (``costa2021``'s noises have one
    level) leaves that tile black, and gets no row when it has none of them.

    Parameters
    ----------
    image : numpy.ndarray
        RGB uint8 image, HxWx3.
    keypoints : array-like
        (N, 2) pixel coordinates: one instance, or several of ``schema``'s joint count in a row
        (every person of an image), each drawn with the schema's skeleton.
    visibility : array-like of bool, optional
        (N,) flags; default all visible.
    suite : Suite or str
        The suite (or its registered name).
    severities : sequence of int, optional
        Columns after the clean one (default: all of the suite's).
    seed : int
        Dataset seed.
    sample_id : str
        Id used to derive each tile's generator (``materialize --suite``: the image's).
    tile_width : int
        Width of one tile in pixels (aspect ratio kept).
    schema : KeypointSchema or str, optional
        The keypoints' schema, for colours and the skeleton.

    Returns
    -------
    numpy.ndarray
        The grid as an RGB uint8 array: ``len(corruptions)`` rows of ``1 + len(severities)`` tiles.

    Examples
    --------
    >>> import numpy as np
    >>> grid = suite_grid(np.zeros((48, 64, 3), np.uint8), [[10, 10], [50, 40]], suite="costa2021",
    ...                   tile_width=64)
    >>> grid.shape  # 5 corruptions x (clean + 3 severities), tiles of 64 x (48 + 22 label)
    (350, 256, 3)
    """
    check_image(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be an RGB uint8 HxWx3 array, got {image.dtype} {image.shape}")
    found = get_suite(suite) if isinstance(suite, str) else suite
    wanted = tuple(found.severities if severities is None else severities)
    found.configs(severities=wanted)  # a severity beyond every corruption's levels fails here
    pts = check_keypoints(keypoints)
    vis = check_visibility(visibility, len(pts))
    scale = tile_width / image.shape[1]
    size = (tile_width, max(1, round(image.shape[0] * scale)))
    radius = max(1, tile_width // 160)  # small marks: the picture is what a grid shows

    def tile(img: ImageArray, title: str, at: np.ndarray, box: PixelBox | None = None) -> ImageArray:
        small = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
        s_box = None if box is None else _scaled(box, scale)
        return _label(_draw_instances(small, at * scale, vis, schema, s_box, radius), title)

    clean = tile(image, "clean", pts)
    blank = np.zeros_like(clean)
    rows = []
    for corruption in found.corruptions:
        levels = found.table[corruption]
        if all(severity > len(levels) for severity in wanted):
            continue  # no row for a corruption without any of these severities
        tiles = [clean]
        for severity in wanted:
            if severity > len(levels):
                tiles.append(blank)
                continue
            config = levels[severity - 1]
            rng = sample_rng(seed, sample_id, config)
            out, info = apply_corruption(config, image, pts, visibility=vis, rng=rng)
            at = keypoints_after(info, pts, vis)
            tiles.append(tile(out, f"{corruption} {severity}", at, info.get("box")))
        rows.append(np.hstack(tiles))
    return np.vstack(rows)


def _draw_instances(
    image: ImageArray,
    pts: np.ndarray,
    vis: np.ndarray,
    schema: KeypointSchema | str | None,
    box: PixelBox | None,
    radius: int,
) -> ImageArray:
    """Draw keypoints that hold one or several instances of ``schema`` (each with its skeleton)."""
    joints = len(get_schema(schema)) if schema is not None else len(pts)
    if schema is not None and (joints == 0 or len(pts) % joints):
        schema, joints = None, len(pts)  # instances of other schemas: points only
    out = draw_annotations(image, pts[:joints], vis[:joints], box=box, radius=radius, schema=schema)
    for start in range(joints, len(pts), max(1, joints)):
        part = slice(start, start + joints)
        out = draw_annotations(out, pts[part], vis[part], radius=radius, schema=schema)
    return out
