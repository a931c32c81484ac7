"""Vectors of protocol.md §16 and cross-checks against the ``mmh3`` C implementation."""

from __future__ import annotations

from collections.abc import Sequence

import mmh3
import pytest
import rabbitstream_hash
from hypothesis import given, settings
from hypothesis import strategies as st
from rabbitstream.plugin import PartitionRouter, build_registry
from rabbitstream_hash import (
    SEED,
    HashRoutingStrategy,
    RstreamLegacyHashRoutingStrategy,
    hash_key,
    legacy_hash_key,
    legacy_partition_index,
    murmur3_x64_128,
    murmur3_x86_32,
    partition_index,
)

X86_32 = [
    ("hello", 1321743225, 3806057185),
    ("brave", 3825276426, 619588758),
    ("new", 2970740106, 1483300585),
    ("world", 2453398188, 1145629360),
    ("", 3329588566, 142593372),
    ("0", 2929165565, 3495505081),
    ("1", 2446297838, 2425973227),
    ("a", 1086686554, 3001393763),
    ("abc", 3409700625, 1313807976),
]

INVOICES = ["invoices-01", "invoices-02", "invoices-03"]
JAVA_TABLE = {
    "hello1": "invoices-02",
    "hello2": "invoices-01",
    "hello3": "invoices-02",
    "hello4": "invoices-03",
    "hello5": "invoices-01",
    "hello6": "invoices-03",
    "hello7": "invoices-01",
    "hello8": "invoices-02",
    "hello9": "invoices-01",
    "hello10": "invoices-03",
}

# key: (standard index, rstream index) over 3 partitions
STANDARD_VS_RSTREAM = {"0": (2, 0), "4": (2, 1), "6": (0, 1), "9": (2, 0), "hello": (0, 1), "italy": (2, 1)}


class _Meta:
    def __init__(self, parts: Sequence[str]) -> None:
        self._parts = list(parts)

    @property
    def super_stream(self) -> str:
        return "invoices"

    def partitions(self) -> Sequence[str]:
        return self._parts

    async def routes(self, routing_key: str) -> Sequence[str]:  # pragma: no cover - unused
        raise AssertionError("hash routing must not call Route")


@pytest.mark.parametrize(("key", "h104729", "h42"), X86_32)
def test_x86_32_vectors(key: str, h104729: int, h42: int) -> None:
    assert murmur3_x86_32(key.encode(), 104729) == h104729
    assert murmur3_x86_32(key.encode(), 42) == h42
    assert hash_key(key) == h104729


def test_x64_128_sanity_vector() -> None:
    assert murmur3_x64_128(b"foo", 0) == bytes.fromhex("6145f501578671e2877dba2be487af7e")


@settings(max_examples=300)
@given(data=st.binary(max_size=80), seed=st.integers(0, 2**32 - 1))
def test_against_mmh3(data: bytes, seed: int) -> None:
    assert murmur3_x86_32(data, seed) == mmh3.hash(data, seed, signed=False)
    assert murmur3_x64_128(data, seed) == mmh3.hash_bytes(data, seed)


def test_memoryview_and_bytearray_inputs() -> None:
    data = b"some routing key bytes"
    assert murmur3_x86_32(memoryview(data), SEED) == murmur3_x86_32(bytearray(data), SEED)
    assert murmur3_x64_128(memoryview(data), SEED) == murmur3_x64_128(data, SEED)


@pytest.mark.parametrize(("key", "partition"), sorted(JAVA_TABLE.items()))
def test_java_routing_table(key: str, partition: str) -> None:
    assert HashRoutingStrategy().route(key, _Meta(INVOICES)) == [partition]


@pytest.mark.parametrize(("key", "expected"), sorted(STANDARD_VS_RSTREAM.items()))
def test_standard_vs_rstream(key: str, expected: tuple[int, int]) -> None:
    parts = ["p-0", "p-1", "p-2"]
    standard, legacy = expected
    assert partition_index(key, 3) == standard
    assert legacy_partition_index(key, 3) == legacy
    assert HashRoutingStrategy().route(key, _Meta(parts)) == [parts[standard]]
    assert RstreamLegacyHashRoutingStrategy().route(key, _Meta(parts)) == [parts[legacy]]


@settings(max_examples=200)
@given(key=st.text(max_size=40), n=st.integers(1, 50))
def test_legacy_matches_rstream_formula(key: str, n: int) -> None:
    # rstream's own expression (UTF-16 = BOM + native order; this host is little-endian)
    digest = mmh3.hash_bytes(bytes(key, "UTF-16"), 104729)
    rstream_index = int.from_bytes(digest, "little", signed=False) % n
    assert legacy_partition_index(key, n) == rstream_index
    assert legacy_hash_key(key) < 2**128
    assert partition_index(key, n) == mmh3.hash(key.encode(), 104729, signed=False) % n


def test_no_partitions_routes_nowhere() -> None:
    assert HashRoutingStrategy().route("k", _Meta([])) == []
    assert RstreamLegacyHashRoutingStrategy().route("k", _Meta([])) == []
    with pytest.raises(ValueError):
        partition_index("k", 0)
    with pytest.raises(ValueError):
        legacy_partition_index("k", -1)


def test_unencodable_key_is_a_typed_error() -> None:
    with pytest.raises(UnicodeEncodeError):
        HashRoutingStrategy().route("\ud800", _Meta(INVOICES))


def test_protocol_and_registry() -> None:
    strategies = rabbitstream_hash.rabbitstream_routing_strategies()
    assert [s.name for s in strategies] == ["hash", "rstream-legacy-hash"]
    assert all(isinstance(s, PartitionRouter) for s in strategies)
    registry = build_registry(autoload=False, plugins=[rabbitstream_hash])
    assert isinstance(registry.routing_strategy("hash"), HashRoutingStrategy)
    assert isinstance(registry.routing_strategy("rstream-legacy-hash"), RstreamLegacyHashRoutingStrategy)


@settings(max_examples=300, deadline=None)
@given(key=st.text(max_size=40))
def test_accelerated_and_pure_hash_agree(key: str) -> None:
    data = key.encode("utf-8")
    assert rabbitstream_hash._murmur32(data, 104729) == murmur3_x86_32(data, 104729)


def test_implementation_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RABBITSTREAM_NO_EXTENSIONS", "1")
    assert rabbitstream_hash._accelerated() is None
    monkeypatch.delenv("RABBITSTREAM_NO_EXTENSIONS")
    assert rabbitstream_hash._accelerated() is not None  # mmh3 is installed for the tests
