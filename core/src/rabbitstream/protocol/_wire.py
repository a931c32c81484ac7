"""Primitive encodings of the RabbitMQ Streams protocol (big-endian).

Every decoder takes a :class:`memoryview` and an offset and returns
``(value, new_offset)``; every one checks bounds first and raises
:class:`~rabbitstream.exceptions.DecodeError` (never :class:`struct.error` or
:class:`IndexError`).  Counts read from the wire are checked against the bytes
left before anything is allocated, so a hostile count cannot make us allocate
more than the frame holds.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from typing import Final

from rabbitstream.exceptions import DecodeError, LocalProtocolError

__all__ = [
    "HEADER",
    "I16",
    "I32",
    "I64",
    "REQUEST_HEADER",
    "RESPONSE_HEADER",
    "SIZE",
    "U8",
    "U16",
    "U32",
    "U64",
    "decode_bytes",
    "decode_int64_map",
    "decode_map",
    "decode_string",
    "decode_string_array",
    "decode_u8",
    "decode_u16",
    "decode_u32",
    "decode_u64",
    "decode_i64",
    "encode_bytes",
    "encode_int64_map",
    "encode_map",
    "encode_string",
    "encode_string_array",
    "ensure",
    "frame",
]

U8: Final = struct.Struct(">B")
U16: Final = struct.Struct(">H")
I16: Final = struct.Struct(">h")
U32: Final = struct.Struct(">I")
I32: Final = struct.Struct(">i")
U64: Final = struct.Struct(">Q")
I64: Final = struct.Struct(">q")
#: Frame prefix: Size:uint32 (bytes after these 4).
SIZE: Final = U32
#: Key:uint16, Version:uint16 (one-way commands).
HEADER: Final = struct.Struct(">HH")
#: Key:uint16, Version:uint16, CorrelationId:uint32.
REQUEST_HEADER: Final = struct.Struct(">HHI")
#: Key:uint16, Version:uint16, CorrelationId:uint32, ResponseCode:uint16.
RESPONSE_HEADER: Final = struct.Struct(">HHIH")

_NULL_STRING: Final = b"\xff\xff"
_NULL_BYTES: Final = b"\xff\xff\xff\xff"
_MAX_STRING: Final = 0x7FFF


def ensure(view: memoryview, offset: int, n: int, what: str) -> None:
    """Raise :class:`DecodeError` unless ``n`` bytes are left at ``offset``."""
    if offset + n > len(view):
        raise DecodeError(
            f"truncated frame: {what} needs {n} bytes at offset {offset}, {len(view) - offset} left"
        )


def frame(body: bytes | bytearray) -> bytes:
    """Prefix ``body`` with its uint32 size."""
    return SIZE.pack(len(body)) + body


# --------------------------------------------------------------------------- encoders


def encode_string(value: str | None) -> bytes:
    """``int16 length + UTF-8``; ``None`` → length -1."""
    if value is None:
        return _NULL_STRING
    raw = value.encode("utf-8")
    if len(raw) > _MAX_STRING:
        raise LocalProtocolError(f"string of {len(raw)} bytes exceeds the protocol limit of {_MAX_STRING}")
    return U16.pack(len(raw)) + raw


def encode_bytes(value: bytes | bytearray | memoryview | None) -> bytes:
    """``int32 length + bytes``; ``None`` → length -1."""
    if value is None:
        return _NULL_BYTES
    return I32.pack(len(value)) + bytes(value)


def encode_string_array(values: Iterable[str]) -> bytes:
    """``int32 count + string*``."""
    items = [encode_string(v) for v in values]
    return I32.pack(len(items)) + b"".join(items)


def encode_map(values: Mapping[str, str]) -> bytes:
    """``int32 count + (string key, string value)*``."""
    parts = [I32.pack(len(values))]
    for k, v in values.items():
        parts.append(encode_string(k))
        parts.append(encode_string(v))
    return b"".join(parts)


def encode_int64_map(values: Mapping[str, int]) -> bytes:
    """``int32 count + (string key, int64 value)*`` (StreamStats)."""
    parts = [I32.pack(len(values))]
    for k, v in values.items():
        parts.append(encode_string(k))
        parts.append(I64.pack(v))
    return b"".join(parts)


# --------------------------------------------------------------------------- decoders


def decode_u8(view: memoryview, offset: int) -> tuple[int, int]:
    """One uint8."""
    if offset + 1 > len(view):
        ensure(view, offset, 1, "uint8")
    return view[offset], offset + 1


def decode_u16(view: memoryview, offset: int) -> tuple[int, int]:
    """One uint16."""
    if offset + 2 > len(view):
        ensure(view, offset, 2, "uint16")
    return U16.unpack_from(view, offset)[0], offset + 2


def decode_u32(view: memoryview, offset: int) -> tuple[int, int]:
    """One uint32."""
    if offset + 4 > len(view):
        ensure(view, offset, 4, "uint32")
    return U32.unpack_from(view, offset)[0], offset + 4


def decode_u64(view: memoryview, offset: int) -> tuple[int, int]:
    """One uint64."""
    if offset + 8 > len(view):
        ensure(view, offset, 8, "uint64")
    return U64.unpack_from(view, offset)[0], offset + 8


def decode_i64(view: memoryview, offset: int) -> tuple[int, int]:
    """One int64."""
    if offset + 8 > len(view):
        ensure(view, offset, 8, "int64")
    return I64.unpack_from(view, offset)[0], offset + 8


def decode_string(view: memoryview, offset: int) -> tuple[str | None, int]:
    """A protocol string; length -1 → ``None``."""
    ensure(view, offset, 2, "string length")
    (n,) = I16.unpack_from(view, offset)
    offset += 2
    if n < 0:
        if n != -1:
            raise DecodeError(f"invalid string length {n}")
        return None, offset
    ensure(view, offset, n, "string")
    try:
        value = str(view[offset : offset + n], "utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError(f"string is not valid UTF-8: {exc}") from None
    return value, offset + n


def _decode_str(view: memoryview, offset: int, what: str) -> tuple[str, int]:
    value, offset = decode_string(view, offset)
    if value is None:
        raise DecodeError(f"null {what}")
    return value, offset


def decode_bytes(view: memoryview, offset: int) -> tuple[bytes | None, int]:
    """A protocol ``bytes``; length -1 → ``None``."""
    ensure(view, offset, 4, "bytes length")
    (n,) = I32.unpack_from(view, offset)
    offset += 4
    if n < 0:
        if n != -1:
            raise DecodeError(f"invalid bytes length {n}")
        return None, offset
    ensure(view, offset, n, "bytes")
    return bytes(view[offset : offset + n]), offset + n


def _count(view: memoryview, offset: int, min_item: int, what: str) -> tuple[int, int]:
    ensure(view, offset, 4, f"{what} count")
    (n,) = I32.unpack_from(view, offset)
    offset += 4
    if n < 0:
        raise DecodeError(f"negative {what} count {n}")
    if n * min_item > len(view) - offset:
        raise DecodeError(f"{what} count {n} does not fit in the {len(view) - offset} bytes left")
    return n, offset


def decode_string_array(view: memoryview, offset: int) -> tuple[list[str], int]:
    """``int32 count + string*`` (null elements rejected)."""
    n, offset = _count(view, offset, 2, "string array")
    out: list[str] = []
    for _ in range(n):
        s, offset = _decode_str(view, offset, "array element")
        out.append(s)
    return out, offset


def decode_map(view: memoryview, offset: int) -> tuple[dict[str, str], int]:
    """``int32 count + (string, string)*``; a null value becomes ``""``."""
    n, offset = _count(view, offset, 4, "map")
    out: dict[str, str] = {}
    for _ in range(n):
        k, offset = _decode_str(view, offset, "map key")
        v, offset = decode_string(view, offset)
        out[k] = "" if v is None else v
    return out, offset


def decode_int64_map(view: memoryview, offset: int) -> tuple[dict[str, int], int]:
    """``int32 count + (string, int64)*``."""
    n, offset = _count(view, offset, 10, "map")
    out: dict[str, int] = {}
    for _ in range(n):
        k, offset = _decode_str(view, offset, "map key")
        ensure(view, offset, 8, "int64 value")
        out[k] = I64.unpack_from(view, offset)[0]
        offset += 8
    return out, offset
