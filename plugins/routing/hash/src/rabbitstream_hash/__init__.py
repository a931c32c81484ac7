"""rabbitstream plugin: hash routing for super streams.

Two strategies:

``"hash"`` (the default of :class:`rabbitstream.SuperStreamProducer`)
    MurmurHash3 x86 32-bit, seed ``104729``, over the UTF-8 bytes of the routing
    key, read unsigned, modulo the number of partitions, indexing the partitions
    in the broker's ``Partitions`` order.  This is the formula of the Java, Go,
    .NET and Rust clients: producers in any language put a key on the same
    partition.

``"rstream-legacy-hash"``
    rstream's formula (MurmurHash3 x64 128-bit, seed ``104729``, over
    ``b"\\xff\\xfe"`` + UTF-16-LE of the key, the 16 bytes read as a little-endian
    unsigned 128-bit integer, modulo n).  Not interoperable; only for super streams
    that rstream producers already filled and whose key placement must not move.

Both are pure Python; hashes are memoised per key in a bounded LRU cache.  When
the optional ``mmh3`` package is installed (extra ``rabbitstream-hash[fast]``)
and ``RABBITSTREAM_NO_EXTENSIONS`` is not set, its C MurmurHash3 computes the
standard hash instead (same values; ≈20x cheaper per new key).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence

from rabbitstream.plugin import PartitionRouter, SuperStreamMetadata, hookimpl

from rabbitstream_hash._murmur import murmur3_x64_128, murmur3_x86_32

__all__ = [
    "IMPLEMENTATION",
    "SEED",
    "HashRoutingStrategy",
    "RstreamLegacyHashRoutingStrategy",
    "hash_key",
    "legacy_hash_key",
    "murmur3_x64_128",
    "murmur3_x86_32",
    "partition_index",
    "legacy_partition_index",
    "rabbitstream_routing_strategies",
]

SEED = 104729
"""The seed every RabbitMQ stream client uses for super-stream hashing."""

_CACHE_SIZE = 65536


def _accelerated() -> Callable[[bytes, int], int] | None:
    """``mmh3``'s x86_32 (unsigned) when installed and extensions are allowed."""
    if os.environ.get("RABBITSTREAM_NO_EXTENSIONS"):
        return None
    try:
        import mmh3
    except ImportError:
        return None
    fn = mmh3.hash

    def murmur(data: bytes, seed: int) -> int:
        return int(fn(data, seed, signed=False))

    return murmur if murmur(b"hello", SEED) == 1321743225 else None


_murmur32: Callable[[bytes, int], int] = _accelerated() or murmur3_x86_32
#: ``"mmh3"`` or ``"python"``: which implementation computes the standard hash.
IMPLEMENTATION = "python" if _murmur32 is murmur3_x86_32 else "mmh3"


@functools.lru_cache(maxsize=_CACHE_SIZE)
def hash_key(routing_key: str) -> int:
    """The standard routing hash of ``routing_key`` (unsigned 32-bit)."""
    return _murmur32(routing_key.encode("utf-8"), SEED)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def legacy_hash_key(routing_key: str) -> int:
    """rstream's routing hash of ``routing_key`` (unsigned 128-bit)."""
    data = b"\xff\xfe" + routing_key.encode("utf-16-le")
    return int.from_bytes(murmur3_x64_128(data, SEED), "little")


def partition_index(routing_key: str, n_partitions: int) -> int:
    """Index of the partition the standard formula picks among ``n_partitions``."""
    if n_partitions <= 0:
        raise ValueError("n_partitions must be > 0")
    return hash_key(routing_key) % n_partitions


def legacy_partition_index(routing_key: str, n_partitions: int) -> int:
    """Index of the partition rstream's formula picks among ``n_partitions``."""
    if n_partitions <= 0:
        raise ValueError("n_partitions must be > 0")
    return legacy_hash_key(routing_key) % n_partitions


class HashRoutingStrategy:
    """The standard, interoperable hash strategy (``"hash"``)."""

    __slots__ = ()
    name = "hash"

    def route(self, routing_key: str, metadata: SuperStreamMetadata) -> Sequence[str]:
        """One partition for ``routing_key``; ``[]`` if the super stream has no partition."""
        partitions = metadata.partitions()
        n = len(partitions)
        if not n:
            return []
        return [partitions[hash_key(routing_key) % n]]

    def __repr__(self) -> str:
        return "HashRoutingStrategy()"


class RstreamLegacyHashRoutingStrategy:
    """rstream's non-interoperable hash strategy (``"rstream-legacy-hash"``)."""

    __slots__ = ()
    name = "rstream-legacy-hash"

    def route(self, routing_key: str, metadata: SuperStreamMetadata) -> Sequence[str]:
        """One partition for ``routing_key`` by rstream's formula; ``[]`` without partitions."""
        partitions = metadata.partitions()
        n = len(partitions)
        if not n:
            return []
        return [partitions[legacy_hash_key(routing_key) % n]]

    def __repr__(self) -> str:
        return "RstreamLegacyHashRoutingStrategy()"


@hookimpl(trylast=True)
def rabbitstream_routing_strategies() -> Sequence[PartitionRouter]:
    """Provide ``"hash"`` and ``"rstream-legacy-hash"``."""
    return [HashRoutingStrategy(), RstreamLegacyHashRoutingStrategy()]
