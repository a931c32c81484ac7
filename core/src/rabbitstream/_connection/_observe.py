"""Instrumentation hook points, resolved once when a producer or consumer is created.

Each :class:`~rabbitstream.plugin.Instrumentation` of the registry (``rabbitstream-opentelemetry``,
...) is asked once for an observer of the new producer or consumer.  With none installed (or none
interested) the owner keeps ``None`` and uses its plain classes: the publishing and delivery paths
are exactly those of an uninstrumented client, with no call and no test per message.  With one or
more, the owner uses the observed subclasses (``_producer/_observed.py``, ``_consumer/_observed.py``)
and this module wires connections and recovery events to the observer.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from rabbitstream._connection._locator import StateChange, StateListener

if TYPE_CHECKING:
    from rabbitstream._connection._client import Client
    from rabbitstream._connection._pool import ConnectionOptions
    from rabbitstream.plugin import ClientInfo, ConsumerObserver, ProducerObserver, Registry

__all__ = [
    "ConsumerFanout",
    "ProducerFanout",
    "consumer_observer",
    "observe_connections",
    "observe_states",
    "producer_observer",
]

log = logging.getLogger("rabbitstream.plugin")

_O = TypeVar("_O")


def _registry(registry: Registry | None) -> Registry:
    if registry is not None:
        return registry
    from rabbitstream.plugin import get_registry

    return get_registry()


def _ask(registry: Registry | None, ask: Callable[[Any], _O | None]) -> list[_O]:
    out: list[_O] = []
    for name, inst in _registry(registry).instrumentations.items():
        try:
            obs = ask(inst)
        except Exception:
            log.exception("instrumentation %r failed to create an observer; not observed by it", name)
            continue
        if obs is not None:
            out.append(obs)
    return out


def producer_observer(registry: Registry | None, info: ClientInfo) -> ProducerObserver | None:
    """The observer of a new producer (one fan-out for several instrumentations), or ``None``."""
    found: list[ProducerObserver] = _ask(registry, lambda inst: inst.producer(info))
    if not found:
        return None
    return found[0] if len(found) == 1 else ProducerFanout(found)


def consumer_observer(registry: Registry | None, info: ClientInfo) -> ConsumerObserver | None:
    """The observer of a new consumer (one fan-out for several instrumentations), or ``None``."""
    found: list[ConsumerObserver] = _ask(registry, lambda inst: inst.consumer(info))
    if not found:
        return None
    return found[0] if len(found) == 1 else ConsumerFanout(found)


def observe_connections(
    options: ConnectionOptions, observer: ProducerObserver | ConsumerObserver
) -> ConnectionOptions:
    """``options`` whose connections report opening and closing to ``observer``."""
    previous = options.on_connect

    def on_connect(client: Client) -> None:
        if previous is not None:
            previous(client)
        host, port = client.host, client.port
        observer.connection_opened(host, port)
        client.add_close_listener(lambda exc: observer.connection_closed(host, port, exc))

    return dataclasses.replace(options, on_connect=on_connect)


def observe_states(
    listener: StateListener | None, observer: ProducerObserver | ConsumerObserver
) -> StateListener:
    """An ``on_state_change`` listener telling ``observer`` first, then the application's ``listener``."""

    def both(change: StateChange) -> Any:
        try:
            observer.state_changed(change)
        except Exception:
            log.exception("instrumentation state_changed failed")
        return None if listener is None else listener(change)

    return both


class _Fanout:
    __slots__ = ("observers",)

    def __init__(self, observers: Sequence[Any]) -> None:
        self.observers = tuple(observers)

    def connection_opened(self, host: str, port: int) -> None:
        for o in self.observers:
            o.connection_opened(host, port)

    def connection_closed(self, host: str, port: int, error: BaseException | None) -> None:
        for o in self.observers:
            o.connection_closed(host, port, error)

    def state_changed(self, change: Any) -> None:
        for o in self.observers:
            o.state_changed(change)


class ProducerFanout(_Fanout):
    """Several producer observers called in turn (several instrumentation plugins installed)."""

    __slots__ = ()

    def prepare(self, stream: str, messages: list[Any]) -> list[Any]:
        for o in self.observers:
            messages = o.prepare(stream, messages)
        return messages

    def published(self, stream: str, count: int) -> None:
        for o in self.observers:
            o.published(stream, count)

    def confirmed(self, stream: str, count: int, latencies: Sequence[float]) -> None:
        for o in self.observers:
            o.confirmed(stream, count, latencies)

    def failed(self, stream: str, code: int, count: int) -> None:
        for o in self.observers:
            o.failed(stream, code, count)


class ConsumerFanout(_Fanout):
    """Several consumer observers called in turn (several instrumentation plugins installed)."""

    __slots__ = ()

    def chunk_received(self, stream: str, records: int, size: int) -> None:
        for o in self.observers:
            o.chunk_received(stream, records, size)

    def consumed(self, stream: str, count: int) -> None:
        for o in self.observers:
            o.consumed(stream, count)

    def wrap_callback(
        self, stream: str, callback: Callable[[Any, Any], Any], is_async: bool
    ) -> Callable[[Any, Any], Any]:
        for o in self.observers:
            callback = o.wrap_callback(stream, callback, is_async)
        return callback
