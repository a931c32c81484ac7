"""The rstream-compatible :class:`Consumer`.

A consumer owns a *locator* connection (management RPCs, offset queries) and a pool of
consuming connections, one or more per broker node, each carrying at most
``max_subscribers_by_connection`` subscriptions.  Per-subscription work lives in
:mod:`rabbitstream._consumer._sub`; iteration in :mod:`rabbitstream._consumer._iter`.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import ssl
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from rabbitstream._connection._client import Client
from rabbitstream._connection._credentials import CredentialsProvider
from rabbitstream._connection._locator import StateListener
from rabbitstream._connection._pool import ConnectionOptions, close_client, close_step
from rabbitstream._consumer._base import ConsumerBase
from rabbitstream._consumer._iter import BatchStream, MessageStream
from rabbitstream._consumer._observed import new_subscription
from rabbitstream._consumer._sub import Subscription
from rabbitstream._consumer._types import (
    CreditPolicy,
    EventContext,
    MessageBatch,
    MessageContext,
    OffsetTracking,
    build_subscription_properties,
    check_credit,
    wire_offset,
)
from rabbitstream.constants import ConsumerOffsetSpecification, OffsetType, SlasMechanism
from rabbitstream.exceptions import (
    ConnectionClosed,
    MaxConsumersPerInstance,
    StreamAlreadyExists,
    StreamAlreadySubscribed,
    StreamDoesNotExist,
)
from rabbitstream.protocol._chunk import DEFAULT_MAX_CHUNK_RECORDS, MAX_UNCOMPRESSED_CHUNK, ChunkLimits
from rabbitstream.protocol._connection import DEFAULT_MAX_INBOUND_FRAME
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

_P = ParamSpec("_P")
_R = TypeVar("_R")

MessageCallback = Callable[[Any, MessageContext], Any]
UpdateListener = Callable[[bool, EventContext], Any]


def _keywords_of(model: Callable[_P, object]) -> Callable[[Callable[..., _R]], Callable[_P, _R]]:
    """The decorated method takes the parameters of ``model`` (names, keywords, defaults): one
    signature, for type checkers and for :func:`inspect.signature` (the API reference)."""

    def decorate(method: Callable[..., _R]) -> Callable[_P, _R]:
        returns = inspect.signature(method).return_annotation
        method.__signature__ = inspect.signature(model).replace(  # type: ignore[attr-defined]
            return_annotation=returns
        )
        return method

    return decorate


class Consumer(ConsumerBase):
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
    :param max_chunk_records: most records one delivered chunk may declare (default 4 Mi).
    :param max_chunk_uncompressed: most bytes a chunk's compressed sub-entries may inflate to
        (default 1 GiB).  Over either limit the chunk is not delivered (``DecodeError``).
        Memory does not grow with them: sub-entries are decompressed one at a time as
        messages are taken (``iterate_batches`` holds one chunk's messages at once).
    :param max_inbound_frame_size: largest frame accepted from the broker (default 256 MiB);
        a larger one closes the connection with ``InboundFrameTooLarge``.
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
        max_chunk_records: int = DEFAULT_MAX_CHUNK_RECORDS,
        max_chunk_uncompressed: int = MAX_UNCOMPRESSED_CHUNK,
        max_inbound_frame_size: int = DEFAULT_MAX_INBOUND_FRAME,
    ) -> None:
        if not 0 < max_subscribers_by_connection <= MAX_SUBSCRIPTIONS_PER_CONNECTION:
            raise ValueError(
                f"max_subscribers_by_connection must be between 1 and {MAX_SUBSCRIPTIONS_PER_CONNECTION}"
            )
        options = ConnectionOptions.from_kwargs(
            locals(),
            # ValueError for a limit < 1, here rather than on the first delivery
            chunk_limits=ChunkLimits(max_records=max_chunk_records, max_uncompressed=max_chunk_uncompressed),
        )
        super().__init__(
            host,
            port,
            options,
            connection_name=connection_name or DEFAULT_CONNECTION_NAME,
            load_balancer_mode=load_balancer_mode,
            max_retries=max_retries,
            max_subscribers=max_subscribers_by_connection,
            prefer_replica=prefer_replica,
            replica_attempts=replica_attempts,
            recovery_strategy=(
                recovery_strategy if recovery_strategy is not None else BackOffRecoveryStrategy(False)
            ),
            on_close_handler=on_close_handler,
            on_state_change=on_state_change,
        )
        self._next_id = 0

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

        :raises Exception: the error that ended the last subscription left (connection lost with
            recovery off, recovery given up: :class:`ConnectionClosed` and the like; a compression
            plugin missing: :class:`PluginNotFoundError`).
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
        self._recovery.cancel()  # recovery, consumer updates: nothing they would still do is wanted
        self._pool.cancel_tasks()
        for sid in list(self._subs):
            await self.unsubscribe(sid)
        await self._pool.close_all()
        await self._pool.close_locator()
        await self._pool.end_tasks()

    @property
    def default_client(self) -> Awaitable[Client]:
        """The locator connection (``await consumer.default_client``, as rstream)."""
        return self._get_locator()

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

    @_keywords_of(iterate)
    def iterate_batches(self, stream: str, **options: Any) -> BatchStream:
        """``async for batch in consumer.iterate_batches(stream, ...)``: one :class:`MessageBatch`
        per chunk (same keywords and back-pressure as :meth:`iterate`)."""
        return BatchStream(self, self.iterate(stream, **options).subscription)

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
        sub = new_subscription(
            self._observer, self, sid, stream, callback=callback, decoder=decoder, props=props,
            offset_spec=spec, initial_credit=initial_credit, credit_policy=policy, listener=listener,
            tracking=tracking,
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
            conn.entries.pop(wire_id, None)
        if client is not None and not client.is_closed:
            try:
                await close_step(client.unsubscribe(wire_id))
            except Exception:
                log.debug("unsubscribe of %r failed", sub, exc_info=True)
        if conn is not None and not conn.entries:
            self._pool.forget(conn)
            await close_client(conn.client)

    def buffered_chunks(self, subscriber_id: int) -> int:
        """Chunks received for a subscription and not yet handed to the application."""
        return self._subs[subscriber_id].buffered_chunks()
