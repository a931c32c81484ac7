"""rabbitstream plugin: the SASL ``PLAIN`` and ``ANONYMOUS`` mechanisms.

``PLAIN`` sends ``\\0username\\0password`` (RFC 4616); ``ANONYMOUS`` sends no data.
Both are single-step: a server challenge is an error.
"""

from __future__ import annotations

from collections.abc import Sequence

from rabbitstream.exceptions import SASLError
from rabbitstream.plugin import SaslAuthenticator, hookimpl

__all__ = ["AnonymousMechanism", "PlainMechanism", "rabbitstream_sasl_mechanisms"]


class PlainMechanism:
    """SASL PLAIN: ``authzid(empty) NUL username NUL password`` in UTF-8."""

    name = "PLAIN"

    def initial_response(self, username: str, password: str) -> bytes | None:
        """The PLAIN message for ``username`` / ``password``."""
        user = username.encode("utf-8")
        pw = password.encode("utf-8")
        if b"\0" in user or b"\0" in pw:
            raise ValueError("SASL PLAIN username and password may not contain NUL characters")
        return b"\0" + user + b"\0" + pw

    def respond(self, challenge: bytes) -> bytes:
        """PLAIN is single-step: any challenge is a protocol error."""
        raise SASLError("SASL PLAIN received an unexpected challenge from the broker")


class AnonymousMechanism:
    """SASL ANONYMOUS: empty data (the broker maps it to its configured anonymous user)."""

    name = "ANONYMOUS"

    def initial_response(self, username: str, password: str) -> bytes | None:
        """Always empty (sent as a null blob)."""
        return None

    def respond(self, challenge: bytes) -> bytes:
        """ANONYMOUS is single-step: any challenge is a protocol error."""
        raise SASLError("SASL ANONYMOUS received an unexpected challenge from the broker")


@hookimpl(trylast=True)
def rabbitstream_sasl_mechanisms() -> Sequence[SaslAuthenticator]:
    """The PLAIN and ANONYMOUS mechanisms."""
    return [PlainMechanism(), AnonymousMechanism()]
