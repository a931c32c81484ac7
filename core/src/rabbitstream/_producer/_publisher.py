"""One publisher of a :class:`~rabbitstream.Producer`: buffer, in-flight window, confirms.

Hot-path rules followed here (``docs/producer.md``, "Performance"):

* ``add()`` appends to two (three with filtering) plain lists; no per-message object besides the
  encoded ``bytes``; one linger timer per flush, not per message;
* every assigned-but-unconfirmed message lives in ``pending`` (``dict`` publishing id -> encoded
  message) until confirmed, failed, timed out or recovered: confirms are matched in O(1) per id and
  recovery can re-send exactly what is unconfirmed;
* frames are not written one by one: every write of a loop iteration goes to one list, handed to
  the transport in one ``writelines`` by a ``call_soon`` callback (one syscall instead of one per
  batch; publishing ids stay in order since sub-entries go through the same list);
* a batch of messages of a class defining ``__rabbitstream_encode_batch__(messages) -> list[bytes]``
  (the AMQP plugin's ``AMQPMessage``) is encoded in one call instead of one ``bytes()`` each;
* back-pressure is one integer (``inflight``, buffered + unconfirmed messages) and one shared waiter
  future created only when a sender must wait;
* confirm callbacks are optional (``callbacks`` only holds ids that have one; while every
  unconfirmed message has the same callback, it is kept once in ``cb_all`` instead); sync callbacks are
  called inline; coroutines returned by async callbacks are queued and awaited in order by one
  runner task per publisher (started on demand), never one task per message.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from itertools import chain, repeat
from operator import attrgetter
from typing import TYPE_CHECKING, Any, NoReturn, SupportsBytes, Union

from rabbitstream.exceptions import FrameTooLargeError
from rabbitstream.protocol._publish import (
    ENTRY_OVERHEAD_V1,
    FRAME_OVERHEAD,
    encode_publish,
    encode_publish_sub_entries,
)
from rabbitstream.utils import ConfirmationStatus

if TYPE_CHECKING:
    from rabbitstream._connection._client import Client

__all__ = [
    "CONFIRM_TIMEOUT_CODE",
    "CONNECTION_LOST_CODE",
    "PRODUCER_CLOSED_CODE",
    "ConfirmCallback",
    "Message",
    "Publisher",
]

log = logging.getLogger("rabbitstream.producer")

#: ``ConfirmationStatus.response_code`` when no confirm came within ``confirm_timeout`` (Java's code).
CONFIRM_TIMEOUT_CODE = 10004
#: ``response_code`` for messages still unconfirmed when the producer is closed (Java's code).
PRODUCER_CLOSED_CODE = 10003
#: ``response_code`` when the connection was lost and recovery could not re-send (rstream 1.1.x).
CONNECTION_LOST_CODE = -1

Message = Union[bytes, SupportsBytes]  # noqa: UP007 - runtime alias on 3.10
ConfirmCallback = Callable[[ConfirmationStatus], Union[Awaitable[None], None]]  # noqa: UP007

_MISSING: Any = object()
_ONLY_BYTES = {bytes}
_INT_MESSAGE = "a message must be bytes or have __bytes__ (RawMessage, AMQPMessage), not int"
_TYPE_MESSAGE = (
    "message must be bytes, a bytes-like object or have __bytes__ (RawMessage, AMQPMessage), not {}"
)
_PUBLISHING_ID = attrgetter("publishing_id")
_new_object = object.__new__


class Publisher:
    """State of one (stream, publisher reference) pair, across reconnections.

    :param stream: the stream published to.
    :param reference: the publisher name (``None`` / ``""``: no deduplication).
    :param limit: ``max_unconfirmed`` (in-flight bound, in messages).
    :param batch_size: flush the buffer when it holds this many messages.
    :param linger: seconds a buffered message may wait before a flush.
    :param confirm_timeout: seconds before an unconfirmed message is released with
        :data:`CONFIRM_TIMEOUT_CODE` (``None``: never).
    :param filtering: publish with v2 and a filter value per message.
    :param spawn: runs a coroutine as a tracked background task of the producer.
    """

    __slots__ = (
        "_async_q",
        "_async_running",
        "_loop",
        "_out",
        "_spawn",
        "_timer",
        "_waiter",
        "batch_size",
        "buf_bodies",
        "buf_filters",
        "buf_ids",
        "callbacks",
        "cb_all",
        "client",
        "confirm_timeout",
        "deadlines",
        "dups",
        "failed",
        "filtering",
        "frame_max",
        "inflight",
        "limit",
        "linger",
        "max_body",
        "next_id",
        "pending",
        "publisher_id",
        "ready",
        "reference",
        "stream",
        "sub_weights",
    )

    def __init__(
        self,
        stream: str,
        reference: str | None,
        *,
        limit: int,
        batch_size: int,
        linger: float,
        confirm_timeout: float | None,
        filtering: bool,
        spawn: Callable[[Coroutine[Any, Any, None]], object],
    ) -> None:
        self.stream = stream
        self.reference = reference or None
        self.limit = limit
        self.batch_size = batch_size
        self.linger = linger
        self.confirm_timeout = confirm_timeout
        self.filtering = filtering
        self._spawn = spawn
        self.client: Client | None = None
        self.publisher_id = -1
        self.frame_max = 1048576
        self.max_body = self.frame_max - FRAME_OVERHEAD - ENTRY_OVERHEAD_V1
        self.ready = False
        self.failed: BaseException | None = None
        self.next_id = 1
        self.inflight = 0
        self.buf_ids: list[int] = []
        self.buf_bodies: list[bytes] = []
        self.buf_filters: list[str | None] = []
        #: id -> bytes (v1 simple entry), (bytes, filter) (v2) or encoded sub-entry
        self.pending: dict[int, Any] = {}
        #: sub-entry id -> number of messages it holds
        self.sub_weights: dict[int, int] = {}
        self.callbacks: dict[int, ConfirmCallback] = {}
        #: when set, ``callbacks`` is empty and every unconfirmed id (buffered or pending) has this one
        self.cb_all: ConfirmCallback | None = None
        #: id -> further unconfirmed copies of an id already pending: (entry, callback, weight);
        #: the id's confirm (or failure) releases every copy, each callback called (as rstream)
        self.dups: dict[int, list[tuple[Any, ConfirmCallback | None, int]]] = {}
        self.deadlines: deque[tuple[float, Sequence[int]]] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._loop = asyncio.get_running_loop()
        self._async_q: deque[list[Awaitable[Any]]] = deque()
        self._async_running = False
        #: frames written during this loop iteration, handed to the transport by :meth:`write_out`
        self._out: list[bytes] = []

    # ------------------------------------------------------------------ attach / detach

    def attach(self, client: Client, publisher_id: int, last_sequence: int | None) -> None:
        """Bind to a declared publisher; confirm what the broker already has, re-send the rest.

        :param last_sequence: QueryPublisherSequence answer for a named publisher (else ``None``).
        """
        self.client = client
        self.publisher_id = publisher_id
        self.frame_max = client.frame_max or 0
        self.max_body = (self.frame_max - FRAME_OVERHEAD - ENTRY_OVERHEAD_V1) if self.frame_max else 1 << 62
        if last_sequence is not None:
            if last_sequence >= self.next_id:
                self.next_id = last_sequence + 1
            stored = [i for i in self.pending if i <= last_sequence]
            if stored:
                self.on_confirm(stored)
        self.ready = True
        if self.pending:
            self._resend()
        self.flush()
        self._wake()

    def detach(self) -> None:
        """The connection (or the broker-side publisher) is gone: keep everything for a re-send."""
        self.ready = False
        self.client = None
        self._out = []  # still in ``pending``: re-sent by attach()

    def _resend(self) -> None:
        ids = sorted(self.pending)
        if self.confirm_timeout is not None:
            self.deadlines.clear()
            self.deadlines.append((time.monotonic() + self.confirm_timeout, ids))
        run: list[int] = []
        for i in ids:
            if i in self.sub_weights:
                self._write_ids(run)
                run = []
                self._write_sub([i], [self.pending[i]])
            else:
                run.append(i)
        self._write_ids(run)
        for i, copies in self.dups.items():
            for entry, _, weight in copies:
                self._write_entry(i, entry, weight)

    def _write_ids(self, ids: list[int]) -> None:
        if not ids:
            return
        pending = self.pending
        if self.filtering:
            pairs = [pending[i] for i in ids]
            self._write(ids, [p[0] for p in pairs], [p[1] for p in pairs])
        else:
            self._write(ids, [pending[i] for i in ids], None)

    def _write_entry(self, pid: int, entry: Any, weight: int) -> None:
        if weight:
            self._write_sub([pid], [entry])
        elif self.filtering:
            self._write([pid], [entry[0]], [entry[1]])
        else:
            self._write([pid], [entry], None)

    def _is_unconfirmed(self, pid: int) -> bool:
        """Whether ``pid`` is buffered or pending (only asked for ids below ``next_id``)."""
        return pid in self.pending or pid in self.buf_ids

    def _add_dup(self, pid: int, entry: Any, callback: ConfirmCallback | None, weight: int) -> None:
        """Another copy of the unconfirmed ``pid``: kept apart so no callback is overwritten."""
        self.dups.setdefault(pid, []).append((entry, callback, weight))
        self.inflight += weight or 1
        if self.confirm_timeout is not None:
            self.deadlines.append((time.monotonic() + self.confirm_timeout, [pid]))
        if self.ready:
            self._write_entry(pid, entry, weight)

    def _refuse(self) -> NoReturn:
        failed = self.failed
        assert failed is not None
        raise failed.with_traceback(None)

    # ------------------------------------------------------------------ hot path

    def add(self, message: Message, callback: ConfirmCallback | None, filter_value: str | None) -> None:
        """Buffer one message (the caller has checked the in-flight bound).

        :raises: :attr:`failed` when the publisher is failed (closed, recovery gave up).
        """
        if self.failed is not None:
            self._refuse()
        if type(message) is bytes:
            body = message
            pid = self.next_id
            self.next_id = pid + 1
        else:  # SupportsBytes (AMQPMessage, RawMessage); caller-set publishing ids win
            try:
                body = message.__bytes__()  # type: ignore[union-attr]  # cheaper than bytes(message)
            except AttributeError:
                body = _to_bytes(message)
            if type(body) is not bytes and not isinstance(body, bytes):
                raise TypeError(f"__bytes__ returned {type(body).__name__}, not bytes")
            set_id: int | None = getattr(message, "publishing_id", None)
            if set_id is None:
                pid = self.next_id
                self.next_id = pid + 1
            else:
                pid = set_id
                if pid >= self.next_id:
                    self.next_id = pid + 1
                elif self._is_unconfirmed(pid):
                    if len(body) > self.max_body:
                        self._too_large(body)
                    self.flush()  # the first copy goes to ``pending`` before this one is written
                    self._add_dup(pid, (body, filter_value) if self.filtering else body, callback, 0)
                    return
        if len(body) > self.max_body:
            self._too_large(body)
        if callback is not self.cb_all:
            self._register_cb([pid], callback)
        ids = self.buf_ids
        ids.append(pid)
        self.buf_bodies.append(body)
        if self.filtering:
            self.buf_filters.append(filter_value)
        self.inflight += 1
        if len(ids) >= self.batch_size:
            self.flush()
        elif self._timer is None:
            self._timer = self._loop.call_later(self.linger, self._on_linger)

    def _register_cb(self, ids: list[int], callback: ConfirmCallback | None) -> None:
        """Record ``callback`` for new ``ids`` (not yet buffered nor pending)."""
        cb_all = self.cb_all
        if cb_all is not None:
            if callback == cb_all:  # e.g. a new bound method object of the same method
                return
            # another callback (or none) from now on: give the unconfirmed ids their own entries
            self.callbacks = dict.fromkeys(chain(self.pending, self.buf_ids), cb_all)
            self.cb_all = None
        elif callback is not None and not self.callbacks and not self.pending and not self.buf_ids:
            self.cb_all = callback
            return
        if callback is not None:
            if len(ids) == 1:
                self.callbacks[ids[0]] = callback
            else:
                self.callbacks.update(dict.fromkeys(ids, callback))

    def _too_large(self, body: bytes) -> None:
        raise FrameTooLargeError(len(body) + FRAME_OVERHEAD + ENTRY_OVERHEAD_V1, self.frame_max, "message")

    def _on_linger(self) -> None:
        self._timer = None
        self.flush()
        self.write_out()

    def flush(self) -> None:
        """Move the buffer to ``pending`` and write it (if connected)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        ids = self.buf_ids
        if not ids:
            return
        bodies = self.buf_bodies
        self.buf_ids = []
        self.buf_bodies = []
        filters: list[str | None] | None = None
        if self.filtering:
            filters = self.buf_filters
            self.buf_filters = []
            self.pending.update(zip(ids, zip(bodies, filters, strict=True), strict=True))
        else:
            self.pending.update(zip(ids, bodies, strict=True))
        if self.confirm_timeout is not None:
            self.deadlines.append((time.monotonic() + self.confirm_timeout, _compact(ids)))
        if self.ready:
            self._write(ids, bodies, filters)

    def add_batch(
        self,
        messages: Sequence[Message],
        callback: ConfirmCallback | None,
        filters: list[str | None] | None,
    ) -> list[int]:
        """Assign ids to ``messages`` and write them at once (after the buffered ones)."""
        if self.failed is not None:
            self._refuse()
        self.flush()
        n = len(messages)
        nid = self.next_id
        bodies, pids = _encode_batch(messages)
        dup = False
        span: Sequence[int] | None = None
        if pids is None or pids.count(None) == n:  # no caller-set id: one range
            span = range(nid, nid + n)
            ids = list(span)
            nid += n
        else:
            ids = []
            for pid in pids:
                if pid is None:
                    pid = nid
                    nid += 1
                elif pid >= nid:
                    nid = pid + 1
                elif not dup:
                    dup = pid in self.pending
                ids.append(pid)
            dup = dup or len(set(ids)) < n
        lens = list(map(len, bodies))
        biggest = max(lens)
        if biggest > self.max_body:
            raise FrameTooLargeError(biggest + FRAME_OVERHEAD + ENTRY_OVERHEAD_V1, self.frame_max, "message")
        self.next_id = nid
        if dup:  # ids already unconfirmed (rare): one by one, each copy keeps its callback
            for pid, body, fv in zip(ids, bodies, filters or repeat(None), strict=False):
                entry = (body, fv) if filters is not None else body
                if pid in self.pending:
                    self._add_dup(pid, entry, callback, 0)
                else:
                    if callback is not self.cb_all:
                        self._register_cb([pid], callback)
                    self.pending[pid] = entry
                    self.inflight += 1
                    if self.confirm_timeout is not None:
                        self.deadlines.append((time.monotonic() + self.confirm_timeout, [pid]))
                    if self.ready:
                        self._write_entry(pid, entry, 0)
            return ids
        if callback is not self.cb_all:
            self._register_cb(ids, callback)
        if filters is not None:
            self.pending.update(zip(ids, zip(bodies, filters, strict=True), strict=True))
        else:
            self.pending.update(zip(ids, bodies, strict=True))
        self.inflight += n
        if self.confirm_timeout is not None:
            self.deadlines.append((time.monotonic() + self.confirm_timeout, span or _compact(ids)))
        if self.ready:
            self._write(ids, bodies, filters, lens)
        return ids

    def add_sub_entry(
        self, entry: bytes, count: int, last_id: int | None, callback: ConfirmCallback | None
    ) -> int:
        """Publish one encoded sub-entry of ``count`` messages; its id is its last message's id."""
        if self.failed is not None:
            self._refuse()
        self.flush()
        if len(entry) + 8 + FRAME_OVERHEAD > self.frame_max > 0:
            raise FrameTooLargeError(len(entry) + 8 + FRAME_OVERHEAD, self.frame_max, "sub-entry batch")
        if last_id is None:
            last_id = self.next_id + count - 1
        elif last_id in self.pending:
            self._add_dup(last_id, entry, callback, count)
            return last_id
        self.next_id = max(self.next_id, last_id + 1)
        if callback is not self.cb_all:
            self._register_cb([last_id], callback)
        self.pending[last_id] = entry
        self.sub_weights[last_id] = count
        self.inflight += count
        if self.confirm_timeout is not None:
            self.deadlines.append((time.monotonic() + self.confirm_timeout, [last_id]))
        if self.ready:
            self._write_sub([last_id], [entry])
        return last_id

    def _write(
        self,
        ids: list[int],
        bodies: Sequence[bytes],
        filters: list[str | None] | None,
        lens: list[int] | None = None,
    ) -> None:
        if self.client is None:
            return
        frames = encode_publish(self.publisher_id, ids, bodies, self.frame_max, filters, lens)
        if not self._out:
            self._loop.call_soon(self.write_out)
        self._out += frames

    def _write_sub(self, ids: list[int], entries: list[bytes]) -> None:
        if self.client is None:
            return
        frames = encode_publish_sub_entries(self.publisher_id, ids, entries, self.frame_max)
        if not self._out:
            self._loop.call_soon(self.write_out)
        self._out += frames

    def write_out(self) -> None:
        """Hand the frames of this loop iteration to the transport (one ``writelines``)."""
        frames = self._out
        if not frames:
            return
        self._out = []
        client = self.client
        if client is None:
            return  # detached meanwhile: ``pending`` is re-sent on attach
        try:
            if len(frames) == 1:
                client.write(frames[0])
            else:
                client.writelines(frames)
        except Exception as exc:  # connection lost under us: the close listener recovers
            log.debug("write to %s failed (%r); kept for re-send", self.stream, exc)

    # ------------------------------------------------------------------ confirms (reader side)

    def on_confirm(self, ids: Sequence[int]) -> None:
        """PublishConfirm handler: runs inside the reader, must not block."""
        n = len(ids)
        popped = list(map(self.pending.pop, ids, repeat(_MISSING, n)))
        missing = popped.count(_MISSING)
        done = n - missing
        cb_all = self.cb_all
        if cb_all is not None:
            if missing:  # unknown or already released ids: no callback
                ids = [i for i, body in zip(ids, popped, strict=True) if body is not _MISSING]
            if not self.pending and not self.buf_ids:
                self.cb_all = None  # nothing unconfirmed left
            self._confirm_all(cb_all, ids)
        elif self.callbacks:
            cbs = list(map(self.callbacks.pop, ids, repeat(None, n)))
            cb0 = cbs[0] if n else None
            if cb0 is not None and cbs.count(cb0) == n:  # one callback for all (the usual case)
                self._confirm_all(cb0, ids)
            else:
                self._confirm_each(cbs, ids)
        if self.sub_weights:
            spop = self.sub_weights.pop
            for i in ids:
                w = spop(i, 0)
                if w:
                    done += w - 1
        if self.dups:
            done += self._release_dups(ids, True, 0)
        self.inflight -= done
        if self._waiter is not None and self.inflight < self.limit:
            self._wake()

    def _confirm_all(self, cb: ConfirmCallback, ids: Sequence[int]) -> None:
        coros: list[Awaitable[Any]] | None = None
        new, cls = _new_object, ConfirmationStatus
        for i in ids:
            # = ConfirmationStatus(i, True, 0) without the type call and the dataclass __init__ frame
            # (a quarter of this loop's cost with a counting callback)
            status = new(cls)
            status.message_id = i
            status.is_confirmed = True
            status.response_code = 0
            try:
                r = cb(status)
            except Exception:
                log.exception("on_publish_confirm callback failed")
                continue
            if r is not None and inspect.isawaitable(r):
                if coros is None:
                    coros = []
                coros.append(r)
        if coros:
            self._run_async(coros)

    def _confirm_each(self, cbs: list[ConfirmCallback | None], ids: Sequence[int]) -> None:
        coros: list[Awaitable[Any]] | None = None
        status = ConfirmationStatus
        for i, cb in zip(ids, cbs, strict=True):
            if cb is None:
                continue
            try:
                r = cb(status(i, True, 0))
            except Exception:
                log.exception("on_publish_confirm callback failed")
                continue
            if r is not None and inspect.isawaitable(r):
                if coros is None:
                    coros = []
                coros.append(r)
        if coros:
            self._run_async(coros)

    def _release_dups(self, ids: Sequence[int], confirmed: bool, codes: Sequence[int] | int) -> int:
        """Release the further copies of ``ids``, calling their callbacks. :return: messages released."""
        coros: list[Awaitable[Any]] = []
        done = 0
        for n, i in enumerate(ids):
            copies = self.dups.pop(i, None)
            if copies is None:
                continue
            code = 0 if confirmed else codes if isinstance(codes, int) else codes[n]
            for _, cb, weight in copies:
                done += weight or 1
                if cb is None:
                    continue
                try:
                    r = cb(ConfirmationStatus(i, confirmed, code))
                except Exception:
                    log.exception("on_publish_confirm callback failed")
                    continue
                if r is not None and inspect.isawaitable(r):
                    coros.append(r)
        if coros:
            self._run_async(coros)
        return done

    def on_error(self, errors: Sequence[tuple[int, int]]) -> None:
        """PublishError handler: fail each id with the broker's code."""
        self.fail_ids([i for i, _ in errors], [c for _, c in errors])

    def fail_ids(self, ids: Sequence[int], codes: Sequence[int] | int) -> None:
        """Release ``ids`` as not confirmed, calling their callbacks with ``codes``."""
        coros: list[Awaitable[Any]] = []
        done = 0
        cb_all = self.cb_all
        for n, i in enumerate(ids):
            if self.pending.pop(i, _MISSING) is _MISSING:
                continue
            done += self.sub_weights.pop(i, 1)
            cb = cb_all if cb_all is not None else self.callbacks.pop(i, None)
            if cb is None:
                continue
            code = codes if isinstance(codes, int) else codes[n]
            try:
                r = cb(ConfirmationStatus(i, False, code))
            except Exception:
                log.exception("on_publish_confirm callback failed")
                continue
            if r is not None and inspect.isawaitable(r):
                coros.append(r)
        if cb_all is not None and not self.pending and not self.buf_ids:
            self.cb_all = None
        if coros:
            self._run_async(coros)
        if self.dups:
            done += self._release_dups(ids, False, codes)
        self.inflight -= done
        self._wake()

    def fail_all(self, code: int, exc: BaseException | None = None) -> None:
        """Release everything (buffered and pending) with ``code``; ``exc`` marks the publisher failed."""
        self.flush()
        if exc is not None:
            self.failed = exc
        self.fail_ids(list(self.pending), code)
        self.deadlines.clear()
        self._wake()

    def expire(self, now: float) -> None:
        """Release messages whose confirm did not arrive in time (called periodically)."""
        if not self.ready:
            return
        dl = self.deadlines
        while dl and dl[0][0] <= now:
            _, ids = dl.popleft()
            late = [i for i in ids if i in self.pending]
            if late:
                self.fail_ids(late, CONFIRM_TIMEOUT_CODE)

    def _run_async(self, coros: list[Awaitable[Any]]) -> None:
        """Await async callbacks in confirm order: one runner task drains the queue, none per message."""
        self._async_q.append(coros)
        if not self._async_running:
            self._async_running = True
            self._spawn(self._drain_async())

    async def _drain_async(self) -> None:
        q = self._async_q
        try:
            while q:
                for coro in q.popleft():
                    try:
                        await coro
                    except Exception:
                        log.exception("on_publish_confirm callback failed")
        finally:
            self._async_running = False
            for coros in q:  # cancelled (producer closed): close what never ran
                for coro in coros:
                    close = getattr(coro, "close", None)
                    if close is not None:
                        close()
            q.clear()

    # ------------------------------------------------------------------ back-pressure

    def _wake(self) -> None:
        w = self._waiter
        if w is not None:
            self._waiter = None
            if not w.done():
                w.set_result(None)

    async def wait_room(self, n: int, timeout: float | None) -> None:
        """Wait until ``n`` more messages fit in the in-flight window (or nothing is in flight).

        :raises asyncio.TimeoutError: still full after ``timeout`` seconds.
        """
        deadline = None if timeout is None else self._loop.time() + timeout
        while self.inflight + n > self.limit and self.inflight > 0:
            if self.failed is not None:
                raise self.failed
            self.flush()
            if self._waiter is None:
                self._waiter = self._loop.create_future()
            fut = self._waiter
            if deadline is None:
                await asyncio.shield(fut)
            else:
                left = deadline - self._loop.time()
                if left <= 0:
                    raise asyncio.TimeoutError
                await asyncio.wait_for(asyncio.shield(fut), left)
        if self.failed is not None:  # released by fail_all (closed, recovery gave up): never add
            self._refuse()

    def close(self) -> None:
        """Cancel the linger timer (the producer flushes first when it can); write what is queued."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.write_out()  # before the caller's DeletePublisher
        self.ready = False
        self._wake()


def _compact(ids: list[int]) -> Sequence[int]:
    """``ids`` as a ``range`` when they are one (the usual case), for the confirm-timeout queue.

    ``deadlines`` keeps every entry for ``confirm_timeout`` seconds (30 by default), confirmed or
    not: a list of ids there would keep one ``int`` object per message published in that time
    (tens of MB at full speed), a ``range`` is ~50 bytes per flush.
    """
    n = len(ids)
    if n > 1:
        first = ids[0]
        if ids[-1] - first == n - 1:
            span = range(first, first + n)
            if ids == list(span):
                return span
    return ids


def _to_bytes(message: Any) -> bytes:
    """``bytes(message)`` for a message without ``__bytes__`` (bytearray, memoryview, ...)."""
    if isinstance(message, int):
        raise TypeError(_INT_MESSAGE)  # bytes(n) would be n zero bytes
    if not hasattr(type(message), "__bytes__"):
        try:  # bytes-likes only: bytes([1, 2]), bytes({}) and bytes(str) are not messages
            message = memoryview(message)
        except TypeError:
            raise TypeError(_TYPE_MESSAGE.format(type(message).__name__)) from None
    return bytes(message)


def _encode_batch(messages: Sequence[Message]) -> tuple[Sequence[bytes], list[Any] | None]:
    """Encoded ``messages`` and their ``publishing_id`` attributes (``None``: no message has one)."""
    t = type(messages[0])
    if t is bytes and set(map(type, messages)) == _ONLY_BYTES:
        return messages, None  # type: ignore[return-value]
    enc = getattr(t, "__rabbitstream_encode_batch__", None)
    if enc is None and any(issubclass(k, int) for k in set(map(type, messages))):
        raise TypeError(_INT_MESSAGE)  # before bytes(n) allocates n bytes
    bodies: list[bytes] = enc(messages) if enc is not None else list(map(_to_bytes, messages))
    try:
        pids = list(map(_PUBLISHING_ID, messages))
    except AttributeError:  # some message without the attribute (bytes, ...)
        n = len(messages)
        pids = list(map(getattr, messages, repeat("publishing_id", n), repeat(None, n)))
    return bodies, pids
