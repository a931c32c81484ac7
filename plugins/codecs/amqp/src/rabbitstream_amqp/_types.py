"""Typed wrappers for AMQP 1.0 types that plain Python values cannot tell apart.

Plain values map to the obvious AMQP type (``int`` → ``int``/``long``, ``str`` →
``string``, ``bytes`` → ``binary``, ``float`` → ``double`` ...).  When another
encoding is wanted (a ``symbol``, an unsigned integer, a 32-bit float, a
``timestamp``, a described value ...), wrap the value in one of these classes.
The wrappers subclass the plain type (``UInt(5) == 5``, ``Symbol("a") == "a"``),
so code that ignores them keeps working; the decoder returns them so that a
decoded value re-encodes to the same AMQP type.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

from rabbitstream.exceptions import DecodeError

__all__ = [
    "AmqpDecodeError",
    "Array",
    "Byte",
    "Char",
    "Decimal32",
    "Decimal64",
    "Decimal128",
    "Described",
    "Float",
    "Long",
    "Short",
    "Symbol",
    "Timestamp",
    "UByte",
    "UInt",
    "ULong",
    "UShort",
]


class AmqpDecodeError(DecodeError, TypeError):
    """The bytes are not a valid AMQP 1.0 message.

    A subclass of both :class:`TypeError` (what rstream's ``amqp_decoder`` raises on
    non-AMQP input) and of ``rabbitstream.exceptions.DecodeError`` / :class:`ValueError`,
    so either ``except`` catches it.  ``offset`` is where in the input the problem was
    found (``-1`` when unknown).
    """

    def __init__(self, message: str, offset: int = -1) -> None:
        super().__init__(message if offset < 0 else f"{message} (at byte {offset})")
        self.offset = offset


def _ranged(name: str, lo: int, hi: int) -> Any:
    def __new__(cls: type[int], value: Any = 0) -> int:
        v = int.__new__(cls, value)
        if not lo <= v <= hi:
            raise ValueError(f"{name} out of range [{lo}, {hi}]: {int(v)}")
        return v

    return __new__


class UByte(int):
    """AMQP ``ubyte``: 0 … 255."""

    __slots__ = ()
    __new__ = _ranged("ubyte", 0, 0xFF)

    def __repr__(self) -> str:
        return f"UByte({int(self)})"


class UShort(int):
    """AMQP ``ushort``: 0 … 65535."""

    __slots__ = ()
    __new__ = _ranged("ushort", 0, 0xFFFF)

    def __repr__(self) -> str:
        return f"UShort({int(self)})"


class UInt(int):
    """AMQP ``uint``: 0 … 2**32-1."""

    __slots__ = ()
    __new__ = _ranged("uint", 0, 0xFFFFFFFF)

    def __repr__(self) -> str:
        return f"UInt({int(self)})"


class ULong(int):
    """AMQP ``ulong``: 0 … 2**64-1."""

    __slots__ = ()
    __new__ = _ranged("ulong", 0, 0xFFFFFFFFFFFFFFFF)

    def __repr__(self) -> str:
        return f"ULong({int(self)})"


class Byte(int):
    """AMQP ``byte``: -128 … 127."""

    __slots__ = ()
    __new__ = _ranged("byte", -0x80, 0x7F)

    def __repr__(self) -> str:
        return f"Byte({int(self)})"


class Short(int):
    """AMQP ``short``: -32768 … 32767."""

    __slots__ = ()
    __new__ = _ranged("short", -0x8000, 0x7FFF)

    def __repr__(self) -> str:
        return f"Short({int(self)})"


class Long(int):
    """AMQP ``long`` (a plain ``int`` uses ``int`` when it fits 32 bits)."""

    __slots__ = ()
    __new__ = _ranged("long", -(1 << 63), (1 << 63) - 1)

    def __repr__(self) -> str:
        return f"Long({int(self)})"


_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


class Timestamp(int):
    """AMQP ``timestamp``: milliseconds since the Unix epoch (64-bit signed)."""

    __slots__ = ()
    __new__ = _ranged("timestamp", -(1 << 63), (1 << 63) - 1)

    @classmethod
    def from_datetime(cls, value: _dt.datetime) -> Timestamp:
        """The timestamp of ``value`` (a naive datetime is taken as UTC)."""
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.timezone.utc)
        delta = value - _EPOCH
        result: Timestamp = cls((delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000)
        return result

    def to_datetime(self) -> _dt.datetime:
        """This timestamp as an aware UTC :class:`datetime.datetime`."""
        return _EPOCH + _dt.timedelta(milliseconds=int(self))

    def __repr__(self) -> str:
        return f"Timestamp({int(self)})"


class Float(float):
    """AMQP ``float`` (IEEE 754 binary32); a plain ``float`` is a ``double``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Float({float(self)!r})"


