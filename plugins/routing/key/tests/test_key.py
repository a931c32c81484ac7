"""The ``"key"`` strategy delegates to ``metadata.routes`` (the broker's Route answer)."""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import rabbitstream_key
from rabbitstream.plugin import PartitionRouter, build_registry
from rabbitstream_key import KeyRoutingStrategy


class _Meta:
    def __init__(self) -> None:
        self.asked: list[str] = []

    @property
    def super_stream(self) -> str:
        return "orders"

    def partitions(self) -> Sequence[str]:
        return ["orders-k1", "orders-k2", "orders-k3"]

    async def routes(self, routing_key: str) -> Sequence[str]:
        self.asked.append(routing_key)
        return [f"orders-{routing_key}"] if routing_key in ("k1", "k2", "k3") else []


async def test_key_routing_awaits_routes() -> None:
    meta = _Meta()
    strategy = KeyRoutingStrategy()
    result = strategy.route("k2", meta)
    assert inspect.isawaitable(result)
    assert await result == ["orders-k2"]
    assert await strategy.route("nope", meta) == []
    assert meta.asked == ["k2", "nope"]


def test_registry() -> None:
    (strategy,) = rabbitstream_key.rabbitstream_routing_strategies()
    assert isinstance(strategy, PartitionRouter)
    assert strategy.name == "key"
    registry = build_registry(autoload=False, plugins=[rabbitstream_key])
    assert isinstance(registry.routing_strategy("key"), KeyRoutingStrategy)
