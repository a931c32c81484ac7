"""Shared pytest fixtures: real brokers (``tools/broker.py``), a fault proxy, management helpers.

Fixtures
--------
``broker`` (session)
    :class:`BrokerInfo` of the main node (``RABBITSTREAM_BROKER_URI`` if set, else started/adopted by
    :func:`tools.broker.ensure_broker` with ``RABBITSTREAM_TEST_BROKER_VERSION``, default ``4.0``).
    Skips the test (reason = the launcher's error) only when no broker can be had.
``tls_broker`` (session)
    :class:`TlsBrokerInfo`: TLS/EXTERNAL node (``tls_port``, ``plain_port``, cert paths, ``ssl_context()``).
``cluster`` (session)
    :class:`ClusterInfo`: 3-node cluster and the HAProxy load balancer (``lb_port``); node control helpers.
    Tests using it should be marked ``slow``.
``fault_proxy`` (function)
    :class:`tools.faultproxy.FaultProxy` forwarding to ``broker``; closed after the test.
``unique_stream_name`` (function)
    A fresh stream name (``test-<testname>-<uuid>``).
``mgmt`` (session)
    :class:`tools.mgmt.Management` bound to the main node's management HTTP API.
``_collect_garbage`` (function, autouse)
    Runs :func:`gc.collect` after the test's event loop is closed, so that a transport or socket the
    test leaked raises its ``ResourceWarning`` (an error here) in *that* test's teardown instead of
    in whichever later test the garbage collector happens to run.

Annotate with ``from support.testenv import BrokerInfo, TlsBrokerInfo, ClusterInfo`` (importing
``tests.conftest`` from a test module would load it twice).
"""

from __future__ import annotations

import gc
import os
import re
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from support.testenv import BrokerInfo, ClusterInfo, TlsBrokerInfo  # noqa: E402
from tools import broker as _launcher  # noqa: E402
from tools.faultproxy import FaultProxy  # noqa: E402
from tools.mgmt import Management  # noqa: E402

__all__ = ["BrokerInfo", "ClusterInfo", "TlsBrokerInfo"]


def _version() -> str:
    return os.environ.get("RABBITSTREAM_TEST_BROKER_VERSION", "4.0")


def _ensure(**kwargs: bool) -> _launcher.Environment:
    try:
        return _launcher.ensure_broker(version=_version(), **kwargs)
    except _launcher.BrokerError as exc:
        pytest.skip(f"no broker: {exc}")


@pytest.fixture(scope="session")
def broker() -> BrokerInfo:
    """The main broker node (see module docstring)."""
    env = _ensure()
    return BrokerInfo(
        host=env.host,
        port=env.port,
        amqp_port=env.amqp_port,
        http_port=env.http_port,
        username=env.username,
        password=env.password,
        vhost=env.vhost,
        version=env.version,
        uri=env.uri,
    )


@pytest.fixture(scope="session")
def tls_broker() -> TlsBrokerInfo:
    """The TLS/EXTERNAL node (see module docstring)."""
    env = _ensure(tls=True)
    tls = env.tls
    if tls is None:  # pragma: no cover - ensure_broker raises instead
        pytest.skip("no TLS broker")
    return TlsBrokerInfo(
        host=tls.host,
        tls_port=tls.tls_port,
        plain_port=tls.plain_port,
        amqp_port=tls.amqp_port,
        http_port=tls.http_port,
        username=env.username,
        password=env.password,
        vhost=env.vhost,
        ca_file=tls.ca_file,
        cert_file=tls.cert_file,
        key_file=tls.key_file,
        external_username=tls.external_username,
    )


@pytest.fixture
def cluster(_cluster_session: ClusterInfo) -> ClusterInfo:
    """The 3-node cluster with the HAProxy load balancer (mark tests using it ``slow``).

    Checked before each test (local files, milliseconds): a node that an earlier test left broken fails
    this test at once as an environment error, with the broker's log lines, instead of a 60 s time-out.
    """
    broken = _cluster_session.problems()
    if broken:
        pytest.fail("cluster test environment broken:\n" + "\n".join(broken), pytrace=False)
    return _cluster_session


@pytest.fixture(scope="session")
def _cluster_session() -> ClusterInfo:
    env = _ensure(cluster=True, lb=True)
    cl = env.cluster
    if cl is None:  # pragma: no cover - ensure_broker raises instead
        pytest.skip("no cluster")
    return ClusterInfo(
        host=cl.host,
        nodes=tuple(n.name for n in cl.nodes),
        ports=tuple(n.stream_port for n in cl.nodes),
        amqp_ports=tuple(n.amqp_port for n in cl.nodes),
        http_ports=tuple(n.http_port for n in cl.nodes),
        lb_port=cl.lb_port,
        username=env.username,
        password=env.password,
        vhost=env.vhost,
        controllable=env.source == "chroot",
    )


@pytest.fixture
def fault_proxy(broker: BrokerInfo) -> Iterator[FaultProxy]:
    """A :class:`~tools.faultproxy.FaultProxy` in front of ``broker`` (``proxy.port`` on 127.0.0.1)."""
    proxy = FaultProxy([(broker.host, broker.port)])
    try:
        yield proxy
    finally:
        proxy.close()


@pytest.fixture
def unique_stream_name(request: pytest.FixtureRequest) -> str:
    """A stream name unique to this test run."""
    base = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)[:60]
    return f"test-{base}-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def mgmt(broker: BrokerInfo) -> Management:
    """Management HTTP API helper for the main node (list/close connections)."""
    return broker.management()


@pytest.fixture(autouse=True)
def _collect_garbage() -> Iterator[None]:
    """Collect garbage at teardown: a leaked socket/transport fails the test that leaked it.

    Autouse fixtures are set up before pytest-asyncio's loop runner (appended to the test's fixture
    names), so this teardown runs after the test's event loop has been closed: transports it still
    held are garbage by then.  One full collection per test (~25 ms on the integration suite).
    """
    yield
    gc.collect()
