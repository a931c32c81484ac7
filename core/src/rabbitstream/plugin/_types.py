"""The typed shapes that plugins return from their hooks.

Every hook returns plain objects satisfying one of these :class:`typing.Protocol`
classes; nothing here depends on pluggy.  They are resolved once, when a client is
built, into a :class:`~rabbitstream.plugin.Registry`; the hot path only does dict
look-ups on the registry.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "CompressionCodec",
    "MessageCodec",
    "PartitionRouter",
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
