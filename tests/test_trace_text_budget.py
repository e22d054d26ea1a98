"""The trace row's question and answer are remembered per trace, in a bounded text budget.

A root span sent again (an OTLP sender retrying, ``import`` run twice) gets the
same trace row, not one that lost the text its LLM children gave it; and the
remembered texts never grow past the cache's budget.
"""

from __future__ import annotations

import json

from conftest_conventions import Recorder

from opentelemetry.exporter.opik._config import resolve_settings
from opentelemetry.exporter.opik._mapping import Mapper
from opentelemetry.exporter.opik._mapping._traces import TraceCache
from opentelemetry.exporter.opik._record import from_readable_span


def _llm_attrs(question: str, answer: str) -> dict:
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": question}]}]),
        "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": answer}]}]),
    }


def test_a_root_sent_again_gets_the_same_trace_row() -> None:
    rec = Recorder()
    root = rec.tracer.start_span("agent run")
    rec.span("chat", _llm_attrs("Weather in Paris?", "Mild."), 1, 5, parent=root)
    root.end()
    child, parent = [from_readable_span(s) for s in rec.finished()]
    mapper = Mapper(resolve_settings({}, env={}))
    first = [m.data for m in mapper.map([child]).items] + [m.data for m in mapper.map([parent]).items]
    again = [m.data for m in mapper.map([parent]).items]  # the sender retried the root alone
    trace_first = next(d for d in first if "trace_id" not in d)
    trace_again = next(d for d in again if "trace_id" not in d)
    assert trace_first["input"] == {"messages": [{"role": "user", "content": "Weather in Paris?"}]}
    assert trace_again["input"] == trace_first["input"] and trace_again["output"] == trace_first["output"]


def test_remembered_texts_stay_within_the_budget() -> None:
    cache = TraceCache(max_text_chars=10_000)
    mapper = Mapper(resolve_settings({}, env={}), cache=cache)
    rec = Recorder()
    for i in range(200):
        rec.span(f"chat {i}", _llm_attrs("q" * 100, "a" * 100), i, i + 1)
    mapper.map([from_readable_span(s) for s in rec.finished()])
    assert 0 < cache.text_chars <= 10_000
    assert len(cache) <= 10_000 // 200 + 1  # the oldest traces were forgotten to stay within it
