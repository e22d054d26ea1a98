"""OpenTelemetry GenAI semantic conventions (current and legacy) -> Opik.

Attribute sets follow the semantic-conventions GenAI docs (``gen-ai-spans.md``,
``gen-ai-agent-spans.md``, ``gen-ai-events.md``, the v1.26 ``llm-spans.md``) and
``opentelemetry-util-genai``.
"""

from __future__ import annotations

import json
from typing import Any

import opik_ui
import pytest
from conftest_conventions import Recorder, children_of, iso, mapped, strip
from opentelemetry.trace import SpanKind

from opentelemetry.exporter.opik._mapping.conventions._providers import from_model_name, normalize


def test_current_inference_span_full_mapping() -> None:
    rec = Recorder(scope="opentelemetry.util.genai.handler")
    rec.span(
        "chat gemini-2.0-flash",
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "gcp.vertex_ai",
            "gen_ai.request.model": "gemini-2.0-flash",
            "gen_ai.response.model": "gemini-2.0-flash-001",
            "gen_ai.request.temperature": 0.2,
            "gen_ai.response.id": "resp-1",
            "gen_ai.response.finish_reasons": ("stop",),
            "gen_ai.usage.input_tokens": 120,
            "gen_ai.usage.output_tokens": "40",  # OTLP/JSON may carry numbers as strings
            "gen_ai.usage.cache_read.input_tokens": 100,
            "gen_ai.usage.reasoning.output_tokens": 12,
            "gen_ai.response.time_to_first_chunk": 0.2505,
            "gen_ai.conversation.id": "thread-9",
            "gen_ai.system_instructions": '[{"type": "text", "content": "Answer in French."}]',
            "gen_ai.input.messages": '[{"role": "user", "parts": [{"type": "text", "content": "Hi"}]}]',
            "gen_ai.output.messages": '[{"role": "assistant", "parts": [{"type": "text", "content": "Salut"}], "finish_reason": "stop"}]',
            "server.address": "us-central1-aiplatform.googleapis.com",
        },
        0,
        900,
        kind=SpanKind.CLIENT,
    )
    result = mapped(rec.finished())
    span = result.span("chat gemini-2.0-flash")
    assert strip(span) == {
        "name": "chat gemini-2.0-flash",
        "type": "llm",
        "model": "gemini-2.0-flash-001",
        "provider": "google_vertexai",
        "usage": {"prompt_tokens": 120, "completion_tokens": 40, "total_tokens": 160,
                  "cache_read_input_tokens": 100, "reasoning_tokens": 12},
        "ttft": 250.5,
        "input": {"messages": [
            {"role": "system", "content": "Answer in French."},
            {"role": "user", "content": "Hi"},
        ]},
        "output": {"choices": [{"index": 0, "message": {"role": "assistant", "content": "Salut"}, "finish_reason": "stop"}]},
        "metadata": {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gemini-2.0-flash",
            "gen_ai.request.temperature": 0.2,
            "gen_ai.response.id": "resp-1",
            "gen_ai.response.finish_reasons": ["stop"],
            "server.address": "us-central1-aiplatform.googleapis.com",
        },
    }
    assert strip(result.trace) == {
        "name": "chat gemini-2.0-flash",
        "input": span["input"],
        "output": span["output"],
        "metadata": strip(span)["metadata"],
        "thread_id": "thread-9",
        "ttft": 250.5,
    }
    assert span["metadata"]["otel"]["span_kind"] == "CLIENT"
    assert opik_ui.problems(span, "Hi", "Salut") == []
    assert opik_ui.problems(result.trace, "Hi", "Salut") == []


def test_structured_message_values() -> None:
    """SDK 1.45 accepts structured attribute values: messages may arrive as tuples of mappings."""
    rec = Recorder()
    messages = ({"role": "user", "parts": ({"type": "text", "content": "Hi"},)},)
    rec.span("chat m", {"gen_ai.operation.name": "chat", "gen_ai.request.model": "m", "gen_ai.input.messages": messages,
                        "gen_ai.output.messages": ({"role": "assistant", "parts": ({"type": "text", "content": "Yo"},)},)}, 0, 1)
    span = mapped(rec.finished()).span("chat m")
    assert span["input"] == {"messages": [{"role": "user", "content": "Hi"}]}
    assert span["output"] == {"choices": [{"index": 0, "message": {"role": "assistant", "content": "Yo"}}]}
    assert opik_ui.problems(span, "Hi", "Yo") == []


