"""rabbitstream plugin: OpenTelemetry metrics and tracing for producers and consumers.

Installed (``pip install 'rabbitstream[opentelemetry]'``), it is found through the entry point
``opentelemetry`` in group ``rabbitstream`` and observes every producer and consumer, using the
global tracer and meter providers of ``opentelemetry-api`` (no-ops until the application installs
an SDK).  Metrics follow the OpenTelemetry messaging semantic conventions where they apply;
``send <stream>`` spans put the W3C trace context (``traceparent``, ``tracestate``) into the AMQP
message's application properties, and ``process <stream>`` spans continue the trace on the
consumer side.  Guide: https://github.com/rabbitstream/rabbitstream/blob/main/docs/telemetry.md
"""

from __future__ import annotations

from collections.abc import Sequence

from rabbitstream.plugin import Instrumentation, hookimpl

from rabbitstream_opentelemetry._instrumentation import (
    TRACE_HEADERS,
    OpenTelemetryInstrumentation,
    process_span,
    with_trace_context,
)

__all__ = [
    "TRACE_HEADERS",
    "OpenTelemetryInstrumentation",
    "process_span",
    "rabbitstream_instrumentations",
    "with_trace_context",
]


@hookimpl(trylast=True)
def rabbitstream_instrumentations() -> Sequence[Instrumentation]:
    """One :class:`OpenTelemetryInstrumentation` on the global providers."""
    return [OpenTelemetryInstrumentation()]
