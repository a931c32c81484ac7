"""Helpers of the cluster, load-balancer and fault tests (``test_cluster*``, ``test_faults*``,
``test_load_balancer*``): a publish/consume workload with fault injection, figures, report lines.

Every scenario prints one line (``pytest -s`` shows it) and appends it as a JSON line to
``.cache/cluster-report.txt`` at the repository root.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rabbitstream import Client, ConsumerOffsetSpecification, OffsetType, Producer
from rabbitstream._connection import DISCONNECTED, FAILED, RECOVERED, StateChange
from rabbitstream._consumer import Consumer
from rabbitstream.recovery import BackOffRecoveryStrategy

__all__ = [
    "REPORT",
    "StateLog",
    "Workload",
    "haproxy",
    "read_all",
    "recovery",
    "report",
    "stream_members",
    "until",
    "wait_members",
]

REPORT = Path(__file__).resolve().parents[2] / ".cache" / "cluster-report.txt"


async def until(pred: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Poll ``pred`` until true or ``timeout`` seconds passed. :return: whether it became true."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(interval)
    return True


def recovery() -> BackOffRecoveryStrategy:
    """Quick back-off for tests: 0.2 s, 0.4 s, ... capped at 2 s, small jitter, 40 attempts."""
    return BackOffRecoveryStrategy(True, jitter=0.1, initial_delay=0.2, max_delay=2.0, max_retries=40)


def report(scenario: str, **figures: Any) -> dict[str, Any]:
    """Print one figure line and append it to :data:`REPORT` as JSON."""
    line = {"scenario": scenario, **figures}
    text = " ".join(f"{k}={v}" for k, v in line.items())
    print(f"\n[cluster-report] {text}")
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    with REPORT.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(line, default=str) + "\n")
    return line


class StateLog:
    """Collects :class:`StateChange` events (``on_state_change=log.append``)."""

    def __init__(self) -> None:
        self.events: list[StateChange] = []
        self.watchers: list[Callable[[StateChange], None]] = []

    def append(self, change: StateChange) -> None:
        self.events.append(change)
        for watch in self.watchers:
            watch(change)

    def of(self, entity: str, state: str) -> list[StateChange]:
        return [e for e in self.events if e.entity == entity and e.state == state]

    def recovery_after(self, entity: str, t_fault: float, t_next: float = float("inf")) -> float | None:
        """Seconds from ``t_fault`` to the last ``recovered`` event of ``entity`` that follows the
        first ``disconnected`` after ``t_fault`` and precedes ``t_next`` (``None``: not disturbed)."""
        lost = [e.at for e in self.of(entity, DISCONNECTED) if e.at >= t_fault - 0.05]
        if not lost:
            return None
        back = [e.at for e in self.of(entity, RECOVERED) if lost[0] <= e.at < t_next]
        return None if not back else round(max(back) - t_fault, 3)


async def stream_members(client: Client, stream: str) -> tuple[int | None, list[int]]:
    """``(leader port, replica ports)`` from Metadata."""
    meta = (await client.metadata([stream]))[stream]
    leader = None if meta.leader is None else int(meta.leader.port)
    return leader, sorted(int(b.port) for b in meta.replicas)


async def wait_members(client_factory: Callable[[], Awaitable[Client]], stream: str, n: int,
                       timeout: float = 60.0) -> float:  # fmt: skip
    """Poll Metadata until ``stream`` has a leader and ``n - 1`` replicas. :return: seconds waited."""
    t0 = time.monotonic()
    while True:
        try:
            client = await client_factory()
            try:
                leader, replicas = await stream_members(client, stream)
            finally:
                await client.close()
            if leader is not None and len(replicas) >= n - 1:
                return round(time.monotonic() - t0, 2)
        except Exception:  # a node still booting
            pass
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"{stream} did not get {n} members within {timeout} s")
        await asyncio.sleep(0.25)


async def read_all(host: str, port: int, stream: str, minimum: int, *, user: str, password: str,
                   timeout: float = 60.0, settle: float = 0.5) -> list[tuple[int, bytes]]:  # fmt: skip
    """Every ``(offset, body)`` of ``stream`` (at least ``minimum``, then quiet for ``settle`` s)."""
    client = await Client.connect(host, port, username=user, password=password)
    records: list[tuple[int, bytes]] = []
    last = [time.monotonic()]

    def on_chunk(chunk: Any) -> None:
        records.extend((off, bytes(data)) for off, data in chunk.records())
        last[0] = time.monotonic()
        client.credit(0, 1)

    try:
        await client.subscribe(0, stream, 1, None, 10, None, on_chunk=on_chunk)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(records) >= minimum and time.monotonic() - last[0] > settle:
                break
            await asyncio.sleep(0.05)
        return list(records)
    finally:
        await client.close()


def haproxy(command: str) -> str:
    """Send one command to the launcher's HAProxy admin socket (e.g. ``shutdown sessions server
    stream_nodes/c1``)."""
    from tools._chroot import chroot_path

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(3.0)
        s.connect(str(chroot_path("trixie") / "run/haproxy-stream-lb.sock"))
        s.sendall(command.encode() + b"\n")
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


Fault = Callable[[], Awaitable[Any]]


@dataclass
class Workload:
    """A named producer publishing ``total`` messages while a consumer reads the stream from the
    start; ``faults[i]`` runs (as a task) when message ``at[i]`` is sent.

    Both use recovery with :func:`recovery` and log their :class:`StateChange` events.
    """

    host: str
    port: int
    stream: str
    total: int
    user: str
    password: str
    at: Sequence[int] = ()
    faults: Sequence[Fault] = ()
    pace: tuple[int, float] | None = None  # (every n messages, sleep s): spread the run in time
    producer_kw: dict[str, Any] = field(default_factory=dict)
    consumer_kw: dict[str, Any] = field(default_factory=dict)
    states: StateLog = field(default_factory=StateLog)
    fault_times: list[float] = field(default_factory=list)
    confirmed: set[int] = field(default_factory=set)
    confirm_dups: int = 0
    failed: list[tuple[int, int]] = field(default_factory=list)
    seen: list[tuple[int, bytes]] = field(default_factory=list)
    max_confirm_gap: float = 0.0
    elapsed: float = 0.0
    _last_confirm: float = 0.0

    def _on_confirm(self, status: Any) -> None:
        if status.is_confirmed:
            if status.message_id in self.confirmed:
                self.confirm_dups += 1
            self.confirmed.add(status.message_id)
            now = time.monotonic()
            self.max_confirm_gap = max(self.max_confirm_gap, now - self._last_confirm)
            self._last_confirm = now
        else:
            self.failed.append((status.message_id, status.response_code))

    def _on_message(self, message: Any, ctx: Any) -> None:
        self.seen.append((ctx.offset, bytes(message)))

    async def _run_fault(self, fault: Fault) -> None:
        self.fault_times.append(time.monotonic())
        await fault()

    async def run(self, *, confirm_timeout: float = 180.0) -> None:
        kw: dict[str, Any] = {"username": self.user, "password": self.password}
        producer = Producer(self.host, self.port, recovery_strategy=recovery(),
                            on_state_change=self.states.append, max_unconfirmed=5_000, **kw,
                            **self.producer_kw)  # fmt: skip
        consumer = Consumer(self.host, self.port, recovery_strategy=recovery(),
                            on_state_change=self.states.append, **kw, **self.consumer_kw)  # fmt: skip
        fault_at = dict(zip(self.at, self.faults, strict=True))
        tasks: list[asyncio.Task[None]] = []
        pace = self.pace
        t0 = self._last_confirm = time.monotonic()
        async with producer, consumer:
            await consumer.subscribe(
                self.stream,
                self._on_message,
                offset_specification=ConsumerOffsetSpecification(OffsetType.FIRST),
                initial_credit=20,
            )
            for i in range(self.total):
                await producer.send(self.stream, b"m-%07d" % i, publisher_name="cluster-test",
                                    on_publish_confirm=self._on_confirm)  # fmt: skip
                if pace is not None and i % pace[0] == pace[0] - 1:
                    await asyncio.sleep(pace[1])
                fault = fault_at.get(i)
                if fault is not None:
                    tasks.append(asyncio.ensure_future(self._run_fault(fault)))
            await producer.flush()
            await until(lambda: len(self.confirmed) + len(self.failed) >= self.total, confirm_timeout)
            self.elapsed = time.monotonic() - t0
            # let the consumer catch up with everything confirmed
            await until(lambda: len(self.seen) >= len(self.confirmed), 60)
            await asyncio.sleep(0.5)
            if tasks:
                await asyncio.gather(*tasks)

    async def verify(self, scenario: str, host: str, port: int, **extra: Any) -> dict[str, Any]:
        """Read the stream back (from ``host:port``), print/record the figures, return them."""
        stored = await read_all(host, port, self.stream, len(self.confirmed), user=self.user,
                                password=self.password)  # fmt: skip
        bodies = [b for _, b in stored]
        body_set = set(bodies)
        confirmed_bodies = {b"m-%07d" % (i - 1) for i in self.confirmed}  # publishing ids start at 1
        seen_offsets = [o for o, _ in self.seen]
        stored_offsets = {o for o, _ in stored}
        fault_t = self.fault_times[0] if self.fault_times else time.monotonic()
        next_t = self.fault_times[1] if len(self.fault_times) > 1 else float("inf")
        prod_rec = [round(e.elapsed, 3) for e in self.states.of("producer", RECOVERED)]
        cons_rec = [round(e.elapsed, 3) for e in self.states.of("consumer", RECOVERED)]
        figures = report(
            scenario,
            sent=self.total,
            confirmed=len(self.confirmed),
            not_confirmed=len(self.failed),
            in_stream=len(bodies),
            read=len(self.seen),
            duplicates_stream=len(bodies) - len(body_set),
            duplicates_read=len(seen_offsets) - len(set(seen_offsets)),
            lost=len(confirmed_bodies - body_set),
            missed_by_consumer=len(stored_offsets - set(seen_offsets)),
            faults=len(self.fault_times),
            producer_recoveries=len(prod_rec),
            consumer_recoveries=len(cons_rec),
            producer_recovery_max_s=max(prod_rec, default=None),
            consumer_recovery_max_s=max(cons_rec, default=None),
            first_fault_to_producer_recovered_s=self.states.recovery_after("producer", fault_t, next_t),
            first_fault_to_consumer_recovered_s=self.states.recovery_after("consumer", fault_t, next_t),
            max_confirm_gap_s=round(self.max_confirm_gap, 3),
            failed_events=len(self.states.of("producer", FAILED)) + len(self.states.of("consumer", FAILED)),
            run_s=round(self.elapsed, 2),
            **extra,
        )
        return figures


def assert_clean(fig: dict[str, Any]) -> None:
    """No loss, no duplicate, every stored message read once, nothing failed."""
    assert fig["lost"] == 0, fig
    assert fig["duplicates_stream"] == 0, fig
    assert fig["duplicates_read"] == 0, fig
    assert fig["missed_by_consumer"] == 0, fig
    assert fig["failed_events"] == 0, fig
    assert fig["confirmed"] + fig["not_confirmed"] == fig["sent"], fig
