"""Connection-level frames: handshake, SASL, Tune, Open, Close, Heartbeat, versions, metadata."""

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
    I32,
    U16,
    U32,
    decode_bytes,
    decode_map,
    decode_string,
    decode_string_array,
    decode_u16,
    decode_u32,
    encode_bytes,
    encode_map,
    encode_string,
    encode_string_array,
    ensure,
)

__all__ = [
    "CloseRequest",
    "CloseResponse",
    "ExchangeCommandVersionsRequest",
    "ExchangeCommandVersionsResponse",
    "Heartbeat",
    "MetadataBroker",
    "MetadataRequest",
    "MetadataResponse",
    "MetadataStream",
    "MetadataUpdate",
    "OpenRequest",
    "OpenResponse",
    "PeerPropertiesRequest",
    "PeerPropertiesResponse",
    "SaslAuthenticateRequest",
    "SaslAuthenticateResponse",
    "SaslHandshakeRequest",
    "SaslHandshakeResponse",
    "TuneRequest",
    "TuneResponse",
]


def _str(view: memoryview, off: int, what: str) -> tuple[str, int]:
    value, off = decode_string(view, off)
    if value is None:
        raise DecodeError(f"null {what}")
    return value, off


# --------------------------------------------------------------------------- PeerProperties 0x11


@register()
@dataclass(frozen=True, slots=True, kw_only=True)
class PeerPropertiesRequest(Request):
    """C→S ``PeerProperties``: client properties."""

    KEY = 0x0011
    properties: dict[str, str] = field(default_factory=dict)

    def encode(self) -> bytes:
        return build_request(self.KEY, 1, self.correlation_id, encode_map(self.properties))

    @classmethod
    def decode(cls, view: memoryview) -> PeerPropertiesRequest:
        corr, off = request_header(view)
        props, off = decode_map(view, off)
        check_end(view, off)
        return cls(correlation_id=corr, properties=props)


@register()
@dataclass(frozen=True, slots=True, kw_only=True)
class PeerPropertiesResponse(Response):
    """S→C ``PeerProperties`` response: server properties."""

    KEY = 0x8011
    properties: dict[str, str] = field(default_factory=dict)

    def encode(self) -> bytes:
        return build_response(self.KEY, 1, self.correlation_id, self.code, encode_map(self.properties))

    @classmethod
    def decode(cls, view: memoryview) -> PeerPropertiesResponse:
        corr, code, off = response_header(view)
        props: dict[str, str] = {}
        if off < len(view):
            props, off = decode_map(view, off)
        check_end(view, off)
        return cls(correlation_id=corr, code=code, properties=props)


# --------------------------------------------------------------------------- SASL 0x12 / 0x13


@register()
@dataclass(frozen=True, slots=True, kw_only=True)
class SaslHandshakeRequest(Request):
    """C→S ``SaslHandshake`` (no fields, whatever ``PROTOCOL.adoc`` says)."""

    KEY = 0x0012

    def encode(self) -> bytes:
        return build_request(self.KEY, 1, self.correlation_id)

    @classmethod
    def decode(cls, view: memoryview) -> SaslHandshakeRequest:
        corr, off = request_header(view)
        check_end(view, off)
        return cls(correlation_id=corr)


@register()
@dataclass(frozen=True, slots=True, kw_only=True)
class SaslHandshakeResponse(Response):
    """S→C ``SaslHandshake`` response: the mechanisms offered, in server order."""

    KEY = 0x8012
    mechanisms: tuple[str, ...] = ()

    def encode(self) -> bytes:
        return build_response(
            self.KEY, 1, self.correlation_id, self.code, encode_string_array(self.mechanisms)
        )

    @classmethod
    def decode(cls, view: memoryview) -> SaslHandshakeResponse:
        corr, code, off = response_header(view)
        mechs: list[str] = []
        if off < len(view):
            mechs, off = decode_string_array(view, off)
        check_end(view, off)
        return cls(correlation_id=corr, code=code, mechanisms=tuple(mechs))


