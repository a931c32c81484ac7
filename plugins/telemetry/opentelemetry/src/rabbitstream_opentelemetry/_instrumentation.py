"""The OpenTelemetry instrumentation: one set of instruments, one light observer per client."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.propagate import extract, get_global_textmap, inject
from opentelemetry.trace import SpanKind, Status, StatusCode
from rabbitstream import __version__
from rabbitstream.plugin import ClientInfo

__all__ = [
    "OpenTelemetryInstrumentation",
    "TRACE_HEADERS",
    "process_span",
    "with_trace_context",
]

_SCOPE = "rabbitstream_opentelemetry"
#: ``messaging.system`` of RabbitMQ in the semantic conventions.
_SYSTEM = "rabbitmq"
#: Application-property keys a W3C propagator writes (read back by any client that knows them).
TRACE_HEADERS = ("traceparent", "tracestate")
_RECOVERED = "recovered"
_monotonic = time.monotonic
#: the API's own providers: no SDK installed (yet), spans would be no-ops
_NO_TRACING = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)
#: calls of :meth:`OpenTelemetryInstrumentation.tracing` between two looks at the global provider
_RECHECK = 1024


def with_trace_context(message: Any, carrier: Mapping[str, str]) -> Any:
    """``message`` with ``carrier`` (``traceparent``, ...) added to its AMQP application properties.

    An ``AMQPMessage`` (a named tuple) is copied, never changed in place (the application may share
    its property dict between messages); its ``publishing_id`` is kept.  Messages without
    application properties (``bytes``, ``RawMessage``) are returned as they are: they cannot carry
    a trace context.
    """
    if not carrier:
        return message
    replace = getattr(message, "_replace", None)
    fields = getattr(type(message), "_fields", ())
    if replace is None or "application_properties" not in fields:
        return message
    props = dict(message.application_properties or ())
    props.update(carrier)
    copy = replace(application_properties=props)
    pid = getattr(message, "publishing_id", None)
    if pid is not None:
        copy.publishing_id = pid
    return copy


def _text(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    return value


def _properties(message: Any) -> dict[str, str] | None:
    """The propagator's fields (``traceparent``, ...) of a received message's application properties,
    as ``str`` (the AMQP decoder gives strings as ``bytes`` by default, like rstream)."""
    props = getattr(message, "application_properties", None)
    if not props or not isinstance(props, Mapping):
        return None
    fields = get_global_textmap().fields
    carrier = {}
    for key, value in props.items():
        k = _text(key)
        if k in fields:
            carrier[k] = _text(value)
    return carrier or None


class OpenTelemetryInstrumentation:
    """Metrics and tracing for every producer and consumer (the entry point registers one, using the
    global tracer and meter providers; pass providers to use others, e.g. in tests).

    :param tracer_provider: default: the global one (``opentelemetry.trace.set_tracer_provider``).
    :param meter_provider: default: the global one.
    :param name: the registry key (two instrumentations need two names).
    """

    def __init__(
        self,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
        *,
        name: str = "opentelemetry",
    ) -> None:
        self.name = name
        self._tracing = tracer_provider is not None
        self._recheck = 0
        self.tracer = trace.get_tracer(_SCOPE, __version__, tracer_provider)
        meter = metrics.get_meter(_SCOPE, __version__, meter_provider)
        self.meter = meter
        # OpenTelemetry messaging semantic conventions where they apply, rabbitstream.* otherwise
        self.sent = meter.create_counter(
            "messaging.client.sent.messages", "{message}", "Messages the producer sent to the broker."
        )
        self.duration = meter.create_histogram(
            "messaging.client.operation.duration",
            "s",
            "Publish-to-confirm latency: from send() to the broker's confirm.",
        )
        self.confirmed_messages = meter.create_counter(
            "rabbitstream.producer.confirmed.messages", "{message}", "Messages the broker confirmed."
        )
        self.errored = meter.create_counter(
            "rabbitstream.producer.errored.messages",
            "{message}",
            "Messages released unconfirmed, by response code (broker code, 10003 closed, 10004 time-out, "
            "-1 connection lost).",
        )
        self.inflight = meter.create_up_down_counter(
            "rabbitstream.producer.in_flight.messages",
            "{message}",
            "Messages sent and not yet confirmed or failed.",
        )
        self.consumed_messages = meter.create_counter(
            "messaging.client.consumed.messages", "{message}", "Messages handed to the application."
        )
        self.process_duration = meter.create_histogram(
            "messaging.process.duration",
            "s",
            "Duration of the message callback (callback mode, sampled messages).",
        )
        self.chunks = meter.create_counter(
            "rabbitstream.consumer.chunks", "{chunk}", "Chunks received from the broker."
        )
        self.received_bytes = meter.create_counter(
            "rabbitstream.consumer.received.bytes", "By", "Bytes of the chunks received from the broker."
        )
        self.opened = meter.create_counter(
            "rabbitstream.connections.opened", "{connection}", "Connections opened (locator and data)."
        )
        self.lost = meter.create_counter(
            "rabbitstream.connections.lost", "{connection}", "Connections lost (not closed by the client)."
        )
        self.recovered = meter.create_counter(
            "rabbitstream.connections.recovered",
            "{recovery}",
            "Recoveries completed: a publisher or subscription back on a live connection after a loss.",
        )

    def tracing(self) -> bool:
        """Whether spans can be recorded: a tracer provider was given, or the application installed
        one (an SDK).  With the API alone no span, context or process timing is built at all.  Asked
        per message sent and once per subscription; while there is no provider the global one is
        looked at again every :data:`_RECHECK` calls (it is not free), so one installed later is
        picked up after at most that many messages (and by subscriptions made after it)."""
        if self._tracing:
            return True
        self._recheck -= 1
        if self._recheck > 0:
            return False
        self._recheck = _RECHECK
        self._tracing = not isinstance(trace.get_tracer_provider(), _NO_TRACING)
        return self._tracing

    def producer(self, info: ClientInfo) -> _ProducerObserver:
        """The observer of one producer."""
        return _ProducerObserver(self, info)

    def consumer(self, info: ClientInfo) -> _ConsumerObserver:
        """The observer of one consumer."""
        return _ConsumerObserver(self, info)


class _Observer:
    """Attributes per stream (built once per stream) and the connection events."""

    operation = ""

    def __init__(self, inst: OpenTelemetryInstrumentation, info: ClientInfo) -> None:
        self.inst = inst
        self.info = info
        self.base: dict[str, Any] = {
            "messaging.system": _SYSTEM,
            "server.address": info.host,
            "server.port": info.port,
        }
        self._attrs: dict[str, dict[str, Any]] = {}
        self._kind = {"rabbitstream.client.kind": info.kind}

    def attrs(self, stream: str) -> dict[str, Any]:
        a = self._attrs.get(stream)
        if a is None:
            a = self._attrs[stream] = {
                **self.base,
                "messaging.destination.name": stream,
                "messaging.operation.name": self.operation,
                "messaging.operation.type": self.operation,
            }
        return a

    def _conn_attrs(self, host: str, port: int) -> dict[str, Any]:
        return {**self._kind, "messaging.system": _SYSTEM, "server.address": host, "server.port": port}

    def connection_opened(self, host: str, port: int) -> None:
        self.inst.opened.add(1, self._conn_attrs(host, port))

    def connection_closed(self, host: str, port: int, error: BaseException | None) -> None:
        if error is not None:
            self.inst.lost.add(1, {**self._conn_attrs(host, port), "error.type": type(error).__qualname__})

    def state_changed(self, change: Any) -> None:
        if getattr(change, "state", None) == _RECOVERED:
            self.inst.recovered.add(
                1, {**self._kind, **self.base, "messaging.destination.name": change.stream}
            )


class _ProducerObserver(_Observer):
    operation = "send"

    def prepare(self, stream: str, messages: list[Any]) -> list[Any]:
        inst = self.inst
        if not inst._tracing:  # tracing() inlined: this runs once per message sent
            inst._recheck -= 1
            if inst._recheck > 0 or not inst.tracing():
                return messages
        tracer = self.inst.tracer
        attrs = self.attrs(stream)
        name = f"send {stream}"
        out = []
        for message in messages:
            span = tracer.start_span(name, kind=SpanKind.PRODUCER, attributes=attrs)
            carrier: dict[str, str] = {}
            inject(carrier, context=trace.set_span_in_context(span))
            out.append(with_trace_context(message, carrier))
            span.end()
        return out

    def published(self, stream: str, count: int) -> None:
        attrs = self.attrs(stream)
        self.inst.sent.add(count, attrs)
        self.inst.inflight.add(count, attrs)

    def confirmed(self, stream: str, count: int, latencies: Sequence[float]) -> None:
        attrs = self.attrs(stream)
        inst = self.inst
        inst.confirmed_messages.add(count, attrs)
        inst.inflight.add(-count, attrs)
        record = inst.duration.record
        for seconds in latencies:
            record(seconds, attrs)

    def failed(self, stream: str, code: int, count: int) -> None:
        attrs = self.attrs(stream)
        self.inst.errored.add(count, {**attrs, "error.type": str(code), "rabbitstream.response_code": code})
        self.inst.inflight.add(-count, attrs)


class _ConsumerObserver(_Observer):
    operation = "process"

    def chunk_received(self, stream: str, records: int, size: int) -> None:
        attrs = self.attrs(stream)
        self.inst.chunks.add(1, attrs)
        self.inst.received_bytes.add(size, attrs)

    def consumed(self, stream: str, count: int) -> None:
        self.inst.consumed_messages.add(count, self.attrs(stream))

    def wrap_callback(
        self, stream: str, callback: Callable[[Any, Any], Any], is_async: bool
    ) -> Callable[[Any, Any], Any]:
        inst = self.inst
        if not inst.tracing():  # no SDK when subscribing: the callback itself, nothing per message
            return callback
        tracer = inst.tracer
        record = inst.process_duration.record
        attrs = self.attrs(stream)
        name = f"process {stream}"

        def start(message: Any, context: Any) -> trace.Span:
            props = _properties(message)
            parent = extract(props) if props else None
            span = tracer.start_span(name, context=parent, kind=SpanKind.CONSUMER, attributes=attrs)
            offset = getattr(context, "offset", None)
            if offset is not None and span.is_recording():
                span.set_attribute("rabbitstream.offset", offset)
            return span

        def failed(span: trace.Span, exc: BaseException) -> None:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, type(exc).__qualname__))

        if is_async:

            async def traced_async(message: Any, context: Any) -> Any:
                span = start(message, context)
                recording = span.is_recording()  # sampled: timed too (a histogram value costs as much)
                t0 = _monotonic()
                try:
                    with trace.use_span(span, end_on_exit=False, record_exception=False):
                        return await callback(message, context)
                except BaseException as exc:
                    failed(span, exc)
                    raise
                finally:
                    span.end()
                    if recording:
                        record(_monotonic() - t0, attrs)

            return traced_async

        def traced(message: Any, context: Any) -> Any:
            span = start(message, context)
            recording = span.is_recording()  # sampled: timed too (a histogram value costs as much)
            t0 = _monotonic()
            try:
                with trace.use_span(span, end_on_exit=False, record_exception=False):
                    return callback(message, context)
            except BaseException as exc:
                failed(span, exc)
                raise
            finally:
                span.end()
                if recording:
                    record(_monotonic() - t0, attrs)

        return traced


@contextmanager
def process_span(
    message: Any, stream: str, *, tracer_provider: trace.TracerProvider | None = None
) -> Iterator[trace.Span]:
    """A ``process <stream>`` span for a message got by iteration (``async for``), parented by the
    trace context the message carries, current inside the ``with`` block::

        async for message, context in consumer.iterate(stream):
            with process_span(message, context.stream):
                handle(message)
    """
    tracer = trace.get_tracer(_SCOPE, __version__, tracer_provider)
    props = _properties(message)
    parent = extract(props) if props else None
    attrs = {
        "messaging.system": _SYSTEM,
        "messaging.destination.name": stream,
        "messaging.operation.name": "process",
        "messaging.operation.type": "process",
    }
    with tracer.start_as_current_span(
        f"process {stream}", context=parent, kind=SpanKind.CONSUMER, attributes=attrs
    ) as span:
        yield span
