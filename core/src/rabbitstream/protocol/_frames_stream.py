"""Stream management frames: Create/Delete, super streams, Route/Partitions, offsets, stats."""

from __future__ import annotations

from dataclasses import dataclass, field

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
from rabbitstream.protocol._wire import (
    I64,
    U16,
    U64,
    decode_int64_map,
    decode_map,
    decode_string,
    decode_string_array,
    decode_u16,
    decode_u64,
    encode_int64_map,
    encode_map,
    encode_string,
    encode_string_array,
)

__all__ = [
    "CreateRequest",
    "CreateResponse",
    "CreateSuperStreamRequest",
    "CreateSuperStreamResponse",
    "DeleteRequest",
    "DeleteResponse",
    "DeleteSuperStreamRequest",
    "DeleteSuperStreamResponse",
    "PartitionsRequest",
    "PartitionsResponse",
    "QueryOffsetRequest",
    "QueryOffsetResponse",
    "QueryPublisherSequenceRequest",
    "QueryPublisherSequenceResponse",
    "ResolveOffsetSpecRequest",
    "ResolveOffsetSpecResponse",
    "RouteRequest",
    "RouteResponse",
    "StoreOffset",
    "StreamStatsRequest",
    "StreamStatsResponse",
    "decode_offset_spec",
    "encode_offset_spec",
]

#: Offset types whose value travels on the wire (4 = offset uint64, 5 = timestamp int64 ms).
OFFSET_TYPE_OFFSET = 4
OFFSET_TYPE_TIMESTAMP = 5


def _str(view: memoryview, off: int, what: str) -> tuple[str, int]:
    value, off = decode_string(view, off)
    if value is None:
        raise DecodeError(f"null {what}")
    return value, off


def encode_offset_spec(offset_type: int, offset: int | None) -> bytes:
    """``OffsetType:uint16`` + ``Offset`` only for types 4 (uint64) and 5 (int64)."""
    if offset_type == OFFSET_TYPE_OFFSET:
        return U16.pack(offset_type) + U64.pack(offset or 0)
    if offset_type == OFFSET_TYPE_TIMESTAMP:
        return U16.pack(offset_type) + I64.pack(offset or 0)
    return U16.pack(offset_type)


def decode_offset_spec(view: memoryview, off: int) -> tuple[int, int | None, int]:
    """``(offset_type, offset or None, new offset)``."""
    otype, off = decode_u16(view, off)
    if otype == OFFSET_TYPE_OFFSET:
        value, off = decode_u64(view, off)
        return otype, value, off
    if otype == OFFSET_TYPE_TIMESTAMP:
        if off + 8 > len(view):
            raise DecodeError("truncated frame: timestamp offset")
        return otype, I64.unpack_from(view, off)[0], off + 8
    return otype, None, off


# --------------------------------------------------------------------------- Create / Delete


@register()
@dataclass(frozen=True, slots=True, kw_only=True)
class CreateRequest(Request):
    """C→S ``Create``: stream name and string arguments."""

    KEY = 0x000D
    stream: str
    arguments: dict[str, str] = field(default_factory=dict)

    def encode(self) -> bytes:
        return build_request(
            self.KEY, 1, self.correlation_id, encode_string(self.stream), encode_map(self.arguments)
        )

    @classmethod
    def decode(cls, view: memoryview) -> CreateRequest:
        corr, off = request_header(view)
        stream, off = _str(view, off, "stream")
        args, off = decode_map(view, off)
        check_end(view, off)
        return cls(correlation_id=corr, stream=stream, arguments=args)


@register()
@dataclass(frozen=True, slots=True, kw_only=True)
class CreateResponse(SimpleResponse):
    """``Create`` response."""

    KEY = 0x800D


@register()
@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteRequest(Request):
    """C→S ``Delete``: stream name."""

    KEY = 0x000E
    stream: str

    def encode(self) -> bytes:
        return build_request(self.KEY, 1, self.correlation_id, encode_string(self.stream))

    @classmethod
    def decode(cls, view: memoryview) -> DeleteRequest:
        corr, off = request_header(view)
        stream, off = _str(view, off, "stream")
        check_end(view, off)
        return cls(correlation_id=corr, stream=stream)


@register()
@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteResponse(SimpleResponse):
    """``Delete`` response."""

    KEY = 0x800E


# --------------------------------------------------------------------------- super streams


@register()
@dataclass(frozen=True, slots=True, kw_only=True)
class CreateSuperStreamRequest(Request):
    """C→S ``CreateSuperStream`` (3.13+)."""

    KEY = 0x001D
    name: str
    partitions: tuple[str, ...] = ()
    binding_keys: tuple[str, ...] = ()
    arguments: dict[str, str] = field(default_factory=dict)

    def encode(self) -> bytes:
        return build_request(
            self.KEY,
            1,
            self.correlation_id,
            encode_string(self.name),
            encode_string_array(self.partitions),
            encode_string_array(self.binding_keys),
            encode_map(self.arguments),
        )

    @classmethod
    def decode(cls, view: memoryview) -> CreateSuperStreamRequest:
        corr, off = request_header(view)
        name, off = _str(view, off, "super stream")
        parts, off = decode_string_array(view, off)
        keys, off = decode_string_array(view, off)
        args, off = decode_map(view, off)
        check_end(view, off)
        return cls(
            correlation_id=corr, name=name, partitions=tuple(parts), binding_keys=tuple(keys), arguments=args
        )


