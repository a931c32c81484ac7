"""rabbitstream plugin: the SASL ``EXTERNAL`` mechanism.

The identity comes from the TLS client certificate (the broker's
``ssl_cert_login_from`` setting picks the CN or the DN), so the
SaslAuthenticate data is empty; username and password are ignored.
Connect over TLS with a context that loads the client certificate::

    ctx = ssl.create_default_context(cafile="ca.pem")
    ctx.load_cert_chain("client.pem", "client.key")
    await Client.connect(host, 5551, ssl_context=ctx, sasl_mechanism="EXTERNAL")
"""

from __future__ import annotations

from collections.abc import Sequence

from rabbitstream.exceptions import SASLError
from rabbitstream.plugin import SaslAuthenticator, hookimpl

__all__ = ["ExternalMechanism", "rabbitstream_sasl_mechanisms"]


class ExternalMechanism:
    """SASL EXTERNAL: empty data, identity from the TLS client certificate."""

    name = "EXTERNAL"

    def initial_response(self, username: str, password: str) -> bytes | None:
        """Always empty (sent as a null blob)."""
        return None

    def respond(self, challenge: bytes) -> bytes:
        """EXTERNAL is single-step: any challenge is a protocol error."""
        raise SASLError("SASL EXTERNAL received an unexpected challenge from the broker")


@hookimpl(trylast=True)
def rabbitstream_sasl_mechanisms() -> Sequence[SaslAuthenticator]:
    """The EXTERNAL mechanism."""
    return [ExternalMechanism()]
