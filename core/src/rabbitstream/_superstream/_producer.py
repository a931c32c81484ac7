"""``SuperStreamProducer``: route each message to partition streams, publish with a :class:`Producer`.

The routing happens here; everything about publishing (buffering, confirms,
deduplication, filtering, sub-entries, recovery) is the inner
:class:`~rabbitstream.Producer`'s, which holds one publisher per partition.
"""

from __future__ import annotations

import inspect
import logging
import ssl
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from rabbitstream._connection._credentials import CredentialsProvider
from rabbitstream._producer._publisher import ConfirmCallback
from rabbitstream._superstream._base import SuperStreamClient, inner_kwargs, super_stream_layout
from rabbitstream.constants import SlasMechanism
from rabbitstream.exceptions import StreamDoesNotExist
from rabbitstream.plugin import PartitionRouter, Registry, get_registry
from rabbitstream.superstream import (
    NO_ROUTE_FOUND,
    DefaultSuperstreamMetadata,
    NoRouteFound,
    RouteType,
    RoutingStrategy,
    SuperStreamCreationOption,
)
from rabbitstream.utils import ConfirmationStatus, OnClosedErrorInfo

if TYPE_CHECKING:
    from rabbitstream._connection._client import Client
    from rabbitstream._producer._producer import Producer
    from rabbitstream.recovery import RecoveryStrategy

__all__ = ["SuperStreamProducer", "super_stream_layout"]  # super_stream_layout: from ._base

log = logging.getLogger("rabbitstream.superstream")


class _Locator:
    """Asks the producer's (or consumer's) current locator connection; survives its recovery."""

    __slots__ = ("_owner",)

    def __init__(self, owner: Any) -> None:
        self._owner = owner

    async def _client(self) -> Client:
        client: Client = await self._owner.default_client
        return client

    async def partitions(self, super_stream: str) -> list[str]:
        return list(await (await self._client()).partitions(super_stream))

    async def route(self, routing_key: str, super_stream: str) -> list[str]:
        return list(await (await self._client()).route(routing_key, super_stream))


#: the keywords of :class:`SuperStreamProducer` that are not the inner producer's
_OWN_KEYWORDS = ("super_stream", "super_stream_creation_option", "routing_extractor", "routing",
                 "publisher_name", "on_no_route")  # fmt: skip


def _new_producer(host: str, port: int, kwargs: dict[str, Any]) -> Producer:
    from rabbitstream._producer._producer import Producer

    return Producer(host, port, **kwargs)


def _key_text(key: object) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, (bytes, bytearray, memoryview)):
        return bytes(key).decode("utf-8")
    return str(key)


