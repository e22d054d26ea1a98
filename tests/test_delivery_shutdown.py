"""flush/shutdown return within their timeouts with Opik down; the spool keeps what is left."""

from __future__ import annotations

import os
import time
from pathlib import Path

from conftest_delivery import assert_stored_exactly_once, make_exporter, make_spans, provider_with, wait_until
from opik_standin import Fault, OpikStandin


def _spooled_files(spool: Path) -> list:
    return sorted(p.name for p in spool.iterdir() if p.name.endswith(".opikspool"))


def test_shutdown_with_opik_down_returns_within_its_timeout_and_counts_the_drops() -> None:
    opik = OpikStandin().start()
    url = opik.url
    opik.stop()  # connection refused from now on
    exporter = make_exporter(url, retry_deadline=60)
    spans = make_spans(10, children=2)
    exporter.export(spans)
    time.sleep(0.2)  # the sender is now in its retry loop
    t0 = time.monotonic()
    exporter.shutdown(timeout_millis=1000)
    took = time.monotonic() - t0
    assert took <= 1.1, f"shutdown took {took:.3f} s"
    stats = exporter.stats()
    assert stats["dropped"] == {"shutdown": 40}  # 10 traces + 30 spans, none silently
    assert stats["retries"] > 0


def test_shutdown_with_a_hung_opik_returns_within_its_timeout(tmp_path: Path) -> None:
    with OpikStandin() as opik:
        opik.faults.add(Fault.stall(30, times=None))  # accepts, never answers
        exporter = make_exporter(opik.url, timeout=10, spool_dir=str(tmp_path))
        spans = make_spans(5, children=1)
        exporter.export(spans)
        wait_until(lambda: len(opik.requests) >= 1)
        t0 = time.monotonic()
        exporter.shutdown(timeout_millis=800)
        took = time.monotonic() - t0
        assert took <= 0.9, f"shutdown took {took:.3f} s"
        assert exporter.stats()["items_spooled"] == 15  # the in-flight batch was taken over
        opik.faults.clear()
        opik.stop()  # wakes the stalled handler


def test_shutdown_spools_and_a_new_exporter_resends_when_opik_is_up(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    opik = OpikStandin().start()
    url = opik.url
    opik.stop()
    first = make_exporter(url, retry_deadline=60, spool_dir=str(spool))
    provider = provider_with(first)  # the SDK's own shutdown path: provider -> processor -> exporter
    tracer = provider.get_tracer("spool")
    for i in range(8):
        with tracer.start_as_current_span(f"run1-{i}"):
            with tracer.start_as_current_span(f"run1-{i}.child"):
                pass
    t0 = time.monotonic()
    provider.shutdown()
    took = time.monotonic() - t0
    assert took < 1.0, f"provider shutdown took {took:.3f} s with a spool and Opik down"
    stats = first.stats()
    assert stats["items_spooled"] == 24 and stats["dropped"] == {}, stats
    assert _spooled_files(spool)

    opik.start()  # Opik is back; the next run of the application re-sends what was spooled
    try:
        second = make_exporter(url, spool_dir=str(spool))
        wait_until(lambda: len(opik.spans) >= 16 and len(opik.traces) >= 8, 10)
        wait_until(lambda: second.stats()["items_unspooled"] == 24, 10)
        wait_until(lambda: not _spooled_files(spool) and not os.listdir(spool / "claimed"))
        assert len(opik.spans) == 16 and len(opik.traces) == 8
        assert opik.duplicates() == {}
        stats = second.stats()
        assert stats["items_unspooled"] == 24 and stats["traces_exported"] == 8 and stats["spans_exported"] == 16
        assert {r["name"] for r in opik.traces.values()} == {f"run1-{i}" for i in range(8)}
        second.shutdown()
    finally:
        opik.stop()


def test_force_flush_with_opik_down_returns_in_time_spools_then_delivers(tmp_path: Path) -> None:
    opik = OpikStandin().start()
    url = opik.url
    opik.stop()
    exporter = make_exporter(url, retry_deadline=60, spool_dir=str(tmp_path))
    spans = make_spans(4, children=1)
    exporter.export(spans)
    t0 = time.monotonic()
    assert exporter.force_flush(500) is False
    took = time.monotonic() - t0
    assert took <= 0.6, f"force_flush took {took:.3f} s"
    assert exporter.stats()["items_spooled"] == 12
    opik.start()
    try:
        later = make_spans(2, prefix="later")
        exporter.export(later)
        assert exporter.force_flush(5_000)
        wait_until(lambda: len(opik.spans) == 10, 10)
        assert_stored_exactly_once(opik, spans + later)
        exporter.shutdown()
    finally:
        opik.stop()


def test_export_after_shutdown_is_refused_and_counted(opik: OpikStandin) -> None:
    exporter = make_exporter(opik.url)
    exporter.shutdown()
    assert exporter.export(make_spans(1)).name == "FAILURE"
    exporter.shutdown()  # idempotent
