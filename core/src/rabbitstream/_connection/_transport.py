"""The asyncio side of one connection: feeds the sans-IO core and dispatches its events.

Everything runs synchronously inside :meth:`StreamProtocol.data_received`:
responses resolve ``pending[correlation_id]`` futures, a ``Deliver`` is parsed
into a :class:`~rabbitstream.protocol._chunk.Chunk` and handed to its
subscription's ``on_chunk`` callback, confirms and errors go to the publisher's
handlers with the whole id list.  The bytes the connection wants to send back
(Heartbeat, Tune, Close answers) are written once per ``data_received``.
A callback that raises is logged; it never stops the reader.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from rabbitstream.exceptions import ConnectionClosed, RabbitStreamError
from rabbitstream.protocol._connection import (
    DEFAULT_MAX_INBOUND_FRAME,
    ConnectionTerminated,
    HandshakeComplete,
    HandshakeFailed,
    ProtocolConnection,
)
from rabbitstream.protocol._framebase import Frame, Response
from rabbitstream.protocol._frames_conn import MetadataUpdate
from rabbitstream.protocol._frames_pubsub import (
    ConsumerUpdateRequest,
    CreditResponse,
    Deliver,
    PublishConfirm,
    PublishError,
)

if TYPE_CHECKING:
    from rabbitstream.plugin import Registry
    from rabbitstream.protocol._chunk import Chunk, ChunkLimits

__all__ = ["ChunkCallback", "CloseListener", "PublishConfirmHandler", "PublishErrorHandler", "StreamProtocol"]

log = logging.getLogger("rabbitstream.transport")

ChunkCallback = Callable[["Chunk"], None]
PublishConfirmHandler = Callable[[list[int]], None]
PublishErrorHandler = Callable[[list[tuple[int, int]]], None]
CloseListener = Callable[[BaseException | None], None]


class StreamProtocol(asyncio.Protocol):
    """:class:`asyncio.Protocol` wrapping a :class:`ProtocolConnection`."""

    __slots__ = (
        "_close_listeners",
        "_drain_waiters",
        "_hb_handle",
        "_heartbeat",
        "_loop",
        "_paused",
        "_pending",
        "_publishers",
        "_subscriptions",
        "address",
        "check_crc",
        "chunk_limits",
        "close_listeners",
        "close_reason",
        "closed",
        "closed_future",
        "conn",
        "handshake",
        "last_write",
        "on_consumer_update",
        "on_credit_error",
        "on_metadata_update",
        "parse_chunk",
        "registry",
        "transport",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        address: str,
        *,
        registry: Registry,
        check_crc: bool = True,
        max_inbound_frame_size: int = DEFAULT_MAX_INBOUND_FRAME,
        chunk_limits: ChunkLimits | None = None,
    ) -> None:
        from rabbitstream.protocol._chunk import DEFAULT_CHUNK_LIMITS, parse_chunk

        self._loop = loop
        self.address = address
        self.conn = ProtocolConnection(clock=loop.time, max_inbound_frame_size=max_inbound_frame_size)
        self.chunk_limits = chunk_limits if chunk_limits is not None else DEFAULT_CHUNK_LIMITS
        self.transport: asyncio.Transport | None = None
        self._pending: dict[int, asyncio.Future[Response]] = {}
        self._subscriptions: dict[int, ChunkCallback] = {}
        self._publishers: dict[int, tuple[PublishConfirmHandler, PublishErrorHandler]] = {}
        self.on_consumer_update: Callable[[int, bool, int], None] | None = None
        self.on_metadata_update: Callable[[str, int], None] | None = None
        self.on_credit_error: Callable[[int, int], None] | None = None
        self._close_listeners: list[CloseListener] = []
        self.close_reason: BaseException | None = None
        self.closed = False
        self.closed_future: asyncio.Future[None] = loop.create_future()
        self.handshake: asyncio.Future[HandshakeComplete] = loop.create_future()
        self.registry = registry
        self.check_crc = check_crc
        self.parse_chunk = parse_chunk
        self.last_write = loop.time()
        self._paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._heartbeat = 0
        self._hb_handle: asyncio.TimerHandle | None = None

    # ------------------------------------------------------------------ asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:  # pragma: no cover - platform dependent
                pass

    def data_received(self, data: bytes) -> None:
        events = self.conn.receive_data(data)
        for ev in events:
            cls = type(ev)
            try:
                if cls is Deliver:
                    self._on_deliver(ev)  # type: ignore[arg-type]
                elif cls is PublishConfirm:
                    handlers = self._publishers.get(ev.publisher_id)  # type: ignore[union-attr]
                    if handlers is not None:
                        handlers[0](list(ev.publishing_ids))  # type: ignore[union-attr]
                elif isinstance(ev, Response):
                    fut = self._pending.pop(ev.correlation_id, None)
                    if fut is not None and not fut.done():
                        fut.set_result(ev)
                elif cls is PublishError:
                    handlers = self._publishers.get(ev.publisher_id)  # type: ignore[union-attr]
                    if handlers is not None:
                        handlers[1](list(ev.errors))  # type: ignore[union-attr]
                else:
                    self._on_other(ev)
            except Exception:
                log.exception("%s: error in the handler of %s", self.address, cls.__name__)
        self.flush()

    def _on_deliver(self, ev: Deliver) -> None:
        cb = self._subscriptions.get(ev.subscription_id)
        if cb is None:
            return  # unsubscribed meanwhile
        try:
            chunk = self.parse_chunk(
                ev.chunk,
                check_crc=self.check_crc,
                registry=self.registry,
                committed_chunk_id=ev.committed_chunk_id,
                limits=self.chunk_limits,
            )
        except RabbitStreamError as exc:
            log.error("%s: invalid chunk for subscription %d: %s", self.address, ev.subscription_id, exc)
            self.abort(exc)
            return
        cb(chunk)

    def _on_other(self, ev: object) -> None:
        if isinstance(ev, MetadataUpdate):
            if self.on_metadata_update is not None:
                self.on_metadata_update(ev.stream, ev.code)
        elif isinstance(ev, ConsumerUpdateRequest):
            if self.on_consumer_update is not None:
                self.on_consumer_update(ev.subscription_id, ev.active, ev.correlation_id)
        elif isinstance(ev, CreditResponse):
            if self.on_credit_error is not None:
                self.on_credit_error(ev.subscription_id, ev.code)
            else:
                log.warning(
                    "%s: Credit refused for subscription %d (code 0x%02x)",
                    self.address,
                    ev.subscription_id,
                    ev.code,
                )
        elif isinstance(ev, HandshakeComplete):
            if not self.handshake.done():
                self.handshake.set_result(ev)
        elif isinstance(ev, HandshakeFailed):
            if not self.handshake.done():
                self.handshake.set_exception(ev.error)
        elif isinstance(ev, ConnectionTerminated):
            if ev.error is not None and self.close_reason is None:
                self.close_reason = ev.error
            self.flush()  # the answer to a broker Close
            if self.transport is not None:
                self.transport.close()
        elif isinstance(ev, Frame):
            log.debug("%s: ignoring %s", self.address, type(ev).__name__)

    def eof_received(self) -> bool | None:
        return None  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        if self.closed:
            return
        self.closed = True
        reason = self.close_reason
        if reason is None and exc is not None:
            reason = ConnectionClosed(f"connection to {self.address} lost: {exc}")
            reason.__cause__ = exc
        elif reason is None and not self.conn_closed_by_us():
            reason = ConnectionClosed(f"connection to {self.address} closed by the broker (EOF)")
        self.close_reason = reason
        err = reason if reason is not None else ConnectionClosed(f"connection to {self.address} closed")
        if not self.handshake.done():
            self.handshake.set_exception(err)
            self.handshake.exception()  # mark retrieved: the client may not be awaiting it
        pending, self._pending = self._pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(err)
        for w in self._drain_waiters:
            if not w.done():
                w.set_exception(err)
        self._drain_waiters.clear()
        if not self.closed_future.done():
            self.closed_future.set_result(None)
        listeners, self._close_listeners = self._close_listeners, []
        for cb in listeners:
            try:
                cb(reason)
            except Exception:
                log.exception("%s: error in a close listener", self.address)

    def conn_closed_by_us(self) -> bool:
        """True when the close was requested by this client."""
        from rabbitstream.protocol._connection import ConnectionState

        return (
            self.conn.state in (ConnectionState.CLOSING, ConnectionState.CLOSED) and self.conn.error is None
        )

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        waiters, self._drain_waiters = self._drain_waiters, []
        for w in waiters:
            if not w.done():
                w.set_result(None)

    # ------------------------------------------------------------------ used by the client

    @property
    def is_writing_paused(self) -> bool:
        """True while the transport's write buffer is above its high-water mark."""
        return self._paused

    async def drain(self) -> None:
        """Wait until the transport accepts writes again (returns at once when not paused)."""
        if self.closed:
            raise self.closed_error()
        if not self._paused:
            return
        w: asyncio.Future[None] = self._loop.create_future()
        self._drain_waiters.append(w)
        await w

    def closed_error(self) -> ConnectionClosed:
        reason = self.close_reason
        if isinstance(reason, ConnectionClosed):
            return reason
        exc = ConnectionClosed(f"connection to {self.address} is closed" + (f": {reason}" if reason else ""))
        return exc

    def flush(self) -> None:
        """Write what the sans-IO connection has queued."""
        data = self.conn.data_to_send()
        if data and self.transport is not None and not self.closed:
            self.transport.write(data)
            self.last_write = self._loop.time()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Write pre-encoded frames (hot path)."""
        if self.closed or self.transport is None:
            raise self.closed_error()
        self.transport.write(data)
        self.last_write = self._loop.time()

    def writelines(self, parts: Iterable[bytes | bytearray | memoryview]) -> None:
        """Write several pre-encoded frames at once (hot path)."""
        if self.closed or self.transport is None:
            raise self.closed_error()
        self.transport.writelines(parts)
        self.last_write = self._loop.time()

    def send(self, frame: Frame) -> None:
        """Encode ``frame`` through the sans-IO connection and write it (one-way commands)."""
        if self.closed:
            raise self.closed_error()
        self.conn.send_frame(frame)
        self.flush()

    def request(self, make: Callable[[int], Frame]) -> tuple[int, asyncio.Future[Response]]:
        """Send the request ``make(correlation_id)``; :return: its correlation id and the future of
        its response (failed with the close reason if the connection goes)."""
        if self.closed:
            raise self.closed_error()
        corr = self.conn.next_correlation_id()
        frame = make(corr)
        self.conn.send_frame(frame)  # FrameTooLargeError / LocalProtocolError before anything is sent
        fut: asyncio.Future[Response] = self._loop.create_future()
        self._pending[corr] = fut
        self.flush()
        return corr, fut

    @property
    def pending_requests(self) -> int:
        """Requests still waiting for their response."""
        return len(self._pending)

    def forget_request(self, corr: int) -> None:
        """Stop waiting for the response to ``corr`` (timed out, cancelled)."""
        self._pending.pop(corr, None)

    def set_publisher(
        self, publisher_id: int, on_confirm: PublishConfirmHandler, on_error: PublishErrorHandler
    ) -> None:
        """Route PublishConfirm / PublishError of ``publisher_id`` to these handlers."""
        self._publishers[publisher_id] = (on_confirm, on_error)

    def remove_publisher(self, publisher_id: int) -> None:
        self._publishers.pop(publisher_id, None)

    def set_subscription(self, subscription_id: int, on_chunk: ChunkCallback) -> None:
        """Route the Deliver frames of ``subscription_id`` (parsed) to ``on_chunk``."""
        self._subscriptions[subscription_id] = on_chunk

    def remove_subscription(self, subscription_id: int, on_chunk: ChunkCallback | None = None) -> None:
        """Forget the handler of ``subscription_id`` (only if it is still ``on_chunk``, when given)."""
        if on_chunk is None or self._subscriptions.get(subscription_id) is on_chunk:
            self._subscriptions.pop(subscription_id, None)

    def add_close_listener(self, cb: CloseListener) -> None:
        """Call ``cb(reason)`` once when the connection is lost (soon, if it already is)."""
        if self.closed:
            self._loop.call_soon(cb, self.close_reason)
        else:
            self._close_listeners.append(cb)

    def remove_close_listener(self, cb: CloseListener) -> None:
        try:
            self._close_listeners.remove(cb)
        except ValueError:
            pass

    def close_transport(self) -> None:
        """Close the socket (after the buffered data is written)."""
        if self.transport is not None and not self.closed:
            self.transport.close()

    def abort_transport(self) -> None:
        """Close the socket at once (buffered data is dropped)."""
        if self.transport is not None and not self.closed:
            self.transport.abort()

    # ------------------------------------------------------------------ heartbeats

    def start_heartbeat(self, heartbeat: int) -> None:
        """Every ``heartbeat / 2`` s: send a Heartbeat when nothing was written for about ``heartbeat``
        seconds, abort the connection when nothing was received for ``2 * heartbeat``."""
        self._heartbeat = heartbeat
        self._schedule_heartbeat()

    def stop_heartbeat(self) -> None:
        if self._hb_handle is not None:
            self._hb_handle.cancel()
            self._hb_handle = None

    def _schedule_heartbeat(self) -> None:
        interval = max(self._heartbeat / 2.0, 0.05)
        self._hb_handle = self._loop.call_later(interval, self._heartbeat_tick)

    def _heartbeat_tick(self) -> None:
        if self.closed:
            return
        now = self._loop.time()
        silent = now - self.conn.last_received
        if silent >= 2 * self._heartbeat:
            self.abort(
                ConnectionClosed(
                    f"connection to {self.address} is dead: no data from the broker for {silent:.1f}s "
                    f"(heartbeat {self._heartbeat}s)"
                )
            )
            return
        if now - self.last_write >= self._heartbeat * 0.95:
            self.conn.send_heartbeat()
            self.flush()
        self._schedule_heartbeat()

    def abort(self, reason: BaseException) -> None:
        """Close the connection at once with ``reason`` (dead peer, corrupt data)."""
        if self.close_reason is None:
            self.close_reason = reason
        if self.transport is not None:
            self.transport.abort()
