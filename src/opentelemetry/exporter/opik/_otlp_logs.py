"""OTLP logs (``ExportLogsServiceRequest``, protobuf or JSON) decoded into the join's log tuples.

Only what the join needs: each log record's trace and span ids, event name
(``event_name``, or the ``event.name`` attribute), time, attributes and body.
Values are converted by the trace decoder's readers (same depth and attribute
limits). A record that cannot be read is rejected alone (partial success).
"""

from __future__ import annotations

from typing import Any, List, Optional, Tuple

from ._otlp import DecodedBatch, DecodeError, DecodeLimits, _Bad, _PbReader
from ._otlp_json import _j_id, _j_int, _j_str, _JsonReader
from ._otlp_json_parse import LOG_LEVELS, RawSpan, parse_request

LogTuple = Tuple[int, int, Optional[str], int, Any, Any]


class DecodedLogs:
    __slots__ = ("records", "rejected", "reasons")

    def __init__(self) -> None:
        self.records: List[LogTuple] = []
        self.rejected = 0
        self.reasons: List[str] = []

    def reject(self, reason: str) -> None:
        self.rejected += 1
        if len(self.reasons) < 5:
            self.reasons.append(reason)

    def message(self) -> str:
        if not self.rejected:
            return ""
        return f"{self.rejected} log records could not be decoded: " + "; ".join(self.reasons)


def _int_id(raw: bytes, size: int) -> int:
    return int.from_bytes(raw, "big") if len(raw) == size else 0


def decode_logs_protobuf(data: bytes, limits: Optional[DecodeLimits] = None) -> DecodedLogs:
    from google.protobuf.message import DecodeError as PbDecodeError
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    limits = limits or DecodeLimits()
    req = ExportLogsServiceRequest()
    try:
        req.ParseFromString(data)
    except (PbDecodeError, ValueError) as exc:
        raise DecodeError(f"not an ExportLogsServiceRequest ({exc})") from None
    out = DecodedLogs()
    reader = _PbReader(DecodedBatch(), limits, lenient=False)
    n = 0
    for rl in req.resource_logs:
        for sl in rl.scope_logs:
            for lr in sl.log_records:
                n += 1
                if n > limits.max_spans:
                    out.reject(f"more than {limits.max_spans} log records in one request")
                    continue
                try:
                    attrs = reader.attrs(lr.attributes)[0]
                    body = reader.value(lr.body, 0) if lr.HasField("body") else None
                    out.records.append(
                        (
                            _int_id(lr.trace_id, 16),
                            _int_id(lr.span_id, 8),
                            getattr(lr, "event_name", "") or None,
                            lr.time_unix_nano or lr.observed_time_unix_nano,
                            attrs,
                            body,
                        )
                    )
                except Exception as exc:  # noqa: BLE001 - one bad record never sinks the request
                    out.reject(type(exc).__name__)
    return out


def decode_logs_json(data: Any, limits: Optional[DecodeLimits] = None) -> DecodedLogs:
    limits = limits or DecodeLimits()
    counts = DecodedBatch()
    # in one parse, or (a value orjson refuses, or over the memory budget) record by record: a bad value costs its record
    obj, parser = parse_request(data, counts, limits.json_memory, LOG_LEVELS)
    if not isinstance(obj, dict):
        raise DecodeError("an ExportLogsServiceRequest must be a JSON object")
    out = DecodedLogs()
    reader = _JsonReader(counts, limits)
    n = 0
    for rl in obj.get("resourceLogs") or obj.get("resource_logs") or []:
        if not isinstance(rl, dict):
            out.reject("a resourceLogs entry is not an object")
            continue
        for sl in rl.get("scopeLogs") or rl.get("scope_logs") or []:
            if not isinstance(sl, dict):
                out.reject("a scopeLogs entry is not an object")
                continue
            for lr in sl.get("logRecords") or sl.get("log_records") or []:
                n += 1
                if n > limits.max_spans:
                    out.reject(f"more than {limits.max_spans} log records in one request")
                    continue
                try:
                    if isinstance(lr, RawSpan) and parser is not None:
                        lr, reader.exact = lr.parse(parser)
                    if not isinstance(lr, dict):
                        raise _Bad("a log record must be an object")
                    attrs = reader.attrs(lr.get("attributes"))[0]
                    body = reader.value(lr.get("body"), 0)
                    name = lr.get("eventName", lr.get("event_name"))
                    t = lr.get("timeUnixNano", lr.get("time_unix_nano")) or lr.get("observedTimeUnixNano") or 0
                    out.records.append(
                        (
                            _int_id(_j_id(lr.get("traceId", lr.get("trace_id")), 16, "traceId"), 16),
                            _int_id(_j_id(lr.get("spanId", lr.get("span_id")), 8, "spanId"), 8),
                            _j_str(name, "eventName") or None if name is not None else None,
                            _j_int(t, "timeUnixNano", unsigned=True),
                            attrs,
                            body,
                        )
                    )
                except _Bad as exc:
                    out.reject(str(exc)[:200])
                except Exception as exc:  # noqa: BLE001
                    out.reject(type(exc).__name__)
    return out


def logs_response(rejected: int, message: str, as_json: bool) -> bytes:
    """``ExportLogsServiceResponse``; ``partial_success`` only when something was rejected or warned."""
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse

    from ._json import dumps

    if as_json:
        if not rejected and not message:
            return b"{}"
        partial: dict = {}
        if rejected:
            partial["rejectedLogRecords"] = str(rejected)
        if message:
            partial["errorMessage"] = message
        return dumps({"partialSuccess": partial})
    resp = ExportLogsServiceResponse()
    if rejected or message:
        resp.partial_success.rejected_log_records = rejected
        resp.partial_success.error_message = message
    return resp.SerializeToString()


def metrics_response(as_json: bool) -> bytes:
    """An empty ``ExportMetricsServiceResponse`` (all accepted)."""
    return b"{}" if as_json else b""


__all__ = ["DecodedLogs", "decode_logs_json", "decode_logs_protobuf", "logs_response", "metrics_response"]
