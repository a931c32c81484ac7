"""``rabbitstream perf``: publish/consume performance tool (Stream PerfTest for Python).

Runs producers and consumers against a stream or a super stream and prints a
progress line per second and a summary (throughput published / confirmed /
consumed, publish-to-consume latency percentiles, errors), optionally as JSON.
``--compare rstream`` runs the same workload with rstream in the same invocation and
prints both summaries and the ratio per figure.  See ``docs/perf.md``.

Layout: options in :mod:`rabbitstream._perf_options`, statistics in
:mod:`rabbitstream._perf_stats`, the workload in :mod:`rabbitstream._perf_workload`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import importlib.util
import json
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from typing import IO, Any

from rabbitstream._perf_options import PerfOptions, parse_args
from rabbitstream._perf_stats import (
    TIMESTAMP,
    ConsumeStats,
    Summary,
    format_comparison,
    format_summary,
    make_recorder,
    ratios,
)

__all__ = ["RSTREAM_REQUIREMENT", "ensure_rstream", "main", "probe_broker", "self_check"]

#: what ``--compare rstream`` installs when rstream is missing
RSTREAM_REQUIREMENT = "rstream==1.1.1"

_HINT = (
    "no RabbitMQ stream listener answers on {target}: {error}\n"
    "Start the local broker with `python tools/broker.py up` (or run `./run perf`, which starts it "
    "and runs this tool), or point the tool at a broker with --uri/--host/--port."
)


def probe_broker(host: str, port: int, timeout: float = 3.0) -> str | None:
    """Open (and close) a TCP connection to the broker.

    :return: ``None`` when something listens, else the error text.
    """
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as exc:
        return str(exc) or type(exc).__name__


def ensure_rstream(out: IO[str]) -> bool:
    """Make ``import rstream`` work, installing :data:`RSTREAM_REQUIREMENT` with pip if needed.

    :return: ``False`` (after printing why) when it cannot be installed.
    """
    if importlib.util.find_spec("rstream") is not None:
        return True
    print(
        f"rstream is not installed: installing {RSTREAM_REQUIREMENT} from PyPI into {sys.prefix}\n"
        f"  ({sys.executable} -m pip install {RSTREAM_REQUIREMENT})",
        file=out,
        flush=True,
    )
    cmd = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", RSTREAM_REQUIREMENT]
    try:
        proc = subprocess.run(cmd, check=False)
    except OSError as exc:
        print(f"cannot run pip: {exc}", file=out)
        return False
    importlib.invalidate_caches()
    if proc.returncode != 0 or importlib.util.find_spec("rstream") is None:
        print(
            f"installing {RSTREAM_REQUIREMENT} failed (pip exit code {proc.returncode}); "
            f"install it yourself and retry",
            file=out,
        )
        return False
    return True


def _per_call_ns(fn: Callable[[], None], n: int) -> float:
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter_ns()
        fn()
        best = min(best, (time.perf_counter_ns() - t) / n)
    return best


def self_check(n: int = 200_000, out: IO[str] | None = None) -> dict[str, float]:
    """Measure the tool's per-message work against a bare loop (no broker).

    * consumer: the latency recorder vs an empty ``callback(msg, ctx)``;
    * producer: building a batch of binary payloads (one timestamp per batch) vs a bare list.

    :return: ns per message for each measurement (also printed).
    """
    if out is None:
        out = sys.stdout
    stats = ConsumeStats()
    record = make_recorder(stats)
    msg = TIMESTAMP.pack(time.time_ns()) + bytes(92)

    def noop(m: Any, ctx: Any) -> None:
        return None

    def bare() -> None:
        f = noop
        for _ in range(n):
            f(msg, None)

    def tool() -> None:
        f = record
        for _ in range(n):
            f(msg, None)

    pad = bytes(92)
    pack = TIMESTAMP.pack
    clock = time.time_ns
    batches = n // 100

    def bare_batch() -> None:
        for _ in range(batches):
            _ = [msg] * 100

    def tool_batch() -> None:
        for _ in range(batches):
            payload = pack(clock()) + pad
            _ = [payload] * 100

    res = {
        "consumer_bare_ns": _per_call_ns(bare, n),
        "consumer_tool_ns": _per_call_ns(tool, n),
        "producer_bare_ns": _per_call_ns(bare_batch, batches * 100),
        "producer_tool_ns": _per_call_ns(tool_batch, batches * 100),
    }
    res["consumer_overhead_ns"] = res["consumer_tool_ns"] - res["consumer_bare_ns"]
    res["producer_overhead_ns"] = res["producer_tool_ns"] - res["producer_bare_ns"]
    over = max(res["consumer_tool_ns"], 1e-9)
    print(
        f"consumer callback: {res['consumer_tool_ns']:.0f} ns/msg "
        f"(empty callback {res['consumer_bare_ns']:.0f} ns/msg): "
        f"the recorder alone allows {1e9 / over:,.0f} msg/s",
        file=out,
    )
    print(
        f"producer batch build: {res['producer_tool_ns']:.1f} ns/msg "
        f"(bare list {res['producer_bare_ns']:.1f} ns/msg, binary codec, batches of 100)",
        file=out,
    )
    return res


def _run_one(lib_name: str, opts: PerfOptions, progress: IO[str] | None) -> Summary:
    from rabbitstream._perf_workload import load_library, run_workload

    lib = load_library(lib_name, amqp=opts.codec == "amqp")
    return asyncio.run(run_workload(lib, opts, progress=progress))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``rabbitstream perf``; returns the exit status.

    0: the run(s) completed without errors; 1: errors were counted or a run failed;
    2: bad options, no broker, or a library that cannot be loaded.
    """
    opts = parse_args(sys.argv[1:] if argv is None else argv)
    if opts.self_check:
        self_check()
        return 0
    out = sys.stdout
    progress: IO[str] | None = None if opts.quiet else (sys.stderr if opts.json else sys.stdout)
    notes = sys.stderr
    libs = [opts.library] + ([opts.compare] if opts.compare else [])
    if "rstream" in libs and not ensure_rstream(notes):
        return 2
    from rabbitstream._perf_workload import load_library

    for name in libs:
        try:
            load_library(name, amqp=opts.codec == "amqp")
        except ImportError as exc:
            print(f"cannot run the workload with {name}: {exc}", file=notes)
            if name == "rabbitstream":
                print(
                    "  (measure rstream alone with --library rstream"
                    + (", or use --codec binary" if opts.codec == "amqp" else "")
                    + ")",
                    file=notes,
                )
            return 2
    err = probe_broker(opts.host, opts.port)
    if err is not None:
        print(_HINT.format(target=opts.target, error=err), file=notes)
        return 2

    summaries: list[Summary] = []
    for i, name in enumerate(libs):
        run_opts = opts
        if i and opts.stream_generated:
            run_opts = dataclasses.replace(opts, stream=f"perf-{uuid.uuid4().hex[:10]}")
        if progress is not None:
            mode = f"super stream ({opts.partitions} partitions)" if opts.super_stream else "stream"
            limit = f"{opts.time:g} s" if opts.count is None else f"{opts.count:,} messages"
            print(
                f"[{name}] {mode} {run_opts.stream} on {opts.target}: {opts.producers} producer(s), "
                f"{opts.consumers} consumer(s), {opts.size} B {opts.codec} messages, "
                f"{opts.send_mode} x{opts.group_size}, {limit}",
                file=progress,
                flush=True,
            )
        try:
            summary = _run_one(name, run_opts, progress)
        except KeyboardInterrupt:
            print("interrupted", file=notes)
            return 1
        summaries.append(summary)
        if not opts.json:
            print(format_summary(summary), file=out, flush=True)
            print(file=out)

    status = 0 if all(s.errors == 0 for s in summaries) else 1
    if len(summaries) == 2:
        ratio = ratios(summaries[0], summaries[1])
        if opts.json:
            print(
                json.dumps(
                    {
                        summaries[0].library: summaries[0].to_json(),
                        summaries[1].library: summaries[1].to_json(),
                        "ratio": ratio,
                    },
                    indent=2,
                ),
                file=out,
            )
        else:
            print(
                f"Comparison (ratio = {summaries[0].library} / {summaries[1].library}; "
                "throughput: higher is better, latency: lower is better)",
                file=out,
            )
            print(format_comparison(summaries, ratio), file=out)
            a, b = summaries[0].published_rate, summaries[1].published_rate
            if not opts.rate and a and b and not 0.9 < a / b < 1.1:
                print(
                    "note: the runs published at different rates, so their latencies are not comparable "
                    "(a consumer that lags a faster producer in the same process sees a growing backlog); "
                    "compare latency at a fixed rate both sustain, e.g. --rate 10000",
                    file=out,
                )
    elif opts.json:
        print(json.dumps(summaries[0].to_json(), indent=2), file=out)
    return status
