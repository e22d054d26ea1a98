"""The durable queue with real files: what stays on disk, and a full memory queue that keeps items there."""

from __future__ import annotations

import os
from pathlib import Path
from typing import List

from conftest_delivery import assert_stored_exactly_once, make_exporter, make_spans, wait_until
from opik_standin import Fault, OpikStandin

from opentelemetry.exporter.opik._config import resolve_settings
from opentelemetry.exporter.opik._delivery.durable import DurableLog
from opentelemetry.exporter.opik._items import Item
from opentelemetry.exporter.opik._pipeline import Pipeline
from opentelemetry.exporter.opik._record import from_readable_span
from opentelemetry.exporter.opik._spool import SUFFIX, Spool


def _items(n_traces: int, prefix: str) -> List[Item]:
    settings = resolve_settings({"project_name": "durable"})
    return Pipeline(settings).process([from_readable_span(s) for s in make_spans(n_traces, 1, prefix)]).items


def _ready(d: Path) -> List[str]:
    return sorted(p.name for p in d.iterdir() if p.name.endswith(SUFFIX))


def test_a_segment_leaves_the_disk_only_once_every_item_ended(tmp_path: Path) -> None:
    spool = Spool(str(tmp_path), 10 * 1024 * 1024)
    log = DurableLog(spool, sync_interval=0.01)
    items = _items(3, "seg")  # 3 traces + 3 spans
    assert log.append(items)
    assert len(os.listdir(tmp_path / "claimed")) == 1 and _ready(tmp_path) == []
    assert log.settle(items[:2], keep=False) == []  # delivered
    assert len(os.listdir(tmp_path / "claimed")) == 1  # four still open
    assert log.settle(items[2:3], keep=True) == []  # given up for now: stays on disk
    assert log.settle(items[3:], keep=False) == []
    assert os.listdir(tmp_path / "claimed") == []
    (ready,) = _ready(tmp_path)  # cut down to the kept item, back in the spool for a re-send
    claim = spool.claim()
    assert claim is not None and [i.id for i in claim.items] == [items[2].id]
    claim.done()
    other = _items(1, "other")
    assert log.settle(other, keep=False) == other  # not in the log: handed back
    assert log.append(other) and log.settle(other, keep=False) == []
    assert os.listdir(tmp_path / "claimed") == [] and _ready(tmp_path) == []
    assert log.pending() == 0


def test_a_segment_that_does_not_fit_the_spool_bound_is_not_written(tmp_path: Path) -> None:
    spool = Spool(str(tmp_path), 2048)
    log = DurableLog(spool)
    assert not log.append(_items(20, "big"))
    assert os.listdir(tmp_path / "claimed") == []


def test_with_a_spool_a_full_memory_queue_keeps_items_on_disk(opik: OpikStandin, tmp_path: Path) -> None:
    down = opik.faults.add(Fault.respond(503, times=None))
    exporter = make_exporter(opik.url, spool_dir=str(tmp_path), max_queue_items=50, retry_deadline=60)
    spans = make_spans(100, children=2)  # 100 trace rows + 300 spans: eight times the memory bound
    assert exporter.export(spans).name == "SUCCESS"
    stats = exporter.stats()
    assert stats["dropped"] == {} and stats["items_spooled"] == 350
    opik.faults.remove(down)
    exporter._writer.replay_retry = 0.0  # type: ignore[union-attr]  # re-send the spool at once
    wait_until(lambda: len(opik.spans) == 300 and len(opik.traces) == 100, 30, opik.summary())
    assert exporter.force_flush(10_000)
    wait_until(lambda: not _ready(tmp_path) and not os.listdir(tmp_path / "claimed"), 10)
    assert_stored_exactly_once(opik, spans)
    assert exporter.stats()["dropped"] == {}
    exporter.shutdown()