@register()
@dataclass(frozen=True, slots=True, kw_only=True)
class SaslAuthenticateRequest(Request):
    """C→S ``SaslAuthenticate``: mechanism name and opaque data (``None`` → length -1)."""

    KEY = 0x0013
    mechanism: str
    data: bytes | None = field(default=None, repr=False)  # holds the password (PLAIN)

    def encode(self) -> bytes:
        return build_request(
            self.KEY, 1, self.correlation_id, encode_string(self.mechanism), encode_bytes(self.data)
        )

    @classmethod
    def decode(cls, view: memoryview) -> SaslAuthenticateRequest:
        corr, off = request_header(view)
        mech, off = _str(view, off, "mechanism")
        data, off = decode_bytes(view, off)
        check_end(view, off)
        return cls(correlation_id=corr, mechanism=mech, data=data)


@register()
@dataclass(frozen=True, slots=True, kw_only=True)
class SaslAuthenticateResponse(Response):
    """S→C ``SaslAuthenticate`` response; ``challenge`` only with code 0x0a.

    The broker writes the challenge with a uint16 length (and omits it when
    empty) while the spec says int32: the decoder accepts both, choosing by the
    remaining frame length; the encoder writes the broker's uint16 form.
    """

    KEY = 0x8013
    challenge: bytes | None = None

    def encode(self) -> bytes:
        if self.challenge is None:
            return build_response(self.KEY, 1, self.correlation_id, self.code)
        return build_response(
            self.KEY, 1, self.correlation_id, self.code, U16.pack(len(self.challenge)), self.challenge
        )

    @classmethod
    def decode(cls, view: memoryview) -> SaslAuthenticateResponse:
        corr, code, off = response_header(view)
        left = len(view) - off
        challenge: bytes | None = None
        if left:
            if left >= 4 and I32.unpack_from(view, off)[0] == left - 4:
                challenge = bytes(view[off + 4 :])
            elif left >= 2 and U16.unpack_from(view, off)[0] == left - 2:
                challenge = bytes(view[off + 2 :])
            else:
                raise DecodeError("SaslAuthenticate response: challenge length does not match the frame")
        return cls(correlation_id=corr, code=code, challenge=challenge)


# --------------------------------------------------------------------------- Tune 0x14


@register()
@dataclass(frozen=True, slots=True, kw_only=True)
class TuneRequest(Frame):
    """S→C ``Tune``: the server's frame_max and heartbeat (no correlation id)."""

    KEY = 0x0014
    frame_max: int
    heartbeat: int

    def encode(self) -> bytes:
        return build_oneway(self.KEY, 1, U32.pack(self.frame_max), U32.pack(self.heartbeat))

    @classmethod
    def decode(cls, view: memoryview) -> TuneRequest:
        ensure(view, 0, 12, "Tune")
        fm, off = decode_u32(view, 4)
        hb, off = decode_u32(view, off)
        check_end(view, off)
        return cls(frame_max=fm, heartbeat=hb)


@register()
@dataclass(frozen=True, slots=True, kw_only=True)
class TuneResponse(Frame):
    """C→S ``Tune`` reply (key 0x8014) with the negotiated values."""

    KEY = 0x8014
    frame_max: int
    heartbeat: int

    def encode(self) -> bytes:
        return build_oneway(self.KEY, 1, U32.pack(self.frame_max), U32.pack(self.heartbeat))

    @classmethod
    def decode(cls, view: memoryview) -> TuneResponse:
        ensure(view, 0, 12, "Tune")
        fm, off = decode_u32(view, 4)
        hb, off = decode_u32(view, off)
        check_end(view, off)
        return cls(frame_max=fm, heartbeat=hb)


# --------------------------------------------------------------------------- Open 0x15


@register()
@dataclass(frozen=True, slots=True, kw_only=True)
class OpenRequest(Request):
    """C→S ``Open``: the virtual host."""

    KEY = 0x0015
    virtual_host: str = "/"

    def encode(self) -> bytes:
        return build_request(self.KEY, 1, self.correlation_id, encode_string(self.virtual_host))

    @classmethod
    def decode(cls, view: memoryview) -> OpenRequest:
        corr, off = request_header(view)
        vhost, off = _str(view, off, "virtual host")
        check_end(view, off)
        return cls(correlation_id=corr, virtual_host=vhost)


