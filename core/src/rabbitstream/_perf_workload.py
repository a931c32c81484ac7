"""The ``rabbitstream perf`` workload, written once against the rstream-compatible API.

:func:`run_workload` takes the library *module* (``rabbitstream`` or ``rstream``) and
only uses names both offer: ``Producer`` (``send_batch`` / ``send`` /
``send_sub_entry`` with ``on_publish_confirm``), ``Consumer.subscribe``, the
super-stream classes, ``AMQPMessage`` / ``amqp_decoder``, ``ConsumerOffsetSpecification``,
``OffsetType``, ``CompressionType``.  Flow control (confirm window, rate limit) is the
tool's own, so both libraries run exactly the same workload.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import operator
import signal
import ssl
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import IO, Any

from rabbitstream._perf_options import PerfOptions
from rabbitstream._perf_stats import (
    TIMESTAMP,
    ConsumeStats,
    PublishStats,
    Summary,
    format_progress,
    make_recorder,
    rate,
)

__all__ = ["Library", "RunState", "load_library", "run_workload"]

_NAMES = (
    "Producer",
    "Consumer",
    "SuperStreamProducer",
    "SuperStreamConsumer",
    "AMQPMessage",
    "amqp_decoder",
    "ConsumerOffsetSpecification",
    "OffsetType",
    "CompressionType",
    "SlasMechanism",
)
_CLOSE_TIMEOUT = 10.0
_MAX_ERROR_MESSAGES = 20


@dataclass
class Library:
    """The client library under test: its module, version and the names the workload uses."""

    name: str
    version: str
    module: ModuleType
    names: dict[str, Any]

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["names"][name]
        except KeyError:
            raise AttributeError(name) from None


def load_library(name: str, *, amqp: bool = True) -> Library:
    """Import ``rabbitstream`` or ``rstream`` and resolve the names the workload needs.

    :param amqp: also require the AMQP 1.0 names (``AMQPMessage``, ``amqp_decoder``).

    :raises ImportError: with a readable message when the library or one of its
        parts is not installed.
    """
    import importlib
    from importlib.metadata import PackageNotFoundError, version

    module = importlib.import_module(name)
    names: dict[str, Any] = {}
    for n in _NAMES:
        try:
            names[n] = getattr(module, n)
        except Exception as exc:  # ImportError, AttributeError, PluginNotFoundError
            if not amqp and n in ("AMQPMessage", "amqp_decoder"):
                continue
            raise ImportError(f"{name}.{n} is not available: {exc}") from exc
    dist = "rabbitstream-core" if name == "rabbitstream" else name
    try:
        ver = version(dist)
    except PackageNotFoundError:
        ver = str(getattr(module, "__version__", "?"))
    return Library(name=name, version=ver, module=module, names=names)


@dataclass
class RunState:
    """Shared state of one run: stop flag, counters, errors."""

    pubs: list[PublishStats] = field(default_factory=list)
    cons: ConsumeStats = field(default_factory=ConsumeStats)
    errors: int = 0
    messages: list[str] = field(default_factory=list)
    stopping: bool = False
    stopped: asyncio.Event = field(default_factory=asyncio.Event)
    wakers: list[Callable[[], None]] = field(default_factory=list)

    def error(self, text: str, n: int = 1) -> None:
        """Count ``n`` errors, remembering the first distinct messages."""
        self.errors += n
        if len(self.messages) < _MAX_ERROR_MESSAGES and text not in self.messages:
            self.messages.append(text)

    def stop(self) -> None:
        """Ask producers to stop after their current step and wake any of them waiting."""
        self.stopping = True
        self.stopped.set()
        for wake in self.wakers:
            wake()

    def totals(self) -> tuple[int, int, int]:
        """(published, confirmed, consumed)."""
        return (sum(p.published for p in self.pubs), sum(p.confirmed for p in self.pubs), self.cons.consumed)


def _ssl_context(opts: PerfOptions) -> ssl.SSLContext | None:
    if not opts.tls:
        return None
    ctx = ssl.create_default_context(cafile=opts.ca)
    if opts.cert:
        ctx.load_cert_chain(opts.cert, opts.key)
    return ctx


def _connection_kwargs(lib: Library, opts: PerfOptions, *, super_stream: bool) -> dict[str, Any]:
    kw: dict[str, Any] = {
        "host": opts.host,
        "port": opts.port,
        "username": opts.username,
        "password": opts.password,
        "vhost": opts.vhost,
        "ssl_context": _ssl_context(opts),
        "load_balancer_mode": opts.load_balancer,
    }
    if opts.sasl == "external":
        if super_stream and lib.name == "rstream":
            raise ValueError("rstream's super-stream classes have no SASL option (--sasl external)")
        kw["sasl_configuration_mechanism"] = lib.SlasMechanism.MechanismExternal
    return kw


def _offset_spec(lib: Library, opts: PerfOptions) -> Any:
    kind, value = opts.offset
    return lib.ConsumerOffsetSpecification(getattr(lib.OffsetType, kind.upper()), value)


def _compression(lib: Library, opts: PerfOptions) -> Any:
    ct = lib.CompressionType
    return {"none": ct.No, "gzip": ct.Gzip, "snappy": ct.Snappy, "lz4": ct.Lz4, "zstd": ct.Zstd}[
        opts.compression
    ]


class _Publisher:
    """One producer's loop: window, rate limit, message building, confirm counting."""

    __slots__ = ("client", "confirm_unit", "lib", "opts", "quota", "resume_at", "run", "stats", "waiter")

    def __init__(
        self, lib: Library, opts: PerfOptions, run: RunState, client: Any, quota: int | None
    ) -> None:
        self.lib = lib
        self.opts = opts
        self.run = run
        self.client = client
        self.quota = quota
        self.stats = PublishStats()
        run.pubs.append(self.stats)
        run.wakers.append(self._wake)
        self.waiter: asyncio.Future[None] | None = None
        self.resume_at = 0
        # rstream and rabbitstream confirm a sub-entry with one publishing id
        self.confirm_unit = opts.sub_entry_size if opts.send_mode == "sub-entry" else 1

    def _wake(self) -> None:
        w = self.waiter
        if w is not None:
            self.waiter = None
            if not w.done():
                w.set_result(None)

    def on_confirm(self, status: Any) -> None:
        """``on_publish_confirm`` callback (sync: both libraries accept it)."""
        st = self.stats
        if status.is_confirmed:
            st.confirmed += self.confirm_unit
        else:
            st.failed += self.confirm_unit
            self.run.error(f"publish error, response code {status.response_code}", self.confirm_unit)
        if self.waiter is not None and st.published - st.confirmed - st.failed <= self.resume_at:
            self._wake()

    async def _wait_window(self, n: int) -> None:
        st = self.stats
        window = self.opts.confirm_window
        while st.published - st.confirmed - st.failed + n > window and not self.run.stopping:
            self.resume_at = window - n
            self.waiter = asyncio.get_running_loop().create_future()
            await self.waiter

    async def _throttle(self, t0: float, sent: int, per_second: float) -> None:
        loop = asyncio.get_running_loop()
        while not self.run.stopping:
            delay = t0 + sent / per_second - loop.time()
            if delay <= 0:
                return
            await asyncio.sleep(min(delay, 0.1))

    async def loop(self, stream: str) -> None:
        """Publish until stopped or the quota is reached."""
        opts, run, st = self.opts, self.run, self.stats
        mode = opts.send_mode
        group = opts.group_size
        pad = bytes(opts.size - TIMESTAMP.size)
        pack = TIMESTAMP.pack
        clock = time.time_ns
        amqp = self.lib.AMQPMessage if opts.codec == "amqp" else None
        cb = self.on_confirm
        client = self.client
        per_second = opts.rate / max(1, opts.producers) if opts.rate else 0.0
        if per_second:
            group = max(1, min(group, int(per_second / 10))) if mode != "sub-entry" else group
        compression = _compression(self.lib, opts) if mode == "sub-entry" else None
        send_batch: Any = getattr(client, "send_batch", None)
        send_sub_entry: Any = getattr(client, "send_sub_entry", None)
        send = client.send
        super_stream = opts.super_stream
        loop = asyncio.get_running_loop()
        sleep0 = asyncio.sleep
        t0 = loop.time()
        while not run.stopping:
            n = group
            if self.quota is not None:
                n = min(n, self.quota - st.published)
                if n <= 0:
                    return
            if per_second:
                await self._throttle(t0, st.published, per_second)
            await self._wait_window(n)
            if run.stopping:
                return
            payload = pack(clock()) + pad
            msgs: list[Any] = [payload] * n if amqp is None else [amqp(body=payload) for _ in range(n)]
            st.published += n
            try:
                if mode == "batch":
                    await send_batch(stream, msgs, on_publish_confirm=cb)
                elif mode == "sub-entry":
                    await send_sub_entry(stream, msgs, compression_type=compression, on_publish_confirm=cb)
                elif super_stream:
                    for m in msgs:
                        await send(m, on_publish_confirm=cb)
                else:
                    for m in msgs:
                        await send(stream, m, on_publish_confirm=cb)
            except Exception as exc:
                st.published -= n
                run.error(f"producer: {type(exc).__name__}: {exc}")
                return
            # one step per event-loop turn: consumers and confirms in the same loop get their share
            await sleep0(0)


