"""RabbitMQ nodes and HAProxy inside the launcher's chroots (helper of ``tools/broker.py``).

Every node runs in the chroot of its Debian suite. The 4.0 main node ``rabbit`` uses the package's default
layout (``/etc/rabbitmq/rabbitmq.conf``, ``/var/lib/rabbitmq/mnesia``) so a node started by hand from the
same chroot is recognised; every other node has ``/var/lib/rabbitmq/lab/<name>/`` holding its config,
``enabled_plugins``, ``mnesia/`` and ``log/``. Nodes of one chroot share its Erlang cookie and the host epmd.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools._chroot import (
    BrokerError,
    cache_dir,
    chroot_path,
    ensure_chroot,
    inroot,
    mount_proc,
    processes_in,
    run,
)

__all__ = [
    "HOST",
    "LB_PORT",
    "NODES",
    "NodeSpec",
    "OAUTH_KEY_ID",
    "OAUTH_RESOURCE",
    "ctl",
    "ensure_certs",
    "ensure_oauth_key",
    "kill_node",
    "lb_down",
    "lb_pid",
    "installed_version",
    "lb_up",
    "load_state",
    "node_pid",
    "port_open",
    "setup_tls_user",
    "start_nodes",
    "stop_idle_epmd",
    "stop_node",
    "wait_cluster",
    "wait_port",
    "wipe",
]

HOST = socket.gethostname().split(".")[0]
LAB = "var/lib/rabbitmq/lab"
LB_PORT = 5560
_LB_SOCK = "run/haproxy-stream-lb.sock"
_LB_PID = "run/haproxy-stream-lb.pid"
_LB_CFG = "var/lib/rabbitmq/lab/haproxy/haproxy.cfg"
_STREAM_PLUGINS = ("rabbitmq_stream", "rabbitmq_stream_management", "rabbitmq_management")
_CLUSTER_NAMES = ("rabbit_c1", "rabbit_c2", "rabbit_c3")


@dataclass(frozen=True)
class NodeSpec:
    """A node of the port plan."""

    name: str
    suite: str
    stream_port: int
    amqp_port: int
    http_port: int | None
    tls_port: int | None = None
    default_layout: bool = False
    plugins: tuple[str, ...] = _STREAM_PLUGINS
    conf: tuple[str, ...] = ()

    @property
    def full(self) -> str:
        """Erlang node name ``name@host``."""
        return f"{self.name}@{HOST}"

    @property
    def root(self) -> Path:
        """Host path of the node's chroot."""
        return chroot_path(self.suite)

    @property
    def dir(self) -> str:
        """Node directory relative to the chroot root."""
        return "var/lib/rabbitmq" if self.default_layout else f"{LAB}/{self.name}"

    @property
    def pidfile(self) -> Path:
        """Host path of the pid file (removed by the node on a clean stop)."""
        return self.root / self.dir / "mnesia" / f"{self.full}.pid"

    @property
    def logdir(self) -> Path:
        """Host path of the log directory."""
        return self.root / ("var/log/rabbitmq" if self.default_layout else f"{self.dir}/log")

    def ports(self) -> list[int]:
        """Every TCP port the node listens on (distribution = AMQP + 20000)."""
        return [
            p
            for p in (self.stream_port, self.tls_port, self.amqp_port, self.http_port, self.amqp_port + 20000)
            if p
        ]


def _cluster_conf(i: int) -> tuple[str, ...]:
    nodes = tuple(
        f"cluster_formation.classic_config.nodes.{j} = {n}@{HOST}" for j, n in enumerate(_CLUSTER_NAMES, 1)
    )
    return (
        f"stream.advertised_port = {5561 + i}",
        "cluster_formation.peer_discovery_backend = classic_config",
        *nodes,
    )


def _tls_conf() -> tuple[str, ...]:
    certs = f"/{LAB}/rabbit_tls/certs"
    return (
        "stream.listeners.ssl.default = 5561",
        f"ssl_options.cacertfile = {certs}/ca.pem",
        f"ssl_options.certfile = {certs}/server.pem",
        f"ssl_options.keyfile = {certs}/server.key",
        "ssl_options.verify = verify_peer",
        "ssl_options.fail_if_no_peer_cert = true",
        "auth_mechanisms.1 = EXTERNAL",
        "auth_mechanisms.2 = PLAIN",
        "ssl_cert_login_from = common_name",
    )


