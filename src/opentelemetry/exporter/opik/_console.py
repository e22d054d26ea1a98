"""Dry-run output: the Opik traces that would be sent, as an indented tree."""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Sequence, TextIO

from ._items import Item
from ._json import loads
from ._stats import Stats

_MAX_PENDING_TRACES = 10_000


def _line(d: Dict[str, Any], kind: str) -> str:
    bits: List[str] = []
    if kind == "span":
        bits.append(f"[{d.get('type', 'general')}]")
    bits.append(repr(d.get("name", "")))
    for key in ("model", "provider", "thread_id", "environment"):
        if d.get(key):
            bits.append(f"{key}={d[key]}")
    if d.get("usage"):
        bits.append("usage=" + ",".join(f"{k}:{v}" for k, v in d["usage"].items()))
    if d.get("ttft") is not None:
        bits.append(f"ttft={d['ttft']:.0f}ms")
    if d.get("tags"):
        bits.append("tags=" + ",".join(d["tags"]))
    if d.get("error_info"):
        bits.append(f"ERROR {d['error_info'].get('exception_type')}")
    return " ".join(bits)


def _preview(value: Any, limit: int = 100) -> str:
    from ._json import dumps

    s = dumps(value).decode("utf-8", "replace")
    return s if len(s) <= limit else s[: limit - 1] + "…"


class ConsoleWriter:
    """Same interface as the writer, but prints each trace once its root arrives."""

    def __init__(self, stream: Optional[TextIO] = None, stats: Optional[Stats] = None) -> None:
        self.stream = stream
        self.stats = stats or Stats()
        self._lock = threading.Lock()
        self._spans: "OrderedDict[str, List[Dict[str, Any]]]" = OrderedDict()

    def has_capacity(self, n_items: int = 1, n_bytes: int = 0) -> bool:
        return True

    def submit(self, items: Sequence[Item], force: bool = False) -> int:
        traces: List[Dict[str, Any]] = []
        with self._lock:
            for item in items:
                d = loads(item.body)
                if item.kind == "trace":
                    traces.append(d)
                    self.stats.add("traces_exported")
                elif item.kind == "span":
                    self._spans.setdefault(d["trace_id"], []).append(d)
                    self.stats.add("spans_exported")
                    while len(self._spans) > _MAX_PENDING_TRACES:
                        self._spans.popitem(last=False)
                else:
                    self.stats.add("scores_exported")
            for t in traces:
                self._print(t, self._spans.pop(t["id"], []))
        return len(items)

    def _print(self, trace: Optional[Dict[str, Any]], spans: List[Dict[str, Any]]) -> None:
        out = self.stream or sys.stdout
        lines: List[str] = []
        if trace is not None:
            lines.append(f"Opik trace {trace['id']} project={trace.get('project_name')!r} " + _line(trace, "trace"))
            if "input" in trace:
                lines.append(f"  input:  {_preview(trace['input'])}")
            if "output" in trace:
                lines.append(f"  output: {_preview(trace['output'])}")
        else:
            lines.append(f"Opik spans of trace {spans[0]['trace_id']} (root not exported yet)")
        ids = {s["id"] for s in spans}
        children: Dict[Optional[str], List[Dict[str, Any]]] = {}
        for s in sorted(spans, key=lambda s: s["start_time"]):
            parent = s.get("parent_span_id")
            children.setdefault(parent if parent in ids else None, []).append(s)

        def walk(parent: Optional[str], depth: int) -> None:
            for s in children.get(parent, []):
                lines.append("  " * depth + "└─ " + _line(s, "span"))
                walk(s["id"], depth + 1)

        walk(None, 1)
        out.write("\n".join(lines) + "\n")
        out.flush()

    def flush(self, timeout: Optional[float] = None) -> bool:
        with self._lock:
            pending = list(self._spans.values())
            self._spans.clear()
            for spans in pending:
                self._print(None, spans)
        return True

    def shutdown(self, timeout: float = 30.0) -> bool:
        return self.flush(timeout)

    def pending(self) -> int:
        return 0

    def drops_refused(self) -> bool:
        return False


class TeeWriter:
    """Delivers through ``primary`` and prints what it accepted (``opik-otel serve --console``).

    The console keeps its own counters, so nothing is counted twice; every
    other attribute (capacity, pending, auth state) is the primary writer's.
    """

    def __init__(self, primary: Any, stream: Optional[TextIO] = None) -> None:
        self.primary = primary
        self.console = ConsoleWriter(stream, Stats())

    def submit(self, items: Sequence[Item], force: bool = False) -> int:
        accepted = self.primary.submit(items, force)
        if accepted:
            self.console.submit(items[:accepted])
        return accepted

    def flush(self, timeout: Optional[float] = None) -> bool:
        self.console.flush()
        return bool(self.primary.flush(timeout))

    def shutdown(self, timeout: float = 30.0) -> bool:
        self.console.flush()
        return bool(self.primary.shutdown(timeout))

    def has_capacity(self, n_items: int = 1, n_bytes: int = 0) -> bool:
        return bool(self.primary.has_capacity(n_items, n_bytes))

    def pending(self) -> int:
        return int(self.primary.pending())

    def drops_refused(self) -> bool:
        return bool(self.primary.drops_refused())

    def __getattr__(self, name: str) -> Any:
        return getattr(self.primary, name)
