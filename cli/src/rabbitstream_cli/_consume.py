"""``rabbitstream consume NAME``: print a stream's messages, one line each (kcat for streams).

Follows the stream until ``--count`` messages were printed or Ctrl-C.  A super stream
(detected through the Partitions command) is read partition by partition with a
``SuperStreamConsumer``.  ``--format json`` decodes AMQP 1.0 sections; a body that is
not AMQP 1.0 (published with the binary codec) is shown as it is.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as _dt
import json
import sys
from collections.abc import Callable
from typing import Any

from rabbitstream_cli._connection import ConnectionOptions

__all__ = ["add_consume_command", "message_json", "to_jsonable"]


def to_jsonable(v: Any) -> Any:
    """AMQP values to JSON: bytes as UTF-8 text (or ``{"base64": ...}``), tuples as lists."""
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, (bytes, bytearray, memoryview)):
        b = bytes(v)
        try:
            return b.decode("utf-8")
        except UnicodeDecodeError:
            return {"base64": base64.b64encode(b).decode("ascii")}
    if isinstance(v, _dt.datetime):
        return v.isoformat()
    if isinstance(v, dict):
        return {str(to_jsonable(k)): to_jsonable(x) for k, x in v.items()}
    if hasattr(v, "_asdict"):  # Header, Properties (NamedTuple)
        d = {k: to_jsonable(x) for k, x in v._asdict().items() if x is not None}
        return d or None
    if isinstance(v, (list, tuple)):
        return [to_jsonable(x) for x in v]
    return str(v)


def message_json(msg: Any, stream: str, offset: int, timestamp: int) -> dict[str, Any]:
    """The ``--format json`` object of one message."""
    doc: dict[str, Any] = {"stream": stream, "offset": offset, "timestamp": timestamp}
    if isinstance(msg, (bytes, bytearray, memoryview)):
        doc["body"] = to_jsonable(msg)
        return doc
    for name in (
        "header",
        "delivery_annotations",
        "message_annotations",
        "properties",
        "application_properties",
    ):
        v = to_jsonable(getattr(msg, name, None))
        if v:
            doc[name] = v
    for name in ("body", "sequence", "value"):
        v = getattr(msg, name, None)
        if v is not None:
            doc[name] = to_jsonable(v)
    footer = to_jsonable(getattr(msg, "footer", None))
    if footer:
        doc["footer"] = footer
    return doc


def _decoder() -> Callable[[bytes], Any]:
    """AMQP 1.0 when the codec plugin is installed and the bytes parse, else the raw bytes."""
    try:
        from rabbitstream import amqp_decoder
    except Exception:
        return lambda data: bytes(data)

    def decode(data: bytes) -> Any:
        try:
            return amqp_decoder(data)
        except Exception:
            return bytes(data)

    return decode


def _offset_spec(offset: tuple[str, int | None]) -> Any:
    from rabbitstream import ConsumerOffsetSpecification, OffsetType

    kind, value = offset
    return ConsumerOffsetSpecification(getattr(OffsetType, kind.upper()), value)


def _body_bytes(msg: Any) -> bytes:
    if isinstance(msg, (bytes, bytearray, memoryview)):
        return bytes(msg)
    body = getattr(msg, "body", None)
    if isinstance(body, (bytes, bytearray, memoryview)):
        return bytes(body)
    if isinstance(body, str):
        return body.encode()
    for name in ("value", "sequence"):
        v = getattr(msg, name, None)
        if v is not None:
            return json.dumps(to_jsonable(v)).encode()
    return b"" if body is None else str(body).encode()


async def _consume(a: argparse.Namespace, conn: ConnectionOptions) -> int:
    from rabbitstream import Consumer, SuperStreamConsumer

    from rabbitstream_cli._stream import _is_super_stream, connect

    admin = await connect(conn)
    try:
        partitions = await _is_super_stream(admin, a.name)
        if not partitions and not await admin.stream_exists(a.name):
            print(f"rabbitstream consume: error: stream {a.name!r} does not exist", file=sys.stderr)
            return 1
    finally:
        await admin.close()
    out = sys.stdout.buffer
    decode = _decoder()
    done = asyncio.get_running_loop().create_future()
    seen = 0
    fmt_json = a.format == "json"

    def on_message(msg: Any, ctx: Any) -> None:
        nonlocal seen
        if done.done():
            return
        if fmt_json:
            line = json.dumps(message_json(decode(msg), ctx.stream, ctx.offset, ctx.timestamp)).encode()
        else:
            line = _body_bytes(decode(msg))
        try:
            out.write(line + b"\n")
            out.flush()
        except BrokenPipeError as exc:
            done.set_exception(exc)
            return
        seen += 1
        if a.count is not None and seen >= a.count:
            done.set_result(None)

    kw = conn.producer_kwargs()
    if conn.sasl == "external":
        from rabbitstream import SlasMechanism

        kw["sasl_configuration_mechanism"] = SlasMechanism.MechanismExternal
    client: Any
    if partitions:
        client = SuperStreamConsumer(**kw, super_stream=a.name, connection_name="rabbitstream-consume")
        await client.start()
        await client.subscribe(on_message, offset_specification=_offset_spec(a.offset))
    else:
        client = Consumer(**kw, connection_name="rabbitstream-consume")
        await client.start()
        await client.subscribe(a.name, on_message, offset_specification=_offset_spec(a.offset))
    try:
        await done
    finally:
        await client.close()
    return 0


def add_consume_command(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    """Register ``consume``."""
    from rabbitstream_cli.perf._options import parse_offset

    c = sub.add_parser(
        "consume",
        help="print a stream's (or super stream's) messages, one per line",
        description="Print messages, one per line, following the stream until --count messages or Ctrl-C.",
    )
    c.add_argument("name", help="stream or super stream")
    c.add_argument(
        "--offset",
        type=parse_offset,
        default=("next", None),
        help="first, last, next (default), an offset, timestamp:<epoch ms>, ISO 8601 or -30s/-5m",
    )
    c.add_argument("--count", type=_count, help="stop after this many messages")
    c.add_argument(
        "--format",
        choices=("raw", "json"),
        default="raw",
        help="raw: the message body; json: stream, offset, timestamp and the AMQP 1.0 sections",
    )
    common(c)

    def factory(a: argparse.Namespace) -> Any:
        async def run(conn: ConnectionOptions) -> int:
            return await _consume(a, conn)

        return run

    c.set_defaults(func=factory, parser=c)


def _count(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, not {v}")
    return v
