"""The sidecar's transport-independent part, in process: decompression caps, all-or-nothing queueing,
draining, and the guard that turns an internal error into a counted partial success (never a 5xx)."""

from __future__ import annotations

import gzip
import time
import zlib
from typing import Any, Iterator, List

import pytest
from opik_standin import Fault, OpikStandin
from sidecar_helpers import make_spans, protobuf_body

from opentelemetry.exporter.opik._config import resolve_settings
from opentelemetry.exporter.opik._otlp import DecodedBatch, DecodeError
from opentelemetry.exporter.opik._pipeline import Pipeline
from opentelemetry.exporter.opik._stats import Stats
from opentelemetry.exporter.opik._writer import Writer
from opentelemetry.exporter.opik.sidecar._decode import Limits, decode
from opentelemetry.exporter.opik.sidecar._decompress import BodyTooLarge, decompress
from opentelemetry.exporter.opik.sidecar._outcome import BUSY, INVALID, OK, TOO_LARGE, UNAVAILABLE, Outcome
from opentelemetry.exporter.opik.sidecar._receiver import Receiver
from opentelemetry.exporter.opik.sidecar._wire import retry_info, status_pb


@pytest.fixture(params=["isal", "zlib"])
def inflater(request: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each decompression test with ISA-L (a dependency) and with the stdlib's zlib (isal not installed)."""
    from opentelemetry.exporter.opik.sidecar import _decompress

    if request.param == "zlib":
        monkeypatch.setattr(_decompress, "_decompressobj", zlib.decompressobj)
        monkeypatch.setattr(_decompress, "_ERRORS", (zlib.error,))
    assert _decompress.using_isal() == (request.param == "isal")
    return str(request.param)


def test_decompress_gzip_members_deflate_and_caps(inflater: str) -> None:
    data = b"otlp" * 1000
    assert decompress(gzip.compress(data), "gzip", 10_000) == data
    assert decompress(gzip.compress(data) + gzip.compress(b"tail"), "x-gzip", 10_000) == data + b"tail"
    assert decompress(zlib.compress(data), "deflate", 10_000) == data
    raw = zlib.compressobj(6, zlib.DEFLATED, -15)
    assert decompress(raw.compress(data) + raw.flush(), "deflate", 10_000) == data
    with pytest.raises(BodyTooLarge):
        decompress(gzip.compress(data), "gzip", len(data) - 1)
    with pytest.raises(BodyTooLarge):
        decompress(data, "identity", len(data) - 1)
    with pytest.raises(DecodeError, match="truncated"):
        decompress(gzip.compress(data)[:-12], "gzip", 10_000)
    with pytest.raises(DecodeError, match="not valid gzip"):
        decompress(b"\x1f\x8b\x08\x00" + b"\x00" * 20, "gzip", 10_000)
    good = gzip.compress(bytes(range(256)) * 40)
    with pytest.raises(DecodeError, match="not valid gzip"):  # a corrupt block
        decompress(good[:20] + b"\xff" * 30 + good[50:], "gzip", 20_000)
    with pytest.raises(DecodeError, match="not valid gzip"):  # a wrong checksum
        decompress(good[:-8] + b"\0\0\0\0" + good[-4:], "gzip", 20_000)
    with pytest.raises(DecodeError, match="not valid deflate"):
        decompress(b"hello, not deflate", "deflate", 10_000)
    assert decompress(gzip.compress(b""), "gzip", 10) == b""


def test_decompress_stops_a_bomb_at_the_cap(inflater: str) -> None:
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb = b"".join(c.compress(bytes(1 << 20)) for _ in range(64)) + c.flush()  # 64 MiB of zeros in ~64 KB
    with pytest.raises(BodyTooLarge):
        decompress(bomb, "gzip", 1 << 20)


def test_wire_encodings_match_google_rpc() -> None:
    from google.rpc.error_details_pb2 import RetryInfo
    from google.rpc.status_pb2 import Status

    st = Status.FromString(status_pb(8, "full ✓", 2.5))
    assert st.code == 8 and st.message == "full ✓"
    info = RetryInfo()
    assert st.details[0].Unpack(info) and (info.retry_delay.seconds, info.retry_delay.nanos) == (2, 500_000_000)
    assert RetryInfo.FromString(retry_info(1)).retry_delay.seconds == 1


@pytest.fixture
def opik() -> Iterator[OpikStandin]:
    with OpikStandin() as standin:
        yield standin


def _receiver(opik: OpikStandin, pipeline: Any = None, **settings: Any) -> Receiver:
    s = resolve_settings(dict({"url": opik.url}, **settings))
    stats = Stats()
    return Receiver(s, pipeline or Pipeline(s, stats=stats), Writer(s, stats=stats), stats, Limits())


def _batch(n_traces: int, spans_per_trace: int = 2) -> bytes:
    """What an OTLP exporter sends for ``n_traces`` traces of ``spans_per_trace`` spans."""

    def build(tracer: Any) -> None:
        for i in range(n_traces):
            with tracer.start_as_current_span(f"t{i}"):
                for j in range(spans_per_trace - 1):
                    tracer.start_span(f"t{i}-{j}").end()

    return protobuf_body(make_spans(build))


def _export(rx: Receiver, body: bytes, **kw: Any) -> Outcome:
    return rx.handle(body, "", "application/x-protobuf", None, **kw)


def test_queueing_is_all_or_nothing_and_full_means_busy(opik: OpikStandin) -> None:
    opik.faults.add(Fault.respond(503, times=None))  # Opik down: nothing leaves the queue
    rx = _receiver(opik, max_queue_items=10, timeout=0.2, retry_deadline=60)
    try:
        assert _export(rx, _batch(2)).code == OK  # 2 traces + 4 spans = 6 items
        out = _export(rx, _batch(2))  # 6 more do not fit in 10: none of them is queued
        assert out.code == BUSY and out.retry_after > 0 and "retry later" in out.message
        assert rx.writer.pending() == 6 and rx.counters.spans_refused == 4
        big = _export(rx, _batch(6))  # 12 spans can never fit in 10, full queue or not: too large, not busy
        assert big.code == TOO_LARGE and "more than the sidecar's whole queue holds" in big.message
        rx.start_draining()
        assert _export(rx, _batch(1)).code == UNAVAILABLE
    finally:
        opik.faults.clear()
        rx.writer.shutdown(0.5)


class _BrokenPipeline(Pipeline):
    def process(self, records: Any, default_project: Any = None) -> Any:
        raise RuntimeError("a mapping bug")


def test_an_internal_error_is_a_counted_partial_success(opik: OpikStandin, caplog: pytest.LogCaptureFixture) -> None:
    s = resolve_settings({"url": opik.url})
    rx = _receiver(opik, pipeline=_BrokenPipeline(s))
    try:
        out = _export(rx, _batch(1, 3))
        assert out.code == OK and out.rejected == 3 and "internal error" in out.message
        # the bug is logged by type and place; its message (it may quote span content) is not
        assert "RuntimeError" in caplog.text and "process (test_sidecar_receiver.py:" in caplog.text
        assert "a mapping bug" not in caplog.text
        empty = decode(b"\x0a\x02\x0a\x00", "", "application/x-protobuf", "traces", rx.limits)
        assert isinstance(empty, DecodedBatch) and empty.records == []
        bad: List[Any] = [
            decode(b"\xff" * 10, "", "application/x-protobuf", "traces", rx.limits),
            decode(b"{", "", "application/json", "traces", rx.limits),
        ]
        assert [b.code for b in bad] == [INVALID, INVALID]
    finally:
        rx.writer.shutdown(0.5)


def test_refused_credentials_make_senders_keep_their_spans() -> None:
    """Without a spool the writer would drop what it cannot authenticate: answer 503 instead of acknowledging."""
    locked = OpikStandin(api_key="the-right-key").start()
    try:
        rx = _receiver(locked, api_key="a-wrong-key", retry_deadline=1.5)
        try:
            assert _export(rx, _batch(1)).code == OK  # accepted before anyone knows (no probe here)
            assert rx.writer.flush(5)  # ... refused by Opik for the whole retry deadline: the writer pauses
            out = _export(rx, _batch(1))
            assert out.code == UNAVAILABLE and "credentials" in out.message and out.retry_after > 0
            assert "a-wrong-key" not in out.message
        finally:
            rx.writer.shutdown(0.5)
    finally:
        locked.stop()


# -- one path: mapped, queued, then answered (what opik-otel serve runs) ---------------------


def test_a_request_that_waited_too_long_for_the_worker_is_busy_without_being_decoded(opik: OpikStandin) -> None:
    rx = _receiver(opik)
    try:
        out = _export(rx, b"not even protobuf", received_at=time.monotonic() - rx.max_wait - 1)
        assert out.code == BUSY and "mapping is behind" in out.message and out.retry_after > 0
        assert _export(rx, _batch(1), received_at=time.monotonic()).code == OK
    finally:
        rx.writer.shutdown(2)


def test_draining_refuses_new_requests_and_what_was_answered_is_delivered(opik: OpikStandin) -> None:
    rx = _receiver(opik)
    try:
        assert _export(rx, _batch(1, 2)).code == OK  # answered once queued
        rx.start_draining()
        assert _export(rx, _batch(1)).code == UNAVAILABLE
        assert rx.close(10)
        assert len(opik.spans) == 2 and len(opik.traces) == 1  # the acknowledged request, nothing else
    finally:
        rx.writer.shutdown(0.5)


def test_limits_met_while_decoding_are_named_in_the_answer(opik: OpikStandin) -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from opentelemetry.exporter.opik._otlp import DecodeLimits

    s = resolve_settings({"url": opik.url})
    stats = Stats()
    rx = Receiver(s, Pipeline(s, stats=stats), Writer(s, stats=stats), stats, Limits(decode=DecodeLimits(max_attributes=3)))
    try:
        def build(tracer: Any) -> None:
            with tracer.start_as_current_span("wide", attributes={f"k{i}": i for i in range(6)}):
                tracer.start_span("child").end()

        req = ExportTraceServiceRequest.FromString(protobuf_body(make_spans(build)))
        req.resource_spans[0].scope_spans[0].spans[0].span_id = b"\x00" * 8  # one bad span: rejected in the answer
        out = _export(rx, req.SerializeToString())
        assert out.code == OK and out.rejected == 1 and "span id is all zeros" in out.message
        assert "attribute limit" in out.message
        opik.wait_for_counts(traces=1, spans=1)
    finally:
        rx.writer.shutdown(2)


def test_max_pending_spans_still_parses_from_the_flag_or_the_environment(opik: OpikStandin) -> None:
    """Kept so existing deployments start; requests are mapped before they are answered, so it bounds nothing."""
    import argparse

    from opentelemetry.exporter.opik.sidecar._cli import _UsageError, add_serve_arguments, serve_options
    from opentelemetry.exporter.opik.sidecar._server import Sidecar

    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    assert serve_options(parser.parse_args(["--no-grpc"]), env={}).max_pending_spans == 8192
    assert serve_options(parser.parse_args(["--no-grpc"]), env={"OPIK_OTEL_MAX_PENDING_SPANS": "2048"}).max_pending_spans == 2048
    options = serve_options(parser.parse_args(["--no-grpc", "--max-pending-spans", "1024"]), env={"OPIK_OTEL_MAX_PENDING_SPANS": "2048"})
    assert options.max_pending_spans == 1024
    with pytest.raises(_UsageError, match="--max-pending-spans must be positive"):
        serve_options(parser.parse_args(["--no-grpc", "--max-pending-spans", "0"]), env={})
    sidecar = Sidecar(resolve_settings({"url": opik.url}), options)
    try:
        assert _export(sidecar.receiver, _batch(1)).code == OK
    finally:
        sidecar.receiver.close(5)
