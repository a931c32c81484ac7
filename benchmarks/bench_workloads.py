"""The user-shaped workloads of issue #17, side by side with rstream and the broker's ceiling, one run.

Usage::

    .venv/bin/python benchmarks/bench_workloads.py [--count N] [--rounds R] [--only p1,p2,...]

Every workload is written the way users write it (rstream's README and examples):

* ``P1``: ``send_batch`` of 1,000 ``AMQPMessage(body=b"hello: %d" % i)`` built inside the timed loop, a
  confirm callback per message that counts; the clock stops at the last confirm;
* ``P2``: the same with ``await producer.send(...)``, one message at a time;
* ``P3``: ``send_batch`` of 1,000 raw ``bytes`` bodies;
* ``C1``: ``Consumer.subscribe(..., decoder=amqp_decoder)`` from the first offset, the callback reads
  ``msg.body``;
* ``C2``: the same without a decoder;
* ``codec``: ``bytes(AMQPMessage(body=b))`` (construct + encode) and ``amqp_decoder(data).body``
  (decode + access), µs per message;
* ``ceiling``: pre-encoded Publish frames of 500 messages written by a minimal client (our raw ``Client``),
  confirms awaited (:func:`bench_producer.ceiling`);
* ``P1 CPU`` ...: the process CPU time per message of P1/P2/P3 (the client's own cost, much steadier than
  the rates when other work shares the cores);
* ``rss``: peak RSS (``VmHWM``) of a child process that runs P1 over ``--count`` messages, ours and rstream.

The rounds are interleaved (ceiling, ours, rstream, next workload, ...) so that load changes on a shared
machine hit every library alike; the table gives the **median** of the rounds and the ratio of each median to
the ceiling's.  rstream 1.1.1 (``pip install rstream==1.1.1``) is optional: its columns are empty without it.
Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Coroutine
from functools import partial
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE))

import bench_amqp_codec  # noqa: E402
import bench_consumer  # noqa: E402
import bench_producer  # noqa: E402
from rabbitstream import Consumer  # noqa: E402

try:
    import rstream
except ImportError:  # pragma: no cover - rstream not installed
    rstream = None  # type: ignore[assignment]

BATCH = 1_000
FRAME = 500
TARGETS = {
    "P1": "≥ 0.65 x ceiling",
    "P2": "≥ 0.55 x ceiling",
    "P3": "≥ 0.80 x ceiling",
    "C1": "≥ 1.5M/s",
    "C2": "≥ 6M/s",
    "build+encode": "≤ 0.5 µs",
    "decode+body": "≤ 0.4 µs",
    "peak RSS P1": "≤ 40 MB",
}


def _producer(ours: bool, args: argparse.Namespace) -> Any:
    return (bench_producer._ours if ours else bench_producer._theirs)(args)


def _amqp(ours: bool) -> Any:
    return bench_producer._amqp(ours)


async def _publish(args: argparse.Namespace, ours: bool, kind: str) -> tuple[float, float]:
    """One producer workload (``P1``/``P2``/``P3``).

    :return: msg/s until the last confirm, and the process CPU time per message in µs (the
        client's cost, steadier than the rate on a shared machine; includes connecting).
    """
    msg = _amqp(ours)
    n = args.count
    batch_size = args.batch

    async def body(p: Any, s: str, count: int, c: bench_producer.Counter) -> None:
        cb = c.cb
        if kind == "P1":
            send_batch = p.send_batch
            for start in range(0, count, batch_size):
                batch = [msg(body=b"hello: %d" % i) for i in range(start, min(start + batch_size, count))]
                await send_batch(s, batch, on_publish_confirm=cb)
        elif kind == "P2":
            send = p.send
            for i in range(count):
                await send(s, msg(body=b"hello: %d" % i), on_publish_confirm=cb)
        else:
            send_batch = p.send_batch
            for start in range(0, count, batch_size):
                raw = [b"hello: %d" % i for i in range(start, min(start + batch_size, count))]
                await send_batch(s, raw, on_publish_confirm=cb)

    stream = f"bench-workloads-{kind}-{uuid.uuid4().hex[:8]}"
    args.count = n
    c0 = time.process_time()
    rate = await bench_producer._run_producer(partial(_producer, ours), args, stream, body)
    return rate, (time.process_time() - c0) / n * 1e6


async def _ceiling(args: argparse.Namespace) -> float:
    return await bench_producer.ceiling(args, f"bench-workloads-ceiling-{uuid.uuid4().hex[:8]}")


async def _consume(args: argparse.Namespace, stream: str, ours: bool, mode: str) -> float:
    run = bench_consumer.run_ours if ours else bench_consumer.run_rstream
    seconds: float = await run(args.host, args.port, stream, args.count, mode)
    return float(args.count / seconds)


def _codec(ours: bool) -> tuple[float, float]:
    """µs per ``bytes(AMQPMessage(body=b))`` and per ``amqp_decoder(data).body``."""
    mod: Any = importlib.import_module("rabbitstream.amqp" if ours else "rstream.amqp")
    AMQPMessage, amqp_decoder = mod.AMQPMessage, mod.amqp_decoder
    body = b"hello: 123456"
    data = bytes(AMQPMessage(body=body))

    def build_encode() -> bytes:
        return bytes(AMQPMessage(body=body))

    def decode_body() -> Any:
        return amqp_decoder(data).body

    enc, dec = bench_amqp_codec._race([build_encode, decode_body], rounds=5)
    return enc, dec


def _peak_rss(args: argparse.Namespace, impl: str) -> float:
    """Peak RSS (MB) of a child process publishing ``--count`` messages as P1."""
    cmd = [sys.executable, __file__, "--rss-child", impl, "--count", str(args.count), "--host", args.host]
    cmd += ["--port", str(args.port), "--batch", str(args.batch)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return float(json.loads(out.strip().splitlines()[-1])["peak_mb"])


_ROWS = (
    "P1",
    "P2",
    "P3",
    "P1 CPU",
    "P2 CPU",
    "P3 CPU",
    "C1",
    "C2",
    "build+encode",
    "decode+body",
    "peak RSS P1",
)
_UNITS = {
    "P1 CPU": " µs/msg",
    "P2 CPU": " µs/msg",
    "P3 CPU": " µs/msg",
    "build+encode": " µs",
    "decode+body": " µs",
    "peak RSS P1": " MB",
}


async def _rss_child(args: argparse.Namespace, impl: str) -> None:
    await _publish(args, impl == "ours", "P1")
    print(json.dumps({"peak_mb": bench_consumer._rss_mb()}))


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _cell(v: float | None, fmt: str) -> str:
    return "—" if v is None else format(v, fmt)


async def main(args: argparse.Namespace) -> None:
    only = set(args.only.split(",")) if args.only else {"p1", "p2", "p3", "c1", "c2", "codec", "rss"}
    with_rstream = rstream is not None and not args.skip_rstream
    sides = (True, False) if with_rstream else (True,)
    res: dict[tuple[str, bool], list[float]] = {}
    ceilings: list[float] = []
    print(f"count {args.count:,}, {args.rounds} rounds, {bench_consumer._load()}", flush=True)

    def add(name: str, ours: bool, value: float) -> None:
        res.setdefault((name, ours), []).append(value)
        unit = _UNITS.get(name, "msg/s").strip()
        fmt = ".1f" if unit == "MB" else (",.0f" if unit == "msg/s" else ".3f")
        print(f"  {name:<13} {'ours' if ours else 'rstream':<8} {value:>12{fmt}} {unit}", flush=True)

    consume_stream = None
    if only & {"c1", "c2"}:
        consume_stream = f"bench-workloads-consume-{uuid.uuid4().hex[:8]}"
        await bench_consumer.fill(args.host, args.port, consume_stream, args.count)
    try:
        for r in range(args.rounds):
            print(f"-- round {r + 1}/{args.rounds} ({bench_consumer._load()})", flush=True)
            if only & {"p1", "p2", "p3"}:
                ceilings.append(await _ceiling(args))
                print(f"  {'ceiling':<13} {'':<8} {ceilings[-1]:>12,.0f} msg/s", flush=True)
            for kind in ("P1", "P2", "P3"):
                if kind.lower() in only:
                    for ours in sides:
                        rate, cpu = await _publish(args, ours, kind)
                        add(kind, ours, rate)
                        add(f"{kind} CPU", ours, cpu)
            for kind, mode in (("C1", "amqp"), ("C2", "raw")):
                if kind.lower() in only and consume_stream is not None:
                    for ours in sides:
                        add(kind, ours, await _consume(args, consume_stream, ours, mode))
            if "codec" in only:
                for ours in sides:
                    enc, dec = _codec(ours)
                    add("build+encode", ours, enc)
                    add("decode+body", ours, dec)
            if "rss" in only and r == 0:  # one child each: the peak hardly moves between rounds
                for ours in sides:
                    add(
                        "peak RSS P1",
                        ours,
                        await asyncio.to_thread(_peak_rss, args, "ours" if ours else "rstream"),
                    )
    finally:
        if consume_stream is not None:
            async with Consumer(args.host, args.port, username="guest", password="guest") as c:
                await c.delete_stream(consume_stream, missing_ok=True)
    ceiling = _median(ceilings)
    print(f"\nmedians of {args.rounds} rounds, {args.count:,} messages ({bench_consumer._load()})")
    if ceiling is not None:
        print(f"ceiling (pre-encoded Publish frames of {FRAME}): {ceiling:,.0f} msg/s")
    cols = ("workload", "rabbitstream", "x ceiling", "rstream 1.1.1", "x ceiling", "ours / rstream")
    widths = (13, 14, 9, 14, 9, 14)
    pairs = enumerate(zip(cols, widths, strict=True))
    print("| " + " | ".join(f"{c:<{w}}" if i == 0 else f"{c:>{w}}" for i, (c, w) in pairs) + " | target |")
    print("|" + "|".join(("-" * (w + 1)) + (":" if i else "-") for i, w in enumerate(widths)) + "|---|")
    for name in _ROWS:
        mine, theirs = _median(res.get((name, True), [])), _median(res.get((name, False), []))
        if mine is None:
            continue
        unit = _UNITS.get(name, "/s")
        small = unit != "/s"  # lower is better
        fmt = ".2f" if small else ",.0f"
        pub = name in ("P1", "P2", "P3") and ceiling is not None
        ratio = None if theirs is None else (theirs / mine if small else mine / theirs)
        mine_x = _cell(mine / ceiling if pub and ceiling else None, ".2f")
        theirs_x = _cell(theirs / ceiling if pub and ceiling and theirs else None, ".2f")
        theirs_s = (_cell(theirs, fmt) + unit) if theirs is not None else "—"
        ratio_s = _cell(ratio, ".2f") + ("x" if ratio is not None else "")
        print(
            f"| {name:<13} | {_cell(mine, fmt) + unit:>14} | {mine_x:>9} | {theirs_s:>14} | {theirs_x:>9}"
            f" | {ratio_s:>14} | {TARGETS.get(name, '')} |"
        )


def _wrap(coro: Callable[[], Coroutine[Any, Any, None]]) -> None:
    t0 = time.perf_counter()
    asyncio.run(coro())
    print(f"(total {time.perf_counter() - t0:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=BATCH, help="messages per send_batch call (P1, P3)")
    ap.add_argument("--frame", type=int, default=FRAME, help="messages per Publish frame of the ceiling")
    ap.add_argument("--only", default="", help="comma-separated subset of p1,p2,p3,c1,c2,codec,rss")
    ap.add_argument("--skip-rstream", action="store_true")
    ap.add_argument("--host", default="localhost")
    ap.add_argument("--port", type=int, default=5552)
    ap.add_argument("--user", default="guest")
    ap.add_argument("--password", default="guest")
    ap.add_argument("--rss-child", choices=("ours", "rstream"))
    ns = ap.parse_args()
    if ns.rss_child:
        asyncio.run(_rss_child(ns, ns.rss_child))
    else:
        _wrap(partial(main, ns))
