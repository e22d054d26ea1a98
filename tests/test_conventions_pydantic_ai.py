"""Pydantic AI (instrumentation version 5, pydantic-ai 2.x) and Logfire keys -> Opik.

The attribute sets are those ``pydantic_ai`` writes (``_instrumentation.py``,
``agent/__init__.py``, ``models/instrumented.py``): an agent run over two model
requests and one tool call, with aggregated usage on the run span.
"""

from __future__ import annotations

import json

import opik_ui
from conftest_conventions import Recorder, iso, mapped, ns, strip
from opentelemetry.trace import SpanKind

SYSTEM = json.dumps([{"type": "text", "content": "Be brief."}])
USER = {"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]}
CALL = {"role": "assistant", "parts": [{"type": "tool_call", "id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}],
        "finish_reason": "tool_call"}
RESULT = {"role": "user", "parts": [{"type": "tool_call_response", "id": "call_1", "name": "get_weather", "result": "sunny"}]}
ANSWER = {"role": "assistant", "parts": [{"type": "text", "content": "Sunny in Paris."}], "finish_reason": "stop"}
SCHEMA = '{"type": "object", "properties": {"model_request_parameters": {"type": "object"}}}'

# the same messages as Opik's UI renders them (OpenAI chat shapes, after the message normalizer)
CHAT_SYSTEM = {"role": "system", "content": "Be brief."}
CHAT_USER = {"role": "user", "content": "Weather in Paris?"}
CHAT_CALL = {"role": "assistant", "content": None, "tool_calls": [
    {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]}
CHAT_RESULT = {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}
CHAT_ANSWER = {"role": "assistant", "content": "Sunny in Paris."}


def _chat(rec: Recorder, parent: object, start: float, inp: list, outp: list, tokens: tuple, cost: float, **extra: object) -> None:
    attrs = {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": "openai",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "server.address": "api.openai.com",
        "server.port": 443,
        "model_request_parameters": '{"function_tools": [{"name": "get_weather"}], "allow_text_output": true}',
        "gen_ai.tool.definitions": '[{"type": "function", "name": "get_weather"}]',
        "gen_ai.input.messages": json.dumps(inp),
        "gen_ai.output.messages": json.dumps(outp),
        "gen_ai.system_instructions": SYSTEM,
        "logfire.json_schema": SCHEMA,
        "logfire.msg": "chat gpt-4o",
        "gen_ai.usage.input_tokens": tokens[0],
        "gen_ai.usage.output_tokens": tokens[1],
        "gen_ai.response.model": "gpt-4o-2024-08-06",
        "gen_ai.response.id": f"chatcmpl-{start:.0f}",
        "gen_ai.response.finish_reasons": (outp[0]["finish_reason"],),
        "operation.cost": cost,
    }
    attrs.update(extra)
    rec.span("chat gpt-4o", attrs, start, start + 300, parent=parent, kind=SpanKind.CLIENT, scope="pydantic-ai")


def _agent_run() -> Recorder:
    rec = Recorder()
    tracer_scope = "pydantic-ai"
    # the run span gets its end attributes only when the run finishes, as in pydantic-ai
    agent = rec.provider.get_tracer(tracer_scope, "2.68.0").start_span(
        "invoke_agent weather_agent",
        attributes={
            "model_name": "gpt-4o",
            "agent_name": "weather_agent",
            "gen_ai.agent.name": "weather_agent",
            "gen_ai.agent.call.id": "run-7",
            "gen_ai.conversation.id": "conv-42",
            "gen_ai.operation.name": "invoke_agent",
            "logfire.msg": "weather_agent run",
        },
        start_time=ns(0),
    )
    _chat(rec, agent, 10, [USER], [CALL], (60, 12), 0.00027)
    rec.span(
        "execute_tool get_weather",
        {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": "get_weather",
            "gen_ai.tool.call.id": "call_1",
            "gen_ai.tool.call.arguments": '{"city":"Paris"}',
            "gen_ai.tool.call.result": "sunny",
            "logfire.msg": "running tool: get_weather",
            "logfire.json_schema": SCHEMA,
        },
        320,
        330,
        parent=agent,
        scope=tracer_scope,
    )
    _chat(rec, agent, 340, [USER, CALL, RESULT], [ANSWER], (90, 18), 0.00041,
          **{"gen_ai.client.operation.time_to_first_chunk": 0.125, "logfire.tags": ("prod", "weather")})
    agent.set_attributes(
        {
            "gen_ai.aggregated_usage.input_tokens": 150,
            "gen_ai.aggregated_usage.output_tokens": 30,
            "pydantic_ai.all_messages": json.dumps([USER, CALL, RESULT, ANSWER]),
            "gen_ai.system_instructions": SYSTEM,
            "final_result": "Sunny in Paris.",
            "metadata": '{"tenant": "acme"}',
            "logfire.json_schema": SCHEMA,
        }
    )
    agent.end(end_time=ns(700))
    return rec


def test_agent_run_full_mapping() -> None:
    result = mapped(_agent_run().finished())
    agent = result.span("invoke_agent weather_agent")
    assert strip(agent) == {
        "name": "invoke_agent weather_agent",
        "type": "general",
        "input": {"messages": [CHAT_USER, CHAT_CALL, CHAT_RESULT, CHAT_ANSWER]},
        # a text final_result is the assistant's answer
        "output": {"choices": [{"index": 0, "message": CHAT_ANSWER}]},
        "metadata": {
            "tenant": "acme",
            "model_name": "gpt-4o",
            "agent_name": "weather_agent",
            "gen_ai.agent.name": "weather_agent",
            "gen_ai.agent.call.id": "run-7",
            "gen_ai.operation.name": "invoke_agent",
            "logfire.msg": "weather_agent run",
            "gen_ai.aggregated_usage.input_tokens": 150,
            "gen_ai.aggregated_usage.output_tokens": 30,
            "gen_ai.system_instructions": [{"type": "text", "content": "Be brief."}],
        },
    }
    assert "usage" not in agent and "total_estimated_cost" not in agent

    first, second = sorted((s for s in result.spans if s["name"] == "chat gpt-4o"), key=lambda s: s["start_time"])
    common_md = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o",
        "server.address": "api.openai.com",
        "server.port": 443,
        "model_request_parameters": {"function_tools": [{"name": "get_weather"}], "allow_text_output": True},
        "gen_ai.tool.definitions": [{"type": "function", "name": "get_weather"}],
        "logfire.msg": "chat gpt-4o",
    }
    assert strip(first) == {
        "name": "chat gpt-4o",
        "type": "llm",
        "model": "gpt-4o-2024-08-06",
        "provider": "openai",
        "usage": {"prompt_tokens": 60, "completion_tokens": 12, "total_tokens": 72},
        "total_estimated_cost": 0.00027,
        "input": {"messages": [CHAT_SYSTEM, CHAT_USER]},
        "output": {"choices": [{"index": 0, "message": CHAT_CALL, "finish_reason": "tool_call"}]},
        "metadata": {**common_md, "gen_ai.response.id": "chatcmpl-10", "gen_ai.response.finish_reasons": ["tool_call"]},
    }
    assert strip(second) == {
        "name": "chat gpt-4o",
        "type": "llm",
        "model": "gpt-4o-2024-08-06",
        "provider": "openai",
        "usage": {"prompt_tokens": 90, "completion_tokens": 18, "total_tokens": 108},
        "total_estimated_cost": 0.00041,
        "ttft": 125.0,
        "tags": ["prod", "weather"],
        "input": {"messages": [CHAT_SYSTEM, CHAT_USER, CHAT_CALL, CHAT_RESULT]},
        "output": {"choices": [{"index": 0, "message": CHAT_ANSWER, "finish_reason": "stop"}]},
        "metadata": {**common_md, "gen_ai.response.id": "chatcmpl-340", "gen_ai.response.finish_reasons": ["stop"]},
    }
    # as Opik's UI shows them: conversations, with the question and answer in the tables
    assert opik_ui.problems(first, "Weather in Paris?") == [] and opik_ui.messages_tab(first)
    assert opik_ui.problems(second, "Weather in Paris?", "Sunny in Paris.") == [] and opik_ui.messages_tab(second)
    assert opik_ui.messages_tab(agent) and opik_ui.empty_messages(agent) == []
    assert opik_ui.table_text(agent["input"], "input") == "Weather in Paris?"
    assert opik_ui.table_text(agent["output"], "output") == "Sunny in Paris."

    tool = result.span("execute_tool get_weather")
    assert strip(tool) == {
        "name": "execute_tool get_weather",
        "type": "tool",
        "input": {"city": "Paris"},
        "output": {"value": "sunny"},
        "metadata": {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": "get_weather",
            "gen_ai.tool.call.id": "call_1",
            "logfire.msg": "running tool: get_weather",
        },
    }

    trace = result.trace
    assert strip(trace) == {
        "name": "invoke_agent weather_agent",
        "input": agent["input"],
        "output": agent["output"],
        "metadata": strip(agent)["metadata"],
        "thread_id": "conv-42",
        # the second model call's first chunk, from the trace start
        "ttft": 340 + 125.0,
    }
    assert trace["start_time"] == iso(0) and trace["end_time"] == iso(700)


def test_no_double_counting_of_aggregated_usage() -> None:
    result = mapped(_agent_run().finished())
    # Opik sums span usage (and cost) per trace: it must equal the two model calls
    assert result.usage_total() == {"prompt_tokens": 150, "completion_tokens": 30, "total_tokens": 180}
    costs = [s["total_estimated_cost"] for s in result.spans if "total_estimated_cost" in s]
    assert sorted(costs) == [0.00027, 0.00041]


def test_aggregated_names_switched_off_still_not_counted_twice() -> None:
    """``use_aggregated_usage_attribute_names=False``: the run span carries plain ``gen_ai.usage.*``."""
    rec = Recorder()
    agent = rec.span(
        "invoke_agent a",
        {"gen_ai.operation.name": "invoke_agent", "agent_name": "a", "gen_ai.usage.input_tokens": 5,
         "gen_ai.usage.output_tokens": 2, "final_result": '{"answer": 42}'},
        0,
        10,
    )
    rec.span("chat m", {"gen_ai.operation.name": "chat", "gen_ai.request.model": "m", "gen_ai.usage.input_tokens": 5,
                        "gen_ai.usage.output_tokens": 2}, 1, 9, parent=agent)
    result = mapped(rec.finished())
    run = result.span("invoke_agent a")
    assert "usage" not in run and run["metadata"]["gen_ai.usage.input_tokens"] == 5
    assert run["output"] == {"answer": 42}
    assert result.usage_total() == {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}


def test_version_2_tool_span_and_version_1_events() -> None:
    rec = Recorder()
    rec.span("running tool", {"gen_ai.tool.name": "lookup", "tool_arguments": '{"q": "x"}', "tool_response": '["a", "b"]',
                              "logfire.msg": "running tool: lookup"}, 0, 5)
    events = [
        {"event.name": "gen_ai.system.message", "content": "Be brief.", "role": "system", "gen_ai.system": "openai"},
        {"event.name": "gen_ai.user.message", "content": "hi", "role": "user", "gen_ai.system": "openai"},
        {"event.name": "gen_ai.choice", "index": 0, "message": {"role": "assistant", "content": "hello"}, "gen_ai.system": "openai"},
    ]
    rec.span("chat gpt-4o", {"gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o", "events": json.dumps(events),
                             "gen_ai.usage.input_tokens": 3, "gen_ai.usage.output_tokens": 1}, 10, 20)
    result = mapped(rec.finished())
    tool = result.span("running tool")
    assert (tool["type"], tool["input"], tool["output"]) == ("tool", {"q": "x"}, {"messages": ["a", "b"]})
    chat = result.span("chat gpt-4o")
    assert chat["type"] == "llm" and chat["provider"] == "openai" and chat["model"] == "gpt-4o"
    assert chat["input"] == {"messages": [{"content": "Be brief.", "role": "system"}, {"content": "hi", "role": "user"}]}
    assert chat["output"] == {"choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"}}]}
    assert "events" not in chat["metadata"]
    assert opik_ui.problems(chat, "hi", "hello") == [] and opik_ui.messages_tab(chat)


