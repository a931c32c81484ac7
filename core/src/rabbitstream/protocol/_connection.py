"""Sans-IO RabbitMQ Streams connection (h2 style).

:class:`ProtocolConnection` does no I/O: feed it received bytes with
:meth:`~ProtocolConnection.receive_data` (returns a list of events), queue frames
with the ``send_*`` methods and write what :meth:`~ProtocolConnection.data_to_send`
returns.  It runs the whole handshake itself (PeerProperties → SASL handshake →
SASL authenticate, challenge loop included → Tune → Open), answers Tune and
Heartbeat, answers a broker ``Close``, allocates correlation ids and checks
every outgoing frame against the negotiated ``frame_max``.

Events are the decoded frames themselves (responses, ``Deliver``,
``PublishConfirm``, ...) plus :class:`HandshakeComplete`,
:class:`HandshakeFailed` and :class:`ConnectionTerminated`.
"""

from __future__ import annotations

import enum
import struct
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final, TypeAlias

from rabbitstream.exceptions import (
    ConnectionClosed,
    DecodeError,
    FrameTooLargeError,
    InboundFrameTooLarge,
    InvalidArgument,
    LocalProtocolError,
    RabbitStreamError,
    RemoteProtocolError,
    SASLError,
    SASLMechanismNotOffered,
    ServerError,
)
from rabbitstream.plugin._types import SaslAuthenticator
from rabbitstream.protocol._framebase import FRAMES, Frame, UnknownCommandError
from rabbitstream.protocol._frames_conn import (
    CloseRequest,
    CloseResponse,
    Heartbeat,
    OpenRequest,
    OpenResponse,
    PeerPropertiesRequest,
    PeerPropertiesResponse,
    SaslAuthenticateRequest,
    SaslAuthenticateResponse,
    SaslHandshakeRequest,
    SaslHandshakeResponse,
    TuneRequest,
    TuneResponse,
)
from rabbitstream.protocol._frames_pubsub import DELIVER_KEY
from rabbitstream.protocol._wire import HEADER, SIZE

__all__ = [
    "DEFAULT_MAX_INBOUND_FRAME",
    "INITIAL_FRAME_MAX",
    "ConnectionState",
    "ConnectionTerminated",
    "Event",
    "HandshakeComplete",
    "HandshakeFailed",
    "ProtocolConnection",
    "check_credentials",
    "negotiate",
]

#: Frames are capped at this size (both ways) until Open succeeds (broker 4.3.5+).
INITIAL_FRAME_MAX: Final = 8192
#: Default cap on frames from the broker after Open (256 MiB; the broker's own
#: frames stay far below it, a hostile peer cannot make us buffer gigabytes).
DEFAULT_MAX_INBOUND_FRAME: Final = 256 * 1024 * 1024
_OK: Final = 1
_SASL_CHALLENGE: Final = 0x0A
_DELIVER_KEY: Final = DELIVER_KEY
_HEARTBEAT_FRAME: Final = Heartbeat().encode()
_MAX_CORRELATION_ID: Final = 0xFFFFFFFF


def check_credentials(username: str, password: str) -> None:
    """Refuse credentials no SASL exchange can carry, before anything is sent.

    :raises InvalidArgument: a NUL character (SASL PLAIN's field separator) in either;
        the message names the argument, never its value.
    """
    for what, value in (("username", username), ("password", password)):
        if "\0" in value:
            raise InvalidArgument(f"{what} must not contain a NUL character (U+0000)")


class ConnectionState(enum.Enum):
    """Where the connection is in its life cycle."""

    IDLE = "idle"
    PEER_PROPERTIES = "peer-properties"
    SASL_HANDSHAKE = "sasl-handshake"
    SASL_AUTHENTICATE = "sasl-authenticate"
    TUNING = "tuning"
    OPENING = "opening"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


S = ConnectionState

#: Handshake transition table: ``(state, received frame class) -> next state``.
#: A SASL challenge (code 0x0a) keeps SASL_AUTHENTICATE; any non-OK code fails the handshake.
HANDSHAKE_TRANSITIONS: Final[Mapping[tuple[ConnectionState, type[Frame]], ConnectionState]] = {
    (S.PEER_PROPERTIES, PeerPropertiesResponse): S.SASL_HANDSHAKE,
    (S.SASL_HANDSHAKE, SaslHandshakeResponse): S.SASL_AUTHENTICATE,
    (S.SASL_AUTHENTICATE, SaslAuthenticateResponse): S.TUNING,
    (S.TUNING, TuneRequest): S.OPENING,
    (S.OPENING, OpenResponse): S.OPEN,
}

