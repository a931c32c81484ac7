"""rabbitstream-oauth2 without a broker: tokens, the client-credentials grant (against the local HTTPS
issuer of ``tools/token_issuer.py``), refresh timing, back-off and error reporting."""

from __future__ import annotations

import asyncio
import functools
import ssl
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parents[4]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from rabbitstream import CredentialsProvider  # noqa: E402
from rabbitstream.exceptions import AuthenticationFailure, ConnectionClosed  # noqa: E402
from rabbitstream_oauth2 import (  # noqa: E402
    ClientCredentials,
    OAuth2Credentials,
    RefreshFailure,
    Token,
    TokenError,
    jwt_expiry,
)

from tools.token_issuer import TokenIssuer, sign_jwt  # noqa: E402

KEY = b"unit-test-key"


@pytest.fixture(scope="module")
def issuer() -> Iterator[TokenIssuer]:
    with TokenIssuer(key=KEY, key_id="k1", resource="rabbitstream", lifetime=30) as iss:
        iss.add_client("app", "s3cret:/&")
        yield iss


def _ctx(issuer: TokenIssuer) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=issuer.ca_file)


# ------------------------------------------------------------------ tokens


def test_jwt_expiry_and_token() -> None:
    jwt = sign_jwt(KEY, key_id="k1", subject="a", audience="r", lifetime=100, now=1000.0)
    assert jwt_expiry(jwt) == 1100.0
    assert Token.from_jwt(jwt).expires_at == 1100.0
    assert jwt_expiry("not-a-jwt") is None
    assert jwt_expiry("a.!!!.c") is None
    with pytest.raises(TokenError):
        Token.from_jwt("opaque-token")
    token = Token.expiring_in("secret-value", 60)
    assert 59 < token.expires_in() <= 60
    assert "secret-value" not in repr(token)


# ------------------------------------------------------------------ client credentials


@pytest.mark.parametrize("auth", ["basic", "post"])
async def test_client_credentials(issuer: TokenIssuer, auth: str) -> None:
    provider = ClientCredentials(
        issuer.token_url, "app", "s3cret:/&", "x", ssl_context=_ctx(issuer), auth=auth
    )
    token = await provider()
    assert 29 < token.expires_in() <= 30
    assert jwt_expiry(token.value) is not None
    assert "s3cret" not in repr(provider)


def test_client_credentials_errors(issuer: TokenIssuer) -> None:
    wrong = ClientCredentials(issuer.token_url, "app", "nope", ssl_context=_ctx(issuer))
    with pytest.raises(TokenError, match="HTTP 401: invalid_client"):
        wrong.fetch()
    untrusted = ClientCredentials(issuer.token_url, "app", "s3cret:/&")  # system CAs: TLS verified
    with pytest.raises(TokenError, match="CERTIFICATE_VERIFY_FAILED"):
        untrusted.fetch()
    with pytest.raises(ValueError, match="https"):
        ClientCredentials(f"http://127.0.0.1:{issuer.port}/token", "app", "x")
    ClientCredentials("http://127.0.0.1:1/token", "app", "x", allow_insecure_http=True)
    issuer.fail_next(1)
    with pytest.raises(TokenError, match="HTTP 503"):
        ClientCredentials(issuer.token_url, "app", "s3cret:/&", ssl_context=_ctx(issuer)).fetch()
    gone = ClientCredentials("https://127.0.0.1:1/token", "app", "x", timeout=2)
    with pytest.raises(TokenError, match="unreachable"):
        gone.fetch()


# ------------------------------------------------------------------ refresh


class _Provider:
    """Tokens of ``lifetime`` seconds; fails while ``failing`` > 0."""

    def __init__(self, lifetime: float) -> None:
        self.lifetime = lifetime
        self.calls = 0
        self.failing = 0

    async def __call__(self) -> Token:
        self.calls += 1
        if self.failing:
            self.failing -= 1
            raise TokenError("identity server down")
        return Token.expiring_in(f"token-{self.calls}", self.lifetime)


