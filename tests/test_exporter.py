"""OpikSpanExporter end to end: real SDK traces -> real HTTP -> the schema-validating stand-in."""

from __future__ import annotations

import time
from typing import Any, Dict

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import NonRecordingSpan, SpanContext, Status, StatusCode, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opik_standin import OpikStandin, uuid7_timestamp_ms

from opentelemetry import context, trace
from opentelemetry.exporter.opik import OpikSampler
from opentelemetry.exporter.opik._ids import span_uuid, trace_uuid


def _ms(ns: int) -> int:
    return ns // 1_000_000


def test_single_span_becomes_trace_and_span(opik: OpikStandin, provider_for: Any) -> None:
    provider, exporter = provider_for(
        resource=Resource.create({"service.name": "svc", "deployment.environment.name": "staging"}),
        project_name="proj-a",
    )
    tracer = provider.get_tracer("my.scope", "1.2.3")
    with tracer.start_as_current_span(
        "handle",
        attributes={"input.value": '{"q": "hi"}', "output.value": "plain answer", "http.method": "GET", "opik.tags": ["t1", "t2"]},
    ) as span:
        ctx = span.get_span_context()
    provider.force_flush()
    assert exporter.force_flush(5000)
    opik.wait_for_counts(traces=1, spans=1)
    sdk_span = span
    start_ms = _ms(sdk_span.start_time)
    tid = trace_uuid(ctx.trace_id, start_ms)
    sid = span_uuid(ctx.span_id, start_ms)

    t = opik.traces_by_id()[tid]
    assert t["project_name"] == "proj-a"
    assert t["name"] == "handle"
    assert t["input"] == {"q": "hi"}
    assert t["output"] == {"value": "plain answer"}
    assert t["tags"] == ["t1", "t2"]
    assert t["environment"] == "staging"
    assert t["source"] == "sdk"
    assert "error_info" not in t and "thread_id" not in t
    assert t["last_updated_at"] == t["end_time"]
    md = t["metadata"]
    assert md["http.method"] == "GET"
    assert md["otel"]["scope"] == {"name": "my.scope", "version": "1.2.3"}
    assert md["otel"]["resource"]["service.name"] == "svc"
    assert md["otel"]["span_kind"] == "INTERNAL"
    assert md["otel"]["trace_id"] == f"{ctx.trace_id:032x}"

    s = opik.spans_by_id()[sid]
    assert s["trace_id"] == tid and "parent_span_id" not in s
    assert s["type"] == "general"
    for key in ("name", "start_time", "end_time", "input", "output", "tags", "environment", "project_name"):
        assert s[key] == t[key], key
    assert uuid7_timestamp_ms(tid) == uuid7_timestamp_ms(sid) == start_ms
    assert opik.duplicates() == {}


def test_deep_nesting_links_every_span(opik: OpikStandin, provider_for: Any) -> None:
    provider, exporter = provider_for()
    tracer = provider.get_tracer("t")
    spans = []

    def nest(depth: int) -> None:
        with tracer.start_as_current_span(f"level-{depth}") as s:
            spans.append(s)
            if depth < 6:
                nest(depth + 1)

    nest(0)
    provider.force_flush()
    exporter.force_flush(5000)
    opik.wait_for_counts(traces=1, spans=7)
    root = spans[0]
    start_ms = _ms(root.start_time)
    tid = trace_uuid(root.context.trace_id, start_ms)
    stored = opik.spans_by_id()
    for parent, child in zip(spans, spans[1:]):
        row = stored[span_uuid(child.context.span_id, start_ms)]
        assert row["trace_id"] == tid
        assert row["parent_span_id"] == span_uuid(parent.context.span_id, start_ms)
        assert uuid7_timestamp_ms(row["id"]) == start_ms
    assert list(opik.traces_by_id()) == [tid]


