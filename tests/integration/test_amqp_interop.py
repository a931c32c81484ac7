"""AMQP 0.9.1 (pika) ↔ stream protocol (rabbitstream) on the same stream, against a real broker.

The broker converts between AMQP 1.0 (what a stream stores) and AMQP 0.9.1 on the fly; these tests pin
the mapping observed on RabbitMQ 4.0 and 4.3 (documented in ``docs/interop.md``).

pika is blocking: its calls run in a worker thread (:func:`asyncio.to_thread`) so that the event loop
of our producer/consumer keeps running.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pika
import pika.data
import pika.exceptions
import pytest
from _consumer_helpers import Collector, make_consumer, make_producer, wait_for
from rabbitstream import (
    AMQPMessage,
    CompressionType,
    Consumer,
    ConsumerOffsetSpecification,
    Header,
    OffsetType,
    Properties,
    amqp_decoder,
    amqp_decoder_str,
)

pytestmark = pytest.mark.integration

Delivery = tuple[Any, Any, bytes]  # (Basic.Deliver, BasicProperties, body)


# --------------------------------------------------------------------------- pika helpers


def _after_4_0(broker: Any) -> bool:
    """Whether the broker is newer than 4.0 (differences observed on 4.3; 4.1/4.2 not tested)."""
    try:
        major, minor = (int(x) for x in str(broker.version).split(".")[:2])
    except ValueError:
        return False
    return (major, minor) > (4, 0)


def _params(broker: Any) -> Any:
    return pika.ConnectionParameters(
        host=broker.host,
        port=broker.amqp_port,
        virtual_host=broker.vhost,
        credentials=pika.PlainCredentials(broker.username, broker.password),
        connection_attempts=3,
        retry_delay=0.5,
    )


def _consume(
    broker: Any, stream: str, count: int, timeout: float = 15.0, offset: Any = "first"
) -> list[Delivery]:
    """Consume ``count`` deliveries of ``stream`` from ``offset`` (a stream needs qos + manual acks)."""
    conn = pika.BlockingConnection(_params(broker))
    out: list[Delivery] = []
    try:
        ch = conn.channel()
        ch.basic_qos(prefetch_count=100)

        def on_message(chan: Any, method: Any, props: Any, body: bytes) -> None:
            out.append((method, props, body))
            chan.basic_ack(method.delivery_tag)
            if len(out) >= count:
                chan.stop_consuming()

        ch.basic_consume(stream, on_message, arguments={"x-stream-offset": offset})
        conn.call_later(timeout, ch.stop_consuming)
        ch.start_consuming()
    finally:
        if conn.is_open:
            conn.close()
    assert len(out) >= count, f"pika got {len(out)} of {count} deliveries"
    return out


def _declare_stream(broker: Any, stream: str) -> None:
    conn = pika.BlockingConnection(_params(broker))
    try:
        conn.channel().queue_declare(stream, durable=True, arguments={"x-queue-type": "stream"})
    finally:
        conn.close()


def _publish(broker: Any, stream: str, messages: list[tuple[str, str, bytes, Any]]) -> None:
    """Publish ``(exchange, routing_key, body, BasicProperties)`` with publisher confirms."""
    conn = pika.BlockingConnection(_params(broker))
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        for exchange, key, body, props in messages:
            ch.basic_publish(exchange, key, body, props, mandatory=True)
    finally:
        conn.close()


def _bind(broker: Any, stream: str, exchange: str, key: str) -> None:
    conn = pika.BlockingConnection(_params(broker))
    try:
        conn.channel().queue_bind(stream, exchange, routing_key=key)
    finally:
        conn.close()


class _FloatSafeLong(int):
    """Stands in for ``pika.data.long``: keeps floats, makes ints (and stays a type for isinstance)."""

    def __new__(cls, value: Any = 0) -> Any:
        return value if isinstance(value, float) else int(value)


@pytest.fixture
def pika_floats(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let pika decode ``f``/``d`` field values as floats.

    pika (1.3, 1.4) passes float and double header values through ``long()`` when decoding, so 1.5
    arrives as 1: a pika bug, not the broker's (the broker sends a ``d`` double).
    """
    monkeypatch.setattr(pika.data, "long", _FloatSafeLong)


