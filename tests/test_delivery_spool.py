"""The disk spool: bounded, crash-safe, corrupt files set aside, shared by processes without double sends."""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections import Counter
from pathlib import Path
from typing import Any, List

import pytest
from conftest_delivery import log_lines, make_exporter, make_spans, wait_until
from opik_standin import Fault, OpikStandin

from opentelemetry.exporter.opik._config import resolve_settings
from opentelemetry.exporter.opik._items import Item
from opentelemetry.exporter.opik._pipeline import Pipeline
from opentelemetry.exporter.opik._record import from_readable_span
from opentelemetry.exporter.opik._spool import SUFFIX, Spool, SpoolError


def _items(n_traces: int, prefix: str) -> List[Item]:
    """Real encoded items, as the exporter's pipeline makes them (trace + one child span each)."""
    settings = resolve_settings({"project_name": "spool"})
    records = [from_readable_span(s) for s in make_spans(n_traces, children=1, prefix=prefix)]
    return Pipeline(settings).process(records).items


def _ready(spool: Path) -> List[str]:
    return sorted(p.name for p in spool.iterdir() if p.name.endswith(SUFFIX))


def _drained(spool: Path) -> bool:
    return not _ready(spool) and not os.listdir(spool / "claimed")


def test_corrupt_spool_files_are_moved_aside_and_the_rest_is_resent(
    opik: OpikStandin, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    spool = Spool(str(tmp_path), 10 * 1024 * 1024)
    good = _items(3, "good")
    assert spool.write(good) == len(good)
    damaged = _items(2, "damaged")
    spool.write(damaged)
    name = _ready(tmp_path)[-1]
    data = (tmp_path / name).read_bytes()
    (tmp_path / name).write_bytes(data[: len(data) // 2])  # torn write of an older, non-atomic tool
    (tmp_path / ("0" * 20 + "-junk" + SUFFIX)).write_bytes(b"not a spool file\n")
    (tmp_path / "tmp" / "123-abc.tmp").write_bytes(b"half written")  # a crash while writing: never read

    exporter = make_exporter(opik.url, spool_dir=str(tmp_path))
    wait_until(lambda: _drained(tmp_path), 10)
    wait_until(lambda: len(opik.spans) == 6)
    assert {r["name"] for r in opik.traces.values()} == {"good0", "good1", "good2"}
    assert sorted(os.listdir(tmp_path / "corrupt")) == sorted([name, "0" * 20 + "-junk" + SUFFIX])
    warnings = [line for line in log_lines(caplog) if "unreadable" in line]
    assert len(warnings) == 2 and "moved aside" in warnings[0]
    assert exporter.stats()["spool_files_corrupt"] == 2
    exporter.shutdown()


def test_the_spool_never_grows_beyond_its_bound(tmp_path: Path) -> None:
    opik = OpikStandin().start()
    url = opik.url
    opik.stop()
    bound = 16 * 1024
    exporter = make_exporter(url, spool_dir=str(tmp_path), spool_max_bytes=bound, retry_deadline=30)
    exporter.export(make_spans(60, children=1, attrs={"payload": "x, y. " * 100}))
    exporter.shutdown(timeout_millis=1_000)
    stats = exporter.stats()
    spooled = stats["items_spooled"]
    assert 0 < spooled < 180
    assert stats["dropped"] == {"spool_full": 180 - spooled}
    assert Spool(str(tmp_path), bound).usage() <= bound


def _replayer(url: str, spool_dir: str, queue: Any) -> None:
    try:
        exporter = make_exporter(url, spool_dir=spool_dir)
        wait_until(lambda: _drained(Path(spool_dir)), 20)
        exporter.force_flush(5_000)
        queue.put(exporter.stats()["items_unspooled"])
        exporter.shutdown(timeout_millis=2_000)
    except BaseException as exc:  # noqa: BLE001
        queue.put(repr(exc))


def test_processes_sharing_a_spool_dir_send_each_batch_once(opik: OpikStandin, tmp_path: Path) -> None:
    spool = Spool(str(tmp_path), 50 * 1024 * 1024)
    total = 0
    for i in range(24):
        items = _items(2, f"b{i}-")
        total += spool.write(items)
    assert len(_ready(tmp_path)) == 24
    opik.faults.add(Fault.stall(0.03, times=None))  # slow answers: the processes overlap
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_replayer, args=(opik.url, str(tmp_path), queue)) for _ in range(3)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=30) for _ in procs]
    for p in procs:
        p.join(10)
    assert all(isinstance(r, (int, float)) for r in results), results
    assert sum(results) == total == 144  # 24 files of 2 traces and 4 spans
    assert sum(1 for r in results if r > 0) >= 2, f"no overlap to test: {results}"
    sent = Counter(
        item["id"]
        for r in opik.requests
        if r.status == 204 and isinstance(r.json, dict)
        for item in r.json.get("spans", []) + r.json.get("traces", [])
    )
    assert len(sent) == 144 and max(sent.values()) == 1
    assert len(opik.traces) == 48 and len(opik.spans) == 96 and opik.duplicates() == {}


def _claim_and_die(spool_dir: str) -> None:
    claim = Spool(spool_dir, 10 * 1024 * 1024).claim()
    assert claim is not None
    os._exit(0)  # crash: the claim is never resolved


def test_a_batch_claimed_by_a_process_that_died_is_resent(opik: OpikStandin, tmp_path: Path) -> None:
    Spool(str(tmp_path), 10 * 1024 * 1024).write(_items(2, "orphan"))
    ctx = multiprocessing.get_context("fork")
    p = ctx.Process(target=_claim_and_die, args=(str(tmp_path),))
    p.start()
    p.join(10)
    assert _ready(tmp_path) == [] and len(os.listdir(tmp_path / "claimed")) == 1
    exporter = make_exporter(opik.url, spool_dir=str(tmp_path))
    wait_until(lambda: len(opik.spans) == 4, 10)
    wait_until(lambda: _drained(tmp_path))
    assert opik.duplicates() == {}
    exporter.shutdown()


def test_an_unusable_spool_dir_is_a_clear_config_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(SpoolError, match="OTEL_EXPORTER_OPIK_SPOOL_DIR"):
        make_exporter("http://127.0.0.1:9/api", spool_dir=str(blocker / "spool"))
