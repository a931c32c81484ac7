"""Deliver chunk parser: header validation, CRC, entries, sub-entries, offsets, fuzzing."""

from __future__ import annotations

import random
import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rabbitstream.exceptions import DecodeError
from rabbitstream.plugin import PluginNotFoundError, Registry, build_registry, hookimpl
from rabbitstream.protocol._chunk import CHUNK_HEADER, CHUNK_HEADER_SIZE, Chunk, parse_chunk
from rabbitstream.protocol._subentry import encode_sub_entry
from rabbitstream.testing import build_chunk


class DeflateCodec:
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


class _Plugin:
    @hookimpl
    def rabbitstream_compression_codecs(self) -> list[object]:
        return [DeflateCodec()]


REG = build_registry(autoload=False, plugins=[_Plugin()])
CODEC = REG.compression_codec(5)
EMPTY = Registry()


def msgs_of(n: int, size: int = 100) -> list[bytes]:
    return [(b"%08d" % i).ljust(size, b"x") for i in range(n)]


def chunk_from_entries(entries: list[bytes], n_records: int, *, chunk_id: int = 0, **hdr: int) -> bytes:
    data = b"".join(entries)
    fields = {"num_entries": len(entries), "crc": zlib.crc32(data), "data_length": len(data)} | hdr
    header = CHUNK_HEADER.pack(
        hdr.get("magic", 0x50),
        hdr.get("chunk_type", 0),
        fields["num_entries"],
        n_records,
        1_700_000_000_000,
        3,
        chunk_id,
        fields["crc"],
        fields["data_length"],
        0,
        0,
    )
    return header + data


def simple(m: bytes) -> bytes:
    return struct.pack(">I", len(m)) + m


# ---------------------------------------------------------------------- header


def test_header_fields() -> None:
    raw = build_chunk(msgs_of(3), chunk_id=42, timestamp=1234, epoch=7)
    c = parse_chunk(raw, committed_chunk_id=40)
    assert isinstance(c, Chunk)
    assert (c.chunk_id, c.timestamp, c.epoch, c.num_entries, c.num_records) == (42, 1234, 7, 3, 3)
    assert c.committed_chunk_id == 40
    assert c.next_offset == 45 and len(c) == 3
    assert c.crc == zlib.crc32(raw[CHUNK_HEADER_SIZE:])
    assert "id=42" in repr(c)


def test_accepts_bytes_bytearray_and_memoryview() -> None:
    raw = build_chunk([b"a", b"bc"])
    for buf in (raw, bytearray(raw), memoryview(raw), memoryview(b"xx" + raw)[2:]):
        assert [bytes(m) for m in parse_chunk(buf).messages()] == [b"a", b"bc"]


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda b: b[:47], "truncated chunk header"),
        (lambda b: b"\x51" + b[1:], "magic"),
        (lambda b: b[:1] + b"\x03" + b[2:], "unknown chunk type"),
        (lambda b: b[:-1], "truncated chunk"),
        (lambda b: b + b"\x00", "unexpected bytes"),
    ],
)
def test_header_errors(mutate: object, match: str) -> None:
    raw = build_chunk(msgs_of(2))
    with pytest.raises(DecodeError, match=match):
        parse_chunk(mutate(raw))  # type: ignore[operator]


def test_crc_checked_by_default_and_skippable() -> None:
    raw = build_chunk([b"hello"], crc=0x3610A686 ^ 1)
    with pytest.raises(DecodeError, match="CRC"):
        parse_chunk(raw)
    assert [bytes(m) for m in parse_chunk(raw, check_crc=False).messages()] == [b"hello"]


def test_crc_is_zlib_crc32_over_entries() -> None:
    raw = build_chunk([b"hello"])
    (crc,) = struct.unpack_from(">I", raw, 32)
    assert crc == zlib.crc32(simple(b"hello"))


def test_too_many_entries_for_data() -> None:
    raw = chunk_from_entries([simple(b"")], 2, num_entries=2)
    with pytest.raises(DecodeError, match="2 entries in 4 bytes"):
        parse_chunk(raw)


def test_records_without_entries() -> None:
    raw = chunk_from_entries([], 3)
    with pytest.raises(DecodeError, match="no entry"):
        parse_chunk(raw)


def test_trailer_bytes_tolerated_when_declared() -> None:
    raw = bytearray(build_chunk([b"a"]))
    struct.pack_into(">I", raw, 40, 8)  # TrailerLength
    c = parse_chunk(bytes(raw) + b"T" * 8)
    assert [bytes(m) for m in c.messages()] == [b"a"]


