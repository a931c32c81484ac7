"""The test environment itself: brokers from ``tools/broker.py``, the fault proxy, management helpers.

Uses the stdlib probe (``tools._probe``), never the client under test.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
import time
from typing import TYPE_CHECKING

import pytest

from tools._probe import METADATA, RESPONSE, Probe, ProbeError
from tools.faultproxy import FaultProxy

if TYPE_CHECKING:
    from support.testenv import BrokerInfo, ClusterInfo, TlsBrokerInfo
    from tools.mgmt import Management

pytestmark = pytest.mark.integration


def _handshake(host: str, port: int, broker: BrokerInfo, **kw: object) -> Probe:
    p = Probe.connect(host, port)
    try:
        p.handshake(broker.username, broker.password, vhost=broker.vhost)
    except BaseException:
        p.sock.close()
        raise
    return p


def test_plain_handshake_create_metadata_delete(broker: BrokerInfo, unique_stream_name: str) -> None:
    with Probe.connect(broker.host, broker.port) as p:
        props = p.handshake(broker.username, broker.password, vhost=broker.vhost)
        assert p.server_properties.get("product") == "RabbitMQ"
        assert "PLAIN" in p.mechanisms
        assert p.tune[0] > 0
        p.create(unique_stream_name)
        try:
            meta = p.metadata([unique_stream_name])[unique_stream_name]
            assert meta.code == 1
            assert meta.leader == (props["advertised_host"], int(props["advertised_port"]))
            with pytest.raises(ProbeError) as err:
                p.create(unique_stream_name)
            assert err.value.code == 0x05  # stream already exists
        finally:
            p.delete(unique_stream_name)
        assert p.metadata([unique_stream_name])[unique_stream_name].code == 0x02  # does not exist
        p.close()


def test_broker_uri_matches_fields(broker: BrokerInfo) -> None:
    assert broker.uri.startswith("rabbitmq-stream://")
    assert f":{broker.port}/" in broker.uri


def test_tls_external(tls_broker: TlsBrokerInfo, unique_stream_name: str) -> None:
    ctx = tls_broker.ssl_context()
    with Probe.connect(
        tls_broker.host, tls_broker.tls_port, ssl_context=ctx, server_hostname="localhost"
    ) as p:
        props = p.handshake(mechanism="EXTERNAL")
        assert isinstance(p.sock, ssl.SSLSocket) and p.sock.version() == "TLSv1.3"
        assert "EXTERNAL" in p.mechanisms
        assert props["advertised_port"] == str(tls_broker.tls_port)
        p.create(unique_stream_name)
        meta = p.metadata([unique_stream_name])[unique_stream_name]
        p.delete(unique_stream_name)
        p.close()
    assert meta.leader == ("localhost", tls_broker.tls_port)


def test_tls_plain_auth_and_plain_listener(tls_broker: TlsBrokerInfo) -> None:
    with Probe.connect(
        tls_broker.host,
        tls_broker.tls_port,
        ssl_context=tls_broker.ssl_context(),
        server_hostname="localhost",
    ) as p:
        p.handshake(tls_broker.username, tls_broker.password)
        p.close()
    with Probe.connect(tls_broker.host, tls_broker.plain_port) as p:
        p.peer_properties()
        assert "EXTERNAL" not in p.sasl_handshake()


def test_tls_without_client_cert_rejected(tls_broker: TlsBrokerInfo) -> None:
    ctx = tls_broker.ssl_context(client_cert=False)
    with (
        pytest.raises((ssl.SSLError, ProbeError, ConnectionResetError)),
        Probe.connect(
            tls_broker.host, tls_broker.tls_port, ssl_context=ctx, server_hostname="localhost"
        ) as p,
    ):
        p.peer_properties()  # TLS 1.3: the alert arrives on the first read


# ------------------------------------------------------------------------------------- fault proxy
def test_proxy_forwards_and_counts(fault_proxy: FaultProxy, broker: BrokerInfo) -> None:
    p = _handshake(*fault_proxy.address, broker)
    with p:
        assert fault_proxy.connection_count == 1
        p.close()
    deadline = time.monotonic() + 5
    while fault_proxy.connection_count and time.monotonic() < deadline:
        time.sleep(0.02)
    assert fault_proxy.connection_count == 0
    assert fault_proxy.total_connections == 1


def test_proxy_cut_rst(fault_proxy: FaultProxy, broker: BrokerInfo) -> None:
    with _handshake(*fault_proxy.address, broker) as p:
        assert fault_proxy.cut(rst=True) == 1
        with pytest.raises(ConnectionResetError):
            p.metadata(["x"])
            p.read_frame()


def test_proxy_cut_fin(fault_proxy: FaultProxy, broker: BrokerInfo) -> None:
    with _handshake(*fault_proxy.address, broker) as p:
        assert fault_proxy.cut(rst=False) == 1
        with pytest.raises(ProbeError, match="EOF"):
            p.read_frame()


def test_proxy_blackhole_stalls_then_resumes(fault_proxy: FaultProxy, broker: BrokerInfo) -> None:
    with _handshake(*fault_proxy.address, broker) as p:
        fault_proxy.blackhole(True)
        p.send(METADATA, struct.pack(">Ii", 77, 0))
        p.sock.settimeout(0.5)
        with pytest.raises(socket.timeout):
            p.read_frame()
        assert fault_proxy.connection_count == 1
        fault_proxy.blackhole(False)
        p.sock.settimeout(5.0)
        key, payload = p.read_frame()
        while key != METADATA | RESPONSE:  # skip a heartbeat, if any
            key, payload = p.read_frame()
        assert struct.unpack_from(">I", payload)[0] == 77


def test_proxy_refuse_and_latency(fault_proxy: FaultProxy, broker: BrokerInfo) -> None:
    fault_proxy.refuse(True)
    with Probe.connect(*fault_proxy.address) as p, pytest.raises((ProbeError, ConnectionResetError)):
        p.peer_properties()
    fault_proxy.refuse(False)
    fault_proxy.latency(0.2)
    with _handshake(*fault_proxy.address, broker) as p:
        t0 = time.monotonic()
        p.metadata(["x"])
        assert time.monotonic() - t0 >= 0.35  # 0.2 s each way
        p.close()


async def test_proxy_cut_seen_by_asyncio_client(fault_proxy: FaultProxy) -> None:
    reader, writer = await asyncio.open_connection(*fault_proxy.address)
    try:
        body = struct.pack(">HHI", 0x11, 1, 1) + struct.pack(">I", 0)  # PeerProperties, empty map
        writer.write(struct.pack(">I", len(body)) + body)
        size = struct.unpack(">I", await reader.readexactly(4))[0]
        key = struct.unpack(">H", (await reader.readexactly(size))[:2])[0]
        assert key == 0x8011
        await asyncio.to_thread(fault_proxy.cut, True)
        with pytest.raises(ConnectionResetError):
            await asyncio.wait_for(reader.read(100), 5)
    finally:
        writer.close()


def test_mgmt_close_connection(broker: BrokerInfo, mgmt: Management, unique_stream_name: str) -> None:
    with Probe.connect(broker.host, broker.port) as p:
        p.peer_properties({"connection_name": unique_stream_name})
        mechs = p.sasl_handshake()
        assert "PLAIN" in mechs
        p.sasl_authenticate("PLAIN", f"\0{broker.username}\0{broker.password}".encode())
        p.wait_tune()
        p.open(broker.vhost)
        name = mgmt.wait_connection(client_name=unique_stream_name, timeout=15)
        mgmt.close_connection(name)
        p.sock.settimeout(10)
        with pytest.raises(ProbeError, match=r"EOF|Close"):
            while True:
                p.read_frame()


# ------------------------------------------------------------------------------------- cluster
@pytest.mark.slow
def test_cluster_metadata_three_members(cluster: ClusterInfo, unique_stream_name: str) -> None:
    with Probe.connect(cluster.host, cluster.ports[0]) as p:
        p.handshake(cluster.username, cluster.password)
        p.create(unique_stream_name, {"x-initial-cluster-size": "3"})
        try:
            deadline = time.monotonic() + 15
            while True:
                meta = p.metadata([unique_stream_name])[unique_stream_name]
                if meta.leader is not None and len(meta.replicas) == 2:
                    break
                assert time.monotonic() < deadline, meta
                time.sleep(0.2)
            members = {meta.leader, *meta.replicas}
            assert members == {("localhost", port) for port in cluster.ports}
        finally:
            p.delete(unique_stream_name)
        p.close()


@pytest.mark.slow
def test_cluster_lb_and_proxy_round_robin(cluster: ClusterInfo) -> None:
    assert cluster.lb_port is not None
    # HAProxy's round robin reaches every node, though not necessarily one per connection: its
    # weighted round robin is dynamic, and after the server state changes that earlier cluster tests
    # cause (nodes killed, back UP) it can send a few connections in a row to the same node.
    seen: list[int] = []
    while set(seen) != set(cluster.ports) and len(seen) < 100:
        with Probe.connect(cluster.host, cluster.lb_port) as p:
            seen.append(int(p.handshake(cluster.username, cluster.password)["advertised_port"]))
            p.close()
    assert set(seen) == set(cluster.ports), seen
    with FaultProxy([(cluster.host, port) for port in cluster.ports]) as proxy:
        order = []
        for _ in range(4):
            with Probe.connect(*proxy.address) as p:
                order.append(int(p.handshake(cluster.username, cluster.password)["advertised_port"]))
                p.close()
    assert order == [*cluster.ports, cluster.ports[0]]