_HANDSHAKE_STATES: Final = frozenset(
    {S.PEER_PROPERTIES, S.SASL_HANDSHAKE, S.SASL_AUTHENTICATE, S.TUNING, S.OPENING}
)


@dataclass(frozen=True, slots=True, kw_only=True)
class HandshakeComplete:
    """Open succeeded: negotiated values and both property maps."""

    server_properties: dict[str, str]
    connection_properties: dict[str, str]
    frame_max: int
    heartbeat: int
    mechanisms: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class HandshakeFailed:
    """The handshake failed (authentication, vhost, mechanism not offered...); the connection is CLOSED."""

    error: RabbitStreamError


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionTerminated:
    """The connection ended: our Close was answered (``error`` None), the broker sent Close, or a
    protocol violation was detected (``error`` set).  State is CLOSED afterwards."""

    error: RabbitStreamError | None = None
    closing_code: int | None = None
    closing_reason: str = ""


Event: TypeAlias = Frame | HandshakeComplete | HandshakeFailed | ConnectionTerminated


def negotiate(client: int, server: int) -> int:
    """Tune negotiation: the smaller value, where 0 (no limit) yields the other side's value."""
    if client == 0 or server == 0:
        return max(client, server)
    return min(client, server)


@dataclass(slots=True)
class _Handshake:
    properties: dict[str, str]
    mechanism: SaslAuthenticator
    username: str
    password: str = field(repr=False)  # never in a repr or a log line
    vhost: str
    frame_max: int
    heartbeat: int
    corr: int = 0
    server_properties: dict[str, str] = field(default_factory=dict)
    mechanisms: tuple[str, ...] = ()


