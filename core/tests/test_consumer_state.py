"""Consumer state machine without a broker (issue #14): a chunk needing a compression plugin that
is not installed fails the subscription (nothing after it delivered, no offset stored past it),
run() ends when every subscription failed, and the offset-0 tracking mutant."""

from __future__ import annotations

import asyncio
import zlib
from typing import Any

import pytest
from rabbitstream import Consumer
from rabbitstream._consumer._base import _SubscriptionRecovery
from rabbitstream._consumer._iter import BatchStream, MessageStream
from rabbitstream._consumer._sub import Subscription
from rabbitstream._consumer._types import OffsetTracking
from rabbitstream.exceptions import ConnectionClosed
from rabbitstream.plugin import PluginNotFoundError, Registry
from rabbitstream.protocol._chunk import Chunk, parse_chunk
from rabbitstream.recovery import BackOffRecoveryStrategy
from rabbitstream.testing import build_chunk
from test_consumer_unit import FakeConsumer, attach, make_sub, msgs

_NO_PLUGINS = Registry()


class FailingConsumer(FakeConsumer):
    def __init__(self) -> None:
        super().__init__()
        self.failed: list[tuple[Subscription, BaseException]] = []

    def _sub_failed(self, sub: Subscription, exc: BaseException) -> None:
        self._subs.pop(sub.id, None)
        self.failed.append((sub, exc))


class _Code1:
    """Sub-entries marked gzip (code 1); the core-only test session has no gzip plugin."""

    code = 1
    name = "gzip"

    def compress(self, data: bytes) -> bytes:
        return zlib.compress(data)

    def decompress(self, data: bytes | memoryview, uncompressed_size: int) -> bytes:
        return zlib.decompress(data)


def gzip_chunk(messages: list[bytes], chunk_id: int) -> Chunk:
    """A chunk of gzip sub-entries, parsed by a consumer without the gzip plugin."""
    data = build_chunk(messages, chunk_id=chunk_id, sub_entries=max(len(messages), 2), codec=_Code1())
    return parse_chunk(memoryview(data), registry=_NO_PLUGINS)


def plain_chunk(messages: list[bytes], chunk_id: int) -> Chunk:
    return parse_chunk(memoryview(build_chunk(messages, chunk_id=chunk_id)))


def feed(sub: Subscription, consumer: FakeConsumer) -> None:
    """offsets 0-1 readable, 2-4 need gzip (not installed), 5 readable."""
    on_chunk = attach(sub, consumer)
    on_chunk(plain_chunk(msgs(0, 2), 0))
    on_chunk(gzip_chunk(msgs(2, 3), 2))
    on_chunk(plain_chunk(msgs(5, 1), 5))


async def test_missing_codec_fails_callback_subscription() -> None:
    got: list[int] = []
    consumer = FailingConsumer()
    sub, _ = make_sub(
        consumer,
        callback=lambda m, c: got.append(c.offset),
        name="ref",
        tracking=OffsetTracking(messages=1, seconds=60),
    )
    feed(sub, consumer)
    await asyncio.wait_for(sub.run_worker(), 1)  # ends: before the fix it went on with offset 5
    assert got == [0, 1]
    assert [o for _, _, o in consumer.client.stored] == [1]  # never 5
    assert isinstance(sub.error, PluginNotFoundError)
    assert "rabbitstream-gzip" in str(sub.error)  # names the plugin to install
    assert [s for s, _ in consumer.failed] == [sub]
    assert sub.resume_spec()[1] == 2  # a re-subscription would start at the undelivered records


async def test_missing_codec_fails_message_stream() -> None:
    consumer = FailingConsumer()
    sub, _ = make_sub(consumer, name="ref", tracking=OffsetTracking(messages=1, seconds=60))
    stream = MessageStream(consumer, sub)  # type: ignore[arg-type]
    feed(sub, consumer)
    stream._started = True
    got = []
    with pytest.raises(PluginNotFoundError, match="rabbitstream-gzip"):
        async for _, ctx in stream:
            got.append(ctx.offset)
    assert got == [0, 1]
    assert [o for _, _, o in consumer.client.stored] == [1]


