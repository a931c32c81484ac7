"""Instrumentation hook points (issue #15): resolved once at setup, nothing called when none is installed.

Pure bookkeeping, no broker: a recording observer registered in code; the OpenTelemetry plugin's
tests (``tests/integration/test_opentelemetry.py``) check the same path against the real broker.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from rabbitstream import Consumer, Producer, SuperStreamConsumer, SuperStreamProducer
from rabbitstream._connection._observe import ProducerFanout
from rabbitstream._consumer._observed import ObservedSubscription, new_subscription
from rabbitstream._consumer._sub import Subscription
from rabbitstream._consumer._types import CreditPolicy, build_subscription_properties
from rabbitstream._producer._observed import ObservedPublisher, new_publisher
from rabbitstream._producer._publisher import CONFIRM_TIMEOUT_CODE, PRODUCER_CLOSED_CODE, Publisher
from rabbitstream.constants import ConsumerOffsetSpecification
from rabbitstream.plugin import ClientInfo, Instrumentation, Registry, build_registry, hookimpl


class Recorder:
    """Producer and consumer observer recording every call."""

    def __init__(self, tag: str = "") -> None:
        self.tag = tag
        self.calls: list[tuple[Any, ...]] = []

    def connection_opened(self, host: str, port: int) -> None:
        self.calls.append(("opened", host, port))

    def connection_closed(self, host: str, port: int, error: BaseException | None) -> None:
        self.calls.append(("closed", host, port, error))

    def state_changed(self, change: Any) -> None:
        self.calls.append(("state", change))

    def prepare(self, stream: str, messages: list[Any]) -> list[Any]:
        self.calls.append(("prepare", stream, list(messages)))
        return [m + self.tag.encode() for m in messages]

    def published(self, stream: str, count: int) -> None:
        self.calls.append(("published", stream, count))

    def confirmed(self, stream: str, count: int, latencies: Sequence[float]) -> None:
        self.calls.append(("confirmed", stream, count, len(latencies)))

    def failed(self, stream: str, code: int, count: int) -> None:
        self.calls.append(("failed", stream, code, count))

    def chunk_received(self, stream: str, records: int, size: int) -> None:
        self.calls.append(("chunk", stream, records, size))

    def consumed(self, stream: str, count: int) -> None:
        self.calls.append(("consumed", stream, count))

    def wrap_callback(
        self, stream: str, callback: Callable[[Any, Any], Any], is_async: bool
    ) -> Callable[[Any, Any], Any]:
        self.calls.append(("wrap", stream, is_async))
        return callback


class RecordingInstrumentation:
    def __init__(self, name: str = "rec", tag: str = "") -> None:
        self.name = name
        self.tag = tag
        self.infos: list[ClientInfo] = []
        self.observers: list[Recorder] = []

    def _new(self, info: ClientInfo) -> Recorder:
        self.infos.append(info)
        rec = Recorder(self.tag)
        self.observers.append(rec)
        return rec

    def producer(self, info: ClientInfo) -> Recorder:
        return self._new(info)

    def consumer(self, info: ClientInfo) -> Recorder:
        return self._new(info)


def _registry(*insts: object) -> Registry:
    class _Plugin:
        @staticmethod
        @hookimpl
        def rabbitstream_instrumentations() -> list[Instrumentation]:
            return list(insts)  # type: ignore[arg-type]

    return build_registry(autoload=False, plugins=[_Plugin] if insts else [])


_PROPS = build_subscription_properties(None, None, None)
_SPEC = ConsumerOffsetSpecification()
_AFTER = CreditPolicy.AFTER_PROCESSING


def _publisher(observer: Any) -> Publisher:
    return new_publisher(
        observer,
        "s",
        None,
        limit=1000,
        batch_size=100,
        linger=10.0,
        confirm_timeout=None,
        filtering=False,
        spawn=asyncio.ensure_future,
    )


def test_registry_collects_instrumentations_by_name() -> None:
    inst = RecordingInstrumentation()
    reg = _registry(inst)
    assert dict(reg.instrumentations) == {"rec": inst}
    assert reg.providers[("instrumentation", "rec")] == "_Plugin"
    assert isinstance(inst, Instrumentation)
    assert not _registry().instrumentations


async def test_without_instrumentation_the_plain_classes_are_used() -> None:
    reg = _registry()
    producer = Producer("localhost", username="u", password="p", registry=reg)
    consumer = Consumer("localhost", username="u", password="p", registry=reg)
    assert producer._observer is None and consumer._observer is None
    assert producer._pool.options.on_connect is None and consumer._pool.options.on_connect is None
    assert producer._recovery.on_state_change is None
    assert type(_publisher(None)) is Publisher
    sub = new_subscription(
        None, consumer, 0, "s", callback=None, decoder=None, props=_PROPS, offset_spec=_SPEC,
        initial_credit=1, credit_policy=_AFTER, listener=None, tracking=None,
    )  # fmt: skip
    assert type(sub) is Subscription


async def test_observer_asked_once_per_client_with_its_info() -> None:
    inst = RecordingInstrumentation()
    reg = _registry(inst)
    producer = Producer("h1", 5553, vhost="v", username="alice", password="secret", registry=reg)
    Consumer("h2", username="bob", password="secret", connection_name="c", registry=reg)
    assert [(i.kind, i.host, i.port, i.vhost, i.username) for i in inst.infos] == [
        ("producer", "h1", 5553, "v", "alice"),
        ("consumer", "h2", 5552, "/", "bob"),
    ]
    assert producer._observer is inst.observers[0]
    assert producer._pool.options.on_connect is not None
    assert "secret" not in repr(inst.infos)


async def test_observed_publisher_reports_prepare_publish_confirm_and_failures() -> None:
    rec = Recorder("!")
    pub = _publisher(rec)
    assert isinstance(pub, ObservedPublisher)
    pub.add(b"a", None, None)
    ids = pub.add_batch([b"b", b"c"], None, None)
    sub_id = pub.add_sub_entry(b"entry", 3, None, None)
    pub.flush()
    assert ids == [2, 3] and sub_id == 6
    assert sorted(pub.pending.items())[:3] == [(1, b"a!"), (2, b"b!"), (3, b"c!")]  # prepared copies sent
    assert [c for c in rec.calls if c[0] == "published"] == [
        ("published", "s", 1),
        ("published", "s", 2),
        ("published", "s", 3),
    ]
    rec.calls.clear()
    pub.on_confirm([1, 2, 99])  # 99: unknown id, no latency, not counted
    assert rec.calls == [("confirmed", "s", 2, 2)]
    rec.calls.clear()
    pub.fail_ids([3], CONFIRM_TIMEOUT_CODE)
    pub.fail_all(PRODUCER_CLOSED_CODE)  # the sub-entry counts as its 3 messages
    assert rec.calls == [("failed", "s", CONFIRM_TIMEOUT_CODE, 1), ("failed", "s", PRODUCER_CLOSED_CODE, 3)]
    assert pub.inflight == 0 and not pub.sent_at  # nothing left behind


async def test_observed_publisher_broker_errors_by_code() -> None:
    rec = Recorder()
    pub = _publisher(rec)
    pub.add_batch([b"x", b"y", b"z"], None, None)
    rec.calls.clear()
    pub.on_error([(1, 2), (2, 18), (3, 18)])
    assert sorted(rec.calls) == [("failed", "s", 2, 1), ("failed", "s", 18, 2)]


async def test_observed_subscription_wraps_the_callback_once_after_introspection() -> None:
    rec = Recorder()
    consumer = Consumer("localhost", username="u", password="p", registry=_registry())

    async def on_message(msg: Any, ctx: Any) -> None:
        pass

    sub = new_subscription(
        rec, consumer, 0, "s", callback=on_message, decoder=None, props=_PROPS, offset_spec=_SPEC,
        initial_credit=1, credit_policy=_AFTER, listener=None, tracking=None,
    )  # fmt: skip
    assert isinstance(sub, ObservedSubscription)
    assert sub.is_async and rec.calls == [("wrap", "s", True)]
    sub.chunk_done(sub.gen, 9, 10)
    assert rec.calls[-1] == ("consumed", "s", 10)


async def test_several_instrumentations_fan_out_in_order() -> None:
    a, b = RecordingInstrumentation("a", "A"), RecordingInstrumentation("b", "B")
    producer = Producer("localhost", username="u", password="p", registry=_registry(a, b))
    assert isinstance(producer._observer, ProducerFanout)
    assert producer._observer.prepare("s", [b"m"]) in ([b"mAB"], [b"mBA"])
    assert len(a.observers) == len(b.observers) == 1


async def test_a_failing_instrumentation_is_logged_and_skipped(caplog: pytest.LogCaptureFixture) -> None:
    class Broken(RecordingInstrumentation):
        def producer(self, info: ClientInfo) -> Recorder:
            raise RuntimeError("boom")

    with caplog.at_level(logging.ERROR, logger="rabbitstream.plugin"):
        producer = Producer("localhost", username="u", password="p", registry=_registry(Broken("broken")))
    assert producer._observer is None
    assert "instrumentation 'broken' failed" in caplog.text


# ---------------------------------------------------------------- repr (issue #15 point 5)


class _Router:
    name = "first"

    def route(self, routing_key: str, metadata: Any) -> list[str]:
        return list(metadata.partitions())[:1]


def test_repr_shows_where_and_who_never_the_password() -> None:
    reg = _registry()
    secret = "s3cr3t-pa55"
    clients: list[object] = [
        Producer("node-a", 5560, vhost="prod", username="alice", password=secret, registry=reg),
        Consumer("node-a", 5560, vhost="prod", username="alice", password=secret, registry=reg),
        SuperStreamProducer(
            "node-a", 5560, vhost="prod", username="alice", password=secret, super_stream="ss",
            routing_extractor=str, routing=_Router(), registry=reg,
        ),
        SuperStreamConsumer(
            "node-a", 5560, vhost="prod", username="alice", password=secret, super_stream="ss", registry=reg
        ),
    ]  # fmt: skip
    for client in clients:
        text = repr(client)
        assert text.startswith(f"<{type(client).__name__} "), text
        for part in ("host='node-a'", "port=5560", "vhost='prod'", "user='alice'", "state='new'"):
            assert part in text, (part, text)
        assert secret not in text and secret not in str(client)


def test_core_imports_no_telemetry_library() -> None:
    import re
    from pathlib import Path

    src = Path(__file__).resolve().parents[1] / "src" / "rabbitstream"
    pattern = re.compile(r"^\s*(import|from)\s+opentelemetry\b", re.M)
    offenders = [p.name for p in src.rglob("*.py") if pattern.search(p.read_text(encoding="utf-8"))]
    assert offenders == []
