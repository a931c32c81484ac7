"""The sans-IO RabbitMQ Streams protocol: wire primitives, frames, the connection state machine.

Internal API (used by the client, the producer and consumer, and tests); not covered by
semantic versioning.  The chunk parser (``_chunk``), sub-entry codec (``_subentry``) and the
Publish fast path (``_publish``) live beside these modules.
"""

from __future__ import annotations

from rabbitstream.protocol._connection import (
    INITIAL_FRAME_MAX,
    ConnectionState,
    ConnectionTerminated,
    Event,
    HandshakeComplete,
    HandshakeFailed,
    ProtocolConnection,
    negotiate,
)
from rabbitstream.protocol._frames import *  # noqa: F403
from rabbitstream.protocol._frames import __all__ as _frames_all

__all__ = [
    "INITIAL_FRAME_MAX",
    "ConnectionState",
    "ConnectionTerminated",
    "Event",
    "HandshakeComplete",
    "HandshakeFailed",
    "ProtocolConnection",
    "negotiate",
    *_frames_all,
]
