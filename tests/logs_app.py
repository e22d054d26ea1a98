"""An app whose GenAI content travels in OTel log records (run by tests/test_logs_*.py as a subprocess).

``python logs_app.py <scenario> <mode> <opik_url|otlp_endpoint> <project>``; prints one JSON line.

* scenario ``inproc``: ``OpikSpanExporter`` under a ``BatchSpanProcessor`` and ``OpikLogExporter`` under a
  ``BatchLogRecordProcessor`` (the global LoggerProvider); ``sidecar``: the official OTLP/HTTP span and log
  exporters pointed at ``opik-otel serve`` (``sidecar_grpc``: the OTLP/gRPC ones, log records first); ``late``: the span is sent (window 0.3 s, nothing arrived) before the
  log processor exports its records; ``early``: the log records are exported before their spans;
  ``evaluation``: one call, then a ``gen_ai.evaluation.result`` record naming its ``gen_ai.response.id``.
* mode: ``EVENT_ONLY`` / ``SPAN_AND_EVENT`` (openai-v2, latest conventions), ``legacy`` (openai-v2's v1.30 event
  path: util-genai 1.1b0 always reports experimental mode, so the instrumentation's own selector is set to the
  legacy path before instrumenting), ``traceloop`` (Traceloop's OpenAI instrumentation, ``use_attributes=False``).
"""

from __future__ import annotations

import json
import os
import sys
import time

scenario, mode, target, project = sys.argv[1:5]

if mode in ("EVENT_ONLY", "SPAN_AND_EVENT"):
    os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] = "gen_ai_latest_experimental"
    os.environ["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = mode
elif mode == "legacy":
    os.environ["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = "true"
if scenario == "late":
    os.environ["OTEL_EXPORTER_OPIK_LOG_JOIN_WINDOW"] = "0.3"
os.environ.setdefault("OPIK_CONFIG_PATH", "/dev/null")

import openai  # noqa: E402
from fake_openai import FakeOpenAIServer  # noqa: E402
from opentelemetry.sdk._logs import LoggerProvider  # noqa: E402
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: E402

from opentelemetry import _logs, trace  # noqa: E402

resource = Resource.create({"service.name": "logs-app"})
tp = TracerProvider(resource=resource)
lp = LoggerProvider(resource=resource)
span_exporter = None
log_exporter = None
if scenario == "sidecar":
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    tp.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=target + "/v1/traces", headers={"projectName": project})))
    lp.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter(endpoint=target + "/v1/logs")))
elif scenario == "files":  # OTLP files, as a Collector's file exporter writes them (for opik-otel import)
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    mem_spans = InMemorySpanExporter()
    mem_logs = InMemoryLogRecordExporter()
    tp.add_span_processor(BatchSpanProcessor(mem_spans))
    lp.add_log_record_processor(BatchLogRecordProcessor(mem_logs))
elif scenario == "sidecar_grpc":
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter

    insecure = not target.startswith("https://")  # TLS: the CA from OTEL_EXPORTER_OTLP_CERTIFICATE
    tp.add_span_processor(BatchSpanProcessor(GrpcSpanExporter(endpoint=target, insecure=insecure, headers={"projectname": project})))
    lp.add_log_record_processor(BatchLogRecordProcessor(GrpcLogExporter(endpoint=target, insecure=insecure)))
else:
    from opentelemetry.exporter.opik import OpikLogExporter, OpikSpanExporter

    span_exporter = OpikSpanExporter(url=target, project_name=project)
    log_exporter = OpikLogExporter()
    # long schedules: the test decides when each half is exported
    tp.add_span_processor(BatchSpanProcessor(span_exporter, schedule_delay_millis=60_000))
    lp.add_log_record_processor(BatchLogRecordProcessor(log_exporter, schedule_delay_millis=60_000))
trace.set_tracer_provider(tp)
if scenario != "late":  # late: the exporter's flush must not be able to pull the log records in first
    _logs.set_logger_provider(lp)

if mode == "traceloop":
    from opentelemetry.instrumentation.openai import OpenAIInstrumentor as TraceloopInstrumentor

    TraceloopInstrumentor(use_attributes=False).instrument(tracer_provider=tp, logger_provider=lp)
else:
    import opentelemetry.instrumentation.openai_v2 as openai_v2

    if mode == "legacy":
        openai_v2.is_experimental_mode = lambda: False  # type: ignore[attr-defined]
    openai_v2.OpenAIInstrumentor().instrument(tracer_provider=tp, logger_provider=lp)

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather of a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]

