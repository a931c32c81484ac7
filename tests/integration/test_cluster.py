"""3-node cluster failover: leader ``kill -9`` under load, super stream with a node restarted.

Figures: one ``[cluster-report]`` line per scenario (``pytest -s``) and ``.cache/cluster-report.txt``.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from _cluster_helpers import (
    StateLog,
    Workload,
    assert_clean,
    read_all,
    recovery,
    report,
    stream_members,
    until,
    wait_members,
)
from rabbitstream import (
    Client,
    ConsumerOffsetSpecification,
    OffsetTracking,
    OffsetType,
    Producer,
    RouteType,
    SuperStreamConsumer,
    SuperStreamProducer,
)
from rabbitstream._connection import RECOVERED

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOTAL = 100_000


async def node_client(cluster: Any, port: int) -> Client:
    return await Client.connect(cluster.host, port, username=cluster.username, password=cluster.password)


async def any_client(cluster: Any) -> Client:
    """A connection to the first node that answers."""
    last: BaseException | None = None
    for port in cluster.ports:
        try:
            return await node_client(cluster, port)
        except Exception as exc:
            last = exc
    raise AssertionError(f"no cluster node answers: {last!r}")


@pytest.fixture
async def cstream(cluster: Any, unique_stream_name: str) -> AsyncIterator[str]:
    """A 3-replica stream whose leader is on c1 (created there with the client-local locator)."""
    stream = unique_stream_name
    client = await node_client(cluster, cluster.ports[0])
    try:
        await client.create_stream(
            stream, {"x-initial-cluster-size": "3", "x-queue-leader-locator": "client-local"}
        )
    finally:
        await client.close()
    await wait_members(lambda: any_client(cluster), stream, 3)
    yield stream
    for node in cluster.nodes:
        cluster.start(node)  # whatever a failed test left stopped
    client = await any_client(cluster)
    try:
        await client.delete_stream(stream)
    except Exception:
        pass
    finally:
        await client.close()


async def test_restarted_node_leads_new_streams(cluster: Any, unique_stream_name: str) -> None:
    """A node ``kill -9``'ed right after a stream was declared on it, then restarted, still leads
    streams: one created on it afterwards (``client-local``) has 3 members, takes 1,000 messages with
    confirms and gives them back from the restarted leader. On a cluster the launcher had not settled,
    the kill lost the node's stream-coordinator registration and this stream answered 0x06 for ever."""
    port0, node0 = cluster.ports[0], cluster.nodes[0]
    first, second = f"{unique_stream_name}-a", f"{unique_stream_name}-b"
    args = {"x-initial-cluster-size": "3", "x-queue-leader-locator": "client-local"}
    client = await node_client(cluster, port0)
    try:
        await client.create_stream(first, args)
    finally:
        await client.close()
    await asyncio.to_thread(cluster.kill, node0)
    try:
        await asyncio.to_thread(cluster.start, node0)  # raises at once when the node came back broken
        client = await node_client(cluster, port0)
        try:
            await client.create_stream(second, args)
        finally:
            await client.close()
        await wait_members(lambda: node_client(cluster, port0), second, 3, timeout=20)
        client = await node_client(cluster, port0)
        try:
            assert (await stream_members(client, second))[0] == port0
        finally:
            await client.close()
        bodies = [b"m%d" % i for i in range(1000)]
        confirmed: list[bool] = []
        kw = {"username": cluster.username, "password": cluster.password}
        async with Producer(cluster.host, port0, **kw) as prod:
            await prod.send_batch(
                second, bodies, on_publish_confirm=lambda st: confirmed.append(st.is_confirmed)
            )
            assert await until(lambda: len(confirmed) == 1000, timeout=30)
        assert all(confirmed)
        got = await read_all(cluster.host, port0, second, 1000, user=cluster.username,
                             password=cluster.password, timeout=30)  # fmt: skip
        assert [b for _, b in got] == bodies
        assert [o for o, _ in got] == list(range(1000))
    finally:
        await asyncio.to_thread(cluster.start, node0)
        client = await any_client(cluster)
        try:
            for s in (first, second):
                try:
                    await client.delete_stream(s)
                except Exception:
                    pass
        finally:
            await client.close()


