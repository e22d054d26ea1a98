"""The sidecar's transport-independent core, in process: decompression caps, all-or-nothing queueing,
draining, and the guard that turns an internal error into a counted partial success (never a 5xx)."""

from __future__ import annotations

import gzip
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
        assert "a mapping bug" in caplog.text
        assert rx.decode(b"\x0a\x02\x0a\x00", is_json=False).records == []  # type: ignore[union-attr]
        bad: List[Any] = [rx.decode(b"\xff" * 10, is_json=False), rx.decode(b"{", is_json=True)]
        assert [b.code for b in bad] == [INVALID, INVALID]
    finally:
        rx.writer.shutdown(0.5)


def test_refused_credentials_make_senders_keep_their_spans() -> None:
    """Without a spool the writer would drop what it cannot authenticate: answer 503 instead of acknowledging."""
    locked = OpikStandin(api_key="the-right-key").start()
    try:
        rx = _receiver(locked, api_key="a-wrong-key")
        try:
            assert rx.export(_batch(1)).code == OK  # accepted before anyone knows
            assert rx.writer.flush(5)  # ... and refused by Opik: the writer pauses
            out = rx.export(_batch(1))
            assert out.code == UNAVAILABLE and "credentials" in out.message and out.retry_after > 0
            assert "a-wrong-key" not in out.message
        finally:
            rx.writer.shutdown(0.5)
    finally:
        locked.stop()
