"""``keypoint-corrupt benchmark``: Table II (accuracy under each corruption) and, with --speed, Table I."""

from __future__ import annotations

import argparse
import math
import os
import shlex
import sys
import traceback
from pathlib import Path
from typing import Any

from keypoint_corrupt._model_names import MODEL_NAMES
from keypoint_corrupt.cli.data import add_suite_options
from keypoint_corrupt.cli.main import COMMANDS, CliError
from keypoint_corrupt.cli.options import DATA_HELP

DEFAULT_OUT = "benchmark-report"
#: --protocol: hand3d's per-annotation hand protocol, or COCO's top-down OKS AP.
PROTOCOLS = ("hand", "coco", "mpii")
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

  # ... or a class (or a factory, 'file.py:NAME()') built once with keyword arguments (JSON, else text)
  keypoint-corrupt benchmark --predict models/mine.py:MyPredictor --predict-arg weights=mine.pt \\
      --predict-arg size=256 --data val.json --images /data/imgs

  # read back a materialised output instead of corrupting on the fly (same numbers)
  keypoint-corrupt benchmark --weights dense.pt --data corrupted_out/ --split val

  # a corruption suite: rows corruption, columns severity (+ clean); mPC, rPC; severity_curves.png
  keypoint-corrupt benchmark --predict mypkg.pose:predict --suite costa2021 --out reports/mine

  # ... and Hendrycks' mCE against another model's report of the same suite and data
  keypoint-corrupt benchmark --weights dense.pt --suite costa2021 --severities 1-3 \\
      --baseline reports/mine/report.json --out reports/dense

  # bodies, the COCO-C protocol: top-down crops of every person, OKS AP per cell, mPC, rPC, mRR
  keypoint-corrupt benchmark --protocol coco --data person_keypoints_val2017.json --images val2017/ \
      --suite imagenet-c --severities 1-5 --predict mypkg.pose:TopDown --out reports/coco-c
  #   ... with a detector's boxes (a COCO results list with scores) instead of the ground truth's
  keypoint-corrupt benchmark --protocol coco --data val.json --images imgs/ --detections dets.json \
      --predict mypkg.pose:TopDown

  # corrupt on the GPU in batches (keypoint_corrupt.torch): same generators, and the same
  # numbers wherever its kernels are bit-exact (all but snow and float32 defocus: docs/torch.md)
  keypoint-corrupt benchmark --weights dense.pt --suite imagenet-c --corrupt-on cuda --device cuda

  # Table I: batch-1 latency and large-batch throughput of dense, depthwise and NerPE
  keypoint-corrupt benchmark --speed --device cuda --precision bf16 --compile

