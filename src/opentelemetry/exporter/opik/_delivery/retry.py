"""The retry loop: one request, sent again on transient failures until its deadline.

What each answer means comes from :func:`.policy.classify`; this module only decides *when* to send
again and when to give up (:class:`GiveUp` with the reason), honouring what flush and shutdown ask
through the shared :class:`Lifecycle`: a retry wait is cut short for an attempt now, a shutdown's
limit replaces the deadline, an abort stops at once.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Callable, List, Optional, Tuple

from .._items import ENDPOINTS, Item, request_body
from .._stats import Stats
from .._transport import Response, Transport, TransportError, safe_url
from .log import RateLimitedLog
from .policy import Action, Outcome, classify, retry_delay

if TYPE_CHECKING:  # pragma: no cover
    from .._config import OpikSettings

_logger = logging.getLogger("opentelemetry.exporter.opik")

#: first retry wait bound (seconds); doubles per attempt up to BACKOFF_CAP (full jitter below it)
BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0
#: retry waits after a 401/403: from this, doubling per attempt, up to AUTH_BACKOFF_CAP
AUTH_BACKOFF_BASE = 1.0
AUTH_BACKOFF_CAP = 60.0
#: no request for this long after a refusal confirmed over a whole retry deadline
AUTH_PAUSE = 60.0
#: a request that timed out is retried with twice the timeout, up to this many times the setting
TIMEOUT_GROWTH = 4
#: at shutdown, an Opik that never answered this process and refuses connections (or whose name does not
#: resolve) gets attempts for this long, not the whole shutdown timeout: nothing is listening there
UNREACHABLE_AT_CLOSE = 1.0


class GiveUp(Exception):
    """A request was abandoned; ``reason`` is the drop reason (or ``taken``: flush/shutdown took the items)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Lifecycle:
    """What flush and shutdown tell the request in progress."""

    def __init__(self) -> None:
        #: stop now: whoever aborted owns what is left
        self.abort = threading.Event()
        #: cut a retry wait short (flush, closing, a takeover)
        self.interrupt = threading.Event()
        #: the shutdown's limit (monotonic seconds), once it began
        self.close_by: Optional[float] = None
        self.closed = False


def gave_up_reason(refused: bool, closing: bool) -> str:
    return "unauthorized" if refused else ("shutdown" if closing else "retry_deadline")


