"""The user's mask hook: change, drop, raise (fail closed, logged once per kind)."""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Tuple

import pytest

try:
    from tests.conftest_privacy import make_exporter, opik, provider_for, sent_text, spans_by_name, traces_by_name  # noqa: F401
    from tests.opik_standin import OpikStandin
except ImportError:
    from conftest_privacy import (  # type: ignore[no-redef] # noqa: F401
        make_exporter,
        opik,
        provider_for,
        sent_text,
        spans_by_name,
        traces_by_name,
    )
    from opik_standin import OpikStandin  # type: ignore[no-redef]

EMAIL = "jane.doe@example.com"


def _two_traces(exporter: Any) -> None:
    tp = provider_for(exporter)
    tracer = tp.get_tracer("t")
    for n in (1, 2):
        with tracer.start_as_current_span(f"root {n}") as root:
            root.set_attribute("input.value", f"mail {EMAIL} please")
            root.set_attribute("user.email", EMAIL)
            with tracer.start_as_current_span(f"child {n}") as child:
                child.set_attribute("output.value", f"sent to {EMAIL}")
    assert exporter.force_flush(10_000)
    tp.shutdown()


def test_mask_changes_items(opik: OpikStandin) -> None:
    seen: List[Tuple[str, str]] = []

    def mask(data: Dict[str, Any], kind: str) -> Dict[str, Any]:
        seen.append((kind, data["name"]))
        md = data.get("metadata") or {}
        if "user.email" in md:
            md["user.email"] = "<email>"  # in place: the hook gets a private copy
        for field in ("input", "output"):
            if field in data:
                data[field] = {"value": str(data[field].get("value", "")).replace(EMAIL, "<email>")}
        data.setdefault("tags", []).append("masked")
        return data

    _two_traces(make_exporter(opik, mask=mask))
    opik.wait_for_counts(traces=2, spans=4)
    assert EMAIL not in sent_text(opik)
    spans = spans_by_name(opik)
    assert spans["root 1"]["input"] == {"value": "mail <email> please"}
    assert spans["child 2"]["output"] == {"value": "sent to <email>"}
    assert spans["root 1"]["metadata"]["user.email"] == "<email>"
    assert traces_by_name(opik)["root 2"]["tags"] == ["masked"]
    assert sorted(k for k, _ in seen) == ["span"] * 4 + ["trace"] * 2


def test_mask_drops_items(opik: OpikStandin) -> None:
    def mask(data: Dict[str, Any], kind: str) -> Optional[Dict[str, Any]]:
        return None if data["name"].endswith("2") else data

    exporter = make_exporter(opik, mask=mask)
    _two_traces(exporter)
    opik.wait_for_counts(traces=1, spans=2)
    assert set(spans_by_name(opik)) == {"root 1", "child 1"}
    assert exporter.stats()["dropped"]["masked"] == 3  # trace row, root span, child span of trace 2


def test_a_raising_mask_fails_closed_and_logs_once_per_kind(opik: OpikStandin, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="opentelemetry.exporter.opik")

    def mask(data: Dict[str, Any], kind: str) -> Dict[str, Any]:
        if kind == "span" and data["name"].startswith("child"):
            raise RuntimeError(f"cannot mask {data['input'] if 'input' in data else EMAIL}")
        return data

    exporter = make_exporter(opik, mask=mask)
    _two_traces(exporter)
    opik.wait_for_counts(traces=2, spans=2)
    assert set(spans_by_name(opik)) == {"root 1", "root 2"}
    assert exporter.stats()["dropped"]["mask_error"] == 2
    lines = [r.getMessage() for r in caplog.records if "mask hook" in r.getMessage()]
    assert len(lines) == 1 and "RuntimeError" in lines[0] and "span" in lines[0]
    assert EMAIL not in caplog.text  # the hook's message (which may hold content) is not logged


def test_a_mask_returning_garbage_drops_the_item(opik: OpikStandin, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="opentelemetry.exporter.opik")
    exporter = make_exporter(opik, mask=lambda data, kind: "nope" if kind == "trace" else data)
    _two_traces(exporter)
    opik.wait_for_counts(traces=0, spans=4)
    assert len(opik.traces) == 0 and exporter.stats()["dropped"]["mask_error"] == 2
    assert sum("returned str" in r.getMessage() for r in caplog.records) == 1


def test_mask_copies_are_private_per_item(opik: OpikStandin) -> None:
    """A trace row and its root span share objects inside the mapper; the hook must not see that."""
    def mask(data: Dict[str, Any], kind: str) -> Dict[str, Any]:
        if kind == "trace":
            data["input"]["value"] = "changed by the trace hook"
            data["metadata"].clear()
        return data

    _two_traces(make_exporter(opik, mask=mask))
    opik.wait_for_counts(traces=2, spans=4)
    assert traces_by_name(opik)["root 1"]["input"]["value"] == "changed by the trace hook"
    root_span = spans_by_name(opik)["root 1"]
    assert root_span["input"]["value"] == f"mail {EMAIL} please"
    assert root_span["metadata"]["user.email"] == EMAIL