class ProtocolConnection:
    """The sans-IO state machine of one client connection."""

    __slots__ = (
        "_buf",
        "_clock",
        "_corr",
        "_handshake",
        "_need",
        "_out",
        "answer_heartbeats",
        "error",
        "frame_max",
        "heartbeat",
        "last_received",
        "max_inbound_frame_size",
        "state",
    )

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        answer_heartbeats: bool = True,
        max_inbound_frame_size: int = DEFAULT_MAX_INBOUND_FRAME,
    ) -> None:
        if max_inbound_frame_size < INITIAL_FRAME_MAX:
            raise InvalidArgument(f"max_inbound_frame_size must be at least {INITIAL_FRAME_MAX} bytes")
        #: Largest frame accepted from the broker once open: a larger one ends the
        #: connection with :class:`~rabbitstream.exceptions.InboundFrameTooLarge`
        #: before any of it is buffered.
        self.max_inbound_frame_size = max_inbound_frame_size
        self.state = ConnectionState.IDLE
        #: Negotiated values (0 until Tune).
        self.frame_max = 0
        self.heartbeat = 0
        #: Clock reading of the last :meth:`receive_data` call with data.
        self.last_received = clock()
        #: The error that terminated the connection, if any.
        self.error: RabbitStreamError | None = None
        self.answer_heartbeats = answer_heartbeats
        self._clock = clock
        self._buf = bytearray()
        self._need = 0
        self._out = bytearray()
        self._corr = 0
        self._handshake: _Handshake | None = None

    # ------------------------------------------------------------------ outbound

    def next_correlation_id(self) -> int:
        """A fresh correlation id (1 … 2**32-1, wrapping)."""
        self._corr = self._corr % _MAX_CORRELATION_ID + 1
        return self._corr

    @property
    def outbound_frame_max(self) -> int:
        """The largest frame we may send now (0 = unlimited)."""
        return self.frame_max if self.state in (S.OPEN, S.CLOSING) else INITIAL_FRAME_MAX

    def send_frame(self, frame: Frame) -> None:
        """Encode and queue ``frame``.

        :raises FrameTooLargeError: the frame exceeds the negotiated frame_max (nothing queued).
        :raises LocalProtocolError: the connection is closed.
        """
        self.send_raw(frame.encode(), type(frame).__name__)

    def send_raw(self, data: bytes, what: str = "frame") -> None:
        """Queue one already encoded frame after the size and state checks of :meth:`send_frame`."""
        if self.state is S.CLOSED:
            raise LocalProtocolError(f"cannot send {what}: connection is closed")
        limit = self.outbound_frame_max
        if limit and len(data) > limit:
            raise FrameTooLargeError(len(data), limit, what)
        self._out += data

    def send_heartbeat(self) -> None:
        """Queue a Heartbeat."""
        if self.state is not S.CLOSED:
            self._out += _HEARTBEAT_FRAME

    def send_close(self, code: int = _OK, reason: str = "OK") -> int:
        """Queue a Close request and enter CLOSING; returns its correlation id."""
        corr = self.next_correlation_id()
        self.send_frame(CloseRequest(correlation_id=corr, closing_code=code, closing_reason=reason))
        self.state = S.CLOSING
        return corr

    def data_to_send(self) -> bytes:
        """Everything queued since the last call (possibly ``b""``)."""
        if not self._out:
            return b""
        data = bytes(self._out)
        self._out.clear()
        return data

    def initiate_connection(
        self,
        *,
        properties: Mapping[str, str],
        mechanism: SaslAuthenticator,
        username: str = "",
        password: str = "",
        vhost: str = "/",
        frame_max: int = 1048576,
        heartbeat: int = 60,
    ) -> None:
        """Start the handshake: queue PeerProperties; the rest runs inside :meth:`receive_data`."""
        if self.state is not S.IDLE:
            raise LocalProtocolError(f"handshake already started (state {self.state.value})")
        check_credentials(username, password)
        hs = _Handshake(dict(properties), mechanism, username, password, vhost, frame_max, heartbeat)
        self._handshake = hs
        hs.corr = self.next_correlation_id()
        self.state = S.PEER_PROPERTIES
        self.send_frame(PeerPropertiesRequest(correlation_id=hs.corr, properties=hs.properties))

    # ------------------------------------------------------------------ inbound

    def receive_data(self, data: bytes | bytearray | memoryview) -> list[Event]:
        """Feed received bytes; returns the events they complete (in order).

        Frames are decoded straight from ``data`` (a ``Deliver`` chunk is a
        :class:`memoryview` into it); only an incomplete tail is buffered, and it is
        not looked at again until the bytes it needs have arrived.  Errors never
        escape: a malformed frame yields a final :class:`ConnectionTerminated`.
        """
        if self.state is S.CLOSED or not data:
            return []
        self.last_received = self._clock()
        if self._buf:
            self._buf += data
            if len(self._buf) < self._need:
                return []
            data = self._buf  # handed over, not copied: frames (chunks) may keep views of it
            self._buf = bytearray()
        elif not isinstance(data, bytes):
            data = bytes(data)
        events: list[Event] = []
        view = memoryview(data)
        n = len(view)
        off = 0
        size = 0
        try:
            while n - off >= 4:
                (size,) = SIZE.unpack_from(view, off)
                if size > INITIAL_FRAME_MAX:
                    if self.state is not S.OPEN and self.state is not S.CLOSING:
                        raise RemoteProtocolError(
                            f"frame of {size} bytes before the connection is open (limit {INITIAL_FRAME_MAX})"
                        )
                    if size > self.max_inbound_frame_size:
                        raise InboundFrameTooLarge(size, self.max_inbound_frame_size)
                end = off + 4 + size
                if end > n:
                    break
                self._handle(view[off + 4 : end], events)
                off = end
                if self._closed():
                    return events
        except RabbitStreamError as exc:
            self._fail(exc, events)
            return events
        except (struct.error, IndexError, ValueError, OverflowError) as exc:  # defensive
            self._fail(DecodeError(f"malformed frame: {exc!r}"), events)
            return events
        if off < n:
            self._buf += view[off:]
            self._need = 4 + size if n - off >= 4 else 4
        return events

    def _closed(self) -> bool:
        return self.state is S.CLOSED

    def _fail(self, exc: RabbitStreamError, events: list[Event]) -> None:
        self.error = exc
        if self.state in _HANDSHAKE_STATES:
            events.append(HandshakeFailed(error=exc))
        events.append(ConnectionTerminated(error=exc))
        self.state = S.CLOSED
        self._buf.clear()

    def _handle(self, body: memoryview, events: list[Event]) -> None:
        if len(body) < 4:
            raise DecodeError(f"frame of {len(body)} bytes is too short for a header")
        key, version = HEADER.unpack_from(body, 0)
        cls = FRAMES.get((key, version))
        if cls is None:
            raise UnknownCommandError(key, version)
        frame = cls.decode(body)
        state = self.state
        if state is S.OPEN:
            if key == _DELIVER_KEY:
                events.append(frame)
            elif isinstance(frame, Heartbeat):
                if self.answer_heartbeats:
                    self._out += _HEARTBEAT_FRAME
            elif isinstance(frame, CloseRequest):
                self._peer_close(frame, events)
            elif isinstance(frame, TuneRequest):
                pass  # a late Tune changes nothing once open
            else:
                events.append(frame)
            return
        if isinstance(frame, CloseRequest):
            self._peer_close(frame, events)
            return
        if isinstance(frame, Heartbeat):
            return
        if state is S.CLOSING:
            if isinstance(frame, CloseResponse):
                self.state = S.CLOSED
                events.append(
                    ConnectionTerminated(error=None, closing_code=_OK, closing_reason="closed by client")
                )
            else:
                events.append(frame)  # late responses and deliveries still reach their owners
            return
        nxt = HANDSHAKE_TRANSITIONS.get((state, cls))
        if nxt is None:
            raise RemoteProtocolError(f"unexpected {cls.__name__} (key 0x{key:04x}) in state {state.value}")
        self._handshake_step(frame, nxt, events)

    def _peer_close(self, frame: CloseRequest, events: list[Event]) -> None:
        self._out += CloseResponse(correlation_id=frame.correlation_id, code=_OK).encode()
        msg = (
            f"connection closed by the broker: code 0x{frame.closing_code:02x}, "
            f"reason {frame.closing_reason!r}"
        )
        exc: RabbitStreamError = ConnectionClosed(msg)
        if self.state in _HANDSHAKE_STATES:
            events.append(HandshakeFailed(error=exc))
        self.error = exc
        self.state = S.CLOSED
        events.append(
            ConnectionTerminated(
                error=exc, closing_code=frame.closing_code, closing_reason=frame.closing_reason
            )
        )

    def _handshake_step(self, frame: Frame, nxt: ConnectionState, events: list[Event]) -> None:
        hs = self._handshake
        assert hs is not None
        if isinstance(frame, TuneRequest):
            self.frame_max = negotiate(hs.frame_max, frame.frame_max)
            self.heartbeat = negotiate(hs.heartbeat, frame.heartbeat)
            self._out += TuneResponse(frame_max=self.frame_max, heartbeat=self.heartbeat).encode()
            hs.corr = self.next_correlation_id()
            self.state = nxt
            self.send_frame(OpenRequest(correlation_id=hs.corr, virtual_host=hs.vhost))
            return
        assert isinstance(
            frame, (PeerPropertiesResponse, SaslHandshakeResponse, SaslAuthenticateResponse, OpenResponse)
        )
        if frame.correlation_id != hs.corr:
            raise RemoteProtocolError(
                f"{type(frame).__name__} with correlation id {frame.correlation_id}, expected {hs.corr}"
            )
        if isinstance(frame, SaslAuthenticateResponse) and frame.code == _SASL_CHALLENGE:
            try:
                answer = hs.mechanism.respond(frame.challenge or b"")
            except RabbitStreamError:
                raise
            except Exception as exc:
                raise SASLError(f"SASL mechanism {hs.mechanism.name!r} failed on a challenge: {exc}") from exc
            self._send_authenticate(hs, answer)
            return
        if frame.code != _OK:
            what = {
                PeerPropertiesResponse: "PeerProperties",
                SaslHandshakeResponse: "SASL handshake",
                SaslAuthenticateResponse: f"SASL authentication ({hs.mechanism.name}, user {hs.username!r})",
                OpenResponse: f"Open of virtual host {hs.vhost!r}",
            }[type(frame)]
            raise ServerError.for_code(frame.code, what)
        self.state = nxt
        if isinstance(frame, PeerPropertiesResponse):
            hs.server_properties = dict(frame.properties)
            hs.corr = self.next_correlation_id()
            self.send_frame(SaslHandshakeRequest(correlation_id=hs.corr))
        elif isinstance(frame, SaslHandshakeResponse):
            hs.mechanisms = frame.mechanisms
            name = hs.mechanism.name
            if name not in frame.mechanisms:
                raise SASLMechanismNotOffered(name, list(frame.mechanisms))
            try:
                data = hs.mechanism.initial_response(hs.username, hs.password)
            except RabbitStreamError:
                raise
            except Exception as exc:  # the mechanism refused our credentials: a local error
                raise LocalProtocolError(f"SASL mechanism {name!r} could not start: {exc}") from exc
            self._send_authenticate(hs, data)
        elif isinstance(frame, OpenResponse):
            self._handshake = None
            events.append(
                HandshakeComplete(
                    server_properties=hs.server_properties,
                    connection_properties=dict(frame.properties),
                    frame_max=self.frame_max,
                    heartbeat=self.heartbeat,
                    mechanisms=hs.mechanisms,
                )
            )
        # SaslAuthenticate OK: wait for Tune (state TUNING).

    def _send_authenticate(self, hs: _Handshake, data: bytes | None) -> None:
        hs.corr = self.next_correlation_id()
        self.send_frame(
            SaslAuthenticateRequest(correlation_id=hs.corr, mechanism=hs.mechanism.name, data=data)
        )
