"""``load_balancer_mode`` through HAProxy (127.0.0.1:<lb_port>, round-robin over the 3 nodes):
placement (producers on the leader, consumers on a replica), connection sharing, the retry limit,
and the failover scenarios through the balancer.

Figures: one ``[cluster-report]`` line per scenario (``pytest -s``) and ``.cache/cluster-report.txt``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from _cluster_helpers import Workload, assert_clean, haproxy, report, stream_members, wait_members
from rabbitstream import Client, ConsumerOffsetSpecification, OffsetType, Producer
from rabbitstream._connection import RECOVERED
from rabbitstream._consumer import Consumer
from rabbitstream.exceptions import BrokerResolutionMaxRetryError

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOTAL = 100_000


def _auth(cluster: Any) -> dict[str, Any]:
    return {"username": cluster.username, "password": cluster.password}


async def _node(cluster: Any, port: int) -> Client:
    return await Client.connect(cluster.host, port, **_auth(cluster))


async def _any(cluster: Any) -> Client:
    for port in cluster.ports:
        try:
            return await _node(cluster, port)
        except Exception:
            continue
    raise AssertionError("no cluster node answers")


def _server(cluster: Any, port: int) -> str:
    """HAProxy server name of the node listening on ``port`` (``stream_nodes/c1``...)."""
    return f"stream_nodes/c{cluster.ports.index(port) + 1}"


@pytest.fixture
async def lb(cluster: Any) -> int:
    if cluster.lb_port is None:
        pytest.skip("no load balancer")
    return int(cluster.lb_port)


@pytest.fixture
async def streams(cluster: Any, unique_stream_name: str) -> AsyncIterator[list[str]]:
    """Three 3-replica streams, the leader of stream ``i`` on node ``i`` (client-local locator)."""
    names = [f"{unique_stream_name}-{i}" for i in range(3)]
    for name, port in zip(names, cluster.ports, strict=True):
        client = await _node(cluster, port)
        try:
            await client.create_stream(
                name, {"x-initial-cluster-size": "3", "x-queue-leader-locator": "client-local"}
            )
        finally:
            await client.close()
    for name in names:
        await wait_members(lambda: _any(cluster), name, 3)
    yield names
    for node in cluster.nodes:
        cluster.start(node)
    client = await _any(cluster)
    try:
        for name in names:
            try:
                await client.delete_stream(name)
            except Exception:
                pass
    finally:
        await client.close()


async def test_placement_through_balancer(cluster: Any, lb: int, streams: list[str]) -> None:
    """Producers land on each stream's leader, consumers on one of its replicas, every connection
    goes through the balancer, and connections are shared per node."""
    client = await _any(cluster)
    members = {s: await stream_members(client, s) for s in streams}
    await client.close()
    got: list[str] = []
    async with (
        Producer("127.0.0.1", lb, load_balancer_mode=True, **_auth(cluster)) as producer,
        Consumer("127.0.0.1", lb, load_balancer_mode=True, **_auth(cluster)) as consumer,
    ):
        for s in streams:
            await producer.send_wait(s, b"hello " + s.encode())
            await consumer.subscribe(
                s,
                lambda m, ctx: got.append(ctx.stream),
                offset_specification=ConsumerOffsetSpecification(OffsetType.FIRST),
            )
        pubs = {s: producer._publishers[(s, None)] for s in streams}
        subs = {sub.stream: sub for sub in consumer._subs.values()}
        for s in streams:
            leader, replicas = members[s]
            pc, cc = pubs[s].client, subs[s].client
            assert pc is not None and cc is not None
            assert (pc.port, pc.advertised_port) == (lb, leader), s
            assert cc.port == lb and cc.advertised_port in replicas, (s, cc.advertised_port, replicas)
        # one publishing connection per leader node (3 leaders on 3 nodes); consumers share by node
        assert len(producer._conns) == 3
        assert len(consumer._conns) <= 3
        for _ in range(100):
            if len(got) >= 3:
                break
            await asyncio.sleep(0.05)
        assert sorted(got) == sorted(streams)
        report(
            "lb-placement",
            producer_nodes=[pubs[s].client.advertised_port for s in streams],  # type: ignore[union-attr]
            consumer_nodes=[subs[s].client.advertised_port for s in streams],  # type: ignore[union-attr]
            leaders=[members[s][0] for s in streams],
            producer_connections=len(producer._conns),
            consumer_connections=len(consumer._conns),
        )


async def test_leader_fallback_and_retry_limit(cluster: Any, fault_proxy: Any, streams: list[str]) -> None:
    """A "balancer" that only ever reaches node 1: the producer for a stream led by node 2 gives
    up with BrokerResolutionMaxRetryError after max_retries; a consumer of stream 1 (led by node
    1) falls back to the leader after ``replica_attempts``; with ``prefer_replica=False`` at once."""
    fault_proxy.retarget([(cluster.host, cluster.ports[0])])
    fault_proxy.cut(rst=True)  # drop anything connected to the broker fixture's node
    async with Producer("127.0.0.1", fault_proxy.port, load_balancer_mode=True, max_retries=3,
                        **_auth(cluster)) as producer:  # fmt: skip
        with pytest.raises(BrokerResolutionMaxRetryError):
            await producer.send_wait(streams[1], b"x")
    for prefer in (True, False):
        consumer = Consumer("127.0.0.1", fault_proxy.port, load_balancer_mode=True, max_retries=10,
                            prefer_replica=prefer, replica_attempts=2, **_auth(cluster))  # fmt: skip
        async with consumer:
            sid = await consumer.subscribe(streams[0], lambda m, ctx: None)
            client = consumer._subs[sid].client
            assert client is not None and client.advertised_port == cluster.ports[0]


async def _lb_workload(cluster: Any, lb: int, stream: str, faults: list[Any], at: list[int]) -> Workload:
    return Workload("127.0.0.1", lb, stream, TOTAL, cluster.username, cluster.password, at=at,
                    faults=faults, pace=(1_000, 0.05), producer_kw={"load_balancer_mode": True},
                    consumer_kw={"load_balancer_mode": True})  # fmt: skip


async def test_shutdown_sessions_through_balancer(cluster: Any, lb: int, streams: list[str]) -> None:
    """HAProxy cuts the sessions of the leader's server, then of the replicas, then of every
    server, while 100,000 messages flow: no loss, no duplicate, every offset read once."""
    stream = streams[0]
    client = await _any(cluster)
    leader, replicas = await stream_members(client, stream)
    await client.close()
    assert leader is not None

    def shutdown(ports: list[int]) -> Any:
        async def fault() -> None:
            for port in ports:
                await asyncio.to_thread(haproxy, f"shutdown sessions server {_server(cluster, port)}")

        return fault

    work = await _lb_workload(
        cluster, lb, stream,
        [shutdown([leader]), shutdown(replicas), shutdown(list(cluster.ports))],
        [TOTAL // 5, TOTAL // 2, TOTAL * 4 // 5],
    )  # fmt: skip
    await work.run()
    fig = await work.verify("lb-shutdown-sessions", cluster.host, leader, leader=leader)
    assert_clean(fig)
    assert fig["confirmed"] == TOTAL
    assert fig["producer_recoveries"] >= 1 and fig["consumer_recoveries"] >= 1


async def test_leader_kill_through_balancer(cluster: Any, lb: int, streams: list[str]) -> None:
    """``kill -9`` of the leader's node while producing/consuming through the balancer; the
    producer ends on the new leader, the node is restarted after."""
    stream = streams[0]
    client = await _any(cluster)
    leader, _ = await stream_members(client, stream)
    await client.close()
    assert leader is not None
    victim = cluster.node_for_port(leader)

    async def kill() -> None:
        await asyncio.to_thread(cluster.kill, victim)

    work = await _lb_workload(cluster, lb, stream, [kill], [TOTAL * 3 // 10])
    try:
        await work.run()
        survivor = next(p for p in cluster.ports if p != leader)
        client = await _node(cluster, survivor)
        new_leader, _ = await stream_members(client, stream)
        await client.close()
        fig = await work.verify("lb-leader-kill-9", cluster.host, survivor, killed=victim,
                                old_leader=leader, new_leader=new_leader)  # fmt: skip
    finally:
        await asyncio.to_thread(cluster.start, victim)
    await wait_members(lambda: _any(cluster), stream, 3)
    assert_clean(fig)
    assert fig["confirmed"] == TOTAL
    prod = work.states.of("producer", RECOVERED)
    assert prod and prod[-1].node == f"localhost:{new_leader}", prod
