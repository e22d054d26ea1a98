"""Strands Agents -> Opik, from the attributes and events Strands 1.62 recorded (``strands/telemetry/tracer.py``).

One agent run with a tool round trip, in both of Strands' convention modes:
its default (span events ``gen_ai.{system,user,assistant,tool}.message`` and
``gen_ai.choice`` whose contents are JSON strings of Bedrock-style blocks) and
``OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental`` (the messages on
``gen_ai.client.inference.operation.details`` span events). Also the generic
reading of that event for any GenAI span, and the normalizer changes Strands needed.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Tuple

import opik_ui
from conftest_conventions import Recorder, mapped, strip

from opentelemetry.exporter.opik._config import resolve_settings
from opentelemetry.exporter.opik._mapping import Mapper
from opentelemetry.exporter.opik._mapping.conventions.strands import provider_of
from opentelemetry.exporter.opik._record import from_readable_span

SCOPE = "strands.telemetry.tracer"
DETAILS = "gen_ai.client.inference.operation.details"
ARGS = {"city": "Paris", "unit": "celsius"}
RESULT = "Sunny, 21 degrees celsius in Paris"
ANSWER = "Paris is the capital of France."
TOOL_USE = {"toolUse": {"toolUseId": "call_1", "name": "get_weather", "input": ARGS}}
TOOL_RESULT = {"toolResult": {"toolUseId": "call_1", "status": "success", "content": [{"text": RESULT}]}}
TOOL_CALL_PART = {"type": "tool_call", "name": "get_weather", "id": "call_1", "arguments": ARGS}
TOOL_RESPONSE_PART = {"type": "tool_call_response", "id": "call_1", "response": [{"text": RESULT}]}
SCHEMA = {"properties": {"city": {"description": "The city.", "type": "string"}}, "required": ["city"], "type": "object"}

Events = List[Tuple[str, float, Dict[str, Any]]]


def _j(value: Any) -> str:
    return json.dumps(value)


def _common(latest: bool, op: str) -> Dict[str, Any]:
    return {
        "gen_ai.event.start_time": "2027-01-15T08:00:00.000000+00:00",
        "gen_ai.operation.name": op,
        ("gen_ai.provider.name" if latest else "gen_ai.system"): "strands-agents",
        "session.id": "s-1",
    }


def _usage(n: int, latest: bool, agent: bool = False) -> Dict[str, Any]:
    u = {"gen_ai.usage.prompt_tokens": 13 * n, "gen_ai.usage.input_tokens": 13 * n,
         "gen_ai.usage.completion_tokens": 9 * n, "gen_ai.usage.output_tokens": 9 * n,
         "gen_ai.usage.total_tokens": 22 * n, "gen_ai.usage.cache_read.input_tokens": 0}
    if agent:
        u["gen_ai.usage.cache_creation.input_tokens"] = 0
    if not latest:
        u["gen_ai.usage.cache_read_input_tokens"] = 0
        if agent:
            u["gen_ai.usage.cache_write_input_tokens"] = 0
    return u


def _messages_events(latest: bool, history: List[Dict[str, Any]], at: float, system: bool) -> Events:
    """The events of a span's input messages, as Strands writes them in each mode."""
    if latest:
        evs: Events = []
        if system:
            evs.append((DETAILS, at, {"gen_ai.system_instructions": _j([{"type": "text", "content": "You are terse."}])}))
        evs.append((DETAILS, at, {"gen_ai.input.messages": _j(history)}))
        return evs
    evs = [("gen_ai.system.message", at, {"content": _j([{"text": "You are terse."}])})] if system else []
    for m in history:
        name = "gen_ai.tool.message" if any("toolResult" in b for b in m["content"]) else f"gen_ai.{m['role']}.message"
        evs.append((name, at, {"content": _j(m["content"])}))
    return evs


