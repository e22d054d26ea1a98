"""Vercel AI SDK -> Opik: legacy ``ai.*`` spans (v4 and v5 names) and the new ``@ai-sdk/otel`` GenAI spans.

Attribute sets from ``content/docs/03-ai-sdk-core/60-telemetry.mdx`` (ai@4.3, ai@5.0)
and ``packages/otel``. These spans come from Node apps through the OTLP sidecar,
where numbers may arrive as strings: a few are given as strings here.
"""

from __future__ import annotations

import json

import opik_ui
from conftest_conventions import Recorder, mapped, strip
from opentelemetry.trace import SpanKind

META = {
    "ai.telemetry.functionId": "chat-route",
    "ai.telemetry.metadata.sessionId": "sess-77",
    "ai.telemetry.metadata.userId": "user-3",
    "ai.telemetry.metadata.tags": ("web", "beta"),
}
MESSAGES = [{"role": "system", "content": "Be nice"}, {"role": "user", "content": [{"type": "text", "text": "Weather?"}]}]
# as Opik's UI renders them: a content list of text parts only is one string
RENDERED = [{"role": "system", "content": "Be nice"}, {"role": "user", "content": "Weather?"}]


def _v4_stream() -> Recorder:
    rec = Recorder(scope="ai")
    outer = rec.span("ai.streamText", {
        "operation.name": "ai.streamText chat-route",
        "ai.operationId": "ai.streamText",
        "resource.name": "chat-route",
        "ai.model.id": "gpt-4o",
        "ai.model.provider": "openai.chat",
        "ai.settings.maxRetries": 2,
        "ai.prompt": json.dumps({"system": "Be nice", "prompt": "Weather?"}),
        "ai.response.text": "Sunny.",
        "ai.response.finishReason": "stop",
        "ai.usage.promptTokens": 25,
        "ai.usage.completionTokens": 9,
        **META,
    }, 0, 1500)
    rec.span("ai.streamText.doStream", {
        "operation.name": "ai.streamText.doStream chat-route",
        "ai.operationId": "ai.streamText.doStream",
        "ai.model.id": "gpt-4o",
        "ai.model.provider": "openai.chat",
        "ai.prompt.format": "messages",
        "ai.prompt.messages": json.dumps(MESSAGES),
        "ai.prompt.tools": ('{"type":"function","name":"weather"}',),
        "ai.prompt.toolChoice": '{"type":"auto"}',
        "gen_ai.system": "openai.chat",
        "gen_ai.request.model": "gpt-4o",
        "ai.response.text": "",
        "ai.response.toolCalls": '[{"toolCallType":"function","toolCallId":"call_1","toolName":"weather","args":"{\\"city\\":\\"Paris\\"}"}]',
        "ai.response.finishReason": "tool-calls",
        "ai.response.id": "chatcmpl-1",
        "ai.response.model": "gpt-4o-2024-08-06",
        "ai.response.msToFirstChunk": "412.5",
        "ai.response.msToFinish": 700,
        "ai.usage.promptTokens": "15",
        "ai.usage.completionTokens": 5,
        "gen_ai.response.finish_reasons": ("tool-calls",),
        "gen_ai.response.id": "chatcmpl-1",
        "gen_ai.response.model": "gpt-4o-2024-08-06",
        "gen_ai.usage.input_tokens": 15,
        "gen_ai.usage.output_tokens": 5,
        **META,
    }, 10, 720, parent=outer, kind=SpanKind.CLIENT,
        events=[("ai.stream.firstChunk", 422.5, {"ai.response.msToFirstChunk": 412.5}),
                ("ai.stream.finish", 720, {})])
    rec.span("ai.toolCall", {
        "operation.name": "ai.toolCall chat-route",
        "ai.operationId": "ai.toolCall",
        "ai.toolCall.name": "weather",
        "ai.toolCall.id": "call_1",
        "ai.toolCall.args": '{"city":"Paris"}',
        "ai.toolCall.result": '{"temp":21}',
        **META,
    }, 730, 760, parent=outer)
    rec.span("ai.streamText.doStream", {
        "operation.name": "ai.streamText.doStream chat-route",
        "ai.operationId": "ai.streamText.doStream",
        "ai.model.id": "gpt-4o",
        "ai.model.provider": "openai.chat",
        "ai.prompt.messages": json.dumps(MESSAGES),
        "ai.response.text": "Sunny.",
        "ai.response.finishReason": "stop",
        "ai.usage.promptTokens": 10,
        "ai.usage.completionTokens": 4,
        **META,
    }, 770, 1490, parent=outer, kind=SpanKind.CLIENT,
        events=[("ai.stream.firstChunk", 1000, {"ai.response.msToFirstChunk": 230})])
    return rec


