"""The sidecar's transport-independent core, in process: decompression caps, all-or-nothing queueing,
draining, and the guard that turns an internal error into a counted partial success (never a 5xx)."""

from __future__ import annotations

import gzip
import threading
import time
import zlib
from contextlib import contextmanager
from typing import Any, Iterator, List, Tuple

import pytest
from opik_standin import Fault, OpikStandin
from sidecar_helpers import make_spans, protobuf_body

from opentelemetry.exporter.opik._config import resolve_settings
from opentelemetry.exporter.opik._otlp import DecodedBatch, DecodeError
from opentelemetry.exporter.opik._pipeline import Pipeline
from opentelemetry.exporter.opik._stats import Stats
from opentelemetry.exporter.opik._writer import Writer
from opentelemetry.exporter.opik.sidecar._core import (
    BUSY,
    INVALID,
    OK,
    TOO_LARGE,
    UNAVAILABLE,
    BodyTooLarge,
    Limits,
    Receiver,
    decompress,
)
from opentelemetry.exporter.opik.sidecar._wire import retry_info, status_pb


def test_decompress_gzip_members_deflate_and_caps() -> None:
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


def test_decompress_stops_a_bomb_at_the_cap() -> None:
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


def _batch(n_traces: int, spans_per_trace: int = 2) -> DecodedBatch:
    def build(tracer: Any) -> None:
        for i in range(n_traces):
            with tracer.start_as_current_span(f"t{i}"):
                for j in range(spans_per_trace - 1):
                    tracer.start_span(f"t{i}-{j}").end()

    received = _receiver_decode(protobuf_body(make_spans(build)))
    return received


def _receiver_decode(body: bytes) -> DecodedBatch:
    from opentelemetry.exporter.opik._otlp import decode_protobuf

    return decode_protobuf(body)


def test_queueing_is_all_or_nothing_and_full_means_busy(opik: OpikStandin) -> None:
    opik.faults.add(Fault.respond(503, times=None))  # Opik down: nothing leaves the queue
    rx = _receiver(opik, max_queue_items=10, timeout=0.2, retry_deadline=60)
    try:
        assert rx.export(_batch(2)).code == OK  # 2 traces + 4 spans = 6 items
        out = rx.export(_batch(2))  # 6 more do not fit in 10: none of them is queued
        assert out.code == BUSY and out.retry_after > 0 and "retry later" in out.message
        assert rx.writer.pending() == 6 and rx.spans_refused == 4
        big = rx.export(_batch(6))  # 12 spans can never fit in 10, full queue or not: too large, not busy
        assert big.code == TOO_LARGE and "more than the sidecar's queue holds" in big.message
        rx.start_draining()
        assert rx.export(_batch(1)).code == UNAVAILABLE
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
        out = rx.export(_batch(1, 3))
        assert out.code == OK and out.rejected == 3 and "internal error" in out.message
        # the bug is logged by type and place; its message (it may quote span content) is not
        assert "RuntimeError" in caplog.text and "process (test_sidecar_receiver.py:" in caplog.text
        assert "a mapping bug" not in caplog.text
        assert rx.decode(b"\x0a\x02\x0a\x00", is_json=False).records == []  # type: ignore[union-attr]
        bad: List[Any] = [rx.decode(b"\xff" * 10, is_json=False), rx.decode(b"{", is_json=True)]
        assert [b.code for b in bad] == [INVALID, INVALID]
    finally:
        rx.writer.shutdown(0.5)


def test_refused_credentials_make_senders_keep_their_spans() -> None:
    """Without a spool the writer would drop what it cannot authenticate: answer 503 instead of acknowledging."""
    locked = OpikStandin(api_key="the-right-key").start()
    try:
        rx = _receiver(locked, api_key="a-wrong-key", retry_deadline=1.5)
        try:
            assert rx.export(_batch(1)).code == OK  # accepted before anyone knows
            assert rx.writer.flush(5)  # ... refused by Opik for the whole retry deadline: the writer pauses
            out = rx.export(_batch(1))
            assert out.code == UNAVAILABLE and "credentials" in out.message and out.retry_after > 0
            assert "a-wrong-key" not in out.message
        finally:
            rx.writer.shutdown(0.5)
    finally:
        locked.stop()


