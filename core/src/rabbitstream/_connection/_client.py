"""``Client``: one authenticated connection to a broker node and typed RPCs.

This is the layer the producer, consumer and super-stream classes build on
(see ``docs/architecture.md``).  RPCs raise the :class:`~rabbitstream.exceptions.ServerError`
subclass of the response code, :class:`~rabbitstream.exceptions.RPCTimeout` when the
broker does not answer in time and :class:`~rabbitstream.exceptions.ConnectionClosed`
when the connection goes away.  Callbacks run synchronously inside
``data_received``: they must not block.

This module opens the connection (TCP/TLS, SASL, tune, open, command versions) and
re-authenticates; the rest of the class is split by job: :mod:`._rpc` (state, close,
request/response), :mod:`._streams` (stream management), :mod:`._pubsub` (publish and consume).
"""

from __future__ import annotations

import asyncio
import platform
import ssl
from collections.abc import Callable
from typing import Any

from rabbitstream._connection._credentials import CredentialsProvider
from rabbitstream._connection._pubsub import PubSubCommands
from rabbitstream._connection._rpc import OK
from rabbitstream._connection._streams import Broker, StreamMetadata
from rabbitstream._connection._transport import StreamProtocol
from rabbitstream._connection._uri import DEFAULT_PORT, DEFAULT_TLS_PORT, parse_uri
from rabbitstream.exceptions import ConnectError, ConnectionClosed, ServerError
from rabbitstream.plugin import Registry, get_registry
from rabbitstream.protocol._chunk import ChunkLimits
from rabbitstream.protocol._connection import DEFAULT_MAX_INBOUND_FRAME, HandshakeComplete, check_credentials
from rabbitstream.protocol._framebase import Frame
from rabbitstream.protocol._frames import (
    ExchangeCommandVersionsRequest,
    ExchangeCommandVersionsResponse,
    SaslAuthenticateRequest,
    SaslAuthenticateResponse,
)
from rabbitstream.protocol._frames_pubsub import DELIVER_KEY, PUBLISH_KEY

__all__ = ["DEFAULT_PORT", "DEFAULT_TLS_PORT", "Broker", "Client", "StreamMetadata"]

_SASL_CHALLENGE = 0x0A
#: Commands this client can receive in newer versions: Deliver 1-2 (committed chunk id), Publish 1-2.
CLIENT_COMMAND_VERSIONS: tuple[tuple[int, int, int], ...] = ((DELIVER_KEY, 1, 2), (PUBLISH_KEY, 1, 2))


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def _sasl_authenticate(mechanism: str, data: bytes | None) -> Callable[[int], Frame]:
    return lambda c: SaslAuthenticateRequest(correlation_id=c, mechanism=mechanism, data=data)


def _client_properties(connection_name: str | None) -> dict[str, str]:
    from rabbitstream._version import __version__

    props = {
        "product": "rabbitstream",
        "version": __version__,
        "platform": f"Python {platform.python_version()}",
        "copyright": "rabbitstream contributors",
        "information": "Licensed under the MIT license. See https://github.com/rabbitstream",
    }
    if connection_name:
        props["connection_name"] = connection_name
    return props