def test_child_exported_in_an_earlier_batch_than_its_root(opik: OpikStandin, provider_for: Any) -> None:
    provider, exporter = provider_for(batch=False)
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("root") as root:
        time.sleep(0.003)  # the child starts in a later millisecond than the root
        with tracer.start_as_current_span("child") as child:
            time.sleep(0.002)
        opik.wait_for_counts(spans=1)  # the child is stored before the root even ends
        time.sleep(0.003)
    provider.force_flush()
    exporter.force_flush(5000)
    opik.wait_for_counts(traces=1, spans=2)
    # Without the tracestate entry the id timestamp is the earliest start known when the
    # trace is first seen: the child's, which the root (exported later) then agrees with.
    start_ms = _ms(child.start_time)
    tid = trace_uuid(root.context.trace_id, start_ms)
    stored = opik.spans_by_id()
    c = stored[span_uuid(child.context.span_id, start_ms)]
    assert c["trace_id"] == tid and c["parent_span_id"] == span_uuid(root.context.span_id, start_ms)
    assert tid in opik.traces_by_id()


def test_remote_parent_writes_the_trace_row_and_keeps_the_link(opik: OpikStandin, provider_for: Any) -> None:
    # Service A (upstream) with the OpikSampler stamps the trace start into tracestate.
    prov_a, exp_a = provider_for(sampler=OpikSampler())
    prov_b, exp_b = provider_for(sampler=OpikSampler())
    carrier: Dict[str, str] = {}
    with prov_a.get_tracer("a").start_as_current_span("upstream request") as up:
        TraceContextTextMapPropagator().inject(carrier)
        assert "opik=" in carrier["tracestate"]
        # Service B receives the request: its span's parent is remote.
        ctx_b = TraceContextTextMapPropagator().extract(carrier)
        with prov_b.get_tracer("b").start_as_current_span("downstream handler", context=ctx_b) as down:
            time.sleep(0.002)
        prov_b.force_flush()
        exp_b.force_flush(5000)
        opik.wait_for_counts(traces=1, spans=1)
        early = opik.traces_by_id()
        (only_trace,) = early.values()
        assert only_trace["name"] == "downstream handler"  # visible even if A never exports
    prov_a.force_flush()
    exp_a.force_flush(5000)
    opik.wait_for_counts(traces=1, spans=2)
    hint_ms = int(up.context.trace_state["opik"], 16)
    tid = trace_uuid(up.context.trace_id, hint_ms)
    stored = opik.spans_by_id()
    d = stored[span_uuid(down.context.span_id, hint_ms)]
    assert d["trace_id"] == tid
    assert d["parent_span_id"] == span_uuid(up.context.span_id, hint_ms)
    assert d["metadata"]["otel"]["parent_is_remote"] is True
    # Both services wrote the trace row; the true root ends last and wins the upsert.
    (t,) = opik.traces_by_id().values()
    assert t["id"] == tid and t["name"] == "upstream request"
    assert opik.duplicates() == {}


