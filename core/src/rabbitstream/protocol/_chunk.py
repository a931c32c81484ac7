"""The Deliver chunk parser: the consumer's hot path.

A Deliver frame carries one osiris chunk (``protocol.md`` §5): a 48-byte header
followed by ``DataLength`` bytes of entries.  An entry is either a simple entry
(``0:1, Size:31`` then ``Size`` bytes) or a sub-entry batch (top bit set, see
:mod:`._subentry`).  Offsets count *records*: a sub-entry of N messages uses N
offsets.

:func:`parse_chunk` validates the header, the lengths against the real buffer
and the CRC-32 of the entries; :class:`Chunk` cuts the records lazily, on first
use, into ``memoryview`` slices of the frame (no copy for simple entries).
:meth:`Chunk.payloads` is the consumer's hot path: it cuts ``bytes`` objects
(what decoders want) straight out of the chunk, at C speed when all entries
have the same size (one precompiled ``struct`` unpack per block of entries)
and with a tight loop over a ``bytes`` copy otherwise.
Nothing is ever allocated from a length that was not checked against the
buffer, and decompression is bounded per sub-entry and per chunk.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from itertools import count as _count

from rabbitstream.exceptions import DecodeError
from rabbitstream.plugin import Registry, get_registry
from rabbitstream.protocol._subentry import (
    MAX_UNCOMPRESSED_SUB_ENTRY,
    SUB_ENTRY_HEADER,
    iter_sub_entry,
)

__all__ = [
    "CHUNK_HEADER",
    "CHUNK_HEADER_SIZE",
    "CHUNK_MAGIC_VERSION",
    "CHUNK_TYPE_TRACKING_DELTA",
    "CHUNK_TYPE_TRACKING_SNAPSHOT",
    "CHUNK_TYPE_USER",
    "MAX_UNCOMPRESSED_CHUNK",
    "Chunk",
    "parse_chunk",
]

#: Magic/version (0x50), ChunkType, NumEntries, NumRecords, Timestamp (ms),
#: Epoch, ChunkFirstOffset, ChunkCrc, DataLength, TrailerLength, BloomSize,
#: 3 reserved bytes.
CHUNK_HEADER = struct.Struct(">BBHIqQQIIIB3x")
CHUNK_HEADER_SIZE = CHUNK_HEADER.size  # 48
CHUNK_MAGIC_VERSION = 0x50
CHUNK_TYPE_USER = 0
CHUNK_TYPE_TRACKING_DELTA = 1
CHUNK_TYPE_TRACKING_SNAPSHOT = 2
#: Default bound on the bytes all sub-entries of one chunk may inflate to (1 GiB, as Java).
MAX_UNCOMPRESSED_CHUNK = 1024 * 1024 * 1024

_I32 = struct.Struct(">i")  # signed: a sub-entry's top bit makes it negative
_U32 = struct.Struct(">I")
_SUB_HEADER_SIZE = SUB_ENTRY_HEADER.size
_UNIFORM_MIN = 8  # below this many entries the general loop is as fast


class Chunk:
    """One delivered chunk; its records are cut on first use and cached.

    ``records()``, ``messages()`` and ``records_from()`` raise
    :class:`~rabbitstream.exceptions.DecodeError` if the entries are
    inconsistent (and :class:`~rabbitstream.plugin.PluginNotFoundError` for a
    compression code no installed plugin handles).
    """

    __slots__ = (
        "_messages",
        "_registry",
        "chunk_id",
        "chunk_type",
        "committed_chunk_id",
        "crc",
        "data",
        "epoch",
        "max_uncompressed",
        "max_uncompressed_chunk",
        "num_entries",
        "num_records",
        "timestamp",
    )

    def __init__(
        self,
        *,
        chunk_id: int,
        timestamp: int,
        num_entries: int,
        num_records: int,
        data: memoryview,
        epoch: int = 0,
        chunk_type: int = CHUNK_TYPE_USER,
        crc: int = 0,
        committed_chunk_id: int | None = None,
        registry: Registry | None = None,
        max_uncompressed: int = MAX_UNCOMPRESSED_SUB_ENTRY,
        max_uncompressed_chunk: int = MAX_UNCOMPRESSED_CHUNK,
    ) -> None:
        #: Offset of the first record.
        self.chunk_id = chunk_id
        #: Milliseconds since the epoch, when the broker wrote the chunk.
        self.timestamp = timestamp
        self.num_entries = num_entries
        self.num_records = num_records
        #: The ``DataLength`` bytes of entries (a slice of the frame).
        self.data = data
        self.epoch = epoch
        self.chunk_type = chunk_type
        self.crc = crc
        #: Deliver v2 only: the last committed chunk id of the stream.
        self.committed_chunk_id = committed_chunk_id
        self.max_uncompressed = max_uncompressed
        self.max_uncompressed_chunk = max_uncompressed_chunk
        self._registry = registry
        self._messages: list[memoryview] | None = None

    def __repr__(self) -> str:
        return (
            f"<Chunk id={self.chunk_id} records={self.num_records} entries={self.num_entries} "
            f"bytes={len(self.data)} ts={self.timestamp}>"
        )

    def __len__(self) -> int:
        return self.num_records

    @property
    def next_offset(self) -> int:
        """The offset that follows this chunk's last record."""
        return self.chunk_id + self.num_records

    def messages(self) -> list[memoryview]:
        """All records, in offset order, as slices (sub-entries expanded).

        The list is cached: treat it as read-only.  Tracking chunks (types 1
        and 2) hold no application messages and give an empty list.
        """
        msgs = self._messages
        if msgs is None:
            msgs = self._messages = self._cut_all()
        return msgs

    def payloads(self, skip: int = 0) -> list[bytes]:
        """The records from index ``skip`` on, as fresh ``bytes`` (sub-entries expanded).

        The consumer's hot path: not cached (each call cuts again), never
        keeps the frame alive, and gives decoders the ``bytes`` rstream gives.
        Tracking chunks (types 1 and 2) give an empty list.
        """
        if self.chunk_type != CHUNK_TYPE_USER:
            return []
        if skip > 0:
            if skip >= self.num_records:
                return []
            cached = self._messages
            return list(map(bytes, cached[skip:] if cached is not None else self._cut_from(skip)))
        if self._messages is not None:
            return list(map(bytes, self._messages))
        data = self.data
        n = self.num_entries
        flat = data.tobytes()  # one memcpy; bytes slices beat memoryview slices + bytes()
        if n == self.num_records and n >= _UNIFORM_MIN:
            out = _payloads_uniform(flat, n)
            if out is not None:
                return out
        out = _payloads_simple(flat)
        if out is None:  # a sub-entry batch: the general path
            return list(map(bytes, self._cut_all()))
        self._check_counts(len(out), len(out))
        return out

    def records(self) -> Iterator[tuple[int, memoryview]]:
        """``(offset, message)`` for every record, sub-entries expanded."""
        return zip(_count(self.chunk_id), self.messages())

    def records_from(self, offset: int) -> Iterator[tuple[int, memoryview]]:
        """Like :meth:`records` but only records with an offset ``>= offset``.

        Records below ``offset`` are skipped without being cut, and whole
        sub-entries below it without being decompressed.
        """
        first = self.chunk_id
        if offset <= first:
            return self.records()
        if offset >= first + self.num_records or self.chunk_type != CHUNK_TYPE_USER:
            return iter(())
        if self._messages is not None:
            return zip(_count(offset), self._messages[offset - first :])
        return zip(_count(offset), self._cut_from(offset - first))

    # ------------------------------------------------------------------ internals

    def _cut_all(self) -> list[memoryview]:
        if self.chunk_type != CHUNK_TYPE_USER:
            return []
        n = self.num_entries
        if n == self.num_records and n >= _UNIFORM_MIN:
            msgs = _cut_uniform(self.data, n)
            if msgs is not None:
                return msgs
        msgs, entries, _ = self._walk(0)
        self._check_counts(entries, len(msgs))
        return msgs

    def _cut_from(self, skip: int) -> list[memoryview]:
        """Cut the records from index ``skip`` (0 < skip < num_records) on."""
        data = self.data
        n = self.num_entries
        if n == self.num_records and n >= _UNIFORM_MIN:
            msgs = _cut_uniform(data, n, skip)
            if msgs is not None:
                return msgs
        unpack = _I32.unpack_from
        pos = cur = entries = 0
        lead: list[memoryview] = []
        try:
            while cur < skip:
                (size,) = unpack(data, pos)
                entries += 1
                if size >= 0:
                    pos += 4 + size
                    cur += 1
                    continue
                _, n, _, length = SUB_ENTRY_HEADER.unpack_from(data, pos)
                if cur + n <= skip:
                    pos += _SUB_HEADER_SIZE + length
                    cur += n
                    continue
                recs, used = self._sub_entry(pos, self.max_uncompressed_chunk)
                lead = recs[skip - cur :]
                pos += used
                cur += len(recs)
        except struct.error:
            raise DecodeError("truncated entry header in chunk data") from None
        rest, more_entries, _ = self._walk(pos)
        self._check_counts(entries + more_entries, cur + len(rest))
        if lead:
            lead.extend(rest)
            return lead
        return rest

    def _walk(self, pos: int) -> tuple[list[memoryview], int, int]:
        """Cut every entry from ``pos`` to the end: ``(records, entries, budget left)``."""
        data = self.data
        end = len(data)
        unpack = _I32.unpack_from
        out: list[memoryview] = []
        append = out.append
        sub_entries = sub_records = 0
        budget = self.max_uncompressed_chunk
        try:
            while pos < end:
                (size,) = unpack(data, pos)
                if size >= 0:
                    start = pos + 4
                    pos = start + size
                    append(data[start:pos])
                else:
                    recs, used = self._sub_entry(pos, budget)
                    budget -= _U32.unpack_from(data, pos + 3)[0]
                    out.extend(recs)
                    pos += used
                    sub_entries += 1
                    sub_records += len(recs)
        except struct.error:
            raise DecodeError("truncated entry header in chunk data") from None
        if pos != end:
            raise DecodeError(f"last entry overruns the chunk data by {pos - end} bytes")
        return out, len(out) - sub_records + sub_entries, budget

    def _sub_entry(self, pos: int, budget: int) -> tuple[list[memoryview], int]:
        data = self.data
        if pos + _SUB_HEADER_SIZE <= len(data):
            flags, _, usize, _ = SUB_ENTRY_HEADER.unpack_from(data, pos)
            if flags & 0x70 and usize > budget:
                raise DecodeError(
                    f"chunk sub-entries inflate to more than {self.max_uncompressed_chunk} bytes"
                )
        registry = self._registry
        if registry is None:
            registry = self._registry = get_registry()
        return iter_sub_entry(data[pos:], registry, max_uncompressed=self.max_uncompressed)

    def _check_counts(self, entries: int, records: int) -> None:
        if entries != self.num_entries:
            raise DecodeError(f"chunk declares {self.num_entries} entries, data holds {entries}")
        if records != self.num_records:
            raise DecodeError(f"chunk declares {self.num_records} records, data holds {records}")


