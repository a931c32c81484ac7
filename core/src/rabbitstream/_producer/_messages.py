"""Messages to bytes: what ``send`` and ``send_batch`` accept and how they are encoded.

A message is ``bytes`` or has ``__bytes__`` (``RawMessage``, ``AMQPMessage``); other bytes-likes
(``bytearray``, ``memoryview``) are copied.  A batch of messages of a class defining
``__rabbitstream_encode_batch__(messages) -> list[bytes]`` (the AMQP plugin's ``AMQPMessage``) is
encoded in one call instead of one ``bytes()`` each.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import repeat
from operator import attrgetter
from typing import Any, SupportsBytes, Union

__all__ = ["Message", "encode_batch", "to_bytes"]

Message = Union[bytes, SupportsBytes]  # noqa: UP007 - runtime alias on 3.10

_ONLY_BYTES = {bytes}
_INT_MESSAGE = "a message must be bytes or have __bytes__ (RawMessage, AMQPMessage), not int"
_TYPE_MESSAGE = (
    "message must be bytes, a bytes-like object or have __bytes__ (RawMessage, AMQPMessage), not {}"
)
_PUBLISHING_ID = attrgetter("publishing_id")


def to_bytes(message: Any) -> bytes:
    """``bytes(message)`` for a message without ``__bytes__`` (bytearray, memoryview, ...)."""
    if isinstance(message, int):
        raise TypeError(_INT_MESSAGE)  # bytes(n) would be n zero bytes
    if not hasattr(type(message), "__bytes__"):
        try:  # bytes-likes only: bytes([1, 2]), bytes({}) and bytes(str) are not messages
            message = memoryview(message)
        except TypeError:
            raise TypeError(_TYPE_MESSAGE.format(type(message).__name__)) from None
    return bytes(message)


def encode_batch(messages: Sequence[Message]) -> tuple[Sequence[bytes], list[Any] | None]:
    """Encoded ``messages`` and their ``publishing_id`` attributes (``None``: no message has one)."""
    t = type(messages[0])
    if t is bytes and set(map(type, messages)) == _ONLY_BYTES:
        return messages, None  # type: ignore[return-value]
    enc = getattr(t, "__rabbitstream_encode_batch__", None)
    if enc is None and any(issubclass(k, int) for k in set(map(type, messages))):
        raise TypeError(_INT_MESSAGE)  # before bytes(n) allocates n bytes
    bodies: list[bytes] = enc(messages) if enc is not None else list(map(to_bytes, messages))
    try:
        pids = list(map(_PUBLISHING_ID, messages))
    except AttributeError:  # some message without the attribute (bytes, ...)
        n = len(messages)
        pids = list(map(getattr, messages, repeat("publishing_id", n), repeat(None, n)))
    return bodies, pids
