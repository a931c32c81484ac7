"""SASL EXTERNAL mechanism."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_SRC = str(Path(__file__).resolve().parents[1] / "src")
if _SRC not in sys.path:  # the source tree wins over a stale non-editable install
    sys.path.insert(0, _SRC)
    if getattr(sys.modules.get("rabbitstream_external"), "__file__", "") is None:
        del sys.modules["rabbitstream_external"]

import rabbitstream_external  # noqa: E402
from rabbitstream.exceptions import SASLError  # noqa: E402
from rabbitstream.plugin import SaslAuthenticator, build_registry  # noqa: E402
from rabbitstream.protocol import SaslAuthenticateRequest  # noqa: E402


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
