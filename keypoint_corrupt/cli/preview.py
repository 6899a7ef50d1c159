"""``keypoint-corrupt preview``: a contact sheet of one image under every configuration, or a
suite's grid (a row per corruption, a column per severity)."""

from __future__ import annotations

import argparse
import json
import struct
import sys
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from keypoint_corrupt._paths import check_output_path, write_atomic
from keypoint_corrupt.cli.data import add_suite_options
from keypoint_corrupt.cli.main import COMMANDS, CliError

if TYPE_CHECKING:  # numpy, OpenCV and the package load in run(): `preview --help` stays light
    import numpy as np

    from keypoint_corrupt.schema import KeypointSchema

EXAMPLES = """examples:
  # the first S-val sample of the bundled synthetic STB
  keypoint-corrupt preview --out sheet.png

  # a sample of a dataset (the same noise and occluder as 'materialize' gives it, for --seed)
  keypoint-corrupt preview --dataset stb --root /data/STB --split val --index 120 --out sheet.png
  keypoint-corrupt preview --dataset coco --annotations hands/test_freihand.json --index 3 --out sheet.png

  # any image with its keypoints: a JSON list of [x, y] or [x, y, v] rows, a flat COCO
  # [x, y, v, ...] list, {"keypoints": ..., "visibility": ...}, or a COCO file that annotates it
  keypoint-corrupt preview --image hand.jpg --keypoints hand.json \\
      --configs motion-30,occlusion-20 --out sheet.png

  # RHD files name their joints like FreiHAND's but list them tip to base: say so
  keypoint-corrupt preview --dataset coco --annotations test_rhd.json --schema rhd --out sheet.png

  # a suite's grid: a row per corruption, the clean image then one column per severity
  keypoint-corrupt preview --dataset coco --annotations person_keypoints_val2017.json \\
      --images val2017 --suite imagenet-c --out grid.jpg

The sheet shows the clean image and each configuration, with the visible keypoints coloured
per finger and joined by the keypoint schema's skeleton (the dataset's, matched from a COCO
file's joint names, or --schema), the keypoint ROI (yellow) and, for occlusion, the painted
square (red). A keypoint list without names is drawn without a skeleton unless --schema names it.
With --suite, the grid shows the image as 'materialize --suite' writes it: a dataset image whole,
with every annotation's keypoints, corrupted with the image's own random stream.
--out FILE.jpg writes a JPEG (--jpeg-quality), any other name a PNG. An existing --out file is
replaced only if an earlier 'preview' wrote it (or with --overwrite).
"""

