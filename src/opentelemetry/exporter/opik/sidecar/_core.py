"""The transport-independent part of the sidecar: limits, backpressure, routing, metrics.

Both receivers (OTLP/HTTP and OTLP/gRPC) hand a decoded request to
:meth:`Receiver.export`, which maps it through the shared pipeline and queues
it on the shared writer *all or nothing*: when the writer's bounds would be
exceeded nothing is queued and the caller answers "retry later" (HTTP 429 /
gRPC RESOURCE_EXHAUSTED with a delay), so the sender keeps the data instead of
the sidecar dropping part of it. Opik upserts by id, so a retried request
never duplicates anything.
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from typing import Any, Dict, List, Optional, Tuple, Union

from .._config import OpikSettings
from .._otlp import DecodedBatch, DecodeError, DecodeLimits, TooManySpans, decode_json, decode_protobuf
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


class Receiver:
    """Decoded OTLP requests -> pipeline -> writer, with backpressure and routing."""

    def __init__(
        self,
        settings: OpikSettings,
        pipeline: Pipeline,
        writer: Any,
        stats: Stats,
        limits: Optional[Limits] = None,
        retry_after: float = 1.0,
        probe_transport: Optional[Transport] = None,
        ready_cache_seconds: float = 5.0,
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

    # -- decoding -------------------------------------------------------------------
    def decode(self, body: bytes, is_json: bool, encoding: str = "") -> Union[DecodedBatch, Outcome]:
        """Decompress and decode one request body, or the error outcome."""
        limit = self.limits.max_body_bytes
        try:
            data = decompress(body, encoding, limit) if encoding else body
            if len(data) > limit:
                raise BodyTooLarge()
            return decode_json(data, self.limits.decode) if is_json else decode_protobuf(data, self.limits.decode)
        except BodyTooLarge:
            return Outcome(TOO_LARGE, f"the request body is larger than {limit} bytes after decompression; send smaller batches")
        except TooManySpans as exc:
            return Outcome(TOO_LARGE, str(exc))
        except DecodeError as exc:
            kind = "OTLP/JSON" if is_json else "OTLP protobuf"
            return Outcome(INVALID, f"the body is not a valid {kind} ExportTraceServiceRequest: {exc}")
        except Exception as exc:  # noqa: BLE001 - a decoder bug must not become a 5xx or stop the sidecar
            _logger.exception("unexpected error while decoding an OTLP request")
            return Outcome(INVALID, f"the body could not be decoded ({type(exc).__name__}); see the sidecar log")

    def start_draining(self) -> None:
        """From now on requests are answered 503: nothing is queued once the writer closes."""
        with self._submit_lock:
            self.draining = True

    # -- the one way in ------------------------------------------------------------------
    def export(self, batch: DecodedBatch, project: Optional[str] = None) -> Outcome:
        """Map and queue ``batch`` all or nothing; ``project`` is the ``projectName`` header."""
        if self.draining:
            return Outcome(UNAVAILABLE, "the sidecar is shutting down; retry against another replica", retry_after=self.retry_after)
        records = batch.records
        writer = self.writer
        s = self.settings
        if records and getattr(writer, "spool", None) is None and getattr(writer, "_auth_paused_until", 0.0) > time.monotonic():
            # Opik refused our credentials: the writer would drop what we accept, so the sender keeps it.
            self._refused(len(records))
            return Outcome(
                UNAVAILABLE,
                "Opik refuses the sidecar's credentials (fix OPIK_API_KEY / OPIK_WORKSPACE of the sidecar); retry later",
                retry_after=self.retry_after,
            )
        max_items = getattr(s, "max_queue_items", None)
        if max_items is not None and len(records) > max_items:
            self._refused(len(records))
            return self._too_large(len(records), "spans")
        if records and not writer.has_capacity(len(records), 0):  # cheap check before mapping
            self._refused(len(records))
            return self._busy()
        project = project.strip() if project else None
        try:
            processed = self.pipeline.process(records, project or None)
        except Exception as exc:  # noqa: BLE001 - the mapper isolates spans; this is a bug, never a 5xx
            _logger.exception("unexpected error while mapping %d spans; they are dropped", len(records))
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
                return Outcome(UNAVAILABLE, "the sidecar is shutting down; retry against another replica", retry_after=self.retry_after)
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

    def _too_large(self, n: int, what: str) -> Outcome:
        s = self.settings
        return Outcome(
            TOO_LARGE,
            f"the request maps to {n} {what}, more than the sidecar's queue holds "
            f"({s.max_queue_items} items / {s.max_queue_bytes} bytes): send smaller batches",
        )

    def _busy(self) -> Outcome:
        return Outcome(
            BUSY,
            "the sidecar's queue to Opik is full (Opik is slower than the span rate or unreachable); retry later",
            retry_after=self.retry_after,
        )

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
