"""Capture off, blob placeholders, the per-field size cap and shrink_item (413)."""

from __future__ import annotations

import base64
import copy
import json
import os
from typing import Any, Dict

import pytest
from opentelemetry.trace import Status, StatusCode

from opentelemetry.exporter.opik import resolve_settings
from opentelemetry.exporter.opik._items import Item
from opentelemetry.exporter.opik._json import dumps, loads
from opentelemetry.exporter.opik._mapping import Mapper
from opentelemetry.exporter.opik._privacy import NOTE_KEY, ContentStage, blob_placeholder, fit, shrink_item
from opentelemetry.exporter.opik._record import SpanRecord
from opentelemetry.exporter.opik._stats import Stats

try:
    from tests.conftest_privacy import make_exporter, opik, provider_for, sent_text, spans_by_name, traces_by_name  # noqa: F401
    from tests.opik_standin import Fault, OpikStandin
except ImportError:
    from conftest_privacy import (  # type: ignore[no-redef] # noqa: F401
        make_exporter,
        opik,
        provider_for,
        sent_text,
        spans_by_name,
        traces_by_name,
    )
    from opik_standin import Fault, OpikStandin  # type: ignore[no-redef]

PROMPT = "Summarise the quarterly report for ACME Corp, confidential figures inside."
ANSWER = "Revenue grew 12 percent while churn fell to three percent."


def _llm_span(tracer: Any, name: str = "chat gpt-4o-mini", fail: bool = False) -> None:
    with tracer.start_as_current_span(name) as span:
        span.set_attribute("gen_ai.operation.name", "chat")
        span.set_attribute("gen_ai.request.model", "gpt-4o-mini")
        span.set_attribute("gen_ai.response.model", "gpt-4o-mini-2024-07-18")
        span.set_attribute("gen_ai.usage.input_tokens", 21)
        span.set_attribute("gen_ai.usage.output_tokens", 13)
        span.set_attribute("gen_ai.response.time_to_first_chunk", 0.25)
        span.set_attribute("gen_ai.input.messages", json.dumps([{"role": "user", "parts": [{"type": "text", "content": PROMPT}]}]))
        span.set_attribute("gen_ai.output.messages", json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": ANSWER}]}]))
        # leftovers a reader may not consume: flattened OpenInference messages and a legacy prompt event
        span.set_attribute("llm.input_messages.0.message.role", "user")
        span.set_attribute("llm.input_messages.0.message.content", PROMPT)
        span.set_attribute("traceloop.entity.input", json.dumps({"args": [PROMPT]}))
        span.add_event("gen_ai.content.prompt", {"gen_ai.prompt": PROMPT})
        if fail:
            span.set_status(Status(StatusCode.ERROR, "upstream said no"))


def test_capture_off_keeps_structure_usage_timings_and_errors(opik: OpikStandin) -> None:
    exporter = make_exporter(opik, capture_content=False)
    tp = provider_for(exporter)
    tracer = tp.get_tracer("t")
    with tracer.start_as_current_span("agent run") as root:
        root.set_attribute("input.value", PROMPT)
        _llm_span(tracer)
        _llm_span(tracer, "chat failing", fail=True)
    assert exporter.force_flush(10_000)
    opik.wait_for_counts(traces=1, spans=3)
    tp.shutdown()
    text = sent_text(opik)
    assert PROMPT not in text and ANSWER not in text
    spans = spans_by_name(opik)
    llm = spans["chat gpt-4o-mini"]
    assert llm["input"]["content_omitted"] is True and llm["input"]["size"] > len(PROMPT)
    assert llm["output"]["content_omitted"] is True
    assert llm["type"] == "llm" and llm["model"] == "gpt-4o-mini-2024-07-18"
    assert llm["usage"]["prompt_tokens"] == 21 and llm["usage"]["completion_tokens"] == 13
    assert llm.get("ttft") == pytest.approx(250.0)
    assert llm["start_time"] < llm["end_time"]
    for family in ("llm.input_messages", "traceloop.entity.input"):
        if family in llm["metadata"]:
            assert llm["metadata"][family]["content_omitted"] is True
    assert spans["chat failing"]["error_info"]["message"] == "upstream said no"
    trace = traces_by_name(opik)["agent run"]
    assert trace["input"]["content_omitted"] is True


def test_capture_off_strips_content_events_and_flattened_families() -> None:
    from opentelemetry.exporter.opik._privacy import CaptureOff, strip_content

    md = {
        "llm.input_messages.0.message.content": "secret prompt",
        "llm.input_messages.1.message.content": "more",
        "gen_ai.system_instructions": "be nice",
        "gen_ai.request.temperature": 0.2,
        "otel": {"events": [{"name": "gen_ai.content.prompt", "attributes": {"gen_ai.prompt": "secret prompt"}},
                            {"name": "retry", "attributes": {"attempt": 2, "input.value": "x"}}]},
    }
    out = strip_content(md)
    assert out["llm.input_messages"] == {"content_omitted": True, "size": len(dumps("secret prompt")) + len(dumps("more")), "keys": 2}
    assert out["gen_ai.system_instructions"]["content_omitted"] is True
    assert out["gen_ai.request.temperature"] == 0.2
    assert "secret prompt" in json.dumps(md)  # the input was not changed in place
    records = _records({"gen_ai.operation.name": "chat"})
    m = Mapper(resolve_settings({}, env={})).map(records).items[0]
    m.data["metadata"] = md
    shared = copy.deepcopy(md)
    done = CaptureOff()(m)
    assert "secret prompt" not in json.dumps(done.data)
    assert done.data["metadata"]["otel"]["events"][1]["attributes"] == {"attempt": 2, "input.value": {"content_omitted": True, "size": 3}}
    assert md == shared


# -- blobs --------------------------------------------------------------------------

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + os.urandom(48_000)).decode()
JPEG_URI = "data:image/jpeg;base64," + base64.b64encode(b"\xff\xd8\xff" + os.urandom(40_000)).decode()


