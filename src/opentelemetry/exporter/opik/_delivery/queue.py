"""The bounded in-memory queue: items waiting (queued) and being sent (in flight), with their bytes.

Both bounds (``max_queue_items``, ``max_queue_bytes``) count queued and in-flight items. The items of
the batch being sent stay *current* until each is resolved; ``take_over`` (flush timeout, shutdown)
takes every unresolved item at once, and ``live`` tells the sender which of its items are still its
own afterwards. With a spool, the same items are also on disk (:mod:`.durable`).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from operator import attrgetter
from typing import Deque, Dict, List, Optional, Sequence

from .._items import Item

_size = attrgetter("size")


class MemoryQueue:
    """Thread-safe; ``cond`` is the condition the sender waits on for work."""

    def __init__(self, max_items: int, max_bytes: int) -> None:
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.cond = threading.Condition(threading.Lock())
        self._q: Deque[Item] = deque()
        self._queued_bytes = 0
        self._inflight_items = 0
        self._inflight_bytes = 0
        #: unresolved items of the batch being sent, by id()
        self._current: Dict[int, Item] = {}
        #: takeovers so far, and their count when the batch being sent was taken: while equal, all current
        self._takeovers = 0
        self._batch_takeovers = 0
        #: bytes of the batch being sent, as :meth:`take` counted them (:meth:`finish` takes them off)
        self._batch_bytes = 0

    # -- bounds ------------------------------------------------------------------------
    def has_capacity(self, n_items: int = 1, n_bytes: int = 0) -> bool:
        return (
            len(self._q) + self._inflight_items + n_items <= self.max_items
            and self._queued_bytes + self._inflight_bytes + n_bytes <= self.max_bytes
        )

    def pending(self) -> int:
        with self.cond:
            return len(self._q) + self._inflight_items

    def queued(self) -> int:
        """Items waiting (not in flight); the caller holds ``cond``."""
        return len(self._q)

    def gauges(self) -> Dict[str, float]:
        return {
            "queue_items": len(self._q) + self._inflight_items,
            "queue_bytes": self._queued_bytes + self._inflight_bytes,
        }

    # -- producer ----------------------------------------------------------------------
    def put(self, items: Sequence[Item], force: bool, total: Optional[int] = None) -> int:
        """Append the longest prefix of ``items`` within the bounds (all, with ``force``); caller holds ``cond``.

        ``total``: the items' bytes, when the caller has summed them already.
        """
        n_held = len(self._q) + self._inflight_items
        b_held = self._queued_bytes + self._inflight_bytes
        if total is None:
            total = sum(map(_size, items))
        if force or (n_held + len(items) <= self.max_items and b_held + total <= self.max_bytes):
            self._q.extend(items)  # all of them fit (the usual case): no per-item check
            self._queued_bytes += total
            if items:
                self.cond.notify_all()
            return len(items)
        added = 0
        accepted = 0
        for item in items:
            if not force and (n_held >= self.max_items or b_held + item.size > self.max_bytes):
                break
            self._q.append(item)
            n_held += 1
            b_held += item.size
            added += item.size
            accepted += 1
        self._queued_bytes += added
        if accepted:
            self.cond.notify_all()
        return accepted

    # -- sender ------------------------------------------------------------------------
    def take(self, cap_items: int, cap_bytes: int) -> List[Item]:
        """Move the next batch (within the caps) to in flight; caller holds ``cond``."""
        q = self._q
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
        self._batch_bytes = size
        self._current = dict(zip(map(id, out), out))
        self._batch_takeovers = self._takeovers
        return out

    def finish(self, batch: List[Item]) -> None:
        """The batch is done (every item resolved, or taken over); ``batch``: what :meth:`take` returned last."""
        with self.cond:
            self._current.clear()
            self._inflight_items = max(self._inflight_items - len(batch), 0)
            self._inflight_bytes = max(self._inflight_bytes - self._batch_bytes, 0)
            self._batch_bytes = 0
            self.cond.notify_all()

    def resolve(self, items: Sequence[Item]) -> List[Item]:
        """Mark ``items`` resolved; those that were still the sender's (not taken over)."""
        with self.cond:
            pop = self._current.pop
            return [i for i in items if pop(id(i), None) is not None]

    def live(self, items: List[Item]) -> List[Item]:
        """Those of ``items`` not taken over (all of them while no takeover happened)."""
        if self._takeovers == self._batch_takeovers:
            return items
        with self.cond:
            return [i for i in items if id(i) in self._current]

    def unresolved(self) -> List[Item]:
        """Take the current batch's unresolved items (an unexpected error: the caller drops them)."""
        with self.cond:
            lost = list(self._current.values())
            self._current.clear()
        return lost

    def take_over(self) -> List[Item]:
        """Every unresolved item (in flight and queued), now the caller's."""
        with self.cond:
            items = list(self._current.values()) + list(self._q)
            self._current.clear()
            self._takeovers += 1
            self._q.clear()
            self._queued_bytes = 0
            self._inflight_items = 0
            self._inflight_bytes = 0
            self.cond.notify_all()
        return items

    def wait_idle(self, end: Optional[float]) -> bool:
        """Until nothing is queued or in flight; False at ``end``."""
        with self.cond:
            self.cond.notify_all()
            while self._q or self._inflight_items:
                remaining = None if end is None else end - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self.cond.wait(0.5 if remaining is None else min(remaining, 0.5))
        return True


__all__ = ["MemoryQueue"]