async def _close(what: str, obj: Any, run: RunState) -> None:
    try:
        await asyncio.wait_for(obj.close(), _CLOSE_TIMEOUT)
    except Exception as exc:
        run.error(f"closing {what}: {type(exc).__name__}: {exc}")


async def _ticker(label: str, run: RunState, t0: float, out: IO[str] | None) -> None:
    loop = asyncio.get_running_loop()
    prev = run.totals()
    tprev = t0
    while True:
        await asyncio.sleep(1.0 - ((loop.time() - t0) % 1.0))
        now = loop.time()
        cur = run.totals()
        dt = now - tprev
        p50 = run.cons.tick()
        if out is not None and dt > 0:
            pub, conf, cons = ((c - p) / dt for c, p in zip(cur, prev, strict=True))
            print(
                format_progress(label, now - t0, pub, conf, cons, p50),
                file=out,
                flush=True,
            )
        prev, tprev = cur, now


def _routing_key_extractor() -> Callable[[Any], Any]:
    """An async routing-key extractor cycling over 1000 keys (spreads messages over partitions)."""
    keys = itertools.cycle([str(i) for i in range(1000)])
    take = keys.__next__

    async def extract(message: Any) -> str:
        return take()

    return extract


async def run_workload(lib: Library, opts: PerfOptions, *, progress: IO[str] | None = sys.stdout) -> Summary:
    """Run one workload with ``lib`` and return its summary.

    Creates the stream (or super stream), subscribes the consumers, runs the
    producers for ``opts.time`` seconds or ``opts.count`` messages, waits (at most
    ``opts.drain_timeout``) for outstanding confirms and for the consumers, closes
    everything and deletes the stream if it was generated (unless ``opts.keep``).

    :param progress: where the per-second progress lines go (``None``: nowhere).
    """
    run = RunState()
    summary = Summary(library=lib.name, version=lib.version, target=opts.target, options=opts.describe())
    loop = asyncio.get_running_loop()
    ss = opts.super_stream
    kw = _connection_kwargs(lib, opts, super_stream=ss)
    name = opts.stream
    producers: list[Any] = []
    consumers: list[Any] = []
    admin: Any = None
    created = False
    ticker: asyncio.Task[None] | None = None
    stream_args = {"max-length-bytes": opts.max_length_bytes}
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGINT, run.stop)
    try:
        # -- stream / super stream
        if ss:
            extractor = _routing_key_extractor()
            admin = lib.SuperStreamProducer(
                **kw, super_stream=name, routing_extractor=extractor, connection_name="perf-admin"
            )
            await admin.create_super_stream(
                name, n_partitions=opts.partitions, arguments=stream_args, exists_ok=not opts.stream_generated
            )
        else:
            admin = lib.Producer(**kw, connection_name="perf-admin")
            await admin.start()
            await admin.create_stream(name, arguments=stream_args, exists_ok=not opts.stream_generated)
        created = True

        # -- consumers first, so that "next" sees every message
        decoder = lib.amqp_decoder if opts.codec == "amqp" else None
        recorder = make_recorder(run.cons, operator.attrgetter("body") if decoder is not None else None)
        for i in range(opts.consumers):
            if ss:
                c = lib.SuperStreamConsumer(**kw, super_stream=name, connection_name=f"perf-consumer-{i}")
                consumers.append(c)
                await c.start()
                await c.subscribe(
                    recorder,
                    decoder=decoder,
                    offset_specification=_offset_spec(lib, opts),
                    initial_credit=opts.initial_credit,
                )
            else:
                c = lib.Consumer(**kw, connection_name=f"perf-consumer-{i}")
                consumers.append(c)
                await c.start()
                await c.subscribe(
                    name,
                    recorder,
                    decoder=decoder,
                    offset_specification=_offset_spec(lib, opts),
                    initial_credit=opts.initial_credit,
                )

        # -- producers
        pubs: list[_Publisher] = []
        for i in range(opts.producers):
            if ss:
                p = lib.SuperStreamProducer(
                    **kw,
                    super_stream=name,
                    routing_extractor=_routing_key_extractor(),
                    connection_name=f"perf-producer-{i}",
                )
            else:
                p = lib.Producer(**kw, connection_name=f"perf-producer-{i}")
            producers.append(p)
            await p.start()
            quota = None
            if opts.count is not None:
                quota = opts.count // opts.producers + (1 if i < opts.count % opts.producers else 0)
            pubs.append(_Publisher(lib, opts, run, p, quota))

        # -- run
        t0 = loop.time()
        t0_ns = time.time_ns()
        ticker = asyncio.create_task(_ticker(lib.name, run, t0, None if opts.quiet else progress))
        tasks = [asyncio.create_task(p.loop(name)) for p in pubs]
        if opts.count is None:
            stop_wait = asyncio.create_task(run.stopped.wait())
            waiting: list[asyncio.Future[Any]] = [stop_wait]
            if tasks:
                waiting.append(asyncio.gather(*tasks))
            await asyncio.wait(waiting, timeout=opts.time, return_when=asyncio.FIRST_COMPLETED)
            run.stop()
            await asyncio.gather(*waiting)
        elif tasks:
            await asyncio.gather(*tasks)
        else:  # consumers only, --count: wait for that many messages
            while run.cons.consumed < opts.count and not run.stopping:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        t_pub = loop.time() - t0

        # -- drain: outstanding confirms, then consumers catching up
        t_conf = await _drain(opts, run, t0)
        run.cons.tick()
        summary.duration_s = round(loop.time() - t0, 3)
        published, confirmed, consumed = run.totals()
        unconfirmed = sum(p.outstanding for p in run.pubs)
        if unconfirmed:
            run.error(
                f"{unconfirmed} messages not confirmed within --drain-timeout {opts.drain_timeout:g}s",
                unconfirmed,
            )
        summary.published, summary.confirmed, summary.consumed = published, confirmed, consumed
        summary.published_rate = rate(published, t_pub)
        summary.confirmed_rate = rate(confirmed, t_conf)
        t_cons = (run.cons.last_ns - t0_ns) / 1e9 if run.cons.last_ns else 0.0
        summary.consumed_rate = rate(consumed, t_cons)
        summary.fill_latency(run.cons.total)
    except Exception as exc:
        run.error(f"{type(exc).__name__}: {exc}")
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGINT)
        run.stop()
        if ticker is not None:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
        for i, p in enumerate(producers):
            await _close(f"producer {i}", p, run)
        for i, c in enumerate(consumers):
            await _close(f"consumer {i}", c, run)
        if admin is not None:
            if created and opts.stream_generated and not opts.keep:
                try:
                    if ss:
                        await asyncio.wait_for(
                            admin.delete_super_stream(name, missing_ok=True), _CLOSE_TIMEOUT
                        )
                    else:
                        await asyncio.wait_for(admin.delete_stream(name, missing_ok=True), _CLOSE_TIMEOUT)
                except Exception as exc:
                    run.error(f"deleting {name}: {type(exc).__name__}: {exc}")
            await _close("admin", admin, run)
    summary.errors = run.errors + run.cons.errors
    if run.cons.errors:
        run.messages.append(f"{run.cons.errors} consumed messages without a perf timestamp")
    summary.error_messages = run.messages
    return summary


async def _drain(opts: PerfOptions, run: RunState, t0: float) -> float:
    """Wait for confirms and consumers; return the time (from ``t0``) all confirms were in."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + opts.drain_timeout
    t_conf: float | None = None
    fresh = opts.stream_generated and opts.offset[0] in ("first", "next")
    idle_since = loop.time()
    last_consumed = run.cons.consumed
    while True:
        now = loop.time()
        if t_conf is None and all(p.outstanding <= 0 for p in run.pubs):
            t_conf = now - t0
        if t_conf is not None:
            if opts.consumers == 0:
                break
            _pub, confirmed, consumed = run.totals()
            if fresh and consumed >= confirmed * opts.consumers:
                break
            if consumed != last_consumed:
                last_consumed, idle_since = consumed, now
            elif not fresh and now - idle_since >= 1.0:
                break
        if now >= deadline:
            break
        await asyncio.sleep(0.005)
    return t_conf if t_conf is not None else loop.time() - t0
