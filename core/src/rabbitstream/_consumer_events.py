"""Server-driven events of a :class:`~rabbitstream.Consumer`: connection loss, MetadataUpdate,
single-active-consumer updates, and recovery (a mixin, to keep modules small)."""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from rabbitstream._consumer_sub import Subscription
from rabbitstream._consumer_types import EventContext, wire_offset
from rabbitstream._locator import (
    DISCONNECTED,
    FAILED,
    RECOVERED,
    RECOVERING,
    StateChange,
    StateListener,
    notify_state,
)
from rabbitstream.constants import ConsumerOffsetSpecification, OffsetSpecification, OffsetType
from rabbitstream.exceptions import ConnectionClosed, OffsetNotFound, ServerError, StreamDoesNotExist
from rabbitstream.recovery import IReliableEntity, RecoveryStrategy
from rabbitstream.utils import OnClosedErrorInfo

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from rabbitstream._client import Client
    from rabbitstream._consumer import Consumer, _Connection

__all__ = ["ConsumerEvents", "maybe_await"]

log = logging.getLogger("rabbitstream.consumer")

_CONSUMER_UPDATE_TIMEOUT = 50.0  # the broker waits 60 s for the answer


async def maybe_await(result: object) -> Any:
    """Await ``result`` if it is awaitable (sync-or-async user callbacks)."""
    if inspect.isawaitable(result):
        return await result
    return result


class ConsumerEvents(IReliableEntity):
    """Mixin of :class:`~rabbitstream.Consumer` handling what the broker (or the network) does."""

    _subs: dict[int, Subscription]
    _conns: list[_Connection]
    _closing: bool
    _recovery: RecoveryStrategy
    _on_close_handler: Callable[[OnClosedErrorInfo], Any] | None
    _on_state_change: StateListener | None = None
    _stop_event: asyncio.Event
    #: why every subscription ended (no recovery, recovery gave up): :meth:`run` raises it
    _failure: BaseException | None = None

    def _spawn(self, coro: Awaitable[Any]) -> None:
        raise NotImplementedError

    def _all_failed(self, error: BaseException) -> None:
        """Subscriptions failed for good: once none is left, :meth:`run` raises ``error``."""
        if not self._subs:
            self._failure = error
            self._stop_event.set()

    def _sub_failed(self, sub: Subscription, exc: BaseException) -> None:
        """``sub`` failed on its own (a chunk it cannot decode): dropped here and on the broker."""
        if self._subs.get(sub.id) is sub:
            del self._subs[sub.id]
        self._state(sub, FAILED, "undecodable chunk", error=exc)
        client, wire_id = sub.client, sub.wire_id
        sub.detach()  # chunks still arriving are ignored, no more credit
        conn = next((c for c in self._conns if c.client is client), None)
        if conn is not None:
            conn.subs.pop(wire_id, None)
        if client is not None and not client.is_closed:
            self._spawn(self._unsubscribe_quietly(client, wire_id))
        self._all_failed(exc)

    @staticmethod
    async def _unsubscribe_quietly(client: Client, wire_id: int) -> None:
        try:
            await asyncio.wait_for(client.unsubscribe(wire_id), 5.0)
        except Exception:
            log.debug("unsubscribe of a failed subscription failed", exc_info=True)

    def _drop_connection(self, conn: _Connection) -> None:
        raise NotImplementedError

    async def query_offset(self, stream: str, subscriber_name: str) -> int:
        raise NotImplementedError

    async def _get_locator(self, *, internal: bool = False) -> Client:
        raise NotImplementedError

    async def _open(self, sub: Subscription, spec: ConsumerOffsetSpecification, skip: int) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ server events (run in data_received)

    def _on_connection_closed(self, conn: _Connection, exc: BaseException | None) -> None:
        if conn in self._conns:
            self._conns.remove(conn)
        subs = list(conn.subs.values())
        conn.subs.clear()
        if self._closing or not subs:
            return
        error = exc if exc is not None else ConnectionClosed("connection closed")
        for sub in subs:
            sub.detach()
            self._state(sub, DISCONNECTED, "Connection Closed", error=error)
        self._spawn(self._handle_loss("Connection Closed", subs, error))

    def _on_metadata_update(self, conn: _Connection, stream: str, code: int) -> None:
        subs = [s for s in conn.subs.values() if s.stream == stream]
        for sub in subs:
            conn.subs.pop(sub.wire_id, None)
            sub.detach()
        if not conn.subs:
            self._drop_connection(conn)
        if subs and not self._closing:
            error = ServerError.for_code(code, f"metadata update for stream {stream!r}")
            for sub in subs:
                self._state(sub, DISCONNECTED, "Metadata Update", error=error)
            self._spawn(self._handle_loss("Metadata Update", subs, error))

    def _state(self, sub: Subscription, state: str, reason: str, **kw: Any) -> None:
        notify_state(
            self._on_state_change, StateChange("consumer", sub.stream, sub.name, state, reason, **kw)
        )

    def _on_consumer_update(self, conn: _Connection, wire_id: int, active: bool, correlation_id: int) -> None:
        sub = conn.subs.get(wire_id)
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
        ctx = EventContext(cast("Consumer", self), sub.stream, sub.id, sub.name, sub.name)
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

    async def _handle_loss(self, reason: str, subs: list[Subscription], error: BaseException) -> None:
        streams = sorted({s.stream for s in subs})
        enabled = self._recovery.is_enabled
        if not enabled:
            for sub in subs:
                self._subs.pop(sub.id, None)
        if self._on_close_handler is not None:
            try:
                await maybe_await(self._on_close_handler(OnClosedErrorInfo(reason, streams)))
            except Exception:
                log.exception("on_close_handler failed")
        if not enabled:
            for sub in subs:
                self._state(sub, FAILED, reason, error=error)
                sub.fail(error)
            self._all_failed(error)
            return
        await asyncio.gather(*(self._recover(sub, error, reason) for sub in subs))

    async def _recover(self, sub: Subscription, error: BaseException, reason: str = "") -> None:
        strategy = self._recovery
        last: BaseException = error
        t0 = time.monotonic()
        for attempt in range(1, strategy.max_retries + 1):
            if sub.closed or self._closing:
                return
            self._state(sub, RECOVERING, reason, attempt=attempt, error=last)
            try:
                reopen = functools.partial(self._reopen, sub)
                if await strategy.recover(self, sub.stream, last, attempt, reopen):
                    client = sub.client
                    node = None if client is None else f"{client.advertised_host}:{client.advertised_port}"
                    self._state(
                        sub, RECOVERED, reason, attempt=attempt, node=node, elapsed=time.monotonic() - t0
                    )
                    return
                last = StreamDoesNotExist(f"stream {sub.stream!r} no longer exists")
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.info("recovery of stream %r, attempt %d failed: %r", sub.stream, attempt, exc)
                last = exc
        log.warning("giving up recovery of subscription %d on stream %r: %r", sub.id, sub.stream, last)
        self._state(sub, FAILED, reason, error=last, elapsed=time.monotonic() - t0)
        self._subs.pop(sub.id, None)
        sub.fail(last)
        self._all_failed(last)

    async def _reopen(self, sub: Subscription, stream: str) -> None:
        if sub.closed or self._closing:
            return
        spec, skip = sub.resume_spec()
        await self._open(sub, spec, skip)