class Client(PubSubCommands):
    """One connection to one broker node (create with :meth:`connect` or :meth:`from_uri`)."""

    def __init__(self, protocol: StreamProtocol, host: str, port: int, *, rpc_timeout: float) -> None:
        super().__init__(protocol, host, port, rpc_timeout=rpc_timeout)
        self._sasl: tuple[Any, str] | None = None  # (mechanism, username) for reauthenticate()

    # ------------------------------------------------------------------ construction

    @classmethod
    async def connect(
        cls,
        host: str = "localhost",
        port: int = DEFAULT_PORT,
        *,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        vhost: str = "/",
        username: str = "guest",
        password: str | CredentialsProvider = "guest",
        sasl_mechanism: str = "PLAIN",
        frame_max: int = 1048576,
        heartbeat: int = 60,
        connection_name: str | None = None,
        connect_timeout: float = 10.0,
        rpc_timeout: float = 10.0,
        registry: Registry | None = None,
        check_crc: bool = True,
        max_inbound_frame_size: int = DEFAULT_MAX_INBOUND_FRAME,
        chunk_limits: ChunkLimits | None = None,
    ) -> Client:
        """Connect, authenticate, tune and open the virtual host.

        :param ssl_context: TLS; the host name is verified against ``server_hostname``
            (default ``host``) unless the context disables it.
        :param password: a string, or a :class:`CredentialsProvider` (OAuth 2.0 tokens): the connection
            opens with its current password and re-authenticates with each new one (:meth:`reauthenticate`).
        :param sasl_mechanism: picked by name from the registry's SASL plugins
            (``PLAIN``, ``EXTERNAL``, ``ANONYMOUS``...).
        :param frame_max: requested frame_max (0 = no limit); negotiated with the broker.
        :param heartbeat: requested heartbeat in seconds (0 = off); negotiated.
        :param max_inbound_frame_size: largest frame accepted from the broker (default
            256 MiB); a larger one closes the connection with ``InboundFrameTooLarge``.
        :param chunk_limits: bounds on the records and decompressed bytes of one delivered
            chunk (default :data:`~rabbitstream.protocol.DEFAULT_CHUNK_LIMITS`).
        :raises InvalidArgument: a NUL character in ``username`` or ``password``.
        :raises ConnectError: TCP/TLS connection failed (refused, DNS, timeout).
        :raises SASLMechanismNotOffered: the broker does not offer ``sasl_mechanism``.
        :raises AuthenticationFailure: wrong credentials (other handshake codes: their class).
        """
        check_credentials(username, password if isinstance(password, str) else "")  # before any I/O
        loop = asyncio.get_running_loop()
        reg = registry if registry is not None else get_registry()
        mechanism = reg.sasl_mechanism(sasl_mechanism)
        address = f"{host}:{port}"
        provider = None if isinstance(password, str) else password
        if provider is not None:
            password = await provider.password()
            check_credentials(username, password)
        assert isinstance(password, str)

        made: list[StreamProtocol] = []

        def factory() -> StreamProtocol:
            protocol = StreamProtocol(
                loop,
                address,
                registry=reg,
                check_crc=check_crc,
                max_inbound_frame_size=max_inbound_frame_size,
                chunk_limits=chunk_limits,
            )
            made.append(protocol)
            return protocol

        try:
            try:
                _, protocol = await asyncio.wait_for(
                    loop.create_connection(
                        factory,
                        host,
                        port,
                        ssl=ssl_context,
                        server_hostname=(server_hostname or host) if ssl_context is not None else None,
                    ),
                    connect_timeout,
                )
            except asyncio.TimeoutError as exc:
                raise ConnectError(
                    f"could not connect to {address}: timed out after {connect_timeout}s"
                ) from exc
            except (OSError, ssl.SSLError) as exc:
                raise ConnectError(f"could not connect to {address}: {exc}") from exc
            client = cls(protocol, host, port, rpc_timeout=rpc_timeout)
            client._sasl = (mechanism, username)
            await client._handshake(
                mechanism, username, password, vhost, frame_max, heartbeat, connection_name, connect_timeout
            )
            if provider is not None:
                remove = provider.add_listener(client.reauthenticate)
                client.add_close_listener(lambda _reason: remove())
                latest = await provider.password()
                if latest != password:  # refreshed while this connection was opening: catch up
                    await client.reauthenticate(latest)
        except BaseException:
            # Every failure (refused, timeout, cancellation, handshake error) closes what was opened,
            # including a connection ``wait_for`` made but dropped as it timed out or was cancelled.
            for made_protocol in made:
                made_protocol.abort_transport()
            raise
        return client

    @classmethod
    async def from_uri(cls, uri: str, **kwargs: Any) -> Client:
        """Connect to ``rabbitmq-stream://user:pass@host:port/vhost`` (``rabbitmq-stream+tls://`` for TLS).

        Keyword arguments are passed to :meth:`connect` and win over the URI; a
        ``+tls`` URI without ``ssl_context`` uses :func:`ssl.create_default_context`.
        """
        return await cls.connect(**cls.parse_uri(uri, **kwargs))

    @staticmethod
    def parse_uri(uri: str, **kwargs: Any) -> dict[str, Any]:
        """The :meth:`connect` keyword arguments for ``uri`` (``kwargs`` override)."""
        return parse_uri(uri, **kwargs)

    async def _handshake(
        self,
        mechanism: Any,
        username: str,
        password: str,
        vhost: str,
        frame_max: int,
        heartbeat: int,
        connection_name: str | None,
        timeout: float,
    ) -> None:
        p = self._protocol
        self._conn.initiate_connection(
            properties=_client_properties(connection_name),
            mechanism=mechanism,
            username=username,
            password=password,
            vhost=vhost,
            frame_max=frame_max,
            heartbeat=heartbeat,
        )
        p.flush()
        try:
            done: HandshakeComplete = await asyncio.wait_for(asyncio.shield(p.handshake), timeout)
        except asyncio.TimeoutError as exc:
            raise ConnectError(
                f"could not connect to {p.address}: handshake timed out after {timeout}s"
            ) from exc
        except ConnectionClosed as exc:
            msg = f"could not connect to {p.address}: {exc}"
            if "CERTIFICATE_REQUIRED" in str(exc).upper():
                msg += " (the broker requires a TLS client certificate: ssl_context.load_cert_chain(...))"
            raise ConnectError(msg) from exc
        self.frame_max = done.frame_max
        self.heartbeat = done.heartbeat
        self.server_properties = done.server_properties
        self.server_version = _version_tuple(self.server_properties.get("version", ""))
        self.connection_properties = done.connection_properties
        self.sasl_mechanisms = done.mechanisms
        if self.server_version >= (3, 11):
            await self._exchange_command_versions()
        if self.heartbeat:
            self._protocol.start_heartbeat(self.heartbeat)

    async def reauthenticate(self, password: str) -> None:
        """Authenticate again on this open connection (SaslAuthenticate after Open).

        Same mechanism and username as the connection was opened with; publishing and consuming go on
        meanwhile.  The broker refuses another mechanism (0x14) or another user (0x15); after any
        refusal it closes the connection.

        :raises AuthenticationFailure: the broker rejected ``password`` (e.g. an expired token).
        :raises SASLCannotChangeUsername: ``password`` belongs to another user.

        .. versionadded:: 0.2
        """
        if self._sasl is None:
            raise RuntimeError("reauthenticate() needs a connection opened with Client.connect()")
        mechanism, username = self._sasl
        # SaslAuthenticate alone: RabbitMQ (3.13-4.x) answers a SaslHandshake after Open with
        # "unknown command" and closes the connection; the mechanism is the one already negotiated.
        data = mechanism.initial_response(username, password)
        what = f"SASL re-authentication ({mechanism.name}, user {username!r})"
        while True:
            resp = await self._rpc(
                _sasl_authenticate(mechanism.name, data), SaslAuthenticateResponse, what, check=False
            )
            if resp.code != _SASL_CHALLENGE:
                break
            data = mechanism.respond(resp.challenge or b"")
        if resp.code != OK:
            raise ServerError.for_code(resp.code, what)

    async def _exchange_command_versions(self) -> None:
        resp = await self._rpc(
            lambda c: ExchangeCommandVersionsRequest(correlation_id=c, commands=CLIENT_COMMAND_VERSIONS),
            ExchangeCommandVersionsResponse,
            "ExchangeCommandVersions",
        )
        self.server_command_versions = {k: (lo, hi) for k, lo, hi in resp.commands}
        self.deliver_version = 2

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        state = "closed" if self.is_closed else "open"
        return f"<Client {self.address} {state}>"
