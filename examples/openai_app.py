"""An OpenAI tool-calling "agent", instrumented with the official OpenTelemetry
OpenAI instrumentation (``opentelemetry-instrumentation-openai-v2``) and
exported to Opik with ``OpikSpanExporter``.

One Opik trace per question: the agent span, the model call that asks for a
tool, the tool execution, and the model call that answers, with model,
provider, token usage, messages and the conversation as the Opik thread.

    pip install -e . opentelemetry-instrumentation-openai-v2 'opentelemetry-util-genai<1.2' openai   # in a clone
    # (from an index: pip install opentelemetry-exporter-opik opentelemetry-instrumentation-openai-v2
    #  'opentelemetry-util-genai<1.2' openai; util-genai 1.2 removed a module openai-v2 2.4b0 imports)
    export OPENAI_API_KEY=sk-...              # or OPENAI_BASE_URL for any OpenAI-compatible server
    export OPIK_URL_OVERRIDE=http://localhost:5173/api   # self-hosted; or OPIK_API_KEY + OPIK_WORKSPACE for Opik Cloud
    python examples/openai_app.py

Exits non-zero when spans could not be delivered.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Dict, List

# The instrumentation reads these when instrument() runs: record message contents on the spans.
os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "gen_ai_latest_experimental")
os.environ.setdefault("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "SPAN_ONLY")

from openai import OpenAI  # noqa: E402
from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: E402

from opentelemetry.exporter.opik import OpikSampler, OpikSpanExporter  # noqa: E402

MODEL = os.environ.get("OPENAI_MODEL", "gpt-4o-mini")
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]


def get_weather(city: str) -> Dict[str, Any]:
    return {"city": city, "temperature_c": 18, "sky": "cloudy"}


def main() -> int:
    exporter = OpikSpanExporter(project_name=os.environ.get("OPIK_PROJECT_NAME", "otel-openai-example"))
    provider = TracerProvider(
        resource=Resource.create({"service.name": "openai-weather-agent"}),
        sampler=OpikSampler(),  # every span of a trace carries its start: stable Opik ids everywhere
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    OpenAIInstrumentor().instrument(tracer_provider=provider)
    tracer = provider.get_tracer("examples.openai_app")
    client = OpenAI(max_retries=int(os.environ.get("OPENAI_MAX_RETRIES", "2")))

    for question in ("What's the weather in Paris?", "And in Oslo?"):
        with tracer.start_as_current_span(
            "invoke_agent weather-agent",
            attributes={
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.agent.name": "weather-agent",
                "gen_ai.conversation.id": "weather-chat-1",  # the Opik thread
                "input.value": question,
            },
        ) as agent:
            messages: List[Dict[str, Any]] = [
                {"role": "system", "content": "You answer weather questions with the get_weather tool."},
                {"role": "user", "content": question},
            ]
            first = client.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS)  # type: ignore[arg-type]
            reply = first.choices[0].message
            answer = reply.content or ""
            if reply.tool_calls:
                messages.append(reply.model_dump(exclude_none=True))
                for call in reply.tool_calls:
                    args = json.loads(call.function.arguments or "{}")  # type: ignore[union-attr]
                    with tracer.start_as_current_span(
                        "execute_tool get_weather",
                        attributes={
                            "gen_ai.operation.name": "execute_tool",
                            "gen_ai.tool.name": "get_weather",
                            "gen_ai.tool.call.id": call.id,
                            "gen_ai.tool.call.arguments": json.dumps(args),
                        },
                    ) as tool_span:
                        result = get_weather(str(args.get("city", "Paris")))
                        tool_span.set_attribute("gen_ai.tool.call.result", json.dumps(result))
                    messages.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps(result)})
                final = client.chat.completions.create(model=MODEL, messages=messages)  # type: ignore[arg-type]
                answer = final.choices[0].message.content or ""
            agent.set_attribute("output.value", answer)
            print(f"Q: {question}\nA: {answer}")

    provider.shutdown()  # flushes: every span is delivered (or counted as dropped) before we exit
    stats = exporter.stats()
    print(
        f"Opik: {stats['traces_exported']} traces, {stats['spans_exported']} spans sent to {exporter.settings.url}"
        f" (project {exporter.settings.project_name!r}); dropped: {stats['dropped'] or 'none'}"
    )
    return 1 if stats["dropped"] else 0


if __name__ == "__main__":
    sys.exit(main())
