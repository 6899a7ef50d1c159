"""``keypoint-corrupt train``: train PoseNet (dense, depthwise) or NerPE on S-train or S-train*."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from keypoint_corrupt._model_names import MODEL_NAMES
from keypoint_corrupt._paths import check_output_path
from keypoint_corrupt.cli.main import COMMANDS, CliError
from keypoint_corrupt.cli.options import DATA_HELP

# The files a run writes in --out: an existing folder may hold them only as an earlier run's.
RUN_FILES = ("last.pt", "model.pt", "loss_curve.png", "history.json")

EXAMPLES = """examples:
  # a quick run on the bundled sample, on the CPU
  keypoint-corrupt train --model posenet-dense --epochs 1 --batch-size 4 --device cpu --out runs/try

  # the reference protocol (2): train on S-train* built on the fly from STB, on a GPU
  keypoint-corrupt train --model posenet-depthwise --data /data/STB --train-set 'S-train*' \\
      --epochs 40 --device cuda --out runs/depthwise-star

  # from a materialised output (train/clean plus every train/<config> subset)
  keypoint-corrupt train --model nerpe --data /data/STB_corrupt --train-set 'S-train*' --out runs/nerpe

  # continue an interrupted run (same --out)
  keypoint-corrupt train --model posenet-dense --data /data/STB --out runs/dense --epochs 40 --resume

  # FreiHAND-order (hand21) data: the crop centres on the middle MCP, found by name
  keypoint-corrupt train --model posenet-dense --data freihand.json --images imgs --out runs/frei

Writes OUT/last.pt (every epoch and on Ctrl-C), OUT/model.pt, OUT/loss_curve.png and
OUT/history.json. The crop is centred on the data's crop anchor joints (the middle-finger MCP
for hands), found by name in the data's keypoint schema (STB's, the COCO file's, a materialised
output's train/clean file's; --schema NAME to name the joint order), or on --center-joint N (a
joint index of the data; 12 when no schema is known).
--out must be a new or empty folder, or hold an earlier run (continued with --resume); it is
checked, like every option, before any work starts.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help=COMMANDS["train"][1],
        description="Train a bundled reference model on hand3d crops of S-train or S-train*.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", required=True, choices=MODEL_NAMES)
    p.add_argument("--data", metavar="PATH", help=DATA_HELP)
    p.add_argument("--images", metavar="DIR", help="image folder of a COCO --data file")
    p.add_argument(
        "--val-data", metavar="PATH", help="validation set (STB root or COCO .json) for a COCO --data"
    )
    p.add_argument("--train-set", choices=("S-train", "S-train*"), default="S-train")
    p.add_argument("--fraction", type=float, default=0.2, help="corrupted share per configuration (S-train*)")
    p.add_argument("--seed", type=int, default=0, help="seeds initialisation, data order, subsets and noise")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, help="initial Adam rate (default: 1e-4 PoseNet, 1e-3 NerPE)")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cuda, cuda:1 or cpu")
    p.add_argument("--workers", type=int, default=0, help="DataLoader workers (default 0)")
    p.add_argument("--crop-size", type=int, default=256, help="network input side (hand3d: 256)")
    p.add_argument(
        "--schema",
        metavar="NAME",
        help="joint order of --data: a preset such as rhd, hand21, stb_rhd, coco17 (see docs/datasets.md); "
        "the crop centres on its anchor joints by name (default: the data's own schema)",
    )
    p.add_argument(
        "--center-joint",
        type=int,
        help="joint index the crop is centred on instead (default: the schema's anchor; 12 without one)",
    )
    p.add_argument(
        "--out", required=True, metavar="DIR", help="output folder (new, or an earlier run's with --resume)"
    )
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def check_out(out: Path, resume: bool) -> None:
    """Refuse, before any work, an ``--out`` that is not a folder or holds files a run did not write."""
    try:
        check_output_path(out, want="folder")
    except ValueError as exc:
        raise CliError(str(exc)) from None
    last = out / "last.pt"
    if resume and not last.is_file():
        raise CliError(f"--resume: no checkpoint at {last}")
    if not resume and last.is_file():
        raise CliError(
            f"{out} already holds a run (last.pt); pass --resume to continue it or choose another --out"
        )
    if not last.is_file():
        found = [name for name in RUN_FILES if (out / name).exists()]
        if found:
            raise CliError(
                f"--out {out} holds {', '.join(found)} but no last.pt (not a 'keypoint-corrupt train' "
                "run); choose another --out"
            )


