"""The one normalized span record every input is decoded into.

The in-process exporter decodes SDK ``ReadableSpan`` objects and the sidecar
decodes OTLP protobuf/JSON; everything after this point (mapping, batching,
delivery) is shared and sees only :class:`SpanRecord`.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence, Tuple

from ._ids import TRACESTATE_KEY, decode_tracestate_start

# OTLP enum values, used for both inputs so metadata is identical.
SPAN_KIND_NAMES = ("UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
STATUS_UNSET, STATUS_OK, STATUS_ERROR = 0, 1, 2
_STATUS_NAMES = ("UNSET", "OK", "ERROR")

Attributes = Mapping[str, Any]


class EventRecord:
    __slots__ = ("name", "time_ns", "attributes")

    def __init__(self, name: str, time_ns: int, attributes: Attributes) -> None:
        self.name = name
        self.time_ns = time_ns
        self.attributes = attributes


class SpanRecord:
    """A finished span, independent of where it came from.

    ``kind`` and ``status_code`` use OTLP enum numbering (kind 1 = INTERNAL,
    status 2 = ERROR). ``trace_start_hint_ms`` is the ``opik`` tracestate entry,
    when the trace carries one.
    """

    __slots__ = (
        "trace_id",
        "span_id",
        "parent_span_id",
        "parent_is_remote",
        "name",
        "kind",
        "start_ns",
        "end_ns",
        "attributes",
        "events",
        "status_code",
        "status_message",
        "resource",
        "scope_name",
        "scope_version",
        "dropped_attributes",
        "dropped_events",
        "dropped_links",
        "trace_start_hint_ms",
    )

    def __init__(
        self,
        *,
        trace_id: int,
        span_id: int,
        parent_span_id: Optional[int],
        name: str,
        start_ns: int,
        end_ns: int,
        attributes: Attributes,
        events: Sequence[EventRecord] = (),
        kind: int = 1,
        status_code: int = STATUS_UNSET,
        status_message: str = "",
        resource: Attributes = {},  # noqa: B006 - never mutated
        scope_name: str = "",
        scope_version: str = "",
        parent_is_remote: bool = False,
        dropped_attributes: int = 0,
        dropped_events: int = 0,
        dropped_links: int = 0,
        trace_start_hint_ms: Optional[int] = None,
    ) -> None:
        self.trace_id = trace_id
        self.span_id = span_id
        self.parent_span_id = parent_span_id
        self.parent_is_remote = parent_is_remote
        self.name = name
        self.kind = kind
        self.start_ns = start_ns
        self.end_ns = end_ns
        self.attributes = attributes
        self.events = events
        self.status_code = status_code
        self.status_message = status_message
        self.resource = resource
        self.scope_name = scope_name
        self.scope_version = scope_version
        self.dropped_attributes = dropped_attributes
        self.dropped_events = dropped_events
        self.dropped_links = dropped_links
        self.trace_start_hint_ms = trace_start_hint_ms

    @property
    def is_root(self) -> bool:
        """No parent at all, or OTel's "parent == own trace id" quirk (Opik #7504)."""
        return not self.parent_span_id

    @property
    def is_local_root(self) -> bool:
        """Writes the trace row: a true root, or a span whose parent is remote."""
        return not self.parent_span_id or self.parent_is_remote

    @property
    def kind_name(self) -> str:
        return SPAN_KIND_NAMES[self.kind] if 0 <= self.kind < len(SPAN_KIND_NAMES) else str(self.kind)

    @property
    def status_name(self) -> str:
        return _STATUS_NAMES[self.status_code] if 0 <= self.status_code < 3 else str(self.status_code)

    def label(self) -> str:
        """Short identification for logs: name and OTel ids, never content."""
        return f"span {self.name!r} (trace_id={self.trace_id:032x} span_id={self.span_id:016x})"


_KIND_FROM_SDK = {0: 1, 1: 2, 2: 3, 3: 4, 4: 5}  # SDK SpanKind.value -> OTLP enum
_EMPTY: Attributes = {}