def test_blobs_become_placeholders_with_mime_and_size(opik: OpikStandin) -> None:
    # set explicitly: by default blobs below the attachment threshold (256,000 characters) stay inline
    exporter = make_exporter(opik, blob_max_bytes=32 * 1024)
    tp = provider_for(exporter)
    with tp.get_tracer("t").start_as_current_span("vision call") as span:
        span.set_attribute("gen_ai.operation.name", "chat")
        span.set_attribute("gen_ai.request.model", "gpt-4o")
        span.set_attribute(
            "gen_ai.input.messages",
            json.dumps([{"role": "user", "parts": [
                {"type": "text", "content": "what is in this picture?"},
                {"type": "blob", "modality": "image", "mime_type": "image/png", "content": PNG},
                {"type": "uri", "modality": "image", "uri": JPEG_URI},
            ]}]),
        )
        span.set_attribute("llm.input_messages.0.message.contents.0.message_content.image.image.url", JPEG_URI)
        span.set_attribute("small.icon", "data:image/gif;base64,R0lGODlhAQABAAAAACw=")
    assert exporter.force_flush(10_000)
    opik.wait_for_counts(traces=1, spans=1)
    tp.shutdown()
    text = sent_text(opik)
    assert PNG[:200] not in text and JPEG_URI[40:240] not in text
    png_size = len(base64.b64decode(PNG))
    jpeg_size = len(base64.b64decode(JPEG_URI.split(",", 1)[1]))
    assert f"[blob omitted: image/png, {png_size} bytes]" in text
    assert f"[blob omitted: image/jpeg, {jpeg_size} bytes]" in text
    assert "data:image/gif;base64,R0lGODlhAQABAAAAACw=" in text  # under the threshold: kept
    assert "what is in this picture?" in text
    assert exporter.stats()["blobs_omitted"] >= 2


def test_blob_detection_rules() -> None:
    anthropic_style = {"type": "base64", "media_type": "image/webp", "data": "UklGR" + "A" * 40_000}
    assert blob_placeholder(anthropic_style["data"], anthropic_style, 32_768) == "[blob omitted: image/webp, 30003 bytes]"
    assert blob_placeholder("iVBORw0KGgo" + "B" * 40_000, None, 32_768).startswith("[blob omitted: image/png,")
    assert blob_placeholder("word " * 10_000, None, 32_768) is None  # long text is not a blob
    assert blob_placeholder("A" * 100, None, 32_768) is None


# -- size cap -----------------------------------------------------------------------


def test_field_cap_truncates_inside_the_json(opik: OpikStandin) -> None:
    exporter = make_exporter(opik, field_max_bytes=4096)
    tp = provider_for(exporter)
    docs = [{"id": i, "text": f"document {i} " + "lorem ipsum " * 400} for i in range(6)]
    with tp.get_tracer("t").start_as_current_span("retrieve") as span:
        span.set_attribute("input.value", json.dumps({"query": "what is lorem?", "documents": docs}))
        span.set_attribute("output.value", "short answer")
    assert exporter.force_flush(10_000)
    opik.wait_for_counts(traces=1, spans=1)
    tp.shutdown()
    span = spans_by_name(opik)["retrieve"]
    inp = span["input"]
    assert len(dumps(inp)) <= 4096
    assert inp["query"] == "what is lorem?" and len(inp["documents"]) == 6 and inp["documents"][5]["id"] == 5
    assert "…[truncated" in inp["documents"][0]["text"]
    note = span["metadata"][NOTE_KEY]
    assert span["metadata"]["truncated"] is True
    assert note["original_size_bytes"]["input"] == len(dumps({"query": "what is lorem?", "documents": docs}))
    assert note["max_bytes"] == 4096 and "output" not in note["original_size_bytes"]
    assert span["output"] == {"value": "short answer"}


