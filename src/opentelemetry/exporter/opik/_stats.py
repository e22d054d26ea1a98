"""Self-telemetry counters, readable with ``exporter.stats()`` and as OTel metrics."""

from __future__ import annotations

import threading
from typing import Dict


class Stats:
    """Thread-safe counters. ``dropped`` is broken down by reason."""

    COUNTERS = (
        "spans_received",
        "spans_rejected",
        "traces_exported",
        "spans_exported",
        "scores_exported",
        "requests",
        "requests_failed",
        "retries",
        "items_spooled",
        "items_unspooled",
    )

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._c: Dict[str, float] = {k: 0 for k in self.COUNTERS}
        self._dropped: Dict[str, int] = {}
        self._c["request_seconds_total"] = 0.0

    def add(self, name: str, n: float = 1) -> None:
        with self._lock:
            self._c[name] = self._c.get(name, 0) + n

    def drop(self, reason: str, n: int = 1) -> None:
        if n:
            with self._lock:
                self._dropped[reason] = self._dropped.get(reason, 0) + n

    def dropped_total(self) -> int:
        with self._lock:
            return sum(self._dropped.values())

    def snapshot(self) -> Dict[str, object]:
        with self._lock:
            out: Dict[str, object] = dict(self._c)
            out["dropped"] = dict(self._dropped)
            return out

    def reset(self) -> None:
        with self._lock:
            for k in self._c:
                self._c[k] = 0
            self._dropped.clear()
