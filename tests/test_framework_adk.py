"""Google ADK (``LlmAgent`` on ``LiteLlm``) -> Opik, read the way Opik's UI reads it.

``frameworks/adk_app.py`` runs real ADK agents with ``InMemoryRunner`` against
the fake OpenAI server, in ADK's default telemetry schema (GenAI semconv
``generate_content`` spans) and its legacy one (``call_llm`` with Gemini
request/response JSON), and exports through the real ``OpikSpanExporter`` to
the stand-in; the tests check what was stored with ``opik_ui``.
"""

from __future__ import annotations

from typing import Any, Dict, Iterator, List, Tuple

import numbers_check
import opik_ui
import pytest
from framework_env import run_app
from opik_standin import OpikStandin

pytestmark = pytest.mark.frameworks
MODES = ("default", "legacy")
ORDER = ("chat", "stream", "tool", "image", "error", "turn1", "turn2", "turn3")


class Run:
    def __init__(self, mode: str, facts: Dict[str, Any], opik: OpikStandin) -> None:
        self.mode = mode
        self.facts = facts
        project = f"adk-{mode}"
        self.traces = sorted((t for t in opik.traces.values() if t["project_name"] == project),
                             key=lambda t: t["start_time"])
        self.spans = [s for s in opik.spans.values() if s["project_name"] == project]

    def spans_of(self, trace: Dict[str, Any]) -> List[Dict[str, Any]]:
        return sorted((s for s in self.spans if s["trace_id"] == trace["id"]), key=lambda s: s["start_time"])

    def case(self, case: str) -> Tuple[Dict[str, Any], List[Dict[str, Any]]]:
        """(trace, its LLM spans that carry the call's content, in call order)."""
        trace = self.traces[ORDER.index(case)]
        name = "generate_content" if self.mode == "default" else "call_llm"
        llm = [s for s in self.spans_of(trace) if s["type"] == "llm" and s["name"].startswith(name)]
        return trace, llm

    def q(self, case: str) -> str:
        return self.facts["questions"][case]


@pytest.fixture(scope="module")
def runs() -> Iterator[Dict[str, Run]]:
    with OpikStandin() as opik:
        facts = {m: run_app("litellm_adk", "adk_app.py", [m, opik.url, f"adk-{m}"]) for m in MODES}
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
    root = "invoke_workflow" if run.mode == "default" else "invocation"
    assert all(t["name"].startswith(root) for t in run.traces)
    for case in ORDER:
        _, llm = run.case(case)
        assert len(llm) == (2 if case == "tool" else 1), case


def _system_first(run: Run, llm: Dict[str, Any]) -> None:
    first = llm["input"]["messages"][0]
    assert first["role"] == "system" and first["content"].startswith(run.facts["instruction"])
    assert "system_instruction" not in str(llm["input"].get("config", ""))


@pytest.mark.parametrize("case", ["chat", "stream"])
def test_answer_reads_as_a_conversation(run: Run, case: str) -> None:
    answer = run.facts["answer"]
    assert run.facts["answers"][case] == answer
    trace, (llm,) = run.case(case)
    assert opik_ui.problems(llm, run.q(case), answer) == []
    _system_first(run, llm)
    assert [m["role"] for m in llm["input"]["messages"]] == ["system", "user"]
    (choice,) = llm["output"]["choices"]  # streamed partials folded into the one answer
    assert choice["message"] == {"role": "assistant", "content": answer} and choice["finish_reason"] == "stop"
    assert llm["provider"] == "openai"
    # the default schema names the requested model only; the legacy response says which one answered
    if run.mode == "default":  # LiteLLM's openai/ prefix names the provider: Opik prices the model's own name
        assert llm["model"] == "gpt-4o-mini" and llm["metadata"]["model_id"] == "openai/gpt-4o-mini"
    else:  # as the response chunks name it
        assert llm["model"] == ("gpt-4o-mini" if case == "stream" else "gpt-4o-mini-2024-07-18")
    assert llm["usage"]["prompt_tokens"] > 0 and llm["usage"]["completion_tokens"] > 0
    assert opik_ui.table_text(trace["input"], "input") == run.q(case)
    assert opik_ui.table_text(trace["output"], "output") == answer


