"""Super-stream producer and consumer recovery: connections cut by a fault proxy mid-stream."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from rabbitstream import RouteType, SuperStreamConsumer, SuperStreamProducer
from rabbitstream._consumer._types import MessageContext
from rabbitstream.recovery import BackOffRecoveryStrategy
from rabbitstream.utils import ConfirmationStatus

pytestmark = pytest.mark.integration


def _kw(broker: Any) -> dict[str, Any]:
    return {"username": broker.username, "password": broker.password}


@pytest.fixture
async def ss3(broker: Any, unique_stream_name: str) -> AsyncIterator[str]:
    name = unique_stream_name
    async with SuperStreamProducer(
        broker.host, broker.port, super_stream=name, routing_extractor=str, **_kw(broker)
    ) as p:
        await p.create_super_stream(name, 3)
    yield name
    async with SuperStreamProducer(
        broker.host, broker.port, super_stream=name, routing_extractor=str, **_kw(broker)
    ) as p:
        await p.delete_super_stream(name, missing_ok=True)


async def test_producer_recovers_every_partition(broker: Any, fault_proxy: Any, ss3: str) -> None:
    total = 9_000
    statuses: list[ConfirmationStatus] = []
    done = asyncio.Event()
    infos: list[Any] = []

    def cb(status: ConfirmationStatus) -> None:
        statuses.append(status)
        if len(statuses) >= total:
            done.set()

    async with SuperStreamProducer(
        "127.0.0.1",
        fault_proxy.port,
        super_stream=ss3,
        routing=RouteType.Key,
        routing_extractor=lambda m: bytes(m)[:1],  # "0", "1", "2"
        publisher_name="ss-recov",
        recovery_strategy=BackOffRecoveryStrategy(True, jitter=0.1),
        on_close_handler=infos.append,
        max_unconfirmed=1000,
        **_kw(broker),
    ) as p:
        for i in range(total):
            await p.send(b"%d-%05d" % (i % 3, i), on_publish_confirm=cb)
            if i == 4_000:
                fault_proxy.cut(rst=True)
        await asyncio.wait_for(done.wait(), 60)
    assert infos, "on_close_handler was not called"
    assert all(s.is_confirmed for s in statuses), [s for s in statuses if not s.is_confirmed][:5]
    # every partition got its messages exactly once
    received: dict[str, list[bytes]] = {}
    got = asyncio.Event()

    async def on_message(message: bytes, ctx: MessageContext) -> None:
        received.setdefault(ctx.stream, []).append(bytes(message))
        if sum(map(len, received.values())) >= total:
            got.set()

    async with SuperStreamConsumer(broker.host, broker.port, super_stream=ss3, **_kw(broker)) as c:
        await c.subscribe(on_message)
        await asyncio.wait_for(got.wait(), 30)
        await asyncio.sleep(0.3)
    for k in range(3):
        bodies = received[f"{ss3}-{k}"]
        assert len(bodies) == len(set(bodies)) == total // 3
        assert all(b.startswith(b"%d-" % k) for b in bodies)


async def test_consumer_recovers_every_partition(broker: Any, mgmt: Any, ss3: str) -> None:
    received: list[tuple[str, int, bytes]] = []

    async def on_message(message: bytes, ctx: MessageContext) -> None:
        received.append((ctx.stream, ctx.offset, bytes(message)))

    async def publish(prefix: bytes, n: int) -> None:
        async with SuperStreamProducer(
            broker.host,
            broker.port,
            super_stream=ss3,
            routing=RouteType.Key,
            routing_extractor=lambda m: bytes(m)[:1],
            **_kw(broker),
        ) as p:
            await p.send_batch([b"%d-%s-%04d" % (i % 3, prefix, i) for i in range(n)])
            await p.send_wait(b"0-end-" + prefix)

    name = f"ss-recov-{ss3[-12:]}"
    infos: list[Any] = []
    consumer = SuperStreamConsumer(
        broker.host,
        broker.port,
        super_stream=ss3,
        connection_name=name,
        on_close_handler=infos.append,
        recovery_strategy=BackOffRecoveryStrategy(True, jitter=0.1),
        **_kw(broker),
    )
    async with consumer:
        await consumer.subscribe(on_message)
        await publish(b"a", 300)
        deadline = time.monotonic() + 20
        while len(received) < 301:
            assert time.monotonic() < deadline, f"only {len(received)} messages before the cut"
            await asyncio.sleep(0.05)
        await asyncio.to_thread(mgmt.wait_connection, client_name=name)
        closed = await asyncio.to_thread(mgmt.close_connections, client_name=name)
        assert closed >= 1
        await asyncio.sleep(0.5)
        await publish(b"b", 300)
        deadline = time.monotonic() + 30
        while len(received) < 602:
            assert time.monotonic() < deadline, f"only {len(received)} messages after the cut"
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
    assert infos and sorted(infos[0].streams) == [f"{ss3}-{k}" for k in range(3)]
    bodies = [b for _, _, b in received]
    assert len(bodies) == len(set(bodies)) == 602, "lost or duplicated messages"
    for k in range(3):
        offsets = [off for s, off, _ in received if s == f"{ss3}-{k}"]
        assert offsets == sorted(offsets)
