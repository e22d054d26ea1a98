"""The transport-independent part of the sidecar: limits, backpressure, routing, metrics.

Both receivers (OTLP/HTTP and OTLP/gRPC) hand a decoded request to
:meth:`Receiver.export`, which queues it *all or nothing*: when the writer's
bounds would be exceeded nothing is taken and the caller answers "retry later"
(HTTP 429 / gRPC RESOURCE_EXHAUSTED with a delay), so the sender keeps the
data instead of the sidecar dropping part of it. Opik upserts by id, so a
retried request never duplicates anything.

With ``map_async`` (what ``opik-otel serve`` runs) a request is answered once it
is decoded and its room is reserved; a mapping thread then maps it and queues
the items against that reservation. Senders wait for decoding only (a few ms
per hundred spans) rather than for the whole mapping, and when the mapping
falls behind, requests wait for room (bounded) and then get "retry later".
"""

from __future__ import annotations

import collections
import logging
import math
import threading
import time
import zlib
from typing import Any, Dict, List, Optional, Tuple, Union

from .._config import OpikSettings
from .._delivery.sink import Sink
from .._errors import trail
from .._join import LogJoin
from .._mapping._time import iso_ns
from .._otlp import DecodedBatch, DecodeError, DecodeLimits, TooManySpans, decode_json, decode_protobuf
from .._otlp_logs import decode_logs_json, decode_logs_protobuf
from .._pipeline import Pipeline
from .._stats import Stats
from .._transport import Transport, TransportError

_logger = logging.getLogger("opentelemetry.exporter.opik.sidecar")

# Outcome codes; each receiver translates them to its own status codes.
OK = "ok"
INVALID = "invalid"  # HTTP 400, gRPC INVALID_ARGUMENT
TOO_LARGE = "too_large"  # HTTP 413, gRPC INVALID_ARGUMENT (never retried)
BUSY = "busy"  # HTTP 429 + Retry-After, gRPC RESOURCE_EXHAUSTED + RetryInfo
UNAVAILABLE = "unavailable"  # HTTP 503, gRPC UNAVAILABLE (shutting down)


class Outcome:
    __slots__ = ("code", "message", "rejected", "retry_after")

    def __init__(self, code: str, message: str = "", rejected: int = 0, retry_after: float = 0.0) -> None:
        self.code = code
        #: for errors the reason; for OK a partial-success warning (may be empty)
        self.message = message
        #: spans that could not be decoded or mapped (partial success)
        self.rejected = rejected
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return f"Outcome({self.code}, rejected={self.rejected}, {self.message!r})"


class Limits:
    """What one request may cost; every limit answers with a clear status and message."""

    __slots__ = ("max_body_bytes", "decode")

    def __init__(self, max_body_bytes: int = 20 * 1024 * 1024, decode: Optional[DecodeLimits] = None) -> None:
        #: bytes of a request body, on the wire and again after decompression (HTTP 413)
        self.max_body_bytes = max_body_bytes
        self.decode = decode or DecodeLimits()


class BodyTooLarge(Exception):
    pass


def decompress(body: bytes, encoding: str, limit: int) -> bytes:
    """Undo ``Content-Encoding`` (gzip or deflate) with the output capped at ``limit``.

    Decompresses in steps of at most ``limit`` bytes, so a gzip bomb costs
    ``limit`` bytes of memory and is refused with :class:`BodyTooLarge`; a
    corrupt stream raises :class:`DecodeError`.
    """
    if encoding in ("", "identity"):
        if len(body) > limit:
            raise BodyTooLarge()
        return body
    if encoding in ("gzip", "x-gzip"):
        wbits = 16 + zlib.MAX_WBITS
    elif encoding == "deflate":
        # RFC 9110 deflate is zlib-wrapped; some clients send raw deflate.
        wbits = zlib.MAX_WBITS if len(body) >= 2 and body[0] & 0x0F == 8 and (body[0] << 8 | body[1]) % 31 == 0 else -zlib.MAX_WBITS
    else:  # pragma: no cover - the receivers check the encoding first
        raise DecodeError(f"unsupported Content-Encoding {encoding!r}")
    parts: List[bytes] = []
    size = 0
    data = body
    try:
        while data:
            d = zlib.decompressobj(wbits)
            chunk = data
            while chunk:
                out = d.decompress(chunk, limit - size + 1)
                size += len(out)
                if size > limit:
                    raise BodyTooLarge()
                parts.append(out)
                chunk = d.unconsumed_tail
            out = d.flush()
            size += len(out)
            if size > limit:
                raise BodyTooLarge()
            parts.append(out)
            if not d.eof:
                raise DecodeError(f"the {encoding} body is truncated")
            data = d.unused_data if wbits > 16 else b""  # gzip may hold several members
    except zlib.error as exc:
        raise DecodeError(f"the body is not valid {encoding} data ({exc})") from None
    return b"".join(parts)


