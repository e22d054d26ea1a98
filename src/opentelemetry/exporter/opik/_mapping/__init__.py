"""OTel span records -> Opik trace/span/feedback-score dicts.

Convention readers (one small module per instrumentation family) fill a
:class:`MappedSpan`; this module assigns ids, builds the trace row for each
local root, puts every unmapped attribute into metadata, and never lets one
bad span sink the batch: a span that fails to map is counted and reported.
"""

from __future__ import annotations

import logging
import operator
import time
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Set, Tuple

from .._config import OpikSettings
from .._errors import where
from .._ids import opik_ids
from .._items import Label, label_text
from .._json import parse_json_like
from .._record import SPAN_KIND_NAMES, STATUS_UNSET, SpanRecord
from . import core, messages
from ._model import MappedSpan
from ._prompts import PROMPT_INFO, PromptLinker
from ._time import iso_ns, iso_span
from ._traces import TraceCache, TraceInfo

_logger = logging.getLogger("opentelemetry.exporter.opik")

Reader = Callable[[MappedSpan], None]


def _default_readers() -> Tuple[Reader, ...]:
    from . import conventions

    # the family index runs only the readers of the families a span carries a sign of
    return (conventions.read, core.read)


#: (OTel span id -> (trace start ms, Opik id, OTel id in hex)) of one batch: a parent's ids are
#: asked by each child and by the parent itself, a SHA-256 each time otherwise
_SpanIds = Dict[int, Tuple[int, str, str]]
#: (OTel trace id -> (trace start ms, Opik id, OTel id in hex)) of one batch
_TraceIds = Dict[int, Tuple[int, str, str]]


def _span_ids(memo: _SpanIds, otel_span_id: int, start_ms: int) -> Tuple[int, str, str]:
    hit = memo.get(otel_span_id)
    if hit is None or hit[0] != start_ms:
        hit = memo[otel_span_id] = opik_ids(otel_span_id, 8, start_ms)
    return hit


def _trace_ids(memo: _TraceIds, otel_trace_id: int, start_ms: int) -> Tuple[int, str, str]:
    """Formatted once per trace and batch (not kept in the trace cache: 170 bytes a trace)."""
    hit = memo.get(otel_trace_id)
    if hit is None or hit[0] != start_ms:
        hit = memo[otel_trace_id] = opik_ids(otel_trace_id, 16, start_ms)
    return hit


_TEXT_CAP = 32_768
_by_end = operator.attrgetter("end_ns")


def _order(records: Iterable[SpanRecord]) -> Tuple[Dict[int, int], List[SpanRecord]]:
    """The batch's earliest start per trace (the id timestamp when the trace is new) and its mapping order.

    Children first, so a root in the same batch sees their thread and first token, and
    a parent its LLM descendants' usage (children end first: by end time otherwise).
    """
    batch_start: Dict[int, int] = {}
    roots: List[SpanRecord] = []
    others: List[SpanRecord] = []
    for r in records:
        ms = r.trace_start_hint_ms or r.start_ns // 1_000_000
        prev = batch_start.get(r.trace_id)
        if prev is None or ms < prev:
            batch_start[r.trace_id] = ms
        if not r.parent_span_id or r.parent_is_remote:  # SpanRecord.is_local_root
            roots.append(r)
        else:
            others.append(r)
    others.sort(key=_by_end)
    others += roots
    return batch_start, others


#: whether a span's own input reads as a question and its output as an answer (``messages.question``/``answer``)
_Reads = Tuple[bool, bool]


def _note_conversation(cache: TraceCache, info: TraceInfo, out: MappedSpan) -> _Reads:
    """Remember the trace's first question and last answer, for a root span that has neither.

    They stay as long as the trace's other facts (a root span sent again gets the
    same trace row), within the cache's text budget. Call with the cache's lock held.
    Returns what the span's own input and output read as, for its trace row.
    """
    rec = out.record
    q = messages.question(out.input)
    a = messages.answer(out.output)
    reads = (q is not None, a is not None)
    if q and not (info.question is None or rec.start_ns < info.question_ns):
        q = None
    if a and not (info.answer is None or rec.end_ns >= info.answer_ns):
        a = None
    if q or a:
        cache.remember(info, q[:_TEXT_CAP] if q else None, rec.start_ns, a[:_TEXT_CAP] if a else None, rec.end_ns)
    return reads


#: ``MappedSpan.scratch`` key a reader sets on an agent span that records no content of its own
#: (``conventions/_openai_agents.py``): it takes the text of the LLM calls that ran inside it
BORROW_CONVERSATION = "conversation_from_llm_calls"


