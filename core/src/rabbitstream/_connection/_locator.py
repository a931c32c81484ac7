"""Node selection shared by :class:`~rabbitstream.Producer` and :class:`~rabbitstream.Consumer`.

Guide: ``docs/clusters.md``.  Three jobs:

* **Locator failover** (:meth:`NodeSelector.open_locator`): the locator connection (metadata and
  management RPCs) goes to the address the application gave; when that node is down, to the other
  nodes learned from earlier Metadata answers (direct mode only), never first to the node whose
  connection just died.
* **Placement** (:meth:`NodeSelector.placement`): producers want the stream leader; consumers a
  replica when one exists (``prefer_replica``), else the leader.
* **Connecting to a node** (:meth:`NodeSelector.connect_node`): directly to the advertised
  ``host:port``; in ``load_balancer_mode`` always through the given address, reading
  ``advertised_host``/``advertised_port`` from the Open response and retrying (with a delay) until
  the wanted node answers, falling back to the leader after ``fallback_after`` attempts, giving up
  with :class:`~rabbitstream.exceptions.BrokerResolutionMaxRetryError` after ``max_retries``.

It also defines :class:`StateChange`, the event a producer or consumer hands to its
``on_state_change`` listener (and logs) while it loses and recovers its connections.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rabbitstream.exceptions import (
    BrokerResolutionMaxRetryError,
    ConnectError,
    LeaderNotAvailable,
    ServerError,
)

if TYPE_CHECKING:
    from rabbitstream._connection._client import Client, StreamMetadata

__all__ = [
    "DISCONNECTED",
    "FAILED",
    "RECOVERED",
    "RECOVERING",
    "Address",
    "NodeSelector",
    "StateChange",
    "StateListener",
    "notify_state",
]

log = logging.getLogger("rabbitstream.locator")

Address = tuple[str, int]
Connector = Callable[[str, int, str], Awaitable["Client"]]

#: :attr:`StateChange.state` values, in the order they happen.
DISCONNECTED = "disconnected"
RECOVERING = "recovering"
RECOVERED = "recovered"
FAILED = "failed"

#: Load-balancer retry delay (seconds) between two connections that reached the wrong node.
LB_RETRY_DELAY = 0.2
#: Consumers: LB attempts before a replica-preferring consumer accepts the leader (Java: 5).
REPLICA_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class StateChange:
    """One step of a producer's publisher or a consumer's subscription through a failure.

    :ivar entity: ``"producer"`` or ``"consumer"``.
    :ivar stream: the stream concerned.
    :ivar name: publisher reference / subscriber name (``None`` when unnamed).
    :ivar state: :data:`DISCONNECTED` (connection lost or MetadataUpdate), :data:`RECOVERING`
        (before each attempt), :data:`RECOVERED` (publishing / consuming again) or :data:`FAILED`
        (recovery disabled, exhausted or the stream is gone).
    :ivar reason: ``"Connection Closed"`` or ``"Metadata Update"`` (as ``OnClosedErrorInfo.reason``).
    :ivar attempt: recovery attempt number (0 for ``disconnected``).
    :ivar error: the error that caused the step (``None`` for ``recovered``).
    :ivar node: ``host:port`` (advertised) of the node reached, for ``recovered``.
    :ivar elapsed: seconds since the matching ``disconnected`` event (``recovered`` / ``failed``).
    """

    entity: str
    stream: str
    name: str | None
    state: str
    reason: str
    attempt: int = 0
    error: BaseException | None = None
    node: str | None = None
    elapsed: float = 0.0
    at: float = field(default_factory=time.monotonic)


StateListener = Callable[[StateChange], "Awaitable[None] | None"]

_listener_tasks: set[asyncio.Future[Any]] = set()


def notify_state(listener: StateListener | None, change: StateChange) -> None:
    """Log ``change`` (logger ``rabbitstream.<entity>``) and hand it to ``listener``.

    A listener returning an awaitable gets it scheduled as a task; a failing listener is logged and
    never disturbs the recovery.
    """
    level = logging.WARNING if change.state == FAILED else logging.INFO
    logging.getLogger(f"rabbitstream.{change.entity}").log(
        level,
        "%s %s: stream=%r name=%r reason=%r attempt=%d node=%s elapsed=%.3fs error=%r",
        change.entity,
        change.state,
        change.stream,
        change.name,
        change.reason,
        change.attempt,
        change.node,
        change.elapsed,
        change.error,
    )
    if listener is None:
        return
    try:
        result = listener(change)
        if result is not None and inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            _listener_tasks.add(task)
            task.add_done_callback(_listener_done)
    except Exception:
        log.exception("on_state_change listener failed")


def _listener_done(task: asyncio.Future[Any]) -> None:
    _listener_tasks.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.error("on_state_change listener failed", exc_info=task.exception())


def _address(client: Client) -> Address:
    return str(client.advertised_host), int(client.advertised_port)


class NodeSelector:
    """Where a producer/consumer connects: locator failover, placement, load-balancer mode.

    :param host: address given by the application (a node, or the load balancer).
    :param port: its stream port.
    :param connect: ``connect(host, port, connection_name) -> Client`` (authenticated).
    :param load_balancer_mode: every connection goes through ``host:port``.
    :param max_retries: load-balancer attempts before :class:`BrokerResolutionMaxRetryError`.
    :param retry_delay: seconds between two load-balancer attempts.
    """

    __slots__ = ("_connect", "_known", "_last_failed", "host", "load_balancer_mode", "max_retries", "port",
                 "retry_delay")  # fmt: skip

    def __init__(
        self,
        host: str,
        port: int,
        connect: Connector,
        *,
        load_balancer_mode: bool = False,
        max_retries: int = 20,
        retry_delay: float = LB_RETRY_DELAY,
    ) -> None:
        self.host = host
        self.port = port
        self._connect = connect
        self.load_balancer_mode = load_balancer_mode
        self.max_retries = max(int(max_retries), 1)
        self.retry_delay = retry_delay
        self._known: dict[Address, None] = {}
        self._last_failed: Address | None = None

    # ------------------------------------------------------------------ locator

    def learn(self, metadata: StreamMetadata) -> None:
        """Remember the nodes of a Metadata answer (locator fallbacks, direct mode only)."""
        if self.load_balancer_mode:
            return
        for broker in ([metadata.leader] if metadata.leader is not None else []) + list(metadata.replicas):
            self._known.setdefault((broker.host, int(broker.port)), None)

    def _locator_candidates(self) -> list[Address]:
        given = (self.host, self.port)
        if self.load_balancer_mode:
            return [given]
        others = [a for a in self._known if a != given]
        random.shuffle(others)
        failed = self._last_failed
        if failed is not None and failed in others:
            others.remove(failed)
            others.append(failed)  # the node whose connection just died: last resort
        # the given address first (it may be a proxy or a name that moves), then the known nodes
        return [given, *others]

    async def open_locator(self, name: str, previous: Client | None = None) -> Client:
        """A new locator connection: the given address, else the nodes learned from Metadata
        (``previous``, the dead locator, last).

        :raises ConnectError: (the last error) no candidate node answered.
        """
        if previous is not None:
            self._last_failed = _address(previous)
        last: BaseException | None = None
        for host, port in self._locator_candidates():
            try:
                client = await self._connect(host, port, name)
            except (ConnectError, OSError, asyncio.TimeoutError) as exc:
                log.info("locator %s:%d unreachable: %r", host, port, exc)
                last = exc
                continue
            if (host, port) != (self.host, self.port):
                log.info("locator connection moved to %s:%d", host, port)
            return client
        assert last is not None
        raise last

    async def stream_metadata(self, locator: Client, stream: str) -> StreamMetadata:
        """Metadata of ``stream`` (nodes remembered).

        :raises ServerError: the stream's code (``StreamDoesNotExist``, ...).
        :raises LeaderNotAvailable: no leader right now (election in progress).
        """
        meta = (await locator.metadata([stream]))[stream]
        if meta.code not in (0, 1):
            raise ServerError.for_code(meta.code, f"metadata of stream {stream!r}")
        if meta.leader is None:
            raise LeaderNotAvailable(f"stream {stream!r} has no leader")
        self.learn(meta)
        return meta

    # ------------------------------------------------------------------ placement

    @staticmethod
    def placement(
        meta: StreamMetadata, *, leader: bool, prefer_replica: bool = True
    ) -> tuple[list[Address], list[Address]]:
        """``(wanted, fallback)`` nodes: the leader for producers; for consumers the replicas
        (leader as fallback) when ``prefer_replica`` and replicas exist, else every member."""
        assert meta.leader is not None
        lead = [(meta.leader.host, int(meta.leader.port))]
        replicas = [(b.host, int(b.port)) for b in meta.replicas]
        if leader:
            return lead, []
        if not replicas:
            return lead, []
        if prefer_replica:
            return replicas, lead
        return replicas + lead, []

    # ------------------------------------------------------------------ connecting to a node

    async def connect_node(
        self,
        wanted: Sequence[Address],
        name: str,
        *,
        fallback: Sequence[Address] = (),
        fallback_after: int = REPLICA_ATTEMPTS,
        locator: Client | None = None,
    ) -> tuple[Client, Address]:
        """A connection to one of ``wanted`` (else one of ``fallback``).

        :return: the client and the advertised address of its node.
        :raises BrokerResolutionMaxRetryError: load-balancer mode, no acceptable node after
            ``max_retries`` connections.
        :raises ConnectError: direct mode, no candidate node answered.
        """
        if self.load_balancer_mode:
            return await self._through_balancer(set(wanted), set(fallback), name, fallback_after)
        last: BaseException | None = None
        order = list(wanted)
        random.shuffle(order)
        for node in order + [a for a in fallback if a not in wanted]:
            host, port = node
            if locator is not None and not locator.is_closed and _address(locator) == node:
                # the locator's node: reach it the way the locator did (proxy, NAT, given name)
                host, port = locator.host, locator.port
            try:
                return await self._connect(host, port, name), node
            except (ConnectError, OSError, asyncio.TimeoutError) as exc:
                log.info("node %s:%d unreachable: %r", node[0], node[1], exc)
                last = exc
        if last is None:
            raise LeaderNotAvailable("no node to connect to")
        raise last

    async def _through_balancer(
        self, wanted: set[Address], fallback: set[Address], name: str, fallback_after: int
    ) -> tuple[Client, Address]:
        seen: list[str] = []
        last: BaseException | None = None
        for attempt in range(1, self.max_retries + 1):
            try:
                client = await self._connect(self.host, self.port, name)
            except (ConnectError, OSError, asyncio.TimeoutError) as exc:
                # e.g. the balancer sent us to a node that just died (health check not yet failed)
                log.info("load balancer %s:%d: connection failed: %r", self.host, self.port, exc)
                last = exc
                await asyncio.sleep(self.retry_delay)
                continue
            node = _address(client)
            if node in wanted or (attempt > fallback_after and node in fallback):
                if attempt > 1:
                    log.debug("load balancer: %s:%d reached after %d attempts", node[0], node[1], attempt)
                return client, node
            seen.append(f"{node[0]}:{node[1]}")
            try:
                await asyncio.wait_for(client.close(), 3.0)
            except Exception as exc:
                log.debug("closing a wrong-node connection failed: %r", exc)
            await asyncio.sleep(self.retry_delay)
        if not seen and last is not None:
            raise last
        targets = ", ".join(f"{h}:{p}" for h, p in sorted(wanted | fallback))
        raise BrokerResolutionMaxRetryError(
            f"could not reach {targets} through the load balancer {self.host}:{self.port} after "
            f"{self.max_retries} attempts (reached: {', '.join(seen[-5:])}); check that the nodes' "
            "advertised_host/advertised_port match the Metadata answers"
        )