def test_v4_stream_text_full_mapping() -> None:
    result = mapped(_v4_stream().finished())
    outer = result.span("ai.streamText")
    assert strip(outer) == {
        "name": "ai.streamText",
        "type": "general",
        "tags": ["web", "beta"],
        "input": {"system": "Be nice", "prompt": "Weather?"},
        "output": {"value": "Sunny."},
        "metadata": {
            "sessionId": "sess-77",
            "userId": "user-3",
            "operation.name": "ai.streamText chat-route",
            "ai.operationId": "ai.streamText",
            "resource.name": "chat-route",
            "ai.model.id": "gpt-4o",
            "ai.model.provider": "openai.chat",
            "ai.settings.maxRetries": 2,
            "ai.response.finishReason": "stop",
            # the do* children's sum: kept for reference, never counted
            "ai.usage.promptTokens": 25,
            "ai.usage.completionTokens": 9,
            "ai.telemetry.functionId": "chat-route",
        },
    }
    first, second = sorted((s for s in result.spans if s["name"] == "ai.streamText.doStream"), key=lambda s: s["start_time"])
    assert strip(first) == {
        "name": "ai.streamText.doStream",
        "type": "llm",
        "model": "gpt-4o-2024-08-06",
        "provider": "openai",
        "usage": {"prompt_tokens": 15, "completion_tokens": 5, "total_tokens": 20},
        "ttft": 412.5,
        "tags": ["web", "beta"],
        "input": {"messages": RENDERED},
        # ai.response.toolCalls: the assistant's tool call, as OpenAI's tool_calls
        "output": {"choices": [{"index": 0, "message": {
            "role": "assistant", "content": None,
            "tool_calls": [{"id": "call_1", "type": "function",
                            "function": {"name": "weather", "arguments": '{"city":"Paris"}'}}]}}]},
        "metadata": {
            "sessionId": "sess-77",
            "userId": "user-3",
            "operation.name": "ai.streamText.doStream chat-route",
            "ai.operationId": "ai.streamText.doStream",
            "ai.model.id": "gpt-4o",  # the model asked for; `model` is the one that answered
            "ai.prompt.format": "messages",
            "ai.prompt.tools": ['{"type":"function","name":"weather"}'],
            "ai.prompt.toolChoice": {"type": "auto"},
            "gen_ai.request.model": "gpt-4o",
            "ai.response.finishReason": "tool-calls",
            "ai.response.id": "chatcmpl-1",
            "ai.response.msToFinish": 700,
            "gen_ai.response.finish_reasons": ["tool-calls"],
            "gen_ai.response.id": "chatcmpl-1",
            "ai.telemetry.functionId": "chat-route",
        },
    }
    assert opik_ui.problems(first, "Weather?") == []
    assert opik_ui.problems(second, "Weather?", "Sunny.") == []
    assert second["output"] == {"choices": [{"index": 0, "message": {"role": "assistant", "content": "Sunny."}}]}
    assert first["metadata"]["otel"]["events"] == [{"name": "ai.stream.finish", "time": first["end_time"]}]
    # no msToFirstChunk attribute: the firstChunk event's time
    assert second["ttft"] == 230.0 and second["usage"]["prompt_tokens"] == 10
    tool = result.span("ai.toolCall")
    assert (tool["type"], tool["input"], tool["output"]) == ("tool", {"city": "Paris"}, {"temp": 21})
    assert tool["metadata"]["ai.toolCall.name"] == "weather"

    # the outer span's {system, prompt} is not a conversation: the trace row reads the first
    # LLM call's question; its {"value": "Sunny."} reads as text and stays
    assert strip(result.trace) == {
        "name": "ai.streamText",
        "tags": ["web", "beta"],
        "input": {"messages": [{"role": "user", "content": "Weather?"}]},
        "output": outer["output"],
        "metadata": strip(outer)["metadata"],
        "thread_id": "sess-77",
        "ttft": 422.5,  # the first doStream's first chunk, from the trace start
    }
    assert opik_ui.table_text(result.trace["input"], "input") == "Weather?"
    assert opik_ui.table_text(result.trace["output"], "output") == "Sunny."
    assert result.usage_total() == {"prompt_tokens": 25, "completion_tokens": 9, "total_tokens": 34}


