"""Worker processes of ``rabbitstream perf`` and the parent that aggregates them once per second.

Every producer and every consumer runs in its own process (``multiprocessing``,
``fork`` on Linux) with its own event loop, so a consumer never waits behind a
producer for the same core.  Workers report cumulative counters and the latency
histogram of the last second on a queue, on whole seconds of a shared wall-clock
epoch, so the parent adds up the same second of every worker.  Latency is measured
across processes: each message body starts with the wall-clock time it was built at.

Messages on the queue (tuples; ``who`` = ``(role, index)``):

* ``("ready", who)``: connected (and subscribed); the parent starts producers when all are.
* ``("stats", who, second, counters, histogram)``: a report for whole second ``second``.
* ``("done", who, counters, histogram, times, errors, messages)``: the final report.

``counters`` = ``(published, confirmed, failed, consumed, untimed)``; ``histogram`` =
``{bucket: count}`` since the previous report; ``times`` = wall-clock ns of the end
of publishing, of the last confirm and of the last message consumed.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import queue as _queue
import signal
import time
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from typing import IO, Any

from rabbitstream_cli.perf._options import PerfOptions
from rabbitstream_cli.perf._stats import (
    HIST_SIZE,
    Histogram,
    Summary,
    format_progress,
    rate,
)
from rabbitstream_cli.perf._workload import (
    WorkerState,
    consume,
    create_streams,
    delete_streams,
    load_library,
    produce,
)

__all__ = ["Control", "Progress", "WorkerSpec", "run_processes", "worker_main"]

Who = tuple[str, int]
Counters = tuple[int, int, int, int, int]
_ZERO: Counters = (0, 0, 0, 0, 0)
#: how long the parent waits for workers to connect, and for their final report
_READY_TIMEOUT = 60.0
_EXIT_TIMEOUT = 15.0
#: ``fork`` where it exists (the parent has no thread and no running event loop when it starts
#: workers, and a forked worker skips re-importing the client and its plugins: ~0.5 s each on a
#: busy 2-core machine); ``spawn`` elsewhere.
_START_METHOD = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"


@dataclass(frozen=True)
class WorkerSpec:
    """What one worker process does."""

    role: str  # "producer" | "consumer"
    index: int
    library: str
    stream: str
    quota: int | None = None


class Control:
    """Signals from the parent to the workers (shared memory, safe across processes)."""

    def __init__(self, ctx: Any, consumers: int) -> None:
        self.start = ctx.Event()
        self.stop_producers = ctx.Event()
        self.stop_consumers = ctx.Event()
        #: wall clock (s) of second 0 of the run
        self.epoch = ctx.Value("d", 0.0)
        #: per consumer: messages to see before it stops by itself (-1: not known yet)
        self.targets = ctx.Array("q", [-1] * max(1, consumers))


def _take_histogram(h: Histogram) -> dict[int, int]:
    counts = h.counts
    out: dict[int, int] = {}
    for i, c in enumerate(counts):
        if c:
            out[i] = c
            counts[i] = 0
    return out


def _counters(run: WorkerState) -> Counters:
    p, c = run.pub, run.cons
    return (p.published, p.confirmed, p.failed, c.consumed, c.errors)


async def _reporter(spec: WorkerSpec, run: WorkerState, out: Any, ctl: Control) -> None:
    who = (spec.role, spec.index)
    epoch = float(ctl.epoch.value)
    k = max(1, int(time.time() - epoch) + 1)
    while True:
        delay = epoch + k - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        out.put(("stats", who, k, _counters(run), _take_histogram(run.cons.interval)))
        k = max(k + 1, int(time.time() - epoch) + 1)


async def _worker(spec: WorkerSpec, opts: PerfOptions, out: Any, ctl: Control) -> None:
    lib = load_library(spec.library, amqp=opts.codec == "amqp")
    run = WorkerState()
    who = (spec.role, spec.index)
    reporter: asyncio.Task[None] | None = None

    async def started() -> None:
        nonlocal reporter
        while not ctl.start.is_set():  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        if reporter is None:
            reporter = asyncio.create_task(_reporter(spec, run, out, ctl))
        delay = float(ctl.epoch.value) - time.time()
        if delay > 0:
            await asyncio.sleep(delay)

    def ready() -> None:
        out.put(("ready", who))

    fresh = opts.stream_generated and opts.offset[0] in ("first", "next")
    idle = [time.monotonic(), 0]

    def should_stop(state: WorkerState) -> bool:
        nonlocal reporter
        if reporter is None and ctl.start.is_set():
            reporter = asyncio.create_task(_reporter(spec, run, out, ctl))
        if ctl.stop_consumers.is_set():
            return True
        target = int(ctl.targets[spec.index])
        consumed = state.cons.consumed
        if target < 0:
            return False
        if fresh or opts.producers == 0:
            return consumed >= target
        now = time.monotonic()
        if consumed != idle[1]:
            idle[0], idle[1] = now, consumed
        return now - idle[0] >= 1.0

    try:
        if spec.role == "producer":
            await produce(
                lib,
                opts,
                run,
                index=spec.index,
                stream=spec.stream,
                quota=spec.quota,
                ready=ready,
                started=started,
                stop_requested=ctl.stop_producers.is_set,
            )
        else:
            await consume(
                lib, opts, run, index=spec.index, stream=spec.stream, ready=ready, should_stop=should_stop
            )
    finally:
        if reporter is not None:
            reporter.cancel()
        times = (run.publish_end_ns, run.confirm_end_ns, run.cons.last_ns)
        errors = run.errors + run.cons.errors
        messages = list(run.messages)
        if run.cons.errors:
            messages.append(f"{run.cons.errors} consumed messages without a perf timestamp")
        out.put(("done", who, _counters(run), _take_histogram(run.cons.interval), times, errors, messages))


def worker_main(spec: WorkerSpec, opts: PerfOptions, out: Any, ctl: Control) -> None:
    """Entry point of a worker process (Ctrl-C is the parent's business)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        asyncio.run(_worker(spec, opts, out, ctl))
    except BaseException as exc:
        who = (spec.role, spec.index)
        text = f"{spec.role} {spec.index}: {type(exc).__name__}: {exc}"
        out.put(("done", who, _ZERO, {}, (0, 0, 0), 1, [text]))


@dataclass
class Progress:
    """The parent's view of a run: per-worker reports by second, totals, final results."""

    label: str
    workers: list[Who]
    out: IO[str] | None
    history: dict[Who, dict[int, Counters]] = field(default_factory=dict)
    seconds: dict[int, Histogram] = field(default_factory=dict)
    total: Histogram = field(default_factory=Histogram)
    final: dict[Who, tuple[Counters, tuple[int, int, int], int, list[str]]] = field(default_factory=dict)
    ready: set[Who] = field(default_factory=set)
    printed: int = 0
    #: per-second rows: (second, published, confirmed, consumed, latency p50, p95, p99 in µs)
    timeline: list[tuple[int, float, float, float, float | None, float | None, float | None]] = field(
        default_factory=list
    )

    def latest(self, who: Who) -> Counters:
        """The latest counters of one worker (final if done)."""
        if who in self.final:
            return self.final[who][0]
        h = self.history.get(who)
        return h[max(h)] if h else _ZERO

    def totals(self) -> Counters:
        """Sum of the latest counters of every worker."""
        sums = [0, 0, 0, 0, 0]
        for who in self.workers:
            for i, v in enumerate(self.latest(who)):
                sums[i] += v
        return (sums[0], sums[1], sums[2], sums[3], sums[4])

    def _at(self, who: Who, k: int) -> Counters:
        h = self.history.get(who, {})
        best = max((s for s in h if s <= k), default=None)
        if best is not None:
            return h[best]
        return self.final[who][0] if who in self.final and not h else _ZERO

    def _merge(self, k: int | None, hist: dict[int, int]) -> None:
        counts = self.total.counts
        sec = None if k is None else self.seconds.setdefault(k, Histogram()).counts
        for i, c in hist.items():
            if 0 <= i < HIST_SIZE:
                counts[i] += c
                if sec is not None:
                    sec[i] += c

    def handle(self, msg: tuple[Any, ...]) -> None:
        """Take one message from a worker."""
        kind, who = msg[0], tuple(msg[1])
        if kind == "ready":
            self.ready.add(who)
        elif kind == "stats":
            _, _, k, counters, hist = msg
            self.history.setdefault(who, {})[k] = tuple(counters)
            self._merge(k if k > self.printed else None, hist)
        elif kind == "done":
            _, _, counters, hist, times, errors, messages = msg
            self.final[who] = (tuple(counters), tuple(times), errors, list(messages))
            self._merge(None, hist)

    def due(self, k: int, live: set[Who]) -> bool:
        """Every live worker has reported second ``k``."""
        return all(k in self.history.get(w, {}) for w in live)

    def print_second(self, k: int) -> None:
        """Print (and record) the progress line of second ``k``."""
        cur = [0, 0, 0, 0, 0]
        prev = [0, 0, 0, 0, 0]
        for who in self.workers:
            for i, v in enumerate(self._at(who, k)):
                cur[i] += v
            for i, v in enumerate(self._at(who, k - 1)):
                prev[i] += v
        pub, conf, cons = cur[0] - prev[0], cur[1] - prev[1], cur[3] - prev[3]
        h = self.seconds.pop(k, None)
        p50, p95, p99 = h.percentiles([50, 95, 99]) if h is not None else (None, None, None)
        self.timeline.append((k, float(pub), float(conf), float(cons), p50, p95, p99))
        self.printed = k
        if self.out is not None:
            print(format_progress(self.label, float(k), pub, conf, cons, p50), file=self.out, flush=True)


def _set_targets(ctl: Control, state: Progress, specs: list[WorkerSpec]) -> None:
    """Each consumer's target: the messages confirmed on its stream (every partition of a super stream)."""
    confirmed: dict[str, int] = {}
    for s in specs:
        if s.role == "producer":
            confirmed[s.stream] = confirmed.get(s.stream, 0) + state.latest((s.role, s.index))[1]
    for s in specs:
        if s.role == "consumer":
            ctl.targets[s.index] = confirmed.get(s.stream, 0)


def _quota(opts: PerfOptions, i: int) -> int | None:
    if opts.count is None:
        return None
    return opts.count // opts.producers + (1 if i < opts.count % opts.producers else 0)


class _Interrupted(Exception):
    pass


def run_processes(library: str, opts: PerfOptions, *, progress: IO[str] | None) -> Summary:
    """Run one workload with worker processes and return its summary.

    Creates the streams, starts the consumers (subscribed before anything is
    published), then the producers; runs ``opts.time`` seconds or ``opts.count``
    messages; waits (at most ``opts.drain_timeout``) for confirms and for the
    consumers; deletes generated streams unless ``opts.keep``.  Ctrl-C stops the run
    early and still prints the summary.
    """
    lib = load_library(library, amqp=opts.codec == "amqp")
    summary = Summary(library=lib.name, version=lib.version, target=opts.target, options=opts.describe())
    names = opts.stream_names
    errors: list[str] = []
    asyncio.run(create_streams(lib, opts))
    ctx: Any = multiprocessing.get_context(_START_METHOD)
    out: Any = ctx.Queue()
    ctl = Control(ctx, opts.consumers)
    specs = [WorkerSpec("consumer", i, library, names[i % len(names)]) for i in range(opts.consumers)]
    specs += [
        WorkerSpec("producer", i, library, names[i % len(names)], _quota(opts, i))
        for i in range(opts.producers)
    ]
    state = Progress(label=library, workers=[(s.role, s.index) for s in specs], out=progress)
    procs: dict[Who, BaseProcess] = {}
    interrupted = False
    try:
        for s in specs:
            p = ctx.Process(target=worker_main, args=(s, opts, out, ctl), name=f"perf-{s.role}-{s.index}")
            p.start()
            procs[(s.role, s.index)] = p

        def pump(timeout: float) -> None:
            try:
                state.handle(out.get(timeout=max(timeout, 0.0)))
                while True:
                    state.handle(out.get_nowait())
            except _queue.Empty:
                pass

        def live() -> set[Who]:
            dead = {w for w, p in procs.items() if not p.is_alive()}
            return {w for w in procs if w not in state.final and w not in dead}

        deadline = time.monotonic() + _READY_TIMEOUT
        while len(state.ready | set(state.final)) < len(specs):
            if time.monotonic() > deadline or not live() - state.ready:
                break
            pump(0.1)
        if state.final:  # a worker failed before the start
            raise _Interrupted
        not_ready = sorted(set(procs) - state.ready)
        if not_ready:
            errors.extend(f"{w[0]} {w[1]} not connected within {_READY_TIMEOUT:g} s" for w in not_ready)
            raise _Interrupted
        epoch = time.time() + 0.05
        ctl.epoch.value = epoch
        if opts.producers == 0 and opts.count is not None:
            for i in range(opts.consumers):
                ctl.targets[i] = opts.count
        ctl.start.set()
        producers = {w for w in procs if w[0] == "producer"}
        stop_at = epoch + opts.time if opts.time is not None else None
        drain_deadline: float | None = None
        while True:
            try:
                nxt = epoch + state.printed + 1.25
                pump(max(0.02, min(nxt, stop_at or nxt) - time.time()))
                k = state.printed + 1
                alive = live()
                late = time.time() > epoch + k + 1.5
                if (state.due(k, alive) or late) and time.time() >= epoch + k:
                    state.print_second(k)
                now = time.time()
                if stop_at is not None and now >= stop_at:
                    ctl.stop_producers.set()
                pdone = all(w in state.final or w not in alive for w in producers)
                if producers and pdone and drain_deadline is None:
                    _set_targets(ctl, state, specs)
                    drain_deadline = now + opts.drain_timeout
                if not producers and stop_at is not None and now >= stop_at:
                    ctl.stop_consumers.set()
                if drain_deadline is not None and now >= drain_deadline:
                    ctl.stop_consumers.set()
                if not alive:
                    break
            except KeyboardInterrupt:
                if interrupted:
                    raise
                interrupted = True
                errors.append("interrupted")
                ctl.stop_producers.set()
                if not producers:
                    ctl.stop_consumers.set()
    except _Interrupted:
        pass
    finally:
        ctl.stop_producers.set()
        ctl.stop_consumers.set()
        ctl.start.set()
        # read the queue while waiting: a worker exits only once what it put is in the pipe
        end = time.monotonic() + _EXIT_TIMEOUT
        while any(p.is_alive() for p in procs.values()) and time.monotonic() < end:
            try:
                state.handle(out.get(timeout=0.05))
            except _queue.Empty:
                pass
            except (EOFError, OSError):
                break
        while True:
            try:
                state.handle(out.get_nowait())
            except (_queue.Empty, EOFError, OSError):
                break
        for w, p in procs.items():
            if p.is_alive():
                p.terminate()
                p.join(5)
                errors.append(f"{w[0]} {w[1]} did not exit in time (terminated)")
            elif w not in state.final:
                errors.append(f"{w[0]} {w[1]} exited with status {p.exitcode} and no report")
        out.close()
        if opts.stream_generated and not opts.keep:
            errors += asyncio.run(delete_streams(lib, opts))
    _fill(summary, state, float(ctl.epoch.value), errors)
    return summary


def _fill(summary: Summary, state: Progress, epoch: float, errors: list[str]) -> None:
    published, confirmed, _failed, consumed, _untimed = state.totals()
    n_errors = len(errors)
    messages = list(errors)
    pub_end = conf_end = cons_end = 0
    for _, times, errs, msgs in state.final.values():
        pub_end, conf_end, cons_end = max(pub_end, times[0]), max(conf_end, times[1]), max(cons_end, times[2])
        n_errors += errs
        messages.extend(m for m in msgs if m not in messages)
    e_ns = int(epoch * 1e9)
    summary.published, summary.confirmed, summary.consumed = published, confirmed, consumed
    summary.errors = n_errors
    summary.error_messages = messages[:20]
    if epoch:
        summary.published_rate = rate(published, (pub_end - e_ns) / 1e9 if pub_end else 0.0)
        summary.confirmed_rate = rate(confirmed, (conf_end - e_ns) / 1e9 if conf_end else 0.0)
        summary.consumed_rate = rate(consumed, (cons_end - e_ns) / 1e9 if cons_end else 0.0)
        summary.duration_s = round(max(pub_end, conf_end, cons_end, e_ns) / 1e9 - epoch, 3)
    summary.fill_latency(state.total)
    summary.timeline = [
        {
            "second": k,
            "published": pub,
            "confirmed": conf,
            "consumed": cons,
            "latency_p50_ms": None if p50 is None else round(p50 / 1000, 3),
            "latency_p95_ms": None if p95 is None else round(p95 / 1000, 3),
            "latency_p99_ms": None if p99 is None else round(p99 / 1000, 3),
        }
        for k, pub, conf, cons, p50, p95, p99 in state.timeline
    ]
