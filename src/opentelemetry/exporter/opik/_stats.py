"""Self-telemetry counters, readable with ``exporter.stats()`` and as OTel metrics.

One :class:`Stats` is shared by the pipeline and the writer of an exporter (or
the sidecar). Counters only grow; ``dropped`` is broken down by reason so a
user can tell a full queue from a rejected span from an outage. Gauges (queue
size) come from a source the writer installs, so a snapshot is always current.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Callable, Dict, List, Mapping, Optional

#: listener for each finished HTTP request: ``(seconds, outcome)``; outcome is
#: ``"ok"``, ``"http_<status>"`` or ``"error"`` (no answer: refused, timeout, reset)
RequestListener = Callable[[float, str], None]


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
        "items_shrunk",
        "spool_files_corrupt",
    )

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._c: Dict[str, float] = {k: 0 for k in self.COUNTERS}
        self._c["request_seconds_total"] = 0.0
        self._c["request_seconds_max"] = 0.0
        self._dropped: Dict[str, int] = {}
        self._listeners: List[RequestListener] = []
        self._gauges: Optional[Callable[[], Mapping[str, float]]] = None
        _after_fork_reset.add(self)

    def add(self, name: str, n: float = 1) -> None:
        with self._lock:
            self._c[name] = self._c.get(name, 0) + n

    def drop(self, reason: str, n: int = 1) -> None:
        if n:
            with self._lock:
                self._dropped[reason] = self._dropped.get(reason, 0) + n

    def record_request(self, seconds: float, outcome: str) -> None:
        """Count one HTTP request and its latency; tell the metric listeners."""
        with self._lock:
            c = self._c
            c["requests"] += 1
            c["request_seconds_total"] += seconds
            if seconds > c["request_seconds_max"]:
                c["request_seconds_max"] = seconds
            if outcome != "ok":
                c["requests_failed"] += 1
            listeners = list(self._listeners)
        for fn in listeners:
            try:
                fn(seconds, outcome)
            except Exception:  # noqa: BLE001 - telemetry must never break delivery
                pass

    def add_request_listener(self, fn: RequestListener) -> None:
        with self._lock:
            self._listeners.append(fn)

    def set_gauge_source(self, fn: Optional[Callable[[], Mapping[str, float]]]) -> None:
        """``fn()`` returns current levels (e.g. ``queue_items``), merged into snapshots."""
        self._gauges = fn

    def get(self, name: str) -> float:
        with self._lock:
            return self._c.get(name, 0)

    def dropped(self) -> Dict[str, int]:
        with self._lock:
            return dict(self._dropped)

    def dropped_total(self) -> int:
        with self._lock:
            return sum(self._dropped.values())

    def snapshot(self) -> Dict[str, object]:
        with self._lock:
            out: Dict[str, object] = dict(self._c)
            out["dropped"] = dict(self._dropped)
        gauges = self._gauges
        if gauges is not None:
            try:
                out.update(gauges())
            except Exception:  # noqa: BLE001 - a snapshot never raises
                pass
        return out

    def reset(self) -> None:
        with self._lock:
            for k in self._c:
                self._c[k] = 0
            self._dropped.clear()

    def _after_fork(self) -> None:
        # A lock held by another thread at fork time would stay locked forever in
        # the child; and the child's counters describe the child's work only.
        self._lock = threading.Lock()
        self.reset()


_after_fork_reset: "weakref.WeakSet[Stats]" = weakref.WeakSet()


def _reset_all_after_fork() -> None:
    for stats in list(_after_fork_reset):
        stats._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_all_after_fork)
