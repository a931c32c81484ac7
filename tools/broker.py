#!/usr/bin/env python3
"""Launcher for real RabbitMQ Streams brokers used by the rabbitstream tests (stdlib only).

Usage (see ``docs/broker.md``)::

    python tools/broker.py up [--version 4.0|4.3] [--tls] [--cluster] [--lb] [--oauth]
    python tools/broker.py down [--all]          # stop what this launcher started (--all: every known node)
    python tools/broker.py status
    python tools/broker.py env [--version ...] [--tls] [--cluster] [--lb]   # shell export lines
    python tools/broker.py start|stop|kill|restart|pid NODE
    python tools/broker.py ctl NODE [rabbitmqctl args...]
    python tools/broker.py wipe                  # delete data of stopped launcher nodes (not the main node)
    python tools/broker.py selftest [--version ...] [--tls] [--cluster] [--lb]

Backends, in order: ``RABBITSTREAM_BROKER_URI`` (use that broker, start nothing); a Docker engine
(``docker info`` succeeds: official ``rabbitmq:<version>-management`` image); else Debian chroots built with
debootstrap (root, Debian/Ubuntu host). Nodes: ``rabbit`` (4.0 main, default layout), ``rabbit_43`` (4.3,
sid chroot), ``rabbit_tls``, ``rabbit_oauth`` (OAuth 2.0 backend, HS256 key owned by the tests),
``rabbit_c1..3``; HAProxy ``lb``. Importable: :func:`ensure_broker`.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import shutil
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

if not __package__:  # run as a script: make ``tools`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools import _chroot, _cluster, _nodes
from tools._chroot import BrokerError
from tools._nodes import HOST, LB_PORT, NODES, NodeSpec

__all__ = [
    "BrokerError",
    "ClusterEnv",
    "Environment",
    "NodeEnv",
    "OAuthEnv",
    "TlsEnv",
    "cluster_problems",
    "down",
    "ensure_broker",
    "main",
    "node_kill",
    "node_pid",
    "node_restart",
    "node_start",
    "node_stop",
]

MAIN_NODE = {"4.0": "rabbit", "4.3": "rabbit_43"}
CLUSTER = ("rabbit_c1", "rabbit_c2", "rabbit_c3")
_ALIASES = {
    "main": "rabbit",
    "tls": "rabbit_tls",
    "43": "rabbit_43",
    "oauth": "rabbit_oauth",
    "c1": "rabbit_c1",
    "c2": "rabbit_c2",
    "c3": "rabbit_c3",
}


@dataclass(frozen=True)
class NodeEnv:
    """One node's ports (``http_port`` is the management API)."""

    name: str
    stream_port: int
    amqp_port: int
    http_port: int | None


@dataclass(frozen=True)
class TlsEnv:
    """The TLS node (cert paths are host paths)."""

    host: str
    tls_port: int
    plain_port: int
    amqp_port: int
    http_port: int
    ca_file: str
    cert_file: str
    key_file: str
    external_username: str = "stream-client"


@dataclass(frozen=True)
class OAuthEnv:
    """The OAuth 2.0 node: tokens must be HS256 JWTs signed with the ASCII bytes of the key in
    ``key_file``, header ``kid`` = ``key_id``, ``aud`` containing ``resource``, scopes prefixed
    ``<resource>.``. PLAIN guest/guest (internal database) works there too."""

    host: str
    port: int
    amqp_port: int
    http_port: int
    key_file: str
    key_id: str
    resource: str


@dataclass(frozen=True)
class ClusterEnv:
    """The 3-node cluster and the optional load balancer."""

    host: str
    nodes: tuple[NodeEnv, ...]
    lb_port: int | None
    controllable: bool


