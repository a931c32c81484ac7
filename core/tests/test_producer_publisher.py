"""Publisher hot path without a broker: coalesced writes, batch encoding, confirms."""

from __future__ import annotations

import asyncio
import struct
from typing import Any

import pytest
from rabbitstream._producer._publisher import Publisher
from rabbitstream.utils import ConfirmationStatus, RawMessage


class FakeClient:
    frame_max = 1048576
    is_closed = False
    is_writing_paused = False

    def __init__(self) -> None:
        self.writes: list[list[bytes]] = []

    def write(self, data: bytes) -> None:
        self.writes.append([bytes(data)])

    def writelines(self, parts: list[bytes]) -> None:
        self.writes.append([bytes(p) for p in parts])


def _ids(frames: list[bytes]) -> list[int]:
    """Publishing ids of v1 Publish frames (simple entries and sub-entries)."""
    out = []
    for f in frames:
        (n,) = struct.unpack_from(">I", f, 9)
        pos = 13
        for _ in range(n):
            (pid,) = struct.unpack_from(">Q", f, pos)
            out.append(pid)
            pos += 8
            if f[pos] & 0x80:  # sub-entry: byte0, count:2, uncompressed:4, length:4, body
                (length,) = struct.unpack_from(">I", f, pos + 7)
                pos += 11 + length
            else:
                (size,) = struct.unpack_from(">I", f, pos)
                pos += 4 + size
    return out


def _publisher(**kw: Any) -> tuple[Publisher, FakeClient]:
    opts: dict[str, Any] = {
        "limit": 100_000,
        "batch_size": 500,
        "linger": 10.0,
        "confirm_timeout": None,
        "filtering": False,
        "spawn": lambda c: asyncio.ensure_future(c),
    }
    opts.update(kw)
    pub = Publisher("s", None, **opts)
    client = FakeClient()
    pub.attach(client, 0, None)  # type: ignore[arg-type]
    return pub, client


async def test_writes_of_one_iteration_are_coalesced() -> None:
    pub, client = _publisher()
    for _ in range(5):
        pub.add_batch([b"m"] * 10, None, None)
    pub.add_sub_entry(b"\x80\x00\x01\x00\x00\x00\x01\x00\x00\x00\x01x", 1, None, None)
    pub.add_batch([RawMessage(b"r")], None, None)
    assert client.writes == []  # nothing until the loop runs
    await asyncio.sleep(0)
    assert len(client.writes) == 1
    assert _ids(client.writes[0]) == list(range(1, 53))  # ids in order, sub-entry included


async def test_close_writes_queued_frames_at_once() -> None:
    pub, client = _publisher()
    pub.add_batch([b"a", b"b"], None, None)
    pub.close()
    assert [_ids(w) for w in client.writes] == [[1, 2]]
    await asyncio.sleep(0)
    assert len(client.writes) == 1


async def test_detach_drops_queued_frames_and_attach_resends_once() -> None:
    pub, client = _publisher()
    pub.add_batch([b"a", b"b", b"c"], None, None)
    pub.detach()
    await asyncio.sleep(0)
    assert client.writes == []
    other = FakeClient()
    pub.attach(other, 1, None)  # type: ignore[arg-type]
    await asyncio.sleep(0)
    assert [_ids(w) for w in other.writes] == [[1, 2, 3]]


async def test_linger_flush_writes_directly() -> None:
    pub, client = _publisher(linger=0.001)
    pub.add(b"x", None, None)
    await asyncio.sleep(0.05)
    assert [_ids(w) for w in client.writes] == [[1]]


async def test_batch_of_ints_is_refused() -> None:
    pub, _ = _publisher()
    with pytest.raises(TypeError, match="not int"):
        pub.add_batch([RawMessage(b"a"), 10**12], None, None)  # type: ignore[list-item]
    with pytest.raises(TypeError, match="not int"):
        pub.add(5, None, None)  # type: ignore[arg-type]


async def test_caller_set_ids_in_batch() -> None:
    pub, _ = _publisher()
    ids = pub.add_batch([RawMessage(b"a", 10), b"b", RawMessage(b"c")], None, None)
    assert ids == [10, 11, 12]
    assert pub.next_id == 13


async def test_confirm_shared_and_mixed_callbacks() -> None:
    pub, _ = _publisher()
    seen: list[ConfirmationStatus] = []
    other: list[int] = []
    ids = pub.add_batch([b"a"] * 3, seen.append, None)
    pub.add(b"b", None, None)
    pub.add(b"c", lambda s: other.append(s.message_id), None)
    pub.flush()
    assert pub.inflight == 5
    pub.on_confirm(ids)
    assert seen == [ConfirmationStatus(i, True, 0) for i in ids]
    pub.on_confirm([4, 5, 99])  # 99: unknown id, ignored
    assert other == [5]
    assert pub.inflight == 0 and not pub.pending and not pub.callbacks


