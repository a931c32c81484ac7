"""Connection handling and recovery of :class:`~rabbitstream.Producer` (split from ``_producer``)."""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

from rabbitstream._connection._locator import (
    DISCONNECTED,
    FAILED,
    RECOVERED,
    RECOVERING,
    NodeSelector,
    StateChange,
    StateListener,
    notify_state,
)
from rabbitstream._producer._publisher import CONNECTION_LOST_CODE, Publisher
from rabbitstream.exceptions import (
    ClientError,
    MaxPublishersPerInstance,
    ServerError,
    StreamDoesNotExist,
)
from rabbitstream.recovery import IReliableEntity, RecoveryStrategy
from rabbitstream.utils import OnClosedErrorInfo

if TYPE_CHECKING:
    from rabbitstream._connection._client import Client, StreamMetadata

__all__ = ["Conn", "EnqueueTimeoutError", "ProducerBase", "ProducerClosedError", "compression_code"]

log = logging.getLogger("rabbitstream.producer")


class EnqueueTimeoutError(ClientError, asyncio.TimeoutError):
    """``send`` waited longer than ``enqueue_timeout`` for room in the in-flight window."""

    # TODO(lead): move to rabbitstream.exceptions


class ProducerClosedError(ClientError):
    """The producer is not started (or was closed)."""

    # TODO(lead): move to rabbitstream.exceptions


class Conn:
    """One publishing connection and the publishers it carries (id -> publisher)."""

    __slots__ = ("client", "closing", "publishers", "target")

    def __init__(self, client: Client, target: tuple[str, int]) -> None:
        self.client = client
        self.target = target
        self.publishers: dict[int, Publisher] = {}
        self.closing = False


def compression_code(compression_type: object) -> int:
    """The wire code of a ``CompressionType`` member / int (``-1`` for a codec *name*)."""
    value: Any = getattr(compression_type, "value", compression_type)
    if isinstance(value, str):
        return -1
    return int(value)


