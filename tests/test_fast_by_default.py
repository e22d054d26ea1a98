"""Fast by default: orjson and isal are dependencies, and without them the stdlib sends the same rows.

A platform with no wheel for one of them still gets a working exporter: a
process where neither imports (``import orjson`` / ``import isal`` raise
ImportError) exports the same spans to the Opik stand-in as this one, with
stdlib JSON and zlib gzip.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import re
import subprocess
import sys
import textwrap
import types
import zlib
from pathlib import Path
from typing import Any, Dict

import pytest

from opentelemetry.exporter.opik import _compress, _json

try:
    from tests.conftest_privacy import make_exporter, opik, provider_for  # noqa: F401
    from tests.opik_standin import OpikStandin
except ImportError:
    from conftest_privacy import make_exporter, opik, provider_for  # type: ignore[no-redef] # noqa: F401
    from opik_standin import OpikStandin  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parent.parent
tomllib = pytest.importorskip("tomllib")  # Python 3.11+

#: spans with content, an error, events and numbers: what the two installs must send alike
SPANS = textwrap.dedent(
    """
    import json
    from opentelemetry.trace import Status, StatusCode

    def emit(tp):
        tracer = tp.get_tracer("fast-by-default")
        with tracer.start_as_current_span("agent", attributes={"gen_ai.operation.name": "invoke_agent"}) as root:
            root.set_attribute("input.value", json.dumps({"q": "weather in Paris? é 😀", "n": 2**40, "x": 0.1}))
            with tracer.start_as_current_span("chat gpt-4o") as llm:
                llm.set_attribute("gen_ai.operation.name", "chat")
                llm.set_attribute("gen_ai.request.model", "gpt-4o")
                llm.set_attribute("gen_ai.usage.input_tokens", 12)
                llm.set_attribute("gen_ai.input.messages", json.dumps([{"role": "user", "parts": [{"type": "text", "content": "hi " * 400}]}]))
                llm.add_event("note", {"k": 1.5})
            with tracer.start_as_current_span("tool") as tool:
                tool.set_status(Status(StatusCode.ERROR, "no such city"))
        tp.force_flush()
    """
)

#: the same, in a process where orjson and isal cannot be imported
CHILD = SPANS + textwrap.dedent(
    """
    import sys
    from opentelemetry.exporter.opik import OpikSpanExporter, _compress, _json
    from opentelemetry.exporter.opik._config import resolve_settings
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    assert not _json.using_orjson() and not _compress.using_isal(), "a fast library was imported"
    exporter = OpikSpanExporter(settings=resolve_settings(
        {"url": sys.argv[1], "project_name": "stdlib-only", "timeout": 2.0, "retry_deadline": 5.0}, env={}))
    tp = TracerProvider(resource=Resource.create({"service.name": "privacy-tests"}))
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    emit(tp)
    assert exporter.force_flush(10_000)
    tp.shutdown()
    print("stdlib-only export done")
    """
)
#: run first: every later ``import orjson`` / ``import isal`` raises ImportError
HIDE = 'import sys\nfor _m in ("orjson", "isal", "isal.isal_zlib"):\n    sys.modules[_m] = None\n'


def _load_hiding(module: str, hidden: str) -> types.ModuleType:
    """A fresh copy of ``module`` imported while ``hidden`` cannot be."""
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.loader is not None
    saved = {k: sys.modules.get(k) for k in (hidden, hidden + ".isal_zlib")}
    for k in saved:
        sys.modules[k] = None  # type: ignore[assignment]
    try:
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        for k, v in saved.items():
            if v is None:
                del sys.modules[k]
            else:
                sys.modules[k] = v
    return mod


def _rows(opik: OpikStandin, project: str) -> Dict[str, Any]:
    """What Opik stored in ``project``, by name, without the ids and times that differ between runs."""
    drop = re.compile(r"^(id|trace_id|parent_span_id|start_time|end_time|last_updated_at|project_name)$")
    out: Dict[str, Any] = {}
    for kind, rows in (("trace", opik.traces.values()), ("span", opik.spans.values())):
        for row in rows:
            if row.get("project_name") != project:
                continue
            clean = {k: v for k, v in row.items() if not drop.match(k)}
            otel = clean.get("metadata", {}).get("otel", {})
            for k in ("trace_id", "span_id", "parent_span_id"):
                otel.pop(k, None)
            for e in otel.get("events", ()):
                e.pop("time", None)
            otel.get("resource", {}).pop("service.instance.id", None)  # one per process
            out[f"{kind}:{row['name']}"] = clean
    return out


def test_orjson_and_isal_are_dependencies_and_the_fast_extra_still_names_them() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {re.split(r"[<>=!~; \[]", d, maxsplit=1)[0].lower() for d in project["dependencies"]}
    assert {"orjson", "isal"} <= names
    fast = {re.split(r"[<>=!~; \[]", d, maxsplit=1)[0].lower() for d in project["optional-dependencies"]["fast"]}
    assert {"orjson", "isal", "httptools"} <= fast  # `pip install '...[fast]'` keeps working
    assert _json.using_orjson() and _compress.using_isal()  # this environment installed them


def test_without_isal_gzip_is_zlibs_at_every_level() -> None:
    stdlib = _load_hiding("opentelemetry.exporter.opik._compress", "isal")
    assert not stdlib.using_isal()
    body = json.dumps({"spans": [{"input": {"q": "weather " * 50, "i": i}} for i in range(200)]}).encode()
    for level in range(1, 10):
        out = stdlib.gzip_compressor(level)(body)
        assert gzip.decompress(out) == body
        c = zlib.compressobj(level, zlib.DEFLATED, 31)
        assert out == c.compress(body) + c.flush()


def test_without_orjson_and_isal_the_exporter_sends_the_same_rows(opik: OpikStandin) -> None:
    namespace: Dict[str, Any] = {}
    exec(SPANS, namespace)  # noqa: S102 - the test's own span script, shared with the child process
    exporter = make_exporter(opik, retry_deadline=5.0)
    tp = provider_for(exporter)
    namespace["emit"](tp)
    assert exporter.force_flush(10_000)
    tp.shutdown()
    opik.wait_for_counts(traces=1, spans=3)

    proc = subprocess.run([sys.executable, "-c", HIDE + CHILD, opik.url], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "stdlib-only export done" in proc.stdout, proc.stderr[-3000:]
    opik.wait_for_counts(traces=2, spans=6)
    fast, stdlib = _rows(opik, "privacy-tests"), _rows(opik, "stdlib-only")
    gzipped = [r for r in opik.requests if r.method == "POST" and r.path.endswith("/batch")]
    assert gzipped and all(r.headers.get("content-encoding") == "gzip" for r in gzipped)
    # (integers beyond 64 bits are the one known difference, see _json.py: not sent here)
    assert stdlib == fast
    assert len(fast) == 4 and fast["span:tool"]["error_info"]["message"] == "no such city"
