"""GenAI content that travels in OTel log records, joined to its span (one join per process).

Instrumentations such as openai-v2 (``EVENT_ONLY`` and its legacy event mode)
and Traceloop (``use_attributes=False``) put the messages of an LLM call in log
records, not on the span. A GenAI log record becomes a span *event* of the same
name (its attributes plus the keys of its body), appended to its span's
:class:`SpanRecord` before mapping, so the convention readers read it exactly
like the same event sent on the span, and privacy (capture off, scrubbing, the
mask hook, size caps) applies to it exactly as to attributes.

The span exporter and the log exporter export on their own schedules; whichever
half arrives first waits here:

* a log record whose span has not come yet waits (bounded: ``MAX_PENDING_RECORDS``
  records and ``MAX_PENDING_BYTES`` of their encoded size, at most
  ``pending_seconds``); when it expires or is pushed out it is counted as dropped
  (``log_span_never_came`` / ``log_join_full``);
* an LLM span that has no content and comes from an instrumentation known to log
  it is held for ``window`` seconds (``OTEL_EXPORTER_OPIK_LOG_JOIN_WINDOW``), only
  while a log exporter is running; it is released as soon as a log batch brings it
  content, or when the window ends with whatever arrived;
* content that arrives after its span was sent makes its exporter send the
  *complete* span again (same ids, a newer ``last_updated_at``: Opik upserts by id),
  so LLM spans are kept after sending (LRU, ``MAX_KEPT_SPANS`` / ``MAX_KEPT_BYTES``,
  ``KEPT_SECONDS``).

Content a span already carries in its attributes (``SPAN_AND_EVENT``) is not
added again (counted ``log_records_redundant``). ``gen_ai.evaluation.result``
records are joined to the span whose ``gen_ai.response.id`` they name, else to
their own span; the reader makes them feedback scores. Other log records are
counted (``log_records_ignored``) and never sent.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Any, Dict, List, Mapping, Optional, Protocol, Sequence, Tuple

from ._json import dumps
from ._record import EventRecord, SpanRecord
from ._stats import Stats

_logger = logging.getLogger("opentelemetry.exporter.opik")

EV_DETAILS = "gen_ai.client.inference.operation.details"
EV_EVALUATION = "gen_ai.evaluation.result"
EV_PROMPT = "gen_ai.content.prompt"
EV_COMPLETION = "gen_ai.content.completion"
#: log record event names that carry the content of an LLM call
CONTENT_EVENTS = frozenset(
    (
        EV_DETAILS,
        "gen_ai.system.message",
        "gen_ai.user.message",
        "gen_ai.assistant.message",
        "gen_ai.tool.message",
        "gen_ai.choice",
        EV_PROMPT,
        EV_COMPLETION,
    )
)
GENAI_EVENTS = CONTENT_EVENTS | {EV_EVALUATION}

DEFAULT_WINDOW = 2.0
MAX_PENDING_RECORDS = 20_000
MAX_PENDING_BYTES = 16 * 1024 * 1024
MAX_HELD_SPANS = 10_000
MAX_KEPT_SPANS = 4_096
MAX_KEPT_BYTES = 32 * 1024 * 1024
KEPT_SECONDS = 300.0
MAX_SEEN = 65_536
MAX_RESPONSE_IDS = 16_384
#: content records emitted outside any span context (Traceloop 0.62.4's streamed ``gen_ai.choice``)
#: join the one LLM span that ended within this many ns after them, if exactly one did
ORPHAN_WINDOW_NS = 10_000_000
MAX_ORPHANS = 1_000

_LLM_OPS = frozenset(("chat", "text_completion", "generate_content", "completion", "generate", "text_generation"))
#: span attributes that mean the span carries its own messages
_CONTENT_KEYS = (
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.prompt.0.content",
    "gen_ai.prompt.0.role",
    "gen_ai.completion.0.content",
    "gen_ai.completion.0.role",
    "gen_ai.prompt",
    "gen_ai.completion",
    "input.value",
    "llm.input_messages.0.message.role",
)
_CONTENT_KEY_SET = frozenset(_CONTENT_KEYS)
#: instrumentation scopes known to put content in log records
_LOGGING_SCOPES = ("opentelemetry.instrumentation.", "opentelemetry.util.genai")

Key = Tuple[int, int]


class Owner(Protocol):
    """What sent a span (an exporter, the sidecar): maps and queues joined records."""

    def deliver_joined(self, records: List[SpanRecord], resend: bool) -> None: ...


def _is_llm(rec: SpanRecord) -> bool:
    a = rec.attributes
    op = a.get("gen_ai.operation.name")
    if op is not None:
        return op in _LLM_OPS
    return a.get("llm.request.type") in ("chat", "completion") or a.get("openinference.span.kind") == "LLM"


def _own_content(rec: SpanRecord) -> bool:
    if not rec.attributes.keys().isdisjoint(_CONTENT_KEY_SET):  # one C-level check, not ten lookups
        return True
    return any(e.name in CONTENT_EVENTS for e in rec.events)


def _awaits_logs(rec: SpanRecord) -> bool:
    return rec.scope_name.startswith(_LOGGING_SCOPES) and _is_llm(rec) and not _own_content(rec)


_OUTPUT_EVENTS = frozenset(("gen_ai.choice", EV_COMPLETION))
_OUTPUT_KEYS = ("gen_ai.output.messages", "gen_ai.completion.0.content", "gen_ai.completion.0.role", "gen_ai.completion")


def _orphan_host(rec: SpanRecord) -> bool:
    """A span a span-less answer record may belong to: an LLM span of an instrumentation, without an answer."""
    if not rec.scope_name.startswith("opentelemetry.instrumentation.") or not _is_llm(rec):
        return False
    if any(k in rec.attributes for k in _OUTPUT_KEYS):
        return False
    return not any(e.name in _OUTPUT_EVENTS for e in rec.events)


def _within(rec: SpanRecord, t: int) -> bool:
    """``t`` falls inside the span, in its last ``ORPHAN_WINDOW_NS``."""
    return max(rec.start_ns, rec.end_ns - ORPHAN_WINDOW_NS) <= t <= rec.end_ns


def _answerless(h: "_Held") -> bool:
    return not any(e.name in _OUTPUT_EVENTS for e in h.events)


def event_name(name: Optional[str], attributes: Mapping[str, Any]) -> Optional[str]:
    """A log record's event name: its ``event_name`` field, else its ``event.name`` attribute."""
    if name:
        return name
    v = attributes.get("event.name")
    return v if isinstance(v, str) and v else None


