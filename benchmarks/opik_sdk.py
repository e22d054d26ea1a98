"""The app process of the SDK comparison: OTel + an exporter, or Opik's own Python SDK, doing the same work.

Each run is one fresh process that records the same traces (an agent root, an
LLM call with 300-600 B of messages, a tool call; ``sparse`` or ``agent``
shape, as in ``spans.py``) through one of:

* ``otel+opik``: the OpenTelemetry SDK (``TracerProvider`` with its default
  ``BatchSpanProcessor``) and ``OpikSpanExporter`` (the project's venv);
* ``otel+otlp``: the same with the official ``OTLPSpanExporter`` (HTTP/protobuf,
  no compression, its default);
* ``opik-client``: Opik's SDK, ``opik.Opik().trace(...)``, ``trace.span(...)``,
  ``span.end(output=...)``, ``trace.end(...)``: the start/end pattern of a
  tracing API (the SDK sends a create, then an update per ``end()``);
* ``opik-client-whole``: the same client with every field given at creation
  (``end_time`` and output included), the pattern the SDK recommends;
* ``opik-track``: Opik's ``@track`` decorator on three nested functions, the
  usage its documentation leads with.

The Opik variants run in their own venv (``.venvs/bench-opik``, from
``benchmarks/requirements-opik.txt``), pointed at the local sink with
``OPIK_URL_OVERRIDE``; the sink answers every endpoint they call. Opik's
Sentry and analytics reporting are turned off (they would reach the internet),
and so is its warning about ``end()`` shortly after creation (it would print
once per span here, where calls take microseconds instead of seconds).

The contents are drawn before the measured window in both cases (the OTel
apps replay pre-built spans' names, times and attributes through their own
tracer). It warms up on a few traces, then measures ``time.process_time()`` (every
thread of the process) from the first trace to the end of the flush, and
prints ``RESULT {json}``. ``run.py --sections opik-sdk`` alternates the
variants in rounds.

    python benchmarks/opik_sdk.py VARIANT --shape sparse --traces 300 --sink http://127.0.0.1:PORT
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import sys
import time
import urllib.request
from typing import Any, Callable, Dict, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from content import messages_in, messages_out, text  # noqa: E402

OTEL_VARIANTS = ("otel+opik", "otel+otlp")
OPIK_VARIANTS = ("opik-client", "opik-client-whole", "opik-track")
VARIANTS = OTEL_VARIANTS + OPIK_VARIANTS
SPANS_PER_TRACE = 3


def _sink_stats(url: str) -> Dict[str, Any]:
    with urllib.request.urlopen(url + "/stats", timeout=5) as r:
        return json.loads(r.read())


# -- OpenTelemetry ---------------------------------------------------------------------
def _otel(variant: str, shape: str, n_traces: int, warm: int, sink: str) -> Dict[str, Any]:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from spans import SpanFactory

    if variant == "otel+opik":
        from opentelemetry.exporter.opik import OpikSpanExporter
        from opentelemetry.exporter.opik._config import resolve_settings

        exporter: Any = OpikSpanExporter(
            settings=resolve_settings({"url": sink + "/api"}, env={"OPIK_CONFIG_PATH": os.devnull})
        )
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=sink + "/v1/traces")
    # the traces' names, times and attributes are drawn before the window; in it, the app's tracer
    # starts, fills and ends each span, as instrumentation does (contents are not generated there)
    factory = SpanFactory(seed=3)
    traces = [factory.build(shape, 1) for _ in range(warm + n_traces)]
    provider = TracerProvider(resource=factory.provider.resource)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracer = provider.get_tracer("bench.agent", "0.3.1")
    done = [0]

    def flush() -> None:
        provider.force_flush()
        getattr(exporter, "force_flush", lambda: True)()

    def record(n: int) -> None:
        for trace in traces[done[0] : done[0] + n]:
            _replay(tracer, trace)
        done[0] += n

    record(warm)
    flush()
    before = exporter.stats() if variant == "otel+opik" else None
    res = _measure(lambda: record(n_traces), flush, sink)
    if before is not None:
        from opentelemetry.exporter.opik import _compress, _json

        res["encoders"] = {
            "json": "orjson" if _json.using_orjson() else "stdlib",
            "gzip": "isal" if _compress.using_isal() else "zlib",
        }
        after = exporter.stats()
        res["delivered_spans"] = after["spans_exported"] - before["spans_exported"]
        res["dropped"] = {
            k: v - before["dropped"].get(k, 0) for k, v in after["dropped"].items() if v - before["dropped"].get(k, 0)
        }
    provider.shutdown()
    return res


def _replay(tracer: Any, spans: List[Any]) -> None:
    """One trace again through ``tracer``: the root started first, each child started and ended, the root ended."""
    from opentelemetry import trace as trace_api

    root = next(s for s in spans if s.parent is None)
    top = tracer.start_span(root.name, kind=root.kind, attributes=dict(root.attributes), start_time=root.start_time)
    ctx = trace_api.set_span_in_context(top)
    for s in spans:
        if s is not root:
            child = tracer.start_span(
                s.name, context=ctx, kind=s.kind, attributes=dict(s.attributes), start_time=s.start_time
            )
            child.end(end_time=s.end_time)
    top.end(end_time=root.end_time)


# -- Opik's SDK ------------------------------------------------------------------------------
class _Contents:
    """The fields of one trace, as the OTel shapes carry them, in Opik's terms."""

    def __init__(self, rng: random.Random, shape: str) -> None:
        size = rng.randint(300, 600)
        in_size = size * 2 // 3
        self.llm_input = {"messages": json.loads(messages_in(rng, in_size))}
        self.llm_output = {"messages": json.loads(messages_out(rng, size - in_size, True))}
        self.usage = {"prompt_tokens": rng.randint(50, 2000), "completion_tokens": rng.randint(10, 500)}
        self.usage["total_tokens"] = self.usage["prompt_tokens"] + self.usage["completion_tokens"]
        self.tool_input = {"city": "Paris", "unit": "celsius"}
        self.tool_output = {"temperature": rng.randint(-5, 35), "conditions": "light rain"}
        conv = f"conv-{rng.getrandbits(32):08x}"
        self.root_metadata: Dict[str, Any] = {
            "agent_name": "travel_agent",
            "provider": "openai",
            "model": "gpt-4o-mini",
            "conversation_id": conv,
        }
        self.llm_metadata: Dict[str, Any] = {}
        self.tool_metadata: Dict[str, Any] = {"tool_call_id": f"call_{rng.getrandbits(48):012x}"}
        self.root_input: Optional[Dict[str, Any]] = None
        self.root_output: Optional[Dict[str, Any]] = None
        if shape == "agent":  # about 10 attributes per span: more metadata, the agent's own messages
            self.root_input = {"messages": [{"role": "user", "content": text(rng, rng.randint(60, 160))}]}
            self.root_output = {"messages": [{"role": "assistant", "content": text(rng, rng.randint(120, 260))}]}
            self.root_metadata["agent_id"] = "agent-7"
            self.llm_metadata = {
                "response_id": f"chatcmpl-{rng.getrandbits(64):016x}",
                "response_model": "gpt-4o-mini-2024-07-18",
                "finish_reasons": ["tool_calls"],
                "temperature": 0.2,
                "max_tokens": 512,
                "conversation_id": conv,
                "server_address": "api.openai.com",
                "server_port": 443,
            }
            self.tool_metadata["tool_type"] = "function"


