"""``keypoint-corrupt benchmark``: Table II (accuracy under each corruption) and, with --speed, Table I."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from keypoint_corrupt._model_names import MODEL_NAMES
from keypoint_corrupt.cli.main import CliError
from keypoint_corrupt.cli.options import DATA_HELP

DEFAULT_OUT = "benchmark-report"
# What --speed writes with --out (benchmark.speed.write_speed_report), its JSON document first.
SPEED_FILES = ("speed.json", "speed.md")
SPEED_FORMAT = "keypoint-corrupt/speed-report"

EXAMPLES = """examples:
  # a trained checkpoint on the real STB validation split, all eleven configurations
  keypoint-corrupt benchmark --model posenet-dense --weights dense.pt --data /data/STB --out reports/dense

  # two models side by side (difference columns as in Table II), on a GPU with bf16
  keypoint-corrupt benchmark --weights dense.pt --compare posenet-depthwise --compare-weights dw.pt \\
      --device cuda --precision bf16 --data /data/STB

  # your own model: a function predict(images[, crops]) -> B x J x 2 in image pixels
  keypoint-corrupt benchmark --predict mypkg.pose:predict --data val.json --images /data/imgs

  # read back a materialised output instead of corrupting on the fly (same numbers)
  keypoint-corrupt benchmark --weights dense.pt --data corrupted_out/ --split val

  # Table I: batch-1 latency and large-batch throughput of dense, depthwise and NerPE
  keypoint-corrupt benchmark --speed --device cuda --precision bf16 --compile

--data is an STB root (labels/ + images/), a COCO keypoint file (.json, with --images for
its image folder) or a 'keypoint-corrupt materialize' output; default: the bundled sample.
--out is checked before any work: a new folder, or one whose report files (if any) are an
earlier benchmark's, which are replaced; any other file of those names is never overwritten.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "benchmark",
        help="benchmark a keypoint model under every corruption (Table II) or its speed (Table I)",
        description="Evaluate a keypoint model on the clean split and on each corruption configuration "
        "(mean / median EPE and PCK AUC as hand3d computes them, mPC and rPC), and write report.md, "
        "report.csv, report.json, pck_curves.png and examples.png. With --speed, measure inference "
        "speed instead (Table I).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    m = p.add_argument_group("model")
    m.add_argument("--model", choices=MODEL_NAMES, help="bundled model (checked against --weights' header)")
    m.add_argument(
        "--weights", metavar="W", help="checkpoint of the model (keypoint-corrupt train / models.save)"
    )
    m.add_argument(
        "--predict",
        metavar="MODULE:FUNCTION",
        help="your own predict callable (module:function or path/file.py:function) instead of --model",
    )
    m.add_argument("--label", help="name of the model in the report")
    c = p.add_argument_group("comparison")
    c.add_argument(
        "--compare", choices=MODEL_NAMES, metavar="MODEL", help="a second bundled model to compare"
    )
    c.add_argument("--compare-weights", metavar="W", help="checkpoint of the second model")
    c.add_argument("--compare-predict", metavar="MODULE:FUNCTION", help="a second predict callable")
    c.add_argument("--compare-label", help="name of the second model in the report")
    d = p.add_argument_group("data")
    d.add_argument("--data", metavar="PATH", help=DATA_HELP)
    d.add_argument("--images", metavar="DIR", help="image folder of a COCO --data file")
    d.add_argument("--split", help="STB split (default val) or split of a materialised output")
    d.add_argument(
        "--configs",
        metavar="all|A,B",
        help="configurations: all or a comma-separated list (default: the eleven; for a "
        "materialised output, those it holds)",
    )
    d.add_argument(
        "--fraction", type=float, default=0.2, help="share corrupted per configuration (default 0.2)"
    )
    d.add_argument("--seed", type=int, default=0, help="seed of the subsets and the noise (default 0)")
    r = p.add_argument_group("runtime")
    r.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:1 ...")
    r.add_argument("--batch-size", type=int, default=16, help="images per predict call (default 16)")
    r.add_argument(
        "--workers",
        type=int,
        default=None,
        help="DataLoader workers that load, corrupt and crop (default: min(8, cores - 1) on CUDA, 0 on CPU)",
    )
    r.add_argument(
        "--precision", choices=("fp32", "bf16"), default="fp32", help="bf16: autocast (default fp32)"
    )
    r.add_argument(
        "--channels-last",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="channels-last memory format (default: on CUDA)",
    )
    r.add_argument("--compile", action="store_true", help="torch.compile the network and decoding")
    r.add_argument("--cuda-graphs", action="store_true", help="replay CUDA graphs (CUDA only)")
    r.add_argument("--crop-size", type=int, default=256, help="network input crop (hand3d: 256)")
    r.add_argument("--nerpe-decode", choices=("standard", "progressive"), default="standard")
    o = p.add_argument_group("output")
    o.add_argument(
        "--out",
        metavar="DIR",
        help=f"output folder (default ./{DEFAULT_OUT}; --speed: print only); an earlier report "
        "there is replaced, other files of the same names are refused",
    )
    o.add_argument(
        "--train-set",
        choices=("S-train", "S-train*"),
        help="published protocol shown alongside on STB (default: the checkpoint's, else S-train)",
    )
    o.add_argument("--examples", type=int, default=1, help="images per row in examples.png (default 1)")
    o.add_argument("--no-plots", action="store_true", help="skip pck_curves.png and examples.png")
    o.add_argument("--no-progress", action="store_true", help="no progress bars")
    s = p.add_argument_group("speed (Table I)")
    s.add_argument("--speed", action="store_true", help="measure inference speed instead of accuracy")
    s.add_argument(
        "--speed-models",
        nargs="+",
        choices=MODEL_NAMES,
        default=list(MODEL_NAMES),
        metavar="MODEL",
        help="models to time: posenet-dense, posenet-depthwise, nerpe (default: all)",
    )
    s.add_argument("--image-size", type=int, default=256, help="crop side to time (default 256)")
    s.add_argument("--iters", type=int, help="timed batch-1 calls (default 100 on CUDA, 10 on CPU)")
    s.add_argument("--warmup", type=int, help="warm-up calls (default 10 on CUDA, 2 on CPU)")
    s.add_argument("--large-batch", type=int, help="throughput batch (default 256 on CUDA, 8 on CPU)")
    s.add_argument("--throughput-iters", type=int, help="throughput calls (default 10 on CUDA, 2 on CPU)")
    s.add_argument(
        "--check-images",
        type=int,
        default=32,
        help="with --precision bf16: images of --data on which mean EPE is compared with fp32 (default 32)",
    )
    p.set_defaults(func=run, _parser=p)


