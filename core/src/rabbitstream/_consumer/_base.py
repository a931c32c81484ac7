"""Connections and server-driven events of a :class:`~rabbitstream.Consumer`.

:class:`ConsumerBase` owns the consumer's :class:`~rabbitstream._connection._pool.ConnectionPool`
(locator and consuming connections) and its :class:`~rabbitstream._connection._recovery.Recovery`,
opens subscriptions on a connection, and handles what the broker (or the network) does: connection
loss, MetadataUpdate, single-active-consumer updates.  :class:`~rabbitstream.Consumer` adds the
public API.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from typing import TYPE_CHECKING, Any

from rabbitstream._connection._locator import FAILED, NodeSelector
from rabbitstream._connection._observe import consumer_observer
from rabbitstream._connection._owner import ConnectionOwner, OwnerSettings
from rabbitstream._connection._pool import ConnectionOptions, NodeConnection, close_step
from rabbitstream._consumer._sub import Subscription
from rabbitstream._consumer._types import EventContext, wire_offset
from rabbitstream.constants import ConsumerOffsetSpecification, OffsetSpecification, OffsetType
from rabbitstream.exceptions import ConnectionClosed, MaxConsumersPerInstance, OffsetNotFound, ServerError
from rabbitstream.plugin._types import ConsumerObserver

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from rabbitstream._connection._client import Client

__all__ = ["ConsumerBase", "maybe_await"]

log = logging.getLogger("rabbitstream.consumer")

_CONSUMER_UPDATE_TIMEOUT = 50.0  # the broker waits 60 s for the answer


async def maybe_await(result: object) -> Any:
    """Await ``result`` if it is awaitable (sync-or-async user callbacks)."""
    if inspect.isawaitable(result):
        return await result
    return result


class _SubscriptionRecovery:
    """A :class:`Subscription` as the recovery loop sees it (a ``Recoverable``)."""

    __slots__ = ("_owner", "sub")

    def __init__(self, owner: ConsumerBase, sub: Subscription) -> None:
        self._owner = owner
        self.sub = sub

    @property
    def stream(self) -> str:
        return self.sub.stream

    @property
    def name(self) -> str | None:
        return self.sub.name

    @property
    def client(self) -> Client | None:
        return self.sub.client

    def wanted(self) -> bool:
        return not self.sub.closed

    def ready(self) -> bool:
        client = self.sub.client
        return client is not None and not client.is_closed

    async def reopen(self, stream: str) -> None:
        await self._owner._reopen(self.sub)

    def forget(self) -> None:
        self._owner._subs.pop(self.sub.id, None)

    def give_up(self, error: BaseException) -> None:
        self._owner._subs.pop(self.sub.id, None)
        self.sub.fail(error)
        self._owner._all_failed(error)


class ConsumerBase(ConnectionOwner[Subscription, ConsumerObserver]):
    """Consuming connections (shared by up to ``max_subscribers_by_connection`` subscriptions),
    the locator, and the recovery of the subscriptions (pool and recovery wired by
    :class:`~rabbitstream._connection._owner.ConnectionOwner`)."""

    def __init__(
        self,
        host: str,
        port: int,
        options: ConnectionOptions,
        *,
        max_subscribers: int,
        prefer_replica: bool,
        replica_attempts: int,
        **settings: Unpack[OwnerSettings],
    ) -> None:
        self._max_subs = max_subscribers
        self._prefer_replica = prefer_replica
        self._replica_attempts = replica_attempts
        super().__init__(
            "consumer",
            host,
            port,
            options,
            observer_for=consumer_observer,
            closed_error=lambda: ConnectionClosed("the consumer is closed"),
            **settings,
        )
        self._subs: dict[int, Subscription] = {}
        self._stop_event = asyncio.Event()
        #: why every subscription ended (no recovery, recovery gave up, a missing plugin):
        #: ``run()`` raises it
        self._failure: BaseException | None = None

    @property
    def state(self) -> str:
        """``"new"`` (never started), ``"open"``, ``"closing"`` or ``"closed"``."""
        pool = self._pool
        if self._closing:  # stays set after close(): nothing reopens a connection
            return "closing" if pool.locator_client is not None or pool.connections else "closed"
        loc = pool.locator_client
        if loc is not None and not loc.is_closed:
            return "open"
        return "closed" if pool.was_opened else "new"

    def __repr__(self) -> str:
        nodes, options = self._pool.nodes, self._pool.options
        return (
            f"<{type(self).__name__} host={nodes.host!r} port={nodes.port} vhost={options.vhost!r} "
            f"user={options.username!r} state={self.state!r} subscriptions={len(self._subs)}>"
        )

    # ------------------------------------------------------------------ connections

    async def _get_locator(self, *, internal: bool = False) -> Client:
        """The locator connection, (re)opened when needed.

        :param internal: asked by the consumer itself (recovery, subscribing, consumer updates):
            raises :class:`ConnectionClosed` instead of opening a connection once ``close()``
            has begun (an application call after ``close()`` still reopens it, as before).
        """
        return await self._pool.locator(refuse=internal and self._closing)

    def _setup(self, conn: NodeConnection[Subscription]) -> None:
        client = conn.client
        client.on_consumer_update = functools.partial(self._on_consumer_update, conn)
        client.on_metadata_update = functools.partial(self._on_metadata_update, conn)
        client.add_close_listener(functools.partial(self._on_connection_closed, conn))

    async def _connection_for(self, stream: str) -> NodeConnection[Subscription]:
        """A consuming connection on a replica of ``stream`` (else its leader), shared up to
        ``max_subscribers_by_connection``; placement and load-balancer mode: :mod:`._locator`."""
        locator = await self._get_locator(internal=True)
        metadata = await self._nodes.stream_metadata(locator, stream)
        wanted, fallback = NodeSelector.placement(metadata, leader=False, prefer_replica=self._prefer_replica)
        return await self._pool.connection(
            wanted,
            limit=self._max_subs,
            closed=lambda: self._closing,
            setup=self._setup,
            fallback=fallback,
            fallback_after=self._replica_attempts,
        )

    def _drop_connection(self, conn: NodeConnection[Subscription]) -> None:
        self._pool.drop(conn)

    async def _open(self, sub: Subscription, spec: ConsumerOffsetSpecification, skip: int) -> None:
        otype, offset = wire_offset(spec)
        conn = await self._connection_for(sub.stream)
        if sub.closed or self._closing:  # unsubscribed / consumer closed while connecting
            if not conn.entries:
                self._drop_connection(conn)
            raise ConnectionClosed("the consumer is closed" if self._closing else "unsubscribed")
        wire_id = conn.free_id(self._max_subs)
        if wire_id is None:  # pragma: no cover - _connection_for picked a non-full one
            raise MaxConsumersPerInstance("connection is full")
        on_chunk = sub.attach(conn.client, wire_id, skip)
        conn.entries[wire_id] = sub
        try:
            await conn.client.subscribe(
                wire_id, sub.stream, otype, offset, sub.initial_credit,
                properties=sub.props.properties or None, on_chunk=on_chunk,
            )  # fmt: skip
        except BaseException:
            conn.entries.pop(wire_id, None)
            sub.detach()
            if not conn.entries:
                self._drop_connection(conn)
            raise

    def _store_offset_nowait(self, sub: Subscription, offset: int) -> bool:
        client = sub.client
        if client is None or client.is_closed:
            client = self._pool.locator_client
        if client is None or client.is_closed or sub.name is None:
            return False
        try:
            client.store_offset(sub.name, sub.stream, offset)
        except Exception:
            log.debug("store_offset failed", exc_info=True)
            return False
        return True

    # ------------------------------------------------------------------ server events (run in data_received)

    def _on_connection_closed(self, conn: NodeConnection[Subscription], exc: BaseException | None) -> None:
        self._pool.forget(conn)
        subs = list(conn.entries.values())
        conn.entries.clear()
        if self._closing or not subs:
            return
        for sub in subs:
            sub.detach()
        self._lost(
            subs, "Connection Closed", exc if exc is not None else ConnectionClosed("connection closed")
        )

    def _on_metadata_update(self, conn: NodeConnection[Subscription], stream: str, code: int) -> None:
        subs = [s for s in conn.entries.values() if s.stream == stream]
        for sub in subs:
            conn.entries.pop(sub.wire_id, None)
            sub.detach()
        if not conn.entries:
            self._drop_connection(conn)
        if subs and not self._closing:
            self._lost(
                subs, "Metadata Update", ServerError.for_code(code, f"metadata update for stream {stream!r}")
            )

    def _on_consumer_update(
        self, conn: NodeConnection[Subscription], wire_id: int, active: bool, correlation_id: int
    ) -> None:
        sub = conn.entries.get(wire_id)
        if sub is None:
            conn.client.consumer_update_response(correlation_id, 0, 0)
            return
        self._spawn(self._answer_consumer_update(conn.client, sub, active, correlation_id))

    # ------------------------------------------------------------------ single active consumer

    async def _answer_consumer_update(
        self, client: Client, sub: Subscription, active: bool, corr: int
    ) -> None:
        gen = sub.gen
        try:
            spec = await asyncio.wait_for(self._update_spec(sub, active), _CONSUMER_UPDATE_TIMEOUT)
            otype, offset = wire_offset(spec)
        except Exception:
            log.exception("consumer_update_listener of stream %r failed; using the default", sub.stream)
            otype, offset = wire_offset(await self._default_update_spec(sub, active))
        if active and gen == sub.gen:
            sub.skip_below = offset if otype == OffsetType.OFFSET else 0
        if not client.is_closed:
            client.consumer_update_response(corr, otype, offset)

    async def _update_spec(
        self, sub: Subscription, active: bool
    ) -> ConsumerOffsetSpecification | OffsetSpecification:
        if sub.listener is None:
            return await self._default_update_spec(sub, active)
        ctx = EventContext(sub.consumer, sub.stream, sub.id, sub.name, sub.name)
        result = await maybe_await(sub.listener(active, ctx))
        if not isinstance(result, (OffsetSpecification, ConsumerOffsetSpecification)):
            raise TypeError(f"consumer_update_listener must return an OffsetSpecification, got {result!r}")
        return result

    async def _default_update_spec(
        self, sub: Subscription, active: bool
    ) -> ConsumerOffsetSpecification | OffsetSpecification:
        """Activation: after the stored offset / the last received one, else the requested spec."""
        if not active:
            if sub.tracking is not None:
                sub.store_tracked()
            return OffsetSpecification(0, 0)
        resume: int | None = sub.next_offset
        if sub.name is not None:
            try:
                # internal: no locator is reopened once the consumer is closing
                stored = await (await self._get_locator(internal=True)).query_offset(sub.name, sub.stream)
                resume = stored + 1 if resume is None else max(resume, stored + 1)
            except OffsetNotFound:
                pass
            except Exception:
                log.warning("query_offset for %r failed during activation", sub.name, exc_info=True)
        if resume is not None:
            return ConsumerOffsetSpecification(OffsetType.OFFSET, resume)
        return sub.offset_spec

    # ------------------------------------------------------------------ recovery

    def _lost(self, subs: list[Subscription], reason: str, error: BaseException) -> None:
        self._recovery.lost([_SubscriptionRecovery(self, s) for s in subs], reason, error)

    def _all_failed(self, error: BaseException) -> None:
        """Subscriptions failed for good: once none is left, ``run()`` raises ``error``."""
        if not self._subs:
            self._failure = error
            self._stop_event.set()

    def _sub_failed(self, sub: Subscription, exc: BaseException) -> None:
        """``sub`` failed on its own (a chunk it cannot decode): dropped here and on the broker."""
        if self._subs.get(sub.id) is sub:
            del self._subs[sub.id]
        self._recovery.state(_SubscriptionRecovery(self, sub), FAILED, "undecodable chunk", error=exc)
        client, wire_id = sub.client, sub.wire_id
        sub.detach()  # chunks still arriving are ignored, no more credit
        conn = next((c for c in self._conns if c.client is client), None)
        if conn is not None:
            conn.entries.pop(wire_id, None)
        if client is not None and not client.is_closed:
            self._spawn(self._unsubscribe_quietly(client, wire_id))
        self._all_failed(exc)

    @staticmethod
    async def _unsubscribe_quietly(client: Client, wire_id: int) -> None:
        try:
            await close_step(client.unsubscribe(wire_id))
        except Exception:
            log.debug("unsubscribe of a failed subscription failed", exc_info=True)

    async def _reopen(self, sub: Subscription) -> None:
        if sub.closed or self._closing:
            return
        spec, skip = sub.resume_spec()
        await self._open(sub, spec, skip)