async def test_leader_kill_under_load(cluster: Any, cstream: str) -> None:
    """``kill -9`` of the stream leader while a named producer publishes 100,000 messages and a
    consumer reads: nothing confirmed is lost or doubled, every offset is read once, both move on
    (producer to the new leader); the node is restarted and rejoins as a replica."""
    client = await any_client(cluster)
    leader_port, _ = await stream_members(client, cstream)
    await client.close()
    assert leader_port is not None
    victim = cluster.node_for_port(leader_port)

    async def kill() -> None:
        await asyncio.to_thread(cluster.kill, victim)

    # the application is given the leader's node: its locator dies too and must fail over
    work = Workload(cluster.host, leader_port, cstream, TOTAL, cluster.username, cluster.password,
                    at=[TOTAL * 3 // 10], faults=[kill])  # fmt: skip
    try:
        await work.run()
        survivor = next(p for p in cluster.ports if p != leader_port)
        client = await node_client(cluster, survivor)
        new_leader, _ = await stream_members(client, cstream)
        await client.close()
        t0 = time.monotonic()
        await asyncio.to_thread(cluster.start, victim)
        rejoin = await wait_members(lambda: any_client(cluster), cstream, 3)
        fig = await work.verify(
            "leader-kill-9", cluster.host, survivor, killed=victim, old_leader=leader_port,
            new_leader=new_leader, restart_and_rejoin_s=round(time.monotonic() - t0, 2),
            rejoin_poll_s=rejoin,
        )  # fmt: skip
    finally:
        await asyncio.to_thread(cluster.start, victim)
    assert_clean(fig)
    assert fig["confirmed"] == TOTAL
    assert new_leader is not None and new_leader != leader_port
    prod = work.states.of("producer", RECOVERED)
    assert prod and prod[-1].node == f"localhost:{new_leader}", prod
    cons = work.states.of("consumer", RECOVERED)
    assert cons, "the consumer was not disturbed (MetadataUpdate expected)"
    assert all(e.node != f"localhost:{leader_port}" for e in cons)


async def test_super_stream_sac_node_restart(cluster: Any, unique_stream_name: str) -> None:
    """Super stream of 3 partitions over the 3 nodes, two single-active SuperStreamConsumers, the
    node leading partition 0 restarted while publishing: consumption goes on, nothing is lost."""
    ss = unique_stream_name
    total = 30_000
    kw = {"username": cluster.username, "password": cluster.password}
    port0 = cluster.ports[0]
    states = StateLog()
    statuses: dict[int, bool] = {}  # message index -> confirmed (ids are per partition)
    received: list[tuple[int, str, int, bytes]] = []

    def on_confirm(i: int, status: Any) -> None:
        statuses[i] = status.is_confirmed

    def handler(k: int) -> Any:
        def on_message(message: Any, ctx: Any) -> None:
            received.append((k, ctx.stream, ctx.offset, bytes(message)))

        return on_message

    producer = SuperStreamProducer(
        cluster.host, port0, super_stream=ss, routing=RouteType.Key,
        routing_extractor=lambda m: bytes(m)[:1], publisher_name="ss-cluster",
        recovery_strategy=recovery(), on_state_change=states.append, **kw,
    )  # fmt: skip
    consumers = [
        SuperStreamConsumer(
            cluster.host,
            cluster.ports[k],
            super_stream=ss,
            recovery_strategy=recovery(),
            on_state_change=states.append,
            connection_name=f"ss-sac-{k}",
            **kw,
        )
        for k in range(2)
    ]
    async with producer:
        await producer.create_super_stream(
            ss, binding_keys=["0", "1", "2"],
            arguments={"x-queue-leader-locator": "balanced", "x-initial-cluster-size": 3},
        )  # fmt: skip
    partitions = [f"{ss}-{k}" for k in range(3)]
    for p in partitions:
        await wait_members(lambda: any_client(cluster), p, 3)
    client = await any_client(cluster)
    leaders = [(await stream_members(client, p))[0] for p in partitions]
    await client.close()
    assert leaders[0] is not None
    victim = cluster.node_for_port(leaders[0])
    restart_times: list[float] = []

    async def restart() -> None:
        t0 = time.monotonic()
        await asyncio.to_thread(cluster.stop, victim)
        await asyncio.to_thread(cluster.start, victim)
        restart_times.append(round(time.monotonic() - t0, 2))

    task: asyncio.Task[None] | None = None
    t_fault = 0.0
    try:
        async with producer, consumers[0], consumers[1]:
            for k, c in enumerate(consumers):
                await c.subscribe(
                    handler(k), subscriber_name="ss-group",
                    properties={"single-active-consumer": "true", "name": "ss-group"},
                    offset_specification=ConsumerOffsetSpecification(OffsetType.FIRST),
                    offset_tracking=OffsetTracking(messages=1_000, seconds=0.5),
                )  # fmt: skip
            for i in range(total):
                await producer.send(
                    b"%d-%06d" % (i % 3, i), on_publish_confirm=functools.partial(on_confirm, i)
                )
                if i % 300 == 299:
                    await asyncio.sleep(0.1)  # ~3,000 msg/s: the publishing spans the restart
                if i == total // 3:
                    t_fault = time.monotonic()
                    task = asyncio.ensure_future(restart())
            await until(lambda: len(statuses) >= total, 120)
            if task is not None:
                await task
            confirmed = {b"%d-%06d" % (i % 3, i) for i in range(total) if statuses.get(i)}
            await until(lambda: confirmed <= {r[3] for r in received}, 60, 0.2)
            await asyncio.sleep(0.5)
    finally:
        if task is not None and not task.done():
            await task
        await asyncio.to_thread(cluster.start, victim)
        async with SuperStreamProducer(cluster.host, port0, super_stream=ss, routing_extractor=str,
                                       **kw) as cleaner:  # fmt: skip
            await cleaner.delete_super_stream(ss, missing_ok=True)
    bodies = [r[3] for r in received]
    per_partition_dups = {
        p: len(offs) - len(set(offs)) for p in partitions for offs in [[r[2] for r in received if r[1] == p]]
    }
    rec = [round(e.elapsed, 3) for e in states.events if e.state == RECOVERED]
    lost = confirmed - set(bodies)
    fig = report(
        "super-stream-sac-node-restart",
        sent=total,
        confirmed=len(confirmed),
        not_confirmed=sum(1 for v in statuses.values() if not v),
        read=len(bodies),
        duplicates=len(bodies) - len(set(bodies)),
        lost=len(lost),
        leaders=[cluster.node_for_port(p) if p else None for p in leaders],
        restarted=victim,
        restart_s=restart_times[0] if restart_times else None,
        recoveries=len(rec),
        recovery_max_s=max(rec, default=None),
        first_fault_to_recovered_s=states.recovery_after("consumer", t_fault),
        active_per_consumer=[len({r[1] for r in received if r[0] == k}) for k in range(2)],
        per_partition_dups=per_partition_dups,
        per_partition_read={p[-1]: sum(1 for r in received if r[1] == p) for p in partitions},
        per_partition_lost={p[-1]: sum(1 for b in lost if b[:1] == p[-1].encode()) for p in partitions},
    )
    assert fig["lost"] == 0, fig
    assert fig["confirmed"] == total, fig
    assert {r[1] for r in received} == set(partitions)
