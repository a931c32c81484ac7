"""Super-stream publish throughput vs a plain stream, and the cost of hash routing per key.

Usage::

    .venv/bin/python benchmarks/bench_superstream.py [--count N] [--partitions P] [--host H --port P]

Both runs publish ``--count`` small ``bytes`` messages *with confirms* (one ``send()`` per
message, a sync ``on_publish_confirm`` callback) and stop the clock at the last confirm:

* ``plain``: ``Producer.send(stream, msg)`` to one stream;
* ``super``: ``SuperStreamProducer.send(msg)`` with hash routing over ``--partitions``
  partitions, distinct routing keys (the routing-key hash cache never hits).

Then the pure routing cost: µs per key for the ``"hash"`` strategy with a cold and a warm
cache, and for ``"rstream-legacy-hash"``.  Figures are printed, never asserted; the default
``--count`` keeps the run well under 60 s on a shared 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from rabbitstream import Producer, SuperStreamProducer
from rabbitstream.plugin import get_registry


class _Done:
    def __init__(self, n: int) -> None:
        self.n = n
        self.ok = 0
        self.failed = 0
        self.event = asyncio.Event()

    def cb(self, status: Any) -> None:
        if status.is_confirmed:
            self.ok += 1
        else:
            self.failed += 1
        if self.ok + self.failed >= self.n:
            self.event.set()


async def bench_plain(args: argparse.Namespace, bodies: Sequence[bytes]) -> float:
    stream = f"bench-plain-{uuid.uuid4().hex[:8]}"
    async with Producer(args.host, args.port, username="guest", password="guest") as p:
        await p.create_stream(stream)
        try:
            done = _Done(len(bodies))
            t0 = time.perf_counter()
            for body in bodies:
                await p.send(stream, body, on_publish_confirm=done.cb)
            await asyncio.wait_for(done.event.wait(), 120)
            elapsed = time.perf_counter() - t0
            assert done.failed == 0, f"{done.failed} messages not confirmed"
        finally:
            await p.delete_stream(stream, missing_ok=True)
    return elapsed


async def bench_super(args: argparse.Namespace, bodies: Sequence[bytes]) -> float:
    name = f"bench-super-{uuid.uuid4().hex[:8]}"
    p = SuperStreamProducer(
        args.host,
        args.port,
        username="guest",
        password="guest",
        super_stream=name,
        routing_extractor=bytes.decode,
    )
    async with p:
        await p.create_super_stream(name, args.partitions)
        try:
            done = _Done(len(bodies))
            t0 = time.perf_counter()
            for body in bodies:
                await p.send(body, on_publish_confirm=done.cb)
            await asyncio.wait_for(done.event.wait(), 120)
            elapsed = time.perf_counter() - t0
            assert done.failed == 0, f"{done.failed} messages not confirmed"
        finally:
            await p.delete_super_stream(name, missing_ok=True)
    return elapsed


def bench_routing(n: int) -> None:
    registry = get_registry()
    parts = [f"ss-{i}" for i in range(3)]

    class Meta:
        super_stream = "ss"

        def partitions(self) -> list[str]:
            return parts

        async def routes(self, key: str) -> list[str]:  # pragma: no cover - unused
            return []

    meta = Meta()
    keys = [f"customer-{uuid.uuid4().hex[:8]}-{i}" for i in range(n)]

    def per_key(fn: Callable[[], None]) -> float:
        t0 = time.perf_counter()
        fn()
        return (time.perf_counter() - t0) / n * 1e6

    for name in ("hash", "rstream-legacy-hash"):
        route = registry.routing_strategy(name).route

        def run(route: Callable[[str, Meta], object] = route) -> None:
            for k in keys:
                route(k, meta)

        cold = per_key(run)
        warm = per_key(run)
        print(
            f"routing {name:20} cold {cold:6.2f} µs/key, cached {warm:5.2f} µs/key ({len(keys[0])}-char keys)"
        )


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=100_000)
    ap.add_argument("--partitions", type=int, default=3)
    ap.add_argument("--host", default="localhost")
    ap.add_argument("--port", type=int, default=5552)
    args = ap.parse_args()
    bodies = [f"key-{i}".encode() for i in range(args.count)]
    plain = await bench_plain(args, bodies)
    sup = await bench_super(args, bodies)
    n = args.count
    print(f"plain stream      : {n} msgs in {plain:6.2f} s = {n / plain:10,.0f} msg/s")
    print(f"super stream ({args.partitions:d} p): {n} msgs in {sup:6.2f} s = {n / sup:10,.0f} msg/s")
    print(f"super / plain throughput ratio: {plain / sup:.2f}")
    bench_routing(min(n, 50_000))  # within the 65,536-key hash cache


if __name__ == "__main__":
    asyncio.run(main())
