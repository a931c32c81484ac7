"""Unit tests of ``rabbitstream.superstream`` (no broker).

The metadata tests use an in-memory stand-in for the two Client RPCs they
need, only to count requests; broker behaviour is covered by
``tests/integration/test_superstream*.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from rabbitstream.exceptions import ClientError, StreamDoesNotExist
from rabbitstream.plugin import build_registry, hookimpl
from rabbitstream.superstream import (
    NO_ROUTE_FOUND,
    DefaultSuperstreamMetadata,
    HashRoutingMurmurStrategy,
    Metadata,
    NoRouteFound,
    PartitionList,
    PluginStrategyAdapter,
    RouteType,
    RoutingKeyRoutingStrategy,
    RoutingStrategy,
    SuperStreamCreationOption,
    resolve_plugin_metadata,
)

rabbitstream_hash = pytest.importorskip("rabbitstream_hash")
rabbitstream_key = pytest.importorskip("rabbitstream_key")
if getattr(rabbitstream_hash, "__file__", None) is None:  # namespace stub: plugin not installed editable
    pytest.skip("rabbitstream-hash is not importable (install the plugins)", allow_module_level=True)

REGISTRY = build_registry(autoload=False, plugins=[rabbitstream_hash, rabbitstream_key])
PARTS = ["invoices-01", "invoices-02", "invoices-03"]


class _Routes:
    """Stand-in for the two Client RPCs; binding key ``k`` → partition ``<ss>-k``."""

    def __init__(self, partitions: Sequence[str], bindings: dict[str, list[str]]) -> None:
        self._partitions = list(partitions)
        self._bindings = bindings
        self.calls: list[tuple[str, str]] = []
        self.gate: asyncio.Event | None = None

    async def partitions(self, super_stream: str) -> list[str]:
        self.calls.append(("partitions", super_stream))
        if not self._partitions:
            raise StreamDoesNotExist("no such super stream")
        return list(self._partitions)

    async def route(self, routing_key: str, super_stream: str) -> list[str]:
        self.calls.append(("route", routing_key))
        if self.gate is not None:
            await self.gate.wait()
        if routing_key == "boom":
            raise StreamDoesNotExist("gone")
        return list(self._bindings.get(routing_key, []))


def test_public_names() -> None:
    import rabbitstream

    assert RouteType.Hash.value == 0 and RouteType.Key.value == 1
    assert RouteType.Hash.strategy_name == "hash" and RouteType.Key.strategy_name == "key"
    assert rabbitstream.RouteType is RouteType
    assert rabbitstream.SuperStreamCreationOption is SuperStreamCreationOption
    opt = SuperStreamCreationOption(n_partitions=3)
    assert (opt.n_partitions, opt.binding_keys, opt.arguments) == (3, None, None)
    assert issubclass(NoRouteFound, ClientError)
    err = NoRouteFound("ss", "k")
    assert err.code == NO_ROUTE_FOUND == 10005 and "'k'" in str(err)


async def test_partition_list_is_awaitable() -> None:
    plain = PartitionList(["a", "b"])
    assert plain.loaded and await plain == ["a", "b"]
    assert (await plain) is plain

    async def load() -> PartitionList:
        return PartitionList(["x"])

    lazy = PartitionList((), load)
    assert not lazy.loaded and list(lazy) == []
    assert await lazy == ["x"]


async def test_metadata_partitions_loaded_once_and_awaitable() -> None:
    client = _Routes(PARTS, {})
    md = DefaultSuperstreamMetadata("invoices", client)
    assert md.super_stream == "invoices"
    assert await md.partitions() == PARTS  # rstream style: loads on await
    assert md.partitions() == PARTS  # plugin style: synchronous
    assert await md.partitions() == PARTS
    assert client.calls == [("partitions", "invoices")]


async def test_metadata_missing_super_stream() -> None:
    md = DefaultSuperstreamMetadata("nope", _Routes([], {}))
    with pytest.raises(StreamDoesNotExist):
        await md.load()


async def test_routes_cached_per_key() -> None:
    """rstream returned the first key's answer for every key; we must not."""
    client = _Routes(PARTS, {f"k{i}": [f"orders-k{i}"] for i in (1, 2, 3)})
    md = DefaultSuperstreamMetadata("orders", client)
    for _ in range(3):
        for i in (1, 2, 3):
            assert await md.routes(f"k{i}") == [f"orders-k{i}"]
    assert await md.routes("unbound") == []
    assert await md.routes("unbound") == []
    assert [c for c in client.calls if c[0] == "route"] == [
        ("route", "k1"),
        ("route", "k2"),
        ("route", "k3"),
        ("route", "unbound"),
    ]


async def test_routes_concurrent_lookups_share_one_request_and_errors() -> None:
    client = _Routes(PARTS, {"k1": ["orders-k1"]})
    client.gate = asyncio.Event()
    md = DefaultSuperstreamMetadata("orders", client)
    tasks = [asyncio.ensure_future(md.routes("k1")) for _ in range(5)]
    await asyncio.sleep(0)
    client.gate.set()
    assert await asyncio.gather(*tasks) == [["orders-k1"]] * 5
    assert client.calls == [("route", "k1")]

    errs = await asyncio.gather(*(md.routes("boom") for _ in range(3)), return_exceptions=True)
    assert all(isinstance(e, StreamDoesNotExist) for e in errs)
    with pytest.raises(StreamDoesNotExist):  # errors are not cached
        await md.routes("boom")


