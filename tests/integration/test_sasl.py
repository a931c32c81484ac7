"""SASL against real brokers: PLAIN failures, mechanism selection, EXTERNAL over TLS."""

from __future__ import annotations

import ssl
import uuid
from typing import Any

import pytest
from rabbitstream._connection import Client
from rabbitstream.exceptions import (
    AuthenticationFailure,
    ConnectError,
    SASLMechanismNotOffered,
)
from rabbitstream.plugin import PluginNotFoundError, Registry, build_registry

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def registry() -> Registry:
    reg = build_registry()
    if "PLAIN" not in reg.sasl or "EXTERNAL" not in reg.sasl:
        import rabbitstream_external
        import rabbitstream_plain

        reg = build_registry(autoload=False, plugins=[rabbitstream_plain, rabbitstream_external])
    return reg


async def test_wrong_password(broker: Any, registry: Registry) -> None:
    with pytest.raises(AuthenticationFailure) as ei:
        await Client.connect(
            broker.host, broker.port, username=broker.username, password="wrong", registry=registry
        )
    assert ei.value.code == 0x08


async def test_unknown_user(broker: Any, registry: Registry) -> None:
    with pytest.raises(AuthenticationFailure):
        await Client.connect(
            broker.host,
            broker.port,
            username=f"nobody-{uuid.uuid4().hex[:6]}",
            password="x",
            registry=registry,
        )


async def test_mechanism_not_offered_on_plain_listener(broker: Any, registry: Registry) -> None:
    with pytest.raises(SASLMechanismNotOffered) as ei:
        await Client.connect(broker.host, broker.port, sasl_mechanism="EXTERNAL", registry=registry)
    assert ei.value.mechanism == "EXTERNAL"
    assert "PLAIN" in ei.value.offered
    assert "PLAIN" in str(ei.value)


async def test_anonymous(broker: Any, registry: Registry) -> None:
    """SASL ANONYMOUS (PLAIN plugin): RabbitMQ 4.x offers it by default and maps it to its
    ``anonymous_login_user`` (guest, loopback only); the connection is usable."""
    client = await Client.connect(broker.host, broker.port, sasl_mechanism="ANONYMOUS", registry=registry)
    try:
        assert "ANONYMOUS" in client.sasl_mechanisms
        assert await client.stream_exists(f"no-such-stream-{uuid.uuid4().hex[:6]}") is False
    finally:
        await client.close()


async def test_anonymous_refused_where_not_allowed(tls_broker: Any, registry: Registry) -> None:
    """The TLS node restricts ``auth_mechanisms`` to EXTERNAL and PLAIN: ANONYMOUS is not offered."""
    with pytest.raises(SASLMechanismNotOffered) as ei:
        await Client.connect(
            tls_broker.host, tls_broker.plain_port, sasl_mechanism="ANONYMOUS", registry=registry
        )
    assert "ANONYMOUS" not in ei.value.offered


async def test_reauthenticate_plain(broker: Any, registry: Registry) -> None:
    """Re-authentication after Open (token refresh's protocol step) with PLAIN on RabbitMQ 4.0 and 4.3: the
    same password is accepted and the connection stays usable; a wrong one is refused with 0x08."""
    client = await Client.connect(
        broker.host, broker.port, username=broker.username, password=broker.password, registry=registry
    )
    try:
        await client.reauthenticate(broker.password)
        assert await client.stream_exists(f"no-such-stream-{uuid.uuid4().hex[:6]}") is False
        with pytest.raises(AuthenticationFailure) as ei:
            await client.reauthenticate("wrong")
        assert ei.value.code == 0x08
    finally:
        await client.close()


async def test_mechanism_not_installed(broker: Any, registry: Registry) -> None:
    with pytest.raises(PluginNotFoundError):
        await Client.connect(broker.host, broker.port, sasl_mechanism="SCRAM-SHA-256", registry=registry)


async def test_external_over_tls(tls_broker: Any, registry: Registry) -> None:
    c = await Client.connect(
        tls_broker.host,
        tls_broker.tls_port,
        ssl_context=tls_broker.ssl_context(),
        sasl_mechanism="EXTERNAL",
        registry=registry,
    )
    try:
        assert "EXTERNAL" in c.sasl_mechanisms
        assert c.advertised_port == tls_broker.tls_port
        name = f"test-tls-{uuid.uuid4().hex[:8]}"
        await c.create_stream(name)
        meta = await c.metadata([name])
        leader = meta[name].leader
        assert leader is not None and leader.port == tls_broker.tls_port
        await c.delete_stream(name)
    finally:
        await c.close()


async def test_plain_over_tls(tls_broker: Any, registry: Registry) -> None:
    c = await Client.from_uri(
        f"rabbitmq-stream+tls://{tls_broker.username}:{tls_broker.password}@{tls_broker.host}:{tls_broker.tls_port}/",
        ssl_context=tls_broker.ssl_context(),
        registry=registry,
    )
    try:
        assert c.frame_max > 0
    finally:
        await c.close()


async def test_tls_without_client_certificate(tls_broker: Any, registry: Registry) -> None:
    with pytest.raises(ConnectError) as ei:
        await Client.connect(
            tls_broker.host,
            tls_broker.tls_port,
            ssl_context=tls_broker.ssl_context(client_cert=False),
            sasl_mechanism="EXTERNAL",
            registry=registry,
            connect_timeout=10,
        )
    msg = str(ei.value)
    assert f"{tls_broker.host}:{tls_broker.tls_port}" in msg
    assert "CERTIFICATE_REQUIRED" in msg.upper() or "certificate" in msg.lower()


async def test_tls_hostname_verified(tls_broker: Any, registry: Registry) -> None:
    # The server certificate is issued for localhost; connecting by IP without a matching SAN fails
    # unless the certificate also lists 127.0.0.1, in which case a wrong server_hostname must fail.
    with pytest.raises(ConnectError):
        await Client.connect(
            tls_broker.host,
            tls_broker.tls_port,
            ssl_context=tls_broker.ssl_context(),
            server_hostname="not-the-broker.invalid",
            sasl_mechanism="EXTERNAL",
            registry=registry,
        )


async def test_tls_untrusted_ca(tls_broker: Any, registry: Registry) -> None:
    ctx = ssl.create_default_context()  # system CAs only: the test CA is unknown
    with pytest.raises(ConnectError):
        await Client.connect(tls_broker.host, tls_broker.tls_port, ssl_context=ctx, registry=registry)
