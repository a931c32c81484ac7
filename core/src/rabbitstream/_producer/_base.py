"""Publishers on their leaders' connections, and their recovery, for :class:`~rabbitstream.Producer`."""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import TYPE_CHECKING, Any

from rabbitstream._connection._locator import NodeSelector
from rabbitstream._connection._observe import producer_observer
from rabbitstream._connection._owner import ConnectionOwner, OwnerSettings
from rabbitstream._connection._pool import ConnectionOptions, NodeConnection
from rabbitstream._producer._publisher import CONNECTION_LOST_CODE, Publisher
from rabbitstream.exceptions import (
    ClientError,
    MaxPublishersPerInstance,
    ServerError,
    StreamDoesNotExist,
)
from rabbitstream.plugin._types import ProducerObserver

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from rabbitstream._connection._client import Client, StreamMetadata

__all__ = ["EnqueueTimeoutError", "ProducerBase", "ProducerClosedError", "compression_code"]

log = logging.getLogger("rabbitstream.producer")


class EnqueueTimeoutError(ClientError, asyncio.TimeoutError):
    """``send`` waited longer than ``enqueue_timeout`` for room in the in-flight window."""

    # TODO(lead): move to rabbitstream.exceptions


class ProducerClosedError(ClientError):
    """The producer is not started (or was closed)."""

    # TODO(lead): move to rabbitstream.exceptions


def compression_code(compression_type: object) -> int:
    """The wire code of a ``CompressionType`` member / int (``-1`` for a codec *name*)."""
    value: Any = getattr(compression_type, "value", compression_type)
    if isinstance(value, str):
        return -1
    return int(value)


class _PublisherRecovery:
    """A :class:`Publisher` as the recovery loop sees it (a ``Recoverable``)."""

    __slots__ = ("_owner", "pub")

    def __init__(self, owner: ProducerBase, pub: Publisher) -> None:
        self._owner = owner
        self.pub = pub

    @property
    def stream(self) -> str:
        return self.pub.stream

    @property
    def name(self) -> str | None:
        return self.pub.reference

    @property
    def client(self) -> Client | None:
        return self.pub.client

    def wanted(self) -> bool:
        return self.pub in self._owner._publishers.values()

    def ready(self) -> bool:
        return self.pub.ready

    async def reopen(self, stream: str) -> None:
        await self._owner._declare(self.pub)

    def forget(self) -> None:
        """Nothing to forget: a failed publisher is replaced on the next send."""

    def give_up(self, error: BaseException) -> None:
        pub = self.pub
        if isinstance(error, Exception) and not isinstance(error, StreamDoesNotExist):
            failure: BaseException = ClientError(
                f"publisher on {pub.stream!r} could not be recovered: {error!r}"
            )
        else:
            failure = StreamDoesNotExist(f"stream {pub.stream!r} does not exist any more")
        pub.fail_all(CONNECTION_LOST_CODE, failure)


