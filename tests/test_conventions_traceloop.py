"""Traceloop OpenLLMetry -> Opik: the old flattened format and the traceloop-sdk decorators.

Attribute sets as ``opentelemetry-instrumentation-openai`` 0.44 with
``opentelemetry-semantic-conventions-ai`` 0.4.9 wrote them, and as
``traceloop-sdk``'s ``@workflow``/``@task``/``@tool`` decorators and
``Traceloop.set_association_properties`` write them (the new JSON format is
covered with the real instrumentation in ``test_instrumentations.py``). LLM
spans are checked with ``opik_ui`` the way Opik's UI reads them.
"""

from __future__ import annotations

import json

import opik_ui
from conftest_conventions import Recorder, mapped, strip
from opentelemetry.trace import SpanKind

OLD_CHAT = {
    "llm.request.type": "chat",
    "gen_ai.system": "OpenAI",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.request.temperature": 0.3,
    "llm.headers": "None",
    "llm.is_streaming": True,
    "gen_ai.openai.api_base": "https://api.openai.com/v1/",
    "gen_ai.prompt.0.role": "system",
    "gen_ai.prompt.0.content": "You are terse.",
    "gen_ai.prompt.1.role": "user",
    "gen_ai.prompt.1.content": json.dumps([{"type": "text", "text": "What is this?"},
                                           {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]),
    "gen_ai.prompt.2.role": "assistant",
    "gen_ai.prompt.2.tool_calls.0.id": "call_1",
    "gen_ai.prompt.2.tool_calls.0.name": "look",
    "gen_ai.prompt.2.tool_calls.0.arguments": '{"zoom": 2}',
    "gen_ai.prompt.3.role": "tool",
    "gen_ai.prompt.3.tool_call_id": "call_1",
    "gen_ai.prompt.3.content": "a cat",
    "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
    "gen_ai.response.id": "chatcmpl-9",
    "gen_ai.completion.0.finish_reason": "stop",
    "gen_ai.completion.0.role": "assistant",
    "gen_ai.completion.0.content": "A cat.",
    "gen_ai.usage.prompt_tokens": 80,
    "gen_ai.usage.completion_tokens": 3,
    "llm.usage.total_tokens": 83,
    "gen_ai.usage.cache_read_input_tokens": 64,
}
CHUNKS = "llm.content.completion.chunk"


def test_old_flattened_chat_full_mapping() -> None:
    rec = Recorder(scope="opentelemetry.instrumentation.openai.v1")
    rec.span("openai.chat", OLD_CHAT, 0, 600, kind=SpanKind.CLIENT,
             events=[(CHUNKS, 350.25, {}), (CHUNKS, 400, {}), (CHUNKS, 450, {})])
    result = mapped(rec.finished())
    span = result.span("openai.chat")
    assert strip(span) == {
        "name": "openai.chat",
        "type": "llm",
        "model": "gpt-4o-mini-2024-07-18",
        "provider": "openai",
        "usage": {"prompt_tokens": 80, "completion_tokens": 3, "total_tokens": 83, "cache_read_input_tokens": 64},
        "ttft": 350.25,
        "input": {"messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": [{"type": "text", "text": "What is this?"},
                                         {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "look", "arguments": '{"zoom": 2}'}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "a cat"},
        ]},
        "output": {"choices": [{"index": 0, "message": {"role": "assistant", "content": "A cat."}, "finish_reason": "stop"}]},
        "metadata": {
            "llm.request.type": "chat",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.request.temperature": 0.3,
            "llm.headers": "None",
            "llm.is_streaming": True,
            "gen_ai.openai.api_base": "https://api.openai.com/v1/",
            "gen_ai.response.id": "chatcmpl-9",
        },
    }
    assert "events" not in span["metadata"]["otel"]  # chunk events are consumed, never listed
    assert strip(result.trace) == {"name": "openai.chat", "input": span["input"], "output": span["output"],
                                   "metadata": strip(span)["metadata"], "ttft": 350.25}
    assert opik_ui.problems(span, "What is this?", "A cat.") == []
    assert opik_ui.problems(result.trace, "What is this?", "A cat.") == []