def test_v5_generate_text_usage_names() -> None:
    rec = Recorder(scope="ai")
    outer = rec.span("ai.generateText", {"ai.operationId": "ai.generateText", "ai.model.id": "claude-sonnet-4",
                                         "ai.model.provider": "anthropic.messages", "ai.usage.inputTokens": 1200,
                                         "ai.usage.outputTokens": 30, "ai.usage.totalTokens": 1230,
                                         "ai.settings.context.sessionId": "ctx-session"}, 0, 100)
    rec.span("ai.generateText.doGenerate", {
        "ai.operationId": "ai.generateText.doGenerate",
        "ai.model.id": "claude-sonnet-4",
        "ai.model.provider": "anthropic.messages",
        "ai.prompt.messages": '[{"role":"user","content":"hi"}]',
        "ai.response.text": "hello",
        "ai.usage.inputTokens": "1200",
        "ai.usage.outputTokens": "30",
        "ai.usage.totalTokens": "1230",
        "ai.usage.cachedInputTokens": "1000",
        "ai.usage.reasoningTokens": 0,
        "ai.settings.context.sessionId": "ctx-session",
    }, 5, 95, parent=outer)
    result = mapped(rec.finished())
    inner = result.span("ai.generateText.doGenerate")
    assert inner["provider"] == "anthropic" and inner["model"] == "claude-sonnet-4"
    assert inner["usage"] == {"prompt_tokens": 1200, "completion_tokens": 30, "total_tokens": 1230,
                              "cache_read_input_tokens": 1000, "original_usage.input_tokens": 200}
    assert inner["output"] == {"choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"}}]}
    assert "ttft" not in inner
    assert opik_ui.problems(inner, "hi", "hello") == []
    assert "usage" not in result.span("ai.generateText")
    assert result.trace["thread_id"] == "ctx-session"
    assert result.span("ai.generateText")["metadata"]["sessionId"] == "ctx-session"


def test_new_ai_sdk_otel_genai_spans() -> None:
    """``@ai-sdk/otel``: ``invoke_agent`` (summed usage) over ``chat`` and ``execute_tool`` spans."""
    rec = Recorder(scope="@ai-sdk/otel")
    agent = rec.span("invoke_agent gpt-4o", {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "chat-route",
                                             "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
                                             "gen_ai.usage.input_tokens": 40, "gen_ai.usage.output_tokens": 11,
                                             "gen_ai.input.messages": '[{"role":"user","parts":[{"type":"text","content":"hi"}]}]',
                                             "gen_ai.output.messages": '[{"role":"assistant","parts":[{"type":"text","content":"yo"}]}]'},
                     0, 900)
    rec.span("chat gpt-4o", {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                             "gen_ai.request.model": "gpt-4o", "gen_ai.response.model": "gpt-4o-2024-08-06",
                             "gen_ai.usage.input_tokens": 40, "gen_ai.usage.output_tokens": 11,
                             "gen_ai.client.operation.duration": 0.8,
                             "gen_ai.client.operation.time_to_first_chunk": 0.3,
                             "gen_ai.client.operation.time_per_output_chunk": 0.01}, 50, 850, parent=agent,
             kind=SpanKind.CLIENT)
    result = mapped(rec.finished())
    chat = result.span("chat gpt-4o")
    assert strip(chat) == {
        "name": "chat gpt-4o",
        "type": "llm",
        "model": "gpt-4o-2024-08-06",
        "provider": "openai",
        "usage": {"prompt_tokens": 40, "completion_tokens": 11, "total_tokens": 51},
        "ttft": 300.0,
        "metadata": {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
                     "gen_ai.client.operation.duration": 0.8, "gen_ai.client.operation.time_per_output_chunk": 0.01},
    }
    root = result.span("invoke_agent gpt-4o")
    assert root["type"] == "general" and "usage" not in root
    # GenAI parts on the agent span: a conversation in OpenAI chat form
    assert root["input"] == {"messages": [{"role": "user", "content": "hi"}]}
    assert root["output"] == {"messages": [{"role": "assistant", "content": "yo"}]}
    assert opik_ui.table_text(result.trace["input"], "input") == "hi"
    assert opik_ui.table_text(result.trace["output"], "output") == "yo"
    assert result.trace["ttft"] == 350.0
    assert result.usage_total() == {"prompt_tokens": 40, "completion_tokens": 11, "total_tokens": 51}


PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


