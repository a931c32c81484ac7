"""Test helpers and the contract-test kit for plugin authors.

Checking a compression plugin takes three lines of pytest::

    import pytest
    from rabbitstream.testing import CompressionCodecContract
    from rabbitstream_brotli import BrotliCodec

    class TestBrotliContract(CompressionCodecContract):
        @pytest.fixture
        def codec(self):
            return BrotliCodec()

or, without pytest, ``check_compression_codec(BrotliCodec())`` raises
:class:`AssertionError` on the first broken rule.  :func:`build_chunk` makes
osiris chunks (what a Deliver frame carries) for consumer tests.

This module imports nothing outside the standard library and rabbitstream
itself; pytest is not needed to import it.
"""

from __future__ import annotations

import hashlib
import random
import struct
import tracemalloc
import zlib
from collections.abc import Callable, Sequence
from typing import Any

from rabbitstream.plugin import CompressionCodec, MessageCodec, Registry

__all__ = [
    "GOLDEN_PAYLOAD_SHA256",
    "GOLDEN_PAYLOAD_SIZE",
    "CompressionCodecContract",
    "build_chunk",
    "build_entries",
    "chunk_of_entries",
    "check_codes_unique",
    "check_compression_codec",
    "check_message_codec",
    "contract_payloads",
    "golden_payload",
    "simple_entry",
    "traced_peak",
]

_CHUNK_HEADER = struct.Struct(">BBHIqQQIIIB3x")
_U32 = struct.Struct(">I")


# --------------------------------------------------------------------------- chunks


def simple_entry(message: bytes) -> bytes:
    """One simple (uncompressed) entry: the record's length, then the record."""
    return _U32.pack(len(message)) + message


def chunk_of_entries(
    entries: Sequence[bytes],
    records: int,
    *,
    num_entries: int | None = None,
    chunk_id: int = 0,
    timestamp: int = 0,
    epoch: int = 1,
    chunk_type: int = 0,
    crc: int | None = None,
) -> bytes:
    """Build a chunk (header + entries) from entries encoded beforehand, e.g. hostile ones.

    :param records: the header's record count (not checked against the entries).
    :param num_entries: the header's entry count; default ``len(entries)``.
    :param crc: force a (wrong) CRC; default: the correct CRC-32.
    """
    data = b"".join(entries)
    header = _CHUNK_HEADER.pack(
        0x50,
        chunk_type,
        len(entries) if num_entries is None else num_entries,
        records,
        timestamp,
        epoch,
        chunk_id,
        zlib.crc32(data) if crc is None else crc,
        len(data),
        0,
        0,
    )
    return header + data


def traced_peak(fn: Callable[[], object]) -> int:
    """Peak bytes :mod:`tracemalloc` sees allocated while ``fn()`` runs (its result included)."""
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        result = fn()
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    del result
    return peak


def build_entries(
    messages: Sequence[bytes],
    *,
    sub_entries: int = 0,
    codec: CompressionCodec | None = None,
) -> tuple[bytes, int]:
    """Encode ``messages`` as the entries of a chunk.

    :param sub_entries: 0 or 1: one simple entry per message; ``N > 1``: batches
        of up to N messages in sub-entries compressed with ``codec``
        (``None`` = code 0, no compression).
    :return: ``(entry bytes, number of entries)``.
    """
    from rabbitstream.protocol._subentry import encode_sub_entry

    parts: list[bytes] = []
    if sub_entries <= 1:
        for message in messages:
            if len(message) > 0x7FFFFFFF:
                raise ValueError("simple entry larger than 2 GiB")
            parts.append(_U32.pack(len(message)))
            parts.append(bytes(message))
        return b"".join(parts), len(messages)
    parts.extend(
        encode_sub_entry(messages[start : start + sub_entries], codec)
        for start in range(0, len(messages), sub_entries)
    )
    return b"".join(parts), len(parts)


def build_chunk(
    messages: Sequence[bytes],
    *,
    chunk_id: int = 0,
    timestamp: int = 0,
    sub_entries: int = 0,
    codec: CompressionCodec | None = None,
    epoch: int = 1,
    chunk_type: int = 0,
    crc: int | None = None,
) -> bytes:
    """Build an osiris chunk as a Deliver frame carries it (header + entries).

    :param messages: the records, in offset order from ``chunk_id``.
    :param sub_entries: see :func:`build_entries`.
    :param codec: compression of the sub-entries.
    :param crc: force a (wrong) CRC; default: the correct CRC-32.
    """
    data, num_entries = build_entries(messages, sub_entries=sub_entries, codec=codec)
    return chunk_of_entries(
        [data],
        len(messages),
        num_entries=num_entries,
        chunk_id=chunk_id,
        timestamp=timestamp,
        epoch=epoch,
        chunk_type=chunk_type,
        crc=crc,
    )


