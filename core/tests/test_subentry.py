"""Sub-entry batches: the §16 vector, round trips, every error path, fuzzing."""

from __future__ import annotations

import random
import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rabbitstream.exceptions import DecodeError
from rabbitstream.plugin import PluginNotFoundError, Registry, build_registry, hookimpl
from rabbitstream.protocol._subentry import (
    MAX_UNCOMPRESSED_SUB_ENTRY,
    encode_sub_entry,
    iter_sub_entry,
)
from rabbitstream.testing import CompressionCodecContract, check_compression_codec


class DeflateCodec:
    """A bounded zlib-based codec under an experimental code, for core tests only."""

    code = 5
    name = "test-deflate"

    def compress(self, data: bytes) -> bytes:
        return zlib.compress(data)

    def decompress(self, data: bytes | memoryview, uncompressed_size: int) -> bytes:
        d = zlib.decompressobj()
        try:
            out = d.decompress(data, uncompressed_size + 1)
        except zlib.error as exc:
            raise ValueError(str(exc)) from None
        if len(out) != uncompressed_size or not d.eof or d.unused_data:
            raise ValueError("size mismatch or truncated")
        return out


class LyingCodec(DeflateCodec):
    """Returns one byte too many: the sub-entry layer must catch it."""

    code = 6
    name = "liar"

    def decompress(self, data: bytes | memoryview, uncompressed_size: int) -> bytes:
        return zlib.decompress(data) + b"!"


class CrashingCodec(DeflateCodec):
    code = 7
    name = "crash"

    def decompress(self, data: bytes | memoryview, uncompressed_size: int) -> bytes:
        raise RuntimeError("boom")


class _Plugin:
    @hookimpl
    def rabbitstream_compression_codecs(self) -> list[object]:
        return [DeflateCodec(), LyingCodec(), CrashingCodec()]


@pytest.fixture(scope="module")
def registry() -> Registry:
    return build_registry(autoload=False, plugins=[_Plugin()])


EMPTY = Registry()


class TestDeflateContract(CompressionCodecContract):
    large_size = 1024 * 1024

    @pytest.fixture
    def codec(self) -> DeflateCodec:
        return DeflateCodec()


# ---------------------------------------------------------------------- encode


def test_protocol_md_vector() -> None:
    expected = bytes.fromhex("80 0002 0000000c 0000000c 00000002 6d31 00000002 6d32")
    assert encode_sub_entry([b"m1", b"m2"], None) == expected


def test_header_of_compressed_entry(registry: Registry) -> None:
    codec = registry.compression_codec(5)
    out = encode_sub_entry([b"a" * 100] * 3, codec)
    flags, count, usize, length = struct.unpack_from(">BHII", out)
    assert (flags, count, usize, length) == (0x80 | 5 << 4, 3, 312, len(out) - 11)


@pytest.mark.parametrize("n", [0, 65536])
def test_encode_count_limits(n: int) -> None:
    with pytest.raises(ValueError, match="1 to 65535"):
        encode_sub_entry([b""] * n, None)


def test_encode_accepts_buffers() -> None:
    out = encode_sub_entry([bytearray(b"m1"), memoryview(b"m2")], None)  # type: ignore[list-item]
    assert out == encode_sub_entry([b"m1", b"m2"], None)


def test_encode_rejects_bad_code() -> None:
    class Bad(DeflateCodec):
        code = 9

    with pytest.raises(ValueError, match="1-7"):
        encode_sub_entry([b"x"], Bad())


# ---------------------------------------------------------------------- decode


def test_round_trip_uncompressed_with_trailing_bytes() -> None:
    entry = encode_sub_entry([b"m1", b"", b"m333"], None)
    records, used = iter_sub_entry(memoryview(entry + b"NEXT ENTRY"), EMPTY)
    assert [bytes(r) for r in records] == [b"m1", b"", b"m333"]
    assert used == len(entry)


def test_round_trip_compressed(registry: Registry) -> None:
    msgs = [bytes([i]) * i for i in range(200)]
    entry = encode_sub_entry(msgs, registry.compression_codec(5))
    records, used = iter_sub_entry(memoryview(entry), registry)
    assert [bytes(r) for r in records] == msgs
    assert used == len(entry)


def test_unknown_code_names_distribution() -> None:
    entry = bytearray(encode_sub_entry([b"x"], None))
    entry[0] = 0x80 | 4 << 4
    with pytest.raises(PluginNotFoundError, match="rabbitstream-zstd"):
        iter_sub_entry(memoryview(bytes(entry)), EMPTY)


def _header(flags: int, count: int, usize: int, length: int) -> bytes:
    return struct.pack(">BHII", flags, count, usize, length)


