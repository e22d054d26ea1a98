"""The numbers Opik prices and sums: usage counted once per call, cost, provider, type, thread, prompt.

Recorded attribute sets (real SDK spans, the real Mapper, Opik's write schemas);
each test asserts the whole mapped span.
"""

from __future__ import annotations

from typing import Any, Dict

import pytest
from conftest_conventions import Recorder, mapped, strip
from opentelemetry.trace import SpanKind, set_span_in_context

from opentelemetry.exporter.opik._config import resolve_settings
from opentelemetry.exporter.opik._mapping import Mapper
from opentelemetry.exporter.opik._mapping.conventions._providers import KNOWN, normalize, resolve
from opentelemetry.exporter.opik._record import from_readable_span

USAGE_12_7 = {"gen_ai.usage.input_tokens": 12, "gen_ai.usage.output_tokens": 7}
COUNTED = {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19}


def _chat(extra: Dict[str, Any]) -> Dict[str, Any]:
    return {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini",
            **USAGE_12_7, **extra}


# --- usage counted once per model call -----------------------------------------------------------


def test_llm_span_over_an_llm_span_counts_the_inner_call_once() -> None:
    """ADK-like nesting of two LLM spans for one call: the innermost keeps usage and cost, the outer has them in metadata."""
    rec = Recorder()
    outer = rec.tracer.start_span("call_llm", attributes={**_chat({"gen_ai.usage.cost": 0.5})},
                                  start_time=1_800_000_000_000_000_000)
    inner = rec.tracer.start_span("chat gpt-4o-mini", context=set_span_in_context(outer), kind=SpanKind.CLIENT,
                                  attributes=_chat({"gen_ai.usage.cost": 0.5}), start_time=1_800_000_000_001_000_000)
    inner.end(end_time=1_800_000_000_800_000_000)
    outer.end(end_time=1_800_000_000_900_000_000)
    result = mapped(rec.finished())
    assert strip(result.span("chat gpt-4o-mini")) == {
        "name": "chat gpt-4o-mini", "type": "llm", "model": "gpt-4o-mini", "provider": "openai",
        "usage": COUNTED, "total_estimated_cost": 0.5,
        "metadata": {"gen_ai.operation.name": "chat"},
    }
    assert strip(result.span("call_llm")) == {
        "name": "call_llm", "type": "llm", "model": "gpt-4o-mini", "provider": "openai",
        "metadata": {"gen_ai.operation.name": "chat", "aggregated_usage": COUNTED, "aggregated_cost": 0.5},
    }
    assert result.usage_total() == COUNTED


