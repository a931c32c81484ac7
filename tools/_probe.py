"""Minimal blocking RabbitMQ Streams protocol probe (stdlib only, independent of rabbitstream).

Used by ``tools/broker.py selftest`` and the environment tests to check a broker without the client
under test::

    with Probe.connect("localhost", 5552) as p:
        p.handshake("guest", "guest")           # PeerProperties, SaslHandshake, SaslAuthenticate, Tune, Open
        p.create("s1"); p.metadata(["s1"]); p.delete("s1")
"""

from __future__ import annotations

import socket
import ssl
import struct
from dataclasses import dataclass, field
from types import TracebackType

__all__ = ["Probe", "ProbeError", "StreamMeta"]

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_I32 = struct.Struct(">i")
_HDR = struct.Struct(">IHH")  # size, key, version
_KEY_VER = struct.Struct(">HH")

PEER_PROPERTIES = 0x11
SASL_HANDSHAKE = 0x12
SASL_AUTHENTICATE = 0x13
TUNE = 0x14
OPEN = 0x15
CLOSE = 0x16
HEARTBEAT = 0x17
CREATE = 0x0D
DELETE = 0x0E
METADATA = 0x0F
METADATA_UPDATE = 0x10
DECLARE_PUBLISHER = 0x01
RESPONSE = 0x8000


class ProbeError(RuntimeError):
    """The broker answered with an error code, closed the connection, or sent something unexpected.

    :ivar code: the response code (``None`` when not a response-code error).
    """

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class StreamMeta:
    """One stream of a Metadata response (brokers resolved to ``(host, port)``)."""

    stream: str
    code: int
    leader: tuple[str, int] | None
    replicas: list[tuple[str, int]] = field(default_factory=list)


def _str(value: str) -> bytes:
    raw = value.encode()
    return _U16.pack(len(raw)) + raw


def _map(values: dict[str, str]) -> bytes:
    return _U32.pack(len(values)) + b"".join(_str(k) + _str(v) for k, v in values.items())


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def u16(self) -> int:
        (v,) = _U16.unpack_from(self.data, self.pos)
        self.pos += 2
        return int(v)

    def u32(self) -> int:
        (v,) = _U32.unpack_from(self.data, self.pos)
        self.pos += 4
        return int(v)

    def i32(self) -> int:
        (v,) = _I32.unpack_from(self.data, self.pos)
        self.pos += 4
        return int(v)

    def string(self) -> str:
        n = self.u16()
        if n == 0xFFFF:
            return ""
        s = self.data[self.pos : self.pos + n].decode()
        self.pos += n
        return s

    def strmap(self) -> dict[str, str]:
        return {self.string(): self.string() for _ in range(self.i32())}