def test_old_format_tool_call_answers() -> None:
    """A completion that only calls tools (``tool_calls.K.*``) or a legacy ``function_call``."""
    base = {"llm.request.type": "chat", "gen_ai.system": "OpenAI", "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": "Weather in Paris?",
            "gen_ai.completion.0.role": "assistant"}
    rec = Recorder()
    rec.span("tools", {**base, "gen_ai.completion.0.finish_reason": "tool_calls",
                       "gen_ai.completion.0.tool_calls.0.id": "call_1",
                       "gen_ai.completion.0.tool_calls.0.name": "get_weather",
                       "gen_ai.completion.0.tool_calls.0.arguments": '{"city": "Paris"}'}, 0, 1)
    rec.span("function", {**base, "gen_ai.completion.0.finish_reason": "function_call",
                          "gen_ai.completion.0.function_call.name": "get_weather",
                          "gen_ai.completion.0.function_call.arguments": '{"city": "Paris"}'}, 2, 3)
    result = mapped(rec.finished())
    for name, call_id, finish in (("tools", "call_1", "tool_calls"), ("function", "call_0", "function_call")):
        span = result.span(name)
        assert span["output"] == {"choices": [{"index": 0, "finish_reason": finish, "message": {
            "role": "assistant", "content": None, "tool_calls": [
                {"id": call_id, "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]}}]}
        assert opik_ui.problems(span, "Weather in Paris?") == []
        assert "gen_ai.completion.0.finish_reason" not in span["metadata"]


def test_old_format_anthropic_blocks_and_several_completions() -> None:
    rec = Recorder()
    rec.span("anthropic.chat", {
        "llm.request.type": "chat", "gen_ai.system": "Anthropic", "gen_ai.request.model": "claude-sonnet-4",
        "gen_ai.prompt.0.role": "system", "gen_ai.prompt.0.content": "Be nice",
        "gen_ai.prompt.1.role": "user", "gen_ai.prompt.1.content": json.dumps([{"type": "text", "text": "Weather?"}]),
        "gen_ai.completion.0.role": "assistant", "gen_ai.completion.0.finish_reason": "tool_use",
        "gen_ai.completion.0.content": json.dumps([{"type": "text", "text": "Let me check."},
                                                   {"type": "tool_use", "id": "t1", "name": "w", "input": {"c": "P"}}]),
    }, 0, 1)
    span = mapped(rec.finished()).span("anthropic.chat")
    assert span["input"] == {"messages": [{"role": "system", "content": "Be nice"}, {"role": "user", "content": "Weather?"}]}
    assert span["output"] == {"choices": [{"index": 0, "finish_reason": "tool_use", "message": {
        "role": "assistant", "content": "Let me check.",
        "tool_calls": [{"id": "t1", "type": "function", "function": {"name": "w", "arguments": '{"c":"P"}'}}]}}]}
    assert span["provider"] == "anthropic"
    assert opik_ui.problems(span, "Weather?", "Let me check.") == []


def test_chunk_events_after_a_drop_give_no_ttft() -> None:
    rec = Recorder(max_events=3)
    rec.span("openai.chat", OLD_CHAT, 0, 600, events=[(CHUNKS, 100 + i, {}) for i in range(6)])
    span = mapped(rec.finished()).span("openai.chat")
    assert span["metadata"]["otel"]["dropped"]["events"] == 3
    assert "ttft" not in span  # the first chunk left is not the first chunk


def test_legacy_completions_api_prompt() -> None:
    rec = Recorder()
    rec.span("openai.completion", {"llm.request.type": "completion", "gen_ai.system": "openai",
                                   "gen_ai.request.model": "gpt-3.5-turbo-instruct",
                                   "gen_ai.prompt.0.user": "Say hi", "gen_ai.completion.0.content": "hi"}, 0, 1)
    span = mapped(rec.finished()).span("openai.completion")
    assert span["input"] == {"messages": [{"role": "user", "content": "Say hi"}]}
    # a completion item has no role: it is the assistant's answer
    assert span["output"] == {"choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}}]}
    assert opik_ui.problems(span, "Say hi", "hi") == []


def test_old_format_embedding_input() -> None:
    rec = Recorder()
    rec.span("openai.embeddings", {"llm.request.type": "embedding", "gen_ai.system": "openai",
                                   "gen_ai.request.model": "text-embedding-3-small",
                                   "gen_ai.prompt.0.content": "embed me"}, 0, 1)
    span = mapped(rec.finished()).span("openai.embeddings")
    assert span["type"] == "llm"
    assert span["input"] == {"messages": [{"role": "user", "content": "embed me"}]}
    assert opik_ui.problems(span, "embed me") == []


def test_workflow_task_tool_and_association_properties() -> None:
    rec = Recorder(scope="traceloop.tracer")
    assoc = {"traceloop.association.properties.user_id": "u-1", "traceloop.association.properties.chat_id": "chat-5",
             "traceloop.association.properties.tier": "gold"}
    wf = rec.span("joke_generator.workflow", {
        "traceloop.span.kind": "workflow",
        "traceloop.workflow.name": "joke_generator",
        "traceloop.entity.name": "joke_generator",
        "traceloop.entity.path": "",
        "traceloop.entity.input": json.dumps({"args": ["cats"], "kwargs": {"style": "dry"}}),
        "traceloop.entity.output": json.dumps("Why did the cat sit on the computer?"),
        **assoc,
    }, 0, 1000)
    # OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT cut this one mid-JSON
    task = rec.span("create_joke.task", {
        "traceloop.span.kind": "task",
        "traceloop.workflow.name": "joke_generator",
        "traceloop.entity.name": "create_joke",
        "traceloop.entity.path": "joke_generator",
        "traceloop.entity.input": '{"args": [], "kwargs": {"topic": "cats and a very long descrip',
        "traceloop.entity.output": '{"joke": "Why"}',
        "gen_ai.usage.input_tokens": 80,  # a task's usage would only repeat its LLM child's
        **assoc,
    }, 10, 900, parent=wf)
    rec.span("openai.chat", {**OLD_CHAT, "traceloop.workflow.name": "joke_generator",
                             "traceloop.entity.path": "joke_generator.create_joke", **assoc}, 20, 800, parent=task,
             kind=SpanKind.CLIENT)
    rec.span("get_time.tool", {"traceloop.span.kind": "tool", "traceloop.entity.name": "get_time",
                               "gen_ai.tool.name": "get_time",
                               "traceloop.entity.input": '{"args": [], "kwargs": {}}',
                               "traceloop.entity.output": '"12:00"', **assoc}, 850, 860, parent=task)
    result = mapped(rec.finished())
    workflow = result.span("joke_generator.workflow")
    assert strip(workflow) == {
        "name": "joke_generator.workflow",
        "type": "general",
        "input": {"args": ["cats"], "kwargs": {"style": "dry"}},
        "output": {"value": "Why did the cat sit on the computer?"},
        "metadata": {
            "user_id": "u-1",
            "chat_id": "chat-5",
            "tier": "gold",
            "traceloop.span.kind": "workflow",
            "traceloop.workflow.name": "joke_generator",
            "traceloop.entity.name": "joke_generator",
            # traceloop.entity.path "" adds nothing: empty strings never reach metadata
        },
    }
    # the workflow's arguments do not read as text: the trace row shows the LLM call's question;
    # its output is one string, which reads as it is
    assert strip(result.trace) == {
        "name": "joke_generator.workflow",
        "input": {"messages": [{"role": "user", "content": "What is this?"}]},
        "output": workflow["output"],
        "metadata": strip(workflow)["metadata"],
        "thread_id": "chat-5",
    }
    assert opik_ui.table_text(result.trace["input"], "input") == "What is this?"
    assert opik_ui.table_text(result.trace["output"], "output") == "Why did the cat sit on the computer?"
    llm = result.span("openai.chat")
    assert opik_ui.problems(llm, "What is this?", "A cat.") == []
    t = result.span("create_joke.task")
    assert t["input"] == {"value": '{"args": [], "kwargs": {"topic": "cats and a very long descrip'}
    assert t["metadata"]["truncated"] is True
    assert t["output"] == {"joke": "Why"}
    assert "usage" not in t and t["metadata"]["gen_ai.usage.input_tokens"] == 80
    tool = result.span("get_time.tool")
    assert (tool["type"], tool["output"]) == ("tool", {"value": "12:00"})
    assert "truncated" not in tool["metadata"]
    assert result.usage_total() == {"prompt_tokens": 80, "completion_tokens": 3, "total_tokens": 83,
                                    "cache_read_input_tokens": 64}
    assert not any(k.startswith("traceloop.association.") for s in result.spans for k in s["metadata"])