def _strands_run(latest: bool) -> Recorder:
    """invoke_agent > cycle 1 (chat -> tool call, execute_tool) > cycle 2 (chat -> answer), as Strands records it."""
    rec = Recorder(scope=SCOPE)
    q = {"role": "user", "content": [{"text": "Weather in Paris?"}]}
    call = {"role": "assistant", "content": [TOOL_USE]}
    result = {"role": "user", "content": [TOOL_RESULT]}
    if latest:  # the same messages as GenAI parts
        q = {"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]}
        call = {"role": "assistant", "parts": [TOOL_CALL_PART]}
        result = {"role": "user", "parts": [TOOL_RESPONSE_PART]}
    agent_attrs = {**_common(latest, "invoke_agent"), "gen_ai.agent.name": "weather",
                   "gen_ai.request.model": "gpt-4o-mini", "gen_ai.agent.tools": '["get_weather"]',
                   **_usage(2, latest, agent=True)}
    if latest:
        agent_attrs["gen_ai.system_instructions"] = _j([{"type": "text", "content": "You are terse."}])
    agent_events = _messages_events(latest, [q], 0, system=not latest)
    if latest:
        agent_events.append((DETAILS, 900, {"gen_ai.output.messages": _j(
            [{"role": "assistant", "parts": [{"type": "text", "content": ANSWER + "\n"}], "finish_reason": "end_turn"}])}))
    else:
        agent_events.append(("gen_ai.choice", 900, {"message": ANSWER + "\n", "finish_reason": "end_turn"}))
    agent = rec.span("invoke_agent weather", agent_attrs, 0, 900, events=agent_events)

    cycle1_events = _messages_events(latest, [q], 1, system=False)
    if latest:
        cycle1_events.append((DETAILS, 500, {"gen_ai.input.messages": _j([result])}))
    else:
        cycle1_events.append(("gen_ai.choice", 500, {"message": _j(call["content"]), "tool.result": _j(result["content"])}))
    cycle1 = rec.span("execute_event_loop_cycle", {**_common(latest, "execute_event_loop_cycle"),
                                                   "event_loop.cycle_id": "c-1"}, 1, 500, parent=agent,
                      events=cycle1_events)

    chat_attrs = {**_common(latest, "chat"), "gen_ai.request.model": "gpt-4o-mini", **_usage(1, latest),
                  "gen_ai.server.time_to_first_token": 120}
    chat1_events = _messages_events(latest, [q], 2, system=True)
    if latest:
        chat1_events.append((DETAILS, 400, {"gen_ai.output.messages": _j(
            [{"role": "assistant", "parts": [TOOL_CALL_PART], "finish_reason": "tool_use"}])}))
    else:
        chat1_events.append(("gen_ai.choice", 400, {"finish_reason": "tool_use", "message": _j([TOOL_USE])}))
    rec.span("chat", chat_attrs, 2, 400, parent=cycle1, events=chat1_events)

    tool_attrs = {**_common(latest, "execute_tool"), "gen_ai.tool.name": "get_weather", "gen_ai.tool.call.id": "call_1",
                  "gen_ai.tool.description": "Weather for a city.", "gen_ai.tool.json_schema": _j(SCHEMA),
                  "gen_ai.tool.status": "success"}
    if latest:
        tool_attrs["gen_ai.tool.call.arguments"] = _j(ARGS)
        tool_attrs["gen_ai.tool.call.result"] = _j([{"text": RESULT}])
        tool_events: Events = [
            (DETAILS, 410, {"gen_ai.input.messages": _j([{"role": "tool", "parts": [TOOL_CALL_PART]}])}),
            (DETAILS, 420, {"gen_ai.output.messages": _j([{"role": "tool", "parts": [TOOL_RESPONSE_PART]}])}),
        ]
    else:
        tool_events = [("gen_ai.tool.message", 410, {"role": "tool", "content": _j(ARGS), "id": "call_1"}),
                       ("gen_ai.choice", 420, {"message": _j([{"text": RESULT}]), "id": "call_1"})]
    rec.span("execute_tool get_weather", tool_attrs, 405, 430, parent=cycle1, events=tool_events)

    cycle2 = rec.span("execute_event_loop_cycle", {**_common(latest, "execute_event_loop_cycle"),
                                                   "event_loop.cycle_id": "c-2", "event_loop.parent_cycle_id": "c-1"},
                      501, 890, parent=agent, events=_messages_events(latest, [q, call, result], 501, system=False))
    chat2_events = _messages_events(latest, [q, call, result], 502, system=True)
    if latest:
        chat2_events.append((DETAILS, 880, {"gen_ai.output.messages": _j(
            [{"role": "assistant", "parts": [{"type": "text", "content": ANSWER}], "finish_reason": "end_turn"}])}))
    else:
        chat2_events.append(("gen_ai.choice", 880, {"finish_reason": "end_turn", "message": _j([{"text": ANSWER}])}))
    rec.span("chat", {**chat_attrs, "gen_ai.server.time_to_first_token": 80}, 502, 880, parent=cycle2,
             events=chat2_events)
    return rec


OPENAI_CALL = {"id": "call_1", "type": "function",
               "function": {"name": "get_weather", "arguments": json.dumps(ARGS, separators=(",", ":"))}}
SYSTEM = {"role": "system", "content": "You are terse."}
QUESTION = {"role": "user", "content": "Weather in Paris?"}
CALL_MESSAGE = {"role": "assistant", "content": None, "tool_calls": [OPENAI_CALL]}
RESULT_MESSAGE = {"role": "tool", "tool_call_id": "call_1", "content": RESULT}
LLM_USAGE = {"prompt_tokens": 13, "completion_tokens": 9, "total_tokens": 22}


def _by_name(spans: List[Dict[str, Any]], name: str) -> List[Dict[str, Any]]:
    return sorted((s for s in spans if s["name"] == name), key=lambda s: s["start_time"])


def _check_run(latest: bool) -> None:
    result = mapped(_strands_run(latest).finished())
    first, second = _by_name(result.spans, "chat")
    assert strip(first) == {
        "name": "chat",
        "type": "llm",
        "model": "gpt-4o-mini",
        "provider": "openai",
        "ttft": 120.0,
        "usage": LLM_USAGE,
        "input": {"messages": [SYSTEM, QUESTION]},
        "output": {"choices": [{"index": 0, "message": CALL_MESSAGE, "finish_reason": "tool_use"}]},
        "metadata": {"gen_ai.operation.name": "chat"},
    }
    assert strip(second) == {
        "name": "chat",
        "type": "llm",
        "model": "gpt-4o-mini",
        "provider": "openai",
        "ttft": 80.0,
        "usage": LLM_USAGE,
        "input": {"messages": [SYSTEM, QUESTION, CALL_MESSAGE, RESULT_MESSAGE]},
        "output": {"choices": [{"index": 0, "message": {"role": "assistant", "content": ANSWER},
                                "finish_reason": "end_turn"}]},
        "metadata": {"gen_ai.operation.name": "chat"},
    }
    for llm, answer in ((first, None), (second, ANSWER)):
        assert opik_ui.problems(llm, "Weather in Paris?", answer) == []
        assert "events" not in llm["metadata"]["otel"]  # every event was read

    [tool] = _by_name(result.spans, "execute_tool get_weather")
    assert strip(tool) == {
        "name": "execute_tool get_weather",
        "type": "tool",
        "input": ARGS,
        "output": {"messages": [{"text": RESULT}]},
        "metadata": {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "get_weather",
                     "gen_ai.tool.call.id": "call_1", "gen_ai.tool.description": "Weather for a city.",
                     "gen_ai.tool.json_schema": SCHEMA, "gen_ai.tool.status": "success"},
    }
    assert "events" not in tool["metadata"]["otel"]

    cycle1, cycle2 = _by_name(result.spans, "execute_event_loop_cycle")
    if latest:  # its two input events joined: the question, then the tool results it got
        assert cycle1["input"] == {"messages": [QUESTION, RESULT_MESSAGE]}
        assert "output" not in cycle1
    else:  # gen_ai.choice: the assistant's turn and the tool results
        assert cycle1["input"] == {"messages": [QUESTION]}
        assert cycle1["output"] == {"messages": [CALL_MESSAGE, RESULT_MESSAGE]}
    assert cycle2["input"] == {"messages": [QUESTION, CALL_MESSAGE, RESULT_MESSAGE]}
    for cycle in (cycle1, cycle2):
        assert cycle["type"] == "general" and "provider" not in cycle and "events" not in cycle["metadata"]["otel"]

    [agent] = _by_name(result.spans, "invoke_agent weather")
    out = {"messages": [{"role": "assistant", "content": ANSWER + "\n"}]}
    if not latest:
        out["finish_reason"] = "end_turn"
    assert agent["input"] == {"messages": [SYSTEM, QUESTION]}
    assert agent["output"] == out
    assert agent["provider"] == "openai" and "usage" not in agent
    assert "events" not in agent["metadata"]["otel"]
    assert not any(k.startswith("gen_ai.event.") or k in ("gen_ai.system", "gen_ai.provider.name")
                   for s in result.spans for k in s["metadata"])
    trace = result.trace
    assert trace["thread_id"] == "s-1"
    assert opik_ui.table_text(trace["input"], "input") == "Weather in Paris?"
    assert opik_ui.table_text(trace["output"], "output") == ANSWER + "\n"


def test_default_mode_events() -> None:
    _check_run(latest=False)


def test_latest_conventions_operation_details_events() -> None:
    _check_run(latest=True)


def test_otel_message_format_keeps_what_strands_sent() -> None:
    records = [from_readable_span(s) for s in _strands_run(latest=False).finished()]
    mapper = Mapper(resolve_settings({"project_name": "p", "message_format": "otel"}, env={}))
    spans = {m.data["name"]: m.data for m in mapper.map(records).items if m.kind == "span"}
    assert spans["invoke_agent weather"]["output"] == {
        "messages": [{"role": "assistant", "content": ANSWER + "\n"}], "finish_reason": "end_turn"}
    chat = [m.data for m in mapper.map(records).items if m.kind == "span" and m.data["name"] == "chat"][0]
    assert chat["input"]["messages"][0] == {"content": _j([{"text": "You are terse."}]), "role": "system"}


def test_a_tool_error_keeps_its_result_event() -> None:
    """A failed tool has no gen_ai.tool.call.result: its output comes from the operation-details event."""
    rec = Recorder(scope=SCOPE)
    response = {"type": "tool_call_response", "id": "call_1", "response": [{"text": "Error: city unknown"}]}
    rec.span("execute_tool get_weather", {**_common(True, "execute_tool"), "gen_ai.tool.name": "get_weather",
                                          "gen_ai.tool.call.arguments": _j(ARGS), "gen_ai.tool.status": "error"}, 0, 10,
             events=[(DETAILS, 1, {"gen_ai.input.messages": _j([{"role": "tool", "parts": [TOOL_CALL_PART]}])}),
                     (DETAILS, 9, {"gen_ai.output.messages": _j([{"role": "tool", "parts": [response]}])})])
    [tool] = mapped(rec.finished()).spans
    assert tool["input"] == ARGS
    assert tool["output"] == {"messages": [{"role": "tool", "parts": [response]}]}
    assert "events" not in tool["metadata"]["otel"]


def test_image_block_in_both_modes() -> None:
    """Strands' JSON encoder writes the image's bytes as "<replaced>": the part stays, its data was never recorded."""
    rec = Recorder(scope=SCOPE)
    image = {"format": "png", "source": {"bytes": "<replaced>"}}
    rec.span("chat", {**_common(False, "chat"), "gen_ai.request.model": "gpt-4o-mini"}, 0, 10,
             events=[("gen_ai.user.message", 1, {"content": _j([{"text": "What is this?"}, {"image": image}])})])
    rec.span("chat", {**_common(True, "chat"), "gen_ai.request.model": "gpt-4o-mini"}, 20, 30,
             events=[(DETAILS, 21, {"gen_ai.input.messages": _j([{"role": "user", "parts": [
                 {"type": "text", "content": "What is this?"}, {"type": "image", "content": image}]}])})])
    want = {"messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,<replaced>"}}]}]}
    spans = mapped(rec.finished()).spans
    assert [s["input"] for s in spans] == [want, want]


