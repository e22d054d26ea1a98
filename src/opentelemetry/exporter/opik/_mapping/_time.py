"""Nanoseconds since the epoch -> Opik's ISO 8601 UTC timestamps."""

from __future__ import annotations

import time
from typing import Dict, Tuple

#: seconds -> "YYYY-MM-DDTHH:MM:SS.": a span's start and end, and consecutive spans,
#: fall in a few distinct seconds, which a one-entry cache kept evicting
_prefixes: Dict[int, str] = {}
_MAX_PREFIXES = 512
#: 0..999 -> "000".."999": the microseconds are two table lookups, not an int format
_DIGITS3 = tuple(f"{i:03d}" for i in range(1000))
_NS = 1_000_000_000


def _prefix(sec: int) -> str:
    prefix = _prefixes.get(sec)
    if prefix is None:
        if len(_prefixes) >= _MAX_PREFIXES:
            _prefixes.clear()
        # clamp to Opik's accepted range (1970 .. 2262)
        s = min(max(sec, 0), 9_223_372_035)
        prefix = _prefixes[sec] = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(s))
    return prefix


def iso_ns(ns: int) -> str:
    """``2026-11-29T14:50:35.123456Z``; the seconds prefixes are cached (spans cluster)."""
    sec, rem = divmod(ns, _NS)
    ms, us = divmod(rem // 1000, 1000)
    d = _DIGITS3
    return f"{_prefixes.get(sec) or _prefix(sec)}{d[ms]}{d[us]}Z"


def iso_span(start_ns: int, end_ns: int) -> Tuple[str, str]:
    """``iso_ns`` of a span's start and end: one division when both fall in the same second."""
    sec, rem = divmod(start_ns, _NS)
    d = _DIGITS3
    prefix = _prefixes.get(sec) or _prefix(sec)
    ms, us = divmod(rem // 1000, 1000)
    start = f"{prefix}{d[ms]}{d[us]}Z"
    end_rem = rem + (end_ns - start_ns)
    if 0 <= end_rem < _NS:
        ms, us = divmod(end_rem // 1000, 1000)
        return start, f"{prefix}{d[ms]}{d[us]}Z"
    return start, iso_ns(end_ns)
