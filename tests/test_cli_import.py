"""``opik-otel import``: OTLP files into the Opik stand-in, with the ids live export stores.

The files are written by the real SDK's protobuf encoder (in every framing the
importer reads) and by hand per the OTLP/JSON spec; the live side is the real
``OpikSpanExporter`` fed the same batches, or the same spans.
"""

from __future__ import annotations

import gzip
import json
import os
import pty
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opik_standin import Fault, OpikStandin

from opentelemetry.exporter.opik import OpikSampler, OpikSpanExporter
from opentelemetry.exporter.opik._cli import main
from opentelemetry.exporter.opik._import import run_import

OPIK_OTEL = [str(Path(sys.executable).with_name("opik-otel"))]
if not Path(OPIK_OTEL[0]).exists():
    OPIK_OTEL = [sys.executable, "-m", "opentelemetry.exporter.opik._cli"]


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


class FileTee(SpanExporter):
    """Encodes each batch the SDK exports with the real OTLP protobuf encoder, then passes it on."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner
        self.requests: List[bytes] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.requests.append(encode_spans(spans).SerializeToString())
        return self.inner.export(spans)

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.inner.force_flush(timeout_millis)


def write_framed(requests: List[bytes], path: Path, framing: str) -> List[Path]:
    if framing == "single-files":
        paths = []
        for i, r in enumerate(requests):
            p = path.with_name(f"{path.stem}-{i:03d}.pb")
            p.write_bytes(r)
            paths.append(p)
        return paths
    if framing == "varint":
        data = b"".join(varint(len(r)) + r for r in requests)
    else:
        data = b"".join(len(r).to_bytes(4, "big") + r for r in requests)
    if framing.endswith(".gz"):
        data = gzip.compress(data)
    path.write_bytes(data)
    return [path]


def produce_live(opik: OpikStandin, n_traces: int = 4) -> List[bytes]:
    """Traces from the real SDK, exported live to ``opik`` and captured as OTLP protobuf requests.

    One provider exports span by span (children before their root, in separate
    requests), one in batches, one with ``OpikSampler`` (the trace start in the
    tracestate): the three ways a trace's id timestamp is decided.
    """
    requests: List[bytes] = []
    for processor, sampler in ((SimpleSpanProcessor, None), (BatchSpanProcessor, None), (SimpleSpanProcessor, OpikSampler())):
        tee = FileTee(OpikSpanExporter(url=opik.url))
        provider = TracerProvider(resource=Resource.create({"service.name": "import-test", "opik.project_name": "imports"}),
                                  sampler=sampler)
        provider.add_span_processor(processor(tee))
        tracer = provider.get_tracer("tests.import", "1.2.3")
        for i in range(n_traces):
            with tracer.start_as_current_span("invoke_agent helper", kind=SpanKind.SERVER,
                                              attributes={"gen_ai.operation.name": "invoke_agent",
                                                          "gen_ai.conversation.id": f"conv-{i % 2}",
                                                          "input.value": json.dumps({"q": f"question {i}"})}) as root:
                time.sleep(0.002)
                with tracer.start_as_current_span("chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes={
                    "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": 10 + i,
                    "gen_ai.usage.output_tokens": 3, "tags.list": ("a", "b"),
                }) as llm:
                    llm.add_event("gen_ai.content.chunk", {"n": 1})
                    time.sleep(0.002)
                with tracer.start_as_current_span("execute_tool search", attributes={"gen_ai.tool.name": "search"}) as tool:
                    if i == 1:
                        tool.set_status(Status(StatusCode.ERROR, "tool broke"))
                root.set_attribute("output.value", f"answer {i}")
        provider.shutdown()
        requests.extend(tee.requests)
    return requests


def assert_same_rows(live: OpikStandin, imported: OpikStandin) -> None:
    assert imported.duplicates() == {}
    lt, it = live.traces_by_id(), imported.traces_by_id()
    ls, is_ = live.spans_by_id(), imported.spans_by_id()
    assert lt and ls
    assert set(it) == set(lt), "the import stored other trace ids than live export"
    assert set(is_) == set(ls), "the import stored other span ids than live export"
    for k in lt:
        assert it[k] == lt[k]
    for k in ls:
        assert is_[k] == ls[k]


@pytest.mark.parametrize("framing", ["varint", "be32.gz", "single-files"])
def test_import_sdk_protobuf_stores_what_live_export_stored(framing: str, tmp_path: Path) -> None:
    with OpikStandin() as live, OpikStandin() as target:
        requests = produce_live(live)
        live.wait_for_counts(traces=12, spans=36)
        files = write_framed(requests, tmp_path / "spans.pb", framing)
        code = run_import([str(f) for f in files], {"url": target.url}, progress="none")
        assert code == 0
        assert_same_rows(live, target)
        # a trace exported child by child got its id timestamp from the first child, in both
        assert len(requests) > 12


# -- OTLP/JSON written by hand, per the spec (hex ids, strings for 64-bit ints, enum numbers) --

T1, T2 = "5b8efff798038103d269b633813fc60c", "0af7651916cd43dd8448eb211c80319c"
BASE_NS = (int(time.time()) - 86_400) * 1_000_000_000  # yesterday: a backfill


def otlp_json_requests() -> List[Dict[str, Any]]:
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "hand-written"}},
                               {"key": "deployment.environment.name", "value": {"stringValue": "staging"}}]}

    def span(trace: str, sid: str, parent: str, name: str, start_ms: int, end_ms: int, kind: int, attrs: List[Dict[str, Any]],
             **extra: Any) -> Dict[str, Any]:
        d = {"traceId": trace, "spanId": sid, "parentSpanId": parent, "name": name, "kind": kind,
             "startTimeUnixNano": str(BASE_NS + start_ms * 1_000_000), "endTimeUnixNano": str(BASE_NS + end_ms * 1_000_000),
             "attributes": attrs}
        d.update(extra)
        return d

    llm_attrs = [
        {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
        {"key": "gen_ai.provider.name", "value": {"stringValue": "openai"}},
        {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o-mini"}},
        {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "42"}},
        {"key": "gen_ai.usage.output_tokens", "value": {"intValue": 7}},
        {"key": "gen_ai.request.temperature", "value": {"doubleValue": 0.2}},
        {"key": "llm.is_streaming", "value": {"boolValue": True}},
        {"key": "gen_ai.response.finish_reasons", "value": {"arrayValue": {"values": [{"stringValue": "stop"}]}}},
    ]
    first = {"resourceSpans": [{"resource": resource, "scopeSpans": [{
        "scope": {"name": "hand.written", "version": "0.1"},
        "spans": [
            # trace 1's child arrives first, in its own request (as a BatchSpanProcessor may send it)
            span(T1, "eee19b7ec3c1b174", "eee19b7ec3c1b173", "chat gpt-4o-mini", 5, 40, 3, llm_attrs,
                 events=[{"timeUnixNano": str(BASE_NS + 20_000_000), "name": "first_token", "attributes": []}]),
            span(T2, "00f067aa0ba902b7", "", "GET /health", 100, 101, 2,
                 [{"key": "http.response.status_code", "value": {"intValue": "200"}}]),
        ]}]}]}
    second = {"resourceSpans": [{"resource": resource, "scopeSpans": [{
        "scope": {"name": "hand.written", "version": "0.1"},
        "spans": [
            span(T1, "eee19b7ec3c1b173", "", "invoke_agent planner", 0, 50, 2,
                 [{"key": "gen_ai.operation.name", "value": {"stringValue": "invoke_agent"}},
                  {"key": "gen_ai.conversation.id", "value": {"stringValue": "thread-7"}},
                  {"key": "input.value", "value": {"stringValue": "{\"q\": \"plan a trip\"}"}}],
                 status={"code": 2, "message": "gave up"}),
        ]}]}]}
    return [first, second]


def readable_spans(requests: List[Dict[str, Any]]) -> List[List[ReadableSpan]]:
    """The same spans as SDK objects, batch for batch: what live export of them sees."""

    def value(v: Dict[str, Any]) -> Any:
        (k, x), = v.items()
        if k == "intValue":
            return int(x)
        if k == "arrayValue":
            return tuple(value(e) for e in x["values"])
        return x

    batches = []
    for req in requests:
        batch = []
        for rs in req["resourceSpans"]:
            res = Resource({a["key"]: value(a["value"]) for a in rs["resource"]["attributes"]})
            for ss in rs["scopeSpans"]:
                scope = InstrumentationScope(ss["scope"]["name"], ss["scope"]["version"])
                for sp in ss["spans"]:
                    tid = int(sp["traceId"], 16)
                    ctx = SpanContext(tid, int(sp["spanId"], 16), False, TraceFlags(1))
                    parent = SpanContext(tid, int(sp["parentSpanId"], 16), False, TraceFlags(1)) if sp["parentSpanId"] else None
                    status = sp.get("status", {})
                    batch.append(ReadableSpan(
                        name=sp["name"], context=ctx, parent=parent, resource=res,
                        attributes={a["key"]: value(a["value"]) for a in sp["attributes"]},
                        events=[Event(e["name"], {}, int(e["timeUnixNano"])) for e in sp.get("events", [])],
                        kind=[None, SpanKind.INTERNAL, SpanKind.SERVER, SpanKind.CLIENT][sp["kind"]],
                        status=Status(StatusCode.ERROR, status["message"]) if status.get("code") == 2 else Status(StatusCode.UNSET),
                        start_time=int(sp["startTimeUnixNano"]), end_time=int(sp["endTimeUnixNano"]),
                        instrumentation_scope=scope,
                    ))
        batches.append(batch)
    return batches


@pytest.mark.parametrize("layout", ["jsonl", "jsonl.gz", "pretty-documents", "array"])
def test_import_hand_written_otlp_json_matches_live_export(layout: str, tmp_path: Path) -> None:
    requests = otlp_json_requests()
    with OpikStandin() as live, OpikStandin() as target:
        exporter = OpikSpanExporter(url=live.url)
        for batch in readable_spans(requests):
            exporter.export(batch)
        exporter.shutdown()
        live.wait_for_counts(traces=2, spans=3)

        path = tmp_path / "traces.json"
        if layout.startswith("jsonl"):
            text = "".join(json.dumps(r) + "\n" for r in requests)
            # a Collector file shared by all signals also holds metrics lines: skipped
            text += json.dumps({"resourceMetrics": []}) + "\n"
        elif layout == "pretty-documents":
            text = "\n".join(json.dumps(r, indent=2) for r in requests)
        else:
            text = json.dumps(requests, indent=1)
        data = text.encode()
        if layout.endswith(".gz"):
            data = gzip.compress(data)
        path.write_bytes(data)

        assert run_import([str(path)], {"url": target.url}, progress="none") == 0
        assert_same_rows(live, target)
        trace = target.traces_by_id()
        roots = [t for t in trace.values() if t["name"] == "invoke_agent planner"]
        assert roots and roots[0]["thread_id"] == "thread-7" and roots[0]["environment"] == "staging"


# -- interruption, rejections, options ------------------------------------------------------


def sdk_file(tmp_path: Path, n_traces: int = 40) -> Tuple[Path, OpikStandin]:
    """A varint-delimited file of many small requests (batches of 7 spans split traces across them)."""
    live = OpikStandin().start()
    tee = FileTee(OpikSpanExporter(url=live.url))
    provider = TracerProvider(resource=Resource.create({"service.name": "bulk"}))
    provider.add_span_processor(BatchSpanProcessor(tee, max_export_batch_size=7, schedule_delay_millis=60_000))
    tracer = provider.get_tracer("bulk")
    for i in range(n_traces):
        with tracer.start_as_current_span(f"request {i}"):
            for j in range(2):
                with tracer.start_as_current_span(f"step {j}", attributes={"i": i, "j": j}):
                    pass
    provider.shutdown()
    path = tmp_path / "bulk.pb"
    write_framed(tee.requests, path, "varint")
    return path, live


def test_interrupted_import_rerun_stores_no_duplicates(tmp_path: Path) -> None:
    path, live = sdk_file(tmp_path)
    try:
        with OpikStandin() as target:
            stored_batches: List[int] = []
            release = threading.Event()

            def stall_after_two(req: Any) -> Any:
                stored_batches.append(1)
                if len(stored_batches) > 2:
                    release.wait(30)  # the import hangs here until it is killed
                return None

            target.faults.add(Fault.custom(stall_after_two, path="/v1/private/spans/batch"))
            env = dict(os.environ, OPIK_URL_OVERRIDE=target.url, OTEL_EXPORTER_OPIK_BATCH_MAX_ITEMS="10")
            proc = subprocess.Popen(OPIK_OTEL + ["import", str(path), "--progress", "none"], env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            try:
                target.wait_for(lambda: len(stored_batches) > 2, timeout=30)
            finally:
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
                release.set()
            partial = len(target.spans)
            assert 0 < partial < 120, target.summary()
            target.faults.clear()

            assert run_import([str(path)], {"url": target.url}, progress="none") == 0
            assert_same_rows(live, target)
            assert len(target.spans) == 120 and len(target.traces) == 40
    finally:
        live.stop()


def test_rejected_spans_give_counts_and_nonzero_exit(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    good, bad_line = otlp_json_requests()
    broken = json.loads(json.dumps(good))
    broken["resourceSpans"][0]["scopeSpans"][0]["spans"][1]["traceId"] = "abc"  # not 16 bytes
    path = tmp_path / "mixed.jsonl"
    path.write_text(json.dumps(broken) + "\n{not json at all}\n" + json.dumps(bad_line) + "\n")
    with OpikStandin() as opik:
        opik.faults.add(Fault.poison(lambda item: item.get("name") == "chat gpt-4o-mini", path="/v1/private/spans/batch"))
        code = main(["import", str(path), "--url", opik.url, "--progress", "none"])
        err = capsys.readouterr().err
        assert code == 1
        assert "1 span could not be decoded" in err
        assert "1 item lost (rejected)" in err
        assert "1 file, line or message could not be read" in err
        assert "mixed.jsonl:2: invalid JSON" in err
        assert "mixed.jsonl:1: resourceSpans[0].scopeSpans[0].spans[1] ('GET /health'): traceId must be" in err
        # everything else arrived
        assert {s["name"] for s in opik.spans_by_id().values()} == {"invoke_agent planner"}
        assert len(opik.traces) == 1


def test_dry_run_prints_trees_and_sends_nothing(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in otlp_json_requests()))
    with OpikStandin() as opik:
        code = main(["import", str(path), "--dry-run", "--url", opik.url, "--progress", "none"])
        assert opik.requests == []
    out = capsys.readouterr()
    assert code == 0
    assert "'invoke_agent planner'" in out.out and "└─ [llm] 'chat gpt-4o-mini'" in out.out
    assert "Printed 2 traces, 3 spans, 0 feedback scores" in out.err


def test_project_option_sets_the_default_project(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in otlp_json_requests()))
    with OpikStandin() as opik:
        assert main(["import", str(path), "--url", opik.url, "--project", "backfill-2024", "--progress", "none"]) == 0
        assert {t["project_name"] for t in opik.traces.values()} == {"backfill-2024"}
        assert {s["project_name"] for s in opik.spans.values()} == {"backfill-2024"}


def test_missing_and_foreign_files_are_reported_the_rest_imported(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    good = tmp_path / "good.jsonl"
    good.write_text("".join(json.dumps(r) + "\n" for r in otlp_json_requests()))
    foreign = tmp_path / "photo.bin"
    foreign.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(64))
    metrics_only = tmp_path / "metrics.jsonl"
    metrics_only.write_text(json.dumps({"resourceMetrics": []}) + "\n")
    with OpikStandin() as opik:
        code = main(["import", str(tmp_path / "nope.jsonl"), str(foreign), str(metrics_only), str(good), "--url", opik.url,
                     "--progress", "none"])
        err = capsys.readouterr().err
        assert code == 1
        assert "nope.jsonl: cannot open" in err
        assert f"No trace data in: {metrics_only}." in err
        assert "photo.bin" in err and "not" in err
        assert len(opik.traces) == 2 and len(opik.spans) == 3


def test_unreachable_opik_stops_before_reading(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps(otlp_json_requests()[0]) + "\n")
    code = main(["import", str(path), "--url", "http://127.0.0.1:1/api", "--progress", "none"])
    err = capsys.readouterr().err
    assert code == 1
    assert "connection refused" in err and "fix:" in err and "Nothing was imported" in err


def test_zstd_compressed_collector_file(tmp_path: Path) -> None:
    zstandard = pytest.importorskip("zstandard")
    path = tmp_path / "traces.jsonl.zst"
    text = "".join(json.dumps(r) + "\n" for r in otlp_json_requests())
    path.write_bytes(zstandard.ZstdCompressor().compress(text.encode()))
    with OpikStandin() as opik:
        assert run_import([str(path)], {"url": opik.url}, progress="none") == 0
        assert len(opik.traces) == 2 and len(opik.spans) == 3


def run_in_pty(argv: List[str], env: Dict[str, str]) -> Tuple[int, str]:
    """Run with stderr on a real terminal; returns the exit code and what the terminal showed."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=slave, stdin=subprocess.DEVNULL)
    os.close(slave)
    chunks: List[bytes] = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(30), b"".join(chunks).decode("utf-8", "replace")


