"""LiteLLM's ``otel`` callback -> Opik, from ``litellm/integrations/opentelemetry.py``'s attribute sets."""

from __future__ import annotations

import json

import opik_ui
from conftest_conventions import Recorder, mapped

TOOL_CALL_OUTPUT = {
    "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [], "finish_reason": "tool_calls"}]),
    "gen_ai.completion.0.function_call.name": "get_weather",
    "gen_ai.completion.0.function_call.arguments": '{"city": "Paris"}',
    "gen_ai.completion.1.function_call.name": "get_time",
    "gen_ai.completion.1.function_call.arguments": '{"tz": "CET"}',
}


def _llm_span(extra: dict, name: str = "litellm_request") -> Recorder:
    rec = Recorder(scope="litellm")
    attrs = {
        "gen_ai.operation.name": "chat", "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o-mini",
        "litellm.call_id": "c-1", "llm.request.type": "completion", "llm.is_streaming": "False",
        "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": "Weather?"}]}]),
        "gen_ai.usage.input_tokens": 13, "gen_ai.usage.output_tokens": 9,
        "metadata.user_api_key_hash": "", "metadata.applied_guardrails": "[]", "metadata.team_id": "team-a",
        "metadata.usage_object": "{'completion_tokens': 9, 'prompt_tokens': 13, 'prompt_tokens_details': None}",
        "gen_ai.cost.total_cost": 7.35e-06, "gen_ai.cost.input_cost": 1.95e-06,
        **extra,
    }
    rec.span(name, attrs, 0, 100)
    return rec


def test_output_tool_calls_put_back_with_finish_reason() -> None:
    llm = mapped(_llm_span(TOOL_CALL_OUTPUT).finished()).span("litellm_request")
    (choice,) = llm["output"]["choices"]
    assert choice["finish_reason"] == "tool_calls"
    assert [(c["function"]["name"], c["function"]["arguments"]) for c in choice["message"]["tool_calls"]] == [
        ("get_weather", '{"city": "Paris"}'), ("get_time", '{"tz": "CET"}')]
    assert not any(k.startswith("gen_ai.completion.") for k in llm["metadata"])
    assert opik_ui.problems(llm, "Weather?") == []


def test_cost_and_metadata_placeholders() -> None:
    llm = mapped(_llm_span({}).finished()).span("litellm_request")
    assert llm["total_estimated_cost"] == 7.35e-06
    assert llm["usage"] == {"prompt_tokens": 13, "completion_tokens": 9, "total_tokens": 22}
    md = llm["metadata"]
    assert "metadata.user_api_key_hash" not in md and "metadata.applied_guardrails" not in md
    assert md["metadata.team_id"] == "team-a"
    assert md["metadata.usage_object"] == {"completion_tokens": 9, "prompt_tokens": 13, "prompt_tokens_details": None}
    assert md["gen_ai.cost.input_cost"] == 1.95e-06 and "gen_ai.cost.total_cost" not in md


def test_latest_semconv_span_and_text_answer() -> None:
    """``gen_ai_latest_experimental``: span ``chat <model>``, ``gen_ai.provider.name``; a text answer is untouched."""
    out = {"gen_ai.output.messages": json.dumps(
        [{"role": "assistant", "parts": [{"type": "text", "content": "Sunny."}], "finish_reason": "stop"}]),
        "gen_ai.provider.name": "openai"}
    llm = mapped(_llm_span(out, name="chat gpt-4o-mini").finished()).span("chat gpt-4o-mini")
    assert llm["type"] == "llm" and llm["provider"] == "openai"
    assert llm["output"]["choices"] == [{"index": 0, "message": {"role": "assistant", "content": "Sunny."},
                                         "finish_reason": "stop"}]
    assert opik_ui.problems(llm, "Weather?", "Sunny.") == []


def test_raw_request_span() -> None:
    """``raw_gen_ai_request``: the provider's request and response as Python reprs -> input and output."""
    rec = Recorder(scope="litellm")
    parent = rec.span("litellm_request", {"gen_ai.operation.name": "chat", "litellm.call_id": "c-1"}, 0, 100)
    rec.span("raw_gen_ai_request", {
        "llm.openai.messages": "[{'role': 'user', 'content': 'Weather?'}]",
        "llm.openai.tools": "[{'type': 'function', 'function': {'name': 'get_weather', 'parameters': None}}]",
        "llm.openai.extra_body": "{}",
        "llm.openai.id": "chatcmpl-1",
        "llm.openai.choices": "[{'finish_reason': 'tool_calls', 'index': 0, 'message': {'content': None, "
                              "'role': 'assistant', 'tool_calls': [{'id': 'call_1', 'type': 'function', "
                              "'function': {'name': 'get_weather', 'arguments': '{\"city\": \"Paris\"}'}}]}}]",
        "llm.openai.model": "gpt-4o-mini-2024-07-18",
        "llm.openai.usage": "{'completion_tokens': 9, 'prompt_tokens': 13, 'total_tokens': 22}",
        "llm.openai.odd": "Message(content='x')",  # a repr that is not a literal: kept as it came
    }, 10, 90, parent=parent)
    raw = mapped(rec.finished()).span("raw_gen_ai_request")
    assert raw["type"] == "general" and "usage" not in raw
    assert raw["input"] == {"messages": [{"role": "user", "content": "Weather?"}],
                            "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": None}}],
                            "odd": "Message(content='x')"}
    assert raw["output"]["id"] == "chatcmpl-1" and raw["output"]["model"] == "gpt-4o-mini-2024-07-18"
    assert raw["output"]["choices"][0]["message"]["tool_calls"][0]["id"] == "call_1"
    assert raw["output"]["usage"] == {"completion_tokens": 9, "prompt_tokens": 13, "total_tokens": 22}
    assert raw["metadata"]["litellm.provider"] == "openai"
    assert not any(k.startswith("llm.openai.") for k in raw["metadata"])
    assert opik_ui.input_detected(raw["input"]) and opik_ui.output_detected(raw["output"])


def test_other_spans_untouched() -> None:
    rec = Recorder(scope="other")
    rec.span("GET /", {"http.method": "GET", "metadata.x": ""}, 0, 10)
    span = mapped(rec.finished()).span("GET /")
    assert span["type"] == "general" and "metadata.x" not in span["metadata"]  # empty strings add nothing
