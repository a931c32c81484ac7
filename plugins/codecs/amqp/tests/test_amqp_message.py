"""Message sections: golden bytes, round trips, the rstream-compatible API, the codec object."""

from __future__ import annotations

import copy
import pickle
import uuid

import pytest
from rabbitstream.plugin import MessageCodec, build_registry
from rabbitstream_amqp import (
    AmqpCodec,
    AmqpDecodeError,
    AMQPMessage,
    Described,
    Header,
    Properties,
    Symbol,
    Timestamp,
    UByte,
    UInt,
    ULong,
    amqp_decoder,
    amqp_decoder_str,
    rabbitstream_message_codecs,
)


def _hex(s: str) -> bytes:
    return bytes.fromhex(s.replace(" ", ""))


# --------------------------------------------------------------------------- golden bytes
def test_golden_body_only() -> None:
    # described(smallulong 0x75, vbin8 "hello")
    assert bytes(AMQPMessage(body=b"hello")) == _hex("00 53 75 a0 05 68656c6c6f")


def test_golden_body_32() -> None:
    body = b"z" * 300
    assert bytes(AMQPMessage(body=body)) == _hex("00 53 75 b0 00 00 01 2c") + body


def test_golden_header() -> None:
    msg = AMQPMessage(header=Header(durable=True, priority=4, ttl=1000), body=b"")
    # list8: size 9, count 3: true, ubyte 4, uint 1000; trailing nulls dropped
    assert bytes(msg) == _hex("00 53 70 c0 09 03 41 50 04 70 00 00 03 e8 00 53 75 a0 00")


def test_golden_properties_and_app_properties() -> None:
    msg = AMQPMessage(
        properties=Properties(message_id="id1", content_type="text/plain"),
        application_properties={"k": 1},
        value="hi",
    )
    assert bytes(msg) == _hex(
        "00 53 73 c0 17 07 a1 03 696431 40 40 40 40 40 a3 0a 746578742f706c61696e"
        "00 53 74 c1 06 02 a1 01 6b 54 01"
        "00 53 77 a1 02 6869"
    )


def test_golden_annotations_and_footer() -> None:
    msg = AMQPMessage(
        delivery_annotations={"x-d": True},
        message_annotations={"x-opt-a": 1, 7: None},
        footer={"x-f": b"\x01"},
        body=b"b",
    )
    assert bytes(msg) == _hex(
        "00 53 71 c1 07 02 a3 03 782d64 41"
        "00 53 72 c1 0f 04 a3 07 782d6f70742d61 54 01 53 07 40"
        "00 53 75 a0 01 62"
        "00 53 78 c1 09 02 a3 03 782d66 a0 01 01"
    )


def test_golden_sequence_sections() -> None:
    msg = AMQPMessage(sequence=[[1, 2], []])
    assert bytes(msg) == _hex("00 53 76 c0 05 02 54 01 54 02 00 53 76 45")


# --------------------------------------------------------------------------- round trips
FULL = AMQPMessage(
    header=Header(durable=False, priority=9, ttl=60000, first_acquirer=True, delivery_count=3),
    delivery_annotations={Symbol("x-opt-d"): "d"},
    message_annotations={Symbol("x-opt-partition-key"): "k", ULong(5): [1, "two", None]},
    properties=Properties(
        message_id=uuid.UUID(int=5),
        user_id=b"guest",
        to="/queues/q",
        subject="subj",
        reply_to="/queues/r",
        correlation_id=ULong(77),
        content_type=Symbol("application/json"),
        content_encoding=Symbol("gzip"),
        absolute_expiry_time=Timestamp(1_700_000_100_000),
        creation_time=Timestamp(1_700_000_000_000),
        group_id="g",
        group_sequence=UInt(4),
        reply_to_group_id="rg",
    ),
    application_properties={"s": "v", "i": -7, "big": 1 << 40, "f": 0.5, "b": True, "n": None, "u": UByte(3)},
    body=b"\x00\x01" * 200,
    footer={Symbol("x-hash"): b"\xff"},
)


def test_full_message_round_trip_str() -> None:
    data = bytes(FULL)
    back = amqp_decoder_str(data)
    assert back == FULL
    assert bytes(back) == data


