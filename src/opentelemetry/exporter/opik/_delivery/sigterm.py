"""The opt-in SIGTERM flush (``OTEL_EXPORTER_OPIK_SIGTERM_FLUSH=true``).

Python's default SIGTERM action ends the process at once: no ``atexit`` hook runs, so the spans in
the SDK's batch processor and in the exporter's queue are lost. With the setting on, and only if the
app has no SIGTERM handler of its own (the handler is still the default when the exporter is built in
the main thread), SIGTERM raises ``SystemExit(143)`` in the main thread instead: the interpreter exits
normally, the SDK's exit hook shuts the ``TracerProvider`` down (its processors export what they hold,
the exporter delivers within the shutdown timeout, or spools), and the writer's own exit hook flushes
a writer nobody shut down. A second SIGTERM during that exit ends the process at once.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Optional

#: the exit status after a SIGTERM, as a shell reports a process ended by it
EXIT_STATUS = 128 + int(signal.SIGTERM)


def _on_sigterm(signum: int, frame: Optional[FrameType]) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM: no more waiting
    raise SystemExit(EXIT_STATUS)


def install() -> bool:
    """Install the handler if the app has none; True if it is installed (now or before)."""
    current = signal.getsignal(signal.SIGTERM)
    if current is _on_sigterm:
        return True
    if current is not signal.SIG_DFL or threading.current_thread() is not threading.main_thread():
        return False
    try:
        signal.signal(signal.SIGTERM, _on_sigterm)
    except (ValueError, OSError):  # pragma: no cover - not the main interpreter
        return False
    return True


__all__ = ["EXIT_STATUS", "install"]
