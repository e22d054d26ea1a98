"""The OpenAI Agents SDK through OpenInference's ``OpenAIAgentsInstrumentor`` -> Opik.

The attribute sets are what ``openinference-instrumentation-openai-agents`` 2.6 writes for
``openai-agents`` 0.24 (``_processor.py``; recorded from real runs, see
``tests/test_framework_openai_agents.py``): an SDK trace becomes an ``AGENT`` root span over a
``CHAIN`` task span, the agent's ``AGENT`` span, ``CHAIN`` turn spans and the model calls.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List

import opik_ui
from conftest_conventions import Recorder, mapped, ns, strip
from opentelemetry.trace import SpanKind, set_span_in_context

from opentelemetry.exporter.opik._config import resolve_settings
from opentelemetry.exporter.opik._mapping import Mapper
from opentelemetry.exporter.opik._record import from_readable_span

SCOPE = "openinference.instrumentation.openai_agents"
SYSTEM = "Be terse."
QUESTION = "Weather in Paris?"
ANSWER = "Sunny in Paris."
CALL_ARGS = '{"city": "Paris"}'


def _response(n: int, output: List[Dict[str, Any]]) -> str:
    return json.dumps({"id": f"resp_{n}", "created_at": 1796241827.0, "error": None, "instructions": SYSTEM,
                       "model": "gpt-4o-mini-2024-07-18", "object": "response", "output": output,
                       "parallel_tool_calls": True, "tool_choice": "auto", "tools": [], "status": "completed",
                       "usage": {"input_tokens": 13, "output_tokens": 9, "total_tokens": 22}})


def _llm_common(n: int) -> Dict[str, Any]:
    return {
        "openinference.span.kind": "LLM", "llm.system": "openai", "llm.model_name": "gpt-4o-mini-2024-07-18",
        "llm.token_count.prompt": 13, "llm.token_count.completion": 9, "llm.token_count.total": 22,
        "llm.finish_reason": "stop", "input.mime_type": "application/json", "output.mime_type": "application/json",
        "llm.invocation_parameters": json.dumps({"id": f"resp_{n}", "instructions": SYSTEM, "tool_choice": "auto"}),
        "llm.input_messages.0.message.role": "system", "llm.input_messages.0.message.content": SYSTEM,
    }


def _first_call() -> Dict[str, Any]:
    call = {"arguments": CALL_ARGS, "call_id": "call_1", "name": "get_weather", "type": "function_call",
            "id": "fc_1", "status": "completed"}
    return {
        **_llm_common(1),
        # the SDK's input items: the user's message, without the agent's instructions
        "input.value": json.dumps([{"content": QUESTION, "role": "user"}]),
        "llm.input_messages.1.message.role": "user", "llm.input_messages.1.message.content": QUESTION,
        "output.value": _response(1, [call]),
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.tool_calls.0.tool_call.id": "call_1",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "get_weather",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": CALL_ARGS,
    }


def _second_call() -> Dict[str, Any]:
    items = [{"content": QUESTION, "role": "user"},
             {"arguments": CALL_ARGS, "call_id": "call_1", "name": "get_weather", "type": "function_call"},
             {"call_id": "call_1", "output": "sunny", "type": "function_call_output"}]
    message = {"id": "msg_2", "type": "message", "role": "assistant", "status": "completed",
               "content": [{"type": "output_text", "text": ANSWER, "annotations": []}]}
    return {
        **_llm_common(2),
        "input.value": json.dumps(items),
        "llm.input_messages.1.message.role": "user", "llm.input_messages.1.message.content": QUESTION,
        "llm.input_messages.2.message.role": "assistant",
        "llm.input_messages.2.message.tool_calls.0.tool_call.id": "call_1",
        "llm.input_messages.2.message.tool_calls.0.tool_call.function.name": "get_weather",
        "llm.input_messages.2.message.tool_calls.0.tool_call.function.arguments": CALL_ARGS,
        "llm.input_messages.3.message.role": "tool", "llm.input_messages.3.message.tool_call_id": "call_1",
        "llm.input_messages.3.message.content": "sunny",
        "output.value": _response(2, [message]),
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.contents.0.message_content.type": "text",
        "llm.output_messages.0.message.contents.0.message_content.text": ANSWER,
        "llm.output_messages.0.message.content": ANSWER,
    }


def _run(rec: Recorder, agent_name: str = "weather", offset: float = 0) -> None:
    """One Runner run as the instrumentor records it: spans end children first."""
    tracer = rec.provider.get_tracer(SCOPE, "2.6.0")
    root = tracer.start_span("Agent workflow", attributes={"openinference.span.kind": "AGENT"}, start_time=ns(offset))
    rec.span("turn", {"openinference.span.kind": "CHAIN"}, offset + 2, offset + 3, parent=root, scope=SCOPE)
    task = tracer.start_span("Agent workflow", context=set_span_in_context(root),
                             attributes={"openinference.span.kind": "CHAIN"}, start_time=ns(offset + 1))
    agent = tracer.start_span(agent_name, context=set_span_in_context(task),
                              attributes={"openinference.span.kind": "AGENT"}, start_time=ns(offset + 4))
    turn1 = tracer.start_span("turn", context=set_span_in_context(agent),
                              attributes={"openinference.span.kind": "CHAIN"}, start_time=ns(offset + 5))
    rec.span("response", _first_call(), offset + 6, offset + 300, parent=turn1, kind=SpanKind.INTERNAL, scope=SCOPE)
    rec.span("get_weather", {"openinference.span.kind": "TOOL", "tool.name": "get_weather", "input.value": CALL_ARGS,
                             "input.mime_type": "application/json", "output.value": "sunny"},
             offset + 301, offset + 310, parent=turn1, scope=SCOPE)
    turn1.end(end_time=ns(offset + 311))
    turn2 = tracer.start_span("turn", context=set_span_in_context(agent),
                              attributes={"openinference.span.kind": "CHAIN"}, start_time=ns(offset + 312))
    rec.span("response", _second_call(), offset + 313, offset + 600, parent=turn2, scope=SCOPE)
    turn2.end(end_time=ns(offset + 601))
    agent.set_attributes({"graph.node.id": agent_name, "agent.name": agent_name})
    agent.end(end_time=ns(offset + 602))
    task.end(end_time=ns(offset + 603))
    root.end(end_time=ns(offset + 604))


def test_responses_run_reads_as_a_conversation() -> None:
    rec = Recorder()
    _run(rec)
    result = mapped(rec.finished())
    first, second = sorted((s for s in result.spans if s["name"] == "response"), key=lambda s: s["start_time"])
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": CALL_ARGS}}
    # the flattened messages, which start with the instructions, rather than the SDK's input items
    assert first["input"] == {"messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}]}
    assert first["output"] == {"choices": [{"index": 0, "finish_reason": "stop",
                                            "message": {"role": "assistant", "content": None, "tool_calls": [call]}}]}
    assert second["input"]["messages"] == [
        {"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    assert second["output"]["choices"][0]["message"] == {"role": "assistant", "content": ANSWER}
    assert opik_ui.problems(first, QUESTION) == [] and opik_ui.problems(second, QUESTION, ANSWER) == []
    # the Response besides its output items stays in metadata: the answer is not repeated there
    response = second["metadata"]["output.value"]
    assert response["id"] == "resp_2" and response["status"] == "completed" and "output" not in response
    assert second["usage"] == {"prompt_tokens": 13, "completion_tokens": 9, "total_tokens": 22}

    # the SDK's agent, task and root spans record nothing: they read as the run's question and answer
    agent = result.span("weather")
    root, task = sorted((s for s in result.spans if s["name"] == "Agent workflow"), key=lambda s: s["start_time"])
    for item in (agent, root, task, result.trace):
        assert item["input"] == {"messages": [{"role": "user", "content": QUESTION}]}
        assert item["output"] == {"choices": [{"index": 0, "message": {"role": "assistant", "content": ANSWER}}]}
        assert opik_ui.messages_tab(item) and opik_ui.empty_messages(item) == []
    assert strip(agent)["metadata"] == {"graph.node.id": "weather", "agent.name": "weather",
                                        "openinference.span.kind": "AGENT"}
    # each turn: the question asked within it, the answer given within it
    early, turn1, turn2 = sorted((s for s in result.spans if s["name"] == "turn"), key=lambda s: s["start_time"])
    assert "input" not in early and "output" not in early  # no LLM call ran inside it
    assert opik_ui.table_text(turn1["input"], "input") == QUESTION and "output" not in turn1
    assert "input" not in turn2 and opik_ui.table_text(turn2["output"], "output") == ANSWER
    tool = result.span("get_weather")
    assert (tool["input"], tool["output"]) == ({"city": "Paris"}, {"value": "sunny"})


def test_the_agent_span_in_a_later_batch_still_reads() -> None:
    """Children are exported before their parents, often in an earlier batch: the trace's facts carry over."""
    rec = Recorder()
    _run(rec)
    records = [from_readable_span(s) for s in rec.finished()]
    mapper = Mapper(resolve_settings({"project_name": "p"}, env={}))
    cut = next(n for n, r in enumerate(records) if r.name == "weather")
    first = mapper.map(records[:cut])
    later = mapper.map(records[cut:])
    assert first.rejected == later.rejected == []
    agent = next(m.data for m in later.items if m.kind == "span" and m.data["name"] == "weather")
    assert opik_ui.table_text(agent["input"], "input") == QUESTION
    assert opik_ui.table_text(agent["output"], "output") == ANSWER
    [trace] = [m.data for m in later.items if m.kind == "trace"]
    assert opik_ui.table_text(trace["input"], "input") == QUESTION


