"""The ``keypoint-corrupt`` entry point itself: what every command gets from ``main``."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from keypoint_corrupt.cli import list_configs
from keypoint_corrupt.cli import main as main_module
from keypoint_corrupt.cli.main import main


def run_with_stdout_closed(*argv):
    """Run the command with its stdout a pipe whose reader has already gone (``... | head``)."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run(
            [sys.executable, "-m", "keypoint_corrupt", *argv],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(write)


@pytest.mark.parametrize("argv", [["list", "--suite", "posebench"], ["list"], ["list", "--json"]])
def test_a_closed_stdout_ends_the_command_quietly(argv):
    done = run_with_stdout_closed(*argv)
    assert done.stderr == ""  # no BrokenPipeError traceback, from the command or at exit
    assert done.returncode == 141  # what a shell reports for a command stopped by SIGPIPE


def test_a_broken_pipe_other_than_stdout_is_not_hidden(monkeypatch):
    def broken(args):
        raise BrokenPipeError(32, "a pipe to a worker")

    monkeypatch.setattr(list_configs, "run", broken)
    read, write = os.pipe()
    with os.fdopen(write, "w") as stdout:  # stdout itself is fine: its reader is still there
        monkeypatch.setattr(sys, "stdout", stdout)
        with pytest.raises(BrokenPipeError, match="a pipe to a worker"):
            main(["list"])
        assert not main_module._stdout_reader_gone()
        os.close(read)
        assert main_module._stdout_reader_gone()
