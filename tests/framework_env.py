"""Virtual environments for the framework tests, built by the test run itself.

Frameworks whose dependencies cannot share the main test venv (LlamaIndex and
Strands need ``openai < 3``; Pydantic AI, the OpenAI Agents SDK, LiteLLM and
Google ADK need ``openai >= 3``) get one venv per requirements file in
``tests/frameworks/``. A venv is built once under ``.venvs/<name>`` (this
package installed editable, with its ``fast`` extra, plus the file's
requirements) and reused while the file is unchanged;
a lock lets concurrent test processes share it.

Apps run in those venvs as scripts (``tests/frameworks/*_app.py``); they import
``fake_openai`` from ``tests/`` and export through the real ``OpikSpanExporter``
to the stand-in the test process started.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

ROOT = Path(__file__).resolve().parent.parent
FRAMEWORKS = Path(__file__).resolve().parent / "frameworks"
VENVS = ROOT / ".venvs"


def _stamp(requirements: Path) -> str:
    h = hashlib.sha256()
    h.update(requirements.read_bytes())  # the package itself is installed editable
    h.update(sys.version.encode())
    return h.hexdigest()


def venv_python(name: str) -> Path:
    """The Python of the venv for ``tests/frameworks/requirements-<name>.txt``, built if needed."""
    requirements = FRAMEWORKS / f"requirements-{name}.txt"
    venv = VENVS / name
    python = venv / "bin" / "python"
    stamp_file = venv / ".stamp"
    stamp = _stamp(requirements)
    VENVS.mkdir(exist_ok=True)
    with open(VENVS / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp_file.exists() and stamp_file.read_text() == stamp and python.exists():
            return python
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        proc = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
             "-e", f"{ROOT}[fast]", "-r", str(requirements)],
            capture_output=True, text=True,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"building .venvs/{name} failed:\n{proc.stderr[-4000:]}")
        stamp_file.write_text(stamp)
    return python


def run_app(name: str, app: str, args: List[str], timeout: float = 240, env: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    """Run ``tests/frameworks/<app>`` in the ``<name>`` venv; returns the JSON its last stdout line prints."""
    python = venv_python(name)
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OPIK_", "OTEL_", "OPENAI_", "LITELLM_", "GOOGLE_"))}
    clean["OPIK_CONFIG_PATH"] = os.devnull
    clean["PYTHONPATH"] = str(ROOT / "tests")
    if env:
        clean.update(env)
    proc = subprocess.run(
        [str(python), str(FRAMEWORKS / app), *args], capture_output=True, text=True, timeout=timeout, env=clean
    )
    if proc.returncode != 0:
        raise AssertionError(f"{app} failed ({proc.returncode}):\n{proc.stderr[-6000:]}")
    lines = proc.stdout.strip().splitlines()
    assert lines, f"{app} printed nothing; stderr:\n{proc.stderr[-3000:]}"
    return json.loads(lines[-1])


#: apply to framework test modules: ``pytestmark = frameworks``
frameworks = pytest.mark.frameworks


class StoredRun:
    """What one app process stored in the stand-in under its project: traces by start time, spans per trace.

    ``trace_name`` turns what a test asks for (``run.trace("weather")``) into the stored trace's name.
    """

    trace_name = "{}"

    def __init__(self, mode: str, facts: Dict[str, Any], opik: Any, project: str) -> None:
        self.mode = mode
        self.facts = facts
        self.traces = sorted((t for t in opik.traces.values() if t["project_name"] == project),
                             key=lambda t: t["start_time"])
        self.spans: Dict[str, List[Dict[str, Any]]] = {}
        for s in sorted(opik.spans.values(), key=lambda s: s["start_time"]):
            if s["project_name"] == project:
                self.spans.setdefault(s["trace_id"], []).append(s)

    def traces_of(self, name: str) -> List[Dict[str, Any]]:
        return [t for t in self.traces if t["name"] == self.trace_name.format(name)]

    def trace(self, name: str) -> Dict[str, Any]:
        found = self.traces_of(name)
        assert len(found) == 1, [t["name"] for t in self.traces]
        return found[0]

    def llm_spans(self, trace: Dict[str, Any]) -> List[Dict[str, Any]]:
        return [s for s in self.spans[trace["id"]] if s["type"] == "llm"]
