"""LiteLLM's ``otel`` callback -> Opik, read the way Opik's UI reads it.

``frameworks/litellm_app.py`` runs real ``litellm.completion`` calls (LiteLLM's
own OpenTelemetry logger, default and ``gen_ai_latest_experimental`` conventions)
against the fake OpenAI server and exports through the real ``OpikSpanExporter``
to the stand-in; the tests check what was stored with ``opik_ui``.
"""

from __future__ import annotations

from typing import Any, Dict, Iterator, List, Tuple

import numbers_check
import opik_ui
import pytest
from framework_env import run_app
from opik_standin import OpikStandin

pytestmark = pytest.mark.frameworks
MODES = ("legacy", "latest")
#: scenario -> name of its trace's root span
ROOTS = {"chat": "llm", "stream": "llm", "image": "llm", "error": "llm", "tool": "tool round trip",
         "turn1": "conversation turn1", "turn2": "conversation turn2", "turn3": "conversation turn3"}


class Run:
    def __init__(self, mode: str, facts: Dict[str, Any], opik: OpikStandin) -> None:
        self.mode = mode
        self.facts = facts
        project = f"litellm-{mode}"
        self.traces = sorted((t for t in opik.traces.values() if t["project_name"] == project),
                             key=lambda t: t["start_time"])
        self.spans = [s for s in opik.spans.values() if s["project_name"] == project]

    def spans_of(self, trace: Dict[str, Any]) -> List[Dict[str, Any]]:
        return sorted((s for s in self.spans if s["trace_id"] == trace["id"]), key=lambda s: s["start_time"])

    def llm_spans(self, trace: Dict[str, Any]) -> List[Dict[str, Any]]:
        return [s for s in self.spans_of(trace) if s["type"] == "llm"]

    def case(self, case: str) -> Tuple[Dict[str, Any], List[Dict[str, Any]]]:
        """(trace, its LLM spans in call order) of one scenario: traces are in scenario order."""
        order = ("chat", "stream", "tool", "image", "error", "turn1", "turn2", "turn3")
        trace = self.traces[order.index(case)]
        return trace, self.llm_spans(trace)


@pytest.fixture(scope="module")
def runs() -> Iterator[Dict[str, Run]]:
    with OpikStandin() as opik:
        facts = {m: run_app("litellm_adk", "litellm_app.py", [m, opik.url, f"litellm-{m}"]) for m in MODES}
        bad = [(r.path, r.status) for r in opik.requests if r.status is None or r.status >= 300]
        assert bad == [], bad
        assert opik.duplicates() == {}
        yield {m: Run(m, facts[m], opik) for m in MODES}


@pytest.fixture(params=MODES)
def run(request: pytest.FixtureRequest, runs: Dict[str, Run]) -> Run:
    return runs[request.param]


def test_every_scenario_is_one_trace(run: Run) -> None:
    assert run.facts["flushed"] is True
    assert len(run.traces) == 8, [t["name"] for t in run.traces]
    for case in ROOTS:
        trace, llm = run.case(case)
        assert len(llm) == (2 if case == "tool" else 1), (case, [s["name"] for s in run.spans_of(trace)])


@pytest.mark.parametrize("case", ["chat", "stream", "turn1"])
def test_answer_reads_as_a_conversation(run: Run, case: str) -> None:
    q, answer = run.facts["questions"][case], run.facts["answer"]
    trace, (llm,) = run.case(case)
    assert opik_ui.problems(llm, q, answer) == []
    assert llm["input"]["messages"][0] == {"role": "system", "content": run.facts["system"]}
    assert llm["input"]["messages"][-1] == {"role": "user", "content": q}
    assert llm["output"]["choices"][0]["message"] == {"role": "assistant", "content": answer}
    assert llm["output"]["choices"][0]["finish_reason"] == "stop"
    assert llm["provider"] == "openai" and llm["model"].startswith("gpt-4o-mini")
    assert llm["usage"]["prompt_tokens"] > 0 and llm["usage"]["completion_tokens"] > 0
    assert llm["total_estimated_cost"] > 0  # LiteLLM's own price of the call
    assert not any(k.startswith("metadata.") and v in ("", []) for k, v in llm["metadata"].items())
    assert opik_ui.table_text(trace["input"], "input") == q
    assert opik_ui.table_text(trace["output"], "output") == answer


