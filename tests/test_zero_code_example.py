"""``examples/zero_code`` as its README installs it: one OpenAI instrumentation, one LLM span per call.

The main test venv holds three OpenAI instrumentations (tests/test_instrumentations.py runs each),
so the example runs in a venv of its own (``.venvs/zero_code``): this package with its
``instrument`` extra plus ``examples/zero_code/requirements.txt``.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Dict, Iterator

import pytest
from fake_openai import FakeOpenAIServer
from framework_env import venv_python
from opik_standin import OpikStandin

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "zero_code"


@pytest.fixture
def llm() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


def _env(opik: OpikStandin, llm: FakeOpenAIServer) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPIK_", "OTEL_", "OPENAI_"))}
    env.update(
        OPIK_CONFIG_PATH=os.devnull,
        PYTHONUNBUFFERED="1",
        # the README's exports
        OTEL_TRACES_EXPORTER="opik",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        OTEL_SERVICE_NAME="zero-code-demo",
        OTEL_TRACES_SAMPLER="opik",
        OTEL_SEMCONV_STABILITY_OPT_IN="gen_ai_latest_experimental",
        OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="SPAN_ONLY",
        OPIK_URL_OVERRIDE=opik.url,
        OPIK_PROJECT_NAME="otel-zero-code",
        OPENAI_BASE_URL=llm.base_url,
        OPENAI_API_KEY="sk-test",
        OPENAI_MAX_RETRIES="0",
    )
    return env


def test_zero_code_example_with_one_instrumentation(opik: OpikStandin, llm: FakeOpenAIServer) -> None:
    python = venv_python("zero_code")
    instrumentors = subprocess.run(
        [str(python), "-c", "from importlib.metadata import entry_points as e; "
         "print(sorted(x.dist.name for x in e(group='opentelemetry_instrumentor') if x.name == 'openai'))"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    assert instrumentors == "['opentelemetry-instrumentation-openai-v2']", instrumentors
    proc = subprocess.run(
        [str(python.parent / "opentelemetry-instrument"), str(python), str(EXAMPLE / "app.py")],
        env=_env(opik, llm), capture_output=True, text=True, timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("A: ") == 2 and len(llm.requests) == 2
    opik.wait_for_counts(traces=2)
    assert opik.duplicates() == {}
    for trace in opik.traces_by_id().values():
        assert trace["project_name"] == "otel-zero-code"
        llm_spans = [s for s in opik.spans_by_id().values() if s["trace_id"] == trace["id"] and s["type"] == "llm"]
        assert len(llm_spans) == 1, [s["name"] for s in llm_spans]  # one instrumentation, one span per call
        (span,) = llm_spans
        assert span["model"].startswith("gpt-4o-mini") and span["usage"]["prompt_tokens"] == 13
        assert "Answer in three words." in str(span["input"])
