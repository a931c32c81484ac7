"""The super stream subsystem: one producer or consumer per partition, routed by key.

- :mod:`._producer`: :class:`SuperStreamProducer` (routing through the routing plugins);
- :mod:`._consumer`: :class:`SuperStreamConsumer`.
"""

from __future__ import annotations

from rabbitstream._superstream._consumer import SuperStreamConsumer
from rabbitstream._superstream._producer import SuperStreamProducer

__all__ = ["SuperStreamConsumer", "SuperStreamProducer"]