# -- answer first, map after (what opik-otel serve runs) ---------------------------------


class _GatedPipeline(Pipeline):
    """The real pipeline, held at a gate: shows what is answered before mapping ends."""

    def __init__(self, settings: Any, stats: Stats) -> None:
        super().__init__(settings, stats=stats)
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.fail_next = False

    def process(self, records: Any, default_project: Any = None) -> Any:
        self.entered.set()
        assert self.gate.wait(10)
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("a mapping bug")
        return super().process(records, default_project)


@contextmanager
def _async_receiver(opik: OpikStandin, shutdown: float = 1.0, **kw: Any) -> Iterator[Tuple[Receiver, _GatedPipeline]]:
    """A receiver that maps on its own thread through a gated pipeline; opened, then always
    released (gate open, mapping finished, writer shut down) whatever the test asserted."""
    settings = kw.pop("settings", {})
    limits = kw.pop("limits", None) or Limits()
    s = resolve_settings(dict({"url": opik.url}, **settings))
    stats = Stats()
    pipeline = _GatedPipeline(s, stats)
    rx = Receiver(s, pipeline, Writer(s, stats=stats), stats, limits, map_async=True, **kw)
    try:
        yield rx, pipeline
    finally:
        pipeline.gate.set()
        rx.finish_mapping(5)
        rx.writer.shutdown(shutdown)


def test_async_answers_before_mapping_and_delivers_after(opik: OpikStandin) -> None:
    with _async_receiver(opik) as (rx, pipeline):
        t0 = time.monotonic()
        out = rx.export(_batch(2, 3))
        assert out.code == OK and out.rejected == 0
        assert time.monotonic() - t0 < 1.0  # answered while the mapping is still held at the gate
        assert pipeline.entered.wait(5) and rx.pending_spans() == 6
        assert "opik_otel_receiver_spans_pending 6" in rx.metrics_text()
        assert opik.spans == {}  # nothing mapped, nothing sent yet
        pipeline.gate.set()
        opik.wait_for_counts(traces=2, spans=6)
        assert rx.pending_spans() == 0 and rx._reserved_items == 0 and rx._reserved_bytes == 0


def test_async_waits_for_mapping_room_then_says_busy(opik: OpikStandin) -> None:
    with _async_receiver(opik, max_pending_spans=4, max_wait=0.3) as (rx, pipeline):
        assert rx.export(_batch(2, 2)).code == OK  # 4 spans pending: the bound
        assert pipeline.entered.wait(5)
        t0 = time.monotonic()
        out = rx.export(_batch(1, 2))
        waited = time.monotonic() - t0
        assert out.code == BUSY and "mapping is behind" in out.message and out.retry_after > 0
        assert 0.25 <= waited < 3
        assert rx.spans_refused == 2
        # a waiting request is admitted as soon as the mapping makes room
        result: List[Any] = []
        rx.max_wait = 10
        waiter = threading.Thread(target=lambda: result.append(rx.export(_batch(1, 2))))
        waiter.start()
        time.sleep(0.2)
        assert not result  # still waiting
        pipeline.gate.set()
        waiter.join(10)
        assert result and result[0].code == OK
        opik.wait_for_counts(traces=3, spans=6)