@register()
@dataclass(frozen=True, slots=True, kw_only=True)
class OpenResponse(Response):
    """S→C ``Open`` response; properties (``advertised_host``/``_port``) omitted when empty."""

    KEY = 0x8015
    properties: dict[str, str] = field(default_factory=dict)

    def encode(self) -> bytes:
        if not self.properties:
            return build_response(self.KEY, 1, self.correlation_id, self.code)
        return build_response(self.KEY, 1, self.correlation_id, self.code, encode_map(self.properties))

    @classmethod
    def decode(cls, view: memoryview) -> OpenResponse:
        corr, code, off = response_header(view)
        props: dict[str, str] = {}
        if off < len(view):
            props, off = decode_map(view, off)
        check_end(view, off)
        return cls(correlation_id=corr, code=code, properties=props)


# --------------------------------------------------------------------------- Close 0x16 / Heartbeat 0x17


@register()
@dataclass(frozen=True, slots=True, kw_only=True)
class CloseRequest(Request):
    """``Close`` (either direction): closing code and reason."""

    KEY = 0x0016
    closing_code: int = 1
    closing_reason: str = ""

    def encode(self) -> bytes:
        return build_request(
            self.KEY, 1, self.correlation_id, U16.pack(self.closing_code), encode_string(self.closing_reason)
        )

    @classmethod
    def decode(cls, view: memoryview) -> CloseRequest:
        corr, off = request_header(view)
        code, off = decode_u16(view, off)
        reason, off = decode_string(view, off)
        check_end(view, off)
        return cls(correlation_id=corr, closing_code=code, closing_reason=reason or "")


@register()
@dataclass(frozen=True, slots=True, kw_only=True)
class CloseResponse(SimpleResponse):
    """``Close`` response (either direction)."""

    KEY = 0x8016


_HEARTBEAT_FRAME = build_oneway(0x0017, 1)


@register()
@dataclass(frozen=True, slots=True, kw_only=True)
class Heartbeat(Frame):
    """``Heartbeat`` (either direction, no fields): ``00000004 0017 0001``."""

    KEY = 0x0017

    def encode(self) -> bytes:
        return _HEARTBEAT_FRAME

    @classmethod
    def decode(cls, view: memoryview) -> Heartbeat:
        check_end(view, 4)
        return cls()


# --------------------------------------------------------------------------- ExchangeCommandVersions 0x1b


def _encode_versions(commands: tuple[tuple[int, int, int], ...]) -> bytes:
    return I32.pack(len(commands)) + b"".join(
        U16.pack(k) + U16.pack(lo) + U16.pack(hi) for k, lo, hi in commands
    )


def _decode_versions(view: memoryview, off: int) -> tuple[tuple[tuple[int, int, int], ...], int]:
    ensure(view, off, 4, "command versions count")
    (n,) = I32.unpack_from(view, off)
    off += 4
    if n < 0 or n * 6 > len(view) - off:
        raise DecodeError(f"command versions count {n} does not fit in the frame")
    out = []
    for _ in range(n):
        k, off = decode_u16(view, off)
        lo, off = decode_u16(view, off)
        hi, off = decode_u16(view, off)
        out.append((k, lo, hi))
    return tuple(out), off


@register()
@dataclass(frozen=True, slots=True, kw_only=True)
class ExchangeCommandVersionsRequest(Request):
    """C→S ``ExchangeCommandVersions``: ``(key, min, max)`` of the commands the client can receive/send."""

    KEY = 0x001B
    commands: tuple[tuple[int, int, int], ...] = ()

    def encode(self) -> bytes:
        return build_request(self.KEY, 1, self.correlation_id, _encode_versions(self.commands))

    @classmethod
    def decode(cls, view: memoryview) -> ExchangeCommandVersionsRequest:
        corr, off = request_header(view)
        cmds, off = _decode_versions(view, off)
        check_end(view, off)
        return cls(correlation_id=corr, commands=cmds)


@register()
@dataclass(frozen=True, slots=True, kw_only=True)
class ExchangeCommandVersionsResponse(Response):
    """S→C ``ExchangeCommandVersions`` response: the server's ``(key, min, max)`` list."""

    KEY = 0x801B
    commands: tuple[tuple[int, int, int], ...] = ()

    def encode(self) -> bytes:
        return build_response(self.KEY, 1, self.correlation_id, self.code, _encode_versions(self.commands))

    @classmethod
    def decode(cls, view: memoryview) -> ExchangeCommandVersionsResponse:
        corr, code, off = response_header(view)
        cmds: tuple[tuple[int, int, int], ...] = ()
        if off < len(view):
            cmds, off = _decode_versions(view, off)
        check_end(view, off)
        return cls(correlation_id=corr, code=code, commands=cmds)


