"""Producer state machine without a broker (issue #14): no send ends with neither an exception nor
its callback, a cancelled close() still closes, duplicate ids, argument checks, and the tests that
kill the publisher bookkeeping mutants listed in the issue."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from producer_harness import Peer, ScriptedProducer, set_close_wait, short_close_wait  # noqa: F401 (autouse fixture)
from rabbitstream._producer._producer import ProducerClosedError
from rabbitstream._producer._publisher import Publisher
from rabbitstream.exceptions import ClientError
from rabbitstream.utils import ConfirmationStatus, RawMessage


async def started(**kw: Any) -> ScriptedProducer:
    p = ScriptedProducer(**kw)
    await p.start()
    return p


async def settle(n: int = 5) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


# --------------------------------------------------------------------------- item 3


async def test_send_waiting_for_room_then_close_raises() -> None:
    p = await started(max_unconfirmed=2)
    got: list[ConfirmationStatus] = []
    await p.send("s", b"m1", on_publish_confirm=got.append)
    await p.send("s", b"m2", on_publish_confirm=got.append)
    third = asyncio.ensure_future(p.send("s", b"m3", on_publish_confirm=got.append))
    await settle()
    assert not third.done()  # waiting for room
    await p.close()
    with pytest.raises(ProducerClosedError):
        await third  # before the fix: returned normally and m3 was never sent nor reported
    assert [(s.message_id, s.is_confirmed, s.response_code) for s in got] == [
        (1, False, 10003),
        (2, False, 10003),
    ]


async def test_send_waiting_for_room_then_recovery_gives_up_raises() -> None:
    p = await started(max_unconfirmed=2)
    got: list[ConfirmationStatus] = []
    await p.send("s", b"m1", on_publish_confirm=got.append)
    await p.send("s", b"m2", on_publish_confirm=got.append)
    third = asyncio.ensure_future(p.send("s", b"m3", on_publish_confirm=got.append))
    await settle()
    p.down = True
    p.peers[0].cut()
    with pytest.raises(ClientError, match="could not be recovered"):
        await asyncio.wait_for(third, 2)
    assert [(s.message_id, s.response_code) for s in got] == [(1, -1), (2, -1)]
    await p.close()


async def test_send_batch_waiting_for_room_then_close_raises() -> None:
    p = await started(max_unconfirmed=4)
    got: list[ConfirmationStatus] = []
    await p.send_batch("s", [b"a"] * 4, on_publish_confirm=got.append)
    batch = asyncio.ensure_future(p.send_batch("s", [b"b"] * 4, on_publish_confirm=got.append))
    await settle()
    assert not batch.done()
    await p.close()
    with pytest.raises(ProducerClosedError):
        await batch
    assert len(got) == 4


async def test_publisher_declared_while_closing_is_not_left_behind() -> None:
    p = await started()
    got: list[ConfirmationStatus] = []
    send = asyncio.ensure_future(p.send("s", b"x", on_publish_confirm=got.append))
    await asyncio.sleep(0)  # inside declare_publisher
    assert not send.done()
    await p.close()
    with pytest.raises(ProducerClosedError):
        await send
    assert got == []
    assert all(peer.is_closed for peer in p.peers)


# --------------------------------------------------------------------------- item 4


async def test_cancelled_close_still_closes() -> None:
    p = await started()
    set_close_wait(0.3)  # no confirm comes: close() waits this long first
    got: list[ConfirmationStatus] = []
    await p.send("s", b"m1", on_publish_confirm=got.append)
    closing = asyncio.ensure_future(p.close())
    await asyncio.sleep(0.05)
    closing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closing
    await asyncio.wait_for(p.close(), 2)  # before the fix: returned at once, nothing closed
    assert [s.response_code for s in got] == [10003]
    assert all(peer.is_closed for peer in p.peers)
    assert p.locator_peer.is_closed
    with pytest.raises(ProducerClosedError):
        await p.send("s", b"m2")


async def test_close_called_from_a_close_handler_completes() -> None:
    closed: list[bool] = []
    p: ScriptedProducer

    async def handler(_: object) -> None:
        await p.close()
        closed.append(True)

    p = await started(on_close_handler=handler)
    await p.send("s", b"m1")
    p.peers[0].cut()
    for _ in range(100):
        if closed:
            break
        await asyncio.sleep(0.01)
    assert closed == [True]


# --------------------------------------------------------------------------- item 6


def _publisher(limit: int = 100, **kw: Any) -> tuple[Publisher, Peer]:
    pub = Publisher(
        "s",
        None,
        limit=limit,
        batch_size=kw.pop("batch_size", 500),
        linger=10.0,
        confirm_timeout=kw.pop("confirm_timeout", None),
        filtering=kw.pop("filtering", False),
        spawn=lambda c: asyncio.ensure_future(c),
    )
    peer = Peer()
    peer.set_publisher_handlers(0, pub.on_confirm, pub.on_error)
    pub.attach(peer, 0, kw.pop("last_sequence", None))  # type: ignore[arg-type]
    return pub, peer


async def test_same_id_twice_every_callback_called_as_rstream() -> None:
    """rstream's ``test_send_async_confirmation_on_different_callbacks`` on the publisher."""
    p = await started()
    first: list[int] = []
    second: list[int] = []
    for i in (1, 2, 3):
        await p.send(
            "s",
            RawMessage(b"a%d" % i, publishing_id=i),
            on_publish_confirm=lambda s: first.append(s.message_id),
        )
    for i in (1, 2, 3):
        await p.send(
            "s",
            RawMessage(b"b%d" % i, publishing_id=i),
            on_publish_confirm=lambda s: second.append(s.message_id),
        )
    await p.flush()
    await settle()
    assert p.peers[0].confirm() == 6  # the broker confirms each of the six messages
    assert sorted(first) == [1, 2, 3] and sorted(second) == [1, 2, 3]
    assert p.unconfirmed("s") == 0  # no window slot lost
    await p.close()


