"""OTLP/JSON trace requests -> :class:`SpanRecord` (the JSON half of :mod:`._otlp`).

Same records, same rejections one span at a time, same limits as the protobuf
decoder; :mod:`._otlp` re-exports :func:`decode_json`.
"""

from __future__ import annotations

import base64
import binascii
import math
from typing import Any, Dict, List, Optional, Tuple, Union

from ._json import loads
from ._otlp import (
    _HAS_IS_REMOTE,
    _IS_REMOTE,
    DEFAULT_LIMITS,
    NESTED_TOO_DEEP,
    DecodedBatch,
    DecodeError,
    DecodeLimits,
    TooManySpans,
    _Bad,
    _ids,
    _trace_state_hint,
)
from ._record import EventRecord, SpanRecord

__all__ = ["decode_json"]


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
    else:
        raise _Bad(f"{what} must be an integer (or a decimal string), got {type(v).__name__}")
    if unsigned and i < 0:
        raise _Bad(f"{what} must not be negative")
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


class _JsonReader:
    __slots__ = ("out", "max_depth", "max_attributes")

    def __init__(self, out: DecodedBatch, limits: DecodeLimits) -> None:
        self.out = out
        self.max_depth = limits.max_depth
        self.max_attributes = limits.max_attributes

    def value(self, v: Any, depth: int) -> Any:
        if v is None:
            return None
        if not isinstance(v, dict):
            raise _Bad(f"an AnyValue must be an object, got {type(v).__name__}")
        for key, x in v.items():
            if key in ("stringValue", "string_value"):
                return _j_str(x, "stringValue")
            if key in ("intValue", "int_value"):
                return _j_int(x, "intValue")
            if key in ("boolValue", "bool_value"):
                if not isinstance(x, bool):
                    raise _Bad(f"boolValue must be true or false, got {type(x).__name__}")
                return x
            if key in ("doubleValue", "double_value"):
                if isinstance(x, (int, float)) and not isinstance(x, bool):
                    return float(x)
                if isinstance(x, str) and x in _FLOAT_WORDS:
                    return _FLOAT_WORDS[x]
                raise _Bad(f"doubleValue must be a number, got {type(x).__name__}")
            if key in ("bytesValue", "bytes_value"):
                if not isinstance(x, str):
                    raise _Bad("bytesValue must be a base64 string")
                try:
                    return base64.b64decode(x)
                except (binascii.Error, ValueError):
                    raise _Bad("bytesValue is not valid base64") from None
            if key in ("arrayValue", "array_value", "kvlistValue", "kvlist_value"):
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
        return None  # no known field: an empty AnyValue

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
        for kv in kvs:
            if not isinstance(kv, dict):
                raise _Bad(f"an attribute must be an object {{key, value}}, got {type(kv).__name__}")
            out[_j_str(kv.get("key"), "attribute key")] = self.value(kv.get("value"), depth)
        return out, cut

    def span(self, sp: Any, resource: Dict[str, Any], scope_name: str, scope_version: str) -> SpanRecord:
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
        attributes, cut = self.attrs(sp.get("attributes"))
        raw_events = sp.get("events")
        if raw_events is None:
            raw_events = []
        if not isinstance(raw_events, list):
            raise _Bad("events must be an array")
        events = []
        for e in raw_events:
            if not isinstance(e, dict):
                raise _Bad("an event must be an object")
            events.append(
                EventRecord(
                    _j_str(e.get("name"), "event name"),
                    _j_int(_get(e, "timeUnixNano", "time_unix_nano"), "event timeUnixNano", True),
                    self.attrs(e.get("attributes"))[0],
                )
            )
        status = sp.get("status")
        if status is None:
            status = {}
        if not isinstance(status, dict):
            raise _Bad("status must be an object")
        return SpanRecord(
            trace_id=trace_id,
            span_id=span_id,
            parent_span_id=parent,
            parent_is_remote=parent is not None and flags & _HAS_IS_REMOTE != 0 and flags & _IS_REMOTE != 0,
            name=_j_str(sp.get("name"), "name"),
            kind=_j_enum(sp.get("kind"), _KIND_NAMES, "kind"),
            start_ns=start,
            end_ns=end,
            attributes=attributes,
            events=tuple(events),
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


def _j_list(d: Dict[str, Any], camel: str, snake: str, where: str) -> List[Any]:
    v = _get(d, camel, snake)
    if v is None:
        return []
    if not isinstance(v, list):
        raise DecodeError(f"{where}.{camel} must be an array, got {type(v).__name__}")
    return v


def decode_json(obj_or_bytes: Any, limits: Optional[DecodeLimits] = None) -> DecodedBatch:
    """Decode an OTLP/JSON ``ExportTraceServiceRequest`` (bytes, str or the parsed object).

    Raises :class:`DecodeError` for invalid JSON or a wrong structure above the
    span level, :class:`TooManySpans` beyond ``limits.max_spans``.
    """
    limits = limits or DEFAULT_LIMITS
    out = DecodedBatch()
    obj = obj_or_bytes
    if isinstance(obj, (bytes, bytearray, memoryview, str)):
        obj = _parse_json(obj, out)
    if not isinstance(obj, dict):
        raise DecodeError(f"an OTLP/JSON trace request must be an object with resourceSpans, got {type(obj).__name__}")
    plan: List[Tuple[str, Any, Any, List[Any]]] = []
    for i, rs in enumerate(_j_list(obj, "resourceSpans", "resource_spans", "")):
        if not isinstance(rs, dict):
            raise DecodeError(f"resourceSpans[{i}] must be an object, got {type(rs).__name__}")
        for j, ss in enumerate(_j_list(rs, "scopeSpans", "scope_spans", f"resourceSpans[{i}]")):
            if not isinstance(ss, dict):
                raise DecodeError(f"resourceSpans[{i}].scopeSpans[{j}] must be an object, got {type(ss).__name__}")
            spans = _j_list(ss, "spans", "spans", f"resourceSpans[{i}].scopeSpans[{j}]")
            out.span_count += len(spans)
            plan.append((f"resourceSpans[{i}].scopeSpans[{j}]", rs, ss, spans))
    if out.span_count > limits.max_spans:
        raise TooManySpans(out.span_count, limits.max_spans)
    reader = _JsonReader(out, limits)
    last_rs: Any = None
    resource: Optional[Dict[str, Any]] = None
    resource_error = ""
    for where, rs, ss, spans in plan:
        if rs is not last_rs:
            last_rs, resource, resource_error = rs, None, ""
            try:
                res = rs.get("resource")
                if res is None:
                    res = {}
                if not isinstance(res, dict):
                    raise _Bad("resource must be an object")
                resource = reader.attrs(res.get("attributes"))[0]
            except _Bad as exc:
                resource_error = f"resource: {exc}"
        if resource is None:
            if spans:
                out.reject(where, resource_error, len(spans))
            continue
        try:
            scope = ss.get("scope")
            if scope is None:
                scope = {}
            if not isinstance(scope, dict):
                raise _Bad("scope must be an object")
            name, version = _j_str(scope.get("name"), "scope.name"), _j_str(scope.get("version"), "scope.version")
        except _Bad as exc:
            if spans:
                out.reject(where, f"scope: {exc}", len(spans))
            continue
        for k, sp in enumerate(spans):
            try:
                out.records.append(reader.span(sp, resource, name, version))
            except _Bad as exc:
                label = sp.get("name") if isinstance(sp, dict) else None
                out.reject(f"{where}.spans[{k}]" + (f" ({label!r})" if isinstance(label, str) else ""), str(exc))
            except RecursionError:
                out.reject(f"{where}.spans[{k}]", "nested too deep")
    return out


def _parse_json(data: Union[bytes, bytearray, memoryview, str], out: DecodedBatch) -> Any:
    if isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    try:
        return loads(data)
    except ValueError as first:
        error = first
    # orjson refuses invalid UTF-8 and lone surrogates; OTel values may hold both.
    import json

    try:
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        obj = json.loads(text)
    except (ValueError, RecursionError):
        raise DecodeError(f"the body is not valid JSON: {str(error)[:200]}") from None
    out.utf8_replaced += 1
    return obj