def test_structured_messages_with_image_and_tool_round_trip() -> None:
    """Structured values keep their tuples all the way down: parts, tool calls, blobs."""
    rec = Recorder()
    messages = (
        {"role": "user", "parts": ({"type": "text", "content": "What is this?"},
                                   {"type": "blob", "modality": "image", "mime_type": "image/png", "content": "iVBORw0K"})},
        {"role": "assistant", "parts": ({"type": "tool_call", "id": "c1", "name": "look", "arguments": {"zoom": 2}},)},
        {"role": "tool", "parts": ({"type": "tool_call_response", "id": "c1", "response": "a cat"},)},
    )
    rec.span("chat m", {"gen_ai.operation.name": "chat", "gen_ai.request.model": "m", "gen_ai.input.messages": messages,
                        "gen_ai.system_instructions": ({"type": "text", "content": "Be brief."},),
                        "gen_ai.output.messages": ({"role": "assistant", "finish_reason": "stop",
                                                    "parts": ({"type": "text", "content": "A cat."},)},)}, 0, 1)
    span = mapped(rec.finished()).span("chat m")
    assert span["input"] == {"messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "What is this?"},
                                     {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K"}}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "look", "arguments": '{"zoom":2}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "a cat"},
    ]}
    assert span["output"] == {"choices": [{"index": 0, "message": {"role": "assistant", "content": "A cat."},
                                           "finish_reason": "stop"}]}
    assert opik_ui.problems(span, "What is this?", "A cat.") == []


def test_legacy_span_events_and_system() -> None:
    """Semconv v1.26-1.27: ``gen_ai.system``, prompt/completion token names, content as span events."""
    rec = Recorder()
    prompt = json.dumps([{"role": "user", "content": "Tell me a joke"}])
    completion = json.dumps([{"role": "assistant", "content": "No."}])
    rec.span(
        "chat gpt-4",
        {
            "gen_ai.system": "az.ai.openai",
            "gen_ai.request.model": "gpt-4",
            "gen_ai.response.model": "gpt-4-0613",
            "gen_ai.usage.prompt_tokens": 9,
            "gen_ai.usage.completion_tokens": 2,
            "gen_ai.response.finish_reasons": ("stop",),
        },
        0,
        50,
        events=[("gen_ai.content.prompt", 1, {"gen_ai.prompt": prompt}),
                ("gen_ai.content.completion", 49, {"gen_ai.completion": completion})],
        kind=SpanKind.CLIENT,
    )
    span = mapped(rec.finished()).span("chat gpt-4")
    assert strip(span) == {
        "name": "chat gpt-4",
        "type": "llm",
        "model": "gpt-4-0613",
        "provider": "azure",
        "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11},
        "input": {"messages": [{"role": "user", "content": "Tell me a joke"}]},
        "output": {"choices": [{"index": 0, "message": {"role": "assistant", "content": "No."}}]},
        "metadata": {"gen_ai.request.model": "gpt-4", "gen_ai.response.finish_reasons": ["stop"]},
    }
    assert "events" not in span["metadata"]["otel"]  # consumed, not repeated
    assert opik_ui.problems(span, "Tell me a joke", "No.") == []


def test_message_events_routed_onto_the_span() -> None:
    """v1.28-1.36 log events, when an SDK puts them on the span (as Langfuse also reads them)."""
    rec = Recorder()
    rec.span("chat m", {"gen_ai.operation.name": "chat", "gen_ai.system": "openai", "gen_ai.request.model": "m"}, 0, 10,
             events=[("gen_ai.system.message", 1, {"content": "Be kind", "gen_ai.system": "openai"}),
                     ("gen_ai.user.message", 1, {"content": "Hi"}),
                     ("gen_ai.choice", 9, {"index": 0, "finish_reason": "stop", "message": '{"content": "Hello"}'})])
    span = mapped(rec.finished()).span("chat m")
    assert span["input"] == {"messages": [{"role": "system", "content": "Be kind"}, {"role": "user", "content": "Hi"}]}
    # the choice's ``message`` arrives as a JSON string: parsed, given its role
    assert span["output"] == {"choices": [{"index": 0, "finish_reason": "stop",
                                           "message": {"role": "assistant", "content": "Hello"}}]}
    assert opik_ui.problems(span, "Hi", "Hello") == []
    assert "events" not in span["metadata"]["otel"]


