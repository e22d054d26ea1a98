"""LangChain with OpenInference's instrumentation, as Opik's UI shows it.

``frameworks/langchain_app.py`` runs real LangChain (``ChatOpenAI`` against the
fake OpenAI server, ``openinference-instrumentation-langchain``) in a process of
its own, exporting through the real ``OpikSpanExporter`` to the schema-checking
stand-in. OpenInference records each model call's ``input.value`` in LangChain's
serialized constructor form and its ``output.value`` as an ``LLMResult``; the
tests read what Opik stored with ``opik_ui``, the checker written from Opik's
frontend: OpenAI chat messages in, choices out, the question and answer as the
tables' text.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator

import framework_env
import numbers_check
import opik_ui
import pytest
from opik_standin import OpikStandin

pytestmark = pytest.mark.frameworks

TESTS = Path(__file__).resolve().parent
PROJECT = "langchain"
TOOL_CALL_ID = "call_fake_0001"  # what the fake server names its tool call


class Run(framework_env.StoredRun):
    """What the app process sent to Opik."""

    def __init__(self, facts: Dict[str, Any], opik: OpikStandin) -> None:
        super().__init__("", facts, opik, PROJECT)

    def trace(self, scenario: str) -> Dict[str, Any]:
        """The trace whose input reads as the scenario's question."""
        question = self.question(scenario)
        found = [t for t in self.traces if opik_ui.table_text(t.get("input"), "input") == question]
        assert len(found) == 1, [(t["name"], opik_ui.table_text(t.get("input"), "input")) for t in self.traces]
        return found[0]

    def question(self, scenario: str) -> str:
        return str(self.facts["questions"][scenario])


@pytest.fixture(scope="module")
def run() -> Iterator[Run]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPIK_", "OTEL_", "OPENAI_"))}
    env.update(OPIK_CONFIG_PATH=os.devnull, PYTHONPATH=str(TESTS))
    with OpikStandin() as opik:
        proc = subprocess.run([sys.executable, str(TESTS / "frameworks" / "langchain_app.py"), opik.url, PROJECT],
                              capture_output=True, text=True, timeout=240, env=env)
        assert proc.returncode == 0, proc.stderr[-6000:]
        facts = json.loads(proc.stdout.strip().splitlines()[-1])
        assert facts["flushed"] is True
        # every body passed the stand-in's schema and UUIDv7 checks
        assert [(r.path, r.status) for r in opik.requests if r.status is None or r.status >= 300] == []
        assert opik.duplicates() == {}
        yield Run(facts, opik)


def _checked(span: Dict[str, Any], question: str, answer: Any) -> None:
    assert opik_ui.problems(span, question, answer) == [], (span["name"], span.get("input"), span.get("output"))
    assert opik_ui.messages_tab(span)


def _trace_reads(trace: Dict[str, Any], question: str, answer: str) -> None:
    assert opik_ui.table_text(trace["input"], "input") == question
    assert opik_ui.table_text(trace["output"], "output") == answer


@pytest.mark.parametrize("scenario", ["chat", "stream", "image"])
def test_one_call_reads_as_a_conversation(run: Run, scenario: str) -> None:
    trace = run.trace(scenario)
    question = run.question(scenario)
    [llm] = run.llm_spans(trace)
    _checked(llm, question, run.facts["answer"])
    msgs = llm["input"]["messages"]
    assert msgs[0] == {"role": "system", "content": run.facts["system"]}
    assert [m["role"] for m in msgs] == ["system", "user"]
    assert llm["output"]["choices"] == [{"index": 0, "finish_reason": "stop",
                                         "message": {"role": "assistant", "content": run.facts["answer"]}}]
    assert llm["provider"] == "openai" and llm["model"].startswith("gpt-4o-mini")
    assert llm["usage"] == {"prompt_tokens": 13, "completion_tokens": 9, "total_tokens": 22}
    # LangChain's serialized forms were not the content: nothing flattened or constructor-shaped is left
    meta = llm["metadata"]
    assert not any(k.startswith(("llm.input_messages", "llm.output_messages")) for k in meta)
    assert "input.value" not in meta and "generations" not in meta.get("output.value", {})
    assert meta["llm.invocation_parameters"]["_type"] == "openai-chat"
    _trace_reads(trace, question, run.facts["answers"][scenario])


