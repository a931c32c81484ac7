"""AMQP 1.0 encoder: Python values → AMQP type encodings.

Every writer appends to a :class:`bytearray`.  Plain values are dispatched on their
exact type through one dict look-up (subclasses are resolved once and cached).
"""

from __future__ import annotations

import datetime as _dt
import struct
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from rabbitstream_amqp._types import (
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

__all__ = ["encode_value"]

_Writer = Callable[[bytearray, Any], None]

_B = struct.Struct(">B")  # ubyte, smallint/smalllong use _b
_b = struct.Struct(">b")
_H = struct.Struct(">H")
_h = struct.Struct(">h")
_I = struct.Struct(">I")  # uint, 32-bit sizes and counts
_i = struct.Struct(">i")
_Q = struct.Struct(">Q")
_q = struct.Struct(">q")
_f = struct.Struct(">f")
_d = struct.Struct(">d")
_CI = struct.Struct(">BI")  # constructor + uint32 (vbin32/str32/sym32, uint, char)
_Ci = struct.Struct(">Bi")  # constructor + int32
_Cq = struct.Struct(">Bq")  # constructor + int64 (long, timestamp)
_CQ = struct.Struct(">BQ")  # constructor + uint64
_Cd = struct.Struct(">Bd")
_Cf = struct.Struct(">Bf")
_CII = struct.Struct(">BII")  # list32/map32/array32: constructor, size, count
_CBB = struct.Struct(">BBB")  # list8/map8/array8: constructor, size, count

#: 2-byte encodings of small values, indexed by value: ``[0x54, v]`` etc.
_SMALLINT = [bytes((0x54, v & 0xFF)) for v in range(-128, 128)]
_VBIN8 = [bytes((0xA0, n)) for n in range(256)]
_STR8 = [bytes((0xA1, n)) for n in range(256)]
_SYM8 = [bytes((0xA3, n)) for n in range(256)]


# --------------------------------------------------------------------------- scalars
def _w_null(out: bytearray, v: Any) -> None:
    out.append(0x40)


def _w_bool(out: bytearray, v: Any) -> None:
    out.append(0x41 if v else 0x42)


def _w_int(out: bytearray, v: int) -> None:
    if -128 <= v <= 127:
        out += _SMALLINT[v + 128]
    elif -0x80000000 <= v <= 0x7FFFFFFF:
        out += _Ci.pack(0x71, v)
    elif -(1 << 63) <= v < (1 << 63):
        out += _Cq.pack(0x81, v)
    else:
        raise ValueError(f"int {v} does not fit AMQP long; wrap it in ULong if it is unsigned")


def _w_long(out: bytearray, v: int) -> None:
    if -128 <= v <= 127:
        out.append(0x55)
        out += _b.pack(v)
    else:
        out += _Cq.pack(0x81, v)


def _w_ubyte(out: bytearray, v: int) -> None:
    out.append(0x50)
    out += _B.pack(v)


def _w_ushort(out: bytearray, v: int) -> None:
    out.append(0x60)
    out += _H.pack(v)


def _w_uint(out: bytearray, v: int) -> None:
    if v == 0:
        out.append(0x43)
    elif 0 < v < 256:
        out.append(0x52)
        out.append(v)
    else:
        out += _CI.pack(0x70, v)


def _w_ulong(out: bytearray, v: int) -> None:
    if v == 0:
        out.append(0x44)
    elif 0 < v < 256:
        out.append(0x53)
        out.append(v)
    else:
        out += _CQ.pack(0x80, v)


def _w_byte(out: bytearray, v: int) -> None:
    out.append(0x51)
    out += _b.pack(v)


def _w_short(out: bytearray, v: int) -> None:
    out.append(0x61)
    out += _h.pack(v)


def _w_timestamp(out: bytearray, v: int) -> None:
    out += _Cq.pack(0x83, v)


def _w_datetime(out: bytearray, v: _dt.datetime) -> None:
    out += _Cq.pack(0x83, Timestamp.from_datetime(v))


def _w_double(out: bytearray, v: float) -> None:
    out += _Cd.pack(0x82, v)


def _w_float(out: bytearray, v: float) -> None:
    out += _Cf.pack(0x72, v)


def _w_char(out: bytearray, v: str) -> None:
    if len(v) != 1:
        raise ValueError(f"char must be one code point, got {len(v)}")
    out += _CI.pack(0x73, ord(v))


def _w_decimal(code: int, size: int) -> _Writer:
    def write(out: bytearray, v: bytes) -> None:
        if len(v) != size:
            raise ValueError(f"decimal needs {size} bytes, got {len(v)}")
        out.append(code)
        out += v

    return write


def _w_uuid(out: bytearray, v: uuid.UUID) -> None:
    out.append(0x98)
    out += v.bytes


def _w_binary(out: bytearray, v: bytes | bytearray | memoryview) -> None:
    n = len(v) if type(v) is not memoryview else v.nbytes
    if n < 256:
        out += _VBIN8[n]
    else:
        out += _CI.pack(0xB0, n)
    out += v


def _w_string_bytes(out: bytearray, b: bytes) -> None:
    n = len(b)
    if n < 256:
        out += _STR8[n]
    else:
        out += _CI.pack(0xB1, n)
    out += b


def _w_string(out: bytearray, v: str) -> None:
    _w_string_bytes(out, v.encode())


def _w_symbol_bytes(out: bytearray, b: bytes) -> None:
    n = len(b)
    if n < 256:
        out += _SYM8[n]
    else:
        out += _CI.pack(0xB3, n)
    out += b


def _w_symbol(out: bytearray, v: str | bytes) -> None:
    _w_symbol_bytes(out, v.encode() if isinstance(v, str) else bytes(v))


# --------------------------------------------------------------------------- compounds
def _w_list(out: bytearray, v: Any) -> None:
    count = len(v)
    if count == 0:
        out.append(0x45)
        return
    body = bytearray()
    enc = _ENC
    for item in v:
        w = enc.get(type(item))
        if w is None:
            w = _resolve(type(item))
        w(body, item)
    size = len(body)
    if size < 255 and count < 256:
        out += _CBB.pack(0xC0, size + 1, count)
    else:
        out += _CII.pack(0xD0, size + 4, count)
    out += body


def _w_map(out: bytearray, v: Mapping[Any, Any]) -> None:
    count = len(v) * 2
    body = bytearray()
    enc = _ENC
    for key, item in v.items():
        w = enc.get(type(key))
        if w is None:
            w = _resolve(type(key))
        w(body, key)
        w = enc.get(type(item))
        if w is None:
            w = _resolve(type(item))
        w(body, item)
    size = len(body)
    if size < 255 and count < 256:
        out += _CBB.pack(0xC1, size + 1, count)
    else:
        out += _CII.pack(0xD1, size + 4, count)
    out += body


def _w_descriptor(out: bytearray, d: Any) -> None:
    """A plain ``int`` descriptor is a ``ulong``, plain text a ``symbol``; wrappers keep their type."""
    t = type(d)
    if (t is int or t is ULong) and 0 <= d < (1 << 64):
        _w_ulong(out, d)
    elif t is str or t is bytes or t is Symbol:
        _w_symbol(out, d)
    else:
        encode_value(out, d)


def _w_described(out: bytearray, v: Described) -> None:
    out.append(0x00)
    _w_descriptor(out, v.descriptor)
    encode_value(out, v.value)


# Array elements: written without their constructor, one writer per element code.
def _e_bytes8(out: bytearray, b: bytes) -> None:
    if len(b) > 255:
        raise ValueError("array element longer than 255 bytes in an 8-bit array encoding")
    out.append(len(b))
    out += b


def _e_bytes32(out: bytearray, b: bytes) -> None:
    out += _I.pack(len(b))
    out += b


def _e_list32(out: bytearray, v: Any) -> None:
    tmp = bytearray()
    _w_list(tmp, v)
    if tmp[0] == 0x45:
        out += _I.pack(4) + _I.pack(0)
    elif tmp[0] == 0xC0:
        out += _I.pack(tmp[1] + 3) + _I.pack(tmp[2])
        out += tmp[3:]
    else:
        out += tmp[1:]


def _e_map32(out: bytearray, v: Any) -> None:
    tmp = bytearray()
    _w_map(tmp, v)
    if tmp[0] == 0xC1:
        out += _I.pack(tmp[1] + 3) + _I.pack(tmp[2])
        out += tmp[3:]
    else:
        out += tmp[1:]


def _e_array32(out: bytearray, v: Any) -> None:
    tmp = bytearray()
    _w_array(tmp, v, force32=True)
    out += tmp[1:]


def _utf8(v: Any) -> bytes:
    return v.encode() if isinstance(v, str) else bytes(v)


_ELEM: dict[int, _Writer] = {
    0x40: lambda out, v: None,
    0x56: lambda out, v: out.append(1 if v else 0),
    0x50: lambda out, v: out.extend(_B.pack(v)),
    0x60: lambda out, v: out.extend(_H.pack(v)),
    0x70: lambda out, v: out.extend(_I.pack(v)),
    0x80: lambda out, v: out.extend(_Q.pack(v)),
    0x51: lambda out, v: out.extend(_b.pack(v)),
    0x61: lambda out, v: out.extend(_h.pack(v)),
    0x71: lambda out, v: out.extend(_i.pack(v)),
    0x81: lambda out, v: out.extend(_q.pack(v)),
    0x83: lambda out, v: out.extend(
        _q.pack(Timestamp.from_datetime(v) if isinstance(v, _dt.datetime) else v)
    ),
    0x72: lambda out, v: out.extend(_f.pack(v)),
    0x82: lambda out, v: out.extend(_d.pack(v)),
    0x73: lambda out, v: out.extend(_I.pack(ord(v))),
    0x74: lambda out, v: out.extend(Decimal32(v)),
    0x84: lambda out, v: out.extend(Decimal64(v)),
    0x94: lambda out, v: out.extend(Decimal128(v)),
    0x98: lambda out, v: out.extend(v.bytes),
    0xA0: lambda out, v: _e_bytes8(out, bytes(v)),
    0xB0: lambda out, v: _e_bytes32(out, bytes(v)),
    0xA1: lambda out, v: _e_bytes8(out, _utf8(v)),
    0xB1: lambda out, v: _e_bytes32(out, _utf8(v)),
    0xA3: lambda out, v: _e_bytes8(out, _utf8(v)),
    0xB3: lambda out, v: _e_bytes32(out, _utf8(v)),
    0xD0: _e_list32,
    0xD1: _e_map32,
    0xF0: _e_array32,
}

#: element code for a Python type in an array; ints/str/bytes/symbols refined below.
_ELEM_CODE: dict[type, int] = {
    type(None): 0x40,
    bool: 0x56,
    UByte: 0x50,
    UShort: 0x60,
    UInt: 0x70,
    ULong: 0x80,
    Byte: 0x51,
    Short: 0x61,
    Long: 0x81,
    Timestamp: 0x83,
    _dt.datetime: 0x83,
    Float: 0x72,
    float: 0x82,
    Char: 0x73,
    Decimal32: 0x74,
    Decimal64: 0x84,
    Decimal128: 0x94,
    uuid.UUID: 0x98,
    list: 0xD0,
    tuple: 0xD0,
    dict: 0xD1,
    Array: 0xF0,
}


def _elem_code(items: list[Any]) -> int:
    first = items[0]
    t = type(first)
    if t is int:
        fits32 = all(-0x80000000 <= x <= 0x7FFFFFFF for x in items)
        return 0x71 if fits32 else 0x81
    if t in (str, bytes, bytearray, Symbol):
        short = all(len(_utf8(x)) < 256 for x in items)
        base = 0xA1 if t is str else 0xA3 if t is Symbol else 0xA0
        return base if short else base + 0x10
    code = _ELEM_CODE.get(t)
    if code is None:
        for cls, c in _ELEM_CODE.items():
            if isinstance(first, cls) and cls is not type(None):
                return c
        raise TypeError(f"cannot encode {t.__name__} as an AMQP array element")
    return code


#: compact element codes of decoded arrays → the code the encoder writes.
_CANONICAL_ELEM = {
    0x41: 0x56, 0x42: 0x56, 0x43: 0x70, 0x52: 0x70, 0x44: 0x80, 0x53: 0x80, 0x54: 0x71,
    0x55: 0x81, 0x45: 0xD0, 0xC0: 0xD0, 0xC1: 0xD1, 0xE0: 0xF0,
}  # fmt: skip


def _w_array(out: bytearray, v: Array | list[Any], force32: bool = False) -> None:
    items = list(v)
    code = getattr(v, "code", None)
    descriptor = getattr(v, "descriptor", None)
    all_described = bool(items) and all(isinstance(x, Described) for x in items)
    described = code == 0x00 or descriptor is not None or all_described
    head = bytearray()
    if described:
        if all_described and descriptor is None:
            descriptor = items[0].descriptor
        if any(isinstance(x, Described) and x.descriptor != descriptor for x in items):
            raise ValueError("array of described values with different descriptors")
        items = [x.value if isinstance(x, Described) else x for x in items]
        if code == 0x00:
            code = None
        head.append(0x00)
        _w_descriptor(head, descriptor)
    if code is None:
        code = _elem_code(items) if items else 0x40
    code = _CANONICAL_ELEM.get(code, code)
    writer = _ELEM.get(code)
    if writer is None:
        raise ValueError(f"unsupported array element constructor 0x{code:02x}")
    head.append(code)
    body = bytearray()
    for item in items:
        writer(body, item)
    count = len(items)
    size = len(head) + len(body)
    if size < 255 and count < 256 and not force32:
        out += _CBB.pack(0xE0, size + 1, count)
    else:
        out += _CII.pack(0xF0, size + 4, count)
    out += head
    out += body


_ENC: dict[type, _Writer] = {
    type(None): _w_null,
    bool: _w_bool,
    int: _w_int,
    str: _w_string,
    bytes: _w_binary,
    bytearray: _w_binary,
    memoryview: _w_binary,
    float: _w_double,
    uuid.UUID: _w_uuid,
    _dt.datetime: _w_datetime,
    list: _w_list,
    tuple: _w_list,
    dict: _w_map,
    Symbol: _w_symbol,
    Char: _w_char,
    UByte: _w_ubyte,
    UShort: _w_ushort,
    UInt: _w_uint,
    ULong: _w_ulong,
    Byte: _w_byte,
    Short: _w_short,
    Long: _w_long,
    Timestamp: _w_timestamp,
    Float: _w_float,
    Decimal32: _w_decimal(0x74, 4),
    Decimal64: _w_decimal(0x84, 8),
    Decimal128: _w_decimal(0x94, 16),
    Described: _w_described,
    Array: _w_array,
}

#: isinstance order for subclasses of the keys above (most specific first).
_FALLBACK: tuple[tuple[type, _Writer], ...] = (
    (bool, _w_bool),
    (Array, _w_array),
    (Symbol, _w_symbol),
    (Char, _w_char),
    (UByte, _w_ubyte),
    (UShort, _w_ushort),
    (UInt, _w_uint),
    (ULong, _w_ulong),
    (Byte, _w_byte),
    (Short, _w_short),
    (Long, _w_long),
    (Timestamp, _w_timestamp),
    (Decimal32, _ENC[Decimal32]),
    (Decimal64, _ENC[Decimal64]),
    (Decimal128, _ENC[Decimal128]),
    (int, _w_int),
    (str, _w_string),
    (bytes, _w_binary),
    (bytearray, _w_binary),
    (memoryview, _w_binary),
    (Float, _w_float),
    (float, _w_double),
    (uuid.UUID, _w_uuid),
    (_dt.datetime, _w_datetime),
    (list, _w_list),
    (tuple, _w_list),
    (Mapping, _w_map),
    (Described, _w_described),
)


def _resolve(t: type) -> _Writer:
    for cls, writer in _FALLBACK:
        if issubclass(t, cls):
            if len(_ENC) < 256:
                _ENC[t] = writer
            return writer
    raise TypeError(f"cannot encode a {t.__module__}.{t.__qualname__} as an AMQP value")


def encode_value(out: bytearray, value: object) -> None:
    """Append the AMQP encoding of ``value`` to ``out`` (see ``docs/amqp.md`` for the mapping)."""
    w = _ENC.get(type(value))
    if w is None:
        w = _resolve(type(value))
    w(out, value)
