"""The trace row: what Opik's trace table and thread view read for a whole trace.

A root span that has no text of its own (an agent run, an HTTP handler) would
show ``{}`` or JSON in the thread view; its trace row reads the trace's first
LLM question and last LLM answer instead, while the root span keeps its own
fields. Real SDK spans through the real ``Mapper`` (``conftest_conventions``),
and for privacy through the real exporter into the Opik stand-in.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List

import opik_ui
from conftest_conventions import Recorder, mapped
from opentelemetry.trace import SpanKind

from opentelemetry.exporter.opik._config import resolve_settings
from opentelemetry.exporter.opik._mapping import Mapper
from opentelemetry.exporter.opik._privacy import marker
from opentelemetry.exporter.opik._record import from_readable_span

try:
    from tests.conftest_privacy import make_exporter, opik, provider_for, sent_text  # noqa: F401
    from tests.opik_standin import OpikStandin
except ImportError:
    from conftest_privacy import make_exporter, opik, provider_for, sent_text  # type: ignore[no-redef] # noqa: F401
    from opik_standin import OpikStandin  # type: ignore[no-redef]

QUESTION = "What is the weather in Paris today?"
ANSWER = "It is 18 degrees and cloudy in Paris."
SYSTEM = {"role": "system", "parts": [{"type": "text", "content": "You are a weather assistant."}]}
USER = {"role": "user", "parts": [{"type": "text", "content": QUESTION}]}
CALL = {"role": "assistant", "parts": [{"type": "tool_call", "id": "call-1", "name": "weather", "arguments": {"city": "Paris"}}]}
RESULT = {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call-1", "response": {"temperatureC": 18}}]}


def _chat_attrs(inputs: List[Dict[str, Any]], outputs: List[Dict[str, Any]]) -> Dict[str, Any]:
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.input.messages": json.dumps(inputs),
        "gen_ai.output.messages": json.dumps(outputs),
    }


def _agent_trace(rec: Recorder, root_attrs: Dict[str, Any], question: str = QUESTION) -> None:
    """A root span over two LLM calls: the first asks for a tool, the second answers with its result."""
    user = {"role": "user", "parts": [{"type": "text", "content": question}]}
    root = rec.span("agent run", root_attrs, 0, 1000)
    rec.span("chat gpt-4o-mini", _chat_attrs([SYSTEM, user], [{**CALL, "finish_reason": "tool_call"}]),
             10, 300, parent=root, kind=SpanKind.CLIENT)
    rec.span("execute_tool weather", {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "weather",
                                      "gen_ai.tool.call.arguments": '{"city": "Paris"}',
                                      "gen_ai.tool.call.result": '{"temperatureC": 18}'}, 310, 320, parent=root)
    rec.span("chat gpt-4o-mini", _chat_attrs(
        [SYSTEM, user, CALL, RESULT],
        [{"role": "assistant", "parts": [{"type": "text", "content": ANSWER}], "finish_reason": "stop"}],
    ), 330, 990, parent=root, kind=SpanKind.CLIENT)


def _by_start(spans: List[Dict[str, Any]], name: str) -> List[Dict[str, Any]]:
    return sorted((s for s in spans if s["name"] == name), key=lambda s: s["start_time"])


def test_a_root_without_text_reads_the_first_question_and_the_last_answer() -> None:
    rec = Recorder()
    _agent_trace(rec, {})
    result = mapped(rec.finished())
    trace = result.trace
    assert opik_ui.table_text(trace["input"], "input") == QUESTION
    assert opik_ui.table_text(trace["output"], "output") == ANSWER
    assert opik_ui.problems(trace, QUESTION, ANSWER) == []
    assert trace["input"] == {"messages": [{"role": "user", "content": QUESTION}]}
    assert trace["output"] == {"choices": [{"index": 0, "message": {"role": "assistant", "content": ANSWER}}]}
    # the root span itself keeps its own (empty) fields: nothing is invented on it
    root = result.span("agent run")
    assert root["type"] == "general" and "input" not in root and "output" not in root
    # every LLM call reads as a conversation
    first, second = _by_start(result.spans, "chat gpt-4o-mini")
    assert opik_ui.problems(first, QUESTION) == []
    assert first["output"]["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "weather"
    assert opik_ui.problems(second, QUESTION, ANSWER) == []
    assert [m["role"] for m in second["input"]["messages"]] == ["system", "user", "assistant", "tool"]
    tool = result.span("execute_tool weather")
    assert (tool["input"], tool["output"]) == ({"city": "Paris"}, {"temperatureC": 18})  # tool spans as they are


def test_a_root_with_readable_content_keeps_it() -> None:
    rec = Recorder()
    _agent_trace(rec, {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": "weather-agent",
        "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": "Plan my day."}]}]),
        "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": "Take a coat."}]}]),
    })
    result = mapped(rec.finished())
    root = result.span("agent run")
    assert root["input"] == {"messages": [{"role": "user", "content": "Plan my day."}]}
    assert result.trace["input"] == root["input"] and result.trace["output"] == root["output"]
    assert opik_ui.table_text(result.trace["input"], "input") == "Plan my day."
    assert opik_ui.table_text(result.trace["output"], "output") == "Take a coat."


def test_a_root_with_text_input_only_gets_the_answer_alone() -> None:
    rec = Recorder()
    _agent_trace(rec, {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "weather-agent",
                       "gen_ai.input.messages": json.dumps([{"role": "user",
                                                             "parts": [{"type": "text", "content": "Plan my day."}]}])})
    trace = mapped(rec.finished()).trace
    assert opik_ui.table_text(trace["input"], "input") == "Plan my day."
    assert opik_ui.table_text(trace["output"], "output") == ANSWER


def test_the_root_in_a_later_batch_still_reads_them() -> None:
    rec = Recorder()
    _agent_trace(rec, {})
    spans = [from_readable_span(s) for s in rec.finished()]
    children = [s for s in spans if s.parent_span_id]
    roots = [s for s in spans if not s.parent_span_id]
    mapper = Mapper(resolve_settings({}, env={}))
    first = mapper.map(children)
    assert [m.kind for m in first.items if m.kind == "trace"] == []
    (trace,) = [m.data for m in mapper.map(roots).items if m.kind == "trace"]
    assert opik_ui.table_text(trace["input"], "input") == QUESTION
    assert opik_ui.table_text(trace["output"], "output") == ANSWER


def test_a_derived_trace_row_has_its_own_content_and_a_readable_one_shares_the_root_spans() -> None:
    """Derived text is the trace row's own object (the root span keeps its fields); otherwise they share them."""
    mapper = Mapper(resolve_settings({}, env={}))
    derived = Recorder()
    _agent_trace(derived, {})
    items = mapper.map([from_readable_span(s) for s in derived.finished()]).items
    (root,) = [m for m in items if m.kind == "span" and m.data["name"] == "agent run"]
    (trace,) = [m for m in items if m.kind == "trace"]
    assert trace.data["input"] is not root.data.get("input")
    own = Recorder()
    own.span("chat gpt-4o-mini", _chat_attrs([USER], [{"role": "assistant", "parts": [{"type": "text", "content": ANSWER}]}]),
             0, 10)
    items = mapper.map([from_readable_span(s) for s in own.finished()]).items
    (span,) = [m for m in items if m.kind == "span"]
    (trace,) = [m for m in items if m.kind == "trace"]
    assert trace.data["input"] is span.data["input"] and trace.data["metadata"] is span.data["metadata"]
    assert opik_ui.problems(trace.data, QUESTION, ANSWER) == []  # a single call: the trace reads like the call


