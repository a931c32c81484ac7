"""Super streams against a real broker: creation/deletion, hash / key / custom routing, every send method.

Consumer-side tests (SAC rebalancing, filtering, offsets) are in ``test_superstream_consumer.py``.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from rabbitstream import RouteType, SuperStreamCreationOption, SuperStreamProducer
from rabbitstream._connection import Client
from rabbitstream.exceptions import StreamAlreadyExists, StreamDoesNotExist
from rabbitstream.plugin import build_registry, get_registry, hookimpl
from rabbitstream.superstream import (
    NO_ROUTE_FOUND,
    HashRoutingMurmurStrategy,
    Metadata,
    NoRouteFound,
    RoutingStrategy,
)
from rabbitstream.utils import ConfirmationStatus, RawMessage

pytestmark = pytest.mark.integration

_rh = pytest.importorskip("rabbitstream_hash")
if getattr(_rh, "__file__", None) is None:  # namespace stub: the plugin is not installed
    pytest.skip("rabbitstream-hash is not importable", allow_module_level=True)
partition_index = _rh.partition_index
legacy_partition_index = _rh.legacy_partition_index


def make_producer(broker: Any, super_stream: str, **kw: Any) -> SuperStreamProducer:
    kw.setdefault("routing_extractor", lambda m: bytes(m).decode())
    return SuperStreamProducer(
        broker.host,
        broker.port,
        username=broker.username,
        password=broker.password,
        super_stream=super_stream,
        **kw,
    )


async def read_partition(
    broker: Any, stream: str, count: int, *, timeout: float = 15.0, settle: float = 0.3
) -> list[bytes]:
    """Every record of ``stream`` from the first offset (waits for ``count``, then ``settle`` s more)."""
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
        return records
    finally:
        await client.close()


class Confirms:
    def __init__(self) -> None:
        self.statuses: list[ConfirmationStatus] = []
        self._event = asyncio.Event()
        self._want = 0

    def cb(self, status: ConfirmationStatus) -> None:
        self.statuses.append(status)
        if len(self.statuses) >= self._want:
            self._event.set()

    async def wait(self, n: int, timeout: float = 20.0) -> None:
        self._want = n
        if len(self.statuses) < n:
            self._event.clear()
            await asyncio.wait_for(self._event.wait(), timeout)


@pytest.fixture
async def ss3(broker: Any, unique_stream_name: str) -> AsyncIterator[str]:
    """A super stream with 3 partitions ``<name>-0 .. -2`` (deleted afterwards)."""
    name = unique_stream_name
    async with make_producer(broker, name) as p:
        await p.create_super_stream(name, 3)
    yield name
    async with make_producer(broker, name) as p:
        await p.delete_super_stream(name, missing_ok=True)


@pytest.fixture
async def ss_keys(broker: Any, unique_stream_name: str) -> AsyncIterator[str]:
    """A super stream with binding keys k1/k2/k3 (partitions ``<name>-k1`` ...)."""
    name = unique_stream_name
    async with make_producer(broker, name) as p:
        await p.create_super_stream(name, binding_keys=["k1", "k2", "k3"])
    yield name
    async with make_producer(broker, name) as p:
        await p.delete_super_stream(name, missing_ok=True)


# ---------------------------------------------------------------- creation / deletion


async def test_create_and_delete_with_partitions(broker: Any, unique_stream_name: str, mgmt: Any) -> None:
    name = unique_stream_name
    async with make_producer(broker, name) as p:
        await p.create_super_stream(name, 3, arguments={"max-length-bytes": 20_000_000, "max-age": "1h"})
        client = await p.default_client
        assert await client.partitions(name) == [f"{name}-0", f"{name}-1", f"{name}-2"]
        assert await client.route("2", name) == [f"{name}-2"]
        assert await p.partitions() == [f"{name}-0", f"{name}-1", f"{name}-2"]
        for i in range(3):
            assert await p.stream_exists(f"{name}-{i}")
        queue = mgmt.request("GET", f"/queues/%2F/{urllib.parse.quote(name + '-1', safe='')}")
        assert queue["arguments"]["x-max-length-bytes"] == 20_000_000
        assert queue["arguments"]["x-max-age"] == "1h"
        with pytest.raises(StreamAlreadyExists):
            await p.create_super_stream(name, 3)
        await p.create_super_stream(name, 3, exists_ok=True)
        await p.delete_super_stream(name)
        for i in range(3):
            assert not await p.stream_exists(f"{name}-{i}")
        with pytest.raises(StreamDoesNotExist):
            await p.delete_super_stream(name)
        await p.delete_super_stream(name, missing_ok=True)


async def test_create_with_binding_keys_and_bad_arguments(broker: Any, unique_stream_name: str) -> None:
    name = unique_stream_name
    async with make_producer(broker, name) as p:
        with pytest.raises(ValueError):
            await p.create_super_stream(name, 3, binding_keys=["a"])
        with pytest.raises(ValueError):
            await p.create_super_stream(name, 0)
        with pytest.raises(ValueError):
            await p.create_super_stream(name, binding_keys=["a", "a"])
        await p.create_super_stream(name, binding_keys=["eu", "us", "asia"])
        try:
            client = await p.default_client
            assert await client.partitions(name) == [f"{name}-eu", f"{name}-us", f"{name}-asia"]
            assert await client.route("us", name) == [f"{name}-us"]
            assert await client.route("nowhere", name) == []
        finally:
            await p.delete_super_stream(name)


async def test_creation_option_on_start(broker: Any, unique_stream_name: str) -> None:
    name = unique_stream_name
    opt = SuperStreamCreationOption(n_partitions=2, arguments={"max-length-bytes": 10_000_000})
    try:
        async with make_producer(broker, name, super_stream_creation_option=opt) as p:
            assert await p.partitions() == [f"{name}-0", f"{name}-1"]
            await p.send_wait(b"x")
        # a second producer with the same option: exists_ok
        async with make_producer(broker, name, super_stream_creation_option=opt) as p:
            assert list(p.super_stream_metadata.partitions()) == [f"{name}-0", f"{name}-1"]
    finally:
        async with make_producer(broker, name) as p:
            await p.delete_super_stream(name, missing_ok=True)


async def test_missing_super_stream_is_a_clear_error(broker: Any, unique_stream_name: str) -> None:
    async with make_producer(broker, unique_stream_name) as p:
        with pytest.raises(StreamDoesNotExist):
            await p.send(b"x")


# ---------------------------------------------------------------- hash routing


async def test_hash_routing_lands_on_predicted_partitions(broker: Any, ss3: str) -> None:
    keys = (
        [f"hello{i}" for i in range(1, 11)]
        + [f"customer-{i}" for i in range(50)]
        + ["0", "4", "6", "9", "italy"]
    )
    confirms = Confirms()
    async with make_producer(broker, ss3) as p:
        for key in keys:
            await p.send(key.encode(), on_publish_confirm=confirms.cb)
        await confirms.wait(len(keys))
    assert all(s.is_confirmed for s in confirms.statuses)
    parts = [f"{ss3}-{i}" for i in range(3)]
    expected: dict[str, list[bytes]] = {p: [] for p in parts}
    for key in keys:
        expected[parts[partition_index(key, 3)]].append(key.encode())
    # the Java client's table (invoices-01/02/03 in Partitions order)
    java = {"hello1": 1, "hello2": 0, "hello3": 1, "hello4": 2, "hello5": 0,
            "hello6": 2, "hello7": 0, "hello8": 1, "hello9": 0, "hello10": 2}  # fmt: skip
    for key, index in java.items():
        assert key.encode() in expected[parts[index]]
    for part in parts:
        assert await read_partition(broker, part, len(expected[part])) == expected[part]


async def test_legacy_hash_routing(broker: Any, ss3: str) -> None:
    keys = ["0", "4", "6", "9", "hello", "italy"] + [f"k{i}" for i in range(20)]
    async with make_producer(broker, ss3, routing="rstream-legacy-hash") as p:
        for key in keys:
            await p.send_wait(key.encode())
    parts = [f"{ss3}-{i}" for i in range(3)]
    for i, part in enumerate(parts):
        want = [k.encode() for k in keys if legacy_partition_index(k, 3) == i]
        assert await read_partition(broker, part, len(want)) == want
    # the table of protocol.md §16: rstream index of "hello" is 1, standard is 0
    assert legacy_partition_index("hello", 3) == 1 and partition_index("hello", 3) == 0


async def test_rstream_style_strategy_objects(broker: Any, ss3: str) -> None:
    async def extractor(message: Any) -> str:
        return bytes(message).decode()

    async with make_producer(broker, ss3, routing=HashRoutingMurmurStrategy(extractor)) as p:
        for key in ("hello1", "hello2", "hello4"):
            await p.send_wait(key.encode())

    class Everywhere(RoutingStrategy):
        async def route(self, message: Any, metadata: Metadata) -> list[str]:
            return list(await metadata.partitions())  # rstream style: awaited

    async with make_producer(broker, ss3, routing=Everywhere()) as p:
        ids = await p.send_wait(b"broadcast")
        assert sorted(ids) == [f"{ss3}-0", f"{ss3}-1", f"{ss3}-2"]
    assert await read_partition(broker, f"{ss3}-1", 2) == [b"hello1", b"broadcast"]
    assert await read_partition(broker, f"{ss3}-0", 2) == [b"hello2", b"broadcast"]
    assert await read_partition(broker, f"{ss3}-2", 2) == [b"hello4", b"broadcast"]


# ---------------------------------------------------------------- key routing


async def test_key_routing_three_keys_three_partitions(broker: Any, ss_keys: str) -> None:
    """rstream sent every key to the first key's partition; each key must land on its own."""
    confirms = Confirms()
    async with make_producer(broker, ss_keys, routing=RouteType.Key) as p:
        for _ in range(3):
            for key in ("k1", "k2", "k3"):
                await p.send(f"{key}".encode(), on_publish_confirm=confirms.cb)
        await confirms.wait(9)
        assert all(s.is_confirmed for s in confirms.statuses)
    for key in ("k1", "k2", "k3"):
        assert await read_partition(broker, f"{ss_keys}-{key}", 3) == [key.encode()] * 3