calls = []
with FakeOpenAIServer() as server:
    client = openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0)
    if scenario == "nested":  # an app span over the call: the trace row is the root's
        q = "What is the tallest mountain?"
        with tp.get_tracer("logs-app").start_as_current_span("answer-question"):
            r = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": q}])
        calls.append({"kind": "chat", "question": q, "answer": r.choices[0].message.content})
    elif scenario in ("late", "early", "evaluation"):
        q = os.environ.get("LOGS_APP_QUESTION", "What is 2+2?")
        r = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": q}])
        calls.append({"kind": "chat", "question": q, "answer": r.choices[0].message.content, "response_id": r.id})
        if scenario == "evaluation":
            from opentelemetry._logs import LogRecord

            lp.get_logger("evaluator").emit(
                LogRecord(
                    event_name="gen_ai.evaluation.result",
                    attributes={
                        "gen_ai.evaluation.name": "correctness",
                        "gen_ai.evaluation.score.value": 0.75,
                        "gen_ai.evaluation.score.label": "mostly",
                        "gen_ai.evaluation.explanation": "close enough",
                        "gen_ai.response.id": r.id,
                    },
                )
            )
    else:
        q = "What is the capital of France?"
        msgs = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": q}]
        r = client.chat.completions.create(model="gpt-4o-mini", messages=msgs)
        calls.append({"kind": "chat", "question": q, "answer": r.choices[0].message.content})
        q2 = "Tell me a short story."
        stream = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": q2}], stream=True, stream_options={"include_usage": True}
        )
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        calls.append({"kind": "stream", "question": q2, "answer": text})
        q3 = "What is the weather in Paris?"
        msgs3 = [{"role": "user", "content": q3}]
        r1 = client.chat.completions.create(model="gpt-4o-mini", messages=msgs3, tools=TOOLS)
        tc = r1.choices[0].message.tool_calls[0]
        calls.append({"kind": "tool_call", "question": q3, "answer": None, "tool": tc.function.name})
        msgs3 += [
            {"role": "assistant", "content": None, "tool_calls": [tc.model_dump()]},
            {"role": "tool", "tool_call_id": tc.id, "content": "Sunny, 22 C"},
        ]
        r2 = client.chat.completions.create(model="gpt-4o-mini", messages=msgs3, tools=TOOLS)
        calls.append({"kind": "tool_answer", "question": q3, "answer": r2.choices[0].message.content})
        try:
            client.chat.completions.create(model="error-model", messages=[{"role": "user", "content": "Fail, please."}])
        except openai.APIError:
            calls.append({"kind": "error", "question": "Fail, please.", "answer": None})

if scenario == "sidecar_grpc":  # logs first this time: the sidecar holds nothing yet, then joins on arrival
    lp.force_flush()
    tp.force_flush()
elif scenario == "early":
    lp.force_flush()  # the log records reach the join before their spans
    time.sleep(0.2)
    tp.force_flush()
elif scenario == "late":
    tp.force_flush()  # the span is held for 0.3 s, then sent without content
    time.sleep(0.8)
    assert span_exporter is not None
    span_exporter.force_flush()
    lp.force_flush()  # now the content comes: the span is sent again, complete
else:
    tp.force_flush()
    lp.force_flush()
if scenario == "files":
    from google.protobuf.json_format import MessageToDict
    from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from sidecar_helpers import _hex_ids

    spans_msg = encode_spans(mem_spans.get_finished_spans())
    logs_msg = encode_logs(mem_logs.get_finished_logs())
    with open(os.path.join(target, "traces.jsonl"), "w") as fh:
        fh.write(json.dumps(_hex_ids(MessageToDict(spans_msg))) + "\n")
    with open(os.path.join(target, "logs.jsonl"), "w") as fh:
        fh.write(json.dumps(_hex_ids(MessageToDict(logs_msg))) + "\n")
    with open(os.path.join(target, "traces.pb"), "wb") as fb:
        fb.write(spans_msg.SerializeToString())
    with open(os.path.join(target, "logs.pb"), "wb") as fb:
        fb.write(logs_msg.SerializeToString())
stats = {}
if span_exporter is not None:
    span_exporter.force_flush()
    assert log_exporter is not None
    stats = log_exporter.stats()
tp.shutdown()
lp.shutdown()
print(json.dumps({"calls": calls, "log_stats": stats}, default=str))
