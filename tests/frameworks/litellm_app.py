"""LiteLLM's ``otel`` callback against the fake OpenAI server, exported through the real ``OpikSpanExporter``.

``python litellm_app.py <legacy|latest> <opik url> <project>``

``legacy`` is LiteLLM's default OpenTelemetry logger (``litellm.callbacks =
["otel"]``: a ``litellm_request`` span with ``gen_ai.input.messages`` /
``gen_ai.output.messages`` in GenAI ``parts`` form, plus a ``raw_gen_ai_request``
child with the provider's raw request and response); ``latest`` sets
``OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental`` (a CLIENT span
``chat <model>``, ``gen_ai.provider.name``, no raw child). The logger takes the
global SDK tracer provider when one is set before it initialises, so ours is
installed first. Content capture is LiteLLM's default (``message_logging``).

Scenarios, one trace each: ``chat``, ``stream``, ``image`` and ``error`` are bare
``litellm.completion`` calls (the LLM span is the trace's root); ``tool`` (the
tool call, then the answer to the tool result) and ``turn1``..``turn3`` (one
``session.id``) run under an app span. LiteLLM puts its attributes on the
caller's span instead of a child unless ``USE_OTEL_LITELLM_REQUEST_SPAN`` is
true, which an app with its own spans therefore sets. It prints one JSON line of
facts for the test.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Dict, List

MODE = sys.argv[1] if len(sys.argv) > 1 else "legacy"
if MODE == "latest":
    os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] = "gen_ai_latest_experimental"
elif MODE != "legacy":
    raise SystemExit(f"unknown mode {MODE!r}")
os.environ["USE_OTEL_LITELLM_REQUEST_SPAN"] = "true"
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # no download of the price list

from fake_openai import FakeOpenAIServer  # noqa: E402
from numbers_check import served  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: E402

from opentelemetry import trace  # noqa: E402
from opentelemetry.exporter.opik import OpikSpanExporter  # noqa: E402

ANSWER = "Paris is the capital of France."
SYSTEM = "You are a terse assistant."
PNG_URL = (
    "data:image/png;base64,"
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
THREAD = f"litellm-thread-{MODE}"
TOOL_RESULT = "Sunny, 21 degrees celsius in Paris"
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
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
                   "required": ["city"]}}}]


def main(url: str, project: str) -> Dict[str, Any]:
    exporter = OpikSpanExporter(url=url, project_name=project, timeout=5)
    provider = TracerProvider(resource=Resource.create({"service.name": f"litellm-{MODE}"}))
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=200))
    trace.set_tracer_provider(provider)
    tracer = trace.get_tracer("litellm_app")

    import litellm

    litellm.callbacks = ["otel"]

    facts: Dict[str, Any] = {"mode": MODE, "answer": ANSWER, "system": SYSTEM, "questions": QUESTIONS,
                             "thread": THREAD, "tool_result": TOOL_RESULT}
    with FakeOpenAIServer(content=ANSWER, first_chunk_delay=0.05, chunk_delay=0.002) as server:

        def complete(messages: List[Dict[str, Any]], model: str = "gpt-4o-mini", **kwargs: Any) -> Any:
            return litellm.completion(model=f"openai/{model}", api_base=server.base_url, api_key="test",
                                      messages=messages, num_retries=0, max_retries=0, **kwargs)

        def ask(case: str) -> List[Dict[str, Any]]:
            return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTIONS[case]}]

        complete(ask("chat"))

        for _ in complete(ask("stream"), stream=True, stream_options={"include_usage": True}):
            pass

        with tracer.start_as_current_span("tool round trip"):
            messages = ask("tool")
            first = complete(messages, tools=TOOLS)
            call = first.choices[0].message.tool_calls[0]
            facts["tool_call"] = {"id": call.id, "name": call.function.name, "arguments": call.function.arguments}
            messages += [first.choices[0].message.model_dump(exclude_none=True),
                         {"role": "tool", "tool_call_id": call.id, "content": TOOL_RESULT}]
            complete(messages, tools=TOOLS)

        complete([{"role": "system", "content": SYSTEM}, {"role": "user", "content": [
            {"type": "text", "text": QUESTIONS["image"]}, {"type": "image_url", "image_url": {"url": PNG_URL}}]}])

        try:
            complete(ask("error"), model="error-model")
        except Exception as exc:  # noqa: BLE001 - the failure is the scenario
            facts["error"] = f"{type(exc).__module__}.{type(exc).__qualname__}"

        history: List[Dict[str, Any]] = [{"role": "system", "content": SYSTEM}]
        for turn in ("turn1", "turn2", "turn3"):
            with tracer.start_as_current_span(f"conversation {turn}", attributes={"session.id": THREAD}):
                history.append({"role": "user", "content": QUESTIONS[turn]})
                reply = complete(history)
                history.append({"role": "assistant", "content": reply.choices[0].message.content})

        facts["requests"] = len(server.requests)
        facts["served"] = served(server)

    _drain_logging()  # the success/failure callbacks of sync calls run in LiteLLM's thread pool
    provider.force_flush(10_000)
    facts["flushed"] = exporter.force_flush(10_000)
    provider.shutdown()
    return facts


def _drain_logging() -> None:
    """Wait for LiteLLM's background success/failure logging (a thread pool) to finish."""
    from litellm.litellm_core_utils.thread_pool_executor import executor

    executor.shutdown(wait=True)


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[2], sys.argv[3])))
