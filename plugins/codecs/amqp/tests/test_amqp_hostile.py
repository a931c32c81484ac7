"""Hostile input: always a typed AmqpDecodeError, bounded work and memory."""

from __future__ import annotations

import struct
import time
import tracemalloc
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rabbitstream_amqp import (
    MAX_DEPTH,
    AmqpDecodeError,
    AMQPMessage,
    Header,
    Properties,
    amqp_decoder,
    amqp_decoder_str,
    decode_value,
)

DECODERS: list[Callable[[bytes], object]] = [amqp_decoder, amqp_decoder_str]
VALID = [
    bytes(AMQPMessage(body=b"hello")),
    bytes(AMQPMessage(body=b"y" * 300)),
    bytes(
        AMQPMessage(
            header=Header(durable=True, priority=3),
            message_annotations={"x-opt-k": [1, {"a": b"b"}]},
            properties=Properties(message_id="id", content_type="text/plain", creation_time=123),
            application_properties={"s": "v", "n": 1 << 40, "f": 2.5},
            body=b"payload",
            footer={"x-f": None},
        )
    ),
    bytes(AMQPMessage(value={"list": [1, 2, [3, {"k": "v"}]], "s": "é"})),
    bytes(AMQPMessage(sequence=[[1, "a"], [b"b"]])),
]


def _hex(s: str) -> bytes:
    return bytes.fromhex(s.replace(" ", ""))


def _decodes_or_typed_error(data: bytes) -> None:
    for decode in DECODERS:
        try:
            msg = decode(data)
        except AmqpDecodeError:
            continue
        assert isinstance(msg, AMQPMessage)


@pytest.mark.parametrize("data", VALID)
def test_every_truncation(data: bytes) -> None:
    for cut in range(len(data)):
        _decodes_or_typed_error(data[:cut])


@pytest.mark.parametrize(
    "data",
    [
        b"hello",
        b"\x00",
        b"\x00\x53",
        b"\x00\x53\x75",
        b"\x00\x53\x75\xa0",
        b"\x00\x53\x75\xa0\x05ab",  # vbin8 longer than the data
        _hex("00 53 75 b0 ff ff ff ff 61"),  # vbin32 longer than the data
        _hex("00 53 75 a1 01 61"),  # data section holding a string
        _hex("00 53 75 51 01"),  # data section holding a byte
        _hex("00 53 10 a0 00"),  # unknown section descriptor
        _hex("00 a3 03 61 62 63 a0 00"),  # unknown symbolic descriptor
        _hex("01 53 75 a0 00"),  # not a described section
        _hex("00 53 77 01"),  # invalid constructor
        _hex("00 53 77 ff"),
        _hex("00 53 77 56 02"),  # invalid boolean
        _hex("00 53 77 73 00 11 00 00"),  # char beyond U+10FFFF
        _hex("00 53 77 c0 05 01 40"),  # list size beyond the data
        _hex("00 53 77 c0 02 01 40 40"),  # list size smaller than the content
        _hex("00 53 77 c0 01 05"),  # count larger than the bytes
        _hex("00 53 77 d0 00 00 00 08 ff ff ff ff 40 40 40 40"),  # list32 huge count
        _hex("00 53 77 d1 00 00 00 08 ff ff ff fe 40 40 40 40"),  # map32 huge count
        _hex("00 53 77 f0 00 00 00 05 ff ff ff ff 54"),  # array32 huge count
        _hex("00 53 77 f0 00 00 00 05 ff ff ff ff 40"),  # zero-width array, huge count
        _hex("00 53 77 e0 02 03 71"),  # array count beyond its data
        _hex("00 53 77 c1 03 03 40 40"),  # odd map count
        _hex("00 53 77 c1 04 02 45 40"),  # unhashable key (a list)
        _hex("00 53 77 d0 ff ff ff ff 00 00 00 00"),  # list32 size beyond the data
        _hex("00 53 77 00"),  # described without descriptor
        _hex("00 53 77 00 53 01"),  # described without value
        _hex("00 53 73 a1 01 61"),  # properties that are not a list
        _hex("00 53 74 c0 01 00"),  # application properties that are not a map
        _hex("00 53 75 a0 00 00"),  # trailing garbage
    ],
)
def test_malformed(data: bytes) -> None:
    for decode in DECODERS:
        with pytest.raises(AmqpDecodeError):
            decode(data)


