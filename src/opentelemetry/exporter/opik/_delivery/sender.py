"""The sender thread and the writer the exporter, the sidecar and import submit to.

``submit`` never blocks: beyond the item/byte bounds (queued plus in flight) the newest items are
dropped and counted, or, with a spool, kept on disk (:mod:`.durable`). One sender thread takes
batches from the :mod:`.queue`, groups them by endpoint (spans before traces before scores), cuts
requests at the item and byte budget, and lets the :mod:`.resolve` resolver (which sends through the
:mod:`.retry` loop, which reads answers with the :mod:`.policy`) bring every item to one final
outcome, which the sender applies: counted in :class:`Stats`, settled on disk, spooled or logged.

``flush``/``shutdown`` return within their timeouts even with Opik down: the retry waits are
interruptible, and what is left (queued or in flight) is spooled or counted as dropped. After
``fork`` the child starts empty: the parent's items stay the parent's.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from itertools import groupby
from operator import attrgetter
from typing import TYPE_CHECKING, Dict, List, Mapping, Optional, Sequence, Union

from .. import _metrics
from .._config import OpikSettings
from .._items import EXPORTED_COUNTER, KIND_ORDER, Item
from .._stats import Stats
from .._transport import Transport
from .durable import DurableLog
from .log import RateLimitedLog
from .queue import MemoryQueue
from .resolve import DELIVERED, DROPPED, Final, Resolver, ShrinkFn
from .retry import AUTH_PAUSE, BACKOFF_BASE, BACKOFF_CAP, Lifecycle, RetryLoop

if TYPE_CHECKING:  # pragma: no cover
    from .._spool import Claim, Spool

_logger = logging.getLogger("opentelemetry.exporter.opik")

#: how long the sender lets a burst gather before it cuts a request
LINGER = 0.05
#: after a failed re-send from the spool, wait this long before the next one unless a request succeeds
REPLAY_RETRY = 30.0
#: how often an idle sender looks for batches other processes spooled
SPOOL_SCAN_INTERVAL = 5.0
#: at interpreter exit, a writer nobody shut down gets this long to flush
ATEXIT_FLUSH = 5.0


def _all(items: List[Item]) -> List[Item]:
    return items


_kind = attrgetter("kind")
_size = attrgetter("size")


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
        self.linger = linger
        self.replay_retry = replay_retry
        self._log = RateLimitedLog()
        self._life = Lifecycle()
        self._retry = RetryLoop(
            settings, self.transport, self.stats, self._life, self._log,
            spool_on=lambda: self.spool is not None, on_ok=self._opik_ok,
        )
        self.backoff_base, self.backoff_cap, self.auth_pause = backoff_base, backoff_cap, auth_pause
        self._resolver = Resolver(settings, self._retry, self.stats, self._log, shrink)
        self._init_state()
        _WRITERS.add(self)
        ref = weakref.ref(self)
        self.stats.set_gauge_source(lambda: _gauges(ref))
        _metrics.register(self.stats, lambda: _gauges(ref))
        if spool is not None:
            self._adopt_spool(spool)

    # -- retry tuning; public so a deployment (or a test) can tighten it ----------------
    @property
    def backoff_base(self) -> float:
        return self._retry.backoff_base

    @backoff_base.setter
    def backoff_base(self, value: float) -> None:
        self._retry.backoff_base = value

    @property
    def backoff_cap(self) -> float:
        return self._retry.backoff_cap

    @backoff_cap.setter
    def backoff_cap(self, value: float) -> None:
        self._retry.backoff_cap = value

    @property
    def auth_pause(self) -> float:
        return self._retry.auth_pause

    @auth_pause.setter
    def auth_pause(self, value: float) -> None:
        self._retry.auth_pause = value

    # -- state ------------------------------------------------------------------------
    def _init_state(self) -> None:
        s = self.settings
        self._queue = MemoryQueue(s.max_queue_items, s.max_queue_bytes)
        self._cond = self._queue.cond
        closed = self._life.closed
        self._life = Lifecycle()
        self._life.closed = closed
        self._retry.life = self._life
        self._retry.reset()
        self._thread: Optional[threading.Thread] = None
        self._pid = os.getpid()
        self._dropped_unlogged = 0
        #: a spooled batch is being re-sent (exit waits for it, so its claim does not wait for the next start)
        self._replay_idle = threading.Event()
        self._replay_idle.set()
        self._next_replay_at = 0.0
        self._next_spool_scan = 0.0

    def _adopt_spool(self, spool: "Spool") -> None:
        """Send what the spool holds (left by this or an earlier run, or a process that died) once Opik answers."""
        spool.stats = self.stats
        spool.stale_after = max(spool.stale_after, 3 * float(self.settings.retry_deadline))
        spool.recover()
        if spool.pending():
            self.kick()

    def _after_fork(self) -> None:
        # The child starts clean: the parent's queued and in-flight items stay the
        # parent's (sending them here too would duplicate work and race on sockets).
        self._init_state()
        if self._durable is not None:
            self._durable.after_fork()
        self.transport.reset()

    def _opik_ok(self) -> None:
        self._next_replay_at = 0.0

    @property
    def _closed(self) -> bool:
        return self._life.closed

    # -- producer side -------------------------------------------------------------
    def has_capacity(self, n_items: int = 1, n_bytes: int = 0) -> bool:
        return self._queue.has_capacity(n_items, n_bytes)

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
        total = sum(map(_size, items))
        known: Optional[int] = total  # the bytes of ``fit``, for the queue's bounds
        if total <= limit:  # so is every item (the usual case): one pass
            fit = list(items)
        else:
            fit, known = [i for i in items if i.size <= limit], None
        if len(fit) < len(items):
            self._drop_too_large([i for i in items if i.size > limit])
        durable = self._durable is not None and self._durable.append(fit)
        with self._cond:
            queued = 0 if self._closed else self._queue.put(fit, force, known)
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
            held = self._dropped_unlogged
        s = self.settings
        # Rate-limited; the count covers every drop since the last line.
        if self._log(
            "queue_full", logging.WARNING,
            "Opik exporter queue is full (bound: %d items / %d bytes): dropped the newest %d items since the last "
            "warning; Opik is slower than the span rate or unreachable (raise OTEL_EXPORTER_OPIK_MAX_QUEUE_ITEMS/"
            "_BYTES, or set OTEL_EXPORTER_OPIK_SPOOL_DIR)", s.max_queue_items, s.max_queue_bytes, held,
        ):
            with self._cond:
                self._dropped_unlogged -= held

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
            if self._life.abort.is_set():
                return False
            t = threading.Thread(target=self._run, name="OpikWriter", daemon=True)
            try:
                t.start()
            except RuntimeError:  # "can't create new thread at interpreter shutdown" (3.12+)
                return False
            self._thread = t
            return True

    def pending(self) -> int:
        return self._queue.pending()

    def drops_refused(self) -> bool:
        """True while a refusal of the credentials is confirmed and, with no spool, new items would be dropped."""
        return self.spool is None and self._retry.auth_paused()

    # -- flush and shutdown ----------------------------------------------------------
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
        self._life.interrupt.set()  # a retry wait in progress makes its attempt now
        if self._queue.wait_idle(end):
            return True
        if self.spool is not None:
            self._give_up_now(self._take_over(), "flush_timeout")
        return False

    def shutdown(self, timeout: float = 30.0) -> bool:
        """Deliver what is queued within ``timeout``; spool (or drop, counted) the rest. Idempotent."""
        end = time.monotonic() + max(timeout, 0.0)
        with self._cond:
            if self._closed:
                return True
            self._life.closed = True
        if self._pid != os.getpid():
            self._after_fork()
            self._life.closed = True
        before = self._undelivered()
        # Keep a slice of the time to spool what is left; the sender stops retrying before it.
        reserve = min(0.5, max(timeout, 0.0) * 0.2)
        done = self._deliver_until(end - reserve)
        self._life.abort.set()
        self._life.interrupt.set()
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
        if self._durable is not None:
            self._durable.sync_now()
        self._summarize_shutdown(before)
        return done

    def _undelivered(self) -> "tuple[int, int]":
        snap = self.stats.snapshot()
        dropped = snap.get("dropped")
        n_dropped = sum(dropped.values()) if isinstance(dropped, dict) else 0
        spooled = snap.get("items_spooled")
        return n_dropped, spooled if isinstance(spooled, int) else 0

    def _summarize_shutdown(self, before: "tuple[int, int]") -> None:
        """One warning for what this shutdown left undelivered (the per-batch lines are held while closing)."""
        from .summary import shutdown_summary

        after = self._undelivered()
        dropped = self.stats.snapshot().get("dropped")
        line = shutdown_summary(
            self.settings, dropped=after[0] - before[0], spooled=after[1] - before[1],
            dropped_by_reason=dropped if isinstance(dropped, dict) else {},
            connect_error=self._retry.connect_error,
            spool_dir=self.spool.directory if self.spool is not None else None,
        )
        if line:
            _logger.warning("%s", line)

    def _deliver_until(self, close_by: float) -> bool:
        with self._cond:
            self._life.close_by = close_by
            self._cond.notify_all()
        # A retry wait in progress re-checks: with a spool, closing does not wait on a down Opik,
        # and a refusal of our credentials gets one last attempt, not the rest of the backoff.
        self._life.interrupt.set()
        if not self.pending():
            return True
        if self._ensure_thread():
            return self._queue.wait_idle(close_by)
        return self._drain_inline(close_by)

    def _take_over(self) -> List[Item]:
        """Take every unresolved item from the sender (queued and in flight) and stop its retry wait."""
        items = self._queue.take_over()
        if items:
            self._life.interrupt.set()
        return items

    def _drain_inline(self, end: Optional[float]) -> bool:
        """Send in the calling thread (no sender thread can be started, e.g. at interpreter exit)."""
        while True:
            if end is not None and time.monotonic() >= end:
                return not self.pending()
            batch = self._pop_batch(wait=False)
            if batch is None:
                return True
            saved = self._life.close_by
            if end is not None:
                self._life.close_by = end if saved is None else min(saved, end)
            try:
                self._send_batch(batch)
            finally:
                self._life.close_by = saved
                self._queue.finish(batch)

    # -- sender side ---------------------------------------------------------------
    def _run(self) -> None:
        while True:
            work = self._take()
            if work is None:
                return
            if not isinstance(work, list):  # a spooled batch to re-send
                self._replay(work)
                continue
            try:
                self._send_batch(work)
            except Exception:  # noqa: BLE001 - the sender thread must survive anything
                lost = self._queue.unresolved()
                _logger.exception("Opik exporter: unexpected error while sending; %d items dropped", len(lost))
                self._settle(lost, keep=False)
                self.stats.drop("internal_error", len(lost))
            finally:
                self._queue.finish(work)

    def _take(self) -> Union[List[Item], "Claim", None]:
        """Next work: a batch, a spooled batch to re-send, or None to stop."""
        while True:
            batch = self._pop_batch(wait=True)
            if batch is None:
                return None
            if batch:
                return batch
            claim = self._claim_spooled()
            if claim is not None:
                return claim
            with self._cond:
                if not self._queue.queued() and not self._closed and not self._life.abort.is_set():
                    self._cond.wait(1.0)

    def _pop_batch(self, wait: bool) -> Optional[List[Item]]:
        """Items for the next requests; [] when idle and a spool re-send may run; None to stop."""
        s = self.settings
        with self._cond:
            if self._life.abort.is_set():
                return None  # whoever aborted owns what is left
            while not self._queue.queued():
                if self._closed or self._life.abort.is_set() or not wait:
                    return None
                if self._replay_due():
                    return []
                self._cond.wait(1.0)
            if wait and self._queue.queued() < s.batch_max_items and not self._closed and self.linger > 0:
                self._cond.wait(self.linger)  # let a burst gather into fewer requests
            if not self._queue.queued():
                return [] if not self._closed else None
            out = self._queue.take(s.batch_max_items * 3, self._resolver.byte_budget * 3)
            self._life.interrupt.clear()
            if self._life.abort.is_set():
                self._life.interrupt.set()
            return out

    def _send_batch(self, batch: List[Item], leftover: Optional[List[Item]] = None) -> None:
        """Send ``batch`` and apply each outcome; with ``leftover`` (a re-send from the spool), what is given
        up is collected there instead of spooled again."""
        by_kind: Dict[str, List[Item]] = {}
        for kind, run in groupby(batch, _kind):  # runs of one kind (a request's traces, then its spans)
            by_kind.setdefault(kind, []).extend(run)
        live = self._queue.live if leftover is None else _all
        for kind in KIND_ORDER:
            items = by_kind.pop(kind, None)
            for chunk in self._resolver.chunks(items) if items else ():
                deadline = time.monotonic() + self.settings.retry_deadline
                for final in self._resolver.resolve(kind, chunk, deadline, live):
                    self._apply(final, leftover)
        for kind, items in by_kind.items():  # an unknown kind: nothing to send it to
            self._apply(Final(DROPPED, kind, items, "unknown_kind",
                              f"Opik exporter: {len(items)} items of unknown kind {kind!r} dropped"), leftover)

    # -- applying outcomes ---------------------------------------------------------------
    def _apply(self, final: Final, leftover: Optional[List[Item]]) -> None:
        if final.verdict not in (DELIVERED, DROPPED):
            self._give_up(final.items, final.reason, leftover)
            return
        ours = final.items if leftover is not None else self._queue.resolve(final.items)
        if not ours:
            return  # taken over meanwhile (spooled by flush/shutdown): counted when re-sent
        if self._durable is not None:
            self._settle(ours, keep=False)
        if final.verdict == DELIVERED:
            self.stats.add(EXPORTED_COUNTER.get(final.kind, "scores_exported"), len(ours))
            return
        self.stats.drop(final.reason, len(ours))
        if final.reason.startswith("http_"):
            self._log(final.reason, logging.ERROR, "%s", final.message.replace("{n}", str(len(ours))))
        else:
            _logger.error("%s", final.message)

    def _give_up(self, items: List[Item], reason: str, leftover: Optional[List[Item]]) -> None:
        """Items that cannot be delivered now: spool them (if configured) or count them dropped."""
        if reason == "taken":
            return
        if leftover is not None:
            leftover.extend(items)
            return
        ours = self._queue.resolve(items)
        if ours:
            if reason == "retry_deadline":
                self._next_replay_at = time.monotonic() + self.replay_retry
            self._give_up_now(ours, reason)

    def _settle(self, items: Sequence[Item], keep: bool) -> List[Item]:
        """Tell the durable queue how ``items`` ended; returns those it does not hold (all, without one)."""
        durable = self._durable
        if durable is None or not items:
            return list(items)
        return durable.settle(items, keep)

    def _give_up_now(self, items: List[Item], reason: str) -> None:
        if not items:
            return
        n_items = len(items)
        items = self._settle(items, keep=True)  # on disk already: kept there for a re-send
        if len(items) < n_items:
            self.stats.add("items_spooled", n_items - len(items))
            self._next_spool_scan = 0.0
        if items and self.spool is not None:
            items, reason = self._spool_write(items, reason)
        if not items:
            self._log_spooled(n_items, reason)
            return
        self._count_drop(items, reason)

    def _spool_write(self, items: List[Item], reason: str) -> "tuple[List[Item], str]":
        """Write ``items`` to the spool; what did not fit, and the reason to drop it with."""
        assert self.spool is not None
        try:
            n = self.spool.write(items)
        except Exception:  # noqa: BLE001 - a broken disk never breaks the exporter
            _logger.exception("Opik exporter: could not write the spool")
            n = 0
        if n:
            self.stats.add("items_spooled", n)
            self._next_spool_scan = 0.0  # our own files: no need to wait for the next scan
        return items[n:], (reason if n == len(items) else "spool_full")

    def _count_drop(self, items: List[Item], reason: str) -> None:
        if reason == "flush_timeout":
            reason = "shutdown"
        self.stats.drop(reason, len(items))
        if reason == "unauthorized" or (reason == "shutdown" and self._closed):
            return  # the auth error line already says so; a shutdown writes one summary
        hint = "" if self.spool is not None else " (set OTEL_EXPORTER_OPIK_SPOOL_DIR to keep them on disk)"
        self._log(
            "drop_" + reason, logging.WARNING,
            "Opik exporter dropped %d items (%s)%s", len(items), reason, hint,
        )

    def _log_spooled(self, n: int, reason: str) -> None:
        if reason == "shutdown" and self._closed:
            return  # the shutdown's summary says it
        if reason in ("shutdown", "flush_timeout", "retry_deadline") and self.spool is not None:
            self._log(
                "spooled_" + reason, logging.WARNING,
                "Opik exporter: %d items not delivered (%s) were spooled to %s and will be re-sent",
                n, reason.replace("_", " "), self.spool.directory,
            )

    # -- re-sending from the spool ------------------------------------------------------
    def _replay_due(self) -> bool:
        if self.spool is None or self._closed or self._life.abort.is_set():
            return False
        now = time.monotonic()
        return not self._retry.auth_paused() and now >= self._next_replay_at and now >= self._next_spool_scan

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
        """Re-send a spooled batch; what is given up again goes back into its file."""
        items: List[Item] = claim.items
        leftover: List[Item] = []
        self._replay_idle.clear()
        try:
            self._send_batch(items, leftover)
        except Exception:  # noqa: BLE001 - the sender thread must survive anything
            _logger.exception("Opik exporter: unexpected error while re-sending a spooled batch")
            leftover = items
        finally:
            self._replay_idle.set()
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
    return {} if w is None else w._queue.gauges()


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
        # let a spool re-send finish (else its claim waits for the next start)
        w._replay_idle.wait(max(end - time.monotonic(), 0.0))
        if not w.pending():
            continue
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

__all__ = ["ATEXIT_FLUSH", "LINGER", "REPLAY_RETRY", "Writer"]
