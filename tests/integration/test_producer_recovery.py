"""Producer recovery: connection cut while publishing with a name; nothing confirmed is lost or doubled."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from _producer_helpers import ConfirmLog, read_stream
from rabbitstream import BackOffRecoveryStrategy, Producer

pytestmark = pytest.mark.integration


def via_proxy(broker: Any, proxy: Any, **kw: Any) -> Producer:
    return Producer(
        "127.0.0.1",
        proxy.port,
        username=broker.username,
        password=broker.password,
        recovery_strategy=BackOffRecoveryStrategy(True, jitter=0.1),
        **kw,
    )


@pytest.mark.parametrize("rst", [True, False])
async def test_cut_while_publishing_named(
    broker: Any, fault_proxy: Any, unique_stream_name: str, rst: bool
) -> None:
    infos: list[Any] = []
    total = 30_000
    log = ConfirmLog()
    async with via_proxy(broker, fault_proxy, on_close_handler=infos.append, max_unconfirmed=2000) as p:
        await p.create_stream(unique_stream_name)
        for i in range(total):
            await p.send(unique_stream_name, b"r-%06d" % i, publisher_name="recov", on_publish_confirm=log.cb)
            if i in (8_000, 20_000):
                fault_proxy.cut(rst=rst)
        await log.wait(total, timeout=60)
    assert infos and infos[0].reason == "Connection Closed" and unique_stream_name in infos[0].streams
    assert fault_proxy.total_connections >= 4  # reconnected after the cuts
    assert log.failed == []
    assert sorted(log.confirmed) == list(range(1, total + 1))
    records = await read_stream(broker, unique_stream_name, total, timeout=30)
    assert len(records) == len(set(records)), "duplicates in the stream"
    assert set(records) == {b"r-%06d" % i for i in range(total)}
    async with Producer(broker.host, broker.port, username=broker.username, password=broker.password) as q:
        await q.delete_stream(unique_stream_name)


async def test_cut_during_send_batch(broker: Any, fault_proxy: Any, unique_stream_name: str) -> None:
    log = ConfirmLog()
    async with via_proxy(broker, fault_proxy, max_unconfirmed=5000) as p:
        await p.create_stream(unique_stream_name)
        sent = 0
        for round_ in range(40):
            ids = await p.send_batch(
                unique_stream_name,
                [b"b-%02d-%03d" % (round_, i) for i in range(500)],
                publisher_name="batcher",
                on_publish_confirm=log.cb,
            )
            sent += len(ids)
            if round_ == 15:
                fault_proxy.cut(rst=True)
        await log.wait(sent, timeout=60)
    confirmed = set(log.confirmed)
    assert len(confirmed) == len(log.confirmed)
    records = await read_stream(broker, unique_stream_name, sent, timeout=30)
    assert len(records) == len(set(records))
    assert len(records) >= len(confirmed)
    async with Producer(broker.host, broker.port, username=broker.username, password=broker.password) as q:
        await q.delete_stream(unique_stream_name)


async def test_recovery_disabled_reports_loss(broker: Any, fault_proxy: Any, unique_stream_name: str) -> None:
    infos: list[Any] = []
    log = ConfirmLog()
    p = Producer(
        "127.0.0.1",
        fault_proxy.port,
        username=broker.username,
        password=broker.password,
        recovery_strategy=BackOffRecoveryStrategy(False),
        on_close_handler=infos.append,
    )
    await p.start()
    await p.create_stream(unique_stream_name)
    await p.send_wait(unique_stream_name, b"first")
    fault_proxy.blackhole(True)
    for i in range(10):
        await p.send(unique_stream_name, b"x%d" % i, on_publish_confirm=log.cb)
    await p.flush()
    fault_proxy.cut(rst=True)
    fault_proxy.blackhole(False)
    await log.wait(10, timeout=10)
    assert {code for _, code in log.failed} == {-1}
    assert infos and infos[0].reason == "Connection Closed"
    await asyncio.wait_for(p.close(), 15)
    async with Producer(broker.host, broker.port, username=broker.username, password=broker.password) as q:
        await q.delete_stream(unique_stream_name)
