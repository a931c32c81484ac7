"""``rabbitstream perf``: publish/consume performance tool (Stream PerfTest for Python).

Runs producers and consumers against a stream or a super stream and prints a
progress line per second and a summary (throughput published / confirmed /
consumed, publish-to-consume latency percentiles, errors), optionally as JSON.
``--compare rstream`` runs the same workload with rstream in the same invocation and
prints both summaries and the ratio per figure.  See ``docs/perf.md``.

Layout: options in :mod:`._options`, statistics in :mod:`._stats`, one worker's workload in
:mod:`._workload`, the worker processes and their aggregation in :mod:`._runner`.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from typing import IO, Any

from rabbitstream_cli._connection import NO_BROKER, probe
from rabbitstream_cli.perf._options import PerfOptions, parse_args
from rabbitstream_cli.perf._stats import (
    TIMESTAMP,
    ConsumeStats,
    Summary,
    format_comparison,
    format_summary,
    make_recorder,
    ratios,
)

__all__ = ["COMPARE_HINT", "main", "self_check"]

#: what to install for ``--compare rstream`` (this tool never installs anything itself)
COMPARE_HINT = "pip install 'rabbitstream-cli[compare]'  (or: pip install rstream==1.1.1)"


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
    from rabbitstream_cli.perf._runner import run_processes

    return run_processes(lib_name, opts, progress=progress)


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
    from rabbitstream_cli.perf._workload import load_library

    for name in libs:
        try:
            load_library(name, amqp=opts.codec == "amqp")
        except ImportError as exc:
            print(f"cannot run the workload with {name}: {exc}", file=notes)
            if name == "rstream":
                print(f"  rstream is needed to compare: {COMPARE_HINT}", file=notes)
            elif name == "rabbitstream":
                print(
                    "  (measure rstream alone with --library rstream"
                    + (", or use --codec binary" if opts.codec == "amqp" else "")
                    + ")",
                    file=notes,
                )
            return 2
    err = probe(opts.conn.host, opts.conn.port)
    if err is not None:
        print(NO_BROKER.format(target=opts.target, error=err), file=notes)
        return 2

    summaries: list[Summary] = []
    for i, name in enumerate(libs):
        run_opts = opts
        if i and opts.stream_generated:
            run_opts = dataclasses.replace(opts, stream=f"perf-{uuid.uuid4().hex[:10]}")
        if progress is not None:
            mode = f"super stream ({opts.partitions} partitions)" if opts.super_stream else "stream"
            if opts.streams > 1:
                mode = f"{opts.streams} {mode}s"
            limit = f"{opts.time:g} s" if opts.count is None else f"{opts.count:,} messages"
            print(
                f"[{name}] {mode} {run_opts.stream} on {opts.target}: {opts.producers} producer(s), "
                f"{opts.consumers} consumer(s) (one process each), {opts.size} B {opts.codec} messages, "
                f"{opts.send_mode} x{opts.group_size}, {limit}",
                file=progress,
                flush=True,
            )
        try:
            summary = _run_one(name, run_opts, progress)
        except KeyboardInterrupt:
            print("interrupted", file=notes)
            return 1
        except Exception as exc:  # broker refused (credentials, vhost), stream creation failed...
            print(f"rabbitstream perf: error ({name}): {type(exc).__name__}: {exc}", file=notes)
            return 1
        summaries.append(summary)
        if not opts.json:
            print(format_summary(summary), file=out, flush=True)
            print(file=out)

    status = 0 if all(s.errors == 0 for s in summaries) else 1
    if opts.report:
        from rabbitstream_cli.perf._report import render_report

        try:
            with open(opts.report, "w", encoding="utf-8") as f:
                f.write(render_report(summaries))
        except OSError as exc:
            print(f"rabbitstream perf: cannot write the report: {exc}", file=notes)
            status = 1
        else:
            print(f"report: {opts.report}", file=notes)
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
                    "note: the runs published at different rates, so their latencies are not comparable; "
                    "compare latency at a fixed rate both sustain, e.g. --rate 10000",
                    file=out,
                )
    elif opts.json:
        print(json.dumps(summaries[0].to_json(), indent=2), file=out)
    return status