def to_event(name: str, time_ns: int, attributes: Mapping[str, Any], body: Any) -> EventRecord:
    """A GenAI log record as the span event of the same name: its attributes plus its body's keys.

    The body of a legacy event (``{"content", "role", "tool_calls"}``, ``{"index",
    "finish_reason", "message"}``) becomes the keys the same event carries on a
    span; a string body is the message ``content`` (``gen_ai.prompt`` /
    ``gen_ai.completion`` for the ``gen_ai.content.*`` events).
    """
    attrs: Dict[str, Any] = dict(attributes)
    attrs.pop("event.name", None)
    if isinstance(body, Mapping):
        for k, v in body.items():
            attrs.setdefault(str(k), v)
    elif body is not None and body != "":
        key = "gen_ai.prompt" if name == EV_PROMPT else "gen_ai.completion" if name == EV_COMPLETION else "content"
        attrs.setdefault(key, body)
    return EventRecord(name, time_ns, attrs)


def _size(obj: Any) -> int:
    try:
        return len(dumps(obj))
    except Exception:  # noqa: BLE001 - an estimate only
        return 1024


def _with_events(rec: SpanRecord, events: Sequence[EventRecord]) -> SpanRecord:
    """A copy of ``rec`` with ``events`` after its own (records are never mutated)."""
    out = SpanRecord.__new__(SpanRecord)
    for slot in SpanRecord.__slots__:
        setattr(out, slot, getattr(rec, slot))
    out.events = tuple(rec.events) + tuple(events)
    return out


