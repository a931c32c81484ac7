"""``rabbitstream stream create|delete|list|info``: stream management over the stream protocol.

Everything goes through the broker's stream port (no management plugin): Create,
Delete, CreateSuperStream, DeleteSuperStream, Metadata, StreamStats, Partitions.
What the protocol cannot do: enumerate the streams of a virtual host (there is no
"list" command), so ``stream list`` shows the streams you name; and it reports
neither message counts nor sizes (StreamStats gives chunk ids and offsets only).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from rabbitstream_cli._connection import (
    NO_BROKER,
    ConnectionOptions,
    add_connection_arguments,
    connection_from_args,
    probe,
)

__all__ = ["add_stream_commands", "connect", "run_command"]

_LOCATORS = ("client-local", "balanced", "least-leaders")
_AGE = re.compile(r"\d+[YMDhms]")


def _age(text: str) -> str:
    if not _AGE.fullmatch(text):
        raise argparse.ArgumentTypeError(f"invalid max age {text!r} (examples: 7D, 12h, 30m, 1Y)")
    return text


def _size(text: str) -> int:
    from rabbitstream_cli.perf._options import parse_size

    return parse_size(text)


def _non_negative_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, not {v}")
    return v


def _stream_name(text: str) -> str:
    if not re.fullmatch(r"[^\s]{1,255}", text):
        raise argparse.ArgumentTypeError(f"invalid stream name {text!r}")
    return text


async def connect(conn: ConnectionOptions, name: str = "rabbitstream-cli") -> Any:
    """A :class:`rabbitstream.Client` connected with ``conn``."""
    from rabbitstream import Client

    return await Client.connect(**conn.client_kwargs(), connection_name=name)


def run_command(
    args: argparse.Namespace,
    coro: Callable[[ConnectionOptions], Coroutine[Any, Any, int]],
    parser: argparse.ArgumentParser,
) -> int:
    """Validate the connection options, check the broker answers, run ``coro`` and map errors to exit codes.

    Exit status: what ``coro`` returns; 1 when the broker is down or answers with an
    error (one line on stderr, no traceback); 2 for bad arguments; 130 on Ctrl-C.
    """
    from rabbitstream import RabbitStreamError

    conn = connection_from_args(args, parser)
    err = probe(conn.host, conn.port)
    if err is not None:
        print(NO_BROKER.format(target=conn.target, error=err), file=sys.stderr)
        return 1
    try:
        return asyncio.run(coro(conn))
    except KeyboardInterrupt:
        return 130
    except (RabbitStreamError, OSError, ValueError) as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 1


# ----------------------------------------------------------------- create / delete


def _create_arguments(a: argparse.Namespace) -> dict[str, object]:
    args: dict[str, object] = {}
    if a.max_age:
        args["max-age"] = a.max_age
    if a.max_length_bytes is not None:
        args["max-length-bytes"] = a.max_length_bytes
    if a.max_segment_size_bytes is not None:
        args["stream-max-segment-size-bytes"] = a.max_segment_size_bytes
    if a.initial_cluster_size is not None:
        args["initial-cluster-size"] = a.initial_cluster_size
    if a.leader_locator:
        args["queue-leader-locator"] = a.leader_locator
    return args


def _create(a: argparse.Namespace) -> Callable[[ConnectionOptions], Coroutine[Any, Any, int]]:
    async def run(conn: ConnectionOptions) -> int:
        from rabbitstream import StreamAlreadyExists

        client = await connect(conn)
        try:
            arguments = _create_arguments(a)
            try:
                if a.partitions or a.binding_keys:
                    keys = (
                        a.binding_keys.split(",") if a.binding_keys else [str(i) for i in range(a.partitions)]
                    )
                    partitions = [f"{a.name}-{k}" for k in keys]
                    await client.create_super_stream(a.name, partitions, keys, arguments)
                    listed = ", ".join(partitions)
                    print(f"created super stream {a.name} ({len(partitions)} partitions: {listed})")
                else:
                    await client.create_stream(a.name, arguments)
                    print(f"created stream {a.name}")
            except StreamAlreadyExists:
                if not a.exists_ok:
                    raise
                print(f"{a.name} already exists")
        finally:
            await client.close()
        return 0

    return run


async def _is_super_stream(client: Any, name: str) -> list[str]:
    from rabbitstream import RabbitStreamError

    try:
        return list(await client.partitions(name))
    except RabbitStreamError:
        return []


def _delete(a: argparse.Namespace) -> Callable[[ConnectionOptions], Coroutine[Any, Any, int]]:
    async def run(conn: ConnectionOptions) -> int:
        from rabbitstream import StreamDoesNotExist

        client = await connect(conn)
        try:
            try:
                if await _is_super_stream(client, a.name):
                    await client.delete_super_stream(a.name)
                    print(f"deleted super stream {a.name} and its partitions")
                else:
                    await client.delete_stream(a.name)
                    print(f"deleted stream {a.name}")
            except StreamDoesNotExist:
                if not a.missing_ok:
                    raise
                print(f"{a.name} does not exist")
        finally:
            await client.close()
        return 0

    return run


# ----------------------------------------------------------------- list / info


async def _describe(client: Any, name: str) -> dict[str, Any]:
    """Metadata + StreamStats of one stream (``exists`` false when it does not)."""
    from rabbitstream import RabbitStreamError

    meta = (await client.metadata([name])).get(name)
    doc: dict[str, Any] = {"stream": name, "exists": meta is not None and meta.code == 1}
    if meta is None or meta.code != 1:
        doc["code"] = None if meta is None else meta.code
        return doc
    doc["leader"] = None if meta.leader is None else f"{meta.leader.host}:{meta.leader.port}"
    doc["replicas"] = [f"{b.host}:{b.port}" for b in meta.replicas]
    try:
        stats = await client.stream_stats(name)
    except RabbitStreamError as exc:
        doc["stats_error"] = str(exc)
        return doc
    doc["stats"] = stats
    doc["first_offset"] = stats.get("first_chunk_id", -1)
    doc["committed_offset"] = stats.get("committed_chunk_id", -1)
    return doc


async def _info_doc(client: Any, name: str) -> dict[str, Any]:
    partitions = await _is_super_stream(client, name)
    if not partitions:
        return await _describe(client, name)
    return {
        "super_stream": name,
        "exists": True,
        "partitions": [await _describe(client, p) for p in partitions],
    }


def _format_stream(doc: dict[str, Any], indent: str = "") -> list[str]:
    if not doc["exists"]:
        return [f"{indent}{doc['stream']}: does not exist (code {doc.get('code')})"]
    lines = [
        f"{indent}{doc['stream']}",
        f"{indent}  leader           {doc['leader'] or 'not available'}",
        f"{indent}  replicas         {', '.join(doc['replicas']) or '-'}",
    ]
    if "stats" in doc:
        lines.append(f"{indent}  first offset     {doc['first_offset']}  (first chunk id; -1 = empty)")
        lines.append(f"{indent}  committed offset {doc['committed_offset']}  (committed chunk id)")
        extra = {k: v for k, v in doc["stats"].items() if k not in ("first_chunk_id", "committed_chunk_id")}
        lines.extend(f"{indent}  {k:<16} {v}" for k, v in sorted(extra.items()))
    else:
        lines.append(f"{indent}  stats            unavailable: {doc.get('stats_error')}")
    return lines


def _format_info(doc: dict[str, Any]) -> str:
    if "super_stream" not in doc:
        return "\n".join(_format_stream(doc))
    lines = [f"super stream {doc['super_stream']} ({len(doc['partitions'])} partitions)"]
    for p in doc["partitions"]:
        lines += _format_stream(p, "  ")
    return "\n".join(lines)


def _info(a: argparse.Namespace) -> Callable[[ConnectionOptions], Coroutine[Any, Any, int]]:
    async def run(conn: ConnectionOptions) -> int:
        client = await connect(conn)
        try:
            docs = [await _info_doc(client, n) for n in a.names]
        finally:
            await client.close()
        if a.json:
            print(json.dumps(docs[0] if a.command_name == "info" else docs, indent=2))
        elif a.command_name == "info":
            print(_format_info(docs[0]))
        else:
            for d in docs:
                kind = "super stream" if "super_stream" in d else "stream"
                name = d.get("super_stream") or d["stream"]
                if not d["exists"]:
                    print(f"{name}  (does not exist)")
                elif kind == "super stream":
                    print(
                        f"{name}  super stream, partitions {', '.join(p['stream'] for p in d['partitions'])}"
                    )
                else:
                    print(f"{name}  stream, leader {d['leader']}, {len(d['replicas'])} replica(s)")
        return 0 if all(d["exists"] for d in docs) else 1

    return run


# ----------------------------------------------------------------- argument parsing


def _common(p: argparse.ArgumentParser) -> None:
    add_connection_arguments(p)


def add_stream_commands(sub: Any) -> None:
    """Register ``stream``, ``consume`` and ``publish`` on the top-level subparsers."""
    from rabbitstream_cli._consume import add_consume_command
    from rabbitstream_cli._publish import add_publish_command

    st = sub.add_parser("stream", help="create, delete, list and inspect streams and super streams")
    ss = st.add_subparsers(dest="stream_command", required=True, metavar="ACTION")

    c = ss.add_parser("create", help="create a stream, or a super stream with --partitions/--binding-keys")
    c.add_argument("name", type=_stream_name)
    c.add_argument("--max-age", type=_age, help="retention by age: 7D, 12h, 30m, 1Y ...")
    c.add_argument("--max-length-bytes", type=_size, help="retention by size: 20gb, 512mib ...")
    c.add_argument("--max-segment-size-bytes", type=_size, help="segment file size (default 500mb)")
    c.add_argument("--initial-cluster-size", type=_non_negative_int, help="number of replicas incl. leader")
    c.add_argument("--leader-locator", choices=_LOCATORS, help="where the leader goes")
    g = c.add_mutually_exclusive_group()
    g.add_argument("--partitions", type=_non_negative_int, help="a super stream of N partitions NAME-0..N-1")
    g.add_argument(
        "--binding-keys", help="a super stream with one partition per key: NAME-<key> (comma list)"
    )
    c.add_argument("--exists-ok", action="store_true", help="no error when it exists already")
    _common(c)
    c.set_defaults(func=_create, parser=c)

    d = ss.add_parser("delete", help="delete a stream or a super stream (with its partitions)")
    d.add_argument("name", type=_stream_name)
    d.add_argument("--missing-ok", action="store_true", help="no error when it does not exist")
    _common(d)
    d.set_defaults(func=_delete, parser=d)

    ls = ss.add_parser(
        "list",
        help="show the streams you name (the stream protocol cannot enumerate a virtual host)",
        description="Show the named streams and super streams. The stream protocol has no command to "
        "enumerate the streams of a virtual host: use `rabbitmqctl list_queues name type` or the "
        "management API for that.",
    )
    ls.add_argument("names", nargs="+", type=_stream_name, metavar="NAME")
    ls.add_argument("--json", action="store_true", help="print JSON")
    _common(ls)
    ls.set_defaults(func=_info, parser=ls, command_name="list")

    i = ss.add_parser("info", help="leader, replicas, first and committed offsets, stats")
    i.add_argument("name", type=_stream_name)
    i.add_argument("--json", action="store_true", help="print JSON")
    _common(i)
    i.set_defaults(func=_info, parser=i, command_name="info")

    add_consume_command(sub, _common)
    add_publish_command(sub, _common)


def stream_main(args: argparse.Namespace) -> int:
    """Run a parsed ``stream``/``consume``/``publish`` command."""
    if getattr(args, "command_name", None) == "info":
        args.names = [args.name]
    parser: argparse.ArgumentParser = args.parser
    return run_command(args, args.func(args), parser)
