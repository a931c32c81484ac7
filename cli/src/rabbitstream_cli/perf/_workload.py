"""The ``rabbitstream perf`` workload of one worker process, written once against the rstream-compatible API.

A worker is one producer or one consumer in its own process and event loop (see
:mod:`rabbitstream_cli.perf._runner` for the parent).  The code takes the library
*module* (``rabbitstream`` or ``rstream``) and only uses names both offer:
``Producer`` (``send_batch`` / ``send`` / ``send_sub_entry`` with
``on_publish_confirm``), ``Consumer.subscribe``, the super-stream classes,
``AMQPMessage`` / ``amqp_decoder``, ``ConsumerOffsetSpecification``, ``OffsetType``,
``CompressionType``.  Flow control (confirm window, rate limit) is the tool's own, so
both libraries run exactly the same workload.
"""

from __future__ import annotations

import asyncio
import itertools
import operator
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from rabbitstream_cli.perf._options import PerfOptions
from rabbitstream_cli.perf._stats import TIMESTAMP, ConsumeStats, PublishStats, make_recorder

__all__ = [
    "Library",
    "WorkerState",
    "consume",
    "create_streams",
    "delete_streams",
    "load_library",
    "produce",
]

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
class WorkerState:
    """State of one worker: stop flag, counters, errors."""

    pub: PublishStats = field(default_factory=PublishStats)
    cons: ConsumeStats = field(default_factory=ConsumeStats)
    errors: int = 0
    messages: list[str] = field(default_factory=list)
    stopping: bool = False
    wakers: list[Callable[[], None]] = field(default_factory=list)
    #: wall clock (ns) when publishing stopped, and when the last confirm arrived
    publish_end_ns: int = 0
    confirm_end_ns: int = 0

    def error(self, text: str, n: int = 1) -> None:
        """Count ``n`` errors, remembering the first distinct messages."""
        self.errors += n
        if len(self.messages) < _MAX_ERROR_MESSAGES and text not in self.messages:
            self.messages.append(text)

    def stop(self) -> None:
        """Ask the producer to stop after its current step and wake it if it waits."""
        self.stopping = True
        for wake in self.wakers:
            wake()


def _connection_kwargs(lib: Library, opts: PerfOptions, *, super_stream: bool) -> dict[str, Any]:
    kw = opts.conn.producer_kwargs()
    if opts.conn.sasl == "external":
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
        self, lib: Library, opts: PerfOptions, run: WorkerState, client: Any, quota: int | None
    ) -> None:
        self.lib = lib
        self.opts = opts
        self.run = run
        self.client = client
        self.quota = quota
        self.stats = run.pub
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
            # one step per event-loop turn: confirms get their share of the loop
            await sleep0(0)


async def _close(what: str, obj: Any, run: WorkerState) -> None:
    try:
        await asyncio.wait_for(obj.close(), _CLOSE_TIMEOUT)
    except Exception as exc:
        run.error(f"closing {what}: {type(exc).__name__}: {exc}")


def _routing_key_extractor() -> Callable[[Any], Any]:
    """An async routing-key extractor cycling over 1000 keys (spreads messages over partitions)."""
    keys = itertools.cycle([str(i) for i in range(1000)])
    take = keys.__next__

    async def extract(message: Any) -> str:
        return take()

    return extract


async def _admin(lib: Library, opts: PerfOptions, name: str) -> Any:
    kw = _connection_kwargs(lib, opts, super_stream=opts.super_stream)
    if opts.super_stream:
        return lib.SuperStreamProducer(
            **kw, super_stream=name, routing_extractor=_routing_key_extractor(), connection_name="perf-admin"
        )
    admin = lib.Producer(**kw, connection_name="perf-admin")
    await admin.start()
    return admin


async def create_streams(lib: Library, opts: PerfOptions) -> None:
    """Create the run's streams or super streams (a name the user gave may exist already)."""
    args = {"max-length-bytes": opts.max_length_bytes}
    for name in opts.stream_names:
        admin = await _admin(lib, opts, name)
        try:
            if opts.super_stream:
                await admin.create_super_stream(
                    name, n_partitions=opts.partitions, arguments=args, exists_ok=not opts.stream_generated
                )
            else:
                await admin.create_stream(name, arguments=args, exists_ok=not opts.stream_generated)
        finally:
            await asyncio.wait_for(admin.close(), _CLOSE_TIMEOUT)


