"""rabbitstream plugin: OAuth 2.0 access tokens, refreshed and re-authenticated before they expire.

RabbitMQ's ``rabbitmq_auth_backend_oauth2`` takes a JWT access token as the PLAIN password (the username
is ignored) and closes a stream connection when its token expires, unless the client authenticates
again on the open connection with a new token.  :class:`OAuth2Credentials` does that for every
connection of the producers and consumers it is given to::

    from rabbitstream import Producer
    from rabbitstream_oauth2 import ClientCredentials, OAuth2Credentials

    creds = OAuth2Credentials(
        ClientCredentials("https://idp.example/oauth/token", "my-app", secret, scope="rabbitmq.write:*/*")
    )
    async with Producer("rabbit.example", username="", password=creds) as producer:
        ...

Any callable returning a :class:`Token` (sync or async) can replace :class:`ClientCredentials`.
See ``docs/oauth2.md``.
"""

from __future__ import annotations

from rabbitstream_oauth2._client_credentials import ClientCredentials
from rabbitstream_oauth2._credentials import OAuth2Credentials
from rabbitstream_oauth2._token import RefreshFailure, Token, TokenError, TokenProvider, jwt_expiry

__all__ = [
    "ClientCredentials",
    "OAuth2Credentials",
    "RefreshFailure",
    "Token",
    "TokenError",
    "TokenProvider",
    "jwt_expiry",
]
