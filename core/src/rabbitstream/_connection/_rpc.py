"""The RPC layer of :class:`~rabbitstream.Client`: one open connection, its state, close and requests.

:class:`RpcClient` wraps a connected :class:`~._transport.StreamProtocol`: it sends a request with a
fresh correlation id and waits for the answer (:meth:`RpcClient._rpc`: time-out, loop check, the
:class:`~rabbitstream.exceptions.ServerError` subclass of the response code), and closes the
connection within a time limit.  The commands are added by :mod:`._streams` (stream management)
and :mod:`._pubsub` (publishing and consuming); :mod:`._client` opens the connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from rabbitstream._connection._transport import CloseListener, StreamProtocol
from rabbitstream.exceptions import ClientError, ConnectionClosed, RabbitStreamError, RPCTimeout, ServerError
from rabbitstream.protocol._framebase import Frame, Response

__all__ = ["OK", "RpcClient"]

_R = TypeVar("_R", bound=Response)
#: The response code of a successful request.
OK = 1


class RpcClient:
    """One open connection: its negotiated state, close, and typed request/response."""

    def __init__(self, protocol: StreamProtocol, host: str, port: int, *, rpc_timeout: float) -> None:
        self._protocol = protocol
        self._conn = protocol.conn
        self._loop = asyncio.get_running_loop()
        self.host = host
        self.port = port
        self.rpc_timeout = rpc_timeout
        self.frame_max = 0
        self.heartbeat = 0
        self.server_properties: dict[str, str] = {}
        #: the broker's ``version`` peer property as integers, e.g. ``(4, 3, 6)``
        self.server_version: tuple[int, ...] = ()
        self.connection_properties: dict[str, str] = {}
        self.server_command_versions: dict[int, tuple[int, int]] = {}
        self.sasl_mechanisms: tuple[str, ...] = ()
        self.deliver_version = 1

    # ------------------------------------------------------------------ state

    @property
    def address(self) -> str:
        """``host:port`` as connected to."""
        return self._protocol.address

    @property
    def advertised_host(self) -> str:
        """``advertised_host`` from the Open response (the connected host if absent)."""
        return self.connection_properties.get("advertised_host", self.host)

    @property
    def advertised_port(self) -> int:
        """``advertised_port`` from the Open response (the connected port if absent)."""
        try:
            return int(self.connection_properties["advertised_port"])
        except (KeyError, ValueError):
            return self.port

    @property
    def is_closed(self) -> bool:
        """True once the connection is gone (or closing)."""
        return self._protocol.closed or self._conn.state.value in ("closing", "closed")

    @property
    def close_reason(self) -> BaseException | None:
        """Why the connection closed (None after a normal :meth:`close`)."""
        return self._protocol.close_reason

    async def wait_closed(self) -> None:
        """Wait until the connection is gone."""
        await asyncio.shield(self._protocol.closed_future)

    def add_close_listener(self, cb: CloseListener) -> None:
        """Call ``cb(reason)`` once when the connection is lost (reason None after :meth:`close`)."""
        self._protocol.add_close_listener(cb)

    def remove_close_listener(self, cb: CloseListener) -> None:
        """Undo :meth:`add_close_listener`."""
        self._protocol.remove_close_listener(cb)

    async def close(self, timeout: float = 5.0) -> None:
        """Send Close, wait for the answer (up to ``timeout`` s) and close the socket; the
        transport is aborted when it is still open after ``timeout`` (a peer that stopped reading
        never takes the buffered data)."""
        p = self._protocol
        deadline = self._loop.time() + timeout
        p.stop_heartbeat()
        if p.closed:
            return
        try:
            if self._conn.state.value == "open":
                try:
                    self._conn.send_close(1, "OK")
                    p.flush()
                except RabbitStreamError:
                    pass
                try:
                    await asyncio.wait_for(asyncio.shield(p.closed_future), timeout)
                except asyncio.TimeoutError:
                    pass
            p.close_transport()
            if not p.closed:
                try:
                    await asyncio.wait_for(self.wait_closed(), max(deadline - self._loop.time(), 0))
                except asyncio.TimeoutError:
                    p.abort_transport()  # the peer stopped reading: the buffered data never goes
            await self.wait_closed()
        except BaseException:
            # cancelled (e.g. by a caller's timeout shorter than ``timeout``): never leave the socket open
            p.abort_transport()
            raise

    # ------------------------------------------------------------------ RPC plumbing

    async def _rpc(
        self, make: Callable[[int], Frame], expect: type[_R], what: str, *, check: bool = True
    ) -> _R:
        p = self._protocol
        if asyncio.get_running_loop() is not self._loop:
            raise ClientError(f"{what}: the connection to {p.address} belongs to another event loop")
        corr, fut = p.request(make)
        try:
            resp = await asyncio.wait_for(fut, self.rpc_timeout)
        except asyncio.TimeoutError:
            p.forget_request(corr)
            raise RPCTimeout(f"{what}: no response from {p.address} within {self.rpc_timeout}s") from None
        except BaseException:  # cancelled: the answer, if it ever comes, is for nobody
            p.forget_request(corr)
            raise
        if not isinstance(resp, expect):
            raise ConnectionClosed(f"{what}: unexpected {type(resp).__name__} for correlation id {corr}")
        if check and resp.code != OK:
            raise ServerError.for_code(resp.code, what)
        return resp

    def _send(self, frame: Frame) -> None:
        self._protocol.send(frame)

    async def _simple(self, make: Callable[[int], Frame], what: str) -> None:
        await self._rpc(make, Response, what)