def test_otel_message_format_leaves_the_agent_spans_empty() -> None:
    rec = Recorder()
    _run(rec)
    records = [from_readable_span(s) for s in rec.finished()]
    mapper = Mapper(resolve_settings({"project_name": "p", "message_format": "otel"}, env={}))
    items = mapper.map(records).items
    agent = next(m.data for m in items if m.kind == "span" and m.data["name"] == "weather")
    assert "input" not in agent and "output" not in agent


def test_streamed_chat_completion_output_is_the_assembled_response() -> None:
    """``OpenAIChatCompletionsModel.stream_response``: the GenerationSpanData output is ``[Response]``."""
    message = {"id": "__fake_id__", "type": "message", "role": "assistant", "status": "completed",
               "content": [{"type": "output_text", "text": ANSWER, "annotations": [], "logprobs": []}],
               "provider_data": {"model": "gpt-4o-mini", "response_id": "chatcmpl-1"}}
    response = json.loads(_response(1, [message]))
    response.update({"id": "__fake_id__", "instructions": None, "status": None,
                     "usage": {"input_tokens": 13, "output_tokens": 9, "total_tokens": 22}})
    rec = Recorder(scope=SCOPE)
    rec.span("generation", {
        "openinference.span.kind": "LLM", "llm.system": "openai", "llm.model_name": "gpt-4o-mini",
        "llm.invocation_parameters": '{"base_url": "http://127.0.0.1:4000/v1/"}',
        "input.value": json.dumps([{"content": SYSTEM, "role": "system"}, {"role": "user", "content": QUESTION}]),
        "input.mime_type": "application/json",
        "llm.input_messages.0.message.role": "system", "llm.input_messages.0.message.content": SYSTEM,
        "llm.input_messages.1.message.role": "user", "llm.input_messages.1.message.content": QUESTION,
        "output.value": json.dumps([response]), "output.mime_type": "application/json",
    }, 0, 100)
    span = mapped(rec.finished()).span("generation")
    assert span["input"] == {"messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}]}
    assert span["output"] == {"choices": [{"index": 0, "message": {"role": "assistant", "content": ANSWER}}]}
    assert opik_ui.problems(span, QUESTION, ANSWER) == [] and opik_ui.messages_tab(span)
    # the Response's usage, which the instrumentor does not flatten for a stream
    assert span["usage"] == {"prompt_tokens": 13, "completion_tokens": 9, "total_tokens": 22}
    assert span["metadata"]["output.value"]["id"] == "__fake_id__" and "output" not in span["metadata"]["output.value"]


def test_chat_completions_input_with_an_image_keeps_the_json() -> None:
    """The chat-completions messages (instructions included) carry the image the flattened ones drop."""
    url = "data:image/png;base64,iVBORw0KGgo="
    user = {"role": "user", "content": [{"type": "text", "text": "What is this?"},
                                        {"type": "image_url", "image_url": {"url": url}}]}
    rec = Recorder(scope=SCOPE)
    rec.span("generation", {
        "openinference.span.kind": "LLM", "llm.model_name": "gpt-4o-mini",
        "input.value": json.dumps([{"content": SYSTEM, "role": "system"}, user]), "input.mime_type": "application/json",
        "llm.input_messages.0.message.role": "system", "llm.input_messages.0.message.content": SYSTEM,
        "llm.input_messages.1.message.role": "user",
        "llm.input_messages.1.message.contents.0.message_content.type": "text",
        "llm.input_messages.1.message.contents.0.message_content.text": "What is this?",
        "output.value": json.dumps([{"role": "assistant", "content": ANSWER}]), "output.mime_type": "application/json",
        "llm.output_messages.0.message.role": "assistant", "llm.output_messages.0.message.content": ANSWER,
    }, 0, 100)
    span = mapped(rec.finished()).span("generation")
    assert span["input"]["messages"] == [{"role": "system", "content": SYSTEM}, user]
    assert opik_ui.problems(span, "What is this?", ANSWER) == []


def test_a_second_agent_after_a_handoff_reads_its_own_answer_only() -> None:
    """The trace keeps its first question: an agent that starts later was not asked it."""
    rec = Recorder()
    tracer = rec.provider.get_tracer(SCOPE, "2.6.0")
    root = tracer.start_span("Agent workflow", attributes={"openinference.span.kind": "AGENT"}, start_time=ns(0))
    triage = tracer.start_span("triage", context=set_span_in_context(root),
                               attributes={"openinference.span.kind": "AGENT"}, start_time=ns(1))
    rec.span("response", {**_first_call()}, 2, 100, parent=triage, scope=SCOPE)
    triage.end(end_time=ns(101))
    weather = tracer.start_span("weather", context=set_span_in_context(root),
                                attributes={"openinference.span.kind": "AGENT"}, start_time=ns(102))
    rec.span("response", _second_call(), 103, 200, parent=weather, scope=SCOPE)
    weather.end(end_time=ns(201))
    root.end(end_time=ns(202))
    result = mapped(rec.finished())
    triage_span, weather_span = result.span("triage"), result.span("weather")
    # triage asked the question and answered with a tool call (no text)
    assert opik_ui.table_text(triage_span["input"], "input") == QUESTION and "output" not in triage_span
    assert "input" not in weather_span and opik_ui.table_text(weather_span["output"], "output") == ANSWER
    assert opik_ui.table_text(result.trace["input"], "input") == QUESTION
    assert opik_ui.table_text(result.trace["output"], "output") == ANSWER
