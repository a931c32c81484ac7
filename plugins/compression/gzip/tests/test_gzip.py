"""gzip plugin: contract, golden data from the ``gzip`` CLI, output readable by ``gzip -d``."""

from __future__ import annotations

import shutil
import subprocess
import time
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rabbitstream.plugin import build_registry
from rabbitstream.testing import CompressionCodecContract, check_codes_unique, golden_payload
from rabbitstream_gzip import GzipCodec, rabbitstream_compression_codecs

DATA = Path(__file__).parent / "data"  # files made from golden_payload() with the reference CLI


class TestGzipContract(CompressionCodecContract):
    @pytest.fixture
    def codec(self) -> GzipCodec:
        return GzipCodec()


def test_hook_and_registry() -> None:
    (codec,) = rabbitstream_compression_codecs()
    assert (codec.code, codec.name) == (1, "gzip")
    import rabbitstream_gzip

    registry = build_registry(autoload=False, plugins=[rabbitstream_gzip])
    assert registry.compression_codec(1).name == "gzip"
    check_codes_unique(registry)


@pytest.mark.parametrize("name", ["payload.gz", "payload.multimember.gz"])
def test_decodes_gzip_cli_output(name: str) -> None:
    payload = golden_payload()
    assert GzipCodec().decompress((DATA / name).read_bytes(), len(payload)) == payload


def test_output_is_rfc1952() -> None:
    out = GzipCodec().compress(b"hello")
    assert out[:3] == b"\x1f\x8b\x08"  # gzip magic + deflate
    assert zlib.decompress(out, 31) == b"hello"


@pytest.mark.skipif(shutil.which("gzip") is None, reason="gzip CLI not installed")
def test_gzip_cli_reads_our_output() -> None:
    payload = golden_payload()
    res = subprocess.run(["gzip", "-d", "-c"], input=GzipCodec().compress(payload), capture_output=True)
    assert res.returncode == 0, res.stderr
    assert res.stdout == payload


def test_trailing_garbage_rejected() -> None:
    packed = GzipCodec().compress(b"abc")
    with pytest.raises(ValueError):
        GzipCodec().decompress(packed + b"junk", 3)


def test_bomb_1gb_declared_100_is_fast() -> None:
    """16 gzip members of 64 MiB of zeros (1 GiB, ~1 MB: deflate tops out near 1000:1)."""
    comp = zlib.compressobj(6, zlib.DEFLATED, 31)
    member = comp.compress(bytes(64 << 20)) + comp.flush()
    bomb = member * 16
    assert len(bomb) < 2 * 1024 * 1024
    start = time.perf_counter()
    with pytest.raises(ValueError, match="more than the declared 100"):
        GzipCodec().decompress(bomb, 100)
    assert time.perf_counter() - start < 1.0


def test_bad_level() -> None:
    with pytest.raises(ValueError):
        GzipCodec(level=10)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000), st.integers(0, 9))
def test_round_trip_any_level(data: bytes, level: int) -> None:
    codec = GzipCodec(level)
    assert codec.decompress(codec.compress(data), len(data)) == data


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.integers(0, 5000))
def test_random_input_only_value_error(blob: bytes, size: int) -> None:
    try:
        out = GzipCodec().decompress(blob, size)
    except ValueError:
        return
    assert len(out) == size
