"""``keypoint-corrupt --help`` and each command's ``--help`` import no heavy module.

albumentations imports torch when it is installed, and OpenCV and torch take seconds to load
on a busy machine: a CLI must answer ``--help`` at once. Each case runs in a fresh interpreter
and lists what ``--help`` left in ``sys.modules`` (a behavioural check, not a timing).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from keypoint_corrupt.cli.main import COMMANDS, build_parser

HEAVY = ("torch", "albumentations", "cv2", "numpy", "scipy", "matplotlib")

SCRIPT = """
import json, sys
from keypoint_corrupt.cli.main import main
try:
    main(json.loads(sys.argv[1]))
except SystemExit as exc:
    assert exc.code == 0, exc.code
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in json.loads(sys.argv[2]))))
"""


def _loaded_by(argv: list[str]) -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(argv), json.dumps(HEAVY)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "usage: keypoint-corrupt" in proc.stdout
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_top_level_help_imports_no_heavy_module():
    assert _loaded_by(["--help"]) == []


@pytest.mark.parametrize("command", list(COMMANDS))
def test_command_help_imports_no_heavy_module(command):
    assert _loaded_by([command, "--help"]) == []


def test_python_m_keypoint_corrupt_help():
    proc = subprocess.run(
        [sys.executable, "-m", "keypoint_corrupt", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert all(name in proc.stdout for name in COMMANDS)


def test_every_command_module_registers_the_help_line_of_main():
    """`--help` shows main.COMMANDS' lines without importing the modules: they must register the same."""
    parser = build_parser()  # every module, registering its own parser
    (action,) = [a for a in parser._actions if a.dest == "command"]
    own = {choice.dest: choice.help for choice in action._choices_actions}
    assert own == {name: help_line for name, (_, help_line) in COMMANDS.items()}


def test_the_package_loads_its_api_on_first_use():
    script = (
        "import sys, keypoint_corrupt as kc\n"
        "assert 'albumentations' not in sys.modules\n"
        "from keypoint_corrupt import transforms\n"
        "assert set(transforms.__all__) <= set(kc.__all__)\n"
        "assert kc.CONFIGS[0] == 'defocus-7' and kc.DefocusBlur is transforms.DefocusBlur\n"
        "assert 'make_corruption' in dir(kc)\n"
        "try:\n"
        "    kc.nope\n"
        "except AttributeError:\n"
        "    print('ok')\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == "ok", proc.stderr


def test_list_loads_the_registry_without_torch_and_leaves_torch_importable():
    pytest.importorskip("torch")
    script = (
        "import sys\n"
        "from keypoint_corrupt.cli.main import main\n"
        "sys.argv = ['keypoint-corrupt', 'list', '--json']\n"
        "assert main() == 0\n"  # the console script's call: this process is the command
        "assert 'albumentations' in sys.modules and 'torch' not in sys.modules\n"
        "import torch\n"
        "print('torch', torch.__version__)\n"
    )
    out = _fresh_python(script)
    assert '"name": "defocus-7"' in out and "\ntorch " in out


def test_list_called_from_a_program_leaves_albumentations_whole():
    pytest.importorskip("torch")
    script = (
        "import sys\n"
        "from keypoint_corrupt.cli.main import main\n"
        "assert main(['list']) == 0\n"
        "import albumentations as A\n"
        "print('ToTensorV2' if hasattr(A, 'ToTensorV2') else 'missing')\n"
    )
    assert _fresh_python(script).strip().splitlines()[-1] == "ToTensorV2"


def test_the_transforms_follow_albumentations_in_even_after_a_probe():
    script = (
        "import importlib.util, sys\n"
        "import keypoint_corrupt as kc\n"
        "assert not hasattr(kc, '_private') and 'albumentations' not in sys.modules\n"
        "assert importlib.util.find_spec('albumentations') is not None  # an 'is it installed' probe\n"
        "import albumentations as A\n"
        "assert 'keypoint_corrupt.transforms' in sys.modules\n"
        "spec = {'__class_fullname__': 'keypoint_corrupt.transforms.DefocusBlur', 'p': 1.0}\n"
        "print(type(A.from_dict({'transform': {**spec, 'kernel_size': 7}})).__name__)\n"
    )
    assert _fresh_python(script).strip().splitlines()[-1] == "DefocusBlur"


def _fresh_python(script: str) -> str:
    """Run ``script`` in a new interpreter (a clean sys.modules); return its stdout."""
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout
