"""Every AMQP 1.0 type: golden encodings (AMQP 1.0 spec, part 1 §1.6) and round trips."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from rabbitstream_amqp import (
    AmqpDecodeError,
    Array,
    Byte,
    Char,
    Decimal32,
    Decimal64,
    Decimal128,
    Described,
    Float,
    Long,
    Short,
    Symbol,
    Timestamp,
    UByte,
    UInt,
    ULong,
    UShort,
    decode_value,
    encode_value,
)

U = uuid.UUID("12345678-1234-5678-1234-567812345678")

GOLDEN: list[tuple[Any, str]] = [
    (None, "40"),
    (True, "41"),
    (False, "42"),
    (UByte(7), "50 07"),
    (UShort(0x102), "60 01 02"),
    (UInt(0), "43"),
    (UInt(7), "52 07"),
    (UInt(300), "70 00 00 01 2c"),
    (ULong(0), "44"),
    (ULong(7), "53 07"),
    (ULong(1 << 40), "80 00 00 01 00 00 00 00 00"),
    (ULong((1 << 64) - 1), "80 ff ff ff ff ff ff ff ff"),
    (Byte(-1), "51 ff"),
    (Short(-2), "61 ff fe"),
    (5, "54 05"),
    (-128, "54 80"),
    (-129, "71 ff ff ff 7f"),
    (1 << 31, "81 00 00 00 00 80 00 00 00"),
    (Long(5), "55 05"),
    (Long(1 << 40), "81 00 00 01 00 00 00 00 00"),
    (Float(1.5), "72 3f c0 00 00"),
    (1.5, "82 3f f8 00 00 00 00 00 00"),
    (Decimal32(b"\x01\x02\x03\x04"), "74 01 02 03 04"),
    (Decimal64(bytes(range(8))), "84 00 01 02 03 04 05 06 07"),
    (Decimal128(bytes(range(16))), "94" + bytes(range(16)).hex()),
    (Char("a"), "73 00 00 00 61"),
    (Char("\U0001f600"), "73 00 01 f6 00"),
    (Timestamp(1), "83 00 00 00 00 00 00 00 01"),
    (Timestamp(-1), "83 ff ff ff ff ff ff ff ff"),
    (U, "98 12345678123456781234567812345678"),
    (b"ab", "a0 02 61 62"),
    (b"", "a0 00"),
    (b"x" * 256, "b0 00 00 01 00" + "78" * 256),
    ("ab", "a1 02 61 62"),
    ("é", "a1 02 c3 a9"),
    ("y" * 300, "b1 00 00 01 2c" + "79" * 300),
    (Symbol("ab"), "a3 02 61 62"),
    (Symbol("s" * 256), "b3 00 00 01 00" + "73" * 256),
    ([], "45"),
    ([1], "c0 03 01 54 01"),
    ([None, True], "c0 03 02 40 41"),
    ({"a": 1}, "c1 06 02 a1 01 61 54 01"),
    ({}, "c1 01 00"),
    (Described(0x10, "x"), "00 53 10 a1 01 78"),
    (Described(Symbol("com.x:t"), None), "00 a3 07 636f6d2e783a74 40"),
    (Array([1, 2]), "e0 0a 02 71 00 00 00 01 00 00 00 02"),
    (Array([Symbol("a"), Symbol("bc")]), "e0 07 02 a3 01 61 02 62 63"),
    (Array([], code=0x40), "e0 02 00 40"),
]


def _hex(s: str) -> bytes:
    return bytes.fromhex(s.replace(" ", ""))


@pytest.mark.parametrize(("value", "golden"), GOLDEN, ids=[repr(v)[:30] for v, _ in GOLDEN])
def test_golden_encoding(value: Any, golden: str) -> None:
    out = bytearray()
    encode_value(out, value)
    assert out.hex() == _hex(golden).hex()


@pytest.mark.parametrize(("value", "golden"), GOLDEN, ids=[repr(v)[:30] for v, _ in GOLDEN])
def test_golden_decoding_keeps_the_type(value: Any, golden: str) -> None:
    decoded = decode_value(_hex(golden))
    assert decoded == value
    expected_type: type = type(value)
    if expected_type is int and not -(1 << 31) <= value < (1 << 31):
        expected_type = Long  # a plain int too big for AMQP int is a long
    assert type(decoded) is expected_type
    again = bytearray()
    encode_value(again, decoded)
    assert bytes(again) == _hex(golden)


def test_bytes_mode_decodes_text_to_bytes() -> None:
    assert decode_value(_hex("a1 02 61 62"), text=False) == b"ab"
    assert decode_value(_hex("a3 02 61 62"), text=False) == b"ab"
    assert decode_value(_hex("c1 06 02 a1 01 61 54 01"), text=False) == {b"a": 1}


@pytest.mark.parametrize(
    ("encoded", "expected"),
    [
        ("56 01", True),
        ("56 00", False),
        ("c0 01 00", []),
        ("d0 00 00 00 04 00 00 00 00", []),
        ("d0 00 00 00 06 00 00 00 01 54 07", [7]),
        ("d1 00 00 00 0d 00 00 00 02 a3 01 6b b1 00 00 00 01 76", {"k": "v"}),
        ("f0 00 00 00 07 00 00 00 02 50 01 02", [1, 2]),
        ("e0 05 02 00 53 09 40", [Described(9, None), Described(9, None)]),
        ("e0 05 03 52 01 02 03", [1, 2, 3]),
        ("e0 01 00", []),
        ("00 00 53 01 53 02 54 05", Described(Described(1, 2), 5)),
        ("55 ff", -1),
        ("54 ff", -1),
    ],
)
def test_other_encodings_decode(encoded: str, expected: Any) -> None:
    assert decode_value(_hex(encoded)) == expected


def test_array_round_trips() -> None:
    for arr in (
        Array([True, False]),
        Array([UByte(1), UByte(2)]),
        Array([1 << 40, 1]),
        Array(["a" * 300, "b"]),
        Array([b"x", b"y"]),
        Array([[1, 2], [3]]),
        Array([{"a": 1}, {}]),
        Array([Array([1]), Array([2, 3])]),
        Array([Described(Symbol("d"), 1), Described(Symbol("d"), 2)]),
        Array([Timestamp(5), Timestamp(6)]),
        Array([U, U]),
        Array([Char("x")]),
        Array([Float(0.5)]),
        Array([0.25]),
        Array([None, None]),
        Array([Decimal32(b"abcd")]),
    ):
        out = bytearray()
        encode_value(out, arr)
        back = decode_value(out)
        assert isinstance(back, Array)
        assert back == arr, (arr, back)


def test_wrappers_validate_ranges() -> None:
    for cls, bad in ((UByte, 256), (UShort, -1), (UInt, 1 << 32), (ULong, -1), (Byte, 128), (Short, 1 << 15)):
        with pytest.raises(ValueError):
            cls(bad)
    with pytest.raises(ValueError):
        Char("ab")
    with pytest.raises(ValueError):
        Decimal32(b"abc")


def test_unencodable_values() -> None:
    with pytest.raises(TypeError):
        encode_value(bytearray(), object())
    with pytest.raises(ValueError):
        encode_value(bytearray(), 1 << 64)
    with pytest.raises(ValueError):
        encode_value(bytearray(), Array([Described(1, 1), Described(2, 2)]))


def test_subclasses_are_encoded_as_their_base() -> None:
    import enum

    class Color(enum.IntEnum):
        RED = 3

    class Name(str):
        pass

    out = bytearray()
    encode_value(out, [Color.RED, Name("n"), (1, 2)])
    assert decode_value(out) == [3, "n", [1, 2]]


def test_timestamp_datetime() -> None:
    when = dt.datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=dt.timezone.utc)
    ts = Timestamp.from_datetime(when)
    assert ts.to_datetime() == when
    out = bytearray()
    encode_value(out, when)
    assert decode_value(out) == ts
    assert Timestamp.from_datetime(when.replace(tzinfo=None)) == ts


def test_value_must_fill_the_data() -> None:
    with pytest.raises(AmqpDecodeError):
        decode_value(b"\x40\x40")
    with pytest.raises(AmqpDecodeError):
        decode_value(b"")


def test_described_equality_and_hash() -> None:
    assert Described(1, [1]) == Described(1, [1])
    assert Described(1, 2) != Described(1, 3)
    assert Described(1, 2) != (1, 2)
    assert hash(Described(1, "a")) == hash(Described(1, "a"))
