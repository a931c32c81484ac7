"""Sub-entry batches: encode (producer side) and decode (consumer side).

A sub-entry packs several messages into one stream entry, optionally
compressed.  Layout (``protocol.md`` §5), starting at the entry's first byte::

    byte0              1:1, CompressionType:3, Reserved:4   (0x80 | code << 4)
    NumRecords         uint16
    UncompressedLength uint32
    Length             uint32
    Body               Length bytes; once decompressed:
                       NumRecords x [Size:uint32, Data:Size]

Code 0 is the identity (no plugin involved); codes 1-7 are looked up in a
:class:`~rabbitstream.plugin.Registry`.  Every inconsistency raises
:class:`~rabbitstream.exceptions.DecodeError` and the work done is bounded by
``max_uncompressed`` (64 MiB by default, the broker's own limit).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Protocol

from rabbitstream.exceptions import DecodeError
from rabbitstream.plugin import CompressionCodec

__all__ = [
    "CodecLookup",
    "MAX_UNCOMPRESSED_SUB_ENTRY",
    "SUB_ENTRY_HEADER",
    "encode_sub_entry",
    "iter_sub_entry",
    "sub_entry_payloads",
]


class CodecLookup(Protocol):
    """Where compression codes are looked up: a :class:`~rabbitstream.plugin.Registry`, handed in."""

    def compression_codec(self, code: int, /) -> CompressionCodec:
        """The codec for wire code ``code`` (1-7)."""
        ...


#: Default (and broker) limit on one sub-entry's uncompressed body: 64 MiB.
MAX_UNCOMPRESSED_SUB_ENTRY = 64 * 1024 * 1024

#: byte0 (flag + code), NumRecords, UncompressedLength, Length.
SUB_ENTRY_HEADER = struct.Struct(">BHII")
_HEADER_SIZE = SUB_ENTRY_HEADER.size  # 11
_U32 = struct.Struct(">I")
_MAX_COUNT = 0xFFFF
_MAX_U32 = 0xFFFFFFFF


def encode_sub_entry(messages: Sequence[bytes], codec: CompressionCodec | None) -> bytes:
    """Encode ``messages`` as one sub-entry batch.

    :param messages: 1 to 65,535 encoded messages (any bytes-like objects).
    :param codec: the compression codec, or ``None`` for code 0 (no compression).
    :return: the entry *after* the publishing id: the 11-byte header and the body.
    :raises ValueError: no message, more than 65,535, or a body over 64 MiB
        (the broker would reject it).
    """
    count = len(messages)
    if not 0 < count <= _MAX_COUNT:
        raise ValueError(f"a sub-entry holds 1 to {_MAX_COUNT} messages, not {count}")
    pack = _U32.pack
    parts: list[bytes] = []
    append = parts.append
    for message in messages:
        append(pack(len(message)))
        append(message)
    body = b"".join(parts)
    size = len(body)
    if size > MAX_UNCOMPRESSED_SUB_ENTRY:
        raise ValueError(
            f"sub-entry body of {size} bytes exceeds the broker limit of {MAX_UNCOMPRESSED_SUB_ENTRY}"
        )
    if codec is None:
        return SUB_ENTRY_HEADER.pack(0x80, count, size, size) + body
    code = int(codec.code)
    if not 1 <= code <= 7:
        raise ValueError(f"compression code must be 1-7, not {code} ({codec.name})")
    compressed = codec.compress(body)
    if len(compressed) > _MAX_U32:
        raise ValueError("compressed sub-entry body does not fit in 32 bits")
    return SUB_ENTRY_HEADER.pack(0x80 | code << 4, count, size, len(compressed)) + compressed


def _body(
    view: memoryview, registry: CodecLookup, max_uncompressed: int
) -> tuple[bytes | memoryview, int, int, int]:
    """Check the header at ``view[0]`` and decompress: ``(body, count, usize, consumed)``."""
    avail = len(view)
    if avail < _HEADER_SIZE:
        raise DecodeError(f"truncated sub-entry header: {avail} of {_HEADER_SIZE} bytes")
    flags, count, usize, length = SUB_ENTRY_HEADER.unpack_from(view, 0)
    if not flags & 0x80:
        raise DecodeError(f"not a sub-entry: first byte 0x{flags:02x}")
    code = (flags >> 4) & 0x07
    end = _HEADER_SIZE + length
    if end > avail:
        raise DecodeError(f"truncated sub-entry: body of {length} bytes, {avail - _HEADER_SIZE} available")
    if usize > max_uncompressed:
        raise DecodeError(f"sub-entry declares {usize} uncompressed bytes, limit {max_uncompressed}")
    if count * 4 > usize:
        raise DecodeError(f"sub-entry declares {count} records in {usize} bytes")
    if count == 0:
        # Never written by current brokers (they reject it); tolerate old data.
        return b"", 0, 0, end
    if code == 0:
        if length != usize:
            raise DecodeError(f"uncompressed sub-entry: length {length} != uncompressed length {usize}")
        return view[_HEADER_SIZE:end], count, usize, end
    codec = registry.compression_codec(code)
    if length == 0:
        raise DecodeError(f"empty compressed sub-entry body ({codec.name})")
    try:
        raw = codec.decompress(view[_HEADER_SIZE:end], usize)
    except Exception as exc:
        raise DecodeError(f"{codec.name} sub-entry body could not be decompressed: {exc}") from exc
    if len(raw) != usize:
        raise DecodeError(f"{codec.name} codec returned {len(raw)} bytes, {usize} declared")
    return raw, count, usize, end


def iter_sub_entry(
    view: memoryview,
    registry: CodecLookup,
    *,
    max_uncompressed: int = MAX_UNCOMPRESSED_SUB_ENTRY,
) -> tuple[list[memoryview], int]:
    """Decode the sub-entry batch that starts at ``view[0]``.

    :param view: bytes starting at the sub-entry's first byte (the rest of the
        chunk may follow; only ``11 + Length`` bytes are read).
    :param registry: where compression codes 1-7 are looked up.
    :param max_uncompressed: the largest ``UncompressedLength`` accepted.
    :return: ``(records, consumed)``: one memoryview per message and the
        number of bytes of ``view`` the sub-entry occupies.
    :raises DecodeError: truncated or inconsistent header, body, or records;
        a codec failure (the codec's exception is chained).
    :raises PluginNotFoundError: no installed plugin handles the code (the
        message names the distribution to install).
    """
    body, count, usize, end = _body(view, registry, max_uncompressed)
    if count == 0:
        return [], end
    return _split_records(memoryview(body), count, usize), end


def sub_entry_payloads(
    view: memoryview,
    registry: CodecLookup,
    *,
    max_uncompressed: int = MAX_UNCOMPRESSED_SUB_ENTRY,
) -> tuple[list[bytes], int]:
    """Like :func:`iter_sub_entry` but the records are ``bytes`` (what decoders take).

    Peak memory is the decompressed body plus one small ``bytes`` object per record
    (at most 65,535): bounded by ``max_uncompressed``, whatever the chunk around it.
    """
    body, count, usize, end = _body(view, registry, max_uncompressed)
    if count == 0:
        return [], end
    flat = body if type(body) is bytes else bytes(body)
    unpack = _U32.unpack_from
    records: list[bytes] = []
    append = records.append
    pos = 0
    try:
        for _ in range(count):
            (size,) = unpack(flat, pos)
            pos += 4
            nxt = pos + size
            if nxt > usize:
                raise struct.error
            append(flat[pos:nxt])
            pos = nxt
    except struct.error:
        raise DecodeError(f"sub-entry records overrun the {usize}-byte body") from None
    if pos != usize:
        raise DecodeError(f"sub-entry has {usize - pos} bytes after its {count} records")
    return records, end


def _split_records(body: memoryview, count: int, usize: int) -> list[memoryview]:
    """Cut ``count`` ``[size:uint32, data]`` records that fill ``body`` exactly."""
    unpack = _U32.unpack_from
    records: list[memoryview] = []
    append = records.append
    pos = 0
    try:
        for _ in range(count):
            (size,) = unpack(body, pos)
            pos += 4
            nxt = pos + size
            append(body[pos:nxt])
            pos = nxt
    except struct.error:
        raise DecodeError(f"sub-entry records overrun the {usize}-byte body") from None
    if pos != usize:
        if pos > usize:
            raise DecodeError(f"sub-entry records overrun the {usize}-byte body")
        raise DecodeError(f"sub-entry has {usize - pos} bytes after its {count} records")
    return records
