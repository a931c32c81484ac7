"""rabbitstream-opentelemetry without a broker: hook, trace context, spans and metrics (SDK in memory).

The end-to-end path (producer -> real broker -> consumer) is ``tests/integration/test_opentelemetry.py``.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any, NamedTuple

import pytest
import rabbitstream_opentelemetry
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from rabbitstream.plugin import ClientInfo, Instrumentation, build_registry
from rabbitstream_opentelemetry import OpenTelemetryInstrumentation, process_span, with_trace_context

INFO = ClientInfo("producer", "node", 5552, "/", "guest", "name")


class Message(NamedTuple):
    """The shape of an AMQPMessage for the plugin (a named tuple with application properties)."""

    application_properties: Any = None
    body: bytes = b""


class Sdk:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.tp = TracerProvider()
        self.tp.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.mp = MeterProvider(metric_readers=[self.reader])
        self.inst = OpenTelemetryInstrumentation(self.tp, self.mp)

    def total(self, name: str, **attrs: Any) -> float:
        data = self.reader.get_metrics_data()
        out = 0.0
        if data is None:
            return out
        for rm in data.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    if m.name != name:
                        continue
                    for p in m.data.data_points:
                        if all((p.attributes or {}).get(k) == v for k, v in attrs.items()):
                            out += p.value if hasattr(p, "value") else p.count
        return out


@pytest.fixture
def sdk() -> Sdk:
    return Sdk()


def test_the_entry_point_module_provides_one_instrumentation() -> None:
    reg = build_registry(autoload=False, plugins=[rabbitstream_opentelemetry])
    inst = reg.instrumentations["opentelemetry"]
    assert isinstance(inst, OpenTelemetryInstrumentation)
    assert isinstance(inst, Instrumentation)


def test_with_trace_context_copies_and_keeps_the_publishing_id() -> None:
    class Amqp(NamedTuple):
        application_properties: Any = None
        body: bytes = b""

    props = {"k": 1}
    m = Amqp(props, b"x")
    copy = with_trace_context(m, {"traceparent": "00-ab"})
    assert copy.application_properties == {"k": 1, "traceparent": "00-ab"}
    assert props == {"k": 1} and m.application_properties is props  # the caller's dict untouched
    assert with_trace_context(b"raw", {"traceparent": "00-ab"}) == b"raw"  # nowhere to carry it
    assert with_trace_context(m, {}) is m


def test_publishing_id_survives_the_copy() -> None:
    class WithId(NamedTuple):
        application_properties: Any = None

    m = WithId()
    # a NamedTuple subclass instance with a __dict__ (as AMQPMessage with publishing_id)
    Sub = type("Sub", (WithId,), {})
    s = Sub(None)
    s.publishing_id = 42
    copy = with_trace_context(s, {"traceparent": "00-ab"})
    assert copy.publishing_id == 42
    assert with_trace_context(m, {"traceparent": "x"}).application_properties == {"traceparent": "x"}


def test_send_spans_carry_their_context_and_process_spans_continue_it(sdk: Sdk) -> None:
    producer = sdk.inst.producer(INFO)
    (sent,) = producer.prepare("orders", [Message({"k": "v"}, b"body")])
    (send_span,) = sdk.spans.get_finished_spans()
    assert send_span.kind == SpanKind.PRODUCER and send_span.name == "send orders"
    assert send_span.attributes is not None
    assert send_span.attributes["messaging.destination.name"] == "orders"
    assert send_span.attributes["server.address"] == "node"
    traceparent = sent.application_properties["traceparent"]
    assert f"{send_span.context.span_id:016x}" in traceparent

    # the AMQP decoder gives strings as bytes (rstream's default): keys and values are decoded
    received = Message({b"k": b"v", b"traceparent": traceparent.encode()}, b"body")
    consumer = sdk.inst.consumer(ClientInfo("consumer", "node", 5552, "/", "guest", "c"))
    seen: list[Any] = []
    wrapped = consumer.wrap_callback("orders", lambda m, c: seen.append(m), False)
    wrapped(received, None)
    assert seen == [received]
    process = [s for s in sdk.spans.get_finished_spans() if s.kind == SpanKind.CONSUMER]
    assert len(process) == 1 and process[0].name == "process orders"
    assert process[0].parent is not None and process[0].parent.span_id == send_span.context.span_id
    assert process[0].context.trace_id == send_span.context.trace_id
    assert sdk.total("messaging.process.duration") == 1


def test_async_callback_span_records_the_failure(sdk: Sdk) -> None:
    consumer = sdk.inst.consumer(INFO)

    async def on_message(message: Any, context: Any) -> None:
        raise ValueError("bad message")

    wrapped = consumer.wrap_callback("s", on_message, True)
    assert inspect.iscoroutinefunction(wrapped)
    with pytest.raises(ValueError, match="bad message"):
        asyncio.run(wrapped(Message(), None))
    (span,) = sdk.spans.get_finished_spans()
    assert span.status.status_code == StatusCode.ERROR
    assert span.parent is None  # no trace context in the message: a new trace


def test_producer_metrics_by_code_and_in_flight(sdk: Sdk) -> None:
    obs = sdk.inst.producer(INFO)
    obs.published("s", 10)
    obs.confirmed("s", 7, [0.001] * 7)
    obs.failed("s", 10004, 2)
    obs.failed("s", 18, 1)
    assert sdk.total("messaging.client.sent.messages", **{"messaging.destination.name": "s"}) == 10
    assert sdk.total("rabbitstream.producer.confirmed.messages") == 7
    assert sdk.total("rabbitstream.producer.errored.messages", **{"rabbitstream.response_code": 10004}) == 2
    assert sdk.total("rabbitstream.producer.errored.messages", **{"error.type": "18"}) == 1
    assert sdk.total("rabbitstream.producer.in_flight.messages") == 0
    assert sdk.total("messaging.client.operation.duration") == 7


def test_connection_and_consumer_metrics(sdk: Sdk) -> None:
    obs = sdk.inst.consumer(INFO)
    obs.connection_opened("n1", 5552)
    obs.connection_closed("n1", 5552, None)  # closed by the client: not lost
    obs.connection_closed("n1", 5552, ConnectionResetError())

    class Change:
        state = "recovered"
        stream = "s"

    obs.state_changed(Change())
    obs.chunk_received("s", 10, 1234)
    obs.consumed("s", 10)
    assert sdk.total("rabbitstream.connections.opened", **{"server.address": "n1"}) == 1
    assert sdk.total("rabbitstream.connections.lost", **{"error.type": "ConnectionResetError"}) == 1
    assert sdk.total("rabbitstream.connections.recovered") == 1
    assert sdk.total("rabbitstream.consumer.chunks") == 1
    assert sdk.total("rabbitstream.consumer.received.bytes") == 1234
    assert sdk.total("messaging.client.consumed.messages") == 10


def test_no_sdk_configured_adds_nothing_to_messages() -> None:
    inst = OpenTelemetryInstrumentation()  # the global providers: no-ops until an SDK is installed
    m = Message({"k": "v"})
    assert inst.producer(INFO).prepare("s", [m]) == [m]

    def callback(message: Any, context: Any) -> None:
        pass

    assert inst.consumer(INFO).wrap_callback("s", callback, False) is callback  # nothing per message


def test_process_span_for_iteration(sdk: Sdk) -> None:
    (sent,) = sdk.inst.producer(INFO).prepare("s", [Message()])
    with process_span(sent, "s", tracer_provider=sdk.tp) as span:
        assert span.is_recording()
    send, process = sdk.spans.get_finished_spans()
    assert process.parent is not None and process.parent.span_id == send.context.span_id
