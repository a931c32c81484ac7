"""Tokens, the token-provider interface and the errors of this plugin."""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from rabbitstream.exceptions import RabbitStreamError

__all__ = ["RefreshFailure", "Token", "TokenError", "TokenProvider", "jwt_expiry"]


@dataclass(frozen=True)
class Token:
    """An access token and the wall-clock time (``time.time()`` seconds) it expires at."""

    value: str
    expires_at: float

    @classmethod
    def expiring_in(cls, value: str, seconds: float) -> Token:
        """A token valid for ``seconds`` from now (what an ``expires_in`` answer says)."""
        return cls(value, time.time() + seconds)

    @classmethod
    def from_jwt(cls, value: str) -> Token:
        """A token whose expiry is read from its JWT ``exp`` claim (the signature is not checked).

        :raises TokenError: not a JWT, or no numeric ``exp`` claim.
        """
        exp = jwt_expiry(value)
        if exp is None:
            raise TokenError("the token is not a JWT with an 'exp' claim: pass its expiry explicitly")
        return cls(value, exp)

    def expires_in(self, now: float | None = None) -> float:
        """Seconds left (negative once expired)."""
        return self.expires_at - (time.time() if now is None else now)

    def __repr__(self) -> str:  # never print the secret
        return f"Token(value=<{len(self.value)} chars>, expires_at={self.expires_at:.0f})"


#: What users implement: a callable (sync or async) returning a fresh :class:`Token`.  A sync callable
#: runs in a worker thread, so it may block (an HTTP call) without stalling the event loop.
TokenProvider = Callable[[], Token | Awaitable[Token]]


class TokenError(RabbitStreamError):
    """A token could not be obtained (token endpoint unreachable, refused, or an unusable answer)."""


@dataclass(frozen=True)
class RefreshFailure:
    """What the ``on_error`` callback of :class:`~rabbitstream_oauth2.OAuth2Credentials` receives.

    ``stage`` is ``"fetch"`` (the provider failed: ``retry_in`` seconds until the next attempt) or
    ``"reauthenticate"`` (a connection refused the new token; the provider keeps refreshing).
    ``expires_in`` is what is left of the token the connections currently use (negative: expired).
    """

    stage: str
    error: BaseException
    attempt: int
    retry_in: float | None
    expires_in: float | None


def jwt_expiry(token: str) -> float | None:
    """The ``exp`` claim of a JWT (not verified), or ``None`` when ``token`` is not such a JWT."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (ValueError, binascii.Error):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return float(exp) if isinstance(exp, (int, float)) and not isinstance(exp, bool) else None
