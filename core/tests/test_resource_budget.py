"""Resource budget of every decoder the network feeds (issue #14): frames and chunks.

Each case is a *dense* input: as many small items as the format allows per byte, the
worst case for Python objects per input byte.  The peak traced memory of decoding it
(``tracemalloc``, the input itself excluded) must stay within ``K * len(input) + A``:

- frames (``ProtocolConnection.receive_data``, fed in 64 KiB pieces): :data:`FRAME_K`, :data:`FRAME_A`;
- chunks consumed run by run (``parse_chunk`` + ``Chunk.payload_runs``, each run dropped
  before the next, as the consumer does): :data:`CHUNK_K`, plus :data:`CHUNK_A` for the one
  sub-entry being delivered (65,535 records at most; its body is bounded by the limits).

Sub-entries of the compression plugins are covered in ``tests/test_compression_budget.py``,
AMQP messages in ``plugins/codecs/amqp/tests/test_amqp_budget.py``.
"""

from __future__ import annotations

import zlib

import pytest
from rabbitstream.plugin import build_registry, hookimpl
from rabbitstream.protocol import _frames as F
from rabbitstream.protocol._chunk import parse_chunk
from rabbitstream.protocol._connection import ProtocolConnection
from rabbitstream.protocol._subentry import encode_sub_entry
from rabbitstream.testing import chunk_of_entries, simple_entry, traced_peak
from test_connection import ServerPeer, run_handshake

FRAME_K = 32  # measured at most 22.3 (MetadataResponse replica references > 256)
FRAME_A = 256 * 1024
CHUNK_K = 4  # measured at most 3.3 (simple empty entries)
CHUNK_A = 4 * 1024 * 1024  # measured 1.4 MiB for 65,535 one-byte records


# --------------------------------------------------------------------------- frames

N = 10_000


def _dense_frames() -> dict[str, bytes]:
    keys = [f"{i:x}" for i in range(N)]
    return {
        "PublishConfirm": F.PublishConfirm(publisher_id=1, publishing_ids=tuple(range(N))).encode(),
        "PublishError": F.PublishError(publisher_id=1, errors=tuple((i, 2) for i in range(N))).encode(),
        "Publish": F.Publish(publisher_id=1, messages=tuple((i, b"") for i in range(N))).encode(),
        "PublishV2": F.PublishV2(publisher_id=1, messages=tuple((i, None, b"") for i in range(N))).encode(),
        "PeerPropertiesResponse": F.PeerPropertiesResponse(
            correlation_id=1, code=1, properties=dict.fromkeys(keys, "")
        ).encode(),
        "StreamStatsResponse": F.StreamStatsResponse(
            correlation_id=1, code=1, stats=dict.fromkeys(keys, 0)
        ).encode(),
        "RouteResponse": F.RouteResponse(correlation_id=1, code=1, streams=tuple(keys)).encode(),
        "PartitionsResponse": F.PartitionsResponse(correlation_id=1, code=1, streams=tuple(keys)).encode(),
        "ExchangeCommandVersionsResponse": F.ExchangeCommandVersionsResponse(
            correlation_id=1, code=1, commands=tuple((i, 1, 2) for i in range(N))
        ).encode(),
        "MetadataResponse": F.MetadataResponse(
            correlation_id=1,
            brokers=tuple(F.MetadataBroker(reference=i, host="", port=1) for i in range(N // 4)),
            streams=tuple(
                F.MetadataStream(stream=k, code=1, leader_reference=0, replica_references=(1,) * 8)
                for k in keys[: N // 4]
            ),
        ).encode(),
        "MetadataResponse-replicas": F.MetadataResponse(
            correlation_id=1,
            brokers=(),
            streams=(
                F.MetadataStream(stream="s", code=1, leader_reference=0, replica_references=(300,) * N),
            ),
        ).encode(),
    }


FRAMES = _dense_frames()


@pytest.mark.parametrize("name", sorted(FRAMES))
def test_frame_decoding_is_linear(name: str) -> None:
    data = FRAMES[name]
    conn = ProtocolConnection()
    run_handshake(conn, ServerPeer(frame_max=4096))
    conn.data_to_send()
    pieces = [data[i : i + 65536] for i in range(0, len(data), 65536)]

    def feed() -> list[object]:
        events: list[object] = []
        for p in pieces:
            events += conn.receive_data(p)
        return events

    peak = traced_peak(feed)
    assert conn.error is None
    assert peak <= FRAME_K * len(data) + FRAME_A, (name, peak, len(data), peak / len(data))


# --------------------------------------------------------------------------- chunks


class _Deflate:
    code = 5
    name = "test-deflate"

    def compress(self, data: bytes) -> bytes:
        return zlib.compress(data, 9)

    def decompress(self, data: bytes | memoryview, uncompressed_size: int) -> bytes:
        return zlib.decompress(data)


class _Plugin:
    @hookimpl
    def rabbitstream_compression_codecs(self) -> list[object]:
        return [_Deflate()]


REG = build_registry(autoload=False, plugins=[_Plugin()])
DEFLATE = REG.compression_codec(5)
MAX = 0xFFFF


def _dense_chunks() -> dict[str, tuple[bytes, int]]:
    bomb_empty = encode_sub_entry([b""] * MAX, DEFLATE)
    bomb_one = encode_sub_entry([b"x"] * MAX, DEFLATE)
    plain_empty = encode_sub_entry([b""] * MAX, None)
    return {
        "simple-empty": (chunk_of_entries([simple_entry(b"")] * MAX, MAX), MAX),
        "simple-1-byte-varied": (
            chunk_of_entries([simple_entry(bytes([i % 251]) * (i % 2)) for i in range(MAX)], MAX),
            MAX,
        ),
        "sub-entry-uncompressed": (chunk_of_entries([plain_empty] * 2, 2 * MAX), 2 * MAX),
        # 8 x 65,535 records from 2-4 KiB (the peak does not grow with the count)
        "deflate-bomb-empty-x8": (chunk_of_entries([bomb_empty] * 8, 8 * MAX), 8 * MAX),
        "deflate-bomb-1-byte-x8": (chunk_of_entries([bomb_one] * 8, 8 * MAX), 8 * MAX),
        "mixed": (
            chunk_of_entries([simple_entry(b"a"), bomb_one, simple_entry(b""), plain_empty], 2 * MAX + 2),
            2 * MAX + 2,
        ),
    }


CHUNKS = _dense_chunks()


@pytest.mark.parametrize("name", sorted(CHUNKS))
def test_chunk_consumption_is_bounded(name: str) -> None:
    raw, records = CHUNKS[name]

    def consume() -> int:
        total = 0
        for run in parse_chunk(raw, registry=REG).payload_runs():
            total += len(run)
            del run
        return total

    assert consume() == records
    peak = traced_peak(consume)
    assert peak <= CHUNK_K * len(raw) + CHUNK_A, (name, peak, len(raw))
