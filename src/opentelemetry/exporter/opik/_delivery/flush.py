"""``TracerProvider.force_flush()`` waits for Opik, whichever span processor calls the exporter.

The SDK's ``BatchSpanProcessor.force_flush`` hands its queued spans to ``export()`` and returns
``True``; it never calls the exporter's ``force_flush``, so without help it returns while the
spans are still on their way to Opik (and a process that exits then loses them). The exporter
therefore *hooks* the processor that calls its ``export()``: the first call finds that processor
(the caller's ``self``, holding this exporter) and wraps its ``force_flush`` so that it also waits
for the exporter's own flush, within what is left of the timeout. This works in process and in
zero-code (``OTEL_TRACES_EXPORTER=opik``), for the batch and the simple processor, and is inherited
by forked children. A processor that shares no such shape is left alone (``force_flush`` of the
exporter still works when called directly).
"""

from __future__ import annotations

import sys
import threading
import time
from types import FrameType
from typing import Callable, Optional, Protocol

#: the SDK's default ``force_flush`` timeout, used when the processor passes none
DEFAULT_FLUSH_MILLIS = 30_000


class _Flushable(Protocol):
    def force_flush(self, timeout_millis: Optional[int] = None) -> bool: ...


FlushFn = Callable[[float], bool]


class ProcessorFlushHook:
    """Hooks the processors that call ``export()`` of one exporter (see the module docstring)."""

    def __init__(self, exporter: object, flush: FlushFn) -> None:
        self._exporter = exporter
        self._flush = flush
        self._hooked: "set[int]" = set()
        self._lock = threading.Lock()

    def from_export(self) -> bool:
        """Call from ``export()``: hook the processor that called it, once.

        True when ``export()`` should wait for the exporter's flush itself: it runs inside a
        processor's ``force_flush`` that began before the hook was in place (the first spans of a
        process, or of a forked child, exported by a flush), as its last batch.
        """
        try:
            start: Optional[FrameType] = sys._getframe(2)
        except ValueError:  # pragma: no cover - no such frame
            return False
        while start is not None and start.f_locals.get("self") is self._exporter:
            start = start.f_back  # a subclass's export() that calls super().export(): its caller is the processor
        if start is None:  # pragma: no cover - export() called by nothing but itself
            return False
        frame = start
        caller = frame.f_locals.get("self")
        if caller is None or not self._holds_us(caller):
            return False
        if id(caller) not in self._hooked:
            with self._lock:
                new = id(caller) not in self._hooked
                self._hooked.add(id(caller))
            if new:
                self._wrap(caller)
        return not getattr(_state, "in_flush", False) and _in_unhooked_flush(frame, caller)

    def _holds_us(self, proc: object) -> bool:
        if not callable(getattr(proc, "force_flush", None)):
            return False
        return any(getattr(proc, name, None) is self._exporter for name in ("_exporter", "span_exporter"))

    def _wrap(self, proc: _Flushable) -> None:
        original = proc.force_flush
        flush = self._flush

        def force_flush(timeout_millis: Optional[int] = None) -> bool:
            millis = DEFAULT_FLUSH_MILLIS if timeout_millis is None else timeout_millis
            end = time.monotonic() + max(millis, 0) / 1000
            _state.in_flush = True
            try:
                ok = original(timeout_millis) if timeout_millis is not None else original()
            finally:
                _state.in_flush = False
            # then what the exporter holds: delivered to Opik, or (with a spool) on disk
            return flush(max(end - time.monotonic(), 0.0)) and ok is not False

        try:
            proc.force_flush = force_flush  # type: ignore[method-assign]
        except (AttributeError, TypeError):  # pragma: no cover - a slotted processor: leave it
            pass


_state = threading.local()


def _in_unhooked_flush(frame: object, proc: object) -> bool:
    """The SDK's ``BatchProcessor._export(EXPORT_ALL)`` called from a flush (not its worker), last batch."""
    code = getattr(frame, "f_code", None)
    if code is None or code.co_name != "_export":
        return False
    strategy = getattr(frame, "f_locals", {}).get("batch_strategy")
    if getattr(strategy, "name", "") != "EXPORT_ALL":
        return False
    if threading.current_thread() is getattr(proc, "_worker_thread", None):
        return False  # the worker's own final export at shutdown: shutdown() waits
    return not getattr(proc, "_queue", True)


__all__ = ["DEFAULT_FLUSH_MILLIS", "ProcessorFlushHook"]