class Symbol(str):
    """AMQP ``symbol`` (ASCII); a plain ``str`` is a ``string``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Symbol({str(self)!r})"


class Char(str):
    """AMQP ``char``: one Unicode code point."""

    __slots__ = ()

    def __new__(cls, value: str) -> Char:
        if len(value) != 1:
            raise ValueError(f"char must be one code point, got {len(value)}")
        return str.__new__(cls, value)

    def __repr__(self) -> str:
        return f"Char({str(self)!r})"


class _Decimal(bytes):
    """Raw IEEE 754-2008 decimal bytes (network order); not converted to Python numbers."""

    __slots__ = ()
    SIZE = 0

    def __new__(cls, raw: bytes | bytearray | memoryview) -> Any:
        value = bytes.__new__(cls, raw)
        if len(value) != cls.SIZE:
            raise ValueError(f"{cls.__name__} needs {cls.SIZE} bytes, got {len(value)}")
        return value

    def __repr__(self) -> str:
        return f"{type(self).__name__}({bytes(self)!r})"


class Decimal32(_Decimal):
    """AMQP ``decimal32``: the 4 raw bytes."""

    __slots__ = ()
    SIZE = 4


class Decimal64(_Decimal):
    """AMQP ``decimal64``: the 8 raw bytes."""

    __slots__ = ()
    SIZE = 8


class Decimal128(_Decimal):
    """AMQP ``decimal128``: the 16 raw bytes."""

    __slots__ = ()
    SIZE = 16


class Described:
    """An AMQP described value: ``descriptor`` (a ``ulong`` code or a symbol) + ``value``.

    An ``int`` descriptor is encoded as ``ulong``, a ``str``/``bytes`` one as ``symbol``.
    """

    __slots__ = ("descriptor", "value")

    def __init__(self, descriptor: object, value: object) -> None:
        self.descriptor = descriptor
        self.value = value

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Described):
            return NotImplemented
        return bool(self.descriptor == other.descriptor and self.value == other.value)

    def __hash__(self) -> int:
        return hash((Described, self.descriptor, repr(self.value)))

    def __repr__(self) -> str:
        return f"Described({self.descriptor!r}, {self.value!r})"


class Array(list):  # type: ignore[type-arg]
    """An AMQP ``array``: a list whose elements all have one AMQP type.

    Elements are encoded with the type of the first one (e.g. ``Array([Symbol("a"),
    Symbol("b")])`` is an array of symbols); ``code`` gives the element constructor
    explicitly (needed for an empty array, default ``0x40`` null).  A plain ``list``
    is an AMQP ``list``.  Decoded arrays keep their element ``code`` (and the shared
    ``descriptor`` of an array of described values).
    """

    __slots__ = ("code", "descriptor")

    def __init__(self, items: Any = (), code: int | None = None, descriptor: object = None) -> None:
        super().__init__(items)
        self.code = code
        self.descriptor = descriptor

    def __repr__(self) -> str:
        return f"Array({list(self)!r}, code={self.code!r})"
