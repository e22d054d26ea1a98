"""The sidecar's one way in: :meth:`Receiver.handle` serves both receivers (OTLP/HTTP and OTLP/gRPC).

The receiver's event loop reads the body and hands it, with its headers, to the one worker thread,
which calls ``handle``: decompress and decode (:mod:`._decode`), check that Opik takes the
credentials (:mod:`._health`), map and queue all or nothing (:mod:`._admission`) into the sink of
those credentials (:mod:`._sinks`), then answer. Two hand-offs per request (event loop -> worker ->
the writer's sender thread); the 200 is sent once the spans are queued (on disk, with a spool).
"""

from __future__ import annotations

import logging
import time
from typing import Dict, List, Optional, Tuple

from .._config import OpikSettings
from .._delivery.sink import Sink, make_sink
from .._errors import trail
from .._join import LogJoin
from .._otlp import DecodedBatch
from .._otlp_logs import DecodedLogs
from .._pipeline import Pipeline
from .._stats import Stats
from .._transport import Transport
from ._admission import Admission
from ._counters import ReceiverCounters
from ._decode import Limits, decode
from ._health import OpikProbe
from ._inflight import InflightBudget, default_budget
from ._outcome import LOGS, METRICS, OK, TRACES, UNAUTHENTICATED, UNAVAILABLE, Outcome
from ._prometheus import render
from ._sinks import MAX_SINKS, Credentials, CredentialsRefused, SinkPool, Target

_logger = logging.getLogger("opentelemetry.exporter.opik.sidecar")

#: a request that waited this long for the worker is answered "retry later" without being decoded
MAX_WAIT = 5.0
#: how long a "Opik accepts these credentials" answer is trusted before the next request asks again
CREDENTIALS_OK_SECONDS = 30.0
#: ... and a refusal (a fixed key or workspace is noticed this soon)
CREDENTIALS_REFUSED_SECONDS = 5.0


