"""The OpenAI Agents SDK against the fake OpenAI server, traced by OpenInference's
``OpenAIAgentsInstrumentor`` and exported through the real ``OpikSpanExporter``.

``python openai_agents_app.py <chat_completions|responses> <opik url> <project>``

``chat_completions``: the agents use ``OpenAIChatCompletionsModel`` against the fake
chat-completions server (the SDK records ``GenerationSpanData``: chat-completions
messages in, the assistant messages out). ``responses``: the SDK's default
``OpenAIResponsesModel`` against ``fake_responses.py`` (``ResponseSpanData``: the
Responses-API input items and the whole ``Response``). The instrumentor replaces the SDK's own trace processors
(its exporter to OpenAI's backend) by its OpenInference processor, which turns each
SDK trace into an OTel ``AGENT`` root span named after the workflow; SDK tracing must
stay enabled (``set_tracing_disabled(True)`` would stop that processor too).

Every scenario is one ``Runner`` run (one trace, its root span named after the
``workflow_name``): ``chat`` (``run_sync``), ``stream`` (``run_streamed``), ``tool`` (a
``function_tool`` round trip), ``image`` (an ``input_image`` item with a PNG data URL),
``error`` (model ``error-model`` -> 500) and ``turn1``..``turn3`` (each turn's input is
the previous run's ``to_input_list()`` plus the new question; OpenInference does not
record the SDK's ``group_id``, so the turns run under its ``using_session``, which puts
``session.id`` on every span). It prints one JSON line of facts for the test.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any, Dict

from fake_openai import FakeOpenAIServer
from fake_responses import FakeResponsesServer
from numbers_check import served
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from opentelemetry.exporter.opik import OpikSpanExporter

MODE = sys.argv[1] if len(sys.argv) > 1 else "chat_completions"
if MODE not in ("chat_completions", "responses"):
    raise SystemExit(f"unknown mode {MODE!r}")
ANSWER = "Paris is the capital of France."
SYSTEM = "You are a terse assistant."
PNG_URL = (
    "data:image/png;base64,"
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
THREAD = f"openai-agents-thread-{MODE}"
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
    provider = TracerProvider(resource=Resource.create({"service.name": f"openai-agents-{MODE}"}))
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=200))

    import agents
    from agents import (
        Agent,
        ModelSettings,
        OpenAIChatCompletionsModel,
        OpenAIResponsesModel,
        RunConfig,
        Runner,
        function_tool,
    )
    from openai import AsyncOpenAI
    from openinference.instrumentation import using_session
    from openinference.instrumentation.openai_agents import OpenAIAgentsInstrumentor

    OpenAIAgentsInstrumentor().instrument(tracer_provider=provider)

    @function_tool
    def get_weather(city: str, unit: str = "celsius") -> str:
        """Weather for a city.

        Args:
            city: The city.
            unit: celsius or fahrenheit.
        """
        return f"Sunny, 21 degrees {unit} in {city}"

    facts: Dict[str, Any] = {"mode": MODE, "answer": ANSWER, "system": SYSTEM, "questions": QUESTIONS, "thread": THREAD,
                             "agents": getattr(agents, "__version__", None),
                             "tool_result": "Sunny, 21 degrees celsius in Paris", "image_url": PNG_URL}
    server: Any = (FakeOpenAIServer(content=ANSWER, first_chunk_delay=0.05, chunk_delay=0.002)
                   if MODE == "chat_completions" else FakeResponsesServer(content=ANSWER, first_chunk_delay=0.05))
    with server:
        def agent(name: str, model: str = "gpt-4o-mini", **kwargs: Any) -> Agent:
            # one client per agent: each run_sync has its own event loop, which a client's pool is bound to
            client = AsyncOpenAI(base_url=server.base_url, api_key="test", max_retries=0)
            kind = OpenAIChatCompletionsModel if MODE == "chat_completions" else OpenAIResponsesModel
            return Agent(name=name, instructions=SYSTEM, model=kind(model=model, openai_client=client), **kwargs)

        def config(workflow: str) -> RunConfig:
            return RunConfig(workflow_name=workflow)

        answers: Dict[str, Any] = {}
        answers["chat"] = Runner.run_sync(agent("chat"), QUESTIONS["chat"], run_config=config("chat")).final_output

        async def stream() -> str:
            # the SDK asks a streamed chat completion for its usage only when told to
            stream_agent = agent("stream", model_settings=ModelSettings(include_usage=True))
            result = Runner.run_streamed(stream_agent, QUESTIONS["stream"], run_config=config("stream"))
            async for _ in result.stream_events():
                pass
            return str(result.final_output)

        answers["stream"] = asyncio.run(stream())
        facts["stream_first_chunk_ms"] = 1000.0 * (server.last_request.first_chunk_offset_s if MODE == "chat_completions"
                                                    else server.first_chunk_offsets[-1])

        answers["tool"] = Runner.run_sync(agent("tool", tools=[get_weather]), QUESTIONS["tool"],
                                          run_config=config("tool")).final_output

        image = [{"role": "user", "content": [{"type": "input_text", "text": QUESTIONS["image"]},
                                              {"type": "input_image", "image_url": PNG_URL, "detail": "auto"}]}]
        answers["image"] = Runner.run_sync(agent("image"), image, run_config=config("image")).final_output

        try:
            Runner.run_sync(agent("error", "error-model"), QUESTIONS["error"], run_config=config("error"))
        except Exception as exc:  # noqa: BLE001 - the failure is the scenario
            facts["error"] = f"{type(exc).__module__}.{type(exc).__qualname__}"

        history: list = []
        for turn in ("turn1", "turn2", "turn3"):
            with using_session(THREAD):
                result = Runner.run_sync(agent("conversation"), history + [{"role": "user", "content": QUESTIONS[turn]}],
                                         run_config=RunConfig(workflow_name="conversation", group_id=THREAD))
            answers[turn] = result.final_output
            history = result.to_input_list()

        facts["answers"] = answers
        facts["served"] = served(server) if MODE == "chat_completions" else server.served
        facts["requests"] = ([(r.body["model"], r.stream) for r in server.requests] if MODE == "chat_completions"
                             else [(r["model"], bool(r.get("stream"))) for r in server.requests])

    provider.force_flush(10_000)
    facts["flushed"] = exporter.force_flush(10_000)
    provider.shutdown()
    return facts


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[2], sys.argv[3])))
