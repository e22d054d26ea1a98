"""Splitting on 413, shrinking a single oversized span, and isolating items Opik rejects."""

from __future__ import annotations

import logging
from typing import Any, Dict, Optional

import pytest
from conftest_delivery import assert_stored_exactly_once, log_lines, make_exporter, make_spans
from opik_standin import Fault, OpikStandin, RecordedRequest, Reply

SPANS = "/v1/private/spans/batch"
NOTE = "opik.exporter.truncated"


def _original_size(note: Dict[str, Any]) -> int:
    orig = note["original_size_bytes"]
    return orig if isinstance(orig, int) else sum(orig.values())


def test_413_over_n_bytes_splits_until_every_item_arrives(opik: OpikStandin) -> None:
    limit = 20_000
    opik.faults.add(Fault.body_limit(limit, path=SPANS))
    exporter = make_exporter(opik.url, compression="none")
    spans = make_spans(40, children=4, attrs={"payload": "p" * 600})
    exporter.export(spans)
    assert exporter.force_flush(10_000)

    assert_stored_exactly_once(opik, spans)
    span_requests = [r for r in opik.requests if r.path == "/api" + SPANS]
    assert any(r.status == 413 for r in span_requests)
    accepted = [r for r in span_requests if r.status == 204]
    assert len(accepted) > 1 and all(r.decoded_size <= limit for r in accepted)
    assert sum(len(r.json["spans"]) for r in accepted) == len(spans)
    assert exporter.stats()["dropped"] == {}
    # The byte budget learned from the 413s: a second export needs no 413 at all.
    before = opik.count(SPANS, 413)
    more = make_spans(40, children=4, attrs={"payload": "q" * 600}, prefix="again")
    exporter.export(more)
    assert exporter.force_flush(10_000)
    assert opik.count(SPANS, 413) - before <= 1
    exporter.shutdown()


def test_single_oversized_span_arrives_truncated_with_its_marker(opik: OpikStandin, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    opik.faults.add(Fault.body_limit(30_000, path=SPANS))
    exporter = make_exporter(opik.url)
    big = "The quick brown fox jumps over the lazy dog. " * 2_700  # 120 kB of prose in one attribute
    spans = make_spans(1, children=1, attrs={"input.value": big, "note": "kept"})
    exporter.export(spans)
    assert exporter.force_flush(10_000)

    assert_stored_exactly_once(opik, spans)
    root = next(r for r in opik.spans.values() if r.get("parent_span_id") is None)
    text = str(root["input"])
    assert "truncated" in text and len(text) < 30_000
    note = root["metadata"][NOTE]
    assert _original_size(note) >= len(big)
    # The trace row is sent to another endpoint, under no limit: it keeps everything.
    (trace,) = opik.traces.values()
    assert big in str(trace["input"])
    assert exporter.stats()["items_shrunk"] == 1
    assert any("too large" in line for line in log_lines(caplog))
    exporter.shutdown()


def test_item_over_the_batch_byte_budget_is_shrunk_before_sending(opik: OpikStandin) -> None:
    exporter = make_exporter(opik.url, batch_max_bytes=8192)
    spans = make_spans(1, attrs={"output.value": "Lorem ipsum, dolor sit amet. " * 2_000})
    exporter.export(spans)
    assert exporter.force_flush(10_000)
    assert opik.count(status=413) == 0
    for row in list(opik.spans.values()) + list(opik.traces.values()):
        assert NOTE in row["metadata"]
    assert all(r.decoded_size <= 8192 for r in opik.requests)
    exporter.shutdown()


def _poison(item: Dict[str, Any]) -> bool:
    return item.get("name") == "poison"


def test_one_rejected_item_in_500_costs_only_itself(opik: OpikStandin, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    opik.faults.add(Fault.poison(_poison, path=SPANS))
    exporter = make_exporter(opik.url)
    names = [f"ok-{j}" for j in range(499)]
    names.insert(137, "poison")
    spans = make_spans(1, children=499, child_names=names)  # 500 spans: one root, 499 children
    bad = next(s for s in spans if s.name == "poison")
    exporter.export(spans)
    assert exporter.force_flush(10_000)

    stored = {row["name"] for row in opik.spans.values()}
    assert len(opik.spans) == 499 and "poison" not in stored
    assert opik.duplicates() == {}
    lines = [line for line in log_lines(caplog, logging.ERROR) if "rejected" in line]
    assert len(lines) == 1
    assert "'poison'" in lines[0] and f"{bad.context.span_id:016x}" in lines[0]
    assert "injected fault" in lines[0]  # Opik's own error text
    assert exporter.stats()["dropped"] == {"rejected": 1}
    # Opik's 422 names the index: three requests, not a bisection.
    assert opik.count(SPANS) <= 3
    exporter.shutdown()


def test_bisection_isolates_rejected_items_when_opik_names_no_index(opik: OpikStandin) -> None:
    def reject_bad(req: RecordedRequest) -> Optional[Reply]:
        spans = (req.json or {}).get("spans", [])
        if any(s.get("name", "").startswith("bad") for s in spans):
            return Reply(400, {"code": 400, "message": "Invalid UUID for id"})
        return None

    opik.faults.add(Fault.custom(reject_bad, path=SPANS))
    exporter = make_exporter(opik.url)
    names = [f"good-{j}" for j in range(198)]
    names.insert(20, "bad-1")
    names.insert(150, "bad-2")
    spans = make_spans(1, children=200, child_names=names)
    exporter.export(spans)
    assert exporter.force_flush(10_000)
    assert {r["name"] for r in opik.spans.values()} == {s.name for s in spans} - {"bad-1", "bad-2"}
    assert exporter.stats()["dropped"] == {"rejected": 2}
    assert opik.count(SPANS) < 40  # about 2 log2(200) per bad item, not one per item
    exporter.shutdown()
