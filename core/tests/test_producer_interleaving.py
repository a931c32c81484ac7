"""Seeded random schedules of the producer's operations (issue #14, "beyond the list").

Each schedule interleaves send / send_batch / send with a caller-set (possibly duplicate) id /
confirms / a connection cut / the broker going down so recovery gives up / close / a cancelled
close / start again, on a :class:`~producer_harness.ScriptedProducer` (in-memory connections: the
behaviour checked is the client's own).  The invariant, for every message: **its send raised, or
its callback was called exactly once, never both and never twice**; and every call ends.

``RABBITSTREAM_SCHEDULES`` sets the number of schedules (default 2000); a failure prints the seed.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections import defaultdict
from typing import Any

from producer_harness import NoDelay, ScriptedProducer, short_close_wait  # noqa: F401 (autouse fixture)
from rabbitstream.utils import ConfirmationStatus, RawMessage

SCHEDULES = int(os.environ.get("RABBITSTREAM_SCHEDULES", "2000"))
TRACE = bool(os.environ.get("RABBITSTREAM_TRACE"))


def trace(op: str, scope: dict[str, Any]) -> None:
    if TRACE:
        print(op, {k: v for k, v in scope.items() if k in ("k", "msg")})


class Ledger:
    """What happened to each message: callbacks received, whether its call raised."""

    def __init__(self) -> None:
        self.calls: dict[int, list[ConfirmationStatus]] = defaultdict(list)
        self.raised: dict[int, BaseException] = {}
        self.returned: set[int] = set()
        self.next = 0
        self.use_async = False  # async callbacks: awaited by the publisher's runner task

    def keys(self, n: int) -> list[int]:
        ks = list(range(self.next, self.next + n))
        self.next += n
        return ks

    def callback(self, k: int) -> Any:
        if self.use_async:

            async def acb(status: ConfirmationStatus) -> None:
                await asyncio.sleep(0)
                self.calls[k].append(status)

            return acb
        return lambda status: self.calls[k].append(status)

    def check(self, seed: int) -> None:
        for k in range(self.next):
            calls = self.calls.get(k, [])
            where = f"seed {seed}, message {k}: calls={calls} raised={self.raised.get(k)!r}"
            assert len(calls) <= 1, where
            if k in self.raised:
                assert not calls, where
            else:
                assert k in self.returned, where  # the call ended
                assert len(calls) == 1, where


async def schedule(seed: int) -> None:
    rng = random.Random(seed)
    p = ScriptedProducer(
        max_unconfirmed=rng.choice([1, 2, 3, 5, 8]),
        batch_size=rng.choice([1, 2, 4, 100]),
        linger=rng.choice([0.0, 0.001]),
        recovery_strategy=NoDelay(True, max_retries=rng.choice([1, 2, 3])),
    )
    ledger = Ledger()
    ledger.use_async = rng.random() < 0.3
    tasks: list[asyncio.Task[Any]] = []  # the application's calls
    resolvers: list[asyncio.Task[Any]] = []

    async def send(k: int, message: Any) -> None:
        try:
            await p.send("s", message, on_publish_confirm=ledger.callback(k))
        except Exception as exc:
            ledger.raised[k] = exc
        else:
            ledger.returned.add(k)

    async def send_batch(ks: list[int]) -> None:
        # one callback per batch call: the message is found from its publishing id
        ids: dict[int, int] = {}
        got: list[ConfirmationStatus] = []

        def cb(status: ConfirmationStatus) -> None:
            got.append(status)

        try:
            out = await p.send_batch("s", [b"%d" % k for k in ks], on_publish_confirm=cb)
        except Exception as exc:
            for k in ks:
                ledger.raised[k] = exc
            # messages of chunks added before the failure may still be reported: count them
            assert len(got) <= len(ks), f"seed {seed}: {got}"
            return
        for k in ks:
            ledger.returned.add(k)
        if len(out) != len(ks):  # e.g. [] when closed (before #14): not sent, not reported
            return
        ids = dict(zip(out, ks, strict=True))

        async def resolve() -> None:
            # statuses may arrive before or after send_batch returned
            seen = 0
            while True:
                for status in got[seen:]:
                    ledger.calls[ids[status.message_id]].append(status)
                seen = len(got)
                await asyncio.sleep(0)

        resolvers.append(asyncio.ensure_future(resolve()))

    await p.start()
    closed = False
    for _ in range(rng.randint(5, 40)):
        op = rng.random()
        if op < 0.35:
            (k,) = ledger.keys(1)
            trace("send", locals())
            tasks.append(asyncio.ensure_future(send(k, b"%d" % k)))
        elif op < 0.45:
            trace("batch", locals())
            tasks.append(asyncio.ensure_future(send_batch(ledger.keys(rng.randint(1, 6)))))
        elif op < 0.5:  # a caller-set id, often one still unconfirmed
            (k,) = ledger.keys(1)
            msg = RawMessage(b"%d" % k, publishing_id=rng.randint(1, max(ledger.next, 1)))
            trace("send-id", locals())
            tasks.append(asyncio.ensure_future(send(k, msg)))
        elif op < 0.65:
            for peer in p.live:
                trace("confirm", locals())
                peer.confirm(rng.randint(0, len(peer.unconfirmed)))
        elif op < 0.72:
            live = p.live
            if live:
                trace("cut", locals())
                rng.choice(live).cut()
        elif op < 0.77:
            trace("down", locals())
            p.down = True  # recoveries from now on give up
        elif op < 0.82:
            trace("up", locals())
            p.down = False
        elif op < 0.87:
            trace("close", locals())
            tasks.append(asyncio.ensure_future(p.close()))
            closed = True
        elif op < 0.9:
            closing = asyncio.ensure_future(p.close())
            await asyncio.sleep(0)
            trace("cancelled-close", locals())
            closing.cancel()
            closed = True
        elif op < 0.95 and closed:
            try:
                trace("start", locals())
                await p.start()
                closed = False
            except Exception:
                pass
        for _ in range(rng.randint(0, 3)):
            await asyncio.sleep(0)
    # the end: broker back, everything confirmed, closed; every call must end
    p.down = False
    for _ in range(3):
        for peer in p.live:
            peer.confirm()
        await asyncio.sleep(0)
    await asyncio.wait_for(p.close(), 5)
    if tasks:
        _, pending = await asyncio.wait(tasks, timeout=5)
        assert not pending, f"seed {seed}: {len(pending)} calls never ended"
    await asyncio.sleep(0)
    for t in resolvers:
        t.cancel()
    await asyncio.gather(*resolvers, return_exceptions=True)
    ledger.check(seed)


async def test_every_message_raised_or_reported_exactly_once() -> None:
    for seed in range(SCHEDULES):
        await schedule(seed)
