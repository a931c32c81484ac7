"""The Deliver chunk parser: the consumer's hot path.

A Deliver frame carries one osiris chunk (``protocol.md`` §5): a 48-byte header
followed by ``DataLength`` bytes of entries.  An entry is either a simple entry
(``0:1, Size:31`` then ``Size`` bytes) or a sub-entry batch (top bit set, see
:mod:`._subentry`).  Offsets count *records*: a sub-entry of N messages uses N
offsets.

:func:`parse_chunk` validates the header, the lengths against the real buffer
and the CRC-32 of the entries; :class:`Chunk` cuts the records lazily, on first
use, into ``memoryview`` slices of the frame (no copy for simple entries).
:meth:`Chunk.payload_runs` is the consumer's hot path: it cuts ``bytes`` objects
(what decoders want) straight out of the chunk, at C speed when all entries
have the same size (one precompiled ``struct`` unpack per block of entries)
and with a tight loop over a ``bytes`` copy otherwise (both in :mod:`._entries`);
sub-entries are decompressed one at a time, as the iteration reaches them.
Nothing is ever allocated from a length that was not checked against the
buffer, and decompression is bounded per sub-entry and per chunk
(:class:`ChunkLimits`).  Compression codecs are looked up in the registry
handed to :func:`parse_chunk` (the connection's, see ``StreamProtocol``).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import count as _count
from typing import TYPE_CHECKING

from rabbitstream.exceptions import DecodeError
from rabbitstream.protocol._entries import (
    I32,
    U32,
    UNIFORM_MIN,
    cut_uniform,
    payloads_simple,
    payloads_uniform,
)
from rabbitstream.protocol._subentry import (
    MAX_UNCOMPRESSED_SUB_ENTRY,
    SUB_ENTRY_HEADER,
    CodecLookup,
    iter_sub_entry,
    sub_entry_payloads,
)

if TYPE_CHECKING:
    from rabbitstream.plugin import CompressionCodec

__all__ = [
    "CHUNK_HEADER",
    "CHUNK_HEADER_SIZE",
    "CHUNK_MAGIC_VERSION",
    "CHUNK_TYPE_TRACKING_DELTA",
    "CHUNK_TYPE_TRACKING_SNAPSHOT",
    "CHUNK_TYPE_USER",
    "DEFAULT_CHUNK_LIMITS",
    "DEFAULT_MAX_CHUNK_RECORDS",
    "MAX_UNCOMPRESSED_CHUNK",
    "PROCESS_CODECS",
    "Chunk",
    "ChunkLimits",
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
#: Default bound on the records one chunk may declare (4 Mi; sub-entries of 65,535 empty
#: records compress to a few dozen bytes, so the count is not bounded by the chunk's size).
DEFAULT_MAX_CHUNK_RECORDS = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ChunkLimits:
    """What one delivered chunk may cost; over a limit, decoding raises ``DecodeError``.

    Memory while consuming does not depend on these: sub-entries are decompressed one at
    a time as the application takes messages (:meth:`Chunk.payload_runs`).  They bound
    the work one chunk can ask for, and what a per-chunk batch may hold.
    """

    #: Most records a chunk may declare.
    max_records: int = DEFAULT_MAX_CHUNK_RECORDS
    #: Most bytes all compressed sub-entries of a chunk may inflate to.
    max_uncompressed: int = MAX_UNCOMPRESSED_CHUNK
    #: Most bytes one sub-entry may inflate to (the broker's own limit: 64 MiB).
    max_sub_entry_uncompressed: int = MAX_UNCOMPRESSED_SUB_ENTRY

    def __post_init__(self) -> None:
        for name in ("max_records", "max_uncompressed", "max_sub_entry_uncompressed"):
            if getattr(self, name) < 1:
                raise ValueError(f"ChunkLimits.{name} must be >= 1")


DEFAULT_CHUNK_LIMITS = ChunkLimits()

_SUB_HEADER_SIZE = SUB_ENTRY_HEADER.size


class _ProcessCodecs:
    """The process-wide plugin registry as a :class:`~._subentry.CodecLookup`, fetched on first use.

    Only the default of :func:`parse_chunk` called without ``registry`` (scripts, tests): the
    client's connections hand their own registry in (``StreamProtocol``), so this layer never
    reaches for process state on its own.
    """

    __slots__ = ()

    def compression_codec(self, code: int, /) -> CompressionCodec:
        from rabbitstream.plugin import get_registry

        return get_registry().compression_codec(code)


#: :func:`parse_chunk`'s default codec lookup: the process registry, fetched lazily.
PROCESS_CODECS: CodecLookup = _ProcessCodecs()


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
        "max_records",
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
        registry: CodecLookup | None = None,
        max_uncompressed: int = MAX_UNCOMPRESSED_SUB_ENTRY,
        max_uncompressed_chunk: int = MAX_UNCOMPRESSED_CHUNK,
        max_records: int = DEFAULT_MAX_CHUNK_RECORDS,
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
        self.max_records = max_records
        self._registry = registry if registry is not None else PROCESS_CODECS
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

        All at once: a chunk of compressed sub-entries is decompressed whole, so its
        cost follows the declared records (bounded by :attr:`max_records`);
        :meth:`payload_runs` gives the same ``bytes`` a sub-entry at a time.  Not
        cached (each call cuts again), never keeps the frame alive, and gives decoders
        the ``bytes`` rstream gives.  Tracking chunks (types 1 and 2) give an empty list.
        """
        if self.chunk_type != CHUNK_TYPE_USER:
            return []
        cached = self._messages
        if cached is not None:
            return list(map(bytes, cached[skip:] if skip > 0 else cached))
        runs = self.payload_runs(skip)
        out = next(runs, None)
        if out is None:
            return []
        for run in runs:
            out.extend(run)
        return out

    def payload_runs(self, skip: int = 0) -> Iterator[list[bytes]]:
        """The records from index ``skip`` on as ``bytes``, in lists of consecutive records.

        The consumer's hot path.  A chunk of simple entries is one list, cut at C speed
        when all entries have the same size.  A chunk with sub-entries is checked first
        (entry headers only: record and entry counts against the chunk header, the
        decompression budget), then each sub-entry is decompressed only when the
        iteration reaches it, and sub-entries below ``skip`` never are: memory stays
        bounded by the chunk's bytes plus one sub-entry, whatever the chunk declares.

        :raises DecodeError: (on the call or while iterating) inconsistent entries, a
            limit exceeded, a codec failure; records before a failing sub-entry have
            already been yielded.
        :raises PluginNotFoundError: (while iterating) no plugin for a compression code.
        """
        if self.chunk_type != CHUNK_TYPE_USER or 0 < self.num_records <= skip:
            return iter(())
        self._check_limit()
        flat = self.data.tobytes()  # one memcpy; bytes slices beat memoryview slices + bytes()
        n = self.num_entries
        out: list[bytes] | None = None
        if n == self.num_records and n >= UNIFORM_MIN:
            out = payloads_uniform(flat, n)
        if out is None:
            out = payloads_simple(flat)
            if out is None:  # a sub-entry batch
                return self._lazy_runs(flat, skip)
            self._check_counts(len(out), len(out))
        if skip > 0:
            out = out[skip:]
        return iter((out,) if out else ())  # never an empty run

    def _lazy_runs(self, flat: bytes, skip: int) -> Iterator[list[bytes]]:
        self._scan(flat)  # before anything is delivered or decompressed
        registry = self._registry
        view = memoryview(flat)
        limit = self.max_uncompressed
        unpack = I32.unpack_from
        header = SUB_ENTRY_HEADER.unpack_from
        end = len(flat)
        pos = cur = 0
        run: list[bytes] = []
        while pos < end:
            (size,) = unpack(flat, pos)
            if size >= 0:
                start = pos + 4
                pos = start + size
                if cur >= skip:
                    run.append(flat[start:pos])
                cur += 1
                continue
            _, count, _, length = header(flat, pos)
            if cur + count <= skip:  # wholly before ``skip``: not decompressed
                pos += _SUB_HEADER_SIZE + length
                cur += count
                continue
            if run:
                yield run
                run = []
            recs, used = sub_entry_payloads(view[pos:], registry, max_uncompressed=limit)
            if len(recs) != count:  # pragma: no cover - sub_entry_payloads checks it
                raise DecodeError("sub-entry record count mismatch")
            if cur < skip:
                recs = recs[skip - cur :]
            pos += used
            cur += count
            if recs:
                yield recs
            del recs  # not alive while the next sub-entry is decompressed
        if run:
            yield run

    def _scan(self, flat: bytes) -> None:
        """Walk the entry headers only: counts against the chunk header, bounds, budget."""
        unpack = I32.unpack_from
        header = SUB_ENTRY_HEADER.unpack_from
        declared_entries, declared_records = self.num_entries, self.num_records
        budget = self.max_uncompressed_chunk
        end = len(flat)
        pos = entries = records = 0
        try:
            while pos < end and entries <= declared_entries and records <= declared_records:
                (size,) = unpack(flat, pos)
                entries += 1
                if size >= 0:
                    pos += 4 + size
                    records += 1
                    continue
                flags, count, usize, length = header(flat, pos)
                if flags & 0x70:
                    budget -= usize
                    if budget < 0:
                        raise DecodeError(
                            f"chunk sub-entries inflate to more than {self.max_uncompressed_chunk} bytes"
                        )
                pos += _SUB_HEADER_SIZE + length
                records += count
        except struct.error:
            raise DecodeError("truncated entry header in chunk data") from None
        if records > declared_records:
            raise DecodeError(f"chunk declares {declared_records} records, data holds more")
        if entries > declared_entries:
            raise DecodeError(f"chunk declares {declared_entries} entries, data holds more")
        self._check_counts(entries, records)
        if pos != end:
            raise DecodeError(f"last entry overruns the chunk data by {pos - end} bytes")

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

    def _check_limit(self) -> None:
        if self.num_records > self.max_records:
            raise DecodeError(
                f"chunk {self.chunk_id} declares {self.num_records} records, over the limit of "
                f"{self.max_records} (ChunkLimits.max_records)"
            )

    def _cut_all(self) -> list[memoryview]:
        if self.chunk_type != CHUNK_TYPE_USER:
            return []
        self._check_limit()
        n = self.num_entries
        if n == self.num_records and n >= UNIFORM_MIN:
            msgs = cut_uniform(self.data, n)
            if msgs is not None:
                return msgs
        msgs, entries, _ = self._walk(0)
        self._check_counts(entries, len(msgs))
        return msgs

    def _cut_from(self, skip: int) -> list[memoryview]:
        """Cut the records from index ``skip`` (0 < skip < num_records) on."""
        self._check_limit()
        data = self.data
        n = self.num_entries
        if n == self.num_records and n >= UNIFORM_MIN:
            msgs = cut_uniform(data, n, skip)
            if msgs is not None:
                return msgs
        unpack = I32.unpack_from
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
                recs, used = self._sub_entry(pos, self.max_uncompressed_chunk, cur)
                lead = recs[skip - cur :]
                pos += used
                cur += len(recs)
        except struct.error:
            raise DecodeError("truncated entry header in chunk data") from None
        rest, more_entries, _ = self._walk(pos, cur)
        self._check_counts(entries + more_entries, cur + len(rest))
        if lead:
            lead.extend(rest)
            return lead
        return rest

    def _walk(self, pos: int, before: int = 0) -> tuple[list[memoryview], int, int]:
        """Cut every entry from ``pos`` to the end: ``(records, entries, budget left)``.

        ``before`` records precede ``pos``; a sub-entry that would take the count past
        the chunk header's is refused before it is decompressed.
        """
        data = self.data
        end = len(data)
        unpack = I32.unpack_from
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
                    recs, used = self._sub_entry(pos, budget, before + len(out))
                    budget -= U32.unpack_from(data, pos + 3)[0]
                    out.extend(recs)
                    pos += used
                    sub_entries += 1
                    sub_records += len(recs)
        except struct.error:
            raise DecodeError("truncated entry header in chunk data") from None
        if pos != end:
            raise DecodeError(f"last entry overruns the chunk data by {pos - end} bytes")
        return out, len(out) - sub_records + sub_entries, budget

    def _sub_entry(self, pos: int, budget: int, have: int) -> tuple[list[memoryview], int]:
        data = self.data
        if pos + _SUB_HEADER_SIZE <= len(data):
            flags, count, usize, _ = SUB_ENTRY_HEADER.unpack_from(data, pos)
            if have + count > self.num_records:
                raise DecodeError(f"chunk declares {self.num_records} records, data holds more")
            if flags & 0x70 and usize > budget:
                raise DecodeError(
                    f"chunk sub-entries inflate to more than {self.max_uncompressed_chunk} bytes"
                )
        return iter_sub_entry(data[pos:], self._registry, max_uncompressed=self.max_uncompressed)

    def _check_counts(self, entries: int, records: int) -> None:
        if entries != self.num_entries:
            raise DecodeError(f"chunk declares {self.num_entries} entries, data holds {entries}")
        if records != self.num_records:
            raise DecodeError(f"chunk declares {self.num_records} records, data holds {records}")