def test_usage_counted_once_per_call(run: Run) -> None:
    """Legacy schema: ``call_llm`` and the ``generate_content`` inside it are one model call."""
    for case in ORDER:
        trace, _ = run.case(case)
        with_usage = [s for s in run.spans_of(trace) if s.get("usage")]
        assert len(with_usage) == (2 if case == "tool" else 0 if case == "error" else 1), case


def test_tool_round_trip(run: Run) -> None:
    q, answer = run.q("tool"), run.facts["answer"]
    trace, (asks, answers) = run.case("tool")
    assert opik_ui.problems(asks, q, None) == []
    (call,) = asks["output"]["choices"][0]["message"]["tool_calls"]
    assert call["type"] == "function" and call["function"]["name"] == "get_weather"
    assert call["id"].startswith("call_")
    assert opik_ui.problems(answers, q, answer) == []
    msgs = answers["input"]["messages"]
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "tool"]
    assert msgs[2]["tool_calls"] == [call]
    assert msgs[3]["tool_call_id"] == call["id"] and run.facts["tool_result"] in msgs[3]["content"]
    (tool,) = [s for s in run.spans_of(trace) if s["type"] == "tool"]
    assert tool["name"] == "execute_tool get_weather" and tool["output"] == {"result": run.facts["tool_result"]}
    assert opik_ui.table_text(trace["input"], "input") == q
    assert opik_ui.table_text(trace["output"], "output") == answer


def test_image(run: Run) -> None:
    """ADK's telemetry does not carry image bytes: the default schema writes ``"<not serializable>"`` for them
    (the ``image_url`` part stays where the image was, its data never recorded), the legacy one leaves
    ``inline_data`` parts out of the request it records."""
    q = run.q("image")
    trace, (llm,) = run.case("image")
    assert opik_ui.problems(llm, q, run.facts["answer"]) == []
    content = llm["input"]["messages"][-1]["content"]
    if run.mode == "default":
        assert content == [{"type": "text", "text": q},
                           {"type": "image_url", "image_url": {"url": "data:image/png;base64,<not serializable>"}}]
    else:
        assert content == q
    assert opik_ui.table_text(trace["input"], "input") == q


def test_failed_call(run: Run) -> None:
    assert run.facts["error"].endswith("InternalServerError")
    trace, (llm,) = run.case("error")
    assert "InternalServerError" in llm["error_info"]["exception_type"]
    if run.mode == "default":
        assert opik_ui.input_detected(llm["input"])
        assert opik_ui.problems(llm, run.q("error")) == []
        assert opik_ui.table_text(trace["input"], "input") == run.q("error")
    else:  # the legacy schema records the request only with a response
        assert "input" not in llm or not llm["input"]


def test_three_turns_are_one_thread(run: Run) -> None:
    threads = set()
    for n, turn in enumerate(("turn1", "turn2", "turn3")):
        trace, (llm,) = run.case(turn)
        assert opik_ui.problems(llm, run.q(turn), run.facts["answer"]) == []
        assert len(llm["input"]["messages"]) == 2 + 2 * n  # system, then the session's history
        assert opik_ui.table_text(trace["input"], "input") == run.q(turn)
        assert opik_ui.table_text(trace["output"], "output") == run.facts["answer"]
        threads.add(trace.get("thread_id"))
    assert threads == {run.facts["thread"]}


def test_every_llm_span_passes_the_checker(runs: Dict[str, Run]) -> None:
    """The count the report gives: every LLM span with content reads as a conversation."""
    counts = {}
    for mode, run in runs.items():
        content = [s for s in run.spans if s["type"] == "llm" and s.get("input")]
        counts[mode] = (sum(opik_ui.problems(s) == [] for s in content), len(content))
    assert counts == {"default": (9, 9), "legacy": (8, 8)}, counts


def test_numbers(run: Run) -> None:
    """Usage sums to what the server returned per trace (both schemas: legacy call_llm over generate_content
    counts once), every LLM span priceable: the provider from the LiteLLM model id (openai/gpt-4o-mini, whose
    prefix is dropped from the model; gen_ai.system names the framework). ADK records the requested model
    (only the legacy call_llm of a non-streamed call has the answered one) and no first-token time."""
    assert numbers_check.problems(run.traces, run.spans, run.facts["served"], requested_model="all") == []
    llm = [s for s in run.spans if s["type"] == "llm"]
    assert {s.get("model") for s in llm} >= {"gpt-4o-mini"} and not any("/" in s.get("model", "") for s in llm)
