"""SIGTERM to an app with no handler of its own: with OTEL_EXPORTER_OPIK_SIGTERM_FLUSH=true nothing is lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from opik_standin import Fault, OpikStandin

APP = textwrap.dedent(
    """
    import os, sys, time
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    from opentelemetry.exporter.opik import OpikSpanExporter

    mode = sys.argv[1]
    exporter = OpikSpanExporter(url=os.environ["STANDIN_URL"], project_name="sigterm")
    if mode == "batch":  # the SDK's exit hook shuts the provider down
        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=60_000, max_queue_size=4096))
    else:  # never shut down: the writer's own exit hook delivers
        provider = TracerProvider(shutdown_on_exit=False)
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("sigterm")
    for i in range(1000):
        with tracer.start_as_current_span(f"{mode}-{i}"):
            with tracer.start_as_current_span(f"{mode}-{i}.a"):
                pass
            with tracer.start_as_current_span(f"{mode}-{i}.b"):
                pass
    print("ready", flush=True)
    time.sleep(60)  # a server waiting for work, until SIGTERM
    """
)


def _run_and_terminate(tmp_path: Path, url: str, mode: str, opt_in: bool) -> int:
    script = tmp_path / "app.py"
    script.write_text(APP)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OPIK_"))}
    env.update(STANDIN_URL=url, OPIK_CONFIG_PATH=os.devnull)
    if opt_in:
        env["OTEL_EXPORTER_OPIK_SIGTERM_FLUSH"] = "true"
    proc = subprocess.Popen([sys.executable, str(script), mode], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready", proc.stderr.read() if proc.stderr else ""
    proc.send_signal(signal.SIGTERM)
    proc.wait(40)
    return proc.returncode


@pytest.mark.parametrize("mode", ["batch", "never-shut-down"])
def test_sigterm_with_the_opt_in_loses_nothing(opik: OpikStandin, tmp_path: Path, mode: str) -> None:
    opik.faults.add(Fault.stall(0.3, times=None))  # a slow Opik: nothing is delivered by the time of the signal
    code = _run_and_terminate(tmp_path, opik.url, mode, opt_in=True)
    assert code == 143
    assert {r["name"] for r in opik.traces.values()} == {f"{mode}-{i}" for i in range(1000)}
    assert len(opik.spans) == 3000 and opik.duplicates() == {}


def test_sigterm_without_the_opt_in_is_the_default_action(opik: OpikStandin, tmp_path: Path) -> None:
    """The default stays Python's: the process ends at once (what the opt-in is for)."""
    opik.faults.add(Fault.stall(0.3, times=None))
    code = _run_and_terminate(tmp_path, opik.url, "batch", opt_in=False)
    assert code == -signal.SIGTERM
    assert len(opik.spans) < 3000
