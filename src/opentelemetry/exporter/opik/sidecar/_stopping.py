"""What a stopping sidecar reports, and its exit code: what a 200 promised, kept or not.

Without a spool a 200 means "queued in memory": a shutdown that cannot deliver everything within
``--shutdown-timeout`` drops the rest. That is logged as an error with the count by reason, and the
process exits 1 (:data:`EXIT_DROPPED`), so an orchestrator or a supervisor sees that acknowledged
spans were lost. With a spool what is left is on disk (exit 0), re-sent by the next start.
"""

from __future__ import annotations

import logging
from typing import Dict, Mapping

from .._config import OpikSettings
from ._receiver import Receiver

_logger = logging.getLogger("opentelemetry.exporter.opik.sidecar")

EXIT_OK = 0
#: acknowledged items were dropped during the shutdown
EXIT_DROPPED = 1


def _delta(after: Mapping[str, int], before: Mapping[str, int]) -> Dict[str, int]:
    return {r: n - before.get(r, 0) for r, n in sorted(after.items()) if n - before.get(r, 0) > 0}


def report_stop(receiver: Receiver, settings: OpikSettings, done: bool, dropped_before: Mapping[str, int]) -> int:
    """Log the stop line (and an error for items dropped while stopping); returns the exit code."""
    snap = receiver.sinks.stats_snapshot(receiver.stats)
    dropped = receiver.dropped_by_reason()
    _logger.info(
        # a dry run prints what it would send: nothing was delivered, nothing spooled
        "opik-otel serve stopped (dry run, nothing sent): %d traces and %d spans printed, %d items spooled, %d dropped%s"
        if settings.dry_run
        else "opik-otel serve stopped: %d traces and %d spans delivered, %d items spooled, %d dropped%s",
        snap.get("traces_exported", 0) or 0,
        snap.get("spans_exported", 0) or 0,
        snap.get("items_spooled", 0) or 0,
        sum(dropped.values()),
        "" if done else " (delivery did not finish within the shutdown timeout)",
    )
    lost = _delta(dropped, dropped_before)
    if not lost:
        return EXIT_OK
    _logger.error(
        "opik-otel serve dropped %d acknowledged items while stopping (%s): they were answered 200 and are lost; "
        "set OTEL_EXPORTER_OPIK_SPOOL_DIR (--spool-dir) to keep them on disk, or raise --shutdown-timeout",
        sum(lost.values()),
        ", ".join(f"{reason}: {n}" for reason, n in lost.items()),
    )
    return EXIT_DROPPED


__all__ = ["EXIT_DROPPED", "EXIT_OK", "report_stop"]