@pytest.fixture
async def stream(broker: Any, unique_stream_name: str) -> AsyncIterator[str]:
    async with make_producer(broker) as p:
        await p.create_stream(unique_stream_name)
        yield unique_stream_name
        await p.delete_stream(unique_stream_name, missing_ok=True)


async def _send(broker: Any, stream: str, *messages: Any) -> None:
    async with make_producer(broker) as p:
        for m in messages:
            await p.send_wait(stream, m)


async def _read(broker: Any, stream: str, count: int, decoder: Callable[[Any], Any]) -> Collector:
    col = Collector()
    async with make_consumer(broker) as c:
        await c.subscribe(stream, col, decoder=decoder)
        await wait_for(lambda: len(col) >= count)
        await asyncio.sleep(0.2)
    assert len(col) == count
    return col


# --------------------------------------------------------------------------- stream -> AMQP 0.9.1

CREATED_MS = 1_700_000_000_123  # not a whole second: AMQP 0.9.1 timestamps are seconds


def _full_message() -> AMQPMessage:
    return AMQPMessage(
        header=Header(durable=True, priority=5),
        message_annotations={"x-note": "from-stream"},
        properties=Properties(
            message_id="mid-1",
            user_id=b"guest",  # the broker checks it against the publisher... only for AMQP 0.9.1/1.0 links
            to="/queues/somewhere",
            subject="the-subject",
            reply_to="reply-queue",
            correlation_id="cid-1",
            content_type="application/json",
            content_encoding="utf-8",
            absolute_expiry_time=4_000_000_000_000,
            creation_time=CREATED_MS,
            group_id="group-1",
            group_sequence=7,
        ),
        application_properties={
            "str": "héllo",
            "int": 42,
            "neg": -5,
            "big": 1 << 40,
            "bool": True,
            "false": False,
            "float": 1.5,
            "bytes": b"\xff\x00\x01",  # not UTF-8, so pika keeps it as bytes
        },
        body=b'{"a": 1}',
    )


async def test_stream_to_amqp091_properties_and_headers(broker: Any, stream: str, pika_floats: None) -> None:
    await _send(broker, stream, _full_message())
    [(method, props, body)] = await asyncio.to_thread(_consume, broker, stream, 1)
    assert body == b'{"a": 1}'
    assert method.routing_key == stream and method.exchange == ""
    # properties section -> basic properties
    assert props.content_type == "application/json"
    assert props.content_encoding == "utf-8"
    assert props.message_id == "mid-1"
    assert props.correlation_id == "cid-1"
    assert props.reply_to == "reply-queue"
    assert props.user_id == "guest"
    assert props.timestamp == CREATED_MS // 1000  # milliseconds -> seconds, truncated
    assert props.app_id == "group-1"  # group-id <-> app-id
    assert props.type is None  # subject is not mapped to type
    # header section
    assert props.delivery_mode == 2
    assert props.priority == 5
    # application properties (and message annotations) -> headers; x-stream-offset added by the broker
    headers = dict(props.headers)
    assert headers.pop("x-stream-offset") == 0
    assert headers.pop("x-note") == "from-stream"
    assert headers == {
        "str": "héllo",
        "int": 42,
        "neg": -5,
        "big": 1 << 40,
        "bool": True,
        "false": False,
        "float": 1.5,
        "bytes": b"\xff\x00\x01",
    }
    assert all(type(headers[k]) is bool for k in ("bool", "false"))
    assert type(headers["float"]) is float