def test_message_events_with_a_tool_round_trip_and_nested_bodies() -> None:
    """Event bodies whose nested values are JSON strings, structured values or dotted keys."""
    calls = [{"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]
    rec = Recorder()
    rec.span("chat m", {"gen_ai.operation.name": "chat", "gen_ai.system": "openai", "gen_ai.request.model": "m"}, 0, 10,
             events=[("gen_ai.user.message", 1, {"content": "Weather in Paris?"}),
                     ("gen_ai.assistant.message", 1, {"tool_calls": json.dumps(calls)}),
                     ("gen_ai.tool.message", 1, {"id": "c1", "content": "sunny"}),
                     ("gen_ai.user.message", 1, {"content": '"And tomorrow?"'}),  # a JSON-encoded string
                     ("gen_ai.choice", 9, {"index": 0, "finish_reason": "tool_calls",
                                           "message.role": "assistant",
                                           "message.tool_calls.0.id": "c2",
                                           "message.tool_calls.0.type": "function",
                                           "message.tool_calls.0.function.name": "get_forecast",
                                           "message.tool_calls.0.function.arguments": '{"day": 1}'}),
                     ("gen_ai.choice", 9, {"index": 1, "finish_reason": "stop",
                                           "message": json.dumps({"content": json.dumps("Rain.")})})])
    span = mapped(rec.finished()).span("chat m")
    assert span["input"] == {"messages": [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": calls},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        {"role": "user", "content": "And tomorrow?"},
    ]}
    assert span["output"] == {"choices": [
        {"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c2", "type": "function", "function": {"name": "get_forecast", "arguments": '{"day": 1}'}}]}},
        {"index": 1, "finish_reason": "stop", "message": {"role": "assistant", "content": "Rain."}},
    ]}
    assert opik_ui.problems(span, "And tomorrow?", "Rain.") == []
    assert "events" not in span["metadata"]["otel"]


def test_choice_event_with_plain_text_message_and_no_index() -> None:
    rec = Recorder()
    rec.span("chat m", {"gen_ai.operation.name": "chat", "gen_ai.request.model": "m"}, 0, 10,
             events=[("gen_ai.user.message", 1, {"content": "Hi", "gen_ai.system": "openai"}),
                     ("gen_ai.choice", 9, {"finish_reason": "stop", "message": "Hello there"})])
    span = mapped(rec.finished()).span("chat m")
    assert span["output"] == {"choices": [{"index": 0, "finish_reason": "stop",
                                           "message": {"role": "assistant", "content": "Hello there"}}]}
    assert opik_ui.problems(span, "Hi", "Hello there") == []


def test_evaluations_become_feedback_scores() -> None:
    rec = Recorder()
    rec.span(
        "chat m",
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "m",
            "gen_ai.evaluation.name": "relevance",
            "gen_ai.evaluation.score.value": 0.75,
            "gen_ai.evaluation.score.label": "relevant",
            "gen_ai.evaluation.explanation": "on topic",
        },
        0,
        10,
        events=[
            ("gen_ai.evaluation.result", 9, {"gen_ai.evaluation.name": "toxicity", "gen_ai.evaluation.score.value": 0}),
            ("gen_ai.evaluation.result", 9, {"gen_ai.evaluation.name": "hallucination", "gen_ai.evaluation.score.value": "1",
                                             "gen_ai.evaluation.explanation": "made up a date"}),
            # a label alone is no Opik score (value is required): it is skipped
            ("gen_ai.evaluation.result", 9, {"gen_ai.evaluation.name": "tone", "gen_ai.evaluation.score.label": "polite"}),
        ],
    )
    result = mapped(rec.finished(), project="evals")
    span = result.span("chat m")
    assert [{k: v for k, v in s.items() if k not in ("id",)} for s in result.scores] == [
        {"name": "relevance", "value": 0.75, "category_name": "relevant", "reason": "on topic", "project_name": "evals",
         "source": "sdk"},
        {"name": "toxicity", "value": 0.0, "project_name": "evals", "source": "sdk"},
        {"name": "hallucination", "value": 1.0, "reason": "made up a date", "project_name": "evals", "source": "sdk"},
    ]
    assert all(s["id"] == span["id"] for s in result.scores)
    assert not any(k.startswith("gen_ai.evaluation.") for k in span["metadata"])
    assert "events" not in span["metadata"]["otel"]


def test_evaluation_scores_reach_opik_through_the_exporter(opik: Any, provider_for: Any) -> None:
    provider, exporter = provider_for(project_name="evals")
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("chat m", attributes={"gen_ai.operation.name": "chat", "gen_ai.request.model": "m"}) as s:
        s.add_event("gen_ai.evaluation.result", {"gen_ai.evaluation.name": "relevance", "gen_ai.evaluation.score.value": 0.5,
                                                 "gen_ai.evaluation.explanation": "ok"})
    provider.force_flush()
    assert exporter.force_flush(5000)
    assert opik.wait_for(lambda: len(opik.feedback_scores) == 1, timeout=5)
    (key, score), = opik.feedback_scores.items()
    (span,) = opik.spans.values()
    assert key[1] == "span" and score["id"] == span["id"]
    assert (score["name"], score["value"], score["reason"], score["source"]) == ("relevance", 0.5, "ok", "sdk")