def test_progress_bar_on_a_terminal_plain_lines_otherwise(tmp_path: Path) -> None:
    path, live = sdk_file(tmp_path, n_traces=10)
    live.stop()
    with OpikStandin() as opik:
        env = dict(os.environ, OPIK_URL_OVERRIDE=opik.url)
        code, screen = run_in_pty(OPIK_OTEL + ["import", str(path)], env)
        assert code == 0, screen
        assert "\r[" in screen and "#" in screen and "spans/s" in screen and "100%" in screen
        r = subprocess.run(OPIK_OTEL + ["import", str(path), "--progress", "lines"], env=env, capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0, r.stderr
        assert "\r" not in r.stderr
        assert "import: bulk.pb: 30 spans 10 traces" in r.stderr
        assert "Sent 10 traces, 30 spans" in r.stderr
        assert opik.duplicates() == {} and len(opik.spans) == 30




def test_import_of_a_collector_file_matches_the_sidecar_receiving_the_same_requests(tmp_path: Path) -> None:
    """A Collector fanning out to the ``file`` exporter and to ``opik-otel serve`` sends both the same
    requests: importing the file later stores exactly what the sidecar stored live."""
    import socket

    import httpx

    requests = otlp_json_requests()
    path = tmp_path / "collector.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in requests))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with OpikStandin() as live, OpikStandin() as target:
        env = dict(os.environ, OPIK_URL_OVERRIDE=live.url)
        sidecar = subprocess.Popen(OPIK_OTEL + ["serve", "--no-grpc", "--port", str(port)], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                    break
                except httpx.HTTPError:
                    assert time.monotonic() < deadline and sidecar.poll() is None, "the sidecar did not start"
                    time.sleep(0.1)
            for line in path.read_text().splitlines():
                r = httpx.post(f"http://127.0.0.1:{port}/v1/traces", content=line,
                               headers={"Content-Type": "application/json"}, timeout=10)
                assert r.status_code == 200, r.text
            live.wait_for_counts(traces=2, spans=3)
        finally:
            sidecar.send_signal(signal.SIGTERM)
            sidecar.wait(30)
        assert run_import([str(path)], {"url": target.url}, progress="none") == 0
        assert_same_rows(live, target)
