"""Self-telemetry through the OTel metrics API.

Every writer's :class:`Stats` is published as observable counters (read from
the counters at collection time, so the hot path pays nothing) plus a request
duration histogram, on the meter ``opentelemetry.exporter.opik``. With no
MeterProvider set this costs nothing (the API's no-op/proxy meter); when one is
set later, the API's proxy meter binds the instruments to it.

Instruments are created once per MeterProvider and shared by all writers
(the SDK ignores the callbacks of a second registration under the same name);
each writer's series carry ``otel.component.type``/``otel.component.name``
like the SDK's own exporter metrics. Writers are held weakly.
"""

from __future__ import annotations

import itertools
import logging
import threading
import weakref
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple

from opentelemetry.metrics import CallbackOptions, Observation

from opentelemetry import metrics

from ._stats import Stats
from .version import __version__

_logger = logging.getLogger("opentelemetry.exporter.opik")

METER_NAME = "opentelemetry.exporter.opik"
COMPONENT_TYPE = "opik_exporter"

GaugeFn = Callable[[], Mapping[str, float]]

#: what each :class:`Stats` counter means: the OTel instruments here and the sidecar's Prometheus
#: ``/metrics`` (``sidecar/_prometheus.py``) describe them with the same words
COUNTER_HELP: Dict[str, str] = {
    "spans_received": "OTel spans handed to the exporter (a request retried after 429 counts again)",
    "spans_rejected": "spans that could not be mapped",
    "traces_exported": "Opik traces delivered",
    "spans_exported": "Opik spans delivered",
    "scores_exported": "Opik feedback scores delivered",
    "dropped": "items lost, by reason (queue_full, retry_deadline, shutdown, rejected, too_large, unauthorized, ...)",
    "items_spooled": "items written to the disk spool",
    "items_unspooled": "spooled items re-sent and resolved",
    "items_shrunk": "items sent truncated because they were too large for Opik",
    "requests": "HTTP requests to Opik",
    "requests_failed": "HTTP requests to Opik that failed or were retried",
    "retries": "requests repeated after a transient failure",
    "request_seconds_total": "seconds spent in HTTP requests to Opik",
    "request_seconds_max": "longest HTTP request to Opik, in seconds",
}

_lock = threading.Lock()
_by_provider: Dict[Any, Tuple[Optional["weakref.ref[Any]"], "_Instruments"]] = {}
_ids = itertools.count()


class _Member:
    __slots__ = ("stats", "attrs", "gauges")

    def __init__(self, stats: Stats, attrs: Dict[str, str], gauges: Optional[GaugeFn]) -> None:
        self.stats = weakref.ref(stats)
        self.attrs = attrs
        self.gauges = gauges


class _Instruments:
    def __init__(self, meter: metrics.Meter) -> None:
        self.members: List[_Member] = []
        self._lock = threading.Lock()
        c = meter.create_observable_counter
        c("opik.exporter.spans.received", [self._cb(self._simple("spans_received"))], "{span}",
          COUNTER_HELP["spans_received"])
        c("opik.exporter.items.exported", [self._cb(self._exported)], "{item}",
          "Opik traces, spans and feedback scores delivered (attribute opik.item.kind)")
        c("opik.exporter.items.dropped", [self._cb(self._dropped)], "{item}", COUNTER_HELP["dropped"])
        c("opik.exporter.items.spooled", [self._cb(self._simple("items_spooled"))], "{item}",
          COUNTER_HELP["items_spooled"])
        c("opik.exporter.items.unspooled", [self._cb(self._simple("items_unspooled"))], "{item}",
          COUNTER_HELP["items_unspooled"])
        c("opik.exporter.items.shrunk", [self._cb(self._simple("items_shrunk"))], "{item}",
          COUNTER_HELP["items_shrunk"])
        c("opik.exporter.requests", [self._cb(self._requests)], "{request}",
          "HTTP requests to Opik (attribute outcome: ok or failed)")
        c("opik.exporter.retries", [self._cb(self._simple("retries"))], "{request}", COUNTER_HELP["retries"])
        meter.create_observable_up_down_counter(
            "opik.exporter.queue.size", [self._cb(self._queue)], "{item}",
            "items held for delivery (queued and in flight)",
        )
        self.duration = meter.create_histogram(
            "opik.exporter.request.duration", "s", "duration of each HTTP request to Opik"
        )

    def add(self, member: _Member) -> None:
        with self._lock:
            self.members = [m for m in self.members if m.stats() is not None] + [member]

    def _live(self) -> List[Tuple[Stats, _Member]]:
        with self._lock:
            members = list(self.members)
        out = []
        for m in members:
            s = m.stats()
            if s is not None:
                out.append((s, m))
        return out

    def _cb(self, fn: Callable[[], Iterable[Observation]]) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def callback(options: CallbackOptions) -> Iterable[Observation]:
            try:
                return list(fn())
            except Exception:  # noqa: BLE001 - a metrics callback must never raise
                _logger.debug("Opik exporter metrics callback failed", exc_info=True)
                return []

        return callback

    def _simple(self, counter: str) -> Callable[[], Iterable[Observation]]:
        def observe() -> Iterable[Observation]:
            for s, m in self._live():
                yield Observation(s.get(counter), m.attrs)

        return observe

    def _exported(self) -> Iterable[Observation]:
        for s, m in self._live():
            for kind, counter in (("trace", "traces_exported"), ("span", "spans_exported"),
                                  ("span_score", "scores_exported")):
                yield Observation(s.get(counter), {**m.attrs, "opik.item.kind": kind})

    def _dropped(self) -> Iterable[Observation]:
        for s, m in self._live():
            for reason, n in s.dropped().items():
                yield Observation(n, {**m.attrs, "reason": reason})

    def _requests(self) -> Iterable[Observation]:
        for s, m in self._live():
            total, failed = s.get("requests"), s.get("requests_failed")
            yield Observation(total - failed, {**m.attrs, "outcome": "ok"})
            yield Observation(failed, {**m.attrs, "outcome": "failed"})

    def _queue(self) -> Iterable[Observation]:
        for _, m in self._live():
            if m.gauges is not None:
                yield Observation(m.gauges().get("queue_items", 0), m.attrs)


def register(stats: Stats, gauges: Optional[GaugeFn] = None, meter_provider: Optional[Any] = None) -> str:
    """Publish ``stats`` as OTel metrics (global MeterProvider unless one is given); returns the component name."""
    name = f"{COMPONENT_TYPE}/{next(_ids)}"
    attrs = {"otel.component.type": COMPONENT_TYPE, "otel.component.name": name}
    key = "global" if meter_provider is None else id(meter_provider)
    try:
        with _lock:
            ref, inst = _by_provider.get(key, (None, None))
            if inst is None or (ref is not None and ref() is not meter_provider):
                provider = meter_provider if meter_provider is not None else metrics.get_meter_provider()
                inst = _Instruments(provider.get_meter(METER_NAME, __version__))
                _by_provider[key] = (None if meter_provider is None else weakref.ref(meter_provider), inst)
        inst.add(_Member(stats, attrs, gauges))
        duration = inst.duration
        stats.add_request_listener(
            lambda seconds, outcome: duration.record(seconds, {**attrs, "outcome": outcome})
        )
    except Exception:  # noqa: BLE001 - self-telemetry never stops the exporter
        _logger.debug("Opik exporter metrics unavailable", exc_info=True)
    return name
