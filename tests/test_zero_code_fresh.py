"""Zero code as the README writes it, in a fresh venv built from the README's own lines.

The venv (``.venvs/zero_code_fresh``, rebuilt when the README's lines or pyproject.toml change) gets
exactly the README's install line (run from this clone), the app's own dependency (``openai``) and
then ``opentelemetry-bootstrap -a install`` (which adds openai-v2 for the installed ``openai`` and the
default instrumentations, the logging one among them). The app runs under ``opentelemetry-instrument``
with the README's variables only: no ``OTEL_METRICS_EXPORTER`` / ``OTEL_LOGS_EXPORTER``.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import opik_ui
import pytest
from fake_openai import FakeOpenAIServer
from opik_standin import OpikStandin

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "examples" / "zero_code" / "app.py"
VENV = ROOT / ".venvs" / "zero_code_fresh"

pytestmark = pytest.mark.frameworks


def readme_zero_code() -> Tuple[List[str], List[str], Dict[str, str]]:
    """The install lines, the bootstrap line and the variables of README's "2. Zero code" block."""
    text = (ROOT / "README.md").read_text()
    section = text.split("### 2. Zero code", 1)[1]
    block = section.split("```bash", 1)[1].split("```", 1)[0]
    installs, bootstrap, env = [], [], {}
    for line in block.splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        words = shlex.split(line)
        if words[:2] == ["pip", "install"]:
            installs.append(line)
        elif words[0] == "opentelemetry-bootstrap":
            bootstrap.append(line)
        elif words[0] == "export":
            env.update(w.split("=", 1) for w in words[1:])
        elif "opentelemetry-instrument" in words:
            env.update(w.split("=", 1) for w in words[: words.index("opentelemetry-instrument")])
    assert installs and bootstrap and "OTEL_TRACES_EXPORTER" in env, block
    return installs, bootstrap, env


def _build(installs: List[str], bootstrap: List[str]) -> Path:
    python = VENV / "bin" / "python"
    stamp = hashlib.sha256(
        "\n".join(installs + bootstrap).encode() + (ROOT / "pyproject.toml").read_bytes() + sys.version.encode()
    ).hexdigest()
    VENV.parent.mkdir(exist_ok=True)
    with open(VENV.parent / "zero_code_fresh.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (VENV / ".stamp").exists() and (VENV / ".stamp").read_text() == stamp and python.exists():
            return python
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
        path = {**os.environ, "PATH": f"{VENV / 'bin'}{os.pathsep}{os.environ['PATH']}"}
        steps = installs + ["pip install 'openai>=1.40'"] + bootstrap  # the app's own dependency before bootstrap
        for step in steps:
            proc = subprocess.run(step, shell=True, cwd=ROOT, env=path, capture_output=True, text=True, timeout=900)
            assert proc.returncode == 0, f"{step}:\n{proc.stderr[-4000:]}"
        (VENV / ".stamp").write_text(stamp)
    return python


@pytest.fixture(scope="module")
def fresh() -> Tuple[Path, Dict[str, str]]:
    installs, bootstrap, env = readme_zero_code()
    assert any(re.search(r"pip install -e '\.\[instrument\]'", line) for line in installs), installs
    return _build(installs, bootstrap), env


@pytest.fixture
def llm() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


def _run(python: Path, env: Dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OPIK_", "OTEL_", "OPENAI_"))}
    clean.update(env, OPIK_CONFIG_PATH=os.devnull, PYTHONUNBUFFERED="1", PATH=f"{python.parent}{os.pathsep}{os.environ['PATH']}")
    return subprocess.run([str(python.parent / "opentelemetry-instrument"), "python", str(APP)],
                          env=clean, capture_output=True, text=True, timeout=180)


def test_readme_zero_code_in_a_fresh_venv_brings_the_llm_span_with_its_messages(
    fresh: Tuple[Path, Dict[str, str]], llm: FakeOpenAIServer
) -> None:
    python, readme_env = fresh
    assert not {"OTEL_METRICS_EXPORTER", "OTEL_LOGS_EXPORTER"} & set(readme_env)
    listed = subprocess.run([str(python), "-m", "pip", "list"], capture_output=True, text=True, check=True).stdout
    assert "opentelemetry-instrumentation-logging" in listed  # bootstrap's default set, the one that hid warnings
    with OpikStandin() as opik:
        proc = _run(python, {**readme_env, "OPIK_URL_OVERRIDE": opik.url, "OPENAI_BASE_URL": llm.base_url,
                             "OPENAI_API_KEY": "sk-test", "OPENAI_MAX_RETRIES": "0"})
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "Failed to auto initialize" not in proc.stderr and "not found in entry point" not in proc.stderr, proc.stderr
        assert proc.stdout.count("A: ") == 2
        opik.wait_for_counts(traces=2)
        project = readme_env["OPIK_PROJECT_NAME"]
        spans = sorted((s for s in opik.spans.values() if s["type"] == "llm"), key=lambda s: s["start_time"])
        assert len(spans) == 2 and not opik.duplicates()  # bootstrap installed one OpenAI instrumentation
        for span, question in zip(spans, ("Name a prime number.", "Name a colour.")):
            assert span["project_name"] == project
            answer = span["output"]["choices"][0]["message"]["content"]
            assert opik_ui.problems(span, question, answer) == [], span
            assert span["input"]["messages"][0] == {"role": "system", "content": "Answer in three words."}


def test_the_exporters_warnings_reach_stderr_with_the_logging_instrumentation_installed(
    fresh: Tuple[Path, Dict[str, str]], llm: FakeOpenAIServer
) -> None:
    python, readme_env = fresh
    opik = OpikStandin().start()
    closed = opik.url
    opik.stop()  # nothing listens there now
    proc = _run(python, {**readme_env, "OPIK_URL_OVERRIDE": closed, "OPENAI_BASE_URL": llm.base_url,
                         "OPENAI_API_KEY": "sk-test", "OPENAI_MAX_RETRIES": "0"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "OPIK_URL_OVERRIDE" in proc.stderr and closed in proc.stderr, proc.stderr[-3000:]


def test_the_configurator_leaves_out_exporters_that_are_not_installed_instead_of_aborting(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """What opentelemetry-distro's defaults do without the OTLP exporters installed: one warning per variable."""
    from opentelemetry.exporter.opik._distro import drop_missing_exporters

    env = {"OTEL_TRACES_EXPORTER": "opik", "OTEL_METRICS_EXPORTER": "no_such_metrics_exporter",
           "OTEL_LOGS_EXPORTER": "opik,no_such_logs_exporter"}
    with caplog.at_level("WARNING", logger="opentelemetry.exporter.opik"):
        dropped = drop_missing_exporters(env)
    assert dropped == ["OTEL_METRICS_EXPORTER=no_such_metrics_exporter", "OTEL_LOGS_EXPORTER=no_such_logs_exporter"]
    assert env == {"OTEL_TRACES_EXPORTER": "opik", "OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "opik"}
    assert sum("no installed package provides" in r.getMessage() for r in caplog.records) == 2
