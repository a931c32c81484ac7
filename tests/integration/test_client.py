"""``Client`` against a real broker: handshake, stream management, publish/subscribe, errors."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from rabbitstream._connection import Client
from rabbitstream.exceptions import (
    ConnectError,
    ConnectionClosed,
    FrameTooLargeError,
    LocalProtocolError,
    OffsetNotFound,
    RPCTimeout,
    StreamAlreadyExists,
    StreamDoesNotExist,
)
from rabbitstream.plugin import Registry, build_registry
from rabbitstream.protocol import Publish

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def registry() -> Registry:
    reg = build_registry()
    if "PLAIN" not in reg.sasl:
        import rabbitstream_plain

        reg = build_registry(autoload=False, plugins=[rabbitstream_plain])
    return reg


@pytest.fixture
async def client(broker: Any, registry: Registry) -> AsyncIterator[Client]:
    c = await Client.connect(
        broker.host,
        broker.port,
        username=broker.username,
        password=broker.password,
        vhost=broker.vhost,
        registry=registry,
        connection_name="rabbitstream-test-client",
    )
    try:
        yield c
    finally:
        await c.close()


@pytest.fixture
async def stream(client: Client) -> AsyncIterator[str]:
    name = f"test-client-{uuid.uuid4().hex[:12]}"
    await client.create_stream(name)
    try:
        yield name
    finally:
        if not client.is_closed:
            try:
                await client.delete_stream(name)
            except StreamDoesNotExist:
                pass


async def test_connect_and_properties(client: Client, broker: Any) -> None:
    assert client.server_properties["product"] == "RabbitMQ"
    assert client.server_properties["version"].startswith(broker.version.split(".")[0])
    assert client.frame_max == 1048576 and client.heartbeat == 60
    assert client.advertised_port == broker.port
    assert client.advertised_host
    assert client.deliver_version == 2
    assert client.server_command_versions[0x0002] == (1, 2)
    assert client.publish_version == 2
    assert "PLAIN" in client.sasl_mechanisms


async def test_negotiation(broker: Any, registry: Registry) -> None:
    c = await Client.connect(
        broker.host,
        broker.port,
        username=broker.username,
        password=broker.password,
        registry=registry,
        frame_max=65536,
        heartbeat=7,
    )
    try:
        assert (c.frame_max, c.heartbeat) == (65536, 7)
    finally:
        await c.close()
    assert c.is_closed and c.close_reason is None


async def test_create_delete_exists(client: Client) -> None:
    name = f"test-client-cd-{uuid.uuid4().hex[:8]}"
    assert not await client.stream_exists(name)
    await client.create_stream(name, {"max-length-bytes": 10_000_000, "max-age": "3600s"})
    assert await client.stream_exists(name)
    with pytest.raises(StreamAlreadyExists) as ei:
        await client.create_stream(name, {"max-length-bytes": 10_000_000, "max-age": "3600s"})
    assert ei.value.code == 0x05
    await client.delete_stream(name)
    with pytest.raises(StreamDoesNotExist):
        await client.delete_stream(name)
    assert not await client.stream_exists(name)


async def test_metadata(client: Client, stream: str, broker: Any) -> None:
    meta = await client.metadata([stream, "does-not-exist-xyz"])
    m = meta[stream]
    assert m.code == 1 and m.leader is not None
    assert (m.leader.host, m.leader.port) == (client.advertised_host, broker.port)
    assert meta["does-not-exist-xyz"].code == 0x02 and meta["does-not-exist-xyz"].leader is None


async def test_stream_stats_empty(client: Client, stream: str) -> None:
    stats = await client.stream_stats(stream)
    assert stats["first_chunk_id"] == 0 or stats["first_chunk_id"] == -1
    assert "committed_chunk_id" in stats


async def test_super_stream(client: Client) -> None:
    name = f"test-ss-{uuid.uuid4().hex[:8]}"
    parts = [f"{name}-{i}" for i in range(3)]
    await client.create_super_stream(name, parts, ["0", "1", "2"], {"max-length-bytes": 1_000_000})
    try:
        assert await client.partitions(name) == parts
        assert await client.route("1", name) == [parts[1]]
        assert await client.route("nope", name) == []
    finally:
        await client.delete_super_stream(name)
    with pytest.raises(StreamDoesNotExist):
        await client.partitions(name)


async def test_offsets(client: Client, stream: str) -> None:
    with pytest.raises(OffsetNotFound):
        await client.query_offset("ref-a", stream)
    client.store_offset("ref-a", stream, 42)
    for _ in range(50):
        try:
            if await client.query_offset("ref-a", stream) == 42:
                break
        except OffsetNotFound:
            pass
        await asyncio.sleep(0.05)
    assert await client.query_offset("ref-a", stream) == 42


async def test_publish_confirm_subscribe(client: Client, stream: str) -> None:
    confirmed: list[int] = []
    errors: list[tuple[int, int]] = []
    done = asyncio.Event()

    def on_confirm(ids: list[int]) -> None:
        confirmed.extend(ids)
        if len(confirmed) >= 5:
            done.set()

    assert await client.query_publisher_sequence("pub-a", stream) == 0
    client.set_publisher_handlers(3, on_confirm, errors.extend)
    await client.declare_publisher(3, "pub-a", stream)
    client.write(Publish(publisher_id=3, messages=tuple((i, b"msg-%d" % i) for i in range(1, 4))).encode())
    client.writelines([Publish(publisher_id=3, messages=((i, b"msg-%d" % i),)).encode() for i in (4, 5)])
    await asyncio.wait_for(done.wait(), 10)
    assert sorted(confirmed) == [1, 2, 3, 4, 5] and not errors
    assert await client.query_publisher_sequence("pub-a", stream) == 5

    records: list[tuple[int, bytes]] = []
    committed: list[int | None] = []
    got = asyncio.Event()

    def on_chunk(chunk: Any) -> None:
        committed.append(chunk.committed_chunk_id)
        records.extend((o, bytes(m)) for o, m in chunk.records())
        client.credit(1, 1)
        if len(records) >= 5:
            got.set()

    await client.subscribe(1, stream, 1, None, 2, on_chunk=on_chunk)
    await asyncio.wait_for(got.wait(), 10)
    assert [m for _, m in records] == [b"msg-%d" % i for i in range(1, 6)]
    assert [o for o, _ in records] == list(range(5))
    assert all(c is not None for c in committed)  # Deliver v2
    stats = await client.stream_stats(stream)
    assert stats["last_chunk_id"] >= 0
    await client.unsubscribe(1)
    await client.delete_publisher(3)


async def test_publish_error_unknown_publisher(client: Client, stream: str) -> None:
    errors: list[tuple[int, int]] = []
    got = asyncio.Event()

    def on_error(errs: list[tuple[int, int]]) -> None:
        errors.extend(errs)
        got.set()

    client.set_publisher_handlers(9, lambda ids: None, on_error)
    client.write(Publish(publisher_id=9, messages=((1, b"x"),)).encode())
    await asyncio.wait_for(got.wait(), 10)
    assert errors == [(1, 0x12)]


async def test_oversized_outgoing_frame(broker: Any, registry: Registry) -> None:
    c = await Client.connect(
        broker.host,
        broker.port,
        username=broker.username,
        password=broker.password,
        registry=registry,
        frame_max=8192,
    )
    try:
        assert c.frame_max == 8192
        with pytest.raises(FrameTooLargeError) as ei:
            await c.create_stream("x", {"k": "v" * 9000})
        assert isinstance(ei.value, LocalProtocolError)
        assert not await c.stream_exists("x-not-created")  # connection still usable
    finally:
        await c.close()


async def test_unknown_frame_closes_with_reason(broker: Any, registry: Registry) -> None:
    c = await Client.connect(
        broker.host, broker.port, username=broker.username, password=broker.password, registry=registry
    )
    reasons: list[BaseException | None] = []
    c.add_close_listener(reasons.append)
    c.write(bytes.fromhex("00000008 7777 0001 00000001"))
    await asyncio.wait_for(c.wait_closed(), 10)
    assert isinstance(c.close_reason, ConnectionClosed)
    assert "0x0d" in str(c.close_reason)
    assert reasons == [c.close_reason]
    with pytest.raises(ConnectionClosed):
        await c.metadata(["x"])


async def test_connect_refused(registry: Registry) -> None:
    with pytest.raises(ConnectError) as ei:
        await Client.connect("127.0.0.1", 1, registry=registry, connect_timeout=3)
    assert "127.0.0.1:1" in str(ei.value)
    assert isinstance(ei.value, ConnectionError)


async def test_from_uri(broker: Any, registry: Registry) -> None:
    uri = f"rabbitmq-stream://{broker.username}:{broker.password}@{broker.host}:{broker.port}/%2F"
    assert Client.parse_uri(uri)["vhost"] == "/"
    c = await Client.from_uri(uri, registry=registry)
    try:
        assert c.frame_max > 0
    finally:
        await c.close()


async def test_rpc_timeout_and_dead_connection(fault_proxy: Any, broker: Any, registry: Registry) -> None:
    c = await Client.connect(
        "127.0.0.1",
        fault_proxy.port,
        username=broker.username,
        password=broker.password,
        registry=registry,
        rpc_timeout=0.5,
        heartbeat=1,
    )
    try:
        assert c.heartbeat == 1
        fault_proxy.blackhole(True)
        with pytest.raises(RPCTimeout) as ei:
            await c.metadata(["x"])
        assert isinstance(ei.value, asyncio.TimeoutError)
        await asyncio.wait_for(c.wait_closed(), 6)
        assert isinstance(c.close_reason, ConnectionClosed)
        assert "dead" in str(c.close_reason)
    finally:
        await c.close()


async def test_connection_cut_fails_pending(fault_proxy: Any, broker: Any, registry: Registry) -> None:
    c = await Client.connect(
        "127.0.0.1", fault_proxy.port, username=broker.username, password=broker.password, registry=registry
    )
    fault_proxy.blackhole(True)
    task = asyncio.ensure_future(c.metadata(["x"]))
    await asyncio.sleep(0.2)
    fault_proxy.cut(rst=True)
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(task, 5)
    assert c.is_closed


async def test_resolve_offset_spec(client: Client, stream: str) -> None:
    """ResolveOffsetSpec (0x1f) exists from RabbitMQ 4.3: resolves first/last/next/offset to an offset."""
    if 0x1F not in client.server_command_versions:
        pytest.skip(f"broker {client.server_properties.get('version')} has no ResolveOffsetSpec")
    assert await client.resolve_offset_spec(stream, 1) == 0  # empty stream (4.3.6 answers 0)
    client.set_publisher_handlers(7, lambda ids: None, lambda errs: None)
    await client.declare_publisher(7, None, stream)
    client.write(Publish(publisher_id=7, messages=tuple((i, b"m%d" % i) for i in range(1, 11))).encode())
    for _ in range(100):
        if (await client.stream_stats(stream))["committed_chunk_id"] >= 0:
            break
        await asyncio.sleep(0.05)
    # the broker answers chunk-aligned offsets: the start of the chunk holding the position
    assert await client.resolve_offset_spec(stream, 1) == 0  # first
    assert await client.resolve_offset_spec(stream, 3) == 10  # next
    assert 0 <= await client.resolve_offset_spec(stream, 2) <= 9  # last: start of the last chunk
    assert 0 <= await client.resolve_offset_spec(stream, 4, 3) <= 3  # offset 3
    await client.delete_publisher(7)
