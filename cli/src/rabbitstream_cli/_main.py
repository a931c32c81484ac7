"""The ``rabbitstream`` command: ``perf``, ``stream``, ``consume``, ``publish``, ``plugins``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

__all__ = ["main"]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    parts = []
    for dist in ("rabbitstream-cli", "rabbitstream-core", "rabbitstream"):
        try:
            parts.append(f"{dist} {version(dist)}")
        except PackageNotFoundError:
            continue
    return ", ".join(parts) or "rabbitstream-cli (not installed)"


def _plugins(args: argparse.Namespace) -> int:
    # the table lives in the core (``python -m rabbitstream plugins`` works with the core alone)
    from rabbitstream.__main__ import plugins_json, plugins_text

    print(plugins_json() if args.json else plugins_text())
    return 0


def _parser() -> argparse.ArgumentParser:
    from rabbitstream_cli._stream import add_stream_commands

    parser = argparse.ArgumentParser(
        prog="rabbitstream",
        description="Command line for RabbitMQ Streams: performance tool, stream management, "
        "consume and publish from the shell.",
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser(
        "perf",
        help="multi-process publish/consume performance tool (rabbitstream perf --help)",
        add_help=False,
    )
    add_stream_commands(sub)
    p = sub.add_parser("plugins", help="list installed plugins and what they provide")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_plugins)
    return parser


def _run(argv: list[str]) -> int:
    if argv and argv[0] == "perf":
        from rabbitstream_cli.perf import main as perf_main

        return int(perf_main(argv[1:]))
    args = _parser().parse_args(argv)
    if hasattr(args, "parser"):  # stream, consume, publish: they connect to a broker
        from rabbitstream_cli._stream import stream_main

        return stream_main(args)
    func: Callable[[argparse.Namespace], int] = args.func
    return int(func(args))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rabbitstream`` console script; returns the exit status.

    0 success, 1 failure (broker error, unconfirmed messages), 2 bad arguments or no
    broker, 130 interrupted.  Output piped into a command that exits early (``| head``)
    ends the command quietly.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        status = _run(args)
        sys.stdout.flush()
        return status
    except BrokenPipeError:
        # the reader went away (| head): no traceback, and none at interpreter exit either
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
