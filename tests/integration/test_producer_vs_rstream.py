"""rstream 1.1.1 still sends a whole ``send_batch`` as one frame: shown on a real broker.

RabbitMQ enforces the negotiated frame_max on inbound frames since 4.2.6 (Close 0x0e "frame too large"), so on
4.3 rstream's big ``send_batch`` loses the connection and its confirms, while rabbitstream splits the batch.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from rabbitstream import Producer

pytestmark = pytest.mark.integration

BATCH = [b"payload-%06d" % i for i in range(2000)]  # ~44 KB of messages: 5+ frames at frame_max 8192


async def test_rstream_send_batch_breaks_frame_max_ours_does_not(
    broker: Any, unique_stream_name: str
) -> None:
    if broker.version_info < (4, 2, 6):
        pytest.skip(f"RabbitMQ {broker.version} does not enforce frame_max on inbound frames (4.2.6+ does)")
    rstream = pytest.importorskip("rstream")
    kw = {"username": broker.username, "password": broker.password, "frame_max": 8192}

    theirs: list[int] = []

    def on_theirs(status: Any) -> None:
        if status.is_confirmed:
            theirs.append(status.message_id)

    rp = rstream.Producer(broker.host, broker.port, **kw)
    await rp.start()
    try:
        await rp.create_stream(unique_stream_name, exists_ok=True)
        with contextlib.suppress(Exception):
            await rp.send_batch(unique_stream_name, BATCH, on_publish_confirm=on_theirs)
        await asyncio.sleep(3)
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(rp.close(), 10)
    assert len(theirs) < len(BATCH), "rstream's one-frame send_batch was expected to exceed frame_max"

    ours: list[int] = []
    done = asyncio.Event()

    def on_ours(status: Any) -> None:
        if status.is_confirmed:
            ours.append(status.message_id)
            if len(ours) == len(BATCH):
                done.set()

    async with Producer(broker.host, broker.port, **kw) as p:
        await p.create_stream(unique_stream_name, exists_ok=True)
        await p.send_batch(unique_stream_name, BATCH, on_publish_confirm=on_ours)
        await asyncio.wait_for(done.wait(), 30)
        await p.delete_stream(unique_stream_name)
    assert sorted(ours) == list(range(1, len(BATCH) + 1))
