"""Issue #14: inbound frame cap, the buffered frame not copied, secrets kept out of
messages and reprs, credentials checked locally."""

from __future__ import annotations

import asyncio
import tracemalloc

import pytest
from rabbitstream import Client
from rabbitstream.exceptions import InboundFrameTooLarge, InvalidArgument, LocalProtocolError
from rabbitstream.protocol import _frames as F
from rabbitstream.protocol._connection import (
    DEFAULT_MAX_INBOUND_FRAME,
    ConnectionState,
    ConnectionTerminated,
    HandshakeFailed,
    ProtocolConnection,
)
from test_connection import Mech, ServerPeer, run_handshake

SECRET = "TopSecret"


def _open(max_inbound_frame_size: int = DEFAULT_MAX_INBOUND_FRAME) -> ProtocolConnection:
    conn = ProtocolConnection(max_inbound_frame_size=max_inbound_frame_size)
    run_handshake(conn, ServerPeer(frame_max=4096))
    assert conn.state is ConnectionState.OPEN
    conn.data_to_send()
    return conn


# --------------------------------------------------------------------------- inbound frame cap


def test_default_inbound_cap_is_generous() -> None:
    assert DEFAULT_MAX_INBOUND_FRAME == 256 * 1024 * 1024
    assert _open().max_inbound_frame_size == DEFAULT_MAX_INBOUND_FRAME


def test_frame_over_the_inbound_cap_ends_the_connection_before_buffering() -> None:
    conn = _open(max_inbound_frame_size=1 << 20)
    # a Deliver announcing 3 GiB: only its first bytes arrive
    head = (3 << 30).to_bytes(4, "big") + bytes.fromhex("0008 0002 00") + b"\x50" * 100
    events = conn.receive_data(head)
    (term,) = events
    assert isinstance(term, ConnectionTerminated)
    assert isinstance(term.error, InboundFrameTooLarge)
    assert term.error.size == 3 << 30 and term.error.limit == 1 << 20
    assert "max_inbound_frame_size" in str(term.error)
    assert conn.state is ConnectionState.CLOSED
    assert conn.receive_data(b"x" * 1000) == []  # nothing buffered afterwards


def test_frame_over_the_cap_detected_when_its_header_is_split() -> None:
    conn = _open(max_inbound_frame_size=1 << 20)
    size = ((1 << 20) + 1).to_bytes(4, "big")
    assert conn.receive_data(size[:2]) == []
    (term,) = conn.receive_data(size[2:] + b"\x00\x08\x00\x02")
    assert isinstance(term, ConnectionTerminated) and isinstance(term.error, InboundFrameTooLarge)


def test_frame_at_the_cap_is_accepted() -> None:
    limit = 64 * 1024
    conn = _open(max_inbound_frame_size=limit)
    chunk = b"c" * (limit - 9)  # key, version, subscription id: 5 bytes; chunk length prefix: none
    data = F.Deliver(subscription_id=2, chunk=chunk).encode()
    assert int.from_bytes(data[:4], "big") <= limit
    (ev,) = conn.receive_data(data)
    assert isinstance(ev, F.Deliver)


def test_inbound_cap_below_the_handshake_limit_refused() -> None:
    with pytest.raises(InvalidArgument):
        ProtocolConnection(max_inbound_frame_size=100)


def test_buffered_frame_is_not_copied_again() -> None:
    """A frame arriving in pieces is decoded from the receive buffer itself (no ``bytes(buf)``)."""
    conn = _open()
    chunk = bytes(range(256)) * (8 * 1024)  # 2 MiB
    data = F.Deliver(subscription_id=2, chunk=chunk).encode()
    pieces = [data[i : i + 65536] for i in range(0, len(data), 65536)]
    tracemalloc.start()
    try:
        events: list[object] = []
        base = tracemalloc.get_traced_memory()[0]
        for p in pieces:
            events += conn.receive_data(p)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    (ev,) = events
    assert isinstance(ev, F.Deliver) and bytes(ev.chunk) == chunk
    # the buffer grows to the frame size (+ bytearray over-allocation); a copy would double it
    assert peak < 1.5 * len(data), peak


