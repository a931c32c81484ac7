"""Unit tests of the consumer's pure parts: offsets, properties, contexts, trimming, credit, iteration."""

from __future__ import annotations

import asyncio
import pickle
from typing import Any

import pytest
from rabbitstream._consumer._introspect import is_async_callable
from rabbitstream._consumer._iter import BatchStream, MessageStream
from rabbitstream._consumer._sub import Subscription
from rabbitstream._consumer._types import (
    CreditPolicy,
    MessageBatch,
    MessageContext,
    OffsetTracking,
    build_subscription_properties,
    check_credit,
    wire_offset,
)
from rabbitstream.constants import ConsumerOffsetSpecification, OffsetSpecification, OffsetType
from rabbitstream.exceptions import ConnectionClosed
from rabbitstream.protocol._chunk import Chunk, parse_chunk
from rabbitstream.testing import build_chunk
from rabbitstream.utils import FilterConfiguration

# --------------------------------------------------------------------------- helpers


class FakeClient:
    """Records the one-way calls a Subscription makes on its connection."""

    def __init__(self) -> None:
        self.is_closed = False
        self.credits: list[tuple[int, int]] = []
        self.stored: list[tuple[str, str, int]] = []

    def credit(self, wire_id: int, n: int) -> None:
        self.credits.append((wire_id, n))

    def store_offset(self, reference: str, stream: str, offset: int) -> None:
        self.stored.append((reference, stream, offset))


class FakeConsumer:
    """The few Consumer methods a Subscription / stream calls."""

    def __init__(self) -> None:
        self._subs: dict[int, Subscription] = {}
        self.activated: list[Subscription] = []
        self.client = FakeClient()

    async def _activate(self, sub: Subscription) -> None:
        self.activated.append(sub)
        sub.attach(self.client, 3, sub.resume_spec()[1])  # type: ignore[arg-type]

    async def unsubscribe(self, sid: int) -> None:
        sub = self._subs.pop(sid)
        sub.store_tracked()
        sub.close_local()

    def _store_offset_nowait(self, sub: Subscription, offset: int) -> bool:
        assert sub.name is not None
        self.client.store_offset(sub.name, sub.stream, offset)
        return True


def chunk(messages: list[bytes], chunk_id: int = 0, **kw: Any) -> Chunk:
    return parse_chunk(memoryview(build_chunk(messages, chunk_id=chunk_id, timestamp=1234, **kw)))


def msgs(start: int, n: int) -> list[bytes]:
    return [b"m%d" % i for i in range(start, start + n)]


def make_sub(
    consumer: FakeConsumer | None = None,
    *,
    callback: Any = None,
    decoder: Any = None,
    credit: int = 3,
    policy: CreditPolicy = CreditPolicy.AFTER_PROCESSING,
    spec: ConsumerOffsetSpecification | None = None,
    name: str | None = None,
    filter_input: FilterConfiguration | None = None,
    tracking: OffsetTracking | None = None,
) -> tuple[Subscription, FakeConsumer]:
    consumer = consumer or FakeConsumer()
    sub = Subscription(
        consumer,  # type: ignore[arg-type]
        7,
        "s1",
        callback=callback,
        decoder=decoder,
        props=build_subscription_properties(None, filter_input, name),
        offset_spec=spec or ConsumerOffsetSpecification(),
        initial_credit=credit,
        credit_policy=policy,
        listener=None,
        tracking=tracking,
    )
    consumer._subs[sub.id] = sub
    return sub, consumer


def attach(sub: Subscription, consumer: FakeConsumer, skip: int = 0) -> Any:
    return sub.attach(consumer.client, 3, skip)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- offsets


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (None, (1, 0)),
        (ConsumerOffsetSpecification(), (1, 0)),
        (ConsumerOffsetSpecification(OffsetType.LAST), (2, 0)),
        (ConsumerOffsetSpecification(OffsetType.NEXT), (3, 0)),
        (ConsumerOffsetSpecification(OffsetType.OFFSET, 42), (4, 42)),
        (ConsumerOffsetSpecification(OffsetType.TIMESTAMP, 1_700_000_000_000), (5, 1_700_000_000_000)),
        (OffsetSpecification(OffsetType.OFFSET, 9), (4, 9)),
        (OffsetSpecification(3, 0), (3, 0)),
        (OffsetSpecification(0, 0), (0, 0)),
    ],
)
def test_wire_offset(spec: Any, expected: tuple[int, int]) -> None:
    assert wire_offset(spec) == expected


