"""``keypoint-corrupt preview``: a contact sheet of one image under every configuration."""

from __future__ import annotations

import argparse
import json
import struct
import sys
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keypoint_corrupt._paths import check_output_path, write_atomic
from keypoint_corrupt.cli.main import CliError

if TYPE_CHECKING:  # numpy, OpenCV and the package load in run(): `preview --help` stays light
    import numpy as np

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

The sheet shows the clean image and each configuration, with the visible keypoints, the
keypoint ROI (yellow) and, for occlusion, the painted square (red).
An existing --out file is replaced only if an earlier 'preview' wrote it (or with --overwrite).
"""

#: PNG text chunk that marks a sheet written by this command: only such a file is replaced
#: without --overwrite.
PNG_MARK = (b"Software", b"keypoint-corrupt preview")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "preview",
        help="contact sheet PNG: the clean image and each configuration, keypoints and ROI drawn",
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


def read_keypoints(path: Path, image: Path) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints and visibility from the JSON forms that ``--keypoints`` accepts."""
    import numpy as np

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CliError(f"keypoints file not found: {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CliError(f"cannot read keypoints from {path}: {exc}") from None
    try:
        if isinstance(data, dict) and "annotations" in data and "images" in data:
            return _coco_keypoints(data, path, image)
        if isinstance(data, dict) and "keypoints" in data:
            kps, vis = _flat_triples(data["keypoints"], str(path))
            if data.get("visibility") is not None:
                vis = np.asarray(data["visibility"], dtype=bool).reshape(-1)
                if vis.shape != (len(kps),):
                    raise CliError(f"{path}: {len(vis)} visibility flags for {len(kps)} keypoints")
            return kps, vis
        if isinstance(data, list):
            return _flat_triples(data, str(path))
    except (TypeError, ValueError, KeyError) as exc:
        raise CliError(f"{path}: unreadable keypoints ({exc})") from None
    raise CliError(f"{path}: expected a keypoint list, a {{'keypoints': ...}} object or a COCO file")


def _coco_keypoints(document: dict[str, Any], path: Path, image: Path) -> tuple[np.ndarray, np.ndarray]:
    """The first annotation of a COCO file on an image named like ``image``."""
    from keypoint_corrupt.datasets import CocoIndex, CocoKeypoints

    try:
        samples = CocoKeypoints(CocoIndex(document, path))
    except ValueError as exc:  # names the file and the entry already
        raise CliError(str(exc)) from None
    for sample in samples:
        if sample.image_path.name == image.name:
            return sample.keypoints, sample.visibility
    raise CliError(f"{path} has no annotation for an image named {image.name}")


def _source(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, np.ndarray, str, str]:
    from keypoint_corrupt.datasets import STB, CocoKeypoints, bundled_sample_root, load_image

    if args.image is not None or args.keypoints is not None:
        if args.image is None or args.keypoints is None:
            raise CliError("--image and --keypoints go together")
        if args.dataset is not None:
            raise CliError("give either --dataset or --image/--keypoints, not both")
        kps, vis = read_keypoints(args.keypoints, args.image)
        return _load(load_image, args.image), kps, vis, "preview", str(args.image)
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
            ds = CocoKeypoints(args.annotations, args.images)
    except (FileNotFoundError, ValueError) as exc:
        raise CliError(str(exc)) from None
    if not -len(ds) <= args.index < len(ds):
        raise CliError(f"--index {args.index} is out of range: the dataset has {len(ds)} samples")
    sample = ds[args.index]
    return _load(load_image, sample), sample.keypoints, sample.visibility, sample.id, sample.id


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
    configs = parse_configs(args.configs)
    if configs is None:  # --configs defaults to "all"; None only when it is unset
        configs = CONFIGS
    if args.seed < 0:
        raise CliError(f"--seed must be >= 0, got {args.seed}")
    if args.tile_width < 16 or args.columns < 1:
        raise CliError("--tile-width must be >= 16 and --columns >= 1")
    image, kps, vis, sample_id, label = _source(args)
    try:
        sheet = contact_sheet(
            image,
            kps,
            vis,
            configs=configs,
            seed=args.seed,
            sample_id=sample_id,
            tile_width=args.tile_width,
            columns=args.columns,
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
        )
    return 0
