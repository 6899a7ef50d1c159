"""Entry point of the ``keypoint-corrupt`` command: one sub-module per command.

Each command module exposes ``register(subparsers)``, which adds its parser and sets
``func`` (called with the parsed namespace, returning an exit code).
"""

from __future__ import annotations

import argparse
import importlib
import os
import select
import sys
from collections.abc import Sequence

from keypoint_corrupt._version import __version__

# Commands in the order `--help` lists them: name -> (module, the one-line help `--help` shows).
# A run imports only its own command's module, so `keypoint-corrupt --help` and a command's
# `--help` do not import albumentations, torch or OpenCV (tests/test_cli_help.py checks this).
# Each module's parser takes its help line from here.
COMMANDS: dict[str, tuple[str, str]] = {
    "list": (
        "keypoint_corrupt.cli.list_configs",
        "list the corruption configurations and their parameters",
    ),
    "synth-stb": (
        "keypoint_corrupt.cli.synth_stb",
        "write a synthetic dataset in STB's layout (drawn hands, exact labels)",
    ),
    "materialize": (
        "keypoint_corrupt.cli.materialize",
        "write the corrupted subsets (S-train*, S-val*) to disk with COCO annotations",
    ),
    "verify": (
        "keypoint_corrupt.cli.verify",
        "recheck a materialised folder against its manifest (sha256, counts)",
    ),
    "preview": (
        "keypoint_corrupt.cli.preview",
        "contact sheet PNG: the clean image and each configuration, keypoints and ROI drawn",
    ),
    "train": (
        "keypoint_corrupt.cli.train",
        "train a reference model (PoseNet dense/depthwise, NerPE) on S-train or S-train*",
    ),
    "benchmark": (
        "keypoint_corrupt.cli.benchmark",
        "benchmark a keypoint model under every corruption (Table II) or its speed (Table I)",
    ),
}
COMMAND_MODULES: tuple[str, ...] = tuple(module for module, _ in COMMANDS.values())


class CliError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


def build_parser(command: str | None = None, *, all_commands: bool = True) -> argparse.ArgumentParser:
    """The ``keypoint-corrupt`` parser.

    With ``all_commands`` (the default) every command module is imported and registers its
    full parser. Otherwise only ``command``'s module is (if it names one); the other commands
    get a placeholder parser carrying their one-line help, which is all ``--help`` shows.
    """
    parser = argparse.ArgumentParser(
        prog="keypoint-corrupt",
        description="Corrupt keypoint datasets on purpose: defocus, motion blur, keypoint-aware "
        "occlusion and sensor noise (the eleven configurations of Costa et al.).",
        epilog="Run 'keypoint-corrupt COMMAND --help' for a command's options and examples.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_line) in COMMANDS.items():
        if all_commands or name == command:
            importlib.import_module(module).register(sub)
        else:
            sub.add_parser(name, help=help_line, add_help=False)
    return parser


def _command_of(argv: Sequence[str]) -> str | None:
    """The command ``argv`` names: its first word that is not an option (the top-level
    options, ``--help`` and ``--version``, take no value)."""
    for word in argv:
        if word == "--":
            return None
        if not word.startswith("-"):
            return word
    return None


def main(argv: Sequence[str] | None = None) -> int:
    # Without argv this process is the command itself (console script, python -m): a command
    # may then take shortcuts that would be wrong inside someone else's program.
    own_process = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_command_of(argv), all_commands=False)
    args = parser.parse_args(argv)
    args.own_process = own_process
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # here, where a closed pipe is caught, not at the interpreter's exit
        return code
    except CliError as exc:
        print(f"keypoint-corrupt {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"keypoint-corrupt {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        if not _stdout_reader_gone():
            raise  # another pipe: a real error
        _discard_stdout()
        return _SIGPIPE_STATUS


#: Exit status after the reader of stdout went away (``keypoint-corrupt list | head``): what a
#: shell reports for a command killed by SIGPIPE, which is how such a command usually stops.
_SIGPIPE_STATUS = 141


def _stdout_reader_gone() -> bool:
    """Whether stdout is a pipe whose reader has gone away (as opposed to a broken pipe elsewhere)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        events = poller.poll(0)
    except (AttributeError, OSError, ValueError):  # no poll (Windows), no file descriptor: assume so
        return True
    return any(event & (select.POLLERR | select.POLLHUP) for _, event in events)


def _discard_stdout() -> None:
    """Point stdout at ``/dev/null``: the interpreter's last flush then prints no second traceback."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # a stdout without a file descriptor (captured, replaced)
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