@pytest.mark.parametrize(
    "spec",
    [OffsetSpecification(9, 0), OffsetSpecification(4, -1), OffsetSpecification(4, 1 << 64)],
)
def test_wire_offset_rejects(spec: OffsetSpecification) -> None:
    with pytest.raises(ValueError):
        wire_offset(spec)


def test_check_credit() -> None:
    assert check_credit(1) == 1
    assert check_credit(32767) == 32767
    for bad in (0, -1, 32768):
        with pytest.raises(ValueError):
            check_credit(bad)
    with pytest.raises(TypeError):
        check_credit(True)


# --------------------------------------------------------------------------- properties


def test_properties_stringified() -> None:
    p = build_subscription_properties({"a": 1, "b": True, "c": "x"})
    assert p.properties == {"a": "1", "b": "true", "c": "x"}
    assert not p.single_active and p.name is None and p.post_filter is None


@pytest.mark.parametrize("flag", [True, "true", "TRUE", " true "])
def test_sac_flag_normalised(flag: object) -> None:
    p = build_subscription_properties({"single-active-consumer": flag, "name": "grp"})
    assert p.properties == {"single-active-consumer": "true", "name": "grp"}
    assert p.single_active and p.name == "grp"


def test_sac_name_from_subscriber_name() -> None:
    p = build_subscription_properties({"single-active-consumer": "true"}, subscriber_name="app")
    assert p.properties["name"] == "app" and p.name == "app"


def test_sac_explicit_name_kept_subscriber_name_is_reference() -> None:
    p = build_subscription_properties({"single-active-consumer": True, "name": "grp"}, subscriber_name="ref")
    assert p.properties["name"] == "grp" and p.name == "ref"


@pytest.mark.parametrize("flag", [False, "false", None])
def test_sac_false_dropped(flag: object) -> None:
    p = build_subscription_properties({"single-active-consumer": flag})
    assert "single-active-consumer" not in p.properties and not p.single_active


def test_sac_needs_name() -> None:
    with pytest.raises(ValueError, match="needs a name"):
        build_subscription_properties({"single-active-consumer": "true"})


@pytest.mark.parametrize("flag", ["yes", 1, "1"])
def test_sac_bad_value(flag: object) -> None:
    with pytest.raises(ValueError, match='must be "true"'):
        build_subscription_properties({"single-active-consumer": flag, "name": "g"})


def test_amqp_queue_argument_rejected() -> None:
    with pytest.raises(ValueError, match="single-active-consumer': 'true'"):
        build_subscription_properties({"x-single-active-consumer": True, "name": "g"})


def test_name_too_long() -> None:
    with pytest.raises(ValueError, match="255"):
        build_subscription_properties(None, subscriber_name="x" * 256)
    with pytest.raises(ValueError, match="empty"):
        build_subscription_properties(None, subscriber_name="")


def test_filter_properties() -> None:
    pred = lambda m: True  # noqa: E731
    p = build_subscription_properties(None, FilterConfiguration(["a", "b"], pred, match_unfiltered=True))
    assert p.properties == {"filter.0": "a", "filter.1": "b", "match-unfiltered": "true"}
    assert p.post_filter is pred
    p = build_subscription_properties({"x": "y"}, FilterConfiguration(["a"]))
    assert p.properties == {"x": "y", "filter.0": "a", "match-unfiltered": "false"}
    with pytest.raises(ValueError, match="conflicts"):
        build_subscription_properties({"filter.0": "z"}, FilterConfiguration(["a"]))


def test_super_stream_property() -> None:
    p = build_subscription_properties({"single-active-consumer": "true", "name": "g"}, super_stream="inv")
    assert p.properties["super-stream"] == "inv"


def test_offset_tracking_validation() -> None:
    assert OffsetTracking().messages == 10_000
    with pytest.raises(ValueError):
        OffsetTracking(messages=0)
    with pytest.raises(ValueError):
        OffsetTracking(seconds=0)


# --------------------------------------------------------------------------- contexts


def test_message_context_fields() -> None:
    ctx = MessageContext("c", "s", 1, "n", 5, 6, 4)  # type: ignore[arg-type]
    assert ctx.consumer == "c"  # type: ignore[comparison-overlap]
    assert (ctx.stream, ctx.subscriber_id, ctx.subscriber_name) == ("s", 1, "n")
    assert (ctx.offset, ctx.timestamp, ctx.committed_chunk_id) == (5, 6, 4)
    assert MessageContext("c", "s", 1, "n", 5, 6).committed_chunk_id is None  # type: ignore[arg-type]
    assert ctx == MessageContext(consumer="c", stream="s", subscriber_id=1, subscriber_name="n",  # type: ignore[arg-type]
                                 offset=5, timestamp=6, committed_chunk_id=4)  # fmt: skip
    with pytest.raises(AttributeError):
        ctx.offset = 3
    assert "offset=5" in repr(ctx)
    assert pickle.loads(pickle.dumps(MessageContext(None, "s", 1, None, 2, 3))).offset == 2  # type: ignore[arg-type]


