"""The ``amqp`` message codec object and the rstream-compatible decoder functions."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from rabbitstream_amqp._decode_message import decode_message
from rabbitstream_amqp._encode_message import encode_message
from rabbitstream_amqp._message import AMQPMessage, Header, Properties

__all__ = ["AmqpCodec", "amqp_decoder", "amqp_decoder_str"]

_BODY_ONLY = (None, None, None, None, None)
_new = tuple.__new__


_BODY_VBIN8 = b"\x00\x53\x75\xa0"  # data section descriptor + vbin8 constructor


def amqp_decoder(data: bytes | bytearray | memoryview) -> AMQPMessage:
    """Decode one AMQP 1.0 message as rstream does: strings and symbols become ``bytes``.

    Timestamps are int milliseconds (:class:`Timestamp`); with several ``data``
    sections ``body`` is the last one and ``msg.data_sections`` holds them all.

    :raises AmqpDecodeError: (a :class:`TypeError` and a ``DecodeError``) on invalid data.
    """
    buf = data if type(data) is bytes else bytes(data)
    n = len(buf)
    # Fast path (copy of decode_message's, inlined): one data section, vbin8.
    if buf.startswith(_BODY_VBIN8) and n > 4 and buf[4] + 5 == n:
        return _new(AMQPMessage, (None, None, None, None, None, buf[5:], None, None, None))
    return decode_message(buf, False)


def amqp_decoder_str(data: bytes | bytearray | memoryview) -> AMQPMessage:
    """Like :func:`amqp_decoder`, but strings decode to ``str`` and symbols to :class:`Symbol`.

    Use it when the message must re-encode to the same AMQP types.
    """
    return decode_message(data, True)


class AmqpCodec:
    """The ``amqp`` message codec (registered by this plugin).

    ``encode`` accepts an :class:`AMQPMessage` (or anything with ``__bytes__`` that is
    already AMQP-encoded, such as rstream's ``AMQPMessage``), raw bytes-like (sent as
    one ``data`` section) or a ``str`` (sent as an ``amqp-value`` string, which AMQP
    1.0 clients read as text).  ``decode`` is :func:`amqp_decoder`.
    """

    name = "amqp"

    def __init__(self) -> None:
        #: Names ``rabbitstream.amqp`` resolves through the registry.
        self.exports: Mapping[str, object] = MappingProxyType(
            {
                "AMQPMessage": AMQPMessage,
                "Properties": Properties,
                "Header": Header,
                "amqp_decoder": amqp_decoder,
                "amqp_decoder_str": amqp_decoder_str,
            }
        )

    def encode(self, message: object) -> bytes:
        """Encode ``message`` to the bytes of one stream entry."""
        if isinstance(message, AMQPMessage):
            return encode_message(message, message._data_sections)
        if isinstance(message, (bytes, bytearray, memoryview)):
            return encode_message((*_BODY_ONLY, bytes(message), None, None, None))
        if isinstance(message, str):
            return encode_message((*_BODY_ONLY, None, None, message, None))
        to_bytes = getattr(type(message), "__bytes__", None)
        if to_bytes is not None:
            return bytes(to_bytes(message))
        raise TypeError(f"the amqp codec cannot encode a {type(message).__name__}")

    def decode(self, data: bytes | bytearray | memoryview) -> AMQPMessage:
        """Decode the bytes of one stream entry (strings and symbols as ``bytes``)."""
        return amqp_decoder(data)

    def __repr__(self) -> str:
        return "AmqpCodec()"
