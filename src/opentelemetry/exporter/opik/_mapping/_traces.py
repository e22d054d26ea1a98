"""Per-trace facts remembered across export batches, in bounded memory.

Spans of one trace arrive in several batches (children end, and are exported,
before their root). What the trace row needs from other spans (the id
timestamp, the thread, the first token time) is kept here: a bounded LRU with
idle expiry, like Opik's own Redis map for its OTel endpoint.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Optional, Set, Tuple

#: characters of remembered question/answer texts over all traces (~2 bytes each at most in
#: CPython for non-Latin text); past it the least recently seen traces are forgotten first
MAX_TEXT_CHARS = 8 * 1024 * 1024
#: span ids remembered per trace for the count-once rule (the ancestors of LLM calls)
MAX_COUNTED_BELOW = 1024


class TraceInfo:
    __slots__ = ("start_ms", "thread_id", "first_token_ns", "genai", "touched", "opik_id", "question", "answer",
                 "counted_below", "otel_trace_id")

    def __init__(self, start_ms: int, now: float) -> None:
        self.start_ms = start_ms
        #: the trace's Opik UUIDv7 (fixed by ``start_ms``), computed once for all its spans
        self.opik_id: Optional[str] = None
        #: the OTel trace id in hex, for every span's ``metadata.otel.trace_id``
        self.otel_trace_id: Optional[str] = None
        self.thread_id: Optional[str] = None
        self.first_token_ns: Optional[int] = None
        self.genai = False
        #: ``(start ns, text)`` of the trace's first LLM call's question and
        #: ``(end ns, text)`` of its last answer, until the trace row is written
        self.question: Optional[Tuple[int, str]] = None
        self.answer: Optional[Tuple[int, str]] = None
        #: OTel span ids of spans with an LLM descendant whose usage counts (children are mapped
        #: before their parents): such a span's own usage and cost only repeat it (at most
        #: ``MAX_COUNTED_BELOW`` ids per trace)
        self.counted_below: Optional[Set[int]] = None
        self.touched = now

    def text_size(self) -> int:
        return (len(self.question[1]) if self.question else 0) + (len(self.answer[1]) if self.answer else 0)


class TraceCache:
    """LRU of OTel trace id -> :class:`TraceInfo`; at most ``max_entries``, idle ``ttl_s``."""

    def __init__(self, max_entries: int = 100_000, ttl_s: float = 3 * 3600, max_text_chars: int = MAX_TEXT_CHARS) -> None:
        self._max = max_entries
        self._ttl = ttl_s
        self._max_text = max_text_chars
        self._text = 0
        self._data: "OrderedDict[int, TraceInfo]" = OrderedDict()
        self.lock = threading.Lock()

    def get(self, trace_id: int, candidate_start_ms: int) -> TraceInfo:
        """The trace's info; first sight remembers ``candidate_start_ms`` as its start.

        Call with :attr:`lock` held.
        """
        now = time.monotonic()
        data = self._data
        info = data.get(trace_id)
        if info is not None and now - info.touched <= self._ttl:
            info.touched = now
            data.move_to_end(trace_id)
            return info
        if info is not None:  # expired
            self._text -= info.text_size()
        info = TraceInfo(candidate_start_ms, now)
        data[trace_id] = info
        data.move_to_end(trace_id)
        self._evict()
        return info

    def peek(self, trace_id: int) -> Optional[TraceInfo]:
        """The trace's info if it is known and fresh; nothing is recorded. Lock held."""
        info = self._data.get(trace_id)
        return info if info is not None and time.monotonic() - info.touched <= self._ttl else None

    def remember(self, info: TraceInfo, question: Optional[Tuple[int, str]] = None,
                 answer: Optional[Tuple[int, str]] = None) -> None:
        """Set the trace's question and/or answer, within the cache's text budget. Lock held."""
        before = info.text_size()
        if question is not None:
            info.question = question
        if answer is not None:
            info.answer = answer
        self._text += info.text_size() - before
        self._evict()

    def _evict(self) -> None:
        data = self._data
        while len(data) > 1 and (len(data) > self._max or self._text > self._max_text):
            _, old = data.popitem(last=False)
            self._text -= old.text_size()

    @property
    def text_chars(self) -> int:
        return self._text

    def __len__(self) -> int:
        return len(self._data)

    def clear(self) -> None:
        with self.lock:
            self._data.clear()
            self._text = 0