def parse_chunk(
    view: memoryview | bytes | bytearray,
    *,
    check_crc: bool = True,
    registry: CodecLookup | None = None,
    committed_chunk_id: int | None = None,
    max_uncompressed: int = MAX_UNCOMPRESSED_SUB_ENTRY,
    max_uncompressed_chunk: int = MAX_UNCOMPRESSED_CHUNK,
    limits: ChunkLimits | None = None,
) -> Chunk:
    """Parse and validate one osiris chunk (the Deliver frame after its subscription id).

    :param view: the chunk: 48-byte header then the entries (a trailer and
        bloom filter, sent only with ``chunk_selector=all``, may follow).
    :param check_crc: verify the CRC-32 of the entries (the Java default).
    :param registry: where compressed sub-entries find their codec: the client hands in its
        connection's registry; default (direct calls): :data:`PROCESS_CODECS`, the process
        registry fetched only when a compressed sub-entry is met.
    :param committed_chunk_id: from a Deliver v2 frame, stored on the chunk.
    :param max_uncompressed: limit for one sub-entry's uncompressed body.
    :param max_uncompressed_chunk: limit for all sub-entries of the chunk.
    :param limits: all limits at once (wins over the two above); checked when the
        records are cut, not here.
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
        max_uncompressed=max_uncompressed if limits is None else limits.max_sub_entry_uncompressed,
        max_uncompressed_chunk=max_uncompressed_chunk if limits is None else limits.max_uncompressed,
        max_records=DEFAULT_MAX_CHUNK_RECORDS if limits is None else limits.max_records,
    )
