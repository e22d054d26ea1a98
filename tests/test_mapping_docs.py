"""The before/after examples of ``docs/mapping.md`` ("How content is shaped") are fixtures.

Each ``### <family>`` subsection there holds a fenced block tagged ``json before``
(a span: ``name``, ``attributes``, optional ``events`` ``[[name, attributes]]``,
``kind`` and ``scope``, the instrumentation scope's name) and one tagged
``json after`` (the fields of the mapped Opik span it must produce, optionally
``trace`` for the trace row of a root span). The test maps each ``before`` with
the real SDK and ``Mapper`` and compares, and checks with the UI rules
(``opik_ui.py``) that an LLM span renders as messages.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Dict, List, Tuple

import opik_ui
import pytest
from conftest_conventions import Recorder, mapped
from opentelemetry.trace import SpanKind

DOC = Path(__file__).resolve().parent.parent / "docs" / "mapping.md"
_BLOCK = re.compile(r"```json (before|after)\n(.*?)```", re.S)


def _examples() -> List[Tuple[str, Dict[str, Any], Dict[str, Any]]]:
    text = DOC.read_text()
    section = text.split("## How content is shaped", 1)[1].split("\n## ", 1)[0]
    found = []
    for part in section.split("\n### ")[1:]:
        title = part.splitlines()[0].strip()
        blocks = {kind: json.loads(body) for kind, body in _BLOCK.findall(part)}
        assert set(blocks) == {"before", "after"}, f"{title}: needs one `json before` and one `json after` block"
        found.append((title, blocks["before"], blocks["after"]))
    return found


EXAMPLES = _examples()


def test_every_family_has_an_example() -> None:
    assert len(EXAMPLES) >= 1


@pytest.mark.parametrize("title,before,after", EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_documented_example(title: str, before: Dict[str, Any], after: Dict[str, Any]) -> None:
    rec = Recorder()
    events = [(name, 10, attrs) for name, attrs in before.get("events", [])]
    kind = getattr(SpanKind, before.get("kind", "INTERNAL"))
    rec.span(before["name"], before["attributes"], 0, 100, events=events, kind=kind, scope=before.get("scope"))
    result = mapped(rec.finished())
    span = result.span(before["name"])
    expected = {k: v for k, v in after.items() if k != "trace"}
    assert {k: span.get(k) for k in expected} == expected
    if "trace" in after:
        assert {k: result.trace.get(k) for k in after["trace"]} == after["trace"]
    if span["type"] == "llm":
        assert opik_ui.problems(span) == []
