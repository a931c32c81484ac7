"""The producer subsystem (publish path: message -> Publish frame -> socket).

- :mod:`._producer`: :class:`Producer`, the rstream-compatible API;
- :mod:`._base`: per-stream publishers on their leader connections, recovery and close;
- :mod:`._publisher`: :class:`Publisher`, one publisher id's window, batching and confirms.
"""

from __future__ import annotations

from rabbitstream._producer._base import EnqueueTimeoutError, ProducerClosedError
from rabbitstream._producer._producer import Producer

__all__ = ["EnqueueTimeoutError", "Producer", "ProducerClosedError"]
