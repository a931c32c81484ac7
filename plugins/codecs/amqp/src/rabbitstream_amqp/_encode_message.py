"""AMQP 1.0 message sections → bytes.

Pre-encoded section prefixes, per-field writers for header and properties, cached
encodings of map keys, and a fast path for a message that is only a body: never
a generic schema walk.
"""

from __future__ import annotations

import datetime as _dt
import struct
from collections.abc import Callable, Mapping
from typing import Any

from rabbitstream_amqp._encode import (
    _CBB,
    _CI,
    _CII,
    _ENC,
    _Cq,
    _resolve,
    _utf8,
    _w_binary,
    _w_datetime,
    _w_string_bytes,
    _w_symbol,
    _w_uint,
    _w_ulong,
    _Writer,
    encode_value,
)
from rabbitstream_amqp._types import Timestamp, UByte, UInt, ULong

__all__ = ["encode_message"]

#: ``data`` section prefix for a body of ``n`` < 256 bytes: ``00 53 75 a0 n``.
_DATA8 = [b"\x00\x53\x75" + bytes((0xA0, n)) for n in range(256)]
_DATA32 = b"\x00\x53\x75"
_SECTION_HEADER = b"\x00\x53\x70"
_SECTION_DELIVERY_ANN = b"\x00\x53\x71"
_SECTION_MESSAGE_ANN = b"\x00\x53\x72"
_SECTION_PROPERTIES = b"\x00\x53\x73"
_SECTION_APP_PROPS = b"\x00\x53\x74"
_SECTION_SEQUENCE = b"\x00\x53\x76"
_SECTION_VALUE = b"\x00\x53\x77"
_SECTION_FOOTER = b"\x00\x53\x78"
_CACHE_MAX = 4096

_SYM_CACHE: dict[object, bytes] = {}
_STR_CACHE: dict[object, bytes] = {}


def _sym_key(k: Any) -> bytes:
    """Encoded annotation key (``int`` → ulong, text → symbol); text keys are cached."""
    t = type(k)
    if t is str or t is bytes:
        b = _SYM_CACHE.get(k)
        if b is None:
            out = bytearray()
            _w_symbol(out, k)
            b = bytes(out)
            if len(_SYM_CACHE) >= _CACHE_MAX:
                _SYM_CACHE.clear()
            _SYM_CACHE[k] = b
        return b
    out = bytearray()
    if (t is int or t is ULong) and 0 <= k < (1 << 64):
        _w_ulong(out, k)
    elif t is bytearray:
        _w_symbol(out, bytes(k))
    else:
        encode_value(out, k)
    return bytes(out)


def _str_key(k: Any) -> bytes:
    """Encoded application-properties key (text → string); text keys are cached."""
    t = type(k)
    if t is str or t is bytes:
        b = _STR_CACHE.get(k)
        if b is None:
            out = bytearray()
            _w_string_bytes(out, _utf8(k))
            b = bytes(out)
            if len(_STR_CACHE) >= _CACHE_MAX:
                _STR_CACHE.clear()
            _STR_CACHE[k] = b
        return b
    out = bytearray()
    if isinstance(k, (bytes, bytearray)):
        _w_string_bytes(out, bytes(k))
    else:
        encode_value(out, k)
    return bytes(out)


def _w_keyed_map(out: bytearray, prefix: bytes, v: Mapping[Any, Any], key: Callable[[object], bytes]) -> None:
    body = bytearray()
    enc = _ENC
    for k, item in v.items():
        body += key(k)
        w = enc.get(type(item))
        if w is None:
            w = _resolve(type(item))
        w(body, item)
    size = len(body)
    count = len(v) * 2
    out += prefix
    if size < 255 and count < 256:
        out += _CBB.pack(0xC1, size + 1, count)
    else:
        out += _CII.pack(0xD1, size + 4, count)
    out += body


# Header/properties fields: written with their declared AMQP type when the value
# fits it; anything else (e.g. foreign data decoded from another client) as is.
def _f_string(out: bytearray, v: Any) -> None:
    if type(v) is str:
        _w_string_bytes(out, v.encode())
    elif isinstance(v, (bytes, bytearray, memoryview)):
        _w_string_bytes(out, bytes(v))
    else:
        encode_value(out, v)


def _f_binary(out: bytearray, v: Any) -> None:
    if isinstance(v, (bytes, bytearray, memoryview)):
        _w_binary(out, v)
    elif type(v) is str:
        _w_binary(out, v.encode())
    else:
        encode_value(out, v)


def _f_symbol(out: bytearray, v: Any) -> None:
    t = type(v)
    if t is str or t is bytes:
        out += _sym_key(v)
    elif isinstance(v, (str, bytes, bytearray)):
        _w_symbol(out, _utf8(v))
    else:
        encode_value(out, v)


def _f_message_id(out: bytearray, v: Any) -> None:
    t = type(v)
    if t is str:
        _w_string_bytes(out, v.encode())
    elif t is int and v >= 0:
        _w_ulong(out, v)
    else:
        encode_value(out, v)