def test_message_batch() -> None:
    b: MessageBatch[bytes] = MessageBatch("s", 1, 10, 99, None, [b"a", b"b"], range(10, 12))
    assert len(b) == 2 and list(b) == [(b"a", 10), (b"b", 11)] and b.last_offset == 11


def test_is_async_callable() -> None:
    async def a(m: Any, c: Any) -> None: ...

    class C:
        async def __call__(self, m: Any, c: Any) -> None: ...

    import functools

    assert is_async_callable(a) and is_async_callable(C()) and is_async_callable(functools.partial(a, 1))
    assert not is_async_callable(print) and not is_async_callable(lambda m, c: None)


# --------------------------------------------------------------------------- trimming and credit


def test_trim_inside_first_chunk() -> None:
    sub, consumer = make_sub(spec=ConsumerOffsetSpecification(OffsetType.OFFSET, 12))
    on_chunk = attach(sub, consumer, skip=12)
    on_chunk(chunk(msgs(0, 5), chunk_id=5))  # 5..9: entirely before → dropped, credit back
    assert consumer.client.credits == [(3, 1)] and not sub.queue
    on_chunk(chunk(msgs(10, 5), chunk_id=10))  # 10..14 → starts at 12
    on_chunk(chunk(msgs(15, 2), chunk_id=15))
    assert [(c.chunk_id, start) for c, start, _ in sub.queue] == [(10, 12), (15, 15)]
    assert sub.next_offset == 17
    state = [-1, 0]
    c, start, _ = sub.queue[0]
    assert [(m, ctx.offset) for m, ctx in sub.iter_pairs(c, start, state)] == [
        (b"m12", 12),
        (b"m13", 13),
        (b"m14", 14),
    ]
    assert state == [14, 3]


def test_trim_sub_entries_offsets_count_records() -> None:
    sub, consumer = make_sub()
    on_chunk = attach(sub, consumer, skip=23)
    on_chunk(chunk(msgs(20, 9), chunk_id=20, sub_entries=3))  # 3 batches of 3 records
    c, start, _ = sub.queue[0]
    batch, last, count = sub.make_batch(c, start)
    assert batch.messages == [b"m23", b"m24", b"m25", b"m26", b"m27", b"m28"]
    assert list(batch.offsets) == [23, 24, 25, 26, 27, 28] and last == 28 and count == 6
    assert sub.next_offset == 29


def test_stale_generation_ignored() -> None:
    sub, consumer = make_sub()
    old = attach(sub, consumer)
    attach(sub, consumer)
    old(chunk(msgs(0, 2)))
    assert not sub.queue


def test_resume_spec() -> None:
    sub, _ = make_sub(spec=ConsumerOffsetSpecification(OffsetType.OFFSET, 5))
    assert sub.resume_spec() == (ConsumerOffsetSpecification(OffsetType.OFFSET, 5), 5)
    sub.next_offset = 40
    assert sub.resume_spec() == (ConsumerOffsetSpecification(OffsetType.OFFSET, 40), 40)
    sub2, _ = make_sub(spec=ConsumerOffsetSpecification(OffsetType.NEXT))
    assert sub2.resume_spec() == (ConsumerOffsetSpecification(OffsetType.NEXT), 0)


async def test_credit_after_processing_bounds_buffer() -> None:
    release = asyncio.Event()
    seen: list[int] = []

    async def slow(msg: bytes, ctx: MessageContext) -> None:
        seen.append(ctx.offset)
        await release.wait()

    sub, consumer = make_sub(callback=slow, credit=3)
    on_chunk = attach(sub, consumer)
    task = asyncio.ensure_future(sub.run_worker())
    for i in range(3):  # the broker sends at most `credit` chunks
        on_chunk(chunk(msgs(i * 2, 2), chunk_id=i * 2))
    await asyncio.sleep(0.01)
    assert consumer.client.credits == []  # nothing processed yet: no credit
    assert sub.buffered_chunks() == 2  # one in the callback, two queued: ≤ credit
    release.set()
    await asyncio.sleep(0.01)
    assert seen == [0, 1, 2, 3, 4, 5]
    assert consumer.client.credits == [(3, 1)] * 3
    assert sub.last_offset == 5
    sub.close_local()
    await task