#: PNG text chunk that marks a sheet written by this command: only such a file is replaced
#: without --overwrite.
PNG_MARK = (b"Software", b"keypoint-corrupt preview")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: The same mark in a JPEG sheet: a comment (COM) segment right after the start of image.
JPEG_MARK = b"Software: keypoint-corrupt preview"
_JPEG_SUFFIXES = (".jpg", ".jpeg")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "preview",
        help=COMMANDS["preview"][1],
        description="Write a contact sheet PNG of one image, clean and under each configuration,\n"
        "with keypoints and the keypoint ROI drawn, from a dataset sample or an image plus\n"
        "keypoints; with --suite, a grid of one row per corruption and one column per severity\n"
        "beside the clean image.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = p.add_argument_group("source (default: the bundled synthetic STB sample)")
    src.add_argument("--dataset", choices=("stb", "coco"), help="dataset reader")
    src.add_argument("--root", type=Path, metavar="DIR", help="STB root")
    src.add_argument("--split", default="val", help="STB split (default: val)")
    src.add_argument("--annotations", type=Path, metavar="FILE", help="COCO keypoint file")
    src.add_argument(
        "--images", type=Path, metavar="DIR", help="COCO image root (default: the JSON's folder)"
    )
    src.add_argument("--index", type=int, default=0, metavar="N", help="sample index (default: 0)")
    src.add_argument("--image", type=Path, metavar="FILE", help="an image file (with --keypoints)")
    src.add_argument("--keypoints", type=Path, metavar="JSON", help="its keypoints (see the examples)")
    src.add_argument(
        "--schema",
        metavar="NAME",
        help="keypoint schema to draw with: a preset such as rhd, hand21, stb_rhd, coco17, mpii16, "
        "ap10k (see docs/datasets.md); default: the dataset's, matched from a COCO file's keypoint "
        "names. Needed where the names mislead (RHD files: --schema rhd)",
    )
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="FILE.png",
        help="where to write the sheet (.jpg/.jpeg: JPEG, else PNG); an existing file is replaced only "
        "if an earlier preview wrote it",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace an existing --out file whatever wrote it"
    )
    p.add_argument(
        "--configs", default=None, metavar="all|A,B", help="configurations (default: all); excludes --suite"
    )
    add_suite_options(p)
    p.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    p.add_argument(
        "--tile-width", type=int, default=None, metavar="PX", help="tile width (default: 320; --suite: 160)"
    )
    p.add_argument("--columns", type=int, default=None, help="tiles per row (default: 4; not with --suite)")
    p.add_argument(
        "--jpeg-quality", type=int, default=90, metavar="Q", help="JPEG quality of a .jpg --out (default: 90)"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    p.set_defaults(func=run)


def _flat_triples(values: list[Any], where: str) -> tuple[np.ndarray, np.ndarray]:
    import numpy as np

    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 1:
        if arr.size == 0 or arr.size % 3:
            raise CliError(f"{where}: a flat keypoint list must hold x, y, v triples, got {arr.size} values")
        arr = arr.reshape(-1, 3)
    if arr.ndim != 2 or arr.shape[1] not in (2, 3):
        raise CliError(f"{where}: keypoints must be rows of [x, y] or [x, y, v], got shape {arr.shape}")
    vis = arr[:, 2] > 0 if arr.shape[1] == 3 else np.ones(len(arr), dtype=bool)
    return arr[:, :2], vis


def read_keypoints(
    path: Path, image: Path, schema: KeypointSchema | None = None
) -> tuple[np.ndarray, np.ndarray, KeypointSchema | None]:
    """Keypoints, visibility and schema from the JSON forms that ``--keypoints`` accepts.

    The schema is ``schema`` if given (a COCO file's reader checks its joint count), else a
    COCO file's, matched from its category's joint names; a list without names has none.
    """
    import numpy as np

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CliError(f"keypoints file not found: {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CliError(f"cannot read keypoints from {path}: {exc}") from None
    try:
        if isinstance(data, dict) and "annotations" in data and "images" in data:
            return _coco_keypoints(data, path, image, schema)
        if isinstance(data, dict) and "keypoints" in data:
            kps, vis = _flat_triples(data["keypoints"], str(path))
            if data.get("visibility") is not None:
                vis = np.asarray(data["visibility"], dtype=bool).reshape(-1)
                if vis.shape != (len(kps),):
                    raise CliError(f"{path}: {len(vis)} visibility flags for {len(kps)} keypoints")
            return kps, vis, schema
        if isinstance(data, list):
            return (*_flat_triples(data, str(path)), schema)
    except (TypeError, ValueError, KeyError) as exc:
        raise CliError(f"{path}: unreadable keypoints ({exc})") from None
    raise CliError(f"{path}: expected a keypoint list, a {{'keypoints': ...}} object or a COCO file")


def _coco_keypoints(
    document: dict[str, Any], path: Path, image: Path, schema: KeypointSchema | None
) -> tuple[np.ndarray, np.ndarray, KeypointSchema | None]:
    """The first annotation of a COCO file on an image named like ``image``, and its schema."""
    from keypoint_corrupt.datasets import CocoIndex, CocoKeypoints

    try:
        samples = CocoKeypoints(CocoIndex(document, path), schema=schema)
    except ValueError as exc:  # names the file and the entry already
        raise CliError(str(exc)) from None
    for sample in samples:
        if sample.image_path.name == image.name:
            return sample.keypoints, sample.visibility, samples.schema_of(sample.meta["category_id"])
    raise CliError(f"{path} has no annotation for an image named {image.name}")


class _Source(NamedTuple):
    image: np.ndarray
    keypoints: np.ndarray
    visibility: np.ndarray
    sample_id: str
    label: str
    schema: KeypointSchema | None


def _schema(name: str | None) -> KeypointSchema | None:
    """``--schema``, checked before any work (one line for an unknown name)."""
    from keypoint_corrupt.schema import get_schema

    if name is None:
        return None
    try:
        return get_schema(name)
    except ValueError as exc:
        raise CliError(f"--schema: {exc}") from None


def _source(args: argparse.Namespace, schema: KeypointSchema | None, per_image: bool = False) -> _Source:
    """The image to draw; ``per_image`` (a suite): a sample's whole image, as ``materialize --suite``."""
    from keypoint_corrupt.datasets import load_image

    if args.image is not None or args.keypoints is not None:
        if args.image is None or args.keypoints is None:
            raise CliError("--image and --keypoints go together")
        if args.dataset is not None:
            raise CliError("give either --dataset or --image/--keypoints, not both")
        kps, vis, found = read_keypoints(args.keypoints, args.image, schema)
        return _Source(_load(load_image, args.image), kps, vis, "preview", str(args.image), found)
    ds = _dataset(args, schema)
    if not -len(ds) <= args.index < len(ds):
        raise CliError(f"--index {args.index} is out of range: the dataset has {len(ds)} samples")
    sample = ds[args.index]
    if schema is None:  # a COCO file's categories may differ: this sample's
        schema = ds.schema_of(sample.meta["category_id"]) if hasattr(ds, "schema_of") else ds.schema
    if per_image:
        sample = _image_of(ds, args.index % len(ds))
    image = _load(load_image, sample)
    return _Source(image, sample.keypoints, sample.visibility, sample.id, sample.id, schema)


def _image_of(ds: Any, index: int) -> Any:
    """The sample that ``materialize --suite`` corrupts for sample ``index``: its image, all annotations."""
    from keypoint_corrupt.materialize.plan import image_samples

    images, members = image_samples([ds[i] for i in range(len(ds))])
    return next(img for img, group in zip(images, members, strict=True) if index in group)


def _dataset(args: argparse.Namespace, schema: KeypointSchema | None) -> Any:
    from keypoint_corrupt.datasets import STB, CocoKeypoints, bundled_sample_root

    try:
        if args.dataset is None:
            if args.root or args.annotations:
                raise CliError("--root and --annotations need --dataset stb or --dataset coco")
            root = bundled_sample_root()
            if not args.quiet:
                print(
                    f"keypoint-corrupt preview: no source given: using the bundled sample ({root})",
                    file=sys.stderr,
                )
            ds: Any = STB(root, args.split)
        elif args.dataset == "stb":
            if args.root is None:
                raise CliError("--dataset stb needs --root DIR")
            ds = STB(args.root, args.split)
        else:
            if args.annotations is None:
                raise CliError("--dataset coco needs --annotations FILE")
            ds = CocoKeypoints(args.annotations, args.images, schema=schema)
    except (FileNotFoundError, ValueError) as exc:
        raise CliError(str(exc)) from None
    return ds


def _load(load_image: Any, source: Any) -> np.ndarray:
    try:
        return load_image(source)
    except OSError as exc:
        raise CliError(str(exc)) from None


def is_preview_file(path: Path) -> bool:
    """Whether ``path`` is a sheet that this command wrote: a PNG or a JPEG carrying its mark."""
    return is_preview_png(path) or _is_preview_jpeg(path)


def _is_preview_jpeg(path: Path) -> bool:
    mark = _jpeg_comment(JPEG_MARK)
    try:
        with open(path, "rb") as fh:
            return fh.read(len(mark)) == mark
    except OSError:
        return False


def _jpeg_comment(text: bytes) -> bytes:
    """Start of image, then a COM segment holding ``text``."""
    return b"\xff\xd8\xff\xfe" + struct.pack(">H", len(text) + 2) + text


def is_preview_png(path: Path) -> bool:
    """Whether ``path`` is a PNG that this command wrote (it carries :data:`PNG_MARK`)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(1 << 16)
    except OSError:
        return False
    if not head.startswith(_PNG_SIGNATURE):
        return False
    pos = len(_PNG_SIGNATURE)
    while pos + 8 <= len(head):
        length, kind = struct.unpack(">I4s", head[pos : pos + 8])
        if kind == b"tEXt":
            return head[pos + 8 : pos + 8 + length] == b"\0".join(PNG_MARK)
        if kind in (b"IDAT", b"IEND"):
            return False
        pos += 12 + length
    return False


def check_out(path: Path, overwrite: bool) -> None:
    """Refuse, before any work, an ``--out`` that cannot be written or is someone else's file."""
    try:
        check_output_path(path, want="file")
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if path.exists() and not overwrite and not is_preview_file(path):
        raise CliError(
            f"--out {path} exists and was not written by 'keypoint-corrupt preview'; "
            "pass --overwrite to replace it, or choose another --out"
        )


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_sheet(path: Path, sheet: np.ndarray, jpeg_quality: int = 90) -> None:
    """Write ``sheet`` (RGB) atomically (temp file + rename), carrying the command's mark.

    A ``.jpg`` / ``.jpeg`` path gets a JPEG of ``jpeg_quality`` with :data:`JPEG_MARK` in a
    comment segment, any other a PNG with :data:`PNG_MARK` in a ``tEXt`` chunk.
    """
    import cv2
    import numpy as np

    bgr = np.ascontiguousarray(sheet[..., ::-1])
    if path.suffix.lower() in _JPEG_SUFFIXES:
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
        if not ok:
            raise OSError(f"could not encode JPEG for {path}")
        data = _jpeg_comment(JPEG_MARK) + buf.tobytes()[2:]  # after the encoder's start of image
    else:
        ok, buf = cv2.imencode(".png", bgr)
        if not ok:
            raise OSError(f"could not encode PNG for {path}")
        png = buf.tobytes()
        end_of_ihdr = len(_PNG_SIGNATURE) + 25  # IHDR: length, type, 13 bytes, CRC
        data = png[:end_of_ihdr] + _png_chunk(b"tEXt", b"\0".join(PNG_MARK)) + png[end_of_ihdr:]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, data, fsync=False)


def _check_joints(src: _Source, forced: bool, per_image: bool) -> None:
    """Refuse a schema whose joint count does not fit the keypoints (one line naming both counts).

    A suite grid draws a whole image: several instances of the schema in a row are fine, and
    annotations of other schemas on the image are drawn as points, unless ``--schema`` forced one.
    """
    if src.schema is None:
        return
    joints, points = len(src.schema), len(src.keypoints)
    fits = points % joints == 0 if per_image else points == joints
    if not fits and (forced or not per_image):
        raise CliError(
            f"{'--schema' if forced else 'schema'} {src.schema.name!r} has "
            f"{joints} joints but {src.label} has {points} keypoints"
        )


def _check_args(args: argparse.Namespace, suite: Any) -> None:
    if args.seed < 0:
        raise CliError(f"--seed must be >= 0, got {args.seed}")
    if args.tile_width is not None and args.tile_width < 16:
        raise CliError(f"--tile-width must be >= 16, got {args.tile_width}")
    if args.columns is not None and args.columns < 1:
        raise CliError(f"--columns must be >= 1, got {args.columns}")
    if suite is not None and args.columns is not None:
        raise CliError(f"--columns {args.columns}: a --suite grid has one column per severity")
    if not 0 <= args.jpeg_quality <= 100:
        raise CliError(f"--jpeg-quality must be in 0..100, got {args.jpeg_quality}")


def run(args: argparse.Namespace) -> int:
    from keypoint_corrupt.cli.data import configs_from_suite, parse_configs, suite_severities
    from keypoint_corrupt.datasets.corrupted import check_runnable
    from keypoint_corrupt.preview import contact_sheet, suite_grid
    from keypoint_corrupt.registry import CONFIGS

    check_out(args.out, args.overwrite)
    schema = _schema(args.schema)
    suite, suite_configs = configs_from_suite(args)
    configs = parse_configs(args.configs) or CONFIGS  # not given, or "all"
    _check_args(args, suite)
    try:
        check_runnable(configs if suite_configs is None else suite_configs)
    except FileNotFoundError as exc:  # frost without its photographs
        raise CliError(str(exc)) from None
    src = _source(args, schema, per_image=suite is not None)
    label = src.label
    _check_joints(src, forced=schema is not None, per_image=suite is not None)
    try:
        if suite is not None:
            assert suite_configs is not None
            severities = suite_severities(suite, suite_configs)
            sheet = suite_grid(
                src.image,
                src.keypoints,
                src.visibility,
                suite=suite,
                severities=severities,
                seed=args.seed,
                sample_id=src.sample_id,
                tile_width=args.tile_width or 160,
                schema=src.schema,
            )
            rows = len({suite.locate(c)[0] for c in suite_configs})
            what = f"suite {suite.name}: {rows} corruptions x {len(severities)} severities + clean"
        else:
            sheet = contact_sheet(
                src.image,
                src.keypoints,
                src.visibility,
                configs=configs,
                seed=args.seed,
                sample_id=src.sample_id,
                tile_width=args.tile_width or 320,
                columns=args.columns or 4,
                schema=src.schema,
            )
            what = f"clean + {len(configs)} configurations"
    except (TypeError, ValueError) as exc:
        raise CliError(f"cannot draw {label}: {exc}") from None
    try:
        write_sheet(args.out, sheet, args.jpeg_quality)
    except OSError as exc:
        raise CliError(f"cannot write {args.out}: {exc.strerror or exc}") from None
    if not args.quiet:
        print(
            f"wrote {args.out} ({sheet.shape[1]}x{sheet.shape[0]}): {label}, {what}"
            + ("" if src.schema is None else f", schema {src.schema.name}")
        )
    return 0
