"""What one OTLP request came to, independent of the transport; each receiver translates it.

The codes are the sidecar's promises to a sender (see ``docs/cli.md``, "What an answer means"):

- ``OK``: every span that could be decoded and mapped is queued (on disk with a spool); the rest are
  named in the partial-success message;
- ``BUSY``: nothing was taken, only because the sidecar is busy right now: retry later (HTTP 429 +
  ``Retry-After`` / gRPC ``UNAVAILABLE`` + ``RetryInfo``, both retried by OTLP exporters);
- ``TOO_LARGE``: nothing was taken, and the request can never fit (HTTP 413 / gRPC
  ``INVALID_ARGUMENT``, never retried);
- ``INVALID``: not an OTLP request (HTTP 400 / gRPC ``INVALID_ARGUMENT``);
- ``UNAVAILABLE``: nothing was taken: the sidecar is stopping, or Opik refuses its credentials
  (HTTP 503 / gRPC ``UNAVAILABLE``, with a message saying which);
- ``UNAUTHENTICATED``: nothing was taken: Opik refuses the credentials the sender passed through
  (HTTP 401 / gRPC ``UNAUTHENTICATED``).
"""

from __future__ import annotations

OK = "ok"
INVALID = "invalid"
TOO_LARGE = "too_large"
BUSY = "busy"
UNAVAILABLE = "unavailable"
UNAUTHENTICATED = "unauthenticated"

#: the OTLP signal a request carries (its HTTP path, its gRPC service)
TRACES = "traces"
LOGS = "logs"
METRICS = "metrics"


class Outcome:
    __slots__ = ("code", "message", "rejected", "retry_after", "signal")

    def __init__(self, code: str, message: str = "", rejected: int = 0, retry_after: float = 0.0, signal: str = TRACES) -> None:
        self.code = code
        #: for errors the reason; for OK a partial-success warning (may be empty)
        self.message = message
        #: spans (log records) that could not be decoded or mapped (partial success)
        self.rejected = rejected
        self.retry_after = retry_after
        self.signal = signal

    def __repr__(self) -> str:
        return f"Outcome({self.code}, rejected={self.rejected}, {self.message!r})"


__all__ = ["BUSY", "INVALID", "LOGS", "METRICS", "OK", "TOO_LARGE", "TRACES", "UNAUTHENTICATED", "UNAVAILABLE", "Outcome"]
