"""Health of the launcher's 3-node cluster: settle it after it forms, and say what is wrong when it is not.

Why this exists (RabbitMQ 4.0.5, Ra 2.14.0): the stream coordinator is a Ra cluster that RabbitMQ starts
on every node when the *first* stream of the cluster is declared. Each node records its member in Ra's
name directory, a DETS table (``coordination/<node>/names.dets``) opened with ``{auto_save, 500}``: the
record reaches the disk only once the table has been idle for 500 ms. A node ``kill -9``'ed inside that
window restarts without its coordinator member (``ra system 'coordination' running pre init for 1
registered servers``); from then on every stream it leads answers Metadata with 0x06 (stream not
available, log: ``Error locating … stream members: {error,noproc}``), including streams created later,
and no restart heals it. Ra's name directory and a server's data are not updated together (see
rabbitmq/ra pull request 458, "Be more lenient during pre init"), so this is a broker-side durability
gap, not something a client can work around.

A test environment must therefore never let a kill land in that window: :func:`settle` declares (and
deletes) one replicated stream right after the cluster forms and ``dets:sync``\\ s the directory on every
node, so the coordinator is registered on disk before any test runs. :func:`problems` reads the same
files (no broker round trip) to report a broken node at once, with the log lines that explain it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from tools._chroot import BrokerError
from tools._nodes import NodeSpec, ctl, node_pid
from tools._probe import Probe, ProbeError

__all__ = ["coordinator_registered", "problems", "settle"]

_COORDINATOR = b"rabbit_stream_coordinator"
_LOG_HINTS = ("Error locating", "running pre init", "noproc", "stream_coordinator")


def _names_dets(spec: NodeSpec) -> Path:
    return spec.root / spec.dir / "mnesia" / spec.full / "coordination" / spec.full / "names.dets"


def coordinator_registered(spec: NodeSpec) -> bool:
    """Whether the node's Ra name directory on disk holds its stream-coordinator member."""
    try:
        return _COORDINATOR in _names_dets(spec).read_bytes()
    except OSError:
        return False


def _log_lines(spec: NodeSpec, limit: int = 6) -> list[str]:
    try:
        text = (spec.logdir / f"{spec.full}.log").read_text(errors="replace")
    except OSError:
        return []
    hits = [line.strip() for line in text.splitlines() if any(h in line for h in _LOG_HINTS)]
    return hits[-limit:]


def problems(specs: Sequence[NodeSpec]) -> list[str]:
    """What is wrong with the cluster, from local files only (a few milliseconds).

    A node that is not running, or one that lost its stream-coordinator member while another node has
    one (the cluster was settled, so every node must have it). Each problem carries the node's
    relevant log lines.

    :returns: one message per problem; empty when healthy.
    """
    out: list[str] = []
    registered = {s.name: coordinator_registered(s) for s in specs}
    settled = any(registered.values())
    for spec in specs:
        if node_pid(spec) is None:
            out.append(f"node {spec.name} is not running (logs: {spec.logdir})")
        elif settled and not registered[spec.name]:
            lines = "\n    ".join(_log_lines(spec)) or "(no matching log lines)"
            out.append(
                f"node {spec.name} has no stream-coordinator member registered on disk "
                f"({_names_dets(spec)}): every stream it leads answers 0x06. Log:\n    {lines}"
            )
    return out


def _wait_replicated(p: Probe, stream: str, members: int, deadline: float) -> None:
    while True:
        meta = p.metadata([stream])[stream]
        if meta.leader is not None and len(meta.replicas) >= members - 1:
            return
        if time.monotonic() > deadline:
            raise BrokerError(f"settling the cluster: {stream} has {meta} after the time limit")
        time.sleep(0.2)


def settle(specs: Sequence[NodeSpec], timeout: float = 60.0) -> bool:
    """Start the stream coordinator on every node and put its registration on disk.

    No-op (file reads only) when every node has it already.

    :returns: whether anything was done.
    :raises BrokerError: the coordinator is still missing somewhere afterwards.
    """
    if all(coordinator_registered(s) for s in specs):
        return False
    deadline = time.monotonic() + timeout
    stream = f"__rabbitstream-settle-{uuid.uuid4().hex[:8]}"
    try:
        with Probe.connect("localhost", specs[0].stream_port) as p:
            p.handshake()
            p.create(stream, {"x-initial-cluster-size": str(len(specs))})
            try:
                _wait_replicated(p, stream, len(specs), deadline)
            finally:
                p.delete(stream)
            p.close()
    except (OSError, ProbeError) as exc:
        raise BrokerError(f"settling the cluster: {exc}") from exc
    sync = "dets:sync(ra_coordination_directory_reverse)."
    for spec in specs:
        while not coordinator_registered(spec):
            ctl(spec, ["-q", "eval", sync], check=False, timeout=30)
            if coordinator_registered(spec):
                break
            if time.monotonic() > deadline:
                raise BrokerError("settling the cluster failed:\n  " + "\n  ".join(problems(specs)))
            time.sleep(0.5)
    return True
