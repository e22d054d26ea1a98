"""Real instrumentations, real ``openai`` client, real HTTP, real exporter, schema-checked Opik stand-in.

Each instrumentation (openai-v2 with the latest GenAI conventions, OpenInference,
Traceloop) runs ``instrumented_app.py`` in its own process against the fake
OpenAI server and exports through ``OpikSpanExporter`` to one stand-in; the
three processes run concurrently. The tests then check what Opik stored, and
read it the way Opik's UI does (``opik_ui``): every LLM span a conversation
whose table text is the question and the model's answer, every trace row the
question and the final answer, the three turns of a conversation one thread.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numbers_check
import opik_ui
import pytest
from opik_standin import OpikStandin

APP = Path(__file__).resolve().parent / "instrumented_app.py"
MODULES = {
    "openai_v2": "opentelemetry.instrumentation.openai_v2",
    "openinference": "openinference.instrumentation.openai",
    "traceloop": "opentelemetry.instrumentation.openai",
}
MODEL = "gpt-4o-mini-2024-07-18"
CASES = ("warmup", "chat", "stream", "tool", "tool_round_trip", "image", "turn1", "turn2", "turn3", "error",
         "long_stream")
TURNS = ("turn1", "turn2", "turn3")


def _available(name: str) -> bool:
    try:
        return sys.version_info >= (3, 10) and importlib.util.find_spec(MODULES[name]) is not None
    except ImportError:  # a parent package is missing
        return False


AVAILABLE = [n for n in MODULES if _available(n)]
pytestmark = pytest.mark.skipif(not AVAILABLE, reason="no OpenAI instrumentation installed (they need Python >= 3.10)")


def _drops_multipart_content(run: "Run", case: str) -> bool:
    """openai-v2 2.4b0 records no part of a message whose content is a list (``_is_text_part``):
    the image case's user message arrives as ``{"role": "user", "parts": []}``, nothing to render."""
    return run.name == "openai_v2" and case == "image"


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

    def llm_spans(self, case: str) -> Tuple[Dict[str, Any], List[Dict[str, Any]]]:
        """(trace, its LLM spans in call order) of ``case:<case>``."""
        trace = self.traces[f"case:{case}"]
        llm = sorted((s for s in self.spans[trace["id"]] if s.get("parent_span_id")), key=lambda s: s["start_time"])
        assert all(s["type"] == "llm" for s in llm), [(s["name"], s["type"]) for s in llm]
        return trace, llm

    def case(self, case: str) -> Tuple[Dict[str, Any], Dict[str, Any]]:
        """(trace, the LLM span) of ``case:<case>``."""
        trace, llm = self.llm_spans(case)
        assert len(llm) == 1, [s["name"] for s in self.spans[trace["id"]]]
        return trace, llm[0]

    def calls(self, case: str) -> List[Dict[str, Any]]:
        """What the app asked and received, per call of ``case``."""
        return self.facts["calls"][case]


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


def _fields(run: Run, trace: Dict[str, Any], span: Dict[str, Any]) -> None:
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
    assert "error_info" not in span and "error_info" not in trace


@pytest.mark.parametrize("case", ["chat", "stream", "tool", "image", *TURNS])
def test_llm_span_fields(run: Run, case: str) -> None:
    trace, span = run.case(case)
    _fields(run, trace, span)
    # the case root span is the trace; no usage on it
    assert trace["name"] == f"case:{case}"
    root = [s for s in run.spans[trace["id"]] if not s.get("parent_span_id")]
    assert len(root) == 1 and root[0]["type"] == "general" and "usage" not in root[0]


def _check_llm_span(run: Run, case: str, n: int, span: Dict[str, Any], call: Dict[str, Any]) -> None:
    if _drops_multipart_content(run, case):
        assert span["input"] == {"messages": [{"role": "user", "parts": []}]}
        assert opik_ui.problems(span, answer=call["answer"]) == ["empty message input[0] (user)"]
        return
    where = f"{run.name} case:{case} call {n}"
    assert opik_ui.problems(span, call["question"], call["answer"]) == [], where
    assert opik_ui.messages_tab(span), where
    if call["answer"] is None:  # answered with a tool call
        message = span["output"]["choices"][0]["message"]
        assert [(t["id"], t["type"], t["function"]["name"], json.loads(t["function"]["arguments"]))
                for t in message["tool_calls"]] == [
            (t["id"], "function", t["name"], json.loads(t["arguments"])) for t in call["tool_calls"]], where


@pytest.mark.parametrize("case", [c for c in CASES if c != "error"])
def test_every_llm_span_reads_as_a_conversation(run: Run, case: str) -> None:
    trace, spans = run.llm_spans(case)
    calls = run.calls(case)
    assert len(spans) == len(calls)
    for n, (span, call) in enumerate(zip(spans, calls)):
        _check_llm_span(run, case, n, span, call)


def _final_answer(calls: List[Dict[str, Any]]) -> Optional[str]:
    return next((c["answer"] for c in reversed(calls) if c.get("answer")), None)


@pytest.mark.parametrize("case", CASES)
def test_every_trace_row_reads_as_question_and_answer(run: Run, case: str) -> None:
    trace, _ = run.llm_spans(case)
    calls = run.calls(case)
    if _drops_multipart_content(run, case):
        assert "input" not in trace  # the only question was never recorded
    else:
        assert opik_ui.table_text(trace["input"], "input") == calls[0]["question"]
        assert opik_ui.input_detected(trace["input"])
    answer = _final_answer(calls)
    if answer is None:  # a failed call, or a call answered with a tool call only
        assert "output" not in trace
    else:
        assert opik_ui.table_text(trace["output"], "output") == answer
        assert opik_ui.output_detected(trace["output"])