def test_chain_trace(run: Run) -> None:
    trace = run.trace("chat")
    assert trace["name"] == "RunnableSequence"
    names = [s["name"] for s in run.spans[trace["id"]]]
    assert names == ["RunnableSequence", "ChatPromptTemplate", "ChatOpenAI", "StrOutputParser"]
    prompt = run.spans[trace["id"]][1]
    assert prompt["output"]["messages"] == run.llm_spans(trace)[0]["input"]["messages"]
    parser = run.spans[trace["id"]][3]
    assert parser["input"] == {"messages": [{"role": "assistant", "content": run.facts["answer"]}]}


def test_image_part(run: Run) -> None:
    [llm] = run.llm_spans(run.trace("image"))
    user = llm["input"]["messages"][-1]
    assert user["content"] == [{"type": "text", "text": run.question("image")},
                               {"type": "image_url", "image_url": {"url": run.facts["image_url"]}}]


def test_tool_round_trip(run: Run) -> None:
    trace = run.trace("tool")
    question = run.question("tool")
    assert trace["name"] == "weather_turn"
    first, second = run.llm_spans(trace)
    _checked(first, question, None)
    [call] = first["output"]["choices"][0]["message"]["tool_calls"]
    assert call["id"] == TOOL_CALL_ID and call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris", "unit": "celsius"}
    assert first["output"]["choices"][0]["finish_reason"] == "tool_calls"
    [definition] = first["metadata"]["llm.tools"]
    assert definition["function"]["name"] == "get_weather"

    _checked(second, question, run.facts["answer"])
    assert second["input"]["messages"][1:] == [
        {"role": "user", "content": question},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": TOOL_CALL_ID, "content": run.facts["tool_result"]},
    ]
    [tool] = [s for s in run.spans[trace["id"]] if s["type"] == "tool"]
    assert tool["name"] == "get_weather" and tool["input"] == {"city": "Paris", "unit": "celsius"}
    assert tool["output"]["data"]["content"] == run.facts["tool_result"]
    _trace_reads(trace, question, run.facts["answers"]["tool"])


def test_failed_call(run: Run) -> None:
    assert run.facts["error"] == "langchain_openai.chat_models.base.OpenAIAPIError"
    trace = run.trace("error")
    [llm] = run.llm_spans(trace)
    assert opik_ui.input_detected(llm["input"]) and "output" not in llm
    assert opik_ui.problems(llm, run.question("error")) == []
    assert llm["error_info"]["exception_type"] == run.facts["error"]
    assert "500" in llm["error_info"]["message"]
    assert llm["model"] == "error-model"
    # the empty LLMResult LangChain recorded is kept, not shown as an empty answer
    assert llm["metadata"]["output.value"]["generations"][0][0]["text"] == ""
    assert trace["error_info"]


def test_three_turns_share_one_thread(run: Run) -> None:
    traces = [run.trace(turn) for turn in ("turn1", "turn2", "turn3")]
    assert {t["thread_id"] for t in traces} == {run.facts["thread"]}
    assert [t for t in run.traces if t.get("thread_id")] == traces
    for n, (turn, trace) in enumerate(zip(("turn1", "turn2", "turn3"), traces)):
        question = run.question(turn)
        [llm] = run.llm_spans(trace)
        _checked(llm, question, run.facts["answer"])
        # the history the chain passes: every earlier turn, then this question
        roles = [m["role"] for m in llm["input"]["messages"]]
        assert roles == ["system"] + ["user", "assistant"] * n + ["user"]
        _trace_reads(trace, question, run.facts["answers"][turn])


def test_every_llm_span_passes_the_checker(run: Run) -> None:
    spans = [s for t in run.traces for s in run.llm_spans(t)]
    assert [(s["name"], opik_ui.problems(s)) for s in spans if opik_ui.problems(s)] == []
    # chat, stream, image, error: 1 each; tool: 2; three turns: 3
    assert len(spans) == 9
    assert run.facts["requests"] == 9  # one model request per LLM span, no retries


def test_numbers(run: Run) -> None:
    """Usage sums to what the server returned per trace, every LLM span priceable (provider openai, the answered
    model; on the streamed call the OpenInference LangChain span records only the requested gpt-4o-mini, and no
    first-token event, so no ttft)."""
    spans = [s for lst in run.spans.values() for s in lst]
    assert numbers_check.problems(run.traces, spans, run.facts["served"], requested_model="stream") == []
