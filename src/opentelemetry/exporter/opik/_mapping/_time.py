"""Nanoseconds since the epoch -> Opik's ISO 8601 UTC timestamps."""

from __future__ import annotations

import time

_last_sec = -1
_last_prefix = ""


def iso_ns(ns: int) -> str:
    """``2026-11-29T14:50:35.123456Z``; the seconds prefix is cached (spans cluster)."""
    global _last_sec, _last_prefix
    sec, rem = divmod(ns, 1_000_000_000)
    if sec != _last_sec:
        # clamp to Opik's accepted range (1970 .. 2262)
        s = min(max(sec, 0), 9_223_372_035)
        _last_prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s))
        _last_sec = sec
    return f"{_last_prefix}.{rem // 1000:06d}Z"
