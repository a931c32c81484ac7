"""Publish with OAuth 2.0 access tokens (client-credentials grant), re-authenticating before each expires.

RabbitMQ's ``rabbitmq_auth_backend_oauth2`` takes the token as the password (the username is ignored) and
closes a connection whose token has expired; :class:`OAuth2Credentials` fetches a new token when 80 % of
the current one's lifetime has passed and every open connection authenticates again with it, without
interrupting publishing.  Needs ``pip install rabbitstream-oauth2``.
Env: RABBITSTREAM_HOST (default localhost), RABBITSTREAM_OAUTH_PORT (default 5552),
RABBITSTREAM_OAUTH_TOKEN_URL (the identity server's token endpoint), RABBITSTREAM_OAUTH_CLIENT_ID,
RABBITSTREAM_OAUTH_CLIENT_SECRET, RABBITSTREAM_OAUTH_SCOPE (optional), RABBITSTREAM_OAUTH_CA (optional CA
file for the token endpoint; default: the system trust store), RABBITSTREAM_EXAMPLE_STREAM (default
"oauth2-demo"), RABBITSTREAM_EXAMPLE_SECONDS (default 60: how long to publish).
"""

import asyncio
import os
import ssl
import time

from rabbitstream import AMQPMessage, Producer
from rabbitstream_oauth2 import ClientCredentials, OAuth2Credentials, RefreshFailure, Token

HOST = os.getenv("RABBITSTREAM_HOST", "localhost")
PORT = int(os.getenv("RABBITSTREAM_OAUTH_PORT", "5552"))
TOKEN_URL = os.environ["RABBITSTREAM_OAUTH_TOKEN_URL"]
CLIENT_ID = os.environ["RABBITSTREAM_OAUTH_CLIENT_ID"]
CLIENT_SECRET = os.environ["RABBITSTREAM_OAUTH_CLIENT_SECRET"]
SCOPE = os.getenv("RABBITSTREAM_OAUTH_SCOPE")
CA = os.getenv("RABBITSTREAM_OAUTH_CA")
STREAM = os.getenv("RABBITSTREAM_EXAMPLE_STREAM", "oauth2-demo")
SECONDS = float(os.getenv("RABBITSTREAM_EXAMPLE_SECONDS", "60"))


def on_refresh(token: Token) -> None:
    print(f"token refreshed, every connection re-authenticated; valid {token.expires_in():.0f}s")


def on_error(failure: RefreshFailure) -> None:  # wire this to your alerting
    print(f"token refresh problem ({failure.stage}, attempt {failure.attempt}): {failure.error}")


async def publish() -> None:
    provider = ClientCredentials(
        TOKEN_URL,
        CLIENT_ID,
        CLIENT_SECRET,
        scope=SCOPE,
        ssl_context=ssl.create_default_context(cafile=CA),  # TLS verified (cafile=None: system CAs)
    )
    credentials = OAuth2Credentials(provider, on_refresh=on_refresh, on_error=on_error)
    sent = 0
    async with Producer(HOST, PORT, username="", password=credentials) as producer:
        await producer.create_stream(STREAM, exists_ok=True)
        deadline = time.monotonic() + SECONDS
        while time.monotonic() < deadline:
            await producer.send_batch(
                STREAM, [AMQPMessage(body=f"oauth2 {sent + i}".encode()) for i in range(10)]
            )
            sent += 10
            await asyncio.sleep(0.1)
    print(f"Sent {sent} messages in {SECONDS:.0f}s with {credentials.refreshes} token refreshes")


asyncio.run(publish())