async def test_stream_to_amqp091_identifier_types(broker: Any, stream: str) -> None:
    """Non-string ids: ulong and uuid become strings, binary ids move to x-*-id headers."""
    u = uuid.UUID("12345678-1234-5678-1234-567812345678")
    await _send(
        broker,
        stream,
        AMQPMessage(properties=Properties(message_id=12345, correlation_id=u), body=b"a"),
        AMQPMessage(properties=Properties(message_id=b"\x01\x02", correlation_id=b"cc"), body=b"b"),
    )
    (_, p1, b1), (_, p2, b2) = await asyncio.to_thread(_consume, broker, stream, 2)
    assert (b1, b2) == (b"a", b"b")
    assert p1.message_id == "12345"
    assert p1.correlation_id == f"urn:uuid:{u}"
    assert p2.message_id is None and p2.correlation_id is None
    assert p2.headers["x-message-id"] == b"\x01\x02"
    assert p2.headers["x-correlation-id"] == b"cc"


async def test_stream_to_amqp091_header_and_reply_to(broker: Any, stream: str) -> None:
    """durable/ttl -> delivery_mode/expiration; reply-to addresses (4.3 strips ``/queues/``)."""
    replies = ["/queues/q1", "/queues/q%201", "/exchanges/x1/rk1", "plain-name"]
    await _send(
        broker,
        stream,
        AMQPMessage(body=b"no-header"),
        AMQPMessage(header=Header(durable=False), body=b"transient"),
        AMQPMessage(header=Header(ttl=5000), body=b"ttl"),
        *(AMQPMessage(properties=Properties(reply_to=r), body=b"r") for r in replies),
    )
    got = await asyncio.to_thread(_consume, broker, stream, 3 + len(replies))
    (_, p0, _), (_, p1, _), (_, p2, _) = got[:3]
    assert p0.delivery_mode == (None if _after_4_0(broker) else 2)  # 4.0 marks every message persistent
    assert p1.delivery_mode == 1
    assert p2.expiration == "5000"
    expected = ["q1", "q 1"] if _after_4_0(broker) else replies[:2]
    assert [p.reply_to for _, p, _ in got[3:]] == [*expected, *replies[2:]]


async def test_stream_to_amqp091_body_sections(broker: Any, stream: str) -> None:
    """data sections are concatenated; amqp-value / amqp-sequence arrive encoded, typed ``amqp-1.0``."""
    await _send(
        broker,
        stream,
        AMQPMessage(body=[b"part1-", b"part2"]),
        AMQPMessage(value="a text value"),
        AMQPMessage(value={"k": 1, "l": [1, 2]}),
        AMQPMessage(sequence=[[1, "a"]]),
    )
    deliveries = await asyncio.to_thread(_consume, broker, stream, 4)
    (_, p0, b0), (_, p1, b1), (_, p2, b2), (_, p3, b3) = deliveries
    assert b0 == b"part1-part2" and p0.type is None
    assert p1.type == p2.type == p3.type == "amqp-1.0"
    # the body is the encoded section itself: our decoder reads it back
    assert amqp_decoder_str(b1).value == "a text value"
    assert amqp_decoder_str(b2).value == {"k": 1, "l": [1, 2]}
    assert amqp_decoder_str(b3).sequence == [[1, "a"]]


async def test_stream_to_amqp091_offsets(broker: Any, stream: str) -> None:
    """x-stream-offset header = the stream offset; pika can start at a numeric offset."""
    await _send(broker, stream, *(AMQPMessage(body=b"m%d" % i) for i in range(5)))
    got = await asyncio.to_thread(_consume, broker, stream, 2, 15.0, 3)
    assert [(b, p.headers["x-stream-offset"]) for _, p, b in got] == [(b"m3", 3), (b"m4", 4)]


