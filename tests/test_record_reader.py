"""One reader of an SDK span: its fields, or its public properties for any other object, give the same record."""

from __future__ import annotations

from typing import Any, Dict, List

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

from opentelemetry import trace
from opentelemetry.exporter.opik._record import EventRecord, SpanRecord, from_readable_span

PUBLIC = (
    "context", "parent", "status", "resource", "instrumentation_scope", "attributes", "events", "links",
    "start_time", "end_time", "name", "kind", "dropped_attributes", "dropped_events", "dropped_links",
)


class PublicOnly:
    """A span that has the ``ReadableSpan`` properties and nothing else (another SDK, a wrapper)."""

    def __init__(self, span: ReadableSpan) -> None:
        for name in PUBLIC:
            setattr(self, name, getattr(span, name))


def _spans() -> List[ReadableSpan]:
    sink = InMemorySpanExporter()
    tp = TracerProvider(
        resource=Resource.create({"service.name": "reader", "deployment.environment.name": "test"}),
        span_limits=SpanLimits(max_attributes=3, max_events=1, max_links=1),
    )
    tp.add_span_processor(SimpleSpanProcessor(sink))
    tracer = tp.get_tracer("reader.scope", "2.1")
    remote = SpanContext(0x1F, 0x2F, is_remote=True, trace_flags=TraceFlags(1), trace_state=TraceState([("opik", "19a3f")]))
    with tracer.start_as_current_span("root", kind=SpanKind.SERVER, context=trace.set_span_in_context(trace.NonRecordingSpan(remote))) as root:
        root.set_attribute("gen_ai.operation.name", "chat")
        root.add_event("gen_ai.user.message", {"content": "hello"})
        root.add_event("dropped", {})
        with tracer.start_as_current_span("child", links=[Link(remote), Link(remote)]) as child:
            for i in range(5):
                child.set_attribute(f"k{i}", i)
            child.set_status(Status(StatusCode.ERROR, "boom"))
    tp.shutdown()
    return list(sink.get_finished_spans())


def _fields(r: SpanRecord) -> Dict[str, Any]:
    out = {name: getattr(r, name) for name in SpanRecord.__slots__}
    out["attributes"] = dict(r.attributes)
    out["resource"] = dict(r.resource)
    out["events"] = [(e.name, e.time_ns, dict(e.attributes)) for e in r.events]
    return out


def test_the_public_properties_give_the_record_the_fields_give() -> None:
    spans = _spans()
    assert len(spans) == 2
    for span in spans:
        assert _fields(from_readable_span(PublicOnly(span))) == _fields(from_readable_span(span))
    child, root = spans
    r = from_readable_span(PublicOnly(child))
    assert (r.status_code, r.status_message, r.dropped_attributes, r.dropped_links) == (2, "boom", 2, 1)
    assert r.scope_name == "reader.scope" and r.scope_version == "2.1" and r.resource["service.name"] == "reader"
    r = from_readable_span(PublicOnly(root))
    assert r.kind == 2 and r.parent_span_id == 0x2F  # SERVER in OTLP numbering and r.parent_is_remote and r.trace_start_hint_ms == 0x19A3F
    assert r.dropped_events == 1 and [e.name for e in r.events] == ["dropped"]


def test_a_record_built_by_keyword_equals_one_built_in_order() -> None:
    events = (EventRecord("e", 5, {"a": 1}),)
    by_name = SpanRecord(
        trace_id=1, span_id=2, parent_span_id=3, name="n", start_ns=4, end_ns=6, attributes={"x": 1}, events=events,
        kind=2, status_code=1, status_message="m", resource={"r": 1}, scope_name="s", scope_version="v",
        parent_is_remote=True, dropped_attributes=7, dropped_events=8, dropped_links=9, trace_start_hint_ms=10,
    )
    in_order = SpanRecord(1, 2, 3, "n", 4, 6, {"x": 1}, events, 2, 1, "m", {"r": 1}, "s", "v", True, 7, 8, 9, 10)
    assert _fields(by_name) == _fields(in_order)
