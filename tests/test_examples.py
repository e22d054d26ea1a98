"""Every example in ``examples/`` runs here, offline: each in its own process, as a user runs it,
against the Opik stand-in (``OPIK_URL_OVERRIDE``) and, for the LLM calls, the local
OpenAI-compatible server (``OPENAI_BASE_URL``)."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import httpx
import opik_ui
import pytest
from fake_openai import FakeOpenAIServer
from opik_standin import OpikStandin

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
BIN = Path(sys.executable).parent


def clean_env(tmp_path: Path, **extra: str) -> Dict[str, str]:
    """The caller's environment without any Opik/OTel/OpenAI settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPIK_", "OTEL_", "OPENAI_"))}
    env["OPIK_CONFIG_PATH"] = os.devnull
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def run(argv: List[str], env: Dict[str, str], timeout: float = 120, cwd: Optional[Path] = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout, cwd=cwd)
    assert proc.returncode == 0, f"{argv} exited {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
    return proc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited with {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listens on port {port} after {timeout} s")


def need(*modules: str) -> None:
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"example dependencies not installed: {', '.join(missing)} (pip install -e '.[test]')")


def spans_of(opik: OpikStandin, trace_id: str) -> List[Dict[str, Any]]:
    return [s for s in opik.spans_by_id().values() if s["trace_id"] == trace_id]


@pytest.fixture
def llm() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


def test_quickstart(opik: OpikStandin, tmp_path: Path) -> None:
    proc = run([sys.executable, str(EXAMPLES / "quickstart.py")], clean_env(tmp_path, OPIK_URL_OVERRIDE=opik.url))
    assert "Sent 2 traces" in proc.stdout
    opik.wait_for_counts(traces=2)
    assert opik.duplicates() == {}
    assert {t["thread_id"] for t in opik.traces.values()} == {"quickstart-conversation"}