class Probe:
    """One blocking stream connection.

    :param sock: a connected (possibly TLS-wrapped) socket.
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._corr = 0
        self.server_properties: dict[str, str] = {}
        self.mechanisms: list[str] = []
        self.connection_properties: dict[str, str] = {}
        self.tune: tuple[int, int] = (0, 0)
        self.pushed: list[tuple[int, bytes]] = []  # frames received while waiting for a response

    @classmethod
    def connect(
        cls,
        host: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        timeout: float = 10.0,
    ) -> Probe:
        """Open a TCP (optionally TLS) connection."""
        sock = socket.create_connection((host, port), timeout=timeout)
        if ssl_context is not None:
            try:
                sock = ssl_context.wrap_socket(sock, server_hostname=server_hostname or host)
            except BaseException:
                sock.close()
                raise
        return cls(sock)

    def __enter__(self) -> Probe:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.sock.close()

    # ------------------------------------------------------------------ framing
    def _next_corr(self) -> int:
        self._corr += 1
        return self._corr

    def send(self, key: int, body: bytes, version: int = 1) -> None:
        """Send one frame (``body`` = everything after key and version)."""
        self.sock.sendall(_HDR.pack(len(body) + 4, key, version) + body)

    def _recv_exact(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ProbeError("connection closed by the broker (EOF)")
            buf += chunk
        return bytes(buf)

    def read_frame(self) -> tuple[int, bytes]:
        """:returns: ``(key, payload after key/version)`` of the next frame."""
        (size,) = _U32.unpack(self._recv_exact(4))
        if size < 4 or size > 16 * 1024 * 1024:
            raise ProbeError(f"bad frame size {size}")
        frame = self._recv_exact(size)
        key, _version = _KEY_VER.unpack_from(frame, 0)
        return int(key), frame[4:]

    def _rpc(self, key: int, body: bytes) -> _Reader:
        corr = self._next_corr()
        self.send(key, _U32.pack(corr) + body)
        while True:
            fkey, payload = self.read_frame()
            if fkey == key | RESPONSE:
                r = _Reader(payload)
                got = r.u32()
                if got != corr:
                    raise ProbeError(f"correlation id {got} != {corr}")
                return r
            if fkey == TUNE:
                self.tune = (_U32.unpack_from(payload, 0)[0], _U32.unpack_from(payload, 4)[0])
                self.send(TUNE, payload)
            elif fkey == CLOSE:
                r = _Reader(payload)
                r.u32()
                code = r.u16()
                raise ProbeError(f"broker sent Close code {code:#x}: {r.string()}", code)
            elif fkey != HEARTBEAT:
                self.pushed.append((fkey, payload))

    @staticmethod
    def _check(r: _Reader, what: str) -> int:
        code = r.u16()
        if code != 1:
            raise ProbeError(f"{what}: response code {code:#04x}", code)
        return code

    # ------------------------------------------------------------------ commands
    def peer_properties(self, props: dict[str, str] | None = None) -> dict[str, str]:
        """PeerProperties; :returns: the server properties."""
        r = self._rpc(PEER_PROPERTIES, _map(props or {"product": "rabbitstream-probe"}))
        self._check(r, "PeerProperties")
        self.server_properties = r.strmap()
        return self.server_properties

    def sasl_handshake(self) -> list[str]:
        """SaslHandshake; :returns: the mechanisms in server order."""
        r = self._rpc(SASL_HANDSHAKE, b"")
        self._check(r, "SaslHandshake")
        self.mechanisms = [r.string() for _ in range(r.i32())]
        return self.mechanisms

    def sasl_authenticate(self, mechanism: str, data: bytes) -> None:
        """SaslAuthenticate; raises :class:`ProbeError` unless OK."""
        r = self._rpc(SASL_AUTHENTICATE, _str(mechanism) + _I32.pack(len(data)) + data)
        self._check(r, f"SaslAuthenticate {mechanism}")

    def wait_tune(self) -> tuple[int, int]:
        """Read until the server's Tune, echo it; :returns: ``(frame_max, heartbeat)``."""
        while True:
            key, payload = self.read_frame()
            if key == TUNE:
                self.tune = (_U32.unpack_from(payload, 0)[0], _U32.unpack_from(payload, 4)[0])
                self.send(TUNE, payload)
                return self.tune
            if key == CLOSE:
                raise ProbeError("broker closed the connection before Tune")

    def open(self, vhost: str = "/") -> dict[str, str]:
        """Open; :returns: the connection properties (``advertised_host``/``advertised_port``)."""
        r = self._rpc(OPEN, _str(vhost))
        self._check(r, "Open")
        self.connection_properties = r.strmap() if r.pos < len(r.data) else {}
        return self.connection_properties

    def handshake(
        self, username: str = "guest", password: str = "guest", *, mechanism: str = "PLAIN", vhost: str = "/"
    ) -> dict[str, str]:
        """Full handshake; ``mechanism`` ``PLAIN`` or ``EXTERNAL`` (empty data).

        :returns: the Open connection properties.
        """
        self.peer_properties()
        mechs = self.sasl_handshake()
        if mechanism not in mechs:
            raise ProbeError(f"mechanism {mechanism} not offered (server offers {mechs})")
        data = f"\0{username}\0{password}".encode() if mechanism == "PLAIN" else b""
        self.sasl_authenticate(mechanism, data)
        if self.tune == (0, 0):
            self.wait_tune()
        return self.open(vhost)

    def create(self, stream: str, arguments: dict[str, str] | None = None) -> None:
        """Create a stream."""
        self._check(self._rpc(CREATE, _str(stream) + _map(arguments or {})), f"Create {stream}")

    def delete(self, stream: str) -> None:
        """Delete a stream."""
        self._check(self._rpc(DELETE, _str(stream)), f"Delete {stream}")

    def declare_publisher(self, publisher_id: int, stream: str, reference: str = "") -> None:
        """DeclarePublisher."""
        body = bytes([publisher_id]) + _str(reference) + _str(stream)
        self._check(self._rpc(DECLARE_PUBLISHER, body), f"DeclarePublisher {stream}")

    def metadata(self, streams: list[str]) -> dict[str, StreamMeta]:
        """Metadata; :returns: per stream leader/replicas as ``(host, port)``."""
        body = _I32.pack(len(streams)) + b"".join(_str(s) for s in streams)
        r = self._rpc(METADATA, body)
        brokers: dict[int, tuple[str, int]] = {}
        for _ in range(r.i32()):
            ref = r.u16()
            host = r.string()
            brokers[ref] = (host, r.u32())
        out: dict[str, StreamMeta] = {}
        for _ in range(r.i32()):
            name = r.string()
            code = r.u16()
            leader = r.u16()
            replicas = [r.u16() for _ in range(r.i32())]
            out[name] = StreamMeta(
                name, code, brokers.get(leader), [brokers[x] for x in replicas if x in brokers]
            )
        return out

    def close(self, code: int = 1, reason: str = "bye") -> None:
        """Send Close, wait for its response, close the socket."""
        try:
            self._check(self._rpc(CLOSE, _U16.pack(code) + _str(reason)), "Close")
        finally:
            self.sock.close()