class _Job:
    """An acknowledged request waiting for the mapping thread, with the room reserved for it."""

    __slots__ = ("batch", "spans", "project", "items", "bytes")

    def __init__(self, batch: DecodedBatch, spans: int, project: Optional[str], items: int, n_bytes: int) -> None:
        self.batch = batch
        #: spans acknowledged (counted in the pending bound)
        self.spans = spans
        self.project = project
        self.items = items
        self.bytes = n_bytes


class Receiver:
    """Decoded OTLP requests -> pipeline -> writer, with backpressure and routing."""

    def __init__(
        self,
        settings: OpikSettings,
        pipeline: Pipeline,
        writer: Sink,
        stats: Stats,
        limits: Optional[Limits] = None,
        retry_after: float = 1.0,
        probe_transport: Optional[Transport] = None,
        ready_cache_seconds: float = 5.0,
        map_async: bool = False,
        max_pending_spans: int = 8192,
        max_wait: float = 5.0,
    ) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.writer = writer
        self.stats = stats
        self.limits = limits or Limits()
        self.retry_after = retry_after
        self.draining = False
        self._submit_lock = threading.Lock()
        self._counters_lock = threading.Lock()
        #: (protocol, status) -> requests answered
        self.responses: Dict[Tuple[str, str], int] = {}
        self.spans_accepted = 0
        self.spans_refused = 0  # answered 429/413/503: the sender keeps them
        self.request_seconds = 0.0
        self.requests_timed = 0
        self._probe = probe_transport
        self._ready_cache_seconds = ready_cache_seconds
        self._ready: Optional[Tuple[float, bool, str]] = None
        self._ready_lock = threading.Lock()
        # -- answered, not yet mapped (map_async) -------------------------------------------
        #: spans acknowledged and waiting for the mapping thread (a request is admitted
        #: when they are fewer than this, or none)
        self.max_pending_spans = max_pending_spans
        #: seconds a request waits for the mapping to make room before "retry later"
        self.max_wait = max_wait
        self._cond = threading.Condition(self._submit_lock)
        self._jobs: "collections.deque[_Job]" = collections.deque()
        self._pending_spans = 0
        #: writer room promised to acknowledged requests, by estimate
        self._reserved_items = 0
        self._reserved_bytes = 0
        # learned Opik items and bytes per span (a trace row per root, a few KB each)
        self._items_per_span = 2.0
        self._bytes_per_span = 4096.0
        self._mapping_stopped = False
        self._limits_logged_at = -1e9
        self._mapper: Optional[threading.Thread] = None
        #: GenAI content sent as OTLP logs joins its spans here (sent spans are kept: logs may come any time)
        self.join = LogJoin(getattr(settings, "log_join_window", 2.0), stats, keep_always=True)
        self._logs_seen = False
        self._join_lock = threading.Lock()
        self.log_records_accepted = 0
        self.metrics_requests = 0
        self._metrics_logged = False
        if map_async:
            self._mapper = threading.Thread(target=self._map_loop, name="opik-otel-map", daemon=True)
            self._mapper.start()

    # -- decoding -------------------------------------------------------------------
    def decode(self, body: bytes, is_json: bool, encoding: str = "") -> Union[DecodedBatch, Outcome]:
        """Decompress and decode one request body, or the error outcome."""
        limit = self.limits.max_body_bytes
        try:
            data = decompress(body, encoding, limit) if encoding else body
            if len(data) > limit:
                raise BodyTooLarge()
            if is_json:
                return decode_json(data, self.limits.decode)
            # answering first: parse and validate now, convert on the mapping thread
            return decode_protobuf(data, self.limits.decode, lazy=self._mapper is not None)
        except BodyTooLarge:
            return Outcome(TOO_LARGE, f"the request body is larger than {limit} bytes after decompression; send smaller batches")
        except TooManySpans as exc:
            return Outcome(TOO_LARGE, str(exc))
        except DecodeError as exc:
            kind = "OTLP/JSON" if is_json else "OTLP protobuf"
            return Outcome(INVALID, f"the body is not a valid {kind} ExportTraceServiceRequest: {exc}")
        except Exception as exc:  # noqa: BLE001 - a decoder bug must not become a 5xx or stop the sidecar
            _logger.error("unexpected error while decoding an OTLP request: %s", trail(exc))
            return Outcome(INVALID, f"the body could not be decoded ({type(exc).__name__}); see the sidecar log")

    def start_draining(self) -> None:
        """From now on requests are answered 503: nothing is queued once the writer closes."""
        with self._cond:
            self.draining = True
            self._cond.notify_all()  # requests waiting for mapping room are answered now

    # -- the one way in ------------------------------------------------------------------
    def export(self, batch: DecodedBatch, project: Optional[str] = None) -> Outcome:
        """Queue ``batch`` all or nothing; ``project`` is the ``projectName`` header."""
        if self.draining:
            return self._unavailable()
        n = batch.accepted
        writer = self.writer
        if n and writer.drops_refused():
            # Opik refused our credentials: the writer would drop what we accept, so the sender keeps it.
            self._refused(n)
            return Outcome(
                UNAVAILABLE,
                "Opik refuses the sidecar's credentials (fix OPIK_API_KEY / OPIK_WORKSPACE of the sidecar); retry later",
                retry_after=self.retry_after,
            )
        max_items = getattr(self.settings, "max_queue_items", None)
        if max_items is not None and n > max_items:
            self._refused(n)
            return self._too_large(n, "spans")
        project = project.strip() if project else None
        if self._mapper is not None:
            return self._reserve(batch, project or None)
        if n and not writer.has_capacity(n, 0):  # cheap check before mapping
            self._refused(n)
            return self._busy()
        return self._map_and_queue(batch, project or None)

    def _map_and_queue(self, batch: DecodedBatch, project: Optional[str]) -> Outcome:
        """Map now and queue the items if they all fit: the answer covers mapping errors too."""
        records = batch.materialize()
        s = self.settings
        writer = self.writer
        try:
            with self._join_lock:  # the join's own deliveries map on other threads
                processed = self.pipeline.process(self.join.spans(records, self), project)
        except Exception as exc:  # noqa: BLE001 - the mapper isolates spans; this is a bug, never a 5xx
            _logger.error("unexpected error while mapping %d spans; they are dropped: %s", len(records), trail(exc))
            self.stats.add("spans_rejected", len(records))
            return Outcome(
                OK,
                f"{len(records)} spans could not be mapped ({type(exc).__name__}: an internal error, see the sidecar log)",
                batch.rejected + len(records),
            )
        items = processed.items
        n_bytes = sum(i.size for i in items)
        if len(items) > getattr(s, "max_queue_items", len(items)) or n_bytes > getattr(s, "max_queue_bytes", n_bytes):
            self._refused(len(records))
            return self._too_large(len(items), f"Opik items ({n_bytes} bytes)")
        with self._submit_lock:  # the check and the submit are one step: all or nothing
            if self.draining:
                return self._unavailable()
            if items and not writer.has_capacity(len(items), n_bytes):
                self._refused(len(records))
                return self._busy()
            accepted = writer.submit(items) if items else 0
        if accepted != len(items):  # pragma: no cover - only the sender removes items while we hold the lock
            _logger.warning("the writer took %d of %d items", accepted, len(items))
        rejected = batch.rejected + len(processed.rejected)
        parts: List[str] = []
        msg = batch.message()
        if msg:
            parts.append(msg)
        if processed.rejected:
            shown = "; ".join(f"{label}: {reason}" for label, reason in processed.rejected[:5])
            parts.append(f"{len(processed.rejected)} spans could not be mapped to Opik: {shown}")
        with self._counters_lock:
            self.spans_accepted += len(records) - len(processed.rejected)
        return Outcome(OK, ". ".join(parts)[:4000], rejected)

    # -- answer first, map after (map_async) ---------------------------------------------
    def _estimate(self, n_spans: int) -> Tuple[int, int]:
        """Writer room for ``n_spans`` spans, from what earlier spans mapped to (+25%)."""
        return math.ceil(n_spans * self._items_per_span * 1.25), math.ceil(n_spans * self._bytes_per_span * 1.25)

    def _reserve(self, batch: DecodedBatch, project: Optional[str]) -> Outcome:
        """Admit ``batch`` for mapping against a reservation of writer room, or refuse it.

        Blocks (at most ``max_wait`` seconds) while the mapping thread is behind; the
        writer being full is answered at once: waiting would not empty it sooner.
        """
        n = batch.accepted
        if n:
            s = self.settings
            est_items, est_bytes = self._estimate(n)
            if est_items > getattr(s, "max_queue_items", est_items) or est_bytes > getattr(s, "max_queue_bytes", est_bytes):
                self._refused(n)
                return self._too_large(est_items, f"Opik items (about {est_bytes} bytes)")
            deadline = time.monotonic() + self.max_wait
            with self._cond:
                while True:
                    if self.draining:
                        return self._unavailable()
                    if not self.writer.has_capacity(self._reserved_items + est_items, self._reserved_bytes + est_bytes):
                        self._refused(n)
                        return self._busy()
                    if not self._pending_spans or self._pending_spans + n <= self.max_pending_spans:
                        break
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        self._refused(n)
                        return self._busy("the sidecar's mapping is behind the span rate")
                    self._cond.wait(remaining)
                self._pending_spans += n
                self._reserved_items += est_items
                self._reserved_bytes += est_bytes
                self._jobs.append(_Job(batch, n, project, est_items, est_bytes))
                self._cond.notify_all()
            with self._counters_lock:
                self.spans_accepted += n
        return Outcome(OK, batch.message()[:4000], batch.rejected)

    def _map_loop(self) -> None:
        """The mapping thread: map each admitted request, queue its items, release its reservation."""
        cond = self._cond
        while True:
            with cond:
                while not self._jobs and not self._mapping_stopped:
                    cond.wait()
                if not self._jobs:
                    return
                job = self._jobs.popleft()
            items: List[Any] = []
            n = job.spans
            try:
                records = job.batch.materialize()
                self._warn_limits(job.batch)
                joined = self.join.spans(records, self)  # LLM spans whose content is in OTLP logs may wait
                with self._join_lock:
                    items = self.pipeline.process(joined, job.project).items  # logs and counts rejects
            except Exception as exc:  # noqa: BLE001 - a mapping bug drops this request, never the thread
                _logger.error("unexpected error while mapping %d spans; they are dropped: %s", n, trail(exc))
                self.stats.add("spans_rejected", n)
            n_bytes = sum(i.size for i in items)
            with cond:
                if n:
                    # learn slowly: one odd request must not swing the estimate
                    self._items_per_span += 0.2 * (len(items) / n - self._items_per_span)
                    self._bytes_per_span += 0.2 * (n_bytes / n - self._bytes_per_span)
                self._pending_spans -= job.spans
                self._reserved_items -= job.items
                self._reserved_bytes -= job.bytes
                if items:
                    # the reservation counted them in already: queue them even past the bounds
                    self.writer.submit(items, force=True)
                cond.notify_all()

    def _warn_limits(self, batch: DecodedBatch) -> None:
        """Limits met while converting after the answer: a log line (at most one a minute) instead."""
        if not (batch.attributes_cut or batch.depth_cut):
            return
        now = time.monotonic()
        if now - self._limits_logged_at >= 60.0:
            self._limits_logged_at = now
            _logger.warning("a request was accepted with limits applied: %s (logged at most once a minute)", "; ".join(batch.warnings()))

    # -- OTLP logs and metrics ------------------------------------------------------------
    def export_logs(self, records: List[Any]) -> Outcome:
        """Join decoded log records to their spans (``_join.py``); nothing of a log record is sent on its own."""
        if self.draining:
            return self._unavailable()
        if self.writer.drops_refused():
            return Outcome(
                UNAVAILABLE,
                "Opik refuses the sidecar's credentials (fix OPIK_API_KEY / OPIK_WORKSPACE of the sidecar); retry later",
                retry_after=self.retry_after,
            )
        if records and not self.writer.has_capacity(1, 0):
            return self._busy()  # a joined span would be queued: the sender keeps its logs and retries
        if not self._logs_seen:
            with self._counters_lock:
                if not self._logs_seen:
                    self._logs_seen = True
                    self.join.attach_logs()  # from now on LLM spans without content wait for their logs
        try:
            self.join.logs(records)
        except Exception as exc:  # noqa: BLE001 - a join bug never becomes a 5xx
            _logger.error("unexpected error while joining %d log records: %s", len(records), trail(exc))
            return Outcome(OK, f"{len(records)} log records could not be joined (see the sidecar log)", len(records))
        with self._counters_lock:
            self.log_records_accepted += len(records)
        return Outcome(OK)

    def other_signal(self, logs: bool, body: bytes, is_json: bool, encoding: str = "") -> Outcome:
        """``/v1/logs`` (joined to spans) or ``/v1/metrics`` (discarded): same body limits and decompression."""
        limit = self.limits.max_body_bytes
        what = "ExportLogsServiceRequest" if logs else "ExportMetricsServiceRequest"
        try:
            data = decompress(body, encoding, limit) if encoding else body
            if len(data) > limit:
                raise BodyTooLarge()
            if not logs:
                if self.draining:
                    return self._unavailable()
                self.accept_metrics()
                return Outcome(OK)
            decoded = decode_logs_json(data, self.limits.decode) if is_json else decode_logs_protobuf(data, self.limits.decode)
        except BodyTooLarge:
            return Outcome(TOO_LARGE, f"the request body is larger than {limit} bytes after decompression; send smaller batches")
        except DecodeError as exc:
            kind = "OTLP/JSON" if is_json else "OTLP protobuf"
            return Outcome(INVALID, f"the body is not a valid {kind} {what}: {exc}")
        except Exception as exc:  # noqa: BLE001 - a decoder bug must not become a 5xx
            _logger.error("unexpected error while decoding an OTLP logs request: %s", trail(exc))
            return Outcome(INVALID, f"the body could not be decoded ({type(exc).__name__}); see the sidecar log")
        outcome = self.export_logs(decoded.records)
        if outcome.code == OK and decoded.rejected:
            return Outcome(OK, decoded.message()[:4000], decoded.rejected + outcome.rejected)
        return outcome

    def accept_metrics(self) -> None:
        """OTLP metrics are answered with success and discarded (counted; logged once)."""
        with self._counters_lock:
            self.metrics_requests += 1
            first = not self._metrics_logged
            self._metrics_logged = True
        self.stats.add("metrics_requests_discarded")
        if first:
            _logger.info("OTLP metrics are accepted and discarded: Opik has no metrics (logged once)")

    def deliver_joined(self, records: List[Any], resend: bool) -> None:
        """Spans joined with their log records (the join calls it): mapped and queued like any span."""
        updated = iso_ns(time.time_ns()) if resend else None
        with self._join_lock:
            items = self.pipeline.process(records, updated_at=updated).items
        if items:
            self.writer.submit(items, force=True)

    def finish_join(self) -> None:
        """At shutdown: spans still waiting for their logs are sent with what arrived."""
        self.join.release_owner(None)

    def pending_spans(self) -> int:
        with self._cond:
            return self._pending_spans

    def finish_mapping(self, timeout: Optional[float] = None) -> bool:
        """Map what was acknowledged, then stop the mapping thread (at shutdown); False on timeout."""
        mapper = self._mapper
        if mapper is None:
            return True
        with self._cond:
            self._mapping_stopped = True
            self._cond.notify_all()
        mapper.join(timeout)
        return not mapper.is_alive()

    def _too_large(self, n: int, what: str) -> Outcome:
        s = self.settings
        return Outcome(
            TOO_LARGE,
            f"the request maps to {n} {what}, more than the sidecar's queue holds "
            f"({s.max_queue_items} items / {s.max_queue_bytes} bytes): send smaller batches",
        )

    def _busy(self, why: str = "the sidecar's queue to Opik is full (Opik is slower than the span rate or unreachable)") -> Outcome:
        return Outcome(BUSY, f"{why}; retry later", retry_after=self.retry_after)

    def _unavailable(self) -> Outcome:
        return Outcome(UNAVAILABLE, "the sidecar is shutting down; retry against another replica", retry_after=self.retry_after)

    def _refused(self, n: int) -> None:
        with self._counters_lock:
            self.spans_refused += n

    def count_response(self, protocol: str, status: str, seconds: Optional[float] = None) -> None:
        with self._counters_lock:
            key = (protocol, status)
            self.responses[key] = self.responses.get(key, 0) + 1
            if seconds is not None:
                self.request_seconds += seconds
                self.requests_timed += 1

    # -- health ------------------------------------------------------------------------
    def readiness(self) -> Tuple[bool, str]:
        """Opik reachable and accepting the credentials; cached for a few seconds. Blocking."""
        if self.draining:
            return False, "shutting down"
        if self._probe is None:
            return True, "dry run: nothing is sent to Opik"
        now = time.monotonic()
        cached = self._ready
        if cached is not None and now - cached[0] < self._ready_cache_seconds:
            return cached[1], cached[2]
        with self._ready_lock:
            cached = self._ready
            if cached is not None and time.monotonic() - cached[0] < self._ready_cache_seconds:
                return cached[1], cached[2]
            ok, why = self._probe_opik()
            self._ready = (time.monotonic(), ok, why)
            return ok, why

    def _probe_opik(self) -> Tuple[bool, str]:
        url = self.settings.url
        assert self._probe is not None
        try:
            resp = self._probe.get("/v1/private/projects?page=1&size=1", timeout=min(self.settings.timeout, 3.0))
        except TransportError as exc:
            return False, f"Opik at {url} is unreachable: {exc}"
        if resp.ok:
            return True, f"Opik at {url} is reachable and accepts the credentials"
        if resp.status in (401, 403):
            return False, f"Opik at {url} refused the credentials (HTTP {resp.status}): check OPIK_API_KEY and OPIK_WORKSPACE"
        return False, f"Opik at {url} answered HTTP {resp.status}"

    # -- metrics -----------------------------------------------------------------------
    def metrics_text(self) -> str:
        """Prometheus text exposition (version 0.0.4) of the self-telemetry counters."""
        snap = self.stats.snapshot()
        lines: List[str] = []

        def metric(name: str, kind: str, help_: str, samples: List[Tuple[str, float]]) -> None:
            lines.append(f"# HELP opik_otel_{name} {help_}")
            lines.append(f"# TYPE opik_otel_{name} {kind}")
            for labels, value in samples:
                v = repr(float(value)) if isinstance(value, float) and not float(value).is_integer() else str(int(value))
                lines.append(f"opik_otel_{name}{labels} {v}")

        for key in sorted(snap):
            value = snap[key]
            if key == "dropped" or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if key.endswith("_max"):
                metric(key, "gauge", _HELP.get(key, f"self-telemetry gauge {key}"), [("", float(value))])
            else:
                name = key if key.endswith("_total") else key + "_total"
                metric(name, "counter", _HELP.get(key, f"self-telemetry counter {key}"), [("", float(value))])
        dropped = snap.get("dropped") or {}
        assert isinstance(dropped, dict)
        metric("dropped_total", "counter", "items dropped, by reason", [(f'{{reason="{_label(r)}"}}', n) for r, n in sorted(dropped.items())])
        with self._counters_lock:
            responses = sorted(self.responses.items())
            accepted, refused = self.spans_accepted, self.spans_refused
            seconds, timed = self.request_seconds, self.requests_timed
        metric(
            "receiver_requests_total",
            "counter",
            "OTLP requests answered, by protocol and status",
            [(f'{{protocol="{p}",status="{_label(s)}"}}', n) for (p, s), n in responses],
        )
        metric("receiver_spans_accepted_total", "counter", "spans acknowledged to senders (queued for Opik)", [("", accepted)])
        metric("receiver_spans_refused_total", "counter", "spans answered with retry-later or too-large (kept by the sender)", [("", refused)])
        lines.append("# HELP opik_otel_receiver_request_seconds time to answer OTLP requests")
        lines.append("# TYPE opik_otel_receiver_request_seconds summary")
        lines.append(f"opik_otel_receiver_request_seconds_sum {seconds!r}")
        lines.append(f"opik_otel_receiver_request_seconds_count {timed}")
        metric("queue_items", "gauge", "items waiting for delivery to Opik", [("", self.writer.pending())])
        metric("receiver_spans_pending", "gauge", "spans acknowledged and waiting to be mapped", [("", self.pending_spans())])
        return "\n".join(lines) + "\n"


_HELP = {
    "spans_received": "spans given to the mapping (a request retried after 429 counts again)",
    "spans_rejected": "spans that could not be mapped",
    "traces_exported": "traces Opik accepted",
    "spans_exported": "spans Opik accepted",
    "scores_exported": "feedback scores Opik accepted",
    "requests": "HTTP requests sent to Opik",
    "requests_failed": "requests to Opik that failed or were retried",
    "retries": "retries of requests to Opik",
    "items_spooled": "items written to the spool",
    "items_unspooled": "items re-sent from the spool",
    "request_seconds_total": "seconds spent in requests to Opik",
    "request_seconds_max": "longest request to Opik, in seconds",
}


def _label(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