async def test_no_route_raises_or_skips(broker: Any, ss_keys: str) -> None:
    async with make_producer(broker, ss_keys, routing="key") as p:
        with pytest.raises(NoRouteFound) as info:
            await p.send(b"nope")
        assert info.value.routing_key == "nope" and info.value.code == NO_ROUTE_FOUND
        with pytest.raises(NoRouteFound):
            await p.send_batch([b"k1", b"nope"])
        with pytest.raises(NoRouteFound):
            await p.send_wait(b"nope")
    confirms = Confirms()
    async with make_producer(broker, ss_keys, routing=RouteType.Key, on_no_route="skip") as p:
        await p.send(RawMessage(b"nope", publishing_id=77), on_publish_confirm=confirms.cb)
        ids = await p.send_batch([b"k2", b"nope", b"k2"], on_publish_confirm=confirms.cb)
        assert ids == {f"{ss_keys}-k2": [1, 2]}
        await confirms.wait(4)
    skipped = [s for s in confirms.statuses if not s.is_confirmed]
    assert [(s.message_id, s.response_code) for s in skipped] == [(77, NO_ROUTE_FOUND), (0, NO_ROUTE_FOUND)]
    assert await read_partition(broker, f"{ss_keys}-k2", 2) == [b"k2", b"k2"]
    assert await read_partition(broker, f"{ss_keys}-k1", 0, settle=0.3) == []


