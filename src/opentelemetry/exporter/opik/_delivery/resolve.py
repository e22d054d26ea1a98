"""The resolver: splits, isolates and shrinks until every item of a request has one final outcome.

``Resolver.resolve(kind, items, deadline, live)`` yields :class:`Final` outcomes (delivered, dropped
with a reason, given up for now) and changes no state of the sender: the sender applies each one
(counts it, settles it on disk, spools or logs it). Shrunk copies stay inside one ``resolve`` call;
every outcome names the original items. ``live`` filters out items a flush or shutdown took over
meanwhile, so they are not sent again.

* 413: the request is split in halves and the byte budget per request learns (never below 16 KiB);
  a single item still too large is shrunk (from the original, to smaller targets) or dropped.
* 400/422: the items Opik names are confirmed one by one and the rest is sent without them; if the
  rest fails again, the names did not explain the failure (a stale or proxied error) and the rest is
  bisected. At most ``ISOLATION_BUDGET`` extra requests per original request.
"""

from __future__ import annotations

import logging
from operator import attrgetter
from typing import TYPE_CHECKING, Callable, Dict, Iterator, List, Optional

from .._items import ENDPOINTS, Item
from .._stats import Stats
from .._transport import Response, safe_url
from .log import RateLimitedLog
from .policy import Action, Outcome
from .retry import GiveUp, RetryLoop

_size = attrgetter("size")

if TYPE_CHECKING:  # pragma: no cover
    from .._config import OpikSettings

_logger = logging.getLogger("opentelemetry.exporter.opik")

#: requests a 400/422 isolation may spend per original request before it gives up on the rest
ISOLATION_BUDGET = 256
#: the byte budget never shrinks below this, however small the 413s
MIN_BYTE_BUDGET = 16 * 1024
#: a single item is never shrunk below this
MIN_SHRINK_BYTES = 1024

ShrinkFn = Callable[[Item, int], Optional[Item]]
LiveFn = Callable[[List[Item]], List[Item]]

DELIVERED = "delivered"
DROPPED = "dropped"
GIVEN_UP = "given_up"


class Final:
    """How ``items`` (originals) ended. ``reason``: the drop or give-up reason; ``message``: for the log."""

    __slots__ = ("verdict", "kind", "items", "reason", "message")

    def __init__(self, verdict: str, kind: str, items: List[Item], reason: str = "", message: str = "") -> None:
        self.verdict = verdict
        self.kind = kind
        self.items = items
        self.reason = reason
        self.message = message

    def __repr__(self) -> str:
        return f"Final({self.verdict}, {self.kind}, {len(self.items)} items, {self.reason!r})"


class _Call:
    """The state of one ``resolve`` call: its isolation budget and its shrunk copies."""

    __slots__ = ("kind", "deadline", "live", "budget", "origin")

    def __init__(self, kind: str, deadline: float, live: LiveFn) -> None:
        self.kind = kind
        self.deadline = deadline
        self.live = live
        self.budget = ISOLATION_BUDGET
        #: id(shrunk copy) -> the original item
        self.origin: Dict[int, Item] = {}

    def originals(self, items: List[Item]) -> List[Item]:
        origin = self.origin
        return [origin.get(id(i), i) for i in items] if origin else items

    def still_live(self, items: List[Item]) -> List[Item]:
        if not self.origin:
            return self.live(items)
        kept = {id(i) for i in self.live(self.originals(items))}
        return [i for i in items if id(self.origin.get(id(i), i)) in kept]


