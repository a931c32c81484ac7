"""Client against a scripted peer on a local socket (issue #14): close() is bounded even when the
peer stopped reading, a cancelled RPC leaves no pending entry, offsets are checked."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from rabbitstream import Client
from rabbitstream.exceptions import ClientError
from rabbitstream.plugin import Registry
from rabbitstream.protocol import _frames as F
from rabbitstream.protocol._framebase import decode_frame
from test_connection import Mech, ServerPeer

#: core only (no plugin installed in the ``core`` session): the test mechanism of test_connection
_REGISTRY = Registry(sasl={"PLAIN": Mech()})


class ScriptedServer:
    """Handshakes like the broker (sans-IO :class:`ServerPeer`), then answers nothing; stops
    reading its socket once ``reading`` is cleared (a peer that hangs)."""

    def __init__(self) -> None:
        self.reading = True
        self.server: asyncio.AbstractServer | None = None
        self.release = asyncio.Event()
        self.handlers: set[asyncio.Task[Any]] = set()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        self.release.set()
        assert self.server is not None
        self.server.close()
        await asyncio.gather(*self.handlers, return_exceptions=True)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        peer = ServerPeer()
        buf = b""
        try:
            while True:
                data = await reader.read(65536)
                if not data or not self.reading:
                    break
                buf += data
                while len(buf) >= 4:
                    size = int.from_bytes(buf[:4], "big")
                    if len(buf) < 4 + size:
                        break
                    frame, buf = buf[: 4 + size], buf[4 + size :]
                    out = peer.answer(frame)
                    request = decode_frame(memoryview(frame)[4:])
                    if isinstance(request, F.ExchangeCommandVersionsRequest):
                        out += F.ExchangeCommandVersionsResponse(
                            correlation_id=request.correlation_id, code=1, commands=()
                        ).encode()
                    writer.write(out)
            await self.release.wait()  # keep the socket open, unread
        finally:
            writer.transport.abort()


@pytest.fixture
async def server() -> object:
    srv = ScriptedServer()
    yield srv
    await srv.stop()


async def connect(server: ScriptedServer) -> Client:
    port = await server.start()
    return await Client.connect("127.0.0.1", port, heartbeat=0, rpc_timeout=5.0, registry=_REGISTRY)


async def test_close_is_bounded_when_the_peer_stopped_reading(server: ScriptedServer) -> None:
    client = await connect(server)
    server.reading = False
    chunk = b"\0" * (1 << 20)
    for _ in range(64):  # fill the socket buffers and the transport's buffer
        client.write(chunk)
        await asyncio.sleep(0)
    t0 = time.monotonic()
    await asyncio.wait_for(client.close(timeout=0.5), 5.0)  # before the fix: blocked for ever
    elapsed = time.monotonic() - t0
    assert client.is_closed
    assert elapsed < 3.0, elapsed


async def test_cancelled_rpc_leaves_no_pending_entry(server: ScriptedServer) -> None:
    client = await connect(server)
    call = asyncio.ensure_future(client.stream_stats("s"))  # the scripted peer never answers
    await asyncio.sleep(0.05)
    assert client._protocol.pending_requests == 1
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    # before the fix: the entry stayed until the connection closed
    assert client._protocol.pending_requests == 0
    await client.close(timeout=0.2)


@pytest.mark.parametrize("offset", [-1, 1 << 64])
async def test_store_offset_out_of_range_is_a_value_error(server: ScriptedServer, offset: int) -> None:
    client = await connect(server)
    with pytest.raises(ValueError, match="offset must be in"):  # before the fix: struct.error
        client.store_offset("ref", "s", offset)
    await client.close(timeout=0.2)


def test_use_from_another_event_loop_is_a_clear_error() -> None:
    loop1 = asyncio.new_event_loop()
    loop2 = asyncio.new_event_loop()
    server = ScriptedServer()
    try:
        client = loop1.run_until_complete(connect(server))
        try:
            with pytest.raises(ClientError, match="another event loop"):  # before: asyncio's generic error
                loop2.run_until_complete(client.stream_stats("s"))
        finally:
            loop1.run_until_complete(client.close(timeout=0.2))
    finally:
        if server.server is not None:
            loop1.run_until_complete(server.stop())
        loop1.close()
        loop2.close()