# ---------------------------------------------------------------- custom routing plugin


class _ReverseFirstStrategy:
    """Custom plugin strategy: the partition whose binding key is the key's last character."""

    name = "last-char"

    def route(self, routing_key: str, metadata: Any) -> Sequence[str]:
        wanted = f"{metadata.super_stream}-{routing_key[-1:]}"
        return [wanted] if wanted in metadata.partitions() else []


class _CustomPlugin:
    @hookimpl
    def rabbitstream_routing_strategies(self) -> list[_ReverseFirstStrategy]:
        return [_ReverseFirstStrategy()]


async def test_custom_routing_registered_in_code(broker: Any, ss3: str) -> None:
    registry = build_registry(plugins=[_CustomPlugin()])  # the installed plugins + this one
    async with make_producer(broker, ss3, routing="last-char", registry=registry) as p:
        for body in (b"a0", b"b1", b"c2", b"d2", b"e1"):
            await p.send_wait(body)
        with pytest.raises(NoRouteFound):
            await p.send(b"x9")
    assert await read_partition(broker, f"{ss3}-0", 1) == [b"a0"]
    assert await read_partition(broker, f"{ss3}-1", 2) == [b"b1", b"e1"]
    assert await read_partition(broker, f"{ss3}-2", 2) == [b"c2", b"d2"]
    # a plugin object directly, without any registry
    async with make_producer(broker, ss3, routing=_ReverseFirstStrategy()) as p:
        await p.send_wait(b"f0")
    assert (await read_partition(broker, f"{ss3}-0", 2))[-1] == b"f0"


