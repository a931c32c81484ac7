"""AMQP 1.0 message sections → ``AMQPMessage``.

A body-only message (``00 53 75`` + vbin8/vbin32 filling the data) is recognised
before the section parser runs; everything else goes through the same bounded
value readers as :func:`decode_value`.
"""

from __future__ import annotations

import struct
from typing import Any

from rabbitstream_amqp._decode import _I, _TABLE_BYTES, _TABLE_STR, _Reader, _truncated
from rabbitstream_amqp._message import AMQPMessage, Header, Properties
from rabbitstream_amqp._types import AmqpDecodeError

__all__ = ["decode_message"]

_tuple_new = tuple.__new__

_SECTION_NAMES = {
    b"amqp:header:list": 0x70,
    b"amqp:delivery-annotations:map": 0x71,
    b"amqp:message-annotations:map": 0x72,
    b"amqp:properties:list": 0x73,
    b"amqp:application-properties:map": 0x74,
    b"amqp:data:binary": 0x75,
    b"amqp:amqp-sequence:list": 0x76,
    b"amqp:amqp-value:*": 0x77,
    b"amqp:footer:map": 0x78,
}
_NONE9 = (None,) * 9
_PAD = [(None,) * k for k in range(14)]


def _section_code(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """Read a section descriptor at ``pos`` (after ``0x00``): (code, position of the value)."""
    c = buf[pos] if pos < end else -1
    if c == 0x53 and pos + 1 < end:
        code = buf[pos + 1]
        if not 0x70 <= code <= 0x78:
            raise AmqpDecodeError(f"not an AMQP message section descriptor: 0x{code:02x}", pos)
        return code, pos + 2
    if c == -1:
        raise _truncated(pos)
    descriptor, p = _TABLE_BYTES[c](buf, pos + 1, end, 1)
    if type(descriptor) is bytes:
        code = _SECTION_NAMES.get(descriptor, -1)
    elif isinstance(descriptor, int) and not isinstance(descriptor, bool):
        code = int(descriptor) if 0x70 <= descriptor <= 0x78 else -1
    else:
        code = -1
    if code < 0:
        raise AmqpDecodeError(f"not an AMQP message section descriptor: {descriptor!r}", pos)
    return code, p


def _fit(value: Any, n: int, code: int, pos: int) -> list[Any]:
    """The fields of a header/properties list, padded with ``None`` or cut to ``n``."""
    if value is None:
        return [None] * n
    if type(value) is not list:
        raise AmqpDecodeError(f"section 0x{code:02x} must be a list", pos)
    k = len(value)
    if k < n:
        value += _PAD[n - k]
    elif k > n:
        del value[n:]
    return value


def _sections(buf: bytes, table: list[_Reader]) -> AMQPMessage:
    end = len(buf)
    fields: list[Any] = list(_NONE9)
    data: list[bytes] | None = None
    seq: list[Any] | None = None
    pos = 0
    while pos < end:
        if buf[pos] != 0x00:
            raise AmqpDecodeError(f"expected a message section (0x00), got 0x{buf[pos]:02x}", pos)
        if pos + 3 < end and buf[pos + 1] == 0x53 and 0x70 <= buf[pos + 2] <= 0x78:
            code = buf[pos + 2]
            pos += 3
        else:
            code, pos = _section_code(buf, pos + 1, end)
            if pos >= end:
                raise _truncated(pos)
        c = buf[pos]
        if code == 0x75:
            if c != 0xA0 and c != 0xB0:
                raise AmqpDecodeError(f"data section holds constructor 0x{c:02x}, not binary", pos)
            value, pos = table[c](buf, pos + 1, end, 1)
            if data is None:
                data = [value]
            else:
                data.append(value)
            continue
        value, pos = table[c](buf, pos + 1, end, 1)
        if code == 0x73:
            fields[3] = _tuple_new(Properties, _fit(value, 13, code, pos))
        elif code == 0x74:
            if value is not None and type(value) is not dict:
                raise AmqpDecodeError("application-properties section must be a map", pos)
            fields[4] = value
        elif code == 0x70:
            fields[0] = _tuple_new(Header, _fit(value, 5, code, pos))
        elif code == 0x76:
            if seq is None:
                seq = [value]
            else:
                seq.append(value)
        elif code == 0x77:
            fields[7] = value
        else:
            if value is not None and type(value) is not dict:
                raise AmqpDecodeError(f"section 0x{code:02x} must be a map", pos)
            fields[(0, 1, 2, 0, 4, 0, 0, 0, 8)[code - 0x70]] = value
    fields[6] = seq
    msg: AMQPMessage
    if data is not None:
        fields[5] = data[-1]
        msg = _tuple_new(AMQPMessage, fields)
        if len(data) > 1:
            msg._data_sections = data
    else:
        msg = _tuple_new(AMQPMessage, fields)
    return msg


def decode_message(data: bytes | bytearray | memoryview, text: bool = False) -> AMQPMessage:
    """Decode the AMQP 1.0 sections of one message.

    :param text: decode strings and symbols to ``str``/:class:`Symbol` instead of ``bytes``.
    :raises AmqpDecodeError: the data is not a valid AMQP message.
    """
    buf = data if type(data) is bytes else bytes(data)
    n = len(buf)
    # Fast path: one data section and nothing else: 00 53 75 a0 <n> | b0 <n:4>.
    if n > 4 and buf[2] == 0x75 and buf[1] == 0x53 and buf[0] == 0:
        c = buf[3]
        if c == 0xA0:
            if buf[4] + 5 == n:
                return _tuple_new(AMQPMessage, (None, None, None, None, None, buf[5:], None, None, None))
        elif c == 0xB0 and n >= 8 and _I.unpack_from(buf, 4)[0] + 8 == n:
            return _tuple_new(AMQPMessage, (None, None, None, None, None, buf[8:], None, None, None))
    try:
        return _sections(buf, _TABLE_STR if text else _TABLE_BYTES)
    except AmqpDecodeError:
        raise
    except (UnicodeDecodeError, ValueError, struct.error, IndexError, RecursionError) as exc:
        raise AmqpDecodeError(f"invalid AMQP message: {exc}") from None