async def test_is_a_credentials_provider_and_refreshes_every_listener() -> None:
    provider = _Provider(lifetime=1.0)
    creds = OAuth2Credentials(provider, refresh_ratio=0.5, min_validity=0.1)
    assert isinstance(creds, CredentialsProvider)
    assert await creds.password() == "token-1"
    assert await creds.password() == "token-1"  # cached while valid
    seen: list[list[str]] = [[], []]
    removes = [creds.add_listener(functools.partial(_record, seen[i])) for i in range(2)]
    await asyncio.sleep(1.3)  # refreshes at ~0.5 s and ~1.0 s
    assert seen[0] == seen[1] == ["token-2", "token-3"]
    assert creds.refreshes == 2 and creds.connections == 2
    for remove in removes:
        remove()
    assert creds._task is None  # no connection left: no refresh loop
    await asyncio.sleep(0.6)
    assert provider.calls == 3


async def _record(seen: list[str], pw: str) -> None:
    seen.append(pw)


async def test_failed_refresh_is_retried_with_back_off_and_reported_before_expiry() -> None:
    provider = _Provider(lifetime=4.0)
    failures: list[RefreshFailure] = []
    creds = OAuth2Credentials(provider, refresh_ratio=0.25, retry_initial=0.2, on_error=failures.append)
    await creds.password()
    provider.failing = 3
    got: list[str] = []
    done = asyncio.Event()

    async def listener(pw: str) -> None:
        got.append(pw)
        done.set()

    remove = creds.add_listener(listener)
    await asyncio.wait_for(done.wait(), 5)
    remove()
    assert got == ["token-5"]
    assert [(f.stage, f.attempt, f.retry_in) for f in failures] == [
        ("fetch", 1, 0.2),
        ("fetch", 2, 0.4),
        ("fetch", 3, 0.8),
    ]
    assert all(f.expires_in is not None and f.expires_in > 0 for f in failures)  # before it ran out
    assert all(isinstance(f.error, TokenError) for f in failures)


def test_back_off_never_waits_past_half_the_time_left() -> None:
    creds = OAuth2Credentials(_Provider(10), retry_initial=1, retry_max=30)
    creds._set(Token(value="t", expires_at=1000.0))
    assert creds.retry_delay(1, now=900.0) == 1
    assert creds.retry_delay(6, now=900.0) == 30
    assert creds.retry_delay(6, now=990.0) == 5
    assert creds.retry_delay(6, now=1001.0) == 30  # expired: back to the normal cap


async def test_refused_reauthentication_is_reported_closed_connection_is_not() -> None:
    failures: list[RefreshFailure] = []
    creds = OAuth2Credentials(_Provider(lifetime=0.6), refresh_ratio=0.5, on_error=failures.append)
    await creds.password()

    async def refuses(pw: str) -> None:
        raise AuthenticationFailure("re-authentication")

    async def closed(pw: str) -> None:
        raise ConnectionClosed("gone")

    removes = [creds.add_listener(refuses), creds.add_listener(closed)]
    await asyncio.sleep(0.45)
    for remove in removes:
        remove()
    assert [f.stage for f in failures] == ["reauthenticate"]
    assert isinstance(failures[0].error, AuthenticationFailure)


async def test_sync_provider_runs_in_a_thread() -> None:
    import threading

    threads: list[str] = []

    def blocking() -> Token:
        threads.append(threading.current_thread().name)
        time.sleep(0.05)
        return Token.expiring_in("sync-token", 60)

    creds = OAuth2Credentials(blocking)
    assert await creds.password() == "sync-token"
    assert threads and threads[0] != threading.current_thread().name


async def test_bad_provider_answers() -> None:
    with pytest.raises(TokenError, match="expired"):
        await OAuth2Credentials(lambda: Token("x", time.time() - 1)).password()
    with pytest.raises(TokenError, match="not a Token"):
        await OAuth2Credentials(lambda: "x").password()  # type: ignore[arg-type,return-value]
    with pytest.raises(ValueError):
        OAuth2Credentials(lambda: Token("x", 0), refresh_ratio=1.5)


async def test_client_credentials_with_refresh(issuer: TokenIssuer) -> None:
    creds = OAuth2Credentials(
        ClientCredentials(issuer.token_url, "app", "s3cret:/&", ssl_context=_ctx(issuer))
    )
    before = issuer.issued("app")
    pw = await creds.password()
    assert jwt_expiry(pw) is not None and issuer.issued("app") == before + 1
    await creds.aclose()