def test_provider_from_the_model_id() -> None:
    assert provider_of("gpt-4o-mini") == "openai"
    assert provider_of("o3-mini") == "openai"
    assert provider_of("us.anthropic.claude-sonnet-4-20250514-v1:0") == "bedrock"
    assert provider_of("anthropic.claude-3-5-haiku-20241022-v1:0") == "bedrock"
    assert provider_of("amazon.nova-pro-v1:0") == "bedrock"
    assert provider_of("claude-sonnet-4-20250514") == "anthropic"
    assert provider_of("gemini-2.5-flash") == "google_ai"
    assert provider_of("openai/gpt-4o") == "openai"  # LiteLLMModel
    assert provider_of("mistral-large-latest") == "mistral"
    assert provider_of("llama3.1:8b") is None  # Ollama, llama.cpp...: not guessed
    assert provider_of("error-model") is None
    assert provider_of("my-deployment", "my-resource.openai.azure.com") == "azure"


def test_strands_agents_is_never_the_provider() -> None:
    rec = Recorder(scope="someone.else")
    rec.span("chat", {"gen_ai.operation.name": "chat", "gen_ai.system": "strands-agents",
                      "gen_ai.request.model": "llama3.1:8b"}, 0, 10)
    [span] = mapped(rec.finished()).spans
    assert span["type"] == "llm" and "provider" not in span and "gen_ai.system" not in span["metadata"]


