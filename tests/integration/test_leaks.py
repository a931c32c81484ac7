"""No connection is ever dropped open: every scenario runs on its own event loop, which is closed,
then the garbage is collected and any ``ResourceWarning`` (unclosed socket / transport) fails the test.

Regressions of a leak seen in CI (``ResourceWarning: unclosed transport`` reported in a later test):
after a connection cut, each publisher's recovery task reopened the producer's locator at the
same time and all but one of those connections were dropped without being closed.
"""

from __future__ import annotations

import asyncio
import gc
import time
import warnings
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from rabbitstream import Client, Producer
from rabbitstream.exceptions import ConnectError

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
