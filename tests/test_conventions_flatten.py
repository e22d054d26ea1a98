"""Flattened-key reassembly, and the cost rules: unrelated spans never scan their keys, others once."""

from __future__ import annotations

import json
from typing import Any, Dict, Iterator

from conftest_conventions import T0

from opentelemetry.exporter.opik._config import resolve_settings
from opentelemetry.exporter.opik._json import dumps
from opentelemetry.exporter.opik._mapping import Mapper
from opentelemetry.exporter.opik._mapping._model import MappedSpan
from opentelemetry.exporter.opik._mapping.conventions import READERS
from opentelemetry.exporter.opik._mapping.conventions._flatten import PREFIXES, collect, groups, unflatten
from opentelemetry.exporter.opik._record import EventRecord, SpanRecord


class CountingAttrs(dict):
    """A span's attributes that count how often their keys are walked."""

    iterations = 0

    def __iter__(self) -> Iterator[str]:
        CountingAttrs.iterations += 1
        return super().__iter__()

    def keys(self) -> Any:  # type: ignore[override]
        CountingAttrs.iterations += 1
        return super().keys()

    def items(self) -> Any:  # type: ignore[override]
        CountingAttrs.iterations += 1
        return super().items()


def _record(attrs: Dict[str, Any], name: str = "s", events: Any = ()) -> SpanRecord:
    return SpanRecord(trace_id=1, span_id=2, parent_span_id=None, name=name, start_ns=T0, end_ns=T0 + 1000,
                      attributes=CountingAttrs(attrs), events=events)


def _read(rec: SpanRecord) -> MappedSpan:
    out = MappedSpan(rec)
    for reader in READERS:
        reader(out)
    return out


def test_unflatten_numeric_order_gaps_and_namespaces() -> None:
    attrs = {f"llm.input_messages.{i}.message.content": f"m{i}" for i in (10, 2, 0, 9, 1)}
    attrs["llm.input_messages.2.message.tool_calls.1.tool_call.function.name"] = "second"
    attrs["llm.input_messages.2.message.tool_calls.0.tool_call.function.name"] = "first"
    items = unflatten(attrs, list(attrs), "llm.input_messages.")
    assert [m["content"] for m in items] == ["m0", "m1", "m2", "m9", "m10"]
    assert [c["function"]["name"] for c in items[2]["tool_calls"]] == ["first", "second"]


def test_unflatten_tolerates_collisions_and_junk() -> None:
    attrs = {
        "gen_ai.prompt.0.content": "text",
        "gen_ai.prompt.0.content.0.type": "collides with the leaf above",
        "gen_ai.prompt.x.role": "not indexed",
        "gen_ai.prompt.1": "bare value",
    }
    items = unflatten(attrs, list(attrs), "gen_ai.prompt.")
    assert items == [{"content": "text"}, "bare value"]
    assert unflatten({}, [], "gen_ai.prompt.") == []


def test_collect_spread_dict() -> None:
    attrs = {"langsmith.metadata.a": 1, "langsmith.metadata.b.c": "x"}
    assert collect(attrs, list(attrs), "langsmith.metadata.") == {"a": 1, "b.c": "x"}


def test_every_prefix_is_grouped() -> None:
    attrs = {p + "0.x": i for i, p in enumerate(PREFIXES)}
    attrs["http.method"] = "GET"
    out = MappedSpan(_record(attrs))
    g = groups(out)
    assert g == {p: [p + "0.x"] for p in PREFIXES}
    assert groups(out) is g  # cached


def test_unrelated_span_costs_no_key_scan() -> None:
    attrs = {f"http.request.header.{i}": "v" for i in range(30)}
    attrs.update({"http.method": "GET", "url.full": "https://example.com", "db.system": "postgresql"})
    CountingAttrs.iterations = 0
    out = _read(_record(attrs, events=[EventRecord("log", T0, {})]))
    assert CountingAttrs.iterations == 0
    assert out.type is None and not out.is_genai
    assert "groups" not in (out.scratch or {})


def test_genai_span_without_flattened_families_costs_no_key_scan() -> None:
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "m",
             "gen_ai.usage.input_tokens": 3, "gen_ai.usage.output_tokens": 1,
             "gen_ai.input.messages": '[{"role": "user", "parts": []}]'}
    CountingAttrs.iterations = 0
    out = _read(_record(attrs))
    assert CountingAttrs.iterations == 0
    assert out.type == "llm" and out.usage == {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}


def test_family_spans_scan_their_keys_once() -> None:
    attrs = {"openinference.span.kind": "LLM", "llm.model_name": "m", "session.id": "s",
             "llm.input_messages.0.message.role": "user", "llm.input_messages.0.message.content": "hi",
             "llm.output_messages.0.message.content": "yo", "llm.tools.0.tool.json_schema": "{}",
             # also Traceloop association properties and LangSmith metadata on the same span
             "traceloop.association.properties.chat_id": "c", "llm.is_streaming": False,
             "langsmith.span.kind": "llm", "langsmith.metadata.k": "v"}
    CountingAttrs.iterations = 0
    out = _read(_record(attrs))
    assert CountingAttrs.iterations == 1
    assert out.input == {"messages": [{"role": "user", "content": "hi"}]}
    assert out.metadata["chat_id"] == "c" and out.metadata["k"] == "v"


def test_mapper_never_fails_a_span_on_odd_values() -> None:
    attrs = {
        "openinference.span.kind": 7,
        "llm.token_count.prompt": "many",
        "llm.token_count.completion": -3,
        "llm.token_count.total": 2**40,
        "llm.input_messages.0.message.content": ("a", "b"),
        "gen_ai.operation.name": "",
        "gen_ai.usage.input_tokens": True,
        "gen_ai.response.time_to_first_chunk": "soon",
        "gen_ai.evaluation.name": "x",
        "gen_ai.evaluation.score.value": float("nan"),
        "langfuse.observation.usage_details": "{not json",
        "langfuse.observation.completion_start_time": "yesterday",
        "traceloop.entity.input": "[1, 2",
        "ai.operationId": "ai.streamText.doStream",
        "ai.response.msToFirstChunk": -5,
    }
    rec = SpanRecord(trace_id=1, span_id=2, parent_span_id=None, name="odd", start_ns=T0, end_ns=T0 + 1,
                     attributes=attrs)
    result = Mapper(resolve_settings({}, env={})).map([rec])
    assert result.rejected == []
    span = json.loads(dumps(next(m.data for m in result.items if m.kind == "span")))
    assert "usage" not in span and "ttft" not in span
    assert span["type"] == "general"  # an unknown OpenInference kind
    assert span["input"] == {"messages": [{"content": ["a", "b"]}]}
    assert [m for m in result.items if m.kind == "span_score"] == []
