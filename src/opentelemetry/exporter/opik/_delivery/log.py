"""Log lines of the delivery path: at most one per kind of problem every 30 s."""

from __future__ import annotations

import logging
import threading
import time
from typing import Dict

_logger = logging.getLogger("opentelemetry.exporter.opik")


class RateLimitedLog:
    """At most one log line per ``interval`` seconds per key; says how many it held back."""

    def __init__(self, interval: float = 30.0) -> None:
        self._interval = interval
        self._last: Dict[str, float] = {}
        self._held: Dict[str, int] = {}
        self._lock = threading.Lock()

    def __call__(self, key: str, level: int, msg: str, *args: object) -> bool:
        """Log unless ``key`` logged within the interval; True if this line was logged."""
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self._interval:
                self._held[key] = self._held.get(key, 0) + 1
                return False
            held = self._held.pop(key, 0)
            self._last[key] = now
        if held:
            msg += f" ({held} similar messages in the last {self._interval:.0f} s not shown)"
        _logger.log(level, msg, *args)
        return True


__all__ = ["RateLimitedLog"]
