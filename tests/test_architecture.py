"""Data flows one way: every package import points at a lower layer (docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "keypoint_corrupt"

# Lower number = lower layer. A module may import its own part of the package or a lower layer,
# never a layer at its own level or above (so materialize, models and benchmark stay apart where
# their level says so, and nothing imports cli).
LAYERS: dict[str, int] = {
    "_validation": 0,
    "_paths": 0,
    "_version": 0,
    "_model_names": 0,
    "_stb_layout": 0,
    "schema": 0,
    "functional": 1,
    "transforms": 2,
    "registry": 3,
    "body_metrics": 4,
    "crop": 4,
    "metrics": 4,
    "suites": 4,
    "datasets": 5,
    "preview": 6,
    "materialize": 6,
    "models": 6,
    "adapters": 6,
    "torch": 6,
    "benchmark": 7,
    "cli": 8,
    "__main__": 9,
}


def _part(module: str) -> str:
    """The top-level part of the package a dotted module name belongs to."""
    return module.split(".")[1] if "." in module else "__init__"


def _imports(path: Path) -> set[str]:
    """Parts of the package that ``path`` imports."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("keypoint_corrupt"):
            if node.module == "keypoint_corrupt":
                found.update(alias.name for alias in node.names)
            else:
                found.add(_part(node.module))
        elif isinstance(node, ast.Import):
            found.update(_part(a.name) for a in node.names if a.name.startswith("keypoint_corrupt"))
    return found


def _source_part(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0].removesuffix(".py") if len(rel.parts) > 1 or rel.stem != "__init__" else "__init__"


def test_every_part_of_the_package_has_a_layer():
    parts = {_source_part(p) for p in PACKAGE.rglob("*.py")} - {"__init__"}
    assert parts, "no modules found"
    assert parts <= set(LAYERS), (
        f"give these a layer in LAYERS and docs/architecture.md: {parts - set(LAYERS)}"
    )


def test_imports_point_down_the_layers():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = _source_part(path)
        if source == "__init__":  # the top-level package re-exports the public API
            continue
        for target in _imports(path) - {source, "__init__"}:
            if target in LAYERS and LAYERS[target] >= LAYERS[source]:
                wrong.append(f"{path.relative_to(PACKAGE.parent)} imports {target}")
    assert not wrong, "imports against the flow of docs/architecture.md:\n" + "\n".join(wrong)
