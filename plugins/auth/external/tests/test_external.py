"""SASL EXTERNAL mechanism."""

from __future__ import annotations

import pytest
import rabbitstream_external
from rabbitstream.exceptions import SASLError
from rabbitstream.plugin import SaslAuthenticator, build_registry
from rabbitstream.protocol import SaslAuthenticateRequest


def test_external() -> None:
    m = rabbitstream_external.ExternalMechanism()
    assert m.name == "EXTERNAL"
    assert m.initial_response("ignored", "ignored") is None
    with pytest.raises(SASLError):
        m.respond(b"x")
    frame = SaslAuthenticateRequest(correlation_id=1, mechanism="EXTERNAL", data=None).encode()
    assert frame.endswith(b"\xff\xff\xff\xff")  # null blob


def test_registry() -> None:
    (m,) = rabbitstream_external.rabbitstream_sasl_mechanisms()
    assert isinstance(m, SaslAuthenticator)
    reg = build_registry(autoload=False, plugins=[rabbitstream_external])
    assert reg.sasl_mechanism("EXTERNAL") is not None