#: OAuth 2.0 node: the broker's ``resource_server_id`` (token ``aud`` and scope prefix) and signing key id.
OAUTH_RESOURCE = "rabbitstream"
OAUTH_KEY_ID = "rabbitstream-test"


def _oauth_conf() -> tuple[str, ...]:
    # tokens first; the internal database (guest) second so that stream set-up and the
    # "another user" re-authentication tests can still log in with PLAIN guest/guest
    return ("auth_backends.1 = rabbit_auth_backend_oauth2", "auth_backends.2 = rabbit_auth_backend_internal")


NODES: dict[str, NodeSpec] = {
    s.name: s
    for s in [
        NodeSpec("rabbit", "trixie", 5552, 5672, 15672, default_layout=True),
        NodeSpec("rabbit_43", "sid", 5570, 5680, 15680),
        NodeSpec(
            "rabbit_tls",
            "trixie",
            5553,
            5673,
            15673,
            tls_port=5561,
            plugins=(*_STREAM_PLUGINS, "rabbitmq_auth_mechanism_ssl"),
            conf=_tls_conf(),
        ),
        NodeSpec(
            "rabbit_oauth",
            "trixie",
            5554,
            5677,
            15677,
            plugins=(*_STREAM_PLUGINS, "rabbitmq_auth_backend_oauth2"),
            conf=_oauth_conf(),
        ),
        *[
            NodeSpec(f"rabbit_c{i}", "sid", 5561 + i, 5673 + i, 15673 + i, conf=_cluster_conf(i))
            for i in (1, 2, 3)
        ],
    ]
}


# ------------------------------------------------------------------------------------------ state
def _state_file() -> Path:
    return cache_dir() / "launcher-state.json"


def load_state() -> dict[str, Any]:
    """``{"started": [node names], "haproxy": bool}`` of what this launcher started."""
    try:
        data: dict[str, Any] = json.loads(_state_file().read_text())
        return data
    except (OSError, ValueError):
        return {"started": [], "haproxy": False}


def _save_state(state: dict[str, Any]) -> None:
    try:
        _state_file().write_text(json.dumps(state))
    except OSError:
        pass


def _remember(names: Sequence[str] = (), haproxy: bool | None = None) -> None:
    state = load_state()
    state["started"] = sorted(set(state.get("started", [])) | set(names))
    if haproxy is not None:
        state["haproxy"] = haproxy
    _save_state(state)


def forget(names: Sequence[str]) -> None:
    """Drop ``names`` (and ``haproxy``) from the started list."""
    state = load_state()
    state["started"] = [n for n in state.get("started", []) if n not in names]
    if "haproxy" in names:
        state["haproxy"] = False
    _save_state(state)


# ------------------------------------------------------------------------------------------ processes
def _alive(pid: int, needle: str = "beam") -> bool:
    """Running (not a zombie) and its command line contains ``needle``."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z" and needle.encode() in cmdline


def node_pid(spec: NodeSpec) -> int | None:
    """Pid of the node's VM if it runs (pid file + alive + not a zombie)."""
    try:
        pid = int(spec.pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _alive(pid) else None


def _wait_exit(pid: int, timeout: float, needle: str = "beam") -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid, needle):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_port(port: int, timeout: float, where: str) -> None:
    """Poll a TCP connect every 0.25 s. :raises BrokerError: after ``timeout``, pointing at ``where``."""
    deadline = time.monotonic() + timeout
    while not port_open(port):
        if time.monotonic() > deadline:
            raise BrokerError(f"nothing listens on port {port} after {timeout:.0f}s; see {where}")
        time.sleep(0.25)


def _plugins_dir(root: Path) -> str:
    found = sorted(root.glob("usr/lib/rabbitmq/lib/rabbitmq_server-*/plugins"))
    return "/" + str(found[-1].relative_to(root)) if found else ""


def installed_version(suite: str) -> str:
    """RabbitMQ version installed in the chroot of ``suite`` (e.g. ``4.0.5``)."""
    found = sorted(chroot_path(suite).glob("usr/lib/rabbitmq/lib/rabbitmq_server-*"))
    return found[-1].name.split("-", 1)[1] if found else "unknown"


