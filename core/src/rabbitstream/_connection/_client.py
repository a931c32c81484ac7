"""``Client``: one authenticated connection to a broker node and typed RPCs.

This is the layer the producer, consumer and super-stream classes build on
(see ``docs/architecture.md``).  RPCs raise the :class:`~rabbitstream.exceptions.ServerError`
subclass of the response code, :class:`~rabbitstream.exceptions.RPCTimeout` when the
broker does not answer in time and :class:`~rabbitstream.exceptions.ConnectionClosed`
when the connection goes away.  Callbacks run synchronously inside
``data_received``: they must not block.
"""

from __future__ import annotations

import asyncio
import platform
import ssl
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from rabbitstream._connection._credentials import CredentialsProvider
from rabbitstream._connection._transport import (
    ChunkCallback,
    CloseListener,
    PublishConfirmHandler,
    PublishErrorHandler,
    StreamProtocol,
)
from rabbitstream._connection._uri import DEFAULT_PORT, DEFAULT_TLS_PORT, parse_uri
from rabbitstream.exceptions import (
    ClientError,
    ConnectError,
    ConnectionClosed,
    RabbitStreamError,
    RPCTimeout,
    ServerError,
    StreamDoesNotExist,
)
from rabbitstream.plugin import Registry, get_registry
from rabbitstream.protocol._chunk import ChunkLimits
from rabbitstream.protocol._connection import DEFAULT_MAX_INBOUND_FRAME, HandshakeComplete, check_credentials
from rabbitstream.protocol._framebase import Frame, Response
from rabbitstream.protocol._frames import (
    ConsumerUpdateResponse,
    CreateRequest,
    CreateSuperStreamRequest,
    Credit,
    DeclarePublisherRequest,
    DeletePublisherRequest,
    DeleteRequest,
    DeleteSuperStreamRequest,
    ExchangeCommandVersionsRequest,
    ExchangeCommandVersionsResponse,
    MetadataRequest,
    MetadataResponse,
    PartitionsRequest,
    PartitionsResponse,
    QueryOffsetRequest,
    QueryOffsetResponse,
    QueryPublisherSequenceRequest,
    QueryPublisherSequenceResponse,
    ResolveOffsetSpecRequest,
    ResolveOffsetSpecResponse,
    RouteRequest,
    RouteResponse,
    SaslAuthenticateRequest,
    SaslAuthenticateResponse,
    StoreOffset,
    StreamStatsRequest,
    StreamStatsResponse,
    SubscribeRequest,
    UnsubscribeRequest,
)
from rabbitstream.protocol._frames_pubsub import DELIVER_KEY, PUBLISH_KEY

if TYPE_CHECKING:
    from rabbitstream.protocol._chunk import Chunk

__all__ = ["DEFAULT_PORT", "DEFAULT_TLS_PORT", "Broker", "Client", "StreamMetadata"]

_R = TypeVar("_R", bound=Response)
_OK = 1
_SASL_CHALLENGE = 0x0A
#: Commands this client can receive in newer versions: Deliver 1-2 (committed chunk id), Publish 1-2.
CLIENT_COMMAND_VERSIONS: tuple[tuple[int, int, int], ...] = ((DELIVER_KEY, 1, 2), (PUBLISH_KEY, 1, 2))


@dataclass(frozen=True, slots=True)
class Broker:
    """A broker node as advertised in Metadata."""

    host: str
    port: int
    reference: int = 0


@dataclass(frozen=True, slots=True)
class StreamMetadata:
    """Metadata of one stream: ``code`` 1 = OK; ``leader`` None when unavailable."""

    stream: str
    code: int
    leader: Broker | None
    replicas: list[Broker] = field(default_factory=list)


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