def test_v5_prompt_messages_with_tool_round_trip_image_and_file() -> None:
    """The SDK's own message parts (``ai.prompt.messages``) read as an OpenAI conversation."""
    prompt = [
        {"role": "system", "content": "You forecast."},
        {"role": "user", "content": [{"type": "text", "text": "Weather where this photo was taken?"},
                                     {"type": "image", "image": PNG, "mediaType": "image/png"},
                                     {"type": "file", "data": "JVBERi0xLjQ=", "mediaType": "application/pdf",
                                      "filename": "trip.pdf"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Checking."},
                                          {"type": "tool-call", "toolCallId": "call-1", "toolName": "weather",
                                           "input": {"city": "Paris"}}]},
        {"role": "tool", "content": [{"type": "tool-result", "toolCallId": "call-1", "toolName": "weather",
                                      "output": {"type": "json", "value": {"temperatureC": 18}}}]},
    ]
    rec = Recorder(scope="ai")
    outer = rec.span("ai.generateText", {"ai.operationId": "ai.generateText", "ai.model.id": "gpt-4o",
                                         "ai.prompt": json.dumps({"messages": prompt}),
                                         "ai.response.text": "18°C in Paris."}, 0, 100)
    rec.span("ai.generateText.doGenerate", {
        "ai.operationId": "ai.generateText.doGenerate",
        "ai.model.id": "gpt-4o",
        "ai.model.provider": "openai.chat",
        "ai.prompt.messages": json.dumps(prompt),
        "ai.response.text": "18°C in Paris.",
        "ai.response.finishReason": "stop",
    }, 5, 95, parent=outer)
    result = mapped(rec.finished())
    inner = result.span("ai.generateText.doGenerate")
    assert inner["input"]["messages"] == [
        {"role": "system", "content": "You forecast."},
        {"role": "user", "content": [{"type": "text", "text": "Weather where this photo was taken?"},
                                     {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                                     {"type": "text", "text": "[file: trip.pdf (application/pdf)]"}]},
        {"role": "assistant", "content": "Checking.",
         "tool_calls": [{"id": "call-1", "type": "function",
                         "function": {"name": "weather", "arguments": '{"city":"Paris"}'}}]},
        {"role": "tool", "tool_call_id": "call-1", "content": '{"temperatureC":18}'},
    ]
    # the UI's table reads the user message's last text part
    assert opik_ui.problems(inner, "[file: trip.pdf (application/pdf)]", "18°C in Paris.") == []
    assert inner["metadata"]["ai.response.finishReason"] == "stop"
    # the outer span's messages are a conversation too; the trace row keeps its readable answer
    root = result.span("ai.generateText")
    assert root["input"]["messages"] == inner["input"]["messages"]
    assert opik_ui.table_text(result.trace["output"], "output") == "18°C in Paris."


def test_v4_tool_result_and_response_tool_calls_with_text() -> None:
    rec = Recorder(scope="ai")
    rec.span("ai.generateText.doGenerate", {
        "ai.operationId": "ai.generateText.doGenerate",
        "ai.model.id": "gpt-4o",
        "ai.prompt.messages": json.dumps([
            {"role": "user", "content": [{"type": "text", "text": "Add 2 and 3, then 4."}]},
            {"role": "assistant", "content": [{"type": "tool-call", "toolCallId": "a", "toolName": "add",
                                               "args": {"x": 2, "y": 3}}]},
            {"role": "tool", "content": [{"type": "tool-result", "toolCallId": "a", "toolName": "add", "result": 5}]},
        ]),
        "ai.response.text": "Now the second sum.",
        "ai.response.toolCalls": json.dumps([{"toolCallType": "function", "toolCallId": "b", "toolName": "add",
                                              "args": '{"x":5,"y":4}'}]),
    }, 0, 10)
    span = mapped(rec.finished()).span("ai.generateText.doGenerate")
    assert span["input"]["messages"][1:] == [
        {"role": "assistant", "content": None,
         "tool_calls": [{"id": "a", "type": "function", "function": {"name": "add", "arguments": '{"x":2,"y":3}'}}]},
        {"role": "tool", "tool_call_id": "a", "content": "5"},
    ]
    assert span["output"]["choices"] == [{"index": 0, "message": {
        "role": "assistant", "content": "Now the second sum.",
        "tool_calls": [{"id": "b", "type": "function", "function": {"name": "add", "arguments": '{"x":5,"y":4}'}}]}}]
    assert opik_ui.problems(span, "Add 2 and 3, then 4.", "Now the second sum.") == []
