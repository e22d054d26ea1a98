"""The batching writer: bounded queue -> one sender thread -> Opik.

Shared by the exporter and the sidecar. ``submit`` never blocks: beyond the
item/byte bounds (queued plus in flight) the newest items are dropped and
counted. The sender groups items by endpoint (traces before spans before
scores), cuts requests at the item and byte budget, and resolves every item to
exactly one outcome, each counted in :class:`Stats`:

* delivered (2xx; 409 means Opik has it already);
* retried on connection errors, timeouts, 408/429/5xx with full-jitter
  exponential backoff, waiting at least what ``Retry-After``/``RateLimit-Reset``
  ask, until the retry deadline (then spooled or dropped);
* split in halves on 413 (and the byte budget learns from it); a single item
  too large is shrunk visibly (``shrink``) rather than dropped;
* isolated on 400/422: Opik's error indexes (or bisection) find the rejected
  items, every other item is delivered, each rejected item is logged once with
  Opik's error text and its span name and ids;
* retried on 401/403 too, with a backoff from 1 s doubling to 60 s, until the
  retry deadline: one clear error naming URL, workspace and the setting to fix,
  and nothing dropped for a refusal that goes away (a key rotated, a proxy
  restarting). A refusal that lasts the whole deadline is confirmed: those items
  are spooled or dropped as ``unauthorized`` and, for ``auth_pause``, new ones
  too without a request, after which one request tries again;
* spooled to disk (if a spool is configured) when undeliverable now, and
  re-sent from the spool when Opik answers again or at the next start.

``flush``/``shutdown`` return within their timeouts even with Opik down: the
retry waits are interruptible, and what is left (queued or in flight) is
spooled or counted as dropped by the caller. After ``fork`` the child starts
empty: the parent's items stay the parent's.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections import deque
from typing import TYPE_CHECKING, Any, Callable, Deque, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from . import _metrics
from ._config import OpikSettings
from ._delivery.durable import DurableLog
from ._delivery.policy import Action, Outcome, classify, retry_delay
from ._items import ENDPOINTS, EXPORTED_COUNTER, KIND_ORDER, Item, request_body
from ._stats import Stats
from ._transport import Response, Transport, TransportError, safe_url

if TYPE_CHECKING:  # pragma: no cover
    from ._spool import Claim, Spool

_logger = logging.getLogger("opentelemetry.exporter.opik")

#: first retry wait bound (seconds); doubles per attempt up to BACKOFF_CAP (full jitter below it)
BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0
#: retry waits after a 401/403: from this, doubling per attempt, up to AUTH_BACKOFF_CAP
AUTH_BACKOFF_BASE = 1.0
AUTH_BACKOFF_CAP = 60.0
#: no request for this long after a refusal confirmed over a whole retry deadline
AUTH_PAUSE = 60.0
#: how long the sender lets a burst gather before it cuts a request
LINGER = 0.05
#: after a failed re-send from the spool, wait this long before the next one unless a request succeeds
REPLAY_RETRY = 30.0
#: how often an idle sender looks for batches other processes spooled
SPOOL_SCAN_INTERVAL = 5.0
#: at interpreter exit, a writer nobody shut down gets this long to flush
ATEXIT_FLUSH = 5.0
#: requests a 400/422 isolation may spend per original request before it gives up on the rest
ISOLATION_BUDGET = 256
#: the byte budget never shrinks below this, however small the 413s
MIN_BYTE_BUDGET = 16 * 1024
#: a single item is never shrunk below this
MIN_SHRINK_BYTES = 1024
#: a request that timed out is retried with twice the timeout, up to this many times the setting
TIMEOUT_GROWTH = 8

ShrinkFn = Callable[[Item, int], Optional[Item]]


class _RateLimitedLog:
    """At most one log line per ``interval`` seconds per key; says how many it held back."""

    def __init__(self, interval: float = 30.0) -> None:
        self._interval = interval
        self._last: Dict[str, float] = {}
        self._held: Dict[str, int] = {}
        self._lock = threading.Lock()

    def __call__(self, key: str, level: int, msg: str, *args: Any) -> bool:
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


class _GiveUp(Exception):
    """Internal: a request was abandoned; ``reason`` is the drop reason (or ``taken``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _gave_up_reason(refused: bool, closing: bool) -> str:
    return "unauthorized" if refused else ("shutdown" if closing else "retry_deadline")


class Writer:
    """Bounded, non-blocking, batching delivery to Opik (see the module docstring)."""

    def __init__(
        self,
        settings: OpikSettings,
        transport: Optional[Transport] = None,
        stats: Optional[Stats] = None,
        spool: Optional["Spool"] = None,
        shrink: Optional[ShrinkFn] = None,
        *,
        backoff_base: float = BACKOFF_BASE,
        backoff_cap: float = BACKOFF_CAP,
        auth_pause: float = AUTH_PAUSE,
        linger: float = LINGER,
        replay_retry: float = REPLAY_RETRY,
    ) -> None:
        self.settings = settings
        self.transport = transport or Transport(settings)
        self.stats = stats or Stats()
        self.spool = spool
        #: the durable queue: with a spool, accepted items are on disk until resolved
        self._durable: Optional[DurableLog] = DurableLog(spool) if spool is not None else None
        self._shrink = shrink
        #: retry tuning; public so a deployment (or a test) can tighten it
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.auth_pause = auth_pause
        self.linger = linger
        self.replay_retry = replay_retry
        self._closed = False
        self._init_state()
        _WRITERS.add(self)
        ref = weakref.ref(self)
        self.stats.set_gauge_source(lambda: _gauges(ref))
        _metrics.register(self.stats, lambda: _gauges(ref))
        if spool is not None:
            self._adopt_spool(spool)

    def _adopt_spool(self, spool: "Spool") -> None:
        """Send what the spool holds (left by this or an earlier run, or a process that died) once Opik answers."""
        spool.stats = self.stats
        spool.stale_after = max(spool.stale_after, 3 * float(self.settings.retry_deadline))
        spool.recover()
        if spool.pending():
            self.kick()

    def _init_state(self) -> None:
        self._queue: Deque[Item] = deque()
        self._queued_bytes = 0
        self._inflight_items = 0
        self._inflight_bytes = 0
        #: unresolved items of the batch being sent, by id(): what a takeover spools
        self._current: Dict[int, Item] = {}
        #: takeovers so far, and the count when the batch being sent was taken from the queue:
        #: while they are equal, every item of the batch is still the sender's
        self._takeovers = 0
        self._batch_takeovers = 0
        self._cond = threading.Condition(threading.Lock())
        self._abort = threading.Event()
        self._interrupt = threading.Event()
        self._close_by: Optional[float] = None
        self._thread: Optional[threading.Thread] = None
        self._auth_paused_until = 0.0
        #: a refusal was logged and no request succeeded since (one error line per episode)
        self._auth_logged = False
        self._pid = os.getpid()
        self._log = _RateLimitedLog()
        self._dropped_unlogged = 0
        self._byte_budget = self.settings.batch_max_bytes
        self._replaying = False
        self._replay_leftover: List[Item] = []
        #: id(shrunk copy) -> the original item, while a batch is being sent
        self._origin: Dict[int, Item] = {}
        self._next_replay_at = 0.0
        self._next_spool_scan = 0.0
        self._down_since: Optional[float] = None

    def _after_fork(self) -> None:
        # The child starts clean: the parent's queued and in-flight items stay the
        # parent's (sending them here too would duplicate work and race on sockets).
        self._init_state()
        if self._durable is not None:
            self._durable.after_fork()
        self.transport.reset()

    # -- producer side -------------------------------------------------------------
    def has_capacity(self, n_items: int = 1, n_bytes: int = 0) -> bool:
        s = self.settings
        return (
            len(self._queue) + self._inflight_items + n_items <= s.max_queue_items
            and self._queued_bytes + self._inflight_bytes + n_bytes <= s.max_queue_bytes
        )

    def submit(self, items: Sequence[Item], force: bool = False) -> int:
        """Queue ``items``; returns how many were accepted (the rest are dropped and counted). Never blocks.

        ``force`` queues them even past the bounds: for items already acknowledged
        against a reservation (the sidecar answers before it maps), which the
        bounds have counted in advance.

        With a spool (the durable queue) the accepted items are on disk when this returns, and
        items beyond the memory bounds are kept there for a re-send instead of being dropped.
        """
        if not items:
            return 0
        if self._pid != os.getpid():  # forked without the at-fork hook (uWSGI)
            self._after_fork()
        if self._closed:
            self.stats.drop("shutdown", len(items))
            return 0
        limit = self.settings.max_queue_bytes
        fit = [i for i in items if i.size <= limit]
        too_large = len(items) - len(fit)
        if too_large:
            self._drop_too_large([i for i in items if i.size > limit])
        durable = self._durable is not None and self._durable.append(fit)
        with self._cond:
            queued = 0 if self._closed else self._enqueue(fit, force)
        rest = fit[queued:]
        if rest and durable and self._durable is not None:
            self._durable.settle(rest, keep=True)  # on disk already: re-sent from there
            self.stats.add("items_spooled", len(rest))
            self._log(
                "kept_on_disk", logging.WARNING,
                "Opik exporter: the memory queue is full (or closed); %d items are kept in the spool at %s "
                "and will be re-sent", len(rest), self.spool.directory if self.spool is not None else "?",
            )
            queued += len(rest)
        elif rest:
            self._drop_unqueued(len(rest))
        self._ensure_thread()
        return queued

    def _enqueue(self, items: List[Item], force: bool) -> int:
        """Append the longest prefix of ``items`` that fits the bounds (all, with ``force``); caller holds the lock."""
        s = self.settings
        q = self._queue
        n_held = len(q) + self._inflight_items
        b_held = self._queued_bytes + self._inflight_bytes
        added = 0
        accepted = 0
        for item in items:
            if not force and (n_held >= s.max_queue_items or b_held + item.size > s.max_queue_bytes):
                break
            q.append(item)
            n_held += 1
            b_held += item.size
            added += item.size
            accepted += 1
        self._queued_bytes += added
        if accepted:
            self._cond.notify_all()
        return accepted

    def _drop_too_large(self, items: List[Item]) -> None:
        for item in items:
            self.stats.drop("too_large")
            _logger.error(
                "Opik exporter dropped %s %s of %s: %d bytes is more than OTEL_EXPORTER_OPIK_MAX_QUEUE_BYTES",
                item.kind, item.id, item.label, item.size,
            )

    def _drop_unqueued(self, n: int) -> None:
        if self._closed:
            self.stats.drop("shutdown", n)
            return
        self.stats.drop("queue_full", n)
        with self._cond:
            self._dropped_unlogged += n
        self._warn_queue_full()

    def _warn_queue_full(self) -> None:
        s = self.settings
        with self._cond:
            n = self._dropped_unlogged
        # Rate-limited; the count covers every drop since the last line.
        logged = self._log(
            "queue_full",
            logging.WARNING,
            "Opik exporter queue is full (bound: %d items / %d bytes): dropped the newest %d items since the last warning; "
            "Opik is slower than the span rate or unreachable (raise OTEL_EXPORTER_OPIK_MAX_QUEUE_ITEMS/_BYTES, "
            "or set OTEL_EXPORTER_OPIK_SPOOL_DIR)",
            s.max_queue_items,
            s.max_queue_bytes,
            n,
        )
        if logged:
            with self._cond:
                self._dropped_unlogged -= n

    def kick(self) -> None:
        """Make sure the sender runs (e.g. to re-send what a spool holds)."""
        self._next_spool_scan = 0.0
        self._ensure_thread()
        with self._cond:
            self._cond.notify_all()

    def _ensure_thread(self) -> bool:
        """Start the sender if needed; False if no thread can be started (interpreter exiting)."""
        t = self._thread
        if t is not None and t.is_alive():
            return True
        with self._cond:
            t = self._thread
            if t is not None and t.is_alive():
                return True
            if self._abort.is_set():
                return False
            t = threading.Thread(target=self._run, name="OpikWriter", daemon=True)
            try:
                t.start()
            except RuntimeError:  # "can't create new thread at interpreter shutdown" (3.12+)
                return False
            self._thread = t
            return True

    def pending(self) -> int:
        with self._cond:
            return len(self._queue) + self._inflight_items

    def drops_refused(self) -> bool:
        """True while a refusal of the credentials is confirmed and, with no spool, new items would be dropped."""
        return self.spool is None and time.monotonic() < self._auth_paused_until

    def _wait_idle(self, end: Optional[float]) -> bool:
        with self._cond:
            self._cond.notify_all()
            while self._queue or self._inflight_items:
                remaining = None if end is None else end - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(0.5 if remaining is None else min(remaining, 0.5))
        return True

    def flush(self, timeout: Optional[float] = None) -> bool:
        """Wait until everything queued so far is resolved; False on timeout.

        On timeout with a spool configured, what is still waiting (queued or in
        a retry) is written to the spool, so a process frozen or killed right
        after (serverless) loses nothing; it is re-sent once Opik answers.
        """
        end = None if timeout is None else time.monotonic() + max(timeout, 0.0)
        if self._pid != os.getpid():
            self._after_fork()
        if not self._ensure_thread():
            return self._drain_inline(end)
        self._interrupt.set()  # a retry wait in progress makes its attempt now
        if self._wait_idle(end):
            return True
        if self.spool is not None:
            self._give_up_now(self._take_over(), "flush_timeout")
        return False

    def shutdown(self, timeout: float = 30.0) -> bool:
        """Deliver what is queued within ``timeout``; spool (or drop, counted) the rest. Idempotent."""
        start = time.monotonic()
        end = start + max(timeout, 0.0)
        with self._cond:
            if self._closed:
                return True
            self._closed = True
        if self._pid != os.getpid():
            self._after_fork()
        done = True
        # Keep a slice of the time to spool what is left; the sender stops retrying before it.
        reserve = min(0.5, max(timeout, 0.0) * 0.2)
        with self._cond:
            self._close_by = end - reserve
            self._cond.notify_all()
        # A retry wait in progress re-checks: with a spool, closing does not wait on a down Opik,
        # and a refusal of our credentials gets one last attempt, not the rest of the backoff.
        self._interrupt.set()
        if self.pending():
            if self._ensure_thread():
                done = self._wait_idle(end - reserve)
            else:
                done = self._drain_inline(end - reserve)
        self._abort.set()
        self._interrupt.set()
        with self._cond:
            self._cond.notify_all()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(max(end - reserve / 2 - time.monotonic(), 0.0))
        leftover = self._take_over()
        if leftover:
            done = False
            self._give_up_now(leftover, "shutdown")
        if thread is None or not thread.is_alive():
            self.transport.close()
        return done

    def _take_over(self) -> List[Item]:
        """Take every unresolved item from the sender (queued and in flight) and stop its retry wait."""
        with self._cond:
            items = list(self._current.values()) + list(self._queue)
            self._current.clear()
            self._takeovers += 1
            self._queue.clear()
            self._queued_bytes = 0
            self._inflight_items = 0
            self._inflight_bytes = 0
            self._cond.notify_all()
        if items:
            self._interrupt.set()
        return items

    def _drain_inline(self, end: Optional[float]) -> bool:
        """Send in the calling thread (no sender thread can be started, e.g. at interpreter exit)."""
        while True:
            if end is not None and time.monotonic() >= end:
                return not self.pending()
            batch = self._pop_batch(wait=False)
            if batch is None:
                return True
            saved = self._close_by
            if end is not None:
                self._close_by = end if saved is None else min(saved, end)
            try:
                self._send_batch(batch)
            finally:
                self._close_by = saved
                self._finish_batch(batch)

    # -- sender side ---------------------------------------------------------------
    def _run(self) -> None:
        while True:
            work = self._take()
            if work is None:
                return
            _, payload = work
            if not isinstance(payload, list):  # a spooled batch to re-send
                try:
                    self._replay(payload)
                except Exception:  # noqa: BLE001 - the sender thread must survive anything
                    _logger.exception("Opik exporter: unexpected error while re-sending a spooled batch")
                continue
            batch = payload
            try:
                self._send_batch(batch)
            except Exception:  # noqa: BLE001 - the sender thread must survive anything
                with self._cond:
                    lost = list(self._current.values())
                    self._current.clear()
                _logger.exception("Opik exporter: unexpected error while sending; %d items dropped", len(lost))
                self._settle(lost, keep=False)
                self.stats.drop("internal_error", len(lost))
            finally:
                self._finish_batch(batch)

    def _finish_batch(self, batch: List[Item]) -> None:
        self._origin.clear()
        with self._cond:
            self._current.clear()
            self._inflight_items = max(self._inflight_items - len(batch), 0)
            self._inflight_bytes = max(self._inflight_bytes - sum(i.size for i in batch), 0)
            self._cond.notify_all()

    def _take(self) -> Optional[Tuple[str, Union[List[Item], "Claim"]]]:
        """Next work: ``("items", batch)``, ``("replay", claim)``, or None to stop."""
        while True:
            batch = self._pop_batch(wait=True)
            if batch is None:
                return None
            if batch:
                return "items", batch
            claim = self._claim_spooled()
            if claim is not None:
                return "replay", claim
            with self._cond:
                if not self._queue and not self._closed and not self._abort.is_set():
                    self._cond.wait(1.0)

    def _pop_batch(self, wait: bool) -> Optional[List[Item]]:
        """Items for the next requests; [] when idle and a spool re-send may run; None to stop."""
        s = self.settings
        with self._cond:
            if self._abort.is_set():
                return None  # whoever aborted owns what is left
            while not self._queue:
                if self._closed or self._abort.is_set() or not wait:
                    return None
                if self._replay_due():
                    return []
                self._cond.wait(1.0)
            if wait and len(self._queue) < s.batch_max_items and not self._closed and self.linger > 0:
                self._cond.wait(self.linger)  # let a burst gather into fewer requests
            if not self._queue:
                return [] if not self._closed else None
            cap_items = s.batch_max_items * 3
            cap_bytes = self._byte_budget * 3
            q = self._queue
            out: List[Item]
            if len(q) <= cap_items and self._queued_bytes <= cap_bytes:
                out = list(q)  # the usual case: everything queued fits in one batch
                q.clear()
                size = self._queued_bytes
            else:
                out = []
                size = 0
                while q and len(out) < cap_items and (not out or size + q[0].size <= cap_bytes):
                    item = q.popleft()
                    size += item.size
                    out.append(item)
            self._queued_bytes -= size
            self._inflight_items += len(out)
            self._inflight_bytes += size
            self._current = {id(i): i for i in out}
            self._batch_takeovers = self._takeovers
            self._interrupt.clear()
            if self._abort.is_set():
                self._interrupt.set()
            return out

    def _send_batch(self, batch: List[Item]) -> None:
        by_kind: Dict[str, List[Item]] = {}
        for item in batch:
            by_kind.setdefault(item.kind, []).append(item)
        for kind in KIND_ORDER:
            items = by_kind.pop(kind, None)
            if items:
                for chunk in self._chunks(items):
                    self._deliver(kind, chunk, time.monotonic() + self.settings.retry_deadline, [ISOLATION_BUDGET])
        for kind, items in by_kind.items():  # an unknown kind: nothing to send it to
            self._settle(self._resolve(items), keep=False)
            self.stats.drop("unknown_kind", len(items))
            _logger.error("Opik exporter: %d items of unknown kind %r dropped", len(items), kind)

    def _chunks(self, items: List[Item]) -> List[List[Item]]:
        max_items = self.settings.batch_max_items
        budget = self._byte_budget
        out: List[List[Item]] = []
        cur: List[Item] = []
        size = 0
        for item in items:
            n = item.size
            if cur and (len(cur) >= max_items or size + n > budget):
                out.append(cur)
                cur, size = [], 0
            cur.append(item)
            size += n
        if cur:
            out.append(cur)
        return out

    # -- resolution ------------------------------------------------------------------
    def _resolve(self, items: Sequence[Item]) -> List[Item]:
        """Mark ``items`` resolved; returns those that were still ours (not taken over)."""
        if self._replaying:
            return list(items)
        with self._cond:
            pop = self._current.pop
            return [i for i in items if pop(id(i), None) is not None]

    def _is_taken(self, items: Sequence[Item]) -> bool:
        if self._replaying:
            return False
        with self._cond:
            return not any(id(i) in self._current for i in items)

    def _swap(self, old: Item, new: Item) -> bool:
        """Track ``new`` (a shrunk copy) instead of ``old``; False if ``old`` was taken over."""
        if self._replaying:
            return True
        with self._cond:
            if self._current.pop(id(old), None) is None:
                return False
            self._current[id(new)] = new
            return True

    def _delivered(self, kind: str, items: Sequence[Item]) -> None:
        # Items taken over meanwhile (spooled by flush/shutdown) are counted when re-sent.
        ours = self._resolve(items)
        if ours:
            self._settle(ours, keep=False)
            self.stats.add(EXPORTED_COUNTER.get(kind, "scores_exported"), len(ours))

    def _deliver(
        self, kind: str, items: List[Item], deadline: float, budget: List[int], trust_index: bool = True
    ) -> None:
        """Resolve ``items`` completely: delivered, split, isolated, shrunk, spooled or dropped."""
        if not self._replaying and self._takeovers != self._batch_takeovers:
            with self._cond:  # a flush/shutdown took some over (and spooled them)
                items = [i for i in items if id(i) in self._current]
        if not items:
            return
        if len(items) == 1 and items[0].size > self.settings.batch_max_bytes:
            self._deliver_oversized(kind, items[0], deadline, self.settings.batch_max_bytes, budget)
            return
        if time.monotonic() < self._auth_paused_until:
            self._give_up(items, "unauthorized")
            return
        try:
            outcome, resp = self._request_with_retry(kind, items, deadline)
        except _GiveUp as g:
            self._give_up(items, g.reason)
            return
        self._act(kind, items, outcome, resp, deadline, budget, trust_index)

    def _act(
        self, kind: str, items: List[Item], outcome: Outcome, resp: Response, deadline: float, budget: List[int],
        trust_index: bool,
    ) -> None:
        """Carry out the policy's decision for a final (not retried) answer."""
        action = outcome.action
        if action is Action.DELIVERED:
            self._delivered(kind, items)
        elif action is Action.SPLIT:
            self._learn_budget(sum(i.size for i in items))
            half = len(items) // 2
            self._deliver(kind, items[:half], deadline, budget)
            self._deliver(kind, items[half:], deadline, budget)
        elif action is Action.SHRINK:
            self._learn_budget(items[0].size)
            target = min(self._byte_budget, items[0].size // 2)
            self._deliver_oversized(kind, items[0], deadline, target, budget)
        elif action is Action.ISOLATE:
            self._isolate(kind, items, outcome.errors if trust_index else {}, resp, deadline, budget)
        else:
            self._final_error(kind, items, outcome, resp)

    def _learn_budget(self, body_size: int) -> None:
        new = max(min(self._byte_budget, body_size // 2), MIN_BYTE_BUDGET)
        if new < self._byte_budget:
            self._byte_budget = new
            self._log(
                "budget", logging.INFO,
                "Opik refused a %d-byte request as too large (413); requests are now cut at %d bytes",
                body_size, new,
            )

    def _deliver_oversized(self, kind: str, item: Item, deadline: float, target: int, budget: List[int]) -> None:
        # A shrunk copy that is still too large is shrunk again from the original, to a smaller target.
        original = self._origin.get(id(item), item)
        shrunk: Optional[Item] = None
        if target >= MIN_SHRINK_BYTES and self._shrink is not None:
            try:
                shrunk = self._shrink(original, target)
            except Exception:  # noqa: BLE001 - a failing shrinker costs one item, loudly
                _logger.exception("Opik exporter: could not shrink %s %s of %s", kind, item.id, item.label)
        if shrunk is None or shrunk.size > target or shrunk.size >= item.size:
            if self._resolve([item]):
                self._settle([item], keep=False)
                self.stats.drop("too_large")
                _logger.error(
                    "Opik exporter dropped %s %s of %s: %d bytes is too large for Opik and could not be "
                    "shrunk below %d bytes", kind, item.id, item.label, item.size, max(target, MIN_SHRINK_BYTES),
                )
            return
        if not self._swap(item, shrunk):
            return
        self._origin.pop(id(item), None)
        self._origin[id(shrunk)] = original
        if original is item:
            self.stats.add("items_shrunk")
            self._log(
                "shrunk", logging.WARNING,
                "%s %s of %s was too large for Opik (%d bytes): sending it truncated to at most %d bytes "
                "(marked in its metadata)", kind, item.id, item.label, item.size, target,
            )
        self._deliver(kind, [shrunk], deadline, budget)

    def _isolate(
        self, kind: str, items: List[Item], errors: Dict[int, str], resp: Response, deadline: float,
        budget: List[int],
    ) -> None:
        """Find the items Opik rejects; deliver the others; log each rejected one once.

        The items Opik names are confirmed one by one and the rest is sent without them. If the
        rest fails again, the names did not explain the failure (a stale or proxied error): the
        rest is bisected instead of trusting the next names.
        """
        if len(items) == 1:
            self._rejected(kind, items[0], resp, errors.get(0))
            return
        if budget[0] <= 0:
            for item in items:
                self._rejected(kind, item, resp, None, note="isolation budget exhausted; not retried singly")
            return
        budget[0] -= 1
        if errors and len(errors) == len(items):  # Opik named every item: all rejected, no more requests
            for i, item in enumerate(items):
                self._rejected(kind, item, resp, errors[i])
            return
        if errors:
            good = [it for i, it in enumerate(items) if i not in errors]
            self._deliver(kind, good, deadline, budget, trust_index=False)
            for i in sorted(errors):  # confirm each alone: its own error text, and no good item lost
                self._deliver(kind, [items[i]], deadline, budget)
            return
        half = len(items) // 2
        self._deliver(kind, items[:half], deadline, budget)
        self._deliver(kind, items[half:], deadline, budget)

    def _rejected(self, kind: str, item: Item, resp: Response, error: Optional[str], note: str = "") -> None:
        if not self._resolve([item]):
            return
        self._settle([item], keep=False)
        self.stats.drop("rejected")
        text = error or resp.text.strip()[:500] or "(no error text)"
        _logger.error(
            "Opik rejected %s %s of %s (HTTP %d): %s%s",
            kind, item.id, item.label, resp.status, text, f" [{note}]" if note else "",
        )

    def _auth_failed(self, status: int, resp: Response) -> None:
        s = self.settings
        if self._auth_logged:
            return
        self._auth_logged = True
        key_src = s.sources.get("api_key", "") if s.sources else ""
        ws_src = s.sources.get("workspace", "default") if s.sources else "default"
        if status == 401:
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
            safe_url(s.url), status, f": {opik_says}" if opik_says else "", s.workspace, fix,
            int(s.retry_deadline), "spooled" if self.spool is not None else "dropped",
        )

    def _final_error(self, kind: str, items: List[Item], outcome: Outcome, resp: Response) -> None:
        method, path, _ = ENDPOINTS[kind]
        url = safe_url(self.settings.url + path)
        ours = self._resolve(items)
        if not ours:
            return
        self._settle(ours, keep=False)
        self.stats.drop(outcome.reason, len(ours))
        self._log(
            f"http{resp.status}", logging.ERROR,
            "Opik answered HTTP %d to %s %s%s: %d %ss dropped: %s",
            resp.status, method, url, outcome.hint, len(ours), kind, resp.text.strip()[:300],
        )

    # -- requests ----------------------------------------------------------------------
    def _request_with_retry(self, kind: str, items: List[Item], deadline: float) -> Tuple[Outcome, Response]:
        """One request, retried on transient failures; raises :class:`_GiveUp` if abandoned.

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
            if self._abort.is_set():
                raise _GiveUp("shutdown")
            remaining = limit - time.monotonic()
            if remaining <= 0.01:
                raise _GiveUp(_gave_up_reason(refused, closing))
            resp, err = self._send_once(method, path, body, min(timeout, remaining))
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
            if delay > 0:
                self._log(
                    "retry", logging.WARNING,
                    "Opik at %s unavailable (%s); retrying %d %ss in %.1f s",
                    safe_url(self.settings.url), err or f"HTTP {resp.status if resp is not None else '?'}",
                    len(items), kind, delay,
                )
            self.stats.add("retries")
            attempt += 1
            self._wait_before_retry(delay, items)

    def _limit(self, deadline: float) -> Tuple[float, bool]:
        """The time this request must be resolved by, and whether that is the shutdown's limit."""
        close_by = self._close_by
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
        """Bookkeeping after an answer worth retrying; raises :class:`_GiveUp` when retrying is pointless."""
        if refused and resp is not None:
            self._auth_failed(resp.status, resp)
            if closing:
                raise _GiveUp("unauthorized")  # shutting down: that was the last attempt
        self._note_down()
        if self._closed and self.spool is not None:
            # spooled now and re-sent later beats holding up the exit
            raise _GiveUp("unauthorized" if refused else "shutdown")

    def _fit_delay(
        self, limit: float, delay: float, hint: Optional[float], last_chance: bool, refused: bool, closing: bool
    ) -> Tuple[float, bool]:
        """``(delay, last_chance)`` within ``limit``; raises :class:`_GiveUp` when no attempt fits."""
        now = time.monotonic()
        if now + delay < limit:
            return delay, last_chance
        # One last attempt just before the deadline (room for the request), unless the
        # server said not before then: giving up early would waste the rest of the window.
        room = limit - now - min(self.settings.timeout, 2.0)
        if last_chance or room <= 0.05 or (hint is not None and now + hint >= limit):
            if refused and not closing:
                self._auth_paused_until = time.monotonic() + self.auth_pause  # confirmed
            raise _GiveUp(_gave_up_reason(refused, closing))
        return room, True

    def _wait_before_retry(self, delay: float, items: List[Item]) -> None:
        """The backoff wait; a flush or shutdown cuts it short for an attempt now."""
        if delay > 0 and self._interrupt.wait(delay):
            if self._abort.is_set():
                raise _GiveUp("shutdown")
            if self._is_taken(items):
                raise _GiveUp("taken")
            self._interrupt.clear()  # woken by a flush, a closing, or another batch's takeover: go on

    def _note_up(self, ok: bool) -> None:
        if ok:
            self._next_replay_at = 0.0
            self._auth_logged = False
        if self._down_since is not None:
            down = time.monotonic() - self._down_since
            self._down_since = None
            if down >= 1.0:
                _logger.warning("Opik at %s answers again after %.1f s", safe_url(self.settings.url), down)

    def _note_down(self) -> None:
        if self._down_since is None:
            self._down_since = time.monotonic()

    # -- giving up, spooling, re-sending ----------------------------------------------------
    def _give_up(self, items: Sequence[Item], reason: str) -> None:
        """Items that cannot be delivered now: spool them (if configured) or count them dropped."""
        if reason == "taken":
            return
        if self._replaying:
            self._replay_leftover.extend(items)
            return
        ours = self._resolve(items)
        if ours:
            if reason == "retry_deadline":
                self._next_replay_at = time.monotonic() + self.replay_retry
            self._give_up_now(ours, reason)

    def _settle(self, items: Sequence[Item], keep: bool) -> List[Item]:
        """Tell the durable queue how ``items`` ended; returns those it does not hold (all, without one)."""
        durable = self._durable
        if durable is None or not items:
            return list(items)
        origin = self._origin
        return durable.settle([origin.get(id(i), i) for i in items], keep)

    def _give_up_now(self, items: List[Item], reason: str) -> None:
        if not items:
            return
        n_items = len(items)
        items = self._settle(items, keep=True)  # on disk already: kept there for a re-send
        if len(items) < n_items:
            self.stats.add("items_spooled", n_items - len(items))
            self._next_spool_scan = 0.0
            if not items:
                self._log_spooled(n_items, reason)
                return
        if self.spool is not None:
            try:
                n = self.spool.write(items)
            except Exception:  # noqa: BLE001 - a broken disk never breaks the exporter
                _logger.exception("Opik exporter: could not write the spool")
                n = 0
            if n:
                self.stats.add("items_spooled", n)
                self._next_spool_scan = 0.0  # our own files: no need to wait for the next scan
            if n == len(items):
                self._log_spooled(n_items, reason)
                return
            items = items[n:]
            reason = "spool_full"
        if reason == "flush_timeout":
            reason = "shutdown"
        self.stats.drop(reason, len(items))
        if reason == "unauthorized":
            return  # the auth error line already says so
        hint = "" if self.spool is not None else " (set OTEL_EXPORTER_OPIK_SPOOL_DIR to keep them on disk)"
        self._log(
            "drop_" + reason, logging.WARNING,
            "Opik exporter dropped %d items (%s)%s", len(items), reason, hint,
        )

    def _log_spooled(self, n: int, reason: str) -> None:
        if reason in ("shutdown", "flush_timeout", "retry_deadline") and self.spool is not None:
            self._log(
                "spooled_" + reason, logging.WARNING,
                "Opik exporter: %d items not delivered (%s) were spooled to %s and will be re-sent",
                n, reason.replace("_", " "), self.spool.directory,
            )

    def _replay_due(self) -> bool:
        if self.spool is None or self._closed or self._abort.is_set():
            return False
        now = time.monotonic()
        return now >= self._auth_paused_until and now >= self._next_replay_at and now >= self._next_spool_scan

    def _claim_spooled(self) -> Optional["Claim"]:
        spool = self.spool
        if spool is None:
            return None
        try:
            claim = spool.claim()
        except Exception:  # noqa: BLE001
            _logger.exception("Opik exporter: could not read the spool")
            claim = None
        if claim is None:
            self._next_spool_scan = time.monotonic() + SPOOL_SCAN_INTERVAL
            try:
                spool.recover()
            except Exception:  # noqa: BLE001
                pass
        return claim

    def _replay(self, claim: "Claim") -> None:
        items: List[Item] = claim.items
        self._replaying = True
        self._replay_leftover = []
        try:
            self._send_batch(items)
        finally:
            self._replaying = False
            self._origin.clear()
            leftover, self._replay_leftover = self._replay_leftover, []
        resolved = len(items) - len(leftover)
        if resolved:
            self.stats.add("items_unspooled", resolved)
        if not leftover:
            claim.done()
        elif len(leftover) == len(items):
            claim.release()
        else:
            claim.keep_only(leftover)
        if leftover:
            self._next_replay_at = time.monotonic() + self.replay_retry


def _gauges(ref: "weakref.ref[Writer]") -> Mapping[str, float]:
    w = ref()
    if w is None:
        return {}
    return {
        "queue_items": len(w._queue) + w._inflight_items,
        "queue_bytes": w._queued_bytes + w._inflight_bytes,
    }


_WRITERS: "weakref.WeakSet[Writer]" = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for w in list(_WRITERS):
        w._after_fork()


def _at_exit() -> None:
    """Safety net for writers nobody shut down: a bounded flush (spooling on timeout)."""
    for w in list(_WRITERS):
        if w._closed or w._pid != os.getpid():
            continue
        end = time.monotonic() + ATEXIT_FLUSH
        while w._replaying and time.monotonic() < end:  # let a spool re-send finish (else its claim waits for the next start)
            time.sleep(0.02)
        if w.pending():
            try:
                if not w.flush(max(end - time.monotonic(), 0.0)) and w.pending():
                    _logger.warning(
                        "Opik exporter: %d items were not delivered before the process exited (it was never "
                        "shut down; call TracerProvider.shutdown(), or set OTEL_EXPORTER_OPIK_SPOOL_DIR)",
                        w.pending(),
                    )
            except Exception:  # noqa: BLE001 - never raise at exit
                pass


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_at_exit)

__all__ = ["AUTH_BACKOFF_BASE", "AUTH_BACKOFF_CAP", "AUTH_PAUSE", "BACKOFF_BASE", "BACKOFF_CAP", "Writer"]
