"""The sans-IO ProtocolConnection against an in-memory scripted server peer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from rabbitstream.exceptions import (
    AuthenticationFailure,
    ConnectionClosed,
    DecodeError,
    FrameTooLargeError,
    LocalProtocolError,
    RemoteProtocolError,
    SASLMechanismNotOffered,
    VirtualHostAccessFailure,
)
from rabbitstream.protocol import _frames as F
from rabbitstream.protocol._connection import (
    INITIAL_FRAME_MAX,
    ConnectionState,
    ConnectionTerminated,
    HandshakeComplete,
    HandshakeFailed,
    ProtocolConnection,
    negotiate,
)
from rabbitstream.protocol._framebase import Frame, decode_frame


class Mech:
    """A test SASL mechanism with an optional challenge loop."""

    def __init__(self, name: str = "PLAIN", rounds: int = 0) -> None:
        self.name = name
        self.rounds = rounds
        self.challenges: list[bytes] = []

    def initial_response(self, username: str, password: str) -> bytes | None:
        return b"\0" + username.encode() + b"\0" + password.encode()

    def respond(self, challenge: bytes) -> bytes:
        self.challenges.append(challenge)
        return b"answer-" + challenge


def frames_of(data: bytes) -> Iterator[Frame]:
    view = memoryview(data)
    off = 0
    while off < len(view):
        size = int.from_bytes(view[off : off + 4], "big")
        yield decode_frame(view[off + 4 : off + 4 + size])
        off += 4 + size


class ServerPeer:
    """Answers the client's handshake frames like the broker does."""

    def __init__(
        self,
        *,
        mechanisms: tuple[str, ...] = ("PLAIN", "AMQPLAIN"),
        challenges: int = 0,
        auth_code: int = 1,
        open_code: int = 1,
        frame_max: int = 131072,
        heartbeat: int = 30,
    ) -> None:
        self.mechanisms = mechanisms
        self.challenges = challenges
        self.auth_code = auth_code
        self.open_code = open_code
        self.frame_max = frame_max
        self.heartbeat = heartbeat
        self.received: list[Frame] = []

    def answer(self, data: bytes) -> bytes:
        out = b""
        for fr in frames_of(data):
            self.received.append(fr)
            if isinstance(fr, F.PeerPropertiesRequest):
                out += F.PeerPropertiesResponse(
                    correlation_id=fr.correlation_id, properties={"product": "RabbitMQ", "version": "4.0.5"}
                ).encode()
            elif isinstance(fr, F.SaslHandshakeRequest):
                out += F.SaslHandshakeResponse(
                    correlation_id=fr.correlation_id, mechanisms=self.mechanisms
                ).encode()
            elif isinstance(fr, F.SaslAuthenticateRequest):
                if self.challenges:
                    self.challenges -= 1
                    out += F.SaslAuthenticateResponse(
                        correlation_id=fr.correlation_id, code=0x0A, challenge=b"c%d" % self.challenges
                    ).encode()
                    continue
                out += F.SaslAuthenticateResponse(
                    correlation_id=fr.correlation_id, code=self.auth_code
                ).encode()
                if self.auth_code == 1:
                    out += F.TuneRequest(frame_max=self.frame_max, heartbeat=self.heartbeat).encode()
            elif isinstance(fr, F.OpenRequest):
                props = {"advertised_host": "node1", "advertised_port": "5552"} if self.open_code == 1 else {}
                out += F.OpenResponse(
                    correlation_id=fr.correlation_id, code=self.open_code, properties=props
                ).encode()
        return out


def run_handshake(
    conn: ProtocolConnection, peer: ServerPeer, mech: Mech | None = None, *, chop: int = 0, **kw: int
) -> list[object]:
    conn.initiate_connection(
        properties={"connection_name": "t"},
        mechanism=mech or Mech(),
        username="guest",
        password="guest",
        vhost="/",
        **kw,
    )
    events: list[object] = []
    for _ in range(20):
        out = conn.data_to_send()
        if not out:
            break
        reply = peer.answer(out)
        if chop:
            for i in range(0, len(reply), chop):
                events += conn.receive_data(reply[i : i + chop])
        else:
            events += conn.receive_data(reply)
    return events


