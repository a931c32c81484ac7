"""A controllable TCP proxy for fault-injection tests (stdlib asyncio, own loop in a daemon thread).

Synchronous test code controls it while the client under test runs on the test's own event loop::

    proxy = FaultProxy([("localhost", 5552)])      # listens on 127.0.0.1:<ephemeral>
    client = await Client.connect("127.0.0.1", proxy.port)
    proxy.cut(rst=True)          # every live connection: RST (rst=False: FIN/EOF)
    proxy.blackhole(True)        # stop forwarding both ways, keep sockets open
    proxy.refuse(True)           # new connections: accept then close at once
    proxy.latency(0.2)           # delay every forwarded chunk by 0.2 s
    proxy.retarget([("localhost", 5553)])  # targets for new connections
    proxy.connection_count       # live proxied connections; proxy.total_connections: ever accepted
    proxy.close()

Several targets are used round-robin, one per new connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import struct
import threading
from collections.abc import Coroutine, Iterator, Sequence
from typing import Any, TypeVar

__all__ = ["FaultProxy"]

_T = TypeVar("_T")
_LINGER_RST = struct.Struct("ii").pack(1, 0)
_CHUNK = 65536


class _Pair:
    """One proxied connection: client side and upstream side."""

    __slots__ = ("client", "tasks", "upstream")

    def __init__(self, client: asyncio.StreamWriter) -> None:
        self.client = client
        self.upstream: asyncio.StreamWriter | None = None
        self.tasks: list[asyncio.Task[None]] = []

    def writers(self) -> list[asyncio.StreamWriter]:
        return [w for w in (self.client, self.upstream) if w is not None]


def _abort(writer: asyncio.StreamWriter, rst: bool) -> None:
    sock = writer.get_extra_info("socket")
    if rst and sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
        writer.transport.abort()
    else:
        writer.close()


class FaultProxy:
    """TCP proxy with fault controls; every method is thread-safe and synchronous.

    :param targets: ``(host, port)`` pairs; new connections go round-robin over them.
    :param listen_host: address to bind (port is ephemeral, see :attr:`port`).
    """

    def __init__(self, targets: Sequence[tuple[str, int]], *, listen_host: str = "127.0.0.1") -> None:
        if not targets:
            raise ValueError("FaultProxy needs at least one target")
        self.host = listen_host
        self._targets: list[tuple[str, int]] = list(targets)
        self._rr: Iterator[tuple[str, int]] = itertools.cycle(self._targets)
        self._blackhole = False
        self._refuse = False
        self._latency = 0.0
        self._pairs: set[_Pair] = set()
        self._writers: list[asyncio.StreamWriter] = []  # every side ever opened, aborted at close
        self._total = 0
        self._resume: asyncio.Event | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="faultproxy", daemon=True)
        self._thread.start()
        self._server: asyncio.Server = self._call(self._start(listen_host))
        self.port: int = self._server.sockets[0].getsockname()[1]
        self._closed = False

    # ------------------------------------------------------------------ plumbing
    def _call(self, coro: Coroutine[Any, Any, _T], timeout: float = 10.0) -> _T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _start(self, host: str) -> asyncio.Server:
        self._resume = asyncio.Event()
        self._resume.set()
        return await asyncio.start_server(self._handle, host, 0)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._serve(reader, writer)
        except asyncio.CancelledError:
            # Shutdown cancels the handler tasks: end normally, or asyncio 3.11's
            # start_server callback logs "task.exception()" raising CancelledError.
            if not writer.is_closing():
                writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._total += 1
        self._writers.append(writer)
        if self._refuse:
            _abort(writer, rst=False)
            return
        pair = _Pair(writer)
        self._pairs.add(pair)
        host, port = next(self._rr)
        try:
            up_reader, up_writer = await asyncio.open_connection(host, port)
        except OSError:
            self._pairs.discard(pair)
            _abort(writer, rst=True)
            return
        pair.upstream = up_writer
        self._writers.append(up_writer)
        pair.tasks = [
            asyncio.ensure_future(self._pump(reader, up_writer, pair)),
            asyncio.ensure_future(self._pump(up_reader, writer, pair)),
        ]
        await asyncio.gather(*pair.tasks, return_exceptions=True)
        self._pairs.discard(pair)
        for w in pair.writers():
            if not w.is_closing():
                w.close()

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, pair: _Pair) -> None:
        assert self._resume is not None
        try:
            while True:
                data = await src.read(_CHUNK)
                if not data:
                    break
                if self._latency > 0:
                    await asyncio.sleep(self._latency)
                while not self._resume.is_set():  # blackhole: hold the data, keep sockets open
                    await self._resume.wait()
                if pair not in self._pairs:
                    return
                dst.write(data)
                await dst.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            # half-close propagation: EOF from one side closes the other side's write direction
            if not dst.is_closing():
                if dst.can_write_eof():
                    with contextlib.suppress(OSError):
                        dst.write_eof()
                else:
                    dst.close()

    async def _cut(self, rst: bool) -> int:
        pairs = list(self._pairs)
        self._pairs.clear()
        for pair in pairs:
            for w in pair.writers():
                _abort(w, rst)
            for t in pair.tasks:
                t.cancel()
        return len(pairs)

    async def _set_blackhole(self, on: bool) -> None:
        assert self._resume is not None
        self._blackhole = on
        if on:
            self._resume.clear()
        else:
            self._resume.set()

    async def _shutdown(self) -> None:
        self._server.close()
        await self._cut(rst=False)
        me = asyncio.current_task()
        rest = [t for t in asyncio.all_tasks() if t is not me]
        for t in rest:
            t.cancel()
        await asyncio.gather(*rest, return_exceptions=True)
        # A FIN'ed transport whose peer stopped reading stays "closing" with its buffer for good;
        # the loop is about to close, so drop what is left (a no-op for transports already gone).
        for w in self._writers:
            w.transport.abort()
        await asyncio.sleep(0)  # run the connection_lost callbacks the aborts scheduled
        await self._server.wait_closed()

    # ------------------------------------------------------------------ controls
    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)`` clients should connect to."""
        return (self.host, self.port)

    @property
    def targets(self) -> list[tuple[str, int]]:
        """Current targets (copy)."""
        return list(self._targets)

    @property
    def connection_count(self) -> int:
        """Live proxied connections."""
        return len(self._pairs)

    @property
    def total_connections(self) -> int:
        """Connections accepted since start (refused ones included)."""
        return self._total

    def cut(self, rst: bool = True) -> int:
        """Cut every live connection on both sides.

        :param rst: ``True``: RST (``SO_LINGER`` 0 + abort), the client sees ``ConnectionResetError``;
            ``False``: FIN, the client sees EOF.
        :returns: the number of connections cut.
        """
        return self._call(self._cut(rst))

    def blackhole(self, on: bool = True) -> None:
        """Stop (``on``) or resume forwarding; sockets stay open, held data is delivered on resume."""
        self._call(self._set_blackhole(on))

    def refuse(self, on: bool = True) -> None:
        """New connections are accepted and closed at once (EOF) while ``on``."""
        self._refuse = on

    def latency(self, seconds: float) -> None:
        """Delay every forwarded chunk (both directions) by ``seconds`` (0 disables)."""
        if seconds < 0:
            raise ValueError("latency must be >= 0")
        self._latency = seconds

    def retarget(self, targets: Sequence[tuple[str, int]]) -> None:
        """Send *new* connections to ``targets`` (round-robin); live ones are untouched."""
        if not targets:
            raise ValueError("FaultProxy needs at least one target")
        self._targets = list(targets)
        self._rr = itertools.cycle(self._targets)

    def reset(self) -> None:
        """Clear blackhole, refuse and latency."""
        self.blackhole(False)
        self._refuse = False
        self._latency = 0.0

    def close(self) -> None:
        """Stop listening, close every connection (FIN) and stop the loop thread. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            self._call(self._shutdown())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5.0)
            self._loop.close()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
