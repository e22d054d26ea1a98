"""Request bytes the sidecar holds before the worker is done with them, across both receivers.

A body being read (HTTP), or a message received (gRPC), counts from its first byte until its answer
is sent. When the total would pass ``max_bytes`` a new request is answered "retry later" (HTTP 503 +
``Retry-After``, gRPC ``UNAVAILABLE`` + ``RetryInfo``) instead of being held; one request is always
let in, so a body at the size limit is never refused for the budget alone. Touched on the event loop
only (both receivers run on it), so it needs no lock.
"""

from __future__ import annotations

MIN_BUDGET = 64 * 1024 * 1024

BUSY_MESSAGE = "the sidecar holds too many request bytes right now; retry later"


def default_budget(max_body_bytes: int) -> int:
    """``--max-inflight-bytes`` unset: four bodies at the limit, at least 64 MiB."""
    return max(4 * max_body_bytes, MIN_BUDGET)


class InflightBudget:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.held = 0

    def admits(self, n_bytes: int) -> bool:
        """Whether a request of ``n_bytes`` (0: not known yet) may be held now."""
        return not self.held or self.held + n_bytes <= self.max_bytes

    def take(self, n_bytes: int) -> None:
        self.held += n_bytes

    def release(self, n_bytes: int) -> None:
        self.held -= n_bytes


__all__ = ["BUSY_MESSAGE", "InflightBudget", "default_budget"]
