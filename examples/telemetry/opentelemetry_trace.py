"""OpenTelemetry: one trace per message from the producer, through the stream, to the consumer.

Needs ``pip install 'rabbitstream[opentelemetry]' opentelemetry-sdk``.  The plugin is found by itself
(entry point): the application only installs the OpenTelemetry SDK as usual.  Here the spans and
metrics go to in-memory exporters and a summary is printed; in production use an exporter
(``opentelemetry-exporter-otlp``: ``BatchSpanProcessor(OTLPSpanExporter())``,
``PeriodicExportingMetricReader``).

Sends RABBITSTREAM_EXAMPLE_COUNT AMQP messages (default 100) and consumes them.
Env: RABBITSTREAM_HOST/PORT/USERNAME/PASSWORD, RABBITSTREAM_EXAMPLE_STREAM (default "otel-demo").
"""

import asyncio
import os
import sys

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from rabbitstream import (
    AMQPMessage,
    Consumer,
    ConsumerOffsetSpecification,
    MessageContext,
    OffsetType,
    Producer,
    amqp_decoder,
)

HOST = os.getenv("RABBITSTREAM_HOST", "localhost")
PORT = int(os.getenv("RABBITSTREAM_PORT", "5552"))
USERNAME = os.getenv("RABBITSTREAM_USERNAME", "guest")
PASSWORD = os.getenv("RABBITSTREAM_PASSWORD", "guest")
STREAM = os.getenv("RABBITSTREAM_EXAMPLE_STREAM", "otel-demo")
MESSAGES = int(os.getenv("RABBITSTREAM_EXAMPLE_COUNT", "100"))
TIMEOUT = float(os.getenv("RABBITSTREAM_EXAMPLE_TIMEOUT", "30"))

# The usual OpenTelemetry SDK set-up of an application (before the clients are used).
spans = InMemorySpanExporter()
tracer_provider = TracerProvider()
tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
trace.set_tracer_provider(tracer_provider)
reader = InMemoryMetricReader()
metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))


def metric(name: str) -> float:
    data = reader.get_metrics_data()
    total = 0.0
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                if m.name == name:
                    total += sum(
                        getattr(p, "value", None) or getattr(p, "count", 0) for p in m.data.data_points
                    )
    return total


async def main() -> int:
    async with Producer(HOST, PORT, username=USERNAME, password=PASSWORD) as producer:
        print(producer)  # repr: host, port, vhost, user and state (never the password)
        await producer.create_stream(STREAM, exists_ok=True)
        confirmed = asyncio.Event()
        n_confirmed = 0

        def on_confirm(status: object) -> None:
            nonlocal n_confirmed
            n_confirmed += 1
            if n_confirmed == MESSAGES:
                confirmed.set()

        for i in range(MESSAGES):
            await producer.send(
                STREAM, AMQPMessage(body=f"order {i}".encode()), on_publish_confirm=on_confirm
            )
        await producer.flush()
        await asyncio.wait_for(confirmed.wait(), TIMEOUT)

    received = 0
    done = asyncio.Event()

    async def on_message(msg: AMQPMessage, context: MessageContext) -> None:
        nonlocal received
        received += 1  # runs inside the "process" span, child of the message's "send" span
        if received == MESSAGES:
            done.set()

    async with Consumer(HOST, PORT, username=USERNAME, password=PASSWORD) as consumer:
        await consumer.subscribe(
            STREAM,
            on_message,
            decoder=amqp_decoder,
            offset_specification=ConsumerOffsetSpecification(OffsetType.FIRST),
        )
        try:
            await asyncio.wait_for(done.wait(), TIMEOUT)
        except asyncio.TimeoutError:
            print(f"Timed out after {received} messages")
            return 1

    finished = spans.get_finished_spans()
    sends = {s.context.span_id: s for s in finished if s.kind == trace.SpanKind.PRODUCER}
    processes = [s for s in finished if s.kind == trace.SpanKind.CONSUMER]
    linked = sum(1 for p in processes if p.parent is not None and p.parent.span_id in sends)
    print(
        f"{len(sends)} send spans, {len(processes)} process spans, "
        f"{linked} process spans continue a send trace"
    )
    print(
        f"metrics: sent={metric('messaging.client.sent.messages'):.0f} "
        f"confirmed={metric('rabbitstream.producer.confirmed.messages'):.0f} "
        f"consumed={metric('messaging.client.consumed.messages'):.0f} "
        f"connections opened={metric('rabbitstream.connections.opened'):.0f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