@pytest.mark.parametrize(
    ("blob", "match"),
    [
        (b"\x80\x00", "truncated sub-entry header"),
        (_header(0x00, 1, 5, 5) + b"\x00\x00\x00\x01x", "not a sub-entry"),
        (_header(0x80, 1, 5, 6) + b"\x00\x00\x00\x01x", "truncated sub-entry"),
        (_header(0x80, 2, 5, 5) + b"\x00\x00\x00\x01x", "2 records in 5 bytes"),
        (_header(0x80, 1, 6, 5) + b"\x00\x00\x00\x01x", "length 5 != uncompressed length 6"),
        (_header(0x80, 1, 5, 5) + b"\x00\x00\x00\x02x", "overrun"),
        (_header(0x80, 1, 6, 6) + b"\x00\x00\x00\x01xy", "1 bytes after"),
        (_header(0x80, 2, 8, 8) + b"\x00\x00\x00\x00\x00\x00\x00\x09", "overrun"),
        (_header(0x80, 2, 8, 8) + b"\x00\x00\x00\x01x\x00\x00\x00", "overrun"),
        (_header(0xD0, 1, 5, 0), "empty compressed"),
    ],
)
def test_decode_errors(registry: Registry, blob: bytes, match: str) -> None:
    with pytest.raises(DecodeError, match=match):
        iter_sub_entry(memoryview(blob), registry)


def test_declared_size_over_limit_is_rejected_before_decompression(registry: Registry) -> None:
    blob = _header(0xD0, 1, MAX_UNCOMPRESSED_SUB_ENTRY + 1, 3) + b"abc"
    with pytest.raises(DecodeError, match="limit"):
        iter_sub_entry(memoryview(blob), registry)
    small = encode_sub_entry([b"x" * 100], None)
    with pytest.raises(DecodeError, match="limit 50"):
        iter_sub_entry(memoryview(small), registry, max_uncompressed=50)


def test_codec_lies_about_size(registry: Registry) -> None:
    entry = encode_sub_entry([b"abc"], registry.compression_codec(6))
    with pytest.raises(DecodeError, match="returned 8 bytes, 7 declared"):
        iter_sub_entry(memoryview(entry), registry)


def test_codec_exception_is_wrapped(registry: Registry) -> None:
    entry = encode_sub_entry([b"abc"], registry.compression_codec(7))
    with pytest.raises(DecodeError, match="boom") as info:
        iter_sub_entry(memoryview(entry), registry)
    assert isinstance(info.value.__cause__, RuntimeError)


def test_wrong_declared_size_is_a_decode_error(registry: Registry) -> None:
    entry = bytearray(encode_sub_entry([b"abc" * 10], registry.compression_codec(5)))
    struct.pack_into(">I", entry, 3, 33)  # real size is 34
    with pytest.raises(DecodeError):
        iter_sub_entry(memoryview(bytes(entry)), registry)


def test_zero_record_batch_is_tolerated() -> None:
    records, used = iter_sub_entry(memoryview(_header(0x80, 0, 0, 0) + b"tail"), EMPTY)
    assert records == [] and used == 11


def test_decode_error_is_value_error() -> None:
    assert issubclass(DecodeError, ValueError)


def test_contract_kit_catches_a_broken_codec() -> None:
    class Sloppy(DeflateCodec):
        def decompress(self, data: bytes | memoryview, uncompressed_size: int) -> bytes:
            return zlib.decompress(data)  # ignores the declared size

    with pytest.raises(AssertionError, match="declared as"):
        check_compression_codec(Sloppy(), large_size=1000)


# ---------------------------------------------------------------------- properties / fuzz


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=300), min_size=1, max_size=80), st.booleans())
def test_round_trip_property(msgs: list[bytes], compressed: bool) -> None:
    registry = build_registry(autoload=False, plugins=[_Plugin()]) if compressed else EMPTY
    entry = encode_sub_entry(msgs, registry.compression_codec(5) if compressed else None)
    records, used = iter_sub_entry(memoryview(entry + b"\xff" * 3), registry)
    assert [bytes(r) for r in records] == msgs
    assert used == len(entry)


FUZZ_REGISTRY = build_registry(autoload=False, plugins=[_Plugin()])


def _only_typed(blob: bytes) -> None:
    try:
        records, used = iter_sub_entry(memoryview(blob), FUZZ_REGISTRY, max_uncompressed=1 << 16)
    except (DecodeError, PluginNotFoundError):
        return
    assert 11 <= used <= len(blob)
    assert sum(len(r) + 4 for r in records) <= 1 << 16


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_random_bytes(blob: bytes) -> None:
    _only_typed(blob)


@settings(max_examples=500, deadline=None)
@given(st.binary(min_size=11, max_size=200), st.integers(0, 7))
def test_fuzz_random_with_subentry_flag(blob: bytes, code: int) -> None:
    _only_typed(bytes([0x80 | code << 4]) + blob[1:])


def test_fuzz_mutations_of_valid_entries() -> None:
    """3,000 single/multi-byte mutations of valid entries (codes 0 and 5)."""
    rng = random.Random(5)
    bases = [
        encode_sub_entry([b"m1", b"m2", b"message three" * 5], None),
        encode_sub_entry([bytes(rng.randbytes(30)) for _ in range(20)], FUZZ_REGISTRY.compression_codec(5)),
    ]
    for i in range(3000):
        blob = bytearray(bases[i % 2])
        for _ in range(rng.randint(1, 4)):
            blob[rng.randrange(len(blob))] = rng.randrange(256)
        if rng.random() < 0.2:
            del blob[rng.randrange(len(blob)) :]
        _only_typed(bytes(blob))
