"""rabbitstream plugin: the ``binary`` message codec (bytes in, bytes out, no framing).

The stream entry is exactly the message's bytes, as rstream sends a ``bytes``
message or a ``RawMessage``: such entries are not readable as AMQP 1.0 by other
protocols' clients.
"""

from __future__ import annotations

from collections.abc import Sequence

from rabbitstream.plugin import MessageCodec, hookimpl

__all__ = ["BinaryCodec", "rabbitstream_message_codecs"]


class BinaryCodec:
    """``encode``: bytes-like or an object with ``__bytes__`` → ``bytes``; ``decode`` → ``bytes``."""

    name = "binary"

    def encode(self, message: object) -> bytes:
        """The entry bytes of ``message``.

        :raises TypeError: ``message`` is neither bytes-like nor has ``__bytes__``
            (a ``str`` must be encoded by the caller).
        """
        if type(message) is bytes:
            return message
        if isinstance(message, (bytes, bytearray, memoryview)):
            return bytes(message)
        if isinstance(message, str):
            raise TypeError("the binary codec takes bytes, not str; encode the text first")
        to_bytes = getattr(type(message), "__bytes__", None)
        if to_bytes is None:
            raise TypeError(f"the binary codec cannot encode a {type(message).__name__}")
        result = to_bytes(message)
        if not isinstance(result, bytes):
            raise TypeError(f"{type(message).__name__}.__bytes__ returned {type(result).__name__}")
        return result

    def decode(self, data: bytes | bytearray | memoryview) -> bytes:
        """The entry bytes, unchanged (copied out of a ``memoryview``)."""
        return data if type(data) is bytes else bytes(data)

    def __repr__(self) -> str:
        return "BinaryCodec()"


@hookimpl(trylast=True)
def rabbitstream_message_codecs() -> Sequence[MessageCodec]:
    """The ``binary`` codec."""
    return [BinaryCodec()]
