"""Issue #14 item 1: a chunk's cost follows its bytes, not the records it declares.

Sub-entries of 65,535 empty records compress to a few hundred bytes; before the fix
every record of the chunk was cut (one memoryview, then one ``bytes``) before the first
message was delivered, and the count was compared with the header only afterwards.
"""

from __future__ import annotations

import asyncio
import tracemalloc
import zlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rabbitstream._consumer._sub import Subscription
from rabbitstream._consumer._types import CreditPolicy, build_subscription_properties
from rabbitstream.constants import ConsumerOffsetSpecification
from rabbitstream.exceptions import DecodeError
from rabbitstream.plugin import build_registry, hookimpl
from rabbitstream.protocol._chunk import (
    DEFAULT_CHUNK_LIMITS,
    DEFAULT_MAX_CHUNK_RECORDS,
    ChunkLimits,
    parse_chunk,
)
from rabbitstream.protocol._subentry import encode_sub_entry
from rabbitstream.testing import chunk_of_entries, simple_entry


class CountingDeflate:
    """Codec 5: zlib, counting the calls to ``decompress``."""

    code = 5
    name = "test-deflate"
    calls = 0

    def compress(self, data: bytes) -> bytes:
        return zlib.compress(data, 9)

    def decompress(self, data: bytes | memoryview, uncompressed_size: int) -> bytes:
        CountingDeflate.calls += 1
        return zlib.decompress(data)


class _Plugin:
    @hookimpl
    def rabbitstream_compression_codecs(self) -> list[object]:
        return [CountingDeflate()]


REG = build_registry(autoload=False, plugins=[_Plugin()])
CODEC = REG.compression_codec(5)
MAX = 0xFFFF
BOMB = encode_sub_entry([b""] * MAX, CODEC)  # 65,535 empty records in a few hundred bytes


def test_bomb_is_small() -> None:
    assert len(BOMB) < 400


# --------------------------------------------------------------------------- lazy runs


def test_runs_decompress_one_sub_entry_at_a_time() -> None:
    n = 16
    c = parse_chunk(chunk_of_entries([BOMB] * n, n * MAX), registry=REG)
    CountingDeflate.calls = 0
    runs = c.payload_runs()
    assert CountingDeflate.calls == 0  # nothing before the first message is taken
    first = next(runs)
    assert len(first) == MAX and CountingDeflate.calls == 1
    rest = sum(len(r) for r in runs)
    assert rest == (n - 1) * MAX and CountingDeflate.calls == n


def test_consuming_a_bomb_chunk_is_bounded_by_one_sub_entry() -> None:
    """16 x 65,535 records from ~5 KiB: the peak is one sub-entry's records, not the chunk's."""
    n = 16
    raw = chunk_of_entries([BOMB] * n, n * MAX)
    c = parse_chunk(raw, registry=REG)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        total = 0
        for run in c.payload_runs():
            total += len(run)
            del run
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert total == n * MAX
    # one run: 65,535 empty bytes (the b"" singleton) in a list + the 262 KB body + the
    # chunk's bytes copy; the whole chunk at once would be >= 16 x 0.5 MB
    assert peak < 4 * len(raw) + 2 * 1024 * 1024, peak


def test_skip_does_not_decompress_sub_entries_below_it() -> None:
    c = parse_chunk(chunk_of_entries([BOMB, BOMB, simple_entry(b"last")], 2 * MAX + 1), registry=REG)
    CountingDeflate.calls = 0
    assert [r for run in c.payload_runs(2 * MAX) for r in run] == [b"last"]
    assert CountingDeflate.calls == 0
    assert [len(r) for r in c.payload_runs(MAX + 5)] == [MAX - 5, 1]
    assert CountingDeflate.calls == 1


def test_runs_same_records_as_payloads_and_messages() -> None:
    msgs = [b"m%d" % i for i in range(300)]
    entries = [simple_entry(msgs[0]), encode_sub_entry(msgs[1:120], CODEC), simple_entry(msgs[120])]
    entries += [encode_sub_entry(msgs[121:300], None)]
    raw = chunk_of_entries(entries, 300)
    for skip in (0, 1, 50, 120, 121, 200, 299, 300):
        runs = list(parse_chunk(raw, registry=REG).payload_runs(skip))
        assert [r for run in runs for r in run] == msgs[skip:]
        assert all(type(r) is bytes for run in runs for r in run)
        assert parse_chunk(raw, registry=REG).payloads(skip) == msgs[skip:]
    assert [bytes(m) for m in parse_chunk(raw, registry=REG).messages()] == msgs


# --------------------------------------------------------------------------- counts while walking


