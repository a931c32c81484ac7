"""Base classes of the frame dataclasses and the ``(key, version)`` dispatch table.

A frame's ``encode()`` returns the whole frame, *including* the 4-byte size
prefix; ``decode(view)`` takes the frame body *after* the size prefix (starting
at ``Key``).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Final, TypeVar

from rabbitstream.exceptions import DecodeError, RemoteProtocolError
from rabbitstream.protocol._wire import HEADER, RESPONSE_HEADER, U32, ensure

__all__ = [
    "FRAMES",
    "ONEWAY_FRAME",
    "REQUEST_FRAME",
    "RESPONSE_HEADER_FRAME",
    "Frame",
    "Request",
    "Response",
    "SimpleResponse",
    "UnknownCommandError",
    "build_oneway",
    "build_request",
    "build_response",
    "check_end",
    "decode_frame",
    "register",
    "request_header",
    "response_header",
]

F = TypeVar("F", bound="type[Frame]")

#: Size:uint32 + Key:uint16 + Version:uint16 + CorrelationId:uint32 + Code:uint16 (content-less responses).
RESPONSE_HEADER_FRAME: Final = struct.Struct(">IHHIH")
#: Size:uint32 + Key:uint16 + Version:uint16 + CorrelationId:uint32.
REQUEST_FRAME: Final = struct.Struct(">IHHI")
#: Size:uint32 + Key:uint16 + Version:uint16.
ONEWAY_FRAME: Final = struct.Struct(">IHH")


class UnknownCommandError(RemoteProtocolError):
    """The broker sent a command key/version this client does not know."""

    def __init__(self, key: int, version: int) -> None:
        self.key = key
        self.version = version
        super().__init__(f"unknown command key 0x{key:04x} version {version}")


class Frame:
    """A RabbitMQ Streams frame (base of every command dataclass)."""

    __slots__ = ()

    KEY: ClassVar[int]
    VERSION: ClassVar[int] = 1

    def encode(self) -> bytes:
        """The whole frame, size prefix included."""
        raise NotImplementedError

    @classmethod
    def decode(cls, view: memoryview) -> Frame:
        """Decode the frame body (starting at ``Key``, after the size prefix)."""
        raise NotImplementedError


#: ``(key, version) -> frame class``.
FRAMES: dict[tuple[int, int], type[Frame]] = {}


def register(*versions: int) -> Callable[[F], F]:
    """Class decorator adding a frame class to :data:`FRAMES` (for ``versions``, default its VERSION)."""

    def deco(cls: F) -> F:
        for v in versions or (cls.VERSION,):
            key = (cls.KEY, v)
            if key in FRAMES:  # pragma: no cover - programming error
                raise RuntimeError(f"duplicate frame {key}")
            FRAMES[key] = cls
        return cls

    return deco


@dataclass(frozen=True, slots=True, kw_only=True)
class Request(Frame):
    """A frame carrying a correlation id that expects a response."""

    correlation_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Response(Frame):
    """A response: correlation id and response code (1 = OK)."""

    correlation_id: int
    code: int = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class SimpleResponse(Response):
    """A response with no content after the response code."""

    def encode(self) -> bytes:
        """See :meth:`Frame.encode`."""
        return RESPONSE_HEADER_FRAME.pack(10, self.KEY, self.VERSION, self.correlation_id, self.code)

    @classmethod
    def decode(cls, view: memoryview) -> SimpleResponse:
        """See :meth:`Frame.decode`."""
        corr, code, off = response_header(view)
        check_end(view, off)
        return cls(correlation_id=corr, code=code)


def request_header(view: memoryview) -> tuple[int, int]:
    """``(correlation_id, offset of the content)`` of a request body."""
    ensure(view, 0, 8, "request header")
    return U32.unpack_from(view, 4)[0], 8


def response_header(view: memoryview) -> tuple[int, int, int]:
    """``(correlation_id, code, offset of the content)`` of a response body."""
    ensure(view, 0, 10, "response header")
    _, _, corr, code = RESPONSE_HEADER.unpack_from(view, 0)
    return corr, code, 10


def check_end(view: memoryview, offset: int) -> None:
    """Raise :class:`DecodeError` if bytes are left after the last field."""
    if offset != len(view):
        raise DecodeError(f"{len(view) - offset} unexpected trailing bytes in frame")


def decode_frame(view: memoryview) -> Frame:
    """Decode one frame body (after the size prefix) with the dispatch table.

    :raises UnknownCommandError: unknown key/version.
    :raises DecodeError: malformed content.
    """
    ensure(view, 0, 4, "frame header")
    key, version = HEADER.unpack_from(view, 0)
    cls = FRAMES.get((key, version))
    if cls is None:
        raise UnknownCommandError(key, version)
    return cls.decode(view)


def build_request(key: int, version: int, correlation_id: int, *parts: bytes) -> bytes:
    """A whole request frame: size, key, version, correlation id, ``parts``."""
    body = b"".join(parts)
    return REQUEST_FRAME.pack(8 + len(body), key, version, correlation_id) + body


def build_response(key: int, version: int, correlation_id: int, code: int, *parts: bytes) -> bytes:
    """A whole response frame: size, key, version, correlation id, code, ``parts``."""
    body = b"".join(parts)
    return RESPONSE_HEADER_FRAME.pack(10 + len(body), key, version, correlation_id, code) + body


def build_oneway(key: int, version: int, *parts: bytes) -> bytes:
    """A whole one-way frame: size, key, version, ``parts``."""
    body = b"".join(parts)
    return ONEWAY_FRAME.pack(4 + len(body), key, version) + body