def test_otel_message_format_keeps_raw_parts_and_the_root_as_it_is() -> None:
    rec = Recorder()
    _agent_trace(rec, {})
    records = [from_readable_span(s) for s in rec.finished()]
    for settings in (resolve_settings({"message_format": "otel"}, env={}),
                     resolve_settings({}, env={"OTEL_EXPORTER_OPIK_MESSAGE_FORMAT": "otel"})):
        assert settings.message_format == "otel"
        items = Mapper(settings).map(records).items
        chats = sorted((m.data for m in items if m.kind == "span" and m.data["name"] == "chat gpt-4o-mini"),
                       key=lambda s: s["start_time"])
        assert chats[0]["input"] == {"messages": [SYSTEM, USER]}
        assert chats[1]["input"] == {"messages": [SYSTEM, USER, CALL, RESULT]}
        assert chats[1]["output"]["messages"][0]["parts"] == [{"type": "text", "content": ANSWER}]
        (trace,) = [m.data for m in items if m.kind == "trace"]
        assert "input" not in trace and "output" not in trace  # the root's own (empty) fields


# --- privacy: what is derived for the trace row obeys the same settings -------------------------------

SECRET = "sk-proj-Zq8xV2mN4pL7rT1yW9cB3dF6hJ0kS5aE"


def _export(opik: OpikStandin, question: str, **options: Any) -> None:
    """The same trace, timed now, through the real exporter (Opik refuses ids far from now)."""
    exporter = make_exporter(opik, **options)
    tp = provider_for(exporter)
    tracer = tp.get_tracer("trace-rows")
    user = {"role": "user", "parts": [{"type": "text", "content": question}]}
    with tracer.start_as_current_span("agent run"):
        with tracer.start_as_current_span("chat gpt-4o-mini", kind=SpanKind.CLIENT,
                                          attributes=_chat_attrs([SYSTEM, user], [CALL])):
            pass
        with tracer.start_as_current_span("execute_tool weather", attributes={
                "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "weather"}):
            pass
        answer = [{"role": "assistant", "parts": [{"type": "text", "content": ANSWER}]}]
        with tracer.start_as_current_span("chat gpt-4o-mini", kind=SpanKind.CLIENT,
                                          attributes=_chat_attrs([SYSTEM, user, CALL, RESULT], answer)):
            pass
    assert exporter.force_flush(10_000)
    opik.wait_for_counts(traces=1, spans=4)
    tp.shutdown()


def test_capture_off_sends_no_derived_trace_content(opik: OpikStandin, monkeypatch: Any) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OPIK_CAPTURE_CONTENT", "false")
    assert resolve_settings({}).capture_content is False  # the variable is read
    _export(opik, QUESTION, capture_content=resolve_settings({}).capture_content)
    text = sent_text(opik)
    assert QUESTION not in text and ANSWER not in text
    (trace,) = opik.traces.values()
    assert trace["input"]["content_omitted"] is True and trace["output"]["content_omitted"] is True
    for span in opik.spans.values():
        if span["type"] == "llm":
            assert span["input"]["content_omitted"] is True


def test_a_secret_in_the_question_is_scrubbed_on_the_trace_row_too(opik: OpikStandin) -> None:
    question = f"My key is {SECRET}, why is it refused?"
    _export(opik, question)
    text = sent_text(opik)
    assert SECRET not in text
    (trace,) = opik.traces.values()
    shown = opik_ui.table_text(trace["input"], "input")
    assert shown == f"My key is {marker('api key')}, why is it refused?"
    assert opik_ui.table_text(trace["output"], "output") == ANSWER
    llm = [s for s in opik.spans.values() if s["type"] == "llm"]
    assert len(llm) == 2 and all(SECRET not in json.dumps(s["input"]) for s in llm)
    assert all(opik_ui.problems(s) == [] for s in llm)