def test_count_once_through_intermediate_spans_and_new_aggregate_operations() -> None:
    """handle_conversation_turn > agent_step > plan / (task > chat, chat): the trace total is the two calls."""
    rec = Recorder()
    t = rec.tracer
    turn = t.start_span("handle_conversation_turn", attributes={"gen_ai.operation.name": "handle_conversation_turn",
                                                                "gen_ai.usage.input_tokens": 24,
                                                                "gen_ai.usage.output_tokens": 14},
                        start_time=1_800_000_000_000_000_000)
    step = t.start_span("agent_step", context=set_span_in_context(turn),
                        attributes={"gen_ai.operation.name": "agent_step", "gen_ai.usage.input_tokens": 24,
                                    "gen_ai.usage.output_tokens": 14}, start_time=1_800_000_000_010_000_000)
    plan = t.start_span("plan", context=set_span_in_context(step),
                        attributes={"gen_ai.operation.name": "plan"}, start_time=1_800_000_000_020_000_000)
    plan.end(end_time=1_800_000_000_030_000_000)
    # an app span with usage of its own (no operation), over the first call
    task = t.start_span("my task", context=set_span_in_context(step),
                        attributes={"gen_ai.usage.input_tokens": 12, "gen_ai.usage.output_tokens": 7,
                                    "gen_ai.agent.name": "helper"}, start_time=1_800_000_000_040_000_000)
    c1 = t.start_span("chat a", context=set_span_in_context(task), kind=SpanKind.CLIENT, attributes=_chat({}),
                      start_time=1_800_000_000_050_000_000)
    c1.end(end_time=1_800_000_000_300_000_000)
    task.end(end_time=1_800_000_000_310_000_000)
    c2 = t.start_span("chat b", context=set_span_in_context(step), kind=SpanKind.CLIENT, attributes=_chat({}),
                      start_time=1_800_000_000_400_000_000)
    c2.end(end_time=1_800_000_000_700_000_000)
    step.end(end_time=1_800_000_000_800_000_000)
    turn.end(end_time=1_800_000_000_900_000_000)
    spans = rec.finished()
    result = mapped(spans)
    assert result.usage_total() == {"prompt_tokens": 24, "completion_tokens": 14, "total_tokens": 38}
    assert strip(result.span("plan")) == {"name": "plan", "type": "general", "metadata": {"gen_ai.operation.name": "plan"}}
    assert strip(result.span("agent_step")) == {
        "name": "agent_step", "type": "general",
        "metadata": {"gen_ai.operation.name": "agent_step", "gen_ai.usage.input_tokens": 24,
                     "gen_ai.usage.output_tokens": 14},
    }
    assert strip(result.span("my task")) == {
        "name": "my task", "type": "general",
        "metadata": {"gen_ai.agent.name": "helper", "aggregated_usage": COUNTED},
    }
    assert result.span("chat a")["usage"] == COUNTED and result.span("chat b")["usage"] == COUNTED
    # the same spans in two batches, children first (as a BatchSpanProcessor exports them), count the same
    mapper = Mapper(resolve_settings({"project_name": "conventions"}, env={}))
    records = [from_readable_span(s) for s in spans]
    first = mapper.map([r for r in records if r.name in ("chat a", "my task", "plan")])
    second = mapper.map([r for r in records if r.name not in ("chat a", "my task", "plan")])
    total: Dict[str, int] = {}
    for m in first.items + second.items:
        if m.kind == "span":
            for k, v in m.data.get("usage", {}).items():
                total[k] = total.get(k, 0) + v
    assert total == {"prompt_tokens": 24, "completion_tokens": 14, "total_tokens": 38}
    # a batch that lists a parent before its child (an OTLP sender's order) is read children first
    mapper = Mapper(resolve_settings({"project_name": "conventions"}, env={}))
    shuffled = mapper.map(sorted(records, key=lambda r: -r.end_ns))
    assert sum(m.data.get("usage", {}).get("total_tokens", 0) for m in shuffled.items if m.kind == "span") == 38


# --- operations, usage and cost names of the current semconv --------------------------------------


def test_apply_guardrail_memory_and_retrieval_operations() -> None:
    rec = Recorder()
    rec.span("apply_guardrail pii", {"gen_ai.operation.name": "apply_guardrail", "gen_ai.guardrail.name": "pii"}, 0, 5)
    rec.span("search_memory", {"gen_ai.operation.name": "search_memory", "gen_ai.memory.store.id": "mem-1",
                               "gen_ai.memory.query.text": "favourite colour",
                               "gen_ai.memory.records": '[{"id": "r1", "content": "blue"}]'}, 10, 15)
    rec.span("retrieval kb", {"gen_ai.operation.name": "retrieval", "gen_ai.data_source.id": "kb",
                              "gen_ai.request.model": "text-embedding-3-small",
                              "gen_ai.retrieval.query.text": "What is the weather in Seattle?",
                              "gen_ai.retrieval.top_k": 3,
                              "gen_ai.retrieval.documents": '[{"id": "doc_1", "score": 0.9, "content": "Rainy."}]'},
             20, 30)
    result = mapped(rec.finished())
    assert strip(result.span("apply_guardrail pii")) == {
        "name": "apply_guardrail pii", "type": "guardrail",
        "metadata": {"gen_ai.operation.name": "apply_guardrail", "gen_ai.guardrail.name": "pii"},
    }
    assert strip(result.span("search_memory")) == {
        "name": "search_memory", "type": "general",
        "input": {"query": "favourite colour"},
        "output": {"records": [{"id": "r1", "content": "blue"}]},
        "metadata": {"gen_ai.operation.name": "search_memory", "gen_ai.memory.store.id": "mem-1"},
    }
    assert strip(result.span("retrieval kb")) == {
        "name": "retrieval kb", "type": "general", "model": "text-embedding-3-small",
        "input": {"query": "What is the weather in Seattle?"},
        "output": {"documents": [{"id": "doc_1", "score": 0.9, "content": "Rainy."}]},
        "metadata": {"gen_ai.operation.name": "retrieval", "gen_ai.data_source.id": "kb", "gen_ai.retrieval.top_k": 3},
    }


