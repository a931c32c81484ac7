"""Publishing and consuming frames: publishers, Publish, confirms, Subscribe, Deliver, Credit, SAC."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Final

from rabbitstream.exceptions import DecodeError
from rabbitstream.protocol._framebase import (
    Frame,
    Request,
    Response,
    SimpleResponse,
    build_oneway,
    build_request,
    build_response,
    check_end,
    register,
    request_header,
    response_header,
)
from rabbitstream.protocol._frames_stream import decode_offset_spec, encode_offset_spec
from rabbitstream.protocol._wire import (
    HEADER,
    I32,
    U8,
    U16,
    U64,
    decode_map,
    decode_string,
    decode_u8,
    decode_u16,
    encode_bytes,
    encode_map,
    encode_string,
    ensure,
)

__all__ = [
    "DELIVER_KEY",
    "PUBLISH_KEY",
    "ConsumerUpdateRequest",
    "ConsumerUpdateResponse",
    "Credit",
    "CreditResponse",
    "DeclarePublisherRequest",
    "DeclarePublisherResponse",
    "DeletePublisherRequest",
    "DeletePublisherResponse",
    "Deliver",
    "Publish",
    "PublishConfirm",
    "PublishError",
    "PublishV2",
    "SubscribeRequest",
    "SubscribeResponse",
    "UnsubscribeRequest",
    "UnsubscribeResponse",
]

#: Command keys that other modules need as plain numbers (Publish is written by the hot-path encoder
#: in ``_publish.py``; both appear in ExchangeCommandVersions).
PUBLISH_KEY: Final = 0x0002
DELIVER_KEY: Final = 0x0008

#: PublisherId:uint8 + count:int32 (PublishConfirm / PublishError / Publish prefix).
_ID_COUNT: Final = struct.Struct(">Bi")
#: PublishingId:uint64 + Code:uint16 (PublishError entry).
_ID_CODE: Final = struct.Struct(">QH")
#: PublishingId:uint64 + Size:uint32 (Publish v1 entry prefix).
_ID_SIZE: Final = struct.Struct(">QI")


def _str(view: memoryview, off: int, what: str) -> tuple[str, int]:
    value, off = decode_string(view, off)
    if value is None:
        raise DecodeError(f"null {what}")
    return value, off


# --------------------------------------------------------------------------- publishers


@register()
@dataclass(frozen=True, slots=True, kw_only=True)
class DeclarePublisherRequest(Request):
    """C→S ``DeclarePublisher``; a non-empty ``reference`` (≤ 255 bytes) enables deduplication.

    "No reference" is the empty string: RabbitMQ (4.0.5, 4.3.6) answers a null
    string (length -1) here with Close(0x0d, "unknown frame").
    """

    KEY = 0x0001
    publisher_id: int
    reference: str = ""
    stream: str

    def encode(self) -> bytes:
        return build_request(
            self.KEY,
            1,
            self.correlation_id,
            U8.pack(self.publisher_id),
            encode_string(self.reference),
            encode_string(self.stream),
        )

    @classmethod
    def decode(cls, view: memoryview) -> DeclarePublisherRequest:
        corr, off = request_header(view)
        pid, off = decode_u8(view, off)
        ref, off = decode_string(view, off)
        stream, off = _str(view, off, "stream")
        check_end(view, off)
        return cls(correlation_id=corr, publisher_id=pid, reference=ref or "", stream=stream)


@register()
@dataclass(frozen=True, slots=True, kw_only=True)
class DeclarePublisherResponse(SimpleResponse):
    """``DeclarePublisher`` response."""

    KEY = 0x8001


@register()
@dataclass(frozen=True, slots=True, kw_only=True)
class DeletePublisherRequest(Request):
    """C→S ``DeletePublisher``."""

    KEY = 0x0006
    publisher_id: int

    def encode(self) -> bytes:
        return build_request(self.KEY, 1, self.correlation_id, U8.pack(self.publisher_id))

    @classmethod
    def decode(cls, view: memoryview) -> DeletePublisherRequest:
        corr, off = request_header(view)
        pid, off = decode_u8(view, off)
        check_end(view, off)
        return cls(correlation_id=corr, publisher_id=pid)


@register()
@dataclass(frozen=True, slots=True, kw_only=True)
class DeletePublisherResponse(SimpleResponse):
    """``DeletePublisher`` response."""

    KEY = 0x8006


# --------------------------------------------------------------------------- Publish


def _publish_count(view: memoryview, min_entry: int) -> tuple[int, int, int]:
    ensure(view, 0, 9, "Publish header")
    pid, n = _ID_COUNT.unpack_from(view, 4)
    if n < 0 or n * min_entry > len(view) - 9:
        raise DecodeError(f"message count {n} does not fit in the frame")
    return pid, n, 9


@register()
@dataclass(frozen=True, slots=True, kw_only=True)
class Publish(Frame):
    """C→S ``Publish`` v1 with simple entries ``(publishing_id, message)``.

    The hot-path encoder lives in ``protocol/_publish.py``; this class is the
    reference implementation (tests, scripted peers).  Sub-entry batches are not
    decoded here.
    """

    KEY = PUBLISH_KEY
    VERSION = 1
    publisher_id: int
    messages: tuple[tuple[int, bytes], ...] = ()

    def encode(self) -> bytes:
        parts = [_ID_COUNT.pack(self.publisher_id, len(self.messages))]
        for pub_id, body in self.messages:
            parts.append(_ID_SIZE.pack(pub_id, len(body)))
            parts.append(body)
        return build_oneway(self.KEY, 1, *parts)

    @classmethod
    def decode(cls, view: memoryview) -> Publish:
        pid, n, off = _publish_count(view, 12)
        msgs = []
        for _ in range(n):
            ensure(view, off, 12, "Publish entry")
            pub_id, size = _ID_SIZE.unpack_from(view, off)
            off += 12
            if size & 0x80000000:
                raise DecodeError("sub-entry batches are not decoded by Publish.decode")
            ensure(view, off, size, "message")
            msgs.append((pub_id, bytes(view[off : off + size])))
            off += size
        check_end(view, off)
        return cls(publisher_id=pid, messages=tuple(msgs))


@register()
@dataclass(frozen=True, slots=True, kw_only=True)
class PublishV2(Frame):
    """C→S ``Publish`` v2: entries ``(publishing_id, filter_value or None, message)``."""

    KEY = PUBLISH_KEY
    VERSION = 2
    publisher_id: int
    messages: tuple[tuple[int, str | None, bytes], ...] = ()

    def encode(self) -> bytes:
        parts = [_ID_COUNT.pack(self.publisher_id, len(self.messages))]
        for pub_id, filter_value, body in self.messages:
            parts += [U64.pack(pub_id), encode_string(filter_value), encode_bytes(body)]
        return build_oneway(self.KEY, 2, *parts)

    @classmethod
    def decode(cls, view: memoryview) -> PublishV2:
        pid, n, off = _publish_count(view, 14)
        msgs = []
        for _ in range(n):
            ensure(view, off, 8, "publishing id")
            (pub_id,) = U64.unpack_from(view, off)
            fv, off = decode_string(view, off + 8)
            ensure(view, off, 4, "message size")
            (size,) = I32.unpack_from(view, off)
            off += 4
            if size < 0:
                raise DecodeError(f"invalid message size {size}")
            ensure(view, off, size, "message")
            msgs.append((pub_id, fv, bytes(view[off : off + size])))
            off += size
        check_end(view, off)
        return cls(publisher_id=pid, messages=tuple(msgs))


@register()
@dataclass(frozen=True, slots=True, kw_only=True)
class PublishConfirm(Frame):
    """S→C ``PublishConfirm``: the confirmed publishing ids."""

    KEY = 0x0003
    publisher_id: int
    publishing_ids: tuple[int, ...] = ()

    def encode(self) -> bytes:
        n = len(self.publishing_ids)
        return build_oneway(
            self.KEY, 1, _ID_COUNT.pack(self.publisher_id, n), struct.pack(f">{n}Q", *self.publishing_ids)
        )

    @classmethod
    def decode(cls, view: memoryview) -> PublishConfirm:
        pid, n, off = _publish_count(view, 8)
        ids = struct.unpack_from(f">{n}Q", view, off)
        check_end(view, off + 8 * n)
        return cls(publisher_id=pid, publishing_ids=ids)


@register()
@dataclass(frozen=True, slots=True, kw_only=True)
class PublishError(Frame):
    """S→C ``PublishError``: ``(publishing_id, code)`` pairs."""

    KEY = 0x0004
    publisher_id: int
    errors: tuple[tuple[int, int], ...] = ()

    def encode(self) -> bytes:
        parts = [_ID_COUNT.pack(self.publisher_id, len(self.errors))]
        parts += [_ID_CODE.pack(i, c) for i, c in self.errors]
        return build_oneway(self.KEY, 1, *parts)

    @classmethod
    def decode(cls, view: memoryview) -> PublishError:
        pid, n, off = _publish_count(view, 10)
        errs = tuple(_ID_CODE.iter_unpack(view[off : off + 10 * n]))
        check_end(view, off + 10 * n)
        return cls(publisher_id=pid, errors=errs)


# --------------------------------------------------------------------------- Subscribe / Unsubscribe


@register()
@dataclass(frozen=True, slots=True, kw_only=True)
class SubscribeRequest(Request):
    """C→S ``Subscribe``; ``offset`` only for types 4/5; properties omitted when empty."""

    KEY = 0x0007
    subscription_id: int
    stream: str
    offset_type: int
    offset: int | None = None
    credit: int
    properties: dict[str, str] = field(default_factory=dict)

    def encode(self) -> bytes:
        parts = [
            U8.pack(self.subscription_id),
            encode_string(self.stream),
            encode_offset_spec(self.offset_type, self.offset),
            U16.pack(self.credit),
        ]
        if self.properties:
            parts.append(encode_map(self.properties))
        return build_request(self.KEY, 1, self.correlation_id, *parts)

    @classmethod
    def decode(cls, view: memoryview) -> SubscribeRequest:
        corr, off = request_header(view)
        sub, off = decode_u8(view, off)
        stream, off = _str(view, off, "stream")
        otype, offset, off = decode_offset_spec(view, off)
        credit, off = decode_u16(view, off)
        props: dict[str, str] = {}
        if off < len(view):
            props, off = decode_map(view, off)
        check_end(view, off)
        return cls(
            correlation_id=corr,
            subscription_id=sub,
            stream=stream,
            offset_type=otype,
            offset=offset,
            credit=credit,
            properties=props,
        )


@register()
@dataclass(frozen=True, slots=True, kw_only=True)
class SubscribeResponse(SimpleResponse):
    """``Subscribe`` response."""

    KEY = 0x8007


@register()
@dataclass(frozen=True, slots=True, kw_only=True)
class UnsubscribeRequest(Request):
    """C→S ``Unsubscribe``."""

    KEY = 0x000C
    subscription_id: int

    def encode(self) -> bytes:
        return build_request(self.KEY, 1, self.correlation_id, U8.pack(self.subscription_id))

    @classmethod
    def decode(cls, view: memoryview) -> UnsubscribeRequest:
        corr, off = request_header(view)
        sub, off = decode_u8(view, off)
        check_end(view, off)
        return cls(correlation_id=corr, subscription_id=sub)


@register()
@dataclass(frozen=True, slots=True, kw_only=True)
class UnsubscribeResponse(SimpleResponse):
    """``Unsubscribe`` response."""

    KEY = 0x800C


# --------------------------------------------------------------------------- Deliver / Credit


_SUB_COMMITTED: Final = struct.Struct(">BQ")


@register(1, 2)
@dataclass(frozen=True, slots=True, kw_only=True)
class Deliver(Frame):
    """S→C ``Deliver``: v1 ``SubscriptionId, chunk``; v2 adds ``CommittedChunkId``.

    ``chunk`` is the raw osiris chunk (a :class:`memoryview` into the received
    bytes when decoded); parsing it is ``protocol._chunk``'s job.
    """

    KEY = DELIVER_KEY
    subscription_id: int
    committed_chunk_id: int | None = None
    chunk: bytes | memoryview = b""

    def encode(self) -> bytes:
        if self.committed_chunk_id is None:
            return build_oneway(self.KEY, 1, U8.pack(self.subscription_id), bytes(self.chunk))
        return build_oneway(
            self.KEY, 2, _SUB_COMMITTED.pack(self.subscription_id, self.committed_chunk_id), bytes(self.chunk)
        )

    @classmethod
    def decode(cls, view: memoryview) -> Deliver:
        ensure(view, 0, 5, "Deliver header")
        _, version = HEADER.unpack_from(view, 0)
        if version == 1:
            return cls(subscription_id=view[4], chunk=view[5:])
        ensure(view, 0, 13, "Deliver v2 header")
        sub, committed = _SUB_COMMITTED.unpack_from(view, 4)
        return cls(subscription_id=sub, committed_chunk_id=committed, chunk=view[13:])


@register()
@dataclass(frozen=True, slots=True, kw_only=True)
class Credit(Frame):
    """C→S one-way ``Credit`` (server parses it as int16: keep ≤ 32767)."""

    KEY = 0x0009
    subscription_id: int
    credit: int

    def encode(self) -> bytes:
        return build_oneway(self.KEY, 1, U8.pack(self.subscription_id), U16.pack(self.credit))

    @classmethod
    def decode(cls, view: memoryview) -> Credit:
        sub, off = decode_u8(view, 4)
        credit, off = decode_u16(view, off)
        check_end(view, off)
        return cls(subscription_id=sub, credit=credit)


@register()
@dataclass(frozen=True, slots=True, kw_only=True)
class CreditResponse(Frame):
    """S→C ``Credit`` response, sent only on error and **without correlation id**."""

    KEY = 0x8009
    code: int
    subscription_id: int

    def encode(self) -> bytes:
        return build_oneway(self.KEY, 1, U16.pack(self.code), U8.pack(self.subscription_id))

    @classmethod
    def decode(cls, view: memoryview) -> CreditResponse:
        code, off = decode_u16(view, 4)
        sub, off = decode_u8(view, off)
        check_end(view, off)
        return cls(code=code, subscription_id=sub)


# --------------------------------------------------------------------------- ConsumerUpdate (SAC)


@register()
@dataclass(frozen=True, slots=True, kw_only=True)
class ConsumerUpdateRequest(Request):
    """S→C ``ConsumerUpdate``: the subscription became active / passive (single active consumer)."""

    KEY = 0x001A
    subscription_id: int
    active: bool

    def encode(self) -> bytes:
        return build_request(
            self.KEY, 1, self.correlation_id, U8.pack(self.subscription_id), U8.pack(1 if self.active else 0)
        )

    @classmethod
    def decode(cls, view: memoryview) -> ConsumerUpdateRequest:
        corr, off = request_header(view)
        sub, off = decode_u8(view, off)
        active, off = decode_u8(view, off)
        check_end(view, off)
        return cls(correlation_id=corr, subscription_id=sub, active=bool(active))


@register()
@dataclass(frozen=True, slots=True, kw_only=True)
class ConsumerUpdateResponse(Response):
    """C→S ``ConsumerUpdate`` response: where to (re)start (type 0 = none; offset for 4/5 only)."""

    KEY = 0x801A
    offset_type: int = 0
    offset: int | None = None

    def encode(self) -> bytes:
        return build_response(
            self.KEY, 1, self.correlation_id, self.code, encode_offset_spec(self.offset_type, self.offset)
        )

    @classmethod
    def decode(cls, view: memoryview) -> ConsumerUpdateResponse:
        corr, code, off = response_header(view)
        otype, offset, off = decode_offset_spec(view, off)
        check_end(view, off)
        return cls(correlation_id=corr, code=code, offset_type=otype, offset=offset)