async def test_credit_on_arrival_bounded() -> None:
    sub, consumer = make_sub(callback=lambda m, c: None, credit=2, policy=CreditPolicy.ON_ARRIVAL)
    on_chunk = attach(sub, consumer)
    for i in range(4):
        on_chunk(chunk(msgs(i, 1), chunk_id=i))
    assert consumer.client.credits == [(3, 1)] * 2 and sub.owed == 2
    item = await sub.next_item()
    assert item is not None and len(consumer.client.credits) == 3 and sub.owed == 1


async def test_worker_sync_async_filter_decoder_and_errors() -> None:
    got: list[tuple[Any, int]] = []

    def cb(m: Any, ctx: MessageContext) -> None:
        if m == "M3":
            raise RuntimeError("boom")  # logged, delivery goes on
        got.append((m, ctx.offset))

    def decoder(data: memoryview) -> str:
        if bytes(data) == b"m5":
            raise ValueError("undecodable")
        return bytes(data).decode().upper()

    flt = FilterConfiguration(["x"], predicate=lambda m: m != "M1")
    sub, consumer = make_sub(callback=cb, decoder=decoder, filter_input=flt)
    on_chunk = attach(sub, consumer)
    task = asyncio.ensure_future(sub.run_worker())
    on_chunk(chunk(msgs(0, 7)))
    await asyncio.sleep(0.01)
    assert got == [("M0", 0), ("M2", 2), ("M4", 4), ("M6", 6)]
    assert sub.last_offset == 6
    sub.close_local()
    await task


async def test_close_inside_callback_stops_delivery() -> None:
    got: list[int] = []
    sub: Subscription

    async def cb(m: bytes, ctx: MessageContext) -> None:
        got.append(ctx.offset)
        if ctx.offset == 2:
            sub.close_local()

    sub, consumer = make_sub(callback=cb)
    on_chunk = attach(sub, consumer)
    on_chunk(chunk(msgs(0, 5)))
    on_chunk(chunk(msgs(5, 5), chunk_id=5))
    await asyncio.wait_for(sub.run_worker(), 1)
    assert got == [0, 1, 2]


async def test_context_carries_chunk_fields() -> None:
    ctxs: list[MessageContext] = []
    sub, consumer = make_sub(callback=lambda m, c: ctxs.append(c), name="ref")
    on_chunk = attach(sub, consumer)
    on_chunk(parse_chunk(memoryview(build_chunk([b"a"], chunk_id=3, timestamp=777)), committed_chunk_id=3))
    task = asyncio.ensure_future(sub.run_worker())
    await asyncio.sleep(0.01)
    (ctx,) = ctxs
    assert ctx == MessageContext(consumer, "s1", 7, "ref", 3, 777, 3)  # type: ignore[arg-type]
    sub.close_local()
    await task


async def test_auto_offset_tracking_every_n_and_on_close() -> None:
    sub, consumer = make_sub(
        callback=lambda m, c: None, name="ref", tracking=OffsetTracking(messages=4, seconds=60)
    )
    on_chunk = attach(sub, consumer)
    task = asyncio.ensure_future(sub.run_worker())
    on_chunk(chunk(msgs(0, 3)))
    await asyncio.sleep(0.01)
    assert consumer.client.stored == []
    on_chunk(chunk(msgs(3, 3), chunk_id=3))
    await asyncio.sleep(0.01)
    assert consumer.client.stored == [("ref", "s1", 5)]
    on_chunk(chunk(msgs(6, 1), chunk_id=6))
    await asyncio.sleep(0.01)
    await consumer.unsubscribe(sub.id)
    assert consumer.client.stored == [("ref", "s1", 5), ("ref", "s1", 6)]
    await task


async def test_auto_offset_tracking_timer() -> None:
    sub, consumer = make_sub(callback=lambda m, c: None, name="ref", tracking=OffsetTracking(seconds=0.02))
    on_chunk = attach(sub, consumer)
    task = asyncio.ensure_future(sub.run_worker())
    on_chunk(chunk(msgs(0, 3)))
    await asyncio.sleep(0.1)
    assert consumer.client.stored == [("ref", "s1", 2)]
    sub.close_local()
    await task