# --------------------------------------------------------------------------- Metadata 0x0f / 0x10


@dataclass(frozen=True, slots=True, kw_only=True)
class MetadataBroker:
    """One broker of a Metadata response."""

    reference: int
    host: str
    port: int


@dataclass(frozen=True, slots=True, kw_only=True)
class MetadataStream:
    """One stream of a Metadata response (leader ``0xFFFF`` and no replicas when ``code`` ≠ OK)."""

    stream: str
    code: int
    leader_reference: int
    replica_references: tuple[int, ...] = ()


@register()
@dataclass(frozen=True, slots=True, kw_only=True)
class MetadataRequest(Request):
    """C→S ``Metadata``: the streams to describe."""

    KEY = 0x000F
    streams: tuple[str, ...] = ()

    def encode(self) -> bytes:
        return build_request(self.KEY, 1, self.correlation_id, encode_string_array(self.streams))

    @classmethod
    def decode(cls, view: memoryview) -> MetadataRequest:
        corr, off = request_header(view)
        streams, off = decode_string_array(view, off)
        check_end(view, off)
        return cls(correlation_id=corr, streams=tuple(streams))


@register()
@dataclass(frozen=True, slots=True, kw_only=True)
class MetadataResponse(Response):
    """S→C ``Metadata`` response: **no top-level response code** (``code`` is always 1 here)."""

    KEY = 0x800F
    brokers: tuple[MetadataBroker, ...] = ()
    streams: tuple[MetadataStream, ...] = ()

    def encode(self) -> bytes:
        parts = [I32.pack(len(self.brokers))]
        for b in self.brokers:
            parts += [U16.pack(b.reference), encode_string(b.host), U32.pack(b.port)]
        parts.append(I32.pack(len(self.streams)))
        for s in self.streams:
            parts += [encode_string(s.stream), U16.pack(s.code), U16.pack(s.leader_reference)]
            parts.append(I32.pack(len(s.replica_references)))
            parts += [U16.pack(r) for r in s.replica_references]
        return build_request(self.KEY, 1, self.correlation_id, *parts)

    @classmethod
    def decode(cls, view: memoryview) -> MetadataResponse:
        corr, off = request_header(view)
        ensure(view, off, 4, "broker count")
        (n,) = I32.unpack_from(view, off)
        off += 4
        if n < 0 or n * 8 > len(view) - off:
            raise DecodeError(f"broker count {n} does not fit in the frame")
        brokers = []
        for _ in range(n):
            ref, off = decode_u16(view, off)
            host, off = _str(view, off, "broker host")
            port, off = decode_u32(view, off)
            brokers.append(MetadataBroker(reference=ref, host=host, port=port))
        ensure(view, off, 4, "stream count")
        (n,) = I32.unpack_from(view, off)
        off += 4
        if n < 0 or n * 10 > len(view) - off:
            raise DecodeError(f"stream count {n} does not fit in the frame")
        streams = []
        for _ in range(n):
            name, off = _str(view, off, "stream name")
            code, off = decode_u16(view, off)
            leader, off = decode_u16(view, off)
            ensure(view, off, 4, "replica count")
            (m,) = I32.unpack_from(view, off)
            off += 4
            if m < 0 or m * 2 > len(view) - off:
                raise DecodeError(f"replica count {m} does not fit in the frame")
            reps = []
            for _ in range(m):
                r, off = decode_u16(view, off)
                reps.append(r)
            streams.append(
                MetadataStream(
                    stream=name, code=code, leader_reference=leader, replica_references=tuple(reps)
                )
            )
        check_end(view, off)
        return cls(correlation_id=corr, brokers=tuple(brokers), streams=tuple(streams))


@register()
@dataclass(frozen=True, slots=True, kw_only=True)
class MetadataUpdate(Frame):
    """S→C ``MetadataUpdate``: code (0x06) and stream."""

    KEY = 0x0010
    code: int
    stream: str

    def encode(self) -> bytes:
        return build_oneway(self.KEY, 1, U16.pack(self.code), encode_string(self.stream))

    @classmethod
    def decode(cls, view: memoryview) -> MetadataUpdate:
        code, off = decode_u16(view, 4)
        stream, off = _str(view, off, "stream")
        check_end(view, off)
        return cls(code=code, stream=stream)
