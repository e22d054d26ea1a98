"""OTLP/JSON trace requests -> :class:`SpanRecord` (the JSON half of :mod:`._otlp`).

Same records, same rejections one span at a time, same limits as the protobuf
decoder; :mod:`._otlp` re-exports :func:`decode_json`. The text is parsed by
:mod:`._otlp_json_parse` (one parse, or span by span when that fails); this
module reads the tree:

* ``intValue`` beyond 64 bits (a JSON number, or the decimal string proto3 JSON
  writes) is kept exactly as its decimal string, and the span's
  :data:`INTS_AS_STRINGS` attribute lists which ones were (``key``,
  ``resource: key``, ``event 'name': key``);
* ``doubleValue`` takes numbers and the strings ``"NaN"``, ``"Infinity"``,
  ``"-Infinity"`` (proto3 JSON's spelling of non-finite doubles);
* unsigned fields (times, flags, counts) must fit in 64 bits.
"""

from __future__ import annotations

import base64
import binascii
import math
from typing import Any, Dict, List, Optional, Tuple, Union

from ._otlp import (
    _HAS_IS_REMOTE,
    _IS_REMOTE,
    DEFAULT_LIMITS,
    INTS_AS_STRINGS,
    NESTED_TOO_DEEP,
    DecodedBatch,
    DecodeError,
    DecodeLimits,
    TooManySpans,
    _Bad,
    _ids,
    _trace_state_hint,
)
from ._otlp_json_parse import JsonTooLarge, RawSpan, SpanParser, Unparsed, fast_fits, parse_fast, skeleton
from ._record import EventRecord, SpanRecord

__all__ = ["JsonTooLarge", "decode_json"]

_INT64 = 2**63
_UINT64 = 2**64


_KIND_NAMES = {
    "SPAN_KIND_UNSPECIFIED": 0,
    "SPAN_KIND_INTERNAL": 1,
    "SPAN_KIND_SERVER": 2,
    "SPAN_KIND_CLIENT": 3,
    "SPAN_KIND_PRODUCER": 4,
    "SPAN_KIND_CONSUMER": 5,
}
_STATUS_NAMES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}
_FLOAT_WORDS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _get(d: Dict[str, Any], camel: str, snake: str) -> Any:
    """The proto3 JSON mapping allows both the lowerCamelCase and the original name."""
    v = d.get(camel)
    return d.get(snake) if v is None else v


def _j_int(v: Any, what: str, unsigned: bool = False) -> int:
    if v is None:
        return 0
    if isinstance(v, bool):
        raise _Bad(f"{what} must be an integer (or a decimal string), got a boolean")
    if isinstance(v, int):
        i = v
    elif isinstance(v, str):
        try:
            i = int(v.strip())
        except ValueError:
            raise _Bad(f"{what} must be a decimal integer string, got {v[:40]!r}") from None
    elif isinstance(v, float) and v.is_integer():
        i = int(v)
    elif isinstance(v, float):
        raise _Bad(f"{what} must be an integer, got the number {v!r}")
    else:
        raise _Bad(f"{what} must be an integer (or a decimal string), got {type(v).__name__}")
    if unsigned and not 0 <= i < _UINT64:
        raise _Bad(f"{what} must be an unsigned 64-bit integer, got {str(i)[:40]}")
    return i


def _j_str(v: Any, what: str) -> str:
    if v is None:
        return ""
    if not isinstance(v, str):
        raise _Bad(f"{what} must be a string, got {type(v).__name__}")
    return v


def _j_enum(v: Any, names: Dict[str, int], what: str) -> int:
    if isinstance(v, str) and v in names:
        return names[v]
    return _j_int(v, what)


