"""Consumer recovery: the connection is cut mid-stream (fault proxy); no gap, no duplicate."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from _consumer_helpers import fill, make_consumer, wait_for
from rabbitstream import BackOffRecoveryStrategy, Consumer
from rabbitstream.exceptions import ConnectionClosed

pytestmark = pytest.mark.integration


def via_proxy(broker: Any, proxy: Any, **kw: Any) -> Consumer:
    # load_balancer_mode: consuming connections go through the given address (the proxy) too
    return Consumer(
        "127.0.0.1",
        proxy.port,
        username=broker.username,
        password=broker.password,
        load_balancer_mode=True,
        **kw,
    )


async def _create_and_fill(broker: Any, stream: str, total: int) -> None:
    async with make_consumer(broker) as c:
        await c.create_stream(stream)
    await fill(broker, stream, [b"r%d" % i for i in range(total)], batch=100)


@pytest.mark.parametrize("rst", [True, False])
async def test_cut_mid_stream_no_gap_no_duplicate(
    broker: Any, fault_proxy: Any, unique_stream_name: str, rst: bool
) -> None:
    total = 6000
    await _create_and_fill(broker, unique_stream_name, total)
    offsets: list[int] = []
    infos: list[Any] = []

    async def cb(msg: bytes, ctx: Any) -> None:
        assert msg == b"r%d" % ctx.offset
        offsets.append(ctx.offset)
        if ctx.offset % 20 == 0:
            await asyncio.sleep(0.001)  # slow enough to be cut mid-stream

    strategy = BackOffRecoveryStrategy(True, jitter=0.1)
    async with via_proxy(broker, fault_proxy, recovery_strategy=strategy, on_close_handler=infos.append) as c:
        await c.subscribe(unique_stream_name, cb, initial_credit=2)
        before = fault_proxy.total_connections
        await wait_for(lambda: len(offsets) >= 1500)
        fault_proxy.cut(rst=rst)
        await wait_for(lambda: len(offsets) >= 3500, timeout=30)
        fault_proxy.cut(rst=rst)
        await wait_for(lambda: len(offsets) >= total, timeout=30)
        await asyncio.sleep(0.3)
        assert fault_proxy.total_connections > before
    assert offsets == list(range(total))
    assert infos and infos[0].reason == "Connection Closed" and unique_stream_name in infos[0].streams
    async with make_consumer(broker) as c:
        await c.delete_stream(unique_stream_name)


async def test_cut_without_recovery_notifies_and_ends_iteration(
    broker: Any, fault_proxy: Any, unique_stream_name: str
) -> None:
    await _create_and_fill(broker, unique_stream_name, 500)
    infos: list[Any] = []
    got: list[int] = []
    async with via_proxy(broker, fault_proxy, on_close_handler=infos.append) as c:
        it = c.iterate(unique_stream_name, initial_credit=1)
        with pytest.raises(ConnectionClosed):
            async for _msg, ctx in it:
                got.append(ctx.offset)
                if len(got) == 50:
                    fault_proxy.cut()
        assert got == list(range(len(got)))
        assert infos and infos[0].reason == "Connection Closed"
        assert not c._subs  # the subscription is gone: the stream can be subscribed again
    async with make_consumer(broker) as c:
        await c.delete_stream(unique_stream_name)


async def test_stream_deleted_metadata_update(broker: Any, unique_stream_name: str) -> None:
    await _create_and_fill(broker, unique_stream_name, 10)
    infos: list[Any] = []
    strategy = BackOffRecoveryStrategy(True, jitter=0.1)
    async with make_consumer(broker, recovery_strategy=strategy, on_close_handler=infos.append) as c:
        got: list[int] = []
        await c.subscribe(unique_stream_name, lambda m, ctx: got.append(ctx.offset))
        await wait_for(lambda: len(got) == 10)
        async with make_consumer(broker) as other:
            await other.delete_stream(unique_stream_name)
        await wait_for(lambda: bool(infos) and not c._subs, timeout=15)
        assert infos[0].reason == "Metadata Update" and infos[0].streams == [unique_stream_name]
