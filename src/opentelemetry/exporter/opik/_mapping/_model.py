"""What convention readers fill in: one :class:`MappedSpan` per span.

Readers run in a fixed priority and each field keeps the first non-empty value
it is given (``set_*`` ignore later values), so a higher-priority family wins
and a span matching several families (Pydantic AI emits GenAI keys plus its
own) is read once per field. Keys a reader consumed are added to ``used``; the
rest of the span's attributes land in metadata.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Set

from .._json import parse_json_like
from .._record import SpanRecord

#: ``MappedSpan.present`` bits of keys that ``core.read``, ``conventions.finish`` and the usage tables look for (the bits
#: below them are the families', see ``conventions._index``); all below 2**30, CPython's one-digit ints
SIGN_THREAD = 1 << 20
SIGN_ENV = 1 << 21
SIGN_TAGS = 1 << 22
SIGN_IO = 1 << 23
SIGN_USAGE = 1 << 26
SIGN_OPIK = 1 << 27
SIGN_PROMPT = 1 << 28

EMPTY_STRINGS = frozenset(("", "{}", "null", "[]", '""'))


def is_empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return value.strip() in EMPTY_STRINGS
    if isinstance(value, (dict, list, tuple)):
        return len(value) == 0
    return False


def as_io(value: Any) -> Optional[Dict[str, Any]]:
    """Make ``value`` an object Opik renders well (input/output must be objects).

    JSON-looking strings are parsed (double encoding unwrapped once, invalid
    JSON kept raw); a list becomes ``{"messages": [...]}``, a scalar ``{"value": ...}``.
    """
    if is_empty(value):
        return None
    if isinstance(value, str):
        value, _ = parse_json_like(value)
    if isinstance(value, dict):
        return value
    if isinstance(value, (list, tuple)):
        return {"messages": list(value)}
    return {"value": value}


class MappedSpan:
    """Opik fields for one span, before ids, privacy and encoding."""

    __slots__ = (
        "record",
        "name",
        "type",
        "input",
        "output",
        "metadata",
        "tags",
        "thread_id",
        "error_info",
        "ttft_ms",
        "first_token_ns",
        "model",
        "provider",
        "usage",
        "cost",
        "environment",
        "project_name",
        "feedback_scores",
        "usage_is_aggregate",
        "is_genai",
        "opik_ids",
        "used",
        "scratch",
        "present",
        "groups",
    )

    def __init__(self, record: SpanRecord) -> None:
        self.record = record
        self.name: str = record.name
        self.type: Optional[str] = None
        self.input: Optional[Dict[str, Any]] = None
        self.output: Optional[Dict[str, Any]] = None
        self.metadata: Dict[str, Any] = {}
        self.tags: List[str] = []
        self.thread_id: Optional[str] = None
        self.error_info: Optional[Dict[str, str]] = None
        self.ttft_ms: Optional[float] = None
        #: absolute time (ns) of the first streamed token, for the trace's ttft
        self.first_token_ns: Optional[int] = None
        self.model: Optional[str] = None
        self.provider: Optional[str] = None
        self.usage: Dict[str, int] = {}
        self.cost: Optional[float] = None
        self.environment: Optional[str] = None
        self.project_name: Optional[str] = None
        #: ``[{"name", "value", "reason"?, "category_name"?}]`` for the span
        self.feedback_scores: List[Dict[str, Any]] = []
        #: usage that only repeats the children's (agent spans): kept out of ``usage``
        self.usage_is_aggregate = False
        #: an LLM/agent/tool span (for the ``genai`` span filter)
        self.is_genai = False
        #: ``opik.trace_id`` / ``opik.span_id`` / ``opik.parent_span_id`` overrides
        self.opik_ids: Dict[str, str] = {}
        self.used: Set[str] = set()
        #: per-span working state shared by convention readers (event index, thread candidates...)
        self.scratch: Optional[Dict[str, Any]] = None
        #: family and sign bits of the keys the span carries (``conventions._index``); -1: not indexed, all possible
        self.present = -1
        #: ``{prefix: [keys]}`` of the flattened keys the span carries (``conventions._flatten.groups``)
        self.groups: Optional[Dict[str, List[str]]] = None

    # First non-empty value wins for every setter.
    def set_type(self, value: Optional[str]) -> None:
        if self.type is None and value:
            self.type = value

    def set_input(self, value: Any, key: Optional[str] = None) -> bool:
        if key:
            self.used.add(key)
        if self.input is None:
            io = as_io(value)
            if io is not None:
                self.input = io
                return True
        return False

    def set_output(self, value: Any, key: Optional[str] = None) -> bool:
        if key:
            self.used.add(key)
        if self.output is None:
            io = as_io(value)
            if io is not None:
                self.output = io
                return True
        return False

    def set_thread(self, value: Any) -> None:
        if self.thread_id is None and not is_empty(value):
            self.thread_id = str(value)

    def set_model(self, value: Any) -> None:
        if self.model is None and not is_empty(value):
            self.model = str(value)

    def set_provider(self, value: Any) -> None:
        if self.provider is None and not is_empty(value):
            self.provider = str(value)

    def set_environment(self, value: Any) -> None:
        if self.environment is None and not is_empty(value):
            self.environment = str(value)[:150]

    def set_ttft_ms(self, value: Any) -> None:
        if self.ttft_ms is None and value is not None:
            try:
                ms = float(value)
            except (TypeError, ValueError):
                return
            if ms >= 0 and ms == ms and ms != float("inf"):
                self.ttft_ms = ms
                if self.first_token_ns is None:
                    self.first_token_ns = self.record.start_ns + int(ms * 1e6)

    def set_cost(self, value: Any) -> None:
        if self.cost is None and value is not None:
            try:
                c = float(value)
            except (TypeError, ValueError):
                return
            if c >= 0 and c == c and c != float("inf"):
                self.cost = c

    def set_usage(self, key: str, value: Any) -> None:
        """Set one usage counter (Opik key) unless already set; ints only."""
        if key in self.usage or value is None or isinstance(value, bool):
            return
        try:
            n = int(float(value)) if isinstance(value, (str, float)) else int(value)
        except (TypeError, ValueError, OverflowError):
            return
        if 0 <= n < 2**31:
            self.usage[key] = n

    def add_tags(self, value: Any) -> None:
        """Accept a list, a JSON-array string or a comma-separated string."""
        if is_empty(value):
            return
        if isinstance(value, str):
            parsed, ok = parse_json_like(value)
            items = parsed if ok and isinstance(parsed, list) else value.split(",")
        elif isinstance(value, (list, tuple)):
            items = list(value)
        else:
            items = [value]
        for t in items:
            s = str(t).strip()
            if s and s not in self.tags:
                self.tags.append(s[:100])

    def merge_metadata(self, value: Any) -> None:
        """Merge a dict (or JSON-object string); existing keys are kept."""
        if isinstance(value, str):
            value, _ = parse_json_like(value)
        if isinstance(value, dict):
            for k, v in value.items():
                self.metadata.setdefault(str(k), v)
