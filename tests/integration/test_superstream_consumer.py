"""SuperStreamConsumer against a real broker: all partitions, offsets, filtering, SAC rebalancing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from rabbitstream import RouteType, SuperStreamConsumer, SuperStreamCreationOption, SuperStreamProducer
from rabbitstream._consumer._types import MessageContext
from rabbitstream.constants import ConsumerOffsetSpecification, OffsetType
from rabbitstream.exceptions import OffsetNotFound, StreamDoesNotExist
from rabbitstream.utils import FilterConfiguration

pytestmark = pytest.mark.integration


def make_producer(broker: Any, super_stream: str, **kw: Any) -> SuperStreamProducer:
    kw.setdefault("routing_extractor", lambda m: bytes(m).split(b":")[0])
    kw.setdefault("routing", RouteType.Key)
    return SuperStreamProducer(
        broker.host,
        broker.port,
        username=broker.username,
        password=broker.password,
        super_stream=super_stream,
        **kw,
    )


def make_consumer(broker: Any, super_stream: str, **kw: Any) -> SuperStreamConsumer:
    return SuperStreamConsumer(
        broker.host,
        broker.port,
        username=broker.username,
        password=broker.password,
        super_stream=super_stream,
        **kw,
    )


async def wait_until(cond: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


class Received:
    """Messages per partition with their offsets, from a SuperStreamConsumer callback."""

    def __init__(self) -> None:
        self.items: list[tuple[str, int, bytes]] = []

    async def cb(self, message: bytes, ctx: MessageContext) -> None:
        self.items.append((ctx.stream, ctx.offset, bytes(message)))

    def by_partition(self) -> dict[str, list[bytes]]:
        out: dict[str, list[bytes]] = {}
        for stream, _off, body in self.items:
            out.setdefault(stream, []).append(body)
        return out


@pytest.fixture
async def ss3(broker: Any, unique_stream_name: str) -> AsyncIterator[str]:
    """A super stream ``<name>-0 .. -2`` bound with keys ``"0" .. "2"``."""
    name = unique_stream_name
    async with make_producer(broker, name) as p:
        await p.create_super_stream(name, 3)
    yield name
    async with make_producer(broker, name) as p:
        await p.delete_super_stream(name, missing_ok=True)


async def publish(broker: Any, ss: str, bodies: list[bytes], **kw: Any) -> None:
    """Publish ``bodies`` (key = the text before ``:``) and wait for every confirm."""
    done = asyncio.Event()
    statuses: list[Any] = []

    def cb(status: Any) -> None:
        statuses.append(status)
        if len(statuses) == len(bodies):
            done.set()

    async with make_producer(broker, ss, **kw) as p:
        await p.send_batch(bodies, on_publish_confirm=cb)
        await asyncio.wait_for(done.wait(), 20)
    assert all(s.is_confirmed for s in statuses)


async def test_consumes_every_partition(broker: Any, ss3: str) -> None:
    bodies = [f"{i % 3}:m{i}".encode() for i in range(30)]
    await publish(broker, ss3, bodies)
    got = Received()
    async with make_consumer(broker, ss3) as c:
        await c.subscribe(got.cb)
        assert sorted(c.subscribers) == [f"{ss3}-0", f"{ss3}-1", f"{ss3}-2"]
        await wait_until(lambda: len(got.items) >= 30, what="30 messages")
        await asyncio.sleep(0.2)
    parts = got.by_partition()
    assert len(got.items) == 30
    for i in range(3):
        want = [b for b in bodies if b.startswith(f"{i}:".encode())]
        assert parts[f"{ss3}-{i}"] == want
    # offsets are per partition: each partition starts at 0
    for i in range(3):
        offsets = [off for s, off, _ in got.items if s == f"{ss3}-{i}"]
        assert offsets[0] == 0 and offsets == sorted(offsets)


async def test_offsets_per_partition_and_resume(broker: Any, ss3: str) -> None:
    """Offsets are stored per partition; a named SAC member resumes after them (rstream's pattern)."""
    bodies = [f"{i % 3}:m{i}".encode() for i in range(12)]
    await publish(broker, ss3, bodies)
    sac = {"single-active-consumer": "true", "name": "reader"}
    got = Received()

    async def store(message: bytes, ctx: MessageContext) -> None:
        await got.cb(message, ctx)
        await ctx.consumer.store_offset(ctx.stream, "reader", ctx.offset)

    async with make_consumer(broker, ss3) as c:
        await c.subscribe(store, properties=sac)
        await wait_until(lambda: len(got.items) >= 12, what="12 messages")
        last = {s: off for s, off, _ in got.items}
        assert sorted(last) == [f"{ss3}-{i}" for i in range(3)]
        with pytest.raises(OffsetNotFound):
            await c.query_offset(f"{ss3}-0", "someone-else")
        deadline = time.monotonic() + 10
        for stream, off in last.items():
            while True:
                try:
                    if await c.query_offset(stream, "reader") == off:
                        break
                except OffsetNotFound:
                    pass
                assert time.monotonic() < deadline, "offsets never stored"
                await asyncio.sleep(0.05)
    await publish(broker, ss3, [b"0:new0", b"1:new1"])
    again = Received()
    async with make_consumer(broker, ss3) as c:
        await c.subscribe(again.cb, properties=sac)
        await wait_until(lambda: len(again.items) >= 2, what="the new messages")
        await asyncio.sleep(0.3)
    assert sorted(b for _, _, b in again.items) == [b"0:new0", b"1:new1"]
    for stream, off, _ in again.items:
        assert off > last[stream]


async def test_missing_super_stream(broker: Any, unique_stream_name: str) -> None:
    async with make_consumer(broker, unique_stream_name) as c:
        with pytest.raises(StreamDoesNotExist):
            await c.subscribe(Received().cb)


async def test_creation_option_and_filtering(broker: Any, unique_stream_name: str) -> None:
    name = unique_stream_name
    opt = SuperStreamCreationOption(n_partitions=2)
    try:
        async with make_consumer(broker, name, super_stream_creation_option=opt) as c:
            assert await c.partitions() == [f"{name}-0", f"{name}-1"]
            got = Received()
            await c.subscribe(
                got.cb,
                filter_input=FilterConfiguration(["red"], predicate=lambda m: bytes(m).endswith(b"red")),
            )

            def colour(message: Any) -> str:
                return bytes(message).rsplit(b"-", 1)[1].decode()

            async with make_producer(broker, name, filter_value_extractor=colour) as p:
                for i in range(40):
                    await p.send(f"{i % 2}:m{i}-{'red' if i % 4 == 0 else 'blue'}".encode())
                await p.send_wait(b"0:last-red")
            await wait_until(lambda: any(b == b"0:last-red" for _, _, b in got.items))
            await asyncio.sleep(0.3)
            assert all(b.endswith(b"red") for _, _, b in got.items)
            assert len(got.items) == 11
    finally:
        async with make_producer(broker, name) as p:
            await p.delete_super_stream(name, missing_ok=True)


async def test_sac_rebalancing_over_three_consumers(broker: Any, ss3: str) -> None:
    group = "sac-group"
    received = [Received(), Received(), Received()]
    consumers: list[SuperStreamConsumer] = []

    def make_cb(idx: int) -> Callable[[bytes, MessageContext], Any]:
        async def cb(message: bytes, ctx: MessageContext) -> None:
            received[idx].items.append((ctx.stream, ctx.offset, bytes(message)))
            await ctx.consumer.store_offset(ctx.stream, group, ctx.offset)

        return cb

    try:
        for idx in range(3):
            c = make_consumer(broker, ss3)
            await c.start()
            await c.subscribe(
                make_cb(idx),
                properties={"single-active-consumer": "true", "name": group},
                offset_specification=ConsumerOffsetSpecification(OffsetType.FIRST),
            )
            consumers.append(c)
        await asyncio.sleep(1.0)  # let the broker rebalance the partitions over the group

        bodies = [f"{i % 3}:first{i}".encode() for i in range(30)]
        await publish(broker, ss3, bodies)
        await wait_until(lambda: sum(len(r.items) for r in received) >= 30, what="30 messages")
        await asyncio.sleep(0.3)
        owners: dict[str, set[int]] = {}
        for idx, r in enumerate(received):
            for stream, _, _ in r.items:
                owners.setdefault(stream, set()).add(idx)
        # each partition was consumed by exactly one member, and each member owns one partition
        assert sorted(owners) == [f"{ss3}-{i}" for i in range(3)]
        assert all(len(v) == 1 for v in owners.values()), owners
        assert sorted(next(iter(v)) for v in owners.values()) == [0, 1, 2]
        assert sum(len(r.items) for r in received) == 30

        # close the owner of partition 0: the partition moves and resumes after the stored offset
        owner0 = next(iter(owners[f"{ss3}-0"]))
        last0 = max(off for s, off, _ in received[owner0].items if s == f"{ss3}-0")
        survivor = consumers[(owner0 + 1) % 3]
        deadline = time.monotonic() + 10
        while True:
            try:
                if await survivor.query_offset(f"{ss3}-0", group) == last0:
                    break
            except OffsetNotFound:
                pass
            assert time.monotonic() < deadline, "offset of partition 0 never stored"
            await asyncio.sleep(0.05)
        await consumers[owner0].close()
        await asyncio.sleep(1.0)
        await publish(broker, ss3, [b"0:second-a", b"0:second-b"])
        others = [i for i in range(3) if i != owner0]
        await wait_until(
            lambda: any(b == b"0:second-b" for i in others for _, _, b in received[i].items),
            what="partition 0 to move to another member",
        )
        await asyncio.sleep(0.3)
        moved = [(i, off, b) for i in others for s, off, b in received[i].items if s == f"{ss3}-0"]
        # only the new messages, no re-delivery of what the closed member had processed
        assert [b for _, _, b in moved] == [b"0:second-a", b"0:second-b"]
        assert all(off > last0 for _, off, _ in moved)
        assert len({i for i, _, _ in moved}) == 1
    finally:
        for c in consumers:
            await c.close()


async def test_sac_property_mismatch_is_rejected(broker: Any, ss3: str) -> None:
    async with make_consumer(broker, ss3) as c:
        with pytest.raises(ValueError):
            await c.subscribe(
                Received().cb,
                properties={"single-active-consumer": "true", "name": "g", "super-stream": "other"},
            )
