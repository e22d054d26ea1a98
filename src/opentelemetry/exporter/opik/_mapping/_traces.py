"""Per-trace facts remembered across export batches, in bounded memory.

Spans of one trace arrive in several batches (children end, and are exported,
before their root). What the trace row needs from other spans (the id
timestamp, the thread, the first token time, the first question and last
answer) is kept here: a bounded LRU with idle expiry, like Opik's own Redis
map for its OTel endpoint.

Each entry is kept small (about 0.3 KB plus the texts): what is cheap to
recompute per batch (the trace's Opik id, its OTel id in hex) is not kept, and
the count-once ancestors are one int until a trace has two.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Optional, Set, Union

#: characters of remembered question/answer texts over all traces (~2 bytes each at most in
#: CPython for non-Latin text); past it the least recently seen traces are forgotten first
MAX_TEXT_CHARS = 8 * 1024 * 1024
#: span ids remembered per trace for the count-once rule (the ancestors of LLM calls)
MAX_COUNTED_BELOW = 1024


class TraceInfo:
    __slots__ = ("start_ms", "thread_id", "first_token_ns", "touched", "question_ns", "question", "answer_ns",
                 "answer", "below")

    def __init__(self, start_ms: int, now: float) -> None:
        #: the trace's start (ms): the timestamp of every Opik id of the trace
        self.start_ms = start_ms
        self.thread_id: Optional[str] = None
        self.first_token_ns: Optional[int] = None
        #: start (ns) and text of the trace's first LLM call's question, end (ns) and text of
        #: its last answer: the trace row's text when the root span has none of its own
        self.question_ns = 0
        self.question: Optional[str] = None
        self.answer_ns = 0
        self.answer: Optional[str] = None
        #: OTel span ids of spans with an LLM descendant whose usage counts (children are mapped
        #: before their parents): such a span's own usage and cost only repeat it. One id (the usual
        #: agent root) is the int itself; more are a set of at most ``MAX_COUNTED_BELOW``
        self.below: Union[None, int, Set[int]] = None
        self.touched = now

    def counted_below(self, span_id: int) -> bool:
        """Whether ``span_id`` has an LLM descendant whose usage counts."""
        below = self.below
        if below is None:
            return False
        if type(below) is int:
            return below == span_id
        return span_id in below  # type: ignore[operator]

    def count_below(self, span_id: int) -> None:
        """Remember that ``span_id`` has such a descendant (bounded per trace)."""
        below = self.below
        if below is None:
            self.below = span_id
        elif type(below) is int:
            if below != span_id:
                self.below = {below, span_id}
        elif len(below) < MAX_COUNTED_BELOW:  # type: ignore[arg-type]
            below.add(span_id)  # type: ignore[union-attr]

    def text_size(self) -> int:
        q, a = self.question, self.answer
        return (len(q) if q is not None else 0) + (len(a) if a is not None else 0)


class TraceCache:
    """LRU of OTel trace id -> :class:`TraceInfo`; at most ``max_entries``, idle ``ttl_s``."""

    def __init__(self, max_entries: int = 100_000, ttl_s: float = 3 * 3600, max_text_chars: int = MAX_TEXT_CHARS) -> None:
        self._max = max_entries
        self._ttl = ttl_s
        self._max_text = max_text_chars
        self._text = 0
        self._data: "OrderedDict[int, TraceInfo]" = OrderedDict()
        self.lock = threading.Lock()

    def get(self, trace_id: int, candidate_start_ms: int, now: Optional[float] = None) -> TraceInfo:
        """The trace's info; first sight remembers ``candidate_start_ms`` as its start.

        ``now`` (``time.monotonic()``) may be the time of the whole batch: its
        traces then share one float. Call with :attr:`lock` held.
        """
        if now is None:
            now = time.monotonic()
        data = self._data
        info = data.get(trace_id)
        if info is not None:
            if now - info.touched <= self._ttl:
                info.touched = now
                data.move_to_end(trace_id)
                return info
            self._text -= info.text_size()  # expired: its successor goes to the end, as a new key does
            del data[trace_id]
        info = data[trace_id] = TraceInfo(candidate_start_ms, now)
        if len(data) > self._max:
            self._evict()
        return info

    def peek(self, trace_id: int) -> Optional[TraceInfo]:
        """The trace's info if it is known and fresh; nothing is recorded. Lock held."""
        info = self._data.get(trace_id)
        return info if info is not None and time.monotonic() - info.touched <= self._ttl else None

    def remember(self, info: TraceInfo, question: Optional[str], question_ns: int,
                 answer: Optional[str], answer_ns: int) -> None:
        """Set the trace's question and/or answer (``None``: keep it), within the cache's text budget. Lock held.

        Only the text can be over its bound here: :meth:`get` keeps the entries within theirs.
        """
        grown = 0
        if question is not None:
            old = info.question
            grown = len(question) - (len(old) if old is not None else 0)
            info.question = question
            info.question_ns = question_ns
        if answer is not None:
            old = info.answer
            grown += len(answer) - (len(old) if old is not None else 0)
            info.answer = answer
            info.answer_ns = answer_ns
        self._text += grown
        if self._text > self._max_text:
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
