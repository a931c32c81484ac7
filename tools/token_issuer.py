"""A local OAuth 2.0 token issuer for the tests (stdlib only): HS256 JWTs for the ``rabbit_oauth`` node.

:func:`sign_jwt` makes a token directly (expired ones, wrongly signed ones, other users);
:class:`TokenIssuer` serves the client-credentials grant (RFC 6749 §4.4) over HTTPS on 127.0.0.1 with a
certificate from its own throw-away CA (``openssl``), so that the client under test verifies TLS for real::

    with TokenIssuer(key=b"...", key_id="k", resource="rabbitstream", lifetime=20) as issuer:
        issuer.add_client("producer-app", "s3cret")
        ctx = ssl.create_default_context(cafile=issuer.ca_file)
        # POST issuer.token_url  grant_type=client_credentials, HTTP Basic client_id:client_secret

Each token carries ``sub`` = the client id, ``aud`` = ``resource``, ``scope`` = full permissions on
every vhost (``<resource>.configure:*/* <resource>.write:*/* <resource>.read:*/*``), ``iat``/``exp``.
:meth:`TokenIssuer.fail_next` makes the next requests fail (HTTP 503) for back-off tests.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import shutil
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

__all__ = ["TokenIssuer", "full_scopes", "sign_jwt"]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def full_scopes(resource: str) -> list[str]:
    """Configure, write and read on every resource of every vhost."""
    return [f"{resource}.{p}:*/*" for p in ("configure", "write", "read")]


def sign_jwt(
    key: bytes,
    *,
    key_id: str,
    subject: str,
    audience: str,
    lifetime: float,
    scopes: Sequence[str] | None = None,
    now: float | None = None,
    extra: dict[str, Any] | None = None,
) -> str:
    """An HS256 JWT (RFC 7519) for ``subject``, valid ``lifetime`` s from ``now`` (negative: expired)."""
    issued = time.time() if now is None else now
    header = {"alg": "HS256", "typ": "JWT", "kid": key_id}
    claims: dict[str, Any] = {
        "sub": subject,
        "client_id": subject,
        "aud": [audience],
        "scope": " ".join(full_scopes(audience) if scopes is None else scopes),
        "iat": int(issued),
        "exp": int(issued + lifetime),
        "jti": _b64url(hashlib.sha256(f"{subject}{time.monotonic_ns()}".encode()).digest()[:12]),
        **(extra or {}),
    }
    signing_input = (
        _b64url(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + _b64url(json.dumps(claims, separators=(",", ":")).encode())
    )
    sig = hmac.new(key, signing_input.encode("ascii"), hashlib.sha256).digest()
    return signing_input + "." + _b64url(sig)


def _make_certs(d: Path) -> None:
    """CA + server certificate for 127.0.0.1/localhost (RSA 2048, 1 day) with ``openssl``."""
    if shutil.which("openssl") is None:
        raise RuntimeError("openssl not found (apt-get install openssl)")

    def ssl_cmd(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)

    ssl_cmd(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{d}/ca.key", "-out", f"{d}/ca.pem",
        "-days", "1", "-subj", "/CN=token-issuer-test-ca",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    (d / "server.ext").write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n"
    )
    ssl_cmd(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{d}/server.key", "-out", f"{d}/server.csr",
        "-subj", "/CN=localhost",
    )  # fmt: skip
    ssl_cmd(
        "x509", "-req", "-in", f"{d}/server.csr", "-CA", f"{d}/ca.pem", "-CAkey", f"{d}/ca.key",
        "-CAcreateserial", "-out", f"{d}/server.pem", "-days", "1", "-extfile", f"{d}/server.ext",
    )  # fmt: skip


class TokenIssuer:
    """Client-credentials token endpoint on ``https://127.0.0.1:<port>/token`` (a thread; a context manager).

    :param key: the HS256 key the broker verifies with. :param key_id: the JWT ``kid``.
    :param resource: the broker's ``resource_server_id`` (``aud`` and scope prefix).
    :param lifetime: seconds each issued token is valid (``expires_in``).
    """

    def __init__(self, *, key: bytes, key_id: str, resource: str, lifetime: float = 60.0) -> None:
        self.key = key
        self.key_id = key_id
        self.resource = resource
        self.lifetime = lifetime
        self.clients: dict[str, str] = {}
        #: every request: (monotonic time, client id or "", HTTP status)
        self.requests: list[tuple[float, str, int]] = []
        self._fail = 0
        self._lock = threading.Lock()
        self._dir = tempfile.TemporaryDirectory(prefix="token-issuer-")
        d = Path(self._dir.name)
        _make_certs(d)
        self.ca_file = str(d / "ca.pem")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(d / "server.pem", d / "server.key")
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._server.socket = ctx.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        self.token_url = f"https://127.0.0.1:{self.port}/token"
        self._thread = threading.Thread(target=self._server.serve_forever, name="token-issuer", daemon=True)
        self._thread.start()

    def add_client(self, client_id: str, secret: str) -> None:
        """Register an OAuth client (its tokens have ``sub`` = ``client_id``)."""
        self.clients[client_id] = secret

    def fail_next(self, count: int) -> None:
        """Answer the next ``count`` token requests with HTTP 503."""
        with self._lock:
            self._fail = count

    def issued(self, client_id: str | None = None) -> int:
        """How many tokens were issued (to ``client_id``)."""
        return sum(1 for _, c, status in self.requests if status == 200 and client_id in (None, c))

    def close(self) -> None:
        """Stop the server and delete its certificates."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
        self._dir.cleanup()

    def __enter__(self) -> TokenIssuer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _answer(self, headers: Any, body: bytes) -> tuple[int, dict[str, Any]]:
        with self._lock:
            if self._fail > 0:
                self._fail -= 1
                return 503, {"error": "temporarily_unavailable"}
        form = {k: v[-1] for k, v in urllib.parse.parse_qs(body.decode("ascii", "replace")).items()}
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        auth = headers.get("Authorization", "")
        if auth.startswith("Basic "):
            raw = base64.b64decode(auth[6:]).decode("utf-8", "replace")
            user, _, pw = raw.partition(":")
            client_id, secret = urllib.parse.unquote_plus(user), urllib.parse.unquote_plus(pw)
        if form.get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type"}
        if not client_id or self.clients.get(client_id) != secret:
            return 401, {"error": "invalid_client", "error_description": "unknown client or wrong secret"}
        token = sign_jwt(
            self.key, key_id=self.key_id, subject=client_id, audience=self.resource, lifetime=self.lifetime
        )
        return 200, {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": int(self.lifetime),
            "scope": " ".join(full_scopes(self.resource)),
        }


def _handler(issuer: TokenIssuer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0") or 0)
            body = self.rfile.read(length)
            if self.path != "/token":
                status, payload = 404, {"error": "not_found"}
            else:
                status, payload = issuer._answer(self.headers, body)
            client = payload.get("access_token") and self._client_of(body)
            issuer.requests.append((time.monotonic(), client or "", status))
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _client_of(self, body: bytes) -> str:
            auth = self.headers.get("Authorization", "")
            if auth.startswith("Basic "):
                raw = base64.b64decode(auth[6:]).decode("utf-8", "replace")
                return urllib.parse.unquote_plus(raw.partition(":")[0])
            form = urllib.parse.parse_qs(body.decode("ascii", "replace"))
            return form.get("client_id", [""])[-1]

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
