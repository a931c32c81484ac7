"""The consumer hot path: ``Chunk.payloads``, the fast dispatch loop, unused contexts, credit coalescing."""

from __future__ import annotations

import asyncio
import logging
import random
import struct
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rabbitstream._consumer._introspect import context_unused
from rabbitstream._consumer._sub import Subscription
from rabbitstream._consumer._types import (
    CreditPolicy,
    MessageContext,
    build_subscription_properties,
)
from rabbitstream.constants import ConsumerOffsetSpecification
from rabbitstream.exceptions import DecodeError
from rabbitstream.protocol import _entries
from rabbitstream.protocol._chunk import CHUNK_HEADER_SIZE, Chunk, parse_chunk
from rabbitstream.protocol._subentry import encode_sub_entry
from rabbitstream.testing import build_chunk, chunk_of_entries, simple_entry
from rabbitstream.utils import FilterConfiguration


def fixed(n: int, size: int = 20, first: int = 0) -> list[bytes]:
    return [(b"%d" % i).rjust(size, b"m") for i in range(first, first + n)]


# --------------------------------------------------------------------------- Chunk.payloads


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 100, 255, 256, 257, 511, 512, 513, 1000, 4097])
def test_payloads_uniform_and_variable(n: int) -> None:
    rng = random.Random(n)
    for msgs in (fixed(n), [rng.randbytes(rng.randrange(0, 50)) for _ in range(n)]):
        c = parse_chunk(build_chunk(msgs, chunk_id=7))
        got = c.payloads()
        assert got == msgs and all(type(m) is bytes for m in got)
        assert [bytes(m) for m in c.messages()] == msgs  # the memoryview API is unchanged
        assert c.payloads() == msgs  # from the cached memoryviews
        for skip in (1, n // 2, n - 1, n, n + 3):
            assert parse_chunk(build_chunk(msgs)).payloads(skip) == msgs[skip:]


def test_payloads_with_sub_entries() -> None:
    entries = [simple_entry(b"s0"), encode_sub_entry([b"b1", b"b2"], None), simple_entry(b"s3")]
    c = parse_chunk(chunk_of_entries(entries, 4))
    assert c.payloads() == [b"s0", b"b1", b"b2", b"s3"]
    assert parse_chunk(chunk_of_entries(entries, 4)).payloads(2) == [b"b2", b"s3"]
    msgs = fixed(300)
    assert parse_chunk(build_chunk(msgs, sub_entries=64)).payloads() == msgs


def test_payloads_tracking_chunk_is_empty() -> None:
    assert parse_chunk(build_chunk([b"t"], chunk_type=2)).payloads() == []


@pytest.mark.parametrize(
    ("entries", "records", "num_entries", "match"),
    [
        ([simple_entry(b"a"), simple_entry(b"b")], 3, None, "declares 3 records"),
        ([simple_entry(b"a"), simple_entry(b"b")], 2, 1, "declares 1 entries"),
        ([simple_entry(b"abc")[:-1]], 1, None, "overruns"),
        ([simple_entry(b"ab"), b"\x00\x00"], 2, 1, "truncated entry header"),
        ([simple_entry(b"x" * 10)] * 9, 10, 10, "declares 10"),  # uniform-looking, one entry short
    ],
)
def test_payloads_errors(entries: list[bytes], records: int, num_entries: int | None, match: str) -> None:
    with pytest.raises(DecodeError, match=match):
        parse_chunk(chunk_of_entries(entries, records, num_entries=num_entries)).payloads()


def test_payloads_uniform_rejects_a_single_bad_size_byte() -> None:
    msgs = fixed(40)
    for j in range(1, 4):
        raw = bytearray(build_chunk(msgs))
        raw[CHUNK_HEADER_SIZE + 17 * 24 + j] ^= 0x01
        with pytest.raises(DecodeError):
            parse_chunk(bytes(raw), check_crc=False).payloads()


def test_uniform_struct_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_entries, "_UNIFORM_STRUCTS", {})
    for size in range(1, 200):
        msgs = [b"z" * size] * 300
        assert parse_chunk(build_chunk(msgs)).payloads() == msgs
    assert 0 < len(_entries._UNIFORM_STRUCTS) <= _entries._UNIFORM_STRUCTS_MAX


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=12), max_size=40), st.integers(0, 45))
def test_payloads_match_records_property(msgs: list[bytes], skip: int) -> None:
    raw = build_chunk(msgs, chunk_id=3)
    assert parse_chunk(raw).payloads(skip) == [bytes(m) for _, m in parse_chunk(raw).records()][skip:]


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_payloads_fuzz_only_typed_errors(body: bytes) -> None:
    header = bytearray(build_chunk([])[:CHUNK_HEADER_SIZE])
    struct.pack_into(">HI", header, 2, 9, 9)
    struct.pack_into(">I", header, 36, len(body))
    try:
        got = parse_chunk(bytes(header) + body, check_crc=False).payloads()
    except DecodeError:
        return
    assert len(got) == 9


