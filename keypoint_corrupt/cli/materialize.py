"""``keypoint-corrupt materialize``: write the corrupted subsets to disk, resumable and shardable."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keypoint_corrupt.cli.data import add_suite_options
from keypoint_corrupt.cli.main import COMMANDS, CliError

if TYPE_CHECKING:
    from keypoint_corrupt.materialize import DatasetSpec, MaterializeResult

# The materialize package (OpenCV, albumentations and, through it, torch) loads in run(), not
# here: `keypoint-corrupt --help` and `materialize --help` stay fast.

EXAMPLES = """examples:
  # the bundled synthetic STB sample (no dataset needed)
  keypoint-corrupt materialize --out out/sample

  # S-train* and S-val* of STB: 20% of each split per configuration, all cores
  keypoint-corrupt materialize --dataset stb --root /data/STB --out /data/STB_corrupt

  # a COCO keypoint file (split "val"), three configurations, JPEG output
  keypoint-corrupt materialize --dataset coco --annotations hands/test.json --images hands \\
      --configs defocus-13,motion-30,occlusion-20 --format jpg --out out/hands

  # COCO-C: the 15 ImageNet-C corruptions at 5 severities, every image, into
  # OUT/val/<corruption>/<severity>/images/ with OUT/val/<corruption>/<severity>/annotations.json
  keypoint-corrupt materialize --dataset coco --annotations val=person_keypoints_val2017.json \\
      --images val2017 --suite imagenet-c --severities 1-5 --out /data/coco-c

  # MPII-C from MMPose's MPII JSON (or COCO-C from a COCO file): --data reads either by its content
  keypoint-corrupt materialize --data mpii_val.json --images mpii/images --suite imagenet-c \\
      --severities 1-5 --out /data/mpii-c

  # several COCO files, one per split
  keypoint-corrupt materialize --dataset coco --annotations train=a/train.json \\
      --annotations val=a/val.json --images a/images --out out/a

  # a cluster job array of 8 jobs, then one merging run that writes the annotations
  keypoint-corrupt materialize --dataset stb --root /data/STB --out O --shard $TASK_ID/8
  keypoint-corrupt materialize --dataset stb --root /data/STB --out O

  # rewrite exactly the damaged or missing files (options read from O/manifest.json)
  keypoint-corrupt materialize --out O --repair