def test_every_llm_call_is_one_span(run: Run) -> None:
    """Counted over the whole run: one LLM span per call, each reads as a conversation."""
    calls = [(case, n, call) for case, per_case in run.facts["calls"].items() for n, call in enumerate(per_case)]
    spans = [s for case in CASES for s in run.llm_spans(case)[1]]
    assert len(spans) == len(calls) == 12
    passing = 0
    for case in CASES:
        _, per_case = run.llm_spans(case)
        for n, (span, call) in enumerate(zip(per_case, run.calls(case))):
            if case == "error":
                assert opik_ui.problems(span, call["question"]) == []
                passing += 1
            elif not _drops_multipart_content(run, case):
                _check_llm_span(run, case, n, span, call)
                passing += 1
    assert passing == (11 if run.name == "openai_v2" else 12)


def test_tool_round_trip(run: Run) -> None:
    trace, (first, second) = run.llm_spans("tool_round_trip")
    call_id = run.calls("tool_round_trip")[0]["tool_calls"][0]["id"]
    for span in (first, second):
        _fields(run, trace, span)
    assert first["output"]["choices"][0]["finish_reason"] in ("tool_calls", "tool_call")
    # the second call's input: the question, the assistant's tool call, the tool's result
    msgs = second["input"]["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "tool"]
    assert msgs[0]["content"] == "Weather in Paris?"
    (tc,) = msgs[1]["tool_calls"]
    assert (tc["id"], tc["type"], tc["function"]["name"]) == (call_id, "function", "get_weather")
    assert json.loads(tc["function"]["arguments"]) == {"city": "Paris", "unit": "celsius"}
    assert msgs[2] == {"role": "tool", "tool_call_id": call_id, "content": "Sunny, 21 C"}
    assert second["output"]["choices"][0]["message"] == {"role": "assistant", "content": "It is sunny in Paris, 21 C."}
    assert opik_ui.table_text(trace["input"], "input") == "Weather in Paris?"
    assert opik_ui.table_text(trace["output"], "output") == "It is sunny in Paris, 21 C."


def test_image_renders_as_an_image_part(run: Run) -> None:
    _, span = run.case("image")
    assert run.facts["image_url"].startswith("data:image/png;base64,iVBORw0KGgo")
    if _drops_multipart_content(run, "image"):
        # nothing of the message reached the span (neither the image nor the question): nothing to render
        assert span["input"] == {"messages": [{"role": "user", "parts": []}]}
        assert "base64" not in _text(span) and "What is in this image?" not in _text(span)
        return
    (user,) = [m for m in span["input"]["messages"] if m["role"] == "user"]
    assert user["content"] == [
        {"type": "text", "text": "What is in this image?"},
        {"type": "image_url", "image_url": {"url": run.facts["image_url"]}},
    ]


def test_three_turns_are_one_thread(run: Run) -> None:
    threads = {run.traces[f"case:{t}"].get("thread_id") for t in TURNS}
    assert threads == {run.facts["conversation_id"]}
    # no other trace joins the thread
    assert [n for n, t in run.traces.items() if t.get("thread_id")] == [f"case:{t}" for t in TURNS]
    for n, turn in enumerate(TURNS, 1):
        trace, span = run.case(turn)
        (call,) = run.calls(turn)
        # the history grows: system + (user, assistant) per earlier turn + this turn's question
        assert [(m["role"], m["content"]) for m in span["input"]["messages"]] == [
            (m["role"], m["content"]) for m in call["messages"]]
        assert len(span["input"]["messages"]) == 2 * n
        assert opik_ui.table_text(trace["input"], "input") == call["question"]
        assert opik_ui.table_text(trace["output"], "output") == call["answer"]


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
    # the question still reads as a conversation; the error is shown next to it
    assert opik_ui.input_detected(span["input"]) and opik_ui.problems(span, "Say hello") == []
    assert "error_info" not in trace  # the app caught the error: its root span did not fail


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


def test_tool_definitions_stay_in_metadata(run: Run) -> None:
    _, span = run.case("tool")
    md = span["metadata"]
    if run.name == "traceloop":
        (tool,) = md["gen_ai.tool.definitions"]
        assert tool["name"] == "get_weather"
        assert md["gen_ai.response.finish_reasons"] == ["tool_call"]
    elif run.name == "openinference":
        assert "get_weather" in _text(md["llm.tools"])
    else:  # openai-v2 2.4b0 records no tool definitions
        assert md["gen_ai.response.finish_reasons"] == ["tool_calls"]
        assert "get_weather" not in _text(md)
    assert "get_weather" not in _text(span["input"]["messages"])  # the definitions are not a message


def test_numbers(run: Run) -> None:
    """Per trace, span usage sums to what the server returned (the app's case span counts nothing), every LLM span
    priceable (provider openai, the answered model), ttft on every streamed call where the instrumentation records
    the first token (OpenInference; Traceloop but for the long stream whose first chunk events were dropped;
    openai-v2 records none)."""
    traces = list(run.traces.values())
    spans = [s for lst in run.spans.values() for s in lst]
    found = numbers_check.problems(traces, spans, run.facts["served"], ttft=run.name != "openai_v2",
                                   no_ttft=("case:long_stream",) if run.name == "traceloop" else ())
    assert found == []
    assert sum(1 for s in spans if s.get("usage")) == sum(1 for c in run.facts["served"] if c["usage"])
