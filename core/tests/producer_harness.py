"""A :class:`~rabbitstream.Producer` over in-memory scripted connections (no broker, no socket).

Only the producer's own behaviour is exercised: its connections are :class:`Peer` objects that
record the Publish frames written, confirm them when the test says so, and can be cut.  The
protocol decisions a broker makes (deduplication, errors) are left to the integration tests.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar

import pytest
from rabbitstream import Producer
from rabbitstream._connection import _pool
from rabbitstream.exceptions import ConnectionClosed
from rabbitstream.recovery import RecoveryStrategy


def publish_ids(frame: bytes) -> tuple[int, list[int]]:
    """(publisher id, publishing ids) of a v1/v2 Publish frame (simple entries and sub-entries)."""
    version = struct.unpack_from(">H", frame, 6)[0]
    pid = frame[8]
    (n,) = struct.unpack_from(">I", frame, 9)
    pos = 13
    out = []
    for _ in range(n):
        (pub_id,) = struct.unpack_from(">Q", frame, pos)
        out.append(pub_id)
        pos += 8
        if version == 2:
            (flen,) = struct.unpack_from(">h", frame, pos)
            pos += 2 + max(flen, 0)
        if frame[pos] & 0x80:  # sub-entry: byte0, count:2, uncompressed:4, length:4, body
            (length,) = struct.unpack_from(">I", frame, pos + 7)
            pos += 11 + length
        else:
            (size,) = struct.unpack_from(">I", frame, pos)
            pos += 4 + size
    return pid, out


@pytest.fixture(autouse=True)
def short_close_wait() -> Iterator[None]:
    """``close()`` waits 5 ms (not 5 s) for confirms that never come (the pool's one close policy);
    imported by the test modules that use the harness (autouse there)."""
    saved = _pool.CLOSE_WAIT_TIMEOUT
    _pool.CLOSE_WAIT_TIMEOUT = 0.005
    yield
    _pool.CLOSE_WAIT_TIMEOUT = saved


def set_close_wait(seconds: float) -> None:
    """How long ``close()`` waits for confirms (restored by :func:`short_close_wait`)."""
    _pool.CLOSE_WAIT_TIMEOUT = seconds


class Peer:
    """One connection of the producer: records what is published, confirms on demand."""

    frame_max = 1048576
    publish_version = 2
    is_writing_paused = False
    server_version = (4, 0, 5)
    server_properties: ClassVar[dict[str, str]] = {"version": "4.0.5"}
    server_command_versions: ClassVar[dict[int, tuple[int, int]]] = {}
    advertised_host = "node"
    advertised_port = 5552

    def __init__(self) -> None:
        self.is_closed = False
        self.listeners: list[Callable[[BaseException | None], None]] = []
        self.handlers: dict[int, tuple[Any, Any]] = {}
        self.unconfirmed: list[tuple[int, int]] = []  # (publisher id, publishing id) in write order
        self.sequences: dict[str, int] = {}
        self.on_metadata_update: Any = None

    # -- what the producer calls
    def add_close_listener(self, cb: Callable[[BaseException | None], None]) -> None:
        self.listeners.append(cb)

    def set_publisher_handlers(self, pid: int, on_confirm: Any, on_error: Any) -> None:
        self.handlers[pid] = (on_confirm, on_error)

    async def declare_publisher(self, pid: int, reference: str | None, stream: str) -> None:
        self._check()
        await asyncio.sleep(0)  # an RPC: other tasks run meanwhile
        self._check()

    async def query_publisher_sequence(self, reference: str, stream: str) -> int:
        self._check()
        return self.sequences.get(reference, 0)

    async def delete_publisher(self, pid: int) -> None:
        self._check()
        self.handlers.pop(pid, None)

    async def stream_exists(self, stream: str) -> bool:
        self._check()
        return True

    def write(self, data: bytes) -> None:
        self.writelines([data])

    def writelines(self, parts: list[bytes]) -> None:
        self._check()
        for frame in parts:
            pid, ids = publish_ids(bytes(frame))
            self.unconfirmed += [(pid, i) for i in ids]

    async def drain(self) -> None:
        return None

    async def close(self) -> None:
        if not self.is_closed:
            self.is_closed = True
            for cb in self.listeners:
                cb(None)

    # -- what the test does
    def _check(self) -> None:
        if self.is_closed:
            raise ConnectionClosed("connection closed")

    def cut(self, exc: BaseException | None = None) -> None:
        """The connection is lost (close listeners called, as the real client does)."""
        if self.is_closed:
            return
        exc = exc or ConnectionClosed("cut by the test")
        self.is_closed = True
        for cb in self.listeners:
            cb(exc)

    def confirm(self, n: int | None = None) -> int:
        """Confirm the first ``n`` (default all) written messages, one PublishConfirm per id."""
        todo = self.unconfirmed if n is None else self.unconfirmed[:n]
        self.unconfirmed = self.unconfirmed[len(todo) :]
        for pid, i in todo:
            handlers = self.handlers.get(pid)
            if handlers is not None and not self.is_closed:
                handlers[0]([i])
        return len(todo)


class NoDelay(RecoveryStrategy):
    """Retries at once (the default strategy sleeps 0.2 s and more)."""

    def delay(self, attempt: int) -> float:
        return 0.0


class _ScriptedNodes:
    """Stands for the pool's ``NodeSelector``: every node connection is a new :class:`Peer`."""

    def __init__(self, producer: ScriptedProducer) -> None:
        self._producer = producer

    async def connect_node(
        self, wanted: Sequence[tuple[str, int]], name: str, **_: Any
    ) -> tuple[Any, tuple[str, int]]:
        return await self._producer._scripted_connect(), wanted[0]


class ScriptedProducer(Producer):
    """A Producer whose locator and publishing connections are :class:`Peer` objects.

    ``down`` makes every new connection (and the recovery's stream check) fail, so a
    recovery gives up after ``max_retries`` attempts.
    """

    def __init__(self, **kw: Any) -> None:
        kw.setdefault("username", "guest")
        kw.setdefault("password", "guest")
        kw.setdefault("confirm_timeout", None)
        kw.setdefault("recovery_strategy", NoDelay(True, max_retries=2))
        super().__init__("scripted", **kw)
        self.peers: list[Peer] = []
        self.down = False
        self.locator_peer = Peer()
        # the real ConnectionPool, opening Peers instead of sockets
        self._pool.locator = self._scripted_locator  # type: ignore[method-assign]
        self._pool.nodes = _ScriptedNodes(self)  # type: ignore[assignment]

    async def _scripted_locator(self, *, refuse: bool = False) -> Any:
        if self.locator_peer.is_closed or self._pool.locator_client is None:
            if refuse:
                raise self._pool._closed_error()
            if self.down:
                raise ConnectionClosed("broker down")
            if self.locator_peer.is_closed:
                self.locator_peer = Peer()
        self._pool.locator_client = self.locator_peer  # type: ignore[assignment]
        return self.locator_peer

    async def _scripted_connect(self) -> Peer:
        if self.down:
            raise ConnectionClosed("broker down")
        peer = Peer()
        self.peers.append(peer)
        return peer

    async def _leader(self, stream: str) -> tuple[str, int]:
        if self.down:
            raise ConnectionClosed("broker down")
        return ("node", 5552)

    async def stream_exists(self, stream: str, on_close_event: bool = False) -> bool:
        if self.down:
            raise ConnectionClosed("broker down")
        return True

    @property
    def live(self) -> list[Peer]:
        return [p for p in self.peers if not p.is_closed]
