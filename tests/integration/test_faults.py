"""Connection faults through the fault proxy (single node): repeated cuts under load, and a
black-holed connection (no RST, no FIN) detected by the heartbeat and recovered.

Figures: one ``[cluster-report]`` line per scenario (``pytest -s``) and ``.cache/cluster-report.txt``.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from _cluster_helpers import Workload, assert_clean, until
from rabbitstream import Client
from rabbitstream._connection import DISCONNECTED

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
async def stream(broker: Any, unique_stream_name: str) -> AsyncIterator[str]:
    client = await Client.connect(
        broker.host, broker.port, username=broker.username, password=broker.password
    )
    try:
        await client.create_stream(unique_stream_name)
    finally:
        await client.close()
    yield unique_stream_name
    client = await Client.connect(
        broker.host, broker.port, username=broker.username, password=broker.password
    )
    try:
        await client.delete_stream(unique_stream_name)
    finally:
        await client.close()


async def test_ten_random_cuts_under_load(broker: Any, fault_proxy: Any, stream: str) -> None:
    """100,000 messages from a named producer, a consumer reading; the proxy cuts every connection
    10 times at random moments (RST and FIN alternately): no loss, no duplicate, every offset once."""
    total = 100_000
    seed = int(os.environ.get("RABBITSTREAM_FAULT_SEED", "0")) or random.randrange(1, 1 << 30)
    rng = random.Random(seed)
    at = sorted(rng.sample(range(total // 20, total * 19 // 20), 10))

    def cut(k: int) -> Any:
        async def fault() -> None:
            fault_proxy.cut(rst=k % 2 == 0)

        return fault

    work = Workload("127.0.0.1", fault_proxy.port, stream, total, broker.username, broker.password,
                    at=at, faults=[cut(k) for k in range(10)], pace=(1_000, 0.05))  # fmt: skip
    await work.run()
    fig = await work.verify(
        "proxy-10-cuts", broker.host, broker.port, seed=seed, connections=fault_proxy.total_connections
    )
    assert_clean(fig)
    assert fig["confirmed"] == total
    assert fig["producer_recoveries"] >= 1 and fig["consumer_recoveries"] >= 1


async def test_blackhole_detected_by_heartbeat(broker: Any, fault_proxy: Any, stream: str) -> None:
    """The proxy stops forwarding (sockets stay open): with ``heartbeat=2`` both producer and
    consumer declare their connection dead, and recover once the path works again."""
    heartbeat = 2
    total = 30_000
    detected: dict[str, float] = {}
    t_hole: list[float] = []

    async def hole() -> None:
        t_hole.append(time.monotonic())
        fault_proxy.blackhole(True)
        try:
            await until(lambda: {"producer", "consumer"} <= set(detected), 30, 0.1)
        finally:
            fault_proxy.blackhole(False)

    work = Workload("127.0.0.1", fault_proxy.port, stream, total, broker.username, broker.password,
                    at=[total // 4], faults=[hole], pace=(500, 0.05),
                    producer_kw={"heartbeat": heartbeat}, consumer_kw={"heartbeat": heartbeat})  # fmt: skip

    def on_state(change: Any) -> None:
        if change.state == DISCONNECTED and t_hole:
            detected.setdefault(change.entity, round(change.at - t_hole[0], 3))

    work.states.watchers.append(on_state)
    await work.run()
    fig = await work.verify(
        "blackhole-heartbeat",
        broker.host,
        broker.port,
        heartbeat_s=heartbeat,
        producer_detect_s=detected.get("producer"),
        consumer_detect_s=detected.get("consumer"),
    )
    assert_clean(fig)
    assert fig["confirmed"] == total
    assert set(detected) == {"producer", "consumer"}, "the dead connection was not detected"
    errors = [repr(e.error) for e in work.states.of("producer", DISCONNECTED)]
    assert any("heartbeat" in e for e in errors), errors
