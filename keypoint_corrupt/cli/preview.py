"""``keypoint-corrupt preview``: a contact sheet of one image under every configuration."""

from __future__ import annotations

import argparse
import json
import struct
import sys
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from keypoint_corrupt._paths import check_output_path, write_atomic
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

The sheet shows the clean image and each configuration, with the visible keypoints coloured
per finger and joined by the keypoint schema's skeleton (the dataset's, matched from a COCO
file's joint names, or --schema), the keypoint ROI (yellow) and, for occlusion, the painted
square (red). A keypoint list without names is drawn without a skeleton unless --schema names it.
An existing --out file is replaced only if an earlier 'preview' wrote it (or with --overwrite).
"""

#: PNG text chunk that marks a sheet written by this command: only such a file is replaced
#: without --overwrite.
PNG_MARK = (b"Software", b"keypoint-corrupt preview")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "preview",
        help=COMMANDS["preview"][1],
        description="Write a contact sheet PNG of one image, clean and under each configuration,\n"
        "with keypoints and the keypoint ROI drawn, from a dataset sample or an image plus\n"
        "keypoints.",
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
        help="where to write the PNG; an existing file is replaced only if an earlier preview wrote it",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace an existing --out file whatever wrote it"
    )
    p.add_argument("--configs", default="all", metavar="all|A,B", help="configurations (default: all)")
    p.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    p.add_argument("--tile-width", type=int, default=320, metavar="PX", help="tile width (default: 320)")
    p.add_argument("--columns", type=int, default=4, help="tiles per row (default: 4)")
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


def _source(args: argparse.Namespace, schema: KeypointSchema | None) -> _Source:
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
    image = _load(load_image, sample)
    return _Source(image, sample.keypoints, sample.visibility, sample.id, sample.id, schema)


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
    if path.exists() and not overwrite and not is_preview_png(path):
        raise CliError(
            f"--out {path} exists and was not written by 'keypoint-corrupt preview'; "
            "pass --overwrite to replace it, or choose another --out"
        )


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_sheet(path: Path, sheet: np.ndarray) -> None:
    """Write ``sheet`` (RGB) as a PNG carrying :data:`PNG_MARK`, atomically (temp file + rename)."""
    import cv2
    import numpy as np

    ok, buf = cv2.imencode(".png", np.ascontiguousarray(sheet[..., ::-1]))
    if not ok:
        raise OSError(f"could not encode PNG for {path}")
    png = buf.tobytes()
    end_of_ihdr = len(_PNG_SIGNATURE) + 25  # IHDR: length, type, 13 bytes, CRC
    png = png[:end_of_ihdr] + _png_chunk(b"tEXt", b"\0".join(PNG_MARK)) + png[end_of_ihdr:]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, png, fsync=False)


def run(args: argparse.Namespace) -> int:
    from keypoint_corrupt.cli.data import parse_configs
    from keypoint_corrupt.preview import contact_sheet
    from keypoint_corrupt.registry import CONFIGS

    check_out(args.out, args.overwrite)
    schema = _schema(args.schema)
    configs = parse_configs(args.configs)
    if configs is None:  # --configs defaults to "all"; None only when it is unset
        configs = CONFIGS
    if args.seed < 0:
        raise CliError(f"--seed must be >= 0, got {args.seed}")
    if args.tile_width < 16 or args.columns < 1:
        raise CliError("--tile-width must be >= 16 and --columns >= 1")
    src = _source(args, schema)
    label = src.label
    if src.schema is not None and len(src.schema) != len(src.keypoints):
        raise CliError(
            f"{'--schema' if schema is not None else 'schema'} {src.schema.name!r} has "
            f"{len(src.schema)} joints but {label} has {len(src.keypoints)} keypoints"
        )
    try:
        sheet = contact_sheet(
            src.image,
            src.keypoints,
            src.visibility,
            configs=configs,
            seed=args.seed,
            sample_id=src.sample_id,
            tile_width=args.tile_width,
            columns=args.columns,
            schema=src.schema,
        )
    except (TypeError, ValueError) as exc:
        raise CliError(f"cannot draw {label}: {exc}") from None
    try:
        write_sheet(args.out, sheet)
    except OSError as exc:
        raise CliError(f"cannot write {args.out}: {exc.strerror or exc}") from None
    if not args.quiet:
        print(
            f"wrote {args.out} ({sheet.shape[1]}x{sheet.shape[0]}): {label}, "
            f"clean + {len(configs)} configurations"
            + ("" if src.schema is None else f", schema {src.schema.name}")
        )
    return 0
