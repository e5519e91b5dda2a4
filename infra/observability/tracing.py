"""OpenTelemetry tracing, behind ORDERFLOW_TRACING (off | console | otlp).

One trace follows a command from its HTTP request through the bus and the append, and
on through the relay and Kafka to the projectors' writes: the request's span context is
stored with the events it appended (`_meta.traceparent`, W3C trace context), the relay
publishes each event in a span of that trace and puts its context in the message's
`traceparent` header, and a projector applies the event in a span under that. Every log
line written inside a span carries its `trace_id` and `span_id`.

The HTTP server spans are FastAPI's own (its native telemetry traces every request, with
the route template, once a tracer provider is installed, and continues an incoming
`traceparent`). Off (the default), no provider is installed: OpenTelemetry's API answers
with non-recording spans, and nothing is stored, sent or logged."""

from __future__ import annotations

from collections.abc import MutableMapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.trace import Link, Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from commands.trace_context import TRACEPARENT
from infra.settings import Settings

HEADER = TRACEPARENT
_propagator = TraceContextTextMapPropagator()
tracer = trace.get_tracer("orderflow")
_enabled = False  # per-event spans (relay, projectors) cost nothing when off


def enabled() -> bool:
    return _enabled


def configure_tracing(
    settings: Settings, service: str, processor: SpanProcessor | None = None
) -> bool:
    """Installs the process's tracer provider when tracing is on (or a processor is
    given, as tests do); True when spans are recorded from now on."""
    if processor is None:
        if settings.tracing == "off":
            return False
        if settings.tracing == "console":
            processor = BatchSpanProcessor(ConsoleSpanExporter())
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            processor = BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.tracing_endpoint))
    global _enabled
    provider = TracerProvider(resource=Resource.create({"service.name": f"orderflow-{service}"}))
    provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    _enabled = True
    return True


def _context_of(traceparent: str | bytes | None) -> otel_context.Context | None:
    if not traceparent:
        return None
    text = traceparent.decode() if isinstance(traceparent, bytes) else traceparent
    return _propagator.extract({HEADER: text})


def span_from(
    name: str, traceparent: str | bytes | None, kind: SpanKind = SpanKind.INTERNAL
) -> AbstractContextManager[Any]:
    """A span in the trace a stored or received `traceparent` names (a new trace without);
    nothing at all when tracing is off."""
    if not _enabled:
        return nullcontext()
    return tracer.start_as_current_span(name, context=_context_of(traceparent), kind=kind)


def open_span(name: str, traceparent: str | bytes | None) -> Span | None:
    """Started, not current (a projector's batch holds many): the caller ends it. None
    when tracing is off."""
    if not _enabled:
        return None
    return tracer.start_span(name, context=_context_of(traceparent), kind=SpanKind.CONSUMER)


def link_to(traceparent: str | None) -> Link | None:
    """A link to the span a `traceparent` names: a batch span relates to the commands it
    carried (each in its own trace) this way."""
    if not traceparent:
        return None
    span_context = trace.get_current_span(_propagator.extract({HEADER: traceparent}))
    context = span_context.get_span_context()
    return Link(context) if context.is_valid else None


def log_fields(event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Adds the current span's ids to a log record (structlog processor body)."""
    span_context = trace.get_current_span().get_span_context()
    if span_context.is_valid:
        event_dict.setdefault("trace_id", format(span_context.trace_id, "032x"))
        event_dict.setdefault("span_id", format(span_context.span_id, "016x"))
    return event_dict