# --------------------------------------------------------------------------- codecs


def contract_payloads(large_size: int = 5 * 1024 * 1024, seed: int = 1) -> dict[str, bytes]:
    """The bodies a compression codec must round-trip, by name.

    ``large`` is half random bytes, half repetitive JSON-like text.
    """
    rng = random.Random(seed)
    half = large_size // 2
    text = b'{"id": %d, "name": "sensor-%d", "value": %d.5, "ok": true}\n'
    lines = b"".join(text % (i, i % 97, i * 7) for i in range(half // 40 + 1))[: large_size - half]
    body = b"".join(_U32.pack(100) + rng.randbytes(100) for _ in range(50))
    return {
        "empty": b"",
        "one byte": b"\x00",
        "records": body,
        "large": rng.randbytes(half) + lines,
    }


#: SHA-256 and size of :func:`golden_payload` (the compression plugins' golden files were made from it).
GOLDEN_PAYLOAD_SHA256 = "1fa2ff50e94a7f283007ba8ef540880463725d3abcf9bcf53e1b6eeaf32b5405"
GOLDEN_PAYLOAD_SIZE = 73658


def golden_payload() -> bytes:
    """The payload every compression plugin's golden files (made with the reference CLIs) hold:
    800 ``[size:uint32, JSON-like message]`` records, 73,658 bytes (more than one 64 KiB block)."""
    rng = random.Random(20240601)
    parts = []
    for i in range(800):
        msg = b'{"id": %d, "sensor": "s-%d", "value": %d, "unit": "C", "pad": "%s"}' % (
            i,
            rng.randrange(50),
            rng.randrange(100000),
            b"x" * rng.randrange(40),
        )
        parts.append(_U32.pack(len(msg)) + msg)
    data = b"".join(parts)
    assert hashlib.sha256(data).hexdigest() == GOLDEN_PAYLOAD_SHA256, "golden payload generator drifted"
    return data


def _raises(fn: Callable[[], object]) -> BaseException | None:
    try:
        fn()
    except Exception as exc:  # the caller checks the type
        return exc
    return None


def _check_code_and_name(codec: CompressionCodec) -> None:
    assert isinstance(codec, CompressionCodec), f"{codec!r} lacks code/name/compress/decompress"
    assert isinstance(codec.code, int) and 1 <= codec.code <= 7, f"code {codec.code!r} is not in 1..7"
    assert isinstance(codec.name, str) and codec.name, "a codec needs a non-empty name"


def _check_round_trip(codec: CompressionCodec, name: str, data: bytes) -> None:
    packed = codec.compress(data)
    assert isinstance(packed, bytes), f"compress() returned {type(packed).__name__}, not bytes"
    for variant in (packed, memoryview(packed), memoryview(b"\x00" + packed + b"\x00")[1:-1]):
        out = codec.decompress(variant, len(data))
        assert isinstance(out, bytes), f"decompress() returned {type(out).__name__}, not bytes"
        assert out == data, f"{codec.name}: round trip of {name!r} ({len(data)} bytes) changed the data"


def _check_wrong_sizes(codec: CompressionCodec, data: bytes) -> None:
    packed = codec.compress(data)
    wrong = {len(data) + 1, len(data) + 1000}
    if data:
        wrong |= {len(data) - 1, 0, len(data) // 2}
    for size in sorted(wrong):
        exc = _raises(lambda size=size: codec.decompress(packed, size))  # type: ignore[misc]
        assert isinstance(exc, ValueError), (
            f"{codec.name}: {len(data)} bytes declared as {size} gave {exc!r}, not a ValueError"
        )


def _check_corrupt(codec: CompressionCodec, data: bytes) -> None:
    packed = codec.compress(data)
    rng = random.Random(7)
    bad = {
        "empty input": b"",
        "truncated": packed[: len(packed) // 2],
        "last byte cut": packed[:-1],
        "garbage": rng.randbytes(max(64, len(packed))),
        "damaged header": bytes([packed[0] ^ 0xFF]) + packed[1:],
    }
    for what, blob in bad.items():
        exc = _raises(lambda blob=blob: codec.decompress(blob, len(data)))  # type: ignore[misc]
        assert isinstance(exc, ValueError), f"{codec.name}: {what} data gave {exc!r}, not a ValueError"


def _check_bounded(codec: CompressionCodec) -> None:
    """A body inflating far past the declared size must fail, not be returned."""
    data = b"\x00" * (4 * 1024 * 1024)
    packed = codec.compress(data)
    exc = _raises(lambda: codec.decompress(packed, 100))
    assert isinstance(exc, ValueError), f"{codec.name}: 4 MiB declared as 100 bytes gave {exc!r}"


def check_compression_codec(codec: CompressionCodec, *, large_size: int = 5 * 1024 * 1024) -> None:
    """Run every contract check on ``codec``; :class:`AssertionError` on the first failure.

    Checks: ``code`` in 1..7 and a ``name``; round trips (empty, 1 byte, a
    record body, ``large_size`` random+compressible bytes) from ``bytes`` and
    ``memoryview`` input; :class:`ValueError` for wrong declared sizes, for
    corrupt / truncated / garbage input, and for a body that inflates past the
    declared size.
    """
    _check_code_and_name(codec)
    payloads = contract_payloads(large_size)
    for name, data in payloads.items():
        _check_round_trip(codec, name, data)
    _check_wrong_sizes(codec, payloads["records"])
    _check_wrong_sizes(codec, payloads["one byte"])
    _check_corrupt(codec, payloads["records"])
    _check_bounded(codec)


def check_message_codec(codec: MessageCodec, messages: Sequence[Any]) -> None:
    """Contract of a message codec: a ``name``; ``decode(encode(m)) == m`` for every message, from
    ``bytes`` and from ``memoryview`` (what a consumer hands to a decoder); ``encode`` gives ``bytes``.

    Message codecs never reach the broker, so a codec that passes works on every broker version.
    """
    assert isinstance(codec.name, str) and codec.name, "a message codec needs a non-empty name"
    assert messages, "give at least one message"
    for message in messages:
        data = codec.encode(message)
        assert type(data) is bytes, f"{codec.name}: encode must return bytes, not {type(data).__name__}"
        for view in (data, memoryview(data)):
            back = codec.decode(view)
            assert back == message, f"{codec.name}: {message!r} came back as {back!r}"


def check_codes_unique(registry: Registry) -> None:
    """Every codec of ``registry`` sits under its own code (1..7) and has a unique name."""
    names: dict[str, int] = {}
    for code, codec in registry.compression.items():
        assert 1 <= code <= 7, f"compression code {code} is not in 1..7"
        assert int(codec.code) == code, f"{codec.name} registered under {code} but says {codec.code}"
        assert codec.name not in names, (
            f"name {codec.name!r} used by codes {names.get(codec.name)} and {code}"
        )
        names[codec.name] = code


class CompressionCodecContract:
    """pytest base class: subclass it as ``Test…`` and provide a ``codec`` fixture.

    Each rule is its own test, so a failure names the broken rule.  Set
    ``large_size`` on the subclass to change the size of the big round trip.
    """

    large_size = 5 * 1024 * 1024

    def test_code_and_name(self, codec: CompressionCodec) -> None:
        _check_code_and_name(codec)

    def test_round_trip_empty(self, codec: CompressionCodec) -> None:
        _check_round_trip(codec, "empty", b"")

    def test_round_trip_one_byte(self, codec: CompressionCodec) -> None:
        _check_round_trip(codec, "one byte", b"\x00")

    def test_round_trip_records(self, codec: CompressionCodec) -> None:
        _check_round_trip(codec, "records", contract_payloads(0)["records"])

    def test_round_trip_large(self, codec: CompressionCodec) -> None:
        _check_round_trip(codec, "large", contract_payloads(self.large_size)["large"])

    def test_wrong_declared_size(self, codec: CompressionCodec) -> None:
        payloads = contract_payloads(0)
        _check_wrong_sizes(codec, payloads["records"])
        _check_wrong_sizes(codec, payloads["one byte"])
        _check_wrong_sizes(codec, payloads["empty"])

    def test_corrupt_input(self, codec: CompressionCodec) -> None:
        _check_corrupt(codec, contract_payloads(0)["records"])

    def test_bounded_output(self, codec: CompressionCodec) -> None:
        _check_bounded(codec)