# ----------------------------------------------------------------------------------------------


def _command_line(args: argparse.Namespace) -> str:
    """The command, rebuilt from the options that differ from their defaults."""
    parser: argparse.ArgumentParser | None = getattr(args, "_parser", None)
    words = ["keypoint-corrupt", "benchmark"]
    if parser is None:
        return " ".join(words)
    for action in parser._actions:
        if not action.option_strings or action.dest in ("help", "_parser"):
            continue
        value = getattr(args, action.dest, None)
        if value == action.default or value is None:
            continue
        flag = (
            action.option_strings[-1]
            if action.option_strings[0].startswith("--")
            else action.option_strings[0]
        )
        if isinstance(action, argparse.BooleanOptionalAction):
            words.append(
                f"--{action.dest.replace('_', '-')}" if value else f"--no-{action.dest.replace('_', '-')}"
            )
        elif action.nargs == 0:
            words.append(flag)
        elif isinstance(value, list):
            words += [flag, *map(str, value)]
        else:
            words += [flag, str(value)]
    return shlex.join(words)


def _check_args(args: argparse.Namespace) -> None:
    for name in ("batch_size", "crop_size", "image_size"):
        if getattr(args, name) < 1:
            raise CliError(f"--{name.replace('_', '-')} must be positive")
    if args.crop_size % 8 or args.image_size % 8:
        raise CliError("--crop-size and --image-size must be multiples of 8")
    if args.workers is not None and args.workers < 0:
        raise CliError("--workers must be >= 0")
    if not 0.0 < args.fraction <= 1.0:
        raise CliError("--fraction must be in (0, 1]")
    if args.examples < 0:
        raise CliError("--examples must be >= 0")
    from keypoint_corrupt.cli.data import parse_configs

    args.configs = parse_configs(args.configs)