class Resolver:
    """Holds what is learnt across requests (the byte budget); see the module docstring."""

    def __init__(
        self, settings: "OpikSettings", retry: RetryLoop, stats: Stats, log: RateLimitedLog,
        shrink: Optional[ShrinkFn] = None,
    ) -> None:
        self.settings = settings
        self.retry = retry
        self.stats = stats
        self._log = log
        self._shrink = shrink
        self.byte_budget = settings.batch_max_bytes

    def resolve(self, kind: str, items: List[Item], deadline: float, live: LiveFn) -> Iterator[Final]:
        yield from self._deliver(_Call(kind, deadline, live), items, True)

    def chunks(self, items: List[Item]) -> List[List[Item]]:
        """Requests of at most ``batch_max_items`` items and the byte budget."""
        max_items = self.settings.batch_max_items
        budget = self.byte_budget
        if items and len(items) <= max_items and sum(map(_size, items)) <= budget:
            return [list(items)]  # one request (the usual case): no per-item loop
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

    def _deliver(self, call: _Call, items: List[Item], trust_index: bool) -> Iterator[Final]:
        items = call.still_live(items)
        if not items:
            return
        if len(items) == 1 and items[0].size > self.settings.batch_max_bytes:
            yield from self._oversized(call, items[0], self.settings.batch_max_bytes)
            return
        if self.retry.auth_paused():
            yield Final(GIVEN_UP, call.kind, call.originals(items), "unauthorized")
            return
        try:
            outcome, resp = self.retry.request(
                call.kind, items, call.deadline, lambda its: not call.still_live(its)
            )
        except GiveUp as g:
            yield Final(GIVEN_UP, call.kind, call.originals(items), g.reason)
            return
        yield from self._act(call, items, outcome, resp, trust_index)

    def _act(self, call: _Call, items: List[Item], outcome: Outcome, resp: Response, trust: bool) -> Iterator[Final]:
        action = outcome.action
        if action is Action.DELIVERED:
            yield Final(DELIVERED, call.kind, call.originals(items))
        elif action is Action.SPLIT:
            self._learn_budget(sum(i.size for i in items))
            half = len(items) // 2
            yield from self._deliver(call, items[:half], True)
            yield from self._deliver(call, items[half:], True)
        elif action is Action.SHRINK:
            self._learn_budget(items[0].size)
            yield from self._oversized(call, items[0], min(self.byte_budget, items[0].size // 2))
        elif action is Action.ISOLATE:
            yield from self._isolate(call, items, outcome.errors if trust else {}, resp)
        else:
            yield self._final_error(call, items, outcome, resp)

    def _learn_budget(self, body_size: int) -> None:
        new = max(min(self.byte_budget, body_size // 2), MIN_BYTE_BUDGET)
        if new < self.byte_budget:
            self.byte_budget = new
            self._log(
                "budget", logging.INFO,
                "Opik refused a %d-byte request as too large (413); requests are now cut at %d bytes",
                body_size, new,
            )

    def _oversized(self, call: _Call, item: Item, target: int) -> Iterator[Final]:
        # A shrunk copy that is still too large is shrunk again from the original, to a smaller target.
        original = call.origin.get(id(item), item)
        shrunk = self._shrunk(call.kind, original, target)
        if shrunk is None or shrunk.size > target or shrunk.size >= item.size:
            yield Final(DROPPED, call.kind, [original], "too_large", (
                f"Opik exporter dropped {call.kind} {item.id} of {item.label}: {item.size} bytes is too large for "
                f"Opik and could not be shrunk below {max(target, MIN_SHRINK_BYTES)} bytes"
            ))
            return
        call.origin.pop(id(item), None)
        call.origin[id(shrunk)] = original
        if original is item:
            self.stats.add("items_shrunk")
            self._log(
                "shrunk", logging.WARNING,
                "%s %s of %s was too large for Opik (%d bytes): sending it truncated to at most %d bytes "
                "(marked in its metadata)", call.kind, item.id, item.label, item.size, target,
            )
        yield from self._deliver(call, [shrunk], True)

    def _shrunk(self, kind: str, original: Item, target: int) -> Optional[Item]:
        if target < MIN_SHRINK_BYTES or self._shrink is None:
            return None
        try:
            return self._shrink(original, target)
        except Exception:  # noqa: BLE001 - a failing shrinker costs one item, loudly
            _logger.exception("Opik exporter: could not shrink %s %s of %s", kind, original.id, original.label)
            return None

    def _isolate(self, call: _Call, items: List[Item], errors: Dict[int, str], resp: Response) -> Iterator[Final]:
        """Find the items Opik rejects; deliver the others; each rejected one is logged once."""
        if len(items) == 1:
            yield self._rejected(call, items[0], resp, errors.get(0))
            return
        if call.budget <= 0:
            for item in items:
                yield self._rejected(call, item, resp, None, note="isolation budget exhausted; not retried singly")
            return
        call.budget -= 1
        if errors and len(errors) == len(items):  # Opik named every item: all rejected, no more requests
            for i, item in enumerate(items):
                yield self._rejected(call, item, resp, errors[i])
            return
        if errors:
            good = [it for i, it in enumerate(items) if i not in errors]
            yield from self._deliver(call, good, False)  # fails again: the names did not explain it
            for i in sorted(errors):  # confirm each alone: its own error text, and no good item lost
                yield from self._deliver(call, [items[i]], True)
            return
        half = len(items) // 2
        yield from self._deliver(call, items[:half], True)
        yield from self._deliver(call, items[half:], True)

    def _rejected(self, call: _Call, item: Item, resp: Response, error: Optional[str], note: str = "") -> Final:
        text = error or resp.text.strip()[:500] or "(no error text)"
        original = call.origin.get(id(item), item)
        return Final(DROPPED, call.kind, [original], "rejected", (
            f"Opik rejected {call.kind} {item.id} of {item.label} (HTTP {resp.status}): {text}"
            + (f" [{note}]" if note else "")
        ))

    def _final_error(self, call: _Call, items: List[Item], outcome: Outcome, resp: Response) -> Final:
        method, path, _ = ENDPOINTS[call.kind]
        url = safe_url(self.settings.url + path)
        return Final(DROPPED, call.kind, call.originals(items), outcome.reason, (
            f"Opik answered HTTP {resp.status} to {method} {url}{outcome.hint}: {{n}} {call.kind}s dropped: "
            f"{resp.text.strip()[:300]}"
        ))


__all__ = ["DELIVERED", "DROPPED", "GIVEN_UP", "ISOLATION_BUDGET", "Final", "Resolver"]
