"""OpenInference -> Opik, from the attribute sets of the OpenInference spec.

(``spec/semantic_conventions.md``, ``spec/llm_spans.md``, ``spec/multimodal_attributes.md``
and the LangChain instrumentation's hand-built ``exception`` event.)
"""

from __future__ import annotations

import json

from conftest_conventions import Recorder, mapped, strip


def _llm_attrs() -> dict:
    a = {
        "openinference.span.kind": "LLM",
        "llm.system": "anthropic",
        "llm.provider": "aws",
        "llm.model_name": "anthropic.claude-3-5-sonnet-20240620-v1:0",
        "input.value": "What is in this image?",  # plain text: the messages below render better
        "input.mime_type": "text/plain",
        "llm.invocation_parameters": '{"temperature": 0, "max_tokens": 256}',
        "llm.input_messages.0.message.role": "system",
        "llm.input_messages.0.message.content": "You see images.",
        "llm.input_messages.1.message.role": "user",
        "llm.input_messages.1.message.contents.0.message_content.type": "text",
        "llm.input_messages.1.message.contents.0.message_content.text": "What is in this image?",
        "llm.input_messages.1.message.contents.1.message_content.type": "image",
        "llm.input_messages.1.message.contents.1.message_content.image.image.url": "https://example.com/cat.png",
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.content": "A cat.",
        "llm.output_messages.0.message.tool_calls.0.tool_call.id": "toolu_1",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "zoom",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": '{"factor": 2}',
        "llm.token_count.prompt": 1500,
        "llm.token_count.completion": 20,
        "llm.token_count.total": 1520,
        "llm.token_count.prompt_details.cache_read": 1000,
        "llm.token_count.prompt_details.cache_write": 200,
        "llm.token_count.prompt_details.audio": 0,
        "llm.token_count.completion_details.reasoning": 0,
        "llm.cost.prompt": 0.0012,
        "llm.cost.completion": 0.0003,
        "llm.cost.total": 0.0015,
        "llm.tools.0.tool.json_schema": '{"type": "function", "function": {"name": "zoom"}}',
        "session.id": "sess-1",
        "user.id": "user-7",
        "metadata": '{"experiment": "b", "run": 3}',
        "tag.tags": ("vision", "beta"),
    }
    return a


