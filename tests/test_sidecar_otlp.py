"""``opik-otel serve`` as a subprocess, fed by the official OTLP exporters, OTLP/JSON and the OTel JS SDK.

Every span must reach the Opik stand-in mapped exactly as the in-process
``OpikSpanExporter`` maps the same spans (same ids, same rows).
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import SpanKind, Status, StatusCode
from opik_standin import OpikStandin
from sidecar_helpers import (
    SidecarProcess,
    TransportClient,
    make_spans,
    otlp_json,
    protobuf_body,
    rows_without_volatile,
    wait_until,
)

from opentelemetry.exporter.opik import OpikSpanExporter

HTTP = TransportClient(timeout=30)


@pytest.fixture(scope="module")
def opik_mod() -> Iterator[OpikStandin]:
    with OpikStandin() as standin:
        yield standin


@pytest.fixture(scope="module")
def sidecar(opik_mod: OpikStandin) -> Iterator[SidecarProcess]:
    with SidecarProcess(opik_mod.url) as proc:
        yield proc


@pytest.fixture
def opik(opik_mod: OpikStandin, sidecar: SidecarProcess) -> OpikStandin:
    sidecar.drain()
    opik_mod.clear()
    return opik_mod


def _agent_trace(tracer: Any, n_tools: int = 2, tag: str = "") -> None:
    """An agent root, an LLM call with model/usage/messages, tool calls, an error: what the mapping reads."""
    with tracer.start_as_current_span(
        f"invoke_agent planner{tag}",
        attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner", "gen_ai.conversation.id": "conv-1"},
    ):
        with tracer.start_as_current_span(
            "chat gpt-4o-mini",
            kind=SpanKind.CLIENT,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
                "gen_ai.usage.input_tokens": 31,
                "gen_ai.usage.output_tokens": 7,
                "gen_ai.response.finish_reasons": ("stop",),
                "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]}]),
                "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": "Mild."}]}]),
            },
        ):
            pass
        for i in range(n_tools):
            with tracer.start_as_current_span(
                f"execute_tool lookup_{i}",
                attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": f"lookup_{i}", "gen_ai.tool.call.arguments": '{"q": 1}'},
            ) as tool:
                if i == 1:
                    tool.set_status(Status(StatusCode.ERROR, "tool failed"))
                    tool.record_exception(RuntimeError("tool failed"))


def _reference_rows(spans: List[Any], batches: Optional[List[List[Any]]] = None) -> Dict[str, Dict[str, Dict[str, Any]]]:
    """What the in-process exporter stores for the same spans, exported in the same batches.

    The batching matters: without the tracestate entry a trace's id timestamp is the
    earliest start known when the trace is first seen, in whichever batch that is.
    """
    with OpikStandin() as ref:
        exporter = OpikSpanExporter(url=ref.url)
        for batch in batches or [spans]:
            assert exporter.export(batch) == SpanExportResult.SUCCESS
        assert exporter.force_flush(10_000)
        exporter.shutdown()
        return {"traces": rows_without_volatile(ref.traces_by_id()), "spans": rows_without_volatile(ref.spans_by_id())}


def _assert_same_as_in_process(
    opik: OpikStandin, spans: List[Any], n_traces: int, batches: Optional[List[List[Any]]] = None
) -> None:
    opik.wait_for_counts(traces=n_traces, spans=len(spans), timeout=15)
    assert opik.duplicates() == {}
    ref = _reference_rows(spans, batches)
    assert len(ref["spans"]) == len(spans)
    assert rows_without_volatile(opik.spans_by_id()) == ref["spans"]
    assert rows_without_volatile(opik.traces_by_id()) == ref["traces"]


@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip], ids=["plain", "gzip"])
def test_official_http_exporter_through_the_sidecar(sidecar: SidecarProcess, opik: OpikStandin, compression: Compression) -> None:
    spans = make_spans(lambda t: [_agent_trace(t, tag=str(i)) for i in range(3)])
    exporter = HttpExporter(endpoint=sidecar.traces_url, compression=compression, timeout=10)
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    exporter.shutdown()
    _assert_same_as_in_process(opik, spans, n_traces=3)
    llm = next(s for s in opik.spans_by_id().values() if s["name"] == "chat gpt-4o-mini")
    assert llm["type"] == "llm" and llm["model"].startswith("gpt-4o-mini") and llm["usage"]["prompt_tokens"] == 31


@pytest.mark.parametrize("gzip_", [False, True], ids=["plain", "gzip"])
def test_official_grpc_exporter_through_the_sidecar(sidecar: SidecarProcess, opik: OpikStandin, gzip_: bool) -> None:
    from grpc import Compression as GrpcCompression

    assert sidecar.grpc_port is not None, sidecar.start_line
    spans = make_spans(lambda t: [_agent_trace(t, tag=str(i)) for i in range(2)])
    exporter = sidecar.otlp_grpc_exporter(
        timeout=10,
        compression=GrpcCompression.Gzip if gzip_ else GrpcCompression.NoCompression,
    )
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    exporter.shutdown()
    _assert_same_as_in_process(opik, spans, n_traces=2)


def test_batch_span_processor_streams_everything(sidecar: SidecarProcess, opik: OpikStandin) -> None:
    """An app as deployed: BatchSpanProcessor, several batches, spans of one trace across batches."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": "bsp-app"}))
    provider.add_span_processor(BatchSpanProcessor(HttpExporter(endpoint=sidecar.traces_url), max_export_batch_size=7, schedule_delay_millis=50))
    tracer = provider.get_tracer("app")
    for i in range(10):
        _agent_trace(tracer, n_tools=3, tag=str(i))
    provider.shutdown()
    opik.wait_for_counts(traces=10, spans=50, timeout=15)
    spans = opik.spans_by_id().values()
    by_id = {s["id"]: s for s in spans}
    assert all(s.get("parent_span_id") in by_id for s in spans if s.get("parent_span_id"))
    assert {s["trace_id"] for s in spans} == set(opik.traces_by_id())