# --- gen_ai.client.inference.operation.details on any GenAI span (conventions/genai.py)


def _openai_v2_chat(on_events: bool) -> Dict[str, Any]:
    """The same content as span attributes or on one operation-details event."""
    content = {
        "gen_ai.system_instructions": _j([{"type": "text", "content": "Be brief."}]),
        "gen_ai.input.messages": _j([{"role": "user", "parts": [{"type": "text", "content": "Hi"}]}]),
        "gen_ai.output.messages": _j([{"role": "assistant", "parts": [{"type": "text", "content": "Hello"}],
                                       "finish_reason": "stop"}]),
        "gen_ai.tool.definitions": _j([{"type": "function", "name": "get_weather"}]),
    }
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o"}
    rec = Recorder(scope="opentelemetry.instrumentation.openai_v2")
    if on_events:
        rec.span("chat gpt-4o", attrs, 0, 10, events=[(DETAILS, 9, content)])
    else:
        rec.span("chat gpt-4o", {**attrs, **content}, 0, 10)
    [span] = mapped(rec.finished()).spans
    return span


def test_operation_details_event_reads_like_the_span_attributes() -> None:
    on_attrs, on_event = _openai_v2_chat(False), _openai_v2_chat(True)
    assert strip(on_event) == strip(on_attrs) == {
        "name": "chat gpt-4o",
        "type": "llm",
        "model": "gpt-4o",
        "provider": "openai",
        "input": {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]},
        "output": {"choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello"},
                                "finish_reason": "stop"}]},
        "metadata": {"gen_ai.operation.name": "chat",
                     "gen_ai.tool.definitions": [{"type": "function", "name": "get_weather"}]},
    }
    assert "events" not in on_event["metadata"]["otel"]


