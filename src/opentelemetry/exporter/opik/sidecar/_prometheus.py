"""Prometheus text exposition (version 0.0.4) of the sidecar's counters, described as in ``_metrics``."""

from __future__ import annotations

from typing import List, Mapping, Tuple

from .._metrics import COUNTER_HELP
from ._counters import ReceiverCounters

Samples = List[Tuple[str, float]]


def label(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class _Text:
    def __init__(self) -> None:
        self.lines: List[str] = []

    def metric(self, name: str, kind: str, help_: str, samples: Samples) -> None:
        self.lines.append(f"# HELP opik_otel_{name} {help_}")
        self.lines.append(f"# TYPE opik_otel_{name} {kind}")
        for labels, value in samples:
            v = repr(float(value)) if isinstance(value, float) and not float(value).is_integer() else str(int(value))
            self.lines.append(f"opik_otel_{name}{labels} {v}")


def _stats(out: _Text, snap: Mapping[str, object]) -> None:
    for key in sorted(snap):
        value = snap[key]
        if key == "dropped" or key.startswith("queue_") or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if key.endswith("_max"):
            out.metric(key, "gauge", COUNTER_HELP.get(key, f"self-telemetry gauge {key}"), [("", float(value))])
        else:
            name = key if key.endswith("_total") else key + "_total"
            out.metric(name, "counter", COUNTER_HELP.get(key, f"self-telemetry counter {key}"), [("", float(value))])
    dropped = snap.get("dropped") or {}
    assert isinstance(dropped, dict)
    out.metric("dropped_total", "counter", COUNTER_HELP["dropped"], [(f'{{reason="{label(r)}"}}', n) for r, n in sorted(dropped.items())])


def render(snap: Mapping[str, object], counters: ReceiverCounters, gauges: Mapping[str, float]) -> str:
    """``snap``: a :meth:`Stats.snapshot` (summed over the sinks); ``gauges``: ``queue_items``,
    ``queue_bytes`` (summed over the delivery sinks) and ``sinks``."""
    out = _Text()
    _stats(out, snap)
    responses, accepted, refused, seconds, timed = counters.snapshot()
    out.metric(
        "receiver_requests_total",
        "counter",
        "OTLP requests answered, by protocol and status",
        [(f'{{protocol="{p}",status="{label(s)}"}}', n) for (p, s), n in responses],
    )
    out.metric("receiver_spans_accepted_total", "counter", "spans acknowledged to senders (queued for Opik)", [("", accepted)])
    out.metric("receiver_spans_refused_total", "counter", "spans answered with retry-later, too-large or unavailable (kept by the sender)", [("", refused)])
    out.lines.append("# HELP opik_otel_receiver_request_seconds time to answer OTLP requests")
    out.lines.append("# TYPE opik_otel_receiver_request_seconds summary")
    out.lines.append(f"opik_otel_receiver_request_seconds_sum {seconds!r}")
    out.lines.append(f"opik_otel_receiver_request_seconds_count {timed}")
    out.metric("queue_items", "gauge", "items waiting for delivery to Opik", [("", gauges.get("queue_items", 0))])
    out.metric("queue_bytes", "gauge", "encoded bytes waiting for delivery to Opik (bounded by max_queue_bytes per sink)", [("", gauges.get("queue_bytes", 0))])
    out.metric("delivery_sinks", "gauge", "delivery sinks open (one per sender's credentials with --pass-credentials)", [("", gauges.get("sinks", 1))])
    return "\n".join(out.lines) + "\n"


__all__ = ["label", "render"]
