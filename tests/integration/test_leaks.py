"""No connection is ever dropped open: every scenario runs on its own event loop, which is closed,
then the garbage is collected and any ``ResourceWarning`` (unclosed socket / transport) fails the test.

Regressions of a leak seen in CI (``ResourceWarning: unclosed transport`` reported in a later test):
after a connection cut, each publisher's recovery task reopened the producer's locator at the
same time and all but one of those connections were dropped without being closed.

And of the close/recovery race: a connection that a subscription's (or publisher's) recovery, or a
``subscribe()`` / ``send()``, finished opening after ``close()`` had closed the owner's connections
was kept (and the subscription recovered on it) instead of being closed.  The scenarios hold the
new connection in the connector until ``close()`` has run, then hand it over.
"""

from __future__ import annotations

import asyncio
import gc
import time
import warnings
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from rabbitstream import BackOffRecoveryStrategy, Client, Consumer, Producer
from rabbitstream.exceptions import ClientError, ConnectError, ConnectionClosed
from rabbitstream.recovery import IReliableEntity

from tools.faultproxy import FaultProxy

pytestmark = pytest.mark.integration


def _run_without_leaks(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run ``scenario`` on a fresh event loop (closed at the end), collect garbage, fail on a leak."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        asyncio.run(scenario())
        gc.collect()
    leaks = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert not leaks, leaks


def _wait_proxy_idle(proxy: FaultProxy, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while proxy.connection_count and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proxy.connection_count == 0, "a client connection is still open"


def test_concurrent_locator_reopen_opens_one_connection(broker: Any, fault_proxy: FaultProxy) -> None:
    """After a cut, concurrent users of the producer's locator (as recovery tasks are) share one
    new connection; none is opened and forgotten."""
    opened: list[int] = []

    async def scenario() -> None:
        p = Producer("127.0.0.1", fault_proxy.port, username=broker.username, password=broker.password)
        await p.start()
        try:
            old = await p.default_client
            fault_proxy.cut(rst=True)
            await asyncio.wait_for(old.wait_closed(), 5)
            before = fault_proxy.total_connections
            found = await asyncio.gather(*(p.stream_exists("no-such-stream-leaks") for _ in range(4)))
            assert found == [False] * 4
            opened.append(fault_proxy.total_connections - before)
        finally:
            await p.close()

    _run_without_leaks(scenario)
    assert opened == [1], f"{opened[0]} locator connections opened for one lost locator"
    _wait_proxy_idle(fault_proxy)


def test_connect_timeout_mid_handshake_closes_the_socket(broker: Any, fault_proxy: FaultProxy) -> None:
    """TCP connected, handshake stalled (blackhole): the connect timeout, and a caller cancelling
    the connect, both close the socket."""

    async def scenario() -> None:
        fault_proxy.blackhole(True)
        kw = {"username": broker.username, "password": broker.password}
        with pytest.raises(ConnectError, match="handshake timed out"):
            await Client.connect("127.0.0.1", fault_proxy.port, connect_timeout=0.3, **kw)
        with pytest.raises(asyncio.TimeoutError):
            connecting = Client.connect("127.0.0.1", fault_proxy.port, connect_timeout=10, **kw)
            await asyncio.wait_for(connecting, 0.3)

    try:
        _run_without_leaks(scenario)
    finally:
        fault_proxy.blackhole(False)
    assert fault_proxy.total_connections == 2
    _wait_proxy_idle(fault_proxy)


def test_cancelled_close_still_closes_the_socket(broker: Any, fault_proxy: FaultProxy) -> None:
    """``close()`` cancelled while waiting for the broker's CloseResponse (as ``wait_for(close(), t)``
    does when the broker is unreachable) still closes the socket."""

    async def scenario() -> None:
        c = await Client.connect(
            "127.0.0.1", fault_proxy.port, username=broker.username, password=broker.password
        )
        fault_proxy.blackhole(True)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(c.close(), 0.3)
        await asyncio.wait_for(c.wait_closed(), 2)
        assert c.is_closed

    try:
        _run_without_leaks(scenario)
    finally:
        fault_proxy.blackhole(False)
    _wait_proxy_idle(fault_proxy)


# ---------------------------------------------------------------- close() racing recovery / subscribe


class _WatchedRecovery(BackOffRecoveryStrategy):
    """Quick retries; ``finished`` is set when an attempt returns or raises (its connections are
    then either attached to a subscription/publisher or closed)."""

    def __init__(self) -> None:
        super().__init__(True, jitter=0, initial_delay=0.05, max_retries=3)
        self.finished = asyncio.Event()

    async def recover(
        self,
        entity: IReliableEntity,
        stream: str,
        error: BaseException | None,
        attempt: int,
        recovery_fun: Callable[[str], Any],
    ) -> bool:
        try:
            return await super().recover(entity, stream, error, attempt, recovery_fun)
        finally:
            self.finished.set()


def _hold_next_connection(
    owner: Any, hold: Callable[[], Coroutine[Any, Any, None]], strategy: _WatchedRecovery | None = None
) -> list[str]:
    """Wrap ``owner``'s node connector: the next non-locator connection, once open, is kept by the
    connector while ``hold()`` runs (``close()``), then handed over (``strategy.finished`` is then
    cleared: it is set again when the attempt that got this connection ends).  Returns the names held."""
    selector = owner._nodes
    real = selector._connect
    held: list[str] = []

    async def connect(host: str, port: int, name: str) -> Client:
        client: Client = await real(host, port, name)
        if name.startswith("locator-") or held:
            return client
        held.append(name)
        await hold()
        if strategy is not None:
            strategy.finished.clear()
        return client

    selector._connect = connect
    return held


async def _until(pred: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.01)


async def _delete_stream(broker: Any, stream: str) -> None:
    async with await Client.connect(
        broker.host, broker.port, username=broker.username, password=broker.password
    ) as client:
        await client.delete_stream(stream)


def test_consumer_closed_while_a_subscription_recovers(
    broker: Any, fault_proxy: FaultProxy, unique_stream_name: str
) -> None:
    """The subscription's new connection is open when ``close()`` runs: it is closed, not used."""
    strategy = _WatchedRecovery()
    states: list[str] = []

    async def scenario() -> None:
        c = Consumer(
            "127.0.0.1", fault_proxy.port, username=broker.username, password=broker.password,
            recovery_strategy=strategy, on_state_change=lambda ch: states.append(ch.state),
        )  # fmt: skip
        await c.start()
        closing: list[asyncio.Future[None]] = []

        async def close_meanwhile() -> None:
            closing.append(asyncio.ensure_future(c.close()))
            try:  # close() cancels the recovery (and waits for it) ...
                await asyncio.shield(closing[0])
            except asyncio.CancelledError:
                pass  # ... as this connection is ready: it is handed over all the same

        try:
            await c.create_stream(unique_stream_name)
            await c.subscribe(unique_stream_name, lambda _m, _ctx: None)
            _hold_next_connection(c, close_meanwhile, strategy)
            fault_proxy.cut(rst=True)
            await _until(lambda: bool(closing), 20, "the recovery opened no consuming connection")
            await asyncio.wait_for(closing[0], 10)
            await asyncio.wait_for(strategy.finished.wait(), 10)  # the attempt that got it ended
            assert "recovered" not in states
        finally:
            await c.close()

    try:
        _run_without_leaks(scenario)
    finally:
        asyncio.run(_delete_stream(broker, unique_stream_name))
    _wait_proxy_idle(fault_proxy)


def test_consumer_closed_while_subscribing(
    broker: Any, fault_proxy: FaultProxy, unique_stream_name: str
) -> None:
    """``subscribe()`` whose connection opens as ``close()`` runs: it fails, the connection is closed."""

    async def scenario() -> None:
        c = Consumer("127.0.0.1", fault_proxy.port, username=broker.username, password=broker.password)
        await c.start()
        try:
            await c.create_stream(unique_stream_name)
            _hold_next_connection(c, c.close)
            with pytest.raises(ConnectionClosed):
                await c.subscribe(unique_stream_name, lambda _m, _ctx: None)
        finally:
            await c.close()

    try:
        _run_without_leaks(scenario)
    finally:
        asyncio.run(_delete_stream(broker, unique_stream_name))
    _wait_proxy_idle(fault_proxy)


def test_producer_closed_while_declaring(
    broker: Any, fault_proxy: FaultProxy, unique_stream_name: str
) -> None:
    """The first ``send()`` to a stream, whose connection opens as ``close()`` runs: it fails, the
    connection is closed."""

    async def scenario() -> None:
        p = Producer("127.0.0.1", fault_proxy.port, username=broker.username, password=broker.password)
        await p.start()
        try:
            await p.create_stream(unique_stream_name)
            _hold_next_connection(p, p.close)
            with pytest.raises(ClientError, match="closed"):
                await p.send(unique_stream_name, b"never sent")
        finally:
            await p.close()

    try:
        _run_without_leaks(scenario)
    finally:
        asyncio.run(_delete_stream(broker, unique_stream_name))
    _wait_proxy_idle(fault_proxy)


def test_producer_closed_while_a_publisher_recovers(
    broker: Any, fault_proxy: FaultProxy, unique_stream_name: str
) -> None:
    """The publisher's new connection is open when ``close()`` has finished: it is closed, not used."""
    strategy = _WatchedRecovery()
    states: list[str] = []

    async def scenario() -> None:
        p = Producer(
            "127.0.0.1", fault_proxy.port, username=broker.username, password=broker.password,
            recovery_strategy=strategy, on_state_change=lambda ch: states.append(ch.state),
        )  # fmt: skip
        await p.start()
        closing: list[asyncio.Future[None]] = []

        async def close_meanwhile() -> None:
            closing.append(asyncio.ensure_future(p.close()))
            while not closing[0].done():  # close() cancels the recovery (twice) and waits for it ...
                try:
                    await asyncio.shield(closing[0])
                except asyncio.CancelledError:
                    pass  # ... this connection is handed over after close() has returned

        try:
            await p.create_stream(unique_stream_name)
            await p.send_wait(unique_stream_name, b"before the cut")
            _hold_next_connection(p, close_meanwhile, strategy)
            fault_proxy.cut(rst=True)
            await _until(lambda: bool(closing), 20, "the recovery opened no publishing connection")
            await asyncio.wait_for(closing[0], 10)
            await asyncio.wait_for(strategy.finished.wait(), 10)  # the attempt that got it ended
            assert "recovered" not in states
        finally:
            await p.close()

    try:
        _run_without_leaks(scenario)
    finally:
        asyncio.run(_delete_stream(broker, unique_stream_name))
    _wait_proxy_idle(fault_proxy)
