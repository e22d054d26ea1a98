"""Process exit: spans still queued are delivered (or spooled) by the exit hooks, and exit is not held up."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from opik_standin import OpikStandin

APP = textwrap.dedent(
    """
    import os, sys
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    from opentelemetry.exporter.opik import OpikSpanExporter

    exporter = OpikSpanExporter(url=os.environ["STANDIN_URL"], project_name="exit",
                                spool_dir=os.environ.get("SPOOL") or None)
    mode = sys.argv[1]
    provider = TracerProvider()  # shutdown_on_exit: the SDK's atexit hook shuts it down
    if mode == "batch":
        provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=60_000))
    else:  # never shut down: only the exporter's own exit hook can deliver
        provider = TracerProvider(shutdown_on_exit=False)
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("exit")
    for i in range(20):
        with tracer.start_as_current_span(f"{mode}-{i}"):
            pass
    # no flush, no shutdown: the process just ends
    """
)


def _run(tmp_path: Path, mode: str, url: str, spool: str = "") -> float:
    script = tmp_path / "app.py"
    script.write_text(APP)
    env = dict(os.environ, STANDIN_URL=url, SPOOL=spool)
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, str(script), mode], env=env, capture_output=True, text=True, timeout=60)
    took = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr[-2000:]
    return took


def test_spans_queued_at_exit_are_delivered(opik: OpikStandin, tmp_path: Path) -> None:
    _run(tmp_path, "batch", opik.url)  # the SDK's atexit -> BatchSpanProcessor -> exporter.shutdown
    _run(tmp_path, "never-shut-down", opik.url)  # the writer's own exit hook
    names = {r["name"] for r in opik.traces.values()}
    assert names == {f"batch-{i}" for i in range(20)} | {f"never-shut-down-{i}" for i in range(20)}
    assert opik.duplicates() == {}


def test_exit_with_opik_down_and_a_spool_is_quick_and_keeps_the_spans(tmp_path: Path) -> None:
    opik = OpikStandin().start()
    url = opik.url
    opik.stop()
    spool = tmp_path / "spool"
    took = _run(tmp_path, "batch", url, str(spool))
    assert took < 8.0, f"exit took {took:.1f} s"  # interpreter start included; no 30 s wait on a down Opik
    assert [p for p in spool.iterdir() if p.name.endswith(".opikspool")]
    opik.start()
    try:
        _run(tmp_path, "never-shut-down", url, str(spool))  # the next run re-sends the spool
        names = {r["name"] for r in opik.traces.values()}
        assert {f"batch-{i}" for i in range(20)} <= names
    finally:
        opik.stop()