# --------------------------------------------------------------------------- context_unused


class _WithCall:
    def __call__(self, msg: Any, ctx: Any) -> None:
        pass

    def method(self, msg: Any, _ctx: Any) -> None:
        pass

    def uses(self, msg: Any, ctx: Any) -> Any:
        return ctx


def test_context_unused_detection() -> None:
    def unused(msg: Any, _ctx: Any) -> None:
        len(msg)

    async def unused_async(msg: Any, ctx: Any) -> None:
        await asyncio.sleep(0)

    def used(msg: Any, ctx: Any) -> Any:
        return ctx.offset

    def closure(msg: Any, ctx: Any) -> Any:
        return lambda: ctx

    def frame(msg: Any, ctx: Any) -> Any:
        return locals()

    def frame2(msg: Any, ctx: Any) -> Any:
        return sys._getframe()

    def varargs(*args: Any) -> None:
        pass

    def three(msg: Any, ctx: Any, extra: int = 0) -> None:
        pass

    def deleted(msg: Any, ctx: Any) -> None:
        del ctx

    def comprehension(msg: Any, ctx: Any) -> Any:
        return [ctx for _ in msg]

    assert context_unused(unused) and context_unused(unused_async)
    assert context_unused(_WithCall()) and context_unused(_WithCall().method)
    for fn in (used, closure, frame, frame2, varargs, three, deleted, comprehension, _WithCall().uses):
        assert not context_unused(fn), fn
    assert not context_unused(print) and not context_unused(lambda m, c: c)
    assert context_unused(lambda m, c: None)


# --------------------------------------------------------------------------- dispatch


class FakeClient:
    def __init__(self) -> None:
        self.is_closed = False
        self.credits: list[tuple[int, int]] = []

    def credit(self, wire_id: int, n: int) -> None:
        self.credits.append((wire_id, n))


def make_sub(callback: Any, *, decoder: Any = None, credit: int = 3, pf: Any = None) -> Subscription:
    flt = FilterConfiguration(["x"], predicate=pf) if pf is not None else None
    sub = Subscription(
        None,  # type: ignore[arg-type]
        7,
        "s1",
        callback=callback,
        decoder=decoder,
        props=build_subscription_properties(None, flt, None),
        offset_spec=ConsumerOffsetSpecification(),
        initial_credit=credit,
        credit_policy=CreditPolicy.AFTER_PROCESSING,
        listener=None,
        tracking=None,
    )
    return sub


def chunk(msgs: list[bytes], chunk_id: int = 0) -> Chunk:
    return parse_chunk(build_chunk(msgs, chunk_id=chunk_id, timestamp=99))


async def test_fast_dispatch_contexts_only_when_read() -> None:
    seen: list[Any] = []

    def reads(msg: bytes, ctx: MessageContext) -> None:
        seen.append((msg, ctx))

    sub = make_sub(reads)
    assert not sub.context_unused
    assert await sub._dispatch(chunk(fixed(300), 1000), 1000) == (1299, 300)
    assert [m for m, _ in seen] == fixed(300)
    assert [c.offset for _, c in seen] == list(range(1000, 1300))
    assert all(type(c) is MessageContext and c.timestamp == 99 and c.stream == "s1" for _, c in seen)

    ctxs: list[Any] = []
    sub = make_sub(lambda m, _c: ctxs.append(None))
    assert sub.context_unused
    assert await sub._dispatch(chunk(fixed(10)), 0) == (9, 10)
    assert ctxs == [None] * 10


async def test_fast_dispatch_partial_chunk() -> None:
    got: list[int] = []
    sub = make_sub(lambda m, c: got.append(c.offset))
    assert await sub._dispatch(chunk(fixed(20), 100), 105) == (119, 15)
    assert got == list(range(105, 120))