def _plain(attrs: Any) -> Attributes:
    """The SDK's ``BoundedAttributes`` as the plain dict it wraps, without copying.

    A plain dict is read without the ``Mapping`` ABC's Python-level ``get`` and
    is encoded by orjson/stdlib json directly; the wrapper makes the encoder
    fail and fall back to ``sanitize`` for the whole item. Read only, never
    mutated (an ended span's attributes are immutable anyway).
    """
    if not attrs:
        return _EMPTY
    if type(attrs) is dict:
        return attrs
    inner = getattr(attrs, "_dict", None)
    if isinstance(inner, dict):
        return inner
    return dict(attrs)


def from_readable_span(span: Any) -> SpanRecord:
    """Decode an SDK ``ReadableSpan`` (duck-typed, so any SDK version works).

    The SDK's own spans are read through their fields (one attribute load each
    instead of a property call, enum values without the ``Enum.value``
    descriptor): this runs once per exported span. Any other object, or an SDK
    without those fields, goes through the public properties.
    """
    try:
        return _from_sdk_fields(span)
    except AttributeError:
        return _from_properties(span)


def _hint(ctx: Any) -> Optional[int]:
    ts = ctx.trace_state
    return decode_tracestate_start(ts.get(TRACESTATE_KEY)) if ts else None


def _events(events: Any) -> Tuple[EventRecord, ...]:
    if not events:
        return ()
    return tuple(EventRecord(e.name, e.timestamp or 0, _plain(e.attributes)) for e in events)


def _from_sdk_fields(span: Any) -> SpanRecord:
    ctx = span._context
    parent = span._parent
    status = span._status
    res = span._resource
    scope = span._instrumentation_scope
    attrs = span._attributes
    events = span._events
    start = span._start_time or 0
    return SpanRecord(
        trace_id=ctx.trace_id,
        span_id=ctx.span_id,
        parent_span_id=parent.span_id if parent is not None and parent.span_id else None,
        parent_is_remote=bool(parent is not None and parent.is_remote),
        name=span._name,
        kind=_KIND_FROM_SDK.get(span._kind._value_, 0),
        start_ns=start,
        end_ns=span._end_time or start,
        attributes=_plain(attrs),
        events=_events(events),
        status_code=status.status_code._value_,
        status_message=status.description or "",
        resource=_plain(res._attributes) if res is not None else _EMPTY,
        scope_name=scope.name if scope is not None else "",
        scope_version=(scope.version or "") if scope is not None else "",
        dropped_attributes=getattr(attrs, "dropped", 0),
        dropped_events=getattr(events, "dropped", 0),
        dropped_links=getattr(span._links, "dropped", 0),
        trace_start_hint_ms=_hint(ctx),
    )


def _from_properties(span: Any) -> SpanRecord:
    ctx = span.context
    parent = span.parent
    status = span.status
    res = span.resource
    scope = span.instrumentation_scope
    start = span.start_time or 0
    return SpanRecord(
        trace_id=ctx.trace_id,
        span_id=ctx.span_id,
        parent_span_id=parent.span_id if parent is not None and parent.span_id else None,
        parent_is_remote=bool(parent is not None and parent.is_remote),
        name=span.name,
        kind=_KIND_FROM_SDK.get(span.kind.value, 0),
        start_ns=start,
        end_ns=span.end_time or start,
        attributes=_plain(span.attributes),
        events=_events(span.events),
        status_code=status.status_code.value,
        status_message=status.description or "",
        resource=_plain(res.attributes) if res is not None else _EMPTY,
        scope_name=scope.name if scope is not None else "",
        scope_version=(scope.version or "") if scope is not None else "",
        dropped_attributes=span.dropped_attributes,
        dropped_events=span.dropped_events,
        dropped_links=span.dropped_links,
        trace_start_hint_ms=_hint(ctx),
    )