def test_operation_details_several_events_join_their_messages() -> None:
    rec = Recorder()
    one = [{"role": "user", "parts": [{"type": "text", "content": "First"}]}]
    two = [{"role": "assistant", "parts": [{"type": "text", "content": "Reply"}]},
           {"role": "user", "parts": [{"type": "text", "content": "Second"}]}]
    rec.span("chat m", {"gen_ai.operation.name": "chat", "gen_ai.request.model": "m"}, 0, 10,
             events=[(DETAILS, 1, {"gen_ai.input.messages": _j(one)}), (DETAILS, 2, {"gen_ai.input.messages": two})])
    [span] = mapped(rec.finished()).spans
    assert span["input"] == {"messages": [{"role": "user", "content": "First"}, {"role": "assistant", "content": "Reply"},
                                          {"role": "user", "content": "Second"}]}
    assert "events" not in span["metadata"]["otel"]


def test_operation_details_event_that_disagrees_with_the_span_is_kept() -> None:
    """The span's own attribute wins; the event's other value is not lost: it stays in metadata.otel.events."""
    rec = Recorder()
    attr = _j([{"role": "user", "parts": [{"type": "text", "content": "From the attribute"}]}])
    event = _j([{"role": "user", "parts": [{"type": "text", "content": "From the event"}]}])
    rec.span("chat m", {"gen_ai.operation.name": "chat", "gen_ai.request.model": "m", "gen_ai.input.messages": attr},
             0, 10, events=[(DETAILS, 1, {"gen_ai.input.messages": event})])
    [span] = mapped(rec.finished()).spans
    assert span["input"] == {"messages": [{"role": "user", "content": "From the attribute"}]}
    [kept] = span["metadata"]["otel"]["events"]
    assert kept["name"] == DETAILS and kept["attributes"] == {"gen_ai.input.messages": event}