class _Pending:
    __slots__ = ("events", "bytes", "deadline")

    def __init__(self, deadline: float) -> None:
        self.events: List[EventRecord] = []
        self.bytes = 0
        self.deadline = deadline


class _Held:
    __slots__ = ("record", "owner", "events", "deadline", "ready")

    def __init__(self, record: SpanRecord, owner: Owner, deadline: float) -> None:
        self.record = record
        self.owner = owner
        self.events: List[EventRecord] = []
        self.deadline = deadline
        self.ready = False


class _Kept:
    __slots__ = ("record", "owner", "own_content", "bytes", "expires")

    def __init__(self, record: SpanRecord, owner: Owner, own_content: bool, n_bytes: int, expires: float) -> None:
        self.record = record
        self.owner = owner
        self.own_content = own_content
        self.bytes = n_bytes
        self.expires = expires


class LogJoin:
    """The join state: log records waiting for spans, spans waiting for logs, spans kept after sending."""

    def __init__(
        self,
        window: float = DEFAULT_WINDOW,
        stats: Optional[Stats] = None,
        *,
        max_pending_records: int = MAX_PENDING_RECORDS,
        max_pending_bytes: int = MAX_PENDING_BYTES,
        pending_seconds: Optional[float] = None,
        keep_always: bool = False,
    ) -> None:
        self.window = window
        self.stats = stats or Stats()
        self.max_pending_records = max_pending_records
        self.max_pending_bytes = max_pending_bytes
        #: a log record waits this long for its span (the span processor may export seconds later)
        self.pending_seconds = pending_seconds if pending_seconds is not None else max(30.0, 10 * window)
        #: keep sent LLM spans even with no log exporter running (the sidecar: logs may come any time)
        self.keep_always = keep_always
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._pending: "collections.OrderedDict[Key, _Pending]" = collections.OrderedDict()
        self._pending_records = 0
        self._pending_bytes = 0
        self._held: "collections.OrderedDict[Key, _Held]" = collections.OrderedDict()
        #: held spans per trace id, and the trace roots waiting for them: a root mapped after its LLM
        #: calls got their content gives its trace row the conversation's question and answer
        self._held_traces: Dict[int, int] = {}
        self._roots: Dict[int, List[_Held]] = {}
        self._kept: "collections.OrderedDict[Key, _Kept]" = collections.OrderedDict()
        self._kept_bytes = 0
        self._seen: "collections.OrderedDict[Key, None]" = collections.OrderedDict()
        self._responses: "collections.OrderedDict[str, Key]" = collections.OrderedDict()
        #: evaluations naming a ``gen_ai.response.id`` whose span has not come yet
        self._by_response: "collections.OrderedDict[str, List[EventRecord]]" = collections.OrderedDict()
        self._log_sources = 0
        self._thread: Optional[threading.Thread] = None
        #: (event, deadline) of content records that came without a span id
        self._orphans: "collections.deque[Tuple[EventRecord, float]]" = collections.deque()

    # -- who is listening ---------------------------------------------------------------
    def attach_logs(self) -> None:
        """A log exporter started: LLM spans without content wait for their logs from now on."""
        with self._lock:
            self._log_sources += 1

    def detach_logs(self) -> None:
        with self._lock:
            self._log_sources = max(0, self._log_sources - 1)

    @property
    def logs_active(self) -> bool:
        return self._log_sources > 0

    # -- the span half ------------------------------------------------------------------
    def spans(self, records: Sequence[SpanRecord], owner: Owner) -> List[SpanRecord]:
        """Join ``records`` with the log records that came first; returns those to map now (the rest are held)."""
        out: List[SpanRecord] = []
        now = time.monotonic()
        started = False
        with self._lock:
            if not self._pending and not self._orphans and not self._log_sources and not self.keep_always:
                return list(records)
            # children first: a root waits when a span of its trace waits
            ordered = [r for r in records if not r.is_local_root] + [r for r in records if r.is_local_root]
            for rec in ordered:
                key = (rec.trace_id, rec.span_id)
                pend = self._pending.pop(key, None)
                events: List[EventRecord] = []
                if pend is not None:
                    self._pending_records -= len(pend.events)
                    self._pending_bytes -= pend.bytes
                    events = pend.events
                llm = _is_llm(rec)
                own = bool(events or llm) and _own_content(rec)  # only these two cases read it
                if own and events:
                    events = self._without_content(events)
                if events:
                    rec = _with_events(rec, events)
                    self.stats.add("log_records_joined", len(events))
                rid = rec.attributes.get("gen_ai.response.id")
                if isinstance(rid, str) and rid:
                    self._responses[rid] = key
                    self._responses.move_to_end(rid)
                    while len(self._responses) > MAX_RESPONSE_IDS:
                        self._responses.popitem(last=False)
                    scored = self._by_response.pop(rid, None)
                    if scored:
                        rec = _with_events(rec, scored)
                        events = events + scored
                        self.stats.add("log_records_joined", len(scored))
                if (
                    not events
                    and self._log_sources
                    and len(self._held) < MAX_HELD_SPANS
                    and _awaits_logs(rec)
                ):
                    self._held[key] = _Held(rec, owner, now + self.window)
                    self._held_traces[rec.trace_id] = self._held_traces.get(rec.trace_id, 0) + 1
                    self.stats.add("spans_held_for_logs")
                    started = True
                    continue
                # kept for a late re-send; before any log source, only spans that may still get content
                if llm and (self._log_sources or (self.keep_always and not own)):
                    self._keep(key, rec, owner, own, now)
                else:
                    self._see(key)
                if rec.is_local_root and self._held_traces.get(rec.trace_id):
                    self._roots.setdefault(rec.trace_id, []).append(_Held(rec, owner, now + self.window + 1.0))
                    continue
                out.append(rec)
            if self._orphans:
                self._adopt_orphans(out, owner, now)
            if started:
                self._ensure_thread()
                self._wake.notify_all()
        return out

    def _adopt_orphans(self, out: List[SpanRecord], owner: Owner, now: float) -> None:
        """Give a span-less answer record to the one span of this batch (or held) that ended right after it."""
        cands: List[Tuple[int, SpanRecord]] = [(i, r) for i, r in enumerate(out) if _orphan_host(r)]
        cands += [(-1, h.record) for h in self._held.values() if _answerless(h) and _orphan_host(h.record)]
        if not cands:
            return
        kept_orphans: "collections.deque[Tuple[EventRecord, float]]" = collections.deque()
        for ev, deadline in self._orphans:
            hits = [(i, r) for i, r in cands if _within(r, ev.time_ns)]
            if len(hits) != 1:
                kept_orphans.append((ev, deadline))
                continue
            i, rec = hits[0]
            self.stats.add("log_records_joined_by_time")
            if i < 0:
                self._held[(rec.trace_id, rec.span_id)].events.append(ev)
            else:
                out[i] = _with_events(rec, (ev,))
                kept = self._kept.get((rec.trace_id, rec.span_id))
                if kept is not None:
                    kept.record = out[i]
            cands = [c for c in cands if c[1] is not rec]  # one answer per span
        self._orphans = kept_orphans

    def _orphan(self, ev: EventRecord, now: float) -> Optional[Tuple[Optional[_Held], Optional[_Kept]]]:
        """A span-less content record: joined to the one held or kept span that ended right after it, else waits."""
        if ev.name not in CONTENT_EVENTS or not ev.time_ns:
            self.stats.drop("log_record_without_span")
            return None
        t = ev.time_ns
        fits = [
            h
            for h in self._held.values()
            if _answerless(h) and _orphan_host(h.record) and _within(h.record, t)
        ]
        kept = [
            k
            for k in self._kept.values()
            if not k.own_content and _orphan_host(k.record) and _within(k.record, t)
        ]
        if len(fits) + len(kept) > 1:
            self.stats.drop("log_record_without_span")
            return None
        if fits:
            fits[0].events.append(ev)
            self.stats.add("log_records_joined_by_time")
            return fits[0], None
        if kept:
            k = kept[0]
            k.record = _with_events(k.record, (ev,))
            self.stats.add("log_records_joined_by_time")
            return None, k
        self._orphans.append((ev, now + min(self.pending_seconds, 60.0)))
        while len(self._orphans) > MAX_ORPHANS:
            self._orphans.popleft()
            self.stats.drop("log_record_without_span")
        return None

    def _without_content(self, events: List[EventRecord]) -> List[EventRecord]:
        kept = [e for e in events if e.name not in CONTENT_EVENTS]
        if len(kept) != len(events):
            self.stats.add("log_records_redundant", len(events) - len(kept))
        return kept

    def _keep(self, key: Key, rec: SpanRecord, owner: Owner, own: bool, now: float) -> None:
        old = self._kept.pop(key, None)
        if old is not None:
            self._kept_bytes -= old.bytes
        n = _size(rec.attributes) + sum(_size(e.attributes) for e in rec.events) + 256
        self._kept[key] = _Kept(rec, owner, own, n, now + KEPT_SECONDS)
        self._kept_bytes += n
        while self._kept and (len(self._kept) > MAX_KEPT_SPANS or self._kept_bytes > MAX_KEPT_BYTES):
            k, gone = self._kept.popitem(last=False)
            self._kept_bytes -= gone.bytes
            self._see(k)

    def _see(self, key: Key) -> None:
        self._seen[key] = None
        if len(self._seen) > MAX_SEEN:
            self._seen.popitem(last=False)

    # -- the log half -------------------------------------------------------------------
    def logs(self, records: Sequence[Tuple[int, int, Optional[str], int, Mapping[str, Any], Any]]) -> int:
        """Join log records ``(trace_id, span_id, event_name, time_ns, attributes, body)``; returns how many were GenAI.

        Spans that were waiting and got content are released now; spans already sent
        are sent again, complete.
        """
        release: List[_Held] = []
        resend: List[_Kept] = []
        genai = 0
        ignored = 0
        now = time.monotonic()
        with self._lock:
            for trace_id, span_id, name, time_ns, attributes, body in records:
                name = event_name(name, attributes)
                if name not in GENAI_EVENTS:
                    ignored += 1
                    continue
                genai += 1
                ev = to_event(name, time_ns, attributes, body)
                key = (trace_id, span_id)
                if name == EV_EVALUATION:
                    rid = ev.attributes.get("gen_ai.response.id")
                    if isinstance(rid, str) and rid:
                        if rid in self._responses:
                            key = self._responses[rid]
                        elif not key[1] or key not in self._kept:
                            # the span that answered it may still come
                            self._by_response.setdefault(rid, []).append(ev)
                            while len(self._by_response) > MAX_RESPONSE_IDS:
                                _, gone = self._by_response.popitem(last=False)
                                self.stats.drop("log_span_never_came", len(gone))
                            continue
                if not key[1]:
                    joined = self._orphan(ev, now)
                    if joined is not None:
                        h_or_none, k_or_none = joined
                        if h_or_none is not None and not h_or_none.ready:
                            h_or_none.ready = True
                            release.append(h_or_none)
                        if k_or_none is not None and k_or_none not in resend:
                            resend.append(k_or_none)
                    continue
                held = self._held.get(key)
                if held is not None:
                    held.events.append(ev)
                    if not held.ready:
                        held.ready = True
                        release.append(held)
                    continue
                kept = self._kept.get(key)
                if kept is not None:
                    if kept.own_content and name in CONTENT_EVENTS:
                        self.stats.add("log_records_redundant")
                        continue
                    kept.record = _with_events(kept.record, (ev,))
                    kept.bytes += _size(ev.attributes)
                    self._kept_bytes += _size(ev.attributes)
                    self._kept.move_to_end(key)
                    if kept not in resend:
                        resend.append(kept)
                    continue
                if key in self._seen:
                    if name in CONTENT_EVENTS:
                        self.stats.add("log_records_redundant")
                    else:
                        self.stats.drop("log_span_already_sent")
                    continue
                self._add_pending(key, ev, now)
            for h in release:
                self._unhold(h)
            if self._pending:
                self._ensure_thread()
                self._wake.notify_all()
        if ignored:
            self.stats.add("log_records_ignored", ignored)
        if genai:
            self.stats.add("log_records_received", genai)
        self._release(release, now)
        for k in resend:
            self.stats.add("spans_resent_with_logs")
            self._deliver(k.owner, [k.record], True)
        return genai

    def _add_pending(self, key: Key, ev: EventRecord, now: float) -> None:
        pend = self._pending.get(key)
        if pend is None:
            pend = self._pending[key] = _Pending(now + self.pending_seconds)
        n = _size(ev.attributes) + 64
        pend.events.append(ev)
        pend.bytes += n
        self._pending_records += 1
        self._pending_bytes += n
        while self._pending and (
            self._pending_records > self.max_pending_records or self._pending_bytes > self.max_pending_bytes
        ):
            _, gone = self._pending.popitem(last=False)
            self._pending_records -= len(gone.events)
            self._pending_bytes -= gone.bytes
            self.stats.drop("log_join_full", len(gone.events))

    # -- releasing ----------------------------------------------------------------------
    def _unhold(self, h: _Held) -> None:
        """Take ``h`` out of the held spans (call with the lock held)."""
        rec = h.record
        if self._held.pop((rec.trace_id, rec.span_id), None) is not None:
            left = self._held_traces.get(rec.trace_id, 1) - 1
            if left > 0:
                self._held_traces[rec.trace_id] = left
            else:
                self._held_traces.pop(rec.trace_id, None)

    def _release(self, held: List[_Held], now: float, roots: Sequence[_Held] = ()) -> None:
        by_owner: Dict[int, Tuple[Owner, List[SpanRecord]]] = {}
        with self._lock:
            for h in held:
                rec = _with_events(h.record, h.events) if h.events else h.record
                if h.events:
                    self.stats.add("log_records_joined", len(h.events))
                key = (rec.trace_id, rec.span_id)
                self._keep(key, rec, h.owner, False, now)
                by_owner.setdefault(id(h.owner), (h.owner, []))[1].append(rec)
            waiting = list(roots)
            for tid in {h.record.trace_id for h in held}:
                if not self._held_traces.get(tid):
                    waiting.extend(self._roots.pop(tid, ()))
            for r in waiting:  # after their trace's spans: the mapper sees the conversation first
                by_owner.setdefault(id(r.owner), (r.owner, []))[1].append(r.record)
        for owner, recs in by_owner.values():
            self._deliver(owner, recs, False)

    def _deliver(self, owner: Owner, records: List[SpanRecord], resend: bool) -> None:
        try:
            owner.deliver_joined(records, resend)
        except Exception as exc:  # noqa: BLE001 - a failing owner never stops the join
            self.stats.drop("log_join_delivery_failed", len(records))
            _logger.warning("could not deliver %d spans joined with their logs: %s", len(records), type(exc).__name__)

    def release_owner(self, owner: Optional[Owner] = None) -> int:
        """Send now the spans ``owner`` (every owner when None) holds, with what arrived; at flush and shutdown."""
        with self._lock:
            held = [h for h in self._held.values() if owner is None or h.owner is owner]
            for h in held:
                self._unhold(h)
            roots: List[_Held] = []
            for tid in list(self._roots):
                mine = [r for r in self._roots[tid] if owner is None or r.owner is owner]
                if mine and not self._held_traces.get(tid):
                    roots.extend(mine)
                    rest = [r for r in self._roots[tid] if r not in mine]
                    if rest:
                        self._roots[tid] = rest
                    else:
                        del self._roots[tid]
        self._release(held, time.monotonic(), roots)
        return len(held)

    def forget_owner(self, owner: Owner) -> None:
        """An owner shut down: its kept spans can no longer be sent again."""
        with self._lock:
            for key in [k for k, v in self._kept.items() if v.owner is owner]:
                gone = self._kept.pop(key)
                self._kept_bytes -= gone.bytes
                self._see(key)

    def tick(self, now: Optional[float] = None) -> None:
        """Release spans whose window ended, expire log records and kept spans (the join's thread calls it).

        ``now`` is a ``time.monotonic()`` value (tests pass a later one).
        """
        if now is None:
            now = time.monotonic()
        due: List[_Held] = []
        late_roots: List[_Held] = []
        with self._lock:
            for h in list(self._held.values()):
                if h.deadline <= now:
                    due.append(h)
                    self._unhold(h)
            for tid in list(self._roots):  # a root never waits longer than its window (and a second)
                if any(r.deadline <= now for r in self._roots[tid]):
                    late_roots.extend(self._roots.pop(tid))
            expired = 0
            while self._pending:
                key, pend = next(iter(self._pending.items()))
                if pend.deadline > now:
                    break
                self._pending.popitem(last=False)
                self._pending_records -= len(pend.events)
                self._pending_bytes -= pend.bytes
                expired += len(pend.events)
            if expired:
                self.stats.drop("log_span_never_came", expired)
            while self._orphans and self._orphans[0][1] <= now:
                self._orphans.popleft()
                self.stats.drop("log_record_without_span")
            while self._kept:
                key, kept = next(iter(self._kept.items()))
                if kept.expires > now:
                    break
                self._kept.popitem(last=False)
                self._kept_bytes -= kept.bytes
                self._see(key)
        if due:
            self.stats.add("spans_released_without_logs", sum(1 for h in due if not h.events))
        if due or late_roots:
            self._release(due, now, late_roots)

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._loop, name="opik-log-join", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while True:
            with self._lock:
                deadlines = [h.deadline for h in self._held.values()]
                deadlines.extend(r.deadline for rs in self._roots.values() for r in rs)
                if self._pending:
                    deadlines.append(next(iter(self._pending.values())).deadline)
                if self._orphans:
                    deadlines.append(self._orphans[0][1])
                if not deadlines and not self._kept:
                    self._thread = None
                    return
                wait = (min(deadlines) - time.monotonic()) if deadlines else 30.0
                if wait > 0:
                    self._wake.wait(min(wait, 30.0))
            self.tick()

    # -- introspection ------------------------------------------------------------------
    def sizes(self) -> Dict[str, int]:
        with self._lock:
            return {
                "pending_records": self._pending_records,
                "pending_bytes": self._pending_bytes,
                "held_spans": len(self._held),
                "held_roots": sum(len(r) for r in self._roots.values()),
                "kept_spans": len(self._kept),
                "kept_bytes": self._kept_bytes,
                "seen": len(self._seen),
            }


_JOIN: Optional[LogJoin] = None
_JOIN_LOCK = threading.Lock()


def get_join(window: Optional[float] = None) -> LogJoin:
    """The process's join (created on first use; ``window`` from the first exporter that asks)."""
    global _JOIN
    with _JOIN_LOCK:
        if _JOIN is None:
            _JOIN = LogJoin(window if window is not None else DEFAULT_WINDOW)
        return _JOIN


def peek_join() -> Optional[LogJoin]:
    return _JOIN


__all__ = ["CONTENT_EVENTS", "GENAI_EVENTS", "LogJoin", "Owner", "event_name", "get_join", "to_event"]
