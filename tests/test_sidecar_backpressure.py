"""Backpressure, not loss: with Opik stalled and small bounds the sidecar answers 429 / RESOURCE_EXHAUSTED
with a retry delay, and once Opik recovers the OTLP exporter's own retries deliver everything."""

from __future__ import annotations

import threading
import time
from typing import Any, Iterator, List

import grpc
import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult
from opik_standin import Fault, OpikStandin
from sidecar_helpers import SidecarProcess, make_spans, protobuf_body, wait_until

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
SPANS_PER_TRACE = 5


def _trace(tracer: Any, i: int) -> None:
    with tracer.start_as_current_span(f"bp-root-{i}"):
        for j in range(SPANS_PER_TRACE - 1):
            with tracer.start_as_current_span(f"bp-child-{i}-{j}"):
                pass


@pytest.fixture
def opik() -> Iterator[OpikStandin]:
    with OpikStandin() as standin:
        yield standin


def test_full_queue_answers_429_then_retries_deliver_everything(opik: OpikStandin) -> None:
    stall = opik.faults.add(Fault.stall(2.0, times=None, path="/v1/private/spans/batch"))
    stall_traces = opik.faults.add(Fault.stall(2.0, times=None, path="/v1/private/traces/batch"))
    args = ["--set", "max_queue_items=40", "--set", "timeout=0.3", "--retry-after", "2"]
    with SidecarProcess(opik.url, *args) as sidecar:
        batches = [make_spans(lambda t, i=i: _trace(t, i)) for i in range(10)]  # 6 Opik items each: 10 do not fit in 40
        results: List[Any] = []

        def send() -> None:
            exporter = OTLPSpanExporter(endpoint=sidecar.traces_url, timeout=60)
            for spans in batches:
                results.append(exporter.export(spans))
            exporter.shutdown()

        sender = threading.Thread(target=send)
        sender.start()
        wait_until(lambda: sidecar.metric("opik_otel_receiver_spans_refused_total") > 0, 20, "a 429 to the exporter")

        # What a refused sender sees, over HTTP and gRPC:
        spans = make_spans(lambda t: _trace(t, 99))
        r = httpx.post(sidecar.traces_url, content=protobuf_body(spans), headers={"Content-Type": "application/x-protobuf"})
        assert r.status_code == 429 and r.headers["retry-after"] == "2"
        assert b"queue to Opik is full" in r.content
        with sidecar.grpc_channel() as channel:
            call = channel.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)
            with pytest.raises(grpc.RpcError) as err:
                call(protobuf_body(spans), timeout=10)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        trailing = dict(err.value.trailing_metadata())
        from google.rpc.error_details_pb2 import RetryInfo
        from google.rpc.status_pb2 import Status

        assert RetryInfo.FromString(trailing["google.rpc.retryinfo-bin"]).retry_delay.seconds == 2
        status = Status.FromString(trailing["grpc-status-details-bin"])
        assert status.code == 8 and status.details[0].Is(RetryInfo.DESCRIPTOR)

        opik.faults.remove(stall)  # Opik recovers
        opik.faults.remove(stall_traces)
        sender.join(60)
        assert not sender.is_alive()
        assert results == [SpanExportResult.SUCCESS] * len(batches)
        opik.wait_for_counts(traces=10, spans=10 * SPANS_PER_TRACE, timeout=30)
        assert opik.duplicates() == {}
        snap = httpx.get(sidecar.url + "/metrics").text
        assert 'opik_otel_receiver_requests_total{protocol="http",status="429"}' in snap
        assert 'opik_otel_dropped_total{reason="queue_full"}' not in snap  # refused, never dropped


def test_too_many_bytes_in_flight_is_503_and_the_slow_upload_still_succeeds(opik: OpikStandin) -> None:
    """Many large uploads at once cannot exhaust memory: beyond --max-inflight-bytes new ones get 503 + Retry-After."""

    big = "x" * 700_000
    slow_body = protobuf_body(make_spans(lambda t: t.start_span("slow-upload", attributes={"blob": big}).end()))
    other_body = protobuf_body(make_spans(lambda t: t.start_span("second-upload", attributes={"blob": big}).end()))
    args = ["--max-body-bytes", "1000000", "--max-inflight-bytes", "1000000"]
    with SidecarProcess(opik.url, *args, grpc=False) as sidecar:
        with sidecar.connect(timeout=10) as slow:
            head = (
                f"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                f"Content-Length: {len(slow_body)}\r\n\r\n"
            ).encode()
            slow.sendall(head + slow_body[:600_000])  # holds 600 KB in the sidecar, unfinished
            time.sleep(0.3)
            r = httpx.post(sidecar.traces_url, content=other_body, headers={"Content-Type": "application/x-protobuf"})
            assert r.status_code == 503 and r.headers["retry-after"] == "1"
            assert b"too many request bytes" in r.content
            slow.sendall(slow_body[600_000:])
            reply = slow.recv(4096)
            assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
        r = httpx.post(sidecar.traces_url, content=other_body, headers={"Content-Type": "application/x-protobuf"})
        assert r.status_code == 200  # once the bytes are released
        opik.wait_for_counts(traces=2, spans=2)
