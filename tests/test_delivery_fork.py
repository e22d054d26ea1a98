"""``fork`` after spans were queued: the child starts clean, its own exports work, nothing is sent twice."""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections import Counter
from typing import Any

import pytest
from conftest_delivery import make_exporter, make_spans, wait_until, writer_of
from opik_standin import Fault, OpikStandin

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")

SPANS = "/v1/private/spans/batch"


def _child(exporter: Any, queue: Any) -> None:
    """Runs in the forked child: export its own spans with the inherited exporter."""
    try:
        writer = writer_of(exporter)
        inherited = writer.pending()
        exporter.export(make_spans(3, children=1, prefix="child"))
        flushed = exporter.force_flush(10_000)
        queue.put({"inherited": inherited, "flushed": flushed, "stats": exporter.stats()})
        exporter.shutdown(timeout_millis=2_000)
    except BaseException as exc:  # noqa: BLE001 - report anything to the parent
        queue.put({"error": repr(exc)})
        sys.exit(1)


def test_fork_after_spans_were_queued(opik: OpikStandin) -> None:
    exporter = make_exporter(opik.url)
    # The parent's first request hangs in Opik for a while, so more spans queue up behind it.
    opik.faults.add(Fault.stall(1.5, times=1, path="/v1/private/spans/batch"))
    exporter.export(make_spans(2, children=1, prefix="parent-a"))
    wait_until(lambda: len(opik.requests) == 1)
    exporter.export(make_spans(4, children=1, prefix="parent-b"))
    writer = writer_of(exporter)
    assert writer.pending() == 18  # 6 in flight (2 traces, 4 spans), 12 queued

    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child, args=(exporter, queue))
    child.start()
    report = queue.get(timeout=20)
    child.join(20)
    assert "error" not in report, report
    assert child.exitcode == 0
    assert report["inherited"] == 0  # the child starts clean
    assert report["flushed"] is True
    child_stats = report["stats"]
    assert child_stats["traces_exported"] == 3 and child_stats["spans_exported"] == 6
    assert child_stats["spans_received"] == 6  # the parent's counters are not the child's

    assert exporter.force_flush(10_000)
    # Everything stored once; each parent item was in exactly one answered request.
    names = Counter(r["name"] for r in opik.spans.values())
    assert sum(names.values()) == 4 + 8 + 6  # parent-a, parent-b, child
    assert all(n == 1 for n in names.values())
    sent = Counter(
        item["id"]
        for r in opik.requests
        if r.status == 204 and isinstance(r.json, dict)
        for item in r.json.get("spans", []) + r.json.get("traces", [])
    )
    assert sent and max(sent.values()) == 1, [k for k, v in sent.items() if v > 1]
    assert exporter.stats()["traces_exported"] == 6
    exporter.shutdown()
