"""Small helpers shared by the convention readers.

Everything here is O(1) per call except :func:`events`, which indexes a span's
events once (cached in ``out.scratch``) so readers looking for different event
names do not each walk a streaming span's 128 chunk events.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from itertools import compress
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Tuple

from ..._json import parse_json_like
from ..._record import EventRecord
from .._model import SIGN_USAGE, MappedSpan, is_empty

#: Opik usage keys
PROMPT = "prompt_tokens"
COMPLETION = "completion_tokens"
TOTAL = "total_tokens"
CACHE_READ = "cache_read_input_tokens"
CACHE_WRITE = "cache_creation_input_tokens"
REASONING = "reasoning_tokens"


def scratch(out: MappedSpan) -> Dict[str, Any]:
    s = out.scratch
    if s is None:
        s = out.scratch = {}
    return s


_NO_EVENTS: Dict[str, EventRecord] = {}


def events(out: MappedSpan) -> Dict[str, EventRecord]:
    """The first event of each name (one pass over the events, cached)."""
    evs = out.record.events
    if not evs:
        return _NO_EVENTS
    s = scratch(out)
    idx = s.get("events")
    if idx is None:
        idx = {}
        for e in evs:
            if e.name not in idx:
                idx[e.name] = e
        s["events"] = idx
    return idx


def all_events(out: MappedSpan, name: str) -> List[EventRecord]:
    """Every event called ``name`` (only for names that are rare on a span)."""
    return [e for e in out.record.events if e.name == name]


def mark(out: MappedSpan, *keys: str) -> None:
    out.used.update(keys)


_INFINITIES = (float("inf"), float("-inf"))


def to_float(value: Any) -> Optional[float]:
    if value is None or isinstance(value, bool):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if f == f and f not in _INFINITIES else None


def set_ttft_at(out: MappedSpan, time_ns: int) -> None:
    """TTFT from the absolute time of the first token (an event timestamp)."""
    if out.ttft_ms is not None:
        return
    start = out.record.start_ns
    if time_ns >= start:
        out.set_ttft_ms((time_ns - start) / 1e6)
        out.first_token_ns = time_ns


def set_ttft_seconds(out: MappedSpan, key: str) -> bool:
    """TTFT from an attribute in seconds (GenAI semconv, Pydantic AI, Vercel new)."""
    v = out.record.attributes.get(key)
    if v is None:
        return False
    out.used.add(key)
    f = to_float(v)
    if f is not None and f >= 0 and out.ttft_ms is None:
        out.set_ttft_ms(f * 1000.0)
        return True
    return False


def set_ttft_ms_attr(out: MappedSpan, key: str) -> bool:
    v = out.record.attributes.get(key)
    if v is None:
        return False
    out.used.add(key)
    f = to_float(v)
    if f is not None and f >= 0 and out.ttft_ms is None:
        out.set_ttft_ms(f)
        return True
    return False


#: ``MappedSpan.set_usage`` keeps counts below this
_USAGE_LIMIT = 2**31

#: every :class:`UsageKeys` table: the family index gives a span carrying any of their keys ``SIGN_USAGE``
USAGE_TABLES: List["UsageKeys"] = []


class UsageKeys:
    """``(attribute, opik key)`` pairs in priority order; a span carrying none of them is not probed for them."""

    __slots__ = ("pairs", "attrs")

    def __init__(self, pairs: Iterable[Tuple[str, str]]) -> None:
        self.pairs: Tuple[Tuple[str, str], ...] = tuple(pairs)
        self.attrs: Tuple[str, ...] = tuple(attr for attr, _ in self.pairs)
        USAGE_TABLES.append(self)

    def __iter__(self) -> Iterator[Tuple[str, str]]:
        return iter(self.pairs)


def read_usage(out: MappedSpan, pairs: "UsageKeys | Iterable[Tuple[str, str]]", skip_zero_extras: bool = True) -> None:
    """Copy ``(attribute, opik key)`` pairs into usage; consumed keys are marked used.

    Does nothing on spans whose usage repeats their children's (the keys then
    stay in metadata). Zero-valued cache/reasoning extras are dropped: they
    only clutter Opik's usage panel.
    """
    if out.usage_is_aggregate:
        return
    attrs = out.record.attributes
    if isinstance(pairs, UsageKeys):
        if not out.present & SIGN_USAGE:
            return  # the family index saw none of the usage tables' keys
        pairs = compress(pairs.pairs, map(attrs.__contains__, pairs.attrs))  # probed in C, not a loop of gets
    usage = out.usage
    for attr, key in pairs:
        v = attrs.get(attr)
        if v is None:
            continue
        out.used.add(attr)
        if key in usage:
            continue
        if skip_zero_extras and key not in (PROMPT, COMPLETION, TOTAL) and to_float(v) == 0:
            continue
        if type(v) is int and 0 <= v < _USAGE_LIMIT:
            usage[key] = v  # what ``set_usage`` keeps of an int, without its call (most counts are ints)
        else:
            out.set_usage(key, v)


def set_cost(out: MappedSpan, value: Any) -> bool:
    """A stated cost, never on aggregate spans (Opik sums span costs per trace)."""
    if out.usage_is_aggregate or out.cost is not None:
        return False
    f = to_float(value)
    if f is None or f < 0:
        return False
    out.set_cost(f)
    return True


def aggregate(out: MappedSpan) -> None:
    """Mark a span whose usage and cost only repeat its children's."""
    out.usage_is_aggregate = True