class ProducerBase(ConnectionOwner[Publisher, ProducerObserver]):
    """Publishing connections (one per leader, up to ``max_publishers_by_connection`` publishers each)
    through the :class:`~rabbitstream._connection._owner.ConnectionOwner`'s pool, and their recovery
    through its :class:`~rabbitstream._connection._recovery.Recovery`;
    :class:`~rabbitstream.Producer` adds the publishing API."""

    def __init__(
        self,
        host: str,
        port: int,
        options: ConnectionOptions,
        *,
        max_publishers: int,
        **settings: Unpack[OwnerSettings],
    ) -> None:
        self.host = host
        self.port = port
        self._max_publishers = max_publishers
        super().__init__(
            "producer",
            host,
            port,
            options,
            observer_for=producer_observer,
            closed_error=lambda: ProducerClosedError("the producer is closed"),
            **settings,
        )
        self._publishers: dict[tuple[str, str | None], Publisher] = {}
        self._next_publisher_id = 0
        self._started = False

    @property
    def state(self) -> str:
        """``"new"`` (never started), ``"open"``, ``"closing"`` or ``"closed"``."""
        if self._closing:
            return "closing"
        if self._started:
            return "open"
        return "closed" if self._pool.was_opened else "new"

    def __repr__(self) -> str:
        options = self._pool.options
        publishers = len(set(self._publishers.values()))
        return (
            f"<{type(self).__name__} host={self.host!r} port={self.port} vhost={options.vhost!r} "
            f"user={options.username!r} state={self.state!r} publishers={publishers}>"
        )

    # ------------------------------------------------------------------ connections

    async def _get_locator(self) -> Client:
        return await self._pool.locator(refuse=self._closing)

    @property
    async def default_client(self) -> Client:
        """The locator connection (opened on demand)."""
        return await self._get_locator()

    async def _leader(self, stream: str) -> tuple[str, int]:
        """The stream leader's advertised address, from fresh Metadata (never a cached node)."""
        meta: StreamMetadata = await self._nodes.stream_metadata(await self._get_locator(), stream)
        wanted, _ = NodeSelector.placement(meta, leader=True)
        return wanted[0]

    def _setup(self, conn: NodeConnection[Publisher]) -> None:
        conn.client.add_close_listener(functools.partial(self._on_conn_closed, conn))
        conn.client.on_metadata_update = functools.partial(self._on_metadata_update, conn)

    async def _conn_for(self, leader: tuple[str, int]) -> NodeConnection[Publisher]:
        return await self._pool.connection(
            [leader],
            limit=self._max_publishers,
            closed=lambda: self._closing or not self._started,
            setup=self._setup,
        )

    def _alloc_publisher_id(self, conn: NodeConnection[Publisher]) -> int:
        for _ in range(256):
            pid = self._next_publisher_id % 256
            self._next_publisher_id += 1
            if pid not in conn.entries:
                return pid
        raise MaxPublishersPerInstance("no free publisher id on the connection")

    async def _declare(self, pub: Publisher) -> None:
        """Locate the leader, declare ``pub`` there and attach it (re-sending what is pending)."""
        leader = await self._leader(pub.stream)
        conn = await self._conn_for(leader)
        pid = self._alloc_publisher_id(conn)
        client = conn.client
        conn.entries[pid] = pub
        try:
            client.set_publisher_handlers(pid, pub.on_confirm, pub.on_error)
            await client.declare_publisher(pid, pub.reference or "", pub.stream)
            last = None
            if pub.reference:
                last = await client.query_publisher_sequence(pub.reference, pub.stream)
        except BaseException:
            conn.entries.pop(pid, None)
            raise
        pub.attach(client, pid, last)

    # ------------------------------------------------------------------ recovery

    def _on_conn_closed(self, conn: NodeConnection[Publisher], exc: BaseException | None) -> None:
        if conn.closing or self._closing:
            return
        self._pool.forget(conn)
        pubs = list(conn.entries.values())
        conn.entries.clear()
        self._lost(pubs, "Connection Closed", exc or ConnectionError("connection lost"))

    def _on_metadata_update(self, conn: NodeConnection[Publisher], stream: str, code: int) -> None:
        if self._closing:
            return
        pubs = [p for p in conn.entries.values() if p.stream == stream]
        for pid in [pid for pid, p in conn.entries.items() if p.stream == stream]:
            del conn.entries[pid]
        if pubs:
            self._lost(pubs, "Metadata Update", ServerError.for_code(code, f"metadata update of {stream!r}"))

    def _lost(self, pubs: list[Publisher], reason: str, exc: BaseException) -> None:
        for pub in pubs:
            pub.detach()
        self._recovery.lost([_PublisherRecovery(self, p) for p in pubs], reason, exc)

    # IReliableEntity
    async def stream_exists(self, stream: str, on_close_event: bool = False) -> bool:
        """Whether ``stream`` exists (asked on the locator connection, reopened if needed)."""
        return bool(await (await self._get_locator()).stream_exists(stream))

    def clean_list(self, stream: str) -> None:
        """Recovery hook: nothing to clean (the publisher is failed by the recovery loop)."""