--data is an STB root (labels/ + images/), a COCO keypoint file (.json, with --images for
its image folder) or a 'keypoint-corrupt materialize' output; default: the bundled sample.
--predict path/file.py:NAME imports the file with its folder first on sys.path (for its sibling
modules). An error inside predict is one line and exit code 1; --debug prints the traceback.
--suite S benchmarks every (corruption, severity) configuration of suite S (see
'keypoint-corrupt list --suite S') on whole images, as 'materialize --suite' writes them (each
image corrupted once with every person on it); --baseline is checked against it (suite,
severities, PCK range, data) before any work, and again on the evaluated samples before the
report is written.
--protocol coco (COCO keypoint files: bodies, animals) evaluates top-down as MMPose does: one crop
per ground-truth box (or --detections box), predict(crops) -> (keypoints in crop pixels, scores),
scored with pycocotools' OKS AP; see docs/benchmark.md, "COCO protocol".
--out is checked before any work: a new folder, or one whose report files (if any) are an
earlier benchmark's, which are replaced; any other file of those names is never overwritten.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "benchmark",
        help=COMMANDS["benchmark"][1],
        description="Evaluate a keypoint model on the clean split and on each corruption configuration "
        "(mean / median EPE and PCK AUC as hand3d computes them, mPC and rPC), and write report.md, "
        "report.csv, report.json, pck_curves.png and examples.png. With --suite, also the corruption x "
        "severity tables, mPC, rPC, mCE against --baseline and severity_curves.png. With --speed, "
        "measure inference speed instead (Table I).",
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
        metavar="MODULE:NAME",
        help="your own model instead of --model (module:NAME or path/file.py:NAME): a predict function "
        "or callable object, a class (instantiated once) or a factory written NAME()",
    )
    m.add_argument(
        "--predict-arg",
        action="append",
        metavar="KEY=VALUE",
        help="keyword argument of the --predict class or factory (repeatable; VALUE is JSON when it "
        "parses, else a string); makes a function NAME a factory",
    )
    m.add_argument("--label", help="name of the model in the report")
    c = p.add_argument_group("comparison")
    c.add_argument(
        "--compare", choices=MODEL_NAMES, metavar="MODEL", help="a second bundled model to compare"
    )
    c.add_argument("--compare-weights", metavar="W", help="checkpoint of the second model")
    c.add_argument("--compare-predict", metavar="MODULE:NAME", help="a second predict callable")
    c.add_argument(
        "--compare-predict-arg",
        action="append",
        metavar="KEY=VALUE",
        help="keyword argument of the --compare-predict class or factory (repeatable)",
    )
    c.add_argument("--compare-label", help="name of the second model in the report")
    d = p.add_argument_group("data")
    d.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        default="hand",
        help="hand (default): hand3d's crop, EPE / PCK / AUC per annotation; coco: top-down crops of "
        "every person of a COCO keypoint --data file, OKS AP (pycocotools), --predict only",
    )
    d.add_argument(
        "--detections",
        metavar="FILE",
        help="with --protocol coco: person boxes with scores (a COCO results list) instead of the "
        "ground-truth boxes",
    )
    d.add_argument(
        "--head-boxes",
        metavar="FILE.mat",
        help="with --protocol mpii: MPII's annotation file with the head boxes PCKh needs "
        "(mpii_human_pose_v1_u12_1.mat, or MMPose's mpii_gt_val.mat)",
    )
    d.add_argument("--data", metavar="PATH", help=DATA_HELP)
    d.add_argument("--images", metavar="DIR", help="image folder of a COCO --data file")
    d.add_argument(
        "--schema",
        metavar="NAME",
        help="joint order of --data: a preset such as rhd, hand21, stb_rhd, coco17, mpii16, ap10k (see "
        "docs/datasets.md); default: matched from the file's keypoint names. Needed where the names "
        "mislead (RHD files: --schema rhd)",
    )
    d.add_argument("--split", help="STB split (default val) or split of a materialised output")
    d.add_argument(
        "--configs",
        metavar="all|A,B",
        help="configurations: all or a comma-separated list (default: the eleven; for a "
        "materialised output, those it holds)",
    )
    add_suite_options(d)
    d.add_argument(
        "--baseline",
        metavar="REPORT",
        help="with --suite: report.json (or its folder) of this command for another model on the same "
        "suite, severities and data; the report adds Hendrycks' mCE against it",
    )
    d.add_argument(
        "--fraction",
        type=float,
        default=None,
        help="share corrupted per configuration (default 0.2; with --suite or --protocol coco 1.0, every "
        "image in every cell, as COCO-C and 'materialize --suite')",
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
    r.add_argument(
        "--corrupt-on",
        metavar="DEVICE",
        help="corrupt the streamed images in batches on this torch device (cuda, cpu, ...) with "
        "keypoint_corrupt.torch: the default NumPy path's generators, and its numbers where the "
        "torch kernels are bit-exact (all but snow and float32 defocus; docs/torch.md)",
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
    o.add_argument(
        "--no-plots",
        action="store_true",
        help="skip pck_curves.png and examples.png (and severity_curves.png)",
    )
    o.add_argument("--no-progress", action="store_true", help="no progress bars")
    o.add_argument(
        "--debug", action="store_true", help="print the full traceback of an error, not only one line"
    )
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
        elif isinstance(action, argparse._AppendAction):
            for item in value:
                words += [flag, str(item)]
        elif isinstance(value, list):
            words += [flag, *map(str, value)]
        elif isinstance(value, tuple):  # a comma-separated option parsed into names (--configs)
            words += [flag, ",".join(map(str, value))]
        else:
            words += [flag, str(value)]
    return shlex.join(words)


def _check_args(args: argparse.Namespace) -> None:
    _check_protocol_args(args)
    for name in ("batch_size", "crop_size", "image_size"):
        if getattr(args, name) < 1:
            raise CliError(f"--{name.replace('_', '-')} must be positive")
    if args.crop_size % 8 or args.image_size % 8:
        raise CliError("--crop-size and --image-size must be multiples of 8")
    if args.workers is not None and args.workers < 0:
        raise CliError("--workers must be >= 0")
    if args.fraction is not None and not 0.0 < args.fraction <= 1.0:
        raise CliError("--fraction must be in (0, 1]")
    if args.examples < 0:
        raise CliError("--examples must be >= 0")
    for given, flag in ((args.predict_arg, "--predict"), (args.compare_predict_arg, "--compare-predict")):
        if given and not getattr(args, flag[2:].replace("-", "_")):
            raise CliError(f"{flag}-arg needs {flag}")
    _check_suite_args(args)


def _check_protocol_args(args: argparse.Namespace) -> None:
    """Refuse what --protocol coco cannot run (and --detections without it) before any work."""
    protocol = getattr(args, "protocol", "hand")
    detections = getattr(args, "detections", None)
    if detections and protocol != "coco":
        raise CliError(f"--detections {detections} needs --protocol coco (person boxes for top-down crops)")
    if protocol == "mpii":
        _check_mpii_args(args)
    if protocol != "coco":
        return
    if args.speed:
        raise CliError("--protocol coco applies to the accuracy benchmark, not to --speed")
    flags = {
        "--model": args.model,
        "--weights": args.weights,
        "--compare": args.compare,
        "--compare-weights": args.compare_weights,
        "--compare-predict": args.compare_predict,
        "--baseline": args.baseline,
    }
    given = [flag for flag, value in flags.items() if value]
    if given:
        raise CliError(
            f"--protocol coco does not take {', '.join(given)}: it runs one --predict MODULE:NAME top-down "
            "model (predict(crops) -> keypoints, scores); the bundled models, --compare and --baseline "
            "belong to the hand protocol"
        )
    if not args.predict:
        raise CliError(
            "--protocol coco needs --predict MODULE:NAME: a top-down model, "
            "predict(crops) -> (keypoints, scores)"
        )
    if not args.data or Path(args.data).suffix.lower() != ".json":
        raise CliError(
            f"--protocol coco needs --data FILE.json, a COCO keypoint file (with --images DIR); got "
            f"{args.data or 'none (the bundled STB sample)'}"
        )
    if detections and not Path(detections).is_file():
        raise CliError(f"--detections not found: {detections}")


def _check_mpii_args(args: argparse.Namespace) -> None:
    """Refuse --protocol mpii without --predict, a JSON --data or MPII's head boxes (before the model)."""
    if args.speed:
        raise CliError("--protocol mpii applies to the accuracy benchmark, not to --speed")
    if not args.predict or not args.data or not Path(args.data).is_file():
        folder = " (a materialised MPII-C folder holds OUT/<split>/<corruption>/<severity>/mpii.json)"
        raise CliError(
            "--protocol mpii needs --predict MODULE:NAME and --data FILE.json (MMPose's MPII JSON); got "
            f"--predict {args.predict or 'none'}, --data {args.data or 'none'}"
            + (folder if args.data and Path(args.data).is_dir() else "")
        )
    head_boxes = getattr(args, "head_boxes", None)
    if not head_boxes or not Path(head_boxes).is_file():
        raise CliError(
            f"--protocol mpii: PCKh needs MPII's head boxes (--head-boxes FILE.mat: "
            f"mpii_human_pose_v1_u12_1.mat from http://human-pose.mpi-inf.mpg.de, or MMPose's "
            f"mpii_gt_val.mat); {'not found: ' + head_boxes if head_boxes else 'none given'}"
        )


def _check_suite_args(args: argparse.Namespace) -> None:
    """Read --configs, or --suite / --severities (args.suite_object, suite_configs, ...); --baseline."""
    from keypoint_corrupt.cli.data import configs_from_suite, parse_configs

    if args.speed and (args.suite or args.baseline or args.corrupt_on):
        raise CliError("--suite, --baseline and --corrupt-on apply to the accuracy benchmark, not to --speed")
    args.suite_object, args.suite_configs = configs_from_suite(args)  # before --configs is parsed
    args.configs = parse_configs(args.configs)
    if args.baseline and args.suite_object is None:
        raise CliError(f"--baseline {args.baseline} needs --suite NAME (mCE compares suite reports)")
    args.suite_severities = None
    # Kept apart from args.fraction, from which the report's command line is rebuilt.
    whole = args.suite is not None or getattr(args, "protocol", "hand") in (
        "coco",
        "mpii",
    )  # COCO-C: every image
    args.subset_fraction = args.fraction if args.fraction is not None else 1.0 if whole else 0.2
    if args.suite_object is not None and args.severities:
        from keypoint_corrupt.suites import parse_severities

        args.suite_severities = parse_severities(args.severities)  # checked by configs_from_suite
    if args.baseline:
        _check_baseline_early(args)


def _check_baseline_early(args: argparse.Namespace) -> None:
    """Refuse a --baseline of another suite, severities or PCK range before loading the model."""
    from keypoint_corrupt.benchmark.report import load_baseline
    from keypoint_corrupt.benchmark.suite_report import check_baseline, suite_header
    from keypoint_corrupt.metrics import PCK_THRESHOLDS

    try:
        doc, _ = load_baseline(args.baseline)
        # The data (a materialised output records its own fraction and seed) are compared later,
        # on the samples evaluated, before the report is written.
        check_baseline(suite_header(args.suite_object, args.suite_severities, PCK_THRESHOLDS), doc["suite"])
    except (OSError, ValueError) as exc:
        raise CliError(f"--baseline {args.baseline}: {exc}") from None


def _check_out(args: argparse.Namespace) -> Path | None:
    """The output folder, refused before any work if writing there would replace a foreign file."""
    from keypoint_corrupt.benchmark.report import check_output_dir

    if args.speed and not args.out:
        return None
    try:
        if getattr(args, "protocol", "hand") == "mpii":
            from keypoint_corrupt.benchmark.mpii_protocol import MPII_REPORT_FILES

            return check_output_dir(args.out or DEFAULT_OUT, MPII_REPORT_FILES)
        if getattr(args, "protocol", "hand") == "coco":
            from keypoint_corrupt.benchmark.coco_protocol import COCO_REPORT_FILES

            return check_output_dir(args.out or DEFAULT_OUT, COCO_REPORT_FILES)
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


def _error(args: argparse.Namespace, message: str, exc: BaseException) -> CliError:
    """The one-line error of ``exc``; with --debug, its full traceback is printed first."""
    if getattr(args, "debug", False):
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    return CliError(message)


def _user_predictor(args: argparse.Namespace, spec: str, options: list[str] | None, which: str) -> Any:
    """The --predict / --compare-predict callable, built once (class, factory or the callable itself)."""
    from keypoint_corrupt.benchmark import load_callable
    from keypoint_corrupt.benchmark.callables import CallableLoadError, parse_predict_args

    try:
        kwargs = parse_predict_args(options)
    except CallableLoadError as exc:
        raise CliError(f"--{which}predict-arg {exc}") from None
    try:
        return load_callable(spec, kwargs)
    except CallableLoadError as exc:
        raise _error(args, f"--{which}predict {spec}: {exc}", exc.__cause__ or exc) from None
    except Exception as exc:  # a failure of ours not foreseen: still one line (--debug: traceback)
        raise _error(args, f"--{which}predict {spec}: {type(exc).__name__}: {exc}", exc) from None


def _predictor(
    args: argparse.Namespace, model: str | None, weights: str | None, spec: str | None, which: str
) -> tuple[Any, str]:
    if spec:
        if model or weights:
            flags = "--compare / --compare-weights" if which else "--model / --weights"
            raise CliError(f"--{which}predict replaces {flags}; give one or the other")
        options = getattr(args, f"{which.replace('-', '_')}predict_arg", None)
        return _user_predictor(args, spec, options, which), spec
    if not weights:
        flag = "--compare-weights" if which else "--weights"
        raise CliError(f"{flag} is required: a trained checkpoint (or use --{which}predict MODULE:NAME)")
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
        raise _error(args, f"the bundled models need PyTorch: {exc}", exc) from None
    except (FileNotFoundError, ValueError, RuntimeError, KeyError) as exc:
        raise _error(args, str(exc), exc) from None
    return pred, pred.model_name


def run(args: argparse.Namespace) -> int:
    _check_args(args)
    _check_out(args)
    if args.speed:
        return _run_speed(args)
    if args.protocol == "coco":
        return _run_coco(args)
    if args.protocol == "mpii":
        return _run_mpii(args)
    return _run_benchmark(args)


def _run_benchmark(args: argparse.Namespace) -> int:
    from keypoint_corrupt.benchmark import evaluate, write_report
    from keypoint_corrupt.benchmark.published import TRAIN_SETS
    from keypoint_corrupt.cli.data import open_data
    from keypoint_corrupt.registry import CONFIGS

    if not (args.model or args.weights or args.predict):
        raise CliError("choose the model: --model NAME --weights W, or --predict MODULE:NAME")
    predict, label = _predictor(args, args.model, args.weights, args.predict, "")
    compare = None
    compare_label = None
    if args.compare or args.compare_weights or args.compare_predict or args.compare_predict_arg:
        compare, compare_label = _predictor(
            args, args.compare, args.compare_weights, args.compare_predict, "compare-"
        )
        if compare_label == label:
            compare_label = f"{label} (2)"
    label = args.label or label
    compare_label = args.compare_label or compare_label or "compare"

    dataset, materialized = open_data(args.data, args.images, args.split or "val", schema=args.schema)
    configs = args.configs if args.configs else (None if materialized else CONFIGS)
    if args.suite_configs is not None:
        configs = args.suite_configs
    workers = _default_workers(args.device) if args.workers is None else args.workers
    options = {
        "configs": configs,
        "fraction": args.subset_fraction,
        "seed": args.seed,
        "batch_size": args.batch_size,
        "split": args.split if materialized else None,
        "num_workers": workers,
        "examples": args.examples,
        "progress": not args.no_progress,
        "schema": args.schema,
        # A suite corrupts whole images, as 'materialize --suite' writes them (COCO-C).
        "whole_images": args.suite_object is not None,
        "corrupt_on": args.corrupt_on,
    }
    if not materialized and configs:
        total = _subset_units(dataset, args.suite_object is not None)
        fraction = args.subset_fraction
        _warn_few_images(round(fraction * total), f"at --fraction {fraction:g}", total)
    result = _evaluate(args, evaluate, predict, label, dataset, options)
    if result is None:
        return 1
    if materialized:
        sizes = [len(row.ids) for name, row in result.rows.items() if name != "standard"]
        if sizes:
            _warn_few_images(min(sizes), "in this materialised output", None)
    other = None
    if compare is not None:
        other = _evaluate(args, evaluate, compare, compare_label, dataset, options)
        if other is None:
            return 1

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
            suite=args.suite_object,
            severities=args.suite_severities,
            baseline=args.baseline,
        )
    except OSError as exc:  # the folder changed since the check, or a failed write (disk full)
        raise CliError(f"cannot write the report in {out}: {exc}") from None
    except ValueError as exc:  # the baseline's samples differ from these (checked before writing)
        raise CliError(f"--baseline {args.baseline}: {exc}") from None
    _print_rows(result, other, label, compare_label)
    if args.suite_object is not None:
        _print_suite(files["json"], label, compare_label)
    t = result.timing
    print(
        f"{t['images']} images in {t['seconds']:.1f} s ({t['images_per_second']:.1f} images/s, "
        f"{100 * t['predict_share']:.0f}% in the predictor)"
    )
    print(f"wrote {', '.join(str(files[k]) for k in files)}")
    return 0


def _run_coco(args: argparse.Namespace) -> int:
    """--protocol coco: top-down crops of every person, OKS AP per row (and per suite cell)."""
    from keypoint_corrupt.benchmark.topdown import load_detections
    from keypoint_corrupt.cli.data import open_data
    from keypoint_corrupt.datasets import CocoKeypoints
    from keypoint_corrupt.datasets.mpii import MpiiPeople

    dataset, _ = open_data(args.data, args.images, schema=args.schema)
    if not isinstance(dataset, CocoKeypoints):
        hint = " (use --protocol mpii)" if isinstance(dataset, MpiiPeople) else ""
        raise CliError(
            f"--protocol coco needs a COCO keypoint file; --data {args.data} is "
            f"{type(dataset).__name__} data{hint}"
        )
    if args.detections:
        try:  # checked before the model is loaded
            load_detections(args.detections, dataset.coco_index)
        except (OSError, ValueError) as exc:
            raise CliError(f"--detections {exc}") from None
    predict, label = _predictor(args, None, None, args.predict, "")
    try:
        return _coco_benchmark(args, predict, args.label or label, dataset)
    finally:
        close = getattr(predict, "close", None)
        if getattr(args, "own_process", False) and callable(close):
            close()  # now: a model released at interpreter exit (MediaPipe's graph) can hang there


def _coco_benchmark(args: argparse.Namespace, predict: Any, label: str, dataset: Any) -> int:
    """Evaluate, write the report, print the figures (--protocol coco, after the checks)."""
    from keypoint_corrupt.benchmark.coco_protocol import write_coco_report
    from keypoint_corrupt.benchmark.evaluate import PredictError
    from keypoint_corrupt.benchmark.topdown import evaluate_topdown
    from keypoint_corrupt.registry import CONFIGS

    configs = args.suite_configs if args.suite_configs is not None else args.configs or CONFIGS
    # images drawn per row: those with an annotation; with detections every image of the file
    total = len(dataset.coco_index.images) if args.detections else _subset_units(dataset, True)
    _warn_few_images(round(args.subset_fraction * total), f"at --fraction {args.subset_fraction:g}", total)
    try:
        result = evaluate_topdown(
            predict,
            dataset,
            configs,
            args.subset_fraction,
            args.seed,
            args.batch_size,
            detections=args.detections,
            progress=not args.no_progress,
            corrupt_on=args.corrupt_on,
        )
    except PredictError as exc:
        if args.debug:
            traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
        print(f"keypoint-corrupt benchmark: error: {label}: {exc}", file=sys.stderr)
        return 1
    except (FileNotFoundError, ValueError) as exc:
        raise _error(args, str(exc), exc) from None
    out = Path(args.out or DEFAULT_OUT)
    try:
        files = write_coco_report(
            result,
            out,
            label=label,
            command=_command_line(args),
            suite=args.suite_object,
            severities=args.suite_severities,
        )
    except OSError as exc:
        raise CliError(f"cannot write the report in {out}: {exc}") from None
    _print_coco(files["json"])
    print(f"wrote {', '.join(str(files[k]) for k in files)}")
    return 0


def _run_mpii(args: argparse.Namespace) -> int:
    """--protocol mpii: top-down crops from MPII's center / scale, PCKh@0.5 per row (and suite cell)."""
    import json

    from keypoint_corrupt.benchmark.evaluate import PredictError
    from keypoint_corrupt.benchmark.mpii_protocol import evaluate_mpii, write_mpii_report
    from keypoint_corrupt.registry import CONFIGS

    predict, label = _predictor(args, None, None, args.predict, "")
    label = args.label or label
    configs = args.suite_configs if args.suite_configs is not None else args.configs or CONFIGS
    try:
        result = evaluate_mpii(
            predict, args.data, args.head_boxes, configs, args.subset_fraction, args.seed, args.batch_size,
            images=args.images, corrupt_on=args.corrupt_on,
        )  # fmt: skip
        files = write_mpii_report(
            result, Path(args.out or DEFAULT_OUT), label=label, command=_command_line(args),
            suite=args.suite_object, severities=args.suite_severities,
        )  # fmt: skip
    except PredictError as exc:
        print(f"keypoint-corrupt benchmark: error: {label}: {exc}", file=sys.stderr)
        return 1
    except (FileNotFoundError, ValueError) as exc:
        raise _error(args, str(exc), exc) from None
    doc = json.loads(files["json"].read_text(encoding="utf-8"))
    notes = {row["name"]: row["reason"] for row in doc["rows"] if row.get("reason")}
    for row in doc["rows"]:
        print(f"{row['name']:<34} {row['people']:>6} PCKh@0.5 {_num(_nan(row['pckh']))}")
    if doc.get("suite"):
        m = doc["suite"]["metrics"]["pckh"]
        print(
            f"suite: PCKh mPC {_num(_nan(m['mPC']))}, rPC {_num(_nan(m['rPC']))}, mRR {_num(_nan(m['mRR']))}"
        )
        notes.update({f"suite {k}": m["reasons"][k] for k in ("mPC", "rPC", "mRR") if k in m["reasons"]})
    for where, why in notes.items():
        print(f"  - {where}: {why}")
    print(f"wrote {', '.join(str(p) for p in files.values())}")
    return 0


def _print_coco(report: Path) -> None:
    """The AP of each row, the suite's mPC, rPC and mRR, and every "-" explained."""
    import json

    doc = json.loads(report.read_text(encoding="utf-8"))
    boxes = doc["coco"]["boxes"]["source"]
    images = doc["coco"]["images"]
    unannotated = images["without_annotation"]
    how = "scored" if images.get("without_annotation_evaluated") else "not scored"
    print(
        f"{doc['label']} (COCO protocol, {boxes} boxes; {images['evaluated']} of {images['in_file']} images, "
        f"{unannotated} without annotation {how})"
    )
    print(f"{'row':<34} {'images':>6} {'boxes':>6} {'AP':>6} {'AP50':>6} {'AP75':>6} {'AR':>6}")
    notes = {}
    for row in doc["rows"]:
        figures = " ".join(_num(_nan(row[k]), 6) for k in ("ap", "ap50", "ap75", "ar"))
        print(f"{row['name']:<34} {row['images']:>6} {row['boxes']:>6} {figures}")
        if row.get("reason"):
            notes[row["name"]] = row["reason"]
    sec = doc.get("suite")
    if sec:
        m = sec["metrics"]["ap"]
        print(
            f"suite {sec['name']}: AP mPC {_num(_nan(m['mPC']))}, rPC {_num(_nan(m['rPC']))}, "
            f"mRR {_num(_nan(m.get('mRR')))}"
        )
        notes.update({f"suite {k}": m["reasons"][k] for k in ("mPC", "rPC", "mRR") if k in m["reasons"]})
    for where, why in notes.items():
        print(f"  - {where}: {why}")
    t = doc["timing"]
    print(f"{t['images']} images in {t['seconds']:.1f} s")


#: Fewer corrupted images than this per configuration draws a warning: the rows are noisy.
MIN_IMAGES = 20


def _subset_units(dataset: Any, whole_images: bool) -> int:
    """Return how many units the subsets are drawn from: the samples, or with a suite the images."""
    if not whole_images:
        return len(dataset)
    from keypoint_corrupt.materialize.plan import image_samples

    return len(image_samples([dataset[i] for i in range(len(dataset))])[0])


def _warn_few_images(count: int, how: str, total: int | None) -> None:
    """One line on stderr when a configuration row has fewer than MIN_IMAGES images."""
    if count == 0 or count >= MIN_IMAGES:  # 0: evaluate refuses the empty rows
        return
    line = f"only {count} image{'s' if count != 1 else ''} per configuration {how}"
    if total is None:
        advice = "materialize again with a larger --fraction"
    elif total >= MIN_IMAGES:
        line += f" on {total} images"
        advice = f"use --fraction {min(1.0, math.ceil(100 * MIN_IMAGES / total) / 100):g} or more"
    else:
        line += f" on {total} images"
        advice = f"use a larger set (--fraction 1.0 gives {total})"
    print(
        f"keypoint-corrupt benchmark: warning: {line}: results are noisy (fewer than {MIN_IMAGES}); {advice}",
        file=sys.stderr,
    )


def _evaluate(
    args: argparse.Namespace, evaluate: Any, predict: Any, label: str, dataset: Any, options: dict[str, Any]
) -> Any:
    """``evaluate(...)``; ``None`` (the error printed in one line, exit code 1) when predict raised."""
    from keypoint_corrupt.benchmark.evaluate import PredictError

    try:
        return evaluate(predict, dataset, **options)
    except PredictError as exc:
        if args.debug:
            traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
        print(f"keypoint-corrupt benchmark: error: {label}: {exc}", file=sys.stderr)
        return None
    except (FileNotFoundError, ValueError) as exc:
        raise _error(args, str(exc), exc) from None


def _print_rows(result: Any, other: Any, label: str, compare_label: str) -> None:
    head = f"{'row':<18} {'images':>6} {'mean EPE':>9} {'median':>8} {'AUC':>6}"
    if other is not None:
        head += f"   | {compare_label[:24]}: mean EPE, median, AUC"
    print(f"{label}\n{head}")
    notes: dict[str, str] = {}
    for name, row in result.rows.items():
        m = row.metrics
        line = f"{name:<18} {len(row.ids):>6} {_num(m.mean_epe, 9)} {_num(m.median_epe, 8)} {_num(m.auc, 6)}"
        if other is not None:
            o = other.rows[name].metrics
            line += f"   | {_num(o.mean_epe)} {_num(o.median_epe)} {_num(o.auc)}"
        print(line)
        for metric in ("mean_epe", "median_epe", "auc"):
            for who, metrics in ((label, m), (compare_label, other.rows[name].metrics if other else None)):
                why = metrics.reason(metric) if metrics is not None else None
                if why:
                    notes[f"{who}, {name}: {metric.replace('_', ' ')}"] = why
    if result.summary is not None:
        s = result.summary
        print(
            f"mPC: mean EPE {_num(s.mpc['mean_epe'])}, AUC {_num(s.mpc['auc'])}; "
            f"rPC: mean EPE {_num(s.rpc['mean_epe'])}, AUC {_num(s.rpc['auc'])}"
        )
        notes.update({f"{label}: {key}": why for key, why in s.reasons.items()})
    for where, why in notes.items():  # every "-" above, explained
        print(f"  - {where}: {why}")


def _print_suite(report: Path, label: str, compare_label: str) -> None:
    """The suite's mPC and rPC (AUC and mean EPE), and mCE against the baseline, per model."""
    import json

    doc = json.loads(report.read_text(encoding="utf-8"))
    parts = [(label, doc["suite"])]
    if doc.get("compare"):
        parts.append((compare_label, doc["compare"]["suite"]))
    for who, sec in parts:
        figures = []
        notes = {}
        for metric, name in (("auc", "AUC"), ("mean_epe", "mean EPE")):
            m = sec["metrics"][metric]
            figures.append(f"{name} mPC {_num(_nan(m['mPC']))}, rPC {_num(_nan(m['rPC']))}")
            notes.update({f"{name} {k}": m["reasons"][k] for k in ("mPC", "rPC") if k in m["reasons"]})
        line = f"suite {sec['name']} ({who}): " + "; ".join(figures)
        base = sec.get("baseline")
        if base:
            line += (
                f"; vs {base['label']}: mCE {_num(_nan(base['mCE']))}, "
                f"relative mCE {_num(_nan(base['relative_mCE']))}"
            )
            notes.update({k: base["reasons"][k] for k in ("mCE", "relative_mCE") if k in base["reasons"]})
        print(line)
        for key, why in notes.items():  # every "-" above, explained
            print(f"  - {who}, {key}: {why}")


def _nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _num(value: float, width: int = 0) -> str:
    """A figure with 3 decimals, or "-" where it does not exist (explained below the table)."""
    text = "-" if math.isnan(value) else f"{value:.3f}"
    return f"{text:>{width}}"


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