def test_zero_code(opik: OpikStandin, llm: FakeOpenAIServer, tmp_path: Path) -> None:
    need("openai", "opentelemetry.instrumentation.openai_v2")
    instrument = BIN / "opentelemetry-instrument"
    if not instrument.exists():
        pytest.skip("opentelemetry-instrument is not installed (pip install 'opentelemetry-exporter-opik[instrument]')")
    env = clean_env(
        tmp_path,
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
    proc = run([str(instrument), sys.executable, str(EXAMPLES / "zero_code" / "app.py")], env)
    assert proc.stdout.count("A: ") == 2
    assert len(llm.requests) == 2
    opik.wait_for_counts(traces=2)
    assert opik.duplicates() == {}
    for trace in opik.traces_by_id().values():
        assert trace["project_name"] == "otel-zero-code"
        assert trace["metadata"]["otel"]["resource"]["service.name"] == "zero-code-demo"
        llm_spans = [s for s in spans_of(opik, trace["id"]) if s["type"] == "llm"]
        # one per installed OpenAI instrumentation (this test environment has several)
        assert llm_spans and all(s["model"].startswith("gpt-4o-mini") for s in llm_spans)
        assert any(s.get("usage", {}).get("prompt_tokens") == 13 for s in llm_spans)
        assert "Answer in three words." in str(trace["input"])


def test_openai_app(opik: OpikStandin, llm: FakeOpenAIServer, tmp_path: Path) -> None:
    need("openai", "opentelemetry.instrumentation.openai_v2")
    env = clean_env(tmp_path, OPIK_URL_OVERRIDE=opik.url, OPENAI_BASE_URL=llm.base_url, OPENAI_API_KEY="sk-test",
                    OPENAI_MAX_RETRIES="0")
    proc = run([sys.executable, str(EXAMPLES / "openai_app.py")], env)
    assert "dropped: none" in proc.stdout
    assert len(llm.requests) == 4  # per question: the call that asks for the tool, the call that answers
    opik.wait_for_counts(traces=2, spans=8)
    assert opik.duplicates() == {}
    for trace in opik.traces_by_id().values():
        assert trace["name"] == "invoke_agent weather-agent"
        assert trace["thread_id"] == "weather-chat-1"
        assert trace["project_name"] == "otel-openai-example"
        spans = spans_of(opik, trace["id"])
        types = Counter(s["type"] for s in spans)
        assert types["llm"] == 2 and types["tool"] == 1, types
        root = next(s for s in spans if "parent_span_id" not in s)
        assert all(s.get("parent_span_id") == root["id"] for s in spans if s is not root)
        assert all(s.get("usage", {}).get("completion_tokens") == 9 for s in spans if s["type"] == "llm")


def test_langchain_openinference(opik: OpikStandin, tmp_path: Path) -> None:
    need("langchain_core", "openinference.instrumentation.langchain")
    proc = run([sys.executable, str(EXAMPLES / "langchain_openinference.py")], clean_env(tmp_path, OPIK_URL_OVERRIDE=opik.url))
    assert "A: Opik traces and evaluates LLM applications." in proc.stdout
    assert "dropped: none" in proc.stdout
    opik.wait_for_counts(traces=2)
    assert opik.duplicates() == {}
    for trace in opik.traces_by_id().values():
        assert trace["name"] == "rag-chain"
        assert trace["thread_id"] == "langchain-session-1"
        spans = spans_of(opik, trace["id"])
        names = {s["name"] for s in spans}
        assert {"rag-chain", "retrieve", "ChatPromptTemplate", "GenericFakeChatModel", "StrOutputParser"} <= names, names
        (model,) = [s for s in spans if s["type"] == "llm"]
        assert model["usage"]["prompt_tokens"] == 41 and model["usage"]["completion_tokens"] == 12


def test_fastapi_service_under_gunicorn(opik: OpikStandin, llm: FakeOpenAIServer, tmp_path: Path) -> None:
    """Two forked workers, real HTTP requests: each request is one trace (server span + LLM span)."""
    need("fastapi", "gunicorn", "uvicorn", "opentelemetry.instrumentation.fastapi", "opentelemetry.instrumentation.openai_v2")
    port = free_port()
    env = clean_env(tmp_path, OPIK_URL_OVERRIDE=opik.url, OPENAI_BASE_URL=llm.base_url, OPENAI_API_KEY="sk-test",
                    OPENAI_MAX_RETRIES="0", BIND=f"127.0.0.1:{port}", WEB_CONCURRENCY="2")
    proc = subprocess.Popen([str(BIN / "gunicorn"), "-c", str(EXAMPLES / "fastapi_service" / "gunicorn.conf.py")],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    pids: Counter = Counter()
    try:
        wait_port(port, proc, timeout=60)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and (len(pids) < 2 or sum(pids.values()) < 8):
                # a new connection per request: the workers take turns accepting
                r = client.post("/ask", json={"question": f"question {sum(pids.values())}"},
                                headers={"x-session-id": "session-1", "connection": "close"})
                assert r.status_code == 200, r.text
                pids[r.json()["pid"]] += 1
    finally:
        proc.send_signal(signal.SIGTERM)  # graceful: each worker's lifespan shutdown flushes its exporter
        try:
            stderr = proc.communicate(timeout=60)[1]
        except subprocess.TimeoutExpired:
            proc.kill()
            stderr = proc.communicate()[1]
    assert proc.returncode == 0, stderr[-3000:]
    assert len(pids) == 2, f"only one worker answered: {pids}"
    n = sum(pids.values())
    opik.wait_for_counts(traces=n, spans=2 * n)
    assert opik.duplicates() == {}
    by_worker: Counter = Counter()
    for trace in opik.traces_by_id().values():
        assert trace["name"] == "POST /ask" and trace["thread_id"] == "session-1"
        spans = spans_of(opik, trace["id"])
        (server,) = [s for s in spans if s["name"] == "POST /ask"]
        (chat,) = [s for s in spans if s["type"] == "llm"]
        assert chat["parent_span_id"] == server["id"]
        assert server["metadata"]["otel"]["span_kind"] == "SERVER"
        by_worker[server["metadata"]["worker.pid"]] += 1
    assert by_worker == pids  # every request of every worker arrived once


def _node_example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Node example with its dependencies installed (cached by lock file hash across runs)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.skip("Node.js and npm are not installed: the Vercel AI SDK example needs them")
    src = EXAMPLES / "node_vercel_ai"
    digest = hashlib.sha256((src / "package-lock.json").read_bytes() + (src / "package.json").read_bytes()).hexdigest()[:16]
    cache = Path(os.environ.get("OPIK_OTEL_TEST_CACHE", Path.home() / ".cache" / "opik-otel-tests")) / f"node_vercel_ai-{digest}"
    if not (cache / "node_modules" / "ai").is_dir():
        work = tmp_path_factory.mktemp("npm")
        for name in ("package.json", "package-lock.json"):
            shutil.copy(src / name, work / name)
        proc = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=work, capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            pytest.skip(f"npm ci failed (is the npm registry reachable?): {proc.stderr.strip()[-500:]}")
        cache.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(cache, ignore_errors=True)
        shutil.copytree(work, cache, symlinks=True)
    shutil.copy(src / "index.mjs", cache / "index.mjs")  # always the current source
    return cache


def test_node_vercel_ai_through_the_sidecar(opik: OpikStandin, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    app = _node_example(tmp_path_factory)
    port = free_port()
    env = clean_env(tmp_path, OPIK_URL_OVERRIDE=opik.url)
    sidecar = subprocess.Popen(
        [sys.executable, "-m", "opentelemetry.exporter.opik._cli", "serve", "--no-grpc", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        wait_port(port, sidecar)
        node_env = clean_env(tmp_path, OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{port}", OPIK_PROJECT_NAME="otel-vercel-ai")
        proc = run([shutil.which("node") or "node", "index.mjs"], node_env, cwd=app)
        assert "generateText: It is 18°C and cloudy in Paris." in proc.stdout
        assert "streamText: Bring an umbrella." in proc.stdout
        opik.wait_for_counts(traces=2, timeout=20)
    finally:
        sidecar.send_signal(signal.SIGTERM)
        try:
            sidecar.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            sidecar.kill()
            sidecar.communicate()
    assert sidecar.returncode == 0
    assert opik.duplicates() == {}
    traces = {t["name"]: t for t in opik.traces_by_id().values()}
    assert set(traces) == {"ai.generateText", "ai.streamText"}
    for trace in traces.values():
        assert trace["project_name"] == "otel-vercel-ai"
        assert trace["thread_id"] == "vercel-chat-1"
        assert trace["metadata"]["otel"]["resource"]["service.name"] == "vercel-ai-example"
    assert traces["ai.streamText"]["ttft"] >= 50  # the mock stream's first chunk came after 50 ms
    spans = {t: sorted((s["name"], s["type"]) for s in spans_of(opik, traces[t]["id"])) for t in traces}
    assert spans["ai.generateText"] == [
        ("ai.generateText", "general"),
        ("ai.generateText.doGenerate", "llm"),
        ("ai.generateText.doGenerate", "llm"),
        ("ai.toolCall", "tool"),
    ]
    assert spans["ai.streamText"] == [("ai.streamText", "general"), ("ai.streamText.doStream", "llm")]
    usage = sorted(s["usage"]["prompt_tokens"] for s in opik.spans_by_id().values() if s["type"] == "llm")
    assert usage == [12, 25, 40]
    # in Opik's UI: every model call a conversation, every trace its question and answer
    weather_q, weather_a = "What is the weather in Paris?", "It is 18°C and cloudy in Paris."
    umbrella_q, umbrella_a = "Should I take an umbrella?", "Bring an umbrella."
    llm = {t: sorted((s for s in spans_of(opik, traces[t]["id"]) if s["type"] == "llm"), key=lambda s: s["start_time"])
           for t in traces}
    asks, answers = llm["ai.generateText"]
    assert opik_ui.problems(asks, weather_q) == []  # answered with a tool call
    (call,) = asks["output"]["choices"][0]["message"]["tool_calls"]
    assert call["function"] == {"name": "weather", "arguments": '{"city":"Paris"}'} and call["id"] == "call-1"
    assert opik_ui.problems(answers, weather_q, weather_a) == []
    assert [m["role"] for m in answers["input"]["messages"]] == ["user", "assistant", "tool"]
    assert answers["input"]["messages"][1]["tool_calls"] == [call]
    assert answers["input"]["messages"][2]["tool_call_id"] == "call-1"
    assert "18" in answers["input"]["messages"][2]["content"]
    (streamed,) = llm["ai.streamText"]
    assert opik_ui.problems(streamed, umbrella_q, umbrella_a) == []
    for name, question, answer in (("ai.generateText", weather_q, weather_a), ("ai.streamText", umbrella_q, umbrella_a)):
        assert opik_ui.table_text(traces[name]["input"], "input") == question, traces[name]["input"]
        assert opik_ui.table_text(traces[name]["output"], "output") == answer, traces[name]["output"]


def test_every_example_is_run_by_a_test() -> None:
    """A new example without a test would rot: each one must be named by some test module."""
    tests_text = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "tests").glob("test_*.py"))
    untested = [
        p.name
        for p in EXAMPLES.iterdir()
        if not p.name.startswith((".", "_")) and p.name != "README.md"
        and f'"{p.name}"' not in tests_text and f"examples/{p.name}" not in tests_text
    ]
    assert untested == [], f"examples with no test: {untested}"
