"""Consumer against a real broker: offsets, tracking, SAC, filtering, sub-entries, iteration."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from _consumer_helpers import Collector, fill, fill_chunks, make_consumer, make_producer, wait_for
from rabbitstream import Consumer, ConsumerOffsetSpecification, FilterConfiguration, OffsetType
from rabbitstream.compression import CompressionType
from rabbitstream.exceptions import OffsetNotFound, StreamAlreadySubscribed, StreamDoesNotExist
from rabbitstream.plugin import PluginNotFoundError, get_registry

pytestmark = pytest.mark.integration


@pytest.fixture
async def consumer(broker: Any, unique_stream_name: str) -> AsyncIterator[Consumer]:
    async with make_consumer(broker) as c:
        await c.create_stream(unique_stream_name)
        yield c
        await c.delete_stream(unique_stream_name, missing_ok=True)


async def create(broker: Any, stream: str) -> None:
    async with make_consumer(broker) as c:
        await c.create_stream(stream)


def spec(t: OffsetType, offset: int | None = None) -> ConsumerOffsetSpecification:
    return ConsumerOffsetSpecification(t, offset)


# --------------------------------------------------------------------------- offsets


async def test_first_default(consumer: Consumer, broker: Any, unique_stream_name: str) -> None:
    msgs = [b"m%d" % i for i in range(1000)]
    await fill(broker, unique_stream_name, msgs, batch=300)
    col = Collector()
    sid = await consumer.subscribe(unique_stream_name, col)
    assert sid == 0
    await wait_for(lambda: len(col) >= 1000)
    assert col.messages == msgs and col.offsets == list(range(1000))
    ctx = col.contexts[0]
    assert ctx.stream == unique_stream_name and ctx.subscriber_id == 0 and ctx.consumer is consumer
    assert abs(ctx.timestamp - time.time() * 1000) < 120_000
    assert ctx.committed_chunk_id is not None  # Deliver v2 negotiated with 4.x


async def test_offset_trims_inside_first_chunk(
    consumer: Consumer, broker: Any, unique_stream_name: str
) -> None:
    await fill(broker, unique_stream_name, [b"m%d" % i for i in range(200)], batch=200)
    col = Collector()
    await consumer.subscribe(unique_stream_name, col, offset_specification=spec(OffsetType.OFFSET, 137))
    await wait_for(lambda: len(col) >= 63)
    await asyncio.sleep(0.2)
    assert col.offsets == list(range(137, 200)) and col.messages[0] == b"m137"


async def test_last(consumer: Consumer, broker: Any, unique_stream_name: str) -> None:
    await fill_chunks(broker, unique_stream_name, 3, 10)
    col = Collector()
    await consumer.subscribe(unique_stream_name, col, offset_specification=spec(OffsetType.LAST))
    await wait_for(lambda: len(col) >= 1 and col.offsets[-1] == 29)
    assert col.offsets[0] > 0 and col.offsets == list(range(col.offsets[0], 30))


async def test_next(consumer: Consumer, broker: Any, unique_stream_name: str) -> None:
    await fill(broker, unique_stream_name, [b"old"] * 20)
    col = Collector()
    await consumer.subscribe(unique_stream_name, col, offset_specification=spec(OffsetType.NEXT))
    await asyncio.sleep(0.3)
    assert len(col) == 0
    await fill(broker, unique_stream_name, [b"new%d" % i for i in range(5)])
    await wait_for(lambda: len(col) >= 5)
    assert col.messages == [b"new%d" % i for i in range(5)] and col.offsets == list(range(20, 25))


async def test_timestamp_ms(consumer: Consumer, broker: Any, unique_stream_name: str) -> None:
    for _ in range(4):
        await fill(broker, unique_stream_name, [b"early"] * 10)
        await asyncio.sleep(0.3)
    await asyncio.sleep(1.0)
    cut = int(time.time() * 1000)
    await fill(broker, unique_stream_name, [b"late%d" % i for i in range(10)])
    col = Collector()
    await consumer.subscribe(unique_stream_name, col, offset_specification=spec(OffsetType.TIMESTAMP, cut))
    await wait_for(lambda: len(col) >= 10 and col.offsets[-1] == 49)
    assert col.messages[-10:] == [b"late%d" % i for i in range(10)]
    assert col.offsets[0] >= 30  # the early chunks (older than the timestamp) are skipped


# --------------------------------------------------------------------------- offsets storage


async def test_store_and_query_offset(consumer: Consumer, unique_stream_name: str) -> None:
    with pytest.raises(OffsetNotFound):
        await consumer.query_offset(unique_stream_name, "nobody")
    with pytest.raises(ValueError):
        await consumer.query_offset(unique_stream_name, "")
    await consumer.store_offset(unique_stream_name, "ref", 42)

    async def stored() -> int:
        try:
            return await consumer.query_offset(unique_stream_name, "ref")
        except OffsetNotFound:
            return -1

    for _ in range(50):
        if await stored() == 42:
            break
        await asyncio.sleep(0.05)
    assert await stored() == 42


async def test_auto_offset_tracking_on_close(broker: Any, unique_stream_name: str) -> None:
    async with make_consumer(broker) as c:
        await c.create_stream(unique_stream_name)
        await fill(broker, unique_stream_name, [b"x"] * 300)
        col = Collector()
        await c.subscribe(unique_stream_name, col, subscriber_name="auto", offset_tracking=True)
        await wait_for(lambda: len(col) >= 300)
    async with make_consumer(broker) as c:
        for _ in range(50):
            try:
                if await c.query_offset(unique_stream_name, "auto") == 299:
                    break
            except OffsetNotFound:
                pass
            await asyncio.sleep(0.05)
        assert await c.query_offset(unique_stream_name, "auto") == 299
        await c.delete_stream(unique_stream_name)


# --------------------------------------------------------------------------- API behaviour


async def test_errors_and_limits(consumer: Consumer, broker: Any, unique_stream_name: str) -> None:
    with pytest.raises(ValueError):
        make_consumer(broker, max_subscribers_by_connection=0)
    with pytest.raises(ValueError):
        make_consumer(broker, max_subscribers_by_connection=257)
    with pytest.raises(StreamDoesNotExist):
        await consumer.subscribe(unique_stream_name + "-missing", Collector())
    assert await consumer.get_available_id() == 0
    sid = await consumer.subscribe(unique_stream_name, Collector())
    with pytest.raises(StreamAlreadySubscribed):
        await consumer.subscribe(unique_stream_name, Collector())
    await consumer.unsubscribe(sid)
    assert await consumer.stream_exists(unique_stream_name)
    assert not await consumer.stream_exists(unique_stream_name + "-missing")
    stats = await consumer.stream_stats(unique_stream_name)
    assert "first_chunk_id" in stats


async def test_connections_per_max_subscribers(broker: Any, unique_stream_name: str) -> None:
    names = [f"{unique_stream_name}-{i}" for i in range(3)]
    async with make_consumer(broker, max_subscribers_by_connection=2) as c:
        for n in names:
            await c.create_stream(n)
            await c.subscribe(n, Collector())
        assert len(c._conns) == 2
        for n in names:
            await c.delete_stream(n)


async def test_close_from_inside_callback(broker: Any, unique_stream_name: str) -> None:
    await create(broker, unique_stream_name)
    await fill(broker, unique_stream_name, [b"x"] * 500, batch=50)
    c = make_consumer(broker)
    await c.start()
    seen: list[int] = []

    async def cb(msg: bytes, ctx: Any) -> None:
        seen.append(ctx.offset)
        if ctx.offset == 10:
            await ctx.consumer.close()

    await c.subscribe(unique_stream_name, cb)
    await asyncio.wait_for(c.run(), 10)
    await asyncio.sleep(0.3)
    assert seen == list(range(11))
    async with make_consumer(broker) as c2:
        await c2.delete_stream(unique_stream_name)


# --------------------------------------------------------------------------- single active consumer


async def test_single_active_consumer_takeover(broker: Any, unique_stream_name: str) -> None:
    total = 2000
    await create(broker, unique_stream_name)
    await fill(broker, unique_stream_name, [b"m%d" % i for i in range(total)], batch=100)
    props = {"single-active-consumer": True, "name": "grp"}
    first, second = Collector(), Collector()
    stop_at = 700

    c1 = make_consumer(broker)
    c2 = make_consumer(broker)
    await c1.start()
    await c2.start()

    def cb1(msg: bytes, ctx: Any) -> None:
        first(msg, ctx)  # every message handed to the callback counts as processed
        if ctx.offset == stop_at:
            asyncio.get_running_loop().create_task(c1.close())

    await c1.subscribe(unique_stream_name, cb1, properties=props, offset_tracking=True, initial_credit=1)
    await c2.subscribe(unique_stream_name, second, properties=props, offset_tracking=True)
    await wait_for(lambda: len(first) > stop_at)
    await asyncio.sleep(0.3)
    assert len(second) > 0 or not c1._subs  # c2 only receives once c1 is gone
    last = first.offsets[-1]
    await wait_for(lambda: len(second) >= total - last - 1)
    assert first.offsets == list(range(last + 1))  # stopped mid-stream...
    assert second.offsets == list(range(last + 1, total))  # ...and c2 continued after the stored offset
    await c2.close()
    async with make_consumer(broker) as c:
        await c.delete_stream(unique_stream_name)


async def test_sac_listener_is_honoured(broker: Any, unique_stream_name: str) -> None:
    from rabbitstream import OffsetSpecification

    await create(broker, unique_stream_name)
    await fill(broker, unique_stream_name, [b"m%d" % i for i in range(100)])
    calls: list[bool] = []

    async def listener(active: bool, ctx: Any) -> Any:
        calls.append(active)
        assert ctx.stream == unique_stream_name and ctx.subscriber_name == "grp2"
        return OffsetSpecification(OffsetType.OFFSET, 90)

    col = Collector()
    async with make_consumer(broker) as c:
        await c.subscribe(
            unique_stream_name, col, properties={"single-active-consumer": "true"}, subscriber_name="grp2",
            consumer_update_listener=listener,
        )  # fmt: skip
        await wait_for(lambda: len(col) >= 10)
        assert calls == [True] and col.offsets == list(range(90, 100))
        await c.delete_stream(unique_stream_name)


async def test_sac_validation(consumer: Consumer, unique_stream_name: str) -> None:
    with pytest.raises(ValueError, match="x-single-active-consumer"):
        await consumer.subscribe(
            unique_stream_name, Collector(), properties={"x-single-active-consumer": "true"}
        )
    with pytest.raises(ValueError, match="needs a name"):
        await consumer.subscribe(unique_stream_name, Collector(), properties={"single-active-consumer": True})


# --------------------------------------------------------------------------- filtering


async def _fill_filtered(broker: Any, stream: str) -> None:
    def colour(msg: Any) -> str:
        return bytes(msg).split(b"-")[0].decode()

    async with make_producer(broker, filter_value_extractor=colour) as p:
        for c in ("red", "blue", "red"):
            done = asyncio.Event()
            n = [0]

            def cb(status: Any, n: list[int] = n, done: asyncio.Event = done) -> None:
                n[0] += 1
                if n[0] == 50:
                    done.set()

            await p.send_batch(stream, [b"%s-%d" % (c.encode(), i) for i in range(50)], on_publish_confirm=cb)
            await asyncio.wait_for(done.wait(), 20)
    await fill(broker, stream, [b"plain-%d" % i for i in range(50)])


@pytest.mark.parametrize("match_unfiltered", [False, True])
async def test_filtering(
    consumer: Consumer, broker: Any, unique_stream_name: str, match_unfiltered: bool
) -> None:
    await _fill_filtered(broker, unique_stream_name)
    col = Collector()
    await consumer.subscribe(
        unique_stream_name, col, filter_input=FilterConfiguration(["red"], match_unfiltered=match_unfiltered)
    )
    expected = 150 if match_unfiltered else 100
    await wait_for(lambda: len(col) >= expected)
    await asyncio.sleep(0.3)
    prefixes = {m.split(b"-")[0] for m in col.messages}
    assert prefixes == ({b"red", b"plain"} if match_unfiltered else {b"red"})
    assert len(col) == expected


async def test_filter_predicate_post_filters(
    consumer: Consumer, broker: Any, unique_stream_name: str
) -> None:
    await _fill_filtered(broker, unique_stream_name)
    col = Collector()
    flt = FilterConfiguration(["red", "blue"], predicate=lambda m: m.endswith(b"7"))
    await consumer.subscribe(unique_stream_name, col, filter_input=flt)
    await wait_for(lambda: len(col) >= 15)
    await asyncio.sleep(0.3)
    assert sorted(col.messages) == sorted(
        b"%s-%d" % (c, i) for c in (b"red", b"red", b"blue") for i in (7, 17, 27, 37, 47)
    )


# --------------------------------------------------------------------------- sub-entry batches


def _codec_installed(ct: CompressionType) -> bool:
    if ct is CompressionType.No:
        return True
    try:
        get_registry().compression_codec(ct.value)
    except PluginNotFoundError:
        return False
    return True


@pytest.mark.parametrize("ct", list(CompressionType), ids=lambda c: c.name)
async def test_sub_entries(
    consumer: Consumer, broker: Any, unique_stream_name: str, ct: CompressionType
) -> None:
    if not _codec_installed(ct):
        pytest.skip(f"{ct.name} codec plugin not installed")
    async with make_producer(broker) as p:
        for b in range(4):
            await p.send_sub_entry(
                unique_stream_name, [b"s%d" % (b * 25 + i) for i in range(25)], compression_type=ct
            )
        await p.flush()
    col = Collector()
    await consumer.subscribe(unique_stream_name, col)
    await wait_for(lambda: len(col) >= 100)
    assert col.messages == [b"s%d" % i for i in range(100)] and col.offsets == list(range(100))
    # start inside the second sub-entry
    col2 = Collector()
    async with make_consumer(broker) as c2:
        await c2.subscribe(unique_stream_name, col2, offset_specification=spec(OffsetType.OFFSET, 37))
        await wait_for(lambda: len(col2) >= 63)
    assert col2.offsets == list(range(37, 100)) and col2.messages[0] == b"s37"


# --------------------------------------------------------------------------- iteration and back-pressure


async def test_iterate_slow_consumer_bounded(
    consumer: Consumer, broker: Any, unique_stream_name: str
) -> None:
    msgs = await fill_chunks(broker, unique_stream_name, 30, 10)
    out: list[bytes] = []
    peak = 0
    async with consumer.iterate(unique_stream_name, initial_credit=3) as it:
        async for msg, ctx in it:
            assert ctx.offset == len(out)
            out.append(msg)
            peak = max(peak, consumer.buffered_chunks(it.subscriber_id))
            if len(out) % 10 == 0:
                await asyncio.sleep(0.02)
            if len(out) == len(msgs):
                break
    assert out == msgs and peak <= 3


async def test_iterate_batches(consumer: Consumer, broker: Any, unique_stream_name: str) -> None:
    msgs = await fill_chunks(broker, unique_stream_name, 12, 25)
    got: list[bytes] = []
    peak = 0
    it = consumer.iterate_batches(
        unique_stream_name, initial_credit=2, offset_specification=spec(OffsetType.OFFSET, 10)
    )
    async for batch in it:
        assert list(batch.offsets) == list(range(10 + len(got), 10 + len(got) + len(batch)))
        got.extend(batch.messages)
        peak = max(peak, consumer.buffered_chunks(it.subscriber_id))
        await asyncio.sleep(0.03)
        if len(got) == len(msgs) - 10:
            break
    await it.aclose()
    assert got == msgs[10:] and peak <= 2


async def test_slow_callback_buffer_bounded_by_credit(
    consumer: Consumer, broker: Any, unique_stream_name: str
) -> None:
    await fill_chunks(broker, unique_stream_name, 20, 5)
    seen: list[int] = []
    peaks: list[int] = []
    sid = -1

    async def slow(msg: bytes, ctx: Any) -> None:
        seen.append(ctx.offset)
        peaks.append(consumer.buffered_chunks(sid))
        await asyncio.sleep(0.005)

    sid = await consumer.subscribe(unique_stream_name, slow, initial_credit=4)
    await wait_for(lambda: len(seen) >= 100)
    assert seen == list(range(100)) and max(peaks) <= 4


async def test_iterate_amqp_decoder(consumer: Consumer, broker: Any, unique_stream_name: str) -> None:
    from rabbitstream import AMQPMessage, amqp_decoder

    await fill(broker, unique_stream_name, [AMQPMessage(body=b"b%d" % i) for i in range(20)])
    out = []
    async with consumer.iterate(unique_stream_name, decoder=amqp_decoder) as it:
        async for msg, _ctx in it:
            out.append(msg.body)
            if len(out) == 20:
                break
    assert out == [b"b%d" % i for i in range(20)]
