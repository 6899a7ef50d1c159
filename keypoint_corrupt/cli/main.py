"""Entry point of the ``keypoint-corrupt`` command: one sub-module per command.

Each command module exposes ``register(subparsers)``, which adds its parser and sets
``func`` (called with the parsed namespace, returning an exit code).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from keypoint_corrupt._version import __version__

# Command modules, in the order `--help` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "keypoint_corrupt.cli.list_configs",
    "keypoint_corrupt.cli.synth_stb",
    "keypoint_corrupt.cli.materialize",
    "keypoint_corrupt.cli.verify",
    "keypoint_corrupt.cli.preview",
    "keypoint_corrupt.cli.train",
    "keypoint_corrupt.cli.benchmark",
)


class CliError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="keypoint-corrupt",
        description="Corrupt keypoint datasets on purpose: defocus, motion blur, keypoint-aware "
        "occlusion and sensor noise (the eleven configurations of Costa et al.).",
        epilog="Run 'keypoint-corrupt COMMAND --help' for a command's options and examples.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except CliError as exc:
        print(f"keypoint-corrupt {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"keypoint-corrupt {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
