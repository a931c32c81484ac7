"""rabbitstream: a fast asyncio client for RabbitMQ Streams."""

from __future__ import annotations

__version__ = "0.1.0"