class RetryLoop:
    """Sends one request body until a final answer; keeps the auth and up/down state between requests."""

    def __init__(
        self,
        settings: "OpikSettings",
        transport: Transport,
        stats: Stats,
        life: Lifecycle,
        log: RateLimitedLog,
        *,
        spool_on: Callable[[], bool],
        on_ok: Callable[[], None],
    ) -> None:
        self.settings = settings
        self.transport = transport
        self.stats = stats
        self.life = life
        self._log = log
        self._spool_on = spool_on
        self._on_ok = on_ok
        self.backoff_base = BACKOFF_BASE
        self.backoff_cap = BACKOFF_CAP
        self.auth_pause = AUTH_PAUSE
        #: no request before this (monotonic) after a refusal confirmed over a whole deadline
        self.paused_until = 0.0
        #: a refusal was logged and no request succeeded since (one error line per episode)
        self._auth_logged = False
        self._down_since: Optional[float] = None
        #: Opik gave an HTTP answer (any status) in this process
        self._answered = False
        #: the last attempt's connection error (refused, DNS, connect timeout); None after an answer
        self.connect_error: Optional[str] = None
        #: closing, Opik never answered and refuses connections: give up by then (monotonic)
        self._unreachable_by: Optional[float] = None

    def reset(self) -> None:
        """After fork: the parent's refusal and outage state are not the child's."""
        self.paused_until = 0.0
        self._auth_logged = False
        self._down_since = None
        self._answered = False
        self.connect_error = None
        self._unreachable_by = None

    def auth_paused(self) -> bool:
        return time.monotonic() < self.paused_until

    def request(
        self, kind: str, items: List[Item], deadline: float, taken: Callable[[List[Item]], bool]
    ) -> Tuple[Outcome, Response]:
        """The final answer to ``items`` (not one worth retrying); raises :class:`GiveUp` if abandoned.

        A request that timed out is retried with twice the timeout (up to ``TIMEOUT_GROWTH`` times
        the setting): a slow Opik that stores what it is sent then converges instead of being sent
        the same body again and again.
        """
        method, path, key = ENDPOINTS[kind]
        body = request_body(kind, items)
        attempt = 0
        last_chance = False
        refused = False  # the last answer refused our credentials
        timeout = self.settings.timeout
        while True:
            limit, closing = self._limit(deadline)
            if self.life.abort.is_set():
                raise GiveUp("shutdown")
            remaining = limit - time.monotonic()
            if remaining <= 0.01:
                raise GiveUp(gave_up_reason(refused, closing))
            resp, err = self._send_once(method, path, body, min(timeout, remaining))
            self._note_reach(err)
            if resp is not None:
                outcome = classify(resp.status, resp.headers, resp.text, n_items=len(items), key=key)
            else:
                outcome = classify(None, {}, "")
            refused = outcome.action is Action.PAUSE
            if resp is not None and not refused and outcome.action is not Action.RETRY:
                self._note_up(resp.ok)
                return outcome, resp
            self._after_failure(resp, refused, closing)
            if err is not None and err.timed_out:
                timeout = min(timeout * 2, self.settings.timeout * TIMEOUT_GROWTH)
            delay = retry_delay(
                attempt, refused=refused, base=self.backoff_base, cap=self.backoff_cap,
                auth_base=AUTH_BACKOFF_BASE, auth_cap=AUTH_BACKOFF_CAP, hint=outcome.delay_hint,
                no_answer=err is not None,
            )
            delay, last_chance = self._fit_delay(limit, delay, outcome.delay_hint, last_chance, refused, closing)
            if delay > 0 and not self.life.closed:  # closing: the shutdown's summary says what happened
                self._log(
                    "retry", logging.WARNING,
                    "Opik at %s unavailable (%s); retrying %d %ss in %.1f s",
                    safe_url(self.settings.url), err or f"HTTP {resp.status if resp is not None else '?'}",
                    len(items), kind, delay,
                )
            self.stats.add("retries")
            attempt += 1
            self._wait(delay, items, taken)

    def _note_reach(self, err: Optional[TransportError]) -> None:
        if err is None:
            self._answered, self.connect_error, self._unreachable_by = True, None, None
            return
        self.connect_error = None if err.timed_out else str(err)
        if self.connect_error and not self._answered and self.life.closed and self._unreachable_by is None:
            self._unreachable_by = time.monotonic() + UNREACHABLE_AT_CLOSE

    def _limit(self, deadline: float) -> Tuple[float, bool]:
        """The time this request must be resolved by, and whether that is the shutdown's limit."""
        close_by = self.life.close_by
        if close_by is not None and self._unreachable_by is not None:
            close_by = min(close_by, self._unreachable_by)
        if close_by is not None and close_by < deadline:
            return close_by, True
        return deadline, False

    def _send_once(
        self, method: str, path: str, body: bytes, timeout: float
    ) -> Tuple[Optional[Response], Optional[TransportError]]:
        t0 = time.monotonic()
        try:
            resp = self.transport.request(method, path, body, timeout=timeout)
        except TransportError as exc:
            self.stats.record_request(time.monotonic() - t0, "error")
            return None, exc
        self.stats.record_request(time.monotonic() - t0, "ok" if resp.ok else f"http_{resp.status}")
        return resp, None

    def _after_failure(self, resp: Optional[Response], refused: bool, closing: bool) -> None:
        """Bookkeeping after an answer worth retrying; raises :class:`GiveUp` when retrying is pointless."""
        if refused and resp is not None:
            self._auth_failed(resp)
            if closing:
                raise GiveUp("unauthorized")  # shutting down: that was the last attempt
        if self._down_since is None:
            self._down_since = time.monotonic()
        if self.life.closed and self._spool_on():
            # spooled now and re-sent later beats holding up the exit
            raise GiveUp("unauthorized" if refused else "shutdown")

    def _fit_delay(
        self, limit: float, delay: float, hint: Optional[float], last_chance: bool, refused: bool, closing: bool
    ) -> Tuple[float, bool]:
        """``(delay, last_chance)`` within ``limit``; raises :class:`GiveUp` when no attempt fits."""
        now = time.monotonic()
        if now + delay < limit:
            return delay, last_chance
        # One last attempt just before the deadline (room for the request), unless the
        # server said not before then: giving up early would waste the rest of the window.
        room = limit - now - min(self.settings.timeout, 2.0)
        if last_chance or room <= 0.05 or (hint is not None and now + hint >= limit):
            if refused and not closing:
                self.paused_until = time.monotonic() + self.auth_pause  # confirmed
            raise GiveUp(gave_up_reason(refused, closing))
        return room, True

    def _wait(self, delay: float, items: List[Item], taken: Callable[[List[Item]], bool]) -> None:
        """The backoff wait; a flush or shutdown cuts it short for an attempt now."""
        if delay > 0 and self.life.interrupt.wait(delay):
            if self.life.abort.is_set():
                raise GiveUp("shutdown")
            if taken(items):
                raise GiveUp("taken")
            self.life.interrupt.clear()  # woken by a flush, a closing, or another batch's takeover: go on

    def _note_up(self, ok: bool) -> None:
        if ok:
            self._on_ok()
            self._auth_logged = False
        if self._down_since is not None:
            down = time.monotonic() - self._down_since
            self._down_since = None
            if down >= 1.0:
                _logger.warning("Opik at %s answers again after %.1f s", safe_url(self.settings.url), down)

    def _auth_failed(self, resp: Response) -> None:
        """One clear error per refusal episode: URL, workspace, the setting to fix (never the key)."""
        s = self.settings
        if self._auth_logged:
            return
        self._auth_logged = True
        key_src = s.sources.get("api_key", "") if s.sources else ""
        ws_src = s.sources.get("workspace", "default") if s.sources else "default"
        if resp.status == 401:
            if s.api_key:
                fix = f"OPIK_API_KEY (the key set via {key_src or 'the settings'} is not accepted here)"
            else:
                fix = "OPIK_API_KEY (no API key is set, and this Opik requires one)"
        else:
            fix = f"OPIK_WORKSPACE (set via {ws_src}) or the API key's access to that workspace"
        opik_says = resp.text.strip()[:200]
        _logger.error(
            "Opik at %s refused the credentials (HTTP %d%s) for workspace %r: fix %s. "
            "Retrying with backoff for up to %d s, keeping the spans; if Opik still refuses then, they are %s "
            "and counted in exporter.stats().",
            safe_url(s.url), resp.status, f": {opik_says}" if opik_says else "", s.workspace, fix,
            int(s.retry_deadline), "spooled" if self._spool_on() else "dropped",
        )


__all__ = [
    "AUTH_BACKOFF_BASE", "AUTH_BACKOFF_CAP", "AUTH_PAUSE", "BACKOFF_BASE", "BACKOFF_CAP", "TIMEOUT_GROWTH",
    "UNREACHABLE_AT_CLOSE",
    "GiveUp", "Lifecycle", "RetryLoop", "gave_up_reason",
]
