"""Answers that mislead or are slow: a 422 naming the wrong item, an Opik slower than the client timeout."""

from __future__ import annotations

import time
from collections import Counter
from typing import Optional

from conftest_delivery import items_in_requests, make_exporter, make_spans
from opik_standin import Fault, OpikStandin, RecordedRequest, Reply

SPANS = "/v1/private/spans/batch"


def test_a_422_naming_the_wrong_index_costs_no_good_item(opik: OpikStandin) -> None:
    """A stale or proxied error names index 0 whatever is wrong: the rest fails again, so it is bisected."""

    def wrong_index(req: RecordedRequest) -> Optional[Reply]:
        spans = (req.json or {}).get("spans", [])
        if any(s.get("name", "").startswith("bad") for s in spans):
            return Reply(422, {"errors": ["spans[0].name: is not valid"]})
        return None

    opik.faults.add(Fault.custom(wrong_index, path=SPANS))
    exporter = make_exporter(opik.url)
    names = [f"good-{j}" for j in range(997)]
    for at in (13, 500, 871):
        names.insert(at, f"bad-{at}")
    spans = make_spans(1, children=1000, child_names=names)  # 1001 spans: a root and 1000 children
    exporter.export(spans)
    assert exporter.force_flush(30_000)
    stored = Counter(r["name"] for r in opik.spans.values())
    assert set(stored) == {s.name for s in spans} - {"bad-13", "bad-500", "bad-871"}
    assert max(stored.values()) == 1 and opik.duplicates() == {}
    assert exporter.stats()["dropped"] == {"rejected": 3}
    assert opik.count(SPANS) < 150  # bisection, not one request per item
    exporter.shutdown()


def test_opik_slower_than_the_timeout_then_normal_delivers_everything(opik: OpikStandin) -> None:
    """Opik stores each request and answers after 1.5 s, with a 0.5 s client timeout; then it is fast again."""
    opik.faults.add(Fault.stall(1.5, times=6, after_store=True))
    exporter = make_exporter(opik.url, timeout=0.5, retry_deadline=30)
    spans = make_spans(100, children=4)
    exporter.export(spans)
    assert exporter.force_flush(30_000)
    assert len(opik.traces) == 100 and len(opik.spans) == 500 and opik.duplicates() == {}
    stats = exporter.stats()
    assert stats["traces_exported"] == 100 and stats["spans_exported"] == 500 and stats["dropped"] == {}
    # each timed-out request is retried with twice the timeout (0.5, 1, 2 s), so each body is
    # stored at most three times (two answers the client gave up on, one it read), not until the deadline
    writes = Counter(items_in_requests(opik, "spans") + items_in_requests(opik, "traces"))
    assert len(writes) == 600 and max(writes.values()) <= 3, opik.summary()
    exporter.shutdown()


def test_early_bursts_of_5xx_and_dropped_connections_then_recovery_within_the_shutdown_timeout(
    opik: OpikStandin,
) -> None:
    """Long backoff waits after a burst of failures; Opik recovers; shutdown cuts the wait short for an attempt."""
    from conftest_delivery import provider_with, wait_until

    opik.faults.add(Fault.drop_connection(times=1))
    opik.faults.add(Fault.respond(503, times=None))
    exporter = make_exporter(opik.url, backoff_cap=30.0)
    exporter._writer.backoff_base = 4.0  # type: ignore[union-attr]  # waits of up to 4, 8, 16 s ... 30 s
    provider = provider_with(exporter)
    tracer = provider.get_tracer("burst")
    for i in range(200):
        with tracer.start_as_current_span(f"burst-{i}"):
            with tracer.start_as_current_span(f"burst-{i}.child"):
                pass
    wait_until(lambda: opik.count(status=503) >= 1, 30, "no burst")
    opik.faults.clear()  # Opik recovers while the sender is in a backoff wait of up to 8 s
    t0 = time.monotonic()
    provider.shutdown()  # 30 s timeout: the sender may be in a long backoff wait
    took = time.monotonic() - t0
    # not a speed check: under the 4 s backoff base, so the wait was cut short rather than slept out
    assert took < exporter._writer.backoff_base, f"shutdown took {took:.1f} s"  # type: ignore[union-attr]
    assert len(opik.traces) == 200 and len(opik.spans) == 400
    assert exporter.stats()["dropped"] == {}
    assert opik.duplicates() == {}
