"""Google ADK -> Opik, from ``google/adk/telemetry/tracing.py``'s attribute sets."""

from __future__ import annotations

import json

from conftest_conventions import Recorder, mapped, strip

REQUEST = {"model": "gemini-2.0-flash", "config": {"system_instruction": "You report weather.", "tools": [{}]},
           "contents": [{"role": "user", "parts": [{"text": "Weather in Paris?"}]}]}
RESPONSE = {"content": {"role": "model", "parts": [{"function_call": {"id": "fc-1", "name": "get_weather",
                                                                       "args": {"city": "Paris"}}}]},
            "usage_metadata": {"prompt_token_count": 50, "candidates_token_count": 7, "total_token_count": 57}}


def _adk_run(capture: bool = True) -> Recorder:
    rec = Recorder(scope="gcp.vertex.agent")
    agent = rec.span("invoke_agent weather_agent", {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.description": "Reports the weather",
        "gen_ai.agent.name": "weather_agent",
        "gen_ai.conversation.id": "session-123",
    }, 0, 1000)
    rec.span("call_llm", {
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
        "input": REQUEST,
        "output": RESPONSE,
        "metadata": {
            "gcp.vertex.agent.invocation_id": "e-1",
            "gcp.vertex.agent.session_id": "session-123",
            "gcp.vertex.agent.event_id": "ev-1",
            "gen_ai.request.max_tokens": 1024,
            "gen_ai.response.finish_reasons": ["stop"],
        },
    }
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
    assert strip(result.trace) == {"name": "invoke_agent weather_agent", "metadata": strip(agent)["metadata"],
                                   "thread_id": "session-123"}


def test_adk_without_content_capture() -> None:
    """``ADK_CAPTURE_MESSAGE_CONTENT_IN_SPANS=false``: ``{}`` placeholders are empty, not content."""
    result = mapped(_adk_run(capture=False).finished())
    for s in result.spans:
        assert "input" not in s and "output" not in s
        assert not any(k in s["metadata"] for k in ("gcp.vertex.agent.llm_request", "gcp.vertex.agent.tool_response"))
    assert result.span("call_llm")["type"] == "llm"
    assert result.span("call_llm")["usage"]["prompt_tokens"] == 50