async def test_stream_to_amqp091_typed_application_properties(
    broker: Any, stream: str, pika_floats: None
) -> None:
    """AMQP 1.0 typed values in application properties, as a 0.9.1 reader sees them."""
    from rabbitstream_amqp import Byte, Float, Long, Short, Symbol, Timestamp, UByte, UInt, ULong, UShort

    props = {
        "ubyte": UByte(200),
        "ushort": UShort(60000),
        "uint": UInt(4_000_000_000),
        "ulong": ULong(5),
        "byte": Byte(-5),
        "short": Short(-300),
        "long": Long(5),
        "float32": Float(0.25),
        "symbol": Symbol("sym"),
        "ts": Timestamp(CREATED_MS),
        "null": None,
    }
    await _send(broker, stream, AMQPMessage(application_properties=props, body=b"typed"))
    [(_, p, _)] = await asyncio.to_thread(_consume, broker, stream, 1)
    headers = dict(p.headers)
    del headers["x-stream-offset"]
    assert headers == {
        "ubyte": 200,
        "ushort": 60000,
        "uint": 4_000_000_000,
        "ulong": 5,
        "byte": -5,
        "short": -300,
        "long": 5,
        "float32": 0.25,
        "symbol": "sym",
        "ts": dt.datetime.fromtimestamp(CREATED_MS // 1000, dt.timezone.utc),  # 0.9.1 timestamps: seconds
        "null": None,
    }


@pytest.mark.parametrize(
    "value",
    [pytest.param(uuid.UUID(int=7), id="uuid"), pytest.param("char", id="char")],
)
async def test_stream_to_amqp091_unconvertible_application_property(
    broker: Any, stream: str, value: Any
) -> None:
    """uuid and char application properties (valid AMQP 1.0) make the broker fail the 0.9.1 delivery
    with 541 INTERNAL_ERROR (4.0 and 4.3): a broker limitation, see docs/interop.md."""
    from rabbitstream_amqp import Char

    if value == "char":
        value = Char("é")
    await _send(broker, stream, AMQPMessage(application_properties={"v": value}, body=b"x"))
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as info:
        await asyncio.to_thread(_consume, broker, stream, 1, 5.0)
    assert info.value.reply_code == 541
    # our decoder reads it back unchanged
    col = await _read(broker, stream, 1, amqp_decoder_str)
    assert col.messages[0].application_properties == {"v": value}


@pytest.mark.parametrize("ct", [CompressionType.No, CompressionType.Gzip], ids=["none", "gzip"])
async def test_amqp091_reads_sub_entries(broker: Any, stream: str, ct: CompressionType) -> None:
    """The broker expands uncompressed sub-entry batches for 0.9.1 readers but silently skips
    compressed ones (their offsets are missing); stream-protocol readers get everything."""
    async with make_producer(broker) as p:
        await p.send_wait(stream, AMQPMessage(body=b"plain-0"))
        await p.send_sub_entry(stream, [AMQPMessage(body=b"sub-%d" % i) for i in (1, 2, 3)], ct)
        await p.send_wait(stream, AMQPMessage(body=b"plain-4"))
    bodies = [b"plain-0", b"sub-1", b"sub-2", b"sub-3", b"plain-4"]
    want = [0, 1, 2, 3, 4] if ct is CompressionType.No else [0, 4]
    got = await asyncio.to_thread(_consume, broker, stream, len(want))
    assert [p.headers["x-stream-offset"] for _, p, _ in got] == want
    assert [b for _, _, b in got] == [bodies[o] for o in want]
    if ct is CompressionType.No:  # a 0.9.1 consumer can start inside an uncompressed batch
        got = await asyncio.to_thread(_consume, broker, stream, 3, 15.0, 2)
        assert [(b, p.headers["x-stream-offset"]) for _, p, b in got] == [
            (b"sub-2", 2),
            (b"sub-3", 3),
            (b"plain-4", 4),
        ]
    col = await _read(broker, stream, 5, amqp_decoder)
    assert col.offsets == [0, 1, 2, 3, 4]


async def test_non_amqp_entry_closes_amqp091_consumer(broker: Any, stream: str) -> None:
    """Raw bytes (not AMQP 1.0) in a stream: the broker cannot convert them and closes the 0.9.1
    connection with 541 INTERNAL_ERROR. Publish AMQPMessage when other protocols read the stream."""
    await _send(broker, stream, b"raw bytes, not an AMQP 1.0 message")
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as info:
        await asyncio.to_thread(_consume, broker, stream, 1, 5.0)
    assert info.value.reply_code == 541
    # the stream protocol side is unaffected
    col = await _read(broker, stream, 1, lambda b: b)
    assert col.messages == [b"raw bytes, not an AMQP 1.0 message"]


# --------------------------------------------------------------------------- AMQP 0.9.1 -> stream

PIKA_TS = 1_700_000_000  # seconds
HEADER_TS = dt.datetime(2024, 1, 2, 3, 4, 5)  # naive = UTC for pika


def _pika_props(n: int) -> Any:
    return pika.BasicProperties(
        content_type="text/plain",
        content_encoding="gzip",
        headers={
            "s": f"v{n}",
            "i": 7,
            "neg": -3,
            "big": 1 << 40,
            "t": True,
            "bin": b"\xfe\xff",
            "ts": HEADER_TS,
            "nothing": None,
            "array": [1, "a"],
            "table": {"k": "v"},
        },
        delivery_mode=2,
        priority=3,
        correlation_id=f"c-{n}",
        reply_to=f"r-{n}",
        expiration="60000",
        message_id=f"m-{n}",
        timestamp=PIKA_TS,
        type="my-type",
        user_id=None,
        app_id="my-app",
    )


@pytest.fixture
async def pika_stream(broker: Any, unique_stream_name: str) -> AsyncIterator[str]:
    """A stream declared through AMQP 0.9.1, with one message published to the default exchange and
    one through ``amq.direct``."""
    await asyncio.to_thread(_declare_stream, broker, unique_stream_name)
    await asyncio.to_thread(_bind, broker, unique_stream_name, "amq.direct", "rk-1")
    await asyncio.to_thread(
        _publish,
        broker,
        unique_stream_name,
        [
            ("", unique_stream_name, b"from-pika-0", _pika_props(0)),
            ("amq.direct", "rk-1", b"from-pika-1", _pika_props(1)),
        ],
    )
    yield unique_stream_name
    async with make_producer(broker) as p:
        await p.delete_stream(unique_stream_name, missing_ok=True)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _check_pika_message(msg: AMQPMessage, n: int, stream: str, *, as_str: bool, after_4_0: bool) -> None:
    t: Callable[[str], Any] = (lambda s: s) if as_str else (lambda s: s.encode())
    assert msg.body == b"from-pika-%d" % n
    # message annotations: routing information + the 0.9.1 type
    ann = msg.message_annotations
    assert ann is not None
    assert ann[t("x-exchange")] == t("" if n == 0 else "amq.direct")
    assert ann[t("x-routing-key")] == t(stream if n == 0 else "rk-1")
    assert ann[t("x-basic-type")] == t("my-type")
    # header
    assert msg.header is not None
    assert msg.header.durable is True
    assert msg.header.priority == 3
    assert msg.header.ttl == 60000  # expiration (ms as a string) -> ttl
    # properties
    p = msg.properties
    assert p is not None
    assert p.message_id == t(f"m-{n}")
    assert p.correlation_id == t(f"c-{n}")
    # 4.3 turns a 0.9.1 reply-to queue name into an AMQP 1.0 address (back again for 0.9.1 readers)
    assert p.reply_to == t(f"/queues/r-{n}" if after_4_0 else f"r-{n}")
    assert p.content_type == t("text/plain")
    assert p.content_encoding == t("gzip")
    assert p.creation_time == PIKA_TS * 1000  # seconds -> milliseconds
    assert p.group_id == t("my-app")  # app-id -> group-id
    assert p.user_id is None and p.subject is None and p.to is None
    # headers -> application properties; arrays and tables are dropped
    app = msg.application_properties
    assert app is not None
    assert {_text(k): v for k, v in app.items()} == {
        "s": t(f"v{n}"),
        "i": 7,
        "neg": -3,
        "big": 1 << 40,
        "t": True,
        "bin": b"\xfe\xff",
        "ts": int(HEADER_TS.replace(tzinfo=dt.timezone.utc).timestamp()) * 1000,  # timestamp, ms
        "nothing": None,
    }
    assert type(app[t("t")]) is bool


@pytest.mark.parametrize("decoder", [amqp_decoder, amqp_decoder_str], ids=["bytes", "str"])
async def test_amqp091_to_stream(broker: Any, pika_stream: str, decoder: Callable[[Any], Any]) -> None:
    col = await _read(broker, pika_stream, 2, decoder)
    assert col.offsets == [0, 1]
    for n, msg in enumerate(col.messages):
        assert isinstance(msg, AMQPMessage)
        _check_pika_message(
            msg, n, pika_stream, as_str=decoder is amqp_decoder_str, after_4_0=_after_4_0(broker)
        )


async def test_amqp091_bodies_and_bare_messages(broker: Any, unique_stream_name: str) -> None:
    """Empty, > 255-byte (vbin32) and 100 KiB bodies; a message without properties."""
    stream = unique_stream_name
    bodies = [b"", b"x" * 300, bytes(range(256)) * 400, b"bare"]
    await asyncio.to_thread(_declare_stream, broker, stream)
    try:
        typed = pika.BasicProperties(content_type="a/b")
        await asyncio.to_thread(
            _publish,
            broker,
            stream,
            [("", stream, b, typed) for b in bodies[:-1]] + [("", stream, bodies[-1], None)],
        )
        for decoder in (amqp_decoder, amqp_decoder_str):
            col = await _read(broker, stream, 4, decoder)
            assert [m.body for m in col.messages] == bodies
            for m in col.messages:
                assert m.header is not None and m.header.durable is False  # no delivery_mode
            assert col.messages[-1].properties is None
            assert col.messages[0].properties.content_type in (b"a/b", "a/b")
    finally:
        async with make_producer(broker) as p:
            await p.delete_stream(stream, missing_ok=True)


async def test_amqp091_message_reencodes_for_pika(broker: Any, pika_stream: str) -> None:
    """A pika message decoded with amqp_decoder_str, re-published by our producer, reads the same in pika."""
    col = await _read(broker, pika_stream, 2, amqp_decoder_str)
    await _send(broker, pika_stream, col.messages[0])
    deliveries = await asyncio.to_thread(_consume, broker, pika_stream, 3)
    (_, p0, b0), _, (_, p2, b2) = deliveries
    assert b2 == b0
    for name in ("content_type", "content_encoding", "correlation_id", "message_id", "reply_to", "timestamp",
                 "type", "app_id", "priority", "delivery_mode", "expiration"):  # fmt: skip
        assert getattr(p2, name) == getattr(p0, name), name
    h0, h2 = dict(p0.headers), dict(p2.headers)
    assert (h0.pop("x-stream-offset"), h2.pop("x-stream-offset")) == (0, 2)
    assert h2 == h0


async def test_stream_declared_by_amqp091_usable_by_stream_clients(
    broker: Any, unique_stream_name: str
) -> None:
    await asyncio.to_thread(_declare_stream, broker, unique_stream_name)
    try:
        await _send(broker, unique_stream_name, AMQPMessage(body=b"ours"))
        col = await _read(broker, unique_stream_name, 1, amqp_decoder)
        assert col.messages[0].body == b"ours"
        [(_, _, body)] = await asyncio.to_thread(_consume, broker, unique_stream_name, 1)
        assert body == b"ours"
    finally:
        async with make_producer(broker) as p:
            await p.delete_stream(unique_stream_name, missing_ok=True)


async def test_offset_spec_after_amqp091_messages(broker: Any, pika_stream: str) -> None:
    """Our consumer from OFFSET 1 over AMQP 0.9.1-published entries."""
    col = Collector()
    consumer: Consumer
    async with make_consumer(broker) as consumer:
        await consumer.subscribe(
            pika_stream,
            col,
            decoder=amqp_decoder,
            offset_specification=ConsumerOffsetSpecification(OffsetType.OFFSET, 1),
        )
        await wait_for(lambda: len(col) >= 1)
        await asyncio.sleep(0.2)
    assert col.offsets == [1] and col.messages[0].body == b"from-pika-1"
