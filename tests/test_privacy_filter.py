"""Span filtering: ``span_filter=genai`` across export batches, and scope allow/deny lists."""

from __future__ import annotations

import json
import time
from typing import Any, Dict, Iterator, List, Tuple

import httpx
import openai
import pytest
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind

from opentelemetry.exporter.opik import resolve_settings
from opentelemetry.exporter.opik._mapping import Mapper
from opentelemetry.exporter.opik._pipeline import Pipeline
from opentelemetry.exporter.opik._privacy import GenAIFilter
from opentelemetry.exporter.opik._record import SpanRecord
from opentelemetry.exporter.opik._stats import Stats

try:
    from tests.conftest_privacy import make_exporter, opik  # noqa: F401
    from tests.fake_openai import FakeOpenAIServer
    from tests.opik_standin import OpikStandin
except ImportError:
    from conftest_privacy import make_exporter, opik  # type: ignore[no-redef] # noqa: F401
    from fake_openai import FakeOpenAIServer  # type: ignore[no-redef]
    from opik_standin import OpikStandin  # type: ignore[no-redef]


@pytest.fixture
def fake_llm() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


def _run_app(exporter: Any, llm: FakeOpenAIServer) -> Tuple[List[int], TracerProvider]:
    """One request that calls an LLM (real openai client + openai-v2 and httpx instrumentation)
    after a DB query and an HTTP call, then queries again; and one health check that is
    pure HTTP/DB noise.

    ``max_export_batch_size=1``: every span is its own export batch, so the children
    reach the exporter before their root, one by one, as in a busy service."""
    tp = TracerProvider(resource=Resource.create({"service.name": "shop"}))
    bsp = BatchSpanProcessor(exporter, max_export_batch_size=1, schedule_delay_millis=20)
    tp.add_span_processor(bsp)
    oai, hx = OpenAIInstrumentor(), HTTPXClientInstrumentor()
    oai.instrument(tracer_provider=tp)
    hx.instrument(tracer_provider=tp)
    tracer = tp.get_tracer("shop.web")
    try:
        client = openai.OpenAI(base_url=llm.base_url, api_key="test-key", max_retries=0)
        with tracer.start_as_current_span("GET /ask", kind=SpanKind.SERVER) as ask:
            with tracer.start_as_current_span("SELECT users", kind=SpanKind.CLIENT) as db:
                db.set_attribute("db.system", "postgresql")
            httpx.get(llm.base_url.replace("/v1", "/profile"), timeout=5)
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}])
            with tracer.start_as_current_span("UPDATE stats", kind=SpanKind.CLIENT) as db:
                db.set_attribute("db.system", "postgresql")
        with tracer.start_as_current_span("GET /health", kind=SpanKind.SERVER) as health:
            with tracer.start_as_current_span("SELECT 1", kind=SpanKind.CLIENT):
                pass
            httpx.get(llm.base_url.replace("/v1", "/healthz"), timeout=5)
        assert tp.force_flush(10_000)
        return [ask.get_span_context().trace_id, health.get_span_context().trace_id], tp
    finally:
        oai.uninstrument()
        hx.uninstrument()


def _names(opik: OpikStandin) -> Tuple[List[str], List[str]]:
    return sorted(t["name"] for t in opik.traces.values()), sorted(s["name"] for s in opik.spans.values())


def test_genai_filter_keeps_llm_traces_whole_and_drops_pure_noise(opik: OpikStandin, fake_llm: FakeOpenAIServer) -> None:
    exporter = make_exporter(opik, span_filter="genai")
    _, tp = _run_app(exporter, fake_llm)
    opik.wait_for_counts(traces=1, spans=5)
    tp.shutdown()
    traces, spans = _names(opik)
    assert traces == ["GET /ask"]
    # the DB query and HTTP call that ended before the LLM call were held, then released
    assert spans == ["GET", "GET /ask", "SELECT users", "UPDATE stats", "chat gpt-4o-mini"]
    ask = next(iter(opik.traces.values()))["id"]
    assert all(s["trace_id"] == ask for s in opik.spans.values())
    by_name = {s["name"]: s for s in opik.spans.values()}
    for name in ("GET", "SELECT users", "chat gpt-4o-mini", "UPDATE stats"):
        assert by_name[name]["parent_span_id"] == by_name["GET /ask"]["id"]
    assert by_name["chat gpt-4o-mini"]["type"] == "llm"
    # the health check: its root span, its trace row, its DB and HTTP spans
    assert exporter.stats()["dropped"]["filtered"] == 4


