"""Helpers shared by the producer integration tests: read a stream back with a raw Client."""

from __future__ import annotations

import asyncio
from typing import Any

from rabbitstream import Client

__all__ = ["ConfirmLog", "read_stream"]


class ConfirmLog:
    """Collects ``ConfirmationStatus`` objects; ``cb`` is a sync on_publish_confirm callback."""

    def __init__(self) -> None:
        self.confirmed: list[int] = []
        self.failed: list[tuple[int, int]] = []
        self.event = asyncio.Event()
        self.expected = -1

    def cb(self, status: Any) -> None:
        if status.is_confirmed:
            self.confirmed.append(status.message_id)
        else:
            self.failed.append((status.message_id, status.response_code))
        if len(self.confirmed) + len(self.failed) >= self.expected >= 0:
            self.event.set()

    async def wait(self, n: int, timeout: float = 30.0) -> None:
        self.expected = n
        if len(self.confirmed) + len(self.failed) >= n:
            return
        self.event.clear()
        await asyncio.wait_for(self.event.wait(), timeout)


async def read_stream(
    broker: Any, stream: str, count: int, *, timeout: float = 20.0, settle: float = 0.3
) -> list[bytes]:
    """Subscribe from the first offset and return the records once ``count`` arrived (plus ``settle`` s)."""
    client = await Client.connect(
        broker.host, broker.port, username=broker.username, password=broker.password
    )
    records: list[bytes] = []
    got = asyncio.Event()

    def on_chunk(chunk: Any) -> None:
        for _offset, data in chunk.records():
            records.append(bytes(data))
        client.credit(0, 1)
        if len(records) >= count:
            got.set()

    try:
        await client.subscribe(0, stream, 1, None, 10, None, on_chunk=on_chunk)
        if count > 0:
            try:
                await asyncio.wait_for(got.wait(), timeout)
            except asyncio.TimeoutError:
                pass
        await asyncio.sleep(settle)
        return list(records)
    finally:
        await client.close()
