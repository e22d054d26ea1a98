"""Self-telemetry: OTel metrics via the global MeterProvider; the exporter's own HTTP is never traced.

Runs in a subprocess, because it sets the process-global MeterProvider and
TracerProvider and instruments httpx globally (the real
``opentelemetry-instrumentation-httpx``), none of which can be undone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from opik_standin import OpikStandin

pytest.importorskip("opentelemetry.instrumentation.httpx")

SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    import httpx
    from opentelemetry import metrics, trace
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.exporter.opik import OpikSpanExporter

    url = os.environ["STANDIN_URL"]
    # Made before any MeterProvider is set: the API's proxy meter binds it later.
    exporter = OpikSpanExporter(url=url, project_name="telemetry")
    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    # Made after: bound at once. Unreachable, with a tiny queue, to produce drops.
    lossy = OpikSpanExporter(url="http://127.0.0.1:9/api", max_queue_items=2, retry_deadline=30)

    seen = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(seen))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    provider.add_span_processor(SimpleSpanProcessor(lossy))
    trace.set_tracer_provider(provider)
    HTTPXClientInstrumentor().instrument()  # every httpx client in the process, ours included

    tracer = trace.get_tracer("app")
    with tracer.start_as_current_span("app-work"):
        httpx.get(url + "/is-alive/ping")  # the application's own call: traced
    assert exporter.force_flush(10_000)
    lossy.shutdown(timeout_millis=0)

    points = {}
    for rm in reader.get_metrics_data().resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                for p in m.data.data_points:
                    value = getattr(p, "value", None)
                    if value is None:
                        value = {"count": p.count, "sum": p.sum}
                    points.setdefault(m.name, []).append({"attrs": dict(p.attributes), "value": value})
    print(json.dumps({
        "spans": [{"name": s.name, "attrs": {k: str(v) for k, v in s.attributes.items()}} for s in seen.get_finished_spans()],
        "points": points,
        "stats": exporter.stats(),
        "lossy": lossy.stats(),
    }))
    """
)


def test_metrics_published_and_own_http_not_traced(opik: OpikStandin, tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, STANDIN_URL=opik.url)
    proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])

    # Tracing: the app's GET is a span; none of the exporter's POSTs is.
    names = [s["name"] for s in out["spans"]]
    assert "app-work" in names and "GET" in names, names
    assert all("/v1/private" not in json.dumps(s["attrs"]) for s in out["spans"])
    assert len(out["spans"]) == 2
    posts = [r for r in opik.requests if r.method == "POST"]
    assert posts and all("traceparent" not in r.headers for r in posts)
    assert sorted(r["name"] for r in opik.spans.values()) == ["GET", "app-work"]

    # Metrics: the counters are the same numbers exporter.stats() gives.
    points = out["points"]
    stats = out["stats"]
    ours = [p for p in points["opik.exporter.items.exported"] if p["attrs"]["otel.component.name"].endswith("/0")]
    by_kind = {p["attrs"]["opik.item.kind"]: p["value"] for p in ours}
    assert by_kind == {"trace": 1, "span": 2, "span_score": 0}
    assert stats["traces_exported"] == 1 and stats["spans_exported"] == 2
    ok = [p["value"] for p in points["opik.exporter.requests"]
          if p["attrs"]["outcome"] == "ok" and p["attrs"]["otel.component.name"].endswith("/0")]
    assert ok == [stats["requests"]]
    durations = [p["value"] for p in points["opik.exporter.request.duration"] if p["attrs"]["outcome"] == "ok"]
    assert sum(d["count"] for d in durations) == stats["requests"] and sum(d["sum"] for d in durations) > 0
    dropped = {p["attrs"]["reason"]: p["value"] for p in points["opik.exporter.items.dropped"]}
    assert dropped == out["lossy"]["dropped"]
    assert dropped == {"queue_full": 1, "shutdown": 2}  # 3 items (GET span; app-work trace + span), bound 2
    assert {p["attrs"]["otel.component.type"] for p in points["opik.exporter.queue.size"]} == {"opik_exporter"}
    assert "opik.exporter.spans.received" in points and "opik.exporter.retries" in points
