"""Crashes with the spool on: a real app process is ``kill -9``-ed, the next process with the same spool dir delivers.

Every span whose ``export()`` returned SUCCESS in the killed process must be stored in Opik exactly
once (re-writes of the same ids allowed, never a second row), whenever the kill lands: right after
``export()``, during a POST, during the re-send of a spool, in the middle of an outage under load, after a
confirmed refusal of the key. The minute-long version of the outage (60 s of steady load through a
``BatchSpanProcessor``, marked ``slow``) is ``test_delivery_load_crash.py``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path
from typing import Optional, Set, Tuple

from conftest_delivery import make_exporter, stored_otel_ids, wait_until
from opik_standin import Fault, OpikStandin

TESTS = Path(__file__).parent
TRACES = "/v1/private/traces/batch"
SPANS = "/v1/private/spans/batch"

APP = textwrap.dedent(
    """
    import json, os, sys, time
    sys.path.insert(0, os.environ["TESTS_DIR"])
    from conftest_delivery import make_spans
    from opentelemetry.exporter.opik import OpikSpanExporter
    from opentelemetry.sdk.trace.export import SpanExportResult

    exporter = OpikSpanExporter(url=os.environ["STANDIN_URL"], project_name="crash",
                                spool_dir=os.environ.get("SPOOL"), retry_deadline=float(os.environ["DEADLINE"]))
    exporter._writer.backoff_base, exporter._writer.backoff_cap = 0.05, 0.2
    mode, rounds, per_round = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    acked = open(os.environ["ACKED"], "a")
    for r in range(rounds):
        spans = make_spans(per_round, children=2, prefix=f"{mode}{r}-")
        if exporter.export(spans) is SpanExportResult.SUCCESS:
            for s in spans:
                acked.write(json.dumps([f"{s.context.trace_id:032x}", f"{s.context.span_id:016x}",
                                        s.parent is None]) + "\\n")
            acked.flush()
        print("exported", r, flush=True)
    print("done", flush=True)
    time.sleep(120)  # wait for the kill
    """
)


class App:
    """The app in its own process; ``kill()`` is SIGKILL (no atexit, no flush)."""

    def __init__(self, tmp_path: Path, url: str, spool: Optional[Path], mode: str, rounds: int, per_round: int,
                 deadline: float = 120.0, **extra_env: str) -> None:
        script = tmp_path / "crash_app.py"
        script.write_text(APP)
        self.acked = tmp_path / "acked.jsonl"
        env = dict(os.environ, TESTS_DIR=str(TESTS), STANDIN_URL=url, ACKED=str(self.acked),
                   DEADLINE=str(deadline), **extra_env)
        if spool is not None:  # None: no spool
            env["SPOOL"] = str(spool)
        self.proc = subprocess.Popen([sys.executable, str(script), mode, str(rounds), str(per_round)], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def wait_for(self, line: str, timeout: float = 30.0) -> None:
        assert self.proc.stdout is not None
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            out = self.proc.stdout.readline()
            if not out:
                raise AssertionError(f"app ended early: {self.proc.stderr.read()[-2000:] if self.proc.stderr else ''}")
            if out.strip() == line:
                return
        raise AssertionError(f"no {line!r} from the app")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)  # reaped: its pid is gone, so the next process recovers its claims
        assert self.proc.returncode == -signal.SIGKILL


def _acked(path: Path) -> Tuple[Set[Tuple[str, str]], int]:
    spans: Set[Tuple[str, str]] = set()
    roots = 0
    for line in path.read_text().splitlines():
        trace_id, span_id, root = json.loads(line)
        spans.add((trace_id, span_id))
        roots += bool(root)
    return spans, roots


def _spool_empty(spool: Path) -> bool:
    ready = [p for p in spool.iterdir() if p.name.endswith(".opikspool")]
    return not ready and not os.listdir(spool / "claimed")


def _restart_and_check(opik: OpikStandin, spool: Path, acked: Path, expect_spans: Optional[int] = None) -> None:
    """The next process (here: this one) with the same spool dir: everything acked is stored exactly once."""
    spans, roots = _acked(acked)
    if expect_spans is not None:
        assert len(spans) == expect_spans
    exporter = make_exporter(opik.url, spool_dir=str(spool))
    try:
        wait_until(lambda: _spool_empty(spool) and len(opik.spans) >= len(spans), 30,
                   f"not re-sent: {opik.summary()}")
        assert exporter.force_flush(10_000)
    finally:
        exporter.shutdown(timeout_millis=5_000)
    stored = Counter(stored_otel_ids(opik))
    missing = spans - set(stored)
    assert not missing, f"{len(missing)} of {len(spans)} acknowledged spans lost"
    assert max(stored.values()) == 1 and opik.duplicates() == {}
    assert len(opik.traces_by_id()) == roots == len(opik.traces)
    for row in opik.spans.values():
        assert row["trace_id"] in opik.traces_by_id()


def test_kill_right_after_export_with_opik_down(opik: OpikStandin, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    down = opik.faults.add(Fault.respond(503, times=None))
    app = App(tmp_path, opik.url, spool, "after", rounds=10, per_round=100)
    app.wait_for("done")
    app.kill()
    assert not opik.spans
    opik.faults.remove(down)
    _restart_and_check(opik, spool, app.acked, expect_spans=3000)


def test_kill_during_a_post(opik: OpikStandin, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    # Opik stores the spans, then hangs: the trace rows are never sent by the killed process.
    opik.faults.add(Fault.stall(60, times=1, path=SPANS, after_store=True))
    app = App(tmp_path, opik.url, spool, "post", rounds=1, per_round=300)
    app.wait_for("done")
    wait_until(lambda: len(opik.spans) == 900, 10, "the spans were not stored")
    app.kill()
    assert len(opik.traces) == 0  # spans waiting for their trace rows, until the next start
    _restart_and_check(opik, spool, app.acked, expect_spans=900)


def test_kill_during_the_resend_of_a_spool(opik: OpikStandin, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    down = opik.faults.add(Fault.respond(503, times=None))
    first = App(tmp_path, opik.url, spool, "replay", rounds=4, per_round=50)
    first.wait_for("done")
    first.kill()
    opik.faults.remove(down)
    # The second process re-sends: Opik stores its first request and hangs, and it is killed then.
    opik.faults.add(Fault.stall(60, times=1, after_store=True))
    second = App(tmp_path, opik.url, spool, "second", rounds=0, per_round=0)
    second.wait_for("done")
    wait_until(lambda: len(opik.requests) >= 1 and (len(opik.traces) + len(opik.spans)) > 0, 20,
               "the second process did not re-send")
    second.kill()
    _restart_and_check(opik, spool, first.acked, expect_spans=600)


def test_kill_in_the_middle_of_an_outage_under_load(opik: OpikStandin, tmp_path: Path) -> None:
    """Opik answers 503 while the app exports for a few seconds; a short retry deadline puts some batches
    past it (kept on disk for a re-send), others are in retry, in memory and on disk, when the kill lands."""
    spool = tmp_path / "spool"
    down = opik.faults.add(Fault.respond(503, times=None))
    app = App(tmp_path, opik.url, spool, "load", rounds=40, per_round=25, deadline=0.5)
    for r in range(20):
        app.wait_for(f"exported {r}")
        time.sleep(0.1)
    app.kill()
    acked, _ = _acked(app.acked)
    assert len(acked) >= 20 * 75
    ready = [p for p in spool.iterdir() if p.name.endswith(".opikspool")]
    assert ready and os.listdir(spool / "claimed"), "the kill should find batches past the deadline and in retry"
    opik.faults.remove(down)
    _restart_and_check(opik, spool, app.acked)


def test_a_confirmed_401_keeps_everything_on_disk_for_the_next_process(opik: OpikStandin, tmp_path: Path) -> None:
    """Issue 17: a refusal of the key must not lose data by itself. With a spool, a refusal that lasts the
    retry deadline (here 1 s) gives the items up to the disk, not to ``dropped``; killed then, the app loses
    nothing: once the key is accepted again, the next process delivers every acknowledged span once."""
    spool = tmp_path / "spool"
    opik.api_key = "the-right-key"
    app = App(tmp_path, opik.url, spool, "refused", rounds=6, per_round=50, deadline=1.0,
              OPIK_API_KEY="a-revoked-key")
    app.wait_for("done")

    def given_up_to_disk() -> bool:
        ready = [p for p in spool.iterdir() if p.name.endswith(".opikspool")]
        return bool(ready) and not os.listdir(spool / "claimed")

    wait_until(given_up_to_disk, 30, f"the refused items were not given up to the spool: {opik.summary()}")
    assert opik.count(status=401) >= 1 and not opik.spans and not opik.traces
    app.kill()
    opik.api_key = None  # the key is accepted again (rotated back, or the proxy fixed)
    _restart_and_check(opik, spool, app.acked, expect_spans=900)


def test_without_a_spool_a_kill_while_sending_leaves_no_trace_row_without_its_spans(opik: OpikStandin,
                                                                                     tmp_path: Path) -> None:
    """Issue 17 measured 1,670 trace rows and 0 spans after a kill during a POST. Without a spool the kill
    loses what was not delivered, but spans go before their trace rows: every trace row Opik has, has every
    span exported with it."""
    opik.faults.add(Fault.stall(0.25, times=None, after_store=True))  # each request stored, answered late
    app = App(tmp_path, opik.url, None, "nospool", rounds=30, per_round=40)
    wait_until(lambda: len(opik.traces) >= 40, 30, f"no trace rows stored: {opik.summary()}")
    app.kill()  # mid-stream: more rounds queued, one request in flight
    acked: Counter = Counter()
    for line in app.acked.read_text().splitlines():
        acked[json.loads(line)[0]] += 1  # spans exported per OTel trace id
    stored: Counter = Counter(otel_trace for otel_trace, _ in stored_otel_ids(opik))
    traces = [row["metadata"]["otel"]["trace_id"] for row in opik.traces.values()]
    assert traces and len(opik.spans) < 30 * 40 * 3, "the kill should land before everything was delivered"
    for otel_trace in traces:
        assert stored[otel_trace] == acked[otel_trace] == 3, f"trace {otel_trace} stored without all its spans"
    assert opik.duplicates() == {}


def test_power_cut_bound_is_documented() -> None:
    """The fsync bound in the code is the one docs/delivery.md promises."""
    from opentelemetry.exporter.opik._delivery.durable import SYNC_INTERVAL

    doc = (TESTS.parent / "docs" / "delivery.md").read_text()
    assert f"{int(SYNC_INTERVAL * 1000)} ms" in doc


def test_kill_of_the_sidecar_after_its_200s_with_a_spool(opik: OpikStandin, tmp_path: Path) -> None:
    """opik-otel serve with --spool-dir: every request it answered 200 is delivered by the next sidecar."""
    import httpx
    from sidecar_helpers import SidecarProcess, protobuf_body
    from sidecar_helpers import make_spans as sidecar_spans

    spool = tmp_path / "spool"
    down = opik.faults.add(Fault.respond(503, times=None))
    args = ["--spool-dir", str(spool), "--set", "retry_deadline=60"]
    acked: Set[str] = set()
    sidecar = SidecarProcess(opik.url, *args, grpc=False).start()
    try:
        for r in range(20):
            def build(tracer: object, r: int = r) -> None:
                for i in range(10):
                    with tracer.start_as_current_span(f"sc{r}-{i}"):  # type: ignore[attr-defined]
                        with tracer.start_as_current_span(f"sc{r}-{i}.child"):  # type: ignore[attr-defined]
                            pass

            resp = httpx.post(sidecar.traces_url, content=protobuf_body(sidecar_spans(build)),
                              headers={"Content-Type": "application/x-protobuf"})
            assert resp.status_code == 200
            acked |= {f"sc{r}-{i}" for i in range(10)}
    finally:
        sidecar.kill()  # SIGKILL right after the last 200
    assert not opik.traces
    opik.faults.remove(down)
    with SidecarProcess(opik.url, *args, grpc=False):
        wait_until(lambda: len(opik.traces) >= len(acked) and len(opik.spans) >= 2 * len(acked), 30,
                   f"not re-sent: {opik.summary()}")
    assert {t["name"] for t in opik.traces.values()} == acked
    assert len(opik.spans) == 2 * len(acked) and opik.duplicates() == {}