async def test_fast_dispatch_decoder_and_callback_errors(caplog: pytest.LogCaptureFixture) -> None:
    got: list[tuple[str, int]] = []

    def decoder(data: bytes) -> str:
        assert type(data) is bytes
        if data.endswith(b"m3"):
            raise ValueError("undecodable")
        return data.decode()

    def cb(m: str, ctx: MessageContext) -> None:
        if m.endswith("m5"):
            raise RuntimeError("boom")
        got.append((m[-2:], ctx.offset))

    sub = make_sub(cb, decoder=decoder)
    msgs = [b"m%d" % i for i in range(8)]
    with caplog.at_level(logging.ERROR, "rabbitstream.consumer"):
        assert await sub._dispatch(chunk(msgs, 10), 10) == (17, 8)
    assert got == [(f"m{i}", 10 + i) for i in (0, 1, 2, 4, 6, 7)]
    assert [r.args[0] for r in caplog.records if r.args] == [13, 15]  # type: ignore[index]


async def test_fast_dispatch_every_message_fails_is_linear(caplog: pytest.LogCaptureFixture) -> None:
    calls = 0

    def cb(m: bytes, _c: Any) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("always")

    sub = make_sub(cb)
    with caplog.at_level(logging.CRITICAL, "rabbitstream.consumer"):
        assert await sub._dispatch(chunk(fixed(2000)), 0) == (1999, 2000)
    assert calls == 2000


async def test_sync_callback_returning_awaitables_in_order_and_close() -> None:
    order: list[str] = []
    sub: Subscription

    def cb(m: bytes, ctx: MessageContext) -> Any:
        order.append(f"call{ctx.offset}")
        if ctx.offset % 2:
            return None

        async def later() -> None:
            await asyncio.sleep(0)
            order.append(f"done{ctx.offset}")
            if ctx.offset == 4:
                sub.close_local()

        return later()

    sub = make_sub(cb)
    assert await sub._dispatch(chunk(fixed(10)), 0) == (4, 5)
    assert order == ["call0", "done0", "call1", "call2", "done2", "call3", "call4", "done4"]


async def test_async_callback_error_and_close() -> None:
    got: list[int] = []
    sub: Subscription

    async def cb(m: bytes, ctx: MessageContext) -> None:
        if ctx.offset == 2:
            raise RuntimeError("boom")
        got.append(ctx.offset)
        if ctx.offset == 6:
            sub.close_local()

    sub = make_sub(cb)
    assert await sub._dispatch(chunk(fixed(10)), 0) == (6, 7)
    assert got == [0, 1, 3, 4, 5, 6]


async def test_post_filter_path_gives_bytes() -> None:
    got: list[Any] = []
    sub = make_sub(lambda m, c: got.append((m, c.offset)), pf=lambda m: m.endswith(b"1"))
    assert await sub._dispatch(chunk([b"a0", b"a1", b"b1", b"c2"], 5), 5) == (8, 4)
    assert got == [(b"a1", 6), (b"b1", 7)]


def test_batches_and_iter_pairs_give_bytes() -> None:
    sub = make_sub(None)
    batch, last, n = sub.make_batch(chunk(fixed(300), 50), 60)
    assert (last, n) == (349, 290) and batch.messages == fixed(300)[10:]
    assert batch.offsets == range(60, 350)
    state = [-1, 0]
    pairs = list(sub.iter_pairs(chunk(fixed(5), 50), 52, state))
    assert [(m, c.offset) for m, c in pairs] == list(zip(fixed(5)[2:], range(52, 55), strict=True))
    assert state == [54, 3]
    batch, last, n = sub.make_batch(parse_chunk(build_chunk([b"t"], chunk_type=1)), 0)
    assert (batch.messages, last, n) == ([], -1, 0)


# --------------------------------------------------------------------------- credits


def test_after_processing_credits_are_coalesced_but_never_withheld() -> None:
    sub = make_sub(None, credit=5)  # batches of 2
    client = FakeClient()
    on_chunk = sub.attach(client, 4, 0)  # type: ignore[arg-type]
    for i in range(5):
        on_chunk(chunk([b"x"], i))
    gen = sub.gen
    for i in range(5):
        sub.queue.popleft()
        sub.chunk_done(gen, i, 1)
    assert client.credits == [(4, 2), (4, 2), (4, 1)]  # the last one: the queue ran dry
    sub.chunk_done(gen - 1, 9, 1)  # a chunk of a previous connection: no credit
    assert client.credits == [(4, 2), (4, 2), (4, 1)]
    assert make_sub(None, credit=3)._credit_batch == 1
