"""OTLP logs through ``opik-otel serve``: ``/v1/logs`` and the gRPC ``LogsService`` join GenAI content to its spans;
``/v1/metrics`` and ``MetricsService`` answer success and discard.

Real sidecar subprocess, the official OTLP/HTTP span and log exporters in the app (``tests/logs_app.py``),
real openai-v2, the fake OpenAI server and the Opik stand-in.
"""

from __future__ import annotations

import gzip
import json
import time
from typing import Any, Dict

import httpx
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest, ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opik_standin import OpikStandin
from sidecar_helpers import SidecarProcess, clean_env, make_spans, otlp_json, wait_until
from test_logs_inprocess import check_calls, llm_spans, no_duplicated_messages, run_app


def _complete(opik: OpikStandin, n: int) -> bool:
    spans = llm_spans(opik)
    return len(spans) == n and all(s.get("output") or s.get("error_info") for s in spans)


@pytest.mark.parametrize("mode", ["EVENT_ONLY", "SPAN_AND_EVENT", "legacy"])
def test_openai_v2_through_the_sidecar(mode: str) -> None:
    with OpikStandin() as opik, SidecarProcess(opik.url, env=clean_env(OPIK_PROJECT_NAME="logs-test")) as sidecar:
        out = run_app("sidecar", mode, sidecar.url, env=sidecar.client_env())
        wait_until(lambda: _complete(opik, 5), 20, "five complete LLM spans")
        sidecar.drain()
        assert check_calls(opik, out["calls"]) == (5, 5)
        no_duplicated_messages(opik, out["calls"])
        assert not opik.duplicates()
        for trace in opik.traces.values():
            assert trace["input"], trace


def test_openai_v2_through_the_sidecar_over_grpc() -> None:
    with OpikStandin() as opik, SidecarProcess(opik.url, env=clean_env(OPIK_PROJECT_NAME="logs-test")) as sidecar:
        out = run_app("sidecar_grpc", "EVENT_ONLY", sidecar.grpc_url, env=sidecar.client_env())
        wait_until(lambda: _complete(opik, 5), 20, "five complete LLM spans")
        sidecar.drain()
        assert check_calls(opik, out["calls"]) == (5, 5)
        no_duplicated_messages(opik, out["calls"])
        assert not opik.duplicates()
        assert sidecar.metric("opik_otel_log_records_joined_total") == 5


def _llm_span_json() -> Dict[str, Any]:
    def build(tracer: Any) -> None:
        with tracer.start_as_current_span(
            "chat gpt-4o-mini",
            attributes={"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini", "gen_ai.provider.name": "openai"},
        ):
            pass

    return otlp_json(make_spans(build))


def _logs_json(trace_id: str, span_id: str, extra: Any = None) -> Dict[str, Any]:
    records = [
        {
            "timeUnixNano": str(time.time_ns()),
            "eventName": "gen_ai.user.message",
            "traceId": trace_id,
            "spanId": span_id,
            "attributes": [{"key": "gen_ai.system", "value": {"stringValue": "openai"}}],
            "body": {"kvlistValue": {"values": [{"key": "content", "value": {"stringValue": "Ping?"}}]}},
        },
        {
            "timeUnixNano": str(time.time_ns()),
            "traceId": trace_id,
            "spanId": span_id,
            "attributes": [{"key": "event.name", "value": {"stringValue": "gen_ai.choice"}}],
            "body": {
                "kvlistValue": {
                    "values": [
                        {"key": "index", "value": {"intValue": "0"}},
                        {"key": "finish_reason", "value": {"stringValue": "stop"}},
                        {
                            "key": "message",
                            "value": {
                                "kvlistValue": {
                                    "values": [
                                        {"key": "role", "value": {"stringValue": "assistant"}},
                                        {"key": "content", "value": {"stringValue": "Pong."}},
                                    ]
                                }
                            },
                        },
                    ]
                }
            },
        },
    ]
    if extra is not None:
        records.append(extra)
    return {"resourceLogs": [{"resource": {}, "scopeLogs": [{"scope": {"name": "app"}, "logRecords": records}]}]}