def _cut_uniform(data: memoryview, n: int, skip: int = 0) -> list[memoryview] | None:
    """Fast path: ``n`` simple entries that all have the same size, or ``None``.

    Returns the records from index ``skip`` on.

    Checks the four size bytes of every entry at C speed with strided slices,
    then cuts with a comprehension instead of the general ``while`` loop.
    """
    end = len(data)
    (size,) = _I32.unpack_from(data, 0)
    stride = size + 4
    if size < 0 or stride * n != end:
        return None
    flat = data.tobytes()  # one memcpy; strided bytes slices are much faster than memoryview ones
    for j in range(4):
        if flat[j:end:stride] != flat[j : j + 1] * n:
            return None
    return [data[p : p + size] for p in range(4 + skip * stride, end, stride)]


#: ``(size, entries) -> Struct`` cutting ``entries`` equal-size simple entries (power-of-two
#: entry counts up to :data:`_BLOCK`, so at most 9 per size); bounded, cleared when full.
_UNIFORM_STRUCTS: dict[tuple[int, int], struct.Struct] = {}
_UNIFORM_STRUCTS_MAX = 128
_BLOCK = 256


def _uniform_struct(size: int, entries: int) -> struct.Struct:
    key = (size, entries)
    st = _UNIFORM_STRUCTS.get(key)
    if st is None:
        if len(_UNIFORM_STRUCTS) >= _UNIFORM_STRUCTS_MAX:
            _UNIFORM_STRUCTS.clear()
        st = _UNIFORM_STRUCTS[key] = struct.Struct(">" + f"4x{size}s" * entries)
    return st


