"""The producer subsystem (publish path: message -> Publish frame -> socket).

- :mod:`._producer`: :class:`Producer`, the rstream-compatible API;
- :mod:`._base`: per-stream publishers on their leader connections, recovery and close;
- :mod:`._observed`: the :class:`Publisher` subclass chosen when an instrumentation plugin is installed;
- :mod:`._publisher`: :class:`Publisher`, one publisher id's buffer, batching and frames;
- :mod:`._messages`: messages to ``bytes`` (one call per batch for ``AMQPMessage``);
- :mod:`._confirms`: the in-flight window: unconfirmed messages, their callbacks, confirms,
  errors and time-outs.
"""

from __future__ import annotations

from rabbitstream._producer._base import EnqueueTimeoutError, ProducerClosedError
from rabbitstream._producer._producer import Producer

__all__ = ["EnqueueTimeoutError", "Producer", "ProducerClosedError"]
