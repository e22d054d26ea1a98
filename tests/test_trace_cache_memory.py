"""What the trace cache keeps per trace stays small (a memory bound, measured with tracemalloc).

Under overload the exporter keeps mapping while the sink stalls, and the trace
cache holds up to 100,000 traces: its per-trace facts are most of the memory
the exporter grows by. Each entry keeps the trace's start, thread, first token
time, count-once ancestors and its first question and last answer; nothing that
is cheap to recompute per batch (the Opik trace id, the OTel id in hex).
"""

from __future__ import annotations

import gc
import json
import tracemalloc

from conftest_conventions import Recorder, ns

from opentelemetry.exporter.opik._config import resolve_settings
from opentelemetry.exporter.opik._mapping import Mapper
from opentelemetry.exporter.opik._record import from_readable_span

TRACES = 1500
#: measured 475 bytes a trace with these 8-character texts on CPython 3.11 (1,001 at 9f87f68, which kept
#: a set per trace for the count-once rule, the formatted ids and two tuples); 1.5x room for other builds
MAX_BYTES_PER_TRACE = 720


def _chat(n: int) -> dict:
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": 10 + n % 7,
        "gen_ai.usage.output_tokens": 3,
        "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": f"q{n:07d}"}]}]),
        "gen_ai.output.messages": json.dumps(
            [{"role": "assistant", "parts": [{"type": "text", "content": f"a{n:07d}"}]}]
        ),
    }


def _agent_traces(n: int) -> list:
    """``n`` traces of an agent root (no content of its own), an LLM call with usage and a tool call."""
    rec = Recorder()
    for i in range(n):
        t = i * 10.0
        root = rec.tracer.start_span("invoke_agent travel", start_time=ns(t),
                                     attributes={"gen_ai.operation.name": "invoke_agent",
                                                 "gen_ai.conversation.id": f"conv-{i}"})
        rec.span("chat gpt-4o-mini", _chat(i), t + 1, t + 4, parent=root)
        rec.span("execute_tool get_weather", {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "w"},
                 t + 5, t + 6, parent=root)
        root.end(end_time=ns(t + 8))
    return [from_readable_span(s) for s in rec.finished()]


def test_the_trace_cache_keeps_a_few_hundred_bytes_per_trace() -> None:
    records = _agent_traces(TRACES)
    mapper = Mapper(resolve_settings({}, env={}))
    batches = [records[i:i + 512] for i in range(0, len(records), 512)]
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        traces = 0
        for batch in batches:
            for items in mapper.iter_map(batch):
                traces += sum(1 for m in items if m.kind == "trace")
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    assert traces == TRACES and len(mapper.cache) == TRACES
    kept = sum(s.size_diff for s in after.compare_to(before, "filename"))
    per_trace = kept / TRACES
    assert 0 < per_trace <= MAX_BYTES_PER_TRACE, f"{per_trace:.0f} bytes per cached trace"
    # the texts a root span without its own content gets its trace row's input and output from
    with mapper.cache.lock:
        info = mapper.cache.peek(records[-1].trace_id)
    assert info is not None and info.question == f"q{TRACES - 1:07d}" and info.answer == f"a{TRACES - 1:07d}"
    assert info.counted_below(records[-1].span_id)  # the root: its LLM child's usage counts
