"""A small app run in its own process by ``test_instrumentations.py``.

``python tests/instrumented_app.py <openai_v2|openinference|traceloop> <opik url> <project>``

It instruments the real ``openai`` client with one instrumentation library,
calls the local fake OpenAI server (``fake_openai.py``) over real HTTP, and
exports the spans through the real ``OpikSpanExporter`` (``BatchSpanProcessor``,
then ``force_flush``) to the Opik stand-in at ``<opik url>``. Each call runs
under a root span named ``case:<name>``. It prints one JSON line with what the
server really did (token counts, first-chunk delay), for the test to compare.

One process per instrumentation: they patch the same client classes, and
Traceloop's ``uninstrument()`` does not unwrap (see ``data/instrumentation_spans.md``).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Dict

# before any instrumentation is imported: the latest GenAI conventions, content on spans
os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] = "gen_ai_latest_experimental"
os.environ["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = "SPAN_ONLY"
os.environ["TRACELOOP_TRACE_CONTENT"] = "true"

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fake_openai import FakeOpenAIServer  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: E402

from opentelemetry.exporter.opik import OpikSpanExporter  # noqa: E402

PROMPT_TOKENS = 17
COMPLETION_TOKENS = 6
CACHED_TOKENS = 3
CONTENT = "Bonjour from the fake server"
FIRST_CHUNK_DELAY = 0.3
LONG_STREAM_CHUNKS = 140  # more chunk events than the SDK keeps (128): the oldest are dropped
SYSTEM = "You are terse."
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]


def _instrumentor(which: str) -> Any:
    if which == "openai_v2":
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
    elif which == "openinference":
        from openinference.instrumentation.openai import OpenAIInstrumentor  # type: ignore[no-redef]
    elif which == "traceloop":
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor  # type: ignore[no-redef]
    else:
        raise SystemExit(f"unknown instrumentation {which!r}")
    return OpenAIInstrumentor()


def main(which: str, url: str, project: str) -> Dict[str, Any]:
    exporter = OpikSpanExporter(url=url, project_name=project, timeout=5)
    provider = TracerProvider(resource=Resource.create({"service.name": f"instrumented-{which}"}))
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=200))
    _instrumentor(which).instrument(tracer_provider=provider)
    import openai

    tracer = provider.get_tracer("tests.cases")
    facts: Dict[str, Any] = {
        "prompt_tokens": PROMPT_TOKENS,
        "completion_tokens": COMPLETION_TOKENS,
        "cached_tokens": CACHED_TOKENS,
        "content": CONTENT,
    }
    server = FakeOpenAIServer(
        content=CONTENT,
        prompt_tokens=PROMPT_TOKENS,
        completion_tokens=COMPLETION_TOKENS,
        cached_tokens=CACHED_TOKENS,
        first_chunk_delay=FIRST_CHUNK_DELAY,
        chunk_delay=0.005,
    )
    long_server = FakeOpenAIServer(
        prompt_tokens=PROMPT_TOKENS,
        completion_tokens=COMPLETION_TOKENS,
        first_chunk_delay=0.05,
        chunk_delay=0.0,
        stream_chunks=[f" w{i}" for i in range(LONG_STREAM_CHUNKS)],
    )
    with server, long_server:
        client = openai.OpenAI(base_url=server.base_url, api_key="test-key", max_retries=0, timeout=10)
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Say hello"}]

        def stream(c: Any, case: str) -> None:
            with tracer.start_as_current_span(f"case:{case}"):
                chunks = c.chat.completions.create(
                    model="gpt-4o-mini", messages=messages, stream=True, stream_options={"include_usage": True}
                )
                for _ in chunks:
                    pass

        # the first stream in a process pays a one-time client cost (~10 ms): not the server's delay
        stream(client, "warmup")
        with tracer.start_as_current_span("case:chat"):
            client.chat.completions.create(model="gpt-4o-mini", messages=messages, temperature=0.5, max_tokens=50)
        stream(client, "stream")
        facts["stream_first_chunk_ms"] = server.last_request.first_chunk_offset_s * 1000.0
        with tracer.start_as_current_span("case:tool"):
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "Weather in Paris?"}], tools=TOOLS
            )
        with tracer.start_as_current_span("case:error"):
            try:
                client.chat.completions.create(model="error-model", messages=messages)
            except openai.InternalServerError as exc:
                facts["error"] = f"{type(exc).__module__}.{type(exc).__qualname__}"
        long_client = openai.OpenAI(base_url=long_server.base_url, api_key="test-key", max_retries=0, timeout=10)
        stream(long_client, "long_stream")
        client.close()
        long_client.close()

    provider.force_flush(10_000)
    facts["flushed"] = exporter.force_flush(10_000)
    provider.shutdown()
    return facts


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:4])))
