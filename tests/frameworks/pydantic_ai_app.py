"""Pydantic AI against the fake OpenAI server, exported through the real ``OpikSpanExporter``.

``python pydantic_ai_app.py <version> <opik url> <project>``

``version`` is Pydantic AI's instrumentation data format (``InstrumentationSettings(version=...)``):
``5`` is its default (tool results as ``user`` messages of ``tool_call_response`` parts),
``6`` the newest (tool results as ``tool`` messages). Both put the messages in
``gen_ai.input.messages`` / ``gen_ai.output.messages`` on the model request spans and
``pydantic_ai.all_messages`` / ``final_result`` on the agent run span.

Every scenario is one agent run (one trace, ``invoke_agent <agent>``): ``chat``
(``run_sync``), ``stream`` (``run_stream``), ``tool`` (a ``tool_plain`` round trip),
``image`` (``BinaryContent`` PNG), ``error`` (model ``error-model`` -> 500) and
``turn1``..``turn3`` (each run gets the previous run's ``all_messages()`` as
``message_history``, so Pydantic AI keeps its ``gen_ai.conversation.id``). It prints
one JSON line of facts for the test.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
from typing import Any, Dict

from fake_openai import FakeOpenAIServer
from numbers_check import served
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from opentelemetry.exporter.opik import OpikSpanExporter

VERSION = int(sys.argv[1]) if len(sys.argv) > 1 else 6
ANSWER = "Paris is the capital of France."
SYSTEM = "You are a terse assistant."
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
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
    provider = TracerProvider(resource=Resource.create({"service.name": f"pydantic-ai-v{VERSION}"}))
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=200))

    import pydantic_ai
    from pydantic_ai import Agent, BinaryContent
    from pydantic_ai.models.instrumented import InstrumentationSettings
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    Agent.instrument_all(InstrumentationSettings(tracer_provider=provider, version=VERSION))  # type: ignore[arg-type]
    facts: Dict[str, Any] = {"version": VERSION, "pydantic_ai": pydantic_ai.__version__, "answer": ANSWER,
                             "system": SYSTEM, "questions": QUESTIONS,
                             "tool_result": "Sunny, 21 degrees celsius in Paris",
                             "image_url": "data:image/png;base64," + base64.b64encode(PNG).decode()}

    with FakeOpenAIServer(content=ANSWER, first_chunk_delay=0.05, chunk_delay=0.002) as server:
        from openai import AsyncOpenAI

        def model(name: str = "gpt-4o-mini") -> OpenAIChatModel:
            client = AsyncOpenAI(base_url=server.base_url, api_key="test", max_retries=0)
            return OpenAIChatModel(name, provider=OpenAIProvider(openai_client=client))

        def agent(name: str, model_name: str = "gpt-4o-mini") -> Agent[None, str]:
            return Agent(model(model_name), name=name, system_prompt=SYSTEM)

        answers: Dict[str, str] = {}
        answers["chat"] = agent("chat").run_sync(QUESTIONS["chat"]).output

        async def stream() -> str:
            async with agent("stream").run_stream(QUESTIONS["stream"]) as result:
                return "".join([piece async for piece in result.stream_text(delta=True)])

        answers["stream"] = asyncio.run(stream())
        facts["stream_first_chunk_ms"] = server.last_request.first_chunk_offset_s * 1000.0

        weather = agent("tool")

        @weather.tool_plain
        def get_weather(city: str, unit: str = "celsius") -> str:
            """Weather for a city."""
            return f"Sunny, 21 degrees {unit} in {city}"

        answers["tool"] = weather.run_sync(QUESTIONS["tool"]).output

        image = [QUESTIONS["image"], BinaryContent(data=PNG, media_type="image/png")]
        answers["image"] = agent("image").run_sync(image).output

        try:
            agent("error", "error-model").run_sync(QUESTIONS["error"])
        except Exception as exc:  # noqa: BLE001 - the failure is the scenario
            facts["error"] = f"{type(exc).__module__}.{type(exc).__qualname__}"

        conversation = agent("conversation")
        history = None
        conversation_ids = []
        for turn in ("turn1", "turn2", "turn3"):
            result = conversation.run_sync(QUESTIONS[turn], message_history=history)
            answers[turn] = result.output
            history = result.all_messages()
            conversation_ids.append(result.conversation_id)
        facts["conversation_ids"] = conversation_ids

        facts["answers"] = answers
        facts["requests"] = [(r.body["model"], r.stream) for r in server.requests]
        facts["served"] = served(server)

    provider.force_flush(10_000)
    facts["flushed"] = exporter.force_flush(10_000)
    provider.shutdown()
    return facts


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[2], sys.argv[3])))