def test_json_gzip_logs_join_a_span_already_sent_with_partial_success() -> None:
    with OpikStandin() as opik, SidecarProcess(opik.url, env=clean_env(OPIK_PROJECT_NAME="logs-test")) as sidecar:
        spans = _llm_span_json()
        r = httpx.post(sidecar.traces_url, json=spans, timeout=10)
        assert r.status_code == 200
        wait_until(lambda: len(opik.spans) == 1, 10, "the span")
        sp = spans["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
        bad = {"traceId": "zz", "spanId": sp["spanId"], "eventName": "gen_ai.user.message"}
        body = gzip.compress(json.dumps(_logs_json(sp["traceId"], sp["spanId"], bad)).encode())
        r = httpx.post(
            sidecar.url + "/v1/logs",
            content=body,
            headers={"content-type": "application/json", "content-encoding": "gzip"},
            timeout=10,
        )
        assert r.status_code == 200, r.text
        partial = r.json()["partialSuccess"]
        assert partial["rejectedLogRecords"] == "1" and "traceId" in partial["errorMessage"]
        wait_until(lambda: any(s.get("output") for s in opik.spans.values()), 10, "the span sent again, complete")
        sidecar.drain()
        assert len(opik.spans) == 1 and not opik.duplicates()
        (span,) = opik.spans.values()
        assert span["input"] == {"messages": [{"role": "user", "content": "Ping?"}]}
        assert span["output"]["choices"][0]["message"]["content"] == "Pong."


def test_logs_limits_and_auth_are_those_of_traces() -> None:
    with OpikStandin() as opik, SidecarProcess(opik.url, "--auth-token", "s3cret", "--max-body-bytes", "2048") as sidecar:
        body = json.dumps(_logs_json("0" * 31 + "1", "0" * 15 + "1")).encode()
        r = httpx.post(sidecar.url + "/v1/logs", content=body, headers={"content-type": "application/json"}, timeout=10)
        assert r.status_code == 401
        auth = {"authorization": "Bearer s3cret", "content-type": "application/json"}
        r = httpx.post(sidecar.url + "/v1/logs", content=body + b" " * 4096, headers=auth, timeout=10)
        assert r.status_code == 413
        r = httpx.post(sidecar.url + "/v1/logs", content=b"{not json", headers=auth, timeout=10)
        assert r.status_code == 400
        r = httpx.post(sidecar.url + "/v1/logs", content=body, headers=auth, timeout=10)
        assert r.status_code == 200 and r.json() == {}


def test_metrics_are_accepted_and_discarded_and_unknown_paths_are_404() -> None:
    with OpikStandin() as opik, SidecarProcess(opik.url) as sidecar:
        pb = ExportMetricsServiceRequest().SerializeToString()
        r = httpx.post(sidecar.url + "/v1/metrics", content=pb, headers={"content-type": "application/x-protobuf"}, timeout=10)
        assert r.status_code == 200
        r = httpx.post(sidecar.url + "/v1/metrics", json={"resourceMetrics": []}, timeout=10)
        assert r.status_code == 200 and r.json() == {}
        r = httpx.post(sidecar.url + "/v1/profiles", json={}, timeout=10)
        assert r.status_code == 404
        assert sidecar.grpc_port is not None
        with sidecar.grpc_channel() as channel:
            metrics = channel.unary_unary("/opentelemetry.proto.collector.metrics.v1.MetricsService/Export")
            assert metrics(pb, timeout=10) == b""
            logs = channel.unary_unary("/opentelemetry.proto.collector.logs.v1.LogsService/Export")
            answer = ExportLogsServiceResponse.FromString(logs(ExportLogsServiceRequest().SerializeToString(), timeout=10))
            assert not answer.HasField("partial_success")
        assert sidecar.metric("opik_otel_metrics_requests_discarded_total") == 3
        assert not opik.spans
