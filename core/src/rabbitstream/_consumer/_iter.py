"""Async iteration over a subscription: per message (:class:`MessageStream`) or per chunk
(:class:`BatchStream`).

Both pull chunks from the subscription's bounded queue; a chunk's credit goes back to the
broker when the application asks for what follows its last message, so a slow loop
never makes more than ``initial_credit`` chunks pile up.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from rabbitstream._consumer._types import MessageBatch, MessageContext, SubscriptionOwner
from rabbitstream.exceptions import ConnectionClosed
from rabbitstream.plugin import PluginNotFoundError

if TYPE_CHECKING:
    from rabbitstream._consumer._sub import Subscription

__all__ = ["BatchStream", "MessageStream"]


class _StreamBase:
    __slots__ = ("_consumer", "_gen", "_started", "_sub")

    def __init__(self, consumer: SubscriptionOwner, sub: Subscription) -> None:
        self._consumer = consumer
        self._sub = sub
        self._started = False
        self._gen = 0

    @property
    def subscription(self) -> Subscription:
        """The subscription iterated (internal: :meth:`Consumer.iterate_batches` takes it over)."""
        return self._sub

    @property
    def subscriber_id(self) -> int:
        """The subscriber id (usable with :meth:`Consumer.unsubscribe`, ``buffered_chunks``)."""
        return self._sub.id

    async def start(self) -> None:
        """Subscribe now (otherwise done on the first iteration)."""
        if self._started:
            return
        self._started = True
        try:
            await self._consumer._activate(self._sub)
        except BaseException:
            self._sub.close_local()
            raise

    async def aclose(self) -> None:
        """Unsubscribe (stores the tracked offset); iteration then stops."""
        sub = self._sub
        if self._consumer._subs.get(sub.id) is sub:
            await self._consumer.unsubscribe(sub.id)
        else:
            sub.close_local()

    def _end_of_stream(self) -> BaseException:
        sub = self._sub
        if sub.error is not None and not sub.closed:
            err = sub.error
            if isinstance(err, (ConnectionClosed, PluginNotFoundError)):
                return err
            exc = ConnectionClosed(f"subscription on stream {sub.stream!r} lost: {err!r}")
            exc.__cause__ = err
            return exc
        return StopAsyncIteration()


class MessageStream(_StreamBase):
    """``async for message, context in consumer.iterate(...)``; also an async context manager.

    Yields ``(message, MessageContext)`` pairs: the same two values a callback receives.
    Raises :class:`~rabbitstream.exceptions.ConnectionClosed` after the buffered messages
    when the subscription is lost and not recovered; stops when closed.
    """

    __slots__ = ("_current", "_state")

    def __init__(self, consumer: SubscriptionOwner, sub: Subscription) -> None:
        super().__init__(consumer, sub)
        self._current: Iterator[tuple[Any, MessageContext]] | None = None
        self._state = [-1, 0]

    async def __aenter__(self) -> MessageStream:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    def __aiter__(self) -> MessageStream:
        return self

    async def __anext__(self) -> tuple[Any, MessageContext]:
        current = self._current
        if current is not None:
            pair = next(current, None)
            if pair is not None and not self._sub.closed:
                return pair
            self._finish()
        elif not self._started:
            await self.start()
        sub = self._sub
        while True:
            item = await sub.next_item()
            if item is None:
                raise self._end_of_stream()
            chunk, start, self._gen = item
            state = self._state = [-1, 0]
            try:
                current = self._current = sub.iter_pairs(chunk, start, state)
            except Exception:
                sub._error(start)
                sub.chunk_done(self._gen, -1, 0)
                continue
            pair = next(current, None)
            if pair is not None:
                return pair
            self._finish()

    def _finish(self) -> None:
        self._current = None
        state = self._state
        self._sub.chunk_done(self._gen, state[0], state[1])


class BatchStream(_StreamBase):
    """``async for batch in consumer.iterate_batches(...)``: one :class:`MessageBatch` per
    chunk (chunks whose messages were all filtered out are skipped)."""

    __slots__ = ("_pending",)

    def __init__(self, consumer: SubscriptionOwner, sub: Subscription) -> None:
        super().__init__(consumer, sub)
        self._pending: tuple[int, int, int] | None = None  # (gen, last offset, count)

    async def __aenter__(self) -> BatchStream:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    def __aiter__(self) -> BatchStream:
        return self

    async def __anext__(self) -> MessageBatch[Any]:
        sub = self._sub
        pending = self._pending
        if pending is not None:
            self._pending = None
            sub.chunk_done(*pending)
        elif not self._started:
            await self.start()
        while True:
            item = await sub.next_item()
            if item is None:
                raise self._end_of_stream()
            chunk, start, gen = item
            try:
                batch, last, count = sub.make_batch(chunk, start)
            except Exception as exc:
                sub.undecodable(exc, start)
                sub.chunk_done(gen, -1, 0)
                continue
            if batch.messages:
                self._pending = (gen, last, count)
                return batch
            sub.chunk_done(gen, last, count)
