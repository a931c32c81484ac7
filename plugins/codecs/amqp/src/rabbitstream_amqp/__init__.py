"""rabbitstream plugin: the AMQP 1.0 message codec (``amqp``).

Provides :class:`AMQPMessage`, :class:`Properties`, :class:`Header`,
:func:`amqp_decoder` (rstream-compatible: text as ``bytes``),
:func:`amqp_decoder_str` (text as ``str``) and typed wrappers for AMQP types that
plain Python values cannot express.  See ``docs/amqp.md``.
"""

from __future__ import annotations

from collections.abc import Sequence

from rabbitstream.plugin import MessageCodec, hookimpl

from rabbitstream_amqp._codec import AmqpCodec, amqp_decoder, amqp_decoder_str
from rabbitstream_amqp._decode import MAX_DEPTH, decode_value
from rabbitstream_amqp._encode import encode_value
from rabbitstream_amqp._message import AMQPMessage, Header, Properties
from rabbitstream_amqp._types import (
    AmqpDecodeError,
    Array,
    Byte,
    Char,
    Decimal32,
    Decimal64,
    Decimal128,
    Described,
    Float,
    Long,
    Short,
    Symbol,
    Timestamp,
    UByte,
    UInt,
    ULong,
    UShort,
)

__all__ = [
    "MAX_DEPTH",
    "AMQPMessage",
    "AmqpCodec",
    "AmqpDecodeError",
    "Array",
    "Byte",
    "Char",
    "Decimal32",
    "Decimal64",
    "Decimal128",
    "Described",
    "Float",
    "Header",
    "Long",
    "Properties",
    "Short",
    "Symbol",
    "Timestamp",
    "UByte",
    "UInt",
    "ULong",
    "UShort",
    "amqp_decoder",
    "amqp_decoder_str",
    "decode_value",
    "encode_value",
    "rabbitstream_message_codecs",
]


@hookimpl(trylast=True)
def rabbitstream_message_codecs() -> Sequence[MessageCodec]:
    """The ``amqp`` codec."""
    return [AmqpCodec()]
