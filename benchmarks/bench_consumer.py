"""Consumer throughput: rabbitstream vs rstream 1.1.1, same run, same stream; plus memory bound.

Fills a fresh stream with ``--count`` small AMQP 1.0 messages (a ~20-byte body each,
published as pre-encoded bytes), then consumes it from offset ``first``:

- ``ours amqp``: ``Consumer.subscribe(..., decoder=amqp_decoder)``, callback reads ``msg.body``;
- ``ours raw``: no decoder (``bytes`` per message), callback counts;
- ``ours batches``: ``iterate_batches`` (raw), counts ``len(batch)``;
- ``rstream amqp`` / ``rstream raw``: the same with rstream's ``Consumer`` (if installed);
- ``bare slice loop``: the floor of pure Python, a loop that only slices every message out
  of the same chunks (fetched once with a ``Client``), in the same process and run.

Each line gives the wall-clock rate and the rate over the process CPU time (the
machine may be shared: CPU time is the fairer comparison; the load average is
printed).  ``--rounds N`` keeps the best of N runs of each.

Then, in child processes, the peak RSS while a callback sleeps 1 ms per message for
``--rss-seconds`` (the buffer must stay bounded by the credit) for ours and rstream.

Run: ``.venv/bin/python benchmarks/bench_consumer.py --count 200000`` (default 1,000,000).
Broker: ``--host/--port`` (localhost:5552, guest/guest).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import struct
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parents[1]
for _src in sorted(_ROOT.glob("plugins/*/*/src")):
    if str(_src) not in sys.path:
        sys.path.insert(0, str(_src))

from rabbitstream import Client, Consumer, Producer  # noqa: E402
from rabbitstream.amqp import AMQPMessage, amqp_decoder  # noqa: E402

try:
    import rstream
    from rstream.amqp import amqp_decoder as rs_amqp_decoder
except ImportError:  # pragma: no cover - rstream not installed
    rstream = None  # type: ignore[assignment]

USER = PASSWORD = "guest"


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


async def fill(host: str, port: int, stream: str, count: int) -> None:
    async with Producer(host, port, username=USER, password=PASSWORD, max_unconfirmed=50_000) as p:
        await p.create_stream(stream)
        done = asyncio.Event()
        confirmed = 0

        def cb(_status: Any) -> None:
            nonlocal confirmed
            confirmed += 1
            if confirmed == count:
                done.set()

        batch = 1000
        for i in range(0, count, batch):
            msgs = [
                bytes(AMQPMessage(body=b"message body %08d" % j)) for j in range(i, min(i + batch, count))
            ]
            await p.send_batch(stream, msgs, on_publish_confirm=cb)
        await asyncio.wait_for(done.wait(), 300)


async def fetch_chunks(host: str, port: int, stream: str, count: int) -> list[bytes]:
    """The entries (``DataLength`` bytes) of the chunks holding the first ``count`` messages."""
    client = await Client.connect(host, port, username=USER, password=PASSWORD)
    chunks: list[bytes] = []
    got = 0
    done = asyncio.Event()

    def on_chunk(chunk: Any) -> None:
        nonlocal got
        chunks.append(bytes(chunk.data))
        got += chunk.num_records
        client.credit(1, 1)
        if got >= count:
            done.set()

    try:
        await client.subscribe(1, stream, 1, None, 10, on_chunk=on_chunk)
        await asyncio.wait_for(done.wait(), 120)
    finally:
        await client.close()
    return chunks


def bare_slice_loop(chunks: list[bytes]) -> tuple[int, float]:
    """Pure-Python floor: walk each chunk and slice every message out. :return: (messages, CPU s)."""
    unpack = struct.Struct(">I").unpack_from
    n = 0
    t0 = time.process_time()
    for data in chunks:
        end = len(data)
        pos = 0
        while pos < end:
            (size,) = unpack(data, pos)
            start = pos + 4
            pos = start + size
            data[start:pos]
            n += 1
    return n, time.process_time() - t0


async def run_ours(host: str, port: int, stream: str, count: int, mode: str) -> float:
    done = asyncio.Event()
    n = 0
    total_len = 0
    async with Consumer(host, port, username=USER, password=PASSWORD) as c:
        t0 = time.perf_counter()
        if mode == "batches":
            async for batch in c.iterate_batches(stream):
                n += len(batch)
                if n >= count:
                    break
        else:

            def cb(msg: Any, _ctx: Any) -> None:
                nonlocal n, total_len
                n += 1
                total_len += len(msg.body) if mode == "amqp" else len(msg)
                if n == count:
                    done.set()

            decoder = amqp_decoder if mode == "amqp" else None
            await c.subscribe(stream, cb, decoder=decoder)
            await done.wait()
        return time.perf_counter() - t0


async def run_rstream(host: str, port: int, stream: str, count: int, mode: str) -> float:
    assert rstream is not None
    done = asyncio.Event()
    n = 0
    total_len = 0

    def cb(msg: Any, _ctx: Any) -> None:
        nonlocal n, total_len
        n += 1
        total_len += len(msg.body) if mode == "amqp" else len(msg)
        if n == count:
            done.set()

    c = rstream.Consumer(host, port, username=USER, password=PASSWORD)
    await c.start()
    try:
        t0 = time.perf_counter()
        spec = rstream.ConsumerOffsetSpecification(rstream.OffsetType.FIRST, None)
        decoder = rs_amqp_decoder if mode == "amqp" else None
        await c.subscribe(stream, cb, decoder=decoder, offset_specification=spec)
        await done.wait()
        return time.perf_counter() - t0
    finally:
        await c.close()


async def rss_child(
    host: str, port: int, stream: str, impl: str, seconds: float, credit: int
) -> dict[str, Any]:
    """Consume with a callback sleeping 1 ms per message; report peak RSS and buffered chunks."""
    base = _rss_mb()
    n = 0
    peak_buffered = 0
    deadline = time.monotonic() + seconds
    stop = asyncio.Event()

    async def slow(msg: Any, _ctx: Any) -> None:
        nonlocal n
        n += 1
        await asyncio.sleep(0.001)
        if time.monotonic() > deadline:
            stop.set()

    if impl == "ours":
        async with Consumer(host, port, username=USER, password=PASSWORD) as c:
            sid = await c.subscribe(stream, slow, initial_credit=credit)

            async def watch() -> None:
                nonlocal peak_buffered
                while not stop.is_set():
                    peak_buffered = max(peak_buffered, c.buffered_chunks(sid))
                    await asyncio.sleep(0.01)

            await asyncio.gather(stop.wait(), watch())
    else:
        assert rstream is not None
        rc = rstream.Consumer(host, port, username=USER, password=PASSWORD)
        await rc.start()
        await rc.subscribe(stream, slow, initial_credit=credit)
        await stop.wait()
        await rc.close()
    return {
        "impl": impl,
        "base_mb": base,
        "peak_mb": _rss_mb(),
        "consumed": n,
        "peak_buffered": peak_buffered,
    }


def _fmt(name: str, count: int, seconds: float, cpu: float | None = None) -> str:
    line = f"{name:<16} {count / seconds:>12,.0f} msg/s   ({seconds:6.2f} s)"
    if cpu:
        line += f"   CPU {count / cpu:>12,.0f} msg/s ({cpu:6.2f} s)"
    return line


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f}"


async def main(args: argparse.Namespace) -> None:
    stream = f"bench-consumer-{uuid.uuid4().hex[:8]}"
    print(f"filling {stream!r} with {args.count:,} AMQP messages ...", flush=True)
    t0 = time.perf_counter()
    await fill(args.host, args.port, stream, args.count)
    print(f"filled in {time.perf_counter() - t0:.1f} s; {_load()}", flush=True)
    results: dict[str, float] = {}
    cpu: dict[str, float] = {}
    runs: list[tuple[str, Callable[[], Any]]] = [
        ("ours amqp", lambda: run_ours(args.host, args.port, stream, args.count, "amqp")),
        ("ours raw", lambda: run_ours(args.host, args.port, stream, args.count, "raw")),
        ("ours batches", lambda: run_ours(args.host, args.port, stream, args.count, "batches")),
    ]
    if rstream is not None and not args.skip_rstream:
        runs += [
            ("rstream amqp", lambda: run_rstream(args.host, args.port, stream, args.count, "amqp")),
            ("rstream raw", lambda: run_rstream(args.host, args.port, stream, args.count, "raw")),
        ]
    try:
        for name, fn in runs:
            for _ in range(max(1, args.rounds)):
                c0 = time.process_time()
                wall = await fn()
                used = time.process_time() - c0
                results[name] = min(results.get(name, wall), wall)
                cpu[name] = min(cpu.get(name, used), used)
            print(_fmt(name, args.count, results[name], cpu[name]), flush=True)
        chunks = await fetch_chunks(args.host, args.port, stream, args.count)
        bare = min((bare_slice_loop(chunks) for _ in range(max(1, args.rounds))), key=lambda r: r[1])
        per_chunk = bare[0] / max(1, len(chunks))
        print(f"{'bare slice loop':<16} {'':>12}            {'':>10}   CPU {bare[0] / bare[1]:>12,.0f} msg/s"
              f" ({len(chunks)} chunks, {per_chunk:.0f} messages each)")  # fmt: skip
        for kind in ("amqp", "raw"):
            if f"rstream {kind}" in results:
                ratio = results[f"rstream {kind}"] / results[f"ours {kind}"]
                ratio_cpu = cpu[f"rstream {kind}"] / cpu[f"ours {kind}"]
                print(f"ratio {kind}: ours is {ratio:.1f}x rstream (wall), {ratio_cpu:.1f}x (CPU)")
        vs_bare = bare[1] / bare[0] * args.count / cpu["ours raw"]
        print(f"ours raw CPU rate is {vs_bare:.2f}x the bare slice loop's")
        print(_load())
        if args.rss_seconds > 0:
            for impl in ("ours", "rstream") if rstream is not None and not args.skip_rstream else ("ours",):
                cmd = [sys.executable, __file__, "--rss-child", impl, "--stream", stream, "--host", args.host]
                cmd += ["--port", str(args.port), "--rss-seconds", str(args.rss_seconds)]
                cmd += ["--credit", str(args.credit)]
                proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.PIPE)
                stdout, _ = await proc.communicate()
                if proc.returncode:
                    raise RuntimeError(f"RSS child {impl} failed")
                r = json.loads(stdout.decode().strip().splitlines()[-1])
                print(
                    f"peak RSS {impl:<8} sleeping callback {args.rss_seconds:.0f} s, credit {args.credit}: "
                    f"{r['peak_mb']:.1f} MB (start {r['base_mb']:.1f} MB), consumed {r['consumed']:,}"
                    + (f", max buffered chunks {r['peak_buffered']}" if impl == "ours" else "")
                )
    finally:
        async with Consumer(args.host, args.port, username=USER, password=PASSWORD) as c:
            await c.delete_stream(stream, missing_ok=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default=os.environ.get("RABBITSTREAM_HOST", "localhost"))
    ap.add_argument("--port", type=int, default=5552)
    ap.add_argument("--count", type=int, default=1_000_000)
    ap.add_argument("--skip-rstream", action="store_true")
    ap.add_argument("--rounds", type=int, default=1, help="best of N runs of each consumer")
    ap.add_argument("--rss-seconds", type=float, default=5.0)
    ap.add_argument("--credit", type=int, default=10)
    ap.add_argument("--rss-child", choices=("ours", "rstream"))
    ap.add_argument("--stream")
    ns = ap.parse_args()
    if ns.rss_child:
        res = asyncio.run(rss_child(ns.host, ns.port, ns.stream, ns.rss_child, ns.rss_seconds, ns.credit))
        print(json.dumps(res))
    else:
        asyncio.run(main(ns))
