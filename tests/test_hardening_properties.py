"""Hostile input: whatever OTel lets a sender put in a span, mapping and privacy never raise.

Every item the real path (span record -> Mapper -> Pipeline with the privacy
stages) produces must be valid against Opik's write schemas; a span that
cannot be mapped must be a counted rejection, never an exception.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any, Dict, List

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from opentelemetry.exporter.opik import resolve_settings
from opentelemetry.exporter.opik._json import loads
from opentelemetry.exporter.opik._pipeline import Pipeline
from opentelemetry.exporter.opik._record import EventRecord, SpanRecord, from_readable_span

try:
    from tests.conftest_privacy import SchemaCheck
except ImportError:
    from conftest_privacy import SchemaCheck  # type: ignore[no-redef]

SCHEMA = SchemaCheck()

KNOWN_KEYS = [
    "gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.system", "gen_ai.request.model", "gen_ai.response.model",
    "gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions", "gen_ai.prompt", "gen_ai.completion",
    "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.usage.total_tokens", "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.response.time_to_first_chunk", "gen_ai.conversation.id", "gen_ai.tool.name", "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result", "gen_ai.agent.name", "gen_ai.evaluation.name", "gen_ai.evaluation.score.value",
    "gen_ai.evaluation.score.label", "gen_ai.evaluation.explanation", "gen_ai.aggregated_usage.input_tokens",
    "openinference.span.kind", "input.value", "input.mime_type", "output.value", "output.mime_type", "llm.model_name",
    "llm.provider", "llm.system", "llm.token_count.prompt", "llm.token_count.completion", "llm.token_count.total",
    "llm.cost.total", "llm.invocation_parameters", "llm.input_messages.0.message.role", "llm.input_messages.0.message.content",
    "llm.input_messages.1.message.contents.0.message_content.image.image.url", "llm.output_messages.0.message.content",
    "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments", "llm.prompts.0.prompt.text",
    "retrieval.documents.0.document.content", "metadata", "tag.tags", "session.id", "user.id", "thread_id",
    "traceloop.span.kind", "traceloop.entity.name", "traceloop.entity.input", "traceloop.entity.output",
    "traceloop.association.properties.session_id", "gen_ai.prompt.0.role", "gen_ai.prompt.0.content",
    "gen_ai.completion.0.content", "llm.request.type", "llm.usage.total_tokens", "ai.prompt.messages", "ai.response.text",
    "ai.model.id", "ai.model.provider", "ai.usage.promptTokens", "ai.response.msToFirstChunk", "ai.telemetry.metadata.tags",
    "ai.toolCall.args", "operation.name", "pydantic_ai.all_messages", "final_result", "logfire.msg", "logfire.tags",
    "langsmith.span.kind", "langsmith.span.tags", "langsmith.metadata.thread_id", "langfuse.observation.input",
    "langfuse.trace.tags", "langfuse.observation.usage_details", "gcp.vertex.agent.llm_request", "opik.project_name",
    "opik.tags", "opik.metadata", "opik.thread_id", "opik.trace_id", "opik.span_id", "opik.parent_span_id",
    "deployment.environment.name", "error.type", "http.request.header.authorization", "api_key", "token",
]
EVENT_NAMES = ["exception", "gen_ai.content.prompt", "gen_ai.content.completion", "gen_ai.choice", "gen_ai.user.message",
               "First Token Stream Event", "gen_ai.content.completion.chunk", "gen_ai.evaluation.result", "ai.stream.firstChunk", "x"]
ODD_STRINGS = ["", " ", "{}", "[]", "null", '""', "\udcff\udcfe", "\x00", "{", "[[[[", '{"a":', "NaN", "1e999", "-0",
               "0" * 400, "😀" * 50, '"{\\"role\\": \\"user\\"}"', "<class 'openai.Error'>", "\u202e\ufeff"]

scalars = st.one_of(
    st.text(max_size=60),
    st.sampled_from(ODD_STRINGS),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.binary(max_size=40),
)


def _json_text(v: Any) -> str:
    return json.dumps(v, allow_nan=True)


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=30)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KNOWN_KEYS[:30]) | st.text(max_size=10), inner, max_size=4)),
    max_leaves=8,
)
values = st.recursive(
    st.one_of(scalars, json_values.map(_json_text)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(st.text(max_size=12), inner, max_size=4),
    ),
    max_leaves=6,
)
keys = st.one_of(st.sampled_from(KNOWN_KEYS), st.text(max_size=40))
attributes = st.dictionaries(keys, values, max_size=8)
timestamps = st.one_of(st.integers(min_value=0, max_value=2**64 - 1), st.just(time.time_ns()))
span_ids = st.one_of(st.integers(min_value=1, max_value=2**64 - 1), st.sampled_from([1, 2, 3]))


@st.composite
def records(draw: Any) -> List[SpanRecord]:
    trace_id = draw(st.one_of(st.integers(min_value=1, max_value=2**128 - 1), st.just(7)))
    n = draw(st.integers(min_value=1, max_value=3))
    out = []
    ids = [draw(span_ids) for _ in range(n)]
    for i in range(n):
        start = draw(timestamps)
        parent = draw(st.one_of(st.none(), st.sampled_from(ids), span_ids))
        events = [
            EventRecord(draw(st.sampled_from(EVENT_NAMES) | st.text(max_size=10)), draw(timestamps), draw(attributes))
            for _ in range(draw(st.integers(min_value=0, max_value=1)))
        ]
        out.append(
            SpanRecord(
                trace_id=trace_id,
                span_id=ids[i],
                parent_span_id=parent,
                parent_is_remote=draw(st.booleans()),
                name=draw(st.text(max_size=30) | st.sampled_from(ODD_STRINGS)),
                kind=draw(st.integers(min_value=-1, max_value=7)),
                start_ns=start,
                end_ns=draw(st.one_of(st.just(start), timestamps)),
                attributes=draw(attributes),
                events=events,
                status_code=draw(st.integers(min_value=0, max_value=3)),
                status_message=draw(st.text(max_size=20) | st.sampled_from(ODD_STRINGS)),
                resource=draw(st.dictionaries(st.sampled_from(["service.name", "opik.project_name", "deployment.environment"]) | st.text(max_size=8), values, max_size=3)),
                scope_name=draw(st.sampled_from(["", "openinference.instrumentation.openai", "ai", "opentelemetry.instrumentation.httpx"]) | st.text(max_size=10)),
                scope_version=draw(st.text(max_size=5)),
                dropped_attributes=draw(st.integers(min_value=0, max_value=2**31)),
                dropped_events=draw(st.integers(min_value=0, max_value=3)),
                trace_start_hint_ms=draw(st.one_of(st.none(), st.integers(min_value=-5, max_value=2**50))),
            )
        )
    return out


SETTINGS = [
    resolve_settings({}, env={}),
    resolve_settings(
        {"capture_content": False, "span_filter": "genai", "field_max_bytes": 512, "blob_max_bytes": 64,
         "scrub_patterns": ("^x",), "scopes_deny": ("opentelemetry.instrumentation.httpx",)},
        env={},
    ),
    resolve_settings({"scrub": False, "field_max_bytes": 300, "project_from_service_name": True}, env={}),
]
PIPELINES = [Pipeline(s) for s in SETTINGS]


def _check(pipeline: Pipeline, recs: List[SpanRecord]) -> None:
    before = pipeline.stats.snapshot()
    processed = pipeline.process(recs)  # must not raise
    for item in processed.items:
        errors = SCHEMA.errors(item)
        assert not errors, (item.kind, errors, item.body[:500])
        data = loads(item.body)
        for f in ("input", "output", "metadata"):
            if f in data and pipeline.settings.field_max_bytes <= 600:
                assert len(json.dumps(data[f], ensure_ascii=False).encode("utf-8", "surrogatepass")) < 20_000
    after = pipeline.stats.snapshot()
    assert after["spans_received"] - before["spans_received"] == len(recs)
    assert after["spans_rejected"] - before["spans_rejected"] == len(processed.rejected)
    # a rejection would be counted, but none of these values should need one
    assert processed.rejected == [], processed.rejected


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(recs=records(), which=st.integers(min_value=0, max_value=len(PIPELINES) - 1))
def test_any_span_records_map_to_schema_valid_items(recs: List[SpanRecord], which: int) -> None:
    _check(PIPELINES[which], recs)


# Through the real SDK: what the SDK accepts as attributes reaches the pipeline as a ReadableSpan.
sdk_values = st.one_of(
    st.text(max_size=40), st.sampled_from(ODD_STRINGS), st.booleans(), st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True), st.lists(st.text(max_size=10), max_size=3),
    st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), max_size=3), st.lists(st.floats(), max_size=3),
    json_values.map(_json_text),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(attrs=st.dictionaries(keys, sdk_values, max_size=10), event_attrs=st.dictionaries(keys, sdk_values, max_size=4),
       name=st.text(max_size=20))
def test_sdk_spans_with_any_attributes(attrs: Dict[str, Any], event_attrs: Dict[str, Any], name: str) -> None:
    mem = InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(mem))
    tracer = tp.get_tracer("hypothesis")
    with tracer.start_as_current_span("root"):
        with tracer.start_as_current_span(name, attributes=attrs) as span:
            span.add_event("gen_ai.content.prompt", event_attrs)
            span.record_exception(ValueError(name))
    recs = [from_readable_span(s) for s in mem.get_finished_spans()]
    for p in PIPELINES:
        _check(p, recs)
    tp.shutdown()


# -- the extremes, one by one -------------------------------------------------------------


def _one(attrs: Dict[str, Any], **kw: Any) -> SpanRecord:
    now = time.time_ns()
    base: Dict[str, Any] = dict(trace_id=0x1234, span_id=0x99, parent_span_id=None, name="extreme", start_ns=now - 10**6, end_ns=now, attributes=attrs)
    base.update(kw)
    return SpanRecord(**base)


@pytest.mark.parametrize("p", PIPELINES, ids=["default", "strict", "scrub-off"])
def test_extreme_values(p: Pipeline) -> None:
    deep = "[" * 50_000 + "]" * 50_000
    nested: Any = "leaf"
    for _ in range(300):
        nested = {"a": [nested]}
    attrs = {
        "gen_ai.operation.name": "chat",
        "gen_ai.usage.input_tokens": 2**80,
        "gen_ai.usage.output_tokens": float("nan"),
        "gen_ai.usage.total_tokens": float("inf"),
        "llm.cost.total": -math.inf,
        "huge.int": 10**400,
        "input.value": deep,
        "output.value": json.dumps(nested),
        "gen_ai.input.messages": '{"role": "user", "parts": [{"content": "\\ud800"}]}',
        "bytes": b"\xff\xfe\x00invalid utf-8",
        "surrogates": "\udcff\udcfeok",
        "nested.list": ((1, 2), (3, (4, (5,)))),
        "mapping": {"x": {"y": [1, {"z": float("nan")}]}},
        "opik.trace_id": "not-a-uuid",
        "opik.tags": "[" * 1000,
        "tag.tags": ["a"] * 500,
    }
    recs = [_one(attrs), _one({"k": "v"}, span_id=0x98, parent_span_id=0x99, start_ns=2**64 - 1, end_ns=0)]
    _check(p, recs)
    # nothing was rejected: every extreme value was mapped (the strict pipeline filters the non-GenAI child)
    assert p.stats.snapshot()["spans_rejected"] == 0


def test_a_hundred_thousand_flattened_message_keys() -> None:
    attrs: Dict[str, Any] = {"openinference.span.kind": "LLM", "llm.model_name": "gpt-4o"}
    for i in range(50_000):
        attrs[f"llm.input_messages.{i}.message.role"] = "user"
        attrs[f"llm.input_messages.{i}.message.content"] = f"message number {i}"
    p = Pipeline(resolve_settings({"field_max_bytes": 1_000_000}, env={}))
    t = time.monotonic()
    _check(p, [_one(attrs)])
    assert time.monotonic() - t < 30
    assert p.stats.snapshot()["spans_rejected"] == 0
