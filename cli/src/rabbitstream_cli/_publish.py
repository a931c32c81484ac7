"""``rabbitstream publish NAME``: publish standard input (or ``--file``), one message per line.

Each line (without its end of line) becomes the body of one AMQP 1.0 message (raw
bytes with ``--codec binary``).  A super stream needs a routing key: ``--routing-key``
for every message, or ``--key-from-json FIELD`` to take it from each line parsed as
JSON.  The exit status is non-zero when any message is not confirmed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable, Iterator
from typing import IO, Any

from rabbitstream_cli._connection import ConnectionOptions

__all__ = ["add_publish_command", "key_from_json"]


def key_from_json(line: bytes, field: str) -> str:
    """The routing key of one line: ``field`` of the JSON object (dotted paths go into nested objects).

    :raises ValueError: not JSON, not an object, or no such field.
    """
    try:
        doc: Any = json.loads(line)
    except ValueError as exc:
        raise ValueError(f"not JSON ({exc})") from None
    for part in field.split("."):
        if not isinstance(doc, dict) or part not in doc:
            raise ValueError(f"no field {field!r}")
        doc = doc[part]
    if isinstance(doc, (dict, list)) or doc is None:
        raise ValueError(f"field {field!r} is not a string or number")
    return str(doc)


def _lines(src: IO[bytes]) -> Iterator[bytes]:
    for raw in src:
        line = raw.rstrip(b"\r\n")
        if line:
            yield line


async def _publish(a: argparse.Namespace, conn: ConnectionOptions) -> int:
    from rabbitstream import Producer, SuperStreamProducer

    from rabbitstream_cli._stream import _is_super_stream, connect

    admin = await connect(conn)
    try:
        partitions = await _is_super_stream(admin, a.name)
        if not partitions and not await admin.stream_exists(a.name):
            print(f"rabbitstream publish: error: stream {a.name!r} does not exist", file=sys.stderr)
            return 1
    finally:
        await admin.close()
    if partitions and not (a.routing_key or a.key_from_json):
        print(
            f"rabbitstream publish: error: {a.name} is a super stream: give --routing-key or --key-from-json",
            file=sys.stderr,
        )
        return 2
    make: Callable[[bytes], Any] = bytes
    if a.codec == "amqp":
        from rabbitstream import AMQPMessage

        def make(body: bytes) -> Any:
            return AMQPMessage(body=body)

    kw = conn.producer_kwargs()
    if conn.sasl == "external":
        from rabbitstream import SlasMechanism

        kw["sasl_configuration_mechanism"] = SlasMechanism.MechanismExternal
    confirmed = failed = sent = skipped = 0
    settled = asyncio.Event()

    def on_confirm(status: Any) -> None:
        nonlocal confirmed, failed
        if status.is_confirmed:
            confirmed += 1
        else:
            failed += 1
            print(f"message not confirmed: response code {status.response_code}", file=sys.stderr)
        if confirmed + failed >= sent:
            settled.set()

    field = a.key_from_json

    async def extractor(msg: Any) -> str:
        if a.routing_key is not None:
            return str(a.routing_key)
        body = msg if isinstance(msg, bytes) else msg.body
        return key_from_json(body, field)

    producer: Any
    if partitions:
        producer = SuperStreamProducer(
            **kw,
            super_stream=a.name,
            routing_extractor=extractor,
            routing=a.routing,
            publisher_name=a.publisher_name,
            connection_name="rabbitstream-publish",
        )
    else:
        producer = Producer(**kw, connection_name="rabbitstream-publish")
    src: IO[bytes] = open(a.file, "rb") if a.file else sys.stdin.buffer  # noqa: SIM115, ASYNC230
    try:
        await producer.start()
        loop = asyncio.get_running_loop()
        lines = _lines(src)
        while True:
            line = await loop.run_in_executor(None, next, lines, None)
            if line is None:
                break
            if partitions and field:
                try:
                    key_from_json(line, field)
                except ValueError as exc:
                    skipped += 1
                    print(f"line {sent + skipped}: {exc}: not published", file=sys.stderr)
                    continue
            sent += 1
            if partitions:
                await producer.send(make(line), on_publish_confirm=on_confirm)
            else:
                await producer.send(a.name, make(line), a.publisher_name, on_confirm)
        if sent and not partitions:
            await producer.flush()
        if sent and confirmed + failed < sent:
            try:
                await asyncio.wait_for(settled.wait(), a.confirm_timeout)
            except asyncio.TimeoutError:
                pass
    finally:
        await producer.close()
        if a.file:
            src.close()
    missing = sent - confirmed - failed
    print(
        f"published {sent}, confirmed {confirmed}"
        + (f", failed {failed}" if failed else "")
        + (f", unconfirmed {missing}" if missing else "")
        + (f", skipped {skipped}" if skipped else ""),
        file=sys.stderr,
    )
    return 0 if confirmed == sent and not skipped else 1


def add_publish_command(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    """Register ``publish``."""
    p = sub.add_parser(
        "publish",
        help="publish standard input (or --file), one message per line",
        description="Publish one message per line of standard input (or --file). Exit status 1 when any "
        "message is not confirmed.",
    )
    p.add_argument("name", help="stream or super stream")
    p.add_argument("--file", help="read lines from this file instead of standard input")
    p.add_argument("--publisher-name", help="producer reference, for deduplication")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--routing-key", help="super stream: the routing key of every message")
    g.add_argument(
        "--key-from-json", metavar="FIELD", help="super stream: routing key = FIELD of each JSON line"
    )
    p.add_argument(
        "--routing",
        choices=("hash", "key"),
        default="hash",
        help="super stream routing: hash of the key (default) or the binding key itself",
    )
    p.add_argument(
        "--codec", choices=("amqp", "binary"), default="amqp", help="AMQP 1.0 message (default) or raw bytes"
    )
    p.add_argument(
        "--confirm-timeout",
        type=float,
        default=10.0,
        help="seconds to wait for the last confirms (default 10)",
    )
    common(p)

    def factory(a: argparse.Namespace) -> Any:
        async def run(conn: ConnectionOptions) -> int:
            if a.file is not None:
                try:
                    open(a.file, "rb").close()  # noqa: ASYNC230
                except OSError as exc:
                    print(f"rabbitstream publish: error: {exc}", file=sys.stderr)
                    return 2
            return await _publish(a, conn)

        return run

    p.set_defaults(func=factory, parser=p)