def _check_out(args: argparse.Namespace) -> Path | None:
    """The output folder, refused before any work if writing there would replace a foreign file."""
    from keypoint_corrupt.benchmark.report import check_output_dir

    if args.speed and not args.out:
        return None
    try:
        if args.speed:
            return check_output_dir(args.out, SPEED_FILES, SPEED_FORMAT)
        return check_output_dir(args.out or DEFAULT_OUT)
    except OSError as exc:
        raise CliError(f"--out {exc}") from None


def _default_workers(device: str) -> int:
    cuda = device.startswith("cuda")
    if device == "auto":
        try:
            import torch

            cuda = torch.cuda.is_available()
        except ImportError:
            cuda = False
    return max(0, min(8, (os.cpu_count() or 1) - 1)) if cuda else 0


def _predictor(
    args: argparse.Namespace, model: str | None, weights: str | None, spec: str | None, which: str
) -> tuple[Any, str]:
    if spec:
        if model or weights:
            flags = "--compare / --compare-weights" if which else "--model / --weights"
            raise CliError(f"--{which}predict replaces {flags}; give one or the other")
        from keypoint_corrupt.benchmark import load_callable

        try:
            return load_callable(spec), spec
        except (ImportError, AttributeError, TypeError, ValueError, FileNotFoundError) as exc:
            raise CliError(f"--{which}predict {spec}: {exc}") from None
    if not weights:
        flag = "--compare-weights" if which else "--weights"
        raise CliError(f"{flag} is required: a trained checkpoint (or use --{which}predict MODULE:FUNCTION)")
    try:
        from keypoint_corrupt.benchmark import load_predictor

        pred = load_predictor(
            model,
            weights,
            device=args.device,
            crop_size=args.crop_size,
            precision=args.precision,
            channels_last=args.channels_last,
            compile=args.compile,
            cuda_graphs=args.cuda_graphs,
            nerpe_mode=args.nerpe_decode,
        )
    except ImportError as exc:
        raise CliError(f"the bundled models need PyTorch: {exc}") from None
    except (FileNotFoundError, ValueError, RuntimeError, KeyError) as exc:
        raise CliError(str(exc)) from None
    return pred, pred.model_name


def run(args: argparse.Namespace) -> int:
    _check_args(args)
    _check_out(args)
    if args.speed:
        return _run_speed(args)
    return _run_benchmark(args)


def _run_benchmark(args: argparse.Namespace) -> int:
    from keypoint_corrupt.benchmark import evaluate, write_report
    from keypoint_corrupt.benchmark.published import TRAIN_SETS
    from keypoint_corrupt.cli.data import open_data
    from keypoint_corrupt.registry import CONFIGS

    if not (args.model or args.weights or args.predict):
        raise CliError("choose the model: --model NAME --weights W, or --predict MODULE:FUNCTION")
    predict, label = _predictor(args, args.model, args.weights, args.predict, "")
    compare = None
    compare_label = None
    if args.compare or args.compare_weights or args.compare_predict:
        compare, compare_label = _predictor(
            args, args.compare, args.compare_weights, args.compare_predict, "compare-"
        )
        if compare_label == label:
            compare_label = f"{label} (2)"
    label = args.label or label
    compare_label = args.compare_label or compare_label or "compare"

    dataset, materialized = open_data(args.data, args.images, args.split or "val")
    configs = args.configs if args.configs else (None if materialized else CONFIGS)
    workers = _default_workers(args.device) if args.workers is None else args.workers
    options = {
        "configs": configs,
        "fraction": args.fraction,
        "seed": args.seed,
        "batch_size": args.batch_size,
        "split": args.split if materialized else None,
        "num_workers": workers,
        "examples": args.examples,
        "progress": not args.no_progress,
    }
    try:
        result = evaluate(predict, dataset, **options)
        other = evaluate(compare, dataset, **options) if compare is not None else None
    except (FileNotFoundError, ValueError) as exc:
        raise CliError(str(exc)) from None

    train_set = args.train_set
    if train_set is None:
        header = getattr(predict, "checkpoint", {}) or {}
        train_set = header.get("train_set") if header.get("train_set") in TRAIN_SETS else "S-train"
    out = Path(args.out or DEFAULT_OUT)
    try:
        files = write_report(
            result,
            out,
            label=label,
            compare=other,
            compare_label=compare_label,
            train_set=train_set,
            command=_command_line(args),
            plots=not args.no_plots,
        )
    except OSError as exc:  # the folder changed since the check, or a failed write (disk full)
        raise CliError(f"cannot write the report in {out}: {exc}") from None
    _print_rows(result, other, label, compare_label)
    t = result.timing
    print(
        f"{t['images']} images in {t['seconds']:.1f} s ({t['images_per_second']:.1f} images/s, "
        f"{100 * t['predict_share']:.0f}% in the predictor)"
    )
    print(f"wrote {', '.join(str(files[k]) for k in files)}")
    return 0


