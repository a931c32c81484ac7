"""``SuperStreamConsumer``: one :class:`Consumer` subscription per partition of a super stream.

Every partition is subscribed with the same arguments; ``MessageContext.stream``
names the partition, offsets are stored and queried per partition.  With
``single-active-consumer`` the ``super-stream`` property is added automatically,
so the broker spreads the partitions over the group's members (each member is
active on some partitions and a standby on the others).
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from rabbitstream._connection._credentials import CredentialsProvider
from rabbitstream._superstream._base import SuperStreamClient, inner_kwargs
from rabbitstream.constants import ConsumerOffsetSpecification, SlasMechanism
from rabbitstream.recovery import BackOffRecoveryStrategy, RecoveryStrategy
from rabbitstream.superstream import SuperStreamCreationOption
from rabbitstream.utils import FilterConfiguration, OnClosedErrorInfo

if TYPE_CHECKING:
    from rabbitstream._consumer._consumer import Consumer
    from rabbitstream.plugin import Registry

__all__ = ["SuperStreamConsumer"]

log = logging.getLogger("rabbitstream.superstream")

_SAC = "single-active-consumer"


def _new_consumer(host: str, port: int, kwargs: dict[str, Any]) -> Consumer:
    from rabbitstream._consumer._consumer import Consumer

    return Consumer(host, port, **kwargs)


def _sac_requested(properties: Mapping[str, Any] | None) -> bool:
    value = (properties or {}).get(_SAC)
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


class SuperStreamConsumer(SuperStreamClient["Consumer"]):
    """Consume every partition of a super stream (rstream-compatible).

    The keywords are rstream's :class:`SuperStreamConsumer`'s, plus
    ``sasl_configuration_mechanism``, ``registry`` and ``consumer_options`` (further
    keywords of the inner :class:`~rabbitstream.Consumer`).  Recovery is **enabled**
    by default (as in rstream).

    :param super_stream: the super stream consumed.
    :param super_stream_creation_option: create the super stream in :meth:`start`
        when it does not exist.
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
        frame_max: int = 1024 * 1024,
        heartbeat: int = 60,
        load_balancer_mode: bool = False,
        max_retries: int = 20,
        max_subscribers_by_connection: int = 200,
        connection_name: str = "",
        sasl_configuration_mechanism: SlasMechanism | str = SlasMechanism.MechanismPlain,
        on_close_handler: Callable[[OnClosedErrorInfo], Any] | None = None,
        recovery_strategy: RecoveryStrategy | None = None,
        registry: Registry | None = None,
        **consumer_options: Any,
    ) -> None:
        if recovery_strategy is None:
            recovery_strategy = BackOffRecoveryStrategy(True)
        super().__init__(
            host,
            port,
            super_stream,
            super_stream_creation_option,
            new_inner=_new_consumer,
            kwargs=inner_kwargs(
                locals(), ("super_stream", "super_stream_creation_option"), "consumer_options"
            ),
            describe=lambda: f"partitions={len(self._subscribers)}",
        )
        self._partitions: list[str] = []
        #: partition -> subscriber id of the inner consumer
        self._subscribers: dict[str, int] = {}

    # ------------------------------------------------------------------ lifecycle

    @property
    def consumer(self) -> Consumer:
        """The inner :class:`~rabbitstream.Consumer` (after :meth:`start`)."""
        if self._inner is None:
            raise RuntimeError("SuperStreamConsumer is not started")
        return self._inner

    def stop(self) -> None:
        """Make :meth:`run` return."""
        if self._inner is not None:
            self._inner.stop()

    async def run(self) -> None:
        """Wait until :meth:`stop` or :meth:`close`."""
        await self.consumer.run()

    async def close(self) -> None:
        """Unsubscribe every partition and close the connections (idempotent)."""
        self._subscribers.clear()
        await self._close_inner()

    # ------------------------------------------------------------------ subscriptions

    async def partitions(self) -> list[str]:
        """The partitions of :attr:`super_stream`, in the broker's order (asked each time)."""
        client = await self.default_client
        self._partitions = list(await client.partitions(self.super_stream))
        return list(self._partitions)

    @property
    def subscribers(self) -> dict[str, int]:
        """Partition → subscriber id of the inner consumer."""
        return dict(self._subscribers)

    async def subscribe(
        self,
        callback: Callable[..., Any],
        *,
        decoder: Callable[[Any], Any] | None = None,
        offset_specification: ConsumerOffsetSpecification | None = None,
        initial_credit: int = 10,
        properties: Mapping[str, Any] | None = None,
        subscriber_name: str | None = None,
        consumer_update_listener: Callable[..., Any] | None = None,
        filter_input: FilterConfiguration | None = None,
        **subscribe_options: Any,
    ) -> None:
        """Subscribe ``callback(message, MessageContext)`` to every partition, same arguments.

        With ``properties={"single-active-consumer": "true", "name": <group>}`` the
        ``super-stream`` property is set to :attr:`super_stream`, so that the broker
        assigns each partition to one member of the group.  If subscribing one
        partition fails, the partitions already subscribed are unsubscribed again.

        :raises StreamDoesNotExist: the super stream does not exist.
        :raises ValueError: it has no partitions, or invalid arguments.
        """
        consumer = await self._start_inner()
        props: dict[str, Any] = dict(properties or {})
        if _sac_requested(props):
            given = props.get("super-stream")
            if given is not None and str(given) != self.super_stream:
                raise ValueError(
                    f"properties['super-stream'] is {given!r} but this consumer reads {self.super_stream!r}"
                )
            props["super-stream"] = self.super_stream
        partitions = await self.partitions()
        if not partitions:
            raise ValueError(f"super stream {self.super_stream!r} has no partitions")
        done: list[int] = []
        try:
            for partition in partitions:
                if partition in self._subscribers:
                    continue
                sid = await consumer.subscribe(
                    partition,
                    callback,
                    decoder=decoder,
                    offset_specification=offset_specification,
                    initial_credit=initial_credit,
                    properties=props,
                    subscriber_name=subscriber_name,
                    consumer_update_listener=consumer_update_listener,
                    filter_input=filter_input,
                    **subscribe_options,
                )
                self._subscribers[partition] = sid
                done.append(sid)
        except BaseException:
            for sid in done:
                try:
                    await consumer.unsubscribe(sid)
                except Exception:
                    log.debug("unsubscribe after a failed subscribe failed", exc_info=True)
            self._subscribers = {p: s for p, s in self._subscribers.items() if s not in done}
            raise

    async def unsubscribe(self) -> None:
        """Unsubscribe every partition (tracked offsets are stored first)."""
        consumer = self._inner
        subs, self._subscribers = self._subscribers, {}
        if consumer is None:
            return
        for sid in subs.values():
            await consumer.unsubscribe(sid)

    # ------------------------------------------------------------------ offsets

    async def store_offset(self, stream: str, subscriber_name: str, offset: int) -> None:
        """StoreOffset for one partition ``stream``."""
        await self.consumer.store_offset(stream, subscriber_name, offset)

    async def query_offset(self, stream: str, subscriber_name: str) -> int:
        """The stored offset of ``subscriber_name`` on partition ``stream``."""
        return await self.consumer.query_offset(stream, subscriber_name)
