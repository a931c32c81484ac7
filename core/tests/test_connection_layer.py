"""The connection layer shared by producers and consumers (issue #13): pool, close policy, recovery loop.

No broker: the pool's connector and the clients are fakes; what is checked is the pool's own logic
(one locator opening at a time, one close time-out for both owners) and the recovery loop's steps.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, cast

import pytest
from rabbitstream import Consumer, Producer
from rabbitstream._connection import _pool
from rabbitstream._connection._client import Client
from rabbitstream._connection._locator import FAILED, RECOVERED, RECOVERING, Connector, StateChange
from rabbitstream._connection._pool import ConnectionOptions, ConnectionPool, NodeConnection
from rabbitstream._connection._recovery import Recovery
from rabbitstream.exceptions import ClientError, StreamDoesNotExist
from rabbitstream.recovery import BackOffRecoveryStrategy, IReliableEntity
from rabbitstream.utils import OnClosedErrorInfo


class FakeClient:
    """What the pool and the owners' close paths touch on a client."""

    def __init__(self, hang_on_close: bool = False) -> None:
        self.is_closed = False
        self.hang_on_close = hang_on_close
        self.advertised_host = "h"
        self.advertised_port = 1

    async def close(self) -> None:
        if self.hang_on_close:
            await asyncio.Event().wait()  # a broker that never answers Close
        self.is_closed = True

    async def unsubscribe(self, wire_id: int) -> None:
        await asyncio.Event().wait()

    async def delete_publisher(self, publisher_id: int) -> None:
        await asyncio.Event().wait()


def _client(fake: FakeClient) -> Client:
    return cast(Client, fake)


def _new_pool(connect: Connector) -> ConnectionPool[Any]:
    """A pool named ``t`` for ``localhost:5552`` whose nodes open connections with ``connect``."""
    pool: ConnectionPool[Any] = ConnectionPool(
        "localhost",
        5552,
        ConnectionOptions(),
        connection_name="t",
        closed_error=lambda: ClientError("closed"),
    )
    pool.nodes._connect = connect
    return pool


@pytest.fixture
def short_close(monkeypatch: pytest.MonkeyPatch) -> float:
    monkeypatch.setattr(_pool, "CLOSE_TIMEOUT", 0.2)
    return 0.2


# --------------------------------------------------------------------------- close policy


@pytest.mark.parametrize("owner", ["producer", "consumer"])
async def test_close_is_bounded_by_one_policy_for_producer_and_consumer(
    owner: str, short_close: float
) -> None:
    """A connection whose Close is never answered: ``close()`` of either owner returns after about
    CLOSE_TIMEOUT (the consumer used to wait forever; the producer had its own 3 s)."""
    entity: Producer | Consumer
    if owner == "producer":
        entity = Producer("localhost", username="guest", password="guest")
    else:
        entity = Consumer("localhost", username="guest", password="guest")
    pool = cast(ConnectionPool[Any], entity._pool)
    conn: NodeConnection[Any] = NodeConnection(_client(FakeClient(hang_on_close=True)), ("h", 1))
    conn.entries[0] = object()  # a publisher / subscription the close must give up on
    pool.connections.append(conn)
    pool.locator_client = _client(FakeClient(hang_on_close=True))
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await asyncio.wait_for(entity.close(), 5.0)
    # one bounded step per request (DeletePublisher / nothing) + per connection + the locator
    assert loop.time() - t0 < 4 * short_close + 1.0
    assert pool.connections == [] and pool.locator_client is None


# --------------------------------------------------------------------------- locator


async def test_one_locator_opening_at_a_time() -> None:
    opened: list[str] = []

    async def connect(host: str, port: int, name: str) -> Client:
        opened.append(name)
        await asyncio.sleep(0.05)
        return _client(FakeClient())

    pool: ConnectionPool[object] = _new_pool(connect)
    a, b, c = await asyncio.gather(pool.locator(), pool.locator(), pool.locator())
    assert a is b is c and opened == ["locator-t"]
    cast(FakeClient, a).is_closed = True
    with pytest.raises(ClientError, match="closed"):
        await pool.locator(refuse=True)  # closing owner: no new connection
    assert opened == ["locator-t"]


