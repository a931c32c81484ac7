from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rabbitstream.plugin import MessageCodec, build_registry
from rabbitstream_binary import BinaryCodec, rabbitstream_message_codecs


class _Raw:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def __bytes__(self) -> bytes:
        return self.data


def test_hook_returns_codec() -> None:
    (codec,) = rabbitstream_message_codecs()
    assert isinstance(codec, MessageCodec)
    assert codec.name == "binary"


def test_registry_picks_it_up() -> None:
    codec = build_registry().message_codec("binary")
    assert codec.encode(b"x") == b"x"
    assert type(codec).__name__ == "BinaryCodec"


@pytest.mark.parametrize("message", [b"abc", bytearray(b"abc"), memoryview(b"xabcx")[1:4], _Raw(b"abc")])
def test_encode_bytes_like(message: object) -> None:
    out = BinaryCodec().encode(message)
    assert out == b"abc"
    assert type(out) is bytes


def test_encode_rejects_str_and_others() -> None:
    with pytest.raises(TypeError):
        BinaryCodec().encode("text")
    with pytest.raises(TypeError):
        BinaryCodec().encode(123)


def test_decode_returns_bytes() -> None:
    codec = BinaryCodec()
    assert codec.decode(b"") == b""
    out = codec.decode(memoryview(b"..hello..")[2:7])
    assert out == b"hello"
    assert type(out) is bytes


@given(st.binary())
def test_round_trip(data: bytes) -> None:
    codec = BinaryCodec()
    assert codec.decode(codec.encode(data)) == data