@dataclass(frozen=True)
class Environment:
    """What :func:`ensure_broker` provides. ``source``: ``uri``, ``docker``, ``chroot`` or ``external``."""

    source: str
    version: str
    host: str
    port: int
    amqp_port: int
    http_port: int
    username: str = "guest"
    password: str = "guest"
    vhost: str = "/"
    tls: TlsEnv | None = None
    cluster: ClusterEnv | None = None
    oauth: OAuthEnv | None = None
    notes: list[str] = field(default_factory=list, compare=False)

    @property
    def uri(self) -> str:
        """``rabbitmq-stream://user:pass@host:port/vhost``."""
        q = urllib.parse.quote
        auth = f"{q(self.username)}:{q(self.password)}"
        return f"rabbitmq-stream://{auth}@{self.host}:{self.port}/{q(self.vhost, '')}"

    def exports(self) -> dict[str, str]:
        """Environment variables describing this environment (what ``broker.py env`` prints)."""
        out = {
            "RABBITSTREAM_BROKER_URI": self.uri,
            "RABBITSTREAM_BROKER_AMQP_PORT": str(self.amqp_port),
            "RABBITSTREAM_BROKER_HTTP_PORT": str(self.http_port),
            "RABBITSTREAM_BROKER_VERSION": self.version,
        }
        if self.tls:
            t = self.tls
            out.update(
                RABBITSTREAM_TLS_PORT=str(t.tls_port),
                RABBITSTREAM_TLS_PLAIN_PORT=str(t.plain_port),
                RABBITSTREAM_TLS_AMQP_PORT=str(t.amqp_port),
                RABBITSTREAM_TLS_HTTP_PORT=str(t.http_port),
                RABBITSTREAM_TLS_CA=t.ca_file,
                RABBITSTREAM_TLS_CERT=t.cert_file,
                RABBITSTREAM_TLS_KEY=t.key_file,
                RABBITSTREAM_TLS_USER=t.external_username,
            )
        if self.oauth:
            o = self.oauth
            out.update(
                RABBITSTREAM_OAUTH_PORT=str(o.port),
                RABBITSTREAM_OAUTH_AMQP_PORT=str(o.amqp_port),
                RABBITSTREAM_OAUTH_HTTP_PORT=str(o.http_port),
                RABBITSTREAM_OAUTH_KEY_FILE=o.key_file,
                RABBITSTREAM_OAUTH_KEY_ID=o.key_id,
                RABBITSTREAM_OAUTH_RESOURCE=o.resource,
            )
        if self.cluster:
            c = self.cluster
            out["RABBITSTREAM_CLUSTER_NODES"] = ",".join(n.name for n in c.nodes)
            out["RABBITSTREAM_CLUSTER_PORTS"] = ",".join(str(n.stream_port) for n in c.nodes)
            out["RABBITSTREAM_CLUSTER_AMQP_PORTS"] = ",".join(str(n.amqp_port) for n in c.nodes)
            out["RABBITSTREAM_CLUSTER_HTTP_PORTS"] = ",".join(str(n.http_port or "") for n in c.nodes)
            if c.lb_port:
                out["RABBITSTREAM_LB_PORT"] = str(c.lb_port)
        return out