def test_cache_write_per_modality_usage_and_draft_cost() -> None:
    rec = Recorder()
    rec.span("chat claude", {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic", "gen_ai.request.model": "claude-sonnet-4-5",
        "gen_ai.usage.input_tokens": 1200, "gen_ai.usage.output_tokens": 50,
        "gen_ai.usage.cache_read.input_tokens": 200, "gen_ai.usage.cache_write.input_tokens": 800,
        "gen_ai.usage.text.input_tokens": 900, "gen_ai.usage.image.input_tokens": 300,
        "gen_ai.usage.audio.output_tokens": 0, "gen_ai.usage.text.output_tokens": 50,
        "gen_ai.usage.cost.amount": 0.0123, "gen_ai.usage.cost.currency": "USD",
    }, 0, 100, kind=SpanKind.CLIENT)
    rec.span("chat eur", {**_chat({"gen_ai.usage.cost.amount": 9.5, "gen_ai.usage.cost.currency": "EUR"})}, 200, 300)
    result = mapped(rec.finished())
    assert strip(result.span("chat claude")) == {
        "name": "chat claude", "type": "llm", "model": "claude-sonnet-4-5", "provider": "anthropic",
        "usage": {"prompt_tokens": 1200, "completion_tokens": 50, "total_tokens": 1250,
                  "cache_read_input_tokens": 200, "cache_creation_input_tokens": 800,
                  "text.input_tokens": 900, "image.input_tokens": 300, "text.output_tokens": 50,
                  # Anthropic prices input tokens without the cache ones
                  "original_usage.input_tokens": 200},
        "total_estimated_cost": 0.0123,
        "metadata": {"gen_ai.operation.name": "chat", "gen_ai.usage.cost.currency": "USD"},
    }
    # a cost in another currency is not Opik's dollars: it stays in metadata
    assert strip(result.span("chat eur")) == {
        "name": "chat eur", "type": "llm", "model": "gpt-4o-mini", "provider": "openai", "usage": COUNTED,
        "metadata": {"gen_ai.operation.name": "chat", "gen_ai.usage.cost.amount": 9.5,
                     "gen_ai.usage.cost.currency": "EUR"},
    }


# --- providers ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attrs", "provider"),
    [
        ({"gen_ai.provider.name": "azure.ai.inference", "gen_ai.request.model": "Llama-3.3-70B-Instruct"},
         "azure.ai.inference"),
        ({"gen_ai.provider.name": "azure.ai.inference", "gen_ai.request.model": "gpt-4o",
          "server.address": "myres.openai.azure.com"}, "azure"),
        ({"gen_ai.provider.name": "moonshot_ai", "gen_ai.request.model": "kimi-k2"}, "moonshot"),
        ({"gen_ai.provider.name": "gcp.vertex_ai", "gen_ai.request.model": "claude-3-5-sonnet-v2@20241022"},
         "anthropic_vertexai"),
        ({"gen_ai.system": "api.deepseek.com", "gen_ai.request.model": "deepseek-chat"}, "deepseek"),
        # a framework named where the provider belongs: the model id's prefix, then the host
        ({"gen_ai.provider.name": "strands-agents", "gen_ai.request.model": "openai/gpt-4o"}, "openai"),
        ({"gen_ai.system": "langchain", "gen_ai.request.model": "my-model", "server.address": "api.groq.com"}, "groq"),
        ({"gen_ai.request.model": "gemini-2.5-flash"}, "google_ai"),
    ],
)
def test_provider_cases(attrs: Dict[str, Any], provider: str) -> None:
    rec = Recorder()
    rec.span("chat", {"gen_ai.operation.name": "chat", **USAGE_12_7, **attrs}, 0, 10, kind=SpanKind.CLIENT)
    span = strip(mapped(rec.finished()).span("chat"))
    rest = {k: v for k, v in attrs.items() if k not in ("gen_ai.request.model",)}
    # the key that named the provider is read; a framework's name stays in metadata, as does the host
    md = {"gen_ai.operation.name": "chat"}
    md.update({k: v for k, v in rest.items() if k == "server.address" or v == "langchain"})  # the Strands reader reads its own name
    model = attrs["gen_ai.request.model"]
    if model.startswith("openai/"):  # the prefix names the provider: Opik prices the model's own name
        model, md["model_id"] = model[len("openai/"):], model
    assert span == {"name": "chat", "type": "llm", "model": model, "provider": provider, "usage": COUNTED,
                    "metadata": md}
    assert provider in KNOWN or provider == "azure.ai.inference"


