"""Issue #14 against the real broker (through the fault proxy where the network must misbehave):
no send ends with neither an exception nor its callback, duplicate ids as rstream, bounded close,
a chunk needing a missing compression plugin fails the subscription."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

import pytest
from _producer_helpers import ConfirmLog
from rabbitstream import BackOffRecoveryStrategy, Client, Consumer, Producer, RawMessage
from rabbitstream._consumer._types import OffsetTracking
from rabbitstream._producer._producer import ProducerClosedError
from rabbitstream.constants import ConsumerOffsetSpecification, OffsetType
from rabbitstream.exceptions import ClientError
from rabbitstream.plugin import PluginNotFoundError, get_registry

pytestmark = pytest.mark.integration


def direct(broker: Any, **kw: Any) -> Producer:
    return Producer(broker.host, broker.port, username=broker.username, password=broker.password, **kw)


def via_proxy(broker: Any, proxy: Any, **kw: Any) -> Producer:
    kw.setdefault("recovery_strategy", BackOffRecoveryStrategy(True, jitter=0.1))
    return Producer("127.0.0.1", proxy.port, username=broker.username, password=broker.password, **kw)


async def _third_send_waiting(p: Producer, stream: str, log: ConfirmLog, proxy: Any) -> asyncio.Future[None]:
    await p.send_wait(stream, b"first")
    proxy.blackhole(True)  # no confirm comes back from here on
    await p.send(stream, b"m1", on_publish_confirm=log.cb)
    await p.send(stream, b"m2", on_publish_confirm=log.cb)
    third = asyncio.ensure_future(p.send(stream, b"m3", on_publish_confirm=log.cb))
    await asyncio.sleep(0.2)
    assert not third.done()  # waiting for room
    return third


async def test_send_waiting_for_room_then_close_raises(
    broker: Any, fault_proxy: Any, unique_stream_name: str
) -> None:
    async with direct(broker) as admin:
        await admin.create_stream(unique_stream_name)
    log = ConfirmLog()
    p = via_proxy(broker, fault_proxy, max_unconfirmed=2)
    await p.start()
    try:
        third = await _third_send_waiting(p, unique_stream_name, log, fault_proxy)
        await asyncio.wait_for(p.close(), 20)
        with pytest.raises(ProducerClosedError):
            await third
        assert sorted(log.failed) == [(2, 10003), (3, 10003)] and log.confirmed == []
    finally:
        fault_proxy.blackhole(False)
        async with direct(broker) as admin:
            await admin.delete_stream(unique_stream_name, missing_ok=True)


async def test_send_waiting_for_room_then_recovery_gives_up_raises(
    broker: Any, fault_proxy: Any, unique_stream_name: str
) -> None:
    async with direct(broker) as admin:
        await admin.create_stream(unique_stream_name)
    log = ConfirmLog()
    strategy = BackOffRecoveryStrategy(True, jitter=0, initial_delay=0.05, max_retries=2)
    # load-balancer mode: every connection (the recovery's too) goes through the proxy
    p = via_proxy(broker, fault_proxy, max_unconfirmed=2, recovery_strategy=strategy, load_balancer_mode=True)
    await p.start()
    try:
        third = await _third_send_waiting(p, unique_stream_name, log, fault_proxy)
        fault_proxy.refuse(True)  # no reconnection possible: recovery gives up
        fault_proxy.cut(rst=True)
        fault_proxy.blackhole(False)
        with pytest.raises(ClientError):
            await asyncio.wait_for(third, 30)
        assert sorted(log.failed) == [(2, -1), (3, -1)]
    finally:
        fault_proxy.refuse(False)
        fault_proxy.blackhole(False)
        await asyncio.wait_for(p.close(), 20)
        async with direct(broker) as admin:
            await admin.delete_stream(unique_stream_name, missing_ok=True)


@pytest.mark.parametrize("name", [None, "dup-publisher"])
async def test_same_id_twice_both_callbacks_confirmed(
    broker: Any, unique_stream_name: str, name: str | None
) -> None:
    """rstream's ``test_send_async_confirmation_on_different_callbacks``."""
    first = ConfirmLog()
    second = ConfirmLog()
    async with direct(broker) as p:
        await p.create_stream(unique_stream_name)
        for i in (1, 2, 3):
            await p.send(unique_stream_name, RawMessage(b"a", publishing_id=i), name, first.cb)
        for i in (1, 2, 3):
            await p.send(unique_stream_name, RawMessage(b"b", publishing_id=i), name, second.cb)
        await first.wait(3, timeout=10)
        await second.wait(3, timeout=10)
        assert sorted(first.confirmed) == [1, 2, 3] and sorted(second.confirmed) == [1, 2, 3]
        assert p.unconfirmed(unique_stream_name, name) == 0
        await p.delete_stream(unique_stream_name)


async def test_client_close_bounded_when_the_peer_stops_reading(broker: Any, fault_proxy: Any) -> None:
    client = await Client.connect(
        "127.0.0.1", fault_proxy.port, username=broker.username, password=broker.password
    )
    fault_proxy.blackhole(True)
    try:
        junk = b"\0" * (1 << 20)
        for _ in range(64):
            client.write(junk)  # never read: fills the proxy's and the kernel's buffers
            await asyncio.sleep(0)
        t0 = time.monotonic()
        await asyncio.wait_for(client.close(timeout=1.0), 15)
        assert client.is_closed
        assert time.monotonic() - t0 < 5
    finally:
        fault_proxy.blackhole(False)


async def test_missing_compression_plugin_fails_subscription(broker: Any, unique_stream_name: str) -> None:
    async with direct(broker) as p:
        await p.create_stream(unique_stream_name)
        await p.send_wait(unique_stream_name, b"a0")
        await p.send_wait(unique_stream_name, b"a1")
        await p.send_sub_entry(unique_stream_name, [b"z2", b"z3", b"z4"], compression_type=1)
        await p.send_wait(unique_stream_name, b"b5")
    no_gzip = dataclasses.replace(get_registry(), compression={})
    got: list[tuple[int, bytes]] = []
    consumer = Consumer(
        broker.host, broker.port, username=broker.username, password=broker.password, registry=no_gzip
    )
    await consumer.start()
    try:
        await consumer.subscribe(
            unique_stream_name,
            lambda m, c: got.append((c.offset, m)),
            offset_specification=ConsumerOffsetSpecification(OffsetType.FIRST),
            subscriber_name="ref14",
            offset_tracking=OffsetTracking(messages=1, seconds=0.05),
        )
        with pytest.raises(PluginNotFoundError, match="rabbitstream-gzip"):
            await asyncio.wait_for(consumer.run(), 10)
        assert got == [(0, b"a0"), (1, b"a1")]  # before the fix: a0, a1, b5
        await asyncio.sleep(0.2)
        assert await consumer.query_offset(unique_stream_name, "ref14") == 1  # never past 1
    finally:
        await consumer.close()
        async with direct(broker) as admin:
            await admin.delete_stream(unique_stream_name)
