"""The in-flight window of a publisher: what is unconfirmed, and how it is released.

:class:`ConfirmWindow` holds every assigned-but-unconfirmed message (``pending``: publishing id ->
encoded entry) with its confirm callback, and releases them on a PublishConfirm
(:meth:`~ConfirmWindow.on_confirm`), a PublishError (:meth:`~ConfirmWindow.on_error`), a confirm
time-out (:meth:`~ConfirmWindow.expire`) or a failure (:meth:`~ConfirmWindow.fail_ids`).  Every
release calls the callbacks through one helper, :meth:`~ConfirmWindow._notify`:

* confirm callbacks are optional (``callbacks`` only holds ids that have one; while every
  unconfirmed message has the same callback, it is kept once in ``cb_all`` instead);
* sync callbacks are called inline; coroutines returned by async callbacks are queued and awaited
  in order by one runner task per publisher (started on demand), never one task per message;
* back-pressure is one integer (``inflight``, buffered + unconfirmed messages) and one shared waiter
  future, woken when a release makes room.

:class:`~rabbitstream._producer._publisher.Publisher` extends it with the sending side.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from itertools import chain, repeat
from typing import Any, Union

from rabbitstream.utils import ConfirmationStatus

__all__ = [
    "CONFIRM_TIMEOUT_CODE",
    "CONNECTION_LOST_CODE",
    "PRODUCER_CLOSED_CODE",
    "ConfirmCallback",
    "ConfirmWindow",
    "compact",
]

log = logging.getLogger("rabbitstream.producer")

#: ``ConfirmationStatus.response_code`` when no confirm came within ``confirm_timeout`` (Java's code).
CONFIRM_TIMEOUT_CODE = 10004
#: ``response_code`` for messages still unconfirmed when the producer is closed (Java's code).
PRODUCER_CLOSED_CODE = 10003
#: ``response_code`` when the connection was lost and recovery could not re-send (rstream 1.1.x).
CONNECTION_LOST_CODE = -1

ConfirmCallback = Callable[[ConfirmationStatus], Union[Awaitable[None], None]]  # noqa: UP007

_MISSING: Any = object()
_new_object = object.__new__


class ConfirmWindow:
    """Unconfirmed messages of one publisher, their callbacks and the in-flight bound.

    :param limit: ``max_unconfirmed`` (in-flight bound, in messages).
    :param confirm_timeout: seconds before an unconfirmed message is released with
        :data:`CONFIRM_TIMEOUT_CODE` (``None``: never).
    :param spawn: runs a coroutine as a tracked background task of the producer.
    """

    __slots__ = (
        "_async_q",
        "_async_running",
        "_spawn",
        "_waiter",
        "buf_ids",
        "callbacks",
        "cb_all",
        "confirm_timeout",
        "deadlines",
        "dups",
        "inflight",
        "limit",
        "pending",
        "ready",
        "sub_weights",
    )

    def __init__(
        self,
        *,
        limit: int,
        confirm_timeout: float | None,
        spawn: Callable[[Coroutine[Any, Any, None]], object],
    ) -> None:
        self.limit = limit
        self.confirm_timeout = confirm_timeout
        self._spawn = spawn
        #: attached to a declared publisher (confirms can come, time-outs run)
        self.ready = False
        self.inflight = 0
        #: ids of the messages buffered by the sending side, not yet in ``pending``
        self.buf_ids: list[int] = []
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
        self._waiter: asyncio.Future[None] | None = None
        self._async_q: deque[list[Awaitable[Any]]] = deque()
        self._async_running = False

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
            self._notify(ids, repeat(cb_all), True, repeat(0))
        elif self.callbacks:
            cbs = list(map(self.callbacks.pop, ids, repeat(None, n)))
            cb0 = cbs[0] if n else None
            if cb0 is not None and cbs.count(cb0) == n:  # one callback for all (the usual case)
                self._notify(ids, repeat(cb0), True, repeat(0))
            else:
                self._notify(ids, cbs, True, repeat(0))
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

    def _notify(
        self,
        ids: Iterable[int],
        cbs: Iterable[ConfirmCallback | None],
        confirmed: bool,
        codes: Iterable[int],
    ) -> None:
        """Call each callback of ``cbs`` (``None``: none) with the status of the id beside it.

        The one place callbacks are called, for confirms and failures alike: an exception is
        logged, a returned awaitable is queued for the runner task (:meth:`_run_async`).
        """
        coros: list[Awaitable[Any]] | None = None
        new, cls = _new_object, ConfirmationStatus
        for i, cb, code in zip(ids, cbs, codes, strict=False):  # ``repeat`` for one callback or code
            if cb is None:
                continue
            # = ConfirmationStatus(i, confirmed, code) without the type call and the dataclass
            # __init__ frame (a quarter of the confirm loop's cost with a counting callback)
            status = new(cls)
            status.message_id = i
            status.is_confirmed = confirmed
            status.response_code = code
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

    def _release_dups(self, ids: Sequence[int], confirmed: bool, codes: Sequence[int] | int) -> int:
        """Release the further copies of ``ids``, calling their callbacks. :return: messages released."""
        released: list[int] = []
        cbs: list[ConfirmCallback | None] = []
        released_codes: list[int] = []
        done = 0
        for n, i in enumerate(ids):
            copies = self.dups.pop(i, None)
            if copies is None:
                continue
            code = 0 if confirmed else codes if isinstance(codes, int) else codes[n]
            for _, cb, weight in copies:
                done += weight or 1
                released.append(i)
                cbs.append(cb)
                released_codes.append(code)
        self._notify(released, cbs, confirmed, released_codes)
        return done

    def on_error(self, errors: Sequence[tuple[int, int]]) -> None:
        """PublishError handler: fail each id with the broker's code."""
        self.fail_ids([i for i, _ in errors], [c for _, c in errors])

    def fail_ids(self, ids: Sequence[int], codes: Sequence[int] | int) -> None:
        """Release ``ids`` as not confirmed, calling their callbacks with ``codes``."""
        released: list[int] = []
        cbs: list[ConfirmCallback | None] = []
        released_codes: list[int] = []
        done = 0
        cb_all = self.cb_all
        for n, i in enumerate(ids):
            if self.pending.pop(i, _MISSING) is _MISSING:
                continue
            done += self.sub_weights.pop(i, 1)
            released.append(i)
            cbs.append(cb_all if cb_all is not None else self.callbacks.pop(i, None))
            released_codes.append(codes if isinstance(codes, int) else codes[n])
        self._notify(released, cbs, False, released_codes)
        if cb_all is not None and not self.pending and not self.buf_ids:
            self.cb_all = None
        if self.dups:
            done += self._release_dups(ids, False, codes)
        self.inflight -= done
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

    def _add_deadline(self, ids: Sequence[int]) -> None:
        """``ids`` are released with :data:`CONFIRM_TIMEOUT_CODE` unless confirmed in time."""
        if self.confirm_timeout is not None:
            self.deadlines.append((time.monotonic() + self.confirm_timeout, ids))

    # ------------------------------------------------------------------ async callbacks

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

    def _wake(self) -> None:
        w = self._waiter
        if w is not None:
            self._waiter = None
            if not w.done():
                w.set_result(None)


def compact(ids: list[int]) -> Sequence[int]:
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
