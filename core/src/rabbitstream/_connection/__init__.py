"""The connection subsystem: one broker connection and what keeps it alive.

- :mod:`._transport`: :class:`StreamProtocol`, the ``asyncio.Protocol`` that feeds the sans-IO
  :mod:`rabbitstream.protocol` state machine and writes its frames to the socket;
- :mod:`._client`: :class:`Client`, one connection opened and authenticated (the rstream ``Client``),
  its commands split by job: :mod:`._rpc` (state, close, request/response), :mod:`._streams`
  (stream management), :mod:`._pubsub` (publish and consume);
- :mod:`._credentials`: :class:`CredentialsProvider`, a password that refreshes itself (OAuth 2.0
  tokens); every connection opened with one re-authenticates in place on each refresh;
- :mod:`._locator`: finding the node that hosts a stream (leader for producers, replica for
  consumers) through a locator connection, and the :class:`StateChange` events;
- :mod:`._pool`, :mod:`._recovery`, :mod:`._observe`: the connection options, the locator and data
  connections, the one recovery loop and the instrumentation hooks of a producer or consumer, wired
  once for both by :class:`~rabbitstream._connection._owner.ConnectionOwner` (:mod:`._owner`).
"""

from __future__ import annotations

from rabbitstream._connection._client import Client, StreamMetadata
from rabbitstream._connection._credentials import CredentialsProvider
from rabbitstream._connection._locator import DISCONNECTED, FAILED, RECOVERED, RECOVERING, StateChange

__all__ = [
    "DISCONNECTED",
    "FAILED",
    "RECOVERED",
    "RECOVERING",
    "Client",
    "CredentialsProvider",
    "StateChange",
    "StreamMetadata",
]