def test_full_message_bytes_mode() -> None:
    back = amqp_decoder(bytes(FULL))
    assert back.properties is not None
    assert back.properties.to == b"/queues/q"
    assert back.properties.content_type == b"application/json"
    assert back.properties.creation_time == 1_700_000_000_000
    assert back.properties.message_id == uuid.UUID(int=5)
    assert back.application_properties == {
        b"s": b"v",
        b"i": -7,
        b"big": 1 << 40,
        b"f": 0.5,
        b"b": True,
        b"n": None,
        b"u": 3,
    }
    assert back.message_annotations == {b"x-opt-partition-key": b"k", 5: [1, b"two", None]}
    assert back.header == FULL.header
    assert back.body == FULL.body


@pytest.mark.parametrize(
    "msg",
    [
        AMQPMessage(),
        AMQPMessage(body=b""),
        AMQPMessage(value=None, body=b"x"),
        AMQPMessage(value=0),
        AMQPMessage(value=Described(Symbol("x:y"), {"a": [1, 2]})),
        AMQPMessage(value={"nested": {"deep": [[[]]]}}),
        AMQPMessage(sequence=[[1], ["a", b"b"]]),
        AMQPMessage(header=Header(), body=b"x"),
        AMQPMessage(properties=Properties(), body=b"x"),
        AMQPMessage(application_properties={}, body=b"x"),
        AMQPMessage(properties=Properties(message_id=ULong(1), correlation_id=b"c"), body=b"x"),
        AMQPMessage(properties=Properties(group_sequence=UInt(1 << 31)), body=b"x" * 70000),
    ],
)
def test_section_round_trips(msg: AMQPMessage) -> None:
    data = bytes(msg)
    back = amqp_decoder_str(data)
    assert back == msg
    assert bytes(back) == data


def test_sequence_items_that_are_not_lists() -> None:
    # rstream writes each item as one amqp-sequence section, whatever it is; so do we
    msg = AMQPMessage(sequence=[1, "a"])
    assert bytes(msg) == _hex("00 53 76 54 01 00 53 76 a1 01 61")
    assert amqp_decoder_str(bytes(msg)) == msg


def test_several_data_sections() -> None:
    msg = AMQPMessage(body=[b"one", b"two", bytearray(b"three")])
    data = bytes(msg)
    assert data == _hex("00 53 75 a0 03 6f6e65 00 53 75 a0 03 74776f 00 53 75 a0 05 7468726565")
    back = amqp_decoder(data)
    assert back.body == b"three"  # rstream keeps the last one
    assert back.data_sections == [b"one", b"two", b"three"]
    assert bytes(back) == data  # all sections are written back
    assert AMQPMessage(body=b"x").data_sections == [b"x"]
    assert AMQPMessage().data_sections == []


def test_str_body_is_utf8_data() -> None:
    assert bytes(AMQPMessage(body="hé")) == bytes(AMQPMessage(body="hé".encode()))


def test_several_body_kinds_are_all_written() -> None:
    # AMQP wants one kind of body; like rstream, whatever is set is written (data, sequence, value order)
    msg = AMQPMessage(body=b"x", value=1)
    assert bytes(msg) == _hex("00 53 75 a0 01 78 00 53 77 54 01")
    assert amqp_decoder(bytes(msg)) == msg


def test_bad_body_types() -> None:
    with pytest.raises(TypeError):
        bytes(AMQPMessage(body=12))


def test_datetime_in_properties() -> None:
    import datetime as dt

    when = dt.datetime(2024, 5, 1, tzinfo=dt.timezone.utc)
    msg = AMQPMessage(properties=Properties(creation_time=when), body=b"")
    back = amqp_decoder(bytes(msg))
    assert back.properties is not None
    assert back.properties.creation_time == Timestamp.from_datetime(when)


def test_header_and_properties_with_extra_or_missing_fields() -> None:
    # a header list with 6 fields (future extension) and a null properties section
    data = _hex("00 53 70 c0 07 06 41 40 40 40 40 40 00 53 73 40 00 53 75 a0 00")
    back = amqp_decoder(data)
    assert back.header == Header(durable=True)
    assert back.properties == Properties()