@pytest.mark.parametrize("api", ["payload_runs", "payloads", "messages"])
def test_record_count_checked_before_decompressing(api: str) -> None:
    """The header says 10 records; the first sub-entry alone holds 65,535: nothing is inflated."""
    c = parse_chunk(chunk_of_entries([BOMB, BOMB], 10), registry=REG)
    CountingDeflate.calls = 0
    with pytest.raises(DecodeError, match="declares 10 records"):
        result = getattr(c, api)()
        if api == "payload_runs":
            next(result)
    assert CountingDeflate.calls == 0


def test_entry_count_checked_before_decompressing() -> None:
    c = parse_chunk(chunk_of_entries([BOMB, BOMB, BOMB], 3 * MAX, num_entries=2), registry=REG)
    CountingDeflate.calls = 0
    with pytest.raises(DecodeError, match="declares 2 entries"):
        next(c.payload_runs())
    assert CountingDeflate.calls == 0


def test_records_from_checks_counts_while_walking() -> None:
    c = parse_chunk(chunk_of_entries([simple_entry(b"a"), BOMB, BOMB], 5), registry=REG)
    CountingDeflate.calls = 0
    with pytest.raises(DecodeError, match="declares 5 records"):
        list(c.records_from(3))
    assert CountingDeflate.calls == 0


def test_chunk_decompression_budget_checked_before_decompressing() -> None:
    limits = ChunkLimits(max_uncompressed=3 * MAX * 4)  # room for 3 of the 4 sub-entries
    c = parse_chunk(chunk_of_entries([BOMB] * 4, 4 * MAX), registry=REG, limits=limits)
    CountingDeflate.calls = 0
    with pytest.raises(DecodeError, match="inflate to more than"):
        next(c.payload_runs())
    assert CountingDeflate.calls == 0


# --------------------------------------------------------------------------- limits


def test_default_limits() -> None:
    assert DEFAULT_CHUNK_LIMITS.max_records == DEFAULT_MAX_CHUNK_RECORDS == 4 * 1024 * 1024
    assert DEFAULT_CHUNK_LIMITS.max_uncompressed == 1 << 30
    assert DEFAULT_CHUNK_LIMITS.max_sub_entry_uncompressed == 64 << 20
    with pytest.raises(ValueError):
        ChunkLimits(max_records=0)


@pytest.mark.parametrize("api", ["payload_runs", "payloads", "messages"])
def test_max_records_limit(api: str) -> None:
    raw = chunk_of_entries([BOMB, BOMB], 2 * MAX)
    c = parse_chunk(raw, registry=REG, limits=ChunkLimits(max_records=MAX))
    CountingDeflate.calls = 0
    with pytest.raises(DecodeError, match="max_records"):
        getattr(c, api)()
    assert CountingDeflate.calls == 0
    assert len(parse_chunk(raw, registry=REG, limits=ChunkLimits(max_records=2 * MAX)).payloads()) == 2 * MAX


def test_sub_entry_limit() -> None:
    c = parse_chunk(
        chunk_of_entries([BOMB], MAX), registry=REG, limits=ChunkLimits(max_sub_entry_uncompressed=1000)
    )
    with pytest.raises(DecodeError, match="limit 1000"):
        next(c.payload_runs())


def test_consumer_limits_reach_the_parser() -> None:
    from rabbitstream import Consumer
    from rabbitstream._connection._transport import StreamProtocol
    from rabbitstream.protocol import _frames as F

    async def main() -> None:
        consumer = Consumer("h", username="u", password="p", max_chunk_records=7, max_chunk_uncompressed=99,
                            max_inbound_frame_size=1 << 20)  # fmt: skip
        options = consumer._pool.options
        assert options.chunk_limits == ChunkLimits(max_records=7, max_uncompressed=99)
        assert options.max_inbound_frame_size == 1 << 20
        with pytest.raises(ValueError):
            Consumer("h", username="u", password="p", max_chunk_records=0)
        proto = StreamProtocol(asyncio.get_running_loop(), "h:1", registry=REG,
                               chunk_limits=options.chunk_limits, max_inbound_frame_size=1 << 20)  # fmt: skip
        assert proto.conn.max_inbound_frame_size == 1 << 20
        seen: list[Any] = []
        proto.set_subscription(3, seen.append)
        proto._on_deliver(F.Deliver(subscription_id=3, chunk=chunk_of_entries([BOMB], MAX)))
        (c,) = seen
        assert c.max_records == 7 and c.max_uncompressed_chunk == 99
        with pytest.raises(DecodeError, match="max_records"):
            c.payloads()

    asyncio.run(main())


# --------------------------------------------------------------------------- dispatch