def test_otlp_json_with_length_and_chunked(sidecar: SidecarProcess, opik: OpikStandin) -> None:
    spans = make_spans(lambda t: [_agent_trace(t, tag=str(i)) for i in range(2)])
    first, second = spans[:5], spans[5:]
    body = json.dumps(otlp_json(first)).encode()
    r = HTTP.post(sidecar.traces_url, content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    assert r.json() == {}
    body = json.dumps(otlp_json(second)).encode()
    pieces = [body[i : i + 97] for i in range(0, len(body), 97)]
    r = HTTP.post(sidecar.traces_url, content=iter(pieces), headers={"Content-Type": "application/json; charset=utf-8"})
    assert r.request.headers.get("transfer-encoding") == "chunked" and "content-length" not in r.request.headers
    assert r.status_code == 200, r.text
    gz = gzip.compress(json.dumps(otlp_json(second)).encode())
    r = HTTP.post(sidecar.traces_url, content=iter([gz[:50], gz[50:]]), headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert r.status_code == 200, r.text
    _assert_same_as_in_process(opik, spans, n_traces=2, batches=[first, second])


def test_partial_success_names_the_rejected_spans(sidecar: SidecarProcess, opik: OpikStandin) -> None:
    spans = make_spans(lambda t: _agent_trace(t, n_tools=0))
    doc = otlp_json(spans)
    bad = dict(doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0], spanId="not-hex", name="broken")
    doc["resourceSpans"][0]["scopeSpans"][0]["spans"].append(bad)
    r = HTTP.post(sidecar.traces_url, json=doc)
    assert r.status_code == 200
    partial = r.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "1" and "broken" in partial["errorMessage"] and "spanId" in partial["errorMessage"]
    opik.wait_for_counts(traces=1, spans=2)
    # the same in protobuf: the answer is a protobuf ExportTraceServiceResponse
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
        ExportTraceServiceResponse,
    )

    req = ExportTraceServiceRequest.FromString(protobuf_body(spans))
    req.resource_spans[0].scope_spans[0].spans.add(name="short-id", trace_id=b"\x01" * 4, span_id=b"\x02" * 8, start_time_unix_nano=1)
    r = HTTP.post(sidecar.traces_url, content=req.SerializeToString(), headers={"Content-Type": "application/x-protobuf"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-protobuf"
    resp = ExportTraceServiceResponse.FromString(r.content)
    assert resp.partial_success.rejected_spans == 1 and "short-id" in resp.partial_success.error_message


def test_project_routing(sidecar: SidecarProcess, opik: OpikStandin) -> None:
    """span/resource opik.project_name > projectName header > default."""

    def one(tracer: Any, name: str, attrs: Dict[str, Any]) -> None:
        with tracer.start_as_current_span(name, attributes=attrs):
            pass

    plain = make_spans(lambda t: one(t, "plain", {}))
    pinned = make_spans(lambda t: one(t, "pinned", {"opik.project_name": "from-span"}))
    res = make_spans(lambda t: one(t, "res", {}), resource={"service.name": "svc-x", "opik.project_name": "from-resource"})
    for spans in (plain, pinned, res):
        r = HTTP.post(sidecar.traces_url, content=protobuf_body(spans), headers={"Content-Type": "application/x-protobuf", "projectName": "from-header"})
        assert r.status_code == 200
    default = make_spans(lambda t: one(t, "default", {}), resource={"service.name": "svc-y"})
    assert HTTP.post(sidecar.traces_url, content=protobuf_body(default), headers={"Content-Type": "application/x-protobuf"}).status_code == 200
    opik.wait_for_counts(traces=4, spans=4)
    projects = {t["name"]: t["project_name"] for t in opik.traces_by_id().values()}
    assert projects == {"plain": "from-header", "pinned": "from-span", "res": "from-resource", "default": "Default Project"}


def test_service_name_as_project_switch(opik: OpikStandin) -> None:
    with SidecarProcess(opik.url, "--project-from-service-name", "--project", "fallback", grpc=False) as proc:
        for svc in ("checkout", "unknown_service:python"):
            spans = make_spans(lambda t: t.start_span("op").end(), resource={"service.name": svc})
            assert HTTP.post(proc.traces_url, content=protobuf_body(spans), headers={"Content-Type": "application/x-protobuf"}).status_code == 200
        spans = make_spans(lambda t: t.start_span("op-h").end(), resource={"service.name": "checkout"})
        assert HTTP.post(proc.traces_url, content=protobuf_body(spans), headers={"Content-Type": "application/x-protobuf", "projectName": "hdr"}).status_code == 200
        opik.wait_for_counts(traces=3, spans=3)
    got = sorted((t["name"], t["project_name"]) for t in opik.traces_by_id().values())
    assert got == [("op", "checkout"), ("op", "fallback"), ("op-h", "hdr")]


_NODE_APP = r"""
const api = require('@opentelemetry/api');
const sdk = require('@opentelemetry/sdk-trace-node');
const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-http');
const exporter = new OTLPTraceExporter({ url: process.env.SIDECAR_URL });
let provider;
try {
  provider = new sdk.NodeTracerProvider({ spanProcessors: [new sdk.SimpleSpanProcessor(exporter)] });
} catch (e) { provider = undefined; }
if (!provider || (provider.addSpanProcessor && !provider._config?.spanProcessors)) {
  provider = new sdk.NodeTracerProvider();
  if (provider.addSpanProcessor) provider.addSpanProcessor(new sdk.SimpleSpanProcessor(exporter));
}
provider.register();
const tracer = api.trace.getTracer('node-app', '0.1.0');
tracer.startActiveSpan('invoke_agent node-agent', (root) => {
  root.setAttribute('gen_ai.operation.name', 'invoke_agent');
  tracer.startActiveSpan('chat gpt-4o-mini', { kind: api.SpanKind.CLIENT }, (llm) => {
    llm.setAttributes({
      'gen_ai.operation.name': 'chat', 'gen_ai.request.model': 'gpt-4o-mini',
      'gen_ai.usage.input_tokens': 12, 'gen_ai.usage.output_tokens': 3,
      'node.list': ['a', 'b'], 'node.big': 9007199254740991,
    });
    llm.end();
  });
  root.end();
});
provider.shutdown().then(() => console.log('exported'), (e) => { console.error(e); process.exit(1); });
"""


def test_node_otel_sdk_through_the_sidecar(sidecar: SidecarProcess, opik: OpikStandin, tmp_path_factory: pytest.TempPathFactory) -> None:
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.skip("Node.js/npm is not installed")
    app = tmp_path_factory.mktemp("node-app")
    (app / "package.json").write_text('{"name": "sidecar-node-test", "private": true}')
    try:
        install = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--loglevel=error", "@opentelemetry/api",
             "@opentelemetry/sdk-trace-node", "@opentelemetry/exporter-trace-otlp-http"],
            cwd=app, capture_output=True, text=True, timeout=180,
        )
    except subprocess.TimeoutExpired:
        pytest.skip("the npm registry did not answer within 180 s")
    if install.returncode != 0:
        pytest.skip(f"npm install failed (registry unreachable?): {install.stderr.strip()[-300:]}")
    (app / "app.js").write_text(_NODE_APP)
    run = subprocess.run([node, "app.js"], cwd=app, capture_output=True, text=True, timeout=60,
                         env={"PATH": str(Path(node).parent), "SIDECAR_URL": sidecar.traces_url, **sidecar.client_env()})
    assert run.returncode == 0, run.stderr
    opik.wait_for_counts(traces=1, spans=2, timeout=15)
    (trace,) = opik.traces_by_id().values()
    assert trace["name"] == "invoke_agent node-agent"
    llm = next(s for s in opik.spans_by_id().values() if s["name"] == "chat gpt-4o-mini")
    assert llm["parent_span_id"] and llm["trace_id"] == trace["id"]
    assert llm["metadata"]["node.list"] == ["a", "b"] and llm["metadata"]["node.big"] == 9007199254740991
    assert llm["metadata"]["otel"]["resource"]["telemetry.sdk.language"] == "nodejs"


