"""The consumer subsystem (consume path: socket -> chunk -> message -> callback).

- :mod:`._consumer`: :class:`Consumer`, the rstream-compatible API;
- :mod:`._events`: consumer updates (single active consumer), metadata updates and recovery;
- :mod:`._sub`: :class:`Subscription`, one subscription id's credit, delivery and offsets;
- :mod:`._iter`: ``async for`` over messages or batches;
- :mod:`._types`: values handed to users (:class:`MessageContext`, :class:`MessageBatch`, ...).
"""

from __future__ import annotations

from rabbitstream._consumer._consumer import Consumer
from rabbitstream._consumer._types import (
    CreditPolicy,
    EventContext,
    MessageBatch,
    MessageContext,
    OffsetTracking,
)

__all__ = ["Consumer", "CreditPolicy", "EventContext", "MessageBatch", "MessageContext", "OffsetTracking"]
