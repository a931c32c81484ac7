"""Pure-Python MurmurHash3 (x86 32-bit and x64 128-bit), written from the public algorithm.

Only the two functions the routing strategies need; both take ``bytes`` and a
seed and return unsigned integers.  The 32-bit variant is on the routing hot
path, so its block loop reads all 4-byte words with one precompiled
:class:`struct.Struct` (cached per block count) and keeps every step inline.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable

__all__ = ["murmur3_x64_128", "murmur3_x86_32"]

_M32 = 0xFFFFFFFF
_M64 = 0xFFFFFFFFFFFFFFFF

# x86_32 constants
_C1 = 0xCC9E2D51
_C2 = 0x1B873593

# x64_128 constants
_K1 = 0x87C37B91114253D5
_K2 = 0x4CF5AD432745937F


@functools.lru_cache(maxsize=256)
def _words32(nblocks: int) -> Callable[[bytes | bytearray | memoryview], tuple[int, ...]]:
    """``unpack_from`` of a precompiled ``<nI`` struct (little-endian uint32 words)."""
    return struct.Struct(f"<{nblocks}I").unpack_from


@functools.lru_cache(maxsize=256)
def _words64(nblocks: int) -> Callable[[bytes | bytearray | memoryview], tuple[int, ...]]:
    """``unpack_from`` of a precompiled ``<nQ`` struct (pairs of little-endian uint64)."""
    return struct.Struct(f"<{2 * nblocks}Q").unpack_from


def murmur3_x86_32(data: bytes | bytearray | memoryview, seed: int = 0) -> int:
    """MurmurHash3 x86 32-bit of ``data``.

    :param data: the bytes to hash.
    :param seed: a 32-bit seed (reduced modulo 2**32).
    :return: the hash as an **unsigned** 32-bit integer (Java's ``hash32x86`` read unsigned).
    """
    length = len(data)
    h = seed & _M32
    nblocks = length >> 2
    if nblocks:
        for k in _words32(nblocks)(data):
            k = (k * _C1) & _M32
            k = ((k << 15) | (k >> 17)) & _M32
            h ^= (k * _C2) & _M32
            h = ((h << 13) | (h >> 19)) & _M32
            h = (h * 5 + 0xE6546B64) & _M32
    tail = length & 3
    if tail:
        k = int.from_bytes(data[length - tail :], "little")
        k = (k * _C1) & _M32
        k = ((k << 15) | (k >> 17)) & _M32
        h ^= (k * _C2) & _M32
    h ^= length
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & _M32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _M32
    return h ^ (h >> 16)


def _fmix64(k: int) -> int:
    k ^= k >> 33
    k = (k * 0xFF51AFD7ED558CCD) & _M64
    k ^= k >> 33
    k = (k * 0xC4CEB9FE1A85EC53) & _M64
    return k ^ (k >> 33)


def murmur3_x64_128(data: bytes | bytearray | memoryview, seed: int = 0) -> bytes:
    """MurmurHash3 x64 128-bit of ``data``.

    :param data: the bytes to hash.
    :param seed: a 32-bit seed (reduced modulo 2**32, as the reference implementation does).
    :return: the 16-byte digest: ``h1`` then ``h2``, each little-endian (``mmh3.hash_bytes`` layout).
    """
    length = len(data)
    h1 = h2 = seed & _M32
    nblocks = length >> 4
    if nblocks:
        words = _words64(nblocks)(data)
        for i in range(0, 2 * nblocks, 2):
            k1 = (words[i] * _K1) & _M64
            k1 = ((k1 << 31) | (k1 >> 33)) & _M64
            h1 ^= (k1 * _K2) & _M64
            h1 = ((h1 << 27) | (h1 >> 37)) & _M64
            h1 = (h1 + h2) & _M64
            h1 = (h1 * 5 + 0x52DCE729) & _M64

            k2 = (words[i + 1] * _K2) & _M64
            k2 = ((k2 << 33) | (k2 >> 31)) & _M64
            h2 ^= (k2 * _K1) & _M64
            h2 = ((h2 << 31) | (h2 >> 33)) & _M64
            h2 = (h2 + h1) & _M64
            h2 = (h2 * 5 + 0x38495AB5) & _M64
    tail = bytes(data[nblocks << 4 :])
    if len(tail) > 8:
        k2 = int.from_bytes(tail[8:], "little")
        k2 = (k2 * _K2) & _M64
        k2 = ((k2 << 33) | (k2 >> 31)) & _M64
        h2 ^= (k2 * _K1) & _M64
    if tail:
        k1 = int.from_bytes(tail[:8], "little")
        k1 = (k1 * _K1) & _M64
        k1 = ((k1 << 31) | (k1 >> 33)) & _M64
        h1 ^= (k1 * _K2) & _M64
    h1 ^= length
    h2 ^= length
    h1 = (h1 + h2) & _M64
    h2 = (h2 + h1) & _M64
    h1 = _fmix64(h1)
    h2 = _fmix64(h2)
    h1 = (h1 + h2) & _M64
    h2 = (h2 + h1) & _M64
    return h1.to_bytes(8, "little") + h2.to_bytes(8, "little")
