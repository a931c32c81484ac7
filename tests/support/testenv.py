"""Typed descriptions of the test brokers handed out by the fixtures in ``tests/conftest.py``.

Import these for annotations: ``from support.testenv import BrokerInfo`` then
``def test_x(broker: BrokerInfo) -> None``.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

from tools import broker as _launcher
from tools.mgmt import Management

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

    @property
    def version_info(self) -> tuple[int, ...]:
        """:returns: ``version`` as integers, e.g. ``(4, 3, 6)``."""
        return tuple(int(p) for p in self.version.split(".")[:3] if p.isdigit())

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
            import pytest

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
        """Start a node (no-op if running) and wait for its stream port.

        :raises EnvironmentError: the node came back broken (see :meth:`problems`): the test environment,
            not the client under test, is at fault, and every later cluster test would time out.
        """
        self._check()
        _launcher.node_start(node)
        broken = self.problems()
        if broken:
            raise OSError("cluster test environment broken:\n" + "\n".join(broken))

    def problems(self) -> list[str]:
        """What is wrong with the launcher's cluster, from local files (milliseconds); empty when healthy."""
        return _launcher.cluster_problems() if self.controllable else []

    def node_for_port(self, port: int) -> str:
        """:returns: the node name listening on stream ``port``."""
        return self.nodes[self.ports.index(port)]
