"""rabbitstream-opentelemetry on the real broker, read back with the SDK's in-memory exporters (issue #15).

A trace goes producer -> stream -> consumer: every ``process`` span is the child of the ``send`` span of
the message it processes (W3C ``traceparent`` carried in the AMQP application properties); the metrics
count what the broker confirmed and delivered, and the connections opened, lost and recovered.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from rabbitstream import (
    AMQPMessage,
    Consumer,
    ConsumerOffsetSpecification,
    OffsetType,
    Producer,
    amqp_decoder,
)
from rabbitstream.plugin import Instrumentation, Registry, build_registry, hookimpl
from rabbitstream.recovery import BackOffRecoveryStrategy
from rabbitstream_opentelemetry import OpenTelemetryInstrumentation

if TYPE_CHECKING:
    from support.testenv import BrokerInfo
    from tools.mgmt import Management

pytestmark = pytest.mark.integration


class Telemetry:
    """An SDK tracer and meter provider with in-memory exporters, and a registry using them."""

    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        inst = OpenTelemetryInstrumentation(self.tracer_provider, self.meter_provider)

        class _Plugin:
            @staticmethod
            @hookimpl
            def rabbitstream_instrumentations() -> list[Instrumentation]:
                return [inst]

        # the installed entry point (global providers) is blocked: this one, on the test providers
        self.registry: Registry = build_registry(blocked=["opentelemetry"], plugins=[_Plugin])

    def finished(self, kind: SpanKind) -> list[ReadableSpan]:
        return [s for s in self.spans.get_finished_spans() if s.kind == kind]

    def metrics(self) -> dict[str, list[Any]]:
        """metric name -> data points (cumulative)."""
        out: dict[str, list[Any]] = {}
        data = self.reader.get_metrics_data()
        assert data is not None
        for rm in data.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    out.setdefault(m.name, []).extend(m.data.data_points)
        return out

    def total(self, name: str, **attrs: Any) -> float:
        points = self.metrics().get(name, [])
        return float(
            sum(
                p.value if hasattr(p, "value") else p.count
                for p in points
                if all(p.attributes.get(k) == v for k, v in attrs.items())
            )
        )


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    t = Telemetry()
    yield t
    t.tracer_provider.shutdown()
    t.meter_provider.shutdown()


def _kw(broker: BrokerInfo, telemetry: Telemetry) -> dict[str, Any]:
    return dict(
        username=broker.username, password=broker.password, vhost=broker.vhost, registry=telemetry.registry
    )


async def _wait(cond: Any, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.02)


async def test_trace_goes_from_producer_through_the_stream_to_the_consumer(
    broker: BrokerInfo, telemetry: Telemetry, unique_stream_name: str
) -> None:
    stream = unique_stream_name
    n_send, n_batch, n_sub = 20, 30, 5
    total = n_send + n_batch + n_sub
    confirmed: list[Any] = []
    received: list[Any] = []
    async with Producer(broker.host, broker.port, **_kw(broker, telemetry)) as producer:
        await producer.create_stream(stream)
        try:
            for i in range(n_send):  # application properties of the caller are kept, never mutated
                props = {"k": i}
                msg = AMQPMessage(body=b"s%d" % i, application_properties=props)
                await producer.send(stream, msg, on_publish_confirm=confirmed.append)
                assert props == {"k": i}
            batch = [AMQPMessage(body=b"b%d" % i) for i in range(n_batch)]
            await producer.send_batch(stream, batch, on_publish_confirm=confirmed.append)
            subs = [AMQPMessage(body=b"e%d" % i) for i in range(n_sub)]
            await producer.send_sub_entry(stream, subs, on_publish_confirm=confirmed.append)
            await producer.flush()
            await _wait(lambda: len(confirmed) == n_send + n_batch + 1, "confirms")

            async def on_message(msg: Any, ctx: Any) -> None:
                received.append(msg)

            async with Consumer(broker.host, broker.port, **_kw(broker, telemetry)) as consumer:
                await consumer.subscribe(
                    stream,
                    on_message,
                    decoder=amqp_decoder,
                    offset_specification=ConsumerOffsetSpecification(OffsetType.FIRST),
                )
                await _wait(lambda: len(received) == total, f"got {len(received)} of {total}")
                await asyncio.sleep(0.1)  # chunk_done after the last callback
                assert "state='open'" in repr(consumer)
        finally:
            await producer.delete_stream(stream, missing_ok=True)

    assert all(s.is_confirmed for s in confirmed)
    # the AMQP decoder gives strings as bytes by default (rstream's choice)
    missing = [m for m in received if b"traceparent" not in (m.application_properties or {})]
    assert not missing, missing[:3]
    assert [m.application_properties.get(b"k") for m in received[:n_send]] == list(range(n_send))

    sends = telemetry.finished(SpanKind.PRODUCER)
    processes = telemetry.finished(SpanKind.CONSUMER)
    assert len(sends) == len(processes) == total
    by_id = {s.context.span_id: s for s in sends}
    for p in processes:
        assert p.parent is not None and p.parent.span_id in by_id, "process span not a child of a send span"
        assert p.context.trace_id == by_id[p.parent.span_id].context.trace_id
        assert p.name == f"process {stream}"
        assert p.attributes is not None and p.attributes["messaging.destination.name"] == stream
    assert {s.name for s in sends} == {f"send {stream}"}
    assert sends[0].attributes is not None and sends[0].attributes["messaging.system"] == "rabbitmq"
    assert len({s.context.trace_id for s in sends}) == total  # one trace per message

    assert (
        telemetry.total("messaging.client.sent.messages", **{"messaging.destination.name": stream}) == total
    )
    assert telemetry.total("rabbitstream.producer.confirmed.messages") == total
    assert telemetry.total("rabbitstream.producer.in_flight.messages") == 0
    assert telemetry.total("rabbitstream.producer.errored.messages") == 0
    # one latency per batch written together (send() buffer, send_batch, sub-entry) and confirm frame
    assert 3 <= telemetry.total("messaging.client.operation.duration") <= total
    assert telemetry.total("messaging.client.consumed.messages") == total
    assert telemetry.total("messaging.process.duration") == total
    assert telemetry.total("rabbitstream.consumer.chunks") >= 1
    assert telemetry.total("rabbitstream.consumer.received.bytes") > 0
    assert telemetry.total("rabbitstream.connections.opened", **{"rabbitstream.client.kind": "producer"}) >= 2
    assert telemetry.total("rabbitstream.connections.opened", **{"rabbitstream.client.kind": "consumer"}) >= 2
    assert telemetry.total("rabbitstream.connections.lost") == 0  # closed by the client: not lost


async def test_iteration_counts_consumed_messages(
    broker: BrokerInfo, telemetry: Telemetry, unique_stream_name: str
) -> None:
    stream = unique_stream_name
    async with Producer(broker.host, broker.port, **_kw(broker, telemetry)) as producer:
        await producer.create_stream(stream)
        try:
            await producer.send_batch(stream, [b"x%d" % i for i in range(40)])
            await producer.flush()
            await _wait(lambda: producer.unconfirmed(stream) == 0, "confirms")
            async with Consumer(broker.host, broker.port, **_kw(broker, telemetry)) as consumer:
                got = 0
                async for _msg, _ctx in consumer.iterate(
                    stream, offset_specification=ConsumerOffsetSpecification(OffsetType.FIRST)
                ):
                    got += 1
                    if got == 40:
                        break
        finally:
            await producer.delete_stream(stream, missing_ok=True)
    # counted chunk by chunk once handed over: the chunk the loop broke out of may be left out
    assert 0 < telemetry.total("messaging.client.consumed.messages") <= 40
    assert telemetry.total("rabbitstream.consumer.received.bytes") > 0
    assert telemetry.finished(SpanKind.CONSUMER) == []  # no callback: no process span (process_span())


async def test_connection_lost_and_recovered(
    broker: BrokerInfo, mgmt: Management, telemetry: Telemetry, unique_stream_name: str
) -> None:
    stream = unique_stream_name
    name = f"otel-{stream[-16:]}"
    async with Producer(
        broker.host,
        broker.port,
        connection_name=name,
        recovery_strategy=BackOffRecoveryStrategy(True, jitter=0.1),
        **_kw(broker, telemetry),
    ) as producer:
        await producer.create_stream(stream)
        try:
            await producer.send_wait(stream, b"before")
            await asyncio.to_thread(mgmt.wait_connection, client_name=name)
            assert await asyncio.to_thread(mgmt.close_connections, client_name=name) >= 1
            await _wait(
                lambda: telemetry.total("rabbitstream.connections.recovered") >= 1, "no recovery seen", 30
            )
            await producer.send_wait(stream, b"after")
        finally:
            await producer.delete_stream(stream, missing_ok=True)
    assert telemetry.total("rabbitstream.connections.lost", **{"rabbitstream.client.kind": "producer"}) >= 1
    assert telemetry.total("rabbitstream.connections.opened") >= 3  # locator, data, data again
    assert telemetry.total("rabbitstream.producer.confirmed.messages") == 2
