"""Where encoded items go: one ``Sink`` protocol, one factory, one shutdown sequence.

The exporter, ``opik-otel serve`` and ``opik-otel import`` all build their sink with
:func:`make_sink` (the writer to Opik, with the spool when one is set, or the dry-run console) and
close it with :func:`close_sink` (release what the pipeline still holds, then shut the sink down
within the timeout).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Callable, Optional, Protocol, Sequence, TextIO

from .._errors import trail
from .._items import Item
from .._stats import Stats
from .._writer import Writer  # at import: its exit hook is registered before any provider's (atexit is LIFO)

if TYPE_CHECKING:  # pragma: no cover
    from .._config import OpikSettings

_logger = logging.getLogger("opentelemetry.exporter.opik")


class Sink(Protocol):
    """What the exporter, the sidecar and import need from a writer."""

    def submit(self, items: Sequence[Item], force: bool = False) -> int:
        """Queue ``items`` without blocking; how many were accepted (the rest are counted as dropped)."""
        ...

    def has_capacity(self, n_items: int = 1, n_bytes: int = 0) -> bool: ...

    def pending(self) -> int: ...

    def flush(self, timeout: Optional[float] = None) -> bool: ...

    def shutdown(self, timeout: float = 30.0) -> bool: ...

    def drops_refused(self) -> bool:
        """True while Opik's refusal of the credentials is confirmed and new items would be dropped."""
        ...


def make_sink(
    settings: "OpikSettings",
    stats: Stats,
    *,
    console: Optional[TextIO] = None,
    spool: bool = True,
) -> Sink:
    """The dry-run console, or the writer to Opik (with the durable spool if ``spool`` and one is set)."""
    if settings.dry_run:
        from .._console import ConsoleWriter

        return ConsoleWriter(console, stats)
    from .._privacy import shrink_item

    disk = None
    if spool and settings.spool_dir:
        from .._spool import Spool

        disk = Spool(settings.spool_dir, settings.spool_max_bytes)
    from .. import _attachments

    if _attachments.enabled(settings):
        return _attachments.writer_with_uploads(settings, stats, disk, shrink_item)
    return Writer(settings, stats=stats, spool=disk, shrink=shrink_item)


def close_sink(
    sink: Sink,
    timeout: float,
    held: Optional[Callable[[], Sequence[Item]]] = None,
    submit: Optional[Callable[[Sequence[Item]], object]] = None,
) -> bool:
    """The one shutdown sequence: queue what ``held()`` releases (a pipeline's held items), then shut down.

    ``submit`` queues the released items (default ``sink.submit``; import waits for room instead).
    True if everything was delivered within ``timeout``; the rest is spooled or counted as dropped.
    """
    if held is not None:
        try:
            items = held()
            if items:
                (submit or sink.submit)(items)
        except Exception as exc:  # noqa: BLE001 - shutdown goes on; the sink still delivers the rest
            _logger.error("Opik exporter: could not release the items held at shutdown: %s", trail(exc))
    return bool(sink.shutdown(timeout))


__all__ = ["Sink", "close_sink", "make_sink"]