class SuperStreamProducer(SuperStreamClient["Producer"]):
    """Publish to a super stream (rstream-compatible, plus batch / wait / sub-entry sends).

    :param super_stream: the super stream published to.
    :param routing_extractor: ``(message) -> routing key``, sync or async; ``bytes`` keys
        are decoded as UTF-8, other keys go through ``str()``.
    :param routing: :attr:`RouteType.Hash` (default: the standard murmur3 formula, the
        same partition as the Java/Go/.NET clients), :attr:`RouteType.Key` (the broker's
        binding keys), the name of any installed routing strategy plugin (e.g.
        ``"rstream-legacy-hash"``), a plugin strategy object, or an rstream-style
        :class:`~rabbitstream.superstream.RoutingStrategy` (routes whole messages).
    :param super_stream_creation_option: create the super stream in :meth:`start`
        when it does not exist.
    :param publisher_name: deduplication reference used for every partition's publisher.
    :param on_no_route: ``"raise"`` (default): a message routed nowhere raises
        :class:`~rabbitstream.superstream.NoRouteFound`; ``"skip"``: it is dropped and
        ``on_publish_confirm`` gets ``ConfirmationStatus(id, False, 10005)``.
    :param registry: plugin registry for routing names (default: the process-wide one).
    :param producer_options: further keywords for the inner :class:`~rabbitstream.Producer`.

    The other keywords are the :class:`~rabbitstream.Producer`'s; recovery is enabled
    by default.
    """

    def __init__(
        self,
        host: str,
        port: int = 5552,
        *,
        ssl_context: ssl.SSLContext | None = None,
        vhost: str = "/",
        username: str,
        password: str | CredentialsProvider,
        super_stream: str,
        super_stream_creation_option: SuperStreamCreationOption | None = None,
        routing_extractor: Callable[[Any], Any],
        routing: RouteType | str | PartitionRouter | RoutingStrategy = RouteType.Hash,
        frame_max: int = 1024 * 1024,
        heartbeat: int = 60,
        load_balancer_mode: bool = False,
        max_retries: int = 20,
        max_publishers_by_connection: int = 200,
        default_batch_publishing_delay: float = 3,
        connection_name: str = "",
        sasl_configuration_mechanism: SlasMechanism | str = SlasMechanism.MechanismPlain,
        filter_value_extractor: Callable[[Any], Any] | None = None,
        on_close_handler: Callable[[OnClosedErrorInfo], Any] | None = None,
        recovery_strategy: RecoveryStrategy | None = None,
        publisher_name: str | None = None,
        on_no_route: Literal["raise", "skip"] = "raise",
        registry: Registry | None = None,
        **producer_options: Any,
    ) -> None:
        super().__init__(
            host,
            port,
            super_stream,
            super_stream_creation_option,
            new_inner=_new_producer,
            kwargs=inner_kwargs(locals(), _OWN_KEYWORDS, "producer_options"),
            describe=lambda: f"routing={self.routing!r}",
            on_layout_change=self._layout_changed,
        )
        if not callable(routing_extractor):
            raise TypeError("routing_extractor must be callable: (message) -> routing key")
        if on_no_route not in ("raise", "skip"):
            raise ValueError(f"on_no_route must be 'raise' or 'skip', got {on_no_route!r}")
        self.routing_extractor = routing_extractor
        self.routing = routing
        self.publisher_name = publisher_name
        self.on_no_route = on_no_route
        self._registry = registry
        self._key_strategy: PartitionRouter | None = None
        self._message_strategy: RoutingStrategy | None = None
        self._resolve_routing(routing)
        self.super_stream_metadata = DefaultSuperstreamMetadata(super_stream, _Locator(self))
        self._ready = False

    # ------------------------------------------------------------------ routing setup

    def _resolve_routing(self, routing: object) -> None:
        if isinstance(routing, RoutingStrategy):
            self._message_strategy = routing
            return
        if isinstance(routing, RouteType):
            routing = routing.strategy_name
        if isinstance(routing, str):
            routing = (self._registry or get_registry()).routing_strategy(routing)
        if isinstance(routing, PartitionRouter):
            self._key_strategy = routing
            return
        raise TypeError(
            "routing must be a RouteType, a routing strategy name, a plugin routing strategy "
            f"or a rabbitstream.superstream.RoutingStrategy, not {type(routing).__name__}"
        )

    # ------------------------------------------------------------------ lifecycle

    @property
    def producer(self) -> Producer:
        """The inner :class:`~rabbitstream.Producer` (after :meth:`start`)."""
        if self._inner is None:
            raise RuntimeError("SuperStreamProducer is not started")
        return self._inner

    async def start(self) -> None:
        """Connect, create the super stream if asked to, and read its partitions."""
        await super().start()
        try:
            await self._load_metadata()
        except StreamDoesNotExist:
            log.debug(
                "super stream %r does not exist yet; partitions are read on first send", self.super_stream
            )

    async def _load_metadata(self) -> None:
        self.super_stream_metadata.clear()
        await self.super_stream_metadata.load()
        self._ready = True

    def _layout_changed(self, super_stream: str, deleted: bool) -> None:
        if super_stream == self.super_stream:
            self._ready = False
            if deleted:
                self.super_stream_metadata.clear()

    async def close(self) -> None:
        """Flush and close the inner producer (idempotent)."""
        self._ready = False
        await self._close_inner()

    # ------------------------------------------------------------------ routing

    async def route(self, message: Any) -> Sequence[str]:
        """The partitions ``message`` goes to (possibly empty)."""
        if not self._ready:
            if self._inner is None:
                raise RuntimeError("SuperStreamProducer is not started (call start() or use 'async with')")
            await self._load_metadata()
        strategy = self._key_strategy
        if strategy is not None:
            key = self.routing_extractor(message)
            if type(key) is not str:
                if inspect.isawaitable(key):
                    key = await key
                key = _key_text(key)
            result = strategy.route(key, self.super_stream_metadata)
            if type(result) is list or type(result) is tuple:
                return result
            if inspect.isawaitable(result):
                return await result
            return result
        assert self._message_strategy is not None
        return await self._message_strategy.route(message, self.super_stream_metadata)

    async def _no_route(self, message: Any, on_publish_confirm: ConfirmCallback | None) -> None:
        if self.on_no_route == "raise":
            raise NoRouteFound(self.super_stream, self._describe_key(message))
        log.debug("no route for a message in super stream %r: skipped", self.super_stream)
        if on_publish_confirm is not None:
            status = ConfirmationStatus(getattr(message, "publishing_id", None) or 0, False, NO_ROUTE_FOUND)
            result = on_publish_confirm(status)
            if inspect.isawaitable(result):
                await result

    def _describe_key(self, message: Any) -> object:
        if self._key_strategy is None:
            return None
        try:
            key = self.routing_extractor(message)
        except Exception:  # pragma: no cover - only for the error message
            return None
        if inspect.isawaitable(key):
            close = getattr(key, "close", None)
            if close is not None:
                close()
            return None
        return key

    async def _group(self, messages: Sequence[Any]) -> tuple[dict[str, list[Any]], list[Any]]:
        """Messages per partition (order kept) and the messages routed nowhere."""
        groups: dict[str, list[Any]] = {}
        unrouted: list[Any] = []
        for message in messages:
            streams = await self.route(message)
            if not streams:
                if self.on_no_route == "raise":
                    raise NoRouteFound(self.super_stream, self._describe_key(message))
                unrouted.append(message)
            for stream in streams:
                group = groups.get(stream)
                if group is None:
                    groups[stream] = [message]
                else:
                    group.append(message)
        return groups, unrouted

    # ------------------------------------------------------------------ sending

    async def send(self, message: Any, on_publish_confirm: ConfirmCallback | None = None) -> None:
        """Route ``message`` and buffer it on each partition it goes to (rstream's ``send``)."""
        strategy = self._key_strategy
        if strategy is not None and self._ready:  # hot path of route(), inlined
            key = self.routing_extractor(message)
            if type(key) is not str:
                if inspect.isawaitable(key):
                    key = await key
                key = _key_text(key)
            streams = strategy.route(key, self.super_stream_metadata)
            if type(streams) is not list and inspect.isawaitable(streams):
                streams = await streams
        else:
            streams = await self.route(message)
        if not streams:
            await self._no_route(message, on_publish_confirm)
            return
        producer = self.producer
        for stream in streams:
            await producer.send(
                stream, message, publisher_name=self.publisher_name, on_publish_confirm=on_publish_confirm
            )

    async def send_batch(
        self, batch: Sequence[Any], on_publish_confirm: ConfirmCallback | None = None
    ) -> dict[str, list[int]]:
        """Route every message, then publish one batch per partition (order kept per partition).

        :return: the publishing ids per partition.
        :raises ValueError: empty batch.
        :raises NoRouteFound: a message has no route (before anything is sent), unless
            ``on_no_route="skip"``.
        """
        if not batch:
            raise ValueError("Empty batch")
        groups, unrouted = await self._group(batch)
        for message in unrouted:
            await self._no_route(message, on_publish_confirm)
        producer = self.producer
        out: dict[str, list[int]] = {}
        for stream, messages in groups.items():
            out[stream] = list(
                await producer.send_batch(
                    stream,
                    messages,
                    publisher_name=self.publisher_name,
                    on_publish_confirm=on_publish_confirm,
                )
            )
        return out

    async def send_wait(self, message: Any, timeout: float = 5) -> dict[str, int]:
        """Send ``message`` and wait for the confirm of every partition it goes to.

        :return: its publishing id per partition.
        :raises NoRouteFound: the message has no route (whatever ``on_no_route`` says:
            there is nothing to wait for).
        """
        streams = await self.route(message)
        if not streams:
            raise NoRouteFound(self.super_stream, self._describe_key(message))
        producer = self.producer
        out: dict[str, int] = {}
        for stream in streams:
            out[stream] = await producer.send_wait(
                stream, message, publisher_name=self.publisher_name, timeout=timeout
            )
        return out

    async def send_sub_entry(
        self,
        sub_entry_messages: Sequence[Any],
        compression_type: Any = None,
        on_publish_confirm: ConfirmCallback | None = None,
    ) -> dict[str, int]:
        """Route every message, then send one (compressed) sub-entry batch per partition.

        One publishing id and one confirm per partition batch, as with
        :meth:`Producer.send_sub_entry`.

        :return: the publishing id of the sub-entry batch per partition.
        """
        if not sub_entry_messages:
            raise ValueError("Empty batch")
        groups, unrouted = await self._group(sub_entry_messages)
        for message in unrouted:
            await self._no_route(message, on_publish_confirm)
        producer = self.producer
        kwargs: dict[str, Any] = {}
        if compression_type is not None:
            kwargs["compression_type"] = compression_type
        out: dict[str, int] = {}
        for stream, messages in groups.items():
            out[stream] = await producer.send_sub_entry(
                stream,
                messages,
                publisher_name=self.publisher_name,
                on_publish_confirm=on_publish_confirm,
                **kwargs,
            )
        return out

    # ------------------------------------------------------------------ management

    async def partitions(self) -> list[str]:
        """The partitions of :attr:`super_stream`, in the broker's order."""
        if not self._ready:
            await self._load_metadata()
        return list(self.super_stream_metadata.partitions())
