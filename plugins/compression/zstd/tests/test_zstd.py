"""zstd plugin: contract, golden frames from the ``zstd`` CLI (with and without content size)."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
import tracemalloc
from pathlib import Path

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st
from rabbitstream.testing import CompressionCodecContract, golden_payload
from rabbitstream_zstd import ZstdCodec, rabbitstream_compression_codecs

DATA = Path(__file__).parent / "data"  # files made from golden_payload() with the reference CLI


class TestZstdContract(CompressionCodecContract):
    @pytest.fixture
    def codec(self) -> ZstdCodec:
        return ZstdCodec()


def test_hook() -> None:
    (codec,) = rabbitstream_compression_codecs()
    assert (codec.code, codec.name) == (4, "zstd")


def test_golden_frames_are_what_they_claim() -> None:
    nosize = zstandard.get_frame_parameters((DATA / "payload.nosize.zst").read_bytes())
    size = zstandard.get_frame_parameters((DATA / "payload.size.zst").read_bytes())
    assert nosize.content_size == zstandard.CONTENTSIZE_UNKNOWN
    assert size.content_size == len(golden_payload())


@pytest.mark.parametrize("name", ["payload.nosize.zst", "payload.size.zst"])
def test_decodes_zstd_cli_frames(name: str) -> None:
    payload = golden_payload()
    assert ZstdCodec().decompress((DATA / name).read_bytes(), len(payload)) == payload


def test_streaming_writer_frame_without_content_size() -> None:
    """What zstd-jni's ZstdOutputStream (the Java client) writes."""
    payload = golden_payload()
    frame = zstandard.ZstdCompressor(write_content_size=False).compress(payload)
    assert zstandard.get_frame_parameters(frame).content_size == zstandard.CONTENTSIZE_UNKNOWN
    assert ZstdCodec().decompress(frame, len(payload)) == payload


def test_concatenated_frames() -> None:
    a, b = b"first" * 100, b"second" * 100
    cctx = zstandard.ZstdCompressor()
    assert ZstdCodec().decompress(cctx.compress(a) + cctx.compress(b), len(a + b)) == a + b


@pytest.mark.skipif(shutil.which("zstd") is None, reason="zstd CLI not installed")
def test_zstd_cli_reads_our_output() -> None:
    payload = golden_payload()
    res = subprocess.run(["zstd", "-d", "-c", "-q"], input=ZstdCodec().compress(payload), capture_output=True)
    assert res.returncode == 0, res.stderr
    assert res.stdout == payload


def rle_bomb(total: int, *, content_size: bool) -> bytes:
    """A zstd frame of ``total`` zero bytes made of 128 KiB RLE blocks (4 bytes each)."""
    block = 128 * 1024
    assert total % block == 0
    # Frame header: descriptor (FCS field 8 bytes or none, not single segment), window 128 KiB.
    header = b"\x28\xb5\x2f\xfd" + (b"\xc0" if content_size else b"\x00") + b"\x38"
    if content_size:
        header += total.to_bytes(8, "little")
    n = total // block
    rle = ((block << 3) | (1 << 1)).to_bytes(3, "little") + b"\x00"
    last = ((block << 3) | (1 << 1) | 1).to_bytes(3, "little") + b"\x00"
    return header + rle * (n - 1) + last


def test_rle_bomb_is_valid_zstd() -> None:
    small = rle_bomb(1 << 20, content_size=True)
    assert zstandard.ZstdDecompressor().decompress(small) == bytes(1 << 20)
    assert ZstdCodec().decompress(rle_bomb(1 << 20, content_size=False), 1 << 20) == bytes(1 << 20)


@pytest.mark.parametrize("content_size", [True, False])
def test_bomb_1gb_declared_100_is_fast_and_small(content_size: bool) -> None:
    bomb = rle_bomb(1 << 30, content_size=content_size)
    assert len(bomb) < 64 * 1024
    tracemalloc.start()
    try:
        start = time.perf_counter()
        with pytest.raises(ValueError, match="more than the declared 100"):
            ZstdCodec().decompress(bomb, 100)
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024 * 1024, peak
    assert elapsed < 1.0  # a real 1 GB inflate would take seconds and allocate 1 GB


def test_threads_use_their_own_contexts() -> None:
    codec = ZstdCodec()
    payload = golden_payload()
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(20):
                assert codec.decompress(codec.compress(payload), len(payload)) == payload
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3000), st.integers(-5, 19))
def test_round_trip(data: bytes, level: int) -> None:
    codec = ZstdCodec(level)
    assert codec.decompress(codec.compress(data), len(data)) == data


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.integers(0, 5000))
def test_random_input_only_value_error(blob: bytes, size: int) -> None:
    try:
        out = ZstdCodec().decompress(b"\x28\xb5\x2f\xfd" + blob, size)
    except ValueError:
        return
    assert len(out) == size