def _opik(variant: str, shape: str, n_traces: int, warm: int, sink: str) -> Dict[str, Any]:
    import opik

    rng = random.Random(3)
    client = opik.Opik(project_name="bench")

    def client_start_end(c: _Contents) -> None:
        trace = client.trace(name="invoke_agent travel_agent", input=c.root_input, metadata=c.root_metadata)
        llm = trace.span(
            name="chat gpt-4o-mini",
            type="llm",
            input=c.llm_input,
            model="gpt-4o-mini",
            provider="openai",
            metadata=c.llm_metadata,
        )
        llm.end(output=c.llm_output, usage=c.usage)
        tool = trace.span(name="execute_tool get_weather", type="tool", input=c.tool_input, metadata=c.tool_metadata)
        tool.end(output=c.tool_output)
        trace.end(output=c.root_output)

    def client_whole(c: _Contents) -> None:
        t0 = datetime.datetime.now(datetime.timezone.utc)
        step = datetime.timedelta(milliseconds=1)
        trace = client.trace(
            name="invoke_agent travel_agent",
            input=c.root_input,
            output=c.root_output,
            metadata=c.root_metadata,
            start_time=t0,
            end_time=t0 + 4 * step,
        )
        trace.span(
            name="chat gpt-4o-mini",
            type="llm",
            input=c.llm_input,
            output=c.llm_output,
            model="gpt-4o-mini",
            provider="openai",
            usage=c.usage,
            metadata=c.llm_metadata,
            start_time=t0 + step,
            end_time=t0 + 2 * step,
        )
        trace.span(
            name="execute_tool get_weather",
            type="tool",
            input=c.tool_input,
            output=c.tool_output,
            metadata=c.tool_metadata,
            start_time=t0 + 2 * step,
            end_time=t0 + 3 * step,
        )

    @opik.track(name="chat gpt-4o-mini", type="llm")
    def chat(messages: Dict[str, Any], c: _Contents) -> Dict[str, Any]:
        opik.opik_context.update_current_span(
            model="gpt-4o-mini", provider="openai", usage=c.usage, metadata=c.llm_metadata
        )
        return c.llm_output

    @opik.track(name="execute_tool get_weather", type="tool")
    def get_weather(city: str, unit: str, c: _Contents) -> Dict[str, Any]:
        opik.opik_context.update_current_span(metadata=c.tool_metadata)
        return c.tool_output

    @opik.track(name="invoke_agent travel_agent")
    def agent(question: Optional[Dict[str, Any]], c: _Contents) -> Optional[Dict[str, Any]]:
        opik.opik_context.update_current_trace(metadata=c.root_metadata)
        chat(c.llm_input, c)
        get_weather(c.tool_input["city"], c.tool_input["unit"], c)
        return c.root_output

    one: Callable[[_Contents], None] = {
        "opik-client": client_start_end,
        "opik-client-whole": client_whole,
        "opik-track": lambda c: agent(c.root_input, c) and None,
    }[variant]

    def flush() -> None:
        if variant == "opik-track":
            opik.flush_tracker()
        else:
            client.flush()

    contents = [_Contents(rng, shape) for _ in range(warm + n_traces)]  # drawn before the window
    done = [0]

    def record(n: int) -> None:
        for c in contents[done[0] : done[0] + n]:
            one(c)
        done[0] += n

    record(warm)
    flush()
    res = _measure(lambda: record(n_traces), flush, sink)
    last = getattr(client, "last_flush_result", None)
    if last is not None:
        res["flush_result"] = str(last)[:500]
    client.end()
    return res


