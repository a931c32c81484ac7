"""Property tests: every AMQP value and message re-encodes to the same bytes after a decode."""

from __future__ import annotations

import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rabbitstream_amqp import (
    AMQPMessage,
    Array,
    Byte,
    Char,
    Decimal32,
    Decimal64,
    Decimal128,
    Described,
    Float,
    Header,
    Long,
    Properties,
    Short,
    Symbol,
    Timestamp,
    UByte,
    UInt,
    ULong,
    UShort,
    amqp_decoder,
    amqp_decoder_str,
    decode_value,
    encode_value,
)

I64 = st.integers(-(1 << 63), (1 << 63) - 1)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    I64,
    st.integers(0, 255).map(UByte),
    st.integers(0, 0xFFFF).map(UShort),
    st.integers(0, 0xFFFFFFFF).map(UInt),
    st.integers(0, (1 << 64) - 1).map(ULong),
    st.integers(-128, 127).map(Byte),
    st.integers(-(1 << 15), (1 << 15) - 1).map(Short),
    I64.map(Long),
    I64.map(Timestamp),
    st.floats(allow_nan=False),
    st.floats(allow_nan=False, width=32).map(Float),
    st.binary(min_size=4, max_size=4).map(Decimal32),
    st.binary(min_size=8, max_size=8).map(Decimal64),
    st.binary(min_size=16, max_size=16).map(Decimal128),
    st.characters().map(Char),
    st.uuids(),
    st.binary(max_size=300),
    st.text(max_size=300),
    st.text(max_size=20).map(Symbol),
)
DESCRIPTORS = st.one_of(st.integers(0, (1 << 64) - 1), st.text(max_size=10).map(Symbol))


def _arrays(elements: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(elements, min_size=1, max_size=5).map(Array)


ARRAYS = st.one_of(
    _arrays(st.booleans()),
    _arrays(I64),
    _arrays(st.integers(0, 0xFFFFFFFF).map(UInt)),
    _arrays(st.text(max_size=300)),
    _arrays(st.text(max_size=5).map(Symbol)),
    _arrays(st.binary(max_size=10)),
    _arrays(st.uuids()),
    _arrays(st.floats(allow_nan=False)),
    _arrays(st.lists(I64, max_size=3)),
)
VALUES = st.recursive(
    st.one_of(SCALARS, ARRAYS),
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(SCALARS, children, max_size=5),
        st.builds(Described, DESCRIPTORS, children),
    ),
    max_leaves=30,
)


def _enc(value: Any) -> bytes:
    out = bytearray()
    encode_value(out, value)
    return bytes(out)


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(VALUES)
def test_value_round_trip(value: Any) -> None:
    data = _enc(value)
    back = decode_value(data)
    assert back == value
    assert _enc(back) == data
    assert _enc(decode_value(data, text=False)) is not None


TEXT = st.text(max_size=40)


SEQUENCES = st.lists(st.lists(VALUES, max_size=3), min_size=1, max_size=3)


def _kw(cls: Any, **fields: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.fixed_dictionaries(fields).map(lambda kw: cls(**kw))


PROPS = _kw(
    Properties,
    message_id=st.one_of(st.none(), TEXT, st.integers(0, (1 << 64) - 1).map(ULong), st.uuids(), st.binary()),
    user_id=st.one_of(st.none(), st.binary(max_size=20)),
    to=st.one_of(st.none(), TEXT),
    subject=st.one_of(st.none(), TEXT),
    correlation_id=st.one_of(st.none(), TEXT, st.uuids()),
    content_type=st.one_of(st.none(), st.text(max_size=20).map(Symbol)),
    creation_time=st.one_of(st.none(), I64.map(Timestamp)),
    group_sequence=st.one_of(st.none(), st.integers(0, 0xFFFFFFFF).map(UInt)),
)
HEADERS = _kw(
    Header,
    durable=st.one_of(st.none(), st.booleans()),
    priority=st.one_of(st.none(), st.integers(0, 255).map(UByte)),
    ttl=st.one_of(st.none(), st.integers(0, 0xFFFFFFFF).map(UInt)),
    delivery_count=st.one_of(st.none(), st.integers(0, 0xFFFFFFFF).map(UInt)),
)
ANNOTATIONS = st.one_of(st.none(), st.dictionaries(st.text(max_size=10).map(Symbol), VALUES, max_size=4))
MESSAGES = _kw(
    AMQPMessage,
    header=st.one_of(st.none(), HEADERS),
    delivery_annotations=ANNOTATIONS,
    message_annotations=ANNOTATIONS,
    properties=st.one_of(st.none(), PROPS),
    application_properties=st.one_of(st.none(), st.dictionaries(TEXT, SCALARS, max_size=5)),
    body=st.one_of(st.none(), st.binary(max_size=600)),
    footer=ANNOTATIONS,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    MESSAGES,
    st.one_of(st.none(), VALUES),
    st.one_of(st.none(), st.lists(st.lists(VALUES, max_size=3), min_size=1, max_size=3)),
)
def test_message_round_trip(msg: AMQPMessage, value: Any, sequence: Any) -> None:
    if msg.body is None:
        msg = msg._replace(value=value) if value is not None else msg._replace(sequence=sequence)
    data = bytes(msg)
    back = amqp_decoder_str(data)
    assert back == msg
    assert bytes(back) == data
    compat = amqp_decoder(data)
    assert compat.body == msg.body
    assert compat.header == msg.header


def test_uuid_message_id_stays_uuid() -> None:
    msg = AMQPMessage(properties=Properties(message_id=uuid.UUID(int=9)), body=b"")
    back = amqp_decoder(bytes(msg))
    assert back.properties is not None
    assert back.properties.message_id == uuid.UUID(int=9)