def _payloads_uniform(flat: bytes, n: int) -> list[bytes] | None:
    """``n`` simple entries of one size cut at C speed, or ``None`` when not uniform.

    Every size field is checked with strided slices (C loops); the records are
    then cut by unpacking precompiled ``4x{size}s`` structs: one call per block
    of 256 entries, plus one per set bit of the remainder.
    """
    end = len(flat)
    (size,) = _I32.unpack_from(flat, 0)
    stride = size + 4
    if size < 0 or stride * n != end:
        return None
    for j in range(4):
        if flat[j:end:stride] != flat[j : j + 1] * n:
            return None
    if n == _BLOCK:
        return list(_uniform_struct(size, n).unpack_from(flat))
    out: list[bytes] = []
    extend = out.extend
    pos = 0
    if n >= _BLOCK:
        block = _uniform_struct(size, _BLOCK)
        unpack = block.unpack_from
        step = block.size
        for _ in range(n // _BLOCK):
            extend(unpack(flat, pos))
            pos += step
        n %= _BLOCK
    bit = _BLOCK >> 1
    while n:
        if n & bit:
            part = _uniform_struct(size, bit)
            extend(part.unpack_from(flat, pos))
            pos += part.size
            n -= bit
        bit >>= 1
    return out


def _payloads_simple(flat: bytes) -> list[bytes] | None:
    """Cut simple entries as ``bytes``; ``None`` at the first sub-entry.

    :raises DecodeError: a truncated size field or an entry overrunning the data.
    """
    end = len(flat)
    unpack = _I32.unpack_from
    out: list[bytes] = []
    append = out.append
    pos = 0
    try:
        while pos < end:
            (size,) = unpack(flat, pos)
            if size < 0:
                return None
            start = pos + 4
            pos = start + size
            append(flat[start:pos])
    except struct.error:
        raise DecodeError("truncated entry header in chunk data") from None
    if pos != end:
        raise DecodeError(f"last entry overruns the chunk data by {pos - end} bytes")
    return out


def parse_chunk(
    view: memoryview | bytes | bytearray,
    *,
    check_crc: bool = True,
    registry: Registry | None = None,
    committed_chunk_id: int | None = None,
    max_uncompressed: int = MAX_UNCOMPRESSED_SUB_ENTRY,
    max_uncompressed_chunk: int = MAX_UNCOMPRESSED_CHUNK,
) -> Chunk:
    """Parse and validate one osiris chunk (the Deliver frame after its subscription id).

    :param view: the chunk: 48-byte header then the entries (a trailer and
        bloom filter, sent only with ``chunk_selector=all``, may follow).
    :param check_crc: verify the CRC-32 of the entries (the Java default).
    :param registry: for compressed sub-entries; default: the process registry,
        fetched only when a compressed sub-entry is met.
    :param committed_chunk_id: from a Deliver v2 frame, stored on the chunk.
    :param max_uncompressed: limit for one sub-entry's uncompressed body.
    :param max_uncompressed_chunk: limit for all sub-entries of the chunk.
    :raises DecodeError: bad magic/version, unknown chunk type, lengths that do
        not match the buffer, or a CRC mismatch.
    """
    if not isinstance(view, memoryview):
        view = memoryview(view)
    if view.ndim != 1 or view.itemsize != 1:
        view = view.cast("B")
    avail = len(view)
    if avail < CHUNK_HEADER_SIZE:
        raise DecodeError(f"truncated chunk header: {avail} of {CHUNK_HEADER_SIZE} bytes")
    (
        magic,
        chunk_type,
        num_entries,
        num_records,
        timestamp,
        epoch,
        chunk_id,
        crc,
        data_length,
        trailer_length,
        bloom_size,
    ) = CHUNK_HEADER.unpack_from(view, 0)
    if magic != CHUNK_MAGIC_VERSION:
        raise DecodeError(f"bad chunk magic/version 0x{magic:02x} (expected 0x50)")
    if chunk_type > CHUNK_TYPE_TRACKING_SNAPSHOT:
        raise DecodeError(f"unknown chunk type {chunk_type}")
    end = CHUNK_HEADER_SIZE + data_length
    if end > avail:
        raise DecodeError(
            f"truncated chunk: {data_length} data bytes declared, {avail - CHUNK_HEADER_SIZE} present"
        )
    if avail - end > trailer_length + bloom_size:
        raise DecodeError(f"{avail - end} unexpected bytes after the chunk data")
    if num_entries * 4 > data_length:
        raise DecodeError(f"chunk declares {num_entries} entries in {data_length} bytes")
    if num_entries == 0 and num_records:
        raise DecodeError(f"chunk declares {num_records} records but no entry")
    data = view[CHUNK_HEADER_SIZE:end]
    if check_crc and zlib.crc32(data) != crc:
        raise DecodeError(
            f"chunk {chunk_id}: CRC mismatch (header 0x{crc:08x}, data 0x{zlib.crc32(data):08x})"
        )
    return Chunk(
        chunk_id=chunk_id,
        timestamp=timestamp,
        num_entries=num_entries,
        num_records=num_records,
        data=data,
        epoch=epoch,
        chunk_type=chunk_type,
        crc=crc,
        committed_chunk_id=committed_chunk_id,
        registry=registry,
        max_uncompressed=max_uncompressed,
        max_uncompressed_chunk=max_uncompressed_chunk,
    )
