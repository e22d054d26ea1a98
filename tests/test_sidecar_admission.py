"""Admission is exact (issue 18): a request is admitted by what it really maps to, so one large span
never makes later normal batches look large; the advertised limits are the real ones; what a 200
means; what a sender sees for a message over the limit. Real sidecar processes, the official OTLP
exporters as clients, the Opik stand-in as Opik."""

from __future__ import annotations

import re
from typing import Any, Iterator, List

import grpc
import httpx
import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opik_standin import Fault, OpikStandin
from sidecar_helpers import SidecarProcess, make_spans, protobuf_body, wait_until

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
PB = {"Content-Type": "application/x-protobuf"}
BIG_INPUT = 4 * 1024 * 1024
#: prose (a run of one letter would be taken for base64 and left out as a blob)
PROSE = "The quick brown fox jumps over the lazy dog, then asks the model a question. "


@pytest.fixture
def opik() -> Iterator[OpikStandin]:
    with OpikStandin() as standin:
        yield standin


def _exporter(protocol: str, sidecar: SidecarProcess) -> SpanExporter:
    if protocol == "http":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

        return HttpExporter(endpoint=sidecar.traces_url, timeout=60)

    return sidecar.otlp_grpc_exporter(timeout=60)


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_one_large_span_then_3000_normal_spans_are_all_stored(opik: OpikStandin, protocol: str) -> None:
    """Issue 18: a 4 MB input used to inflate the learned reservation and every later 513-span batch got 413."""
    with SidecarProcess(opik.url) as sidecar:
        provider = TracerProvider(resource=Resource.create({"service.name": "admission"}))
        provider.add_span_processor(BatchSpanProcessor(_exporter(protocol, sidecar), max_queue_size=8192, max_export_batch_size=512))
        tracer = provider.get_tracer("admission.tests")
        with tracer.start_as_current_span("large", attributes={"input.value": (PROSE * (BIG_INPUT // len(PROSE) + 1))[:BIG_INPUT]}):
            pass
        assert provider.force_flush(60)
        for i in range(100):
            with tracer.start_as_current_span(f"normal-{i}"):
                for j in range(29):
                    tracer.start_span(f"normal-{i}-{j}").end()
        assert provider.force_flush(120)
        provider.shutdown()
        opik.wait_for_counts(traces=101, spans=3001, timeout=60)
        assert opik.duplicates() == {}
        large = [s for s in opik.spans.values() if s["name"] == "large"]
        assert len(large) == 1 and len(str(large[0]["input"])) >= BIG_INPUT // 2
        metrics = httpx.get(sidecar.url + "/metrics").text
        assert "opik_otel_receiver_spans_refused_total 0" in metrics
        assert 'status="413"' not in metrics and "INVALID_ARGUMENT" not in metrics


def _wide_request(traces: int, spans_per_trace: int, pad: int) -> bytes:
    def build(tracer: Any) -> None:
        value = (PROSE * (pad // len(PROSE) + 1))[:pad]
        for t in range(traces):
            with tracer.start_as_current_span(f"root-{t}", attributes={"pad": value}):
                for j in range(spans_per_trace - 1):
                    tracer.start_span(f"child-{t}-{j}", attributes={"pad": value}).end()

    return protobuf_body(make_spans(build))


def test_a_19000_span_18_mb_request_under_the_advertised_limits_is_accepted(opik: OpikStandin) -> None:
    """Issue 18: it was refused as "maps to about 95 MB" by estimate; admitted by its real size, it fits."""
    body = _wide_request(1000, 19, 900)
    assert 18_000_000 < len(body) < 20 * 1024 * 1024  # under --max-body-bytes; 19,000 < --max-spans-per-request
    with SidecarProcess(opik.url, grpc=False) as sidecar:
        r = httpx.post(sidecar.traces_url, content=body, headers=PB, timeout=120)
        assert r.status_code == 200, r.content[:300]
        opik.wait_for_counts(traces=1000, spans=19_000, timeout=120)


def test_413_only_for_a_request_that_can_never_fit_and_429_when_only_busy(opik: OpikStandin) -> None:
    """The queue holds 2 MiB: a request mapping to more is 413 at once; one that fits later is 429 while Opik is slow."""
    stall = opik.faults.add(Fault.stall(3.0, times=None, path="/v1/private/spans/batch"))
    args = ["--set", "max_queue_bytes=2097152", "--set", "timeout=5", "--retry-after", "1"]
    with SidecarProcess(opik.url, *args) as sidecar:
        never = _wide_request(1, 6, 500_000)  # about 3 MB of Opik spans: more than the whole queue
        r = httpx.post(sidecar.traces_url, content=never, headers=PB, timeout=30)
        assert r.status_code == 413 and b"more than the sidecar's whole queue holds" in r.content
        with sidecar.grpc_channel(options=[("grpc.max_send_message_length", -1)]) as channel:
            call = channel.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)
            with pytest.raises(grpc.RpcError) as err:
                call(never, timeout=30)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # never retried
        fits = _wide_request(1, 3, 400_000)  # about 1.2 MB: fits an empty queue
        statuses: List[int] = []
        for _ in range(4):
            statuses.append(httpx.post(sidecar.traces_url, content=fits, headers=PB, timeout=30).status_code)
        assert statuses[0] == 200 and 429 in statuses and 413 not in statuses
        busy = httpx.post(sidecar.traces_url, content=fits, headers=PB, timeout=30)
        assert busy.status_code == 429 and busy.headers["retry-after"] == "1" and b"retry later" in busy.content
        opik.faults.remove(stall)
        wait_until(lambda: httpx.post(sidecar.traces_url, content=fits, headers=PB, timeout=30).status_code == 200, 60, "room again")


def test_a_grpc_message_over_the_limit_is_invalid_argument_not_resource_exhausted(opik: OpikStandin) -> None:
    """Issue 18: RESOURCE_EXHAUSTED for an oversized message made OTLP clients retry it for ever."""
    with SidecarProcess(opik.url, "--max-body-bytes", "1000000") as sidecar:
        body = _wide_request(1, 1, 1_500_000)
        with sidecar.grpc_channel(options=[("grpc.max_send_message_length", -1)]) as channel:
            call = channel.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)
            with pytest.raises(grpc.RpcError) as err:
                call(body, timeout=30)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "larger than 1000000 bytes" in (err.value.details() or "")
        small = _wide_request(1, 1, 10)
        with sidecar.grpc_channel() as channel:
            call = channel.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)
            assert call(small, timeout=30) is not None
        opik.wait_for_counts(traces=1, spans=1)


def test_sigterm_with_opik_down_and_no_spool_exits_non_zero_and_logs_the_drops(opik: OpikStandin) -> None:
    """Issue 18: it exited 0 having dropped every acknowledged span. A 200 without a spool means "queued in memory"."""
    opik.faults.add(Fault.respond(503, times=None))
    with SidecarProcess(opik.url, "--shutdown-timeout", "2", grpc=False) as sidecar:
        for r in range(5):
            def build(tracer: Any, r: int = r) -> None:
                for i in range(4):
                    with tracer.start_as_current_span(f"down-{r}-{i}"):
                        tracer.start_span(f"down-{r}-{i}.child").end()

            resp = httpx.post(sidecar.traces_url, content=protobuf_body(make_spans(build)), headers=PB, timeout=30)
            assert resp.status_code == 200  # queued in memory
        code = sidecar.stop()
        log = sidecar.stderr()
    assert code == 1, log[-2000:]
    m = re.search(r"dropped (\d+) acknowledged items while stopping \(([^)]*)\)", log)
    assert m, log[-2000:]
    assert int(m.group(1)) == 5 * 4 * 3  # 20 traces + 40 spans, all acknowledged, all lost
    assert "shutdown: 60" in m.group(2) and "--spool-dir" in log
    assert not opik.spans


def test_sigterm_with_opik_down_and_a_spool_exits_zero(opik: OpikStandin, tmp_path: Any) -> None:
    """With a spool a 200 means on disk: nothing acknowledged is lost at shutdown, the exit is clean."""
    opik.faults.add(Fault.respond(503, times=None))
    spool = tmp_path / "spool"
    with SidecarProcess(opik.url, "--shutdown-timeout", "2", "--spool-dir", str(spool), grpc=False) as sidecar:
        spans = make_spans(lambda t: t.start_span("kept").end())
        assert httpx.post(sidecar.traces_url, content=protobuf_body(spans), headers=PB, timeout=30).status_code == 200
        code = sidecar.stop()
        log = sidecar.stderr()
    assert code == 0, log[-2000:]
    assert "acknowledged items while stopping" not in log
    assert any(p.name.endswith(".opikspool") for p in spool.iterdir())


def test_readyz_says_not_ready_while_the_queue_to_opik_is_full(opik: OpikStandin) -> None:
    """/readyz reflects whether the sidecar can take work: a full queue (Opik not taking spans) is 503, then ready again."""
    down = [opik.faults.add(Fault.respond(503, times=None, path=p)) for p in ("/v1/private/spans/batch", "/v1/private/traces/batch")]
    args = ["--set", "max_queue_items=10", "--set", "timeout=0.5", "--set", "retry_deadline=60"]
    with SidecarProcess(opik.url, *args, grpc=False) as sidecar:
        assert httpx.get(sidecar.url + "/readyz").status_code == 200
        fill = protobuf_body(make_spans(lambda t: [t.start_span(f"fill-{i}").end() for i in range(5)]))  # 5 traces + 5 spans
        assert httpx.post(sidecar.traces_url, content=fill, headers=PB, timeout=30).status_code == 200
        r = httpx.get(sidecar.url + "/readyz")
        assert r.status_code == 503 and "queue to Opik is full" in r.text
        for fault in down:
            opik.faults.remove(fault)
        wait_until(lambda: httpx.get(sidecar.url + "/readyz").status_code == 200, 120, "ready once Opik takes the queue")
        opik.wait_for_counts(traces=5, spans=5)
