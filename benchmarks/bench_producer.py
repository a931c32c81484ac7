"""Producer throughput: rabbitstream vs rstream 1.1.1 vs a raw-frame ceiling, plus memory under a stall.

Usage::

    .venv/bin/python benchmarks/bench_producer.py [--count N] [--repeat R] [--modes a,b,...]

Every mode publishes ``--count`` small messages to a fresh stream *with confirms* and stops the clock
when the last confirm arrived.  Modes:

* ``ceiling``: pre-encoded Publish frames of 100 AMQP messages written through a raw ``Client``
  (window of 10,000 unconfirmed messages), confirms counted: the cost of the socket + broker.
  Each frame is written at once (one ``send`` syscall per 100 messages), whereas the producer hands
  all the frames of one event-loop iteration to the transport in one write: the raw modes can come
  close to (or above) this reference.
* ``ours-batch-amqp`` / ``rstream-batch-amqp``: ``send_batch`` of 100 ``AMQPMessage`` (rstream's
  ``producer_send_batch.py`` example) with an ``on_publish_confirm`` callback.
* ``ours-send-amqp`` / ``rstream-send-amqp``: one ``send()`` per message (``producer_send.py``).
* ``ours-batch-raw`` / ``ours-send-raw``: the same with plain ``bytes``.
* ``rss``: peak RSS growth while ``send()`` runs against a stalled broker (black-holed proxy).

With ``--repeat R`` the whole list of modes runs R times (interleaved, so that load changes hit every
mode alike) and a summary gives each mode's best run and its ratio to the best ceiling run.

Figures are printed, never asserted.  Keep ``--count`` small on shared machines; the load average is
printed since it moves the figures a lot on a shared 2-core host.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BATCH = 100


def _rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Counter:
    def __init__(self, n: int) -> None:
        self.n = n
        self.count = 0
        self.done = asyncio.get_running_loop().create_future()

    def add(self, k: int) -> None:
        self.count += k
        if self.count >= self.n and not self.done.done():
            self.done.set_result(None)

    def cb(self, status: Any) -> None:
        self.count += 1
        if self.count >= self.n and not self.done.done():
            self.done.set_result(None)


async def ceiling(args: argparse.Namespace, stream: str) -> float:
    from rabbitstream import Client
    from rabbitstream.amqp import AMQPMessage
    from rabbitstream.protocol._publish import encode_publish

    client = await Client.connect(args.host, args.port, username=args.user, password=args.password)
    await client.create_stream(stream)
    n = args.count
    counter = Counter(n)
    window = 10_000
    room = asyncio.Event()
    inflight = 0

    def on_confirm(ids: list[int]) -> None:
        nonlocal inflight
        inflight -= len(ids)
        counter.add(len(ids))
        if inflight < window:
            room.set()

    client.set_publisher_handlers(0, on_confirm, lambda errs: None)
    await client.declare_publisher(0, "", stream)
    per_frame = int(getattr(args, "frame", BATCH))  # messages per Publish frame
    bodies = [bytes(AMQPMessage(body=b"hello: %d" % i)) for i in range(per_frame)]
    t0 = time.perf_counter()
    next_id = 1
    while next_id <= n:
        k = min(per_frame, n - next_id + 1)
        for frame in encode_publish(0, list(range(next_id, next_id + k)), bodies[:k], client.frame_max):
            client.write(frame)
        next_id += k
        inflight += k
        if inflight >= window:
            room.clear()
            await room.wait()
        if client.is_writing_paused:
            await client.drain()
    await counter.done
    dt = time.perf_counter() - t0
    await client.delete_stream(stream)
    await client.close()
    return float(n / dt)


def _ours(args: argparse.Namespace) -> Any:
    from rabbitstream import Producer

    return Producer(args.host, args.port, username=args.user, password=args.password)


def _theirs(args: argparse.Namespace) -> Any:
    from rstream import Producer

    return Producer(args.host, args.port, username=args.user, password=args.password)


def _amqp(ours: bool) -> Callable[..., Any]:
    if ours:
        from rabbitstream.amqp import AMQPMessage
    else:
        from rstream import AMQPMessage
    return AMQPMessage


async def _run_producer(
    make: Callable[[argparse.Namespace], Any],
    args: argparse.Namespace,
    stream: str,
    body: Callable[[Any, str, int, Counter], Awaitable[None]],
) -> float:
    async with make(args) as producer:
        await producer.create_stream(stream, exists_ok=True)
        counter = Counter(args.count)
        t0 = time.perf_counter()
        await body(producer, stream, args.count, counter)
        await asyncio.wait_for(counter.done, 300)
        dt = time.perf_counter() - t0
        await producer.delete_stream(stream)
    return float(args.count / dt)


def batch_mode(amqp: bool, ours: bool) -> Callable[[argparse.Namespace, str], Awaitable[float]]:
    async def run(args: argparse.Namespace, stream: str) -> float:
        msg = _amqp(ours) if amqp else None

        async def body(p: Any, s: str, n: int, c: Counter) -> None:
            for i in range(n // BATCH):
                if msg is not None:
                    batch = [msg(body=b"hello: %d" % i) for _ in range(BATCH)]
                else:
                    batch = [b"hello: %d" % i] * BATCH
                await p.send_batch(s, batch, on_publish_confirm=c.cb)

        return await _run_producer(_ours if ours else _theirs, args, stream, body)

    return run


def send_mode(amqp: bool, ours: bool) -> Callable[[argparse.Namespace, str], Awaitable[float]]:
    async def run(args: argparse.Namespace, stream: str) -> float:
        msg = _amqp(ours) if amqp else None

        async def body(p: Any, s: str, n: int, c: Counter) -> None:
            send = p.send
            cb = c.cb
            if msg is not None:
                for i in range(n):
                    await send(s, msg(body=b"hello: %d" % i), on_publish_confirm=cb)
            else:
                for i in range(n):
                    await send(s, b"hello: %d" % i, on_publish_confirm=cb)

        return await _run_producer(_ours if ours else _theirs, args, stream, body)

    return run


async def rss_mode(args: argparse.Namespace, stream: str) -> str:
    from rabbitstream import Producer
    from rabbitstream._producer import EnqueueTimeoutError

    from tools.faultproxy import FaultProxy

    with FaultProxy([(args.host, args.port)]) as proxy:
        p = Producer("127.0.0.1", proxy.port, username=args.user, password=args.password, enqueue_timeout=2.0)
        await p.start()
        await p.create_stream(stream)
        await p.send_wait(stream, b"warm-up")
        gc.collect()
        before = _rss_kib()
        proxy.blackhole(True)
        sent = 0
        peak = before
        try:
            for i in range(args.count):
                await p.send(stream, b"stalled message %d" % i + b"x" * 100)
                sent += 1
                if sent % 1000 == 0:
                    peak = max(peak, _rss_kib())
        except EnqueueTimeoutError:
            pass
        peak = max(peak, _rss_kib())
        proxy.blackhole(False)
        await p.close()
    async with _ours(args) as q:
        await q.delete_stream(stream, missing_ok=True)
    return f"accepted {sent} messages before blocking; RSS +{(peak - before) / 1024:.1f} MiB"


MODES: dict[str, Callable[[argparse.Namespace, str], Awaitable[Any]]] = {
    "ceiling": ceiling,
    "ours-batch-amqp": batch_mode(True, True),
    "rstream-batch-amqp": batch_mode(True, False),
    "ours-send-amqp": send_mode(True, True),
    "rstream-send-amqp": send_mode(True, False),
    "ours-batch-raw": batch_mode(False, True),
    "ours-send-raw": send_mode(False, True),
    "rss": rss_mode,
}


def _loadavg() -> str:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def _line(mode: str, r: float, results: dict[str, float]) -> str:
    line = f"{mode:22s} {r:12,.0f} msg/s"
    if "ceiling" in results and mode != "ceiling":
        line += f"   {r / results['ceiling']:.2f} x ceiling"
    theirs = mode.replace("ours-", "rstream-")
    if mode.startswith("ours-") and theirs in results:
        line += f"   {r / results[theirs]:.2f} x rstream"
    if mode.startswith("rstream-") and mode.replace("rstream-", "ours-") in results:
        line += f"   (ours {results[mode.replace('rstream-', 'ours-')] / r:.2f} x)"
    return line


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=1_000_000)
    ap.add_argument("--host", default="localhost")
    ap.add_argument("--port", type=int, default=5552)
    ap.add_argument("--user", default="guest")
    ap.add_argument("--password", default="guest")
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--repeat", type=int, default=1, help="run the modes R times; summary of the best runs")
    args = ap.parse_args()
    best: dict[str, float] = {}
    print(f"count {args.count:,}, load average {_loadavg()}", flush=True)
    for round_no in range(max(args.repeat, 1)):
        if args.repeat > 1:
            print(f"-- round {round_no + 1}/{args.repeat} (load {_loadavg()})", flush=True)
        results: dict[str, float] = {}
        for mode in args.modes.split(","):
            stream = f"bench-producer-{mode}-{uuid.uuid4().hex[:8]}"
            try:
                r = await MODES[mode](args, stream)
            except Exception as exc:
                print(f"{mode:22s} FAILED: {exc!r}", flush=True)
                continue
            if isinstance(r, str):
                print(f"{mode:22s} {r}", flush=True)
                continue
            results[mode] = r
            best[mode] = max(best.get(mode, 0.0), r)
            print(_line(mode, r, results), flush=True)
    if args.repeat > 1 and best:
        print(f"-- best of {args.repeat} (load {_loadavg()})", flush=True)
        for mode, r in best.items():
            print(_line(mode, r, best), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