def ctl(
    spec: NodeSpec, args: Sequence[str], *, check: bool = True, timeout: float = 120.0
) -> subprocess.CompletedProcess[str]:
    """``rabbitmqctl -n <node> args`` inside the node's chroot (with ``RABBITMQ_PLUGINS_DIR``)."""
    mount_proc(spec.root)
    env = {"RABBITMQ_PLUGINS_DIR": _plugins_dir(spec.root)}
    return inroot(spec.root, ["rabbitmqctl", "-n", spec.full, *args], env=env, check=check, timeout=timeout)


# ------------------------------------------------------------------------------------------ nodes
def _write_node_files(spec: NodeSpec) -> dict[str, str]:
    """Create the node directory and config; :returns: the environment for ``rabbitmq-server``."""
    if spec.default_layout:
        return {}
    base = spec.root / spec.dir
    for sub in ("mnesia", "log"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    lines = [
        f"listeners.tcp.default = {spec.amqp_port}",
        f"stream.listeners.tcp.default = {spec.stream_port}",
        "stream.advertised_host = localhost",
        "loopback_users = none",
        *([f"management.tcp.port = {spec.http_port}"] if spec.http_port else []),
        *spec.conf,
    ]
    (base / "rabbitmq.conf").write_text("\n".join(lines) + "\n")
    (base / "enabled_plugins").write_text("[" + ",".join(spec.plugins) + "].\n")
    inroot(spec.root, ["chown", "-R", "rabbitmq:rabbitmq", "/" + spec.dir])
    d = "/" + spec.dir
    return {
        "RABBITMQ_NODENAME": spec.full,
        "RABBITMQ_NODE_PORT": str(spec.amqp_port),
        "RABBITMQ_MNESIA_BASE": f"{d}/mnesia",
        "RABBITMQ_LOG_BASE": f"{d}/log",
        "RABBITMQ_CONFIG_FILE": f"{d}/rabbitmq.conf",
        "RABBITMQ_ADVANCED_CONFIG_FILE": f"{d}/advanced.config",
        "RABBITMQ_ENABLED_PLUGINS_FILE": f"{d}/enabled_plugins",
    }


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def _ports_taken(spec: NodeSpec, grace: float = 10.0) -> list[int]:
    """The node's ports still bound after ``grace`` seconds of polling (a VM just killed releases its
    sockets only when its last thread has exited, after its main thread already shows as a zombie)."""
    deadline = time.monotonic() + grace
    while True:
        taken = [p for p in spec.ports() if not _port_free(p)]
        if not taken or time.monotonic() > deadline:
            return taken
        time.sleep(0.1)


def start_nodes(specs: Sequence[NodeSpec], timeout: float = 60.0) -> list[str]:
    """Start the nodes that are not running, in parallel, and wait for their stream ports.

    :returns: names of the nodes started now.
    :raises BrokerError: a port is taken by something else, or a node does not come up.
    """
    todo = []
    for spec in specs:
        ensure_chroot(spec.suite)
        mount_proc(spec.root)
        if node_pid(spec) is None:
            todo.append(spec)
    for spec in todo:
        taken = _ports_taken(spec)
        if taken:
            raise BrokerError(
                f"port(s) {', '.join(map(str, taken))} needed by node {spec.name} are taken by "
                "another process (a broker not started from this launcher's chroot?)"
            )
    for spec in todo:
        env = _write_node_files(spec)
        inroot(spec.root, ["rabbitmq-server", "-detached"], env=env, timeout=60)
    for spec in todo:
        wait_port(spec.stream_port, timeout, f"the logs in {spec.logdir}")
    if todo:
        _remember([s.name for s in todo])
    return [s.name for s in todo]


def stop_node(spec: NodeSpec, timeout: float = 30.0) -> None:
    """``rabbitmqctl stop`` and wait for the VM to exit; ``kill -9`` if it does not."""
    pid = node_pid(spec)
    if pid is None:
        return
    ctl(spec, ["-q", "stop"], check=False, timeout=timeout)
    if not _wait_exit(pid, timeout):
        kill_node(spec)


def kill_node(spec: NodeSpec, timeout: float = 15.0) -> None:
    """``kill -9`` the node's VM and wait until it is gone (zombies count as gone)."""
    pid = node_pid(spec)
    if pid is None:
        return
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    if not _wait_exit(pid, timeout):
        raise BrokerError(f"node {spec.name} (pid {pid}) did not exit after kill -9")
    _ports_taken(spec)  # gone for good: its sockets are released too


def wait_cluster(specs: Sequence[NodeSpec], timeout: float = 90.0) -> None:
    """Wait until ``cluster_status`` of the first node lists every node as running."""
    want = {s.full for s in specs}
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        proc = ctl(specs[0], ["-q", "--formatter", "json", "cluster_status"], check=False, timeout=30)
        try:
            running = set(json.loads(proc.stdout).get("running_nodes", []))
        except ValueError:
            running, last = set(), proc.stderr.strip()[-300:]
        if want <= running:
            return
        if time.monotonic() > deadline:
            raise BrokerError(
                f"cluster not formed after {timeout:.0f}s (running: {sorted(running)}) {last}; "
                f"see {specs[0].logdir}"
            )
        time.sleep(0.5)


# ------------------------------------------------------------------------------------------ TLS
def ensure_certs(root: Path) -> Path:
    """Generate CA, server (CN=localhost + SAN) and client (CN=stream-client) certificates once.

    :returns: host path of the certificate directory.
    """
    d = root / LAB / "rabbit_tls" / "certs"
    if (d / "client.key").exists():
        return d
    if shutil.which("openssl") is None:
        raise BrokerError("openssl not found on the host (apt-get install openssl)")
    d.mkdir(parents=True, exist_ok=True)
    days = ["-days", "3650"]

    def ssl(*args: str) -> None:
        run(["openssl", *args], timeout=60)

    ssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        f"{d}/ca.key",
        "-out",
        f"{d}/ca.pem",
        *days,
        "-subj",
        "/CN=test-ca",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    )
    for name, subj, ext in (
        (
            "server",
            "/CN=localhost",
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n",
        ),
        ("client", "/CN=stream-client/O=test", "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n"),
    ):
        (d / f"{name}.ext").write_text(ext)
        ssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            f"{d}/{name}.key",
            "-out",
            f"{d}/{name}.csr",
            "-subj",
            subj,
        )
        ssl(
            "x509",
            "-req",
            "-in",
            f"{d}/{name}.csr",
            "-CA",
            f"{d}/ca.pem",
            "-CAkey",
            f"{d}/ca.key",
            "-CAcreateserial",
            "-out",
            f"{d}/{name}.pem",
            *days,
            "-extfile",
            f"{d}/{name}.ext",
        )
    inroot(root, ["chown", "-R", "rabbitmq:rabbitmq", f"/{LAB}/rabbit_tls"])
    return d