def test_agent_usage_is_never_counted_twice() -> None:
    """An in-process ``invoke_agent`` (Vercel ``@ai-sdk/otel``, ...) sums its children's usage."""
    rec = Recorder()
    agent = rec.span("invoke_agent helper", {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "helper",
                                             "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
                                             "gen_ai.usage.input_tokens": 30, "gen_ai.usage.output_tokens": 7,
                                             "gen_ai.usage.cost": 0.01},
                     0, 100)
    for i, (inp, outp) in enumerate(((10, 3), (20, 4))):
        rec.span(f"chat gpt-4o #{i}", {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                                       "gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": inp,
                                       "gen_ai.usage.output_tokens": outp}, 10 + i * 40, 40 + i * 40, parent=agent,
                 kind=SpanKind.CLIENT)
    rec.span("execute_tool search", {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search",
                                     "gen_ai.tool.call.id": "c1", "gen_ai.tool.call.arguments": {"q": "otel"},
                                     "gen_ai.tool.call.result": '{"hits": 3}'}, 45, 48, parent=agent)
    result = mapped(rec.finished())
    root = result.span("invoke_agent helper")
    assert root["type"] == "general" and "usage" not in root and "total_estimated_cost" not in root
    assert root["metadata"]["gen_ai.usage.input_tokens"] == 30 and root["metadata"]["gen_ai.usage.cost"] == 0.01
    assert len(children_of(result, root)) == 3
    assert result.usage_total() == {"prompt_tokens": 30, "completion_tokens": 7, "total_tokens": 37}
    tool = result.span("execute_tool search")
    assert (tool["type"], tool["input"], tool["output"]) == ("tool", {"q": "otel"}, {"hits": 3})


def test_remote_agent_keeps_its_usage() -> None:
    """A CLIENT ``invoke_agent`` calls a remote agent (e.g. Bedrock Agents): no children repeat its usage."""
    rec = Recorder()
    rec.span("invoke_agent remote", {"gen_ai.operation.name": "invoke_agent", "gen_ai.provider.name": "aws.bedrock",
                                     "gen_ai.usage.input_tokens": 8, "gen_ai.usage.output_tokens": 3}, 0, 10,
             kind=SpanKind.CLIENT)
    span = mapped(rec.finished()).span("invoke_agent remote")
    assert span["type"] == "general" and span["provider"] == "bedrock"
    assert span["usage"] == {"prompt_tokens": 8, "completion_tokens": 3, "total_tokens": 11}


def test_embeddings_and_unknown_operation() -> None:
    rec = Recorder()
    rec.span("embeddings e", {"gen_ai.operation.name": "embeddings", "gen_ai.provider.name": "cohere",
                              "gen_ai.request.model": "embed-v4", "gen_ai.usage.input_tokens": 4}, 0, 1)
    rec.span("retrieval docs", {"gen_ai.operation.name": "retrieval", "gen_ai.data_source.id": "docs"}, 2, 3)
    rec.span("no op", {"gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o"}, 4, 5)
    result = mapped(rec.finished())
    emb = result.span("embeddings e")
    assert (emb["type"], emb["provider"], emb["usage"]) == ("llm", "cohere", {"prompt_tokens": 4, "total_tokens": 4})
    assert result.span("retrieval docs")["type"] == "general"
    assert result.span("no op")["type"] == "llm"


def test_thread_from_a_child_span_and_error_type_repr() -> None:
    rec = Recorder()
    root = rec.span("handle", {"http.route": "/chat"}, 0, 100, kind=SpanKind.SERVER)
    rec.span("chat error-model", {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                                  "gen_ai.request.model": "error-model", "gen_ai.conversation.id": "c-1",
                                  "error.type": "<class 'openai.InternalServerError'>"},
             10, 20, parent=root, error=RuntimeError("Error code: 500"))
    result = mapped(rec.finished())
    assert result.trace["thread_id"] == "c-1"
    span = result.span("chat error-model")
    assert span["error_info"]["exception_type"] == "RuntimeError"  # the exception event's own type wins
    assert "ttft" not in result.trace


