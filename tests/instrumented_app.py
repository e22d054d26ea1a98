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

Cases: ``warmup``, ``chat``, ``stream``, ``tool`` (one call answered by a tool
call), ``tool_round_trip`` (tool call -> the app runs the tool and sends its
result -> the final text answer: two LLM calls in one trace), ``image`` (a PNG
data URL next to the question), ``error`` (the server answers 500),
``long_stream`` and ``turn1``..``turn3`` (one conversation: each turn sends the
whole history, the root span carries ``gen_ai.conversation.id``).
"""

from __future__ import annotations

import base64
import json
import os
import struct
import sys
import zlib
from pathlib import Path
from typing import Any, Dict, List

# before any instrumentation is imported: the latest GenAI conventions, content on spans
os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] = "gen_ai_latest_experimental"
os.environ["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = "SPAN_ONLY"
os.environ["TRACELOOP_TRACE_CONTENT"] = "true"

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fake_openai import FakeOpenAIServer  # noqa: E402
from numbers_check import served  # noqa: E402
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


TOOL_QUESTION = "Weather in Paris?"
TOOL_RESULT = "Sunny, 21 C"
TOOL_ANSWER = "It is sunny in Paris, 21 C."
IMAGE_QUESTION = "What is in this image?"
TURNS = [
    ("My name is Ada.", "Nice to meet you, Ada."),
    ("What is my name?", "Your name is Ada."),
    ("Spell it backwards.", "A-d-A."),
]


def tiny_png() -> str:
    """A real 2x2 red PNG as a data URL."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + b"\xff\x00\x00" * 2 for _ in range(2))
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _instrumentor(which: str) -> Any:
    if which == "openai_v2":
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
    elif which == "openinference":
        from openinference.instrumentation.openai import OpenAIInstrumentor  # type: ignore[no-redef]
    elif which == "traceloop":
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor  # type: ignore[no-redef]

        # no image uploader: data-URL images stay inline as semconv ``blob`` parts. The default
        # (``lambda *args: ""``) is awaited, raises, and 0.62.4 then drops the whole input silently.
        return OpenAIInstrumentor(upload_base64_image=None)
    else:
        raise SystemExit(f"unknown instrumentation {which!r}")
    return OpenAIInstrumentor()


def _question(messages: List[Dict[str, Any]]) -> str:
    """The last user message's text (its last text part when it has parts)."""
    content = [m for m in messages if m["role"] == "user"][-1]["content"]
    return content if isinstance(content, str) else [p for p in content if p["type"] == "text"][-1]["text"]


def main(which: str, url: str, project: str) -> Dict[str, Any]:
    exporter = OpikSpanExporter(url=url, project_name=project, timeout=5)
    provider = TracerProvider(resource=Resource.create({"service.name": f"instrumented-{which}"}))
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=200))
    _instrumentor(which).instrument(tracer_provider=provider)
    import openai

    tracer = provider.get_tracer("tests.cases")
    #: per case, every LLM call in order: what was asked, what the client received
    calls: Dict[str, List[Dict[str, Any]]] = {}
    facts: Dict[str, Any] = {
        "prompt_tokens": PROMPT_TOKENS,
        "completion_tokens": COMPLETION_TOKENS,
        "cached_tokens": CACHED_TOKENS,
        "content": CONTENT,
        "calls": calls,
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

        def chat(case: str, history: List[Dict[str, Any]], c: Any = client, **kwargs: Any) -> Any:
            """One call; the answer as received (streamed text joined; ``None`` for a tool call)."""
            record: Dict[str, Any] = {"question": _question(history), "messages": json.loads(json.dumps(history))}
            calls.setdefault(case, []).append(record)
            if kwargs.get("stream"):
                pieces = []
                for chunk in c.chat.completions.create(model="gpt-4o-mini", messages=history, **kwargs):
                    if chunk.choices and chunk.choices[0].delta.content:
                        pieces.append(chunk.choices[0].delta.content)
                record["answer"] = "".join(pieces)
                return record["answer"]
            resp = c.chat.completions.create(model=kwargs.pop("model", "gpt-4o-mini"), messages=history, **kwargs)
            msg = resp.choices[0].message
            record["answer"] = msg.content
            if msg.tool_calls:
                record["tool_calls"] = [
                    {"id": t.id, "name": t.function.name, "arguments": t.function.arguments} for t in msg.tool_calls
                ]
            return msg

        def stream(c: Any, case: str) -> None:
            with tracer.start_as_current_span(f"case:{case}"):
                chat(case, messages, c, stream=True, stream_options={"include_usage": True})

        # the first stream in a process pays a one-time client cost (~10 ms): not the server's delay
        stream(client, "warmup")
        with tracer.start_as_current_span("case:chat"):
            chat("chat", messages, temperature=0.5, max_tokens=50)
        stream(client, "stream")
        facts["stream_first_chunk_ms"] = server.last_request.first_chunk_offset_s * 1000.0
        with tracer.start_as_current_span("case:tool"):
            chat("tool", [{"role": "user", "content": TOOL_QUESTION}], tools=TOOLS)

        # a tool round trip: the model calls the tool, the app runs it and sends the result back
        with tracer.start_as_current_span("case:tool_round_trip"):
            history: List[Dict[str, Any]] = [{"role": "user", "content": TOOL_QUESTION}]
            call = chat("tool_round_trip", history, tools=TOOLS).tool_calls[0]
            history.append({
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": call.id, "type": "function",
                                "function": {"name": call.function.name, "arguments": call.function.arguments}}],
            })
            history.append({"role": "tool", "tool_call_id": call.id, "content": TOOL_RESULT})
            server.config.content = TOOL_ANSWER
            try:
                chat("tool_round_trip", history, tools=TOOLS)
            finally:
                server.config.content = CONTENT

        with tracer.start_as_current_span("case:image"):
            facts["image_url"] = tiny_png()
            chat("image", [{"role": "user", "content": [
                {"type": "text", "text": IMAGE_QUESTION},
                {"type": "image_url", "image_url": {"url": facts["image_url"]}},
            ]}])

        # one conversation, three traces: each turn sends the whole history so far
        facts["conversation_id"] = f"conv-{which}"
        conversation: List[Dict[str, Any]] = [{"role": "system", "content": SYSTEM}]
        for n, (question, reply) in enumerate(TURNS, 1):
            with tracer.start_as_current_span(f"case:turn{n}", attributes={"gen_ai.conversation.id": f"conv-{which}"}):
                conversation.append({"role": "user", "content": question})
                server.config.content = reply
                try:
                    answer = chat(f"turn{n}", conversation)
                finally:
                    server.config.content = CONTENT
                conversation.append({"role": "assistant", "content": answer.content})

        with tracer.start_as_current_span("case:error"):
            try:
                chat("error", messages, model="error-model")
            except openai.InternalServerError as exc:
                facts["error"] = f"{type(exc).__module__}.{type(exc).__qualname__}"
        long_client = openai.OpenAI(base_url=long_server.base_url, api_key="test-key", max_retries=0, timeout=10)
        stream(long_client, "long_stream")
        facts["served"] = served(server) + served(long_server)
        client.close()
        long_client.close()

    provider.force_flush(10_000)
    facts["flushed"] = exporter.force_flush(10_000)
    provider.shutdown()
    return facts


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:4])))
