"""The :class:`Subscription` of an observed consumer (an instrumentation plugin is installed).

Chosen once when the subscription is created (:func:`new_subscription`): a consumer without an
observer uses :class:`Subscription` itself, so its delivery path has no instrumentation code at all.
The subclass reports each chunk received (``on_chunk``), the records handed to the application
(``chunk_done``, callback and iteration modes alike) and lets the observer wrap the callback once
(process spans).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rabbitstream._consumer._sub import Subscription

if TYPE_CHECKING:
    from rabbitstream._consumer._types import SubscriptionOwner
    from rabbitstream.plugin import ConsumerObserver
    from rabbitstream.protocol._chunk import Chunk

__all__ = ["ObservedSubscription", "new_subscription"]


def new_subscription(
    observer: ConsumerObserver | None,
    consumer: SubscriptionOwner,
    subscriber_id: int,
    stream: str,
    **kw: Any,
) -> Subscription:
    """A :class:`Subscription` (keywords as its constructor's), observed unless ``observer`` is ``None``."""
    if observer is None:
        return Subscription(consumer, subscriber_id, stream, **kw)
    return ObservedSubscription(consumer, subscriber_id, stream, observer=observer, **kw)


class ObservedSubscription(Subscription):
    """A :class:`Subscription` reporting to a :class:`~rabbitstream.plugin.ConsumerObserver`."""

    __slots__ = ("observer",)

    def __init__(
        self,
        consumer: SubscriptionOwner,
        subscriber_id: int,
        stream: str,
        *,
        observer: ConsumerObserver,
        **kw: Any,
    ) -> None:
        super().__init__(consumer, subscriber_id, stream, **kw)
        self.observer = observer
        callback = self.callback
        if callback is not None:  # introspected (async, context used) before being wrapped
            self.callback = observer.wrap_callback(stream, callback, self.is_async)

    def on_chunk(self, gen: int, chunk: Chunk) -> None:
        """Report the chunk, then queue it."""
        if gen == self.gen and not self.closed:
            self.observer.chunk_received(self.stream, chunk.num_records, len(chunk.data))
        super().on_chunk(gen, chunk)

    def chunk_done(self, gen: int, last_offset: int, count: int) -> None:
        """Report the records handed over, then credit and track."""
        if count:
            self.observer.consumed(self.stream, count)
        super().chunk_done(gen, last_offset, count)
