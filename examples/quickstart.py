"""Quickstart: a small instrumented "agent" exported to Opik with OpikSpanExporter.

No network and no LLM account are needed: the "LLM" is a stub that records
what a real instrumentation would (GenAI semantic conventions). The traces go
to Opik when one is configured (OPIK_URL_OVERRIDE / OPIK_API_KEY /
~/.opik.config) or answers at http://localhost:5173/api; otherwise they are
printed as the Opik traces that would be sent.

    python examples/quickstart.py
"""

from __future__ import annotations

import json
import os
import sys
import time

import httpx
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Status, StatusCode

from opentelemetry.exporter.opik import OpikSampler, OpikSpanExporter, resolve_settings


def opik_is_reachable() -> bool:
    """True when Opik is configured explicitly, or a local Opik answers."""
    settings = resolve_settings()
    if settings.sources["url"].startswith(("env", "argument", "derived")) or "[opik]" in settings.sources["url"]:
        return True
    try:
        return httpx.get(settings.url + "/is-alive/ping", timeout=0.5).status_code == 200
    except httpx.HTTPError:
        return False


def fake_llm(question: str) -> tuple[str, int, int]:
    time.sleep(0.02)
    answer = "Paris is the capital of France." if "France" in question else "I don't know."
    return answer, len(question.split()) + 12, len(answer.split())


def main() -> int:
    send = opik_is_reachable()
    exporter = OpikSpanExporter(project_name=os.environ.get("OPIK_PROJECT_NAME", "otel-quickstart"), dry_run=not send)
    provider = TracerProvider(
        resource=Resource.create({"service.name": "quickstart-agent", "deployment.environment.name": "dev"}),
        sampler=OpikSampler(),
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracer = provider.get_tracer("quickstart")

    questions = ["What is the capital of France?", "What is the airspeed of an unladen swallow?"]
    for i, question in enumerate(questions):
        with tracer.start_as_current_span(
            "invoke_agent geo-agent",
            attributes={
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.agent.name": "geo-agent",
                "gen_ai.conversation.id": "quickstart-conversation",
                "input.value": json.dumps({"question": question}),
                "opik.tags": ["quickstart"],
            },
        ) as agent:
            with tracer.start_as_current_span(
                "execute_tool lookup_country",
                attributes={
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.tool.name": "lookup_country",
                    "gen_ai.tool.call.arguments": json.dumps({"query": question}),
                    "gen_ai.tool.call.result": json.dumps({"country": "France" if "France" in question else None}),
                },
            ):
                time.sleep(0.005)
            with tracer.start_as_current_span("chat gpt-4o-mini") as llm:
                answer, prompt_tokens, completion_tokens = fake_llm(question)
                llm.set_attributes(
                    {
                        "gen_ai.operation.name": "chat",
                        "gen_ai.provider.name": "openai",
                        "gen_ai.request.model": "gpt-4o-mini",
                        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
                        "gen_ai.usage.input_tokens": prompt_tokens,
                        "gen_ai.usage.output_tokens": completion_tokens,
                        "gen_ai.input.messages": json.dumps(
                            [{"role": "user", "parts": [{"type": "text", "content": question}]}]
                        ),
                        "gen_ai.output.messages": json.dumps(
                            [{"role": "assistant", "parts": [{"type": "text", "content": answer}], "finish_reason": "stop"}]
                        ),
                    }
                )
            if i == 1:
                agent.set_status(Status(StatusCode.ERROR, "the agent could not answer"))
                agent.set_attribute("error.type", "AnswerNotFound")
            agent.set_attribute("output.value", json.dumps({"answer": answer}))

    provider.shutdown()
    stats = exporter.stats()
    if send:
        print(
            f"Sent {stats['traces_exported']} traces and {stats['spans_exported']} spans to Opik at "
            f"{exporter.settings.url} (project {exporter.settings.project_name!r}); dropped: {stats['dropped'] or 'none'}"
        )
        return 0 if not stats["dropped"] else 1
    print(
        "\nNo Opik configured and none answering at http://localhost:5173/api, so the traces above were printed "
        "instead of sent.\nTo send them: start Opik locally, or set OPIK_URL_OVERRIDE (self-hosted, e.g. "
        "http://my-opik:5173/api) or OPIK_API_KEY and OPIK_WORKSPACE (Opik Cloud), then run this again.",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
