"""Publisher hot path without a broker: coalesced writes, batch encoding, confirms."""

from __future__ import annotations

import asyncio
import struct
from typing import Any

import pytest
from rabbitstream._producer_publisher import Publisher
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
