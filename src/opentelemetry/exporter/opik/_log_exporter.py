"""``OpikLogExporter``: GenAI content that instrumentations emit as OTel log records, joined to its span.

``OTEL_LOGS_EXPORTER=opik`` (with ``OTEL_TRACES_EXPORTER=opik``) in zero-code, or
``LoggerProvider().add_log_record_processor(BatchLogRecordProcessor(OpikLogExporter()))``.
It sends nothing of its own: each GenAI log record becomes an event of its span
(see ``_join.py``) and goes to Opik with the span, through the span exporter that
sent it and so through the same mapping, privacy stages and delivery. Other log
records are counted and not sent.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult

from ._config import resolve_settings
from ._errors import trail
from ._join import LogJoin, get_join

_logger = logging.getLogger("opentelemetry.exporter.opik")

LogTuple = Tuple[int, int, Optional[str], int, Mapping[str, Any], Any]


def _attributes(attrs: Any) -> Mapping[str, Any]:
    if not attrs:
        return {}
    inner = getattr(attrs, "_dict", None)
    return inner if isinstance(inner, dict) else dict(attrs)


def from_sdk_log(record: Any) -> LogTuple:
    """An SDK ``ReadableLogRecord`` (or an API ``LogRecord``) as the join's tuple."""
    lr = getattr(record, "log_record", record)
    return (
        lr.trace_id or 0,
        lr.span_id or 0,
        getattr(lr, "event_name", None),
        lr.timestamp or lr.observed_timestamp or 0,
        _attributes(lr.attributes),
        lr.body,
    )


class OpikLogExporter(LogRecordExporter):
    """Join GenAI log records (``gen_ai.client.inference.operation.details``, the legacy
    ``gen_ai.*.message`` / ``gen_ai.choice`` events, ``gen_ai.content.*``,
    ``gen_ai.evaluation.result``) to their spans, which :class:`OpikSpanExporter` sends.

    ``log_join_window`` (``OTEL_EXPORTER_OPIK_LOG_JOIN_WINDOW``, default 2 s) is how
    long an LLM span without content waits for its log records; content that comes
    later makes the span exporter send the complete span again.
    """

    def __init__(self, log_join_window: Optional[float] = None, *, join: Optional[LogJoin] = None) -> None:
        if join is None:
            settings = resolve_settings({"log_join_window": log_join_window})
            join = get_join(settings.log_join_window)
        self._join = join
        self._join.attach_logs()
        self._shutdown = False

    def export(self, batch: Sequence[Any]) -> LogRecordExportResult:
        if self._shutdown:
            return LogRecordExportResult.FAILURE
        try:
            records: List[LogTuple] = []
            for r in batch:
                try:
                    records.append(from_sdk_log(r))
                except Exception as exc:  # noqa: BLE001 - one odd record never sinks the batch
                    self._join.stats.drop("log_record_unreadable")
                    _logger.debug("could not read a log record: %s", type(exc).__name__)
            self._join.logs(records)
            return LogRecordExportResult.SUCCESS
        except Exception as exc:  # noqa: BLE001 - export() never raises
            _logger.error("Opik log exporter failed on %d log records: %s", len(batch), trail(exc))
            return LogRecordExportResult.FAILURE

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True

    def shutdown(self) -> None:
        if self._shutdown:
            return
        self._shutdown = True
        self._join.detach_logs()

    def stats(self) -> Dict[str, object]:
        """The join's counters: log records received, joined, redundant, ignored, dropped by reason."""
        snap = dict(self._join.stats.snapshot())
        snap.update(self._join.sizes())
        return snap


__all__ = ["OpikLogExporter", "from_sdk_log"]
