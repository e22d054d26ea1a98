"""Riding out Opik outages: connection refused, 503s, 429 hints, a timeout after Opik stored the batch."""

from __future__ import annotations

import email.utils
import time
from typing import List

from conftest_delivery import (
    Collect,
    assert_stored_exactly_once,
    make_exporter,
    make_spans,
    provider_with,
    writer_of,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opik_standin import Fault, OpikStandin

SPANS = "/v1/private/spans/batch"
TRACES = "/v1/private/traces/batch"


def test_outage_refused_then_503_during_a_steady_stream_stores_everything_once(opik: OpikStandin) -> None:
    exporter = make_exporter(opik.url, retry_deadline=60, backoff_cap=0.4)
    sink = Collect()
    provider = provider_with(sink)  # keeps a copy of every span for the assertions
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=50))
    tracer = provider.get_tracer("outage")

    def stream(seconds: float, tag: str) -> None:
        end = time.monotonic() + seconds
        i = 0
        while time.monotonic() < end:
            with tracer.start_as_current_span(f"{tag}-{i}"):
                with tracer.start_as_current_span(f"{tag}-{i}.child"):
                    pass
            i += 1
            time.sleep(0.02)

    stream(0.6, "before")
    opik.stop()  # connection refused
    stream(1.5, "refused")
    opik.start()
    outage = opik.faults.add(Fault.respond(503, times=None))
    stream(1.5, "503")
    opik.faults.remove(outage)
    stream(0.6, "after")
    assert exporter.force_flush(20_000)
    provider.shutdown()
    collected: List[ReadableSpan] = sink.spans

    assert len(collected) > 100
    assert_stored_exactly_once(opik, collected)
    stats = exporter.stats()
    assert stats["dropped"] == {}
    assert stats["retries"] > 0 and stats["requests_failed"] > 0
    assert stats["spans_exported"] == len(collected)
    assert opik.count(status=503) > 0


def _attempt_times(opik: OpikStandin, path: str) -> List[float]:
    return [r.time for r in opik.requests if r.path == "/api" + path]


def test_429_with_ratelimit_reset_waits_at_least_that_long(opik: OpikStandin) -> None:
    exporter = make_exporter(opik.url)
    opik.faults.add(Fault.respond(429, times=1, path=TRACES, headers={"RateLimit-Reset": "2"}))
    spans = make_spans(1, children=1)
    exporter.export(spans)
    assert exporter.force_flush(10_000)
    first, second = _attempt_times(opik, TRACES)[:2]
    assert second - first >= 2.0, f"retried after {second - first:.3f} s"
    assert second - first < 3.0  # the hint, not a runaway backoff
    # Spans before their trace row: they went out before the trace request was first tried.
    assert max(_attempt_times(opik, SPANS)) < first
    assert_stored_exactly_once(opik, spans)
    exporter.shutdown()


def test_retry_after_as_an_http_date_is_honoured(opik: OpikStandin) -> None:
    exporter = make_exporter(opik.url)
    when = time.time() + 2.5
    date = email.utils.formatdate(when, usegmt=True)  # whole seconds: the server's "not before"
    opik.faults.add(Fault.respond(503, times=1, path=SPANS, headers={"Retry-After": date}))
    spans = make_spans(1, children=2)
    exporter.export(spans)
    assert exporter.force_flush(10_000)
    attempts = _attempt_times(opik, SPANS)
    assert len(attempts) == 2
    assert attempts[1] >= int(when) - 0.01, f"retried {int(when) - attempts[1]:.3f} s before the date"
    assert attempts[1] - attempts[0] < 3.5
    assert_stored_exactly_once(opik, spans)
    exporter.shutdown()


def test_timeout_after_opik_stored_the_batch_then_retry_makes_no_duplicate(opik: OpikStandin) -> None:
    exporter = make_exporter(opik.url, timeout=0.5)
    opik.faults.add(Fault.stall(1.5, times=1, after_store=True, path=SPANS))
    spans = make_spans(2, children=3)
    exporter.export(spans)
    assert exporter.force_flush(10_000)
    # Both attempts carried the same rows, byte for byte the same ids and links.
    sent = [r.json["spans"] for r in opik.requests if r.path == "/api" + SPANS]
    assert len(sent) == 2 and sent[0] == sent[1]
    assert len(sent[0]) == 8
    assert_stored_exactly_once(opik, spans)
    assert exporter.stats()["retries"] >= 1
    exporter.shutdown()


def test_non_retryable_statuses_are_never_retried_unchanged(opik: OpikStandin) -> None:
    exporter = make_exporter(opik.url)
    opik.faults.add(Fault.respond(404, times=None, path=TRACES))
    spans = make_spans(3)
    exporter.export(spans)
    assert exporter.force_flush(5_000)
    assert opik.count(TRACES) == 1  # one request, no retry
    assert exporter.stats()["dropped"] == {"http_404": 3}
    assert len(opik.spans) == 3
    exporter.shutdown()


def test_retry_gives_up_at_the_deadline_and_counts_the_drop(opik: OpikStandin) -> None:
    exporter = make_exporter(opik.url, retry_deadline=1.0, backoff_cap=0.2)
    opik.faults.add(Fault.respond(503, times=None))
    spans = make_spans(2)
    t0 = time.monotonic()
    exporter.export(spans)
    assert exporter.force_flush(10_000)
    took = time.monotonic() - t0
    assert took < 3.0  # two chunks (traces, spans), each given up after about 1 s
    assert exporter.stats()["dropped"] == {"retry_deadline": 4}
    assert writer_of(exporter).pending() == 0
    exporter.shutdown()


def test_a_last_attempt_is_made_just_before_the_deadline(opik: OpikStandin) -> None:
    # Long jittered waits would overshoot the 2.5 s deadline; the last wait is clipped instead.
    exporter = make_exporter(opik.url, retry_deadline=2.5, timeout=0.5, backoff_cap=10)
    writer_of(exporter).backoff_base = 2.0
    outage = opik.faults.add(Fault.respond(503, times=None, path=TRACES))
    spans = make_spans(1)
    t0 = time.monotonic()
    exporter.export(spans)
    time.sleep(1.2)
    opik.faults.remove(outage)
    assert exporter.force_flush(5_000)
    assert time.monotonic() - t0 < 2.6
    assert exporter.stats()["dropped"] == {}
    assert_stored_exactly_once(opik, spans)
    exporter.shutdown()