def test_tool_round_trip(run: Run) -> None:
    q, answer, call = run.facts["questions"]["tool"], run.facts["answer"], run.facts["tool_call"]
    trace, (asks, answers) = run.case("tool")
    assert opik_ui.problems(asks, q, None) == []
    choice = asks["output"]["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    (made,) = choice["message"]["tool_calls"]
    # LiteLLM records the call's name and arguments on the span, not its id (that is on the raw child)
    assert made["type"] == "function" and made["function"] == {"name": "get_weather", "arguments": call["arguments"]}
    assert opik_ui.problems(answers, q, answer) == []
    msgs = answers["input"]["messages"]
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "tool"]
    assert msgs[2]["tool_calls"] == [{**made, "id": call["id"]}]
    assert msgs[3] == {"role": "tool", "tool_call_id": call["id"], "content": run.facts["tool_result"]}
    assert opik_ui.table_text(trace["input"], "input") == q
    assert opik_ui.table_text(trace["output"], "output") == answer


def test_image_part(run: Run) -> None:
    q = run.facts["questions"]["image"]
    trace, (llm,) = run.case("image")
    assert opik_ui.problems(llm, q, run.facts["answer"]) == []
    content = llm["input"]["messages"][-1]["content"]
    assert content[0] == {"type": "text", "text": q}
    assert content[1]["type"] == "image_url" and content[1]["image_url"]["url"].startswith("data:image/png;base64,")
    assert opik_ui.table_text(trace["input"], "input") == q


def test_failed_call(run: Run) -> None:
    assert run.facts["error"].endswith("InternalServerError")
    trace, (llm,) = run.case("error")
    assert opik_ui.input_detected(llm["input"])
    assert opik_ui.problems(llm, run.facts["questions"]["error"]) == []
    assert "InternalServerError" in llm["error_info"]["exception_type"]
    assert opik_ui.table_text(trace["input"], "input") == run.facts["questions"]["error"]


def test_three_turns_are_one_thread(run: Run) -> None:
    threads = set()
    for n, turn in enumerate(("turn1", "turn2", "turn3")):
        trace, (llm,) = run.case(turn)
        q = run.facts["questions"][turn]
        assert opik_ui.problems(llm, q, run.facts["answer"]) == []
        assert len(llm["input"]["messages"]) == 2 + 2 * n  # system, then the history
        assert opik_ui.table_text(trace["input"], "input") == q
        assert opik_ui.table_text(trace["output"], "output") == run.facts["answer"]
        threads.add(trace.get("thread_id"))
    assert threads == {run.facts["thread"]}


def test_every_llm_span_passes_the_checker(runs: Dict[str, Run]) -> None:
    """The count the report gives: every LLM span with content reads as a conversation."""
    total = passing = 0
    for run in runs.values():
        for span in run.spans:
            if span["type"] == "llm" and span.get("input"):
                total += 1
                passing += opik_ui.problems(span) == []
    assert total == 2 * 9 and passing == total, (passing, total)


def test_raw_request_span(runs: Dict[str, Run]) -> None:
    """Default conventions: the ``raw_gen_ai_request`` child shows the provider's request and response."""
    run = runs["legacy"]
    trace, (asks, _) = run.case("tool")
    (raw,) = [s for s in run.spans_of(trace) if s.get("parent_span_id") == asks["id"]]
    assert raw["name"] == "raw_gen_ai_request" and raw["type"] == "general" and "usage" not in raw
    assert raw["input"]["messages"][-1] == {"role": "user", "content": run.facts["questions"]["tool"]}
    assert raw["input"]["tools"][0]["function"]["name"] == "get_weather"
    (call,) = raw["output"]["choices"][0]["message"]["tool_calls"]
    assert call["id"] == run.facts["tool_call"]["id"]
    assert opik_ui.input_detected(raw["input"]) and opik_ui.output_detected(raw["output"])
    assert not any(k.startswith("llm.openai.") for k in raw["metadata"])


def test_numbers(run: Run) -> None:
    """Usage sums to what the server returned per trace, every LLM span priceable (provider, answered model),
    LiteLLM's own cost on every successful call (it records no first-token time). LiteLLM's streamed call
    records only the requested model (gpt-4o-mini), which Opik prices too."""
    found = numbers_check.problems(run.traces, run.spans, run.facts["served"], cost=True, requested_model="stream")
    assert found == []
    # chat, stream, the tool call and its answer, image, three turns
    assert sum(1 for s in run.spans if s["type"] == "llm" and "usage" in s) == 8