def _sub(callback: Any) -> Subscription:
    return Subscription(
        None,  # type: ignore[arg-type]
        7,
        "s1",
        callback=callback,
        decoder=None,
        props=build_subscription_properties(None, None, None),
        offset_spec=ConsumerOffsetSpecification(),
        initial_credit=3,
        credit_policy=CreditPolicy.AFTER_PROCESSING,
        listener=None,
        tracking=None,
    )


def test_dispatch_yields_to_the_event_loop_inside_a_big_chunk() -> None:
    """A sync callback over 16 x 65,535 records: the loop (reader, heartbeats) still runs."""
    n = 16

    async def main() -> tuple[int, int, int]:
        got = [0]

        def callback(msg: bytes, ctx: Any) -> None:
            got[0] += 1

        ticks = [0]

        async def ticker() -> None:
            while True:
                ticks[0] += 1
                await asyncio.sleep(0)

        task = asyncio.ensure_future(ticker())
        await asyncio.sleep(0)
        before = ticks[0]
        sub = _sub(callback)
        c = parse_chunk(chunk_of_entries([BOMB] * n, n * MAX), registry=REG)
        last, seen = await sub._dispatch(c, 0)
        task.cancel()
        return last, seen, ticks[0] - before

    last, seen, ticks = asyncio.run(main())
    assert (last, seen) == (n * MAX - 1, n * MAX)
    assert ticks >= n // 2


def test_dispatch_stops_at_a_bad_sub_entry_and_reports_the_last_delivered(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bad = bytearray(encode_sub_entry([b"x", b"y"], CODEC))
    bad[-3:] = b"\xff\xff\xff"  # corrupt zlib stream: fails only when decompressed
    entries = [simple_entry(b"a"), encode_sub_entry([b"b", b"c"], CODEC), bytes(bad), simple_entry(b"z")]

    async def main() -> tuple[list[bytes], tuple[int, int]]:
        got: list[bytes] = []
        sub = _sub(lambda m, ctx: got.append(m))
        res = await sub._dispatch(parse_chunk(chunk_of_entries(entries, 6), registry=REG), 0)
        return got, res

    got, (last, seen) = asyncio.run(main())
    assert got == [b"a", b"b", b"c"]
    assert (last, seen) == (2, 3)  # chunk_id 0: never an offset past an undelivered record
    assert "offset 3" in caplog.text


def test_iterator_pairs_are_lazy() -> None:
    sub = _sub(None)
    c = parse_chunk(chunk_of_entries([BOMB] * 4, 4 * MAX), registry=REG)
    state = [-1, 0]
    CountingDeflate.calls = 0
    it = sub.iter_pairs(c, 0, state)
    for _ in range(10):
        next(it)
    assert CountingDeflate.calls == 1 and state == [9, 10]
    assert sum(1 for _ in it) == 4 * MAX - 10 and CountingDeflate.calls == 4


# --------------------------------------------------------------------------- property


@st.composite
def _layouts(draw: st.DrawFn) -> tuple[list[bytes], list[bytes], int]:
    """Random mixes of simple entries, uncompressed and compressed sub-entries."""
    msgs: list[bytes] = []
    entries: list[bytes] = []
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(["simple", "plain", "deflate"]))
        batch = draw(st.lists(st.binary(max_size=12), min_size=1, max_size=30))
        if kind == "simple":
            batch = batch[:1]
            entries.append(simple_entry(batch[0]))
        else:
            entries.append(encode_sub_entry(batch, CODEC if kind == "deflate" else None))
        msgs.extend(batch)
    skip = draw(st.integers(0, len(msgs) + 2))
    return msgs, entries, skip


@settings(max_examples=300, deadline=None)
@given(_layouts())
def test_runs_match_the_eager_apis(layout: tuple[list[bytes], list[bytes], int]) -> None:
    msgs, entries, skip = layout
    raw = chunk_of_entries(entries, len(msgs)) if entries else chunk_of_entries([], 0, num_entries=0)
    runs = list(parse_chunk(raw, registry=REG).payload_runs(skip))
    assert all(runs) and [r for run in runs for r in run] == msgs[skip:]
    assert parse_chunk(raw, registry=REG).payloads(skip) == msgs[skip:]
    assert [bytes(m) for _, m in parse_chunk(raw, registry=REG).records_from(skip)] == msgs[skip:]


def test_uniform_empty_records_all_cut() -> None:
    """Equal-size simple entries of empty records: the last one starts at the end of the data and
    was dropped by the eager APIs' fast path (found by the property test above)."""
    n = 40
    raw = chunk_of_entries([simple_entry(b"")] * n, n)
    assert [bytes(m) for _, m in parse_chunk(raw, registry=REG).records()] == [b""] * n
    assert len(list(parse_chunk(raw, registry=REG).records_from(3))) == n - 3