def test_async_reservations_count_against_the_writer_bounds(opik: OpikStandin) -> None:
    opik.faults.add(Fault.respond(503, times=None))  # Opik down: the writer keeps what it has
    with _async_receiver(opik, settings={"max_queue_items": 40, "timeout": 0.2, "retry_deadline": 60}, shutdown=0.5) as (rx, pipeline):
        try:
            # 6 spans reserve ceil(6 * 2.0 * 1.25) = 15 items before any is mapped
            assert rx.export(_batch(2, 3)).code == OK and rx._reserved_items == 15
            assert rx.export(_batch(2, 3)).code == OK and rx._reserved_items == 30
            out = rx.export(_batch(2, 3))  # 45 > 40: refused although nothing is in the writer yet
            assert out.code == BUSY and "queue to Opik is full" in out.message
            assert rx.writer.pending() == 0
            too_big = rx.export(_batch(10, 2))  # 20 spans reserve 50 items: more than the queue can hold
            assert too_big.code == TOO_LARGE
            pipeline.gate.set()
            assert rx.finish_mapping(10)
            assert rx.writer.pending() == 16  # 4 traces + 12 spans, all queued against their reservations
            assert rx._reserved_items == 0
        finally:
            opik.faults.clear()


def test_async_mapping_error_is_counted_and_the_thread_goes_on(opik: OpikStandin, caplog: pytest.LogCaptureFixture) -> None:
    with _async_receiver(opik) as (rx, pipeline):
        pipeline.fail_next = True
        assert rx.export(_batch(1, 3)).code == OK
        assert rx.export(_batch(1, 2)).code == OK
        pipeline.gate.set()
        opik.wait_for_counts(traces=1, spans=2)
        assert "RuntimeError" in caplog.text and "process (test_sidecar_receiver.py:" in caplog.text
        assert "a mapping bug" not in caplog.text
        assert rx.stats.snapshot()["spans_rejected"] == 3
        assert rx.pending_spans() == 0 and rx._reserved_items == 0


def test_async_draining_maps_what_was_acknowledged(opik: OpikStandin) -> None:
    with _async_receiver(opik, max_pending_spans=2, max_wait=10) as (rx, pipeline):
        assert rx.export(_batch(1, 2)).code == OK
        assert pipeline.entered.wait(5)
        waiter: List[Any] = []
        t = threading.Thread(target=lambda: waiter.append(rx.export(_batch(1, 2))))
        t.start()
        time.sleep(0.2)
        rx.start_draining()  # the waiting request is answered at once, not after max_wait
        t.join(2)
        assert waiter and waiter[0].code == UNAVAILABLE
        assert rx.export(_batch(1)).code == UNAVAILABLE
        pipeline.gate.set()
        assert rx.finish_mapping(10)
        assert rx.writer.flush(10)
        assert len(opik.spans) == 2 and len(opik.traces) == 1  # the acknowledged request, nothing else


def test_async_answers_from_a_parsed_request_and_converts_it_on_the_mapping_thread(opik: OpikStandin, caplog: pytest.LogCaptureFixture) -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from opentelemetry.exporter.opik._otlp import DecodeLimits

    with _async_receiver(opik, limits=Limits(decode=DecodeLimits(max_attributes=3))) as (rx, pipeline):
        def build(tracer: Any) -> None:
            with tracer.start_as_current_span("wide", attributes={f"k{i}": i for i in range(6)}):
                tracer.start_span("child").end()

        req = ExportTraceServiceRequest.FromString(protobuf_body(make_spans(build)))
        req.resource_spans[0].scope_spans[0].spans[0].span_id = b"\x00" * 8  # one bad span: rejected in the answer
        batch = rx.decode(req.SerializeToString(), is_json=False)
        assert isinstance(batch, DecodedBatch) and batch.records == [] and batch.accepted == 1
        out = rx.export(batch)
        assert out.code == OK and out.rejected == 1 and "span id is all zeros" in out.message
        assert pipeline.entered.wait(5) and batch.records != []  # converted on the mapping thread
        pipeline.gate.set()
        opik.wait_for_counts(traces=1, spans=1)
        deadline = time.monotonic() + 5
        while "attribute limit" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "attribute limit" in caplog.text  # limits met after the answer are logged


def test_max_pending_spans_comes_from_the_flag_or_the_environment(opik: OpikStandin) -> None:
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
        assert sidecar.receiver.max_pending_spans == 1024 and sidecar.receiver._mapper is not None
    finally:
        sidecar.receiver.finish_mapping(5)
        sidecar.writer.shutdown(1)
