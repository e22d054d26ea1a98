"""What an answer from Opik means for the items of a request: a pure function of the answer.

``classify(status, headers, body)`` turns one HTTP outcome (``status=None``: no answer at all,
e.g. refused, reset or timed out) into an :class:`Outcome`; the writer acts on it. Nothing here
sends, sleeps or counts, so each status is unit-tested without sockets
(``tests/test_delivery_classify.py``).
"""

from __future__ import annotations

import enum
import random
import re
from typing import Dict, Mapping, Optional

from .._transport import RETRYABLE_STATUS, parse_server_delay

#: statuses that refuse our credentials: retried with the slower auth backoff, then a pause
AUTH_STATUS = frozenset((401, 403))

_INDEX_RE_CACHE: Dict[str, "re.Pattern[str]"] = {}


class Action(enum.Enum):
    DELIVERED = "delivered"  #: Opik has the items (2xx; 409: it had them already)
    RETRY = "retry"  #: send the same body again after a backoff (no answer, 408, 429, 5xx)
    SPLIT = "split"  #: too large (413): send the halves
    SHRINK = "shrink"  #: one item too large (413): send it truncated
    ISOLATE = "isolate"  #: some items invalid (400/422): find them (named indexes or bisection)
    PAUSE = "pause"  #: credentials refused (401/403): retry with the auth backoff, then pause
    DROP = "drop"  #: final for this body: drop the items with ``reason``


class Outcome:
    """The decision for one answer. ``errors`` (ISOLATE): Opik's error text by item index."""

    __slots__ = ("action", "status", "delay_hint", "reason", "hint", "errors")

    def __init__(
        self,
        action: Action,
        status: Optional[int] = None,
        *,
        delay_hint: Optional[float] = None,
        reason: str = "",
        hint: str = "",
        errors: Optional[Dict[int, str]] = None,
    ) -> None:
        self.action = action
        self.status = status
        #: the least wait the server asked for (``Retry-After``, ``RateLimit-Reset``), seconds
        self.delay_hint = delay_hint
        #: the drop reason counted in ``Stats`` (``http_404``)
        self.reason = reason
        #: what a log line should add (a wrong URL, a redirect target)
        self.hint = hint
        self.errors: Dict[int, str] = errors or {}

    def __repr__(self) -> str:
        return f"Outcome({self.action.value}, status={self.status}, hint={self.delay_hint}, reason={self.reason!r})"


def classify(
    status: Optional[int],
    headers: Mapping[str, str],
    body: str,
    *,
    n_items: int = 1,
    key: str = "spans",
    now: Optional[float] = None,
) -> Outcome:
    """The meaning of one answer to a request of ``n_items`` items under the body key ``key``."""
    if status is None:
        return Outcome(Action.RETRY)
    if 200 <= status < 300 or status == 409:
        return Outcome(Action.DELIVERED, status)
    if status in RETRYABLE_STATUS:
        return Outcome(Action.RETRY, status, delay_hint=parse_server_delay(headers, now))
    if status in AUTH_STATUS:
        return Outcome(Action.PAUSE, status, delay_hint=parse_server_delay(headers, now))
    if status == 413:
        return Outcome(Action.SPLIT if n_items > 1 else Action.SHRINK, status)
    if status in (400, 422):
        return Outcome(Action.ISOLATE, status, errors=errors_by_index(body, key, n_items))
    return Outcome(Action.DROP, status, reason=f"http_{status}", hint=_drop_hint(status, headers))


def _drop_hint(status: int, headers: Mapping[str, str]) -> str:
    if 300 <= status < 400:
        return f" (redirect to {headers.get('location', '?')}: set OPIK_URL_OVERRIDE to the final URL)"
    if status in (404, 405):
        return " (is the URL right? it must end with /api for a self-hosted Opik)"
    return ""


def retry_delay(
    attempt: int,
    *,
    refused: bool,
    base: float,
    cap: float,
    auth_base: float,
    auth_cap: float,
    hint: Optional[float] = None,
    no_answer: bool = False,
    rng: Optional[random.Random] = None,
) -> float:
    """Seconds to wait before retry number ``attempt`` (0-based).

    Full jitter below ``min(cap, base * 2**attempt)``; a refusal of the credentials doubles from
    ``auth_base`` to ``auth_cap`` without jitter (people fix those, a storm does not help). Never
    shorter than the server's ``hint``. The first retry after no answer at all goes at once
    (a stale pooled connection).
    """
    if refused:
        delay = min(auth_cap, auth_base * (2 ** min(attempt, 30)))
    else:
        delay = (rng or random).uniform(0.0, min(cap, base * (2 ** min(attempt, 30))))
    if hint is not None:
        return max(delay, hint)
    if attempt == 0 and no_answer:
        return 0.0
    return delay


def errors_by_index(text: str, key: str, n: int) -> Dict[int, str]:
    """``{index: error}`` from a Dropwizard 422 body like ``{"errors": ["spans[3].name: ..."]}``.

    Empty when no index is named or when any named index does not fit a request of ``n`` items.
    """
    if not text or f"{key}[" not in text:
        return {}
    pat = _INDEX_RE_CACHE.get(key)
    if pat is None:
        pat = _INDEX_RE_CACHE[key] = re.compile(re.escape(key) + r"\[(\d+)\]")
    from .._json import loads

    try:
        data = loads(text)
        errors = data.get("errors") if isinstance(data, dict) else None
    except ValueError:
        errors = None
    if not isinstance(errors, list):
        errors = [text]
    out: Dict[int, list] = {}
    for e in errors:
        e = str(e)
        for m in pat.finditer(e):
            i = int(m.group(1))
            if i >= n:
                return {}  # indexes that do not fit this request: do not trust any
            out.setdefault(i, []).append(e)
    return {i: "; ".join(v)[:500] for i, v in out.items()}


__all__ = ["AUTH_STATUS", "Action", "Outcome", "classify", "errors_by_index", "retry_delay"]
