"""What the receivers answered: requests by protocol and status, spans accepted and refused, time spent."""

from __future__ import annotations

import threading
from typing import Dict, List, Optional, Tuple


class ReceiverCounters:
    """Thread-safe counters behind ``opik_otel_receiver_*`` on ``/metrics``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: (protocol, status) -> requests answered
        self.responses: Dict[Tuple[str, str], int] = {}
        self.spans_accepted = 0
        #: answered 429/413/503/401: the sender keeps them
        self.spans_refused = 0
        self.log_records_accepted = 0
        self.metrics_requests = 0
        self.request_seconds = 0.0
        self.requests_timed = 0

    def accepted(self, n: int) -> None:
        with self._lock:
            self.spans_accepted += n

    def refused(self, n: int) -> None:
        with self._lock:
            self.spans_refused += n

    def log_records(self, n: int) -> None:
        with self._lock:
            self.log_records_accepted += n

    def metrics_request(self) -> bool:
        """Count one discarded metrics request; True for the first one."""
        with self._lock:
            self.metrics_requests += 1
            return self.metrics_requests == 1

    def response(self, protocol: str, status: str, seconds: Optional[float] = None) -> None:
        with self._lock:
            key = (protocol, status)
            self.responses[key] = self.responses.get(key, 0) + 1
            if seconds is not None:
                self.request_seconds += seconds
                self.requests_timed += 1

    def snapshot(self) -> Tuple[List[Tuple[Tuple[str, str], int]], int, int, float, int]:
        with self._lock:
            return sorted(self.responses.items()), self.spans_accepted, self.spans_refused, self.request_seconds, self.requests_timed


__all__ = ["ReceiverCounters"]
