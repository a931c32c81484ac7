"""One publisher of a :class:`~rabbitstream.Producer`: buffer, batching, frames to the socket.

:class:`Publisher` is the sending side of a :class:`~._confirms.ConfirmWindow` (the unconfirmed
messages, their callbacks and the in-flight bound); messages become ``bytes`` in :mod:`._messages`.
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
  future created only when a sender must wait.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from itertools import repeat
from typing import TYPE_CHECKING, Any, NoReturn

from rabbitstream._producer._confirms import (
    CONFIRM_TIMEOUT_CODE,
    CONNECTION_LOST_CODE,
    PRODUCER_CLOSED_CODE,
    ConfirmCallback,
    ConfirmWindow,
    compact,
)
from rabbitstream._producer._messages import Message, encode_batch, to_bytes
from rabbitstream.exceptions import FrameTooLargeError
from rabbitstream.protocol._publish import (
    ENTRY_OVERHEAD_V1,
    FRAME_OVERHEAD,
    encode_publish,
    encode_publish_sub_entries,
)

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


class Publisher(ConfirmWindow):
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
        "_loop",
        "_out",
        "_timer",
        "batch_size",
        "buf_bodies",
        "buf_filters",
        "client",
        "failed",
        "filtering",
        "frame_max",
        "linger",
        "max_body",
        "next_id",
        "publisher_id",
        "reference",
        "stream",
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
        super().__init__(limit=limit, confirm_timeout=confirm_timeout, spawn=spawn)
        self.stream = stream
        self.reference = reference or None
        self.batch_size = batch_size
        self.linger = linger
        self.filtering = filtering
        self.client: Client | None = None
        self.publisher_id = -1
        self.frame_max = 1048576
        self.max_body = self.frame_max - FRAME_OVERHEAD - ENTRY_OVERHEAD_V1
        self.failed: BaseException | None = None
        self.next_id = 1
        self.buf_bodies: list[bytes] = []
        self.buf_filters: list[str | None] = []
        self._timer: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_running_loop()
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
        self._add_deadline([pid])
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
                body = to_bytes(message)
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
            self.deadlines.append((time.monotonic() + self.confirm_timeout, compact(ids)))
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
        bodies, pids = encode_batch(messages)
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
                    self._add_deadline([pid])
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
            self.deadlines.append((time.monotonic() + self.confirm_timeout, span or compact(ids)))
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
        self._add_deadline([last_id])
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

    def fail_all(self, code: int, exc: BaseException | None = None) -> None:
        """Release everything (buffered and pending) with ``code``; ``exc`` marks the publisher failed."""
        self.flush()
        if exc is not None:
            self.failed = exc
        self.fail_ids(list(self.pending), code)
        self.deadlines.clear()
        self._wake()

    # ------------------------------------------------------------------ back-pressure

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