def setup_tls_user(spec: NodeSpec) -> None:
    """User ``stream-client`` (the client cert's CN) without password, full permissions on ``/``."""
    proc = ctl(spec, ["-q", "add_user", "stream-client", secrets.token_hex(16)], check=False)
    if proc.returncode != 0 and "already exists" not in proc.stderr + proc.stdout:
        raise BrokerError(f"add_user stream-client failed: {proc.stderr.strip()[-300:]}")
    ctl(spec, ["-q", "clear_password", "stream-client"])
    ctl(spec, ["-q", "set_permissions", "-p", "/", "stream-client", ".*", ".*", ".*"])


# ------------------------------------------------------------------------------------------ OAuth 2.0
def ensure_oauth_key(spec: NodeSpec) -> Path:
    """Create (once) the node's HS256 signing key and its ``advanced.config``.

    The key is a random hex string; the broker uses its ASCII bytes as the HMAC key (``kty`` ``MAC``),
    and so must the token issuer of the tests.

    :returns: host path of the key file (readable by the tests).
    """
    base = spec.root / spec.dir
    base.mkdir(parents=True, exist_ok=True)
    key_file = base / "signing-key.txt"
    if not key_file.exists():
        key_file.write_text(secrets.token_hex(32) + "\n")
    key = key_file.read_text().strip()
    (base / "advanced.config").write_text(
        "[{rabbitmq_auth_backend_oauth2, [\n"
        f'  {{resource_server_id, <<"{OAUTH_RESOURCE}">>}},\n'
        "  {key_config, [\n"
        f'    {{default_key, <<"{OAUTH_KEY_ID}">>}},\n'
        f'    {{signing_keys, #{{<<"{OAUTH_KEY_ID}">> => {{map, #{{<<"kty">> => <<"MAC">>, '
        f'<<"alg">> => <<"HS256">>, <<"value">> => <<"{key}">>}}}}}}}}\n'
        "  ]}\n]}].\n"
    )
    inroot(spec.root, ["chown", "-R", "rabbitmq:rabbitmq", "/" + spec.dir])
    return key_file


