"""The connection layer shared by :class:`~rabbitstream.Producer` and :class:`~rabbitstream.Consumer`.

One object per owner, :class:`ConnectionPool`, does what both need:

* the connection options (:class:`ConnectionOptions`, one object for every keyword of
  :meth:`Client.connect <rabbitstream.Client.connect>` a producer or consumer forwards);
* the locator connection (opened lazily, one opening at a time, failing over through
  :class:`~rabbitstream._connection._locator.NodeSelector`);
* the data connections (:class:`NodeConnection`), one or more per node, each carrying up to a limit
  of publishers or subscriptions, opened with the locator's help;
* the background tasks of the owner and the closing of connections, with one time-out policy
  (:data:`CLOSE_TIMEOUT`, :data:`CLOSE_WAIT_TIMEOUT`, :data:`CALLBACK_WAIT_TIMEOUT`).

The recovery loop is :mod:`._recovery`.  The owner keeps the policy that differs between producers
and consumers (where to connect, what a connection carries, what "closed" means); the pool asks for
it through callables and never through a parent object.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import ssl
from collections.abc import Awaitable, Callable, Collection, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from rabbitstream._connection._client import Client
from rabbitstream._connection._credentials import CredentialsProvider
from rabbitstream._connection._locator import REPLICA_ATTEMPTS, Address, NodeSelector
from rabbitstream.protocol._chunk import ChunkLimits
from rabbitstream.protocol._connection import DEFAULT_MAX_INBOUND_FRAME

if TYPE_CHECKING:
    from rabbitstream.plugin import Registry

__all__ = [
    "CALLBACK_WAIT_TIMEOUT",
    "CLOSE_TIMEOUT",
    "CLOSE_WAIT_TIMEOUT",
    "ConnectionOptions",
    "ConnectionPool",
    "NodeConnection",
    "close_client",
    "close_step",
    "close_wait_timeout",
]

log = logging.getLogger("rabbitstream.connection")

# The one time-out policy of ``close()`` (producers and consumers alike): every request it makes
# (DeletePublisher, Unsubscribe) and every connection it closes gets CLOSE_TIMEOUT; waiting for work
# in flight (unconfirmed messages, cancelled background tasks) gets CLOSE_WAIT_TIMEOUT in all.
#: Seconds one request or one connection closing may take during ``close()``.
CLOSE_TIMEOUT = 3.0
#: Seconds ``close()`` waits for work in flight (confirms, background tasks, connection closings).
CLOSE_WAIT_TIMEOUT = 5.0
#: Seconds ``Producer.close()`` lets the async confirm callbacks of the messages it released run
#: before the background tasks are cancelled.
CALLBACK_WAIT_TIMEOUT = 1.0

_E = TypeVar("_E")
_T = TypeVar("_T")


@dataclass(frozen=True)
class ConnectionOptions:
    """Everything a producer or consumer hands to :meth:`Client.connect` besides host, port and name."""

    ssl_context: ssl.SSLContext | None = None
    vhost: str = "/"
    username: str = "guest"
    password: str | CredentialsProvider = "guest"
    sasl_mechanism: str = "PLAIN"
    frame_max: int = 1048576
    heartbeat: int = 60
    registry: Registry | None = None
    max_inbound_frame_size: int = DEFAULT_MAX_INBOUND_FRAME
    chunk_limits: ChunkLimits | None = None
    #: called with each connection once it is open (instrumentation: ``_connection/_observe.py``)
    on_connect: Callable[[Client], None] | None = None

    @staticmethod
    def mechanism_name(mechanism: object) -> str:
        """The SASL mechanism name of a ``SlasMechanism`` member or a plain string."""
        return str(getattr(mechanism, "value", mechanism))

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any], **extra: Any) -> ConnectionOptions:
        """The options among the keywords of a producer or consumer constructor (its ``locals()``):
        every field of the same name, and ``sasl_configuration_mechanism`` as ``sasl_mechanism``;
        ``extra`` fields (``chunk_limits``) are given as they are."""
        fields = {f.name for f in dataclasses.fields(cls)}
        chosen = {k: v for k, v in kwargs.items() if k in fields}
        if "sasl_configuration_mechanism" in kwargs:
            chosen["sasl_mechanism"] = cls.mechanism_name(kwargs["sasl_configuration_mechanism"])
        return cls(**chosen, **extra)

    async def connect(self, host: str, port: int, name: str) -> Client:
        """An authenticated, open connection to ``host:port`` named ``name``."""
        client = await Client.connect(
            host,
            port,
            connection_name=name,
            ssl_context=self.ssl_context,
            vhost=self.vhost,
            username=self.username,
            password=self.password,
            sasl_mechanism=self.sasl_mechanism,
            frame_max=self.frame_max,
            heartbeat=self.heartbeat,
            registry=self.registry,
            max_inbound_frame_size=self.max_inbound_frame_size,
            chunk_limits=self.chunk_limits,
        )
        if self.on_connect is not None:
            self.on_connect(client)
        return client


class NodeConnection(Generic[_E]):
    """A data connection to one node and what it carries (publishers or subscriptions by wire id)."""

    __slots__ = ("client", "closing", "entries", "node")

    def __init__(self, client: Client, node: Address) -> None:
        self.client = client
        self.node = node
        self.entries: dict[int, _E] = {}
        self.closing = False

    def usable(self, limit: int) -> bool:
        """Open, not being closed, and room for one more entry."""
        return not self.closing and not self.client.is_closed and len(self.entries) < limit

    def free_id(self, limit: int) -> int | None:
        """The lowest wire id below ``limit`` not in use (``None``: full)."""
        entries = self.entries
        if len(entries) >= limit:
            return None
        for i in range(limit):
            if i not in entries:
                return i
        return None  # pragma: no cover


def close_wait_timeout() -> float:
    """:data:`CLOSE_WAIT_TIMEOUT`, read at call time."""
    return CLOSE_WAIT_TIMEOUT


async def close_step(step: Awaitable[_T]) -> _T:
    """One request made while closing (DeletePublisher, Unsubscribe), bounded by :data:`CLOSE_TIMEOUT`.

    :raises asyncio.TimeoutError: it took longer.
    """
    return await asyncio.wait_for(step, CLOSE_TIMEOUT)


async def close_client(client: Client) -> None:
    """Close ``client`` within :data:`CLOSE_TIMEOUT` (errors of a connection already gone are logged)."""
    try:
        await asyncio.wait_for(client.close(), CLOSE_TIMEOUT)
    except Exception as exc:
        log.debug("closing %r failed: %r", client, exc)


class ConnectionPool(Generic[_E]):
    """Locator, data connections and background tasks of one producer or consumer.

    :param host: address given by the application (a node or a load balancer).
    :param port: its stream port.
    :param options: how to connect.
    :param connection_name: base name of the connections (the locator is ``locator-<name>``).
    :param closed_error: makes the error raised when the owner is closed and a connection is wanted.
    :param load_balancer_mode: every connection goes through ``host:port``.
    :param max_retries: load-balancer attempts (see :class:`NodeSelector`).
    """

    def __init__(
        self,
        host: str,
        port: int,
        options: ConnectionOptions,
        *,
        connection_name: str,
        closed_error: Callable[[], Exception],
        load_balancer_mode: bool = False,
        max_retries: int = 20,
    ) -> None:
        self.options = options
        self.connection_name = connection_name
        self.nodes = NodeSelector(
            host, port, options.connect, load_balancer_mode=load_balancer_mode, max_retries=max_retries
        )
        self._closed_error = closed_error
        self.locator_client: Client | None = None
        #: a locator was opened once (``repr`` tells a new owner from a closed one)
        self.was_opened = False
        self._locator_lock = asyncio.Lock()
        self._conn_lock = asyncio.Lock()
        self.connections: list[NodeConnection[_E]] = []
        self._tasks: set[asyncio.Task[Any]] = set()  # background work, cancelled by close
        self._closers: set[asyncio.Task[Any]] = set()  # connection closings, awaited by close

    # ------------------------------------------------------------------ locator

    async def locator(self, *, refuse: bool = False) -> Client:
        """The locator connection, (re)opened when needed.

        :param refuse: raise the owner's closed error instead of opening a connection (the owner
            is closing).
        """
        loc = self.locator_client
        if loc is not None and not loc.is_closed:
            return loc
        # One opening at a time: after a connection loss every recovery task asks for the locator at
        # once; opened concurrently, all but the last stored one would be dropped open.
        async with self._locator_lock:
            loc = self.locator_client
            if loc is None or loc.is_closed:
                if refuse:
                    raise self._closed_error()
                # a dead locator's node is tried last: recovery never waits on the node that just died
                loc = self.locator_client = await self.nodes.open_locator(
                    f"locator-{self.connection_name}", loc
                )
                self.was_opened = True
            return loc

    async def close_locator(self) -> None:
        """Close the locator (one being opened right now included)."""
        async with self._locator_lock:
            loc, self.locator_client = self.locator_client, None
        if loc is not None:
            await close_client(loc)

    # ------------------------------------------------------------------ data connections

    async def connection(
        self,
        wanted: Sequence[Address],
        *,
        limit: int,
        closed: Callable[[], bool],
        setup: Callable[[NodeConnection[_E]], None],
        fallback: Sequence[Address] = (),
        fallback_after: int = REPLICA_ATTEMPTS,
    ) -> NodeConnection[_E]:
        """A connection to one of ``wanted`` (else ``fallback``) with room for one more entry: an
        existing one, else a new one (``setup`` installs the owner's handlers on it).

        :param closed: whether the owner is closed; checked before and after connecting (a
            connection opened meanwhile is closed again).
        """
        async with self._conn_lock:
            if closed():
                raise self._closed_error()
            pool = set(wanted)
            for existing in self.connections:
                if existing.node in pool and existing.usable(limit):
                    return existing
            locator = await self.locator(refuse=closed())
            client, node = await self.nodes.connect_node(
                wanted,
                self.connection_name,
                fallback=fallback,
                fallback_after=fallback_after,
                locator=locator,
            )
            if closed():  # close() ran while connecting: it has already closed self.connections
                await close_client(client)
                raise self._closed_error()
            conn: NodeConnection[_E] = NodeConnection(client, node)
            setup(conn)
            self.connections.append(conn)
            return conn

    def forget(self, conn: NodeConnection[_E]) -> None:
        """Stop using ``conn`` (lost, or about to be closed)."""
        conn.closing = True
        try:
            self.connections.remove(conn)
        except ValueError:
            pass

    def drop(self, conn: NodeConnection[_E]) -> None:
        """Forget ``conn`` and close it in the background (awaited by :meth:`end_tasks`)."""
        self.forget(conn)
        if not conn.client.is_closed:
            task = asyncio.ensure_future(close_client(conn.client))
            self._closers.add(task)
            task.add_done_callback(self._closers.discard)

    async def close_all(self, before: Callable[[NodeConnection[_E]], Awaitable[None]] | None = None) -> None:
        """Close every data connection at once (``before(conn)`` first, e.g. DeletePublisher)."""
        conns, self.connections = self.connections, []

        async def one(conn: NodeConnection[_E]) -> None:
            conn.closing = True
            if before is not None and not conn.client.is_closed:
                try:
                    await close_step(before(conn))
                except Exception as exc:
                    log.debug("closing %r: %r", conn.client, exc)
            conn.entries.clear()
            await close_client(conn.client)

        await asyncio.gather(*(one(c) for c in conns), return_exceptions=True)

    # ------------------------------------------------------------------ background tasks

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``coro`` as a task owned by the pool (cancelled by :meth:`cancel_tasks`)."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def cancel_tasks(self, keep: Collection[asyncio.Task[Any] | None] = ()) -> None:
        """Cancel the background tasks (except the calling one and those in ``keep``: the tasks
        waiting for the close that calls this)."""
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current and task not in keep:
                task.cancel()

    async def end_tasks(self, keep: Collection[asyncio.Task[Any] | None] = ()) -> None:
        """Cancel the background tasks (but ``keep``) and wait for them and for the connection
        closings they started as they unwound (bounded: :data:`CLOSE_WAIT_TIMEOUT`)."""
        self.cancel_tasks(keep)
        loop = asyncio.get_running_loop()
        current = asyncio.current_task()
        deadline = loop.time() + close_wait_timeout()
        while True:
            pending = [
                t for t in self._tasks | self._closers if t is not current and t not in keep and not t.done()
            ]
            remaining = deadline - loop.time()
            if not pending or remaining <= 0:
                return
            await asyncio.wait(pending, timeout=remaining)
