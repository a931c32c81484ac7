"""The typed shapes that plugins return from their hooks.

Every hook returns plain objects satisfying one of these :class:`typing.Protocol`
classes; nothing here depends on pluggy.  They are resolved once, when a client is
built, into a :class:`~rabbitstream.plugin.Registry`; the hot path only does dict
look-ups on the registry.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "ClientInfo",
    "CompressionCodec",
    "ConsumerObserver",
    "Instrumentation",
    "MessageCodec",
    "PartitionRouter",
    "ProducerObserver",
    "SaslAuthenticator",
    "SuperStreamMetadata",
]


@runtime_checkable
class CompressionCodec(Protocol):
    """A sub-entry compression codec.

    ``code`` is the 3-bit wire code of the sub-entry header (1 gzip, 2 snappy,
    3 lz4, 4 zstd; 5-7 are free for experiments but RabbitMQ >= 4.3.5 rejects
    them), ``name`` a short unique id.
    """

    code: int
    name: str

    def compress(self, data: bytes) -> bytes:
        """Compress a whole sub-entry body.

        :param data: the concatenated ``[size:uint32, message]`` records.
        :return: the compressed bytes, in the framing the Java/Go clients use.
        """
        ...

    def decompress(self, data: bytes | memoryview, uncompressed_size: int) -> bytes:
        """Decompress a sub-entry body.

        Must never produce more than ``uncompressed_size`` bytes (the caller has
        already bounded it); raise :class:`ValueError` on corrupt input or on a
        size mismatch.

        :param data: the compressed body.
        :param uncompressed_size: the size declared in the sub-entry header.
        :return: exactly ``uncompressed_size`` bytes.
        """
        ...


@runtime_checkable
class MessageCodec(Protocol):
    """A message codec: how application messages become stream entries."""

    name: str

    def encode(self, message: Any) -> bytes:
        """Encode one message to the bytes stored in the stream."""
        ...

    def decode(self, data: bytes | memoryview) -> Any:
        """Decode the bytes of one stream entry."""
        ...


@runtime_checkable
class SaslAuthenticator(Protocol):
    """A SASL mechanism (``PLAIN``, ``EXTERNAL``, ...), chosen by ``name``."""

    name: str

    def initial_response(self, username: str, password: str) -> bytes | None:
        """The data of the first SaslAuthenticate (``None`` sends a null blob)."""
        ...

    def respond(self, challenge: bytes) -> bytes:
        """Answer a server challenge (code 0x0a); single-step mechanisms raise."""
        ...


class SuperStreamMetadata(Protocol):
    """What a routing strategy may ask about the super stream it routes into."""

    @property
    def super_stream(self) -> str:
        """The super stream's name."""
        ...

    def partitions(self) -> Sequence[str]:
        """The partitions, in the broker's ``Partitions`` order (cached)."""
        ...

    async def routes(self, routing_key: str) -> Sequence[str]:
        """The broker's ``Route`` answer for ``routing_key`` (cached per key)."""
        ...


@runtime_checkable
class PartitionRouter(Protocol):
    """Picks the partitions a message goes to, from its routing key.

    ``route`` may return the list directly (pure strategies such as hash, so the
    hot path awaits nothing) or an awaitable (strategies that ask the broker).
    """

    name: str

    def route(
        self, routing_key: str, metadata: SuperStreamMetadata
    ) -> Sequence[str] | Awaitable[Sequence[str]]:
        """Return the partition names (possibly empty) for ``routing_key``."""
        ...


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """Who an observer watches: one producer or consumer, as configured (never the password)."""

    #: ``"producer"`` or ``"consumer"``.
    kind: str
    host: str
    port: int
    vhost: str
    username: str
    connection_name: str


class _ConnectionObserver(Protocol):
    """What producer and consumer observers share: their connections and recoveries."""

    def connection_opened(self, host: str, port: int) -> None:
        """A connection (locator or data) of this client is open and authenticated."""
        ...

    def connection_closed(self, host: str, port: int, error: BaseException | None) -> None:
        """A connection of this client closed: ``error`` is ``None`` when the client closed it,
        else why it was lost."""
        ...

    def state_changed(self, change: Any) -> None:
        """A :class:`~rabbitstream.StateChange` of a publisher or subscription (disconnected,
        recovering, recovered, failed), as ``on_state_change`` listeners get it."""
        ...


@runtime_checkable
class ProducerObserver(_ConnectionObserver, Protocol):
    """Watches one producer; called synchronously on its publishing path (must not block)."""

    def prepare(self, stream: str, messages: list[Any]) -> list[Any]:
        """Called before ``messages`` are encoded (each ``send``, ``send_batch``, ``send_sub_entry``).

        :return: the messages to publish instead (e.g. copies carrying trace context), same length.
        """
        ...

    def published(self, stream: str, count: int) -> None:
        """``count`` messages were written (a flush of the ``send()`` buffer, a ``send_batch``, a
        sub-entry); they are in flight until confirmed or failed."""
        ...

    def confirmed(self, stream: str, count: int, latencies: Sequence[float]) -> None:
        """``count`` messages were confirmed (one confirm frame); ``latencies``: seconds from ``send``
        to this confirm, one per batch of messages written together (a flush of the ``send()`` buffer,
        timed from its first message; a ``send_batch``; a sub-entry) that the frame confirms."""
        ...

    def failed(self, stream: str, code: int, count: int) -> None:
        """``count`` messages were released unconfirmed with ``code`` (broker response code, or
        10003 closed, 10004 confirm time-out, -1 connection lost)."""
        ...


@runtime_checkable
class ConsumerObserver(_ConnectionObserver, Protocol):
    """Watches one consumer; called synchronously on its delivery path (must not block)."""

    def chunk_received(self, stream: str, records: int, size: int) -> None:
        """A chunk of ``records`` records and ``size`` bytes arrived from the broker."""
        ...

    def consumed(self, stream: str, count: int) -> None:
        """``count`` records were handed to the application (callback or iteration)."""
        ...

    def wrap_callback(
        self, stream: str, callback: Callable[[Any, Any], Any], is_async: bool
    ) -> Callable[[Any, Any], Any]:
        """Called once per subscription with a callback: the callable to call instead (same
        signature ``(message, context)``; a coroutine function when ``is_async``).  Return
        ``callback`` itself to add nothing per message."""
        ...


@runtime_checkable
class Instrumentation(Protocol):
    """Telemetry (metrics, tracing) for producers and consumers, e.g. ``rabbitstream-opentelemetry``.

    Asked once per producer or consumer, when it is created; ``None`` observes nothing.  When no
    instrumentation plugin is installed, nothing is called at all.
    """

    name: str

    def producer(self, info: ClientInfo) -> ProducerObserver | None:
        """The observer of a new producer (``None``: not observed)."""
        ...

    def consumer(self, info: ClientInfo) -> ConsumerObserver | None:
        """The observer of a new consumer (``None``: not observed)."""
        ...
