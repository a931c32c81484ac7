"""The rstream-compatible :class:`Producer` (guide: ``docs/producer.md``)."""

from __future__ import annotations

import asyncio
import inspect
import logging
import ssl
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rabbitstream._connection._credentials import CredentialsProvider
from rabbitstream._connection._pool import (
    CALLBACK_WAIT_TIMEOUT,
    ConnectionOptions,
    NodeConnection,
    close_step,
    close_wait_timeout,
)
from rabbitstream._consumer._types import MAX_REFERENCE_BYTES
from rabbitstream._producer._base import (
    EnqueueTimeoutError,
    ProducerBase,
    ProducerClosedError,
    compression_code,
)
from rabbitstream._producer._observed import new_publisher
from rabbitstream._producer._publisher import (
    PRODUCER_CLOSED_CODE,
    ConfirmCallback,
    Message,
    Publisher,
)
from rabbitstream.exceptions import ClientError, ServerError, StreamAlreadyExists, StreamDoesNotExist
from rabbitstream.plugin import get_registry
from rabbitstream.protocol._subentry import encode_sub_entry
from rabbitstream.recovery import BackOffRecoveryStrategy, RecoveryStrategy
from rabbitstream.utils import ConfirmationStatus, OnClosedErrorInfo

if TYPE_CHECKING:
    from rabbitstream._connection._client import StreamMetadata
    from rabbitstream._connection._locator import StateListener
    from rabbitstream.plugin import Registry

__all__ = ["EnqueueTimeoutError", "Producer", "ProducerClosedError"]

log = logging.getLogger("rabbitstream.producer")