def _j_id(v: Any, size: int, what: str) -> bytes:
    """Hex (as the OTLP/JSON spec says); base64 of the right length is tolerated."""
    if v is None or v == "":
        return b""
    if not isinstance(v, str):
        raise _Bad(f"{what} must be a hex string, got {type(v).__name__}")
    if len(v) == 2 * size:
        try:
            return bytes.fromhex(v)
        except ValueError:
            pass
    if len(v) == 4 * ((size + 2) // 3):
        try:
            raw = base64.b64decode(v, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) == size:
            return raw
    if len(v) == 4 * size:  # parent id == trace id quirk, in hex
        try:
            return bytes.fromhex(v)
        except ValueError:
            pass
    raise _Bad(f"{what} must be {2 * size} hex characters, got {v[:40]!r}")


class _Inexact(_Bad):
    """An ``intValue`` beyond 64 bits that the fast parser read as a float: its digits are lost."""


class _JsonReader:
    """Converts parsed OTLP/JSON values; ``exact`` when integers were parsed as Python ints (not floats)."""

    __slots__ = ("out", "max_depth", "max_attributes", "exact", "big_keys", "prefix")

    def __init__(self, out: DecodedBatch, limits: DecodeLimits, exact: bool = False) -> None:
        self.out = out
        self.max_depth = limits.max_depth
        self.max_attributes = limits.max_attributes
        self.exact = exact
        #: the attributes (as listed in INTS_AS_STRINGS) whose integers beyond 64 bits became strings
        self.big_keys: List[str] = []
        self.prefix = ""

    def int_value(self, x: Any) -> Union[int, str]:
        """An ``intValue``: an int64, or beyond 64 bits its exact decimal string."""
        if type(x) is int and -_INT64 <= x < _INT64:
            return x
        if isinstance(x, float) and (not x.is_integer() or abs(x) >= _INT64):
            if not self.exact and math.isfinite(x) and abs(x) >= _INT64:
                raise _Inexact(f"intValue {x!r} is beyond 64 bits and was parsed as a float, losing its digits")
            raise _Bad(f"intValue must be an integer, got the number {x!r}")
        i = _j_int(x, "intValue")
        if -_INT64 <= i < _INT64:
            return i
        self.big_keys.append("")  # the attribute's key is filled in by attrs()
        return str(i)

    def value(self, v: Any, depth: int) -> Any:
        if v is None:
            return None
        if not isinstance(v, dict):
            raise _Bad(f"an AnyValue must be an object, got {type(v).__name__}")
        for key, x in v.items():
            if key in ("stringValue", "string_value"):
                return _j_str(x, "stringValue")
            if key in ("intValue", "int_value"):
                return self.int_value(x)
            if key in ("boolValue", "bool_value"):
                if not isinstance(x, bool):
                    raise _Bad(f"boolValue must be true or false, got {type(x).__name__}")
                return x
            if key in ("doubleValue", "double_value"):
                return _double(x)
            if key in ("bytesValue", "bytes_value"):
                return _bytes(x)
            if key in ("arrayValue", "array_value", "kvlistValue", "kvlist_value"):
                return self.nested(key, x, depth)
        return None  # no known field: an empty AnyValue

    def nested(self, key: str, x: Any, depth: int) -> Any:
        if depth >= self.max_depth:
            self.out.depth_cut += 1
            return NESTED_TOO_DEEP
        if x is None:
            x = {}
        if not isinstance(x, dict):
            raise _Bad(f"{key} must be an object with values")
        values = x.get("values") or []
        if not isinstance(values, list):
            raise _Bad(f"{key}.values must be an array")
        if key.startswith("array"):
            return tuple([self.value(i, depth + 1) for i in values])
        return self.attrs(values, depth + 1)[0]

    def attrs(self, kvs: Any, depth: int = 0) -> Tuple[Dict[str, Any], int]:
        if kvs is None:
            return {}, 0
        if not isinstance(kvs, list):
            raise _Bad(f"attributes must be an array of {{key, value}}, got {type(kvs).__name__}")
        cut = 0
        if len(kvs) > self.max_attributes:
            cut = len(kvs) - self.max_attributes
            kvs = kvs[: self.max_attributes]
            self.out.attributes_cut += 1
        out: Dict[str, Any] = {}
        big = self.big_keys
        for kv in kvs:
            if not isinstance(kv, dict):
                raise _Bad(f"an attribute must be an object {{key, value}}, got {type(kv).__name__}")
            key = _j_str(kv.get("key"), "attribute key")
            n = len(big)
            out[key] = self.value(kv.get("value"), depth)
            if len(big) != n and not depth:  # integers beyond 64 bits in this attribute: listed once, by its key
                del big[n:]
                big.append(self.prefix + key)
        return out, cut

    def resource(self, res: Any) -> Tuple[Dict[str, Any], Tuple[str, ...]]:
        """A resource's attributes, and which of them hold integers kept as strings."""
        if res is None:
            res = {}
        if isinstance(res, Unparsed):
            raise _Bad(res.reason)
        if not isinstance(res, dict):
            raise _Bad("resource must be an object")
        self.big_keys, self.prefix = [], "resource: "
        attributes = self.attrs(res.get("attributes"))[0]
        return attributes, tuple(self.big_keys)

    def events(self, raw_events: Any) -> Tuple[EventRecord, ...]:
        if raw_events is None:
            return ()
        if not isinstance(raw_events, list):
            raise _Bad("events must be an array")
        events = []
        for e in raw_events:
            if not isinstance(e, dict):
                raise _Bad("an event must be an object")
            name = _j_str(e.get("name"), "event name")
            self.prefix = f"event {name[:100]!r}: "
            time_ns = _j_int(_get(e, "timeUnixNano", "time_unix_nano"), "event timeUnixNano", True)
            events.append(EventRecord(name, time_ns, self.attrs(e.get("attributes"))[0]))
        return tuple(events)

    def span(
        self, sp: Any, resource: Dict[str, Any], scope_name: str, scope_version: str, resource_big: Tuple[str, ...] = ()
    ) -> SpanRecord:
        if not isinstance(sp, dict):
            raise _Bad(f"a span must be an object, got {type(sp).__name__}")
        tid = _j_id(_get(sp, "traceId", "trace_id"), 16, "traceId")
        sid = _j_id(_get(sp, "spanId", "span_id"), 8, "spanId")
        pid = _j_id(_get(sp, "parentSpanId", "parent_span_id"), 8, "parentSpanId")
        trace_id, span_id, parent = _ids(tid, sid, pid)
        start = _j_int(_get(sp, "startTimeUnixNano", "start_time_unix_nano"), "startTimeUnixNano", True)
        if not start:
            raise _Bad("startTimeUnixNano is missing")
        end = _j_int(_get(sp, "endTimeUnixNano", "end_time_unix_nano"), "endTimeUnixNano", True) or start
        flags = _j_int(sp.get("flags"), "flags", True)
        ts = _j_str(_get(sp, "traceState", "trace_state"), "traceState")
        self.big_keys, self.prefix = [], ""
        attributes, cut = self.attrs(sp.get("attributes"))
        events = self.events(sp.get("events"))
        status = sp.get("status")
        if status is None:
            status = {}
        if not isinstance(status, dict):
            raise _Bad("status must be an object")
        record = SpanRecord(
            trace_id=trace_id,
            span_id=span_id,
            parent_span_id=parent,
            parent_is_remote=parent is not None and flags & _HAS_IS_REMOTE != 0 and flags & _IS_REMOTE != 0,
            name=_j_str(sp.get("name"), "name"),
            kind=_j_enum(sp.get("kind"), _KIND_NAMES, "kind"),
            start_ns=start,
            end_ns=end,
            attributes=attributes,
            events=events,
            status_code=_j_enum(status.get("code"), _STATUS_NAMES, "status.code"),
            status_message=_j_str(status.get("message"), "status.message"),
            resource=resource,
            scope_name=scope_name,
            scope_version=scope_version,
            dropped_attributes=_j_int(_get(sp, "droppedAttributesCount", "dropped_attributes_count"), "droppedAttributesCount", True) + cut,
            dropped_events=_j_int(_get(sp, "droppedEventsCount", "dropped_events_count"), "droppedEventsCount", True),
            dropped_links=_j_int(_get(sp, "droppedLinksCount", "dropped_links_count"), "droppedLinksCount", True),
            trace_start_hint_ms=_trace_state_hint(ts) if ts else None,
        )
        if self.big_keys or resource_big:
            attributes[INTS_AS_STRINGS] = resource_big + tuple(self.big_keys)
            self.out.ints_as_strings += 1
        return record


def _double(x: Any) -> float:
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        try:
            return float(x)
        except OverflowError:  # an exact integer beyond a double's range
            raise _Bad("doubleValue is beyond the range of a double") from None
    if isinstance(x, str) and x in _FLOAT_WORDS:
        return _FLOAT_WORDS[x]
    raise _Bad(f"doubleValue must be a number (or \"NaN\", \"Infinity\", \"-Infinity\"), got {type(x).__name__}")


def _bytes(x: Any) -> bytes:
    if not isinstance(x, str):
        raise _Bad("bytesValue must be a base64 string")
    try:
        return base64.b64decode(x)
    except (binascii.Error, ValueError):
        raise _Bad("bytesValue is not valid base64") from None


def _j_list(d: Dict[str, Any], camel: str, snake: str, where: str) -> List[Any]:
    v = _get(d, camel, snake)
    if v is None:
        return []
    if not isinstance(v, list):
        got = "a value that is not JSON" if isinstance(v, Unparsed) else type(v).__name__
        raise DecodeError(f"{where}.{camel} must be an array, got {got}")
    return v


#: (where, resourceSpans entry, scopeSpans entry, its spans)
_Plan = List[Tuple[str, Dict[str, Any], Dict[str, Any], List[Any]]]


class _Request:
    """Reads one parsed request (or its skeleton, whose spans are parsed one at a time) into ``out``."""

    __slots__ = ("out", "limits", "reader", "parser", "retry")

    def __init__(self, out: DecodedBatch, limits: DecodeLimits, exact: bool, retry: bool, parser: Optional[SpanParser] = None) -> None:
        self.out = out
        self.limits = limits
        self.reader = _JsonReader(out, limits, exact)
        self.parser = parser
        #: an inexact integer raises instead of rejecting its span: the caller parses the text again, exactly
        self.retry = retry

    def read(self, obj: Any) -> None:
        plan = _plan(obj, self.out)
        if self.out.span_count > self.limits.max_spans:
            raise TooManySpans(self.out.span_count, self.limits.max_spans)
        last_rs: Any = None
        resource: Optional[Tuple[Dict[str, Any], Tuple[str, ...]]] = None
        resource_error = ""
        for where, rs, ss, spans in plan:
            if rs is not last_rs:
                last_rs, resource, resource_error = rs, None, ""
                try:
                    resource = self.reader.resource(rs.get("resource"))
                except _Bad as exc:
                    self._retry(exc)
                    resource_error = f"resource: {exc}"
            if resource is None:
                if spans:
                    self.out.reject(where, resource_error, len(spans))
                continue
            try:
                name, version = _scope(ss.get("scope"))
            except _Bad as exc:
                if spans:
                    self.out.reject(where, f"scope: {exc}", len(spans))
                continue
            self.spans(where, spans, resource, name, version)

    def _retry(self, exc: _Bad) -> None:
        if self.retry and isinstance(exc, _Inexact):
            raise exc

    def spans(self, where: str, spans: List[Any], resource: Tuple[Dict[str, Any], Tuple[str, ...]], name: str, version: str) -> None:
        records = self.out.records
        span = self.reader.span
        attributes, big = resource
        for k, sp in enumerate(spans):
            try:
                if isinstance(sp, RawSpan):
                    records.append(self.raw_span(sp, attributes, name, version, big))
                else:
                    records.append(span(sp, attributes, name, version, big))
            except _Bad as exc:
                self._retry(exc)
                self.out.reject(_label(where, k, sp), str(exc))
            except RecursionError:
                self.out.reject(f"{where}.spans[{k}]", "nested too deep")


    def raw_span(self, raw: RawSpan, resource: Dict[str, Any], name: str, version: str, big: Tuple[str, ...]) -> SpanRecord:
        """A span of the skeleton: parsed now; again, exactly, when orjson lost an integer's digits."""
        assert self.parser is not None
        reader = self.reader
        sp, reader.exact = raw.parse(self.parser)
        out = self.out
        counts = out.depth_cut, out.attributes_cut
        try:
            return reader.span(sp, resource, name, version, big)
        except _Inexact:
            out.depth_cut, out.attributes_cut = counts  # counted again by the exact read
            reader.exact = True
            return reader.span(raw.parse_exact(self.parser), resource, name, version, big)


def _plan(obj: Any, out: DecodedBatch) -> _Plan:
    if not isinstance(obj, dict):
        raise DecodeError(f"an OTLP/JSON trace request must be an object with resourceSpans, got {type(obj).__name__}")
    plan: _Plan = []
    for i, rs in enumerate(_j_list(obj, "resourceSpans", "resource_spans", "")):
        if not isinstance(rs, dict):
            raise DecodeError(f"resourceSpans[{i}] must be an object, got {type(rs).__name__}")
        for j, ss in enumerate(_j_list(rs, "scopeSpans", "scope_spans", f"resourceSpans[{i}]")):
            if not isinstance(ss, dict):
                raise DecodeError(f"resourceSpans[{i}].scopeSpans[{j}] must be an object, got {type(ss).__name__}")
            spans = _j_list(ss, "spans", "spans", f"resourceSpans[{i}].scopeSpans[{j}]")
            out.span_count += len(spans)
            plan.append((f"resourceSpans[{i}].scopeSpans[{j}]", rs, ss, spans))
    return plan


def _scope(scope: Any) -> Tuple[str, str]:
    if scope is None:
        scope = {}
    if isinstance(scope, Unparsed):
        raise _Bad(scope.reason)
    if not isinstance(scope, dict):
        raise _Bad("scope must be an object")
    return _j_str(scope.get("name"), "scope.name"), _j_str(scope.get("version"), "scope.version")


def _label(where: str, k: int, sp: Any) -> str:
    """``<where>.spans[k] ('name')``: the rejected span, by position and (when it can be read) name."""
    name = sp.get("name") if isinstance(sp, dict) else sp.name() if isinstance(sp, RawSpan) else None
    return f"{where}.spans[{k}]" + (f" ({name[:100]!r})" if isinstance(name, str) else "")


def decode_json(obj_or_bytes: Any, limits: Optional[DecodeLimits] = None) -> DecodedBatch:
    """Decode an OTLP/JSON ``ExportTraceServiceRequest`` (bytes, str or the parsed object).

    Raises :class:`JsonTooLarge` before parsing a text beyond ``limits.json_memory``,
    :class:`DecodeError` for a body whose structure above the spans is not JSON or
    not OTLP, :class:`TooManySpans` beyond ``limits.max_spans``. Anything wrong
    inside a span (a value no parser reads, too deep, a wrong type) rejects that
    span alone. A parsed object keeps what its parser made of the numbers: an
    integer beyond 64 bits parsed as a float rejects its span (pass the text).
    """
    limits = limits or DEFAULT_LIMITS
    data = obj_or_bytes
    if isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    out = DecodedBatch()
    if not isinstance(data, (bytes, str)):
        _Request(out, limits, exact=False, retry=False).read(data)
        return out
    fits, _ = fast_fits(data, limits.json_memory)
    why = ""
    if fits:
        tree, exact, why = parse_fast(data)
        if not why:
            try:
                _Request(out, limits, exact, retry=True).read(tree)
                return out
            except _Inexact:
                tree, out = None, DecodedBatch()  # the text again, span by span, with exact integers
    skel, parser = skeleton(data, out, why, limits.json_memory)
    _Request(out, limits, exact=True, retry=False, parser=parser).read(skel)
    return out
