"""Wire primitives: encodings, null values, bounds checks."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rabbitstream.exceptions import DecodeError, LocalProtocolError
from rabbitstream.protocol import _wire as W


def mv(b: bytes) -> memoryview:
    return memoryview(b)


def test_string() -> None:
    assert W.encode_string("ab") == b"\x00\x02ab"
    assert W.encode_string(None) == b"\xff\xff"
    assert W.encode_string("é") == b"\x00\x02\xc3\xa9"
    assert W.decode_string(mv(b"\x00\x02abX"), 0) == ("ab", 4)
    assert W.decode_string(mv(b"\xff\xff"), 0) == (None, 2)


def test_string_too_long_to_encode() -> None:
    with pytest.raises(LocalProtocolError):
        W.encode_string("x" * 40000)


def test_bytes() -> None:
    assert W.encode_bytes(b"ab") == b"\x00\x00\x00\x02ab"
    assert W.encode_bytes(None) == b"\xff\xff\xff\xff"
    assert W.decode_bytes(mv(b"\xff\xff\xff\xff"), 0) == (None, 4)
    assert W.decode_bytes(mv(b"\x00\x00\x00\x01z"), 0) == (b"z", 5)


def test_arrays_and_maps() -> None:
    assert W.encode_string_array(["a", "b"]) == b"\x00\x00\x00\x02\x00\x01a\x00\x01b"
    assert W.decode_string_array(mv(W.encode_string_array(["a", "b"])), 0) == (["a", "b"], 10)
    enc = W.encode_map({"k": "v"})
    assert enc == b"\x00\x00\x00\x01\x00\x01k\x00\x01v"
    assert W.decode_map(mv(enc), 0) == ({"k": "v"}, len(enc))
    enc64 = W.encode_int64_map({"a": -1})
    assert W.decode_int64_map(mv(enc64), 0) == ({"a": -1}, len(enc64))


@pytest.mark.parametrize(
    ("fn", "data"),
    [
        (W.decode_string, b"\x00\x05ab"),
        (W.decode_string, b"\x00"),
        (W.decode_string, b"\xff\xfe"),  # -2
        (W.decode_string, b"\x00\x01\xff"),  # invalid UTF-8
        (W.decode_bytes, b"\x00\x00\x00\x09abc"),
        (W.decode_bytes, b"\xff\xff\xff\xf0"),
        (W.decode_string_array, b"\x7f\xff\xff\xff"),  # huge count, no allocation
        (W.decode_string_array, b"\xff\xff\xff\xff"),
        (W.decode_string_array, b"\x00\x00\x00\x01\xff\xff"),  # null element
        (W.decode_map, b"\x00\x10\x00\x00"),
        (W.decode_int64_map, b"\x00\x00\x00\x01\x00\x01a\x00"),
        (W.decode_u8, b""),
        (W.decode_u16, b"\x00"),
        (W.decode_u32, b"\x00"),
        (W.decode_u64, b"\x00" * 7),
        (W.decode_i64, b"\x00" * 7),
    ],
)
def test_truncated_or_invalid(fn: object, data: bytes) -> None:
    with pytest.raises(DecodeError):
        fn(mv(data), 0)  # type: ignore[operator]


@given(st.one_of(st.none(), st.text(max_size=50)), st.binary(max_size=5))
def test_string_roundtrip_with_offset(value: str | None, prefix: bytes) -> None:
    data = prefix + W.encode_string(value)
    assert W.decode_string(mv(data), len(prefix)) == (value, len(data))


@given(st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=6))
def test_map_roundtrip(value: dict[str, str]) -> None:
    data = W.encode_map(value)
    assert W.decode_map(mv(data), 0) == (value, len(data))