@register()
@dataclass(frozen=True, slots=True, kw_only=True)
class CreateSuperStreamResponse(SimpleResponse):
    """``CreateSuperStream`` response."""

    KEY = 0x801D


@register()
@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteSuperStreamRequest(Request):
    """C→S ``DeleteSuperStream`` (3.13+)."""

    KEY = 0x001E
    name: str

    def encode(self) -> bytes:
        return build_request(self.KEY, 1, self.correlation_id, encode_string(self.name))

    @classmethod
    def decode(cls, view: memoryview) -> DeleteSuperStreamRequest:
        corr, off = request_header(view)
        name, off = _str(view, off, "super stream")
        check_end(view, off)
        return cls(correlation_id=corr, name=name)


@register()
@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteSuperStreamResponse(SimpleResponse):
    """``DeleteSuperStream`` response."""

    KEY = 0x801E


@register()
@dataclass(frozen=True, slots=True, kw_only=True)
class RouteRequest(Request):
    """C→S ``Route``: routing key and super stream."""

    KEY = 0x0018
    routing_key: str
    super_stream: str

    def encode(self) -> bytes:
        return build_request(
            self.KEY,
            1,
            self.correlation_id,
            encode_string(self.routing_key),
            encode_string(self.super_stream),
        )

    @classmethod
    def decode(cls, view: memoryview) -> RouteRequest:
        corr, off = request_header(view)
        key, off = _str(view, off, "routing key")
        ss, off = _str(view, off, "super stream")
        check_end(view, off)
        return cls(correlation_id=corr, routing_key=key, super_stream=ss)


@dataclass(frozen=True, slots=True, kw_only=True)
class _StreamsResponse(Response):
    streams: tuple[str, ...] = ()

    def encode(self) -> bytes:
        return build_response(self.KEY, 1, self.correlation_id, self.code, encode_string_array(self.streams))

    @classmethod
    def decode(cls, view: memoryview) -> _StreamsResponse:
        corr, code, off = response_header(view)
        streams: list[str] = []
        if off < len(view):
            streams, off = decode_string_array(view, off)
        check_end(view, off)
        return cls(correlation_id=corr, code=code, streams=tuple(streams))


@register()
@dataclass(frozen=True, slots=True, kw_only=True)
class RouteResponse(_StreamsResponse):
    """``Route`` response: 0..n partition streams."""

    KEY = 0x8018


@register()
@dataclass(frozen=True, slots=True, kw_only=True)
class PartitionsRequest(Request):
    """C→S ``Partitions``: super stream name."""

    KEY = 0x0019
    super_stream: str

    def encode(self) -> bytes:
        return build_request(self.KEY, 1, self.correlation_id, encode_string(self.super_stream))

    @classmethod
    def decode(cls, view: memoryview) -> PartitionsRequest:
        corr, off = request_header(view)
        ss, off = _str(view, off, "super stream")
        check_end(view, off)
        return cls(correlation_id=corr, super_stream=ss)


@register()
@dataclass(frozen=True, slots=True, kw_only=True)
class PartitionsResponse(_StreamsResponse):
    """``Partitions`` response: partition streams in ``x-stream-partition-order``."""

    KEY = 0x8019


# --------------------------------------------------------------------------- offsets, sequences, stats


@register()
@dataclass(frozen=True, slots=True, kw_only=True)
class StoreOffset(Frame):
    """C→S one-way ``StoreOffset``."""

    KEY = 0x000A
    reference: str
    stream: str
    offset: int

    def encode(self) -> bytes:
        return build_oneway(
            self.KEY, 1, encode_string(self.reference), encode_string(self.stream), U64.pack(self.offset)
        )

    @classmethod
    def decode(cls, view: memoryview) -> StoreOffset:
        ref, off = _str(view, 4, "reference")
        stream, off = _str(view, off, "stream")
        offset, off = decode_u64(view, off)
        check_end(view, off)
        return cls(reference=ref, stream=stream, offset=offset)


@dataclass(frozen=True, slots=True, kw_only=True)
class _RefStreamRequest(Request):
    reference: str
    stream: str

    def encode(self) -> bytes:
        return build_request(
            self.KEY, 1, self.correlation_id, encode_string(self.reference), encode_string(self.stream)
        )

    @classmethod
    def decode(cls, view: memoryview) -> _RefStreamRequest:
        corr, off = request_header(view)
        ref, off = _str(view, off, "reference")
        stream, off = _str(view, off, "stream")
        check_end(view, off)
        return cls(correlation_id=corr, reference=ref, stream=stream)


