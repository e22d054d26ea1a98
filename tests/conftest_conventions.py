"""Helpers for the convention tests: real SDK spans in, schema-valid Opik items out.

``Recorder`` builds spans with the real ``TracerProvider`` (explicit times, so
every mapped field is deterministic), ``mapped()`` runs the real ``Mapper`` and
validates every item against Opik's write schemas (after the same JSON encoding
the exporter uses), and ``strip()`` drops the fields that only restate ids and
times so a test can compare a whole span or trace with ``==``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from jsonschema import Draft202012Validator
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context

from opentelemetry.exporter.opik._config import resolve_settings
from opentelemetry.exporter.opik._json import dumps
from opentelemetry.exporter.opik._mapping import Mapper
from opentelemetry.exporter.opik._record import SpanRecord, from_readable_span

T0 = 1_800_000_000_000_000_000  # 2027-01-15T08:00:00Z, in ns
_SCHEMAS = json.loads((Path(__file__).resolve().parent / "schema" / "opik_write_schemas.json").read_text())
_COMPONENTS = _SCHEMAS["components"]


def _validator(name: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": f"#/components/schemas/{name}", "components": _COMPONENTS})


_VALIDATORS = {
    "trace": _validator("TraceBatch_Write"),
    "span": _validator("SpanBatch_Write"),
    "span_score": _validator("FeedbackScoreBatch_Write"),
}
_BATCH_KEY = {"trace": "traces", "span": "spans", "span_score": "scores"}


def ns(ms: float) -> int:
    return T0 + int(ms * 1_000_000)


def iso(ms: float) -> str:
    from opentelemetry.exporter.opik._mapping._time import iso_ns

    return iso_ns(ns(ms))


class Recorder:
    """A real SDK provider whose finished spans stay in memory."""

    def __init__(self, scope: str = "tests.conventions", max_events: Optional[int] = None,
                 resource: Optional[Mapping[str, Any]] = None) -> None:
        self.memory = InMemorySpanExporter()
        limits = SpanLimits(max_events=max_events) if max_events is not None else SpanLimits()
        self.provider = TracerProvider(
            resource=Resource.create(dict(resource or {"service.name": "conventions"})), span_limits=limits
        )
        self.provider.add_span_processor(SimpleSpanProcessor(self.memory))
        self.tracer = self.provider.get_tracer(scope, "1.0")

    def span(
        self,
        name: str,
        attrs: Mapping[str, Any],
        start_ms: float,
        end_ms: float,
        parent: Any = None,
        events: Sequence[Tuple[str, float, Mapping[str, Any]]] = (),
        kind: SpanKind = SpanKind.INTERNAL,
        error: Optional[BaseException] = None,
        scope: Optional[str] = None,
    ) -> Any:
        """Start and end one span (times in ms after ``T0``); returns it for use as a parent."""
        tracer = self.provider.get_tracer(scope, "1.0") if scope else self.tracer
        ctx = set_span_in_context(parent) if parent is not None else None
        s = tracer.start_span(name, context=ctx, kind=kind, attributes=dict(attrs), start_time=ns(start_ms))
        for ev_name, at_ms, ev_attrs in events:
            s.add_event(ev_name, dict(ev_attrs), timestamp=ns(at_ms))
        if error is not None:
            s.record_exception(error, timestamp=ns(end_ms))
            s.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
        s.end(end_time=ns(end_ms))
        return s

    def finished(self) -> List[ReadableSpan]:
        return list(self.memory.get_finished_spans())


class Result:
    """Mapped, JSON-encoded, schema-validated items."""

    def __init__(self, items: List[Tuple[str, Dict[str, Any]]]) -> None:
        self.traces = [d for k, d in items if k == "trace"]
        self.spans = [d for k, d in items if k == "span"]
        self.scores = [d for k, d in items if k == "span_score"]

    @property
    def trace(self) -> Dict[str, Any]:
        assert len(self.traces) == 1, [t["name"] for t in self.traces]
        return self.traces[0]

    def span(self, name: str) -> Dict[str, Any]:
        found = [s for s in self.spans if s["name"] == name]
        assert len(found) == 1, (name, [s["name"] for s in self.spans])
        return found[0]

    def usage_total(self) -> Dict[str, int]:
        """What Opik shows as the trace's usage: the sum over its spans."""
        total: Dict[str, int] = {}
        for s in self.spans:
            for k, v in s.get("usage", {}).items():
                total[k] = total.get(k, 0) + v
        return total


def mapped(spans: Iterable[Any], project: str = "conventions") -> Result:
    records: List[SpanRecord] = [s if isinstance(s, SpanRecord) else from_readable_span(s) for s in spans]
    mapper = Mapper(resolve_settings({"project_name": project}, env={}))
    result = mapper.map(records)
    assert result.rejected == []
    items = []
    for m in result.items:
        data = json.loads(dumps(m.data))  # exactly what the exporter would send
        errors = sorted(_VALIDATORS[m.kind].iter_errors({_BATCH_KEY[m.kind]: [data]}), key=str)
        assert not errors, (m.kind, data.get("name"), [e.message for e in errors[:5]])
        items.append((m.kind, data))
    return Result(items)


def strip(item: Dict[str, Any], keep_otel: bool = False) -> Dict[str, Any]:
    """The item without ids, times and (unless asked) ``metadata.otel``: the mapped content."""
    d = {k: v for k, v in item.items() if k not in ("id", "trace_id", "parent_span_id", "start_time", "end_time",
                                                    "last_updated_at", "project_name", "source")}
    if not keep_otel and isinstance(d.get("metadata"), dict):
        d["metadata"] = {k: v for k, v in d["metadata"].items() if k != "otel"}
    return d


def children_of(result: Result, parent: Dict[str, Any]) -> List[Dict[str, Any]]:
    return [s for s in result.spans if s.get("parent_span_id") == parent["id"]]
