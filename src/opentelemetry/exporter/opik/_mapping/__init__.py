"""OTel span records -> Opik trace/span/feedback-score dicts.

Convention readers (one small module per instrumentation family) fill a
:class:`MappedSpan`; this module assigns ids, builds the trace row for each
local root, puts every unmapped attribute into metadata, and never lets one
bad span sink the batch: a span that fails to map is counted and reported.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from .._config import OpikSettings
from .._errors import where
from .._ids import span_uuid, trace_uuid
from .._items import Label, label_text
from .._json import parse_json_like
from .._record import SPAN_KIND_NAMES, STATUS_UNSET, SpanRecord
from . import core, messages
from ._model import MappedSpan
from ._prompts import PROMPT_INFO, PromptLinker
from ._time import iso_ns
from ._traces import MAX_COUNTED_BELOW, TraceCache, TraceInfo

_logger = logging.getLogger("opentelemetry.exporter.opik")

Reader = Callable[[MappedSpan], None]


def _default_readers() -> Tuple[Reader, ...]:
    from . import conventions

    # the family index runs only the readers of the families a span carries a sign of
    return (conventions.read, core.read)


def _span_id(memo: Dict[Tuple[int, int], str], otel_span_id: int, start_ms: int) -> str:
    key = (otel_span_id, start_ms)
    sid = memo.get(key)
    if sid is None:
        sid = memo[key] = span_uuid(otel_span_id, start_ms)
    return sid


_TEXT_CAP = 32_768


def _otel_trace_id(trace_id: int, info: Optional[TraceInfo]) -> str:
    """The OTel trace id in hex (``metadata.otel.trace_id``), formatted once per trace."""
    if info is None:
        return f"{trace_id:032x}"
    h = info.otel_trace_id
    if h is None:
        h = info.otel_trace_id = f"{trace_id:032x}"
    return h


def _end_ns(rec: SpanRecord) -> int:
    return rec.end_ns


def _note_conversation(cache: TraceCache, info: TraceInfo, out: MappedSpan) -> None:
    """Remember the trace's first question and last answer, for a root span that has neither.

    They stay as long as the trace's other facts (a root span sent again gets the
    same trace row), within the cache's text budget. Call with the cache's lock held.
    """
    rec = out.record
    q = messages.question(out.input)
    a = messages.answer(out.output)
    cache.remember(
        info,
        (rec.start_ns, q[:_TEXT_CAP]) if q and (info.question is None or rec.start_ns < info.question[0]) else None,
        (rec.end_ns, a[:_TEXT_CAP]) if a and (info.answer is None or rec.end_ns >= info.answer[0]) else None,
    )


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
    below = info.counted_below
    repeats = below is not None and rec.span_id in below
    if repeats and not out.usage_is_aggregate and (out.usage or out.cost is not None):
        if out.usage:
            out.metadata.setdefault("aggregated_usage", dict(out.usage))
        if out.cost is not None:
            out.metadata.setdefault("aggregated_cost", out.cost)
            out.cost = None
        out.usage_is_aggregate = True
    counts = out.type == "llm" and bool(out.usage) and not out.usage_is_aggregate
    if rec.parent_span_id and (repeats or counts):
        if below is None:
            below = info.counted_below = set()
        if len(below) < MAX_COUNTED_BELOW:
            below.add(rec.parent_span_id)


def _borrow_conversation(info: TraceInfo, out: MappedSpan) -> None:
    """The trace's first question and last answer so far, when they fall within the span's own time."""
    rec = out.record
    q, a = info.question, info.answer
    if out.input is None and q is not None and q[0] >= rec.start_ns:
        out.input = {"messages": [{"role": "user", "content": q[1]}]}
    if out.output is None and a is not None and a[0] <= rec.end_ns:
        out.output = {"choices": [{"index": 0, "message": {"role": "assistant", "content": a[1]}}]}


def _readable_trace(trace: Dict[str, Any], info: TraceInfo) -> bool:
    """Give the trace row the text a person reads in the thread view; True when nothing changed.

    The root span's own input/output stay when they read as text; otherwise the
    trace's first LLM question and last LLM answer stand in for them.
    """
    unchanged = True
    if info.question is not None and messages.question(trace.get("input")) is None:
        trace["input"] = {"messages": [{"role": "user", "content": info.question[1]}]}
        unchanged = False
    if info.answer is not None and messages.answer(trace.get("output")) is None:
        trace["output"] = {"choices": [{"index": 0, "message": {"role": "assistant", "content": info.answer[1]}}]}
        unchanged = False
    return unchanged


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
        by_kind = {"trace": traces, "span": spans, "span_score": scores}
        for items in self.iter_map(records, default_project, result.rejected):
            for m in items:
                by_kind[m.kind].append(m)
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
        records = list(records)
        # Earliest start per trace in this batch: the id timestamp when the trace is new.
        batch_start: Dict[int, int] = {}
        for r in records:
            ms = r.trace_start_hint_ms or r.start_ns // 1_000_000
            prev = batch_start.get(r.trace_id)
            if prev is None or ms < prev:
                batch_start[r.trace_id] = ms
        # Children first, so a root in the same batch sees their thread and first token, and
        # a parent its LLM descendants' usage (children end first: by end time otherwise).
        ordered = sorted((r for r in records if not r.is_local_root), key=_end_ns) + [
            r for r in records if r.is_local_root
        ]
        # (OTel span id, trace start ms) -> Opik id in this batch: a parent's id is
        # asked by each child and by the parent itself, a SHA-256 each time otherwise
        span_ids: Dict[Tuple[int, int], str] = {}
        for rec in ordered:
            traces: List[Mapped] = []
            spans: List[Mapped] = []
            scores: List[Mapped] = []
            try:
                out = self.read(rec)
                if self.prompts is not None and PROMPT_INFO in out.metadata:
                    self.prompts.link(out.metadata)  # a cache lookup; never waits for Opik
                with self.cache.lock:
                    info = self.cache.get(rec.trace_id, batch_start[rec.trace_id])
                    self._note(info, out)
                    _count_once(info, out)
                    if self._reshape and out.type == "llm":
                        _note_conversation(self.cache, info, out)
                    elif self._reshape and out.scratch is not None and out.scratch.get(BORROW_CONVERSATION):
                        _borrow_conversation(info, out)
                trace_row = rec.is_local_root and "trace_id" not in out.opik_ids
                self._emit(out, info, default_project, trace_row, traces, spans, scores, span_ids)
            except Exception as exc:  # noqa: BLE001 - one bad span never sinks the batch
                # The exception's text may quote span content: report only its type and where.
                if rejected is not None:
                    rejected.append((rec.label(), where(exc)))
                continue
            yield traces + spans + scores if traces or scores else spans

    @staticmethod
    def _note(info: TraceInfo, out: MappedSpan) -> None:
        if out.thread_id is not None and (info.thread_id is None or out.record.is_local_root):
            info.thread_id = out.thread_id
        ft = out.first_token_ns
        if ft is not None and (info.first_token_ns is None or ft < info.first_token_ns):
            info.first_token_ns = ft
        if out.is_genai:
            info.genai = True

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

    def _metadata(self, out: MappedSpan, info: Optional[TraceInfo] = None) -> Dict[str, Any]:
        rec = out.record
        md = out.metadata
        used = out.used
        for k, v in rec.attributes.items():
            if k in used or k in md:
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
        kind = rec.kind
        otel: Dict[str, Any] = {
            "trace_id": _otel_trace_id(rec.trace_id, info),
            "span_id": f"{rec.span_id:016x}",
            "span_kind": SPAN_KIND_NAMES[kind] if 0 <= kind < len(SPAN_KIND_NAMES) else str(kind),
        }
        if rec.parent_span_id:
            otel["parent_span_id"] = f"{rec.parent_span_id:016x}"
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
        md["otel"] = otel
        return md

    def _emit(
        self,
        out: MappedSpan,
        info: TraceInfo,
        default_project: Optional[str],
        trace_row: bool,
        traces: List[Mapped],
        spans: List[Mapped],
        scores: List[Mapped],
        span_ids: Optional[Dict[Tuple[int, int], str]] = None,
    ) -> None:
        rec = out.record
        start_ms = info.start_ms
        ids = out.opik_ids
        trace_id = ids.get("trace_id") or info.opik_id
        if not trace_id:
            trace_id = info.opik_id = trace_uuid(rec.trace_id, start_ms)
        memo = span_ids if span_ids is not None else {}
        span_id = ids.get("span_id") or _span_id(memo, rec.span_id, start_ms)
        parent_id = ids.get("parent_span_id") or (_span_id(memo, rec.parent_span_id, start_ms) if rec.parent_span_id else None)
        project = self._project(out, default_project)
        environment = out.environment or self.settings.environment
        start = iso_ns(rec.start_ns)
        end = iso_ns(rec.end_ns)
        label = (rec.name, rec.trace_id, rec.span_id)
        common: Dict[str, Any] = {
            "project_name": project,
            "name": out.name or "(unnamed span)",
            "start_time": start,
            "end_time": end,
            "last_updated_at": end,
            "metadata": self._metadata(out, info),
        }
        if out.input is not None:
            common["input"] = out.input
        if out.output is not None:
            common["output"] = out.output
        if out.tags:
            common["tags"] = out.tags[:50]
        if out.error_info is not None:
            common["error_info"] = out.error_info
        if environment:
            common["environment"] = environment[:150]
        span = dict(common)
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
        span_m = Mapped("span", span, label, out)
        spans.append(span_m)
        if trace_row:
            trace = common
            trace["id"] = trace_id
            trace["source"] = "sdk"
            thread = out.thread_id or info.thread_id
            if thread:
                trace["thread_id"] = thread
            if out.ttft_ms is not None:
                trace["ttft"] = out.ttft_ms
            elif info.first_token_ns is not None and info.first_token_ns >= rec.start_ns:
                trace["ttft"] = (info.first_token_ns - rec.start_ns) / 1e6
            if self._reshape:
                _readable_trace(trace, info)
            traces.append(Mapped("trace", trace, label, out))
        for score in out.feedback_scores:
            s = dict(score)
            s["id"] = span_id
            s["project_name"] = project
            s["source"] = "sdk"
            scores.append(Mapped("span_score", s, label, out))
