"""Super-stream routing with rstream-compatible names (``rstream.superstream``).

rstream users import :class:`RoutingStrategy`, :class:`HashRoutingMurmurStrategy`,
:class:`RoutingKeyRoutingStrategy`, :class:`Metadata`,
:class:`DefaultSuperstreamMetadata` and :class:`SuperStreamCreationOption` from
here.  The routing itself lives in plugins (``"hash"`` in ``rabbitstream-hash``,
``"key"`` in ``rabbitstream-key``, any third-party strategy by name); the classes
below resolve their strategy in the plugin :class:`~rabbitstream.plugin.Registry`.

Two deliberate differences from rstream:

* :class:`HashRoutingMurmurStrategy` uses the **standard** formula of every
  other RabbitMQ client (MurmurHash3 x86 32-bit, seed 104729, UTF-8).  Pass
  ``strategy="rstream-legacy-hash"`` to keep rstream's placement of keys.
* :class:`DefaultSuperstreamMetadata` caches ``Route`` answers **per key**
  (rstream returned the first key's answer for every key).
"""

from __future__ import annotations

import abc
import asyncio
import enum
import inspect
from collections.abc import Awaitable, Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from rabbitstream.exceptions import ClientError
from rabbitstream.plugin import PartitionRouter, Registry, SuperStreamMetadata, get_registry

__all__ = [
    "NO_ROUTE_FOUND",
    "DefaultSuperstreamMetadata",
    "HashRoutingMurmurStrategy",
    "Metadata",
    "NoRouteFound",
    "PartitionList",
    "PluginStrategyAdapter",
    "RouteType",
    "RoutingKeyRoutingStrategy",
    "RoutingStrategy",
    "SuperStreamCreationOption",
    "call_extractor",
    "resolve_plugin_metadata",
]

NO_ROUTE_FOUND = 10005
"""``ConfirmationStatus.response_code`` of a message skipped for lack of a route (Java's code)."""


class RouteType(enum.Enum):
    """Built-in routing of :class:`~rabbitstream.SuperStreamProducer`."""

    Hash = 0
    """Hash the routing key (plugin strategy ``"hash"``)."""
    Key = 1
    """Ask the broker which partitions are bound with the routing key (``"key"``)."""

    @property
    def strategy_name(self) -> str:
        """The registry name of the plugin strategy this route type uses."""
        return "hash" if self is RouteType.Hash else "key"


@dataclass
class SuperStreamCreationOption:
    """How to create a super stream when it does not exist.

    :param n_partitions: partitions ``<name>-0`` … ``<name>-<n-1>`` bound with keys
        ``"0"`` … ``"<n-1>"``; ignored when ``binding_keys`` is given.
    :param binding_keys: partitions ``<name>-<key>`` bound with each key.
    :param arguments: stream arguments applied to every partition
        (``max-length-bytes``, ``max-age``, ...).
    """

    n_partitions: int
    binding_keys: list[str] | None = None
    arguments: dict[str, Any] | None = None


class NoRouteFound(ClientError):
    """The routing strategy found no partition for a message.

    ``super_stream`` and ``routing_key`` describe the message; ``code`` is
    :data:`NO_ROUTE_FOUND` (Java's ``NO_ROUTE_FOUND``).
    """

    code = NO_ROUTE_FOUND

    def __init__(self, super_stream: str, routing_key: object) -> None:
        self.super_stream = super_stream
        self.routing_key = routing_key
        super().__init__(f"no route found in super stream {super_stream!r} for routing key {routing_key!r}")


class _RoutingClient(Protocol):
    """The part of :class:`~rabbitstream.Client` the metadata needs."""

    async def partitions(self, super_stream: str) -> list[str]: ...

    async def route(self, routing_key: str, super_stream: str) -> list[str]: ...


