"""``keypoint-corrupt synth-stb``: write a synthetic dataset in STB's exact layout."""

from __future__ import annotations

import argparse
from pathlib import Path

from keypoint_corrupt._paths import check_output_path
from keypoint_corrupt._stb_layout import BUNDLED_SAMPLE_ARGS, STB_SEQUENCES
from keypoint_corrupt.cli.main import COMMANDS, CliError

EXAMPLES = f"""examples:
  keypoint-corrupt synth-stb --out stb_synth
  keypoint-corrupt synth-stb --out stb_val --frames-per-sequence 50 --sequences B1Counting B1Random
  keypoint-corrupt synth-stb --out stb_big --frames-per-sequence 1500 --seed 3 --overwrite

The defaults ({BUNDLED_SAMPLE_ARGS["frames_per_sequence"]} frames per sequence, all 12 sequences, seed \
{BUNDLED_SAMPLE_ARGS["seed"]}) reproduce the sample bundled in the package.
Sequences: {" ".join(STB_SEQUENCES)}
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "synth-stb",
        help=COMMANDS["synth-stb"][1],
        description="Write a synthetic Stereo Hand Pose (STB) dataset in its exact on-disk layout: "
        "images/<seq>/{BB_left,BB_right,SK_color}_<i>.png (640x480) with a drawn left hand "
        "at the labelled joints, and labels/<seq>_BB.mat, labels/<seq>_SK.mat (handPara, mm).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="destination folder")
    p.add_argument(
        "--frames-per-sequence",
        type=int,
        default=BUNDLED_SAMPLE_ARGS["frames_per_sequence"],
        metavar="N",
        help="frames per sequence (default: %(default)s; the real dataset has 1500)",
    )
    p.add_argument(
        "--sequences",
        nargs="+",
        metavar="SEQ",
        help="sequences to write (default: all 12, B1Counting ... B6Random)",
    )
    p.add_argument(
        "--seed", type=int, default=BUNDLED_SAMPLE_ARGS["seed"], help="seed (default: %(default)s)"
    )
    p.add_argument(
        "--overwrite", action="store_true", help="write into a folder that already holds STB files"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out: Path = args.out
    if args.frames_per_sequence < 1:
        raise CliError(f"--frames-per-sequence must be >= 1, got {args.frames_per_sequence}")
    if args.seed < 0:
        raise CliError(f"--seed must be >= 0, got {args.seed}")
    unknown = [s for s in args.sequences or () if s not in STB_SEQUENCES]
    if unknown:
        raise CliError(f"unknown sequence(s) {', '.join(unknown)}; valid: {', '.join(STB_SEQUENCES)}")
    if args.sequences and len(set(args.sequences)) != len(args.sequences):
        raise CliError(f"--sequences repeats a sequence: {' '.join(args.sequences)}")
    try:
        check_output_path(out, want="folder")
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if not args.overwrite and any(
        (out / sub).is_dir() and any((out / sub).iterdir()) for sub in ("images", "labels")
    ):
        raise CliError(f"{out} already holds an STB tree; pass --overwrite to replace its files")
    from keypoint_corrupt.datasets.synth import write_synthetic_stb

    seqs = tuple(args.sequences) if args.sequences else STB_SEQUENCES
    try:
        write_synthetic_stb(out, args.frames_per_sequence, seqs, args.seed)
    except OSError as exc:
        where = exc.filename if exc.filename is not None else out
        raise CliError(f"cannot write {where}: {exc.strerror or exc}") from None
    n = len(seqs) * args.frames_per_sequence
    print(
        f"wrote {len(seqs)} sequences x {args.frames_per_sequence} frames ({3 * n} images, "
        f"{2 * len(seqs)} label files) to {out}"
    )
    return 0