async def test_routes_cache_is_bounded() -> None:
    client = _Routes(PARTS, {})
    md = DefaultSuperstreamMetadata("orders", client, max_cached_routes=4)
    for i in range(10):
        await md.routes(str(i))
    assert len(md._routes) == 4
    await md.routes("9")
    await md.routes("0")
    assert len([c for c in client.calls if c == ("route", "0")]) == 2
    with pytest.raises(ValueError):
        DefaultSuperstreamMetadata("x", client, max_cached_routes=0)


async def test_hash_strategy_rstream_style() -> None:
    async def extractor(message: dict[str, str]) -> str:
        return message["id"]

    md = DefaultSuperstreamMetadata("invoices", _Routes(PARTS, {}))
    strategy = HashRoutingMurmurStrategy(extractor, registry=REGISTRY)
    assert isinstance(strategy, RoutingStrategy)
    assert await strategy.route({"id": "hello1"}, md) == ["invoices-02"]
    assert await strategy.route({"id": "hello4"}, md) == ["invoices-03"]
    # sync extractors work too; keys go through str()
    legacy = HashRoutingMurmurStrategy(lambda m: m, strategy="rstream-legacy-hash", registry=REGISTRY)
    parts = ["p-0", "p-1", "p-2"]
    md3 = DefaultSuperstreamMetadata("p", _Routes(parts, {}))
    assert await legacy.route("hello", md3) == ["p-1"]
    assert await legacy.route(0, md3) == ["p-0"]
    standard = HashRoutingMurmurStrategy(lambda m: m, registry=REGISTRY)
    assert await standard.route("hello", md3) == ["p-0"]
    assert await standard.route(6, md3) == ["p-0"]


async def test_key_strategy_rstream_style() -> None:
    client = _Routes(PARTS, {"k1": ["o-k1"], "k2": ["o-k2"], "k3": ["o-k3"]})
    md = DefaultSuperstreamMetadata("o", client)
    strategy = RoutingKeyRoutingStrategy(lambda m: m["key"], registry=REGISTRY)
    got = [await strategy.route({"key": k}, md) for k in ("k1", "k2", "k3", "k1")]
    assert got == [["o-k1"], ["o-k2"], ["o-k3"], ["o-k1"]]


async def test_user_metadata_with_async_partitions() -> None:
    class MyMetadata(Metadata):
        super_stream = "mine"

        async def partitions(self) -> list[str]:
            return PARTS

        async def routes(self, routing_key: str) -> list[str]:
            return [PARTS[0]]

    view = await resolve_plugin_metadata(MyMetadata())
    assert view.partitions() == PARTS and view.super_stream == "mine"
    assert await view.routes("x") == [PARTS[0]]
    strategy = HashRoutingMurmurStrategy(lambda m: m, registry=REGISTRY)
    assert await strategy.route("hello10", MyMetadata()) == ["invoices-03"]
    assert await RoutingKeyRoutingStrategy(lambda m: m, registry=REGISTRY).route("z", MyMetadata()) == [
        "invoices-01"
    ]


async def test_custom_plugin_strategy_by_name() -> None:
    class FirstLetter:
        name = "first-letter"

        def route(self, routing_key: str, metadata: object) -> list[str]:
            return [f"ss-{routing_key[:1]}"]

    class Plugin:
        @hookimpl
        def rabbitstream_routing_strategies(self) -> list[FirstLetter]:
            return [FirstLetter()]

    registry = build_registry(autoload=False, plugins=[Plugin()])
    adapter = PluginStrategyAdapter(lambda m: m, "first-letter", registry=registry)
    md = DefaultSuperstreamMetadata("ss", _Routes(["ss-a", "ss-b"], {}))
    assert await adapter.route("banana", md) == ["ss-b"]
    from rabbitstream.plugin import PluginNotFoundError

    with pytest.raises(PluginNotFoundError):
        PluginStrategyAdapter(lambda m: m, "nope", registry=registry)


async def test_legacy_strategy_matches_the_rstream_library() -> None:
    """Keys placed by rstream 1.1.1's own HashRoutingMurmurStrategy land on the same partition."""
    rstream_superstream = pytest.importorskip("rstream.superstream")
    parts = [f"orders-{i}" for i in range(5)]

    class RstreamMetadata(rstream_superstream.Metadata):  # type: ignore[misc,name-defined]
        async def partitions(self) -> list[str]:
            return parts

        async def routes(self, routing_key: str) -> list[str]:
            return []

    async def extractor(message: str) -> str:
        return message

    theirs = rstream_superstream.HashRoutingMurmurStrategy(extractor)
    ours = HashRoutingMurmurStrategy(extractor, strategy="rstream-legacy-hash", registry=REGISTRY)
    standard = HashRoutingMurmurStrategy(extractor, registry=REGISTRY)
    md = DefaultSuperstreamMetadata("orders", _Routes(parts, {}))
    differ = 0
    for key in ["hello", "italy", "0", "ключ", "🐇", *(f"customer-{i}" for i in range(200))]:
        expected = await theirs.route(key, RstreamMetadata())
        assert await ours.route(key, md) == expected
        differ += await standard.route(key, md) != expected
    assert differ > 100  # the standard formula really is different
