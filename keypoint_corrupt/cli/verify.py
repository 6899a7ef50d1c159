"""``keypoint-corrupt verify``: recheck a materialised folder against its manifest."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from keypoint_corrupt.cli.main import COMMANDS, CliError

EXAMPLES = """examples:
  keypoint-corrupt verify out/sample
  keypoint-corrupt verify /data/STB_corrupt --quiet && echo intact

Checks every image file listed in OUT/manifest.json (present, size, SHA-256), every
annotation file (SHA-256, image and annotation counts, the images it lists), reports an
incomplete run or source errors, and files under images/ that the manifest does not list.
When files are damaged or missing, it prints the command that rewrites exactly those:
  keypoint-corrupt materialize --repair --out OUT
It reads nothing but the folder and takes no lock (it warns if a run is writing it).
Exit status: 0 everything matches, 1 problems (listed on stdout), 2 bad arguments.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "verify",
        help=COMMANDS["verify"][1],
        description="Recheck every file of a 'keypoint-corrupt materialize' output folder\n"
        "against its manifest.json.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("out", type=Path, metavar="OUT", help="the folder given to materialize --out")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing; only the exit status")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from keypoint_corrupt.materialize import verify_output  # not at import: `verify --help` stays fast

    if not args.out.is_dir():
        raise CliError(f"{args.out} is not a folder")
    bar = None
    if sys.stderr.isatty() and not args.quiet:
        import json

        from tqdm import tqdm

        try:
            total = len(json.loads((args.out / "manifest.json").read_text(encoding="utf-8"))["files"])
        except (OSError, ValueError, KeyError, TypeError):
            total = None
        bar = tqdm(total=total, unit="file", desc="verify", file=sys.stderr, dynamic_ncols=True)
    try:
        report = verify_output(args.out, progress=(lambda _n: bar.update(1)) if bar is not None else None)
    finally:
        if bar is not None:
            bar.close()
    if not args.quiet:
        for note in report.notes:
            print(f"keypoint-corrupt verify: warning: {note}", file=sys.stderr)
    if report.ok:
        if not args.quiet:
            print(
                f"OK: {report.files:,} image files and {report.annotation_files} annotation files match "
                f"{args.out / 'manifest.json'}"
            )
        return 0
    if not args.quiet:
        for problem in report.problems:
            print(problem)
        print(
            f"{len(report.problems)} problem(s) in {args.out} ({report.files:,} image files, "
            f"{report.annotation_files} annotation files checked)",
            file=sys.stderr,
        )
        if report.repair_hint:
            print(report.repair_hint, file=sys.stderr)
    return 1