# ---------------------------------------------------------------- send methods


async def test_every_send_method(broker: Any, ss_keys: str) -> None:
    confirms = Confirms()
    extractor = lambda m: bytes(m)[:2]  # noqa: E731 - bytes keys are decoded as UTF-8
    async with make_producer(broker, ss_keys, routing=RouteType.Key, routing_extractor=extractor) as p:
        await p.send(b"k1-send", on_publish_confirm=confirms.cb)
        ids = await p.send_batch([b"k1-b0", b"k2-b1", b"k3-b2", b"k1-b3"], on_publish_confirm=confirms.cb)
        assert ids == {f"{ss_keys}-k1": [2, 3], f"{ss_keys}-k2": [1], f"{ss_keys}-k3": [1]}
        assert await p.send_wait(b"k2-wait") == {f"{ss_keys}-k2": 2}
        await p.send_sub_entry([b"k3-s0", b"k3-s1", b"k1-s2"], on_publish_confirm=confirms.cb)
        if 1 in get_registry().compression:
            await p.send_sub_entry([b"k2-gz0", b"k2-gz1"], compression_type=1, on_publish_confirm=confirms.cb)
            extra = 1
        else:
            extra = 0
        with pytest.raises(ValueError):
            await p.send_batch([])
        with pytest.raises(ValueError):
            await p.send_sub_entry([])
        # 1 send + 4 batch + 2 sub-entry batches (one confirm per partition batch) + gzip
        await confirms.wait(7 + extra)
    assert all(s.is_confirmed for s in confirms.statuses)
    assert await read_partition(broker, f"{ss_keys}-k1", 4) == [b"k1-send", b"k1-b0", b"k1-b3", b"k1-s2"]
    want_k2 = [b"k2-b1", b"k2-wait"] + ([b"k2-gz0", b"k2-gz1"] if extra else [])
    assert await read_partition(broker, f"{ss_keys}-k2", len(want_k2)) == want_k2
    assert await read_partition(broker, f"{ss_keys}-k3", 3) == [b"k3-b2", b"k3-s0", b"k3-s1"]


async def test_deduplication_with_publisher_name(broker: Any, ss_keys: str) -> None:
    async with make_producer(broker, ss_keys, routing="key", publisher_name="dedup") as p:
        for i in range(1, 4):
            await p.send_wait(RawMessage(b"k1", publishing_id=i))
    async with make_producer(broker, ss_keys, routing="key", publisher_name="dedup") as p:
        await p.send_batch([RawMessage(b"k1", publishing_id=i) for i in range(1, 6)])  # 1..3 are duplicates
        await p.send_wait(RawMessage(b"k1", publishing_id=6))
    assert len(await read_partition(broker, f"{ss_keys}-k1", 6, settle=0.5)) == 6


async def test_bad_constructor_arguments(broker: Any) -> None:
    with pytest.raises(ValueError):
        make_producer(broker, "")
    with pytest.raises(ValueError):
        make_producer(broker, "x", on_no_route="ignore")
    with pytest.raises(TypeError):
        make_producer(broker, "x", routing=42)
    from rabbitstream.plugin import PluginNotFoundError

    with pytest.raises(PluginNotFoundError):
        make_producer(broker, "x", routing="no-such-strategy")
    p = make_producer(broker, "x")
    with pytest.raises(RuntimeError):
        await p.send(b"x")
