"""OTLP trace requests (protobuf or OTLP/JSON) -> :class:`SpanRecord`.

Used by the sidecar (``opik-otel serve``) and by ``opik-otel import``. The
records are the same as :func:`_record.from_readable_span` makes from the SDK
span that was encoded (same attribute types: arrays become tuples), so a span
maps to the same Opik item whichever way it arrives.

A bad span never sinks the others: ids of the wrong length, wrong JSON types,
invalid UTF-8 or a corrupt protobuf sub-message reject that span only (counted,
with a reason). Only a body that is not an OTLP request at all raises
:class:`DecodeError`. Protobuf is parsed by the C (upb) runtime; when that
strict parse fails, a lenient copy of the schema (strings read as bytes and
decoded with replacement) is tried, then the request is split at the wire
level so each span is parsed on its own.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, Union

from google.protobuf.message import DecodeError as _PbDecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from ._ids import TRACESTATE_KEY, decode_tracestate_start
from ._record import EventRecord, SpanRecord

__all__ = [
    "DecodeError",
    "DecodeLimits",
    "DecodedBatch",
    "INTS_AS_STRINGS",
    "RequestTooLarge",
    "TooManySpans",
    "decode_json",
    "decode_protobuf",
    "NESTED_TOO_DEEP",
]

#: what a value nested deeper than ``DecodeLimits.max_depth`` becomes
NESTED_TOO_DEEP = "[nested too deep]"
#: the span attribute listing which OTLP/JSON integers beyond 64 bits were kept as decimal strings
INTS_AS_STRINGS = "opik_otel.ints_as_strings"
_MAX_REASONS = 20
# OTLP SpanFlags: the parent's is_remote is known (0x100) and true (0x200)
_HAS_IS_REMOTE = 0x100
_IS_REMOTE = 0x200
_REMOTE = _HAS_IS_REMOTE | _IS_REMOTE
_TS_PREFIX = TRACESTATE_KEY + "="


class DecodeError(ValueError):
    """The body is not an OTLP trace request at all (HTTP 400, gRPC INVALID_ARGUMENT)."""


class RequestTooLarge(DecodeError):
    """The request can never be taken whole, however often it is sent (HTTP 413, never retried)."""


class TooManySpans(RequestTooLarge):
    """More spans in one request than ``DecodeLimits.max_spans`` (HTTP 413)."""

    def __init__(self, count: int, limit: int) -> None:
        super().__init__(f"the request holds {count} spans; the limit is {limit} per request: send smaller batches")
        self.count = count
        self.limit = limit


class DecodeLimits:
    """Bounds on what one request may make the decoder build.

    ``max_spans`` per request (beyond: :class:`TooManySpans`); ``max_attributes``
    per span, event, resource or key-value list (beyond: the first ones are
    kept, the rest counted as dropped, like the SDK's attribute limits);
    ``max_depth`` levels of nested arrays/kvlists (deeper values become
    ``"[nested too deep]"``); ``json_memory`` bytes that parsing one OTLP/JSON
    request may take, estimated from its text before it is parsed (beyond:
    :class:`._otlp_json.JsonTooLarge`, HTTP 413).
    """

    __slots__ = ("max_spans", "max_attributes", "max_depth", "json_memory")

    def __init__(
        self, max_spans: int = 20_000, max_attributes: int = 10_000, max_depth: int = 32, json_memory: int = 256 * 1024 * 1024
    ) -> None:
        self.max_spans = max_spans
        self.max_attributes = max_attributes
        self.max_depth = max_depth
        self.json_memory = json_memory


DEFAULT_LIMITS = DecodeLimits()


class DecodedBatch:
    """The records of one request, and what could not be decoded."""

    __slots__ = (
        "records", "span_count", "rejected", "reasons", "attributes_cut", "depth_cut", "utf8_replaced",
        "ints_as_strings", "not_finite", "_pending",
    )

    def __init__(self) -> None:
        self.records: List[SpanRecord] = []
        #: the conversion still to run (``decode_protobuf(lazy=True)``), see :meth:`materialize`
        self._pending: Optional[Callable[[], None]] = None
        #: spans in the request, decoded or not
        self.span_count = 0
        #: spans that could not be decoded
        self.rejected = 0
        #: the first reasons, ``"<where> (<name>): <why>"``
        self.reasons: List[str] = []
        #: spans/events/resources whose attributes were cut at ``max_attributes``
        self.attributes_cut = 0
        #: values cut at ``max_depth``
        self.depth_cut = 0
        #: requests/spans whose invalid UTF-8 was replaced by U+FFFD
        self.utf8_replaced = 0
        #: OTLP/JSON spans with integers beyond 64 bits, kept as their decimal strings
        self.ints_as_strings = 0
        #: OTLP/JSON numbers that are not JSON: NaN/Infinity tokens, or beyond a double's range
        self.not_finite = 0

    @property
    def accepted(self) -> int:
        """Spans that are (or will be, once materialized) records."""
        return self.span_count - self.rejected if self._pending is not None else len(self.records)

    def materialize(self) -> List[SpanRecord]:
        """Run the deferred conversion (if any) and return the records.

        Limits applied during the conversion (attributes cut, values nested too deep)
        are counted in this batch then, after an early answer was sent.
        """
        pending = self._pending
        if pending is not None:
            self._pending = None
            pending()
        return self.records

    def reject(self, where: str, reason: str, n: int = 1) -> None:
        self.rejected += n
        if len(self.reasons) < _MAX_REASONS:
            self.reasons.append(f"{where}: {reason}")

    def warnings(self) -> List[str]:
        """Limits applied to spans that were still accepted."""
        out = []
        if self.attributes_cut:
            out.append(f"{self.attributes_cut} attribute sets exceeded the attribute limit; the extra attributes were dropped")
        if self.depth_cut:
            out.append(f"{self.depth_cut} values were nested too deep and were replaced by {NESTED_TOO_DEEP!r}")
        if self.utf8_replaced:
            out.append("invalid UTF-8 in strings was replaced by U+FFFD")
        if self.ints_as_strings:
            out.append(
                f"integers beyond 64 bits in {self.ints_as_strings} spans were kept as their decimal strings "
                f"(each such span lists them in its {INTS_AS_STRINGS!r} attribute)"
            )
        if self.not_finite:
            out.append(
                f"{self.not_finite} numbers were NaN, Infinity or beyond a double's range, which JSON cannot hold: "
                'they were read as doubles (OTLP/JSON writes them as the strings "NaN", "Infinity", "-Infinity")'
            )
        return out

    def message(self, limit: int = 5) -> str:
        """One line for a partial-success answer: rejections first, then warnings."""
        parts: List[str] = []
        if self.rejected:
            shown = "; ".join(self.reasons[:limit])
            more = "" if len(self.reasons) <= limit and self.rejected == len(self.reasons) else "; ..."
            parts.append(f"{self.rejected} of {self.span_count} spans could not be decoded: {shown}{more}")
        parts.extend(self.warnings())
        return ". ".join(parts)


class _Bad(Exception):
    """One span (or resource/scope) is invalid; the message says why."""


def _trace_state_hint(ts: str) -> Optional[int]:
    if _TS_PREFIX not in ts:
        return None
    for member in ts.split(","):
        member = member.strip()
        if member.startswith(_TS_PREFIX):
            return decode_tracestate_start(member[len(_TS_PREFIX) :])
    return None


#: (trace id, span id, parent span id or None) of one span, checked
_Ids = Tuple[int, int, Optional[int]]


def _ids(tid: bytes, sid: bytes, pid: bytes) -> _Ids:
    if len(tid) != 16:
        raise _Bad(f"trace id must be 16 bytes, got {len(tid)}")
    if len(sid) != 8:
        raise _Bad(f"span id must be 8 bytes, got {len(sid)}")
    trace_id = int.from_bytes(tid, "big")
    span_id = int.from_bytes(sid, "big")
    if not trace_id:
        raise _Bad("trace id is all zeros")
    if not span_id:
        raise _Bad("span id is all zeros")
    if not pid or pid == tid:  # some SDKs send the trace id as the root's parent (Opik #7504)
        return trace_id, span_id, None
    if len(pid) != 8:
        raise _Bad(f"parent span id must be 8 bytes, got {len(pid)}")
    return trace_id, span_id, int.from_bytes(pid, "big") or None


# --------------------------------------------------------------------------- protobuf

_SCALARS = frozenset(("bool_value", "int_value", "double_value", "bytes_value"))


def _utf8(b: Any) -> str:
    return b.decode("utf-8", "replace") if isinstance(b, bytes) else b


class _PbReader:
    """Converts parsed protobuf messages; ``lenient`` when strings were parsed as bytes."""

    __slots__ = ("out", "max_depth", "max_attributes", "lenient", "checked")

    def __init__(self, out: DecodedBatch, limits: DecodeLimits, lenient: bool, checked: Optional[List[Optional[_Ids]]] = None) -> None:
        self.out = out
        self.max_depth = limits.max_depth
        self.max_attributes = limits.max_attributes
        self.lenient = lenient
        #: each span's ids from :func:`_validate`, in request order (None: rejected there)
        self.checked = iter(checked) if checked is not None else None

    def value(self, v: Any, depth: int) -> Any:
        which = v.WhichOneof("value")
        if which == "string_value":
            s = v.string_value
            return s if not self.lenient else _utf8(s)
        if which in _SCALARS:
            return getattr(v, which)
        if which is None:
            return None
        if depth >= self.max_depth:
            self.out.depth_cut += 1
            return NESTED_TOO_DEEP
        if which == "array_value":
            return tuple([self.value(x, depth + 1) for x in v.array_value.values])
        return self.attrs(v.kvlist_value.values, depth + 1)[0]

    def attrs(self, kvs: Any, depth: int = 0) -> Tuple[Dict[str, Any], int]:
        """``(attributes, how many were cut at the limit)``."""
        cut = len(kvs) - self.max_attributes
        # a list, always: iterating the repeated container itself ends each time in a raised IndexError
        kvs = kvs[: self.max_attributes]
        if cut > 0:
            self.out.attributes_cut += 1
        else:
            cut = 0
        out: Dict[str, Any] = {}
        if self.lenient:
            for kv in kvs:
                out[_utf8(kv.key)] = self.value(kv.value, depth)
            return out, cut
        # The hot loop of the sidecar: one wrapper per key and value. A non-empty string (most values)
        # is read in one field access; any other value (its string_value is "") asks which it is.
        scalars = _SCALARS
        for kv in kvs:
            v = kv.value
            s = v.string_value
            if s:
                out[kv.key] = s
                continue
            which = v.WhichOneof("value")
            out[kv.key] = getattr(v, which) if which == "string_value" or which in scalars else self.value(v, depth)
        return out, cut

    def span(self, sp: Any, resource: Dict[str, Any], scope_name: str, scope_version: str, ids: Optional[_Ids] = None) -> SpanRecord:
        trace_id, span_id, parent = ids or _ids(sp.trace_id, sp.span_id, sp.parent_span_id)
        start = sp.start_time_unix_nano
        if not start:
            raise _Bad("start time is missing")
        ts = sp.trace_state
        attributes, cut = self.attrs(sp.attributes)
        events = sp.events
        if events:
            attrs = self.attrs
            events = tuple([EventRecord(_utf8(e.name), e.time_unix_nano, attrs(e.attributes)[0]) for e in events[:]])
        status = sp.status
        return SpanRecord(  # positionally, in SpanRecord's order (keywords cost 0.6 us per span)
            trace_id,
            span_id,
            parent,  # parent_span_id
            _utf8(sp.name),
            start,
            sp.end_time_unix_nano or start,  # end_ns
            attributes,
            events or (),
            sp.kind,
            status.code,
            _utf8(status.message),
            resource,
            scope_name,
            scope_version,
            parent is not None and sp.flags & _REMOTE == _REMOTE,  # parent_is_remote: known (0x100) and true (0x200)
            sp.dropped_attributes_count + cut,
            sp.dropped_events_count,
            sp.dropped_links_count,
            _trace_state_hint(_utf8(ts)) if ts else None,  # trace_start_hint_ms
        )

    def resource(self, rs: Any) -> Dict[str, Any]:
        return self.attrs(rs.resource.attributes)[0]

    def scope_spans(self, ss: Any, resource: Dict[str, Any], where: str) -> None:
        scope = ss.scope
        name, version = _utf8(scope.name), _utf8(scope.version)
        out = self.out
        records = out.records
        span = self.span
        checked = self.checked
        for k, sp in enumerate(ss.spans):
            ids = next(checked) if checked is not None else None  # type: ignore[call-overload]
            if checked is not None and ids is None:
                continue  # rejected (and reported) by _validate
            try:
                records.append(span(sp, resource, name, version, ids))
            except _Bad as exc:
                out.reject(f"{where}.spans[{k}] ({_utf8(sp.name)!r})", str(exc))

    def request(self, req: Any) -> None:
        for i, rs in enumerate(req.resource_spans):
            resource = self.resource(rs)
            for j, ss in enumerate(rs.scope_spans):
                self.scope_spans(ss, resource, f"resourceSpans[{i}].scopeSpans[{j}]")


def _validate(req: Any, out: DecodedBatch) -> List[Optional[_Ids]]:
    """Reject, as the conversion would, the spans it would reject (bad ids, no start time).

    A few field reads per span: what an early answer must report, without converting.
    Returns each span's ids in request order, None where rejected: the conversion
    takes them instead of reading and checking them again.
    """
    checked: List[Optional[_Ids]] = []
    add = checked.append
    for i, rs in enumerate(req.resource_spans):
        for j, ss in enumerate(rs.scope_spans):
            for k, sp in enumerate(ss.spans):
                try:
                    ids = _ids(sp.trace_id, sp.span_id, sp.parent_span_id)
                    if not sp.start_time_unix_nano:
                        raise _Bad("start time is missing")
                    add(ids)
                except _Bad as exc:
                    add(None)
                    out.reject(f"resourceSpans[{i}].scopeSpans[{j}].spans[{k}] ({_utf8(sp.name)!r})", str(exc))
    return checked


def _count_pb_spans(req: Any) -> int:
    return sum(len(ss.spans) for rs in req.resource_spans for ss in rs.scope_spans)


def decode_protobuf(
    data: Union[bytes, bytearray, memoryview], limits: Optional[DecodeLimits] = None, lazy: bool = False
) -> DecodedBatch:
    """Decode a binary ``ExportTraceServiceRequest``.

    Raises :class:`DecodeError` when the body is not one (broken framing) and
    :class:`TooManySpans` beyond ``limits.max_spans``; bad spans inside are
    rejected one by one in the returned batch. ``lazy`` parses and validates
    only (the span count and the rejections are final) and leaves the
    conversion to records to :meth:`DecodedBatch.materialize`: the sidecar
    answers first and converts on its mapping thread.
    """
    limits = limits or DEFAULT_LIMITS
    out = DecodedBatch()
    try:
        req = ExportTraceServiceRequest.FromString(data)
    except _PbDecodeError:
        pass
    else:
        out.span_count = _count_pb_spans(req)
        if out.span_count > limits.max_spans:
            raise TooManySpans(out.span_count, limits.max_spans)
        if lazy:
            reader = _PbReader(out, limits, lenient=False, checked=_validate(req, out))
            out._pending = lambda: reader.request(req)
            return out
        _PbReader(out, limits, lenient=False).request(req)
        return out
    _salvage(bytes(data), out, limits)
    return out


# -- the slow paths: strings as bytes, then span by span ----------------------------

_lenient_classes: Optional[Dict[str, Any]] = None


def _lenient() -> Dict[str, Any]:
    """Message classes of a copy of the OTLP schema where every string is ``bytes``.

    Same wire format, so a request whose only fault is invalid UTF-8 still
    parses; the reader decodes those strings with replacement characters.
    """
    global _lenient_classes
    if _lenient_classes is None:
        from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
        from opentelemetry.proto.common.v1 import common_pb2
        from opentelemetry.proto.resource.v1 import resource_pb2
        from opentelemetry.proto.trace.v1 import trace_pb2

        def bytesify(msg: Any) -> None:
            for f in msg.field:
                if f.type == descriptor_pb2.FieldDescriptorProto.TYPE_STRING:
                    f.type = descriptor_pb2.FieldDescriptorProto.TYPE_BYTES
            for nested in msg.nested_type:
                bytesify(nested)

        pool = descriptor_pool.DescriptorPool()
        for mod in (common_pb2, resource_pb2, trace_pb2, trace_service_pb2):
            fdp = descriptor_pb2.FileDescriptorProto()
            mod.DESCRIPTOR.CopyToProto(fdp)
            for msg in fdp.message_type:
                bytesify(msg)
            pool.Add(fdp)
        get: Callable[[Any], Any]
        if hasattr(message_factory, "GetMessageClass"):
            get = message_factory.GetMessageClass
        else:  # pragma: no cover - protobuf < 4.22
            get = message_factory.MessageFactory(pool).GetPrototype
        names = {
            "Request": "opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest",
            "ResourceSpans": "opentelemetry.proto.trace.v1.ResourceSpans",
            "ScopeSpans": "opentelemetry.proto.trace.v1.ScopeSpans",
            "Span": "opentelemetry.proto.trace.v1.Span",
            "Resource": "opentelemetry.proto.resource.v1.Resource",
            "Scope": "opentelemetry.proto.common.v1.InstrumentationScope",
        }
        _lenient_classes = {k: get(pool.FindMessageTypeByName(v)) for k, v in names.items()}
    return _lenient_classes


def encode_varint(n: int) -> bytes:
    """Protobuf base-128 varint of ``n`` (negative int64 values as their two's complement)."""
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _varint(buf: memoryview, pos: int) -> Tuple[int, int]:
    result = shift = 0
    n = len(buf)
    while True:
        if pos >= n or shift > 63:
            raise DecodeError("truncated or malformed protobuf (varint)")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _fields(buf: memoryview) -> Iterator[Tuple[int, int, Any]]:
    """``(field number, wire type, value)`` of one message; LEN values as memoryviews."""
    pos, n = 0, len(buf)
    while pos < n:
        key, pos = _varint(buf, pos)
        num, wt = key >> 3, key & 7
        value: Any
        if num == 0:
            raise DecodeError("malformed protobuf (field number 0)")
        if wt == 0:
            value, pos = _varint(buf, pos)
        elif wt == 1:
            value, pos = bytes(buf[pos : pos + 8]), pos + 8
        elif wt == 2:
            size, pos = _varint(buf, pos)
            value, pos = buf[pos : pos + size], pos + size
        elif wt == 5:
            value, pos = bytes(buf[pos : pos + 4]), pos + 4
        else:
            raise DecodeError(f"malformed protobuf (wire type {wt})")
        if pos > n:
            raise DecodeError("truncated protobuf")
        yield num, wt, value


def _submessages(buf: memoryview, number: int) -> List[memoryview]:
    return [v for num, wt, v in _fields(buf) if num == number and wt == 2]


def _salvage(data: bytes, out: DecodedBatch, limits: DecodeLimits) -> None:
    classes = _lenient()
    try:
        req = classes["Request"].FromString(data)
    except _PbDecodeError:
        pass
    else:
        out.span_count = _count_pb_spans(req)
        if out.span_count > limits.max_spans:
            raise TooManySpans(out.span_count, limits.max_spans)
        out.utf8_replaced += 1
        _PbReader(out, limits, lenient=True).request(req)
        return
    # Split at the wire level; this raises DecodeError when the framing is broken.
    view = memoryview(data)
    chunks = _submessages(view, 1)
    plan: List[Tuple[int, int, Optional[memoryview], List[memoryview]]] = []
    for i, rs in enumerate(chunks):
        try:
            fields = list(_fields(rs))
        except DecodeError as exc:
            out.span_count += 1
            out.reject(f"resourceSpans[{i}]", f"corrupt protobuf ({exc})")
            continue
        resource = next((v for num, wt, v in fields if num == 1 and wt == 2), None)
        for j, ss in enumerate(v for num, wt, v in fields if num == 2 and wt == 2):
            try:
                spans = _submessages(ss, 2)
            except DecodeError as exc:
                out.span_count += 1
                out.reject(f"resourceSpans[{i}].scopeSpans[{j}]", f"corrupt protobuf ({exc})")
                continue
            out.span_count += len(spans)
            plan.append((i, j, resource, [ss] + spans))
    if out.span_count > limits.max_spans:
        raise TooManySpans(out.span_count, limits.max_spans)
    reader = _PbReader(out, limits, lenient=True)
    resources: Dict[int, Optional[Dict[str, Any]]] = {}
    for i, j, res_buf, (ss_buf, *span_bufs) in plan:
        where = f"resourceSpans[{i}].scopeSpans[{j}]"
        if i not in resources:
            try:
                resources[i] = reader.attrs(classes["Resource"].FromString(res_buf).attributes)[0] if res_buf is not None else {}
            except _PbDecodeError:
                resources[i] = None
        resource = resources[i]
        if resource is None:
            out.reject(where, "the resource is corrupt protobuf", len(span_bufs))
            continue
        scope_buf = next((v for num, wt, v in _fields(ss_buf) if num == 1 and wt == 2), None)
        try:
            scope = classes["Scope"].FromString(scope_buf) if scope_buf is not None else classes["Scope"]()
        except _PbDecodeError:
            out.reject(where, "the instrumentation scope is corrupt protobuf", len(span_bufs))
            continue
        name, version = _utf8(scope.name), _utf8(scope.version)
        for k, sb in enumerate(span_bufs):
            try:
                sp = classes["Span"].FromString(sb)
            except _PbDecodeError as exc:
                out.reject(f"{where}.spans[{k}]", f"corrupt protobuf ({exc})")
                continue
            try:
                out.records.append(reader.span(sp, resource, name, version))
            except _Bad as exc:
                out.reject(f"{where}.spans[{k}] ({_utf8(sp.name)!r})", str(exc))


# --------------------------------------------------------------------------- OTLP/JSON
# The OTLP/JSON decoder lives in _otlp_json (it builds on the classes above); re-exported here.
from ._otlp_json import decode_json  # noqa: E402
