"""Pydantic AI's own OpenTelemetry instrumentation, as Opik's UI shows it.

``frameworks/pydantic_ai_app.py`` runs real Pydantic AI agents (``OpenAIChatModel``
against the fake OpenAI server) with ``Agent.instrument_all(InstrumentationSettings(...))``,
once with instrumentation format version 5 (Pydantic AI's default) and once with 6 (the
newest: tool results as ``tool`` messages), exporting through the real ``OpikSpanExporter``
to the schema-checking stand-in. The tests read what Opik stored with ``opik_ui``.
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

VERSIONS = ("5", "6")
TOOL_CALL_ID = "call_fake_0001"  # what the fake server names its tool call


class Run(framework_env.StoredRun):
    """What one app process sent to Opik."""

    trace_name = "invoke_agent {}"

    def __init__(self, version: str, facts: Dict[str, Any], opik: OpikStandin) -> None:
        super().__init__(version, facts, opik, f"pydantic-ai-v{version}")
        self.version = version

    def agent_span(self, trace: Dict[str, Any]) -> Dict[str, Any]:
        [root] = [s for s in self.spans[trace["id"]] if not s.get("parent_span_id")]
        return root

    def question(self, scenario: str) -> str:
        return str(self.facts["questions"][scenario])


@pytest.fixture(scope="module")
def runs() -> Iterator[Dict[str, Run]]:
    with OpikStandin() as opik:
        facts = {v: framework_env.run_app("pydantic_agents", "pydantic_ai_app.py", [v, opik.url, f"pydantic-ai-v{v}"])
                 for v in VERSIONS}
        for f in facts.values():
            assert f["flushed"] is True
        # every body passed the stand-in's schema and UUIDv7 checks
        assert [(r.path, r.status) for r in opik.requests if r.status is None or r.status >= 300] == []
        assert opik.duplicates() == {}
        yield {v: Run(v, f, opik) for v, f in facts.items()}


@pytest.fixture(params=VERSIONS)
def run(request: pytest.FixtureRequest, runs: Dict[str, Run]) -> Run:
    return runs[request.param]


def _checked(run: Run, span: Dict[str, Any], question: str, answer: Any) -> None:
    assert opik_ui.problems(span, question, answer) == [], (run.version, span["name"], span.get("input"), span.get("output"))
    assert opik_ui.messages_tab(span)


def _reads(item: Dict[str, Any], question: str, answer: str) -> None:
    """A trace or agent run span: the question and the final answer in the tables and the thread view."""
    assert opik_ui.table_text(item["input"], "input") == question
    assert opik_ui.table_text(item["output"], "output") == answer
    assert opik_ui.messages_tab(item) and opik_ui.empty_messages(item) == []


def test_the_app_ran_what_it_says(run: Run) -> None:
    assert run.facts["version"] == int(run.version)
    # chat, stream (the only streamed request), two for the tool round trip, image, the failed call, three turns
    assert run.facts["requests"] == [["gpt-4o-mini", False], ["gpt-4o-mini", True]] + [["gpt-4o-mini", False]] * 3 + [
        ["error-model", False]] + [["gpt-4o-mini", False]] * 3
    assert set(run.facts["answers"].values()) == {run.facts["answer"]}


@pytest.mark.parametrize("scenario", ["chat", "stream", "image"])
def test_one_call_reads_as_a_conversation(run: Run, scenario: str) -> None:
    trace = run.trace(scenario)
    question = run.question(scenario)
    [llm] = run.llm_spans(trace)
    _checked(run, llm, question, run.facts["answer"])
    msgs = llm["input"]["messages"]
    assert msgs[0] == {"role": "system", "content": run.facts["system"]}
    assert [m["role"] for m in msgs] == ["system", "user"]
    assert llm["output"]["choices"] == [{"index": 0, "finish_reason": "stop",
                                         "message": {"role": "assistant", "content": run.facts["answer"]}}]
    assert llm["model"] == "gpt-4o-mini-2024-07-18" and llm["provider"] == "openai"
    assert llm["usage"] == {"prompt_tokens": 13, "completion_tokens": 9, "total_tokens": 22}
    # what is not a message stays in metadata
    assert llm["metadata"]["model_request_parameters"]["output_mode"] == "text"
    assert not any(k.startswith("gen_ai.input") or k.startswith("gen_ai.output") for k in llm["metadata"])

    agent = run.agent_span(trace)
    assert agent["type"] == "general" and "usage" not in agent and "total_estimated_cost" not in agent
    assert agent["metadata"]["gen_ai.aggregated_usage.input_tokens"] == 13
    _reads(agent, question, run.facts["answers"][scenario])
    _reads(trace, question, run.facts["answers"][scenario])


def test_image_part(run: Run) -> None:
    [llm] = run.llm_spans(run.trace("image"))
    user = llm["input"]["messages"][-1]
    assert user["content"] == [
        {"type": "text", "text": run.question("image")},
        {"type": "image_url", "image_url": {"url": run.facts["image_url"]}},
    ]
    # the agent run span's conversation keeps the image too
    agent = run.agent_span(run.trace("image"))
    assert agent["input"]["messages"][1]["content"] == user["content"]


def test_streaming_ttft(run: Run) -> None:
    trace = run.trace("stream")
    [llm] = run.llm_spans(trace)
    # gen_ai.client.operation.time_to_first_chunk (s): at least the server's delay before its first chunk
    assert llm["ttft"] >= run.facts["stream_first_chunk_ms"]
    assert trace["ttft"] >= llm["ttft"]


def test_tool_round_trip(run: Run) -> None:
    trace = run.trace("tool")
    question = run.question("tool")
    first, second = run.llm_spans(trace)
    _checked(run, first, question, None)
    [call] = first["output"]["choices"][0]["message"]["tool_calls"]
    assert call == {"id": TOOL_CALL_ID, "type": "function",
                    "function": {"name": "get_weather", "arguments": json.dumps({"city": "Paris", "unit": "celsius"})}}
    assert first["output"]["choices"][0]["finish_reason"] == "tool_call"
    # the tool definition stays in metadata
    [definition] = first["metadata"]["gen_ai.tool.definitions"]
    assert definition["name"] == "get_weather"

    _checked(run, second, question, run.facts["answer"])
    # version 5 sends the tool result as a user message of tool_call_response parts, 6 as a tool message:
    # both read as an OpenAI tool result
    assert second["input"]["messages"][1:] == [
        {"role": "user", "content": question},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": TOOL_CALL_ID, "content": run.facts["tool_result"]},
    ]
    [tool] = [s for s in run.spans[trace["id"]] if s["type"] == "tool"]
    assert tool["name"] == "execute_tool get_weather"
    assert tool["input"] == {"city": "Paris", "unit": "celsius"}
    assert tool["output"] == {"value": run.facts["tool_result"]}

    agent = run.agent_span(trace)
    assert [m["role"] for m in agent["input"]["messages"]] == ["system", "user", "assistant", "tool", "assistant"]
    _reads(agent, question, run.facts["answers"]["tool"])
    _reads(trace, question, run.facts["answers"]["tool"])


def test_failed_call(run: Run) -> None:
    assert run.facts["error"] == "pydantic_ai.exceptions.ModelServerError"
    trace = run.trace("error")
    [llm] = run.llm_spans(trace)
    assert llm["error_info"]["exception_type"] == "pydantic_ai.exceptions.ModelServerError"
    assert "500" in llm["error_info"]["message"]
    assert llm["model"] == "error-model" and "output" not in llm
    # Pydantic AI records a model request's messages only when the request succeeded
    # (InstrumentationSettings.handle_messages runs on the response): the failed request span
    # has none. The agent run span records the messages it had sent, so the run and the trace
    # show the question.
    assert "input" not in llm
    agent = run.agent_span(trace)
    assert agent["error_info"]["exception_type"] == "pydantic_ai.exceptions.ModelServerError"
    assert opik_ui.table_text(agent["input"], "input") == run.question("error")
    assert opik_ui.input_detected(agent["input"])
    assert trace["error_info"]
    assert opik_ui.table_text(trace["input"], "input") == run.question("error")


def test_three_turns_share_one_thread(run: Run) -> None:
    traces = run.traces_of("conversation")
    assert len(traces) == 3
    # Pydantic AI's gen_ai.conversation.id, carried on by message_history
    [conversation_id] = set(run.facts["conversation_ids"])
    assert {t["thread_id"] for t in traces} == {conversation_id}
    for n, (turn, trace) in enumerate(zip(("turn1", "turn2", "turn3"), traces)):
        question = run.question(turn)
        [llm] = run.llm_spans(trace)
        _checked(run, llm, question, run.facts["answer"])
        # the history passed in: every earlier turn, then this question
        assert [m["role"] for m in llm["input"]["messages"]] == ["system"] + ["user", "assistant"] * n + ["user"]
        _reads(trace, question, run.facts["answers"][turn])
    # every other run is its own conversation
    others = [t["thread_id"] for t in run.traces if t not in traces]
    assert len(set(others)) == len(others) == 5 and conversation_id not in others


def test_every_llm_span_passes_the_checker(runs: Dict[str, Run]) -> None:
    counts = {}
    for version, run in runs.items():
        spans = [s for t in run.traces for s in run.llm_spans(t)]
        bad = [(s["name"], opik_ui.problems(s)) for s in spans if opik_ui.problems(s)]
        assert bad == [], version
        counts[version] = (len(spans), sum(1 for s in spans if "input" in s))
    # chat, stream, image, error: 1 each; tool: 2; three turns: 3 -- all but the failed call with content
    assert counts == {"5": (9, 8), "6": (9, 8)}


def test_numbers(run: Run) -> None:
    """Usage sums to what the server returned per trace (the agent run's gen_ai.aggregated_usage stays in metadata),
    every LLM span priceable (provider openai, the answered model), every streamed call's ttft."""
    spans = [s for lst in run.spans.values() for s in lst]
    assert numbers_check.problems(run.traces, spans, run.facts["served"], ttft=True) == []