def test_status_only_error_uses_clean_error_type() -> None:
    rec = Recorder()
    s = rec.tracer.start_span("chat x", attributes={"gen_ai.operation.name": "chat", "gen_ai.request.model": "x",
                                                   "error.type": "<class 'openai.InternalServerError'>"},
                              start_time=1_800_000_000_000_000_000)
    from opentelemetry.trace import Status, StatusCode

    s.set_status(Status(StatusCode.ERROR, "Error code: 500"))
    s.end(end_time=1_800_000_000_001_000_000)
    span = mapped(rec.finished()).span("chat x")
    assert span["error_info"] == {"exception_type": "openai.InternalServerError", "message": "Error code: 500",
                                  "traceback": "Error code: 500"}


@pytest.mark.parametrize(
    ("value", "server", "expected"),
    [
        ("openai", None, "openai"),
        ("OpenAI", None, "openai"),
        ("azure.ai.openai", None, "azure"),
        ("az.ai.openai", None, "azure"),
        ("azure.ai.inference", None, "azure.ai.inference"),  # fronts models Opik does not price as azure
        ("anthropic", None, "anthropic"),
        ("aws.bedrock", None, "bedrock"),
        ("gcp.vertex_ai", None, "google_vertexai"),
        ("vertex_ai", None, "google_vertexai"),
        ("vertexai", None, "google_vertexai"),
        ("gcp.gemini", None, "google_ai"),
        ("gemini", None, "google_ai"),
        ("gcp.gen_ai", "generativelanguage.googleapis.com", "google_ai"),
        ("gcp.gen_ai", "europe-west4-aiplatform.googleapis.com", "google_vertexai"),
        ("google", None, "google_ai"),
        ("mistral_ai", None, "mistral"),
        ("mistralai", None, "mistral"),
        ("x_ai", None, "xai"),
        ("xai", None, "xai"),
        ("deepseek", None, "deepseek"),
        ("groq", None, "groq"),
        ("ibm.watsonx.ai", None, "watsonx"),
        ("openai.chat", None, "openai"),
        ("openai.responses", None, "openai"),
        ("anthropic.messages", None, "anthropic"),
        ("google.vertex.chat", None, "google_vertexai"),
        ("google.generative-ai", None, "google_ai"),
        ("amazon-bedrock", None, "bedrock"),
        ("my-gateway", None, "my-gateway"),
        ("gcp.vertex.agent", None, None),
        ("langchain", None, None),
        ("crewai", None, None),
        ("", None, None),
    ],
)
def test_provider_normalization(value: str, server: Any, expected: Any) -> None:
    assert normalize(value, server) == expected


def test_provider_from_model_name() -> None:
    assert from_model_name("gemini-2.0-flash") == "google_ai"
    assert from_model_name("projects/p/locations/l/publishers/google/models/gemini-1.5-pro") == "google_vertexai"
    assert from_model_name("openai/gpt-4o") == "openai"
    assert from_model_name("anthropic/claude-3-5-sonnet") == "anthropic"
    assert from_model_name("my-finetune") is None
    assert from_model_name("unknownhost/model") is None
    assert from_model_name(None) is None


def test_anthropic_cache_tokens_are_not_billed_twice() -> None:
    """Semconv input counts include cache reads/writes; Opik prices Anthropic input without them."""
    rec = Recorder()
    rec.span("chat claude", {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic",
                             "gen_ai.request.model": "claude-sonnet-4", "gen_ai.usage.input_tokens": 1000,
                             "gen_ai.usage.output_tokens": 50, "gen_ai.usage.cache_read.input_tokens": 800,
                             "gen_ai.usage.cache_creation.input_tokens": 100}, 0, 1)
    span = mapped(rec.finished()).span("chat claude")
    assert span["usage"] == {"prompt_tokens": 1000, "completion_tokens": 50, "total_tokens": 1050,
                             "cache_read_input_tokens": 800, "cache_creation_input_tokens": 100,
                             "original_usage.input_tokens": 100}
    assert span["start_time"] == iso(0)


def test_thread_priority_across_families() -> None:
    rec = Recorder()
    rec.span("a", {"gen_ai.operation.name": "chat", "gen_ai.request.model": "m", "langfuse.session.id": "lf",
                   "gen_ai.conversation.id": "conv"}, 0, 1)
    rec.span("b", {"gen_ai.operation.name": "chat", "gen_ai.request.model": "m", "gen_ai.conversation.id": "conv",
                   "opik.thread_id": "explicit"}, 2, 3)
    result = mapped(rec.finished())
    assert sorted(t["thread_id"] for t in result.traces) == ["conv", "explicit"]
