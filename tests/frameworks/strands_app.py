"""Strands Agents against the fake OpenAI server, exported through the real ``OpikSpanExporter``.

``python strands_app.py <legacy|latest> <opik url> <project>``

``legacy`` is Strands' default telemetry (GenAI span events ``gen_ai.user.message``,
``gen_ai.choice``... whose contents are JSON strings of Bedrock-style blocks);
``latest`` sets ``OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental``, under
which Strands puts the messages on ``gen_ai.client.inference.operation.details``
span events. Strands reads the global tracer provider when it creates its
tracer, so ours is installed before ``strands`` is imported.

Every scenario is one ``Agent`` invocation (one trace, named after the agent):
``chat`` (non-streaming request), ``stream`` (``stream_async``), ``tool`` (a tool
round trip), ``image`` (a PNG content block), ``error`` (model ``error-model``)
and ``turn1``..``turn3`` (one agent, three calls, one ``session.id``). It prints
one JSON line of facts for the test.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
from typing import Any, Dict

MODE = sys.argv[1] if len(sys.argv) > 1 else "legacy"
if MODE == "latest":
    # the tool definitions too (on the agent span)
    os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] = "gen_ai_latest_experimental,gen_ai_tool_definitions"
elif MODE != "legacy":
    raise SystemExit(f"unknown mode {MODE!r}")

from fake_openai import FakeOpenAIServer  # noqa: E402
from numbers_check import served  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: E402

from opentelemetry import trace  # noqa: E402
from opentelemetry.exporter.opik import OpikSpanExporter  # noqa: E402

ANSWER = "Paris is the capital of France."
SYSTEM = "You are a terse assistant."
# a 1x1 PNG
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
THREAD = f"strands-thread-{MODE}"
QUESTIONS = {
    "chat": "What is the capital of France?",
    "stream": "Stream me the capital of France.",
    "tool": "What is the weather in Paris?",
    "image": "What is in this image?",
    "error": "This call fails.",
    "turn1": "Hello, who are you?",
    "turn2": "What can you do?",
    "turn3": "Thanks, goodbye.",
}


def main(url: str, project: str) -> Dict[str, Any]:
    exporter = OpikSpanExporter(url=url, project_name=project, timeout=5)
    provider = TracerProvider(resource=Resource.create({"service.name": f"strands-{MODE}"}))
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=200))
    trace.set_tracer_provider(provider)

    from strands import Agent, tool
    from strands.models.openai import OpenAIModel

    @tool
    def get_weather(city: str, unit: str = "celsius") -> str:
        """Weather for a city.

        Args:
            city: The city.
            unit: celsius or fahrenheit.
        """
        return f"Sunny, 21 degrees {unit} in {city}"

    facts: Dict[str, Any] = {"mode": MODE, "answer": ANSWER, "system": SYSTEM, "questions": QUESTIONS,
                             "thread": THREAD, "tool_result": "Sunny, 21 degrees celsius in Paris"}
    with FakeOpenAIServer(content=ANSWER, first_chunk_delay=0.05, chunk_delay=0.002) as server:

        def model(model_id: str = "gpt-4o-mini", stream: bool = True) -> OpenAIModel:
            return OpenAIModel(
                client_args={"base_url": server.base_url, "api_key": "test", "max_retries": 0},
                model_id=model_id,
                stream=stream,
            )

        def agent(name: str, **kwargs: Any) -> Agent:
            kwargs.setdefault("model", model())
            return Agent(name=name, system_prompt=SYSTEM, callback_handler=None, **kwargs)

        # what each agent call returned, as its caller reads it
        answers: Dict[str, str] = {}
        answers["chat"] = str(agent("chat", model=model(stream=False))(QUESTIONS["chat"]))

        async def stream() -> str:
            result = None
            async for event in agent("stream").stream_async(QUESTIONS["stream"]):
                result = event.get("result", result)
            return str(result)

        answers["stream"] = asyncio.run(stream())
        facts["stream_first_chunk_ms"] = server.last_request.first_chunk_offset_s * 1000.0

        answers["tool"] = str(agent("tool", tools=[get_weather])(QUESTIONS["tool"]))

        image = [{"text": QUESTIONS["image"]}, {"image": {"format": "png", "source": {"bytes": PNG}}}]
        answers["image"] = str(agent("image")(image))

        try:
            agent("error", model=model("error-model"))(QUESTIONS["error"])
        except Exception as exc:  # noqa: BLE001 - the failure is the scenario
            facts["error"] = f"{type(exc).__module__}.{type(exc).__qualname__}"

        conversation = agent("conversation", trace_attributes={"session.id": THREAD})
        for turn in ("turn1", "turn2", "turn3"):
            answers[turn] = str(conversation(QUESTIONS[turn]))

        facts["answers"] = answers
        # per request to the model: (model, streamed), in order
        facts["requests"] = [(r.body["model"], r.stream) for r in server.requests]
        facts["served"] = served(server)

    provider.force_flush(10_000)
    facts["flushed"] = exporter.force_flush(10_000)
    provider.shutdown()
    return facts


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[2], sys.argv[3])))
