"""``opik_trace_id`` / ``opik_trace_url``: the Opik trace id and UI link of an OTel span.

The Opik id of a trace is a UUIDv7 made of the trace's start (ms) and a hash of
its OTel trace id (:mod:`._ids`). The hash is fixed; the start comes, in order:

1. from the ``opik`` entry of the span's ``tracestate`` (written by
   :class:`~opentelemetry.exporter.opik.OpikSampler` at the root and carried to
   every downstream service by the W3C propagator): the same id in every process,
   exporter and sidecar, before or after export. **Guaranteed.**
2. from the trace cache of an ``OpikSpanExporter`` in this process that has
   already seen a span of the trace: the id it wrote. **Guaranteed** for that
   exporter.
3. otherwise the start of the span asked about (an SDK span), which is then
   *pinned* in the trace cache of every exporter in this process, so that what
   they write later uses it. **Guaranteed** for the exporters of this process;
   not for another process or a sidecar that sees the trace without the
   ``tracestate`` entry (it derives the start from the spans it receives).

Without any of these (a remote span without the entry and no exporter here)
there is no id to give: ``None``.
"""

from __future__ import annotations

import base64
import threading
import urllib.parse
import weakref
from typing import TYPE_CHECKING, List, Optional, Tuple

from opentelemetry import trace as trace_api

from ._ids import TRACESTATE_KEY, decode_tracestate_start, trace_uuid

if TYPE_CHECKING:  # pragma: no cover
    from ._mapping._traces import TraceCache

#: (trace cache, Opik URL) of every live pipeline in this process
_live: "weakref.WeakKeyDictionary[TraceCache, str]" = weakref.WeakKeyDictionary()
_live_lock = threading.Lock()


def register(cache: "TraceCache", url: str) -> None:
    """Called by each pipeline: its trace cache answers (and pins) trace starts."""
    with _live_lock:
        _live[cache] = url


def _caches() -> List[Tuple["TraceCache", str]]:
    with _live_lock:
        return list(_live.items())


def _span_or_current(span: Optional[trace_api.Span]) -> Optional[trace_api.SpanContext]:
    s = span if span is not None else trace_api.get_current_span()
    ctx = s.get_span_context()
    return ctx if ctx is not None and ctx.is_valid else None


def _start_ms(span: Optional[trace_api.Span], ctx: trace_api.SpanContext) -> Tuple[Optional[int], Optional[str]]:
    """The trace's start (ms) and the Opik URL of the exporter that knows it (if one does)."""
    live = _caches()
    for cache, url in live:
        with cache.lock:
            info = cache.peek(ctx.trace_id)
        if info is not None:
            return info.start_ms, url
    hint = decode_tracestate_start(ctx.trace_state.get(TRACESTATE_KEY)) if ctx.trace_state else None
    if hint is not None:
        return hint, None
    s = span if span is not None else trace_api.get_current_span()
    start_ns = getattr(s, "start_time", None)
    if not isinstance(start_ns, int) or not live:
        return None, None
    ms = start_ns // 1_000_000
    for cache, _ in live:
        with cache.lock:
            cache.get(ctx.trace_id, ms)  # first sight: this start is the trace's from now on
    return ms, live[-1][1]


def opik_trace_id(span: Optional[trace_api.Span] = None) -> Optional[str]:
    """The Opik trace id (a UUIDv7 string) of ``span``'s trace (default: the current span).

    ``None`` for an invalid span, and for a span whose trace start cannot be
    known here (no ``opik`` tracestate entry and no exporter in this process).
    See the module documentation for what is guaranteed.
    """
    ctx = _span_or_current(span)
    if ctx is None:
        return None
    ms, _ = _start_ms(span, ctx)
    return None if ms is None else trace_uuid(ctx.trace_id, ms)


def opik_trace_url(span: Optional[trace_api.Span] = None, url: Optional[str] = None) -> Optional[str]:
    """A link that opens ``span``'s trace's project in Opik's UI (default: the current span).

    It is the link Opik's own SDK prints: Opik's ``/v1/session/redirect/projects``
    endpoint looks the trace up and redirects to
    ``<UI>/<workspace>/projects/<project id>/traces``, so it works for any
    workspace and project, self-hosted (``http://localhost:5173/api``) or Opik
    Cloud (``https://www.comet.com/opik/api``), once the trace is stored.
    ``url`` is Opik's API base URL; by default that of the exporter in this
    process that knows the trace, else of the newest exporter, else the configured
    one (``OPIK_URL_OVERRIDE`` / config file / default).
    """
    ctx = _span_or_current(span)
    if ctx is None:
        return None
    ms, known_url = _start_ms(span, ctx)
    if ms is None:
        return None
    if url is None:
        live = _caches()
        url = known_url or (live[-1][1] if live else None)  # else the newest exporter's
    if url is None:
        from ._config import resolve_settings

        url = resolve_settings({}).url
    return trace_url(trace_uuid(ctx.trace_id, ms), url)


def trace_url(trace_id: str, url: str) -> str:
    """Opik's redirect link for ``trace_id`` on the Opik API at ``url``."""
    base = url.rstrip("/") + "/"
    encoded = base64.b64encode(base.rstrip("/").encode("utf-8")).decode("ascii")
    path = urllib.parse.quote(f"v1/session/redirect/projects/?trace_id={trace_id}&path={encoded}", safe=":/&?=")
    return urllib.parse.urljoin(base, path)
