"""Is Opik reachable, and does it accept a set of credentials? ``/readyz`` and admission both ask.

One :class:`OpikProbe` per set of credentials (the sidecar's own, and each sender's with
``--pass-credentials``): ``GET /v1/private/projects?page=1&size=1`` answered 2xx means ready, 401/403
means refused (the one answer that turns senders away: whatever is accepted would be dropped), anything
else (unreachable, 5xx) means not ready but still accepting (the queue and the spool hold the spans).
Answers are cached; the probe blocks for at most ``min(timeout, 3 s)``.
"""

from __future__ import annotations

import threading
import time
from typing import Optional, Tuple

from .._config import OpikSettings
from .._transport import Transport, TransportError, safe_url

PROBE_PATH = "/v1/private/projects?page=1&size=1"


class ProbeResult:
    __slots__ = ("at", "ok", "refused", "why")

    def __init__(self, at: float, ok: bool, refused: bool, why: str) -> None:
        self.at = at
        self.ok = ok
        #: Opik answered 401/403 to these credentials
        self.refused = refused
        self.why = why


class OpikProbe:
    """Thread-safe; ``transport`` None (a dry run): always ready, never refused."""

    def __init__(self, settings: OpikSettings, transport: Optional[Transport], fix: str = "check OPIK_API_KEY and OPIK_WORKSPACE") -> None:
        self.settings = settings
        self.transport = transport
        #: what to fix when Opik refuses these credentials (the setting, never the key)
        self.fix = fix
        self._lock = threading.Lock()
        self._last: Optional[ProbeResult] = None

    def check(self, max_age: float) -> ProbeResult:
        """The last answer if younger than ``max_age`` seconds, else a new one (one caller asks, the others wait)."""
        if self.transport is None:
            return ProbeResult(time.monotonic(), True, False, "dry run: nothing is sent to Opik")
        last = self._last
        if last is not None and time.monotonic() - last.at < max_age:
            return last
        with self._lock:
            last = self._last
            if last is not None and time.monotonic() - last.at < max_age:
                return last
            ok, refused, why = self._ask()
            self._last = ProbeResult(time.monotonic(), ok, refused, why)
            return self._last

    def cached(self) -> Optional[ProbeResult]:
        return self._last

    def _ask(self) -> Tuple[bool, bool, str]:
        url = safe_url(self.settings.url)
        assert self.transport is not None
        try:
            resp = self.transport.get(PROBE_PATH, timeout=min(self.settings.timeout, 3.0))
        except TransportError as exc:
            return False, False, f"Opik at {url} is unreachable: {exc}"
        if resp.ok:
            return True, False, f"Opik at {url} is reachable and accepts the credentials"
        if resp.status in (401, 403):
            return False, True, f"Opik at {url} refused the credentials (HTTP {resp.status}): {self.fix}"
        return False, False, f"Opik at {url} answered HTTP {resp.status}"

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


__all__ = ["OpikProbe", "ProbeResult"]