def _check_args(args: argparse.Namespace) -> None:
    for name in ("epochs", "batch_size", "crop_size"):
        if getattr(args, name) < 1:
            raise CliError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if not 0 < args.fraction <= 1:
        raise CliError(f"--fraction must be in (0, 1], got {args.fraction}")
    if args.center_joint is not None and args.center_joint < 0:
        raise CliError(f"--center-joint must be >= 0, got {args.center_joint}")
    if args.schema is not None:
        if args.center_joint is not None:
            raise CliError("pass --schema or --center-joint, not both")
        from keypoint_corrupt.schema import get_schema

        try:
            get_schema(args.schema)
        except ValueError as exc:
            raise CliError(f"--schema: {exc}") from None
    check_out(Path(args.out), args.resume)


def _joints(items: Any) -> int:
    import numpy as np

    try:
        return int(np.asarray(items[0]["keypoints"]).shape[0])
    except (OSError, ValueError) as exc:
        raise CliError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    _check_args(args)
    try:
        from keypoint_corrupt.models import train
    except ImportError as exc:
        raise CliError(str(exc)) from None
    from keypoint_corrupt.cli.data import training_data

    out = Path(args.out)
    train_items, val_items, info, schema = training_data(
        args.data,
        args.images,
        args.train_set,
        fraction=args.fraction,
        seed=args.seed,
        val_data=args.val_data,
        schema=args.schema,
    )
    if len(train_items) == 0:
        raise CliError(f"--data {args.data or 'bundled sample'}: no training images")
    joints = _joints(train_items)
    if args.center_joint is not None:
        schema = None  # an explicit joint index wins over the data's schema
        if args.center_joint >= joints:
            raise CliError(
                f"--center-joint {args.center_joint} is out of range: the data has {joints} joints "
                f"(0..{joints - 1})"
            )
    elif schema is not None and len(schema) != joints:
        raise CliError(
            f"--schema {schema.name}: {len(schema)} joints, but the data has {joints}"
            if args.schema
            else f"the data's schema {schema.name!r} has {len(schema)} joints, its keypoints {joints}"
        )
    from keypoint_corrupt.models._torch import resolve_device

    try:
        device = str(resolve_device(args.device))
    except (RuntimeError, ValueError) as exc:
        raise CliError(f"--device {args.device}: {exc}") from None
    if not args.quiet:
        val = f", validating on {len(val_items)}" if val_items is not None else ""
        print(
            f"training {args.model} on {args.train_set} ({len(train_items)} images{val}) on {device}",
            file=sys.stderr,
        )
    try:
        result = train(
            args.model,
            train_items,
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            device=device,
            seed=args.seed,
            out_dir=out,
            resume=args.resume,
            val_dataset=val_items,
            train_set=args.train_set,
            crop_size=args.crop_size,
            num_workers=args.workers,
            center_joint=args.center_joint,
            schema=schema,
            progress=not args.quiet and sys.stderr.isatty(),
            info=info,
        )
    except (ValueError, OSError) as exc:
        raise CliError(str(exc)) from None
    last = result.epoch_losses[-1] if result.epoch_losses else float("nan")
    epe = f", validation mean EPE {result.val_epe[-1]:.2f} px" if result.val_epe else ""
    print(
        f"trained {args.model} for {args.epochs} epoch(s) in {result.seconds:.1f} s: "
        f"final loss {last:.4g}{epe}; weights {result.final}"
    )
    return 0