async def delete_streams(lib: Library, opts: PerfOptions) -> list[str]:
    """Delete the run's streams; return the errors (as text)."""
    errors: list[str] = []
    for name in opts.stream_names:
        try:
            admin = await _admin(lib, opts, name)
            try:
                if opts.super_stream:
                    await asyncio.wait_for(admin.delete_super_stream(name, missing_ok=True), _CLOSE_TIMEOUT)
                else:
                    await asyncio.wait_for(admin.delete_stream(name, missing_ok=True), _CLOSE_TIMEOUT)
            finally:
                await asyncio.wait_for(admin.close(), _CLOSE_TIMEOUT)
        except Exception as exc:
            errors.append(f"deleting {name}: {type(exc).__name__}: {exc}")
    return errors


async def produce(
    lib: Library,
    opts: PerfOptions,
    run: WorkerState,
    *,
    index: int,
    stream: str,
    quota: int | None,
    ready: Callable[[], Any],
    started: Callable[[], Any],
    stop_requested: Callable[[], bool],
) -> None:
    """One producer: connect, report ``ready``, wait for ``started``, publish, drain confirms, close.

    :param ready: called once connected (the parent starts producers together).
    :param started: awaitable factory: returns when publishing may start.
    :param stop_requested: polled; true when the parent asks producers to stop.
    """
    kw = _connection_kwargs(lib, opts, super_stream=opts.super_stream)
    if opts.super_stream:
        client = lib.SuperStreamProducer(
            **kw,
            super_stream=stream,
            routing_extractor=_routing_key_extractor(),
            connection_name=f"perf-producer-{index}",
        )
    else:
        client = lib.Producer(**kw, connection_name=f"perf-producer-{index}")
    try:
        await client.start()
        ready()
        await started()
        pub = _Publisher(lib, opts, run, client, quota)
        task = asyncio.create_task(pub.loop(stream))
        while not task.done():
            if stop_requested():
                run.stop()
            await asyncio.wait({task}, timeout=0.02)
        await task
        run.publish_end_ns = time.time_ns()
        # drain: outstanding confirms
        loop = asyncio.get_running_loop()
        deadline = loop.time() + opts.drain_timeout
        while run.pub.outstanding > 0 and loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        run.confirm_end_ns = time.time_ns()
        if run.pub.outstanding > 0:
            n = run.pub.outstanding
            run.error(f"{n} messages not confirmed within --drain-timeout {opts.drain_timeout:g}s", n)
    except Exception as exc:
        run.error(f"producer {index}: {type(exc).__name__}: {exc}")
    finally:
        await _close(f"producer {index}", client, run)


async def consume(
    lib: Library,
    opts: PerfOptions,
    run: WorkerState,
    *,
    index: int,
    stream: str,
    ready: Callable[[], Any],
    should_stop: Callable[[WorkerState], bool],
) -> None:
    """One consumer: subscribe, report ``ready``, record latencies until ``should_stop``, close."""
    kw = _connection_kwargs(lib, opts, super_stream=opts.super_stream)
    decoder = lib.amqp_decoder if opts.codec == "amqp" else None
    recorder = make_recorder(run.cons, operator.attrgetter("body") if decoder is not None else None)
    name = f"perf-consumer-{index}"
    client: Any = None
    try:
        if opts.super_stream:
            client = lib.SuperStreamConsumer(**kw, super_stream=stream, connection_name=name)
            await client.start()
            await client.subscribe(
                recorder,
                decoder=decoder,
                offset_specification=_offset_spec(lib, opts),
                initial_credit=opts.initial_credit,
            )
        else:
            client = lib.Consumer(**kw, connection_name=name)
            await client.start()
            await client.subscribe(
                stream,
                recorder,
                decoder=decoder,
                offset_specification=_offset_spec(lib, opts),
                initial_credit=opts.initial_credit,
            )
        ready()
        while not should_stop(run):  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    except Exception as exc:
        run.error(f"consumer {index}: {type(exc).__name__}: {exc}")
    finally:
        if client is not None:
            await _close(f"consumer {index}", client, run)