def _count_once(info: TraceInfo, out: MappedSpan) -> None:
    """Usage and cost count once per model call: on the innermost LLM span that reports them.

    A span (of any type) with an LLM descendant whose usage counts only repeats
    that call's numbers (a framework's LLM span over the client library's, ADK's
    ``call_llm`` over ``generate_content``, an agent step): its own usage and cost
    go to ``metadata.aggregated_usage``/``aggregated_cost``, so Opik's trace total is
    the sum over the actual calls. Children end, and are mapped, before their
    parents; a descendant that arrives after its ancestor was sent cannot undo the
    ancestor's count. Call with the cache's lock held.
    """
    rec = out.record
    repeats = info.counted_below(rec.span_id)
    if repeats and not out.usage_is_aggregate and (out.usage or out.cost is not None):
        if out.usage:
            out.metadata.setdefault("aggregated_usage", dict(out.usage))
        if out.cost is not None:
            out.metadata.setdefault("aggregated_cost", out.cost)
            out.cost = None
        out.usage_is_aggregate = True
    counts = out.type == "llm" and bool(out.usage) and not out.usage_is_aggregate
    if rec.parent_span_id and (repeats or counts):
        info.count_below(rec.parent_span_id)


def _borrow_conversation(info: TraceInfo, out: MappedSpan) -> None:
    """The trace's first question and last answer so far, when they fall within the span's own time."""
    rec = out.record
    if out.input is None and info.question is not None and info.question_ns >= rec.start_ns:
        out.input = {"messages": [{"role": "user", "content": info.question}]}
    if out.output is None and info.answer is not None and info.answer_ns <= rec.end_ns:
        out.output = {"choices": [{"index": 0, "message": {"role": "assistant", "content": info.answer}}]}


def _readable_trace(trace: Dict[str, Any], info: TraceInfo, reads: Optional[_Reads]) -> None:
    """Give the trace row the text a person reads in the thread view.

    The root span's own input/output stay when they read as text (``reads``, when
    ``_note_conversation`` already asked); otherwise the trace's first LLM question
    and last LLM answer stand in for them.
    """
    if info.question is not None and not (reads[0] if reads is not None else messages.question(trace.get("input")) is not None):
        trace["input"] = {"messages": [{"role": "user", "content": info.question}]}
    if info.answer is not None and not (reads[1] if reads is not None else messages.answer(trace.get("output")) is not None):
        trace["output"] = {"choices": [{"index": 0, "message": {"role": "assistant", "content": info.answer}}]}


_KIND_NAMES = dict(enumerate(SPAN_KIND_NAMES))


def _otel(rec: SpanRecord, trace_hex: str, span_hex: str, parent_hex: Optional[str], used: Set[str]) -> Dict[str, Any]:
    """``metadata.otel``: the span's OTel identity, status, scope, resource and the events no reader consumed."""
    kind = rec.kind
    otel: Dict[str, Any] = {"trace_id": trace_hex, "span_id": span_hex, "span_kind": _KIND_NAMES.get(kind) or str(kind)}
    if parent_hex is not None:
        otel["parent_span_id"] = parent_hex
        if rec.parent_is_remote:
            otel["parent_is_remote"] = True
    if rec.status_code != STATUS_UNSET:
        otel["status"] = {"code": rec.status_name, "message": rec.status_message} if rec.status_message else {"code": rec.status_name}
    if rec.scope_name:
        otel["scope"] = {"name": rec.scope_name, "version": rec.scope_version} if rec.scope_version else {"name": rec.scope_name}
    if rec.resource:
        otel["resource"] = rec.resource
    if rec.events:
        events = [
            {"name": e.name, "time": iso_ns(e.time_ns), "attributes": e.attributes} if e.attributes else {"name": e.name, "time": iso_ns(e.time_ns)}
            for e in rec.events
            if e.name != "exception" and "event:" + e.name not in used
        ]
        if events:
            otel["events"] = events
    if rec.dropped_attributes or rec.dropped_events or rec.dropped_links:
        otel["dropped"] = {
            "attributes": rec.dropped_attributes,
            "events": rec.dropped_events,
            "links": rec.dropped_links,
        }
    return otel


def _leftovers(out: MappedSpan) -> Dict[str, Any]:
    """``out.metadata`` plus every attribute no reader consumed (JSON-looking strings parsed, empty ones left out)."""
    attrs = out.record.attributes
    md = out.metadata
    skip = out.used.union(md) if md else out.used  # a reader's metadata key wins over the attribute
    for k, v in attrs.items():
        if k in skip:
            continue
        if type(v) is str:
            if not v:
                continue
            if v[0] in "{[":
                v, _ = parse_json_like(v)
        elif isinstance(v, str):  # a str subclass: what it compares equal to decides
            if v == "":
                continue
            if v[:1] in ("{", "["):
                v, _ = parse_json_like(v)
        md[k] = v
    return md


