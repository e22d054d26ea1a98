"""Admission: a decoded request is mapped, then its Opik items are queued all or nothing, by real size.

Each target (delivery sink) has its own pipeline and log join, so what a stage holds back (the
``genai`` span filter) and the content a log record brings only ever go into the sink of the
credentials they came with.

The worker thread maps the request first and admits it by what it really costs: the number of Opik
items and their encoded bytes, checked against the sink's bounds (queued plus in flight) and queued in
one step under one lock, so the queue never holds more than ``max_queue_items`` / ``max_queue_bytes``
(the sender thread only ever removes). Nothing is estimated, so no earlier request can make a later
one look larger than it is:

- it can never fit (more items or bytes than the whole queue holds): ``TOO_LARGE`` (413), never
  retried;
- it does not fit now: ``BUSY`` (429 / ``UNAVAILABLE`` with a retry delay), the sender keeps it;
- it fits: queued (with a spool: on disk) and ``OK``.

A refused request was mapped for nothing; the sender retries it and Opik upserts by id, so nothing is
ever stored twice.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import List, Optional

from .._config import OpikSettings
from .._errors import trail
from .._mapping._time import iso_ns
from .._otlp import DecodedBatch
from ._counters import ReceiverCounters
from ._outcome import BUSY, OK, TOO_LARGE, UNAVAILABLE, Outcome
from ._sinks import Target

_logger = logging.getLogger("opentelemetry.exporter.opik.sidecar")

FULL = "the sidecar's queue to Opik is full (Opik is slower than the span rate or unreachable)"


class Admission:
    """Thread-safe: the worker admits requests while the log join's thread delivers joined spans."""

    def __init__(self, settings: OpikSettings, counters: ReceiverCounters, retry_after: float) -> None:
        self.settings = settings
        self.counters = counters
        self.retry_after = retry_after
        self.draining = False
        #: the bounds check and the submit are one step (all or nothing, never past the bounds)
        self._submit_lock = threading.Lock()
        #: one pipeline maps at a time (the worker, the join's thread): they hold the GIL anyway
        self._map_lock = threading.Lock()

    def export(self, batch: DecodedBatch, project: Optional[str], target: Target) -> Outcome:
        """Map ``batch`` and queue all its items in ``target``'s sink, or none; ``project``: the ``projectName`` header."""
        n = batch.accepted
        s = self.settings
        sink = target.sink
        if n > s.max_queue_items:  # each span is at least one item
            self.counters.refused(n)
            return self.too_large(n, "spans")
        if n and not sink.has_capacity(n, 0):  # cheap before mapping: not even the spans fit now
            self.counters.refused(n)
            return self.busy()
        records = batch.materialize()
        try:
            with self._map_lock:
                processed = target.pipeline.process(target.join.spans(records, target), project)
        except Exception as exc:  # noqa: BLE001 - the mapper isolates spans; this is a bug, never a 5xx
            _logger.error("unexpected error while mapping %d spans; they are dropped: %s", len(records), trail(exc))
            target.pipeline.stats.add("spans_rejected", len(records))
            return Outcome(
                OK,
                f"{len(records)} spans could not be mapped ({type(exc).__name__}: an internal error, see the sidecar log)",
                batch.rejected + len(records),
            )
        items = processed.items
        n_bytes = sum(i.size for i in items)
        if len(items) > s.max_queue_items or n_bytes > s.max_queue_bytes:
            self.counters.refused(len(records))
            return self.too_large(len(items), f"Opik items ({n_bytes} bytes)")
        with self._submit_lock:
            if self.draining:
                self.counters.refused(len(records))
                return self.stopping()
            if items and not sink.has_capacity(len(items), n_bytes):
                self.counters.refused(len(records))
                return self.busy()
            accepted = sink.submit(items) if items else 0
        if accepted != len(items):  # pragma: no cover - only the sender removes items while we hold the lock
            _logger.warning("the writer took %d of %d items", accepted, len(items))
        self.counters.accepted(len(records) - len(processed.rejected))
        return Outcome(OK, _partial_message(batch, processed.rejected), batch.rejected + len(processed.rejected))

    def deliver_joined(self, target: Target, records: List, resend: bool) -> None:
        """Spans the log join releases (with their content, or after the window): mapped and queued.

        They were acknowledged when they came, so they are queued even past the bounds (a few spans
        the join held: bounded by the join's own limits).
        """
        updated = iso_ns(time.time_ns()) if resend else None
        with self._map_lock:
            items = target.pipeline.process(records, updated_at=updated).items
        if items:
            with self._submit_lock:
                target.sink.submit(items, force=True)

    # -- the refusals ---------------------------------------------------------------------
    def too_large(self, n: int, what: str) -> Outcome:
        s = self.settings
        return Outcome(
            TOO_LARGE,
            f"the request maps to {n} {what}, more than the sidecar's whole queue holds "
            f"({s.max_queue_items} items / {s.max_queue_bytes} bytes): send smaller batches",
        )

    def busy(self, why: str = FULL) -> Outcome:
        return Outcome(BUSY, f"{why}; retry later", retry_after=self.retry_after)

    def stopping(self) -> Outcome:
        return Outcome(UNAVAILABLE, "the sidecar is shutting down; retry against another replica", retry_after=self.retry_after)


def _partial_message(batch: DecodedBatch, rejected: list) -> str:
    parts: List[str] = []
    msg = batch.message()
    if msg:
        parts.append(msg)
    if rejected:
        shown = "; ".join(f"{label}: {reason}" for label, reason in rejected[:5])
        parts.append(f"{len(rejected)} spans could not be mapped to Opik: {shown}")
    return ". ".join(parts)[:4000]


__all__ = ["Admission"]
