"""The OpenAI Agents SDK traced by OpenInference (``openinference-instrumentation-openai-agents``),
as Opik's UI shows it.

``frameworks/openai_agents_app.py`` runs real agents twice: with ``OpenAIChatCompletionsModel``
against the fake chat-completions server (``chat_completions``) and with the SDK's default
``OpenAIResponsesModel`` against ``frameworks/fake_responses.py`` (``responses``), exporting
through the real ``OpikSpanExporter`` to the schema-checking stand-in. Each SDK trace is an
OpenInference ``AGENT`` root span (the workflow) over a ``CHAIN`` task span, the ``AGENT`` span of
the agent, ``CHAIN`` turn spans, ``LLM`` model calls and ``TOOL`` function tools.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Iterator, List

import framework_env
import numbers_check
import opik_ui
import pytest
from opik_standin import OpikStandin

pytestmark = pytest.mark.frameworks

MODES = ("chat_completions", "responses")
TOOL_CALL_ID = "call_fake_0001"  # what both fake servers name their tool call
MODEL = {"chat_completions": "gpt-4o-mini", "responses": "gpt-4o-mini-2024-07-18"}


class Run(framework_env.StoredRun):
    """What one app process sent to Opik."""


    def __init__(self, mode: str, facts: Dict[str, Any], opik: OpikStandin) -> None:
        super().__init__(mode, facts, opik, f"openai-agents-{mode}")

    def kind(self, trace: Dict[str, Any], kind: str) -> List[Dict[str, Any]]:
        return [s for s in self.spans[trace["id"]] if s["metadata"].get("openinference.span.kind") == kind]

    def agent_span(self, trace: Dict[str, Any]) -> Dict[str, Any]:
        [agent] = [s for s in self.kind(trace, "AGENT") if "agent.name" in s["metadata"]]
        return agent

    def root_span(self, trace: Dict[str, Any]) -> Dict[str, Any]:
        [root] = [s for s in self.spans[trace["id"]] if not s.get("parent_span_id")]
        return root

    def question(self, scenario: str) -> str:
        return str(self.facts["questions"][scenario])


@pytest.fixture(scope="module")
def runs() -> Iterator[Dict[str, Run]]:
    with OpikStandin() as opik:
        facts = {m: framework_env.run_app("pydantic_agents", "openai_agents_app.py", [m, opik.url, f"openai-agents-{m}"])
                 for m in MODES}
        for f in facts.values():
            assert f["flushed"] is True
        # every body passed the stand-in's schema and UUIDv7 checks
        assert [(r.path, r.status) for r in opik.requests if r.status is None or r.status >= 300] == []
        assert opik.duplicates() == {}
        yield {m: Run(m, f, opik) for m, f in facts.items()}


@pytest.fixture(params=MODES)
def run(request: pytest.FixtureRequest, runs: Dict[str, Run]) -> Run:
    return runs[request.param]


def _checked(run: Run, span: Dict[str, Any], question: str, answer: Any) -> None:
    assert opik_ui.problems(span, question, answer) == [], (run.mode, span["name"], span.get("input"), span.get("output"))
    assert opik_ui.messages_tab(span)


def _reads(item: Dict[str, Any], question: str, answer: str) -> None:
    """A trace, its root span or the agent span: the question and the final answer as text, as messages."""
    assert opik_ui.table_text(item["input"], "input") == question
    assert opik_ui.table_text(item["output"], "output") == answer
    assert opik_ui.messages_tab(item) and opik_ui.empty_messages(item) == []


def test_the_app_ran_what_it_says(run: Run) -> None:
    assert run.facts["mode"] == run.mode
    # chat, stream (the only streamed request), two for the tool round trip, image, the failed call
    # (no retry), three turns
    assert run.facts["requests"] == [["gpt-4o-mini", False], ["gpt-4o-mini", True]] + [["gpt-4o-mini", False]] * 3 + [
        ["error-model", False]] + [["gpt-4o-mini", False]] * 3
    assert set(run.facts["answers"].values()) == {run.facts["answer"]}
    assert run.facts["error"] == "openai.InternalServerError"


@pytest.mark.parametrize("scenario", ["chat", "stream", "image"])
def test_one_call_reads_as_a_conversation(run: Run, scenario: str) -> None:
    trace = run.trace(scenario)
    question = run.question(scenario)
    [llm] = run.llm_spans(trace)
    _checked(run, llm, question, run.facts["answer"])
    # the agent's instructions are the system message (the Responses input items leave them out)
    assert llm["input"]["messages"][0] == {"role": "system", "content": run.facts["system"]}
    assert [m["role"] for m in llm["input"]["messages"]] == ["system", "user"]
    [choice] = llm["output"]["choices"]
    assert choice["message"] == {"role": "assistant", "content": run.facts["answer"]}
    assert llm["model"] == MODEL[run.mode] and llm["provider"] == "openai"
    assert llm["usage"] == {"prompt_tokens": 13, "completion_tokens": 9, "total_tokens": 22}
    if run.mode == "responses":
        # the Response besides its output items stays in metadata; the answer is not repeated there
        response = llm["metadata"]["output.value"]
        assert response["object"] == "response" and response["status"] == "completed" and "output" not in response
        assert choice["finish_reason"] == "stop"

    # the SDK records nothing on its agent and trace spans: they read as the run's question and answer
    answer = run.facts["answers"][scenario]
    _reads(run.agent_span(trace), question, answer)
    _reads(run.root_span(trace), question, answer)
    _reads(trace, question, answer)
    for span in run.kind(trace, "AGENT") + run.kind(trace, "CHAIN"):
        assert span["type"] == "general" and "usage" not in span


def test_image_part(run: Run) -> None:
    [llm] = run.llm_spans(run.trace("image"))
    user = llm["input"]["messages"][-1]
    assert user["content"] == [
        {"type": "text", "text": run.question("image")},
        {"type": "image_url", "image_url": {"url": run.facts["image_url"]}},
    ]


def test_tool_round_trip(run: Run) -> None:
    trace = run.trace("tool")
    question = run.question("tool")
    first, second = run.llm_spans(trace)
    _checked(run, first, question, None)
    [call] = first["output"]["choices"][0]["message"]["tool_calls"]
    assert call == {"id": TOOL_CALL_ID, "type": "function",
                    "function": {"name": "get_weather", "arguments": json.dumps({"city": "Paris", "unit": "celsius"})}}

    _checked(run, second, question, run.facts["answer"])
    assert second["input"]["messages"] == [
        {"role": "system", "content": run.facts["system"]},
        {"role": "user", "content": question},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": TOOL_CALL_ID, "content": run.facts["tool_result"]},
    ]
    [tool] = [s for s in run.spans[trace["id"]] if s["type"] == "tool"]
    assert tool["name"] == "get_weather"
    assert tool["input"] == {"city": "Paris", "unit": "celsius"}
    assert tool["output"] == {"value": run.facts["tool_result"]}
    assert tool["metadata"]["tool.description"] == "Weather for a city."

    answer = run.facts["answers"]["tool"]
    _reads(run.agent_span(trace), question, answer)
    _reads(trace, question, answer)
    # each turn span: the answer given within it; the first question only in the first turn
    first_turn, second_turn = sorted((s for s in run.kind(trace, "CHAIN") if s["name"] == "turn"),
                                     key=lambda s: s["start_time"])
    assert opik_ui.table_text(first_turn["input"], "input") == question and "output" not in first_turn
    assert "input" not in second_turn and opik_ui.table_text(second_turn["output"], "output") == answer


def test_failed_call(run: Run) -> None:
    trace = run.trace("error")
    [llm] = run.llm_spans(trace)
    assert "500" in llm["error_info"]["message"] and "output" not in llm
    agent = run.agent_span(trace)
    assert "500" in agent["error_info"]["message"]
    if run.mode == "chat_completions":
        # GenerationSpanData has its input before the call
        assert opik_ui.input_detected(llm["input"]) and opik_ui.problems(llm, run.question("error")) == []
        assert llm["model"] == "error-model"
        assert opik_ui.table_text(agent["input"], "input") == run.question("error") and "output" not in agent
        assert opik_ui.table_text(trace["input"], "input") == run.question("error")
    else:
        # the SDK sets a ResponseSpanData's input (and model) only once a response came back
        # (OpenAIResponsesModel.get_response): the failed call, its agent and the trace have no content
        assert "input" not in llm and "model" not in llm
        assert "input" not in agent and "input" not in trace


def test_three_turns_share_one_thread(run: Run) -> None:
    traces = run.traces_of("conversation")
    assert len(traces) == 3
    # OpenInference records no group_id: using_session's session.id is on every span
    assert {t["thread_id"] for t in traces} == {run.facts["thread"]}
    assert all("thread_id" not in t for t in run.traces if t not in traces)
    for n, (turn, trace) in enumerate(zip(("turn1", "turn2", "turn3"), traces)):
        question = run.question(turn)
        [llm] = run.llm_spans(trace)
        _checked(run, llm, question, run.facts["answer"])
        # the history passed in (to_input_list()): every earlier turn, then this question
        assert [m["role"] for m in llm["input"]["messages"]] == ["system"] + ["user", "assistant"] * n + ["user"]
        _reads(trace, question, run.facts["answers"][turn])
        _reads(run.agent_span(trace), question, run.facts["answers"][turn])


def test_every_llm_span_passes_the_checker(runs: Dict[str, Run]) -> None:
    counts = {}
    for mode, run in runs.items():
        spans = [s for t in run.traces for s in run.llm_spans(t)]
        bad = [(s["name"], opik_ui.problems(s)) for s in spans if opik_ui.problems(s)]
        assert bad == [], mode
        assert all(opik_ui.messages_tab(s) for s in spans if "input" in s)
        counts[mode] = (len(spans), sum(1 for s in spans if "input" in s))
    # chat, stream, image, error: 1 each; tool: 2; three turns: 3 (the failed Responses call has no input)
    assert counts == {"chat_completions": (9, 9), "responses": (9, 8)}


def test_numbers(run: Run) -> None:
    """Usage sums to what the server returned per trace (both models: chat completions and Responses), every LLM
    span priceable (provider openai; the answered model on Responses, the requested gpt-4o-mini on chat completions,
    which is all the SDK's generation span records). The SDK records no first token: no ttft to check."""
    spans = [s for lst in run.spans.values() for s in lst]
    requested = "all" if run.mode == "chat_completions" else None
    assert numbers_check.problems(run.traces, spans, run.facts["served"], requested_model=requested) == []