# ------------------------------------------------------------------------------------------ helpers
@contextmanager
def _lock() -> Iterator[None]:
    """Serialise launcher actions across processes (several pytest sessions may start at once)."""
    cache = _chroot.cache_dir()
    try:
        cache.mkdir(parents=True, exist_ok=True)
        fd = os.open(cache / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:  # not root / read-only: nothing to serialise against
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _probe_version(host: str, port: int, ssl_ctx: object = None) -> str:
    from tools._probe import Probe, ProbeError

    try:
        with Probe.connect(host, port, timeout=5.0) as p:
            props = p.peer_properties()
    except (OSError, ProbeError) as exc:
        raise BrokerError(f"no RabbitMQ stream listener answers on {host}:{port}: {exc}") from exc
    return props.get("version", "unknown")


def _env_ports(name: str) -> tuple[int, ...]:
    raw = os.environ.get(name, "")
    return tuple(int(x) for x in raw.split(",") if x.strip())


def _oauth_from_env(host: str) -> OAuthEnv:
    e = os.environ
    if not e.get("RABBITSTREAM_OAUTH_PORT") or not e.get("RABBITSTREAM_OAUTH_KEY_FILE"):
        raise BrokerError(
            "RABBITSTREAM_BROKER_URI is set but no OAuth node is described (RABBITSTREAM_OAUTH_*)"
        )
    return OAuthEnv(
        host,
        int(e["RABBITSTREAM_OAUTH_PORT"]),
        int(e.get("RABBITSTREAM_OAUTH_AMQP_PORT", "0")),
        int(e.get("RABBITSTREAM_OAUTH_HTTP_PORT", "0")),
        e["RABBITSTREAM_OAUTH_KEY_FILE"],
        e.get("RABBITSTREAM_OAUTH_KEY_ID", _nodes.OAUTH_KEY_ID),
        e.get("RABBITSTREAM_OAUTH_RESOURCE", _nodes.OAUTH_RESOURCE),
    )


def _from_uri(uri: str, tls: bool, cluster: bool, lb: bool, oauth: bool = False) -> Environment:
    u = urllib.parse.urlsplit(uri)
    if u.scheme not in ("rabbitmq-stream", "rabbitmq-stream+tls") or not u.hostname:
        raise BrokerError(
            f"RABBITSTREAM_BROKER_URI must look like rabbitmq-stream://user:pass@host:5552/%2f, got {uri!r}"
        )
    host, port = u.hostname, u.port or 5552
    vhost = urllib.parse.unquote(u.path[1:]) if len(u.path) > 1 else "/"
    version = _probe_version(host, port)  # also checks that the broker answers
    tls_env = cl_env = None
    if tls:
        if not os.environ.get("RABBITSTREAM_TLS_PORT"):
            raise BrokerError(
                "RABBITSTREAM_BROKER_URI is set but no TLS node is described (RABBITSTREAM_TLS_*)"
            )
        e = os.environ
        tls_env = TlsEnv(
            host,
            int(e["RABBITSTREAM_TLS_PORT"]),
            int(e.get("RABBITSTREAM_TLS_PLAIN_PORT", "0")),
            int(e.get("RABBITSTREAM_TLS_AMQP_PORT", "0")),
            int(e.get("RABBITSTREAM_TLS_HTTP_PORT", "0")),
            e.get("RABBITSTREAM_TLS_CA", ""),
            e.get("RABBITSTREAM_TLS_CERT", ""),
            e.get("RABBITSTREAM_TLS_KEY", ""),
            e.get("RABBITSTREAM_TLS_USER", "stream-client"),
        )
    if cluster or lb:
        ports = _env_ports("RABBITSTREAM_CLUSTER_PORTS")
        if len(ports) < 3:
            raise BrokerError(
                "RABBITSTREAM_BROKER_URI is set but no cluster is described (RABBITSTREAM_CLUSTER_*)"
            )
        if lb and not os.environ.get("RABBITSTREAM_LB_PORT"):
            raise BrokerError("RABBITSTREAM_BROKER_URI is set but RABBITSTREAM_LB_PORT is not")
        names = os.environ.get("RABBITSTREAM_CLUSTER_NODES", "").split(",")
        amqp = _env_ports("RABBITSTREAM_CLUSTER_AMQP_PORTS") or (0,) * len(ports)
        http = _env_ports("RABBITSTREAM_CLUSTER_HTTP_PORTS") or (0,) * len(ports)
        nodes = tuple(
            NodeEnv(names[i] if i < len(names) else f"node{i + 1}", p, amqp[i], http[i] or None)
            for i, p in enumerate(ports)
        )
        local = all(n.name in NODES and _nodes.node_pid(NODES[n.name]) for n in nodes)
        lb_port = int(os.environ["RABBITSTREAM_LB_PORT"]) if os.environ.get("RABBITSTREAM_LB_PORT") else None
        cl_env = ClusterEnv(host, nodes, lb_port, controllable=local)
    known = next((n for n in NODES.values() if n.stream_port == port), NODES["rabbit"])  # port plan defaults
    return Environment(
        "uri",
        version,
        host,
        port,
        int(os.environ.get("RABBITSTREAM_BROKER_AMQP_PORT", known.amqp_port)),
        int(os.environ.get("RABBITSTREAM_BROKER_HTTP_PORT", known.http_port or 15672)),
        urllib.parse.unquote(u.username or "guest"),
        urllib.parse.unquote(u.password or "guest"),
        vhost,
        tls_env,
        cl_env,
        _oauth_from_env(host) if oauth else None,
    )


# ------------------------------------------------------------------------------------------ docker
_DOCKER: bool | None = None


def _docker_ok() -> bool:
    global _DOCKER
    if _DOCKER is None:
        try:
            _DOCKER = _chroot.run(["docker", "info"], timeout=20, check=False).returncode == 0
        except BrokerError:
            _DOCKER = False
    return _DOCKER


def _docker_up(version: str, tls: bool, cluster: bool, lb: bool, oauth: bool = False) -> Environment:
    if tls or cluster or lb or oauth:
        raise BrokerError(
            "--tls/--cluster/--lb/--oauth need the chroot backend (Debian host, root, no Docker engine)"
        )
    spec = NODES[MAIN_NODE[version]]
    name = f"rabbitstream-{version}"
    running = _chroot.run(["docker", "ps", "-q", "-f", f"name=^{name}$"], check=False).stdout.strip()
    if not running:
        _chroot.run(["docker", "rm", "-f", name], check=False)
        erl = f"-rabbitmq_stream advertised_host localhost advertised_port {spec.stream_port}"
        _chroot.run(
            [
                "docker",
                "run",
                "-d",
                "--name",
                name,
                "-p",
                f"{spec.stream_port}:5552",
                "-p",
                f"{spec.amqp_port}:5672",
                "-p",
                f"{spec.http_port}:15672",
                "-e",
                f"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS={erl}",
                f"rabbitmq:{version}-management",
                "sh",
                "-c",
                "rabbitmq-plugins enable --offline rabbitmq_stream rabbitmq_stream_management"
                " && exec rabbitmq-server",
            ],
            timeout=600,
        )
    _nodes.wait_port(spec.stream_port, 90.0, f"`docker logs {name}`")
    return Environment(
        "docker", version, "localhost", spec.stream_port, spec.amqp_port, spec.http_port or 15672
    )


# ------------------------------------------------------------------------------------------ chroot
def _node_env(spec: NodeSpec) -> NodeEnv:
    return NodeEnv(spec.name, spec.stream_port, spec.amqp_port, spec.http_port)


def _oauth_up() -> OAuthEnv:
    spec = NODES["rabbit_oauth"]
    _chroot.ensure_chroot(spec.suite)
    key_file = _nodes.ensure_oauth_key(spec)  # before the node starts: advanced.config holds the key
    _nodes.start_nodes([spec])
    return OAuthEnv(
        "localhost",
        spec.stream_port,
        spec.amqp_port,
        spec.http_port or 0,
        str(key_file),
        _nodes.OAUTH_KEY_ID,
        _nodes.OAUTH_RESOURCE,
    )


def _chroot_up(version: str, tls: bool, cluster: bool, lb: bool, oauth: bool = False) -> Environment:
    if version != "4.0" and (tls or cluster or lb or oauth):
        raise BrokerError("--tls/--cluster/--lb/--oauth are provided with --version 4.0 only")
    main = NODES[MAIN_NODE[version]]
    _nodes.start_nodes([main])
    tls_env = cl_env = None
    if tls:
        tspec = NODES["rabbit_tls"]
        root = _chroot.ensure_chroot(tspec.suite)
        certs = _nodes.ensure_certs(root)
        fresh = not (tspec.pidfile.parent / tspec.full).exists()  # no node data yet: no users either
        if _nodes.start_nodes([tspec]) and fresh:
            _nodes.setup_tls_user(tspec)
        tls_env = TlsEnv(
            "localhost",
            tspec.tls_port or 0,
            tspec.stream_port,
            tspec.amqp_port,
            tspec.http_port or 0,
            str(certs / "ca.pem"),
            str(certs / "client.pem"),
            str(certs / "client.key"),
        )
    if cluster or lb:
        specs = [NODES[n] for n in CLUSTER]
        _nodes.start_nodes(specs)
        _nodes.wait_cluster(specs)
        broken = _cluster.problems(specs)
        if broken:  # left behind by an earlier run: nothing in it is worth keeping
            why = "\n  ".join(broken)
            print(f"[broker] cluster state is broken, re-forming it from scratch:\n  {why}", flush=True)
            for spec in specs:
                _nodes.stop_node(spec)
            for spec in specs:
                shutil.rmtree(spec.root / spec.dir, ignore_errors=True)
            _nodes.start_nodes(specs)
            _nodes.wait_cluster(specs)
        if _cluster.settle(specs):
            print("[broker] cluster settled (stream coordinator registered on every node)", flush=True)
        if lb:
            _nodes.lb_up(specs)
        cl_env = ClusterEnv("localhost", tuple(_node_env(s) for s in specs), LB_PORT if lb else None, True)
    return Environment(
        "chroot",
        _nodes.installed_version(main.suite),
        "localhost",
        main.stream_port,
        main.amqp_port,
        main.http_port or 0,
        tls=tls_env,
        cluster=cl_env,
        oauth=_oauth_up() if oauth else None,
    )


def ensure_broker(
    version: str = "4.0", tls: bool = False, cluster: bool = False, lb: bool = False, oauth: bool = False
) -> Environment:
    """Provide the requested environment, starting what is missing (idempotent, process-safe).

    :param version: ``"4.0"`` (Debian trixie, 4.0.5) or ``"4.3"`` (Debian sid, 4.3.x).
    :param tls: also the TLS/EXTERNAL node. :param cluster: also the 3-node cluster.
    :param lb: also HAProxy in front of the cluster (implies ``cluster``).
    :param oauth: also the OAuth 2.0 node ``rabbit_oauth`` (:class:`OAuthEnv`).
    :raises BrokerError: no broker can be had (the message says why).
    """
    if version not in MAIN_NODE:
        raise BrokerError(f"unknown version {version!r} (choose one of {', '.join(MAIN_NODE)})")
    uri = os.environ.get("RABBITSTREAM_BROKER_URI")
    if uri:
        return _from_uri(uri, tls, cluster, lb, oauth)
    if _docker_ok():
        return _docker_up(version, tls, cluster, lb, oauth)
    try:
        with _lock():
            return _chroot_up(version, tls, cluster or lb, lb, oauth)
    except BrokerError as exc:
        # not root / no apt: a broker already listening on the main ports is still usable
        spec = NODES[MAIN_NODE[version]]
        if tls or cluster or lb or oauth or not _nodes.port_open(spec.stream_port):
            raise
        ver = _probe_version("localhost", spec.stream_port)
        return Environment(
            "external",
            ver,
            "localhost",
            spec.stream_port,
            spec.amqp_port,
            spec.http_port or 15672,
            notes=[str(exc)],
        )


def _resolve(name: str) -> NodeSpec:
    base = _ALIASES.get(name, name).split("@", 1)[0]
    if base not in NODES:
        raise BrokerError(f"unknown node {name!r}; known: {', '.join(NODES)}")
    return NODES[base]


def node_pid(name: str) -> int | None:
    """Pid of a running launcher node (``None`` if not running)."""
    return _nodes.node_pid(_resolve(name))


def node_start(name: str) -> None:
    """Start a node (no-op when running) and wait for its stream port."""
    with _lock():
        _nodes.start_nodes([_resolve(name)])


def node_stop(name: str) -> None:
    """``rabbitmqctl stop`` (falling back to ``kill -9``), waiting for the VM to exit."""
    _nodes.stop_node(_resolve(name))


def cluster_problems() -> list[str]:
    """What is wrong with the launcher's cluster (see :func:`tools._cluster.problems`); empty when healthy."""
    return _cluster.problems([NODES[n] for n in CLUSTER])


def node_kill(name: str) -> None:
    """``kill -9`` the node's VM and wait for it to exit."""
    _nodes.kill_node(_resolve(name))


def node_restart(name: str) -> None:
    """Stop then start a node."""
    node_stop(name)
    node_start(name)


def down(all_nodes: bool = False) -> list[str]:
    """Stop HAProxy, then the nodes this launcher started (``all_nodes``: every running known node).

    :returns: what was stopped.
    """
    with _lock():
        state = _nodes.load_state()
        stopped = []
        if (all_nodes or state.get("haproxy")) and _nodes.lb_down():
            stopped.append("haproxy")
        targets = [s for s in NODES.values() if all_nodes or s.name in state.get("started", [])]
        running = [s for s in targets if _nodes.node_pid(s)]
        threads = [threading.Thread(target=_nodes.stop_node, args=(s,)) for s in running]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stopped += [s.name for s in running]
        _nodes.forget(stopped)
        for suite in {s.suite for s in NODES.values()}:
            root = _chroot.chroot_path(suite)
            if root.exists():
                if all_nodes:
                    _nodes.stop_idle_epmd(root)
                _chroot.umount_proc(root)
        return stopped


# ------------------------------------------------------------------------------------------ CLI
def _selftest(env: Environment) -> int:
    from tools import _selftest

    return _selftest.run_all(env)


def _status() -> None:
    state = _nodes.load_state()
    print(f"cache: {_chroot.cache_dir()}   host: {HOST}")
    for spec in NODES.values():
        root = _chroot.chroot_path(spec.suite)
        if not root.exists():
            print(f"  {spec.name:<12} ({spec.suite}: no chroot)")
            continue
        pid = _nodes.node_pid(spec)
        ports = f"stream {spec.stream_port}" + (f", tls {spec.tls_port}" if spec.tls_port else "")
        ports += f", amqp {spec.amqp_port}" + (f", http {spec.http_port}" if spec.http_port else "")
        mark = "started by launcher" if spec.name in state.get("started", []) else "adopted" if pid else ""
        print(f"  {spec.name:<12} {'running pid ' + str(pid) if pid else 'stopped':<18} {ports}  {mark}")
    lb = _nodes.lb_pid()
    print(f"  {'haproxy':<12} {'running pid ' + str(lb) if lb else 'stopped':<18} 127.0.0.1:{LB_PORT}")


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(prog="broker.py", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for cmd in ("up", "env", "selftest"):
        p = sub.add_parser(cmd)
        p.add_argument("--version", choices=sorted(MAIN_NODE), default="4.0")
        p.add_argument("--tls", action="store_true", help="also the TLS/EXTERNAL node")
        p.add_argument("--cluster", action="store_true", help="also the 3-node cluster")
        p.add_argument("--lb", action="store_true", help="also HAProxy on 127.0.0.1:5560 (implies --cluster)")
        p.add_argument("--oauth", action="store_true", help="also the OAuth 2.0 node (rabbit_oauth)")
    sub.add_parser("down").add_argument("--all", action="store_true", help="also nodes not started by us")
    sub.add_parser("status")
    sub.add_parser("wipe")
    for cmd in ("start", "stop", "kill", "restart", "pid"):
        sub.add_parser(cmd).add_argument("node")
    p = sub.add_parser("ctl")
    p.add_argument("node")
    p.add_argument("args", nargs=argparse.REMAINDER)
    a = ap.parse_args(argv)
    try:
        if a.cmd in ("up", "env", "selftest"):
            t0 = time.monotonic()
            env = ensure_broker(a.version, a.tls, a.cluster or a.lb, a.lb, a.oauth)
            if a.cmd == "env":
                for k, v in env.exports().items():
                    print(f"export {k}={v}")
            elif a.cmd == "up":
                for note in env.notes:
                    print(f"[broker] note: {note}", file=sys.stderr)
                took = time.monotonic() - t0
                print(f"[broker] up ({env.source}, RabbitMQ {env.version}) in {took:.1f}s: {env.uri}")
            else:
                return _selftest(env)
        elif a.cmd == "down":
            print("stopped: " + (", ".join(down(a.all)) or "nothing"))
        elif a.cmd == "status":
            _status()
        elif a.cmd == "wipe":
            down()
            print("wiped: " + (", ".join(_nodes.wipe()) or "nothing"))
        elif a.cmd == "pid":
            pid = node_pid(a.node)
            print(pid if pid else "not running")
            return 0 if pid else 1
        elif a.cmd == "ctl":
            proc = _nodes.ctl(_resolve(a.node), a.args, check=False)
            sys.stdout.write(proc.stdout)
            sys.stderr.write(proc.stderr)
            return proc.returncode
        else:
            t0 = time.monotonic()
            {"start": node_start, "stop": node_stop, "kill": node_kill, "restart": node_restart}[a.cmd](
                a.node
            )
            print(f"[broker] {a.cmd} {a.node}: {time.monotonic() - t0:.1f}s")
    except BrokerError as exc:
        print(f"broker.py: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