def test_remote_parent_without_tracestate_still_gets_a_trace(opik: OpikStandin, provider_for: Any) -> None:
    provider, exporter = provider_for()
    parent = SpanContext(trace_id=0x1234, span_id=0x99, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    ctx = trace.set_span_in_context(NonRecordingSpan(parent), context.get_current())
    with provider.get_tracer("t").start_as_current_span("handler", context=ctx) as s:
        pass
    provider.force_flush()
    exporter.force_flush(5000)
    opik.wait_for_counts(traces=1, spans=1)
    start_ms = _ms(s.start_time)
    row = opik.spans_by_id()[span_uuid(s.context.span_id, start_ms)]
    assert row["parent_span_id"] == span_uuid(0x99, start_ms)
    assert trace_uuid(0x1234, start_ms) in opik.traces_by_id()


def test_exception_becomes_error_info_on_span_and_trace(opik: OpikStandin, provider_for: Any) -> None:
    provider, exporter = provider_for()
    tracer = provider.get_tracer("t")
    with pytest.raises(KeyError):
        with tracer.start_as_current_span("root"):
            with tracer.start_as_current_span("failing"):
                raise KeyError("missing")
    with tracer.start_as_current_span("status only") as s:
        s.set_status(Status(StatusCode.ERROR, "upstream said no"))
        s.set_attribute("error.type", "<class 'openai.InternalServerError'>")
    provider.force_flush()
    exporter.force_flush(5000)
    opik.wait_for_counts(traces=2, spans=3)
    by_name = {t["name"]: t for t in opik.traces_by_id().values()}
    err = by_name["root"]["error_info"]
    assert err["exception_type"] == "KeyError"
    assert err["message"] == "'missing'"
    assert "Traceback" in err["traceback"] and "raise KeyError" in err["traceback"]
    spans = {s["name"]: s for s in opik.spans_by_id().values()}
    assert spans["failing"]["error_info"]["exception_type"] == "KeyError"
    status_err = by_name["status only"]["error_info"]
    assert status_err == {"exception_type": "openai.InternalServerError", "message": "upstream said no", "traceback": "upstream said no"}
    assert "exception" not in str(spans["failing"]["metadata"].get("otel", {}).get("events", ""))


def test_attributes_of_every_otel_type_land_in_metadata(opik: OpikStandin, provider_for: Any) -> None:
    provider, exporter = provider_for()
    attrs = {
        "a.str": "text",
        "a.bool": True,
        "a.int": -42,
        "a.float": 3.5,
        "a.strs": ["x", "y"],
        "a.bools": [True, False],
        "a.ints": [1, 2, 3],
        "a.floats": [0.5, 1.5],
        "a.json": '{"nested": {"k": [1, 2]}}',
        "a.badjson": "{not json",
    }
    with provider.get_tracer("t").start_as_current_span("typed", attributes=attrs) as s:
        s.add_event("checkpoint", {"step": 2})
    provider.force_flush()
    exporter.force_flush(5000)
    opik.wait_for_counts(traces=1, spans=1)
    (row,) = opik.spans_by_id().values()
    md = row["metadata"]
    expected = dict(attrs, **{"a.json": {"nested": {"k": [1, 2]}}})
    for k, v in expected.items():
        assert md[k] == v, k
    (event,) = md["otel"]["events"]
    assert event["name"] == "checkpoint" and event["attributes"] == {"step": 2}


def test_thread_environment_tags_and_project_overrides(opik: OpikStandin, provider_for: Any) -> None:
    provider, exporter = provider_for(batch=False, environment="from-setting")
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("root", attributes={"opik.project_name": "routed", "tag.tags": ["a", "b"]}):
        with tracer.start_as_current_span("llm", attributes={"opik.project_name": "routed", "gen_ai.conversation.id": "conv-7"}):
            pass
    provider.force_flush()
    exporter.force_flush(5000)
    opik.wait_for_counts(traces=1, spans=2)
    (t,) = opik.traces_by_id().values()
    assert t["thread_id"] == "conv-7"  # from a child seen before the root
    assert t["project_name"] == "routed"
    assert t["environment"] == "from-setting"
    assert t["tags"] == ["a", "b"]


def test_opik_sdk_ids_are_honoured(opik: OpikStandin, provider_for: Any) -> None:
    provider, exporter = provider_for()
    now_ms = int(time.time() * 1000)
    opik_trace = trace_uuid(1, now_ms)
    opik_parent = span_uuid(2, now_ms)
    with provider.get_tracer("t").start_as_current_span(
        "otel child of an @opik.track span",
        attributes={"opik.trace_id": opik_trace, "opik.parent_span_id": opik_parent},
    ):
        pass
    with provider.get_tracer("t").start_as_current_span("bad override", attributes={"opik.trace_id": "not-a-uuid"}):
        pass
    provider.force_flush()
    exporter.force_flush(5000)
    opik.wait_for_counts(spans=2)
    by_name = {s["name"]: s for s in opik.spans_by_id().values()}
    attached = by_name["otel child of an @opik.track span"]
    assert attached["trace_id"] == opik_trace and attached["parent_span_id"] == opik_parent
    # The trace belongs to the Opik SDK: we do not write a trace row for it.
    assert opik_trace not in opik.traces_by_id()
    assert by_name["bad override"]["trace_id"] != "not-a-uuid"


def test_exporting_twice_never_duplicates(opik: OpikStandin, provider_for: Any) -> None:
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    provider, exporter = provider_for()
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("root"):
        with tracer.start_as_current_span("child"):
            pass
    provider.force_flush()
    exporter.force_flush(5000)
    opik.wait_for_counts(traces=1, spans=2)
    spans = memory.get_finished_spans()
    # A later re-send (e.g. a retry after a timeout), in reverse order and child alone.
    exporter.export([spans[1]])
    exporter.export(list(spans))
    provider.force_flush()
    exporter.force_flush(5000)
    assert len(opik.traces) == 1 and len(opik.spans) == 2
    assert opik.duplicates() == {}


def test_dry_run_prints_the_tree_and_sends_nothing(opik: OpikStandin, provider_for: Any, capsys: pytest.CaptureFixture) -> None:
    provider, exporter = provider_for(dry_run=True)
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("agent"):
        with tracer.start_as_current_span("step one"):
            pass
    provider.shutdown()
    out = capsys.readouterr().out
    assert "Opik trace" in out and "'agent'" in out
    assert "  └─ [general] 'agent'" in out and "    └─ [general] 'step one'" in out
    assert opik.requests == []


def test_export_after_shutdown_fails_without_raising(opik: OpikStandin, provider_for: Any) -> None:
    from opentelemetry.sdk.trace.export import SpanExportResult

    provider, exporter = provider_for()
    exporter.shutdown()
    assert exporter.export([]) is SpanExportResult.FAILURE


def test_a_span_that_fails_to_map_is_counted_and_never_sinks_the_batch(
    opik: OpikStandin, provider_for: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from opentelemetry.exporter.opik._mapping import core

    def fragile_reader(out: Any) -> None:
        if out.record.attributes.get("poison"):
            raise ValueError("secret-content-" + str(out.record.attributes["poison"]))

    provider, exporter = provider_for()
    exporter._pipeline.mapper.readers = (fragile_reader, core.read)
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("root"):
        with tracer.start_as_current_span("bad", attributes={"poison": "hunter2"}):
            pass
        with tracer.start_as_current_span("good"):
            pass
    caplog.set_level("DEBUG")
    provider.force_flush()
    exporter.force_flush(5000)
    opik.wait_for_counts(traces=1, spans=2)
    assert sorted(s["name"] for s in opik.spans_by_id().values()) == ["good", "root"]
    assert exporter.stats()["spans_rejected"] == 1
    assert "'bad'" in caplog.text and "ValueError in fragile_reader" in caplog.text
    assert "hunter2" not in caplog.text


def test_internal_errors_are_logged_by_type_and_place_never_by_their_text(
    opik: OpikStandin, provider_for: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A failing privacy stage drops its items (fail closed) and a failing pipeline fails the
    export; both log where it happened, never the exception's message, which may quote content."""

    def leaky_stage(m: Any) -> Any:
        raise ValueError("content-hunter2")

    provider, exporter = provider_for()
    exporter._pipeline.stages = [leaky_stage]
    tracer = provider.get_tracer("t")
    caplog.set_level("DEBUG")
    with tracer.start_as_current_span("root"):
        pass
    provider.force_flush()
    assert exporter.stats()["dropped"]["stage_error"] == 2  # the trace row and its span
    assert "ValueError" in caplog.text and "leaky_stage (test_exporter.py:" in caplog.text

    def broken_process(records: Any, default_project: Any = None) -> Any:
        raise RuntimeError("content-hunter2")

    from opentelemetry.sdk.trace.export import SpanExportResult

    exporter._pipeline.process = broken_process  # type: ignore[method-assign]
    span = tracer.start_span("other")
    span.end()
    assert exporter.export([span]) is SpanExportResult.FAILURE  # type: ignore[list-item]
    del exporter._pipeline.process
    assert "failed to export 1 spans: RuntimeError" in caplog.text
    assert "broken_process (test_exporter.py:" in caplog.text
    assert "hunter2" not in caplog.text