def test_operation_details_unknown_keys_go_to_metadata() -> None:
    rec = Recorder()
    rec.span("chat m", {"gen_ai.operation.name": "chat", "gen_ai.request.model": "m"}, 0, 10,
             events=[(DETAILS, 1, {"gen_ai.response.id": "r-1", "gen_ai.request.model": "m",
                                   "gen_ai.output.messages": _j([{"role": "assistant", "parts": [
                                       {"type": "text", "content": "Hi"}]}])})])
    [span] = mapped(rec.finished()).spans
    assert span["output"]["choices"][0]["message"] == {"role": "assistant", "content": "Hi"}
    assert span["metadata"]["gen_ai.response.id"] == "r-1"
    assert "events" not in span["metadata"]["otel"]


# --- the normalizer


def test_chat_messages_with_json_string_block_contents_are_read() -> None:
    """Role/content messages whose content is a JSON string of blocks are not OpenAI content yet (agent spans)."""
    rec = Recorder()
    msgs = [{"role": "user", "content": _j([{"text": "Hi"}, TOOL_RESULT])},
            {"role": "assistant", "content": [{"text": "Hello"}]}]
    rec.span("agent", {"input.value": _j({"messages": msgs})}, 0, 10)
    [span] = mapped(rec.finished()).spans
    assert span["input"] == {"messages": [RESULT_MESSAGE, {"role": "user", "content": "Hi"},
                                          {"role": "assistant", "content": "Hello"}]}


def test_chat_messages_already_in_openai_shape_stay() -> None:
    rec = Recorder()
    msgs = [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}, {"role": "assistant", "content": "Hello"}]
    rec.span("agent", {"input.value": _j({"messages": msgs})}, 0, 10)
    # text that only starts like a list of blocks is read again, and stays text
    rec.span("agent", {"input.value": _j({"messages": [{"role": "user", "content": "[sic] a quote"}]})}, 20, 30)
    first, second = mapped(rec.finished()).spans
    assert first["input"] == {"messages": msgs}
    assert second["input"] == {"messages": [{"role": "user", "content": "[sic] a quote"}]}


def test_typed_image_parts() -> None:
    rec = Recorder()
    parts = [{"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "AAAA"}},
             {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
             {"type": "image", "content": {"format": "gif", "source": {"bytes": "R0lG"}}},
             {"type": "image", "file_id": "f-1"}]
    rec.span("chat m", {"gen_ai.operation.name": "chat", "gen_ai.request.model": "m",
                        "gen_ai.input.messages": _j([{"role": "user", "parts": parts}])}, 0, 10)
    [span] = mapped(rec.finished()).spans
    assert span["input"]["messages"][0]["content"] == [
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,AAAA"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
        {"type": "image_url", "image_url": {"url": "data:image/gif;base64,R0lG"}},
        {"type": "text", "text": json.dumps({"type": "image", "file_id": "f-1"}, separators=(",", ":"))},
    ]
