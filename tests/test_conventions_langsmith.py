"""LangSmith's OpenTelemetry export -> Opik.

Attribute sets as ``langsmith`` 0.15 ``_internal/otel/_otel_exporter.py`` writes
them for a LangChain chain run over a chat model and a tool.
"""

from __future__ import annotations

import json

import opik_ui
from conftest_conventions import Recorder, mapped, strip

INPUTS = {"messages": [[{"lc": 1, "type": "constructor", "id": ["langchain", "schema", "messages", "HumanMessage"],
                         "kwargs": {"content": "What is 2+2?"}}]]}
OUTPUTS = {"generations": [[{"text": "4", "type": "ChatGeneration"}]], "llm_output": {"model_name": "gpt-4o-mini"}}
# as Opik's UI renders them: OpenAI chat messages in, choices out (the rest of LLMResult kept beside)
RENDERED_INPUTS = {"messages": [{"role": "user", "content": "What is 2+2?"}]}
RENDERED_OUTPUTS = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "4"}}],
                    "llm_output": {"model_name": "gpt-4o-mini"}}


def _run() -> Recorder:
    rec = Recorder(scope="langsmith")
    chain = rec.span("AgentExecutor", {
        "langsmith.span.id": "run-1",
        "langsmith.trace.id": "trace-1",
        "langsmith.span.dotted_order": "20270115T080000000000Zrun-1",
        "langsmith.span.kind": "chain",
        "langsmith.trace.name": "AgentExecutor",
        "langsmith.trace.session_name": "my-langsmith-project",
        "gen_ai.operation.name": "chain",
        "gen_ai.system": "langchain",
        "gen_ai.usage.input_tokens": 12,  # LangSmith sums child runs on chains
        "gen_ai.usage.output_tokens": 1,
        "gen_ai.usage.total_tokens": 13,
        "langsmith.metadata.thread_id": "th-9",
        "langsmith.metadata.revision_id": "v3",
        "langsmith.span.tags": "prod, math",
        "gen_ai.prompt": json.dumps({"input": "What is 2+2?"}),
        "gen_ai.completion": json.dumps({"output": "4"}),
    }, 0, 1000)
    rec.span("ChatOpenAI", {
        "langsmith.span.id": "run-2",
        "langsmith.span.parent_id": "run-1",
        "langsmith.span.kind": "llm",
        "langsmith.trace.name": "ChatOpenAI",
        "gen_ai.operation.name": "chat",
        "gen_ai.system": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.request.temperature": 0.0,
        "gen_ai.usage.input_tokens": 12,
        "gen_ai.usage.output_tokens": 1,
        "gen_ai.usage.total_tokens": 13,
        "gen_ai.usage.input_token_details": "{'audio': 0, 'cache_read': 8}",
        "gen_ai.usage.output_token_details": "{'audio': 0, 'reasoning': 0}",
        "langsmith.metadata.ls_provider": "openai",
        "langsmith.metadata.ls_model_name": "gpt-4o-mini",
        "langsmith.metadata.ls_model_type": "chat",
        "langsmith.metadata.thread_id": "th-9",
        "langsmith.span.tags": "seq:step:1",
        "gen_ai.prompt": json.dumps(INPUTS),
        "gen_ai.completion": json.dumps(OUTPUTS),
    }, 100, 600, parent=chain)
    rec.span("calculator", {
        "langsmith.span.kind": "tool",
        "langsmith.trace.name": "calculator",
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.system": "langchain",
        "gen_ai.prompt": '{"input": "2+2"}',
        "gen_ai.completion": '{"output": "4"}',
    }, 650, 660, parent=chain)
    return rec


def test_langsmith_run_tree_full_mapping() -> None:
    result = mapped(_run().finished())
    llm = result.span("ChatOpenAI")
    assert strip(llm) == {
        "name": "ChatOpenAI",
        "type": "llm",
        "model": "gpt-4o-mini-2024-07-18",
        "provider": "openai",
        "usage": {"prompt_tokens": 12, "completion_tokens": 1, "total_tokens": 13, "cache_read_input_tokens": 8},
        "tags": ["seq:step:1"],
        "input": RENDERED_INPUTS,
        "output": RENDERED_OUTPUTS,
        "metadata": {
            "ls_provider": "openai",
            "ls_model_name": "gpt-4o-mini",
            "ls_model_type": "chat",
            "thread_id": "th-9",
            "langsmith.span.id": "run-2",
            "langsmith.span.parent_id": "run-1",
            "langsmith.span.kind": "llm",
            "langsmith.trace.name": "ChatOpenAI",
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.request.temperature": 0.0,
        },
    }
    assert opik_ui.problems(llm, "What is 2+2?", "4") == []
    chain = result.span("AgentExecutor")
    assert strip(chain) == {
        "name": "AgentExecutor",
        "type": "general",
        "tags": ["prod", "math"],
        "input": {"input": "What is 2+2?"},
        "output": {"output": "4"},
        "metadata": {
            "thread_id": "th-9",
            "revision_id": "v3",
            "langsmith.span.id": "run-1",
            "langsmith.trace.id": "trace-1",
            "langsmith.span.dotted_order": "20270115T080000000000Zrun-1",
            "langsmith.span.kind": "chain",
            "langsmith.trace.name": "AgentExecutor",
            "langsmith.trace.session_name": "my-langsmith-project",
            "gen_ai.operation.name": "chain",
            "gen_ai.system": "langchain",
            "gen_ai.usage.input_tokens": 12,
            "gen_ai.usage.output_tokens": 1,
            "gen_ai.usage.total_tokens": 13,
        },
    }
    tool = result.span("calculator")
    assert (tool["type"], tool["input"], tool["output"]) == ("tool", {"input": "2+2"}, {"output": "4"})
    assert "provider" not in tool  # "langchain" names the framework
    assert strip(result.trace) == {
        "name": "AgentExecutor",
        "tags": ["prod", "math"],
        "input": chain["input"],
        "output": chain["output"],
        "metadata": strip(chain)["metadata"],
        "thread_id": "th-9",
    }
    # the chain's own input/output read as text: the trace row keeps them
    assert opik_ui.table_text(result.trace["input"], "input") == "What is 2+2?"
    assert opik_ui.table_text(result.trace["output"], "output") == "4"
    assert result.trace["project_name"] == "conventions"  # a LangSmith project never overrides the Opik one
    assert result.usage_total() == {"prompt_tokens": 12, "completion_tokens": 1, "total_tokens": 13,
                                    "cache_read_input_tokens": 8}
