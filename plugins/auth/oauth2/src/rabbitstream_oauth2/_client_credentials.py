"""The OAuth 2.0 client-credentials grant (RFC 6749 §4.4) with the standard library."""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping

from rabbitstream_oauth2._token import Token, TokenError, jwt_expiry

__all__ = ["ClientCredentials"]

_MAX_BODY = 1 << 20


class ClientCredentials:
    """A :data:`~rabbitstream_oauth2.TokenProvider` asking a token endpoint for client-credentials tokens.

    Calling it (``await provider()``) POSTs ``grant_type=client_credentials`` (plus ``scope``) to
    ``token_url`` from a worker thread, the client authenticated with HTTP Basic (``auth="basic"``, RFC 6749
    §2.3.1) or with ``client_id``/``client_secret`` form fields (``auth="post"``).  TLS is verified with
    ``ssl_context`` (default: the system trust store); ``http://`` URLs are refused unless
    ``allow_insecure_http`` is set.  The expiry comes from ``expires_in``, else from the JWT ``exp`` claim.

    :param extra_params: more form fields (``audience``, ``resource``... some identity servers need them).
    """

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        scope: str | None = None,
        *,
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = 10.0,
        auth: str = "basic",
        extra_params: Mapping[str, str] | None = None,
        allow_insecure_http: bool = False,
    ) -> None:
        scheme = urllib.parse.urlsplit(token_url).scheme.lower()
        if scheme != "https" and not (scheme == "http" and allow_insecure_http):
            raise ValueError(
                f"token_url must be https:// (got {token_url!r}; allow_insecure_http=True for tests)"
            )
        if auth not in ("basic", "post"):
            raise ValueError("auth must be 'basic' or 'post'")
        self.token_url = token_url
        self.client_id = client_id
        self._secret = client_secret
        self.scope = scope
        self.timeout = timeout
        self.auth = auth
        self.extra_params = dict(extra_params or {})
        self._ssl = ssl_context if ssl_context is not None else ssl.create_default_context()

    def __repr__(self) -> str:
        return f"ClientCredentials({self.token_url!r}, client_id={self.client_id!r})"

    async def __call__(self) -> Token:
        """Fetch a new token (the blocking HTTP call runs in a worker thread)."""
        return await asyncio.to_thread(self.fetch)

    def request(self) -> urllib.request.Request:
        """The HTTP request :meth:`fetch` sends."""
        form = {"grant_type": "client_credentials", **self.extra_params}
        if self.scope:
            form["scope"] = self.scope
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
        if self.auth == "basic":
            q = urllib.parse.quote_plus  # RFC 6749 §2.3.1: form-encode, then Basic
            raw = f"{q(self.client_id)}:{q(self._secret)}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(raw).decode("ascii")
        else:
            form.update(client_id=self.client_id, client_secret=self._secret)
        data = urllib.parse.urlencode(form).encode("ascii")
        return urllib.request.Request(self.token_url, data=data, headers=headers, method="POST")

    def fetch(self) -> Token:
        """Fetch a new token, blocking.

        :raises TokenError: unreachable endpoint, TLS failure, an error answer (its ``error`` and
            ``error_description`` quoted) or an answer without ``access_token``.
        """
        try:
            with urllib.request.urlopen(self.request(), timeout=self.timeout, context=self._ssl) as resp:
                body = resp.read(_MAX_BODY)
        except urllib.error.HTTPError as exc:
            with exc:  # closed here: Python 3.14 warns about an HTTPError left open
                detail = _error_detail(exc.read(_MAX_BODY))
            raise TokenError(f"token endpoint {self.token_url} answered HTTP {exc.code}{detail}") from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise TokenError(f"token endpoint {self.token_url} unreachable: {reason}") from exc
        try:
            answer = json.loads(body)
            value = answer["access_token"]
            if not isinstance(value, str) or not value:
                raise TypeError("access_token is not a string")
        except (ValueError, KeyError, TypeError) as exc:
            raise TokenError(f"token endpoint {self.token_url} gave no usable access_token: {exc}") from exc
        expires_in = answer.get("expires_in")
        if isinstance(expires_in, str) and expires_in.isdigit():
            expires_in = int(expires_in)
        if isinstance(expires_in, (int, float)) and not isinstance(expires_in, bool) and expires_in > 0:
            return Token.expiring_in(value, float(expires_in))
        exp = jwt_expiry(value)
        if exp is None:
            raise TokenError(f"token endpoint {self.token_url} gave neither expires_in nor a JWT exp claim")
        return Token(value, exp)


def _error_detail(body: bytes) -> str:
    try:
        answer = json.loads(body)
    except ValueError:
        return ""
    if not isinstance(answer, dict) or "error" not in answer:
        return ""
    desc = answer.get("error_description")
    return f": {answer['error']}" + (f" ({desc})" if desc else "")
