"""The rstream-compatible :class:`Consumer`.

A consumer owns a *locator* connection (management RPCs, offset queries) and a pool of
consuming connections, one or more per broker node, each carrying at most
``max_subscribers_by_connection`` subscriptions.  Per-subscription work lives in
:mod:`rabbitstream._consumer_sub`; iteration in :mod:`rabbitstream._consumer_iter`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from rabbitstream._client import Client
from rabbitstream._consumer_events import ConsumerEvents
from rabbitstream._consumer_iter import BatchStream, MessageStream
from rabbitstream._consumer_sub import Subscription
from rabbitstream._consumer_types import (
    CreditPolicy,
    EventContext,
    MessageBatch,
    MessageContext,
    OffsetTracking,
    build_subscription_properties,
    check_credit,
    wire_offset,
)
from rabbitstream._locator import NodeSelector, StateListener
from rabbitstream.constants import ConsumerOffsetSpecification, OffsetType, SlasMechanism
from rabbitstream.exceptions import (
    ConnectionClosed,
    MaxConsumersPerInstance,
    StreamAlreadyExists,
    StreamAlreadySubscribed,
    StreamDoesNotExist,
)
from rabbitstream.recovery import BackOffRecoveryStrategy, RecoveryStrategy
from rabbitstream.utils import FilterConfiguration, OnClosedErrorInfo

if TYPE_CHECKING:
    from rabbitstream.plugin import Registry

__all__ = [
    "Consumer",
    "CreditPolicy",
    "EventContext",
    "MessageBatch",
    "MessageContext",
    "OffsetTracking",
]

log = logging.getLogger("rabbitstream.consumer")

DEFAULT_CONNECTION_NAME = "rabbitstream-consumer"
MAX_SUBSCRIPTIONS_PER_CONNECTION = 256
_MAX_IDS = 1 << 16
_UNSUBSCRIBE_TIMEOUT = 5.0
_CLOSE_TASKS_TIMEOUT = 5.0  # close(): waiting for the cancelled background tasks

MessageCallback = Callable[[Any, MessageContext], Any]
UpdateListener = Callable[[bool, EventContext], Any]


class _Connection:
    """A consuming connection and the subscriptions it carries (by wire id)."""

    __slots__ = ("client", "key", "subs")

    def __init__(self, client: Client, key: tuple[str, int]) -> None:
        self.client = client
        self.key = key
        self.subs: dict[int, Subscription] = {}

    def free_wire_id(self, limit: int) -> int | None:
        subs = self.subs
        if len(subs) >= limit:
            return None
        for i in range(limit):
            if i not in subs:
                return i
        return None  # pragma: no cover


class Consumer(ConsumerEvents):
    """Consume from RabbitMQ streams (rstream's ``Consumer``, same keywords and defaults).

    :param host: broker (or load balancer) host; :param port: stream port.
    :param max_subscribers_by_connection: 1-256 subscriptions per connection.
    :param recovery_strategy: default ``BackOffRecoveryStrategy(False)``: no automatic
        recovery, as rstream (pass ``BackOffRecoveryStrategy()`` to enable it).
    :param registry: plugin registry for decompression and SASL (default: the process one).
    :param prefer_replica: subscribe on a replica when the stream has one (default); the leader
        is used when no replica is reachable (in ``load_balancer_mode``: after
        ``replica_attempts`` connections that did not reach a replica).
    :param on_state_change: ``listener(StateChange)`` (sync or async) called for each
        subscription when its connection is lost, before each recovery attempt, and when it is
        recovered or failed for good (``docs/clusters.md``).
    """

    def __init__(
        self,
        host: str,
        port: int = 5552,
        *,
        ssl_context: ssl.SSLContext | None = None,
        vhost: str = "/",
        username: str,
        password: str,
        frame_max: int = 1 * 1024 * 1024,
        heartbeat: int = 60,
        load_balancer_mode: bool = False,
        max_retries: int = 20,
        max_subscribers_by_connection: int = 200,
        on_close_handler: Callable[[OnClosedErrorInfo], Any] | None = None,
        connection_name: str = "",
        sasl_configuration_mechanism: SlasMechanism | str = SlasMechanism.MechanismPlain,
        recovery_strategy: RecoveryStrategy | None = None,
        registry: Registry | None = None,
        prefer_replica: bool = True,
        replica_attempts: int = 5,
        on_state_change: StateListener | None = None,
    ) -> None:
        if not 0 < max_subscribers_by_connection <= MAX_SUBSCRIPTIONS_PER_CONNECTION:
            raise ValueError(
                f"max_subscribers_by_connection must be between 1 and {MAX_SUBSCRIPTIONS_PER_CONNECTION}"
            )
        self._host = host
        self._port = port
        self._lb_mode = load_balancer_mode
        self._max_retries = max_retries
        self._max_subs = max_subscribers_by_connection
        self._on_close_handler = on_close_handler
        self._on_state_change = on_state_change
        self._prefer_replica = prefer_replica
        self._replica_attempts = replica_attempts
        self._nodes = NodeSelector(host, port, self._connect_to, load_balancer_mode=load_balancer_mode,
                                   max_retries=max_retries)  # fmt: skip
        self._connection_name = connection_name or DEFAULT_CONNECTION_NAME
        self._recovery: RecoveryStrategy = (
            recovery_strategy if recovery_strategy is not None else BackOffRecoveryStrategy(False)
        )
        mechanism = sasl_configuration_mechanism
        self._client_kwargs: dict[str, Any] = {
            "ssl_context": ssl_context,
            "vhost": vhost,
            "username": username,
            "password": password,
            "sasl_mechanism": mechanism.value if isinstance(mechanism, SlasMechanism) else str(mechanism),
            "frame_max": frame_max,
            "heartbeat": heartbeat,
            "registry": registry,
        }
        self._locator: Client | None = None
        self._locator_lock = asyncio.Lock()
        self._conn_lock = asyncio.Lock()
        self._conns: list[_Connection] = []
        self._subs: dict[int, Subscription] = {}
        self._next_id = 0
        self._stop_event = asyncio.Event()
        self._closing = False
        self._tasks: set[asyncio.Task[Any]] = set()  # background work, cancelled by close()
        self._closers: set[asyncio.Task[Any]] = set()  # connection closings, awaited by close()

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Consumer:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Open the locator connection (idempotent; also after :meth:`close`)."""
        self._closing = False
        self._failure = None
        self._stop_event.clear()
        await self._get_locator()

    def stop(self) -> None:
        """Make :meth:`run` return (does not close anything)."""
        self._stop_event.set()

    async def run(self) -> None:
        """Wait until :meth:`stop` (or :meth:`close`) is called.

        :raises: the error that ended the last subscription left (connection lost with recovery
            off, recovery given up, a compression plugin missing).
        """
        await self._stop_event.wait()
        failure, self._failure = self._failure, None
        if failure is not None:
            raise failure

    async def close(self) -> None:
        """Unsubscribe everything (storing tracked offsets), close every connection.

        Callable from inside a message callback: the callback's subscription stops
        delivering as soon as the callback returns.
        """
        self.stop()
        # From here on nothing opens a connection for this consumer: recovery and subscribe check
        # ``_closing`` after each await and close what they opened meanwhile (:meth:`_connection_for`).
        self._closing = True
        self._cancel_tasks()  # recovery, consumer updates: nothing they would still do is wanted
        for sid in list(self._subs):
            await self.unsubscribe(sid)
        conns, self._conns = self._conns, []
        for conn in conns:
            await self._close_client(conn.client)
        async with self._locator_lock:  # a locator being opened right now is closed too
            locator, self._locator = self._locator, None
        if locator is not None:
            await self._close_client(locator)
        await self._end_tasks()

    def _cancel_tasks(self) -> None:
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()

    async def _end_tasks(self) -> None:
        """Cancel the background tasks and wait for them, and for the connection closings (never
        cancelled) they started as they unwound (bounded: :data:`_CLOSE_TASKS_TIMEOUT`)."""
        self._cancel_tasks()
        current = asyncio.current_task()
        deadline = asyncio.get_running_loop().time() + _CLOSE_TASKS_TIMEOUT
        while True:
            pending = [t for t in self._tasks | self._closers if t is not current and not t.done()]
            remaining = deadline - asyncio.get_running_loop().time()
            if not pending or remaining <= 0:
                return
            await asyncio.wait(pending, timeout=remaining)

    @property
    def default_client(self) -> Awaitable[Client]:
        """The locator connection (``await consumer.default_client``, as rstream)."""
        return self._get_locator()

    async def _get_locator(self, *, internal: bool = False) -> Client:
        """The locator connection, (re)opened when needed.

        :param internal: asked by the consumer itself (recovery, subscribing, consumer updates):
            raises :class:`ConnectionClosed` instead of opening a connection once :meth:`close`
            has begun (an application call after ``close()`` still reopens it, as before).
        """
        async with self._locator_lock:
            locator = self._locator
            if locator is None or locator.is_closed:
                if internal and self._closing:
                    raise ConnectionClosed("the consumer is closed")
                # a dead locator's node is tried last (recovery never waits on the node that died)
                name = f"locator-{self._connection_name}"
                locator = self._locator = await self._nodes.open_locator(name, locator)
            return locator

    async def _connect_to(self, host: str, port: int, name: str) -> Client:
        return await Client.connect(host, port, connection_name=name, **self._client_kwargs)

    @staticmethod
    async def _close_client(client: Client) -> None:
        try:
            await client.close()
        except Exception:  # already gone
            log.debug("error closing a connection", exc_info=True)

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ stream management

    async def create_stream(
        self, stream: str, arguments: Mapping[str, Any] | None = None, exists_ok: bool = False
    ) -> None:
        """Create ``stream``; argument values are stringified (``max-length-bytes``, ...)."""
        args = {str(k): str(v) for k, v in (arguments or {}).items()}
        try:
            await (await self._get_locator()).create_stream(stream, args or None)
        except StreamAlreadyExists:
            if not exists_ok:
                raise

    async def delete_stream(self, stream: str, missing_ok: bool = False) -> None:
        """Delete ``stream`` (:class:`StreamDoesNotExist` unless ``missing_ok``)."""
        try:
            await (await self._get_locator()).delete_stream(stream)
        except StreamDoesNotExist:
            if not missing_ok:
                raise

    async def stream_exists(self, stream: str, on_close_event: bool = False) -> bool:
        """Whether ``stream`` exists (``on_close_event``: asked by the recovery)."""
        return await (await self._get_locator(internal=on_close_event)).stream_exists(stream)

    async def stream_stats(self, stream: str) -> dict[str, int]:
        """StreamStats: ``first_chunk_id``, ``committed_chunk_id``, ``last_chunk_id`` (-1 = none)."""
        return await (await self._get_locator()).stream_stats(stream)

    def clean_list(self, stream: str) -> None:
        """Recovery hook: ``stream`` is gone; its subscriptions end (see :meth:`_handle_loss`)."""

    # ------------------------------------------------------------------ offsets

    async def store_offset(self, stream: str, subscriber_name: str, offset: int) -> None:
        """StoreOffset (fire and forget)."""
        if not subscriber_name:
            raise ValueError("subscriber_name must not be empty")
        (await self._get_locator()).store_offset(subscriber_name, stream, offset)

    async def query_offset(self, stream: str, subscriber_name: str) -> int:
        """The stored offset of ``subscriber_name`` on ``stream``.

        :raises ValueError: empty name; :raises OffsetNotFound: nothing stored.
        """
        if not subscriber_name:
            raise ValueError("subscriber_name must not be empty")
        return await (await self._get_locator()).query_offset(subscriber_name, stream)

    def _store_offset_nowait(self, sub: Subscription, offset: int) -> bool:
        client = sub.client
        if client is None or client.is_closed:
            client = self._locator
        if client is None or client.is_closed or sub.name is None:
            return False
        try:
            client.store_offset(sub.name, sub.stream, offset)
        except Exception:
            log.debug("store_offset failed", exc_info=True)
            return False
        return True

    # ------------------------------------------------------------------ subscriptions

    async def get_available_id(self) -> int:
        """The subscriber id the next :meth:`subscribe` would get."""
        return self._peek_id()

    def _peek_id(self) -> int:
        if self._next_id < _MAX_IDS and self._next_id not in self._subs:
            return self._next_id
        for i in range(_MAX_IDS):
            if i not in self._subs:
                return i
        raise MaxConsumersPerInstance(f"no free subscriber id (max {_MAX_IDS})")

    async def subscribe(
        self,
        stream: str,
        callback: MessageCallback,
        *,
        decoder: Callable[[Any], Any] | None = None,
        offset_specification: ConsumerOffsetSpecification | None = None,
        initial_credit: int = 10,
        properties: Mapping[str, Any] | None = None,
        subscriber_name: str | None = None,
        consumer_update_listener: UpdateListener | None = None,
        filter_input: FilterConfiguration | None = None,
        credit_policy: CreditPolicy | str = CreditPolicy.AFTER_PROCESSING,
        offset_tracking: OffsetTracking | bool | None = None,
    ) -> int:
        """Subscribe ``callback(message, MessageContext)`` (sync or async) to ``stream``.

        Beyond rstream: ``credit_policy`` (see :class:`CreditPolicy`) and
        ``offset_tracking`` (``True`` or an :class:`OffsetTracking`: store the offset of
        the last processed message periodically and on close; needs a subscriber name).

        :return: the subscriber id.
        """
        if not callable(callback):
            raise TypeError("callback must be callable")
        sub = self._new_subscription(
            stream, callback, decoder, offset_specification, initial_credit, properties,
            subscriber_name, consumer_update_listener, filter_input, credit_policy, offset_tracking,
        )  # fmt: skip
        await self._activate(sub)
        sub.task = asyncio.ensure_future(sub.run_worker())
        return sub.id

    def iterate(
        self,
        stream: str,
        *,
        decoder: Callable[[Any], Any] | None = None,
        offset_specification: ConsumerOffsetSpecification | None = None,
        initial_credit: int = 10,
        properties: Mapping[str, Any] | None = None,
        subscriber_name: str | None = None,
        consumer_update_listener: UpdateListener | None = None,
        filter_input: FilterConfiguration | None = None,
        offset_tracking: OffsetTracking | bool | None = None,
    ) -> MessageStream:
        """``async for message, context in consumer.iterate(stream, ...)``.

        Subscribes on first use; at most ``initial_credit`` chunks are buffered; a chunk's
        credit goes back when the loop asks for the message after its last one.  Use
        ``async with`` (or :meth:`MessageStream.aclose`) to unsubscribe before
        :meth:`close`.
        """
        sub = self._new_subscription(
            stream, None, decoder, offset_specification, initial_credit, properties,
            subscriber_name, consumer_update_listener, filter_input, CreditPolicy.AFTER_PROCESSING,
            offset_tracking,
        )  # fmt: skip
        return MessageStream(self, sub)

    def iterate_batches(
        self,
        stream: str,
        *,
        decoder: Callable[[Any], Any] | None = None,
        offset_specification: ConsumerOffsetSpecification | None = None,
        initial_credit: int = 10,
        properties: Mapping[str, Any] | None = None,
        subscriber_name: str | None = None,
        consumer_update_listener: UpdateListener | None = None,
        filter_input: FilterConfiguration | None = None,
        offset_tracking: OffsetTracking | bool | None = None,
    ) -> BatchStream:
        """``async for batch in consumer.iterate_batches(stream, ...)``: one :class:`MessageBatch`
        per chunk (same back-pressure as :meth:`iterate`)."""
        sub = self._new_subscription(
            stream, None, decoder, offset_specification, initial_credit, properties,
            subscriber_name, consumer_update_listener, filter_input, CreditPolicy.AFTER_PROCESSING,
            offset_tracking,
        )  # fmt: skip
        return BatchStream(self, sub)

    def _new_subscription(
        self,
        stream: str,
        callback: MessageCallback | None,
        decoder: Callable[[Any], Any] | None,
        offset_specification: ConsumerOffsetSpecification | None,
        initial_credit: int,
        properties: Mapping[str, Any] | None,
        subscriber_name: str | None,
        listener: UpdateListener | None,
        filter_input: FilterConfiguration | None,
        credit_policy: CreditPolicy | str,
        offset_tracking: OffsetTracking | bool | None,
    ) -> Subscription:
        if not stream:
            raise ValueError("stream must not be empty")
        check_credit(initial_credit)
        policy = CreditPolicy(credit_policy)
        spec = offset_specification if offset_specification is not None else ConsumerOffsetSpecification()
        wire_offset(spec)  # validates
        props = build_subscription_properties(properties, filter_input, subscriber_name)
        tracking: OffsetTracking | None
        if offset_tracking is True:
            tracking = OffsetTracking()
        elif offset_tracking is False or offset_tracking is None:
            tracking = None
        else:
            tracking = offset_tracking
        if tracking is not None and props.name is None:
            raise ValueError("offset_tracking needs a subscriber_name (the offset reference)")
        if listener is not None and not props.single_active:
            log.warning("consumer_update_listener given without single-active-consumer: it is never called")
        for other in self._subs.values():
            if other.stream == stream:
                raise StreamAlreadySubscribed(f"this consumer already subscribes to stream {stream!r}")
        sid = self._peek_id()
        self._next_id = sid + 1
        sub = Subscription(
            self, sid, stream, callback=callback, decoder=decoder, props=props, offset_spec=spec,
            initial_credit=initial_credit, credit_policy=policy, listener=listener, tracking=tracking,
        )  # fmt: skip
        self._subs[sid] = sub
        return sub

    async def _activate(self, sub: Subscription) -> None:
        """First Subscribe of a new subscription (removed again on failure)."""
        if self._closing:
            self._subs.pop(sub.id, None)
            raise ConnectionClosed("the consumer is closed")
        try:
            spec = sub.offset_spec
            skip = spec.offset if spec.offset_type == OffsetType.OFFSET and spec.offset is not None else 0
            await self._open(sub, spec, skip)
        except BaseException:
            self._subs.pop(sub.id, None)
            if self._next_id == sub.id + 1:
                self._next_id = sub.id  # the id was never used
            raise

    async def _open(self, sub: Subscription, spec: ConsumerOffsetSpecification, skip: int) -> None:
        otype, offset = wire_offset(spec)
        conn = await self._connection_for(sub.stream)
        if sub.closed or self._closing:  # unsubscribed / consumer closed while connecting
            if not conn.subs:
                self._drop_connection(conn)
            raise ConnectionClosed("the consumer is closed" if self._closing else "unsubscribed")
        wire_id = conn.free_wire_id(self._max_subs)
        if wire_id is None:  # pragma: no cover - _connection_for picked a non-full one
            raise MaxConsumersPerInstance("connection is full")
        on_chunk = sub.attach(conn.client, wire_id, skip)
        conn.subs[wire_id] = sub
        try:
            await conn.client.subscribe(
                wire_id, sub.stream, otype, offset, sub.initial_credit,
                properties=sub.props.properties or None, on_chunk=on_chunk,
            )  # fmt: skip
        except BaseException:
            conn.subs.pop(wire_id, None)
            sub.detach()
            if not conn.subs:
                self._drop_connection(conn)
            raise

    async def unsubscribe(self, subscriber_id: int) -> None:
        """Stop a subscription (stores its tracked offset first)."""
        sub = self._subs.pop(subscriber_id, None)
        if sub is None:
            return
        await self._end(sub)

    async def _end(self, sub: Subscription) -> None:
        if sub.tracking is not None:
            sub.store_tracked()
        sub.close_local()
        task = sub.task
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        client, wire_id = sub.client, sub.wire_id
        sub.detach()
        conn = next((c for c in self._conns if c.client is client), None)
        if conn is not None:
            conn.subs.pop(wire_id, None)
        if client is not None and not client.is_closed:
            try:
                await asyncio.wait_for(client.unsubscribe(wire_id), _UNSUBSCRIBE_TIMEOUT)
            except Exception:
                log.debug("unsubscribe of %r failed", sub, exc_info=True)
        if conn is not None and not conn.subs:
            self._drop_connection(conn)
            await self._close_client(conn.client)

    def buffered_chunks(self, subscriber_id: int) -> int:
        """Chunks received for a subscription and not yet handed to the application."""
        return self._subs[subscriber_id].buffered_chunks()

    # ------------------------------------------------------------------ connections

    async def _connection_for(self, stream: str) -> _Connection:
        """A consuming connection on a replica of ``stream`` (else its leader), shared up to
        ``max_subscribers_by_connection``; placement and load-balancer mode: :mod:`._locator`."""
        locator = await self._get_locator(internal=True)
        metadata = await self._nodes.stream_metadata(locator, stream)
        wanted, fallback = NodeSelector.placement(metadata, leader=False, prefer_replica=self._prefer_replica)
        async with self._conn_lock:
            if self._closing:
                raise ConnectionClosed("the consumer is closed")
            pool = set(wanted)
            for conn in self._conns:
                if conn.key in pool and not conn.client.is_closed and len(conn.subs) < self._max_subs:
                    return conn
            client, key = await self._nodes.connect_node(
                wanted, self._connection_name, fallback=fallback,
                fallback_after=self._replica_attempts, locator=locator,
            )  # fmt: skip
            if self._closing:  # close() ran while connecting: it has already closed self._conns
                await self._close_client(client)
                raise ConnectionClosed("the consumer is closed")
            conn = _Connection(client, key)
            client.on_consumer_update = functools.partial(self._on_consumer_update, conn)
            client.on_metadata_update = functools.partial(self._on_metadata_update, conn)
            client.add_close_listener(functools.partial(self._on_connection_closed, conn))
            self._conns.append(conn)
            return conn

    def _drop_connection(self, conn: _Connection) -> None:
        if conn in self._conns:
            self._conns.remove(conn)
        if not conn.client.is_closed:
            task = asyncio.ensure_future(self._close_client(conn.client))
            self._closers.add(task)
            task.add_done_callback(self._closers.discard)
