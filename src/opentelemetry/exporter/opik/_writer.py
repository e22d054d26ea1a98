"""The batching writer: bounded queue -> one sender thread -> Opik.

Shared by the exporter and the sidecar. ``submit`` never blocks: beyond the
item/byte bounds the newest items are dropped and counted. The sender groups
items by endpoint (traces before spans before scores), cuts requests at the
item and byte budget, and resolves every request to delivered, retried,
split (413), bisected to the rejected items (400/422), spooled or dropped,
each counted in :class:`Stats` and logged without content or secrets.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections import deque
from typing import Any, Callable, Deque, Dict, List, Optional, Sequence

from opentelemetry import context as otel_context

from ._config import OpikSettings
from ._items import ENDPOINTS, KIND_ORDER, Item, request_body
from ._stats import Stats
from ._transport import RETRYABLE_STATUS, Response, Transport, TransportError

_logger = logging.getLogger("opentelemetry.exporter.opik")

BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0
AUTH_PAUSE = 300.0
LINGER = 0.05
_SUPPRESS_KEYS = ("suppress_instrumentation", "suppress_http_instrumentation")


def _suppressed_context() -> Any:
    ctx = otel_context.get_current()
    for key in _SUPPRESS_KEYS:
        ctx = otel_context.set_value(key, True, ctx)
    try:  # the keys the instrumentations really check
        from opentelemetry.context import _SUPPRESS_HTTP_INSTRUMENTATION_KEY, _SUPPRESS_INSTRUMENTATION_KEY

        ctx = otel_context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, True, ctx)
        ctx = otel_context.set_value(_SUPPRESS_HTTP_INSTRUMENTATION_KEY, True, ctx)
    except ImportError:  # pragma: no cover - very old API
        pass
    return ctx


class _RateLimitedLog:
    """At most one log line per ``interval`` seconds per key; counts what it held back."""

    def __init__(self, interval: float = 30.0) -> None:
        self._interval = interval
        self._last: Dict[str, float] = {}
        self._held: Dict[str, int] = {}
        self._lock = threading.Lock()

    def __call__(self, key: str, level: int, msg: str, *args: Any) -> None:
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self._interval:
                self._held[key] = self._held.get(key, 0) + 1
                return
            held = self._held.pop(key, 0)
            self._last[key] = now
        if held:
            msg += f" ({held} similar messages suppressed)"
        _logger.log(level, msg, *args)


class Writer:
    """Bounded, non-blocking, batching delivery to Opik."""

    def __init__(
        self,
        settings: OpikSettings,
        transport: Optional[Transport] = None,
        stats: Optional[Stats] = None,
        spool: Optional[Any] = None,
        shrink: Optional[Callable[[Item, int], Optional[Item]]] = None,
    ) -> None:
        self.settings = settings
        self.transport = transport or Transport(settings)
        self.stats = stats or Stats()
        self.spool = spool
        self._shrink = shrink
        self._log = _RateLimitedLog()
        self._init_state()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._after_fork)

    def _init_state(self) -> None:
        self._queue: Deque[Item] = deque()
        self._queued_bytes = 0
        self._inflight = 0
        self._cond = threading.Condition(threading.Lock())
        self._abort = threading.Event()
        self._closed = False
        self._thread: Optional[threading.Thread] = None
        self._auth_paused_until = 0.0
        self._pid = os.getpid()

    def _after_fork(self) -> None:
        # The child starts clean: the parent's queued items stay the parent's.
        self._init_state()
        self.transport.reset()

    # -- producer side -------------------------------------------------------------
    def has_capacity(self, n_items: int = 1, n_bytes: int = 0) -> bool:
        s = self.settings
        return (
            len(self._queue) + n_items <= s.max_queue_items
            and self._queued_bytes + n_bytes <= s.max_queue_bytes
        )

    def submit(self, items: Sequence[Item]) -> int:
        """Queue ``items``; returns how many were accepted (the rest are dropped and counted)."""
        if not items:
            return 0
        if self._pid != os.getpid():  # forked without the at-fork hook (uWSGI)
            self._after_fork()
        s = self.settings
        accepted = 0
        with self._cond:
            if self._closed:
                self.stats.drop("shutdown", len(items))
                return 0
            q = self._queue
            for item in items:
                if len(q) >= s.max_queue_items or self._queued_bytes + item.size > s.max_queue_bytes:
                    break
                q.append(item)
                self._queued_bytes += item.size
                accepted += 1
            if accepted:
                self._cond.notify_all()
        dropped = len(items) - accepted
        if dropped:
            self.stats.drop("queue_full", dropped)
            self._log(
                "queue_full",
                logging.WARNING,
                "Opik exporter queue is full (%d items / %d bytes bound): dropped %d items; "
                "Opik is slower than the span rate or unreachable (raise OTEL_EXPORTER_OPIK_MAX_QUEUE_ITEMS/_BYTES)",
                s.max_queue_items,
                s.max_queue_bytes,
                dropped,
            )
        self._ensure_thread()
        return accepted

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            with self._cond:
                if self._thread is None or not self._thread.is_alive():
                    if self._closed:
                        return
                    self._thread = threading.Thread(target=self._run, name="OpikWriter", daemon=True)
                    self._thread.start()

    def pending(self) -> int:
        with self._cond:
            return len(self._queue) + self._inflight

    def flush(self, timeout: Optional[float] = None) -> bool:
        """Wait until everything queued so far is resolved; False on timeout."""
        self._ensure_thread()
        end = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._cond.notify_all()
            while self._queue or self._inflight:
                remaining = None if end is None else end - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining if remaining is None else min(remaining, 0.5))
        return True

    def shutdown(self, timeout: float = 30.0) -> bool:
        """Deliver what is queued within ``timeout``; spool (or drop, counted) the rest."""
        with self._cond:
            if self._closed:
                return True
            self._closed = True
            self._cond.notify_all()
        thread = self._thread
        done = True
        if thread is not None and thread.is_alive() and os.getpid() == self._pid:
            done = self.flush(max(timeout - 0.2, 0.0))
            self._abort.set()  # interrupt any retry wait; the sender spools or drops what is left
            with self._cond:
                self._cond.notify_all()
            thread.join(min(max(timeout * 0.1, 0.2), 2.0))
        with self._cond:
            leftover = list(self._queue)
            self._queue.clear()
            self._queued_bytes = 0
        if leftover:
            self._give_up(leftover, "shutdown")
            done = False
        self.transport.close()
        return done

    # -- sender side ---------------------------------------------------------------
    def _run(self) -> None:
        token = otel_context.attach(_suppressed_context())
        try:
            while True:
                batch = self._take()
                if batch is None:
                    return
                try:
                    self._send_batch(batch)
                except Exception:  # noqa: BLE001 - the sender thread must survive anything
                    _logger.exception("Opik exporter: unexpected error while sending; %d items dropped", len(batch))
                    self.stats.drop("internal_error", len(batch))
                finally:
                    with self._cond:
                        self._inflight -= len(batch)
                        self._cond.notify_all()
        finally:
            otel_context.detach(token)

    def _take(self) -> Optional[List[Item]]:
        s = self.settings
        cap_items = s.batch_max_items * 3
        cap_bytes = s.batch_max_bytes * 3
        with self._cond:
            while not self._queue:
                if self._closed or self._abort.is_set():
                    return None
                self._cond.wait(1.0)
            if len(self._queue) < s.batch_max_items and not self._closed:
                self._cond.wait(LINGER)  # let a burst gather into fewer requests
            out: List[Item] = []
            size = 0
            q = self._queue
            while q and len(out) < cap_items and (not out or size + q[0].size <= cap_bytes):
                item = q.popleft()
                size += item.size
                out.append(item)
            self._queued_bytes -= size
            self._inflight += len(out)
            return out

    def _send_batch(self, batch: List[Item]) -> None:
        by_kind: Dict[str, List[Item]] = {}
        for item in batch:
            by_kind.setdefault(item.kind, []).append(item)
        deadline = time.monotonic() + self.settings.retry_deadline
        for kind in KIND_ORDER:
            items = by_kind.get(kind)
            if items:
                for chunk in self._chunks(items):
                    self._deliver(kind, chunk, deadline)

    def _chunks(self, items: List[Item]) -> List[List[Item]]:
        s = self.settings
        out: List[List[Item]] = []
        cur: List[Item] = []
        size = 0
        for item in items:
            if cur and (len(cur) >= s.batch_max_items or size + item.size > s.batch_max_bytes):
                out.append(cur)
                cur, size = [], 0
            cur.append(item)
            size += item.size
        if cur:
            out.append(cur)
        return out

    def _deliver(self, kind: str, items: List[Item], deadline: float) -> None:
        """Resolve ``items`` completely: delivered, split, bisected, spooled or dropped."""
        if time.monotonic() < self._auth_paused_until:
            self._give_up(items, "unauthorized")
            return
        resp = self._request_with_retry(kind, items, deadline)
        if resp is None:
            self._give_up(items, "shutdown" if self._abort.is_set() else "retry_deadline")
            return
        status = resp.status
        if resp.ok:
            self._count_delivered(kind, len(items))
        elif status == 413:
            if len(items) > 1:
                half = len(items) // 2
                self._deliver(kind, items[:half], deadline)
                self._deliver(kind, items[half:], deadline)
            else:
                self._deliver_oversized(kind, items[0], deadline)
        elif status in (400, 422):
            if len(items) > 1:
                half = len(items) // 2
                self._deliver(kind, items[:half], deadline)
                self._deliver(kind, items[half:], deadline)
            else:
                self.stats.drop("rejected")
                _logger.error(
                    "Opik rejected %s %s of %s (HTTP %d): %s",
                    kind,
                    items[0].id,
                    items[0].label,
                    status,
                    resp.text[:500],
                )
        elif status in (401, 403):
            self._auth_paused_until = time.monotonic() + AUTH_PAUSE
            s = self.settings
            setting = "OPIK_API_KEY" if status == 401 else "OPIK_WORKSPACE (or the key's access to it)"
            _logger.error(
                "Opik at %s refused the credentials (HTTP %d) for workspace %r: check %s. "
                "Sending paused for %d s; spans are dropped and counted meanwhile.",
                s.url,
                status,
                s.workspace,
                setting,
                int(AUTH_PAUSE),
            )
            self._give_up(items, "unauthorized")
        else:
            hint = " (is the URL right? it must end with /api for a self-hosted Opik)" if status in (404, 405) else ""
            self._log(
                f"http{status}",
                logging.ERROR,
                "Opik answered HTTP %d to %s %s%s: %d %s dropped: %s",
                status,
                ENDPOINTS[kind][0],
                self.settings.url + ENDPOINTS[kind][1],
                hint,
                len(items),
                kind + "s",
                resp.text[:300],
            )
            self.stats.drop(f"http_{status}", len(items))

    def _deliver_oversized(self, kind: str, item: Item, deadline: float) -> None:
        shrunk = self._shrink(item, max(self.settings.batch_max_bytes // 4, 1024)) if self._shrink else None
        if shrunk is None or shrunk.size >= item.size:
            self.stats.drop("too_large")
            _logger.error("Opik refused %s %s of %s as too large (%d bytes)", kind, item.id, item.label, item.size)
            return
        self._log("shrunk", logging.WARNING, "%s %s of %s was too large for Opik: sent truncated", kind, item.id, item.label)
        resp = self._request_with_retry(kind, [shrunk], deadline)
        if resp is not None and resp.ok:
            self._count_delivered(kind, 1)
        elif resp is None:
            self._give_up([shrunk], "retry_deadline")
        else:
            self.stats.drop("too_large")
            _logger.error("Opik refused truncated %s %s of %s (HTTP %d)", kind, item.id, item.label, resp.status)

    def _count_delivered(self, kind: str, n: int) -> None:
        self.stats.add({"trace": "traces_exported", "span": "spans_exported"}.get(kind, "scores_exported"), n)

    def _request_with_retry(self, kind: str, items: List[Item], deadline: float) -> Optional[Response]:
        """One request, retried on transient failures until ``deadline``; None if given up."""
        method, path, _ = ENDPOINTS[kind]
        body = request_body(kind, items)
        attempt = 0
        while True:
            if self._abort.is_set():
                return None
            remaining = deadline - time.monotonic()
            t0 = time.monotonic()
            self.stats.add("requests")
            try:
                resp = self.transport.request(method, path, body, timeout=min(self.settings.timeout, max(remaining, 0.05)))
                err: Optional[str] = None
            except TransportError as exc:
                resp, err = None, str(exc)
            self.stats.add("request_seconds_total", time.monotonic() - t0)
            if resp is not None and resp.status not in RETRYABLE_STATUS:
                return resp
            self.stats.add("requests_failed")
            delay = min(BACKOFF_CAP, BACKOFF_BASE * (2**attempt)) * random.random()
            hint = resp.server_delay() if resp is not None else None
            if hint is not None:
                delay = max(delay, hint)
            if attempt == 0 and err is not None:
                delay = min(delay, 0.1)  # a stale pooled connection: retry at once
            if time.monotonic() + delay >= deadline:
                return None
            why = err or f"HTTP {resp.status if resp is not None else '?'}"
            self._log(
                "retry",
                logging.WARNING,
                "Opik at %s unavailable (%s); retrying %d %s in %.1f s",
                self.settings.url,
                why,
                len(items),
                kind + "s",
                delay,
            )
            self.stats.add("retries")
            attempt += 1
            if self._abort.wait(delay):
                return None

    def _give_up(self, items: List[Item], reason: str) -> None:
        if self.spool is not None:
            try:
                n = self.spool.write(items)
                self.stats.add("items_spooled", n)
                if n == len(items):
                    return
                items = items[n:]
                reason = "spool_full"
            except Exception:  # noqa: BLE001
                _logger.exception("Opik exporter: could not write the spool; items dropped")
        self.stats.drop(reason, len(items))
        self._log(
            "drop_" + reason,
            logging.WARNING,
            "Opik exporter dropped %d items (%s)",
            len(items),
            reason,
        )