class Producer(ProducerBase):
    """Publishes messages to streams, with confirms, deduplication and automatic recovery.

    Keywords after ``port`` are rstream's (same names and defaults) plus:

    :param max_unconfirmed: in-flight bound per publisher (buffered + unconfirmed messages);
        ``send`` waits beyond it.  Default 10,000 (rstream: unbounded).
    :param batch_size: ``send`` flushes when this many messages are buffered (default 500).
    :param linger: seconds a buffered message may wait for a flush; overrides
        ``default_batch_publishing_delay``, which is read as **milliseconds** (default 3 ms).
    :param enqueue_timeout: seconds ``send`` may wait for room (``None``: forever);
        :class:`EnqueueTimeoutError` after that.
    :param confirm_timeout: seconds before an unconfirmed message is released and its callback
        called with ``response_code=10004`` (``None``: never). Default 30 s.
    :param registry: plugin registry (compression codecs); default the process-wide one.
    :param on_state_change: ``listener(StateChange)`` (sync or async) called for each publisher
        when its connection is lost, before each recovery attempt, and when it is recovered or
        failed for good (``docs/clusters.md``).
    """

    def __init__(
        self,
        host: str,
        port: int = 5552,
        *,
        ssl_context: ssl.SSLContext | None = None,
        vhost: str = "/",
        username: str,
        password: str | CredentialsProvider,
        frame_max: int = 1048576,
        heartbeat: int = 60,
        load_balancer_mode: bool = False,
        max_retries: int = 20,
        max_publishers_by_connection: int = 200,
        default_batch_publishing_delay: float = 3,
        default_context_switch_value: int = 1000,
        connection_name: str = "",
        sasl_configuration_mechanism: object = "PLAIN",
        filter_value_extractor: Callable[[Any], Awaitable[str] | str] | None = None,
        on_close_handler: Callable[[OnClosedErrorInfo], Awaitable[None] | None] | None = None,
        recovery_strategy: RecoveryStrategy | None = None,
        max_unconfirmed: int = 10_000,
        batch_size: int = 500,
        linger: float | None = None,
        enqueue_timeout: float | None = None,
        confirm_timeout: float | None = 30.0,
        registry: Registry | None = None,
        on_state_change: StateListener | None = None,
    ) -> None:
        if not 0 < max_publishers_by_connection <= 256:
            raise ValueError("max_publishers_by_connection must be in 1..256")
        if max_unconfirmed < 1 or batch_size < 1:
            raise ValueError("max_unconfirmed and batch_size must be >= 1")
        options = ConnectionOptions.from_kwargs(locals())
        super().__init__(
            host,
            port,
            options,
            connection_name=connection_name or "rstream-producer",
            load_balancer_mode=load_balancer_mode,
            max_retries=max_retries,
            max_publishers=max_publishers_by_connection,
            recovery_strategy=(
                recovery_strategy if recovery_strategy is not None else BackOffRecoveryStrategy(True)
            ),
            on_close_handler=on_close_handler,
            on_state_change=on_state_change,
        )
        self._linger = linger if linger is not None else max(default_batch_publishing_delay, 0) / 1000.0
        self._context_switch = max(default_context_switch_value, 1)
        self._filter_value_extractor = filter_value_extractor
        self._max_unconfirmed = max_unconfirmed
        self._batch_size = batch_size
        self._enqueue_timeout = enqueue_timeout
        self._confirm_timeout = confirm_timeout
        self._registry = registry
        self._create_lock: asyncio.Lock | None = None
        self._sends = 0
        self._last_pub: Publisher | None = None  # send()'s cache of the last (stream, name) used
        self._last_name: str | None = None
        self._close_task: asyncio.Task[None] | None = None
        self._session = 0  # incremented by each close(): what began before it is stale
        self._close_callers: set[asyncio.Task[Any] | None] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._cb_tasks: set[asyncio.Task[Any]] = set()  # async confirm callback runners

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Producer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Open the locator connection (idempotent); check Publish v2 if filtering is configured."""
        closing = self._close_task
        if closing is not None and not closing.done():
            await asyncio.shield(closing)  # a close() still running finishes first
        if self._started:
            return
        self._closing = False
        self._loop = asyncio.get_running_loop()
        self._create_lock = asyncio.Lock()
        locator = await self._get_locator()
        if self._filter_value_extractor is not None and locator.publish_version < 2:
            await self.close()
            raise ClientError("the broker does not support Publish v2 (filtering needs RabbitMQ 3.13+)")
        self._started = True
        if self._confirm_timeout is not None:
            self._spawn(self._expire_loop(self._confirm_timeout))

    async def close(self) -> None:
        """Flush buffers, wait briefly for confirms, delete publishers, close connections.

        Bounded in time even with a dead broker; messages still unconfirmed at the end are reported
        to their callbacks with ``response_code=10003`` (producer closed).  A cancelled ``close()``
        still completes (in the background; a second ``close()`` waits for it).
        """
        task = self._close_task
        if task is None or task.done():
            self._closing = True  # at once: a send from here on sees the producer closed
            task = self._close_task = asyncio.get_running_loop().create_task(self._close())
        caller = asyncio.current_task()
        self._close_callers.add(caller)  # never cancelled by the close it waits for
        try:
            await asyncio.shield(task)
        finally:
            self._close_callers.discard(caller)

    async def _close(self) -> None:
        self._closing = True
        self._session += 1
        self._started = False
        self._recovery.cancel(keep=self._close_callers)
        pubs = list(dict.fromkeys(self._publishers.values()))
        for pub in pubs:
            pub.flush()
        deadline = time.monotonic() + close_wait_timeout()
        while any(p.pending and p.ready and p.client is not None and not p.client.is_closed for p in pubs):
            if time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.01)
        for pub in pubs:
            pub.close()
            pub.fail_all(PRODUCER_CLOSED_CODE, ProducerClosedError("the producer was closed"))
        self._publishers.clear()
        self._last_pub = None
        await self._pool.close_all(self._delete_publishers)
        await self._pool.close_locator()
        runners = [t for t in self._cb_tasks if t not in self._close_callers]
        if runners:  # async callbacks of the released messages run before the cancel (bounded)
            await asyncio.wait(runners, timeout=CALLBACK_WAIT_TIMEOUT)
        await self._pool.end_tasks(keep=self._close_callers)
        self._closing = False

    @staticmethod
    async def _delete_publishers(conn: NodeConnection[Publisher]) -> None:
        client = conn.client
        await asyncio.gather(*(client.delete_publisher(pid) for pid in conn.entries))

    def _spawn_callbacks(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = self._spawn(coro)
        self._cb_tasks.add(task)
        task.add_done_callback(self._cb_tasks.discard)
        return task

    async def _expire_loop(self, timeout: float) -> None:
        period = min(1.0, max(timeout / 4, 0.01))
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            for pub in list(self._publishers.values()):
                if pub.deadlines:
                    pub.expire(now)

    async def _publisher(self, stream: str, name: str | None) -> Publisher:
        if not self._started:
            raise ProducerClosedError("the producer is not started: call start() or use 'async with'")
        if not stream:
            raise ValueError("stream must not be empty")
        if name is not None and len(name.encode()) > MAX_REFERENCE_BYTES:
            raise ValueError(f"publisher_name is longer than {MAX_REFERENCE_BYTES} bytes")
        assert self._create_lock is not None
        async with self._create_lock:
            pub = self._publishers.get((stream, name))
            if pub is not None:
                return pub
            if name is None:  # rstream: an unnamed send reuses the stream's existing publisher
                for (s, _), p in self._publishers.items():
                    if s == stream:
                        self._publishers[(stream, None)] = p
                        return p
            pub = new_publisher(
                self._observer,
                stream,
                name,
                limit=self._max_unconfirmed,
                batch_size=self._batch_size,
                linger=self._linger,
                confirm_timeout=self._confirm_timeout,
                filtering=self._filter_value_extractor is not None,
                spawn=self._spawn_callbacks,
            )
            session = self._session
            await self._declare(pub)
            if self._closing or not self._started or session != self._session:
                # close() ran meanwhile: it did not see this one
                for conn in self._conns:
                    for pid in [pid for pid, p in conn.entries.items() if p is pub]:
                        del conn.entries[pid]
                pub.close()
                pub.fail_all(PRODUCER_CLOSED_CODE, ProducerClosedError("the producer was closed"))
                raise ProducerClosedError("the producer was closed")
            self._publishers[(stream, name)] = pub
            return pub

    # ------------------------------------------------------------------ publishing

    async def _filter_value(self, message: Any) -> str | None:
        assert self._filter_value_extractor is not None
        fv = self._filter_value_extractor(message)
        if inspect.isawaitable(fv):
            fv = await fv
        return None if fv is None else str(fv)

    async def send(
        self,
        stream: str,
        message: Message,
        publisher_name: str | None = None,
        on_publish_confirm: ConfirmCallback | None = None,
    ) -> None:
        """Buffer ``message`` for ``stream``; flushed at ``batch_size`` messages or after the linger delay.

        Waits (back-pressure) while ``max_unconfirmed`` messages are in flight.
        """
        pub = self._last_pub
        if (
            pub is None
            or stream != pub.stream
            or publisher_name != self._last_name
            or pub.failed is not None
            or pub._loop is not asyncio.get_running_loop()
        ):
            pub = await self._usable_publisher(stream, publisher_name)
            self._last_pub = pub
            self._last_name = publisher_name
        if pub.inflight >= pub.limit:
            await self._wait_room(pub, 1)
        fv = await self._filter_value(message) if self._filter_value_extractor is not None else None
        pub.add(message, on_publish_confirm, fv)
        self._sends += 1
        if self._sends >= self._context_switch:
            self._sends = 0
            client = pub.client
            if client is not None and client.is_writing_paused:
                await client.drain()
            else:
                await asyncio.sleep(0)

    async def _usable_publisher(self, stream: str, name: str | None) -> Publisher:
        if self._loop is not None and self._loop is not asyncio.get_running_loop():
            raise ClientError("the producer is used from another event loop than the one it was started in")
        pub = self._publishers.get((stream, name))
        if pub is not None and pub.failed is not None:
            # stream deleted / recovery gave up: forget it, a new declare reports the real error
            for key in [k for k, v in self._publishers.items() if v is pub]:
                del self._publishers[key]
            self._last_pub = None
            pub = None
        if pub is None:
            pub = await self._publisher(stream, name)
        return pub

    async def _wait_room(self, pub: Publisher, n: int) -> None:
        try:
            await pub.wait_room(n, self._enqueue_timeout)
        except asyncio.TimeoutError:
            raise EnqueueTimeoutError(
                f"{pub.inflight} messages in flight to {pub.stream!r} (max_unconfirmed="
                f"{pub.limit}) for more than {self._enqueue_timeout} s"
            ) from None

    async def send_batch(
        self,
        stream: str,
        batch: Sequence[Message],
        publisher_name: str | None = None,
        on_publish_confirm: ConfirmCallback | None = None,
    ) -> list[int]:
        """Publish ``batch`` now (split at frame_max), without waiting for confirms.

        :return: the publishing ids, in order.
        :raises ValueError: empty batch.
        :raises ProducerClosedError: not started or closed (as :meth:`send`).
        """
        if not batch:
            raise ValueError("Empty batch")
        pub = await self._usable_publisher(stream, publisher_name)
        out: list[int] = []
        n = len(batch)
        start = 0
        while start < n:
            room = pub.limit - pub.inflight
            want = min(n - start, max(pub.limit // 4, 1))
            if room < want and pub.inflight > 0:
                await self._wait_room(pub, want)
                continue
            chunk = batch[start : start + max(room, want)]
            filters = None
            if self._filter_value_extractor is not None:
                filters = [await self._filter_value(m) for m in chunk]
            out += pub.add_batch(chunk, on_publish_confirm, filters)
            start += len(chunk)
            client = pub.client
            if client is not None and client.is_writing_paused:
                await client.drain()
        return out

    async def send_wait(
        self,
        stream: str,
        message: Message,
        publisher_name: str | None = None,
        timeout: float | None = 5,
    ) -> int:
        """Publish ``message`` and wait for its confirm.

        :return: the publishing id.
        :raises asyncio.TimeoutError: no confirm within ``timeout`` seconds.
        :raises ServerError: the broker refused the message (subclass per code).
        """
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[ConfirmationStatus] = loop.create_future()

        def done(status: ConfirmationStatus) -> None:
            if not fut.done():
                fut.set_result(status)

        await self.send(stream, message, publisher_name, done)
        pub = self._publishers[(stream, publisher_name)]
        pub.flush()
        status = await asyncio.wait_for(fut, timeout)
        if not status.is_confirmed:
            if status.response_code > 0 and status.response_code < 0x100:
                raise ServerError.for_code(status.response_code, f"publishing id {status.message_id}")
            raise ClientError(f"message {status.message_id} not confirmed (code {status.response_code})")
        return status.message_id

    async def send_sub_entry(
        self,
        stream: str,
        sub_entry_messages: Sequence[Message],
        compression_type: object = 0,
        publisher_name: str | None = None,
        on_publish_confirm: ConfirmCallback | None = None,
    ) -> int:
        """Publish the messages as one sub-entry batch (one publishing id, one confirm).

        :param compression_type: ``CompressionType`` member, wire code or codec name; codecs come
            from the plugin registry.
        :return: the publishing id of the sub-entry (= the id of its last message).
        """
        if not sub_entry_messages:
            raise ValueError("Empty batch")
        if self._filter_value_extractor is not None:
            raise ValueError("sub-entry batching cannot be combined with filtering (no Publish v2 shape)")
        if self._observer is not None:  # tracing: messages carrying their trace context
            sub_entry_messages = self._observer.prepare(stream, list(sub_entry_messages))
        code = compression_code(compression_type)
        codec = None
        if code != 0:
            registry = self._registry or get_registry()
            key: int | str = code if code > 0 else str(getattr(compression_type, "value", compression_type))
            codec = registry.compression_codec(key)
        bodies = [m if type(m) is bytes else bytes(m) for m in sub_entry_messages]
        last = getattr(sub_entry_messages[-1], "publishing_id", None)
        entry = encode_sub_entry(bodies, codec)
        pub = await self._usable_publisher(stream, publisher_name)
        client = pub.client
        if codec is not None and codec.code > 4 and client is not None and client.server_version >= (4, 3, 5):
            raise ValueError(
                f"RabbitMQ {client.server_properties.get('version', '')} rejects sub-entry compression codes "
                f"above 4 ({codec.name!r} uses {codec.code}); use gzip, snappy, lz4 or zstd"
            )
        if pub.inflight + len(bodies) > pub.limit and pub.inflight > 0:
            await self._wait_room(pub, min(len(bodies), pub.limit))
        return pub.add_sub_entry(entry, len(bodies), last, on_publish_confirm)

    async def flush(self) -> None:
        """Write every buffered message now (rabbitstream extension)."""
        for pub in list(self._publishers.values()):
            pub.flush()
            pub.write_out()

    # ------------------------------------------------------------------ stream management

    async def create_stream(
        self, stream: str, arguments: Mapping[str, Any] | None = None, exists_ok: bool = False
    ) -> None:
        """Create ``stream`` (argument values are stringified).

        :raises StreamAlreadyExists: unless ``exists_ok``.
        """
        args = {str(k): str(v) for k, v in (arguments or {}).items()}
        try:
            await (await self._get_locator()).create_stream(stream, args or None)
        except StreamAlreadyExists:
            if not exists_ok:
                raise

    async def delete_stream(self, stream: str, missing_ok: bool = False) -> None:
        """Delete ``stream`` (our publishers on it are closed first).

        :raises StreamDoesNotExist: unless ``missing_ok``.
        """
        for key in [k for k in self._publishers if k[0] == stream]:
            pub = self._publishers.pop(key)
            self._last_pub = None
            pub.close()
            for conn in self._conns:
                for pid in [pid for pid, p in conn.entries.items() if p is pub]:
                    del conn.entries[pid]
                    try:
                        await close_step(conn.client.delete_publisher(pid))
                    except Exception as exc:
                        log.debug("delete_publisher failed: %r", exc)
            pub.fail_all(PRODUCER_CLOSED_CODE, StreamDoesNotExist(f"stream {stream!r} was deleted"))
        try:
            await (await self._get_locator()).delete_stream(stream)
        except StreamDoesNotExist:
            if not missing_ok:
                raise

    async def stream_stats(self, stream: str) -> dict[str, int]:
        """StreamStats of ``stream`` (``first_chunk_id``, ``committed_chunk_id``, ...)."""
        return await (await self._get_locator()).stream_stats(stream)

    async def metadata(self, streams: Sequence[str]) -> dict[str, StreamMetadata]:
        """Metadata (leader, replicas) of ``streams``."""
        return await (await self._get_locator()).metadata(list(streams))

    # ------------------------------------------------------------------ introspection

    def unconfirmed(self, stream: str, publisher_name: str | None = None) -> int:
        """Messages buffered or awaiting a confirm for that publisher (0 if none)."""
        pub = self._publishers.get((stream, publisher_name))
        return 0 if pub is None else pub.inflight
