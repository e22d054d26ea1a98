"""The one normalized span record every input is decoded into.

The in-process exporter decodes SDK ``ReadableSpan`` objects and the sidecar
decodes OTLP protobuf/JSON; everything after this point (mapping, batching,
delivery) is shared and sees only :class:`SpanRecord`.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence, Tuple

from opentelemetry.trace.span import DEFAULT_TRACE_STATE as _NO_TRACE_STATE

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

    The readers, one call per span, pass every field positionally in the order of
    ``__init__``: 19 keyword arguments cost 0.6 us more per span (measured).
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
    mutated (an ended span's attributes are immutable anyway). The wrapper's
    own ``__len__`` (a Python call) is never asked: its dict is.
    """
    if type(attrs) is dict:
        return attrs or _EMPTY
    inner = getattr(attrs, "_dict", None)
    if type(inner) is dict:
        return inner or _EMPTY
    return dict(attrs) if attrs else _EMPTY


def from_readable_span(span: Any) -> SpanRecord:
    """Decode an SDK ``ReadableSpan`` (duck-typed, so any SDK version works).

    One reader: the SDK's own spans are read through their fields (one attribute
    load each instead of a property call, enum values without the ``Enum.value``
    descriptor), and any other object through :class:`_Public`, which presents
    the public properties under those field names. A ``SpanContext`` is read as
    the tuple it is (``trace_id, span_id, is_remote, trace_flags, trace_state``).
    """
    try:
        return _read(span)
    except AttributeError:
        return _read(_Public(span))


def _hint(ts: Any) -> Optional[int]:
    """The ``opik`` tracestate entry; the SDK's shared empty state is known without asking its ``__len__``."""
    if ts is _NO_TRACE_STATE or not ts:
        return None
    return decode_tracestate_start(ts.get(TRACESTATE_KEY))


def _events(events: Any) -> Tuple[EventRecord, ...]:
    items = getattr(events, "_dq", events)  # a BoundedList's deque: no Python-level __len__ / locked __iter__ copy
    if not items:
        return ()
    return tuple([EventRecord(e.name, e.timestamp or 0, _plain(e.attributes)) for e in items])


def _read(span: Any) -> SpanRecord:
    ctx = span._context
    parent = span._parent
    status = span._status
    res = span._resource
    scope = span._instrumentation_scope
    attrs = span._attributes
    events = span._events
    start = span._start_time or 0
    if parent is None:
        parent_id, remote = None, False
    else:
        parent_id, remote = parent[1] or None, bool(parent[2])
    return SpanRecord(
        ctx[0],  # trace_id
        ctx[1],  # span_id
        parent_id,
        span._name,
        start,
        span._end_time or start,  # end_ns
        _plain(attrs),
        _events(events),
        _KIND_FROM_SDK.get(span._kind._value_, 0),  # kind
        status._status_code._value_,
        status._description or "",  # status_message
        _plain(res._attributes) if res is not None else _EMPTY,  # resource
        scope._name if scope is not None else "",
        (scope._version or "") if scope is not None else "",
        remote,  # parent_is_remote
        getattr(attrs, "dropped", 0),  # dropped_attributes
        getattr(events, "dropped", 0),
        getattr(span._links, "dropped", 0),
        _hint(ctx[4]),  # trace_start_hint_ms
    )


class _Counted(dict):  # type: ignore[type-arg]
    """Attributes with the count the SDK dropped (as ``BoundedAttributes.dropped``)."""

    dropped = 0


class _CountedList(list):  # type: ignore[type-arg]
    """Events or links with the count the SDK dropped (as ``BoundedList.dropped``)."""

    dropped = 0


def _counted(kind: type, items: Any, dropped: Any) -> Any:
    out = kind(items or ())
    out.dropped = dropped or 0
    return out


class _Public:
    """A span read through the public ``ReadableSpan`` properties, under the SDK's field names."""

    __slots__ = ("_span",)

    def __init__(self, span: Any) -> None:
        self._span = span

    @property
    def _context(self) -> Any:
        return self._span.context

    @property
    def _parent(self) -> Any:
        return self._span.parent

    @property
    def _status(self) -> Any:
        return _PublicStatus(self._span.status)

    @property
    def _resource(self) -> Any:
        res = self._span.resource
        return None if res is None else _PublicResource(res)

    @property
    def _instrumentation_scope(self) -> Any:
        scope = self._span.instrumentation_scope
        return None if scope is None else _PublicScope(scope)

    @property
    def _attributes(self) -> Any:
        return _counted(_Counted, self._span.attributes, self._span.dropped_attributes)

    @property
    def _events(self) -> Any:
        return _counted(_CountedList, self._span.events, self._span.dropped_events)

    @property
    def _links(self) -> Any:
        return _counted(_CountedList, (), self._span.dropped_links)

    @property
    def _start_time(self) -> Any:
        return self._span.start_time

    @property
    def _end_time(self) -> Any:
        return self._span.end_time

    @property
    def _name(self) -> Any:
        return self._span.name

    @property
    def _kind(self) -> Any:
        return self._span.kind


class _PublicResource:
    __slots__ = ("_attributes",)

    def __init__(self, res: Any) -> None:
        self._attributes = res.attributes


class _PublicStatus:
    __slots__ = ("_status_code", "_description")

    def __init__(self, status: Any) -> None:
        self._status_code = status.status_code
        self._description = status.description


class _PublicScope:
    __slots__ = ("_name", "_version")

    def __init__(self, scope: Any) -> None:
        self._name = scope.name
        self._version = scope.version
