"""torch stays optional: the package imports without it and the models say how to install it."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import keypoint_corrupt

PACKAGE = Path(keypoint_corrupt.__file__).resolve().parent

BLOCK_TORCH = textwrap.dedent(
    """
    import sys

    class BlockTorch:
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, BlockTorch())
    """
)


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_package_imports_without_torch_and_models_explain_the_extra():
    code = BLOCK_TORCH + textwrap.dedent(
        """
        import keypoint_corrupt
        assert "torch" not in sys.modules
        assert "keypoint_corrupt.models" not in sys.modules  # loaded on demand only
        assert keypoint_corrupt.CONFIGS
        try:
            import keypoint_corrupt.models
        except ImportError as exc:
            print("MESSAGE:", exc)
        else:
            raise SystemExit("keypoint_corrupt.models imported without torch")
        """
    )
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    assert 'pip install "keypoint-corrupt[models]"' in proc.stdout


def test_submodules_fail_the_same_way_without_torch():
    code = BLOCK_TORCH + textwrap.dedent(
        """
        try:
            from keypoint_corrupt.models.posenet import PoseNet
        except ImportError as exc:
            print("MESSAGE:", exc)
        """
    )
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    assert "keypoint-corrupt[models]" in proc.stdout


def test_the_torch_package_is_loaded_on_demand_only_and_explains_the_extra():
    code = BLOCK_TORCH + textwrap.dedent(
        """
        import keypoint_corrupt
        keypoint_corrupt.CONFIGS
        assert "keypoint_corrupt.torch" not in sys.modules
        statements = (
            "import keypoint_corrupt.torch",
            "from keypoint_corrupt.torch.reference import apply_config",
        )
        for stmt in statements:
            try:
                exec(stmt)
            except ImportError as exc:
                print("MESSAGE:", exc)
            else:
                raise SystemExit(stmt + " worked without torch")
        """
    )
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("keypoint_corrupt.torch needs PyTorch") == 2
    assert proc.stdout.count('pip install "keypoint-corrupt[models]"') == 2


def test_models_modules_import_torch_only_through_the_guard():
    pattern = re.compile(r"^\s*(import torch|from torch[\s.])", re.MULTILINE)
    direct = [
        p.name
        for p in (PACKAGE / "models").glob("*.py")
        if p.name != "_torch.py" and pattern.search(p.read_text())
    ]
    assert direct == [], "import torch through keypoint_corrupt.models._torch"
