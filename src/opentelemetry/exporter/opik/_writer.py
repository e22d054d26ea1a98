"""The writer, kept under its old name: it now lives in :mod:`._delivery` (one concern per module).

See :mod:`._delivery.sender` (the sender thread and :class:`Writer`), :mod:`._delivery.queue`,
:mod:`._delivery.retry`, :mod:`._delivery.resolve`, :mod:`._delivery.policy` and
:mod:`._delivery.durable`, and ``docs/delivery.md`` for what it promises.
"""

from __future__ import annotations

from ._delivery.resolve import ISOLATION_BUDGET, MIN_BYTE_BUDGET, MIN_SHRINK_BYTES
from ._delivery.retry import AUTH_BACKOFF_BASE, AUTH_BACKOFF_CAP, AUTH_PAUSE, BACKOFF_BASE, BACKOFF_CAP, TIMEOUT_GROWTH
from ._delivery.sender import ATEXIT_FLUSH, LINGER, REPLAY_RETRY, SPOOL_SCAN_INTERVAL, Writer

__all__ = [
    "ATEXIT_FLUSH", "AUTH_BACKOFF_BASE", "AUTH_BACKOFF_CAP", "AUTH_PAUSE", "BACKOFF_BASE", "BACKOFF_CAP",
    "ISOLATION_BUDGET", "LINGER", "MIN_BYTE_BUDGET", "MIN_SHRINK_BYTES", "REPLAY_RETRY", "SPOOL_SCAN_INTERVAL",
    "TIMEOUT_GROWTH", "Writer",
]