Re-running the same command after an interruption (even kill -9) resumes: completed files
are kept, the rest is written. 'keypoint-corrupt verify O' rechecks every file, and
'--repair' rewrites those it finds damaged. One run writes a folder at a time (shards:
one per part); a second one stops at once, naming the first one's pid.
Exit status: 0 complete, 1 some source images could not be read (the rest is complete) or
a repaired folder still fails verify, 2 bad options, a configuration without the files it
needs (frost's photographs) or one that fails on an image, a refused output folder, a folder
in use by another run, or a failed write (full disk, permission).
"""


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _shard(text: str) -> tuple[int, int]:
    try:
        k, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected K/N such as 1/4, got {text!r}") from None
    if n < 1 or not 1 <= k <= n:
        raise argparse.ArgumentTypeError(f"K/N needs 1 <= K <= N, got {text!r}")
    return k, n


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "materialize",
        help=COMMANDS["materialize"][1],
        description=(
            "Write each configuration's corrupted subset of each split to\n"
            "OUT/<split>/<config>/images/ with OUT/<split>/<config>/annotations.json (COCO\n"
            "keypoints), OUT/<split>/clean/annotations.json (the clean split, pointing at hard\n"
            "links or copies of the source images in OUT/<split>/clean/images/: the folder is\n"
            "self-contained) and OUT/manifest.json (versions, settings, and every file's source\n"
            "and SHA-256). With --suite S, each of the suite's corruptions at each severity goes\n"
            "to OUT/<split>/<corruption>/<severity>/ (images/ and annotations.json), every image\n"
            "corrupted once with all its annotations, as COCO-C is laid out. The bytes depend only\n"
            "on the sources, the seed and the options: not on --workers, --shard or\n"
            "interruptions. See docs/cli.md."
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = p.add_argument_group("source (default: the bundled synthetic STB sample)")
    src.add_argument(
        "--data",
        type=Path,
        metavar="PATH",
        help="a COCO keypoint .json file or MMPose's MPII .json (told apart by their content), or an "
        "STB root; one split (--splits NAME, default 'val'); excludes --dataset",
    )
    src.add_argument(
        "--dataset", choices=("stb", "coco", "mpii"), help="dataset reader (mpii: MMPose's MPII JSON)"
    )
    src.add_argument("--root", type=Path, metavar="DIR", help="STB root (labels/ and images/)")
    src.add_argument(
        "--annotations",
        action="append",
        metavar="[SPLIT=]FILE",
        help="COCO keypoint file (MMPose MPII JSON with --dataset mpii); repeat with SPLIT=FILE for "
        "several splits (an unnamed file is the split named by --splits, else 'val')",
    )
    src.add_argument(
        "--images", type=Path, metavar="DIR", help="COCO / MPII image root (default: the JSON's folder)"
    )
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    p.add_argument(
        "--splits",
        type=_csv,
        metavar="A,B",
        help="splits to write (default: train,val for STB; every --annotations split for COCO)",
    )
    p.add_argument(
        "--configs",
        default=None,
        metavar="all|A,B",
        help="configurations (default: all eleven; see 'keypoint-corrupt list'); excludes --suite",
    )
    add_suite_options(p)
    p.add_argument(
        "--fraction",
        type=float,
        default=None,
        help="share corrupted per configuration (default: 0.2; with --suite, 1.0: every image)",
    )
    p.add_argument("--seed", type=int, default=None, help="seed of the draws and the noise (default: 0)")
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="processes (default: the cores this process may use)",
    )
    p.add_argument("--format", default=None, metavar="png|jpg", help="image format (default: png)")
    p.add_argument("--jpeg-quality", type=int, default=None, metavar="Q", help="JPEG quality (default: 95)")
    p.add_argument(
        "--png-compression",
        type=int,
        default=None,
        metavar="L",
        help="zlib level 0-9 (default: OpenCV's, the fastest measured; levels 1-3 take 2-3x as long "
        "for files at most ~20%% smaller)",
    )
    p.add_argument("--shard", type=_shard, metavar="K/N", help="write only part K of N (1-based)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an output folder written with other settings (or by something else)",
    )
    p.add_argument(
        "--fsync",
        action="store_true",
        help="fsync every file before its rename and its folder after it (durable across power "
        "loss; 1-4 ms per file). Without it a run is still safe against kill -9 at any moment",
    )
    p.add_argument(
        "--repair",
        action="store_true",
        help="check every file's SHA-256 and rewrite exactly those that differ or are missing (and "
        "damaged annotation files or manifest), then verify; options not given are read from "
        "OUT/manifest.json",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar, notes or summary")
    p.set_defaults(func=run)


def _spec(args: argparse.Namespace, note: Callable[[str], None]) -> tuple[DatasetSpec, list[str] | None]:
    from keypoint_corrupt.materialize import DatasetSpec

    splits = args.splits
    if args.data is not None:
        spec = _data_spec(args)
        return spec, splits or (list(spec.split_names()) if spec.kind != "stb" else None)
    if args.dataset is None:
        if args.root or args.annotations or args.images:
            raise CliError("--root, --annotations and --images need --dataset stb, coco or mpii")
        from keypoint_corrupt.datasets import bundled_sample_root

        root = bundled_sample_root()
        note(f"no --dataset given: using the bundled synthetic STB sample ({root})")
        return DatasetSpec("stb", root, bundled=True), splits
    if args.dataset == "stb":
        if args.root is None:
            raise CliError("--dataset stb needs --root DIR")
        if args.annotations or args.images:
            raise CliError("--annotations and --images are for --dataset coco or mpii")
        return DatasetSpec("stb", args.root), splits
    if not args.annotations:
        raise CliError(f"--dataset {args.dataset} needs --annotations FILE")
    if args.root is not None:
        raise CliError(f"--root is for --dataset stb ({args.dataset.upper()} images: --images DIR)")
    pairs: list[tuple[str, Path]] = []
    for value in args.annotations:
        name, sep, path = value.partition("=")
        if not sep:
            if len(args.annotations) > 1:
                raise CliError("with several --annotations, name each split: --annotations SPLIT=FILE")
            name, path = (splits[0] if splits and len(splits) == 1 else "val"), value
        if not name or not path:
            raise CliError(f"--annotations expects [SPLIT=]FILE, got {value!r}")
        pairs.append((name, Path(path)))
    names = [n for n, _ in pairs]
    if len(set(names)) != len(names):
        raise CliError(f"--annotations names a split twice: {', '.join(names)}")
    for _, path in pairs:
        _check_kind(path, args.dataset)
    return DatasetSpec(args.dataset, annotations=tuple(pairs), images=args.images), splits or names


def _check_kind(path: Path, kind: str) -> None:
    """Refuse an ``--annotations`` file of the other format (a missing one is the plan's to name)."""
    from keypoint_corrupt.cli.data import json_kind

    if not path.is_file():
        return
    found = json_kind(path, "--annotations")
    if found != kind:
        names = {"coco": "a COCO keypoint file", "mpii": "MMPose's MPII JSON"}
        raise CliError(
            f"--annotations {path} is {names[found]}, not {names[kind]}: use --dataset {found} "
            f"(or --data {path})"
        )


def _data_spec(args: argparse.Namespace) -> DatasetSpec:
    """``--data PATH``: a COCO or MPII file told apart by its content (one split), or an STB root."""
    from keypoint_corrupt.cli.data import is_stb_root, json_kind
    from keypoint_corrupt.materialize import DatasetSpec

    if args.dataset or args.root or args.annotations:
        raise CliError("--data excludes --dataset, --root and --annotations: give one source")
    path = args.data
    if path.is_file():
        if args.splits and len(args.splits) != 1:
            raise CliError(f"--data {path} is one split: --splits names one, got {','.join(args.splits)}")
        split = args.splits[0] if args.splits else "val"
        return DatasetSpec(json_kind(path), annotations=((split, path),), images=args.images)
    if path.is_dir() and is_stb_root(path):
        if args.images is not None:
            raise CliError("--images is for a COCO or MPII --data file (an STB root holds its images)")
        return DatasetSpec("stb", path)
    if not path.exists():
        raise CliError(f"--data not found: {path}")
    raise CliError(f"--data {path}: not a COCO or MMPose MPII .json file, nor an STB root (labels/)")


_DEFAULTS = {"seed": 0, "image_format": "png", "jpeg_quality": 95}


def _settings(args: argparse.Namespace, note: Callable[[str], None]) -> tuple[DatasetSpec, dict[str, Any]]:
    """Return the dataset and the byte-affecting options.

    Each is as given, else (``--repair``) as recorded in the folder, else the default.
    """
    from keypoint_corrupt.materialize.repair import recorded_options

    recorded = recorded_options(args.out) if args.repair else None
    if args.repair and recorded is None:
        note(f"--repair: no readable manifest in {args.out}: using the options given (and their defaults)")
    recorded = recorded or {}
    given = {
        "fraction": args.fraction,
        "seed": args.seed,
        "image_format": args.format,
        "jpeg_quality": args.jpeg_quality,
        "png_compression": args.png_compression,
    }
    values = {k: v if v is not None else recorded.get(k, _DEFAULTS.get(k)) for k, v in given.items()}
    chosen = args.dataset or args.data or args.root or args.annotations or args.images
    if not chosen and "dataset" in recorded:
        spec, splits = recorded["dataset"], args.splits
    else:
        spec, splits = _spec(args, note)
    values["splits"] = tuple(splits or recorded.get("splits") or ("train", "val"))
    values.update(_chosen(args, recorded))
    if values["fraction"] is None:  # a suite is written whole, as COCO-C is
        values["fraction"] = 1.0 if values["suite"] is not None else 0.2
    if args.repair and not recorded:
        _check_annotations_agree(args.out, values)
    return spec, values


def _chosen(args: argparse.Namespace, recorded: dict[str, Any]) -> dict[str, Any]:
    """Return ``suite``, ``severities`` and ``configs``: as given, else as recorded, else all eleven."""
    from keypoint_corrupt.cli.data import configs_from_suite, parse_configs, suite_severities
    from keypoint_corrupt.registry import CONFIGS

    suite, configs = configs_from_suite(args)
    if suite is not None and configs is not None:
        return {"suite": suite.name, "severities": suite_severities(suite, configs), "configs": None}
    if args.configs is not None:
        return {"suite": None, "severities": None, "configs": tuple(parse_configs(args.configs) or CONFIGS)}
    if recorded.get("suite") is not None:
        return {"suite": recorded["suite"], "severities": recorded.get("severities"), "configs": None}
    return {"suite": None, "severities": None, "configs": tuple(recorded.get("configs") or CONFIGS)}


def _check_annotations_agree(out: Path, values: dict[str, Any]) -> None:
    """``--repair`` without a manifest: refuse options other than those the annotation files record."""
    from keypoint_corrupt.materialize.repair import annotation_differences
    from keypoint_corrupt.suites import get_suite

    if values["suite"] is not None:  # a suite's configurations, at the severities asked for
        values = {**values, "configs": get_suite(values["suite"]).configs(values["severities"])}
    diffs = annotation_differences(out, values)
    if diffs:
        raise CliError(
            f"--repair: {out} has no readable manifest and its annotation files were written with other "
            f"options ({'; '.join(diffs)}); give the original options, or rewrite the whole output with "
            "--overwrite"
        )


def run(args: argparse.Namespace) -> int:
    from keypoint_corrupt.materialize import (
        MaterializeError,
        MaterializeOptions,
        default_workers,
        materialize,
    )

    def note(msg: str) -> None:
        if not args.quiet:
            print(f"keypoint-corrupt materialize: {msg}", file=sys.stderr)

    def log(msg: str) -> None:
        if msg.startswith("error:") or not args.quiet:
            print(f"keypoint-corrupt materialize: {msg}", file=sys.stderr)

    spec, values = _settings(args, note)
    if not 0.0 < values["fraction"] <= 1.0:
        raise CliError(f"--fraction must be in (0, 1], got {values['fraction']}")
    if values["seed"] < 0:
        raise CliError(f"--seed must be >= 0, got {values['seed']}")
    workers = default_workers() if args.workers is None else args.workers
    if workers < 1:
        raise CliError(f"--workers must be >= 1, got {workers}")
    options = MaterializeOptions(
        out=args.out,
        dataset=spec,
        workers=workers,
        shard=args.shard,
        overwrite=args.overwrite,
        fsync=args.fsync,
        repair=args.repair,
        **values,
    )
    progress = sys.stderr.isatty() and not args.quiet
    try:
        result = materialize(options, progress=progress, log=log)
    except MaterializeError as exc:
        raise CliError(str(exc)) from None
    if args.repair:
        return _report_repair(args, result)
    if not args.quiet:
        where = f"shard {result.shard[0]}/{result.shard[1]} of {args.out}" if result.shard else str(args.out)
        print(
            f"wrote {result.written:,} images in {result.seconds:.1f} s ({result.rate:.1f} images/s); "
            f"{result.already_done:,} already on disk; {len(result.errors)} source error(s); {where}"
        )
        if result.shard and not result.errors:
            print(
                "when every shard has finished, run the same command without --shard to merge: it finds "
                "the images written and writes manifest.json and the annotations"
            )
    if result.errors:
        _source_errors(result)
        return 1
    return 0


def _source_errors(result: MaterializeResult) -> None:
    print(
        f"keypoint-corrupt materialize: {len(result.errors)} source image(s) could not be read (listed "
        f"above and under 'errors' in {result.manifest.name}); everything else was written",
        file=sys.stderr,
    )


def _report_repair(args: argparse.Namespace, result: MaterializeResult) -> int:
    """Say what ``--repair`` rewrote, then verify the folder: 0 if it is intact now, else 1."""
    from keypoint_corrupt.materialize import verify_output

    report = verify_output(args.out)
    if not args.quiet:
        if result.rewritten:
            print(f"repaired {args.out}: rewrote {len(result.rewritten):,} file(s):")
            for path in result.rewritten:
                print(f"  {path}")
        else:
            print(f"nothing to repair in {args.out}: every file matches")
        if report.ok:
            print(
                f"verify: OK, {report.files:,} image files and {report.annotation_files} annotation "
                "files match"
            )
    if result.errors:
        _source_errors(result)
    if not report.ok:
        for problem in report.problems:
            print(problem)
        print(
            f"keypoint-corrupt materialize: after --repair, {len(report.problems)} problem(s) remain in "
            f"{args.out} (listed above)",
            file=sys.stderr,
        )
    return 0 if report.ok and not result.errors else 1