async def test_missing_codec_fails_batch_stream() -> None:
    consumer = FailingConsumer()
    sub, _ = make_sub(consumer, name="ref", tracking=OffsetTracking(messages=1, seconds=60))
    stream = BatchStream(consumer, sub)  # type: ignore[arg-type]
    feed(sub, consumer)
    stream._started = True
    got = []
    with pytest.raises(PluginNotFoundError):
        async for batch in stream:
            got += list(batch.offsets)
    assert got == [0, 1]
    assert [o for _, _, o in consumer.client.stored] == [1]


async def test_corrupt_chunk_still_skipped() -> None:
    """Only a missing plugin fails the subscription; a corrupt chunk is logged and skipped."""
    got: list[int] = []
    consumer = FailingConsumer()
    sub, _ = make_sub(consumer, callback=lambda m, c: got.append(c.offset))
    on_chunk = attach(sub, consumer)
    bad = plain_chunk(msgs(0, 2), 0)
    bad.num_records = 3
    on_chunk(bad)
    on_chunk(plain_chunk(msgs(3, 1), 3))
    task = asyncio.ensure_future(sub.run_worker())
    await asyncio.sleep(0.01)
    assert got == [3] and consumer.failed == []
    sub.close_local()
    await task


async def test_only_record_at_offset_zero_is_stored() -> None:
    """Kills the ``last_offset > 0`` mutant of chunk_done: offset 0 is a real offset."""
    sub, consumer = make_sub(
        callback=lambda m, c: None, name="ref", tracking=OffsetTracking(messages=1, seconds=60)
    )
    on_chunk = attach(sub, consumer)
    on_chunk(plain_chunk([b"only"], 0))
    task = asyncio.ensure_future(sub.run_worker())
    await asyncio.sleep(0.01)
    assert consumer.client.stored == [("ref", "s1", 0)]
    sub.close_local()
    await task


# --------------------------------------------------------------------------- Consumer.run()


class _Sub:
    def __init__(self, sid: int) -> None:
        self.id = sid
        self.stream = "s"
        self.name = None
        self.error: BaseException | None = None

    def fail(self, exc: BaseException) -> None:
        self.error = exc


async def handle_loss(consumer: Consumer, reason: str, subs: list[Any], error: BaseException) -> None:
    """What the consumer's recovery loop does with subscriptions whose connection was lost."""
    await consumer._recovery.handle_loss([_SubscriptionRecovery(consumer, s) for s in subs], reason, error)


async def test_run_raises_when_the_connection_is_lost_without_recovery() -> None:
    consumer = Consumer(
        "localhost", username="u", password="p", recovery_strategy=BackOffRecoveryStrategy(False)
    )
    sub: Any = _Sub(1)
    consumer._subs[1] = sub
    running = asyncio.ensure_future(consumer.run())
    await asyncio.sleep(0)
    lost = ConnectionClosed("connection lost")
    await handle_loss(consumer, "Connection Closed", [sub], lost)
    with pytest.raises(ConnectionClosed):  # before the fix: run() never returned
        await asyncio.wait_for(running, 1)
    assert sub.error is lost


async def test_run_goes_on_while_a_subscription_is_left() -> None:
    consumer = Consumer(
        "localhost", username="u", password="p", recovery_strategy=BackOffRecoveryStrategy(False)
    )
    subs: list[Any] = [_Sub(1), _Sub(2)]
    consumer._subs = {1: subs[0], 2: subs[1]}
    running = asyncio.ensure_future(consumer.run())
    await handle_loss(consumer, "Connection Closed", [subs[0]], ConnectionClosed("lost"))
    await asyncio.sleep(0.01)
    assert not running.done()
    consumer.stop()
    await running  # stop() still just returns


async def test_chunk_ending_at_the_requested_offset_is_dropped_with_its_credit() -> None:
    sub, consumer = make_sub(callback=lambda m, c: None)
    on_chunk = attach(sub, consumer, skip=3)
    on_chunk(plain_chunk(msgs(0, 3), 0))  # offsets 0-2, all before 3
    assert not sub.queue and consumer.client.credits == [(3, 1)]
    on_chunk(plain_chunk(msgs(3, 2), 3))
    assert len(sub.queue) == 1


async def test_store_tracked_twice_stores_once() -> None:
    sub, consumer = make_sub(
        callback=lambda m, c: None, name="ref", tracking=OffsetTracking(messages=100, seconds=60)
    )
    sub.chunk_done(sub.gen, 4, 5)
    sub.store_tracked()
    sub.store_tracked()  # nothing new: no second StoreOffset frame
    assert consumer.client.stored == [("ref", "s1", 4)]
