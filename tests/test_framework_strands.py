"""Strands Agents, both telemetry convention modes, as Opik's UI shows them.

``frameworks/strands_app.py`` runs real Strands agents (``OpenAIModel`` against the
fake OpenAI server) once with Strands' default telemetry (``legacy``: GenAI span
events whose contents are JSON strings of Bedrock-style blocks) and once with
``OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental`` (``latest``: the
messages on ``gen_ai.client.inference.operation.details`` span events), exporting
through the real ``OpikSpanExporter`` to the schema-checking stand-in. The tests
read what Opik stored with ``opik_ui``, the checker written from Opik's frontend.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Iterator

import framework_env
import numbers_check
import opik_ui
import pytest
from opik_standin import OpikStandin

pytestmark = pytest.mark.frameworks

MODES = ("legacy", "latest")
TOOL_CALL_ID = "call_fake_0001"  # what the fake server names its tool call


class Run(framework_env.StoredRun):
    """What one app process sent to Opik."""

    trace_name = "invoke_agent {}"

    def __init__(self, mode: str, facts: Dict[str, Any], opik: OpikStandin) -> None:
        super().__init__(mode, facts, opik, f"strands-{mode}")

    def question(self, scenario: str) -> str:
        return str(self.facts["questions"][scenario])


@pytest.fixture(scope="module")
def runs() -> Iterator[Dict[str, Run]]:
    with OpikStandin() as opik:
        facts = {mode: framework_env.run_app("strands", "strands_app.py", [mode, opik.url, f"strands-{mode}"])
                 for mode in MODES}
        for f in facts.values():
            assert f["flushed"] is True
        # every body passed the stand-in's schema and UUIDv7 checks
        assert [(r.path, r.status) for r in opik.requests if r.status is None or r.status >= 300] == []
        assert opik.duplicates() == {}
        yield {mode: Run(mode, f, opik) for mode, f in facts.items()}


@pytest.fixture(params=MODES)
def run(request: pytest.FixtureRequest, runs: Dict[str, Run]) -> Run:
    return runs[request.param]


def _checked(run: Run, span: Dict[str, Any], question: str, answer: Any) -> None:
    assert opik_ui.problems(span, question, answer) == [], (run.mode, span["name"], span.get("input"), span.get("output"))
    assert opik_ui.messages_tab(span)


def _trace_reads(run: Run, trace: Dict[str, Any], question: str, answer: str) -> None:
    assert opik_ui.table_text(trace["input"], "input") == question
    assert opik_ui.table_text(trace["output"], "output") == answer
    assert opik_ui.input_detected(trace["input"])


@pytest.mark.parametrize("scenario", ["chat", "stream", "image"])
def test_one_call_reads_as_a_conversation(run: Run, scenario: str) -> None:
    trace = run.trace(scenario)
    question = run.question(scenario)
    [llm] = run.llm_spans(trace)
    _checked(run, llm, question, run.facts["answer"])
    msgs = llm["input"]["messages"]
    assert msgs[0] == {"role": "system", "content": run.facts["system"]}
    assert [m["role"] for m in msgs] == ["system", "user"]
    assert llm["output"]["choices"] == [{"index": 0, "finish_reason": "end_turn",
                                         "message": {"role": "assistant", "content": run.facts["answer"]}}]
    assert llm["model"] == "gpt-4o-mini" and llm["provider"] == "openai"
    assert llm["usage"] == {"prompt_tokens": 13, "completion_tokens": 9, "total_tokens": 22}
    # the content was read from the events, which then do not repeat in metadata
    assert "events" not in llm["metadata"]["otel"]
    assert not any(k.startswith("gen_ai.event.") or k in ("gen_ai.system", "gen_ai.provider.name") for k in llm["metadata"])
    _trace_reads(run, trace, question, run.facts["answers"][scenario])
    agent = [s for s in run.spans[trace["id"]] if not s.get("parent_span_id")]
    assert len(agent) == 1 and agent[0]["type"] == "general" and "usage" not in agent[0]
    assert opik_ui.input_detected(agent[0]["input"])


def test_image_part(run: Run) -> None:
    [llm] = run.llm_spans(run.trace("image"))
    user = llm["input"]["messages"][-1]
    assert user["content"][0] == {"type": "text", "text": run.question("image")}
    # Strands' telemetry replaces the image's bytes by "<replaced>" (its JSON encoder cannot write bytes):
    # the part stays where the image was, its data was never recorded
    assert user["content"][1] == {"type": "image_url", "image_url": {"url": "data:image/png;base64,<replaced>"}}
    assert len(user["content"]) == 2


def test_requests_the_model_got(run: Run) -> None:
    # chat: stream=False; everything else streams (Strands' default); no retries of the failed call
    assert run.facts["requests"] == [["gpt-4o-mini", False]] + [["gpt-4o-mini", True]] * 4 + [
        ["error-model", True]] + [["gpt-4o-mini", True]] * 3


def test_streaming_ttft(run: Run) -> None:
    [llm] = run.llm_spans(run.trace("stream"))
    # gen_ai.server.time_to_first_token (ms): at least the server's delay before its first chunk
    assert llm["ttft"] >= run.facts["stream_first_chunk_ms"]
    assert "gen_ai.server.time_to_first_token" not in llm["metadata"]
    trace = run.trace("stream")
    assert trace["ttft"] >= llm["ttft"]


def test_tool_round_trip(run: Run) -> None:
    trace = run.trace("tool")
    question = run.question("tool")
    first, second = run.llm_spans(trace)
    _checked(run, first, question, None)
    [call] = first["output"]["choices"][0]["message"]["tool_calls"]
    assert call["id"] == TOOL_CALL_ID and call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris", "unit": "celsius"}
    assert first["output"]["choices"][0]["finish_reason"] == "tool_use"

    _checked(run, second, question, run.facts["answer"])
    assert second["input"]["messages"][1:] == [
        {"role": "user", "content": question},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": TOOL_CALL_ID, "content": run.facts["tool_result"]},
    ]
    [tool] = [s for s in run.spans[trace["id"]] if s["type"] == "tool"]
    assert tool["name"] == "execute_tool get_weather"
    assert tool["input"] == {"city": "Paris", "unit": "celsius"}
    assert tool["output"] == {"messages": [{"text": run.facts["tool_result"]}]}
    assert "events" not in tool["metadata"]["otel"]
    _trace_reads(run, trace, question, run.facts["answers"]["tool"])


def test_event_loop_cycles_read_as_conversations(run: Run) -> None:
    trace = run.trace("tool")
    cycles = [s for s in run.spans[trace["id"]] if s["name"] == "execute_event_loop_cycle"]
    assert len(cycles) == 2
    for cycle in cycles:
        assert opik_ui.input_detected(cycle["input"]) and opik_ui.empty_messages(cycle) == []
        assert "events" not in cycle["metadata"]["otel"]
    # the second cycle sees the whole turn: question, tool call, tool result
    assert [m["role"] for m in cycles[1]["input"]["messages"]] == ["user", "assistant", "tool"]


def test_failed_call(run: Run) -> None:
    assert run.facts["error"] == "openai.InternalServerError"
    trace = run.trace("error")
    [llm] = run.llm_spans(trace)
    assert opik_ui.input_detected(llm["input"]) and "output" not in llm
    assert opik_ui.problems(llm, run.question("error")) == []
    assert llm["error_info"]["exception_type"]
    assert llm["model"] == "error-model" and "provider" not in llm  # no provider guessed from an unknown id
    assert trace["error_info"]
    assert opik_ui.table_text(trace["input"], "input") == run.question("error")


def test_three_turns_share_one_thread(run: Run) -> None:
    traces = run.traces_of("conversation")
    assert len(traces) == 3
    assert {t["thread_id"] for t in traces} == {run.facts["thread"]}
    for n, (turn, trace) in enumerate(zip(("turn1", "turn2", "turn3"), traces)):
        question = run.question(turn)
        [llm] = run.llm_spans(trace)
        _checked(run, llm, question, run.facts["answer"])
        # the history the agent keeps: every earlier turn, then this question
        roles = [m["role"] for m in llm["input"]["messages"]]
        assert roles == ["system"] + ["user", "assistant"] * n + ["user"]
        _trace_reads(run, trace, question, run.facts["answers"][turn])


def test_tool_definitions_in_metadata(runs: Dict[str, Run]) -> None:
    agent = [s for s in runs["latest"].spans[runs["latest"].trace("tool")["id"]] if not s.get("parent_span_id")][0]
    [definition] = agent["metadata"]["gen_ai.tool.definitions"]
    assert definition["name"] == "get_weather" and definition["inputSchema"]["json"]["required"] == ["city"]


def test_every_llm_span_passes_the_checker(runs: Dict[str, Run]) -> None:
    counts = {}
    for mode, run in runs.items():
        spans = [s for t in run.traces for s in run.llm_spans(t)]
        bad = [(s["name"], opik_ui.problems(s)) for s in spans if opik_ui.problems(s)]
        assert bad == [], mode
        counts[mode] = len(spans)
    # chat, stream, image, error: 1 each; tool: 2; three turns: 3
    assert counts == {"legacy": 9, "latest": 9}


def test_numbers(run: Run) -> None:
    """Usage sums to what the server returned per trace (the agent and cycle spans' sums stay in metadata),
    every LLM span priceable (provider from the model id, not strands-agents; the answered model) and every
    streamed call's ttft from gen_ai.server.time_to_first_token. Strands records only the requested model
    (gen_ai.request.model gpt-4o-mini), which Opik prices too."""
    spans = [s for lst in run.spans.values() for s in lst]
    assert numbers_check.problems(run.traces, spans, run.facts["served"], ttft=True, requested_model="all") == []
    assert sum(1 for s in spans if s["type"] == "llm" and "usage" in s) == sum(
        1 for c in run.facts["served"] if c["usage"])