async def test_same_id_twice_no_slot_lost_and_failures_reported() -> None:
    pub, peer = _publisher(limit=2)
    got: list[tuple[int, bool]] = []

    def cb(s: ConfirmationStatus) -> None:
        got.append((s.message_id, s.is_confirmed))

    for _ in range(3):  # same id three times: every copy counted, none overwritten
        pub.add(RawMessage(b"x", publishing_id=7), cb, None)
    pub.flush()
    await settle()
    assert pub.inflight == 3
    assert [i for _, i in peer.unconfirmed] == [7, 7, 7]  # each copy written once
    pub.fail_all(10003)
    assert got == [(7, False)] * 3 and pub.inflight == 0
    peer.unconfirmed.clear()
    pub.add_batch([RawMessage(b"y", publishing_id=9), RawMessage(b"z", publishing_id=9)], cb, None)
    await settle()
    assert pub.inflight == 2
    peer.confirm(1)  # one confirm of the id releases every copy (as rstream)
    assert got[3:] == [(9, True), (9, True)] and pub.inflight == 0
    await asyncio.wait_for(pub.wait_room(2, None), 0.1)


async def test_duplicate_ids_resent_after_reconnection() -> None:
    pub, _ = _publisher()
    pub.add(RawMessage(b"x", publishing_id=3), None, None)
    pub.add(RawMessage(b"y", publishing_id=3), None, None)
    pub.flush()
    pub.detach()
    peer2 = Peer()
    peer2.set_publisher_handlers(0, pub.on_confirm, pub.on_error)
    pub.attach(peer2, 0, None)  # type: ignore[arg-type]
    await settle()
    assert [i for _, i in peer2.unconfirmed] == [3, 3]


# --------------------------------------------------------------------------- item 10 (producer)


async def test_send_batch_before_start_and_after_close_raises() -> None:
    p = ScriptedProducer()
    with pytest.raises(ProducerClosedError):
        await p.send_batch("s", [b"x"])  # before the fix: returned []
    await p.start()
    assert await p.send_batch("s", [b"x"]) == [1]
    await p.close()
    with pytest.raises(ProducerClosedError):
        await p.send_batch("s", [b"x"])


@pytest.mark.parametrize("bad", [[1, 2], {}, "str", {"a": 1}, 3.5])
async def test_send_refuses_non_bytes_messages(bad: Any) -> None:
    p = await started()
    with pytest.raises(TypeError, match="message must be bytes"):
        await p.send("s", bad)
    with pytest.raises(TypeError, match="message must be bytes"):
        await p.send_batch("s", [bad])
    assert p.unconfirmed("s") == 0
    await p.send("s", bytearray(b"ok"))  # type: ignore[arg-type]  # bytes-likes still accepted
    await p.send("s", memoryview(b"ok"))  # type: ignore[arg-type]
    await p.close()


async def test_publisher_name_and_stream_checked() -> None:
    p = await started()
    with pytest.raises(ValueError, match="publisher_name is longer than 255 bytes"):
        await p.send("s", b"x", publisher_name="p" * 256)
    with pytest.raises(ValueError, match="stream must not be empty"):
        await p.send("", b"x")
    await p.send("s", b"x", publisher_name="é" * 127)  # 254 bytes: fine
    await p.close()


def test_use_from_another_event_loop_is_a_clear_error() -> None:
    p = ScriptedProducer()
    loop1 = asyncio.new_event_loop()
    loop1.run_until_complete(p.start())
    loop1.run_until_complete(p.send("s", b"x"))
    loop2 = asyncio.new_event_loop()
    try:
        with pytest.raises(ClientError, match="another event loop"):
            loop2.run_until_complete(p.send("s", b"y"))
        with pytest.raises(ClientError, match="another event loop"):
            loop2.run_until_complete(p.send_batch("s", [b"y"]))
    finally:
        loop1.run_until_complete(p.close())
        loop1.close()
        loop2.close()


