"""Cutting the entries of a chunk's data: the general loop and the uniform fast paths.

The entries of a chunk (``protocol.md`` §5) are simple entries (``0:1, Size:31`` then ``Size``
bytes) or sub-entry batches (top bit set, :mod:`._subentry`).  These functions cut runs of simple
entries; :class:`~._chunk.Chunk` uses them and walks sub-entries itself.  When all entries have the
same size (the usual case for a producer's batch), every size field is checked at C speed with
strided slices and the records are cut by precompiled ``struct`` unpacks (``_UNIFORM_STRUCTS``, a
bounded cache).  Nothing is allocated from a length not checked against the buffer.
"""

from __future__ import annotations

import struct

from rabbitstream.exceptions import DecodeError

__all__ = ["I32", "UNIFORM_MIN", "U32", "cut_uniform", "payloads_simple", "payloads_uniform"]

I32 = struct.Struct(">i")  # signed: a sub-entry's top bit makes it negative
U32 = struct.Struct(">I")
#: below this many entries the general loop is as fast as the uniform paths
UNIFORM_MIN = 8


def cut_uniform(data: memoryview, n: int, skip: int = 0) -> list[memoryview] | None:
    """Fast path: ``n`` simple entries that all have the same size, or ``None``.

    Returns the records from index ``skip`` on.

    Checks the four size bytes of every entry at C speed with strided slices,
    then cuts with a comprehension instead of the general ``while`` loop.
    """
    end = len(data)
    (size,) = I32.unpack_from(data, 0)
    stride = size + 4
    if size < 0 or stride * n != end:
        return None
    flat = data.tobytes()  # one memcpy; strided bytes slices are much faster than memoryview ones
    for j in range(4):
        if flat[j:end:stride] != flat[j : j + 1] * n:
            return None
    # n start positions, not range(.., end, ..): with empty records the last one starts at ``end``
    return [data[p : p + size] for p in range(4 + skip * stride, 4 + n * stride, stride)]


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


def payloads_uniform(flat: bytes, n: int) -> list[bytes] | None:
    """``n`` simple entries of one size cut at C speed, or ``None`` when not uniform.

    Every size field is checked with strided slices (C loops); the records are
    then cut by unpacking precompiled ``4x{size}s`` structs: one call per block
    of 256 entries, plus one per set bit of the remainder.
    """
    end = len(flat)
    (size,) = I32.unpack_from(flat, 0)
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


def payloads_simple(flat: bytes) -> list[bytes] | None:
    """Cut simple entries as ``bytes``; ``None`` at the first sub-entry.

    :raises DecodeError: a truncated size field or an entry overrunning the data.
    """
    end = len(flat)
    unpack = I32.unpack_from
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