async def test_confirm_callback_error_and_async_callback() -> None:
    pub, _ = _publisher()
    done: list[int] = []

    def bad(status: ConfirmationStatus) -> None:
        raise RuntimeError("boom")

    async def good(status: ConfirmationStatus) -> None:
        done.append(status.message_id)

    a = pub.add_batch([b"a"] * 2, bad, None)
    b = pub.add_batch([b"b"] * 2, good, None)
    pub.on_confirm(a + b)  # a failing callback does not stop the others
    for _ in range(5):
        await asyncio.sleep(0)
    assert done == b


async def test_callback_modes_switch() -> None:
    """One shared callback is kept once; another callback (or none) later gets per-id entries."""
    pub, _ = _publisher()
    got: dict[str, list[tuple[int, bool, int]]] = {"a": [], "b": []}

    def cb_a(s: ConfirmationStatus) -> None:
        got["a"].append((s.message_id, s.is_confirmed, s.response_code))

    def cb_b(s: ConfirmationStatus) -> None:
        got["b"].append((s.message_id, s.is_confirmed, s.response_code))

    pub.add_batch([b"x"] * 3, cb_a, None)  # ids 1-3
    pub.add(b"y", cb_a, None)  # 4, buffered
    assert pub.cb_all is cb_a and not pub.callbacks
    pub.add(b"z", None, None)  # 5: no callback -> per-id entries for 1-4
    pub.add_sub_entry(b"\x80\x00\x01\x00\x00\x00\x01\x00\x00\x00\x01x", 1, None, cb_b)  # 6
    assert pub.cb_all is None and set(pub.callbacks) == {1, 2, 3, 4, 6}
    pub.on_confirm([1, 5, 6])
    pub.fail_ids([2], 0x10)
    pub.fail_all(10003)
    assert got["a"] == [(1, True, 0), (2, False, 0x10), (3, False, 10003), (4, False, 10003)]
    assert got["b"] == [(6, True, 0)]
    assert pub.inflight == 0 and not pub.callbacks
    # nothing unconfirmed: a new shared callback is kept once again, then released with its ids
    ids = pub.add_batch([b"w"] * 2, cb_b, None)
    assert pub.cb_all is cb_b
    pub.on_confirm([*ids, 12345])
    assert got["b"][-2:] == [(ids[0], True, 0), (ids[1], True, 0)]
    assert pub.cb_all is None


async def test_bound_methods_of_one_object_share_the_callback() -> None:
    class Counter:
        n = 0

        def cb(self, s: ConfirmationStatus) -> None:
            self.n += 1

    c = Counter()
    pub, _ = _publisher()
    ids = pub.add_batch([b"a"] * 2, c.cb, None)
    ids += pub.add_batch([b"b"] * 2, c.cb, None)  # a new bound-method object, equal to the first
    assert pub.cb_all is not None and not pub.callbacks
    pub.on_confirm(ids)
    assert c.n == 4


async def test_add_accepts_bytes_likes_and_checks_bytes_result() -> None:
    class Sub(bytes):
        pass

    class Bad:
        def __bytes__(self) -> Any:
            return "text"

    pub, _ = _publisher()
    for m in (bytearray(b"ba"), memoryview(b"mv"), RawMessage(b"rm"), Sub(b"sub")):
        pub.add(m, None, None)  # type: ignore[arg-type]
    assert pub.buf_bodies == [b"ba", b"mv", b"rm", b"sub"]
    assert all(type(b) is bytes for b in pub.buf_bodies)
    with pytest.raises(TypeError, match="not bytes"):
        pub.add(Bad(), None, None)
    with pytest.raises(TypeError):
        pub.add("text", None, None)  # type: ignore[arg-type]
    assert pub.next_id == 5


async def test_confirm_timeout_queue_keeps_no_id_per_message() -> None:
    """Confirmed messages leave nothing per message behind (#17: peak RSS while publishing 1M).

    The queue of deadlines keeps its entries ``confirm_timeout`` seconds, confirmed or not: each
    entry must be O(1) in size (a ``range``), not a list of one int per message.
    """
    pub, _ = _publisher(confirm_timeout=30.0, batch_size=100)
    for _ in range(5):
        ids = pub.add_batch([b"m"] * 1000, None, None)
        pub.on_confirm(ids)
    for _ in range(250):
        pub.add(b"x", None, None)
    pub.flush()
    assert pub.inflight == 250 and len(pub.pending) == 250
    assert len(pub.deadlines) == 8  # 5 batches + 3 flushes of the send() buffer
    assert all(type(ids) is range for _, ids in pub.deadlines)
    assert [len(ids) for _, ids in pub.deadlines] == [1000] * 5 + [100, 100, 50]


async def test_confirm_timeout_still_releases_late_ids() -> None:
    seen: list[ConfirmationStatus] = []
    pub, _ = _publisher(confirm_timeout=30.0)
    ids = pub.add_batch([b"a", RawMessage(b"b", 7), b"c"], seen.append, None)  # caller-set id: not a range
    more = pub.add_batch([b"d", b"e"], seen.append, None)
    pub.on_confirm([ids[0], more[0]])
    pub.expire(float("inf"))
    assert [(s.message_id, s.is_confirmed, s.response_code) for s in seen] == [
        (1, True, 0),
        (9, True, 0),
        (7, False, 10004),
        (8, False, 10004),
        (10, False, 10004),
    ]
    assert pub.inflight == 0 and not pub.pending
