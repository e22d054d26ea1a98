"""Google ADK (an ``LlmAgent`` on ``LiteLlm``) against the fake OpenAI server, exported through ``OpikSpanExporter``.

``python adk_app.py <default|legacy> <opik url> <project>``

``default`` is ADK's current telemetry schema (``invoke_workflow`` >
``invoke_agent`` > ``generate_content <model>`` / ``execute_tool`` spans, GenAI
semconv; message content on the spans needs
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=SPAN_ONLY``); ``legacy``
pins the old schema (``ADK_TELEMETRY_SCHEMA_VERSION_OPT_IN=1``: ``invocation`` >
``invoke_agent`` > ``call_llm`` whose ``gcp.vertex.agent.llm_request`` /
``llm_response`` are Gemini request/response JSON, with an inner
``generate_content`` span without content; content is on by default). ADK
emits through the global tracer provider, so ours is installed first.

Every scenario is one ``InMemoryRunner.run_async`` (one trace): ``chat``,
``stream`` (``RunConfig(streaming_mode=SSE)``), ``tool`` (a Python function tool:
a tool call, the tool, the answer), ``image`` (``Part.from_bytes`` PNG), ``error``
(model ``error-model``) and ``turn1``..``turn3`` in one ADK session (its id is
the conversation id). It prints one JSON line of facts for the test.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
from typing import Any, Dict, Optional

MODE = sys.argv[1] if len(sys.argv) > 1 else "default"
if MODE == "legacy":
    os.environ["ADK_TELEMETRY_SCHEMA_VERSION_OPT_IN"] = "1"
elif MODE == "default":
    os.environ["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = "SPAN_ONLY"
else:
    raise SystemExit(f"unknown mode {MODE!r}")
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # no download of LiteLLM's price list

from fake_openai import FakeOpenAIServer  # noqa: E402
from numbers_check import served  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: E402

from opentelemetry import trace  # noqa: E402
from opentelemetry.exporter.opik import OpikSpanExporter  # noqa: E402

ANSWER = "Paris is the capital of France."
INSTRUCTION = "You are a terse assistant."
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
THREAD = f"adk-session-{MODE}"
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


def get_weather(city: str) -> str:
    """Weather for a city."""
    return f"Sunny, 21 degrees celsius in {city}"


async def scenarios(server: FakeOpenAIServer, facts: Dict[str, Any]) -> None:
    from google.adk.agents import LlmAgent, RunConfig
    from google.adk.agents.run_config import StreamingMode
    from google.adk.models.lite_llm import LiteLlm
    from google.adk.runners import InMemoryRunner
    from google.genai import types

    def runner(name: str, model: str = "gpt-4o-mini", **kwargs: Any) -> InMemoryRunner:
        llm = LiteLlm(model=f"openai/{model}", api_base=server.base_url, api_key="test", num_retries=0,
                      max_retries=0)
        agent = LlmAgent(name=name, model=llm, instruction=INSTRUCTION, **kwargs)
        return InMemoryRunner(agent=agent, app_name=f"adk-{MODE}")

    async def run(r: InMemoryRunner, *parts: Any, session_id: Optional[str] = None,
                  run_config: Optional[Any] = None) -> str:
        if session_id is None or await r.session_service.get_session(
                app_name=r.app_name, user_id="user", session_id=session_id) is None:
            session = await r.session_service.create_session(app_name=r.app_name, user_id="user",
                                                             session_id=session_id)
            session_id = session.id
        message = types.Content(role="user", parts=list(parts))
        text = ""
        async for event in r.run_async(user_id="user", session_id=session_id, new_message=message,
                                       run_config=run_config or RunConfig()):
            if event.content and event.content.parts and not event.partial:
                text = "".join(p.text or "" for p in event.content.parts) or text
        return text

    def text(case: str) -> Any:
        return types.Part(text=QUESTIONS[case])

    facts["answers"] = {}
    facts["answers"]["chat"] = await run(runner("chat_agent"), text("chat"))
    facts["answers"]["stream"] = await run(runner("stream_agent"), text("stream"),
                                           run_config=RunConfig(streaming_mode=StreamingMode.SSE))
    facts["answers"]["tool"] = await run(runner("tool_agent", tools=[get_weather]), text("tool"))
    facts["answers"]["image"] = await run(runner("image_agent"), text("image"),
                                          types.Part.from_bytes(data=PNG, mime_type="image/png"))
    try:
        await run(runner("error_agent", model="error-model"), text("error"))
    except Exception as exc:  # noqa: BLE001 - the failure is the scenario
        facts["error"] = f"{type(exc).__module__}.{type(exc).__qualname__}"
    conversation = runner("conversation_agent")
    for turn in ("turn1", "turn2", "turn3"):
        facts["answers"][turn] = await run(conversation, text(turn), session_id=THREAD)


def main(url: str, project: str) -> Dict[str, Any]:
    exporter = OpikSpanExporter(url=url, project_name=project, timeout=5)
    provider = TracerProvider(resource=Resource.create({"service.name": f"adk-{MODE}"}))
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=200))
    trace.set_tracer_provider(provider)

    facts: Dict[str, Any] = {"mode": MODE, "answer": ANSWER, "instruction": INSTRUCTION, "questions": QUESTIONS,
                             "thread": THREAD, "tool_result": get_weather("Paris")}
    with FakeOpenAIServer(content=ANSWER, first_chunk_delay=0.05, chunk_delay=0.002) as server:
        asyncio.run(scenarios(server, facts))
        facts["requests"] = len(server.requests)
        facts["served"] = served(server)

    provider.force_flush(10_000)
    facts["flushed"] = exporter.force_flush(10_000)
    provider.shutdown()
    return facts


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[2], sys.argv[3])))