class Receiver:
    """Decoded OTLP requests -> pipeline -> the sink of the sender's credentials."""

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
        pass_credentials: bool = False,
        max_sinks: int = MAX_SINKS,
        max_wait: float = MAX_WAIT,
    ) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.writer = writer
        self.stats = stats
        self.limits = limits or Limits()
        self.retry_after = retry_after
        self.pass_credentials = pass_credentials
        self.max_wait = max_wait
        self.counters = ReceiverCounters()
        #: request bytes both receivers hold until answered (``--max-inflight-bytes``; the HTTP app sets it)
        self.inflight = InflightBudget(default_budget(self.limits.max_body_bytes))
        self._ready_cache_seconds = ready_cache_seconds
        self.admission = Admission(settings, self.counters, retry_after)
        window = getattr(settings, "log_join_window", 2.0)

        def make_join(st: Stats) -> LogJoin:
            # GenAI content sent as OTLP logs joins its spans (sent spans are kept: logs may come any time)
            return LogJoin(window, st, keep_always=True)

        #: the sidecar's own credentials' log join
        self.join = make_join(stats)
        own = Target("own", pipeline, self.join, writer, stats, OpikProbe(settings, probe_transport), passed=False)
        self.sinks = SinkPool(
            settings,
            own,
            lambda s, st: make_sink(s, st),
            lambda s, st: Pipeline(s, stats=st),
            make_join,
            self.admission.deliver_joined,
            max_sinks=max_sinks,
            before_close=self._release_target,
        )

    @property
    def draining(self) -> bool:
        return self.admission.draining

    # -- the one way in ----------------------------------------------------------------
    def handle(
        self,
        body: bytes,
        encoding: str,
        content_type: str,
        project: Optional[str],
        *,
        signal: str = TRACES,
        credentials: Optional[Credentials] = None,
        received_at: Optional[float] = None,
    ) -> Outcome:
        """One OTLP request (``signal``: traces, logs or metrics) to its outcome; blocking, on the worker.

        ``project`` is the ``projectName`` header; ``credentials`` what the sender passed (used only with
        ``pass_credentials``); ``received_at`` (monotonic) when the body was read: a request that waited
        longer than ``max_wait`` for the worker is answered "retry later" without being decoded.
        """
        if self.draining:
            return self._counted_refusal(self.admission.stopping(), 0, signal)
        if received_at is not None and time.monotonic() - received_at > self.max_wait:
            return self._counted_refusal(self.admission.busy("the sidecar's mapping is behind the span rate"), 0, signal)
        decoded = decode(body, encoding, content_type, signal, self.limits)
        if isinstance(decoded, Outcome):
            return decoded
        if signal == METRICS:
            return self._metrics()
        n = decoded.accepted if isinstance(decoded, DecodedBatch) else len(decoded.records) if isinstance(decoded, DecodedLogs) else 0
        try:
            target = self.sinks.target(credentials if self.pass_credentials else None)
        except CredentialsRefused as refused:
            outcome = Outcome(UNAUTHENTICATED, f"{refused}; nothing was accepted", signal=signal)
            return self._counted_refusal(outcome, n if signal == TRACES else 0, signal)
        except Exception as exc:  # noqa: BLE001 - e.g. a sender's spool directory that cannot be made
            _logger.error("could not open a delivery sink for a sender's credentials: %s", trail(exc))
            why = f"the sidecar could not open a delivery sink for these credentials ({type(exc).__name__}, see its log)"
            return self._counted_refusal(Outcome(UNAVAILABLE, why + "; retry later", retry_after=self.retry_after), 0, signal)
        refusal = self._refusal(target, signal) if n else None
        if refusal is not None:
            return self._counted_refusal(refusal, n if signal == TRACES else 0, signal)
        if isinstance(decoded, DecodedLogs):
            return self._logs(decoded, target)
        assert isinstance(decoded, DecodedBatch)
        project = project.strip() if project else None
        return self.admission.export(decoded, project or None, target)

    def _counted_refusal(self, outcome: Outcome, n: int, signal: str) -> Outcome:
        outcome.signal = signal
        if n:
            self.counters.refused(n)
        return outcome

    # -- Opik must take the credentials, or the sender hears so ---------------------------------
    def _refusal(self, target: Target, signal: str) -> Optional[Outcome]:
        """An answer for the sender when Opik refuses the credentials its spans would go with, else None.

        The sidecar's own credentials: 503 / UNAVAILABLE (the sender keeps its spans while the sidecar
        is fixed); unless a spool keeps what Opik refuses on disk, for a re-send once it is fixed.
        A sender's passed credentials: 401 / UNAUTHENTICATED (the sender's to fix), spool or not.
        """
        sink = target.sink
        refused = sink.drops_refused()
        why = ""
        if not refused and (target.passed or not self.settings.spool_dir):
            last = target.probe.cached()
            age = CREDENTIALS_REFUSED_SECONDS if last is not None and last.refused else CREDENTIALS_OK_SECONDS
            result = target.probe.check(age)
            refused, why = result.refused, result.why
        if not refused:
            return None
        if target.passed:
            return Outcome(UNAUTHENTICATED, (why or "Opik refuses the credentials this sender passes") + "; nothing was accepted", signal=signal)
        return Outcome(
            UNAVAILABLE,
            f"Opik refuses the sidecar's credentials ({why or 'confirmed by its answers'}; fix OPIK_API_KEY / OPIK_WORKSPACE "
            "of the sidecar); nothing was accepted, retry later",
            retry_after=self.retry_after,
            signal=signal,
        )

    # -- OTLP logs and metrics ----------------------------------------------------------------
    def _logs(self, decoded: DecodedLogs, target: Target) -> Outcome:
        """Join decoded log records to their spans (``_join.py``); nothing of a log record is sent on its own."""
        records = decoded.records
        if records and not self.writer.has_capacity(1, 0):
            return self._counted_refusal(self.admission.busy(), 0, LOGS)  # a joined span would be queued: the sender keeps its logs
        if not target.logs_seen:
            target.logs_seen = True
            target.join.attach_logs()  # from now on LLM spans without content wait for their logs
        try:
            target.join.logs(records)
        except Exception as exc:  # noqa: BLE001 - a join bug never becomes a 5xx
            _logger.error("unexpected error while joining %d log records: %s", len(records), trail(exc))
            return Outcome(OK, f"{len(records)} log records could not be joined (see the sidecar log)", len(records), signal=LOGS)
        self.counters.log_records(len(records))
        return Outcome(OK, decoded.message()[:4000] if decoded.rejected else "", decoded.rejected, signal=LOGS)

    def _metrics(self) -> Outcome:
        """OTLP metrics are answered with success and discarded (counted; logged once)."""
        first = self.counters.metrics_request()
        self.stats.add("metrics_requests_discarded")
        if first:
            _logger.info("OTLP metrics are accepted and discarded: Opik has no metrics (logged once)")
        return Outcome(OK, signal=METRICS)

    # -- stopping ---------------------------------------------------------------------
    def start_draining(self) -> None:
        """From now on requests are answered 503: nothing is queued once the sinks close."""
        self.admission.draining = True

    def finish_join(self) -> None:
        """At shutdown: spans still waiting for their logs are sent with what arrived."""
        for target in self.sinks.targets():
            target.join.release_owner(None)

    def _release_target(self, target: Target) -> None:
        """A sink is closing: the spans its senders' logs were awaited for go now, with what arrived."""
        if target is not self.sinks.default:
            target.join.release_owner(None)
            target.join.forget_owner(target)

    def close(self, timeout: float) -> bool:
        """Close every sink within ``timeout`` (what each pipeline holds goes to its own sink first)."""
        return self.sinks.close(timeout)

    # -- health and metrics ----------------------------------------------------------------
    def readiness(self) -> Tuple[bool, str]:
        """Opik reachable and accepting the sidecar's credentials; cached for a few seconds. Blocking."""
        if self.draining:
            return False, "shutting down"
        if not self.writer.has_capacity(1, 0):
            s = self.settings
            return False, (
                f"the queue to Opik is full ({s.max_queue_items} items / {s.max_queue_bytes} bytes): requests are "
                "answered 429 until Opik takes more"
            )
        result = self.sinks.default.probe.check(self._ready_cache_seconds)
        if result.refused and self.pass_credentials:
            # Opik answers; senders bring their own credentials, checked per request
            return True, result.why + "; senders pass their own (--pass-credentials)"
        return result.ok, result.why

    def count_response(self, protocol: str, status: str, seconds: Optional[float] = None) -> None:
        self.counters.response(protocol, status, seconds)

    def metrics_text(self) -> str:
        """Prometheus text exposition (version 0.0.4) of the self-telemetry counters."""
        return render(self.sinks.stats_snapshot(self.stats), self.counters, self.sinks.gauges())

    def dropped_by_reason(self) -> Dict[str, int]:
        """Items dropped so far over every sink, by reason."""
        dropped = self.sinks.stats_snapshot(self.stats).get("dropped") or {}
        return dict(dropped) if isinstance(dropped, dict) else {}

__all__: List[str] = ["Receiver"]