class Client:
    """One connection to one broker node (create with :meth:`connect` or :meth:`from_uri`)."""

    def __init__(self, protocol: StreamProtocol, host: str, port: int, *, rpc_timeout: float) -> None:
        self._protocol = protocol
        self._conn = protocol.conn
        self._loop = asyncio.get_running_loop()
        self.host = host
        self.port = port
        self.rpc_timeout = rpc_timeout
        self.frame_max = 0
        self.heartbeat = 0
        self.server_properties: dict[str, str] = {}
        #: the broker's ``version`` peer property as integers, e.g. ``(4, 3, 6)``
        self.server_version: tuple[int, ...] = ()
        self.connection_properties: dict[str, str] = {}
        self.server_command_versions: dict[int, tuple[int, int]] = {}
        self.sasl_mechanisms: tuple[str, ...] = ()
        self.deliver_version = 1
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
        if resp.code != _OK:
            raise ServerError.for_code(resp.code, what)

    async def _exchange_command_versions(self) -> None:
        resp = await self._rpc(
            lambda c: ExchangeCommandVersionsRequest(correlation_id=c, commands=CLIENT_COMMAND_VERSIONS),
            ExchangeCommandVersionsResponse,
            "ExchangeCommandVersions",
        )
        self.server_command_versions = {k: (lo, hi) for k, lo, hi in resp.commands}
        self.deliver_version = 2

    # ------------------------------------------------------------------ heartbeats

    # ------------------------------------------------------------------ state

    @property
    def address(self) -> str:
        """``host:port`` as connected to."""
        return self._protocol.address

    @property
    def advertised_host(self) -> str:
        """``advertised_host`` from the Open response (the connected host if absent)."""
        return self.connection_properties.get("advertised_host", self.host)

    @property
    def advertised_port(self) -> int:
        """``advertised_port`` from the Open response (the connected port if absent)."""
        try:
            return int(self.connection_properties["advertised_port"])
        except (KeyError, ValueError):
            return self.port

    @property
    def publish_version(self) -> int:
        """2 when the broker accepts Publish v2 (filter values), else 1."""
        return 2 if self.server_command_versions.get(PUBLISH_KEY, (1, 1))[1] >= 2 else 1

    @property
    def is_closed(self) -> bool:
        """True once the connection is gone (or closing)."""
        return self._protocol.closed or self._conn.state.value in ("closing", "closed")

    @property
    def close_reason(self) -> BaseException | None:
        """Why the connection closed (None after a normal :meth:`close`)."""
        return self._protocol.close_reason

    async def wait_closed(self) -> None:
        """Wait until the connection is gone."""
        await asyncio.shield(self._protocol.closed_future)

    def add_close_listener(self, cb: CloseListener) -> None:
        """Call ``cb(reason)`` once when the connection is lost (reason None after :meth:`close`)."""
        self._protocol.add_close_listener(cb)

    def remove_close_listener(self, cb: CloseListener) -> None:
        """Undo :meth:`add_close_listener`."""
        self._protocol.remove_close_listener(cb)

    async def close(self, timeout: float = 5.0) -> None:
        """Send Close, wait for the answer (up to ``timeout`` s) and close the socket; the
        transport is aborted when it is still open after ``timeout`` (a peer that stopped reading
        never takes the buffered data)."""
        p = self._protocol
        deadline = self._loop.time() + timeout
        p.stop_heartbeat()
        if p.closed:
            return
        try:
            if self._conn.state.value == "open":
                try:
                    self._conn.send_close(1, "OK")
                    p.flush()
                except RabbitStreamError:
                    pass
                try:
                    await asyncio.wait_for(asyncio.shield(p.closed_future), timeout)
                except asyncio.TimeoutError:
                    pass
            p.close_transport()
            if not p.closed:
                try:
                    await asyncio.wait_for(self.wait_closed(), max(deadline - self._loop.time(), 0))
                except asyncio.TimeoutError:
                    p.abort_transport()  # the peer stopped reading: the buffered data never goes
            await self.wait_closed()
        except BaseException:
            # cancelled (e.g. by a caller's timeout shorter than ``timeout``): never leave the socket open
            p.abort_transport()
            raise

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ RPC plumbing

    async def _rpc(
        self, make: Callable[[int], Frame], expect: type[_R], what: str, *, check: bool = True
    ) -> _R:
        p = self._protocol
        if asyncio.get_running_loop() is not self._loop:
            raise ClientError(f"{what}: the connection to {p.address} belongs to another event loop")
        corr, fut = p.request(make)
        try:
            resp = await asyncio.wait_for(fut, self.rpc_timeout)
        except asyncio.TimeoutError:
            p.forget_request(corr)
            raise RPCTimeout(f"{what}: no response from {p.address} within {self.rpc_timeout}s") from None
        except BaseException:  # cancelled: the answer, if it ever comes, is for nobody
            p.forget_request(corr)
            raise
        if not isinstance(resp, expect):
            raise ConnectionClosed(f"{what}: unexpected {type(resp).__name__} for correlation id {corr}")
        if check and resp.code != _OK:
            raise ServerError.for_code(resp.code, what)
        return resp

    def _send(self, frame: Frame) -> None:
        self._protocol.send(frame)

    # ------------------------------------------------------------------ stream management

    async def create_stream(self, stream: str, arguments: Mapping[str, object] | None = None) -> None:
        """Create ``stream`` (argument values are sent as strings).

        :raises StreamAlreadyExists: 0x05 (the caller decides whether that is fine).
        """
        args = {str(k): str(v) for k, v in (arguments or {}).items()}
        await self._simple(
            lambda c: CreateRequest(correlation_id=c, stream=stream, arguments=args),
            f"create stream {stream!r}",
        )

    async def delete_stream(self, stream: str) -> None:
        """Delete ``stream`` (:class:`StreamDoesNotExist` if it does not exist)."""
        await self._simple(
            lambda c: DeleteRequest(correlation_id=c, stream=stream), f"delete stream {stream!r}"
        )

    async def _simple(self, make: Callable[[int], Frame], what: str) -> None:
        await self._rpc(make, Response, what)

    async def metadata(self, streams: Iterable[str]) -> dict[str, StreamMetadata]:
        """Leader and replicas of each stream (per-stream ``code``; no exception for missing streams)."""
        names = tuple(streams)
        resp = await self._rpc(
            lambda c: MetadataRequest(correlation_id=c, streams=names), MetadataResponse, "metadata"
        )
        brokers = {b.reference: Broker(b.host, b.port, b.reference) for b in resp.brokers}
        out: dict[str, StreamMetadata] = {}
        for s in resp.streams:
            leader = brokers.get(s.leader_reference) if s.code == _OK else None
            replicas = [brokers[r] for r in s.replica_references if r in brokers]
            out[s.stream] = StreamMetadata(s.stream, s.code, leader, replicas)
        return out

    async def stream_exists(self, stream: str) -> bool:
        """True unless Metadata reports :class:`StreamDoesNotExist` for ``stream``."""
        meta = (await self.metadata([stream])).get(stream)
        return meta is not None and meta.code != StreamDoesNotExist.code

    async def stream_stats(self, stream: str) -> dict[str, int]:
        """``first_chunk_id``, ``committed_chunk_id``, ``last_chunk_id`` (-1 = none)."""
        resp = await self._rpc(
            lambda c: StreamStatsRequest(correlation_id=c, stream=stream),
            StreamStatsResponse,
            f"stream stats of {stream!r}",
        )
        return dict(resp.stats)

    async def partitions(self, super_stream: str) -> list[str]:
        """The partitions of ``super_stream`` in the broker's order."""
        resp = await self._rpc(
            lambda c: PartitionsRequest(correlation_id=c, super_stream=super_stream),
            PartitionsResponse,
            f"partitions of {super_stream!r}",
        )
        return list(resp.streams)

    async def route(self, routing_key: str, super_stream: str) -> list[str]:
        """The partitions bound to ``routing_key`` (possibly none)."""
        resp = await self._rpc(
            lambda c: RouteRequest(correlation_id=c, routing_key=routing_key, super_stream=super_stream),
            RouteResponse,
            f"route {routing_key!r} in {super_stream!r}",
        )
        return list(resp.streams)

    async def create_super_stream(
        self,
        name: str,
        partitions: Sequence[str],
        binding_keys: Sequence[str],
        arguments: Mapping[str, object] | None = None,
    ) -> None:
        """Create a super stream (3.13+) with its partition streams and bindings."""
        args = {str(k): str(v) for k, v in (arguments or {}).items()}
        await self._simple(
            lambda c: CreateSuperStreamRequest(
                correlation_id=c,
                name=name,
                partitions=tuple(partitions),
                binding_keys=tuple(binding_keys),
                arguments=args,
            ),
            f"create super stream {name!r}",
        )

    async def delete_super_stream(self, name: str) -> None:
        """Delete a super stream and its partitions."""
        await self._simple(
            lambda c: DeleteSuperStreamRequest(correlation_id=c, name=name), f"delete super stream {name!r}"
        )

    async def query_offset(self, reference: str, stream: str) -> int:
        """The offset stored for ``reference`` (:class:`OffsetNotFound` if none)."""
        resp = await self._rpc(
            lambda c: QueryOffsetRequest(correlation_id=c, reference=reference, stream=stream),
            QueryOffsetResponse,
            f"query offset {reference!r} on {stream!r}",
        )
        return resp.value

    def store_offset(self, reference: str, stream: str, offset: int) -> None:
        """Store ``offset`` for ``reference`` (one-way, no answer).

        :raises ValueError: ``offset`` is not in 0..2**64-1.
        """
        if not 0 <= offset < 1 << 64:
            raise ValueError(f"offset must be in 0..2**64-1, not {offset!r}")
        self._send(StoreOffset(reference=reference, stream=stream, offset=offset))

    async def query_publisher_sequence(self, reference: str, stream: str) -> int:
        """The last publishing id stored for producer ``reference`` (0 if none)."""
        resp = await self._rpc(
            lambda c: QueryPublisherSequenceRequest(correlation_id=c, reference=reference, stream=stream),
            QueryPublisherSequenceResponse,
            f"query publisher sequence {reference!r} on {stream!r}",
        )
        return resp.value

    async def resolve_offset_spec(
        self,
        stream: str,
        offset_type: int,
        offset: int | None = None,
        properties: Mapping[str, str] | None = None,
    ) -> int:
        """Resolve an offset specification to an offset (broker 4.3+)."""
        resp = await self._rpc(
            lambda c: ResolveOffsetSpecRequest(
                correlation_id=c,
                stream=stream,
                offset_type=int(offset_type),
                offset=offset,
                properties=dict(properties or {}),
            ),
            ResolveOffsetSpecResponse,
            f"resolve offset spec on {stream!r}",
        )
        return resp.offset

    # ------------------------------------------------------------------ publishing

    async def declare_publisher(self, publisher_id: int, reference: str | None, stream: str) -> None:
        """Declare publisher ``publisher_id`` (0-255) on ``stream``."""
        await self._simple(
            lambda c: DeclarePublisherRequest(
                correlation_id=c, publisher_id=publisher_id, reference=reference or "", stream=stream
            ),
            f"declare publisher {publisher_id} on {stream!r}",
        )

    async def delete_publisher(self, publisher_id: int) -> None:
        """Delete publisher ``publisher_id`` (its handlers are removed)."""
        try:
            await self._simple(
                lambda c: DeletePublisherRequest(correlation_id=c, publisher_id=publisher_id),
                f"delete publisher {publisher_id}",
            )
        finally:
            self._protocol.remove_publisher(publisher_id)

    def set_publisher_handlers(
        self, publisher_id: int, on_confirm: PublishConfirmHandler, on_error: PublishErrorHandler
    ) -> None:
        """Route PublishConfirm / PublishError of ``publisher_id`` to these callbacks."""
        self._protocol.set_publisher(publisher_id, on_confirm, on_error)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Write pre-encoded frames (the caller respects :attr:`frame_max`)."""
        self._protocol.write(data)

    def writelines(self, parts: Iterable[bytes | bytearray | memoryview]) -> None:
        """Write several pre-encoded frames."""
        self._protocol.writelines(parts)

    @property
    def is_writing_paused(self) -> bool:
        """True while the socket buffer is full: await :meth:`drain`."""
        return self._protocol.is_writing_paused

    async def drain(self) -> None:
        """Wait for the transport's write buffer to drain below its low-water mark."""
        await self._protocol.drain()

    # ------------------------------------------------------------------ consuming

    async def subscribe(
        self,
        subscription_id: int,
        stream: str,
        offset_type: int,
        offset: int | None,
        credit: int,
        properties: Mapping[str, str] | None = None,
        *,
        on_chunk: Callable[[Chunk], None] | ChunkCallback,
    ) -> None:
        """Subscribe; every Deliver of ``subscription_id`` is parsed and passed to ``on_chunk``."""
        p = self._protocol
        p.set_subscription(subscription_id, on_chunk)
        try:
            await self._simple(
                lambda c: SubscribeRequest(
                    correlation_id=c,
                    subscription_id=subscription_id,
                    stream=stream,
                    offset_type=int(offset_type),
                    offset=offset,
                    credit=credit,
                    properties=dict(properties or {}),
                ),
                f"subscribe {subscription_id} to {stream!r}",
            )
        except BaseException:
            p.remove_subscription(subscription_id, on_chunk)
            raise

    async def unsubscribe(self, subscription_id: int) -> None:
        """Cancel a subscription (its callback is removed)."""
        try:
            await self._simple(
                lambda c: UnsubscribeRequest(correlation_id=c, subscription_id=subscription_id),
                f"unsubscribe {subscription_id}",
            )
        finally:
            self._protocol.remove_subscription(subscription_id)

    def credit(self, subscription_id: int, credit: int) -> None:
        """Grant ``credit`` more chunks (one-way; errors reach :attr:`on_credit_error`)."""
        self._send(Credit(subscription_id=subscription_id, credit=credit))

    def consumer_update_response(
        self, correlation_id: int, offset_type: int, offset: int | None = None
    ) -> None:
        """Answer a ConsumerUpdate (single active consumer) with where to start (type 0 = none)."""
        self._send(
            ConsumerUpdateResponse(
                correlation_id=correlation_id, code=_OK, offset_type=int(offset_type), offset=offset
            )
        )

    @property
    def on_consumer_update(self) -> Callable[[int, bool, int], None] | None:
        """``cb(subscription_id, active, correlation_id)``; answer with :meth:`consumer_update_response`."""
        return self._protocol.on_consumer_update

    @on_consumer_update.setter
    def on_consumer_update(self, cb: Callable[[int, bool, int], None] | None) -> None:
        self._protocol.on_consumer_update = cb

    @property
    def on_metadata_update(self) -> Callable[[str, int], None] | None:
        """``cb(stream, code)`` on MetadataUpdate (publishers/subscriptions on it are gone)."""
        return self._protocol.on_metadata_update

    @on_metadata_update.setter
    def on_metadata_update(self, cb: Callable[[str, int], None] | None) -> None:
        self._protocol.on_metadata_update = cb

    @property
    def on_credit_error(self) -> Callable[[int, int], None] | None:
        """``cb(subscription_id, code)`` when the broker refuses a Credit."""
        return self._protocol.on_credit_error

    @on_credit_error.setter
    def on_credit_error(self, cb: Callable[[int, int], None] | None) -> None:
        self._protocol.on_credit_error = cb

    def __repr__(self) -> str:
        state = "closed" if self.is_closed else "open"
        return f"<Client {self.address} {state}>"
