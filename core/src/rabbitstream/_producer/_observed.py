"""The :class:`Publisher` of an observed producer (an instrumentation plugin is installed).

A subclass, chosen once when the publisher is created (:func:`new_publisher`): a producer without
an observer uses :class:`Publisher` itself, so its publishing path has no instrumentation code at
all.  The subclass wraps the entry points (add, add_batch, add_sub_entry) and the exits (confirm,
failure) of the in-flight window; what was confirmed or released is read from the change of
``inflight``, so the base class keeps its bookkeeping to itself.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from itertools import repeat
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec

from rabbitstream._producer._publisher import ConfirmCallback, Message, Publisher

if TYPE_CHECKING:
    from rabbitstream.plugin import ProducerObserver

__all__ = ["ObservedPublisher", "new_publisher"]

_monotonic = time.monotonic
_add = Publisher.add
_P = ParamSpec("_P")


class ObservedPublisher(Publisher):
    """A :class:`Publisher` reporting to a :class:`~rabbitstream.plugin.ProducerObserver`.

    Per message only ``prepare`` is called (tracing); counts and latencies are reported per batch of
    messages written together (a flush of the ``send()`` buffer, a ``send_batch``, a sub-entry) and
    per confirm frame, so that a metrics SDK records a few values per batch, not per message.
    """

    __slots__ = ("_t0", "observer", "sent_at")

    def __init__(self, observer: ProducerObserver, /, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.observer = observer
        #: publishing id -> time.monotonic() of the send() of the first message of its batch
        self.sent_at: dict[int, float] = {}
        self._t0 = 0.0

    def add(self, message: Message, callback: ConfirmCallback | None, filter_value: str | None) -> None:
        """Trace-context and buffer one message (counted when its batch is flushed)."""
        (message,) = self.observer.prepare(self.stream, [message])
        if not self.buf_ids:
            self._t0 = _monotonic()
        _add(self, message, callback, filter_value)

    def flush(self) -> None:
        """Count the buffered batch and note its send time, then flush it."""
        ids = self.buf_ids
        if ids:
            self.sent_at.update(zip(ids, repeat(self._t0)))
            self.observer.published(self.stream, len(ids))
        super().flush()

    def add_batch(
        self,
        messages: Sequence[Message],
        callback: ConfirmCallback | None,
        filters: list[str | None] | None,
    ) -> list[int]:
        """Trace-context, write and count a batch."""
        obs = self.observer
        messages = obs.prepare(self.stream, list(messages))
        self.flush()
        now = _monotonic()
        ids = super().add_batch(messages, callback, filters)
        self.sent_at.update(zip(ids, repeat(now)))
        obs.published(self.stream, len(ids))
        return ids

    def add_sub_entry(
        self, entry: bytes, count: int, last_id: int | None, callback: ConfirmCallback | None
    ) -> int:
        """Write and count one sub-entry batch (its messages were prepared by the producer)."""
        self.flush()
        now = _monotonic()
        pid = super().add_sub_entry(entry, count, last_id, callback)
        self.sent_at[pid] = now
        self.observer.published(self.stream, count)
        return pid

    def on_confirm(self, ids: Sequence[int]) -> None:
        """Confirm, then report the count and one latency per batch confirmed in this frame."""
        before = self.inflight
        super().on_confirm(ids)
        done = before - self.inflight
        sent = set(map(self.sent_at.pop, ids, repeat(-1.0)))
        sent.discard(-1.0)
        if done or sent:
            now = _monotonic()
            self.observer.confirmed(self.stream, done, [now - t for t in sorted(sent)])

    def fail_ids(self, ids: Sequence[int], codes: Sequence[int] | int) -> None:
        """Release, then report the released messages by code."""
        pending, weights, sent_at = self.pending, self.sub_weights, self.sent_at
        by_code: Counter[int] = Counter()
        for n, i in enumerate(ids):
            if i in pending:
                by_code[codes if isinstance(codes, int) else codes[n]] += weights.get(i, 1)
            sent_at.pop(i, None)
        super().fail_ids(ids, codes)
        for code, count in by_code.items():
            self.observer.failed(self.stream, code, count)


def _observable(
    publisher: Callable[_P, Publisher],
) -> Callable[Concatenate[ProducerObserver | None, _P], Publisher]:
    """``publisher``'s constructor with an observer first: the options are spelt once, by ``Publisher``."""

    def new_publisher(observer: ProducerObserver | None, /, *args: _P.args, **kwargs: _P.kwargs) -> Publisher:
        """A :class:`Publisher`, observed by ``observer`` unless it is ``None``."""
        if observer is None:
            return publisher(*args, **kwargs)
        return ObservedPublisher(observer, *args, **kwargs)

    return new_publisher


new_publisher = _observable(Publisher)
