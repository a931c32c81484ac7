"""Helpers shared by the consumer integration tests: build consumers, fill streams, wait."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

from rabbitstream import Consumer, Producer

__all__ = ["Collector", "fill", "fill_chunks", "make_consumer", "make_producer", "wait_for"]


def make_consumer(broker: Any, **kw: Any) -> Consumer:
    return Consumer(broker.host, broker.port, username=broker.username, password=broker.password, **kw)


def make_producer(broker: Any, **kw: Any) -> Producer:
    return Producer(broker.host, broker.port, username=broker.username, password=broker.password, **kw)


async def _confirmed_batch(p: Producer, stream: str, batch: Sequence[Any]) -> None:
    done = asyncio.Event()
    left = [len(batch)]

    def cb(status: Any) -> None:
        assert status.is_confirmed, status
        left[0] -= 1
        if left[0] == 0:
            done.set()

    await p.send_batch(stream, list(batch), on_publish_confirm=cb)
    await asyncio.wait_for(done.wait(), 30)


async def fill(broker: Any, stream: str, messages: Sequence[Any], *, batch: int = 500, **kw: Any) -> None:
    """Publish ``messages`` (confirmed) in ``send_batch`` calls of ``batch``."""
    async with make_producer(broker, **kw) as p:
        for i in range(0, len(messages), batch):
            await _confirmed_batch(p, stream, messages[i : i + batch])


async def fill_chunks(
    broker: Any, stream: str, chunks: int, per_chunk: int, *, start: int = 0
) -> list[bytes]:
    """Publish ``chunks`` batches, each confirmed before the next (so each becomes its own chunk)."""
    out: list[bytes] = []
    async with make_producer(broker) as p:
        for c in range(chunks):
            batch = [b"m%d" % (start + c * per_chunk + i) for i in range(per_chunk)]
            await _confirmed_batch(p, stream, batch)
            out.extend(batch)
    return out


async def wait_for(pred: Callable[[], bool], timeout: float = 20.0, interval: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)


class Collector:
    """A sync callback collecting ``(message, context)``."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.contexts: list[Any] = []

    def __call__(self, msg: Any, ctx: Any) -> None:
        self.messages.append(msg)
        self.contexts.append(ctx)

    @property
    def offsets(self) -> list[int]:
        return [c.offset for c in self.contexts]

    def __len__(self) -> int:
        return len(self.messages)
