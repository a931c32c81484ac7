"""``python -m rabbitstream plugins [--json]``: which plugins the core discovers, with nothing else installed.

The ``rabbitstream`` command (``perf``, ``stream``, ``consume``, ``publish``) is the separate distribution
``rabbitstream-cli``; its ``rabbitstream plugins`` prints this same table (:func:`main`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

__all__ = ["main", "plugins_text"]


def plugins_text() -> str:
    """The plugins, then what each kind/key comes from (columns aligned for long keys)."""
    from rabbitstream.plugin import build_registry

    reg = build_registry()
    if not reg.plugins:
        return "no rabbitstream plugins installed (pip install rabbitstream)"
    width = max(len(p.name) for p in reg.plugins)
    lines = [f"{p.name:<{width}}  {p.distribution} {p.version}".rstrip() for p in reg.plugins]
    lines.append("")
    provided = sorted(reg.providers.items(), key=str)
    kind_w = max((len(kind) for (kind, _key), _ in provided), default=0)
    key_w = max((len(str(key)) for (_kind, key), _ in provided), default=0)
    lines += [f"  {kind:<{kind_w}}  {key!s:<{key_w}}  <- {prov}" for (kind, key), prov in provided]
    return "\n".join(lines)


def plugins_json() -> str:
    """The same as JSON: ``{"plugins": [...], "provides": [...]}``."""
    from rabbitstream.plugin import build_registry

    reg = build_registry()
    doc = {
        "plugins": [
            {"name": p.name, "distribution": p.distribution, "version": p.version} for p in reg.plugins
        ],
        "provides": [
            {"kind": kind, "key": str(key), "provider": prov}
            for (kind, key), prov in sorted(reg.providers.items(), key=str)
        ],
    }
    return json.dumps(doc, indent=2)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m rabbitstream plugins [--json]``; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m rabbitstream",
        description="rabbitstream core diagnostics (the rabbitstream command is in rabbitstream-cli)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("plugins", help="list installed plugins and what they provide")
    p.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    print(plugins_json() if args.json else plugins_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
