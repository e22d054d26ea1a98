"""Google ADK -> Opik, from ``google/adk/telemetry/tracing.py``'s attribute sets (legacy and default schema)."""

from __future__ import annotations

import json

import opik_ui
from conftest_conventions import Recorder, mapped, strip

from opentelemetry.exporter.opik._mapping.messages._content import Parts

REQUEST = {"model": "gemini-2.0-flash", "config": {"system_instruction": "You report weather.", "tools": [{}]},
           "contents": [{"role": "user", "parts": [{"text": "Weather in Paris?"}]}]}
RESPONSE = {"content": {"role": "model", "parts": [{"function_call": {"id": "fc-1", "name": "get_weather",
                                                                       "args": {"city": "Paris"}}}]},
            "finish_reason": "STOP",
            "usage_metadata": {"prompt_token_count": 50, "candidates_token_count": 7, "total_token_count": 57}}
CALL = {"id": "fc-1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}


def _adk_run(capture: bool = True) -> Recorder:
    rec = Recorder(scope="gcp.vertex.agent")
    agent = rec.span("invoke_agent weather_agent", {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.description": "Reports the weather",
        "gen_ai.agent.name": "weather_agent",
        "gen_ai.conversation.id": "session-123",
    }, 0, 1000)
    call = rec.span("call_llm", {
        "gen_ai.system": "gcp.vertex.agent",
        "gen_ai.request.model": "gemini-2.0-flash",
        "gcp.vertex.agent.invocation_id": "e-1",
        "gcp.vertex.agent.session_id": "session-123",
        "gcp.vertex.agent.event_id": "ev-1",
        "gcp.vertex.agent.llm_request": json.dumps(REQUEST) if capture else "{}",
        "gen_ai.request.max_tokens": 1024,
        "gcp.vertex.agent.llm_response": json.dumps(RESPONSE) if capture else "{}",
        "gen_ai.usage.input_tokens": 50,
        "gen_ai.usage.output_tokens": 7,
        "gen_ai.response.finish_reasons": ("stop",),
    }, 10, 500, parent=agent)
    # ADK 2.x legacy schema: the model call again inside call_llm, stable semconv, no content
    rec.span("generate_content gemini-2.0-flash", {
        "gen_ai.system": "gemini",
        "gen_ai.operation.name": "generate_content",
        "gen_ai.request.model": "gemini-2.0-flash",
        "gen_ai.conversation.id": "session-123",
        "gcp.vertex.agent.event_id": "ev-1",
        "gen_ai.usage.input_tokens": 50,
        "gen_ai.usage.output_tokens": 7,
    }, 20, 490, parent=call)
    rec.span("execute_tool get_weather", {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.description": "Weather for a city",
        "gen_ai.tool.name": "get_weather",
        "gen_ai.tool.type": "FunctionTool",
        "gcp.vertex.agent.llm_request": "{}",
        "gcp.vertex.agent.llm_response": "{}",
        "gcp.vertex.agent.tool_call_args": '{"city": "Paris"}' if capture else "{}",
        "gen_ai.tool.call.id": "fc-1",
        "gcp.vertex.agent.event_id": "ev-2",
        "gcp.vertex.agent.tool_response": '{"result": "sunny"}' if capture else "{}",
    }, 510, 520, parent=agent)
    return rec


def test_adk_agent_full_mapping() -> None:
    result = mapped(_adk_run().finished())
    llm = result.span("call_llm")
    assert strip(llm) == {
        "name": "call_llm",
        "type": "llm",
        "model": "gemini-2.0-flash",
        "provider": "google_ai",
        "usage": {"prompt_tokens": 50, "completion_tokens": 7, "total_tokens": 57},
        # the system instruction is the first message; the rest of the request stays beside the messages
        "input": {"messages": [{"role": "system", "content": "You report weather."},
                               {"role": "user", "content": "Weather in Paris?"}],
                  "model": "gemini-2.0-flash", "config": {"tools": [{}]}},
        "output": {"choices": [{"index": 0, "message": {"role": "assistant", "content": None, "tool_calls": [CALL]},
                                "finish_reason": "stop"}],
                   "finish_reason": "stop", "usage_metadata": RESPONSE["usage_metadata"]},
        "metadata": {
            "gcp.vertex.agent.invocation_id": "e-1",
            "gcp.vertex.agent.session_id": "session-123",
            "gcp.vertex.agent.event_id": "ev-1",
            "gen_ai.request.max_tokens": 1024,
            "gen_ai.response.finish_reasons": ["stop"],
        },
    }
    assert opik_ui.problems(llm, "Weather in Paris?") == []
    inner = result.span("generate_content gemini-2.0-flash")
    assert inner["type"] == "llm" and "usage" not in inner  # counted once, on call_llm
    assert inner["metadata"]["gen_ai.usage.input_tokens"] == 50
    tool = result.span("execute_tool get_weather")
    assert strip(tool) == {
        "name": "execute_tool get_weather",
        "type": "tool",
        "input": {"city": "Paris"},
        "output": {"result": "sunny"},
        "metadata": {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.description": "Weather for a city",
            "gen_ai.tool.name": "get_weather",
            "gen_ai.tool.type": "FunctionTool",
            "gen_ai.tool.call.id": "fc-1",
            "gcp.vertex.agent.event_id": "ev-2",
        },
    }
    agent = result.span("invoke_agent weather_agent")
    assert strip(agent) == {
        "name": "invoke_agent weather_agent",
        "type": "general",
        "metadata": {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.description": "Reports the weather",
                     "gen_ai.agent.name": "weather_agent"},
    }
    trace = strip(result.trace)
    assert trace["thread_id"] == "session-123"
    assert opik_ui.table_text(trace["input"], "input") == "Weather in Paris?"


def test_adk_without_content_capture() -> None:
    """``ADK_CAPTURE_MESSAGE_CONTENT_IN_SPANS=false``: ``{}`` placeholders are empty, not content."""
    result = mapped(_adk_run(capture=False).finished())
    for s in result.spans:
        assert "input" not in s and "output" not in s
        assert not any(k in s["metadata"] for k in ("gcp.vertex.agent.llm_request", "gcp.vertex.agent.tool_response"))
    assert result.span("call_llm")["type"] == "llm"
    assert result.span("call_llm")["usage"]["prompt_tokens"] == 50


def test_system_instruction_forms_and_every_part_kept() -> None:
    """A ``Content`` system instruction, function calls/responses and inline data: nothing lost."""
    request = {
        "model": "gemini-2.0-flash",
        "config": {"system_instruction": {"role": "user", "parts": [{"text": "Be brief."}, {"text": "Be kind."}]},
                   "temperature": 0.2},
        "contents": [
            {"role": "user", "parts": [{"text": "Weather and a picture?"},
                                       {"inline_data": {"mime_type": "image/png", "data": "iVBORw0KGgo="}}]},
            {"role": "model", "parts": [{"function_call": {"id": "fc-1", "name": "get_weather",
                                                           "args": {"city": "Paris"}}}]},
            {"role": "user", "parts": [{"function_response": {"id": "fc-1", "name": "get_weather",
                                                              "response": {"result": "sunny"}}}]},
        ],
    }
    rec = Recorder(scope="gcp.vertex.agent")
    rec.span("call_llm", {"gen_ai.system": "gcp.vertex.agent", "gen_ai.request.model": "gemini-2.0-flash",
                          "gcp.vertex.agent.llm_request": json.dumps(request),
                          "gcp.vertex.agent.llm_response": json.dumps(
                              {"content": {"role": "model", "parts": [{"text": "Sunny."}]},
                               "model_version": "gemini-2.0-flash-001", "finish_reason": "MAX_TOKENS"})}, 0, 10)
    llm = mapped(rec.finished()).span("call_llm")
    assert llm["model"] == "gemini-2.0-flash-001"  # the model that answered
    assert llm["metadata"]["gen_ai.request.model"] == "gemini-2.0-flash"
    assert llm["input"]["messages"] == [
        {"role": "system", "content": "Be brief.\nBe kind."},
        {"role": "user", "content": [{"type": "text", "text": "Weather and a picture?"},
                                     {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]},
        {"role": "assistant", "content": None, "tool_calls": [CALL]},
        {"role": "tool", "tool_call_id": "fc-1", "content": '{"result":"sunny"}'},
    ]
    assert llm["input"]["config"] == {"temperature": 0.2}
    assert llm["output"]["choices"] == [{"index": 0, "message": {"role": "assistant", "content": "Sunny."},
                                         "finish_reason": "length"}]
    assert opik_ui.problems(llm, "Weather and a picture?", "Sunny.") == []


def _default_schema_llm(output_messages: list) -> dict:
    rec = Recorder(scope="gcp.vertex.agent")
    rec.span("generate_content openai/gpt-4o-mini", {
        "gen_ai.operation.name": "generate_content",
        "gen_ai.request.model": "openai/gpt-4o-mini",
        "gen_ai.provider.name": "openai",
        "gen_ai.conversation.id": "s-1",
        "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": "Stream it"}]}]),
        "gen_ai.system_instructions": json.dumps([{"type": "text", "content": "Be terse."}]),
        "gen_ai.output.messages": json.dumps(output_messages),
        "gen_ai.usage.input_tokens": 13,
        "gen_ai.usage.output_tokens": 9,
    }, 0, 10)
    result = mapped(rec.finished())
    assert result.trace["thread_id"] == "s-1"
    return result.span("generate_content openai/gpt-4o-mini")


