"""Zero code: ``OTEL_TRACES_EXPORTER=opik opentelemetry-instrument python app.py``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from opik_standin import OpikStandin, uuid7_timestamp_ms

APP = textwrap.dedent(
    """
    from opentelemetry import trace

    tracer = trace.get_tracer("zero-code-app")
    with tracer.start_as_current_span("zero-code root", attributes={"gen_ai.conversation.id": "thread-z"}) as root:
        with tracer.start_as_current_span("zero-code child"):
            pass
        print("trace_state", dict(root.get_span_context().trace_state))
    """
)


def _instrument_cmd() -> str:
    exe = Path(sys.executable).with_name("opentelemetry-instrument")
    if exe.exists():
        return str(exe)
    found = shutil.which("opentelemetry-instrument")
    if not found:
        pytest.skip("opentelemetry-instrument is not installed (pip install 'opentelemetry-exporter-opik[instrument]')")
    return found


@pytest.mark.parametrize("sampler", ["", "opik"])
def test_opentelemetry_instrument_with_opik_exporter(opik: OpikStandin, tmp_path: Path, sampler: str) -> None:
    app = tmp_path / "app.py"
    app.write_text(APP)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OPIK_"))}
    env.update(
        OTEL_TRACES_EXPORTER="opik",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        OTEL_SERVICE_NAME="zero-code-svc",
        OPIK_URL_OVERRIDE=opik.url,
        OPIK_PROJECT_NAME="zero-code",
        OPIK_CONFIG_PATH=os.devnull,
        OPIK_ENVIRONMENT="ci",
    )
    if sampler:
        env["OTEL_TRACES_SAMPLER"] = sampler
    proc = subprocess.run([_instrument_cmd(), sys.executable, str(app)], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    opik.wait_for_counts(traces=1, spans=2, timeout=10)
    (t,) = opik.traces_by_id().values()
    assert t["name"] == "zero-code root" and t["project_name"] == "zero-code"
    assert t["thread_id"] == "thread-z" and t["environment"] == "ci"
    assert t["metadata"]["otel"]["resource"]["service.name"] == "zero-code-svc"
    if sampler:
        # The OpikSampler (through the SDK's sampler entry point) stamped the trace start.
        assert "'opik':" in proc.stdout
        stamped = int(proc.stdout.split("'opik': '")[1].split("'")[0], 16)
        assert uuid7_timestamp_ms(t["id"]) == stamped
    assert opik.duplicates() == {}
