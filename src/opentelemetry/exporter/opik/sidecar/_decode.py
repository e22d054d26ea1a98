"""Decode dispatch: one request body (its encoding, its content type, its signal) to decoded data or an error.

Traces become a :class:`DecodedBatch`, logs a :class:`DecodedLogs`; metrics are only checked against
the body limits (they are discarded). Every failure is an :class:`Outcome` naming what to fix.
"""

from __future__ import annotations

import logging
from typing import Optional, Union

from .._errors import trail
from .._otlp import DecodedBatch, DecodeError, DecodeLimits, RequestTooLarge, decode_json, decode_protobuf
from .._otlp_logs import DecodedLogs, decode_logs_json, decode_logs_protobuf
from ._decompress import BodyTooLarge, decompress
from ._outcome import INVALID, LOGS, METRICS, TOO_LARGE, TRACES, Outcome

_logger = logging.getLogger("opentelemetry.exporter.opik.sidecar")

JSON_TYPES = ("application/json",)
PROTOBUF_TYPES = ("application/x-protobuf", "application/protobuf")
_WHAT = {TRACES: "ExportTraceServiceRequest", LOGS: "ExportLogsServiceRequest", METRICS: "ExportMetricsServiceRequest"}

#: what the metrics signal decodes to: nothing is kept
DISCARDED = None
Decoded = Union[DecodedBatch, DecodedLogs, None]


class Limits:
    """What one request may cost; every limit answers with a clear status and message."""

    __slots__ = ("max_body_bytes", "decode")

    def __init__(self, max_body_bytes: int = 20 * 1024 * 1024, decode: Optional[DecodeLimits] = None) -> None:
        #: bytes of a request body, on the wire and again after decompression (HTTP 413)
        self.max_body_bytes = max_body_bytes
        self.decode = decode or DecodeLimits()


def media_type(content_type: str) -> str:
    """``application/json; charset=utf-8`` -> ``application/json``."""
    return content_type.split(";", 1)[0].strip().lower()


def is_json(content_type: str) -> bool:
    return media_type(content_type) in JSON_TYPES


def decode(body: bytes, encoding: str, content_type: str, signal: str, limits: Limits) -> Union[Decoded, Outcome]:
    """Decompress and decode one request body (the receiver checked the type and encoding are known)."""
    limit = limits.max_body_bytes
    as_json = is_json(content_type)
    try:
        data = decompress(body, encoding, limit)
        if signal == METRICS:
            return DISCARDED
        if signal == LOGS:
            return decode_logs_json(data, limits.decode) if as_json else decode_logs_protobuf(data, limits.decode)
        return decode_json(data, limits.decode) if as_json else decode_protobuf(data, limits.decode)
    except BodyTooLarge:
        return Outcome(TOO_LARGE, f"the request body is larger than {limit} bytes after decompression; send smaller batches", signal=signal)
    except RequestTooLarge as exc:  # too many spans, or an OTLP/JSON parse beyond its memory budget
        return Outcome(TOO_LARGE, str(exc), signal=signal)
    except DecodeError as exc:
        kind = "OTLP/JSON" if as_json else "OTLP protobuf"
        return Outcome(INVALID, f"the body is not a valid {kind} {_WHAT[signal]}: {exc}", signal=signal)
    except Exception as exc:  # noqa: BLE001 - a decoder bug must not become a 5xx or stop the sidecar
        _logger.error("unexpected error while decoding an OTLP %s request: %s", signal, trail(exc))
        return Outcome(INVALID, f"the body could not be decoded ({type(exc).__name__}); see the sidecar log", signal=signal)


__all__ = ["DISCARDED", "JSON_TYPES", "PROTOBUF_TYPES", "Limits", "decode", "is_json", "media_type"]