def test_logfire_request_response_data_and_dropped_keys() -> None:
    rec = Recorder(scope="logfire.openai")
    rec.span(
        "Chat Completion with 'gpt-4o'",
        {
            "request_data": '{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}',
            "response_data": '{"message": {"role": "assistant", "content": "hello"}, "usage": {"prompt_tokens": 4}}',
            "gen_ai.system": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.response.model": "gpt-4o-2024-08-06",
            "gen_ai.usage.input_tokens": 4,
            "gen_ai.usage.output_tokens": 1,
            "logfire.msg_template": "Chat Completion with {request_data[model]!r}",
            "logfire.msg": "Chat Completion with 'gpt-4o'",
            "logfire.json_schema": SCHEMA,
            "logfire.span_type": "span",
            "logfire.tags": ("llm",),
            "async": False,
        },
        0,
        5,
        kind=SpanKind.CLIENT,
    )
    span = mapped(rec.finished()).span("Chat Completion with 'gpt-4o'")
    assert strip(span) == {
        "name": "Chat Completion with 'gpt-4o'",
        "type": "llm",
        "model": "gpt-4o-2024-08-06",
        "provider": "openai",
        "usage": {"prompt_tokens": 4, "completion_tokens": 1, "total_tokens": 5},
        "tags": ["llm"],
        "input": {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
        "output": {"choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"}}], "usage": {"prompt_tokens": 4}},
        "metadata": {"gen_ai.request.model": "gpt-4o", "logfire.msg": "Chat Completion with 'gpt-4o'",
                     "logfire.span_type": "span", "async": False},
    }
    assert opik_ui.problems(span, "hi", "hello") == [] and opik_ui.messages_tab(span)
