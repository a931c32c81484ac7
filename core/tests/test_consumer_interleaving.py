"""Seeded random schedules of one subscription (issue #14, "beyond the list").

A simulated stream of chunks (some compressed with a codec that is not installed) is delivered to a
:class:`~rabbitstream._consumer._sub.Subscription` consumed by a callback worker, ``MessageStream``
or ``BatchStream``, with automatic offset tracking, interleaved with connection cuts and
re-subscriptions from :meth:`Subscription.resume_spec` (the broker re-delivers from the chunk holding
that offset, as osiris does).  Invariants: **every record delivered at most once, in order, with no
gap; delivery stops before an undecodable chunk; a stored offset is never past an undelivered
record**.  ``RABBITSTREAM_SCHEDULES`` sets the number of schedules (default 2000).
"""

from __future__ import annotations

import asyncio
import os
import random
from typing import Any

from rabbitstream._consumer._iter import BatchStream, MessageStream
from rabbitstream._consumer._types import OffsetTracking
from rabbitstream.exceptions import ConnectionClosed
from rabbitstream.plugin import PluginNotFoundError
from test_consumer_state import FailingConsumer, gzip_chunk, plain_chunk
from test_consumer_unit import make_sub, msgs

SCHEDULES = int(os.environ.get("RABBITSTREAM_SCHEDULES", "2000"))


async def schedule(seed: int) -> None:
    rng = random.Random(seed)
    # the stream: (first offset, records, undecodable?)
    layout: list[tuple[int, int, bool]] = []
    offset = 0
    for _ in range(rng.randint(1, 8)):
        n = rng.randint(1, 4)
        layout.append((offset, n, rng.random() < 0.1))
        offset += n
    total = offset
    bad = next((first for first, _, undecodable in layout if undecodable), None)

    consumer = FailingConsumer()
    delivered: list[int] = []
    mode = rng.choice(["callback", "messages", "batches"])
    sub, _ = make_sub(
        consumer,
        callback=(lambda m, c: delivered.append(c.offset)) if mode == "callback" else None,
        name="ref",
        tracking=OffsetTracking(messages=rng.randint(1, 5), seconds=60),
        credit=rng.randint(1, 4),
    )
    position = 0  # index in layout of the next chunk the "broker" delivers
    on_chunk: Any = None

    def subscribe() -> None:
        nonlocal on_chunk, position
        _, skip = sub.resume_spec()
        on_chunk = sub.attach(consumer.client, 3, skip)  # type: ignore[arg-type]
        # osiris starts at the chunk holding the requested offset
        position = next((i for i, (first, n, _) in enumerate(layout) if first + n > skip), len(layout))

    async def consume() -> None:
        try:
            if mode == "callback":
                await sub.run_worker()
            elif mode == "messages":
                stream = MessageStream(consumer, sub)  # type: ignore[arg-type]
                stream._started = True
                async for _, ctx in stream:
                    delivered.append(ctx.offset)
            else:
                batches = BatchStream(consumer, sub)  # type: ignore[arg-type]
                batches._started = True
                async for batch in batches:
                    delivered.extend(batch.offsets)
        except (PluginNotFoundError, ConnectionClosed):
            pass

    subscribe()
    worker = asyncio.ensure_future(consume())
    closed_early = False
    for _ in range(rng.randint(3, 30)):
        op = rng.random()
        if op < 0.55:
            if on_chunk is not None and position < len(layout):
                first, n, undecodable = layout[position]
                chunk = (gzip_chunk if undecodable else plain_chunk)(msgs(first, n), first)
                on_chunk(chunk)
                position += 1
        elif op < 0.7:
            sub.detach()  # connection lost
            on_chunk = None
        elif op < 0.85:
            if on_chunk is None and not sub.closed and sub.error is None:
                subscribe()  # recovered
        elif op < 0.88:
            if sub.id in consumer._subs:
                await consumer.unsubscribe(sub.id)
            closed_early = True
            break
        for _ in range(rng.randint(0, 3)):
            await asyncio.sleep(0)
    if not closed_early:  # the end: connected, everything delivered, then unsubscribed
        if on_chunk is None and sub.error is None:
            subscribe()
        while position < len(layout) and sub.error is None:
            first, n, undecodable = layout[position]
            on_chunk((gzip_chunk if undecodable else plain_chunk)(msgs(first, n), first))
            position += 1
            await asyncio.sleep(0)
        for _ in range(100):  # let the application side take what is queued
            if sub.error is not None or (delivered and delivered[-1] == total - 1):
                break
            await asyncio.sleep(0)
        if sub.id in consumer._subs:
            await consumer.unsubscribe(sub.id)
    sub.close_local()
    await asyncio.wait_for(worker, 2)

    where = f"seed {seed} ({mode}): layout={layout} delivered={delivered} stored={consumer.client.stored}"
    assert delivered == list(range(len(delivered))), where  # in order, at most once, no gap
    if bad is not None:
        assert not delivered or delivered[-1] < bad, where  # nothing from or after the bad chunk
    elif not closed_early:
        assert delivered == list(range(total)), where
    for _, _, stored in consumer.client.stored:
        assert delivered and stored <= delivered[-1], where  # never past an undelivered record


async def test_every_record_at_most_once_and_no_offset_past_an_undelivered_one() -> None:
    for seed in range(SCHEDULES):
        await schedule(seed)