def _measure(work: Callable[[], None], flush: Callable[[], None], sink: str) -> Dict[str, Any]:
    s0 = _sink_stats(sink)
    w0 = time.perf_counter()
    c0 = time.process_time()
    work()
    flush()
    c1 = time.process_time()
    w1 = time.perf_counter()
    s1 = _sink_stats(sink)
    requests = {k: v - s0["requests"].get(k, 0) for k, v in s1["requests"].items() if v - s0["requests"].get(k, 0)}
    sent = sum(s1["bytes"].values()) - sum(s0["bytes"].values())
    return {"cpu_s": c1 - c0, "wall_s": w1 - w0, "requests": requests, "bytes_sent": sent}


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("variant", choices=VARIANTS)
    ap.add_argument("--shape", choices=("sparse", "agent"), default="sparse")
    ap.add_argument("--traces", type=int, default=300)
    ap.add_argument("--warm", type=int, default=20)
    ap.add_argument("--sink", required=True)
    ap.add_argument("--cpu", type=int, default=None, help="pin this process to a CPU")
    args = ap.parse_args(argv)
    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    run = _otel if args.variant in OTEL_VARIANTS else _opik
    res = run(args.variant, args.shape, args.traces, args.warm, args.sink)
    spans = args.traces * SPANS_PER_TRACE
    res.update(
        variant=args.variant,
        shape=args.shape,
        traces=args.traces,
        spans=spans,
        cpu_ms_per_1000_spans=res["cpu_s"] / spans * 1e6,
    )
    sys.stdout.write("RESULT " + json.dumps(res) + "\n")
    sys.stdout.flush()
    os._exit(0)  # no lingering sender or replay thread holds the process open


if __name__ == "__main__":
    sys.exit(main())
