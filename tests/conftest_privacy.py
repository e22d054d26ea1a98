"""Helpers for the privacy and hardening tests: a stand-in fixture, exporters, schema checks.

Imported explicitly by ``test_privacy_*.py`` / ``test_hardening_*.py``.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from opentelemetry.exporter.opik import _exporter
from opentelemetry.exporter.opik._items import Item

try:
    from tests.opik_standin import OpikStandin
except ImportError:  # tests/ is not a package: pytest put tests/ itself on sys.path
    from opik_standin import OpikStandin  # type: ignore[no-redef]

SCHEMA_PATH = Path(__file__).resolve().parent / "schema" / "opik_write_schemas.json"
_SCHEMA_NAMES = {"trace": "Trace_Write", "span": "Span_Write", "span_score": "FeedbackScoreBatchItem"}

#: settings that keep failure paths fast in tests
FAST = dict(timeout=2.0, retry_deadline=1.0)


@pytest.fixture
def opik() -> Iterator[OpikStandin]:
    with OpikStandin() as standin:
        yield standin


def make_exporter(opik: Optional[OpikStandin], **options: Any) -> _exporter.OpikSpanExporter:
    """An exporter aimed at the stand-in, with the environment ignored."""
    if opik is not None:
        options.setdefault("url", opik.url)
    options.setdefault("project_name", "privacy-tests")
    for k, v in FAST.items():
        options.setdefault(k, v)
    mask = options.pop("mask", None)
    from opentelemetry.exporter.opik._config import resolve_settings

    settings = resolve_settings(options, env={})
    return _exporter.OpikSpanExporter(settings=settings, mask=mask)


def provider_for(exporter: Any, service: str = "privacy-tests") -> TracerProvider:
    tp = TracerProvider(resource=Resource.create({"service.name": service}))
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    return tp


def sent_text(opik: OpikStandin) -> str:
    """Everything the stand-in received, as one JSON text (for "is this secret anywhere?")."""
    return "\n".join(json.dumps(r.json, ensure_ascii=False) for r in opik.requests if r.json is not None)


def spans_by_name(opik: OpikStandin) -> Dict[str, Dict[str, Any]]:
    return {s["name"]: s for s in opik.spans.values()}


def traces_by_name(opik: OpikStandin) -> Dict[str, Dict[str, Any]]:
    return {t["name"]: t for t in opik.traces.values()}


class SchemaCheck:
    """Validates encoded items against the Opik write schemas (as the stand-in does)."""

    def __init__(self) -> None:
        schemas = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
        fmt = FormatChecker()
        self._validators = {
            kind: Draft202012Validator({"$ref": f"#/components/schemas/{name}", "components": schemas["components"]},
                                       format_checker=fmt)
            for kind, name in _SCHEMA_NAMES.items()
        }

    def errors(self, item: Item) -> List[str]:
        try:
            data = json.loads(item.body)
        except ValueError as exc:
            return [f"not JSON: {exc}"]
        errs = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"[:300] for e in self._validators[item.kind].iter_errors(data)]
        for key in ("id", "trace_id", "parent_span_id"):
            if item.kind != "span_score" and key in data:
                u = uuid.UUID(data[key])
                if u.version != 7:
                    errs.append(f"{key} is not a UUIDv7")
        if item.kind in ("trace", "span"):
            for key in ("input", "output", "metadata"):
                if key in data and not isinstance(data[key], (dict, list, str)):
                    errs.append(f"{key} has type {type(data[key]).__name__}")
        return errs


def body_of(items: List[Item], kind: str) -> List[Tuple[Item, Dict[str, Any]]]:
    return [(i, json.loads(i.body)) for i in items if i.kind == kind]
