"""``keypoint-corrupt list``: the registered configurations and their parameters."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from keypoint_corrupt.cli.main import COMMANDS

EXAMPLES = """examples:
  keypoint-corrupt list
  keypoint-corrupt list --json
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "list",
        help=COMMANDS["list"][1],
        description="List the registered corruption configurations and their parameters.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if getattr(args, "own_process", False):
        _import_registry_without_torch()
    from keypoint_corrupt.registry import available_configs, get_config

    rows: list[dict[str, Any]] = []
    for name in available_configs():
        cfg = get_config(name)
        rows.append(
            {
                "name": name,
                "family": cfg.family,
                "transform": cfg.transform.__name__,
                "params": dict(cfg.params),
                "description": cfg.description,
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        params = ", ".join(f"{k}={v}" for k, v in r["params"].items())
        print(f"{r['name']:<{width}}  {r['transform']}({params})  {r['description']}")
    return 0


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