def test_sections_in_any_order_and_symbolic_descriptors() -> None:
    # rstream writes delivery annotations last; descriptors may be symbols or ulong64
    data = (
        _hex("00 53 75 a0 01 78")
        + _hex("00 a3 10") + b"amqp:header:list" + _hex("c0 02 01 41")
        + _hex("00 80 00 00 00 00 00 00 00 71 c1 05 02 a3 01 6b 40")
    )  # fmt: skip
    back = amqp_decoder(data)
    assert back.body == b"x"
    assert back.header == Header(durable=True)
    assert back.delivery_annotations == {b"k": None}


# --------------------------------------------------------------------------- rstream API
def test_message_api() -> None:
    msg = AMQPMessage(body=b"abc", publishing_id=42)
    assert msg.publishing_id == 42
    assert AMQPMessage(body=b"abc").publishing_id is None
    assert amqp_decoder(bytes(msg)).publishing_id is None
    assert str(msg) == "b'abc'"
    assert isinstance(msg, tuple)
    assert msg._fields[5] == "body"
    assert msg == AMQPMessage(None, None, None, None, None, b"abc")
    replaced = msg._replace(body=b"z")
    assert isinstance(replaced, AMQPMessage)
    assert replaced.body == b"z"
    assert bytes(replaced) == bytes(AMQPMessage(body=b"z"))
    assert Header._fields == ("durable", "priority", "ttl", "first_acquirer", "delivery_count")
    assert Properties._fields[0] == "message_id"
    assert len(Properties._fields) == 13
    for clone in (copy.copy(msg), pickle.loads(pickle.dumps(msg))):
        assert clone == msg
        assert clone.publishing_id == 42


def test_decoder_accepts_memoryview_and_bytearray() -> None:
    data = bytes(FULL)
    assert amqp_decoder(memoryview(b"..." + data)[3:]) == amqp_decoder(data)
    assert amqp_decoder(bytearray(data)) == amqp_decoder(data)
    body_only = bytes(AMQPMessage(body=b"q" * 1000))
    assert amqp_decoder(memoryview(body_only)).body == b"q" * 1000


def test_decode_error_is_type_error_and_value_error() -> None:
    with pytest.raises(TypeError):
        amqp_decoder(b"hello")
    with pytest.raises(ValueError):
        amqp_decoder(b"hello")
    try:
        from rabbitstream.exceptions import DecodeError  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return
    with pytest.raises(DecodeError):
        amqp_decoder(b"hello")
    assert issubclass(AmqpDecodeError, DecodeError)


# --------------------------------------------------------------------------- the plugin
def test_codec_object() -> None:
    (codec,) = rabbitstream_message_codecs()
    assert isinstance(codec, MessageCodec)
    assert codec.name == "amqp"
    assert isinstance(codec, AmqpCodec)
    assert set(codec.exports) == {"AMQPMessage", "Properties", "Header", "amqp_decoder", "amqp_decoder_str"}
    assert codec.exports["AMQPMessage"] is AMQPMessage
    assert codec.encode(AMQPMessage(body=b"x")) == _hex("00 53 75 a0 01 78")
    assert codec.encode(b"x") == _hex("00 53 75 a0 01 78")
    assert codec.encode(memoryview(b"x")) == _hex("00 53 75 a0 01 78")
    assert codec.encode("hi") == _hex("00 53 77 a1 02 68 69")  # str → amqp-value string
    assert codec.decode(_hex("00 53 75 a0 01 78")).body == b"x"
    assert codec.decode(_hex("00 53 77 a1 02 68 69")).value == b"hi"
    with pytest.raises(TypeError):
        codec.encode(3.5)


def test_codec_encodes_objects_with_bytes() -> None:
    from rstream.amqp import AMQPMessage as TheirMessage

    codec = AmqpCodec()
    assert codec.encode(TheirMessage(body=b"x")) == _hex("00 53 75 a0 01 78")


def test_registry_picks_the_codec_up() -> None:
    codec = build_registry().message_codec("amqp")
    assert codec.name == "amqp"
    assert codec.decode(codec.encode(AMQPMessage(body=b"r"))).body == b"r"
    assert getattr(codec, "exports")["amqp_decoder"] is amqp_decoder  # noqa: B009
