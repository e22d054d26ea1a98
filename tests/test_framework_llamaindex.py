"""LlamaIndex with OpenInference's instrumentation, as Opik's UI shows it.

``frameworks/llamaindex_app.py`` runs real LlamaIndex (``OpenAI``/``OpenAILike``
against the fake OpenAI server, a ``FunctionAgent``, a ``SummaryIndex`` query
engine) with ``openinference-instrumentation-llama-index`` in the ``llamaindex``
venv, exporting through the real ``OpikSpanExporter`` to the schema-checking
stand-in. OpenInference records LlamaIndex's arguments as Python reprs
(``ChatMessage(role=<MessageRole.USER: 'user'>, ...)``) next to the flattened
messages of each model call; the tests read what Opik stored with ``opik_ui``,
the checker written from Opik's frontend.
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

PROJECT = "llamaindex"
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

    def named(self, trace: Dict[str, Any], name: str) -> List[Dict[str, Any]]:
        return [s for s in self.spans[trace["id"]] if s["name"] == name]

    def question(self, scenario: str) -> str:
        return str(self.facts["questions"][scenario])


@pytest.fixture(scope="module")
def run() -> Iterator[Run]:
    with OpikStandin() as opik:
        facts = framework_env.run_app("llamaindex", "llamaindex_app.py", [opik.url, PROJECT])
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
    assert llm["name"] == ("OpenAI.stream_chat" if scenario == "stream" else "OpenAI.chat")
    _checked(llm, question, run.facts["answer"])
    msgs = llm["input"]["messages"]
    assert msgs[0] == {"role": "system", "content": run.facts["system"]}
    assert [m["role"] for m in msgs] == ["system", "user"]
    assert llm["output"]["choices"] == [{"index": 0, "finish_reason": "stop",
                                         "message": {"role": "assistant", "content": run.facts["answer"]}}]
    assert llm["provider"] == "openai" and llm["model"] == "gpt-4o-mini"
    if scenario == "stream":
        # LlamaIndex does not ask for a usage chunk when streaming; the first token is an event
        assert "usage" not in llm and llm["ttft"] >= run.facts["stream_first_chunk_ms"]
    else:
        assert llm["usage"] == {"prompt_tokens": 13, "completion_tokens": 9, "total_tokens": 22}
    # the ChatMessage reprs of input.value were not the content: neither they nor the flattened keys are left
    meta = llm["metadata"]
    assert not any(k.startswith(("llm.input_messages", "llm.output_messages")) for k in meta)
    assert "ChatMessage(" not in json.dumps(meta)
    assert meta["llm.invocation_parameters"]["model_name"] == "gpt-4o-mini"
    _trace_reads(trace, question, run.facts["answers"][scenario])


def test_image_part(run: Run) -> None:
    [llm] = run.llm_spans(run.trace("image"))
    user = llm["input"]["messages"][-1]
    assert user["content"] == [{"type": "text", "text": run.question("image")},
                               {"type": "image_url", "image_url": {"url": run.facts["image_url"]}}]


def test_agent_tool_round_trip(run: Run) -> None:
    trace = run.trace("tool")
    question = run.question("tool")
    assert trace["name"] == "FunctionAgent.run"
    first, second = run.llm_spans(trace)
    assert first["name"] == second["name"] == "OpenAI.astream_chat"
    _checked(first, question, None)
    [call] = first["output"]["choices"][0]["message"]["tool_calls"]
    assert call["id"] == TOOL_CALL_ID and call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris", "unit": "celsius"}
    assert first["output"]["choices"][0]["finish_reason"] == "tool_calls"
    assert first["metadata"]["llm.tools"][0]["function"]["name"] == "get_weather"

    _checked(second, question, run.facts["answer"])
    assert second["input"]["messages"][1:] == [
        {"role": "user", "content": question},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": TOOL_CALL_ID, "content": run.facts["tool_result"]},
    ]
    [tool] = [s for s in run.spans[trace["id"]] if s["type"] == "tool"]
    assert tool["name"] == "FunctionTool.acall"
    assert tool["input"] == {"kwargs": {"city": "Paris", "unit": "celsius"}}
    assert tool["output"]["raw_output"] == run.facts["tool_result"]

    # _prepare_chat_with_tools builds the request and calls no model: a step, its messages read from the reprs
    prepared = run.named(trace, "OpenAI._prepare_chat_with_tools")
    assert [p["type"] for p in prepared] == ["general", "general"]
    assert prepared[1]["input"]["messages"] == second["input"]["messages"]
    # the agent's answer, read from its StopEvent repr; its input (workflow state) gives way to the question
    agent = [s for s in run.spans[trace["id"]] if not s.get("parent_span_id")][0]
    assert agent["output"] == {"messages": [{"role": "assistant", "content": run.facts["answer"]}]}
    assert agent["metadata"]["output.value"].startswith("StopEvent(")
    _trace_reads(trace, question, run.facts["answers"]["tool"])


def test_failed_call(run: Run) -> None:
    assert run.facts["error"] == "openai.InternalServerError"
    trace = run.trace("error")
    # OpenAILike.chat calls OpenAI.chat on itself: two spans, the outer one with only the ChatMessage reprs
    spans = run.llm_spans(trace)
    assert [s["name"] for s in spans] == ["OpenAILike.chat", "OpenAILike.chat"]
    for llm in spans:
        assert opik_ui.input_detected(llm["input"]) and "output" not in llm
        assert opik_ui.problems(llm, run.question("error")) == []
        assert llm["input"]["messages"] == [{"role": "system", "content": run.facts["system"]},
                                            {"role": "user", "content": run.question("error")}]
        assert llm["error_info"]["exception_type"] == "openai.InternalServerError"
        assert llm["model"] == "error-model"
    assert trace["error_info"]


def test_query_engine(run: Run) -> None:
    trace = run.trace("rag")
    question = run.question("rag")
    assert trace["name"] == "RetrieverQueryEngine.query"
    _trace_reads(trace, question, run.facts["answers"]["rag"])
    # the retriever shows the documents it found, not ["<NodeWithScore(...)>"]
    [retrieve] = run.named(trace, "SummaryIndexRetriever.retrieve")
    assert [d["content"] for d in retrieve["output"]["documents"]] == run.facts["documents"]
    [inner] = run.named(trace, "SummaryIndexRetriever._retrieve")
    assert list(inner["output"]) == ["documents"] and len(inner["output"]["documents"]) == 2
    # predict() fills its prompt template: the question is in the prompt the model got
    [predict] = run.named(trace, "OpenAI.predict")
    [chat] = run.named(trace, "OpenAI.chat")
    prompt = predict["input"]["messages"][0]["content"]
    assert f"Query: {question}" in prompt and run.facts["documents"][0] in prompt
    _checked(predict, prompt, run.facts["answer"])
    assert chat["input"]["messages"][-1] == {"role": "user", "content": prompt}
    _checked(chat, prompt, run.facts["answer"])
    # the index build before it: a trace of its own, whose node lists are not called messages
    [build] = [t for t in run.traces if t["name"] == "SentenceSplitter.__call__"]
    for s in run.spans[build["id"]]:
        assert "messages" not in (s.get("output") or {}), s


def test_three_turns_share_one_thread(run: Run) -> None:
    traces = [run.trace(turn) for turn in ("turn1", "turn2", "turn3")]
    assert {t["thread_id"] for t in traces} == {run.facts["thread"]}
    assert [t for t in run.traces if t.get("thread_id")] == traces
    for n, (turn, trace) in enumerate(zip(("turn1", "turn2", "turn3"), traces)):
        question = run.question(turn)
        [llm] = run.llm_spans(trace)
        _checked(llm, question, run.facts["answer"])
        roles = [m["role"] for m in llm["input"]["messages"]]
        assert roles == ["system"] + ["user", "assistant"] * n + ["user"]
        _trace_reads(trace, question, run.facts["answers"][turn])


def test_every_llm_span_passes_the_checker(run: Run) -> None:
    spans = [s for t in run.traces for s in run.llm_spans(t)]
    assert [(s["name"], opik_ui.problems(s)) for s in spans if opik_ui.problems(s)] == []
    # chat, stream, image: 1 each; agent: 2; error: 2 (nested); query engine: predict + chat; three turns: 3
    assert len(spans) == 12


def test_numbers(run: Run) -> None:
    """Usage sums to what the server returned per trace (the query engine's predict over its chat counts once),
    every LLM span priceable (provider openai; LlamaIndex records the requested model, gpt-4o-mini), every
    streamed call's ttft (from the first-token event; the stream span itself ends before the stream is read)."""
    spans = [s for lst in run.spans.values() for s in lst]
    assert numbers_check.problems(run.traces, spans, run.facts["served"], ttft=True, requested_model="all") == []
