"""Every docstring example in the package runs and prints what it shows."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import keypoint_corrupt

MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(keypoint_corrupt.__path__, prefix="keypoint_corrupt.")
    if not m.name.startswith("keypoint_corrupt.models") or importlib.util.find_spec("torch") is not None
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    result = doctest.testmod(module, optionflags=flags, verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"


def test_the_package_has_examples_to_check():
    finder = doctest.DocTestFinder()
    examples = sum(len(t.examples) for t in finder.find(keypoint_corrupt.functional.occlusion))
    assert len(MODULES) > 20 and examples >= 4
