"""Issue #14 item 2 and the list8/map8 bounds: decoded output linear in the input.

Every AMQP value but a zero-width array element costs at least one input byte; the
elements of an array of nulls (or true, 0, empty lists...) cost none, so each array is
bounded by its own encoded size and a whole message stays linear in its size.
"""

from __future__ import annotations

import struct
import tracemalloc
from collections.abc import Callable

import pytest
from rabbitstream_amqp import AmqpDecodeError, AMQPMessage, amqp_decoder, amqp_decoder_str, decode_value
from rabbitstream_amqp._decode import ZERO_WIDTH_NEW_PER_BYTE, ZERO_WIDTH_PER_BYTE
from rabbitstream_amqp._encode import encode_value

DECODERS: list[Callable[[bytes], object]] = [amqp_decoder, amqp_decoder_str]


def _enc(v: object) -> bytes:
    out = bytearray()
    encode_value(out, v)
    return bytes(out)


def _list32(items: list[bytes]) -> bytes:
    body = b"".join(items)
    return struct.pack(">BII", 0xD0, len(body) + 4, len(items)) + body


def _array32_zero_width(code: int, count: int) -> bytes:
    return struct.pack(">BII", 0xF0, 5, count) + bytes([code])


def _message(value: bytes) -> bytes:
    return b"\x00\x53\x77" + value  # amqp-value section


# --------------------------------------------------------------------------- the inputs


@pytest.mark.parametrize("decoder", DECODERS)
def test_list_of_100_null_arrays_is_refused(decoder: Callable[[bytes], object]) -> None:
    """1,012 bytes declared 6.5 million elements (50 MiB) before the fix."""
    data = _message(_list32([_array32_zero_width(0x40, 65536)] * 100))
    assert len(data) < 1100
    with pytest.raises(AmqpDecodeError, match="zero-width"):
        decoder(data)


@pytest.mark.parametrize("decoder", DECODERS)
def test_arrays_of_empty_lists_are_refused(decoder: Callable[[bytes], object]) -> None:
    data = _message(_list32([_array32_zero_width(0x45, 65536)] * 20))  # ~212 bytes, 80 MiB before
    with pytest.raises(AmqpDecodeError, match="zero-width"):
        decoder(data)


def test_zero_width_bound_is_per_encoded_byte() -> None:
    # array8 of 255 nulls: 4 bytes (e0 size count 40) -> 255 <= 64 * 4
    assert decode_value(bytes([0xE0, 2, 255, 0x40])) == [None] * 255
    # array32: 10 bytes -> 640 nulls at most, 80 empty lists
    assert len(decode_value(_array32_zero_width(0x40, 10 * ZERO_WIDTH_PER_BYTE))) == 640
    with pytest.raises(AmqpDecodeError):
        decode_value(_array32_zero_width(0x40, 10 * ZERO_WIDTH_PER_BYTE + 1))
    assert decode_value(_array32_zero_width(0x45, 10 * ZERO_WIDTH_NEW_PER_BYTE)) == [[]] * 80
    with pytest.raises(AmqpDecodeError):
        decode_value(_array32_zero_width(0x45, 10 * ZERO_WIDTH_NEW_PER_BYTE + 1))
    # described zero-width elements are new objects too
    described = struct.pack(">BII", 0xF0, 7, 81) + bytes([0x00, 0x53, 0x01, 0x40])
    with pytest.raises(AmqpDecodeError):
        decode_value(described)


def test_encoded_arrays_still_round_trip() -> None:
    from rabbitstream_amqp import Array

    for value in (Array([None] * 200), Array([True] * 1000), Array([0] * 1000), Array([[]] * 300)):
        assert list(decode_value(_enc(value))) == list(value)


# --------------------------------------------------------------------------- resource budget

#: Peak traced memory of one decode <= OUTPUT_PER_BYTE x input + ALLOWANCE.
OUTPUT_PER_BYTE = 1024
ALLOWANCE = 64 * 1024


def _hostile() -> list[bytes]:
    nulls8 = bytes([0xE0, 2, 255, 0x40])
    lists8 = bytes([0xE0, 2, 32, 0x45])
    big = [
        _list32([_array32_zero_width(0x40, 640)] * 100),
        _list32([_array32_zero_width(0x45, 80)] * 100),
        _list32([nulls8] * 250),
        _list32([lists8] * 250),
        _list32([b"\x45"] * 4000),  # empty lists: 1 byte each
        _list32([b"\xa3\x00"] * 2000),  # empty symbols
        _list32([b"\x00\x40\x40"] * 1000),  # described nulls
        _list32([bytes([0xC1, 1, 0])] * 1000),  # empty maps
        _list32([b"\x98" + bytes(16)] * 200),  # uuids
        _list32([b"\x83" + bytes(8)] * 500),  # timestamps
        _enc({f"k{i}": [None, True, []] for i in range(300)}),
    ]
    return [_message(v) for v in big] + big


@pytest.mark.parametrize("index", range(22))
def test_decoded_output_is_linear_in_the_input(index: int) -> None:
    data = _hostile()[index]
    decoders: list[Callable[[bytes], object]] = (
        DECODERS if data[:2] == b"\x00\x53" else [decode_value, lambda b: decode_value(b, text=False)]
    )
    for decode in decoders:
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            value = decode(data)
            peak = tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()
        assert value is not None
        assert peak <= OUTPUT_PER_BYTE * len(data) + ALLOWANCE, (index, peak, len(data))


# --------------------------------------------------------------------------- list8 / map8 bounds


def _binary_of(n: int) -> bytes:
    return bytes(range(256))[:n]


@pytest.mark.parametrize(
    ("body", "prefix"),
    [
        (254, bytes([0xC0, 255, 1])),  # list8: size byte = body + count byte = 255
        (255, bytes([0xD0]) + struct.pack(">II", 255 + 4, 1)),
        (256, bytes([0xD0]) + struct.pack(">II", 256 + 4, 1)),
    ],
)
def test_list8_list32_boundary_golden(body: int, prefix: bytes) -> None:
    item = _binary_of(body - 2)  # vbin8: a0 <len> <data>
    expected = prefix + bytes([0xA0, body - 2]) + item
    assert _enc([item]) == expected
    assert decode_value(expected, text=False) == [item]


@pytest.mark.parametrize(
    ("body", "prefix"),
    [
        (254, bytes([0xC1, 255, 2])),
        (255, bytes([0xD1]) + struct.pack(">II", 255 + 4, 2)),
        (256, bytes([0xD1]) + struct.pack(">II", 256 + 4, 2)),
    ],
)
def test_map8_map32_boundary_golden(body: int, prefix: bytes) -> None:
    value = _binary_of(body - 5)  # key a1 01 6b (3 bytes) + vbin8 a0 <len> <data>
    expected = prefix + bytes([0xA1, 1, 0x6B, 0xA0, body - 5]) + value
    assert _enc({"k": value}) == expected
    assert decode_value(expected, text=False) == {b"k": value}


def test_list8_count_bound_golden() -> None:
    # 255 nulls: body 255 bytes -> list32; 254 nulls: list8 with count 254
    assert _enc([None] * 254)[:3] == bytes([0xC0, 255, 254])
    assert _enc([None] * 255)[:9] == bytes([0xD0]) + struct.pack(">II", 259, 255)


def test_message_with_boundary_application_properties_round_trips() -> None:
    for n in (247, 248, 249, 250):
        props = {"k": "v" * n}
        msg = AMQPMessage(body=b"b", application_properties=props)
        assert amqp_decoder_str(bytes(msg)).application_properties == props