class Mapped:
    """One Opik item: ``kind`` is ``trace``, ``span`` or ``span_score``."""

    __slots__ = ("kind", "data", "label_key", "mapped")

    def __init__(self, kind: str, data: Dict[str, Any], label: Label, mapped: MappedSpan) -> None:
        self.kind = kind
        self.data = data
        #: passed on to the encoded :class:`Item` as it is; formatted only for a log line
        self.label_key = label
        self.mapped = mapped

    @property
    def label(self) -> str:
        return label_text(self.label_key)


class MapResult:
    __slots__ = ("items", "rejected")

    def __init__(self) -> None:
        self.items: List[Mapped] = []
        #: ``(label, reason)`` of spans that could not be mapped
        self.rejected: List[Tuple[str, str]] = []


class Mapper:
    """Maps batches of :class:`SpanRecord`; thread-safe, shared by exporter and sidecar."""

    def __init__(
        self,
        settings: OpikSettings,
        readers: Optional[Sequence[Reader]] = None,
        cache: Optional[TraceCache] = None,
        prompts: Optional[PromptLinker] = None,
    ) -> None:
        self.settings = settings
        self.readers = tuple(readers) if readers is not None else _default_readers()
        self.cache = cache if cache is not None else TraceCache()
        #: links spans naming a prompt to Opik's (``metadata.opik_prompts``); lookups run in the background
        self.prompts = prompts
        self._reshape = settings.message_format == "opik"

    def read(self, record: SpanRecord) -> MappedSpan:
        out = MappedSpan(record)
        for reader in self.readers:
            reader(out)
        if self._reshape:
            messages.normalize(out)
        return out

    def map(self, records: Iterable[SpanRecord], default_project: Optional[str] = None) -> MapResult:
        result = MapResult()
        traces: List[Mapped] = []
        spans: List[Mapped] = []
        scores: List[Mapped] = []
        by_kind = {"trace": traces.append, "span": spans.append, "span_score": scores.append}
        for items in self.iter_map(records, default_project, result.rejected):
            for m in items:
                by_kind[m.kind](m)
        result.items = traces + spans + scores
        return result

    def iter_map(
        self,
        records: Iterable[SpanRecord],
        default_project: Optional[str] = None,
        rejected: Optional[List[Tuple[str, str]]] = None,
    ) -> Iterator[List[Mapped]]:
        """Map span by span: yields each span's items (its trace row, the span, its scores).

        A caller that encodes them before taking the next keeps one span's
        structures alive at a time: they die young, so the batch never feeds the
        cyclic GC (whose collections otherwise cost ~20% of mapping). Spans that
        cannot be mapped are appended to ``rejected`` as ``(label, reason)``.
        """
        batch_start, ordered = _order(records)
        span_memo: _SpanIds = {}
        trace_memo: _TraceIds = {}
        cache = self.cache
        lock = cache.lock
        now = time.monotonic()  # one touch time for the batch: its traces share the float
        for rec in ordered:
            try:
                out = self.read(rec)
                if self.prompts is not None and PROMPT_INFO in out.metadata:
                    self.prompts.link(out.metadata)  # a cache lookup; never waits for Opik
                root = not rec.parent_span_id or rec.parent_is_remote
                lock.acquire()
                try:
                    info = cache.get(rec.trace_id, batch_start[rec.trace_id], now)
                    reads = self._facts(info, out, root)
                finally:
                    lock.release()
                items = self._emit(out, info, default_project, root and not (out.opik_ids and "trace_id" in out.opik_ids),
                                   span_memo, trace_memo, reads)
            except Exception as exc:  # noqa: BLE001 - one bad span never sinks the batch
                # The exception's text may quote span content: report only its type and where.
                if rejected is not None:
                    rejected.append((rec.label(), where(exc)))
                continue
            yield items

    def _facts(self, info: TraceInfo, out: MappedSpan, root: bool) -> Optional[_Reads]:
        """What the span tells its trace, and what the trace's other spans tell it. Lock held.

        Returns what an LLM span's own input and output read as (``_note_conversation``), else None.
        """
        if out.thread_id is not None and (info.thread_id is None or root):
            info.thread_id = out.thread_id
        ft = out.first_token_ns
        if ft is not None and (info.first_token_ns is None or ft < info.first_token_ns):
            info.first_token_ns = ft
        if out.usage or info.below is not None:
            _count_once(info, out)
        if self._reshape:
            if out.type == "llm":
                return _note_conversation(self.cache, info, out)
            if out.scratch is not None and out.scratch.get(BORROW_CONVERSATION):
                _borrow_conversation(info, out)
        return None

    def _project(self, out: MappedSpan, default_project: Optional[str]) -> str:
        if out.project_name:
            return out.project_name
        rec = out.record
        v = rec.resource.get("opik.project_name")
        if isinstance(v, str) and v.strip():
            return v.strip()
        if default_project:
            return default_project
        if self.settings.project_from_service_name:
            svc = rec.resource.get("service.name")
            if isinstance(svc, str) and svc.strip() and not svc.startswith("unknown_service"):
                return svc.strip()
        return self.settings.project_name

    def _emit(
        self,
        out: MappedSpan,
        info: TraceInfo,
        default_project: Optional[str],
        trace_row: bool,
        span_memo: _SpanIds,
        trace_memo: _TraceIds,
        reads: Optional[_Reads],
    ) -> List[Mapped]:
        """The span's items: its trace row (when it writes one), the span, its feedback scores."""
        rec = out.record
        start_ms = info.start_ms
        _, trace_id, otel_trace = _trace_ids(trace_memo, rec.trace_id, start_ms)
        _, span_id, otel_span = _span_ids(span_memo, rec.span_id, start_ms)
        parent_id: Optional[str] = None
        otel_parent: Optional[str] = None
        if rec.parent_span_id:
            _, parent_id, otel_parent = _span_ids(span_memo, rec.parent_span_id, start_ms)
        ids = out.opik_ids
        if ids:
            trace_id = ids.get("trace_id") or trace_id
            span_id = ids.get("span_id") or span_id
            parent_id = ids.get("parent_span_id") or parent_id
        project = self._project(out, default_project)
        md = _leftovers(out)
        md["otel"] = _otel(rec, otel_trace, otel_span, otel_parent, out.used)
        common = self._common(out, project, md)
        label = (rec.name, rec.trace_id, rec.span_id)
        if not trace_row:
            items = [Mapped("span", _span_row(common, out, span_id, trace_id, parent_id), label, out)]
        else:
            span = _span_row(dict(common), out, span_id, trace_id, parent_id)
            trace = self._trace_row(common, out, info, trace_id, reads)
            items = [Mapped("trace", trace, label, out), Mapped("span", span, label, out)]
        for score in out.feedback_scores:
            s = dict(score)
            s["id"] = span_id
            s["project_name"] = project
            s["source"] = "sdk"
            items.append(Mapped("span_score", s, label, out))
        return items

    def _common(self, out: MappedSpan, project: str, md: Dict[str, Any]) -> Dict[str, Any]:
        """The fields a span and its trace row share (the trace row takes this dict itself)."""
        rec = out.record
        start, end = iso_span(rec.start_ns, rec.end_ns)
        common: Dict[str, Any] = {
            "project_name": project,
            "name": out.name or "(unnamed span)",
            "start_time": start,
            "end_time": end,
            "last_updated_at": end,
            "metadata": md,
        }
        if out.input is not None:
            common["input"] = out.input
        if out.output is not None:
            common["output"] = out.output
        if out.tags:
            common["tags"] = out.tags[:50]
        if out.error_info is not None:
            common["error_info"] = out.error_info
        environment = out.environment or self.settings.environment
        if environment:
            common["environment"] = environment[:150]
        return common

    def _trace_row(self, trace: Dict[str, Any], out: MappedSpan, info: TraceInfo, trace_id: str,
                   reads: Optional[_Reads]) -> Dict[str, Any]:
        trace["id"] = trace_id
        trace["source"] = "sdk"
        thread = out.thread_id or info.thread_id
        if thread:
            trace["thread_id"] = thread
        if out.ttft_ms is not None:
            trace["ttft"] = out.ttft_ms
        elif info.first_token_ns is not None and info.first_token_ns >= out.record.start_ns:
            trace["ttft"] = (info.first_token_ns - out.record.start_ns) / 1e6
        if self._reshape:
            _readable_trace(trace, info, reads)
        return trace


def _span_row(span: Dict[str, Any], out: MappedSpan, span_id: str, trace_id: str, parent_id: Optional[str]) -> Dict[str, Any]:
    span["id"] = span_id
    span["trace_id"] = trace_id
    if parent_id:
        span["parent_span_id"] = parent_id
    span["type"] = out.type or "general"
    span["source"] = "sdk"
    if out.ttft_ms is not None:
        span["ttft"] = out.ttft_ms
    if out.model:
        span["model"] = out.model
    if out.provider:
        span["provider"] = out.provider
    if out.usage and not out.usage_is_aggregate:
        span["usage"] = out.usage
    if out.cost is not None:
        span["total_estimated_cost"] = out.cost
    return span