async def test_corrupt_chunk_skipped_with_credit() -> None:
    got: list[int] = []
    sub, consumer = make_sub(callback=lambda m, c: got.append(c.offset))
    on_chunk = attach(sub, consumer)
    bad = chunk(msgs(0, 2))
    bad.num_records = 3  # inconsistent with the data: DecodeError when cut
    on_chunk(bad)
    on_chunk(chunk(msgs(3, 2), chunk_id=3))
    task = asyncio.ensure_future(sub.run_worker())
    await asyncio.sleep(0.01)
    assert got == [3, 4] and len(consumer.client.credits) == 2
    sub.close_local()
    await task


# --------------------------------------------------------------------------- iteration


async def test_message_stream_back_pressure() -> None:
    sub, consumer = make_sub(credit=2)
    stream = MessageStream(consumer, sub)  # type: ignore[arg-type]
    await stream.start()
    assert consumer.activated == [sub]
    on_chunk = sub.attach(consumer.client, 3, 0)  # type: ignore[arg-type]
    on_chunk(chunk(msgs(0, 2)))
    on_chunk(chunk(msgs(2, 2), chunk_id=2))
    out = []
    async for m, ctx in stream:
        out.append((m, ctx.offset))
        if len(out) == 2:
            assert consumer.client.credits == []  # chunk 0 not finished until the next ask
        if len(out) == 3:
            assert consumer.client.credits == [(3, 1)]
            assert sub.buffered_chunks() == 0
        if len(out) == 4:
            break
    assert out == [(b"m0", 0), (b"m1", 1), (b"m2", 2), (b"m3", 3)]
    await stream.aclose()
    with pytest.raises(StopAsyncIteration):
        await stream.__anext__()


async def test_message_stream_raises_when_lost() -> None:
    sub, consumer = make_sub()
    async with MessageStream(consumer, sub) as stream:  # type: ignore[arg-type]
        on_chunk = sub.attach(consumer.client, 3, 0)  # type: ignore[arg-type]
        on_chunk(chunk(msgs(0, 1)))
        sub.fail(ConnectionClosed("gone"))
        assert (await stream.__anext__())[0] == b"m0"  # buffered messages first
        with pytest.raises(ConnectionClosed):
            await stream.__anext__()


async def test_batch_stream() -> None:
    flt = FilterConfiguration(["x"], predicate=lambda m: m not in (b"m1", b"m2", b"m3"))
    sub, consumer = make_sub(filter_input=flt, credit=5)
    batches = BatchStream(consumer, sub)  # type: ignore[arg-type]
    await batches.start()
    on_chunk = sub.attach(consumer.client, 3, 0)  # type: ignore[arg-type]
    on_chunk(chunk(msgs(0, 3)))  # m0 kept, m1 m2 filtered
    on_chunk(chunk(msgs(3, 1), chunk_id=3))  # all filtered: skipped
    on_chunk(chunk(msgs(4, 2), chunk_id=4))  # intact: offsets is a range
    b1 = await batches.__anext__()
    assert b1.messages == [b"m0"] and list(b1.offsets) == [0] and consumer.client.credits == []
    b2 = await batches.__anext__()
    assert b2.messages == [b"m4", b"m5"] and b2.offsets == range(4, 6)
    assert sum(n for _, n in consumer.client.credits) == 2  # first batch done + the filtered-out chunk
    await batches.aclose()
    with pytest.raises(StopAsyncIteration):
        await batches.__anext__()


async def test_fast_path_decoder_error_resumes_after_bad_message() -> None:
    got: list[tuple[str, int]] = []

    def decoder(data: memoryview) -> str:
        if bytes(data) in (b"m0", b"m3", b"m9"):
            raise ValueError("undecodable")
        return bytes(data).decode()

    async def cb(m: str, ctx: MessageContext) -> None:
        got.append((m, ctx.offset))

    sub, consumer = make_sub(callback=cb, decoder=decoder)
    assert sub.is_async
    on_chunk = attach(sub, consumer)
    on_chunk(chunk(msgs(0, 10)))
    task = asyncio.ensure_future(sub.run_worker())
    await asyncio.sleep(0.01)
    assert got == [(f"m{i}", i) for i in (1, 2, 4, 5, 6, 7, 8)]
    assert sub.last_offset == 9 and consumer.client.credits == [(3, 1)]
    sub.close_local()
    await task


async def test_sync_callback_returning_awaitable_is_awaited() -> None:
    got: list[int] = []

    async def later(offset: int) -> None:
        got.append(offset)

    sub, consumer = make_sub(callback=lambda m, c: later(c.offset))
    on_chunk = attach(sub, consumer)
    on_chunk(chunk(msgs(0, 3)))
    task = asyncio.ensure_future(sub.run_worker())
    await asyncio.sleep(0.01)
    assert got == [0, 1, 2]
    sub.close_local()
    await task