def _f_timestamp(out: bytearray, v: Any) -> None:
    t = type(v)
    if t is int or t is Timestamp:
        out += _Cq.pack(0x83, v)
    elif t is _dt.datetime:
        _w_datetime(out, v)
    else:
        encode_value(out, v)


def _f_bool(out: bytearray, v: Any) -> None:
    if type(v) is bool:
        out.append(0x41 if v else 0x42)
    else:
        encode_value(out, v)


def _f_ubyte(out: bytearray, v: Any) -> None:
    if (type(v) is int or type(v) is UByte) and 0 <= v <= 0xFF:
        out.append(0x50)
        out.append(v)
    else:
        encode_value(out, v)


def _f_uint(out: bytearray, v: Any) -> None:
    if (type(v) is int or type(v) is UInt) and 0 <= v <= 0xFFFFFFFF:
        _w_uint(out, v)
    else:
        encode_value(out, v)


_HEADER_FIELDS: tuple[_Writer, ...] = (_f_bool, _f_ubyte, _f_uint, _f_bool, _f_uint)
_PROPERTY_FIELDS: tuple[_Writer, ...] = (
    _f_message_id,  # message-id
    _f_binary,  # user-id
    _f_string,  # to
    _f_string,  # subject
    _f_string,  # reply-to
    _f_message_id,  # correlation-id
    _f_symbol,  # content-type
    _f_symbol,  # content-encoding
    _f_timestamp,  # absolute-expiry-time
    _f_timestamp,  # creation-time
    _f_string,  # group-id
    _f_uint,  # group-sequence
    _f_string,  # reply-to-group-id
)


def _w_fields(out: bytearray, prefix: bytes, values: tuple[Any, ...], writers: tuple[_Writer, ...]) -> None:
    """A described list section with typed fields; trailing nulls are left out."""
    n = len(values)
    while n and values[n - 1] is None:
        n -= 1
    out += prefix
    if n == 0:
        out.append(0x45)
        return
    body = bytearray()
    for i in range(n):
        v = values[i]
        if v is None:
            body.append(0x40)
        else:
            writers[i](body, v)
    size = len(body)
    if size < 255:
        out += _CBB.pack(0xC0, size + 1, n)
    else:
        out += _CII.pack(0xD0, size + 4, n)
    out += body


def _w_data(out: bytearray, body: Any) -> None:
    if isinstance(body, str):
        body = body.encode()
    elif isinstance(body, (list, tuple)):
        for part in body:
            _w_data(out, part)
        return
    elif not isinstance(body, (bytes, bytearray, memoryview)):
        raise TypeError(f"AMQPMessage.body must be bytes-like or str, not {type(body).__name__}")
    n = len(body) if type(body) is not memoryview else body.nbytes
    if n < 256:
        out += _DATA8[n]
    else:
        out += _DATA32
        out += _CI.pack(0xB0, n)
    out += body


def encode_message(msg: tuple[Any, ...], data_sections: list[bytes] | None = None) -> bytes:
    """Encode the nine message fields (``AMQPMessage`` order) as AMQP 1.0 sections.

    :param msg: ``(header, delivery_annotations, message_annotations, properties,
        application_properties, body, sequence, value, footer)``.
    :param data_sections: several ``data`` sections to write instead of ``body``.
    """
    header, da, ma, props, ap, body, seq, value, footer = msg
    if (
        type(body) is bytes
        and data_sections is None
        and header is None
        and da is None
        and ma is None
        and props is None
        and ap is None
        and seq is None
        and value is None
        and footer is None
    ):
        n = len(body)
        if n < 256:
            return _DATA8[n] + body
        return _DATA32 + _CI.pack(0xB0, n) + body
    out = bytearray()
    try:
        if header is not None:
            _w_fields(out, _SECTION_HEADER, tuple(header), _HEADER_FIELDS)
        if da is not None:
            _w_keyed_map(out, _SECTION_DELIVERY_ANN, da, _sym_key)
        if ma is not None:
            _w_keyed_map(out, _SECTION_MESSAGE_ANN, ma, _sym_key)
        if props is not None:
            _w_fields(out, _SECTION_PROPERTIES, tuple(props), _PROPERTY_FIELDS)
        if ap is not None:
            _w_keyed_map(out, _SECTION_APP_PROPS, ap, _str_key)
        if data_sections is not None:
            for part in data_sections:
                _w_data(out, part)
        elif body is not None:
            _w_data(out, body)
        if seq is not None:
            for section in seq:  # each item is one amqp-sequence section (a list)
                out += _SECTION_SEQUENCE
                encode_value(out, section)  # a non-list is written as is, like rstream does
        if value is not None:
            out += _SECTION_VALUE
            encode_value(out, value)
        if footer is not None:
            _w_keyed_map(out, _SECTION_FOOTER, footer, _sym_key)
    except struct.error as exc:
        raise ValueError(f"value out of range for its AMQP type: {exc}") from None
    return bytes(out)