@dataclass(frozen=True, slots=True, kw_only=True)
class _U64Response(Response):
    value: int = 0

    def encode(self) -> bytes:
        return build_response(self.KEY, 1, self.correlation_id, self.code, U64.pack(self.value))

    @classmethod
    def decode(cls, view: memoryview) -> _U64Response:
        corr, code, off = response_header(view)
        value = 0
        if off < len(view):
            value, off = decode_u64(view, off)
        check_end(view, off)
        return cls(correlation_id=corr, code=code, value=value)


@register()
@dataclass(frozen=True, slots=True, kw_only=True)
class QueryOffsetRequest(_RefStreamRequest):
    """C→S ``QueryOffset``."""

    KEY = 0x000B


@register()
@dataclass(frozen=True, slots=True, kw_only=True)
class QueryOffsetResponse(_U64Response):
    """``QueryOffset`` response: ``value`` = stored offset (code 0x13 when none)."""

    KEY = 0x800B


@register()
@dataclass(frozen=True, slots=True, kw_only=True)
class QueryPublisherSequenceRequest(_RefStreamRequest):
    """C→S ``QueryPublisherSequence``."""

    KEY = 0x0005


@register()
@dataclass(frozen=True, slots=True, kw_only=True)
class QueryPublisherSequenceResponse(_U64Response):
    """``QueryPublisherSequence`` response: ``value`` = last publishing id (0 if none)."""

    KEY = 0x8005


@register()
@dataclass(frozen=True, slots=True, kw_only=True)
class StreamStatsRequest(Request):
    """C→S ``StreamStats`` (3.11+)."""

    KEY = 0x001C
    stream: str

    def encode(self) -> bytes:
        return build_request(self.KEY, 1, self.correlation_id, encode_string(self.stream))

    @classmethod
    def decode(cls, view: memoryview) -> StreamStatsRequest:
        corr, off = request_header(view)
        stream, off = _str(view, off, "stream")
        check_end(view, off)
        return cls(correlation_id=corr, stream=stream)


@register()
@dataclass(frozen=True, slots=True, kw_only=True)
class StreamStatsResponse(Response):
    """``StreamStats`` response: int64 statistics (``-1`` = none)."""

    KEY = 0x801C
    stats: dict[str, int] = field(default_factory=dict)

    def encode(self) -> bytes:
        return build_response(self.KEY, 1, self.correlation_id, self.code, encode_int64_map(self.stats))

    @classmethod
    def decode(cls, view: memoryview) -> StreamStatsResponse:
        corr, code, off = response_header(view)
        stats: dict[str, int] = {}
        if off < len(view):
            stats, off = decode_int64_map(view, off)
        check_end(view, off)
        return cls(correlation_id=corr, code=code, stats=stats)


@register()
@dataclass(frozen=True, slots=True, kw_only=True)
class ResolveOffsetSpecRequest(Request):
    """C→S ``ResolveOffsetSpec`` (4.3+); properties omitted when empty."""

    KEY = 0x001F
    stream: str
    offset_type: int
    offset: int | None = None
    properties: dict[str, str] = field(default_factory=dict)

    def encode(self) -> bytes:
        parts = [encode_string(self.stream), encode_offset_spec(self.offset_type, self.offset)]
        if self.properties:
            parts.append(encode_map(self.properties))
        return build_request(self.KEY, 1, self.correlation_id, *parts)

    @classmethod
    def decode(cls, view: memoryview) -> ResolveOffsetSpecRequest:
        corr, off = request_header(view)
        stream, off = _str(view, off, "stream")
        otype, offset, off = decode_offset_spec(view, off)
        props: dict[str, str] = {}
        if off < len(view):
            props, off = decode_map(view, off)
        check_end(view, off)
        return cls(correlation_id=corr, stream=stream, offset_type=otype, offset=offset, properties=props)


@register()
@dataclass(frozen=True, slots=True, kw_only=True)
class ResolveOffsetSpecResponse(Response):
    """``ResolveOffsetSpec`` response: ``OffsetType`` (always 4) and ``Offset``."""

    KEY = 0x801F
    offset_type: int = OFFSET_TYPE_OFFSET
    offset: int = 0

    def encode(self) -> bytes:
        return build_response(
            self.KEY, 1, self.correlation_id, self.code, U16.pack(self.offset_type), U64.pack(self.offset)
        )

    @classmethod
    def decode(cls, view: memoryview) -> ResolveOffsetSpecResponse:
        corr, code, off = response_header(view)
        otype, offset = OFFSET_TYPE_OFFSET, 0
        if off < len(view):
            otype, off = decode_u16(view, off)
            offset, off = decode_u64(view, off)
        check_end(view, off)
        return cls(correlation_id=corr, code=code, offset_type=otype, offset=offset)