def test_invalid_utf8() -> None:
    data = _hex("00 53 77 a1 02 ff fe")
    with pytest.raises(AmqpDecodeError):
        amqp_decoder_str(data)
    assert amqp_decoder(data).value == b"\xff\xfe"  # bytes mode does not decode text


def test_depth_limit() -> None:
    def nest(depth: int) -> bytes:
        inner = b"\x45"
        for _ in range(depth):
            inner = struct.pack(">BII", 0xD0, len(inner) + 4, 1) + inner
        return inner

    assert decode_value(nest(MAX_DEPTH - 1)) is not None
    for depth in (MAX_DEPTH + 1, 10_000):
        with pytest.raises(AmqpDecodeError, match="nested"):
            decode_value(nest(depth))
        with pytest.raises(AmqpDecodeError):
            amqp_decoder(b"\x00\x53\x77" + nest(depth))
    described = b"\x00\x53\x01" * 10_000 + b"\x40"
    with pytest.raises(AmqpDecodeError):
        decode_value(described)


def test_hostile_counts_cost_little() -> None:
    cases = [
        _hex("00 53 77 d0 00 10 00 00 ff ff ff ff") + b"\x40" * 100,
        _hex("00 53 77 f0 00 10 00 00 ff ff ff ff 40") + bytes(100),
        _hex("00 53 77 f0 00 00 00 05 00 ff ff ff 41"),
        _hex("00 53 75 b0 7f ff ff ff") + bytes(10),
    ]
    tracemalloc.start()
    try:
        start = time.perf_counter()
        for data in cases:
            with pytest.raises(AmqpDecodeError):
                amqp_decoder(data)
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20
    assert elapsed < 1.0


def test_zero_width_array_within_limit() -> None:
    data = _hex("e0 02 05 40")  # five nulls take no bytes
    assert decode_value(data) == [None] * 5


# --------------------------------------------------------------------------- fuzzing
@settings(max_examples=2000, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_random_bytes(data: bytes) -> None:
    _decodes_or_typed_error(data)
    _decodes_or_typed_error(b"\x00\x53\x77" + data)


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.integers(0, 3))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == 0 and data:
            data[pos] = draw(st.integers(0, 255))
        elif kind == 1:
            data.insert(pos, draw(st.integers(0, 255)))
        elif kind == 2 and data:
            del data[pos]
        else:
            data[pos:pos] = draw(
                st.sampled_from([b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\xd0", b"\xf0"])
            )
    return bytes(data)


@settings(max_examples=3000, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(_mutated())
def test_fuzz_mutations(data: bytes) -> None:
    _decodes_or_typed_error(data)


@pytest.mark.parametrize(
    "b64",
    [  # inputs atheris found: valid AMQP that once failed to re-encode
        "AFN1oAVoZWxsbwBTd8EjBKEEbGlzdMATA1QBVALADAJUA8EHAqEBa6EBdqEBc6ECw6k=",
        "AFN2wQYCVAGhAWEAU3bABAGgAWI=",
        "AFNwQABTdsAGAlQBoQFjAFNwQABTdgAAAABhn2FhYWFhYWFhKAbABgGjA3gtZg==",
        "AFNwwAQCQVBiAFNzwCEKoQJpZEBAQEJAowp0ZXh0L3BsYWluQUOCAAAAAAAAAHsAU3TBHwahAXOhAXahAW6BAAABAAAAAPqhAWaC"
        "QAQAAAAAAAAAU3WgB3BheWxvYWQAU3jBBwKjA3gtZkA=",
        "AFN3AIFTAAAAAAAAAAAAcgBhAAAAcf/3AGFhYWFhgHc=",
    ],
)
def test_foreign_data_re_encodes(b64: str) -> None:
    import base64

    data = base64.b64decode(b64)
    for decode in DECODERS:
        again = bytes(decode(data))  # type: ignore[call-overload]
        assert bytes(amqp_decoder(again)) == again or decode is amqp_decoder_str