# --------------------------------------------------------------------------- mutation survivors


async def test_caller_set_id_equal_to_next_automatic_id_advances_the_counter() -> None:
    pub, peer = _publisher()
    got: list[int] = []
    pub.add(RawMessage(b"a", publishing_id=1), lambda s: got.append(s.message_id), None)  # next id is 1
    pub.add(b"b", lambda s: got.append(s.message_id), None)
    pub.add_batch([b"c", RawMessage(b"d", publishing_id=4), b"e"], lambda s: got.append(s.message_id), None)
    await settle()
    assert [i for _, i in peer.unconfirmed] == [1, 2, 3, 4, 5]
    peer.confirm()
    assert got == [1, 2, 3, 4, 5] and pub.inflight == 0


async def test_attach_confirms_ids_up_to_and_including_last_sequence() -> None:
    pub, _ = _publisher()
    got: list[int] = []
    pub.add_batch([b"m"] * 5, lambda s: got.append(s.message_id), None)
    pub.detach()
    peer2 = Peer()
    pub.attach(peer2, 0, 3)  # type: ignore[arg-type]  # the broker has 1..3
    await settle()
    assert got == [1, 2, 3]
    assert [i for _, i in peer2.unconfirmed] == [4, 5]
    assert pub.inflight == 2


async def test_wait_room_returns_at_once_one_below_the_limit() -> None:
    pub, _ = _publisher(limit=3)
    pub.add(b"a", None, None)
    pub.add(b"b", None, None)
    assert pub.inflight == 2  # limit - 1: one more fits
    await asyncio.wait_for(pub.wait_room(1, None), 0.1)
    pub.add(b"c", None, None)
    with pytest.raises(asyncio.TimeoutError):
        await pub.wait_room(1, 0.01)


async def test_failed_sub_entry_releases_all_its_messages() -> None:
    pub, _ = _publisher(limit=10)
    got: list[tuple[int, int]] = []
    pub.add_sub_entry(
        b"\x80\x00\x03\x00\x00\x00\x03\x00\x00\x00\x03abc",
        3,
        None,
        lambda s: got.append((s.message_id, s.response_code)),
    )
    assert pub.inflight == 3
    pub.fail_all(10003)
    assert got == [(3, 10003)] and pub.inflight == 0  # the window gets its three slots back


async def test_expire_at_the_deadline_exactly() -> None:
    pub, _ = _publisher(confirm_timeout=5.0)
    got: list[int] = []
    pub.add(b"x", lambda s: got.append(s.response_code), None)
    pub.flush()
    deadline = pub.deadlines[0][0]
    pub.expire(deadline - 0.001)
    assert got == []
    pub.expire(deadline)
    assert got == [10004] and pub.inflight == 0


async def test_confirm_wakes_a_sender_as_soon_as_one_slot_is_free() -> None:
    pub, peer = _publisher(limit=2)
    pub.add(b"a", None, None)
    pub.add(b"b", None, None)
    pub.flush()
    await settle()
    waiting = asyncio.ensure_future(pub.wait_room(1, None))
    await settle()
    assert not waiting.done()
    peer.confirm(1)  # inflight 1 = limit - 1: room for one
    await asyncio.wait_for(waiting, 0.1)


async def test_attach_with_last_sequence_equal_to_next_id_moves_past_it() -> None:
    pub, peer = _publisher(last_sequence=1)  # the broker already has id 1 of this name
    pub.add(b"x", None, None)
    pub.flush()
    await settle()
    assert [i for _, i in peer.unconfirmed] == [2]  # id 1 would be dropped as a duplicate


async def test_close_after_its_task_was_killed_still_closes() -> None:
    p = await started()
    set_close_wait(0.3)
    got: list[ConfirmationStatus] = []
    await p.send("s", b"m1", on_publish_confirm=got.append)
    closing = asyncio.ensure_future(p.close())
    await asyncio.sleep(0.05)
    assert p._close_task is not None
    p._close_task.cancel()  # e.g. the event loop shutting down
    with pytest.raises(asyncio.CancelledError):
        await closing
    await asyncio.wait_for(p.close(), 2)
    assert [s.response_code for s in got] == [10003]
    assert all(peer.is_closed for peer in p.peers)


async def test_close_runs_the_async_callbacks_of_the_messages_it_releases() -> None:
    p = await started()
    got: list[int] = []

    async def cb(status: ConfirmationStatus) -> None:
        await asyncio.sleep(0.01)
        got.append(status.response_code)

    await p.send("s", b"m1", on_publish_confirm=cb)
    await p.close()
    assert got == [10003]  # before: the runner task was cancelled, the coroutine closed unrun