def test_provider_resolution_helpers() -> None:
    assert normalize("azure.ai.inference") == "azure.ai.inference"
    assert normalize("api.cerebras.ai") == "cerebras" and normalize("inference.cerebras.ai") == "inference.cerebras.ai"
    assert resolve("openai/gpt-4o", None) == "openai" and resolve("x", "127.0.0.1") is None


# --- thread, empty values, prompts ----------------------------------------------------------------


def test_traceloop_session_alone_gives_the_thread_and_empty_strings_add_nothing() -> None:
    rec = Recorder()
    rec.span("my handler", {"traceloop.association.properties.session_id": "sess-7", "user.note": "",
                            "metadata.user_api_key_alias": ""}, 0, 10)
    result = mapped(rec.finished())
    assert result.trace["thread_id"] == "sess-7"
    assert strip(result.span("my handler")) == {"name": "my handler", "type": "general",
                                                "metadata": {"session_id": "sess-7"}}


def test_prompt_names_and_versions_under_one_key() -> None:
    rec = Recorder()
    rec.span("chat a", _chat({"gen_ai.prompt.name": "greeting", "gen_ai.prompt.version": "3"}), 0, 10)
    rec.span("generation", {"langfuse.observation.type": "generation", "langfuse.observation.model.name": "gpt-4o",
                            "langfuse.observation.prompt.name": "summary", "langfuse.observation.prompt.version": 2},
             20, 30)
    rec.span("llm", {"openinference.span.kind": "LLM", "llm.model_name": "gpt-4o", "llm.provider": "openai",
                     "llm.prompt_template.template": "Hello {name}", "llm.prompt_template.version": "v1",
                     "llm.prompt_template.variables": '{"name": "Ada"}'}, 40, 50)
    result = mapped(rec.finished())
    assert strip(result.span("chat a")) == {
        "name": "chat a", "type": "llm", "model": "gpt-4o-mini", "provider": "openai", "usage": COUNTED,
        "metadata": {"gen_ai.operation.name": "chat", "prompt_info": {"name": "greeting", "version": "3"}},
    }
    gen = strip(result.span("generation"))
    assert gen["metadata"]["prompt_info"] == {"name": "summary", "version": 2}
    assert "langfuse.observation.prompt.name" not in gen["metadata"]
    llm = strip(result.span("llm"))
    assert llm["metadata"]["prompt_info"] == {"version": "v1"}
    # the template and its variables are content: they stay where the OpenInference reader puts them
    assert llm["metadata"]["llm.prompt_template.template"] == "Hello {name}"


# --- prompt linking through Opik's REST API (the stand-in's prompt endpoint) ----------------------