class PartitionList(list[str]):
    """A list of partition names that can also be awaited (returning itself).

    :meth:`DefaultSuperstreamMetadata.partitions` returns one, so that plugin
    strategies read it synchronously (``metadata.partitions()``) while rstream-style
    code keeps writing ``await metadata.partitions()``.  An unloaded list loads
    the partitions from the broker when awaited.
    """

    __slots__ = ("_loader",)

    def __init__(
        self, items: Sequence[str] = (), loader: Callable[[], Awaitable[PartitionList]] | None = None
    ) -> None:
        super().__init__(items)
        self._loader = loader

    @property
    def loaded(self) -> bool:
        """Whether the names are known (awaiting does no I/O)."""
        return self._loader is None

    def __await__(self) -> Generator[Any, None, PartitionList]:
        if self._loader is None:
            return self
        result = yield from self._loader().__await__()
        return result


class Metadata(abc.ABC):
    """What a routing strategy may ask about its super stream (rstream's ABC).

    Subclasses implement :meth:`partitions` as a coroutine (as in rstream);
    :class:`DefaultSuperstreamMetadata` returns a :class:`PartitionList`, which is
    both a list and awaitable, so ``await metadata.partitions()`` always works.
    """

    @abc.abstractmethod
    def partitions(self) -> Awaitable[Sequence[str]]:
        """The partitions in the broker's order (awaitable)."""

    @abc.abstractmethod
    async def routes(self, routing_key: str) -> Sequence[str]:
        """The partitions bound with ``routing_key``."""


class DefaultSuperstreamMetadata(Metadata):
    """Partitions and routes of one super stream, asked through ``client`` and cached.

    Satisfies both rstream's :class:`Metadata` and the plugin
    :class:`~rabbitstream.plugin.SuperStreamMetadata` Protocol.  ``Route`` answers
    are cached per key (at most ``max_cached_routes`` keys, oldest evicted first);
    concurrent look-ups of one key share one request.

    :param super_stream: the super stream name.
    :param client: a connected :class:`~rabbitstream.Client` (``partitions`` / ``route``).
    """

    def __init__(self, super_stream: str, client: _RoutingClient, *, max_cached_routes: int = 10000) -> None:
        if max_cached_routes < 1:
            raise ValueError("max_cached_routes must be >= 1")
        self._super_stream = super_stream
        self.client = client
        self._max_routes = max_cached_routes
        self._partitions: PartitionList = PartitionList((), self.load)
        self._routes: dict[str, list[str]] = {}
        self._pending: dict[str, asyncio.Future[list[str]]] = {}

    @property
    def super_stream(self) -> str:
        """The super stream name."""
        return self._super_stream

    async def load(self) -> PartitionList:
        """Ask the broker for the partitions (again) and cache them.

        :raise StreamDoesNotExist: the super stream does not exist.
        :raise ValueError: it has no partitions.
        """
        names = await self.client.partitions(self._super_stream)
        if not names:
            raise ValueError(f"super stream {self._super_stream!r} has no partitions (does it exist?)")
        self._partitions = PartitionList(names)
        return self._partitions

    def partitions(self) -> PartitionList:
        """The cached partitions (an awaitable list; empty and loading-on-await before :meth:`load`)."""
        return self._partitions

    async def routes(self, routing_key: str) -> list[str]:
        """The broker's ``Route`` answer for ``routing_key`` (cached per key)."""
        cached = self._routes.get(routing_key)
        if cached is not None:
            return cached
        pending = self._pending.get(routing_key)
        if pending is not None:
            await asyncio.wait((pending,))
            if not pending.cancelled():
                return pending.result()  # the shared answer, or the shared error
        fut: asyncio.Future[list[str]] = asyncio.get_running_loop().create_future()
        self._pending[routing_key] = fut
        try:
            answer = list(await self.client.route(routing_key, self._super_stream))
        except Exception as exc:
            fut.set_exception(exc)
            fut.exception()  # retrieved: only waiters may re-raise it
            raise
        except BaseException:
            fut.cancel()
            raise
        finally:
            if self._pending.get(routing_key) is fut:
                del self._pending[routing_key]
        if len(self._routes) >= self._max_routes:
            del self._routes[next(iter(self._routes))]
        self._routes[routing_key] = answer
        fut.set_result(answer)
        return answer

    def clear(self) -> None:
        """Forget cached routes and partitions (after a topology change)."""
        self._routes.clear()
        self._partitions = PartitionList((), self.load)


