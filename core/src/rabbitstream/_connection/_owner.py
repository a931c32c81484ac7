"""What a producer and a consumer own of the connection layer, wired in one place.

:class:`ConnectionOwner` is the base of :class:`~rabbitstream._producer._base.ProducerBase` and
:class:`~rabbitstream._consumer._base.ConsumerBase`.  It creates, in this order and the same way for
both: the instrumentation observer (``None`` when no plugin observes this kind of client), the
:class:`~rabbitstream._connection._pool.ConnectionPool` (locator, data connections, background
tasks, closing) with the observer told of every connection, and the
:class:`~rabbitstream._connection._recovery.Recovery` loop with the observer told of every state
change.  What differs (where to connect, what a connection carries, what "closed" means) stays in
the subclass; nothing here is a stub for it to fill in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Generic, TypedDict, TypeVar

from rabbitstream._connection._locator import NodeSelector, StateListener
from rabbitstream._connection._observe import observe_connections, observe_states
from rabbitstream._connection._pool import ConnectionOptions, ConnectionPool, NodeConnection
from rabbitstream._connection._recovery import Recovery
from rabbitstream.plugin._types import ClientInfo, ConsumerObserver, ProducerObserver
from rabbitstream.recovery import IReliableEntity, RecoveryStrategy
from rabbitstream.utils import OnClosedErrorInfo

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from rabbitstream.plugin import Registry

__all__ = ["ConnectionOwner", "OwnerSettings"]

_E = TypeVar("_E")
_O = TypeVar("_O", ProducerObserver, ConsumerObserver)


class OwnerSettings(TypedDict):
    """The keywords of a producer or consumer that its :class:`ConnectionOwner` base takes as they are."""

    connection_name: str
    load_balancer_mode: bool
    max_retries: int
    recovery_strategy: RecoveryStrategy
    on_close_handler: Callable[[OnClosedErrorInfo], Any] | None
    on_state_change: StateListener | None


class ConnectionOwner(IReliableEntity, Generic[_E, _O]):
    """Observer, connection pool and recovery of one producer (``_E``: publishers) or consumer
    (``_E``: subscriptions).

    :param kind: ``"producer"`` or ``"consumer"`` (:class:`ClientInfo`, :class:`StateChange`).
    :param observer_for: asks the registry's instrumentations for an observer of this client.
    :param closed_error: makes the error raised when a connection is wanted once closed.
    :param settings: the producer's / consumer's keywords of the same names.
    """

    def __init__(
        self,
        kind: str,
        host: str,
        port: int,
        options: ConnectionOptions,
        *,
        observer_for: Callable[[Registry | None, ClientInfo], _O | None],
        closed_error: Callable[[], Exception],
        **settings: Unpack[OwnerSettings],
    ) -> None:
        connection_name = settings["connection_name"]
        on_state_change = settings["on_state_change"]
        #: instrumentation (``None`` when no plugin observes this client: nothing is called at all)
        self._observer: _O | None = observer_for(
            options.registry, ClientInfo(kind, host, port, options.vhost, options.username, connection_name)
        )
        if self._observer is not None:
            options = observe_connections(options, self._observer)
            on_state_change = observe_states(on_state_change, self._observer)
        self._pool: ConnectionPool[_E] = ConnectionPool(
            host,
            port,
            options,
            connection_name=connection_name,
            closed_error=closed_error,
            load_balancer_mode=settings["load_balancer_mode"],
            max_retries=settings["max_retries"],
        )
        self._recovery = Recovery(
            self,
            settings["recovery_strategy"],
            kind,
            spawn=self._pool.spawn,
            closing=lambda: self._closing,
            on_close_handler=settings["on_close_handler"],
            on_state_change=on_state_change,
        )
        #: ``close()`` has begun: nothing opens a connection or recovers from here on
        self._closing = False

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``coro`` as a background task (cancelled by ``close()``)."""
        return self._pool.spawn(coro)

    @property
    def _conns(self) -> list[NodeConnection[_E]]:
        return self._pool.connections

    @property
    def _nodes(self) -> NodeSelector:
        return self._pool.nodes
