"""``rabbitstream.compression`` (rstream names) over the real plugins, and rstream interop.

Also the whole stack (chunk → sub-entry → plugin) against decompression bombs.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterator

import pytest
from rabbitstream.compression import (
    CompressionHelper,
    CompressionType,
    ICompressionCodec,
    NoneCompressionCodec,
    PluginCompressionCodec,
    StreamCompressionCodecs,
    effective_registry,
)
from rabbitstream.exceptions import DecodeError
from rabbitstream.plugin import PluginNotFoundError, Registry, reset_registry
from rabbitstream.protocol._chunk import parse_chunk
from rabbitstream.protocol._subentry import encode_sub_entry, iter_sub_entry
from rabbitstream.testing import build_chunk, check_codes_unique

from support.compression import COMPRESSION_PLUGINS, compression_registry, needs_all_compression

ALL = compression_registry()
needs_all = needs_all_compression(ALL)


@pytest.fixture
def process_registry() -> Iterator[Registry]:
    reset_registry(ALL)
    saved = dict(StreamCompressionCodecs.available_compress_codecs)
    try:
        yield ALL
    finally:
        StreamCompressionCodecs.available_compress_codecs.clear()
        StreamCompressionCodecs.available_compress_codecs.update(saved)
        reset_registry(None)


def test_enum_values() -> None:
    assert [(t.name, t.value) for t in CompressionType] == [
        ("No", 0),
        ("Gzip", 1),
        ("Snappy", 2),
        ("Lz4", 3),
        ("Zstd", 4),
    ]


@needs_all
def test_registry_codes_unique() -> None:
    check_codes_unique(ALL)
    assert {c.name for c in ALL.compression.values()} == set(COMPRESSION_PLUGINS)


@needs_all
@pytest.mark.parametrize("ctype", list(CompressionType))
def test_helper_round_trip(process_registry: Registry, ctype: CompressionType) -> None:
    msgs = [b"m1", b"message two", b""]
    codec = CompressionHelper.compress(msgs, ctype)
    assert codec.compression_type() == ctype.value
    assert codec.messages_count() == 3
    assert codec.uncompressed_size() == 4 * 3 + 13
    assert codec.compressed_size() == len(codec.data())
    body = CompressionHelper.uncompress(codec.data(), ctype, codec.uncompressed_size())
    assert body == b"\x00\x00\x00\x02m1\x00\x00\x00\x0bmessage two\x00\x00\x00\x00"


def test_messages_with_bytes_method(process_registry: Registry) -> None:
    class Msg:
        def __bytes__(self) -> bytes:
            return b"amqp"

    codec = CompressionHelper.compress([Msg(), bytearray(b"x")], CompressionType.No)
    assert isinstance(codec, NoneCompressionCodec)
    assert codec.data() == b"\x00\x00\x00\x04amqp\x00\x00\x00\x01x"


def test_get_codec_returns_fresh_objects(process_registry: Registry) -> None:
    a = StreamCompressionCodecs.get_compression_codec(CompressionType.Gzip)
    b = StreamCompressionCodecs.get_compression_codec(CompressionType.Gzip)
    assert a is not b and isinstance(a, PluginCompressionCodec)


def test_missing_plugin_names_distribution() -> None:
    reset_registry(Registry())
    try:
        with pytest.raises(PluginNotFoundError, match="rabbitstream-zstd"):
            StreamCompressionCodecs.get_compression_codec(CompressionType.Zstd)
    finally:
        reset_registry(None)


class ReversingCodec(ICompressionCodec):
    """A user codec (rstream style) under code 4, overriding the zstd plugin."""

    def __init__(self) -> None:
        self._data, self._size, self._count = b"", 0, 0

    def compress(self, messages: object) -> None:
        msgs = list(messages)  # type: ignore[call-overload]
        body = b"".join(len(m).to_bytes(4, "big") + m for m in msgs)
        self._data, self._size, self._count = body[::-1], len(body), len(msgs)

    def uncompress(self, compressed_data: bytes, uncompressed_data_size: int) -> bytes:
        return compressed_data[::-1]

    def compressed_size(self) -> int:
        return len(self._data)

    def uncompressed_size(self) -> int:
        return self._size

    def messages_count(self) -> int:
        return self._count

    def compression_type(self) -> int:
        return 4

    def data(self) -> bytes:
        return self._data


def test_user_codec_overrides_plugin_for_encode_and_decode(process_registry: Registry) -> None:
    assert effective_registry() is ALL  # nothing registered yet
    StreamCompressionCodecs.register_codec(CompressionType.Zstd, ReversingCodec())
    codec = CompressionHelper.compress([b"abc"], CompressionType.Zstd)
    assert codec.data() == b"cba\x03\x00\x00\x00"
    reg = effective_registry()
    assert reg.providers[("compression", 4)] == "StreamCompressionCodecs.register_codec"
    entry = encode_sub_entry([b"abc", b"de"], reg.compression_codec(4))
    records, _ = iter_sub_entry(memoryview(entry), reg)
    assert [bytes(r) for r in records] == [b"abc", b"de"]
    # a chunk written with it decodes through the effective registry
    raw = build_chunk([b"x", b"y", b"z"], sub_entries=3, codec=reg.compression_codec(4))
    assert [bytes(m) for m in parse_chunk(raw, registry=reg).messages()] == [b"x", b"y", b"z"]


# ---------------------------------------------------------------------- rstream interop


@needs_all
def test_rstream_gzip_batches_decode_with_our_plugin() -> None:
    rstream_compression = pytest.importorskip("rstream.compression")
    theirs = rstream_compression.GzipCompressionCodec()
    theirs.compress([b"hello", b"world!"])
    ours = ALL.compression_codec(1)
    body = ours.decompress(theirs.data(), theirs.uncompressed_size())
    assert body == b"\x00\x00\x00\x05hello\x00\x00\x00\x06world!"
    # and the other way round
    assert theirs.uncompress(ours.compress(body), len(body)) == body


# ---------------------------------------------------------------------- bombs through the stack


def _gzip_bomb() -> bytes:
    comp = zlib.compressobj(6, zlib.DEFLATED, 31)
    return (comp.compress(bytes(64 << 20)) + comp.flush()) * 16  # 1 GiB in ~1 MB


def _zstd_rle_bomb() -> bytes:
    block = 128 * 1024
    rle = ((block << 3) | 2).to_bytes(3, "little") + b"\x00"
    last = ((block << 3) | 3).to_bytes(3, "little") + b"\x00"
    return b"\x28\xb5\x2f\xfd\x00\x38" + rle * 8191 + last  # 1 GiB in 32 KB


@needs_all
@pytest.mark.parametrize(("code", "make"), [(1, _gzip_bomb), (4, _zstd_rle_bomb)])
def test_bomb_declared_as_100_bytes_in_a_chunk(code: int, make: object) -> None:
    import struct

    bomb = make()  # type: ignore[operator]
    entry = struct.pack(">BHII", 0x80 | code << 4, 1, 100, len(bomb)) + bomb
    data = entry
    header = struct.pack(">BBHIqQQIIIB3x", 0x50, 0, 1, 1, 0, 0, 0, zlib.crc32(data), len(data), 0, 0)
    chunk = parse_chunk(header + data, registry=ALL)
    start = time.perf_counter()
    with pytest.raises(DecodeError, match="more than the declared 100"):
        chunk.messages()
    assert time.perf_counter() - start < 1.0


@needs_all
@pytest.mark.parametrize("code", [1, 2, 3, 4])
def test_every_plugin_through_chunk_parser(code: int) -> None:
    msgs = [b"%05d:" % i + b"payload " * (i % 13) for i in range(500)]
    raw = build_chunk(msgs, chunk_id=77, sub_entries=64, codec=ALL.compression_codec(code))
    c = parse_chunk(raw, registry=ALL)
    assert [(o, bytes(m)) for o, m in c.records()] == list(enumerate(msgs, 77))
    assert [o for o, _ in parse_chunk(raw, registry=ALL).records_from(400)] == list(range(400, 577))
