"""The README's Python tour runs as written, and its two commands are the ones CI runs."""

from __future__ import annotations

import re
from pathlib import Path

import keypoint_corrupt as kc

README = Path(__file__).resolve().parents[1] / "README.md"


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README.read_text(), flags=re.S)


def test_python_tour_runs():
    blocks = _blocks("python")
    assert len(blocks) >= 4
    namespace: dict = {}
    try:
        for block in blocks:
            exec(compile(block, str(README), "exec"), namespace)
    finally:
        if "motion-60" in kc.available_configs():
            kc.unregister_config("motion-60")
    assert namespace["item"]["config"] in kc.CONFIGS
    assert len(namespace["s_val_star"]) == 11 * round(0.2 * len(namespace["s_val"]))


def test_exactly_two_copy_paste_commands_and_ci_runs_the_test_one():
    commands = _blocks("bash")
    assert len(commands) == 2
    text = README.read_text()
    assert text.index("<!-- main-command -->") < text.index(commands[0])
    assert text.index("<!-- test-command -->") < text.index(commands[1])
    assert "pytest" in commands[1] and "keypoint-corrupt materialize" in commands[0]
    ci = (README.parent / ".ci" / "run").read_text()
    assert "<!-- test-command -->" in ci


def test_every_document_is_linked_from_the_readme():
    text = README.read_text()
    docs = sorted(p.relative_to(README.parent).as_posix() for p in (README.parent / "docs").glob("*.md"))
    assert docs, "no documents found"
    missing = [d for d in [*docs, "CONTRIBUTING.md"] if f"]({d})" not in text]
    assert not missing, f"README.md does not link {missing}"


def test_ci_lints_and_type_checks_after_the_tests():
    ci = (README.parent / ".ci" / "run").read_text()
    assert (
        ci.index('bash -euo pipefail -c "$cmd"') < ci.index('"$bin/ruff" check .') < ci.index('"$bin/mypy"')
    )