def test_llm_span_full_mapping() -> None:
    rec = Recorder(scope="openinference.instrumentation.bedrock")
    rec.span("bedrock.converse", _llm_attrs(), 0, 800, events=[("First Token Stream Event", 412.5, {})])
    result = mapped(rec.finished())
    span = result.span("bedrock.converse")
    assert strip(span) == {
        "name": "bedrock.converse",
        "type": "llm",
        "model": "anthropic.claude-3-5-sonnet-20240620-v1:0",
        "provider": "bedrock",
        "usage": {
            "prompt_tokens": 1500,
            "completion_tokens": 20,
            "total_tokens": 1520,
            "cache_read_input_tokens": 1000,
            "cache_creation_input_tokens": 200,
            # Opik prices Bedrock input without the cache: 1500 - 1000 - 200
            "original_usage.inputTokens": 300,
        },
        "total_estimated_cost": 0.0015,
        "ttft": 412.5,
        "tags": ["vision", "beta"],
        "input": {"messages": [
            {"role": "system", "content": "You see images."},
            {"role": "user", "content": [
                {"type": "text", "text": "What is in this image?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
            ]},
        ]},
        "output": {"messages": [{
            "role": "assistant",
            "content": "A cat.",
            "tool_calls": [{"id": "toolu_1", "function": {"name": "zoom", "arguments": '{"factor": 2}'}, "type": "function"}],
        }]},
        "metadata": {
            "experiment": "b",
            "run": 3,
            "llm.tools": [{"type": "function", "function": {"name": "zoom"}}],
            "openinference.span.kind": "LLM",
            "llm.system": "anthropic",
            "llm.invocation_parameters": {"temperature": 0, "max_tokens": 256},
            "llm.cost.prompt": 0.0012,
            "llm.cost.completion": 0.0003,
            "user.id": "user-7",
        },
    }
    assert strip(result.trace) == {
        "name": "bedrock.converse",
        "input": span["input"],
        "output": span["output"],
        "metadata": strip(span)["metadata"],
        "tags": ["vision", "beta"],
        "thread_id": "sess-1",
        "ttft": 412.5,
    }
    assert "events" not in span["metadata"]["otel"]


def test_json_input_value_wins_and_many_messages_keep_numeric_order() -> None:
    a = {"openinference.span.kind": "LLM", "llm.system": "openai", "llm.model_name": "gpt-4o",
         "input.value": json.dumps({"messages": "see request"}), "input.mime_type": "application/json"}
    # 12 messages, index 5 dropped by an attribute limit: order is numeric (10 after 9), the gap closed
    for i in range(12):
        if i != 5:
            a[f"llm.output_messages.{i}.message.role"] = "assistant"
            a[f"llm.output_messages.{i}.message.content"] = f"m{i}"
    rec = Recorder()
    rec.span("ChatCompletion", a, 0, 10)
    span = mapped(rec.finished()).span("ChatCompletion")
    assert span["input"] == {"messages": "see request"}
    assert [m["content"] for m in span["output"]["messages"]] == [f"m{i}" for i in range(12) if i != 5]
    assert not any(k.startswith("llm.output_messages") for k in span["metadata"])
    assert "input.value" not in span["metadata"] and "input.mime_type" not in span["metadata"]


def test_agent_chain_tool_retriever_guardrail() -> None:
    rec = Recorder(scope="openinference.instrumentation.smolagents")
    agent = rec.span("CodeAgent.run", {"openinference.span.kind": "AGENT", "input.value": '{"task": "sum"}',
                                       "input.mime_type": "application/json", "output.value": "42",
                                       "llm.token_count.prompt": 300, "llm.token_count.completion": 40,
                                       "smolagents.max_steps": 5}, 0, 100)
    rec.span("LiteLLMModel.__call__", {"openinference.span.kind": "LLM", "llm.model_name": "gpt-4o-mini",
                                       "llm.provider": "openai", "llm.token_count.prompt": 300,
                                       "llm.token_count.completion": 40,
                                       "llm.input_messages.0.message.role": "user",
                                       "llm.input_messages.0.message.content": "sum 40 and 2"}, 10, 50, parent=agent)
    rec.span("add", {"openinference.span.kind": "TOOL", "tool.name": "add", "input.value": '{"a": 40, "b": 2}',
                     "output.value": "42", "tool.parameters": '{"a": "int", "b": "int"}'}, 60, 61, parent=agent)
    rec.span("retrieve", {"openinference.span.kind": "RETRIEVER", "input.value": "sum",
                          "retrieval.documents.1.document.content": "second", "retrieval.documents.1.document.score": 0.5,
                          "retrieval.documents.0.document.content": "first", "retrieval.documents.0.document.id": "d0",
                          "retrieval.documents.0.document.metadata": '{"src": "wiki"}'}, 62, 63, parent=agent)
    rec.span("check", {"openinference.span.kind": "GUARDRAIL", "input.value": "42", "output.value": "pass"}, 64, 65,
             parent=agent)
    result = mapped(rec.finished())
    run = result.span("CodeAgent.run")
    assert run["type"] == "general" and "usage" not in run
    assert run["metadata"]["llm.token_count.prompt"] == 300  # the children's sum, kept for reference
    assert run["input"] == {"task": "sum"} and run["output"] == {"value": "42"}
    assert result.usage_total() == {"prompt_tokens": 300, "completion_tokens": 40, "total_tokens": 340}
    llm = result.span("LiteLLMModel.__call__")
    assert llm["input"] == {"messages": [{"role": "user", "content": "sum 40 and 2"}]}
    assert llm["provider"] == "openai"
    tool = result.span("add")
    assert (tool["type"], tool["input"]) == ("tool", {"a": 40, "b": 2})
    retr = result.span("retrieve")
    assert retr["type"] == "general"
    assert retr["output"] == {"documents": [
        {"content": "first", "id": "d0", "metadata": '{"src": "wiki"}'},
        {"content": "second", "score": 0.5},
    ]}
    assert result.span("check")["type"] == "guardrail"


def test_langchain_exception_event_and_failed_call_model() -> None:
    rec = Recorder(scope="openinference.instrumentation.langchain")
    rec.span("ChatOpenAI", {"openinference.span.kind": "LLM", "llm.invocation_parameters": '{"model": "gpt-4o"}',
                            "llm.input_messages.0.message.role": "user", "llm.input_messages.0.message.content": "hi"},
             0, 5, events=[("exception", 5, {"exception.type": "openai.RateLimitError", "exception.message": "slow down",
                                              "exception.stacktrace": "Traceback...", "exception.escaped": False})])
    span = mapped(rec.finished()).span("ChatOpenAI")
    assert span["model"] == "gpt-4o"
    assert span["error_info"] == {"exception_type": "openai.RateLimitError", "message": "slow down",
                                  "traceback": "Traceback..."}


def test_embedding_span() -> None:
    rec = Recorder()
    rec.span("CreateEmbeddings", {"openinference.span.kind": "EMBEDDING", "embedding.model_name": "text-embedding-3-small",
                                  "embedding.embeddings.0.embedding.text": "hello",
                                  "embedding.embeddings.0.embedding.vector": (0.1, 0.2),
                                  "embedding.embeddings.1.embedding.text": "world",
                                  "llm.token_count.prompt": 2, "llm.token_count.total": 2}, 0, 1)
    span = mapped(rec.finished()).span("CreateEmbeddings")
    assert (span["type"], span["model"], span["input"]) == ("llm", "text-embedding-3-small", {"texts": ["hello", "world"]})
    assert span["usage"] == {"prompt_tokens": 2, "total_tokens": 2}
    assert not any(k.startswith("embedding.embeddings") for k in span["metadata"])