def _msg(text: str, finish: str = "") -> dict:
    return {"role": "assistant", "parts": [{"type": "text", "content": text}], "finish_reason": finish}


def test_default_schema_streamed_partials_fold_into_the_answer() -> None:
    """SSE streaming: every partial response, then the whole answer; the partials only repeat it."""
    llm = _default_schema_llm([_msg("Paris"), _msg(" is"), _msg(" sunny."), _msg("Paris is sunny.", "stop")])
    assert llm["output"] == {"choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris is sunny."},
                                          "finish_reason": "stop"}]}
    assert llm["metadata"]["adk.partial_responses"] == 3
    assert llm["input"]["messages"] == [{"role": "system", "content": "Be terse."},
                                        {"role": "user", "content": "Stream it"}]
    assert llm["usage"] == {"prompt_tokens": 13, "completion_tokens": 9, "total_tokens": 22}
    assert opik_ui.problems(llm, "Stream it", "Paris is sunny.") == []


def test_default_schema_partials_that_differ_are_kept() -> None:
    llm = _default_schema_llm([_msg("Paris"), _msg("Lyon is sunny.", "stop")])
    assert [c["message"]["content"] for c in llm["output"]["choices"]] == ["Paris", "Lyon is sunny."]
    assert "adk.partial_responses" not in llm["metadata"]


def test_unencodable_image_keeps_its_place() -> None:
    """ADK's default schema writes image bytes it cannot JSON-encode as ``"<not serializable>"``: the image part
    stays where the image was (as Strands' ``"<replaced>"`` does), its data was never recorded."""
    p = Parts()
    p.add({"type": "text", "content": "What is this?"})
    p.add({"type": "blob", "mime_type": "image/png", "modality": "image", "content": "<not serializable>"})
    assert p.content == [{"type": "text", "text": "What is this?"},
                         {"type": "image_url", "image_url": {"url": "data:image/png;base64,<not serializable>"}}]
