"""lz4 plugin: contract, golden frames from the ``lz4`` CLI, output readable by ``lz4 -d``."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import lz4.frame
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rabbitstream.testing import CompressionCodecContract, golden_payload
from rabbitstream_lz4 import Lz4Codec, rabbitstream_compression_codecs

DATA = Path(__file__).parent / "data"  # files made from golden_payload() with the reference CLI

LZ4_CLI = shutil.which("lz4")


class TestLz4Contract(CompressionCodecContract):
    @pytest.fixture
    def codec(self) -> Lz4Codec:
        return Lz4Codec()


def test_hook() -> None:
    (codec,) = rabbitstream_compression_codecs()
    assert (codec.code, codec.name) == (3, "lz4")


@pytest.mark.parametrize(
    "name",
    [
        "payload.checksum.lz4",  # content checksum (commons-compress / Go style), from a pipe
        "payload.nochecksum.lz4",  # Java LZ4FrameOutputStream style
        "payload.linked-blockcrc-size.lz4",  # linked blocks, block checksums, content size
    ],
)
def test_decodes_lz4_cli_frames(name: str) -> None:
    payload = golden_payload()
    assert Lz4Codec().decompress((DATA / name).read_bytes(), len(payload)) == payload


def test_frame_header_matches_java() -> None:
    out = Lz4Codec().compress(golden_payload())
    assert out[:4] == b"\x04\x22\x4d\x18"  # LZ4 frame magic
    flg, bd = out[4], out[5]
    assert flg == 0x60  # version 01, independent blocks, no block/content checksum, no content size
    assert bd == 0x40  # 64 KiB max block size


def test_corrupt_content_checksum_detected() -> None:
    frame = bytearray((DATA / "payload.checksum.lz4").read_bytes())
    frame[-1] ^= 0xFF
    with pytest.raises(ValueError):
        Lz4Codec().decompress(bytes(frame), len(golden_payload()))


def test_concatenated_frames() -> None:
    a, b = b"first" * 100, b"second" * 100
    assert Lz4Codec().decompress(lz4.frame.compress(a) + lz4.frame.compress(b), len(a + b)) == a + b


@pytest.mark.skipif(LZ4_CLI is None, reason="lz4 CLI not installed")
def test_lz4_cli_reads_our_output() -> None:
    payload = golden_payload()
    res = subprocess.run(["lz4", "-d", "-c"], input=Lz4Codec().compress(payload), capture_output=True)
    assert res.returncode == 0, res.stderr
    assert res.stdout == payload


def test_bomb_declared_100() -> None:
    bomb = lz4.frame.compress(b"\x00" * (64 << 20), store_size=True)
    with pytest.raises(ValueError, match="more than the declared 100"):
        Lz4Codec().decompress(bomb, 100)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3000))
def test_round_trip(data: bytes) -> None:
    assert Lz4Codec().decompress(Lz4Codec().compress(data), len(data)) == data


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.integers(0, 5000))
def test_random_input_only_value_error(blob: bytes, size: int) -> None:
    try:
        out = Lz4Codec().decompress(b"\x04\x22\x4d\x18" + blob, size)
    except ValueError:
        return
    assert len(out) == size
