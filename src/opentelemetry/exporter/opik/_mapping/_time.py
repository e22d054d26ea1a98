"""Nanoseconds since the epoch -> Opik's ISO 8601 UTC timestamps."""

from __future__ import annotations

import time
from typing import Dict

#: seconds -> "YYYY-MM-DDTHH:MM:SS": a span's start and end, and consecutive spans,
#: fall in a few distinct seconds, which a one-entry cache kept evicting
_prefixes: Dict[int, str] = {}
_MAX_PREFIXES = 512


def iso_ns(ns: int) -> str:
    """``2026-11-29T14:50:35.123456Z``; the seconds prefixes are cached (spans cluster)."""
    sec, rem = divmod(ns, 1_000_000_000)
    prefix = _prefixes.get(sec)
    if prefix is None:
        if len(_prefixes) >= _MAX_PREFIXES:
            _prefixes.clear()
        # clamp to Opik's accepted range (1970 .. 2262)
        s = min(max(sec, 0), 9_223_372_035)
        prefix = _prefixes[sec] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s))
    return f"{prefix}.{rem // 1000:06d}Z"
