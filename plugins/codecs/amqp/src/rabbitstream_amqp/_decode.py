"""AMQP 1.0 decoder: bytes → Python values.

One reader function per constructor byte, in a 256-entry table (two tables: text
as ``bytes`` like rstream, or as ``str``).  Every length and count is checked
against the bytes that remain before anything is sliced or allocated, compound
sizes must match their content, nesting is limited to :data:`MAX_DEPTH`: hostile
input costs at most linear work and a bounded amount of memory, and ends in
:class:`AmqpDecodeError`.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Callable
from typing import Any

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
    "decode_value",
]

#: Deepest nesting of lists, maps, arrays and described values accepted.
MAX_DEPTH = 64
#: Most elements accepted in an array whose elements take no bytes (null, true, ...).
MAX_ZERO_WIDTH_ARRAY = 65536
#: Zero-width elements an array may hold per byte of its own encoding (constructor, size,
#: count and element constructor included): shared values (None, True, 0) cost one 8-byte
#: list slot each, so at most 512 bytes of output per input byte...
ZERO_WIDTH_PER_BYTE = 64
#: ...and elements that are new objects (empty lists, described values) 8 per byte.
ZERO_WIDTH_NEW_PER_BYTE = 8

_Reader = Callable[[bytes, int, int, int], tuple[Any, int]]

_B = struct.Struct(">B")
_H = struct.Struct(">H")
_h = struct.Struct(">h")
_I = struct.Struct(">I")
_i = struct.Struct(">i")
_Q = struct.Struct(">Q")
_q = struct.Struct(">q")
_f = struct.Struct(">f")
_d = struct.Struct(">d")
_II = struct.Struct(">II")
_b = struct.Struct(">b")

_int_new = int.__new__
_str_new = str.__new__
_float_new = float.__new__
_bytes_new = bytes.__new__
_tuple_new = tuple.__new__


def _truncated(pos: int) -> AmqpDecodeError:
    return AmqpDecodeError("truncated AMQP data", pos)


# --------------------------------------------------------------------------- fixed width
def _fixed(st: struct.Struct, wrap: type | None) -> _Reader:
    size = st.size
    unpack = st.unpack_from
    if wrap is None:

        def read(buf: bytes, pos: int, end: int, depth: int) -> tuple[Any, int]:
            e = pos + size
            if e > end:
                raise _truncated(pos)
            return unpack(buf, pos)[0], e

    else:
        new = float.__new__ if issubclass(wrap, float) else int.__new__

        def read(buf: bytes, pos: int, end: int, depth: int) -> tuple[Any, int]:
            e = pos + size
            if e > end:
                raise _truncated(pos)
            return new(wrap, unpack(buf, pos)[0]), e

    return read


def _const(value: Any) -> _Reader:
    def read(buf: bytes, pos: int, end: int, depth: int) -> tuple[Any, int]:
        return value, pos

    return read


def _r_bool(buf: bytes, pos: int, end: int, depth: int) -> tuple[Any, int]:
    if pos >= end:
        raise _truncated(pos)
    b = buf[pos]
    if b > 1:
        raise AmqpDecodeError(f"invalid boolean byte 0x{b:02x}", pos)
    return b == 1, pos + 1


def _r_small(wrap: type) -> _Reader:
    def read(buf: bytes, pos: int, end: int, depth: int) -> tuple[Any, int]:
        if pos >= end:
            raise _truncated(pos)
        return _int_new(wrap, buf[pos]), pos + 1

    return read


def _r_smallint(buf: bytes, pos: int, end: int, depth: int) -> tuple[Any, int]:
    if pos >= end:
        raise _truncated(pos)
    b = buf[pos]
    return (b - 256 if b > 127 else b), pos + 1


def _r_smalllong(buf: bytes, pos: int, end: int, depth: int) -> tuple[Any, int]:
    if pos >= end:
        raise _truncated(pos)
    b = buf[pos]
    return _int_new(Long, b - 256 if b > 127 else b), pos + 1


def _r_char(buf: bytes, pos: int, end: int, depth: int) -> tuple[Any, int]:
    e = pos + 4
    if e > end:
        raise _truncated(pos)
    cp = _I.unpack_from(buf, pos)[0]
    if cp > 0x10FFFF:
        raise AmqpDecodeError(f"invalid char code point {cp:#x}", pos)
    return _str_new(Char, chr(cp)), e


def _r_raw(size: int, wrap: type) -> _Reader:
    def read(buf: bytes, pos: int, end: int, depth: int) -> tuple[Any, int]:
        e = pos + size
        if e > end:
            raise _truncated(pos)
        return _bytes_new(wrap, buf[pos:e]), e

    return read


def _r_uuid(buf: bytes, pos: int, end: int, depth: int) -> tuple[Any, int]:
    e = pos + 16
    if e > end:
        raise _truncated(pos)
    return uuid.UUID(bytes=buf[pos:e]), e


# --------------------------------------------------------------------------- variable width
def _r_vbin8(buf: bytes, pos: int, end: int, depth: int) -> tuple[Any, int]:
    if pos >= end:
        raise _truncated(pos)
    e = pos + 1 + buf[pos]
    if e > end:
        raise _truncated(pos)
    return buf[pos + 1 : e], e


def _r_vbin32(buf: bytes, pos: int, end: int, depth: int) -> tuple[Any, int]:
    if pos + 4 > end:
        raise _truncated(pos)
    e = pos + 4 + _I.unpack_from(buf, pos)[0]
    if e > end:
        raise _truncated(pos)
    return buf[pos + 4 : e], e


def _r_str8(buf: bytes, pos: int, end: int, depth: int) -> tuple[Any, int]:
    if pos >= end:
        raise _truncated(pos)
    e = pos + 1 + buf[pos]
    if e > end:
        raise _truncated(pos)
    return buf[pos + 1 : e].decode(), e


def _r_str32(buf: bytes, pos: int, end: int, depth: int) -> tuple[Any, int]:
    if pos + 4 > end:
        raise _truncated(pos)
    e = pos + 4 + _I.unpack_from(buf, pos)[0]
    if e > end:
        raise _truncated(pos)
    return buf[pos + 4 : e].decode(), e


def _r_sym8(buf: bytes, pos: int, end: int, depth: int) -> tuple[Any, int]:
    if pos >= end:
        raise _truncated(pos)
    e = pos + 1 + buf[pos]
    if e > end:
        raise _truncated(pos)
    return _str_new(Symbol, buf[pos + 1 : e].decode()), e


def _r_sym32(buf: bytes, pos: int, end: int, depth: int) -> tuple[Any, int]:
    if pos + 4 > end:
        raise _truncated(pos)
    e = pos + 4 + _I.unpack_from(buf, pos)[0]
    if e > end:
        raise _truncated(pos)
    return _str_new(Symbol, buf[pos + 4 : e].decode()), e


_SCALARS: dict[int, _Reader] = {
    0x40: _const(None),
    0x41: _const(True),
    0x42: _const(False),
    0x56: _r_bool,
    0x50: _r_small(UByte),
    0x60: _fixed(_H, UShort),
    0x70: _fixed(_I, UInt),
    0x52: _r_small(UInt),
    0x43: _const(_int_new(UInt, 0)),
    0x80: _fixed(_Q, ULong),
    0x53: _r_small(ULong),
    0x44: _const(_int_new(ULong, 0)),
    0x51: _fixed(_b, Byte),
    0x61: _fixed(_h, Short),
    0x71: _fixed(_i, None),
    0x54: _r_smallint,
    0x81: _fixed(_q, Long),
    0x55: _r_smalllong,
    0x72: _fixed(_f, Float),
    0x82: _fixed(_d, None),
    0x74: _r_raw(4, Decimal32),
    0x84: _r_raw(8, Decimal64),
    0x94: _r_raw(16, Decimal128),
    0x73: _r_char,
    0x83: _fixed(_q, Timestamp),
    0x98: _r_uuid,
    0xA0: _r_vbin8,
    0xB0: _r_vbin32,
}
_TEXT_AS_STR: dict[int, _Reader] = {0xA1: _r_str8, 0xB1: _r_str32, 0xA3: _r_sym8, 0xB3: _r_sym32}
#: text as ``bytes`` (rstream): strings and symbols read like binaries.
_TEXT_AS_BYTES: dict[int, _Reader] = {0xA1: _r_vbin8, 0xB1: _r_vbin32, 0xA3: _r_vbin8, 0xB3: _r_vbin32}
_SHORT_TEXT = frozenset((0xA0, 0xA1, 0xA3))
_ZERO_WIDTH = frozenset((0x40, 0x41, 0x42, 0x43, 0x44, 0x45))


def _build_table(text: dict[int, _Reader], as_str: bool) -> list[_Reader]:
    """The 256 readers of one decoding mode (compound readers close over the table)."""

    def bad(buf: bytes, pos: int, end: int, depth: int) -> tuple[Any, int]:
        raise AmqpDecodeError(f"invalid AMQP constructor 0x{buf[pos - 1]:02x}", pos - 1)

    table: list[_Reader] = [bad] * 256

    def header8(buf: bytes, pos: int, end: int, depth: int) -> tuple[int, int, int]:
        """(count, first element pos, compound end) of a list8/map8/array8."""
        if depth >= MAX_DEPTH:
            raise AmqpDecodeError(f"AMQP values nested deeper than {MAX_DEPTH}", pos)
        if pos + 2 > end:
            raise _truncated(pos)
        size = buf[pos]
        ce = pos + 1 + size
        if size < 1 or ce > end:
            raise AmqpDecodeError(f"compound size {size} exceeds the data", pos)
        count = buf[pos + 1]
        if count > ce - pos - 2:
            raise AmqpDecodeError(f"compound count {count} exceeds its {size} bytes", pos)
        return count, pos + 2, ce

    def header32(buf: bytes, pos: int, end: int, depth: int) -> tuple[int, int, int]:
        if depth >= MAX_DEPTH:
            raise AmqpDecodeError(f"AMQP values nested deeper than {MAX_DEPTH}", pos)
        if pos + 8 > end:
            raise _truncated(pos)
        size, count = _II.unpack_from(buf, pos)
        ce = pos + 4 + size
        if size < 4 or ce > end:
            raise AmqpDecodeError(f"compound size {size} exceeds the data", pos)
        if count > ce - pos - 8:
            raise AmqpDecodeError(f"compound count {count} exceeds its {size} bytes", pos)
        return count, pos + 8, ce

    def items(buf: bytes, pos: int, ce: int, count: int, depth: int) -> list[Any]:
        out: list[Any] = [None] * count
        for i in range(count):
            if pos >= ce:
                raise _truncated(pos)
            c = buf[pos]
            if c == 0x40:  # null: already in place
                pos += 1
            elif c in _SHORT_TEXT:  # vbin8 / str8 / sym8, inline
                e = pos + 2 + buf[pos + 1]
                if e > ce:
                    raise _truncated(pos)
                if c == 0xA0 or not as_str:
                    out[i] = buf[pos + 2 : e]
                elif c == 0xA1:
                    out[i] = buf[pos + 2 : e].decode()
                else:
                    out[i] = _str_new(Symbol, buf[pos + 2 : e].decode())
                pos = e
            elif c == 0x54:  # smallint
                if pos + 1 >= ce:
                    raise _truncated(pos)
                b = buf[pos + 1]
                out[i] = b - 256 if b > 127 else b
                pos += 2
            else:
                out[i], pos = table[c](buf, pos + 1, ce, depth)
        if pos != ce:
            raise AmqpDecodeError("compound size does not match its content", pos)
        return out

    def list8(buf: bytes, pos: int, end: int, depth: int) -> tuple[Any, int]:
        count, pos, ce = header8(buf, pos, end, depth)
        return items(buf, pos, ce, count, depth + 1), ce

    def list32(buf: bytes, pos: int, end: int, depth: int) -> tuple[Any, int]:
        count, pos, ce = header32(buf, pos, end, depth)
        return items(buf, pos, ce, count, depth + 1), ce

    def pairs(buf: bytes, pos: int, ce: int, count: int, depth: int) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        for _ in range(count >> 1):
            if pos >= ce:
                raise _truncated(pos)
            c = buf[pos]
            if c in _SHORT_TEXT:  # the usual key: str8 / sym8, inline
                e = pos + 2 + buf[pos + 1]
                if e > ce:
                    raise _truncated(pos)
                if c == 0xA0 or not as_str:
                    key: Any = buf[pos + 2 : e]
                elif c == 0xA1:
                    key = buf[pos + 2 : e].decode()
                else:
                    key = _str_new(Symbol, buf[pos + 2 : e].decode())
                pos = e
            else:
                key, pos = table[c](buf, pos + 1, ce, depth)
            if pos >= ce:
                raise _truncated(pos)
            c = buf[pos]
            if c in _SHORT_TEXT:
                e = pos + 2 + buf[pos + 1]
                if e > ce:
                    raise _truncated(pos)
                if c == 0xA0 or not as_str:
                    value: Any = buf[pos + 2 : e]
                elif c == 0xA1:
                    value = buf[pos + 2 : e].decode()
                else:
                    value = _str_new(Symbol, buf[pos + 2 : e].decode())
                pos = e
            else:
                value, pos = table[c](buf, pos + 1, ce, depth)
            try:
                out[key] = value
            except TypeError:
                raise AmqpDecodeError("unhashable AMQP map key", pos) from None
        if pos != ce:
            raise AmqpDecodeError("map size does not match its content", pos)
        return out

    def map8(buf: bytes, pos: int, end: int, depth: int) -> tuple[Any, int]:
        count, p, ce = header8(buf, pos, end, depth)
        if count & 1:
            raise AmqpDecodeError(f"odd AMQP map count {count}", pos)
        return pairs(buf, p, ce, count, depth + 1), ce

    def map32(buf: bytes, pos: int, end: int, depth: int) -> tuple[Any, int]:
        count, p, ce = header32(buf, pos, end, depth)
        if count & 1:
            raise AmqpDecodeError(f"odd AMQP map count {count}", pos)
        return pairs(buf, p, ce, count, depth + 1), ce

    def array_body(buf: bytes, pos: int, ce: int, count: int, depth: int, start: int) -> Array:
        if count == 0 and pos == ce:
            return Array((), 0x40)
        if pos >= ce:
            raise _truncated(pos)
        code = buf[pos]
        pos += 1
        descriptor = None
        has_descriptor = code == 0x00
        if has_descriptor:
            if pos >= ce:
                raise _truncated(pos)
            descriptor, pos = table[buf[pos]](buf, pos + 1, ce, depth)
            if pos >= ce:
                raise _truncated(pos)
            code = buf[pos]
            pos += 1
        if code == 0x00 or table[code] is bad:
            raise AmqpDecodeError(f"invalid array element constructor 0x{code:02x}", pos - 1)
        if code in _ZERO_WIDTH:
            # Elements that take no input bytes: bounded by the array's own size, so the
            # output of a whole message stays linear in its size however many arrays it has.
            per_byte = ZERO_WIDTH_NEW_PER_BYTE if code == 0x45 or has_descriptor else ZERO_WIDTH_PER_BYTE
            if count > MAX_ZERO_WIDTH_ARRAY or count > per_byte * (ce - start):
                raise AmqpDecodeError(f"array of {count} zero-width elements in {ce - start} bytes", pos - 1)
        elif count > ce - pos:
            raise AmqpDecodeError(f"array count {count} exceeds its data", pos - 1)
        read = table[code]
        out = Array((), code, descriptor)
        vals: list[Any] = [None] * count
        for i in range(count):
            vals[i], pos = read(buf, pos, ce, depth)
        if pos != ce:
            raise AmqpDecodeError("array size does not match its content", pos)
        if has_descriptor:
            vals = [Described(descriptor, v) for v in vals]
        out.extend(vals)
        return out

    def array8(buf: bytes, pos: int, end: int, depth: int) -> tuple[Any, int]:
        if depth >= MAX_DEPTH:
            raise AmqpDecodeError(f"AMQP values nested deeper than {MAX_DEPTH}", pos)
        if pos + 2 > end:
            raise _truncated(pos)
        ce = pos + 1 + buf[pos]
        if buf[pos] < 1 or ce > end:
            raise AmqpDecodeError("array size exceeds the data", pos)
        return array_body(buf, pos + 2, ce, buf[pos + 1], depth + 1, pos - 1), ce

    def array32(buf: bytes, pos: int, end: int, depth: int) -> tuple[Any, int]:
        if depth >= MAX_DEPTH:
            raise AmqpDecodeError(f"AMQP values nested deeper than {MAX_DEPTH}", pos)
        if pos + 8 > end:
            raise _truncated(pos)
        size, count = _II.unpack_from(buf, pos)
        ce = pos + 4 + size
        if size < 4 or ce > end:
            raise AmqpDecodeError("array size exceeds the data", pos)
        return array_body(buf, pos + 8, ce, count, depth + 1, pos - 1), ce

    def described(buf: bytes, pos: int, end: int, depth: int) -> tuple[Any, int]:
        if depth >= MAX_DEPTH:
            raise AmqpDecodeError(f"AMQP values nested deeper than {MAX_DEPTH}", pos)
        if pos >= end:
            raise _truncated(pos)
        descriptor, pos = table[buf[pos]](buf, pos + 1, end, depth + 1)
        if pos >= end:
            raise _truncated(pos)
        value, pos = table[buf[pos]](buf, pos + 1, end, depth + 1)
        return Described(descriptor, value), pos

    for code, reader in {**_SCALARS, **text}.items():
        table[code] = reader
    table[0x45] = _const_list
    table[0xC0] = list8
    table[0xD0] = list32
    table[0xC1] = map8
    table[0xD1] = map32
    table[0xE0] = array8
    table[0xF0] = array32
    table[0x00] = described
    return table


def _const_list(buf: bytes, pos: int, end: int, depth: int) -> tuple[Any, int]:
    return [], pos


_TABLE_BYTES = _build_table(_TEXT_AS_BYTES, False)
_TABLE_STR = _build_table(_TEXT_AS_STR, True)


def decode_value(data: bytes | bytearray | memoryview, *, text: bool = True) -> Any:
    """Decode one AMQP value that fills ``data`` exactly.

    :param text: strings and symbols as ``str``/:class:`Symbol` (default) or ``bytes``.
    :raises AmqpDecodeError: on anything but exactly one valid value.
    """
    buf = data if type(data) is bytes else bytes(data)
    table = _TABLE_STR if text else _TABLE_BYTES
    try:
        if not buf:
            raise _truncated(0)
        value, pos = table[buf[0]](buf, 1, len(buf), 0)
    except AmqpDecodeError:
        raise
    except (UnicodeDecodeError, ValueError, struct.error, IndexError, RecursionError) as exc:
        raise AmqpDecodeError(f"invalid AMQP data: {exc}") from None
    if pos != len(buf):
        raise AmqpDecodeError("trailing bytes after the AMQP value", pos)
    return value