def test_prompt_linking_looks_each_prompt_up_once_in_the_background() -> None:
    from opik_standin import OpikStandin

    from opentelemetry.exporter.opik._json import dumps, loads
    from opentelemetry.exporter.opik._mapping._prompts import PromptLinker, rest_post

    with OpikStandin(api_key="k-1", workspace="ws") as opik:
        opik.add_prompt("greeting", "Hello {{name}}", commit="aaaa1111")
        v2 = opik.add_prompt("greeting", "Hi {{name}}!", commit="bbbb2222")
        settings = resolve_settings({"project_name": "conventions", "url": opik.url, "api_key": "k-1",
                                     "workspace": "ws"}, env={})
        linker = PromptLinker(rest_post(settings))
        mapper = Mapper(settings, prompts=linker)

        def run() -> Dict[str, Dict[str, Any]]:
            rec = Recorder()
            rec.span("by number", _chat({"gen_ai.prompt.name": "greeting", "gen_ai.prompt.version": "v2"}), 0, 10)
            rec.span("by commit", _chat({"gen_ai.prompt.name": "greeting", "gen_ai.prompt.version": "bbbb2222"}),
                     20, 30)
            rec.span("langfuse number", {"langfuse.observation.type": "generation",
                                         "langfuse.observation.prompt.name": "greeting",
                                         "langfuse.observation.prompt.version": 2}, 40, 50)
            rec.span("unknown", _chat({"gen_ai.prompt.name": "nope", "gen_ai.prompt.version": "v1"}), 60, 70)
            rec.span("semver", _chat({"gen_ai.prompt.name": "greeting", "gen_ai.prompt.version": "1.2.0"}), 80, 90)
            result = mapper.map([from_readable_span(s) for s in rec.finished()])
            return {m.data["name"]: loads(dumps(m.data)) for m in result.items if m.kind == "span"}

        first = run()  # not known yet: sent without the link, looked up meanwhile
        assert all("opik_prompts" not in s["metadata"] for s in first.values())
        assert linker.wait_idle()
        second = run()
        third = run()
        linker.close()
    link = [{"name": "greeting", "id": v2["prompt_id"],
             "version": {"template": "Hi {{name}}!", "commit": "bbbb2222", "id": v2["id"], "version_number": "v2"}}]
    assert strip(second["by number"]) == {
        "name": "by number", "type": "llm", "model": "gpt-4o-mini", "provider": "openai", "usage": COUNTED,
        "metadata": {"gen_ai.operation.name": "chat", "prompt_info": {"name": "greeting", "version": "v2"},
                     "opik_prompts": link},
    }
    assert second["by commit"]["metadata"]["opik_prompts"] == link
    assert second["langfuse number"]["metadata"]["opik_prompts"] == link
    assert "opik_prompts" not in second["unknown"]["metadata"]  # Opik has no such prompt: 404
    assert "opik_prompts" not in second["semver"]["metadata"]  # a version Opik cannot be asked for
    assert third["by number"]["metadata"]["opik_prompts"] == link
    # one request per (name, version): v2, bbbb2222, 2 (asked as v2) and the unknown one; never the semver one
    asked = [r.json for r in opik.requests if r.path.endswith("/prompts/versions/retrieve")]
    assert sorted(asked, key=str) == sorted([{"name": "greeting", "version_number": "v2"},
                                             {"name": "greeting", "commit": "bbbb2222"},
                                             {"name": "greeting", "version_number": "v2"},
                                             {"name": "nope", "version_number": "v1"}], key=str)
    assert [r.status for r in opik.requests if r.path.endswith("/retrieve")].count(404) == 1


def test_standin_prompt_endpoint_validates_like_opik() -> None:
    import httpx
    from opik_standin import OpikStandin

    with OpikStandin() as opik:
        opik.add_prompt("p", "T {{x}}", commit="cccc3333")
        url = opik.url + "/v1/private/prompts/versions/retrieve"
        assert httpx.post(url, json={"name": ""}).status_code == 422
        assert httpx.post(url, json={"name": "p", "version_number": "three"}).status_code == 422
        assert httpx.post(url, json={"name": "p", "commit": "cccc3333", "version_number": "v1"}).status_code == 400
        latest = httpx.post(url, json={"name": "p"})
        assert latest.status_code == 200 and latest.json()["template"] == "T {{x}}"
        assert latest.json()["variables"] == ["x"] and latest.json()["version_number"] == "v1"
        assert httpx.post(url, json={"name": "p", "commit": "dddd4444"}).status_code == 404


def test_exporter_links_prompts_once_opik_knows_them() -> None:
    """The real exporter (its pipeline's PromptLinker) against the stand-in: the second call is linked."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opik_standin import OpikStandin

    from opentelemetry.exporter.opik import OpikSpanExporter

    with OpikStandin() as opik:
        version = opik.add_prompt("support", "You help with {{topic}}.")
        exporter = OpikSpanExporter(url=opik.url, project_name="prompts", timeout=5)
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        tracer = provider.get_tracer("app")
        for n in (1, 2):
            with tracer.start_as_current_span(f"call {n}", attributes=_chat({"gen_ai.prompt.name": "support"})):
                pass
            exporter.force_flush(5_000)
            assert exporter._pipeline.mapper.prompts is not None and exporter._pipeline.mapper.prompts.wait_idle()
        provider.shutdown()
        spans = {s["name"]: s for s in opik.spans.values()}
    assert "opik_prompts" not in spans["call 1"]["metadata"]  # looked up meanwhile
    assert spans["call 2"]["metadata"]["opik_prompts"] == [
        {"name": "support", "id": version["prompt_id"],
         "version": {"template": "You help with {{topic}}.", "commit": version["commit"], "id": version["id"],
                     "version_number": "v1"}}]
    assert spans["call 2"]["metadata"]["prompt_info"] == {"name": "support"}
