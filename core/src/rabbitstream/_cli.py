"""The ``rabbitstream`` command line: ``plugins``, ``perf``."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _plugins(args: argparse.Namespace) -> int:
    from rabbitstream.plugin import build_registry

    reg = build_registry()
    if args.json:
        print(
            json.dumps(
                {
                    "plugins": [
                        {"name": p.name, "distribution": p.distribution, "version": p.version}
                        for p in reg.plugins
                    ],
                    "provides": [
                        {"kind": kind, "key": str(key), "provider": prov}
                        for (kind, key), prov in sorted(reg.providers.items(), key=str)
                    ],
                },
                indent=2,
            )
        )
        return 0
    if not reg.plugins:
        print("no rabbitstream plugins installed (pip install rabbitstream)")
        return 0
    width = max(len(p.name) for p in reg.plugins)
    for p in reg.plugins:
        print(f"{p.name:<{width}}  {p.distribution} {p.version}".rstrip())
    print()
    for (kind, key), prov in sorted(reg.providers.items(), key=str):
        print(f"  {kind} {key!s:<12} <- {prov}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rabbitstream`` console script."""
    parser = argparse.ArgumentParser(prog="rabbitstream", description="rabbitstream command line")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("plugins", help="list installed plugins and what they provide")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_plugins)
    sub.add_parser(
        "perf", help="publish/consume performance tool (see rabbitstream perf --help)", add_help=False
    )
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "perf":
        perf = importlib.import_module("rabbitstream._perf")
        return int(perf.main(argv[1:]))
    args = parser.parse_args(argv)
    return int(args.func(args))
