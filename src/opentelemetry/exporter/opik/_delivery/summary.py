"""The one line a shutdown writes when items were not delivered: where to, why, how many, what to fix.

Its counts are the counters of ``stats()`` (the items dropped or spooled by this shutdown, and the
process's whole ``dropped`` map), so the log and the numbers never disagree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping, Optional

from .._transport import safe_url

if TYPE_CHECKING:  # pragma: no cover
    from .._config import OpikSettings


def url_origin(settings: "OpikSettings") -> str:
    """``the default (OPIK_URL_OVERRIDE is not set)`` or ``set by env OPIK_URL_OVERRIDE`` and the like."""
    source = (settings.sources or {}).get("url", "")
    if not source or source.startswith("default"):
        return "the default, as OPIK_URL_OVERRIDE is not set"
    return f"set by {source}"


def shutdown_summary(
    settings: "OpikSettings",
    *,
    dropped: int,
    spooled: int,
    dropped_by_reason: Mapping[str, int],
    connect_error: Optional[str],
    spool_dir: Optional[str],
) -> Optional[str]:
    """The warning for a shutdown that left ``dropped`` + ``spooled`` items undelivered; None if none."""
    if dropped <= 0 and spooled <= 0:
        return None
    outcome = []
    if dropped:
        outcome.append(f"{dropped} dropped (exporter.stats()['dropped'] is {dict(dropped_by_reason)})")
    if spooled:
        outcome.append(f"{spooled} spooled to {spool_dir} for the next process to send")
    counts = f"{dropped + spooled} items not delivered: " + ", ".join(outcome)
    url = safe_url(settings.url)
    if connect_error:
        keep = "" if spool_dir else ", or OTEL_EXPORTER_OPIK_SPOOL_DIR to keep undelivered items on disk"
        return (
            f"Opik exporter: could not reach Opik at {url} ({url_origin(settings)}): {connect_error}. {counts}. "
            f"Fix OPIK_URL_OVERRIDE (the Opik API URL, e.g. http://localhost:5173/api; `opik-otel check` tests it)"
            f"{keep}"
        )
    keep = "" if spool_dir else "; set OTEL_EXPORTER_OPIK_SPOOL_DIR to keep them on disk"
    return f"Opik exporter: at shutdown, Opik at {url} had not taken everything in time: {counts}{keep}"


__all__ = ["shutdown_summary", "url_origin"]
