"""The durable queue: with a spool directory, every accepted item is on disk until it is resolved.

In the manner of the OpenTelemetry Collector's persistent queue. ``append`` writes the items of one
``submit`` as one *segment*: a spool file claimed by this process (``<spool>/claimed/...``), written
whole (``tmp/`` then rename) before ``submit`` returns, so a ``kill -9`` right after ``export()``
returned SUCCESS loses nothing. A background thread fsyncs new segments every :data:`SYNC_INTERVAL`
seconds: that is what a power cut (not a process crash) can take.

The writer tells the log how each item ended (``settle``): delivered or dropped with a counted
reason (``keep=False``), or given up for now (``keep=True``: retry deadline, shutdown, a full memory
queue). Once every item of a segment has ended, the file is deleted, or cut down to the kept items
and put back in the spool directory, where the spool's re-send picks it up like any spooled batch.

A segment whose process died is put back by :meth:`Spool.recover` (its pid is gone), so the next
process with the same directory sends it: items already delivered are written again under the same
ids (Opik upserts them), never stored twice.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import TYPE_CHECKING, Dict, Iterable, List, Optional, Sequence

from .._items import Item

if TYPE_CHECKING:  # pragma: no cover
    from .._spool import Claim, Spool

_logger = logging.getLogger("opentelemetry.exporter.opik")

#: new segments are fsynced at most this long (seconds) after ``submit`` wrote them
SYNC_INTERVAL = 0.2


class _Segment:
    __slots__ = ("claim", "open", "kept")

    def __init__(self, claim: "Claim") -> None:
        self.claim = claim
        self.open = len(claim.items)
        self.kept: List[Item] = []


class DurableLog:
    """Items on disk from ``append`` until ``settle``; thread-safe."""

    def __init__(self, spool: "Spool", sync_interval: float = SYNC_INTERVAL) -> None:
        self.spool = spool
        self.sync_interval = sync_interval
        self._init_state()

    def _init_state(self) -> None:
        self._lock = threading.Lock()
        self._by_item: Dict[int, _Segment] = {}
        self._unsynced: List[str] = []
        self._wake = threading.Event()
        self._syncer: Optional[threading.Thread] = None
        self._pid = os.getpid()

    def after_fork(self) -> None:
        """In a forked child: the parent's segments stay the parent's."""
        self._init_state()

    def append(self, items: Sequence[Item]) -> bool:
        """Write ``items`` as one segment; False if the spool has no room (they stay in memory only)."""
        if not items:
            return True
        if self._pid != os.getpid():
            self.after_fork()
        claim = self.spool.write_owned(items)
        if claim is None:
            return False
        seg = _Segment(claim)
        with self._lock:
            for item in claim.items:
                self._by_item[id(item)] = seg
            self._unsynced.append(claim.path)
        self._ensure_syncer()
        return True

    def tracked(self, item: Item) -> bool:
        with self._lock:
            return id(item) in self._by_item

    def settle(self, items: Iterable[Item], keep: bool) -> List[Item]:
        """``items`` have ended (``keep``: for a later re-send from disk); returns those not in the log."""
        done: List[_Segment] = []
        untracked: List[Item] = []
        with self._lock:
            for item in items:
                seg = self._by_item.pop(id(item), None)
                if seg is None:
                    untracked.append(item)
                    continue
                if keep:
                    seg.kept.append(item)
                seg.open -= 1
                if seg.open == 0:
                    done.append(seg)
        for seg in done:
            self._close(seg)
        return untracked

    def _close(self, seg: _Segment) -> None:
        claim = seg.claim
        try:
            if not seg.kept:
                claim.done()
            elif len(seg.kept) == len(claim.items):
                claim.release()
            else:
                claim.keep_only(seg.kept)
        except Exception:  # noqa: BLE001 - a broken disk never breaks the exporter; the next start recovers it
            _logger.exception("Opik exporter: could not settle the spool file %s", claim.path)

    def pending(self) -> int:
        with self._lock:
            return len(self._by_item)

    # -- fsync in batches ------------------------------------------------------------
    def _ensure_syncer(self) -> None:
        t = self._syncer
        if t is not None and t.is_alive():
            return
        with self._lock:
            if self._syncer is not None and self._syncer.is_alive():
                return
            t = threading.Thread(target=self._sync_loop, name="OpikSpoolSync", daemon=True)
            try:
                t.start()
            except RuntimeError:  # interpreter exiting: sync inline instead
                t = None
            self._syncer = t
        if t is None:
            self.sync_now()

    def _sync_loop(self) -> None:
        while True:
            self._wake.wait(self.sync_interval)
            self._wake.clear()
            if not self.sync_now() and self._idle():
                return  # a new append starts the thread again

    def _idle(self) -> bool:
        with self._lock:
            if self._by_item or self._unsynced:
                return False
            self._syncer = None
            return True

    def sync_now(self) -> bool:
        """fsync every segment written so far; False if there was none."""
        with self._lock:
            paths, self._unsynced = self._unsynced, []
        if not paths:
            return False
        try:
            self.spool.sync(paths)
        except Exception:  # noqa: BLE001
            _logger.exception("Opik exporter: could not fsync the spool")
        return True


__all__ = ["SYNC_INTERVAL", "DurableLog"]