# ---------------------------------------------------------------------- entries


@pytest.mark.parametrize("n", [0, 1, 7, 8, 1000])
def test_simple_entries_uniform(n: int) -> None:
    msgs = msgs_of(n)
    c = parse_chunk(build_chunk(msgs, chunk_id=100))
    assert [(o, bytes(m)) for o, m in c.records()] == list(enumerate(msgs, 100))
    assert all(isinstance(m, memoryview) for m in c.messages())


def test_uniform_fast_path_falls_back_on_any_size_byte() -> None:
    for j in range(4):
        msgs = msgs_of(20)
        big = b"y" * (100 + (1 << (8 * (3 - j))) if j else 100)
        if j == 0:
            continue  # a top-byte difference would make a sub-entry flag / huge entry
        msgs[11] = big
        c = parse_chunk(build_chunk(msgs))
        assert [bytes(m) for m in c.messages()] == msgs


def test_uniform_looking_but_inconsistent_is_rejected() -> None:
    msgs = msgs_of(10)
    raw = bytearray(build_chunk(msgs))
    # entry 3 claims 99 bytes and entry 4's size field absorbs the slack: lengths still add up
    struct.pack_into(">I", raw, CHUNK_HEADER_SIZE + 3 * 104, 99)
    with pytest.raises(DecodeError):
        parse_chunk(bytes(raw), check_crc=False).messages()


def test_variable_sizes_and_empty_messages() -> None:
    msgs = [b"", b"a", b"x" * 1000, b"", b"bc"] * 5
    assert [bytes(m) for m in parse_chunk(build_chunk(msgs)).messages()] == msgs


@pytest.mark.parametrize("codec", [None, CODEC])
def test_sub_entries(codec: DeflateCodec | None) -> None:
    msgs = msgs_of(250, 50)
    c = parse_chunk(build_chunk(msgs, chunk_id=1000, sub_entries=100, codec=codec), registry=REG)
    assert c.num_entries == 3 and c.num_records == 250
    assert [(o, bytes(m)) for o, m in c.records()] == list(enumerate(msgs, 1000))


def test_mixed_simple_and_sub_entries() -> None:
    entries = [
        simple(b"s0"),
        encode_sub_entry([b"b1", b"b2", b"b3"], CODEC),
        simple(b"s4"),
        encode_sub_entry([b"n5", b"n6"], None),
        simple(b"s7"),
    ]
    c = parse_chunk(chunk_from_entries(entries, 8, chunk_id=10), registry=REG)
    expect = [b"s0", b"b1", b"b2", b"b3", b"s4", b"n5", b"n6", b"s7"]
    assert [(o, bytes(m)) for o, m in c.records()] == list(enumerate(expect, 10))
    for start in range(5, 22):
        got = [
            (o, bytes(m))
            for o, m in parse_chunk(chunk_from_entries(entries, 8, chunk_id=10), registry=REG).records_from(
                start
            )
        ]
        assert got == [(o, m) for o, m in enumerate(expect, 10) if o >= start], start
    # and from the cache
    assert [o for o, _ in c.records_from(14)] == [14, 15, 16, 17]


def test_records_from_skips_sub_entries_without_decompressing() -> None:
    class Exploding(DeflateCodec):
        code = 6

        def decompress(self, data: bytes | memoryview, uncompressed_size: int) -> bytes:
            raise AssertionError("must not be decompressed")

    entries = [encode_sub_entry([b"a", b"b"], Exploding()), simple(b"c"), simple(b"d")]
    reg = Registry(compression={6: Exploding()})
    c = parse_chunk(chunk_from_entries(entries, 4, chunk_id=0), registry=reg)
    assert [(o, bytes(m)) for o, m in c.records_from(2)] == [(2, b"c"), (3, b"d")]
    assert list(c.records_from(4)) == []
    with pytest.raises(DecodeError, match="must not be decompressed"):
        c.messages()


def test_counts_are_checked() -> None:
    with pytest.raises(DecodeError, match="declares 3 records"):
        parse_chunk(chunk_from_entries([simple(b"a"), simple(b"b")], 3)).messages()
    with pytest.raises(DecodeError, match="declares 1 entries"):
        parse_chunk(chunk_from_entries([simple(b"a"), simple(b"b")], 2, num_entries=1)).messages()
    sub = encode_sub_entry([b"a", b"b"], None)
    with pytest.raises(DecodeError, match="declares 3 records"):
        parse_chunk(chunk_from_entries([sub], 3)).messages()


