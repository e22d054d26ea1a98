"""``TracerProvider.force_flush()`` waits for Opik: then ``os._exit(0)`` (no atexit, no shutdown) loses nothing.

The SDK's ``BatchSpanProcessor.force_flush`` never calls the exporter's ``force_flush``; the exporter hooks the
processor that calls it. Real processes, the real SDK and processors, a slow stand-in (each request answered after
a stall, so a flush that does not wait loses the spans).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from opik_standin import Fault, OpikStandin

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")

APP = textwrap.dedent(
    """
    import multiprocessing, os, sys, time
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    from opentelemetry.exporter.opik import OpikSpanExporter

    mode = sys.argv[1]

    def spans(prefix, n):
        tracer = trace.get_tracer("flush")
        for i in range(n):
            with tracer.start_as_current_span(f"{prefix}-{i}"):
                with tracer.start_as_current_span(f"{prefix}-{i}.child"):
                    pass

    def task(i):
        spans(f"pool{i}", 30)
        assert trace.get_tracer_provider().force_flush(20_000)
        return i

    if mode != "zero-code":
        exporter = OpikSpanExporter(url=os.environ["STANDIN_URL"], project_name="flush")
        provider = TracerProvider(shutdown_on_exit=False)
        if mode == "simple":
            provider.add_span_processor(SimpleSpanProcessor(exporter))
        else:
            delay = 60_000 if mode == "batch-queued" else 20
            provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=delay))
        trace.set_tracer_provider(provider)
    if mode == "pool":
        spans("parent", 5)  # exported (and hooked) before the fork: the children inherit the processor
        assert trace.get_tracer_provider().force_flush(20_000)
        with multiprocessing.get_context("fork").Pool(3) as pool:  # workers end with os._exit
            assert sorted(pool.map(task, range(6))) == list(range(6))
    else:
        spans(mode, 50)
        if mode == "batch-exported":
            time.sleep(0.3)  # the processor's worker has exported them: its queue is empty at the flush
        assert trace.get_tracer_provider().force_flush(20_000)
    os._exit(0)
    """
)


def _run(tmp_path: Path, opik: OpikStandin, mode: str, cmd_prefix: tuple = ()) -> None:
    app = tmp_path / "app.py"
    app.write_text(APP)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OPIK_"))}
    env.update(STANDIN_URL=opik.url, OPIK_CONFIG_PATH=os.devnull)
    if mode == "zero-code":
        env.update(OTEL_TRACES_EXPORTER="opik", OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none",
                   OPIK_URL_OVERRIDE=opik.url, OPIK_PROJECT_NAME="flush")
    proc = subprocess.run([*cmd_prefix, sys.executable, str(app), mode], env=env, capture_output=True, text=True,
                          timeout=90)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.parametrize("mode", ["batch-queued", "batch-exported", "simple"])
def test_force_flush_then_os_exit_loses_nothing(opik: OpikStandin, tmp_path: Path, mode: str) -> None:
    opik.faults.add(Fault.stall(0.4, times=None))  # every answer takes 0.4 s
    _run(tmp_path, opik, mode)
    names = {r["name"] for r in opik.traces.values()}
    assert names == {f"{mode}-{i}" for i in range(50)}
    assert len(opik.spans) == 100 and opik.duplicates() == {}


def test_force_flush_in_a_fork_pool_loses_nothing(opik: OpikStandin, tmp_path: Path) -> None:
    opik.faults.add(Fault.stall(0.3, times=None))
    _run(tmp_path, opik, "pool")
    names = {r["name"] for r in opik.traces.values()}
    expected = {f"parent-{i}" for i in range(5)} | {f"pool{t}-{i}" for t in range(6) for i in range(30)}
    assert names == expected
    assert len(opik.spans) == 2 * len(expected) and opik.duplicates() == {}


def test_force_flush_in_zero_code_loses_nothing(opik: OpikStandin, tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("opentelemetry-instrument")
    cmd = str(exe) if exe.exists() else shutil.which("opentelemetry-instrument")
    if not cmd:
        pytest.skip("opentelemetry-instrument is not installed")
    opik.faults.add(Fault.stall(0.4, times=None))
    _run(tmp_path, opik, "zero-code", (cmd,))
    names = {r["name"] for r in opik.traces.values()}
    assert names == {f"zero-code-{i}" for i in range(50)}
    assert len(opik.spans) == 100 and opik.duplicates() == {}
