"""``keypoint-corrupt list``: the registered configurations and suites, and their parameters."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from keypoint_corrupt.cli.main import COMMANDS, CliError

if TYPE_CHECKING:
    from keypoint_corrupt.registry import CorruptionConfig
    from keypoint_corrupt.suites import Suite

EXAMPLES = """examples:
  keypoint-corrupt list
  keypoint-corrupt list --suite imagenet-c
  keypoint-corrupt list --suite posebench --json
  keypoint-corrupt list --json
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "list",
        help=COMMANDS["list"][1],
        description="List the registered corruption configurations and suites and their parameters. "
        "Without --suite: the eleven reference configurations, any other configuration that belongs "
        "to no suite, and one line per suite; --json lists every configuration.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--suite",
        default=None,
        metavar="NAME",
        help="one suite as a table: corruption, severity, configuration name, parameters",
    )
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if getattr(args, "own_process", False):
        _import_registry_without_torch()
    from keypoint_corrupt.suites import available_suites, get_suite

    if args.suite is not None:
        try:
            suite = get_suite(args.suite)
        except ValueError as exc:
            raise CliError(f"--suite: {exc}") from None
        _print_suite(suite, as_json=args.json)
        return 0
    suites = [get_suite(name) for name in available_suites()]
    if args.json:
        print(json.dumps(_all_config_rows(suites), indent=2))
    else:
        _print_overview(suites)
    return 0


def _parameters(cfg: CorruptionConfig) -> dict[str, Any]:
    """What the configuration does, by name: a suite corruption's severity parameters, else its params."""
    severity_parameters = getattr(cfg.transform, "severity_parameters", None)
    corruption, severity = cfg.params.get("corruption"), cfg.params.get("severity")
    if severity_parameters is not None and isinstance(corruption, str) and isinstance(severity, int):
        found: dict[str, Any] = severity_parameters(corruption, severity)
        return found
    return dict(cfg.params)


def _config_row(cfg: CorruptionConfig) -> dict[str, Any]:
    return {
        "name": cfg.name,
        "family": cfg.family,
        "transform": cfg.transform.__name__,
        "params": dict(cfg.params),
        "description": cfg.description,
    }


def _all_config_rows(suites: list[Suite]) -> list[dict[str, Any]]:
    """Every registered configuration, each with the suites (corruption, severity) it belongs to."""
    from keypoint_corrupt.registry import available_configs, get_config

    members = [(suite, set(suite.configs())) for suite in suites]
    rows = []
    for name in available_configs():
        row = _config_row(get_config(name))
        row["suites"] = [
            dict(zip(("suite", "corruption", "severity"), (suite.name, *suite.locate(name)), strict=True))
            for suite, names in members
            if name in names
        ]
        rows.append(row)
    return rows


def _print_overview(suites: list[Suite]) -> None:
    from keypoint_corrupt.registry import CONFIGS, available_configs, get_config

    in_a_suite = {name for suite in suites for name in suite.configs()}
    shown = [n for n in available_configs() if n in CONFIGS or n not in in_a_suite]
    width = max(len(n) for n in shown)
    for name in shown:
        cfg = get_config(name)
        params = ", ".join(f"{k}={v}" for k, v in cfg.params.items())
        print(f"{name:<{width}}  {cfg.transform.__name__}({params})  {cfg.description}")
    print("\nsuites (keypoint-corrupt list --suite NAME for each configuration and its parameters):")
    width = max(len(s.name) for s in suites)
    for suite in suites:
        size = f"{len(suite.corruptions)} corruptions, {len(suite.configs())} configurations"
        print(f"  {suite.name:<{width}}  {size}: {suite.description}")


def _print_suite(suite: Suite, *, as_json: bool) -> None:
    from keypoint_corrupt.registry import format_parameter, get_config

    rows = []
    for corruption in suite.corruptions:
        for severity, name in enumerate(suite.table[corruption], start=1):
            cfg = get_config(name)
            row = {"corruption": corruption, "severity": severity, **_config_row(cfg)}
            row["parameters"] = _parameters(cfg)
            rows.append(row)
    if as_json:
        summary = {
            "name": suite.name,
            "description": suite.description,
            "protocol": suite.protocol,
            "corruptions": list(suite.corruptions),
            "severities": list(suite.severities),
            "configurations": rows,
        }
        print(json.dumps(summary, indent=2))
        return
    print(f"{suite.name}: {suite.description}")
    if suite.protocol:
        print(f"protocol: {suite.protocol}")
    print(f"{len(suite.corruptions)} corruptions, {len(rows)} configurations\n")
    cells = [
        (
            r["corruption"],
            str(r["severity"]),
            r["name"],
            ", ".join(f"{k}={format_parameter(v)}" for k, v in r["parameters"].items()),
        )
        for r in rows
    ]
    header = ("corruption", "severity", "configuration", "parameters")
    widths = [max(len(c[i]) for c in (header, *cells)) for i in range(3)]
    for line in (header, *cells):
        print("  ".join(f"{v:<{w}}" for v, w in zip(line[:3], widths, strict=True)) + f"  {line[3]}")


def _import_registry_without_torch() -> None:
    """Import the registry without letting albumentations pull in torch.

    albumentations imports torch (for its optional ``ToTensorV2``) when torch is installed:
    ~1.4 s that a listing never uses. While the registry loads, a ``None`` entry makes that
    optional import fail, which albumentations handles as "no torch"; the entry is removed
    right after, so a later ``import torch`` in the same process works as usual. Only when the
    process is the command itself: albumentations then lacks ``ToTensorV2`` for good, which a
    program that called ``main(["list"])`` could need.
    """
    if "albumentations" in sys.modules or "torch" in sys.modules:
        return
    sys.modules["torch"] = None  # type: ignore[assignment]  # None: "import torch" raises ImportError
    try:
        import keypoint_corrupt.registry  # noqa: F401
    finally:
        del sys.modules["torch"]
