"""Resource budget of sub-entries of every compression plugin (issue #14).

A sub-entry of 65,535 records compresses to a few dozen bytes with every codec; a chunk
of many of them declares millions of records.  Consumed run by run
(``Chunk.payload_runs``, each run dropped before the next, as the consumer does), the
peak traced memory stays within ``CHUNK_K * len(chunk) + CHUNK_A`` however many sub-entries
the chunk holds (``CHUNK_A``: one sub-entry being delivered).  One sub-entry decoded alone
(``sub_entry_payloads``) stays within ``SUB_K * uncompressed + SUB_A``.

Frames and plain chunks: ``core/tests/test_resource_budget.py``; AMQP:
``plugins/codecs/amqp/tests/test_amqp_budget.py``.
"""

from __future__ import annotations

import struct

import pytest
from rabbitstream.protocol._chunk import parse_chunk
from rabbitstream.protocol._subentry import encode_sub_entry, sub_entry_payloads
from rabbitstream.testing import chunk_of_entries, traced_peak

from support.compression import compression_registry, needs_all_compression

ALL = compression_registry()
needs_all = needs_all_compression(ALL)

CHUNK_K = 4  # the chunk's bytes copy (1x) ...
CHUNK_A = 6 * 1024 * 1024  # ... plus one sub-entry: measured 3.1 MiB for 65,535 2-byte records
SUB_K = 3  # body + record bytes: 2x the uncompressed size ...
SUB_A = 4 * 1024 * 1024  # ... plus 65,535 bytes objects and list slots (3.1 MiB measured)
MAX = 0xFFFF
COPIES = 3


CASES = [(code, rec) for code in (0, 1, 2, 3, 4) for rec in (b"", b"xy")]


def _sub_entry(code: int, record: bytes) -> bytes:
    return encode_sub_entry([record] * MAX, ALL.compression_codec(code) if code else None)


@needs_all
@pytest.mark.parametrize(("code", "record"), CASES)
def test_bomb_chunk_consumption_is_bounded(code: int, record: bytes) -> None:
    entry = _sub_entry(code, record)
    raw = chunk_of_entries([entry] * COPIES, COPIES * MAX)

    def consume() -> int:
        total = 0
        for run in parse_chunk(raw, registry=ALL).payload_runs():
            total += len(run)
            del run
        return total

    assert consume() == COPIES * MAX
    peak = traced_peak(consume)
    assert peak <= CHUNK_K * len(raw) + CHUNK_A, (code, record, peak, len(raw))


@needs_all
@pytest.mark.parametrize(("code", "record"), CASES)
def test_one_sub_entry_is_bounded_by_its_uncompressed_size(code: int, record: bytes) -> None:
    entry = _sub_entry(code, record)
    usize = struct.unpack_from(">I", entry, 3)[0]
    view = memoryview(entry)
    records, used = sub_entry_payloads(view, ALL)
    assert len(records) == MAX and used == len(entry)
    del records
    peak = traced_peak(lambda: sub_entry_payloads(view, ALL))
    assert peak <= SUB_K * usize + SUB_A, (code, record, peak, usize)
