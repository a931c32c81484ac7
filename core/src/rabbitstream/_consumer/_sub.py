"""One subscription: bounded chunk queue, credit accounting, trimming, dispatch, tracking.

The transport hands each parsed :class:`~rabbitstream.protocol.Chunk` to
:meth:`Subscription.on_chunk` (synchronously, inside ``data_received``).  The chunk, not
one object per message, is queued; messages are decoded lazily right before the user
sees them, by the subscription's worker task (callback mode) or by the async iterator
that pulls from the queue (:mod:`rabbitstream._consumer._iter`).

Credit: the broker sends one chunk per credit.  With the default
:attr:`CreditPolicy.AFTER_PROCESSING` a credit goes back only once a chunk has been
fully handed to the application, so at most ``initial_credit`` chunks are ever buffered,
however slow the callback.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import inspect
import logging
from collections.abc import Callable, Iterator
from itertools import chain, count, repeat
from operator import length_hint
from typing import TYPE_CHECKING, Any

from rabbitstream._consumer._introspect import context_unused, is_async_callable
from rabbitstream._consumer._types import (
    CreditPolicy,
    MessageBatch,
    MessageContext,
    OffsetTracking,
    SubscriptionOwner,
    SubscriptionProperties,
)
from rabbitstream.constants import ConsumerOffsetSpecification, OffsetType
from rabbitstream.plugin import PluginNotFoundError

if TYPE_CHECKING:
    from rabbitstream._connection._client import Client
    from rabbitstream.protocol._chunk import Chunk

__all__ = ["Subscription"]

log = logging.getLogger("rabbitstream.consumer")

_new_tuple = tuple.__new__
#: In callback mode, yield to the event loop between runs of a chunk after this many records.
_YIELD_EVERY = 16384
_isawaitable = inspect.isawaitable


_QueueItem = tuple["Chunk", int, int]  # (chunk, first offset to deliver, generation)


class Subscription:
    """State of one subscription of a :class:`~rabbitstream.Consumer` (internal)."""

    __slots__ = (
        "_credit_batch",
        "_credit_due",
        "_store_timer",
        "_unstored",
        "callback",
        "client",
        "closed",
        "consumer",
        "context_unused",
        "credit_policy",
        "decode",
        "error",
        "gen",
        "id",
        "initial_credit",
        "is_async",
        "last_offset",
        "listener",
        "name",
        "next_offset",
        "offset_spec",
        "owed",
        "post_filter",
        "props",
        "queue",
        "skip_below",
        "stored_offset",
        "stream",
        "task",
        "tracking",
        "waiter",
        "wire_id",
    )

    def __init__(
        self,
        consumer: SubscriptionOwner,
        subscriber_id: int,
        stream: str,
        *,
        callback: Callable[[Any, MessageContext], Any] | None,
        decoder: Callable[[Any], Any] | None,
        props: SubscriptionProperties,
        offset_spec: ConsumerOffsetSpecification,
        initial_credit: int,
        credit_policy: CreditPolicy,
        listener: Callable[..., Any] | None,
        tracking: OffsetTracking | None,
    ) -> None:
        self.consumer = consumer
        self.id = subscriber_id
        self.stream = stream
        self.callback = callback
        self.is_async = callback is not None and is_async_callable(callback)
        #: The callback never reads its context argument: it gets ``None`` (see :func:`context_unused`).
        self.context_unused = callback is not None and context_unused(callback)
        #: ``None``: messages are the raw ``bytes`` (no per-message call at all).
        self.decode: Callable[[Any], Any] | None = decoder
        self.props = props
        self.name = props.name
        self.post_filter = props.post_filter
        self.offset_spec = offset_spec
        self.initial_credit = initial_credit
        # AFTER_PROCESSING credits are coalesced: one Credit frame per `_credit_batch` chunks
        # handed over (fewer syscalls on both sides), and always before the queue runs dry.
        self._credit_due = 0
        self._credit_batch = max(1, initial_credit // 2)
        self.credit_policy = credit_policy
        self.listener = listener
        self.tracking = tracking
        self.queue: collections.deque[_QueueItem] = collections.deque()
        self.waiter: asyncio.Future[None] | None = None
        self.client: Client | None = None
        self.wire_id = -1
        self.gen = 0
        self.owed = 0
        self.skip_below = 0
        self.next_offset: int | None = None  # offset after the last record received
        self.last_offset: int | None = None  # offset of the last record handed to the application
        self.stored_offset: int | None = None
        self._unstored = 0
        self._store_timer: asyncio.TimerHandle | None = None
        self.closed = False
        self.error: BaseException | None = None  # terminal error (connection lost, no recovery)
        self.task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ attach / detach

    def attach(self, client: Client, wire_id: int, skip_below: int) -> Callable[[Chunk], None]:
        """Bind to a connection before Subscribe; :return: the ``on_chunk`` callback."""
        self.gen += 1
        self.client = client
        self.wire_id = wire_id
        self.owed = 0
        self._credit_due = 0
        self.skip_below = skip_below
        return functools.partial(self.on_chunk, self.gen)

    def detach(self) -> None:
        """Forget the connection (lost, or the broker dropped the subscription)."""
        self.gen += 1
        self.client = None
        self.wire_id = -1
        self.owed = 0
        self._credit_due = 0

    def resume_spec(self) -> tuple[ConsumerOffsetSpecification, int]:
        """Where a re-subscription starts: after the last record received, else as asked.

        :return: the offset specification and the offset below which records are dropped.
        """
        if self.next_offset is not None:
            return ConsumerOffsetSpecification(OffsetType.OFFSET, self.next_offset), self.next_offset
        spec = self.offset_spec
        skip = spec.offset if spec.offset_type == OffsetType.OFFSET and spec.offset is not None else 0
        return spec, skip

    # ------------------------------------------------------------------ transport side (sync)

    def on_chunk(self, gen: int, chunk: Chunk) -> None:
        """Queue a delivered chunk (runs inside ``data_received``; never blocks)."""
        if gen != self.gen or self.closed:
            return
        start = chunk.chunk_id
        end = start + chunk.num_records
        skip = self.skip_below
        if start < skip:
            if end <= skip:  # entirely before the requested offset: drop, give the credit back
                self.credit(gen)
                return
            start = skip
        self.next_offset = end
        queue = self.queue
        queue.append((chunk, start, gen))
        if self.credit_policy is CreditPolicy.ON_ARRIVAL:
            if len(queue) <= self.initial_credit:
                self.credit(gen)
            else:
                self.owed += 1
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def credit(self, gen: int, n: int = 1) -> None:
        """Give ``n`` credits on the connection of generation ``gen`` (if still current)."""
        client = self.client
        if gen == self.gen and client is not None and not client.is_closed:
            try:
                client.credit(self.wire_id, n)
            except Exception:  # connection going away: recovery re-subscribes with full credit
                log.debug("credit on a closing connection ignored", exc_info=True)

    def wake(self) -> None:
        """Wake the consumer side (close, failure)."""
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def fail(self, exc: BaseException) -> None:
        """The subscription is gone for good (no recovery): end iteration after the queue."""
        self.error = exc
        self.wake()

    # ------------------------------------------------------------------ application side

    async def next_item(self) -> _QueueItem | None:
        """The next queued chunk, waiting for one; ``None`` when closed or failed."""
        queue = self.queue
        while not queue:
            if self.closed or self.error is not None:
                return None
            waiter = self.waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                self.waiter = None
        if self.closed:
            return None
        item = queue.popleft()
        if self.owed:
            self.owed -= 1
            self.credit(self.gen)
        return item

    def chunk_done(self, gen: int, last_offset: int, count: int) -> None:
        """A chunk was handed over up to ``last_offset``: credit and offset tracking.

        With :attr:`CreditPolicy.AFTER_PROCESSING` the credit is sent once ``_credit_batch``
        chunks are due or when no chunk is queued (so the broker is never left without
        credit while we wait); the buffered chunks stay bounded by ``initial_credit``.
        """
        if self.credit_policy is CreditPolicy.AFTER_PROCESSING:
            if gen == self.gen:
                self._credit_due += 1
            due = self._credit_due
            if due and (due >= self._credit_batch or not self.queue):
                self._credit_due = 0
                self.credit(self.gen, due)
        if last_offset >= 0:
            self.last_offset = last_offset
            if self.tracking is not None:
                self._track(count)

    def _track(self, count: int) -> None:
        tracking = self.tracking
        assert tracking is not None
        self._unstored += count
        if self._unstored >= tracking.messages:
            self.store_tracked()
        elif self._store_timer is None:
            self._store_timer = asyncio.get_running_loop().call_later(tracking.seconds, self.store_tracked)

    def store_tracked(self) -> None:
        """Store the last processed offset now if it moved since the last store."""
        timer = self._store_timer
        if timer is not None:
            timer.cancel()
            self._store_timer = None
        self._unstored = 0
        offset = self.last_offset
        if offset is None or offset == self.stored_offset or self.name is None:
            return
        if self.consumer._store_offset_nowait(self, offset):
            self.stored_offset = offset

    async def run_worker(self) -> None:
        """Callback mode: deliver queued chunks one after the other until closed."""
        try:
            while True:
                item = await self.next_item()
                if item is None:
                    return
                chunk, start, gen = item
                last, n = await self._dispatch(chunk, start)
                self.chunk_done(gen, last, n)
                if self.closed:
                    return
                if self.queue:
                    await asyncio.sleep(0)  # let other subscriptions and the reader run
        except asyncio.CancelledError:
            raise
        except BaseException:  # pragma: no cover - defensive: never die silently
            log.exception("consumer worker of stream %r crashed", self.stream)
            raise

    async def _dispatch(self, chunk: Chunk, start: int) -> tuple[int, int]:
        """Hand one chunk's messages to the callback. :return: (last offset, messages seen).

        Run by run (a run: consecutive simple entries, or one sub-entry, decompressed only
        when reached), yielding to the event loop between runs every
        :data:`_YIELD_EVERY` records, so a chunk declaring millions of records never
        holds them all in memory nor keeps the reader (heartbeats) waiting.
        """
        first = chunk.chunk_id
        try:  # bytes cut at C speed; from ``start`` when the chunk began before it
            runs = chunk.payload_runs(start - first) if start > first else chunk.payload_runs()
        except Exception as exc:  # corrupt chunk (DecodeError) or missing compression plugin
            self.undecodable(exc, start)
            return -1, 0
        if start < first:
            start = first
        last, seen, since_yield = -1, 0, 0
        while True:
            try:
                payloads = next(runs, None)
            except Exception as exc:  # a sub-entry that cannot be decoded: the rest of the chunk is lost
                self.undecodable(exc, start + seen)
                return last, seen
            if payloads is None:
                return last, seen
            if since_yield >= _YIELD_EVERY:
                since_yield = 0
                await asyncio.sleep(0)  # let the reader (heartbeats) and other subscriptions run
                if self.closed:
                    return last, seen
            end, n = await self._dispatch_run(chunk, payloads, start + seen)
            if n:
                last = end
            seen += n
            since_yield += n
            if self.closed or n < len(payloads):
                return last, seen
            payloads = None  # one run alive at a time

    async def _dispatch_run(self, chunk: Chunk, payloads: list[bytes], start: int) -> tuple[int, int]:
        """Hand one run of consecutive records from offset ``start`` to the callback."""
        if not payloads:
            return -1, 0
        if self.post_filter is None:
            return await self._dispatch_fast(payloads, start, chunk.timestamp, chunk.committed_chunk_id)
        decode = self.decode
        callback = self.callback
        assert callback is not None
        pf = self.post_filter
        consumer, stream, sid, name = self.consumer, self.stream, self.id, self.name
        ts, committed = chunk.timestamp, chunk.committed_chunk_id
        new = _new_tuple
        cls = MessageContext
        isawaitable = _isawaitable
        offset = -1
        seen = 0
        for offset, data in enumerate(payloads, start):
            seen += 1
            try:
                msg = data if decode is None else decode(data)
                if pf(msg):
                    r = callback(msg, new(cls, (consumer, stream, sid, name, offset, ts, committed)))
                    if r is not None and isawaitable(r):
                        await r
            except Exception:
                self._error(offset)
            if self.closed:
                break
        return offset, seen

    async def _dispatch_fast(
        self, payloads: list[bytes], first: int, timestamp: int, committed: int | None
    ) -> tuple[int, int]:
        """No post-filter: the whole list in one ``map(callback, messages, contexts)``.

        Decoding and the contexts are built by C iterators; the loop body only runs for
        what the callback returns and the close check.  When the decoder or a sync
        callback raises, the position of the list iterator tells which message failed:
        it is logged and delivery resumes after it, with the same iterator.
        """
        callback: Callable[[Any, Any], Any] | None = self.callback  # the context may be None
        assert callback is not None
        decode = self.decode
        total = len(payloads)
        consumer, stream, sid, name = self.consumer, self.stream, self.id, self.name
        no_context = self.context_unused
        isawaitable = _isawaitable
        is_async = self.is_async
        last_index = total - 1
        it = iter(payloads)
        index = 0
        while True:
            if no_context:
                contexts: Iterator[MessageContext | None] = repeat(None)
            else:
                contexts = map(
                    _new_tuple,
                    repeat(MessageContext),
                    zip(
                        repeat(consumer), repeat(stream), repeat(sid), repeat(name),
                        count(first + index), repeat(timestamp), repeat(committed), strict=False,
                    ),
                )  # fmt: skip
            calls = map(callback, it if decode is None else map(decode, it), contexts)
            try:
                # A sync callback: only what it returns that is truthy reaches the loop body, so
                # one returning None runs in one C loop.  It cannot close the subscription
                # synchronously (closing is async), so checking after each awaited result and once
                # at the end is enough.  An async callback: every result is awaited.
                for r in calls if is_async else filter(None, calls):
                    if is_async or isawaitable(r):
                        try:
                            await r
                        except Exception:
                            self._error(first + last_index - length_hint(it))
                        if self.closed:
                            done = last_index - length_hint(it) + 1
                            return first + done - 1, done
                return first + last_index, total
            except Exception:  # the decoder or a sync callback failed on the last message taken
                bad = last_index - length_hint(it)
                self._error(first + bad)
                if self.closed:
                    return first + bad, bad + 1
                index = bad + 1  # go on with the same list iterator, after the failed message

    def undecodable(self, exc: Exception, offset: int) -> None:
        """The chunk from ``offset`` could not be cut: a corrupt chunk (or sub-entry) is skipped (logged); one
        needing a compression plugin that is not installed fails the subscription with that
        :class:`~rabbitstream.plugin.PluginNotFoundError` (it names the plugin to install), so no
        record after it is delivered and no offset past it is stored or resumed from."""
        if not isinstance(exc, PluginNotFoundError):
            self._error(offset)
            return
        log.error("subscription %d on stream %r stopped at offset %d: %s", self.id, self.stream, offset, exc)
        self.queue.clear()
        self.next_offset = offset
        self.fail(exc)
        self.consumer._sub_failed(self, exc)

    def _error(self, offset: int) -> None:
        log.exception(
            "error decoding/filtering/handling offset %d of stream %r (subscriber %d); message skipped",
            offset,
            self.stream,
            self.id,
        )

    # ------------------------------------------------------------------ iterator helpers

    def iter_pairs(self, chunk: Chunk, start: int, state: list[int]) -> Iterator[tuple[Any, MessageContext]]:
        """``(message, context)`` pairs of one chunk; ``state`` gets [last offset, count]."""
        first = chunk.chunk_id
        try:  # sub-entries decompressed one at a time, as the iteration reaches them
            runs = chunk.payload_runs(start - first) if start > first else chunk.payload_runs()
            payloads: Iterator[bytes] = chain.from_iterable(runs)
        except Exception as exc:  # corrupt chunk (DecodeError) or missing compression plugin
            self.undecodable(exc, start)
            return
        decode = self.decode
        pf = self.post_filter
        consumer, stream, sid, name = self.consumer, self.stream, self.id, self.name
        ts, committed = chunk.timestamp, chunk.committed_chunk_id
        new = _new_tuple
        cls = MessageContext
        offset = max(start, first)
        it = enumerate(payloads, offset)
        try:
            for offset, data in it:
                state[0] = offset
                state[1] += 1
                if decode is None and pf is None:
                    yield data, new(cls, (consumer, stream, sid, name, offset, ts, committed))
                    continue
                try:
                    msg = data if decode is None else decode(data)
                    if pf is not None and not pf(msg):
                        continue
                except Exception:
                    self._error(offset)
                    continue
                yield msg, new(cls, (consumer, stream, sid, name, offset, ts, committed))
        except Exception as exc:  # a sub-entry that cannot be decoded: the rest of the chunk is lost
            self.undecodable(exc, state[0] + 1 if state[1] else offset)

    def make_batch(self, chunk: Chunk, start: int) -> tuple[MessageBatch[Any], int, int]:
        """The messages of one chunk. :return: (batch, last offset, records seen).

        :raises DecodeError: the chunk is corrupt (or a compression plugin is missing).
        """
        first = chunk.chunk_id
        payloads = chunk.payloads(start - first) if start > first else chunk.payloads()
        start = max(start, first)
        decode = self.decode
        pf = self.post_filter
        n = len(payloads)
        if pf is None:
            decoded: list[Any] | None = payloads
            if decode is not None:
                try:  # fast path: decode in C, offsets as a range
                    decoded = list(map(decode, payloads))
                except Exception:  # an undecodable message: the careful loop below
                    decoded = None
            if decoded is not None:
                fast = MessageBatch(
                    self.stream, self.id, first, chunk.timestamp, chunk.committed_chunk_id,
                    decoded, range(start, start + n),
                )  # fmt: skip
                return fast, (start + n - 1 if n else -1), n
        messages: list[Any] = []
        offsets: list[int] = []
        append_m = messages.append
        append_o = offsets.append
        offset = -1
        seen = 0
        for offset, data in enumerate(payloads, start):
            seen += 1
            try:
                msg = data if decode is None else decode(data)
                if pf is not None and not pf(msg):
                    continue
            except Exception:
                self._error(offset)
                continue
            append_m(msg)
            append_o(offset)
        seq: list[int] | range = offsets
        if seen == len(offsets) and offsets:
            seq = range(offsets[0], offsets[-1] + 1)
        batch = MessageBatch(
            self.stream, self.id, chunk.chunk_id, chunk.timestamp, chunk.committed_chunk_id, messages, seq
        )
        return batch, offset, seen

    def close_local(self) -> None:
        """Stop delivering: drop queued chunks, wake waiters, cancel timers."""
        self.closed = True
        self.queue.clear()
        timer = self._store_timer
        if timer is not None:
            timer.cancel()
            self._store_timer = None
        self.wake()

    def buffered_chunks(self) -> int:
        """Chunks received and not yet taken by the application (for tests / metrics)."""
        return len(self.queue)

    def __repr__(self) -> str:
        return f"<Subscription {self.id} stream={self.stream!r} name={self.name!r} wire_id={self.wire_id}>"