# ------------------------------------------------------------------------------------------ HAProxy
def lb_pid() -> int | None:
    """Pid of the launcher's HAProxy, if it runs."""
    try:
        pid = int((chroot_path("trixie") / _LB_PID).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if _alive(pid, "haproxy") else None


def _lb_stat(root: Path) -> list[str]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(2.0)
        s.connect(str(root / _LB_SOCK))
        s.sendall(b"show stat\n")
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace").splitlines()


def lb_up(specs: Sequence[NodeSpec], timeout: float = 30.0) -> None:
    """Install (once) and start HAProxy on 127.0.0.1:5560, then wait until every backend is UP."""
    root = ensure_chroot("trixie")
    if not (root / "usr/sbin/haproxy").exists():
        from tools._chroot import apt_install

        apt_install(root, "trixie", ["haproxy"])
    if lb_pid() is None:
        if not _port_free(LB_PORT):
            raise BrokerError(f"port {LB_PORT} (load balancer) is taken by another process")
        servers = "\n".join(
            f"    server c{i} 127.0.0.1:{s.stream_port} check inter 1s fall 2 rise 1"
            for i, s in enumerate(specs, 1)
        )
        cfg = root / _LB_CFG
        cfg.parent.mkdir(parents=True, exist_ok=True)
        cfg.write_text(
            f"global\n    stats socket /{_LB_SOCK} mode 600 level admin\n"
            "defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 5m\n    timeout server 5m\n"
            "    retries 2\n    option redispatch\n"
            f"frontend stream_lb\n    bind 127.0.0.1:{LB_PORT}\n    default_backend stream_nodes\n"
            f"backend stream_nodes\n    balance roundrobin\n{servers}\n"
        )
        inroot(root, ["haproxy", "-D", "-f", f"/{_LB_CFG}", "-p", f"/{_LB_PID}"], timeout=30)
        _remember(haproxy=True)
    deadline = time.monotonic() + timeout
    while True:
        try:
            up = [ln for ln in _lb_stat(root) if ln.startswith("stream_nodes,c") and ",UP," in ln]
        except OSError:
            up = []
        if len(up) >= len(specs):
            return
        if time.monotonic() > deadline:
            raise BrokerError(f"HAProxy backends not all UP after {timeout:.0f}s ({len(up)}/{len(specs)})")
        time.sleep(0.25)


def lb_down() -> bool:
    """Stop the launcher's HAProxy. :returns: whether it was running."""
    pid = lb_pid()
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    if not _wait_exit(pid, 10.0, "haproxy"):
        os.kill(pid, signal.SIGKILL)
        _wait_exit(pid, 5.0, "haproxy")
    (chroot_path("trixie") / _LB_PID).unlink(missing_ok=True)
    return True


def stop_idle_epmd(root: Path) -> None:
    """Terminate an ``epmd`` left in ``root`` when no Erlang VM runs there any more."""
    pids = processes_in(root)
    if any(_alive(p, "beam") for p in pids):
        return
    for pid in pids:
        if _alive(pid, "epmd"):
            os.kill(pid, signal.SIGTERM)
            _wait_exit(pid, 5.0, "epmd")


def wipe() -> list[str]:
    """Delete the data directories of stopped launcher nodes (never the main node's default layout).

    :returns: the node directories removed.
    """
    removed = []
    for spec in NODES.values():
        base = spec.root / spec.dir
        if spec.default_layout or not base.exists() or node_pid(spec):
            continue
        shutil.rmtree(base)
        removed.append(spec.name)
    return removed
