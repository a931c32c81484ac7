"""A :class:`~rabbitstream.Producer` over in-memory scripted connections (no broker, no socket).

Only the producer's own behaviour is exercised: its connections are :class:`Peer` objects that
record the Publish frames written, confirm them when the test says so, and can be cut.  The
protocol decisions a broker makes (deduplication, errors) are left to the integration tests.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable
from typing import Any, ClassVar

from rabbitstream import Producer
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


class Peer:
    """One connection of the producer: records what is published, confirms on demand."""

    frame_max = 1048576
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


class ScriptedProducer(Producer):
    """A Producer whose locator and publishing connections are :class:`Peer` objects.

    ``down`` makes every new connection (and the recovery's stream check) fail, so a
    recovery gives up after ``max_retries`` attempts.
    """

    _close_confirm_wait = 0.005

    def __init__(self, **kw: Any) -> None:
        kw.setdefault("username", "guest")
        kw.setdefault("password", "guest")
        kw.setdefault("confirm_timeout", None)
        kw.setdefault("recovery_strategy", NoDelay(True, max_retries=2))
        super().__init__("scripted", **kw)
        self.peers: list[Peer] = []
        self.down = False
        self.locator_peer = Peer()

    async def _get_locator(self) -> Any:
        if self.down:
            raise ConnectionClosed("broker down")
        if self.locator_peer.is_closed:
            self.locator_peer = Peer()
        self._locator = self.locator_peer  # type: ignore[assignment]
        return self.locator_peer

    async def _leader(self, stream: str) -> tuple[str, int]:
        if self.down:
            raise ConnectionClosed("broker down")
        return ("node", 5552)

    async def _open_to(self, leader: tuple[str, int]) -> Any:
        if self.down:
            raise ConnectionClosed("broker down")
        peer = Peer()
        self.peers.append(peer)
        return peer

    async def stream_exists(self, stream: str, on_close_event: bool = False) -> bool:
        if self.down:
            raise ConnectionClosed("broker down")
        return True

    @property
    def live(self) -> list[Peer]:
        return [p for p in self.peers if not p.is_closed]
