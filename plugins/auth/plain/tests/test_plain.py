"""SASL PLAIN / ANONYMOUS mechanisms."""

from __future__ import annotations

import pytest
import rabbitstream_plain
from rabbitstream.exceptions import SASLError
from rabbitstream.plugin import SaslAuthenticator, build_registry


def test_plain_initial_response() -> None:
    m = rabbitstream_plain.PlainMechanism()
    assert m.name == "PLAIN"
    assert m.initial_response("guest", "guest") == b"\0guest\0guest"
    assert m.initial_response("ü", "") == b"\0\xc3\xbc\0"
    with pytest.raises(SASLError):
        m.respond(b"challenge")
    with pytest.raises(ValueError):
        m.initial_response("a\0b", "c")


def test_anonymous() -> None:
    m = rabbitstream_plain.AnonymousMechanism()
    assert m.name == "ANONYMOUS"
    assert m.initial_response("x", "y") is None
    with pytest.raises(SASLError):
        m.respond(b"")


def test_protocol_and_registry() -> None:
    mechs = rabbitstream_plain.rabbitstream_sasl_mechanisms()
    assert all(isinstance(m, SaslAuthenticator) for m in mechs)
    reg = build_registry(autoload=False, plugins=[rabbitstream_plain])
    assert reg.sasl_mechanism("PLAIN").name == "PLAIN"
    assert reg.sasl_mechanism("ANONYMOUS").name == "ANONYMOUS"


def test_golden_frame() -> None:
    from rabbitstream.protocol import SaslAuthenticateRequest

    data = rabbitstream_plain.PlainMechanism().initial_response("guest", "guest")
    frame = SaslAuthenticateRequest(correlation_id=3, mechanism="PLAIN", data=data).encode()
    assert frame.hex() == "0000001f00130001000000030005504c41494e0000000c006775657374006775657374"
