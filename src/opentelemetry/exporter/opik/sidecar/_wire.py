"""Response bodies: ``ExportTraceServiceResponse``, ``google.rpc.Status`` and ``RetryInfo``.

``google.rpc`` messages are three fields each, encoded here by hand so the
sidecar needs no ``googleapis-common-protos``.
"""

from __future__ import annotations

import math

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from .._json import dumps
from .._otlp import encode_varint
from .._otlp_logs import logs_response, metrics_response
from ._outcome import BUSY, INVALID, LOGS, METRICS, OK, TOO_LARGE, UNAUTHENTICATED, UNAVAILABLE, Outcome

# gRPC status codes (google.rpc.Code), also used in HTTP error bodies
GRPC_OK = 0
GRPC_INVALID_ARGUMENT = 3
GRPC_RESOURCE_EXHAUSTED = 8
GRPC_UNAVAILABLE = 14
GRPC_UNAUTHENTICATED = 16
GRPC_UNIMPLEMENTED = 12

#: each outcome's HTTP status and google.rpc code (the code of a gRPC answer, and of HTTP error bodies)
HTTP_STATUS = {OK: 200, INVALID: 400, UNAUTHENTICATED: 401, TOO_LARGE: 413, BUSY: 429, UNAVAILABLE: 503}
RPC_CODE = {
    OK: GRPC_OK,
    INVALID: GRPC_INVALID_ARGUMENT,
    UNAUTHENTICATED: GRPC_UNAUTHENTICATED,
    TOO_LARGE: GRPC_INVALID_ARGUMENT,  # never RESOURCE_EXHAUSTED: OTLP clients would retry it
    BUSY: GRPC_RESOURCE_EXHAUSTED,  # retried by OTLP clients because it carries a RetryInfo
    UNAVAILABLE: GRPC_UNAVAILABLE,
}

RETRY_INFO_TYPE = "type.googleapis.com/google.rpc.RetryInfo"
EMPTY_RESPONSE_PB = ExportTraceServiceResponse().SerializeToString()
EMPTY_RESPONSE_JSON = b"{}"


def _len_field(number: int, payload: bytes) -> bytes:
    return encode_varint(number << 3 | 2) + encode_varint(len(payload)) + payload


def _int_field(number: int, value: int) -> bytes:
    return encode_varint(number << 3) + encode_varint(value) if value else b""


def retry_info(seconds: float) -> bytes:
    """``google.rpc.RetryInfo{retry_delay: Duration}``."""
    whole = int(math.floor(seconds))
    nanos = int(round((seconds - whole) * 1e9))
    duration = _int_field(1, whole) + _int_field(2, nanos)
    return _len_field(1, duration)


def status_pb(code: int, message: str, retry_after: float = 0.0) -> bytes:
    """``google.rpc.Status``, with a ``RetryInfo`` detail when ``retry_after`` is set."""
    out = _int_field(1, code)
    if message:
        out += _len_field(2, message.encode("utf-8", "replace"))
    if retry_after > 0:
        any_msg = _len_field(1, RETRY_INFO_TYPE.encode()) + _len_field(2, retry_info(retry_after))
        out += _len_field(3, any_msg)
    return out


def status_json(code: int, message: str, retry_after: float = 0.0) -> bytes:
    body: dict = {"code": code, "message": message}
    if retry_after > 0:
        body["details"] = [{"@type": RETRY_INFO_TYPE, "retryDelay": f"{retry_after:g}s"}]
    return dumps(body)


def export_response(rejected: int, message: str, as_json: bool) -> bytes:
    """``ExportTraceServiceResponse``; ``partial_success`` only when something was rejected or warned."""
    if not rejected and not message:
        return EMPTY_RESPONSE_JSON if as_json else EMPTY_RESPONSE_PB
    if as_json:
        partial: dict = {}
        if rejected:
            partial["rejectedSpans"] = str(rejected)  # int64 as a string, per the proto3 JSON mapping
        if message:
            partial["errorMessage"] = message
        return dumps({"partialSuccess": partial})
    resp = ExportTraceServiceResponse()
    resp.partial_success.rejected_spans = rejected
    resp.partial_success.error_message = message
    return resp.SerializeToString()


def success_body(outcome: Outcome, as_json: bool) -> bytes:
    """The ``Export*ServiceResponse`` of a successful request of ``outcome.signal``."""
    if outcome.signal == LOGS:
        return logs_response(outcome.rejected, outcome.message, as_json)
    if outcome.signal == METRICS:
        return metrics_response(as_json)
    return export_response(outcome.rejected, outcome.message, as_json)


def error_body(outcome: Outcome, as_json: bool) -> bytes:
    """``google.rpc.Status`` of a refused request (JSON or protobuf), with its retry delay."""
    code = RPC_CODE[outcome.code]
    if as_json:
        return status_json(code, outcome.message, outcome.retry_after)
    return status_pb(code, outcome.message, outcome.retry_after)