def test_start_line_and_help(sidecar: SidecarProcess, opik: OpikStandin) -> None:
    line = sidecar.start_line
    assert line.startswith(f"opik-otel serve: OTLP/HTTP on {sidecar.scheme}://127.0.0.1:") and f"Opik at {opik.url}" in line
    assert "OTLP/gRPC on 127.0.0.1:" in line
    from sidecar_helpers import opik_otel_command

    out = subprocess.run(opik_otel_command() + ["serve", "--help"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0
    for flag in ("--host", "--port", "--grpc-port", "--auth-token", "--max-body-bytes", "--shutdown-timeout", "OPIK_OTEL_AUTH_TOKEN"):
        assert flag in out.stdout
    bad = subprocess.run(opik_otel_command() + ["serve", "--port", "70000"], capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and "port" in bad.stderr


def test_waits_for_nothing_slow_answers_before_delivery(sidecar: SidecarProcess, opik: OpikStandin) -> None:
    """The answer comes once spans are queued, not after Opik answered."""
    from opik_standin import Fault

    fault = opik.faults.add(Fault.stall(1.5, times=None))
    try:
        spans = make_spans(lambda t: _agent_trace(t, n_tools=0))
        t0 = time.monotonic()
        r = HTTP.post(sidecar.traces_url, content=protobuf_body(spans), headers={"Content-Type": "application/x-protobuf"})
        assert r.status_code == 200 and time.monotonic() - t0 < 1.0
    finally:
        opik.faults.remove(fault)
    wait_until(lambda: len(opik.spans) == 2, 15, "delivery after the stall")


def test_console_prints_each_trace_as_it_arrives_and_still_delivers(opik: OpikStandin) -> None:
    with SidecarProcess(opik.url, "--console", grpc=False) as proc:

        def build(t: Any) -> None:
            with t.start_as_current_span("console root"):
                with t.start_as_current_span("console child"):
                    pass

        spans = make_spans(build)
        r = HTTP.post(proc.traces_url, content=protobuf_body(spans), headers={"Content-Type": "application/x-protobuf"})
        assert r.status_code == 200
        opik.wait_for_counts(traces=1, spans=2)
        printed: List[str] = []
        reader = __import__("threading").Thread(
            target=lambda: [printed.append(proc.proc.stdout.readline()) for _ in range(3)], daemon=True  # type: ignore[union-attr]
        )
        reader.start()
        reader.join(10)
    text = "".join(printed)
    assert "Opik trace" in text and "'console root'" in text
    assert "└─ [general] 'console child'" in text
    (t,) = opik.traces_by_id().values()
    assert t["name"] == "console root"
