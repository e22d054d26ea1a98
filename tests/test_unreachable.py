"""An unreachable Opik (nothing listening, a name that does not resolve): a short script exits quickly,
with one warning naming the URL, whether it was the default, the setting to fix and counts that are
the counters of ``stats()``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Dict, Optional

import pytest
from conftest_delivery import make_exporter, make_spans
from opik_standin import OpikStandin

APP = textwrap.dedent(
    """
    import atexit, json, sys
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.exporter.opik import OpikSpanExporter

    exporter = OpikSpanExporter(project_name="unreachable")
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    tracer = trace.get_tracer("app")
    with tracer.start_as_current_span("root"):
        with tracer.start_as_current_span("child"):
            pass

    def at_exit():  # what the SDK's exit hook does, then the counters
        provider.shutdown()
        print(json.dumps(exporter.stats()["dropped"]), flush=True)

    atexit.register(at_exit)
    """
)


def _run(tmp_path: Path, env: Dict[str, str]) -> "tuple[subprocess.CompletedProcess, float]":
    script = tmp_path / "app.py"
    script.write_text(APP)
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OPIK_", "OTEL_"))}
    clean.update(env, OPIK_CONFIG_PATH=os.devnull)
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, str(script)], env=clean, capture_output=True, text=True, timeout=60)
    return proc, time.monotonic() - t0


def _closed_port_url() -> str:
    opik = OpikStandin().start()
    url = opik.url
    opik.stop()  # connection refused from now on
    return url


@pytest.mark.parametrize("where", ["default", "closed_port", "no_such_host"])
def test_a_script_with_opik_unreachable_exits_quickly_with_one_warning_that_says_what_to_fix(
    tmp_path: Path, where: str
) -> None:
    url: Optional[str] = {"default": None, "closed_port": _closed_port_url(),
                          "no_such_host": "http://opik.invalid:5173/api"}[where]
    if url is None:
        probe = subprocess.run([sys.executable, "-c", "import socket; s = socket.socket(); "
                                "print(s.connect_ex(('127.0.0.1', 5173)))"], capture_output=True, text=True)
        if probe.stdout.strip() == "0":
            pytest.skip("something listens on localhost:5173 (the default Opik URL) on this machine")
    proc, took = _run(tmp_path, {} if url is None else {"OPIK_URL_OVERRIDE": url})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert took < 5.0, f"exit took {took:.1f} s"  # the bound, interpreter start included
    dropped = json.loads(proc.stdout.strip().splitlines()[-1])
    assert dropped == {"shutdown": 3}  # a trace row and two spans
    warnings = [line for line in proc.stderr.splitlines() if "Opik" in line]
    assert len(warnings) == 1, proc.stderr
    (line,) = warnings
    assert "OPIK_URL_OVERRIDE" in line and "3 dropped" in line and "{'shutdown': 3}" in line, line
    assert (url or "http://localhost:5173/api") in line
    if url is None:
        assert "the default, as OPIK_URL_OVERRIDE is not set" in line
    else:
        assert "set by env OPIK_URL_OVERRIDE" in line


def test_with_a_spool_the_warning_says_the_items_were_spooled(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    proc, _ = _run(tmp_path, {"OPIK_URL_OVERRIDE": _closed_port_url(), "OTEL_EXPORTER_OPIK_SPOOL_DIR": str(spool)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {}
    (line,) = [line for line in proc.stderr.splitlines() if "Opik" in line]
    assert "3 spooled to" in line and str(spool) in line and "OPIK_URL_OVERRIDE" in line, line


def test_an_opik_that_answered_before_keeps_the_whole_shutdown_timeout(opik: OpikStandin) -> None:
    """Reachable earlier in the process, then refusing: shutdown keeps retrying within its timeout."""
    exporter = make_exporter(opik.url, retry_deadline=60)
    exporter.export(make_spans(1))
    assert exporter.force_flush(5_000)
    opik.stop()
    exporter.export(make_spans(1))

    def restart() -> None:
        time.sleep(1.5)  # longer than the cut for an Opik that never answered
        opik.start()

    starter = threading.Thread(target=restart)
    starter.start()
    try:
        exporter.shutdown(timeout_millis=8_000)
    finally:
        starter.join()
    assert exporter.stats()["dropped"] == {}
    opik.wait_for_counts(traces=2)