def test_last_entry_overrun() -> None:
    data = simple(b"abc")[:-1]
    raw = chunk_from_entries([data], 1)
    with pytest.raises(DecodeError, match="overruns"):
        parse_chunk(raw).messages()


def test_truncated_entry_header() -> None:
    raw = chunk_from_entries([simple(b"ab"), b"\x00\x00"], 2, num_entries=1)
    with pytest.raises(DecodeError, match="truncated entry header"):
        parse_chunk(raw).messages()


def test_tracking_chunk_has_no_messages() -> None:
    c = parse_chunk(build_chunk([b"tracking"], chunk_type=1))
    assert c.messages() == [] and list(c.records()) == [] and list(c.records_from(1)) == []


def test_unknown_compression_code() -> None:
    entry = bytearray(encode_sub_entry([b"x"], CODEC))
    entry[0] = 0xB0  # lz4, not in the registry
    with pytest.raises(PluginNotFoundError, match="rabbitstream-lz4"):
        parse_chunk(chunk_from_entries([bytes(entry)], 1), registry=EMPTY).messages()


def test_chunk_decompression_budget() -> None:
    msgs = msgs_of(100, 100)
    raw = build_chunk(msgs, sub_entries=10, codec=CODEC)
    c = parse_chunk(raw, registry=REG, max_uncompressed_chunk=5000)
    with pytest.raises(DecodeError, match="inflate to more than 5000"):
        c.messages()
    c = parse_chunk(raw, registry=REG, max_uncompressed=500)
    with pytest.raises(DecodeError, match="limit 500"):
        c.messages()


# ---------------------------------------------------------------------- properties / fuzz


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.binary(max_size=200), max_size=60),
    st.sampled_from([0, 2, 7]),
    st.booleans(),
    st.integers(0, 2**40),
    st.integers(0, 70),
)
def test_round_trip_property(msgs: list[bytes], batch: int, compress: bool, first: int, skip: int) -> None:
    raw = build_chunk(msgs, chunk_id=first, sub_entries=batch, codec=CODEC if compress else None)
    c = parse_chunk(raw, registry=REG)
    assert [(o, bytes(m)) for o, m in c.records()] == list(enumerate(msgs, first))
    fresh = parse_chunk(raw, registry=REG)
    assert [(o, bytes(m)) for o, m in fresh.records_from(first + skip)] == list(enumerate(msgs, first))[skip:]


def _only_typed(blob: bytes, *, crc: bool = False) -> None:
    try:
        c = parse_chunk(
            blob, check_crc=crc, registry=REG, max_uncompressed=1 << 16, max_uncompressed_chunk=1 << 18
        )
        msgs = c.messages()
        rest = list(parse_chunk(blob, check_crc=crc, registry=REG).records_from(c.chunk_id + 3))
    except (DecodeError, PluginNotFoundError):
        return
    assert len(msgs) == c.num_records
    assert len(rest) == max(0, c.num_records - 3)


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_random_body_after_valid_header(body: bytes) -> None:
    header = bytearray(build_chunk([])[:CHUNK_HEADER_SIZE])
    struct.pack_into(">HI", header, 2, 5, 9)
    struct.pack_into(">I", header, 36, len(body))
    _only_typed(bytes(header) + body)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=400))
def test_fuzz_random_bytes(blob: bytes) -> None:
    _only_typed(b"\x50" + blob)


def test_fuzz_mutations_of_valid_chunks() -> None:
    """4,000 mutations (byte flips, truncations) of valid chunks of every shape."""
    rng = random.Random(11)
    msgs = [rng.randbytes(rng.randrange(0, 60)) for _ in range(30)]
    bases = [
        build_chunk(msgs),
        build_chunk(msgs_of(20, 20)),
        build_chunk(msgs, sub_entries=4),
        build_chunk(msgs, sub_entries=7, codec=CODEC),
    ]
    for i in range(4000):
        blob = bytearray(bases[i % 4])
        for _ in range(rng.randint(1, 3)):
            blob[rng.randrange(len(blob))] = rng.randrange(256)
        if rng.random() < 0.1:
            del blob[rng.randrange(len(blob)) :]
        _only_typed(bytes(blob), crc=rng.random() < 0.2)


@pytest.mark.parametrize("start", [0, 1, 9, 19, 20, 25])
def test_records_from_uniform_fast_path(start: int) -> None:
    msgs = msgs_of(20)
    c = parse_chunk(build_chunk(msgs, chunk_id=0))
    assert [(o, bytes(m)) for o, m in c.records_from(start)] == list(enumerate(msgs))[start:]