# --------------------------------------------------------------------------- secrets


def test_sasl_authenticate_repr_hides_the_password() -> None:
    fr = F.SaslAuthenticateRequest(correlation_id=1, mechanism="PLAIN", data=b"\0alice\0" + SECRET.encode())
    assert SECRET not in repr(fr) and SECRET not in str(fr)
    assert F.SaslAuthenticateRequest.decode(memoryview(fr.encode())[4:]).data == fr.data


def test_handshake_repr_hides_the_password() -> None:
    conn = ProtocolConnection()
    conn.initiate_connection(properties={}, mechanism=Mech(), username="alice", password=SECRET)
    assert SECRET not in repr(conn._handshake)
    assert "alice" in repr(conn._handshake)


@pytest.mark.parametrize("password", ["a\0b", "\0"])
def test_nul_in_password_is_a_local_argument_error(password: str) -> None:
    conn = ProtocolConnection()
    with pytest.raises(InvalidArgument, match="password must not contain a NUL") as info:
        conn.initiate_connection(properties={}, mechanism=Mech(), username="u", password=password)
    assert isinstance(info.value, ValueError) and isinstance(info.value, LocalProtocolError)
    assert conn.state is ConnectionState.IDLE and conn.data_to_send() == b""


def test_nul_in_username_is_a_local_argument_error() -> None:
    with pytest.raises(InvalidArgument, match="username"):
        ProtocolConnection().initiate_connection(
            properties={}, mechanism=Mech(), username="a\0", password="p"
        )


def test_mechanism_refusing_credentials_is_a_local_error() -> None:
    class Refuses(Mech):
        def initial_response(self, username: str, password: str) -> bytes | None:
            raise ValueError("cannot encode these credentials")

    conn = ProtocolConnection()
    events = run_handshake(conn, ServerPeer(), Refuses())
    failed = [e for e in events if isinstance(e, HandshakeFailed)]
    assert failed and isinstance(failed[0].error, LocalProtocolError)
    assert "malformed" not in str(failed[0].error)


def test_client_connect_refuses_nul_password_before_connecting() -> None:
    async def main() -> None:
        # port 9 (discard) is never contacted: the check comes first
        with pytest.raises(InvalidArgument, match="password"):
            await Client.connect("127.0.0.1", 9, password="x\0y", connect_timeout=0.5)

    asyncio.run(main())


# --------------------------------------------------------------------------- URIs


@pytest.mark.parametrize("char", ["/", "#", "?"])
def test_uri_with_unencoded_password_character_is_a_clear_error(char: str) -> None:
    uri = f"rabbitmq-stream://alice:Top{char}Secret@host:5552/"
    with pytest.raises(InvalidArgument, match="percent-encode") as info:
        Client.parse_uri(uri)
    text = str(info.value) + repr(info.value) + str(info.value.__cause__)
    assert "Top" not in text and "Secret" not in text and "Port could not be cast" not in text


def test_uri_whose_password_looks_like_a_port_is_not_silently_misparsed() -> None:
    with pytest.raises(InvalidArgument):
        Client.parse_uri("rabbitmq-stream://alice:123/x@host:5552/")


def test_uri_bad_port_does_not_echo_it() -> None:
    with pytest.raises(InvalidArgument) as info:
        Client.parse_uri("rabbitmq-stream://alice@host:TopSecret/")
    assert SECRET not in str(info.value)


def test_uri_percent_encoded_password_parsed() -> None:
    kw = Client.parse_uri("rabbitmq-stream://alice:Top%2F%23%3FSe%40cret@host:5553/v%2Fh")
    assert kw["username"] == "alice" and kw["password"] == "Top/#?Se@cret"
    assert kw["host"] == "host" and kw["port"] == 5553 and kw["vhost"] == "v/h"