def test_without_the_filter_everything_is_sent(opik: OpikStandin, fake_llm: FakeOpenAIServer) -> None:
    exporter = make_exporter(opik)
    _, tp = _run_app(exporter, fake_llm)
    opik.wait_for_counts(traces=2, spans=8)
    tp.shutdown()
    assert _names(opik)[0] == ["GET /ask", "GET /health"]


def test_scope_deny_and_allow(opik: OpikStandin, fake_llm: FakeOpenAIServer) -> None:
    exporter = make_exporter(opik, scopes_deny=("opentelemetry.instrumentation.httpx",))
    _, tp = _run_app(exporter, fake_llm)
    opik.wait_for_counts(traces=2, spans=6)
    tp.shutdown()
    assert "GET" not in _names(opik)[1]
    assert exporter.stats()["dropped"]["scope_filtered"] == 2

    opik.clear()
    exporter = make_exporter(opik, scopes_allow=("opentelemetry.util.genai", "opentelemetry.instrumentation.openai"))
    _, tp = _run_app(exporter, fake_llm)
    opik.wait_for_counts(traces=1, spans=1)
    tp.shutdown()
    # the LLM span, and the trace row it needs; the health check had no allowed span at all
    assert _names(opik) == (["GET /ask"], ["chat gpt-4o-mini"])


# -- the holding buffer, bounded --------------------------------------------------------


def _rec(trace: int, span: int, parent: int = 0, **attrs: Any) -> SpanRecord:
    now = time.time_ns()
    return SpanRecord(trace_id=trace, span_id=span, parent_span_id=parent or None, name=f"s{trace}.{span}",
                      start_ns=now - 1_000_000, end_ns=now, attributes=attrs)


def _pipeline(**kw: Any) -> Tuple[Pipeline, GenAIFilter, Stats]:
    settings = resolve_settings({}, env={})
    stats = Stats()
    flt = GenAIFilter(stats, **kw)
    return Pipeline(settings, Mapper(settings), stats=stats, stages=[flt]), flt, stats


def test_held_spans_are_bounded_and_counted() -> None:
    p, flt, stats = _pipeline(max_held=10)
    for t in range(1, 8):  # seven unfinished traces, three children each
        for s in range(1, 4):
            assert p.process([_rec(t, s, parent=100)]).items == []
    # over the bound, the oldest trace's held spans go: traces 1-4 (12 spans), 9 held of 5-7
    assert flt.held == 9
    assert stats.snapshot()["dropped"]["filtered"] == 12
    # a GenAI span for the newest trace releases what is held of it
    out = p.process([_rec(7, 9, parent=100, **{"gen_ai.operation.name": "chat", "gen_ai.request.model": "m"})]).items
    assert sorted(json.loads(i.body)["name"] for i in out) == ["s7.1", "s7.2", "s7.3", "s7.9"]


def test_held_spans_expire_and_are_dropped_at_close() -> None:
    p, flt, stats = _pipeline(hold_seconds=0.0)
    p.process([_rec(1, 1, parent=5)])
    assert flt.held == 0 and stats.snapshot()["dropped"]["filtered"] == 1  # expired at the end of the batch
    p, flt, stats = _pipeline()
    p.process([_rec(1, 1, parent=5), _rec(2, 1, parent=5)])
    assert flt.held == 2
    assert p.close() == [] and flt.held == 0 and stats.snapshot()["dropped"]["filtered"] == 2


def test_root_in_the_same_batch_as_its_llm_child() -> None:
    p, _, stats = _pipeline()
    out = p.process([_rec(3, 2, parent=1, **{"gen_ai.operation.name": "chat"}), _rec(3, 1), _rec(4, 1)])
    kinds: Dict[str, List[str]] = {}
    for i in out.items:
        kinds.setdefault(i.kind, []).append(json.loads(i.body)["name"])
    assert kinds == {"trace": ["s3.1"], "span": ["s3.2", "s3.1"]}
    assert stats.snapshot()["dropped"]["filtered"] == 2  # trace 4: its trace row and its span
    # a late child of a trace already judged noise is dropped at once, not held
    assert p.process([_rec(4, 7, parent=1)]).items == [] and stats.snapshot()["dropped"]["filtered"] == 3


def test_an_agent_span_alone_makes_a_trace_genai() -> None:
    p, _, stats = _pipeline()
    out = p.process([_rec(5, 2, parent=1, **{"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "helper"}), _rec(5, 1)])
    assert sorted(json.loads(i.body)["name"] for i in out.items) == ["s5.1", "s5.1", "s5.2"]
    assert stats.snapshot()["dropped"] == {}
