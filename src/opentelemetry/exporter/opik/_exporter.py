"""``OpikSpanExporter``: a thin OTel ``SpanExporter`` over the shared pipeline and writer."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Dict, List, Optional, Sequence, TextIO

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from ._config import SPECS, OpikSettings, resolve_settings
from ._delivery.flush import DEFAULT_FLUSH_MILLIS, ProcessorFlushHook
from ._delivery.sink import Sink, close_sink, make_sink
from ._errors import trail, where
from ._join import get_join
from ._mapping._time import iso_ns
from ._pipeline import MaskHook, Pipeline
from ._record import SpanRecord, from_readable_span
from ._stats import Stats

_logger = logging.getLogger("opentelemetry.exporter.opik")
#: the keywords of OpikSpanExporter that are settings: one per row of ``_config.SPECS``
SETTING_KEYWORDS = tuple(s.field for s in SPECS)


class OpikSpanExporter(SpanExporter):
    """Export OpenTelemetry spans to Opik as first-class traces and spans.

    Every argument is optional: each falls back to the environment
    (``OPIK_URL_OVERRIDE``, ``OPIK_API_KEY``, ``OPIK_WORKSPACE``,
    ``OPIK_PROJECT_NAME``, ``OTEL_EXPORTER_OPIK_*``), then ``~/.opik.config``,
    then defaults, so ``OTEL_TRACES_EXPORTER=opik`` works with no code.

    ``export`` maps the spans and queues them for a background sender, so the
    ``BatchSpanProcessor`` thread never waits on Opik; it returns FAILURE only
    for spans that could not be queued. ``force_flush`` waits for delivery.
    Each keyword is one setting (``docs/settings.md`` gives its environment
    variable and default), checked exactly as its environment variable is: a
    bad value raises :class:`ConfigError` naming the setting. ``settings`` (from
    :func:`resolve_settings`) replaces all of them.
    """

    def __init__(
        self,
        url: Optional[str] = None,
        api_key: Optional[str] = None,
        workspace: Optional[str] = None,
        project_name: Optional[str] = None,
        *,
        environment: Optional[str] = None,
        check_tls_certificate: Optional[bool] = None,
        certificate: Optional[str] = None,
        timeout: Optional[float] = None,
        retry_deadline: Optional[float] = None,
        batch_max_items: Optional[int] = None,
        batch_max_bytes: Optional[int] = None,
        compression: Optional[str] = None,
        compression_level: Optional[int] = None,
        max_queue_items: Optional[int] = None,
        max_queue_bytes: Optional[int] = None,
        dry_run: Optional[bool] = None,
        spool_dir: Optional[str] = None,
        spool_max_bytes: Optional[int] = None,
        sigterm_flush: Optional[bool] = None,
        capture_content: Optional[bool] = None,
        scrub: Optional[bool] = None,
        scrub_patterns: Optional[Sequence[str]] = None,
        scrub_allow: Optional[Sequence[str]] = None,
        span_filter: Optional[str] = None,
        scopes_allow: Optional[Sequence[str]] = None,
        scopes_deny: Optional[Sequence[str]] = None,
        field_max_bytes: Optional[int] = None,
        blob_max_bytes: Optional[int] = None,
        attachment_min_chars: Optional[int] = None,
        attachment_max_queue_bytes: Optional[int] = None,
        message_format: Optional[str] = None,
        project_from_service_name: Optional[bool] = None,
        log_join_window: Optional[float] = None,
        mask: Optional[MaskHook] = None,
        settings: Optional[OpikSettings] = None,
        console: Optional[TextIO] = None,
    ) -> None:
        if settings is None:
            given = dict(locals())
            overrides: Dict[str, Any] = {f: given.get(f) for f in SETTING_KEYWORDS}
            settings = resolve_settings(overrides)
        self.settings = settings
        self._stats = Stats()
        self._pipeline = Pipeline(settings, mask=mask, stats=self._stats)
        self._writer: Sink = make_sink(settings, self._stats, console=console)
        self._shutdown = False
        if settings.sigterm_flush and not settings.dry_run:
            from ._delivery import sigterm

            if not sigterm.install():
                _logger.warning(
                    "OTEL_EXPORTER_OPIK_SIGTERM_FLUSH is set but not used: the app has a SIGTERM handler of its own "
                    "(or the exporter was built outside the main thread); shut the TracerProvider down in it"
                )
        #: TracerProvider.force_flush() waits for Opik too (the SDK's processors never call ours)
        self._flush_hook = ProcessorFlushHook(self, self._flush_writer)
        #: GenAI content from log records (OpikLogExporter) joins its span here; see _join.py
        self._join = get_join(settings.log_join_window)
        self._map_lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._shutdown:
            return SpanExportResult.FAILURE
        flush_now = self._flush_hook.from_export()  # directly from export(): it looks at our caller
        try:
            records: List[SpanRecord] = []
            for span in spans:
                try:
                    records.append(from_readable_span(span))
                except Exception as exc:  # noqa: BLE001 - a bad span never sinks the batch
                    self._stats.add("spans_rejected")
                    _logger.warning("could not read span %r: %s", getattr(span, "name", "?"), where(exc))
            n_read = len(records)
            records = self._join.spans(records, self)  # LLM spans whose content is in log records may wait
            with self._map_lock:
                processed = self._pipeline.process(records)
                accepted = self._writer.submit(processed.items)
            ok = accepted == len(processed.items) and n_read == len(spans)
            if flush_now:  # the last batch of a provider flush that began before the hook
                self._flush_writer(DEFAULT_FLUSH_MILLIS / 1000)
            return SpanExportResult.SUCCESS if ok else SpanExportResult.FAILURE
        except Exception as exc:  # noqa: BLE001 - export() never raises
            _logger.error("Opik exporter failed to export %d spans: %s", len(spans), trail(exc))
            return SpanExportResult.FAILURE

    def deliver_joined(self, records: List[SpanRecord], resend: bool) -> None:
        """Spans joined with their log records (the join calls it); ``resend``: sent before, now complete."""
        if self._shutdown:
            self._stats.drop("exporter_shut_down", len(records))
            return
        updated = iso_ns(time.time_ns()) if resend else None
        with self._map_lock:
            processed = self._pipeline.process(records, updated_at=updated)
            self._writer.submit(processed.items)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        if self._join.logs_active:
            _flush_logs(timeout_millis)  # the log records of the spans held here come in first
            self._join.release_owner(self)
        return self._writer.flush(timeout_millis / 1000)

    def _flush_writer(self, timeout: float) -> bool:
        return self._writer.flush(timeout)

    def shutdown(self, timeout_millis: float = 30_000) -> None:  # type: ignore[override]
        if self._shutdown:
            return
        if self._join.logs_active:
            _flush_logs(timeout_millis)
        self._join.release_owner(self)
        self._shutdown = True
        self._join.forget_owner(self)
        # stages holding spans (span_filter=genai) resolve them now, then the sink delivers or spools
        close_sink(self._writer, timeout_millis / 1000, held=self._pipeline.close)

    def stats(self) -> Dict[str, object]:
        """Counters: exported, retried, dropped (by reason), spooled, request time."""
        return self._stats.snapshot()


def _flush_logs(timeout_millis: float) -> None:
    """Flush the global LoggerProvider, so log records of held spans reach the join before they are sent."""
    try:
        from opentelemetry._logs import get_logger_provider

        flush = getattr(get_logger_provider(), "force_flush", None)
        if flush is not None:
            flush(int(min(timeout_millis, 5_000)))
    except Exception as exc:  # noqa: BLE001 - a flush that fails only means later content is re-sent
        _logger.debug("could not flush the logger provider: %s", type(exc).__name__)


def _shrinker() -> Any:
    from ._privacy import shrink_item

    return shrink_item
