"""The queue counts each batch's bytes once: put with the caller's total, finish with what take counted."""

from __future__ import annotations

from opentelemetry.exporter.opik._delivery.queue import MemoryQueue
from opentelemetry.exporter.opik._items import Item


def _items(sizes: list) -> list:
    return [Item("span", str(i), b"x" * n, f"s{i}") for i, n in enumerate(sizes)]


def test_put_with_a_given_total_counts_the_same_bytes() -> None:
    a, b = MemoryQueue(100, 10_000), MemoryQueue(100, 10_000)
    items = _items([10, 20, 30])
    with a.cond, b.cond:
        assert a.put(items, False) == b.put(items, False, 60) == 3
    assert a.gauges() == b.gauges() == {"queue_items": 3, "queue_bytes": 60}


def test_finish_takes_off_what_take_counted_and_a_takeover_leaves_nothing() -> None:
    q = MemoryQueue(100, 10_000)
    with q.cond:
        q.put(_items([10, 20, 30]), False)
        batch = q.take(2, 10_000)  # two items in flight, one queued
    assert q.gauges() == {"queue_items": 3, "queue_bytes": 60}
    q.finish(batch)
    assert q.gauges() == {"queue_items": 1, "queue_bytes": 30}
    with q.cond:
        batch = q.take(10, 10_000)
        q.put(_items([5]), False)
    assert q.take_over()  # flush/shutdown took everything meanwhile
    q.finish(batch)
    assert q.gauges() == {"queue_items": 0, "queue_bytes": 0}
    with q.cond:
        q.put(_items([7]), False)
        batch = q.take(10, 10_000)
    q.finish(batch)
    assert q.gauges() == {"queue_items": 0, "queue_bytes": 0}
