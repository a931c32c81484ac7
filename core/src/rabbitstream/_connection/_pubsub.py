"""Publishing and consuming commands of :class:`~rabbitstream.Client`.

Declare and delete publishers and route their PublishConfirm / PublishError to handlers, write
pre-encoded Publish frames, subscribe and unsubscribe (each Deliver's chunk goes to a callback),
grant credit, answer ConsumerUpdate, and the callbacks for the broker's notifications.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from rabbitstream._connection._rpc import OK
from rabbitstream._connection._streams import StreamCommands
from rabbitstream._connection._transport import ChunkCallback, PublishConfirmHandler, PublishErrorHandler
from rabbitstream.protocol._frames import (
    ConsumerUpdateResponse,
    Credit,
    DeclarePublisherRequest,
    DeletePublisherRequest,
    SubscribeRequest,
    UnsubscribeRequest,
)
from rabbitstream.protocol._frames_pubsub import PUBLISH_KEY

if TYPE_CHECKING:
    from rabbitstream.protocol._chunk import Chunk

__all__ = ["PubSubCommands"]


class PubSubCommands(StreamCommands):
    """The publishing and consuming commands of a connection."""

    @property
    def publish_version(self) -> int:
        """2 when the broker accepts Publish v2 (filter values), else 1."""
        return 2 if self.server_command_versions.get(PUBLISH_KEY, (1, 1))[1] >= 2 else 1

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
                correlation_id=correlation_id, code=OK, offset_type=int(offset_type), offset=offset
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
