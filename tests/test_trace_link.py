"""``opik_trace_id`` / ``opik_trace_url``: the id Opik stores, in process and across a process boundary."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Dict

from opentelemetry.propagate import inject
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from opentelemetry import trace as trace_api
from opentelemetry.exporter.opik import OpikSampler, opik_trace_id, opik_trace_url
from opentelemetry.exporter.opik._trace_link import trace_url

try:
    from tests.conftest_privacy import make_exporter, opik, spans_by_name, traces_by_name  # noqa: F401
    from tests.opik_standin import OpikStandin
    from tests.sidecar_helpers import clean_env
except ImportError:
    from conftest_privacy import make_exporter, opik, spans_by_name, traces_by_name  # type: ignore[no-redef] # noqa: F401
    from opik_standin import OpikStandin  # type: ignore[no-redef]
    from sidecar_helpers import clean_env  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parent.parent


def _provider(exporter: Any, sampler: Any = None) -> TracerProvider:
    tp = TracerProvider(resource=Resource.create({"service.name": "trace-link"}), sampler=sampler)
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    return tp


def test_with_the_sampler_the_id_is_the_stored_trace_id(opik: OpikStandin) -> None:
    exporter = make_exporter(opik)
    tp = _provider(exporter, OpikSampler())
    tracer = tp.get_tracer("t")
    with tracer.start_as_current_span("request") as root:
        from_root = opik_trace_id()
        with tracer.start_as_current_span("chat"):
            from_child = opik_trace_id()
            url = opik_trace_url()
    assert exporter.force_flush(10_000)
    opik.wait_for_counts(traces=1, spans=2)
    tp.shutdown()
    stored = traces_by_name(opik)["request"]["id"]
    assert from_root == from_child == stored == opik_trace_id(root)
    assert {s["trace_id"] for s in spans_by_name(opik).values()} == {stored}
    assert url == trace_url(stored, opik.url)


def test_without_the_sampler_asked_before_any_export(opik: OpikStandin) -> None:
    """No tracestate entry: the id is pinned in this process's exporter when asked (here, in a child first)."""
    exporter = make_exporter(opik)
    tp = _provider(exporter)
    tracer = tp.get_tracer("t")
    with tracer.start_as_current_span("request") as root:
        with tracer.start_as_current_span("step"):
            with tracer.start_as_current_span("chat"):
                asked_in_grandchild = opik_trace_id()
        # the children are exported by now: the root asks the exporter's cache
        asked_in_root = opik_trace_id()
    assert exporter.force_flush(10_000)
    opik.wait_for_counts(traces=1, spans=3)
    tp.shutdown()
    stored = traces_by_name(opik)["request"]["id"]
    assert asked_in_grandchild == asked_in_root == stored == opik_trace_id(root)
    assert {s["trace_id"] for s in spans_by_name(opik).values()} == {stored}


def test_without_the_sampler_asked_after_export(opik: OpikStandin) -> None:
    exporter = make_exporter(opik)
    tp = _provider(exporter)
    tracer = tp.get_tracer("t")
    with tracer.start_as_current_span("request") as root:
        with tracer.start_as_current_span("chat") as child:
            pass
    assert exporter.force_flush(10_000)
    opik.wait_for_counts(traces=1, spans=2)
    tp.shutdown()
    stored = traces_by_name(opik)["request"]["id"]
    assert opik_trace_id(root) == opik_trace_id(child) == stored


def test_invalid_span_has_no_id() -> None:
    assert opik_trace_id(trace_api.INVALID_SPAN) is None
    assert opik_trace_url(trace_api.INVALID_SPAN) is None


def test_url_is_opiks_trace_redirect_for_local_and_cloud() -> None:
    tid = "01a23870-cb65-75bf-b34f-b98b30b4c937"
    for api in ("http://localhost:5173/api", "https://www.comet.com/opik/api"):
        encoded = base64.b64encode(api.encode()).decode().replace("+", "%2B")
        assert trace_url(tid, api) == f"{api}/v1/session/redirect/projects/?trace_id={tid}&path={encoded}"
        assert trace_url(tid, api + "/") == trace_url(tid, api)


_DOWNSTREAM = textwrap.dedent(
    """
    import json, sys
    from opentelemetry.propagate import extract
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.exporter.opik import OpikSampler, OpikSpanExporter, opik_trace_id, opik_trace_url

    carrier = json.loads(sys.argv[1])
    exporter = OpikSpanExporter(url=sys.argv[2], project_name="privacy-tests")
    tp = TracerProvider(sampler=OpikSampler())
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    with tp.get_tracer("downstream").start_as_current_span("downstream work", context=extract(carrier)):
        out = {"id": opik_trace_id(), "url": opik_trace_url()}
    tp.shutdown()
    print(json.dumps(out))
    """
)


def test_across_a_process_boundary_with_the_tracestate_entry(opik: OpikStandin) -> None:
    """The downstream process never sees the root: the ``opik`` tracestate entry alone gives it the same id."""
    exporter = make_exporter(opik)
    tp = _provider(exporter, OpikSampler())
    with tp.get_tracer("t").start_as_current_span("request"):
        upstream = opik_trace_id()
        carrier: Dict[str, str] = {}
        inject(carrier)
        assert "opik=" in carrier.get("tracestate", "")
        r = subprocess.run(
            [sys.executable, "-c", _DOWNSTREAM, json.dumps(carrier), opik.url],
            capture_output=True, text=True, timeout=60, cwd=str(ROOT), env=clean_env(),
        )
        assert r.returncode == 0, r.stderr[-2000:]
    assert exporter.force_flush(10_000)
    opik.wait_for_counts(spans=2)
    tp.shutdown()
    downstream = json.loads(r.stdout.strip().splitlines()[-1])
    # both processes wrote their part of the one trace: one trace row, under one id
    assert [t["id"] for t in opik.traces.values()] == [upstream]
    assert downstream["id"] == upstream
    assert spans_by_name(opik)["request"]["trace_id"] == upstream
    assert spans_by_name(opik)["downstream work"]["trace_id"] == upstream
    assert downstream["url"] == trace_url(upstream, opik.url)