def thread_candidate(out: MappedSpan, value: Any) -> None:
    """A family-specific thread id; applied after the standard keys (see ``conventions._finish``)."""
    if is_empty(value):
        return
    s = scratch(out)
    lst = s.get("threads")
    if lst is None:
        s["threads"] = [value]
    else:
        lst.append(value)


def parse_json(value: Any) -> Tuple[Any, bool]:
    """``(parsed, ok)``; non-strings are returned as they are (ok)."""
    if isinstance(value, str):
        return parse_json_like(value)
    return value, True


def set_io_flagging_truncation(out: MappedSpan, key: str, which: str) -> None:
    """Input/output from a JSON string that may have been cut mid-way (Traceloop, length limits).

    Invalid JSON that looks like JSON is kept raw and ``metadata.truncated`` is set.
    """
    v = out.record.attributes.get(key)
    if v is None:
        return
    out.used.add(key)
    if isinstance(v, str):
        s = v.lstrip()
        if s[:1] in ("{", "["):
            _, ok = parse_json_like(v)
            if not ok:
                if (out.input if which == "input" else out.output) is None:
                    out.metadata["truncated"] = True
                    if which == "input":
                        out.input = {"value": v}
                    else:
                        out.output = {"value": v}
                return
    if which == "input":
        out.set_input(v)
    else:
        out.set_output(v)


def merge_prefixed(out: MappedSpan, values: Mapping[str, Any]) -> None:
    """Merge a spread-out dict (``<prefix><name>`` keys) into metadata; existing keys win."""
    md = out.metadata
    for k, v in values.items():
        if k not in md:
            if isinstance(v, str) and v[:1] in ("{", "["):
                v, _ = parse_json_like(v)
            md[k] = v


_ISO = re.compile(r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:?\d{2})?$")


def parse_iso_ns(value: Any) -> Optional[int]:
    """An ISO 8601 timestamp (optionally JSON-quoted) as ns since the epoch; None if invalid."""
    if not isinstance(value, str):
        return None
    s = value.strip().strip('"')
    m = _ISO.match(s)
    if not m:
        return None
    date, clock, frac, tz = m.groups()
    if tz in (None, "Z"):
        tzs = "+00:00"
    else:
        tzs = tz if ":" in tz else tz[:3] + ":" + tz[3:]
    try:
        dt = datetime.fromisoformat(f"{date}T{clock}{tzs}")
    except ValueError:
        return None
    if dt.tzinfo is None:  # pragma: no cover - tzs is always set
        dt = dt.replace(tzinfo=timezone.utc)
    ns = int(dt.timestamp()) * 1_000_000_000
    if frac:
        ns += int(frac[:9].ljust(9, "0"))
    return ns


def first(attrs: Mapping[str, Any], keys: Iterable[str]) -> Tuple[Optional[str], Any]:
    """The first present, non-empty ``(key, value)`` among ``keys``."""
    for k in keys:
        v = attrs.get(k)
        if v is not None and not is_empty(v):
            return k, v
    return None, None
