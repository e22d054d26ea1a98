"""Which spans are sent: instrumentation-scope lists and the ``genai`` trace filter.

Spans stream in children first, root last, over several export batches, so
"does this trace contain an LLM/agent/tool span?" is rarely known when a span
arrives. :class:`GenAIFilter` therefore holds the spans of a trace that has no
GenAI span *yet*: the first GenAI span releases them (and everything after
passes at once), the trace's local root arriving without one drops them. The
ancestors of a GenAI span always end after it, so they are never among the
held spans; what is held is only earlier work of the trace (a DB lookup before
the LLM call). Holding is bounded in count and time; whatever is dropped is
counted as ``filtered``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import List, Optional, Sequence, Tuple, Union

from .._mapping import Mapped
from .._mapping.conventions import GENAI_KEYS
from .._stats import Stats

_logger = logging.getLogger("opentelemetry.exporter.opik")

GENAI_TYPES = frozenset(("llm", "tool", "guardrail"))
#: an agent/workflow span is typed ``general``, and not every reader marks it: these keys do
#: (the families' ``Family.genai_keys``, see ``_mapping/conventions``)
_GENAI_KEYS = GENAI_KEYS


def is_genai(m: Mapped) -> bool:
    mp = m.mapped
    if mp.is_genai or mp.type in GENAI_TYPES:
        return True
    attrs = mp.record.attributes
    for k in _GENAI_KEYS:
        if attrs.get(k):
            return True
    return False


class _LRU:
    """A bounded set of trace ids, oldest forgotten first."""

    def __init__(self, max_entries: int) -> None:
        self._max = max_entries
        self._d: "OrderedDict[int, None]" = OrderedDict()

    def add(self, key: int) -> None:
        d = self._d
        if key in d:
            d.move_to_end(key)
            return
        d[key] = None
        if len(d) > self._max:
            d.popitem(last=False)

    def __contains__(self, key: object) -> bool:
        return key in self._d

    def __len__(self) -> int:
        return len(self._d)


def _drop(stats: Optional[Stats], reason: str, n: int = 1) -> None:
    if stats is not None and n:
        stats.drop(reason, n)


class ScopeFilter:
    """Drop spans by instrumentation scope (``scopes_allow`` / ``scopes_deny``, name prefixes).

    A trace row is kept while any span of its trace is kept (the trace is the
    container the kept spans need), and dropped with a trace whose every span
    was filtered out (a health check from a denied web framework).
    """

    def __init__(self, allow: Sequence[str], deny: Sequence[str], stats: Optional[Stats] = None) -> None:
        self.allow: Tuple[str, ...] = tuple(allow)
        self.deny: Tuple[str, ...] = tuple(deny)
        self.stats = stats
        self._kept = _LRU(65536)
        self._lock = threading.Lock()

    def passes(self, scope: str) -> bool:
        if self.allow and not scope.startswith(self.allow):
            return False
        return not (self.deny and scope.startswith(self.deny))

    def begin(self, items: Sequence[Mapped]) -> None:
        with self._lock:
            for m in items:
                if m.kind == "span" and self.passes(m.mapped.record.scope_name or ""):
                    self._kept.add(m.mapped.record.trace_id)

    def __call__(self, m: Mapped) -> Optional[Mapped]:
        rec = m.mapped.record
        if self.passes(rec.scope_name or ""):
            return m
        if m.kind == "trace":
            with self._lock:
                if rec.trace_id in self._kept:
                    return m
        _drop(self.stats, "scope_filtered")
        return None


class GenAIFilter:
    """``span_filter=genai``: only traces with at least one LLM/agent/tool/guardrail span."""

    def __init__(
        self,
        stats: Optional[Stats] = None,
        max_held: int = 20_000,
        hold_seconds: float = 900.0,
        remember: int = 65_536,
    ) -> None:
        self.stats = stats
        self.max_held = max_held
        self.hold_seconds = hold_seconds
        self._genai = _LRU(remember)
        self._done = _LRU(remember)  # local root seen without any GenAI span
        #: trace id -> (first held at, items) in arrival order
        self._held: "OrderedDict[int, Tuple[float, List[Mapped]]]" = OrderedDict()
        self._n_held = 0
        self._lock = threading.Lock()
        self._warned_full = False

    @property
    def held(self) -> int:
        return self._n_held

    def begin(self, items: Sequence[Mapped]) -> None:
        # The whole batch first: a trace row comes before the spans of its own batch.
        with self._lock:
            for m in items:
                if is_genai(m):
                    self._genai.add(m.mapped.record.trace_id)

    def __call__(self, m: Mapped) -> Union[None, Mapped, List[Mapped]]:
        rec = m.mapped.record
        tid = rec.trace_id
        with self._lock:
            if tid in self._genai:
                self._genai.add(tid)  # refresh
                entry = self._held.pop(tid, None)
                if entry is None:
                    return m
                self._n_held -= len(entry[1])
                return entry[1] + [m]
            if tid in self._done:
                _drop(self.stats, "filtered")
                return None
            if m.kind == "trace" or rec.is_local_root:
                # the local root ended and no span of the trace was an LLM/agent/tool call
                entry = self._held.pop(tid, None)
                n = 1
                if entry is not None:
                    self._n_held -= len(entry[1])
                    n += len(entry[1])
                self._done.add(tid)
                _drop(self.stats, "filtered", n)
                return None
            entry = self._held.get(tid)
            if entry is None:
                entry = (time.monotonic(), [])
                self._held[tid] = entry
            entry[1].append(m)
            self._n_held += 1
            if self._n_held > self.max_held:
                self._evict_oldest()
            return None

    def _evict_oldest(self) -> None:
        _, (_, items) = self._held.popitem(last=False)
        self._n_held -= len(items)
        _drop(self.stats, "filtered", len(items))
        if not self._warned_full:
            self._warned_full = True
            _logger.warning(
                "span_filter=genai holds at most %d spans of unfinished traces; the oldest trace's held "
                "spans were dropped (counted as filtered). Logged once.",
                self.max_held,
            )

    def drain(self, final: bool) -> List[Mapped]:
        """Expire held spans of traces idle too long; at shutdown drop all (their trace had no GenAI span)."""
        with self._lock:
            if not self._held:
                return []
            if final:
                _drop(self.stats, "filtered", self._n_held)
                self._held.clear()
                self._n_held = 0
                return []
            limit = time.monotonic() - self.hold_seconds
            while self._held:
                tid, (since, items) = next(iter(self._held.items()))
                if since > limit:
                    break
                del self._held[tid]
                self._n_held -= len(items)
                _drop(self.stats, "filtered", len(items))
        return []
