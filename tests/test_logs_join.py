"""The join's bounds: log records whose spans never come, through the real SDK log pipeline."""

from __future__ import annotations

import gc
import random
import time
import tracemalloc

from opentelemetry._logs import LogRecord
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

from opentelemetry.exporter.opik import OpikLogExporter
from opentelemetry.exporter.opik._join import MAX_PENDING_BYTES, MAX_PENDING_RECORDS, LogJoin, to_event
from opentelemetry.exporter.opik._record import SpanRecord


def test_100k_log_records_whose_spans_never_come_stay_bounded_and_are_counted() -> None:
    join = LogJoin(window=0.1, pending_seconds=60.0)
    exporter = OpikLogExporter(join=join)
    provider = LoggerProvider()
    provider.add_log_record_processor(BatchLogRecordProcessor(exporter, max_queue_size=4096, max_export_batch_size=512))
    logger = provider.get_logger("openai-app")
    rnd = random.Random(7)
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    peak_join = 0
    n = 100_000
    for i in range(n):
        logger.emit(
            LogRecord(
                trace_id=rnd.getrandbits(128),
                span_id=rnd.getrandbits(64) or 1,
                event_name="gen_ai.user.message",
                attributes={"gen_ai.system": "openai"},
                body={"content": f"question number {i} " + "x" * 80},
            )
        )
        if i % 10_000 == 9_999:
            provider.force_flush()
            sizes = join.sizes()
            assert sizes["pending_records"] <= MAX_PENDING_RECORDS
            assert sizes["pending_bytes"] <= MAX_PENDING_BYTES
            peak_join = max(peak_join, tracemalloc.get_traced_memory()[0] - base)
    provider.force_flush()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # documented bound: 20,000 records / 16 MiB encoded wait; in Python objects that is well under 64 MiB
    assert peak - base < 64 * 1024 * 1024, (peak - base) / 2**20
    assert peak_join < 48 * 1024 * 1024
    dropped = exporter.stats()["dropped"]
    assert dropped == {"log_join_full": n - MAX_PENDING_RECORDS}, dropped  # the oldest make room
    join.tick(time.monotonic() + 61)  # the join's thread does this on its own after 60 s
    stats = exporter.stats()
    dropped = stats["dropped"]
    assert dropped == {"log_join_full": n - MAX_PENDING_RECORDS, "log_span_never_came": MAX_PENDING_RECORDS}, dropped
    assert stats["pending_records"] == 0 and stats["log_records_received"] == n
    provider.shutdown()


def test_log_records_that_are_not_genai_are_counted_and_not_kept() -> None:
    join = LogJoin()
    exporter = OpikLogExporter(join=join)
    provider = LoggerProvider()
    provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
    logger = provider.get_logger("app")
    for i in range(50):
        logger.emit(LogRecord(trace_id=5, span_id=i + 1, body=f"GET /health {i}", attributes={"http.status": 200}))
    provider.force_flush()
    stats = exporter.stats()
    assert stats["log_records_ignored"] == 50 and stats["pending_records"] == 0
    provider.shutdown()


def test_a_log_body_becomes_the_keys_the_span_event_carries() -> None:
    ev = to_event(
        "gen_ai.choice",
        1,
        {"gen_ai.system": "openai", "event.name": "gen_ai.choice"},
        {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "Hi"}},
    )
    assert ev.attributes == {
        "gen_ai.system": "openai",
        "index": 0,
        "finish_reason": "stop",
        "message": {"role": "assistant", "content": "Hi"},
    }
    assert to_event("gen_ai.user.message", 1, {}, "Hello").attributes == {"content": "Hello"}
    assert to_event("gen_ai.content.prompt", 1, {}, "Hello").attributes == {"gen_ai.prompt": "Hello"}


class _Sink:
    def __init__(self) -> None:
        self.delivered: list = []

    def deliver_joined(self, records: list, resend: bool) -> None:
        self.delivered.append((records, resend))


def _llm(span_id: int, start: int, end: int) -> SpanRecord:
    return SpanRecord(
        trace_id=span_id, span_id=span_id, parent_span_id=None, name="openai.chat", start_ns=start, end_ns=end,
        attributes={"llm.request.type": "chat", "gen_ai.system": "openai"},
        scope_name="opentelemetry.instrumentation.openai.v1",
    )


_CHOICE = {"index": 0, "finish_reason": "stop", "message": {"content": "Hello"}}


def test_a_spanless_answer_joins_the_one_span_that_ended_right_after_it_in_either_order() -> None:
    t = 1_000_000_000_000
    # the record first, then its span
    join = LogJoin()
    join.logs([(0, 0, "gen_ai.choice", t + 5_000_000 - 50_000, {}, _CHOICE)])
    (rec,) = join.spans([_llm(1, t, t + 5_000_000)], _Sink())
    assert [e.name for e in rec.events] == ["gen_ai.choice"]
    # the span first (kept after sending), then the record: the span is sent again with it
    join, sink = LogJoin(keep_always=True), _Sink()
    join.spans([_llm(2, t, t + 5_000_000)], sink)
    join.logs([(0, 0, "gen_ai.choice", t + 5_000_000 - 50_000, {}, _CHOICE)])
    ((records, resend),) = sink.delivered
    assert resend and [e.name for e in records[0].events] == ["gen_ai.choice"]


def test_a_spanless_answer_two_spans_could_own_is_not_guessed() -> None:
    t = 1_000_000_000_000
    join, sink = LogJoin(keep_always=True), _Sink()
    join.spans([_llm(3, t, t + 5_000_000), _llm(4, t + 1_000, t + 5_000_100)], sink)  # two concurrent streams
    join.logs([(0, 0, "gen_ai.choice", t + 4_990_000, {}, _CHOICE)])
    assert sink.delivered == []
    assert join.stats.snapshot()["dropped"] == {"log_record_without_span": 1}
