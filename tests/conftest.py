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
"""

from __future__ import annotations

import os
import re
import ssl
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from tools import broker as _launcher  # noqa: E402
from tools.faultproxy import FaultProxy  # noqa: E402
from tools.mgmt import Management  # noqa: E402

__all__ = ["BrokerInfo", "ClusterInfo", "TlsBrokerInfo"]


@dataclass(frozen=True)
class BrokerInfo:
    """Where the main test broker listens (plain stream listener)."""

    host: str
    port: int
    amqp_port: int
    http_port: int
    username: str
    password: str
    vhost: str
    version: str
    uri: str

    def management(self) -> Management:
        """:returns: a management API helper for this node."""
        return Management(self.host, self.http_port, self.username, self.password)


@dataclass(frozen=True)
class TlsBrokerInfo:
    """The TLS node: TLS stream listener with client certificates (EXTERNAL) and a plain listener."""

    host: str
    tls_port: int
    plain_port: int
    amqp_port: int
    http_port: int
    username: str
    password: str
    vhost: str
    ca_file: str
    cert_file: str
    key_file: str
    external_username: str

    @property
    def port(self) -> int:
        """The TLS stream port (alias of :attr:`tls_port`)."""
        return self.tls_port

    def ssl_context(self, *, client_cert: bool = True) -> ssl.SSLContext:
        """A client context trusting the test CA, optionally presenting the client certificate.

        :param client_cert: load ``cert_file``/``key_file`` (needed by the broker: ``fail_if_no_peer_cert``).
        """
        ctx = ssl.create_default_context(cafile=self.ca_file)
        if client_cert:
            ctx.load_cert_chain(self.cert_file, self.key_file)
        return ctx

    def management(self) -> Management:
        """:returns: a management API helper for the TLS node."""
        return Management(self.host, self.http_port, self.username, self.password)


@dataclass(frozen=True)
class ClusterInfo:
    """A 3-node cluster (``nodes[i]`` = node name, ``ports[i]`` its stream port) and optional LB."""

    host: str
    nodes: tuple[str, ...]
    ports: tuple[int, ...]
    amqp_ports: tuple[int, ...]
    http_ports: tuple[int | None, ...]
    lb_port: int | None
    username: str
    password: str
    vhost: str
    controllable: bool

    def _check(self) -> None:
        if not self.controllable:
            pytest.skip("cluster nodes are not controlled by tools/broker.py (RABBITSTREAM_BROKER_URI set)")

    def kill(self, node: str) -> None:
        """``kill -9`` a node and wait for its VM to exit."""
        self._check()
        _launcher.node_kill(node)

    def stop(self, node: str) -> None:
        """Stop a node gracefully and wait for its VM to exit."""
        self._check()
        _launcher.node_stop(node)

    def start(self, node: str) -> None:
        """Start a node (no-op if running) and wait for its stream port."""
        self._check()
        _launcher.node_start(node)

    def node_for_port(self, port: int) -> str:
        """:returns: the node name listening on stream ``port``."""
        return self.nodes[self.ports.index(port)]


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


@pytest.fixture(scope="session")
def cluster() -> ClusterInfo:
    """The 3-node cluster with the HAProxy load balancer (mark tests using it ``slow``)."""
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
