"""Real instrumentations, real ``openai`` client, real HTTP, real exporter, schema-checked Opik stand-in.

Each instrumentation (openai-v2 with the latest GenAI conventions, OpenInference,
Traceloop) runs ``instrumented_app.py`` in its own process against the fake
OpenAI server and exports through ``OpikSpanExporter`` to one stand-in; the
three processes run concurrently. The tests then check what Opik stored.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest
from opik_standin import OpikStandin

APP = Path(__file__).resolve().parent / "instrumented_app.py"
MODULES = {
    "openai_v2": "opentelemetry.instrumentation.openai_v2",
    "openinference": "openinference.instrumentation.openai",
    "traceloop": "opentelemetry.instrumentation.openai",
}
MODEL = "gpt-4o-mini-2024-07-18"


def _available(name: str) -> bool:
    try:
        return sys.version_info >= (3, 10) and importlib.util.find_spec(MODULES[name]) is not None
    except ImportError:  # a parent package is missing
        return False


AVAILABLE = [n for n in MODULES if _available(n)]
pytestmark = pytest.mark.skipif(not AVAILABLE, reason="no OpenAI instrumentation installed (they need Python >= 3.10)")


class Run:
    """What one instrumented process sent to Opik, grouped by case."""

    def __init__(self, name: str, facts: Dict[str, Any], opik: OpikStandin) -> None:
        self.name = name
        self.facts = facts
        project = f"proj-{name}"
        self.traces = {t["name"]: t for t in opik.traces.values() if t["project_name"] == project}
        by_trace: Dict[str, List[Dict[str, Any]]] = {}
        for s in opik.spans.values():
            if s["project_name"] == project:
                by_trace.setdefault(s["trace_id"], []).append(s)
        self.spans = by_trace

    def case(self, case: str) -> Tuple[Dict[str, Any], Dict[str, Any]]:
        """(trace, the LLM span) of ``case:<case>``."""
        trace = self.traces[f"case:{case}"]
        llm = [s for s in self.spans[trace["id"]] if s.get("parent_span_id")]
        assert len(llm) == 1, [s["name"] for s in self.spans[trace["id"]]]
        return trace, llm[0]


@pytest.fixture(scope="module")
def runs() -> Iterator[Dict[str, Run]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPIK_", "OTEL_"))}
    env["OPIK_CONFIG_PATH"] = os.devnull
    with OpikStandin() as opik:
        procs = {
            name: subprocess.Popen(
                [sys.executable, str(APP), name, opik.url, f"proj-{name}"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            for name in AVAILABLE
        }
        facts: Dict[str, Dict[str, Any]] = {}
        for name, proc in procs.items():
            out, err = proc.communicate(timeout=90)
            assert proc.returncode == 0, f"{name} failed:\n{err[-3000:]}"
            facts[name] = json.loads(out.strip().splitlines()[-1])
            assert facts[name]["flushed"] is True
        # every body passed the stand-in's schema and UUIDv7 checks
        bad = [(r.path, r.status) for r in opik.requests if r.status is None or r.status >= 300]
        assert bad == []
        assert opik.duplicates() == {}
        yield {name: Run(name, f, opik) for name, f in facts.items()}


@pytest.fixture(params=AVAILABLE)
def run(request: pytest.FixtureRequest, runs: Dict[str, Run]) -> Run:
    return runs[request.param]


def _text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


@pytest.mark.parametrize("case", ["chat", "stream", "tool"])
def test_llm_span_fields(run: Run, case: str) -> None:
    trace, span = run.case(case)
    f = run.facts
    assert span["type"] == "llm"
    assert span["model"] == MODEL
    assert span["provider"] == "openai"
    usage = span["usage"]
    assert usage["prompt_tokens"] == f["prompt_tokens"]
    assert usage["completion_tokens"] == f["completion_tokens"]
    assert usage["total_tokens"] == f["prompt_tokens"] + f["completion_tokens"]
    if run.name != "openai_v2":  # openai-v2 2.4b0 does not record cached tokens
        assert usage["cache_read_input_tokens"] == f["cached_tokens"]
    assert all(isinstance(v, int) for v in usage.values())
    # messages in, answer out
    assert isinstance(span["input"]["messages"], list)
    user_text = "Weather in Paris?" if case == "tool" else "Say hello"
    assert user_text in _text(span["input"])
    if case == "tool":
        assert "get_weather" in _text(span["output"]) and "Paris" in _text(span["output"])
    else:
        assert f["content"] in _text(span["output"])
    assert "error_info" not in span and "error_info" not in trace
    # the case root span is the trace; no usage on it
    assert trace["name"] == f"case:{case}"
    root = [s for s in run.spans[trace["id"]] if not s.get("parent_span_id")]
    assert len(root) == 1 and root[0]["type"] == "general" and "usage" not in root[0]


def test_system_prompt_kept(run: Run) -> None:
    _, span = run.case("chat")
    assert "You are terse." in _text(span["input"])


def test_error_answer(run: Run) -> None:
    trace, span = run.case("error")
    assert run.facts["error"] == "openai.InternalServerError"
    info = span["error_info"]
    assert info["exception_type"] == "openai.InternalServerError"  # openai-v2's "<class '...'>" cleaned
    assert "500" in info["message"] and info["traceback"]
    assert span["type"] == "llm" and span["provider"] == "openai" and span["model"] == "error-model"
    assert "usage" not in span and "output" not in span
    assert "Say hello" in _text(span["input"])


def test_ttft_matches_the_servers_first_chunk(run: Run) -> None:
    trace, span = run.case("stream")
    delay = run.facts["stream_first_chunk_ms"]
    if run.name == "openai_v2":
        # records no first chunk (no event, no gen_ai.response.time_to_first_chunk): nothing to guess from
        assert "ttft" not in span and "ttft" not in trace
        return
    assert abs(span["ttft"] - delay) <= 0.2 * delay, (span["ttft"], delay)
    # the trace's ttft: the LLM child's first token, measured from the trace start
    assert abs(trace["ttft"] - delay) <= 0.2 * delay, (trace["ttft"], delay)
    assert trace["ttft"] >= span["ttft"]
    # non-streaming calls have none
    _, chat = run.case("chat")
    assert "ttft" not in chat


def test_no_ttft_guess_after_dropped_chunk_events(run: Run) -> None:
    trace, span = run.case("long_stream")
    assert span["type"] == "llm" and span["usage"]["completion_tokens"] == run.facts["completion_tokens"]
    if run.name == "traceloop":
        # one event per chunk: the oldest (the first chunk) were dropped, so no ttft at all
        assert span["metadata"]["otel"]["dropped"]["events"] > 0
        assert "ttft" not in span and "ttft" not in trace
        assert "events" not in span["metadata"]["otel"]  # chunk events never flood metadata
    elif run.name == "openinference":
        # a single first-token event, never dropped: still exact
        assert span["ttft"] > 0


def test_metadata_keeps_request_details(run: Run) -> None:
    _, span = run.case("chat")
    md = span["metadata"]
    if run.name == "openinference":
        assert md["llm.invocation_parameters"]["temperature"] == 0.5
        assert not any(k.startswith(("llm.input_messages.", "llm.output_messages.", "llm.token_count.")) for k in md)
    else:
        assert md["gen_ai.request.temperature"] == 0.5
        assert md["gen_ai.request.model"] == "gpt-4o-mini"  # the alias asked for; the response model is `model`
        assert md["gen_ai.response.id"].startswith("chatcmpl-")
        assert not any(k.startswith("gen_ai.usage.") for k in md)
        assert "gen_ai.input.messages" not in md and "gen_ai.output.messages" not in md
