"""Zero code: ``OTEL_TRACES_EXPORTER=opik OTEL_LOGS_EXPORTER=opik opentelemetry-instrument python app.py``.

``examples/zero_code/app.py`` (no OpenTelemetry code) with openai-v2 in ``EVENT_ONLY`` mode: the messages
travel only in log records, which the SDK configurator hands to ``OpikLogExporter`` through the
``opentelemetry_logs_exporter`` entry point. The venv (``.venvs/logs_zero_code``) is the zero-code example's.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Iterator

import opik_ui
import pytest
from fake_openai import FakeOpenAIServer
from framework_env import venv_python
from opik_standin import OpikStandin

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "examples" / "zero_code" / "app.py"

pytestmark = pytest.mark.frameworks


@pytest.fixture
def llm() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


def test_zero_code_logs_exporter_brings_the_messages(llm: FakeOpenAIServer) -> None:
    python = venv_python("logs_zero_code")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPIK_", "OTEL_", "OPENAI_"))}
    with OpikStandin() as opik:
        env.update(
            OPIK_CONFIG_PATH=os.devnull,
            PYTHONUNBUFFERED="1",
            OTEL_TRACES_EXPORTER="opik",
            OTEL_LOGS_EXPORTER="opik",
            OTEL_METRICS_EXPORTER="none",
            OTEL_SERVICE_NAME="zero-code-logs",
            OTEL_SEMCONV_STABILITY_OPT_IN="gen_ai_latest_experimental",
            OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="EVENT_ONLY",
            OPIK_URL_OVERRIDE=opik.url,
            OPIK_PROJECT_NAME="otel-zero-code-logs",
            OPENAI_BASE_URL=llm.base_url,
            OPENAI_API_KEY="sk-test",
            OPENAI_MAX_RETRIES="0",
        )
        proc = subprocess.run(
            [str(python.parent / "opentelemetry-instrument"), str(python), str(APP)],
            env=env, capture_output=True, text=True, timeout=180,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert proc.stdout.count("A: ") == 2
        opik.wait_for_counts(traces=2)
        spans = sorted((s for s in opik.spans.values() if s["type"] == "llm"), key=lambda s: s["start_time"])
        assert len(spans) == 2 and not opik.duplicates()
        for span, question in zip(spans, ("Name a prime number.", "Name a colour.")):
            answer = span["output"]["choices"][0]["message"]["content"]
            assert opik_ui.problems(span, question, answer) == [], span
            assert span["input"]["messages"][0] == {"role": "system", "content": "Answer in three words."}
