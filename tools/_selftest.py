"""Environment self-test for ``tools/broker.py selftest`` (blocking stdlib probe, no rabbitstream code)."""

from __future__ import annotations

import ssl
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

from tools._probe import Probe, ProbeError

if TYPE_CHECKING:
    from tools.broker import Environment

__all__ = ["run_all"]


def _check_node(host: str, port: int, user: str, password: str, vhost: str) -> str:
    stream = f"selftest-{uuid.uuid4().hex[:10]}"
    with Probe.connect(host, port) as p:
        props = p.handshake(user, password, vhost=vhost)
        p.create(stream)
        meta = p.metadata([stream])[stream]
        p.delete(stream)
        p.close()
    if meta.code != 1 or meta.leader != (props.get("advertised_host"), int(props.get("advertised_port", 0))):
        raise AssertionError(f"Metadata leader {meta.leader} (code {meta.code}) != advertised {props}")
    return f"{p.server_properties.get('version')} mechanisms={p.mechanisms} leader={meta.leader}"


def _tls_ctx(ca: str, cert: str | None, key: str | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=ca)
    if cert and key:
        ctx.load_cert_chain(cert, key)
    return ctx


def run_all(env: Environment) -> int:
    """Run the checks for every part of ``env``; print one line each. :returns: exit status."""
    checks: list[tuple[str, Callable[[], str]]] = [
        (
            "main: PLAIN handshake, Create/Metadata/Delete",
            lambda: _check_node(env.host, env.port, env.username, env.password, env.vhost),
        ),
    ]
    tls = env.tls
    if tls is not None:

        def external() -> str:
            stream = f"selftest-{uuid.uuid4().hex[:10]}"
            ctx = _tls_ctx(tls.ca_file, tls.cert_file, tls.key_file)
            with Probe.connect(tls.host, tls.tls_port, ssl_context=ctx, server_hostname="localhost") as p:
                props = p.handshake(mechanism="EXTERNAL")
                p.create(stream)
                meta = p.metadata([stream])[stream]
                p.delete(stream)
                ver = p.sock.version() if isinstance(p.sock, ssl.SSLSocket) else "?"
                p.close()
            assert meta.leader == ("localhost", tls.tls_port), meta
            return f"{ver} mechanisms={p.mechanisms} advertised={props.get('advertised_port')}"

        def no_cert() -> str:
            try:
                with Probe.connect(
                    tls.host,
                    tls.tls_port,
                    ssl_context=_tls_ctx(tls.ca_file, None, None),
                    server_hostname="localhost",
                ) as p:
                    p.peer_properties()
            except (ssl.SSLError, ProbeError, OSError) as exc:
                return f"rejected: {type(exc).__name__}"
            raise AssertionError("TLS without a client certificate was accepted")

        def plain_listener() -> str:
            with Probe.connect(tls.host, tls.plain_port) as p:
                p.peer_properties()
                mechs = p.sasl_handshake()
            assert "EXTERNAL" not in mechs, mechs
            return f"mechanisms={mechs}"

        checks += [
            ("tls: EXTERNAL over TLS, Create/Metadata/Delete", external),
            ("tls: no client certificate rejected", no_cert),
            ("tls: plain listener offers no EXTERNAL", plain_listener),
        ]
    cl = env.cluster
    if cl is not None:

        def replicated() -> str:
            stream = f"selftest-{uuid.uuid4().hex[:10]}"
            first = cl.nodes[0]
            with Probe.connect(cl.host, first.stream_port) as p:
                p.handshake(env.username, env.password)
                p.create(stream, {"x-initial-cluster-size": str(len(cl.nodes))})
                try:
                    seen = []
                    for node in cl.nodes:
                        with Probe.connect(cl.host, node.stream_port) as q:
                            q.handshake(env.username, env.password)
                            deadline = time.monotonic() + 10
                            while True:
                                meta = q.metadata([stream])[stream]
                                if meta.leader and len(meta.replicas) == len(cl.nodes) - 1:
                                    break
                                assert time.monotonic() < deadline, meta
                                time.sleep(0.2)
                            q.close()
                        seen.append(meta.leader)
                    assert len(set(seen)) == 1, seen
                finally:
                    p.delete(stream)
                    p.close()
            return f"leader {seen[0]} + {len(cl.nodes) - 1} replicas seen from {len(cl.nodes)} nodes"

        checks.append(("cluster: 3-replica stream Metadata from each node", replicated))
        lb_port = cl.lb_port
        if lb_port:

            def spread() -> str:
                count: Counter[str] = Counter()
                for _ in range(3 * len(cl.nodes)):
                    with Probe.connect(cl.host, lb_port) as p:
                        props = p.handshake(env.username, env.password)
                        p.close()
                    count[props.get("advertised_port", "?")] += 1
                assert len(count) == len(cl.nodes), count
                return "connections per node " + "/".join(str(v) for _, v in sorted(count.items()))

            checks.append(("lb: round-robin over every node", spread))
    failed = 0
    for name, fn in checks:
        t0 = time.monotonic()
        try:
            detail = fn()
            print(f"PASS {name} ({time.monotonic() - t0:.2f}s): {detail}")
        except Exception as exc:  # report every check
            failed += 1
            print(f"FAIL {name}: {type(exc).__name__}: {exc}")
    print(f"{len(checks) - failed}/{len(checks)} checks passed")
    return 1 if failed else 0
