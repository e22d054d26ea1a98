"""Langfuse SDK (v3, OpenTelemetry-based) keys -> Opik.

Attribute names from Langfuse's ``LangfuseOtelSpanAttributes``; values as its
Python SDK serializes them (JSON strings, JSON-quoted ISO timestamps).
"""

from __future__ import annotations

import json

from conftest_conventions import Recorder, mapped, strip


def _langfuse_trace() -> Recorder:
    rec = Recorder(scope="langfuse-sdk")
    root = rec.span("handle-request", {
        "langfuse.observation.type": "span",
        "langfuse.trace.name": "support-chat",
        "langfuse.trace.tags": ("support", "v2"),
        "langfuse.trace.input": '{"question": "reset password?"}',
        "langfuse.trace.output": '"Use the link."',
        "langfuse.trace.metadata.plan": "pro",
        "langfuse.observation.metadata.region": "eu",
        "user.id": "u-5",
        "session.id": "sess-5",
        "langfuse.environment": "staging",
        "langfuse.release": "1.4.0",
    }, 0, 1000)
    rec.span("llm-call", {
        "langfuse.observation.type": "generation",
        "langfuse.observation.input": json.dumps([{"role": "user", "content": "reset password?"}]),
        "langfuse.observation.output": json.dumps({"role": "assistant", "content": "Use the link."}),
        "langfuse.observation.model.name": "claude-3-5-haiku",
        "langfuse.observation.model.parameters": '{"temperature": 0.1}',
        "langfuse.observation.usage_details": '{"input": 100, "output": 20, "total": 120, "input_cache_read": 40}',
        "langfuse.observation.cost_details": '{"input": 0.001, "output": 0.002, "total": 0.003}',
        "langfuse.observation.completion_start_time": '"2027-01-15T08:00:00.312500+00:00"',
        "langfuse.observation.prompt.name": "support",
        "langfuse.observation.prompt.version": 3,
        "langfuse.observation.metadata.cache": "warm",
    }, 100, 700, parent=root)
    rec.span("search-kb", {
        "langfuse.observation.type": "tool",
        "langfuse.observation.input": '{"q": "password"}',
        "langfuse.observation.output": '["kb-1"]',
        "langfuse.observation.level": "ERROR",
        "langfuse.observation.status_message": "index stale",
    }, 710, 720, parent=root)
    rec.span("moderation", {"langfuse.observation.type": "guardrail", "langfuse.observation.output": '{"ok": true}'},
             730, 740, parent=root)
    return rec


def test_langfuse_trace_full_mapping() -> None:
    result = mapped(_langfuse_trace().finished())
    gen = result.span("llm-call")
    assert strip(gen) == {
        "name": "llm-call",
        "type": "llm",
        "model": "claude-3-5-haiku",
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120, "cache_read_input_tokens": 40},
        "total_estimated_cost": 0.003,
        "ttft": 212.5,
        "input": {"messages": [{"role": "user", "content": "reset password?"}]},
        "output": {"role": "assistant", "content": "Use the link."},
        "metadata": {
            "cache": "warm",
            "langfuse.observation.model.parameters": {"temperature": 0.1},
            "prompt_info": {"name": "support", "version": 3},  # the prompt's one metadata key
        },
    }
    root = result.span("handle-request")
    assert strip(root) == {
        "name": "handle-request",
        "type": "general",
        "tags": ["support", "v2"],
        "environment": "staging",
        "input": {"question": "reset password?"},
        "output": {"value": "Use the link."},
        "metadata": {
            "region": "eu",
            "plan": "pro",
            "langfuse.trace.name": "support-chat",
            "user.id": "u-5",
            "langfuse.release": "1.4.0",
        },
    }
    tool = result.span("search-kb")
    assert tool["type"] == "tool" and tool["output"] == {"messages": ["kb-1"]}
    assert tool["error_info"] == {"exception_type": "Error", "message": "index stale", "traceback": "index stale"}
    assert result.span("moderation")["type"] == "guardrail"
    assert strip(result.trace) == {
        "name": "handle-request",
        "tags": ["support", "v2"],
        "environment": "staging",
        "input": root["input"],
        "output": root["output"],
        "metadata": strip(root)["metadata"],
        "thread_id": "sess-5",
        "ttft": 312.5,  # the generation's completion start, from the trace start
    }


def test_langfuse_openai_style_usage_and_summed_cost() -> None:
    rec = Recorder(scope="langfuse-sdk")
    rec.span("gen", {"langfuse.observation.type": "generation", "langfuse.observation.model.name": "gpt-4o",
                     "langfuse.observation.usage_details": '{"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}',
                     "langfuse.observation.cost_details": '{"input": 0.25, "output": 0.5}',
                     "langfuse.session.id": "s-1"}, 0, 10)
    result = mapped(rec.finished())
    span = result.span("gen")
    assert span["usage"] == {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}
    assert span["total_estimated_cost"] == 0.75
    assert result.trace["thread_id"] == "s-1"


def test_usage_read_before_an_aggregate_is_recognised_is_not_summed() -> None:
    """A Langfuse generation that is also an in-process ``invoke_agent``: its counters stay visible, unsummed."""
    rec = Recorder(scope="langfuse-sdk")
    rec.span("agent", {"langfuse.observation.type": "generation", "gen_ai.operation.name": "invoke_agent",
                       "langfuse.observation.usage_details": '{"input": 5, "output": 1}',
                       "langfuse.observation.cost_details": '{"total": 0.5}'}, 0, 10)
    span = mapped(rec.finished()).span("agent")
    assert "usage" not in span and "total_estimated_cost" not in span
    assert span["metadata"]["aggregated_usage"] == {"prompt_tokens": 5, "completion_tokens": 1}
    assert span["metadata"]["aggregated_cost"] == 0.5