@pytest.mark.parametrize("chop", [0, 1, 3, 7])
def test_handshake_ok(chop: int) -> None:
    conn = ProtocolConnection()
    peer = ServerPeer()
    events = run_handshake(conn, peer, chop=chop, frame_max=1048576, heartbeat=60)
    done = [e for e in events if isinstance(e, HandshakeComplete)]
    assert len(done) == 1
    assert conn.state is ConnectionState.OPEN
    assert (conn.frame_max, conn.heartbeat) == (131072, 30)
    assert done[0].connection_properties["advertised_host"] == "node1"
    assert done[0].server_properties["version"] == "4.0.5"
    kinds = [type(f).__name__ for f in peer.received]
    assert kinds == [
        "PeerPropertiesRequest",
        "SaslHandshakeRequest",
        "SaslAuthenticateRequest",
        "TuneResponse",
        "OpenRequest",
    ]
    tune = peer.received[3]
    assert isinstance(tune, F.TuneResponse) and (tune.frame_max, tune.heartbeat) == (131072, 30)
    auth = peer.received[2]
    assert isinstance(auth, F.SaslAuthenticateRequest) and auth.data == b"\0guest\0guest"


def test_challenge_loop() -> None:
    conn = ProtocolConnection()
    mech = Mech(rounds=2)
    events = run_handshake(conn, ServerPeer(challenges=2), mech)
    assert any(isinstance(e, HandshakeComplete) for e in events)
    assert mech.challenges == [b"c1", b"c0"]


@pytest.mark.parametrize(
    ("client", "server", "expected"),
    [(1048576, 131072, 131072), (0, 5, 5), (5, 0, 5), (0, 0, 0), (60, 60, 60)],
)
def test_negotiate(client: int, server: int, expected: int) -> None:
    assert negotiate(client, server) == expected


def test_tune_zero_means_other_side() -> None:
    conn = ProtocolConnection()
    run_handshake(conn, ServerPeer(frame_max=0, heartbeat=0), frame_max=4096, heartbeat=0)
    assert (conn.frame_max, conn.heartbeat) == (4096, 0)


def test_mechanism_not_offered() -> None:
    conn = ProtocolConnection()
    events = run_handshake(conn, ServerPeer(mechanisms=("PLAIN", "AMQPLAIN")), Mech("EXTERNAL"))
    failed = [e for e in events if isinstance(e, HandshakeFailed)]
    assert failed and isinstance(failed[0].error, SASLMechanismNotOffered)
    assert "PLAIN, AMQPLAIN" in str(failed[0].error)
    assert conn.state is ConnectionState.CLOSED


def test_authentication_failure() -> None:
    conn = ProtocolConnection()
    events = run_handshake(conn, ServerPeer(auth_code=0x08))
    failed = [e for e in events if isinstance(e, HandshakeFailed)]
    assert failed and isinstance(failed[0].error, AuthenticationFailure)
    assert "guest" in str(failed[0].error)


def test_vhost_failure() -> None:
    conn = ProtocolConnection()
    events = run_handshake(conn, ServerPeer(open_code=0x0C))
    failed = [e for e in events if isinstance(e, HandshakeFailed)]
    assert failed and isinstance(failed[0].error, VirtualHostAccessFailure)


def open_conn() -> ProtocolConnection:
    conn = ProtocolConnection()
    run_handshake(conn, ServerPeer(frame_max=4096))
    assert conn.state is ConnectionState.OPEN
    conn.data_to_send()
    return conn


def test_heartbeat_answered_and_tracked() -> None:
    now = [100.0]
    conn = ProtocolConnection(clock=lambda: now[0])
    run_handshake(conn, ServerPeer())
    conn.data_to_send()
    now[0] = 130.0
    assert conn.receive_data(F.Heartbeat().encode()) == []
    assert conn.last_received == 130.0
    assert conn.data_to_send() == F.Heartbeat().encode()


def test_server_close_is_answered() -> None:
    conn = open_conn()
    events = conn.receive_data(
        F.CloseRequest(correlation_id=7, closing_code=0x0E, closing_reason="too big").encode()
    )
    assert conn.state is ConnectionState.CLOSED
    (term,) = events
    assert isinstance(term, ConnectionTerminated)
    assert isinstance(term.error, ConnectionClosed) and "too big" in str(term.error)
    assert term.closing_code == 0x0E
    assert conn.data_to_send() == F.CloseResponse(correlation_id=7, code=1).encode()