async def test_connection_reused_until_full_and_closed_owner_refused() -> None:
    async def connect(host: str, port: int, name: str) -> Client:
        return _client(FakeClient())

    pool: ConnectionPool[int] = _new_pool(connect)
    setups: list[NodeConnection[int]] = []
    first = await pool.connection([("localhost", 5552)], limit=2, closed=lambda: False, setup=setups.append)
    first.entries[0] = 0
    assert (
        await pool.connection([("localhost", 5552)], limit=2, closed=lambda: False, setup=setups.append)
        is first
    )
    first.entries[1] = 1
    second = await pool.connection([("localhost", 5552)], limit=2, closed=lambda: False, setup=setups.append)
    assert second is not first and setups == [first, second] and pool.connections == [first, second]
    with pytest.raises(ClientError):
        await pool.connection([("localhost", 5552)], limit=2, closed=lambda: True, setup=setups.append)


# --------------------------------------------------------------------------- recovery loop


class Item:
    def __init__(self, reopen: Callable[[], Awaitable[None]] | None = None) -> None:
        self.stream = "s"
        self.name: str | None = "n"
        self.client: Client | None = None
        self.closed = False
        self.failed: BaseException | None = None
        self.forgotten = False
        self._reopen = reopen

    def wanted(self) -> bool:
        return not self.closed

    def ready(self) -> bool:
        return self.client is not None

    async def reopen(self, stream: str) -> None:
        if self._reopen is not None:
            await self._reopen()
        self.client = _client(FakeClient())

    def forget(self) -> None:
        self.forgotten = True

    def give_up(self, error: BaseException) -> None:
        self.failed = error


class Entity(IReliableEntity):
    def __init__(self, exists: bool = True) -> None:
        self.exists = exists

    async def stream_exists(self, stream: str, on_close_event: bool = False) -> bool:
        return self.exists


def _recovery(
    entity: IReliableEntity, strategy: BackOffRecoveryStrategy, events: list[StateChange], closed: list[str]
) -> tuple[Recovery, set[asyncio.Task[Any]]]:
    tasks: set[asyncio.Task[Any]] = set()

    def spawn(coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        tasks.add(task)
        return task

    def on_close(info: OnClosedErrorInfo) -> None:
        closed.append(info.reason)

    recovery = Recovery(
        entity, strategy, "consumer", spawn=spawn, closing=lambda: False,
        on_close_handler=on_close, on_state_change=events.append,
    )  # fmt: skip
    return recovery, tasks


async def _settle(tasks: set[asyncio.Task[Any]]) -> None:
    while any(not t.done() for t in tasks):
        await asyncio.wait([t for t in tasks if not t.done()], timeout=2.0)


async def test_recovery_retries_then_recovers() -> None:
    calls: list[int] = []

    async def flaky() -> None:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("node down")

    events: list[StateChange] = []
    closed: list[str] = []
    strategy = BackOffRecoveryStrategy(True, 0, initial_delay=0, max_retries=5)
    recovery, tasks = _recovery(Entity(), strategy, events, closed)
    item = Item(flaky)
    recovery.lost([item], "Connection Closed", ConnectionError("lost"))
    await _settle(tasks)
    assert closed == ["Connection Closed"]
    assert [e.state for e in events] == ["disconnected", RECOVERING, RECOVERING, RECOVERING, RECOVERED]
    assert events[-1].attempt == 3 and item.failed is None


async def test_recovery_stream_gone_and_disabled() -> None:
    events: list[StateChange] = []
    strategy = BackOffRecoveryStrategy(True, 0, initial_delay=0, max_retries=5)
    recovery, tasks = _recovery(Entity(exists=False), strategy, events, [])
    item = Item()
    recovery.lost([item], "Metadata Update", ConnectionError("lost"))
    await _settle(tasks)
    assert events[-1].state == FAILED and isinstance(item.failed, StreamDoesNotExist)

    events.clear()
    recovery, tasks = _recovery(Entity(), BackOffRecoveryStrategy(False), events, [])
    item = Item()
    recovery.lost([item], "Connection Closed", ConnectionError("lost"))
    await _settle(tasks)
    assert item.forgotten and isinstance(item.failed, ConnectionError)
    assert [e.state for e in events] == ["disconnected", FAILED]
