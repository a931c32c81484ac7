"""snappy plugin: framing format checked against an independent decoder/encoder written here.

The reference implementation of the framing format in this file (CRC-32C, chunk
types 0x00/0x01/0xfe/0x80-0xfd/0xff) only uses cramjam's *raw* snappy block
functions, so it checks the framing independently of the codec under test.
"""

from __future__ import annotations

import struct
from pathlib import Path

import cramjam
import pytest
import snappy
from hypothesis import given, settings
from hypothesis import strategies as st
from rabbitstream.testing import CompressionCodecContract, golden_payload
from rabbitstream_snappy import STREAM_IDENTIFIER, SnappyCodec, rabbitstream_compression_codecs

DATA = Path(__file__).parent / "data"  # files made from golden_payload() with the reference CLI

# ------------------------------------------------------------------ reference framing


def _crc32c_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc = _TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def ref_decode(framed: bytes) -> bytes:
    assert framed[:10] == STREAM_IDENTIFIER
    pos, out = 10, []
    while pos < len(framed):
        kind = framed[pos]
        length = int.from_bytes(framed[pos + 1 : pos + 4], "little")
        body = framed[pos + 4 : pos + 4 + length]
        pos += 4 + length
        if kind in (0x00, 0x01):
            (crc,) = struct.unpack("<I", body[:4])
            raw = bytes(cramjam.snappy.decompress_raw(body[4:])) if kind == 0 else body[4:]
            assert len(raw) <= 65536
            assert masked_crc(raw) == crc
            out.append(raw)
        else:
            assert kind >= 0x80, f"unskippable chunk 0x{kind:02x}"
    return b"".join(out)


def ref_chunk(kind: int, raw: bytes) -> bytes:
    payload = struct.pack("<I", masked_crc(raw)) + (
        bytes(cramjam.snappy.compress_raw(raw)) if kind == 0 else raw
    )
    return bytes([kind]) + len(payload).to_bytes(3, "little") + payload


# ------------------------------------------------------------------ tests


class TestSnappyContract(CompressionCodecContract):
    @pytest.fixture
    def codec(self) -> SnappyCodec:
        return SnappyCodec()


def test_crc32c_check_value() -> None:
    assert crc32c(b"123456789") == 0xE3069283


def test_hook() -> None:
    (codec,) = rabbitstream_compression_codecs()
    assert (codec.code, codec.name) == (2, "snappy")


def test_output_is_framed_and_verifies_independently() -> None:
    payload = golden_payload()
    out = SnappyCodec().compress(payload)
    assert out.startswith(STREAM_IDENTIFIER)
    assert ref_decode(out) == payload


def test_decodes_cramjam_golden_file() -> None:
    payload = golden_payload()
    assert SnappyCodec().decompress((DATA / "payload.cramjam.sz").read_bytes(), len(payload)) == payload


def test_python_snappy_reads_our_output_and_we_read_its() -> None:
    payload = golden_payload()
    assert snappy.StreamDecompressor().decompress(SnappyCodec().compress(payload)) == payload
    theirs = snappy.StreamCompressor().add_chunk(payload)
    assert SnappyCodec().decompress(theirs, len(payload)) == payload


def test_hand_built_stream_with_every_chunk_type() -> None:
    a, b, c = b"alpha " * 100, b"\x00\x01\x02" * 50, b"gamma" * 3000
    framed = (
        STREAM_IDENTIFIER
        + ref_chunk(0x00, a)
        + b"\xfe\x03\x00\x00pad"  # padding
        + ref_chunk(0x01, b)  # uncompressed chunk, as Go writes for incompressible data
        + b"\x80\x02\x00\x00zz"  # reserved skippable
        + STREAM_IDENTIFIER  # may repeat (concatenated streams)
        + ref_chunk(0x00, c)
    )
    assert SnappyCodec().decompress(framed, len(a + b + c)) == a + b + c


def test_bad_crc_rejected() -> None:
    framed = bytearray(STREAM_IDENTIFIER + ref_chunk(0x00, b"hello world" * 10))
    framed[14] ^= 0x01  # CRC field of the first data chunk
    with pytest.raises(ValueError):
        SnappyCodec().decompress(bytes(framed), 110)


def test_unskippable_reserved_chunk_rejected() -> None:
    framed = STREAM_IDENTIFIER + b"\x02\x01\x00\x00x" + ref_chunk(0x00, b"abc")
    with pytest.raises(ValueError):
        SnappyCodec().decompress(framed, 3)


def test_raw_snappy_is_not_accepted() -> None:
    with pytest.raises(ValueError, match="stream identifier"):
        SnappyCodec().decompress(bytes(cramjam.snappy.compress_raw(b"hello")), 5)


def test_empty_stream_forms() -> None:
    assert SnappyCodec().compress(b"") == STREAM_IDENTIFIER
    assert SnappyCodec().decompress(STREAM_IDENTIFIER, 0) == b""
    assert SnappyCodec().decompress(b"", 0) == b""


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3000))
def test_round_trip_and_reference(data: bytes) -> None:
    out = SnappyCodec().compress(data)
    assert ref_decode(out) == data
    assert SnappyCodec().decompress(out, len(data)) == data


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.integers(0, 5000))
def test_random_input_only_value_error(blob: bytes, size: int) -> None:
    try:
        out = SnappyCodec().decompress(STREAM_IDENTIFIER + blob, size)
    except ValueError:
        return
    assert len(out) == size
