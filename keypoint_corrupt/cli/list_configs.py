"""``keypoint-corrupt list``: the registered configurations and their parameters."""

from __future__ import annotations

import argparse
import json
from typing import Any

EXAMPLES = """examples:
  keypoint-corrupt list
  keypoint-corrupt list --json
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "list",
        help="list the corruption configurations and their parameters",
        description="List the registered corruption configurations and their parameters.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
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