class _FixedMetadata:
    """Plugin-side view of an rstream-style :class:`Metadata` whose partitions were awaited."""

    __slots__ = ("_parts", "_routes", "super_stream")

    def __init__(
        self, super_stream: str, parts: Sequence[str], routes: Callable[[str], Awaitable[Sequence[str]]]
    ) -> None:
        self.super_stream = super_stream
        self._parts = parts
        self._routes = routes

    def partitions(self) -> Sequence[str]:
        return self._parts

    async def routes(self, routing_key: str) -> Sequence[str]:
        return await self._routes(routing_key)


async def resolve_plugin_metadata(metadata: Any) -> SuperStreamMetadata:
    """A :class:`~rabbitstream.plugin.SuperStreamMetadata` view of ``metadata``.

    ``metadata`` may be a :class:`DefaultSuperstreamMetadata` (returned as is,
    loaded first if needed) or any rstream-style :class:`Metadata` whose
    ``partitions()`` is a coroutine.
    """
    parts = metadata.partitions()
    if isinstance(parts, PartitionList):
        if not parts.loaded:
            await parts
        return metadata  # type: ignore[no-any-return]
    if inspect.isawaitable(parts):
        parts = await parts
    return _FixedMetadata(str(getattr(metadata, "super_stream", "")), list(parts), metadata.routes)


async def call_extractor(extractor: Callable[[Any], Any], message: Any) -> Any:
    """Call a sync or async routing-key / filter-value extractor."""
    value = extractor(message)
    if inspect.isawaitable(value):
        value = await value
    return value


class RoutingStrategy(abc.ABC):
    """rstream's routing ABC: pick the partitions of a *message*.

    Subclass it for routing that needs the whole message; for routing by key,
    prefer a plugin strategy (:class:`rabbitstream.plugin.PartitionRouter`).
    """

    @abc.abstractmethod
    async def route(self, message: Any, metadata: Metadata) -> list[str]:
        """The partitions ``message`` goes to (possibly empty)."""


class PluginStrategyAdapter(RoutingStrategy):
    """An rstream-style strategy that extracts the key and delegates to a plugin strategy.

    :param routing_key_extractor: ``(message) -> key``, sync or async; the key is
        passed through ``str()``.
    :param strategy: a registry name (``"hash"``, ``"key"``, ``"rstream-legacy-hash"``,
        a third-party name) or a plugin strategy object.
    :param registry: where to look the name up; default: the process-wide registry.
    """

    def __init__(
        self,
        routing_key_extractor: Callable[[Any], Any],
        strategy: str | PartitionRouter,
        *,
        registry: Registry | None = None,
    ) -> None:
        self.routing_key_extractor = routing_key_extractor
        self.routingKeyExtractor = routing_key_extractor  # rstream's attribute name
        if isinstance(strategy, str):
            strategy = (registry or get_registry()).routing_strategy(strategy)
        self.strategy: PartitionRouter = strategy

    async def route(self, message: Any, metadata: Metadata | SuperStreamMetadata) -> list[str]:
        key = str(await call_extractor(self.routing_key_extractor, message))
        view = await resolve_plugin_metadata(metadata)
        result = self.strategy.route(key, view)
        if not isinstance(result, Sequence):
            result = await result
        return list(result)


class HashRoutingMurmurStrategy(PluginStrategyAdapter):
    """Hash routing (plugin ``"hash"``: murmur3 x86_32, seed 104729, UTF-8).

    :param routing_key_extractor: ``(message) -> key``, sync or async.
    :param strategy: ``"rstream-legacy-hash"`` reproduces rstream's key placement.
    """

    def __init__(
        self,
        routing_key_extractor: Callable[[Any], Any],
        *,
        strategy: str = "hash",
        registry: Registry | None = None,
    ) -> None:
        super().__init__(routing_key_extractor, strategy, registry=registry)


class RoutingKeyRoutingStrategy(PluginStrategyAdapter):
    """Key routing (plugin ``"key"``: the broker's ``Route`` answer, cached per key)."""

    def __init__(
        self, routing_key_extractor: Callable[[Any], Any], *, registry: Registry | None = None
    ) -> None:
        super().__init__(routing_key_extractor, "key", registry=registry)