def test_client_close() -> None:
    conn = open_conn()
    corr = conn.send_close()
    assert conn.state.value == "closing"
    (fr,) = frames_of(conn.data_to_send())
    assert isinstance(fr, F.CloseRequest) and fr.correlation_id == corr
    (term,) = conn.receive_data(F.CloseResponse(correlation_id=corr).encode())
    assert isinstance(term, ConnectionTerminated) and term.error is None
    assert conn.state is ConnectionState.CLOSED
    with pytest.raises(LocalProtocolError):
        conn.send_frame(F.Credit(subscription_id=0, credit=1))


def test_outgoing_frame_max() -> None:
    conn = open_conn()
    assert conn.frame_max == 4096
    big = F.CreateRequest(correlation_id=1, stream="s", arguments={"k": "v" * 5000})
    with pytest.raises(FrameTooLargeError) as ei:
        conn.send_frame(big)
    assert ei.value.frame_max == 4096 and ei.value.size > 4096
    assert conn.data_to_send() == b""  # nothing queued


def test_pre_open_outgoing_cap() -> None:
    conn = ProtocolConnection()
    with pytest.raises(FrameTooLargeError):
        conn.initiate_connection(
            properties={"connection_name": "x" * 9000}, mechanism=Mech(), username="u", password="p"
        )


def test_pre_open_inbound_cap() -> None:
    conn = ProtocolConnection()
    conn.initiate_connection(properties={}, mechanism=Mech())
    events = conn.receive_data((INITIAL_FRAME_MAX + 1).to_bytes(4, "big") + b"\x80\x11")
    assert isinstance(events[-1], ConnectionTerminated)
    assert isinstance(events[0], HandshakeFailed)
    assert isinstance(events[-1].error, RemoteProtocolError)


def test_large_deliver_after_open_and_buffering() -> None:
    conn = open_conn()
    chunk = bytes(range(256)) * 400  # 100 KiB, far above frame_max 4096: allowed after Open
    data = F.Deliver(subscription_id=2, committed_chunk_id=5, chunk=chunk).encode()
    data += F.PublishConfirm(publisher_id=1, publishing_ids=(1, 2, 3)).encode()
    events: list[object] = []
    for i in range(0, len(data), 4000):
        events += conn.receive_data(data[i : i + 4000])
    assert len(events) == 2
    d, c = events
    assert isinstance(d, F.Deliver) and bytes(d.chunk) == chunk and d.committed_chunk_id == 5
    assert isinstance(c, F.PublishConfirm) and c.publishing_ids == (1, 2, 3)


def test_unknown_frame_after_open() -> None:
    conn = open_conn()
    events = conn.receive_data(bytes.fromhex("00000008 7777 0001 00000001"))
    (term,) = events
    assert isinstance(term, ConnectionTerminated) and isinstance(term.error, RemoteProtocolError)
    assert "0x7777" in str(term.error)
    assert conn.state is ConnectionState.CLOSED
    assert conn.receive_data(F.Heartbeat().encode()) == []


def test_malformed_frame_after_open() -> None:
    conn = open_conn()
    (term,) = conn.receive_data(bytes.fromhex("00000006 0003 0001 01 00"))
    assert isinstance(term, ConnectionTerminated) and isinstance(term.error, DecodeError)


def test_unexpected_frame_during_handshake() -> None:
    conn = ProtocolConnection()
    conn.initiate_connection(properties={}, mechanism=Mech())
    events = conn.receive_data(F.PublishConfirm(publisher_id=0, publishing_ids=(1,)).encode())
    assert isinstance(events[0], HandshakeFailed)
    assert isinstance(events[0].error, RemoteProtocolError)


def test_wrong_correlation_id_during_handshake() -> None:
    conn = ProtocolConnection()
    conn.initiate_connection(properties={}, mechanism=Mech())
    events = conn.receive_data(F.PeerPropertiesResponse(correlation_id=99).encode())
    assert isinstance(events[0], HandshakeFailed)


def test_correlation_ids_wrap() -> None:
    conn = ProtocolConnection()
    conn._corr = 0xFFFFFFFE
    assert [conn.next_correlation_id() for _ in range(3)] == [0xFFFFFFFF, 1, 2]


def test_events_passed_through_after_open() -> None:
    conn = open_conn()
    frames: list[Frame] = [
        F.MetadataUpdate(code=6, stream="s"),
        F.ConsumerUpdateRequest(correlation_id=3, subscription_id=1, active=True),
        F.CreditResponse(code=4, subscription_id=9),
        F.PublishError(publisher_id=0, errors=((5, 0x12),)),
        F.CreateResponse(correlation_id=12, code=5),
    ]
    events = conn.receive_data(b"".join(f.encode() for f in frames))
    assert events == frames