class ProducerBase(IReliableEntity):
    """Locator, publishing connections (one per leader, up to ``max_publishers_by_connection``
    publishers each) and recovery; :class:`~rabbitstream.Producer` adds the publishing API."""

    host: str
    port: int
    _conn_kwargs: dict[str, Any]
    _load_balancer_mode: bool
    _max_retries: int
    _max_publishers: int
    _connection_name: str
    _on_close_handler: Callable[[OnClosedErrorInfo], Awaitable[None] | None] | None
    _recovery_strategy: RecoveryStrategy
    _locator: Client | None
    _conns: list[Conn]
    _publishers: dict[tuple[str, str | None], Publisher]
    _recovering: dict[str, asyncio.Task[None]]
    _next_publisher_id: int
    _closing: bool
    _started: bool
    _on_state_change: StateListener | None = None
    _selector: NodeSelector | None = None
    _locator_lock: asyncio.Lock | None = None

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        raise NotImplementedError

    @staticmethod
    async def _close_client(client: Client) -> None:
        try:
            await asyncio.wait_for(client.close(), 3.0)
        except Exception as exc:
            log.debug("closing a connection failed: %r", exc)

    # ------------------------------------------------------------------ connections

    async def _connect(self, host: str, port: int, name: str) -> Client:
        from rabbitstream._connection._client import Client

        return await Client.connect(host, port, connection_name=name, **self._conn_kwargs)

    @property
    def _nodes(self) -> NodeSelector:
        sel = self._selector
        if sel is None:
            sel = self._selector = NodeSelector(
                self.host,
                self.port,
                self._connect,
                load_balancer_mode=self._load_balancer_mode,
                max_retries=self._max_retries,
            )
        return sel

    async def _get_locator(self) -> Client:
        loc = self._locator
        if loc is not None and not loc.is_closed:
            return loc
        # One opening at a time: after a connection loss every publisher's recovery task asks for
        # the locator at once; opened concurrently, all but the last stored one were dropped open.
        lock = self._locator_lock
        if lock is None:
            lock = self._locator_lock = asyncio.Lock()
        async with lock:
            loc = self._locator
            if loc is None or loc.is_closed:
                if self._closing:  # close() has taken (or is taking) the locator: open none it won't close
                    raise ProducerClosedError("the producer is closed")
                # a dead locator's node is tried last: recovery never waits on the node that just died
                name = f"locator-{self._connection_name}"
                self._locator = loc = await self._nodes.open_locator(name, loc)
        return loc

    @property
    async def default_client(self) -> Client:
        """The locator connection (opened on demand)."""
        return await self._get_locator()

    async def _leader(self, stream: str) -> tuple[str, int]:
        """The stream leader's advertised address, from fresh Metadata (never a cached node)."""
        meta: StreamMetadata = await self._nodes.stream_metadata(await self._get_locator(), stream)
        wanted, _ = NodeSelector.placement(meta, leader=True)
        return wanted[0]

    async def _open_to(self, leader: tuple[str, int]) -> Client:
        """A new connection to ``leader`` (directly, or through the given address in LB mode)."""
        loc = await self._get_locator()
        client, _ = await self._nodes.connect_node([leader], self._connection_name, locator=loc)
        return client

    async def _conn_for(self, leader: tuple[str, int]) -> Conn:
        for conn in self._conns:
            if (
                conn.target == leader
                and not conn.closing
                and not conn.client.is_closed
                and len(conn.publishers) < self._max_publishers
            ):
                return conn
        client = await self._open_to(leader)
        if self._closing or not self._started:  # close() ran meanwhile: it closed self._conns already
            await self._close_client(client)
            raise ProducerClosedError("the producer was closed")
        conn = Conn(client, leader)
        client.add_close_listener(functools.partial(self._on_conn_closed, conn))
        client.on_metadata_update = functools.partial(self._on_metadata_update, conn)
        self._conns.append(conn)
        return conn

    def _alloc_publisher_id(self, conn: Conn) -> int:
        for _ in range(256):
            pid = self._next_publisher_id % 256
            self._next_publisher_id += 1
            if pid not in conn.publishers:
                return pid
        raise MaxPublishersPerInstance("no free publisher id on the connection")

    async def _declare(self, pub: Publisher) -> None:
        """Locate the leader, declare ``pub`` there and attach it (re-sending what is pending)."""
        leader = await self._leader(pub.stream)
        conn = await self._conn_for(leader)
        pid = self._alloc_publisher_id(conn)
        client = conn.client
        conn.publishers[pid] = pub
        try:
            client.set_publisher_handlers(pid, pub.on_confirm, pub.on_error)
            await client.declare_publisher(pid, pub.reference or "", pub.stream)
            last = None
            if pub.reference:
                last = await client.query_publisher_sequence(pub.reference, pub.stream)
        except BaseException:
            conn.publishers.pop(pid, None)
            raise
        pub.attach(client, pid, last)

    # ------------------------------------------------------------------ recovery

    def _on_conn_closed(self, conn: Conn, exc: BaseException | None) -> None:
        if conn.closing or self._closing:
            return
        conn.closing = True
        if conn in self._conns:
            self._conns.remove(conn)
        pubs = list(conn.publishers.values())
        conn.publishers.clear()
        if pubs:
            self._lost(pubs, "Connection Closed", exc)

    def _on_metadata_update(self, conn: Conn, stream: str, code: int) -> None:
        if self._closing:
            return
        pubs = [p for p in conn.publishers.values() if p.stream == stream]
        for pid in [pid for pid, p in conn.publishers.items() if p.stream == stream]:
            del conn.publishers[pid]
        if pubs:
            exc = ServerError.for_code(code, f"metadata update of {stream!r}")
            self._lost(pubs, "Metadata Update", exc)

    def _state(self, pub: Publisher, state: str, reason: str, **kw: Any) -> None:
        notify_state(
            self._on_state_change, StateChange("producer", pub.stream, pub.reference, state, reason, **kw)
        )

    def _lost(self, pubs: list[Publisher], reason: str, exc: BaseException | None) -> None:
        for pub in pubs:
            pub.detach()
            self._state(pub, DISCONNECTED, reason, error=exc)
        streams = sorted({p.stream for p in pubs})
        self._spawn(self._handle_loss(pubs, streams, reason, exc))

    async def _handle_loss(
        self, pubs: list[Publisher], streams: list[str], reason: str, exc: BaseException | None
    ) -> None:
        if self._on_close_handler is not None:
            try:
                r = self._on_close_handler(OnClosedErrorInfo(reason, streams))
                if inspect.isawaitable(r):
                    await r
            except Exception:
                log.exception("on_close_handler failed")
        for pub in pubs:
            if self._closing or pub.ready:
                continue
            self._recovering[f"{pub.stream}\0{pub.reference}"] = self._spawn(self._recover(pub, exc, reason))

    async def _recover(self, pub: Publisher, exc: BaseException | None, reason: str = "") -> None:
        strategy = self._recovery_strategy
        error: BaseException | None = exc or ConnectionError("connection lost")
        attempt = 1
        t0 = time.monotonic()
        enabled = getattr(strategy, "is_enabled", getattr(strategy, "_enabled", True))
        max_retries = getattr(strategy, "max_retries", getattr(strategy, "_max_retries", 10))
        try:
            while enabled and not self._closing and attempt <= max_retries:
                if pub not in self._publishers.values():
                    return  # closed or deleted meanwhile
                self._state(pub, RECOVERING, reason, attempt=attempt, error=error)
                try:
                    ok = await strategy.recover(
                        self, pub.stream, error, attempt, lambda _s: self._declare(pub)
                    )
                except asyncio.CancelledError:
                    raise
                except Exception as e:
                    log.info("recovery of %s failed (attempt %d): %r", pub.stream, attempt, e)
                    error = e
                    attempt += 1
                    continue
                if ok is False or (ok is None and not pub.ready):
                    break  # stream gone
                if pub.ready:
                    client = pub.client
                    node = None if client is None else f"{client.advertised_host}:{client.advertised_port}"
                    self._state(
                        pub, RECOVERED, reason, attempt=attempt, node=node, elapsed=time.monotonic() - t0
                    )
                    return
                attempt += 1
            if not self._closing:
                self._state(pub, FAILED, reason, attempt=attempt, error=error, elapsed=time.monotonic() - t0)
                self._give_up(pub, error)
        finally:
            self._recovering.pop(f"{pub.stream}\0{pub.reference}", None)

    def _give_up(self, pub: Publisher, error: BaseException | None) -> None:
        if isinstance(error, Exception) and not isinstance(error, StreamDoesNotExist):
            failure: BaseException = ClientError(
                f"publisher on {pub.stream!r} could not be recovered: {error!r}"
            )
        else:
            failure = StreamDoesNotExist(f"stream {pub.stream!r} does not exist any more")
        pub.fail_all(CONNECTION_LOST_CODE, failure)

    # IReliableEntity
    async def stream_exists(self, stream: str, on_close_event: bool = False) -> bool:
        """Whether ``stream`` exists (asked on the locator connection, reopened if needed)."""
        return bool(await (await self._get_locator()).stream_exists(stream))

    def clean_list(self, stream: str) -> None:
        """Recovery hook: nothing to clean (the publisher is failed by the recovery loop)."""