def _print_rows(result: Any, other: Any, label: str, compare_label: str) -> None:
    head = f"{'row':<18} {'images':>6} {'mean EPE':>9} {'median':>8} {'AUC':>6}"
    if other is not None:
        head += f"   | {compare_label[:24]}: mean EPE, median, AUC"
    print(f"{label}\n{head}")
    for name, row in result.rows.items():
        m = row.metrics
        line = f"{name:<18} {len(row.ids):>6} {m.mean_epe:>9.3f} {m.median_epe:>8.3f} {m.auc:>6.3f}"
        if other is not None:
            o = other.rows[name].metrics
            line += f"   | {o.mean_epe:.3f} {o.median_epe:.3f} {o.auc:.3f}"
        print(line)
    if result.summary is not None:
        s = result.summary
        print(
            f"mPC: mean EPE {s.mpc['mean_epe']:.3f}, AUC {s.mpc['auc']:.3f}; "
            f"rPC: mean EPE {s.rpc['mean_epe']:.3f}, AUC {s.rpc['auc']:.3f}"
        )


def _run_speed(args: argparse.Namespace) -> int:
    try:
        from keypoint_corrupt.benchmark.speed import (
            machine_info,
            measure_speed,
            speed_markdown,
            write_speed_report,
        )
    except ImportError as exc:
        raise CliError(f"--speed needs PyTorch: {exc}") from None
    from keypoint_corrupt.cli.data import open_data

    for name in ("iters", "large_batch", "throughput_iters"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise CliError(f"--{name.replace('_', '-')} must be >= 1")
    if args.warmup is not None and args.warmup < 0:
        raise CliError("--warmup must be >= 0")
    models = [args.model] if args.model else list(args.speed_models)
    weights = {args.model: args.weights} if args.model and args.weights else {}
    check_data = None
    if args.precision != "fp32" and args.check_images > 0:
        data, materialized = open_data(args.data, args.images, args.split or "val")
        if materialized:
            from keypoint_corrupt.benchmark import MaterializedSource

            data = MaterializedSource(data, args.split, configs=()).samples("standard")
        check_data = data
    try:
        results = measure_speed(
            models,
            device=args.device,
            image_size=args.image_size,
            warmup=args.warmup,
            iters=args.iters,
            large_batch=args.large_batch,
            throughput_iters=args.throughput_iters,
            precision=args.precision,
            channels_last=args.channels_last,
            compile=args.compile,
            cuda_graphs=args.cuda_graphs,
            nerpe_mode=args.nerpe_decode,
            weights=weights,
            check_data=check_data,
            check_images=args.check_images,
            seed=args.seed,
            log=None if args.no_progress else lambda line: print(line, file=sys.stderr),
        )
        machine = machine_info(args.device)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        raise CliError(str(exc)) from None
    command = _command_line(args)
    print(speed_markdown(results, machine, command))
    if args.out:
        try:
            files = write_speed_report(results, machine, args.out, command)
        except OSError as exc:
            raise CliError(f"cannot write the report in {args.out}: {exc}") from None
        print(f"wrote {', '.join(str(p) for p in files.values())}")
    return 0
