"""Producer against a real broker: every method and option (recovery tests: test_producer_recovery.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from _producer_helpers import ConfirmLog, read_stream
from rabbitstream import Client, ConfirmationStatus, Producer, RawMessage
from rabbitstream._producer._producer import EnqueueTimeoutError, ProducerClosedError
from rabbitstream.exceptions import FrameTooLargeError, StreamAlreadyExists, StreamDoesNotExist
from rabbitstream.plugin import get_registry

pytestmark = pytest.mark.integration


def make(broker: Any, **kw: Any) -> Producer:
    return Producer(broker.host, broker.port, username=broker.username, password=broker.password, **kw)


@pytest.fixture
async def producer(broker: Any, unique_stream_name: str) -> AsyncIterator[Producer]:
    async with make(broker) as p:
        await p.create_stream(unique_stream_name)
        yield p
        await p.delete_stream(unique_stream_name, missing_ok=True)


async def test_send_with_confirms(producer: Producer, broker: Any, unique_stream_name: str) -> None:
    log = ConfirmLog()
    for i in range(2000):
        await producer.send(unique_stream_name, b"m%d" % i, on_publish_confirm=log.cb)
    await log.wait(2000)
    assert sorted(log.confirmed) == list(range(1, 2001))
    assert log.failed == []
    records = await read_stream(broker, unique_stream_name, 2000)
    assert records == [b"m%d" % i for i in range(2000)]


async def test_send_without_callback_flushes_on_linger(
    producer: Producer, broker: Any, unique_stream_name: str
) -> None:
    await producer.send(unique_stream_name, b"one")
    await producer.send(unique_stream_name, RawMessage(b"two"))
    records = await read_stream(broker, unique_stream_name, 2, timeout=5)
    assert records == [b"one", b"two"]
    await asyncio.sleep(0.2)
    assert producer.unconfirmed(unique_stream_name) == 0


async def test_async_callback(producer: Producer, unique_stream_name: str) -> None:
    seen: list[int] = []
    done = asyncio.Event()

    async def cb(status: ConfirmationStatus) -> None:
        await asyncio.sleep(0)
        seen.append(status.message_id)
        if len(seen) == 300:
            done.set()

    ids = await producer.send_batch(unique_stream_name, [b"x"] * 300, on_publish_confirm=cb)
    assert ids == list(range(1, 301))
    await asyncio.wait_for(done.wait(), 10)
    assert seen == ids


async def test_send_batch_ids_and_errors(broker: Any, producer: Producer, unique_stream_name: str) -> None:
    assert await producer.send_batch(unique_stream_name, [b"a", b"b"]) == [1, 2]
    await producer.send(unique_stream_name, b"c")
    assert await producer.send_batch(unique_stream_name, [b"d"]) == [4]  # buffered "c" went first (id 3)
    with pytest.raises(ValueError):
        await producer.send_batch(unique_stream_name, [])
    assert await read_stream(broker, unique_stream_name, 4) == [b"a", b"b", b"c", b"d"]


async def test_send_batch_after_close_raises(broker: Any, unique_stream_name: str) -> None:
    p = make(broker)
    await p.start()
    await p.create_stream(unique_stream_name)
    await p.close()
    with pytest.raises(ProducerClosedError):  # as send() (#14)
        await p.send_batch(unique_stream_name, [b"x"])
    async with p:  # close then start again
        assert await p.send_batch(unique_stream_name, [b"y"]) == [1]
        await p.delete_stream(unique_stream_name)


async def test_send_wait(producer: Producer, unique_stream_name: str) -> None:
    assert await producer.send_wait(unique_stream_name, b"a") == 1
    assert await producer.send_wait(unique_stream_name, RawMessage(b"b")) == 2


async def test_amqp_messages(producer: Producer, broker: Any, unique_stream_name: str) -> None:
    try:
        from rabbitstream.amqp import AMQPMessage, amqp_decoder
    except Exception as exc:  # plugin not installed
        pytest.skip(f"AMQP codec unavailable: {exc}")
    msgs = [AMQPMessage(body=b"hello %d" % i) for i in range(10)]
    assert await producer.send_batch(unique_stream_name, msgs) == list(range(1, 11))
    records = await read_stream(broker, unique_stream_name, 10)
    assert [amqp_decoder(r).body for r in records] == [b"hello %d" % i for i in range(10)]


@pytest.mark.parametrize("compression", [0, "gzip", "snappy", "lz4", "zstd"])
async def test_send_sub_entry(
    compression: int | str, producer: Producer, broker: Any, unique_stream_name: str
) -> None:
    if compression != 0:
        names = {c.name for c in get_registry().compression.values()}
        if compression not in names:
            pytest.skip(f"compression {compression} not installed")
    log = ConfirmLog()
    for batch in range(3):
        msgs = [b"sub-%d-%d" % (batch, i) for i in range(50)]
        sid = await producer.send_sub_entry(unique_stream_name, msgs, compression, on_publish_confirm=log.cb)
        assert sid == (batch + 1) * 50
    await log.wait(3)
    assert sorted(log.confirmed) == [50, 100, 150]  # one confirm per sub-entry
    await asyncio.sleep(0.1)
    assert producer.unconfirmed(unique_stream_name) == 0
    records = await read_stream(broker, unique_stream_name, 150)
    assert records == [b"sub-%d-%d" % (b, i) for b in range(3) for i in range(50)]


async def test_sub_entry_refused_with_filtering(broker: Any, unique_stream_name: str) -> None:
    async with make(broker, filter_value_extractor=lambda m: "x") as p:
        with pytest.raises(ValueError):
            await p.send_sub_entry(unique_stream_name, [b"a"])


async def test_dedup_publisher_name(broker: Any, unique_stream_name: str) -> None:
    async with make(broker) as p:
        await p.create_stream(unique_stream_name)
        assert await p.send_batch(unique_stream_name, [b"a", b"b", b"c"], publisher_name="pub") == [1, 2, 3]
        await p.send_wait(unique_stream_name, b"d", publisher_name="pub")
    async with make(broker) as p:
        # continues at last + 1
        assert await p.send_wait(unique_stream_name, b"e", publisher_name="pub") == 5
        # caller-set ids: an already stored id is confirmed but dropped by the broker
        log = ConfirmLog()
        await p.send(unique_stream_name, RawMessage(b"dup", publishing_id=2), "pub", log.cb)
        await p.send(unique_stream_name, RawMessage(b"f", publishing_id=10), "pub", log.cb)
        await log.wait(2)
        assert sorted(log.confirmed) == [2, 10]
        assert await p.send_wait(unique_stream_name, b"g", publisher_name="pub") == 11
    assert await read_stream(broker, unique_stream_name, 7) == [b"a", b"b", b"c", b"d", b"e", b"f", b"g"]
    async with make(broker) as p:
        await p.delete_stream(unique_stream_name)


async def test_several_named_publishers_one_stream(
    broker: Any, producer: Producer, unique_stream_name: str
) -> None:
    assert await producer.send_batch(unique_stream_name, [b"a1", b"a2"], publisher_name="A") == [1, 2]
    assert await producer.send_batch(unique_stream_name, [b"b1"], publisher_name="B") == [1]
    assert await producer.send_wait(unique_stream_name, b"a3", publisher_name="A") == 3
    assert sorted(await read_stream(broker, unique_stream_name, 4)) == [b"a1", b"a2", b"a3", b"b1"]


async def test_filter_values(broker: Any, unique_stream_name: str) -> None:
    async def extractor(msg: Any) -> str:
        return "red" if bytes(msg).startswith(b"r") else "blue"

    async with make(broker, filter_value_extractor=extractor) as p:
        await p.create_stream(unique_stream_name)
        log = ConfirmLog()
        for i in range(20):
            await p.send(unique_stream_name, b"r%d" % i if i % 2 else b"b%d" % i, on_publish_confirm=log.cb)
        ids = await p.send_batch(unique_stream_name, [b"r-batch", b"b-batch"], on_publish_confirm=log.cb)
        assert ids == [21, 22]
        await log.wait(22)
        assert log.failed == []
        assert len(await read_stream(broker, unique_stream_name, 22)) == 22
        await p.delete_stream(unique_stream_name)


async def test_frame_max_8192_large_batch(broker: Any, unique_stream_name: str) -> None:
    async with make(broker, frame_max=8192) as p:
        await p.create_stream(unique_stream_name)
        log = ConfirmLog()
        batch = [b"payload-%06d" % i for i in range(100_000)]
        ids = await p.send_batch(unique_stream_name, batch, on_publish_confirm=log.cb)
        assert ids == list(range(1, 100_001))
        await log.wait(100_000, timeout=60)
        assert len(log.confirmed) == 100_000 and log.failed == []
        stats = await p.stream_stats(unique_stream_name)
        assert stats["last_chunk_id"] >= 0
        with pytest.raises(FrameTooLargeError):
            await p.send(unique_stream_name, b"x" * 9000)
        with pytest.raises(FrameTooLargeError):
            await p.send_batch(unique_stream_name, [b"ok", b"x" * 9000])
        await p.delete_stream(unique_stream_name)


async def test_back_pressure_bound(broker: Any, unique_stream_name: str) -> None:
    async with make(broker, max_unconfirmed=300, batch_size=64) as p:
        await p.create_stream(unique_stream_name)
        peak = 0
        log = ConfirmLog()
        for i in range(5000):
            await p.send(unique_stream_name, b"bp%d" % i, on_publish_confirm=log.cb)
            peak = max(peak, p.unconfirmed(unique_stream_name))
        ids = await p.send_batch(unique_stream_name, [b"z"] * 2000, on_publish_confirm=log.cb)
        peak = max(peak, p.unconfirmed(unique_stream_name))
        assert len(ids) == 2000
        await log.wait(7000)
        assert peak <= 300
        assert len(set(log.confirmed)) == 7000
        await p.delete_stream(unique_stream_name)


async def test_stream_management(broker: Any, unique_stream_name: str) -> None:
    async with make(broker) as p:
        assert not await p.stream_exists(unique_stream_name)
        await p.create_stream(unique_stream_name, arguments={"max-length-bytes": 10_000_000})
        with pytest.raises(StreamAlreadyExists):
            await p.create_stream(unique_stream_name, arguments={"max-length-bytes": 10_000_000})
        await p.create_stream(unique_stream_name, arguments={"max-length-bytes": 10_000_000}, exists_ok=True)
        assert await p.stream_exists(unique_stream_name)
        client = await p.default_client
        assert isinstance(client, Client)
        meta = await p.metadata([unique_stream_name])
        assert meta[unique_stream_name].leader is not None
        assert "first_chunk_id" in await p.stream_stats(unique_stream_name)
        await p.delete_stream(unique_stream_name)
        with pytest.raises(StreamDoesNotExist):
            await p.delete_stream(unique_stream_name)
        await p.delete_stream(unique_stream_name, missing_ok=True)
        with pytest.raises(StreamDoesNotExist):
            await p.send_wait(unique_stream_name, b"nowhere")


async def test_confirm_timeout_and_enqueue_timeout(
    broker: Any, fault_proxy: Any, unique_stream_name: str
) -> None:
    p = Producer(
        "127.0.0.1",
        fault_proxy.port,
        username=broker.username,
        password=broker.password,
        confirm_timeout=0.5,
        max_unconfirmed=10,
        enqueue_timeout=0.3,
    )
    await p.start()
    await p.create_stream(unique_stream_name)
    await p.send_wait(unique_stream_name, b"warm-up")
    fault_proxy.blackhole(True)
    log = ConfirmLog()
    for i in range(10):
        await p.send(unique_stream_name, b"t%d" % i, on_publish_confirm=log.cb)
    with pytest.raises(EnqueueTimeoutError):
        await p.send(unique_stream_name, b"one too many")
    await log.wait(10, timeout=5)
    assert {code for _, code in log.failed} == {10004}
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await p.close()  # broker unreachable: must not hang
    assert loop.time() - t0 < 15
    fault_proxy.blackhole(False)
    async with make(broker) as q:
        await q.delete_stream(unique_stream_name, missing_ok=True)


async def test_metadata_update_on_delete(broker: Any, unique_stream_name: str) -> None:
    infos: list[Any] = []
    async with make(broker, on_close_handler=infos.append) as p:
        await p.create_stream(unique_stream_name)
        await p.send_wait(unique_stream_name, b"a")
        other = await Client.connect(
            broker.host, broker.port, username=broker.username, password=broker.password
        )
        try:
            await other.delete_stream(unique_stream_name)
        finally:
            await other.close()
        for _ in range(100):
            if infos:
                break
            await asyncio.sleep(0.05)
        assert infos and infos[0].reason == "Metadata Update" and infos[0].streams == [unique_stream_name]