def test_fit_handles_many_small_entries_multibyte_and_depth() -> None:
    many = {f"k{i}": i for i in range(20_000)}
    out, size = fit(many, 2000)
    assert size > 2000 and len(dumps(out)) <= 2000 and "…" in out
    emoji = {"t": "😀" * 5000}
    out, _ = fit(emoji, 1000)
    assert len(dumps(out)) <= 1000 and out["t"].startswith("😀")
    deep: Any = "x" * 5000
    for _ in range(100):
        deep = [deep]
    out, _ = fit(deep, 500)
    assert len(dumps(out)) <= 500
    err = {"exception_type": "ValueError", "message": "m" * 10_000, "traceback": "t" * 10_000}
    out, _ = fit(err, 600, keep_keys=True)
    assert set(out) == set(err) and len(dumps(out)) <= 600 and out["exception_type"] == "ValueError"


def _records(attrs: Dict[str, Any], n: int = 1) -> Any:
    return [
        SpanRecord(trace_id=0xABC + i, span_id=0x1 + i, parent_span_id=None, name=f"root{i}", start_ns=1_764_000_000_000_000_000,
                   end_ns=1_764_000_001_000_000_000, attributes=dict(attrs))
        for i in range(n)
    ]


def test_shrink_item_fits_and_marks_the_item() -> None:
    settings = resolve_settings({}, env={})
    m = Mapper(settings).map(_records({"input.value": json.dumps({"doc": "z" * 200_000, "q": "why?"}), "k": "v"})).items[1]
    item = Item(m.kind, m.data["id"], dumps(m.data), m.label)
    small = shrink_item(item, 20_000)
    assert small is not None and small.size <= 20_000 and small.id == item.id and small.kind == "span"
    data = loads(small.body)
    assert data["input"]["q"] == "why?" and "…[truncated" in data["input"]["doc"]
    assert data["metadata"][NOTE_KEY]["original_size_bytes"]["input"] > 200_000
    assert data["metadata"]["k"] == "v"
    assert {k: data[k] for k in ("id", "trace_id", "start_time", "name")} == {k: m.data[k] for k in ("id", "trace_id", "start_time", "name")}
    assert shrink_item(item, item.size + 10) is item
    assert shrink_item(item, 50) is None  # the ids and times alone do not fit


def test_opik_413_is_answered_with_a_shrunk_item(opik: OpikStandin) -> None:
    opik.faults.add(Fault.body_limit(60_000))
    exporter = make_exporter(opik, retry_deadline=10.0)
    tp = provider_for(exporter)
    with tp.get_tracer("t").start_as_current_span("huge prompt") as span:
        span.set_attribute("input.value", json.dumps({"prompt": "lorem ipsum " * 25_000, "user": "ann"}))
    assert exporter.force_flush(15_000)
    opik.wait_for_counts(traces=1, spans=1)
    tp.shutdown()
    assert opik.count(status=413) >= 1
    for row in list(opik.spans.values()) + list(opik.traces.values()):
        assert row["input"]["user"] == "ann" and "…[truncated" in row["input"]["prompt"]
        assert row["metadata"][NOTE_KEY]["original_size_bytes"]["input"] > 300_000


def test_shared_objects_of_a_trace_row_and_its_root_span_are_not_changed() -> None:
    settings = resolve_settings({"field_max_bytes": 1024}, env={})
    attrs = {"input.value": json.dumps({"api_key": "sk-proj-Zq8xV2mN4pL7rT1yW9cB3dF6hJ0kS5aE", "doc": "d" * 5000}),
             "http.request.header.authorization": ("Bearer abcdefghijklmnop0123",)}
    items = Mapper(settings).map(_records(attrs)).items
    trace, span = items[0], items[1]
    assert trace.data["input"] is span.data["input"] and trace.data["metadata"] is span.data["metadata"]
    before = copy.deepcopy((trace.data, span.data))
    stage = ContentStage(settings)
    t2, s2 = stage(trace), stage(span)
    assert (trace.data, span.data) == before
    for out in (t2.data, s2.data):
        assert "sk-proj" not in json.dumps(out) and len(dumps(out["input"])) <= 1024
        assert out["metadata"][NOTE_KEY]["original_size_bytes"]["input"] > 5000


def test_a_trace_row_and_its_root_span_are_each_judged_by_the_one_walk() -> None:
    """They share their content objects: clean, both pass as they are; with a secret, both are scrubbed
    (each its own copy, the shared objects untouched)."""
    settings = resolve_settings({}, env={})
    clean, secret = _records({"input.value": json.dumps({"q": "what is the weather in Paris today?"})}, 2)
    secret.attributes["output.value"] = json.dumps({"leak": "token sk-proj-Zq8xV2mN4pL7rT1yW9cB3dF6hJ0kS5aE"})
    stats = Stats()
    stage = ContentStage(settings, stats)
    trace, span = Mapper(settings).map([clean]).items
    assert stage(trace) is trace and stage(span) is span
    assert stats.get("values_scrubbed") == 0

    trace, span = Mapper(settings).map([secret]).items
    assert trace.data["output"] is span.data["output"]
    before = copy.deepcopy(span.data["output"])
    t2, s2 = stage(trace), stage(span)
    assert t2 is not trace and s2 is not span and span.data["output"] == before
    for out in (t2.data, s2.data):
        assert "sk-proj" not in json.dumps(out) and "[scrubbed: api key]" in json.dumps(out)
    assert stats.get("values_scrubbed") == 2  # one in each item
