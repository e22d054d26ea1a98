"""Helpers for the delivery tests: the real exporter and SDK against the Opik stand-in.

Imported explicitly by ``tests/test_delivery_*.py``. Nothing here fakes delivery:
spans come from the real OTel SDK, go through the real exporter and writer over
loopback HTTP to :class:`OpikStandin`; only the retry backoff is shortened (the
writer's public tuning attributes) so the tests stay fast.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Dict, Iterable, List, Optional, Set, Tuple

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opik_standin import OpikStandin

from opentelemetry.exporter.opik import OpikSpanExporter
from opentelemetry.exporter.opik._writer import Writer

LOGGER = "opentelemetry.exporter.opik"


def make_exporter(url: str, *, backoff_cap: float = 0.3, **options: Any) -> OpikSpanExporter:
    """The real exporter with a fast retry backoff (base 0.05 s, capped at ``backoff_cap``)."""
    options.setdefault("project_name", "delivery")
    exporter = OpikSpanExporter(url=url, **options)
    w = writer_of(exporter)
    w.backoff_base = 0.05
    w.backoff_cap = backoff_cap
    return exporter


def writer_of(exporter: OpikSpanExporter) -> Writer:
    w = exporter._writer
    assert isinstance(w, Writer)
    return w


def provider_with(exporter: SpanExporter) -> TracerProvider:
    """An SDK provider exporting every ended span to ``exporter`` at once (Simple processor)."""
    provider = TracerProvider(resource=Resource.create({"service.name": "delivery-tests"}), shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


class Collect(SpanExporter):
    """Keeps the SDK's ReadableSpans, to hand many to the real exporter in one ``export`` call."""

    def __init__(self) -> None:
        self.spans: List[ReadableSpan] = []

    def export(self, spans: Any) -> SpanExportResult:
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def make_spans(n_traces: int, children: int = 0, prefix: str = "t", attrs: Optional[Dict[str, Any]] = None,
               child_names: Optional[List[str]] = None) -> List[ReadableSpan]:
    """Real SDK spans: ``n_traces`` roots, each with ``children`` child spans (children end first)."""
    sink = Collect()
    provider = provider_with(sink)
    tracer = provider.get_tracer("delivery-tests")
    for i in range(n_traces):
        with tracer.start_as_current_span(f"{prefix}{i}", attributes=attrs or {}):
            for j in range(children):
                name = child_names[j] if child_names and j < len(child_names) else f"{prefix}{i}.{j}"
                with tracer.start_as_current_span(name):
                    pass
    provider.shutdown()
    return sink.spans


def otel_ids(spans: Iterable[ReadableSpan]) -> Set[Tuple[str, str]]:
    """``(trace_id hex, span_id hex)`` of SDK spans."""
    return {(f"{s.context.trace_id:032x}", f"{s.context.span_id:016x}") for s in spans}


def stored_otel_ids(opik: OpikStandin) -> List[Tuple[str, str]]:
    """``(trace_id, span_id)`` (OTel, from the span metadata) of every span row Opik stored; a list, so duplicates show."""
    out = []
    for row in opik.spans.values():
        otel = row["metadata"]["otel"]
        out.append((otel["trace_id"], otel["span_id"]))
    return out


def assert_stored_exactly_once(opik: OpikStandin, spans: List[ReadableSpan]) -> None:
    """Every span stored once, under the ids and links it was sent with, and each root as one trace."""
    assert opik.duplicates() == {}
    stored = stored_otel_ids(opik)
    assert len(stored) == len(set(stored)), "a span was stored under two keys"
    assert set(stored) == otel_ids(spans)
    roots = [s for s in spans if s.parent is None]
    traces = opik.traces_by_id()
    assert len(traces) == len(roots)
    by_span_id = opik.spans_by_id()
    for row in by_span_id.values():
        assert row["trace_id"] in traces, f"span {row['name']} points to a trace Opik does not have"
        parent = row.get("parent_span_id")
        if parent is not None:
            assert parent in by_span_id, f"span {row['name']} points to a parent Opik does not have"


def items_in_requests(opik: OpikStandin, key: str = "spans") -> List[str]:
    """Ids of every item in every request Opik answered 2xx for (a list: re-sends show)."""
    out: List[str] = []
    for r in opik.requests:
        if r.status is not None and 200 <= r.status < 300 and isinstance(r.json, dict):
            out += [item["id"] for item in r.json.get(key, [])]
    return out


def wait_until(predicate: Any, timeout: float = 10.0, message: str = "") -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(message or "condition not met in time")
        time.sleep(0.02)


def log_lines(caplog: Any, level: int = logging.WARNING, logger: str = LOGGER) -> List[str]:
    return [r.getMessage() for r in caplog.records if r.name == logger and r.levelno >= level]
