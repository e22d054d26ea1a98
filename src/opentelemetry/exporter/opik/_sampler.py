"""``OpikSampler``: stamps the root's start time into the W3C ``tracestate``.

With it, every span of a trace, in this process and in every downstream
service (through the standard tracecontext propagator), carries the trace start
in an ``opik`` entry, so every exporter and sidecar derives the same Opik ids
with no shared state.
"""

from __future__ import annotations

import time
from typing import Optional, Sequence

from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import DEFAULT_ON, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind, get_current_span
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from ._ids import TRACESTATE_KEY, encode_tracestate_start


class OpikSampler(Sampler):
    """Wraps a sampler (default: parent-based always-on) and adds the ``opik`` entry."""

    def __init__(self, delegate: Optional[Sampler] = None) -> None:
        self._delegate = delegate or DEFAULT_ON

    def should_sample(
        self,
        parent_context: Optional[Context],
        trace_id: int,
        name: str,
        kind: Optional[SpanKind] = None,
        attributes: Attributes = None,
        links: Optional[Sequence[Link]] = None,
        trace_state: Optional[TraceState] = None,
    ) -> SamplingResult:
        result = self._delegate.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)
        parent = get_current_span(parent_context).get_span_context()
        state = result.trace_state
        if state is None and parent is not None and parent.is_valid:
            state = parent.trace_state
        state = state or TraceState()
        if TRACESTATE_KEY not in state:
            if parent is not None and parent.is_valid and TRACESTATE_KEY in parent.trace_state:
                value = parent.trace_state[TRACESTATE_KEY]
            elif parent is None or not parent.is_valid:
                value = encode_tracestate_start(time.time_ns() // 1_000_000)
            else:
                return result  # a remote parent without the entry: nothing to stamp
            state = state.add(TRACESTATE_KEY, value)
        return SamplingResult(result.decision, result.attributes, state)

    def get_description(self) -> str:
        return f"OpikSampler{{{self._delegate.get_description()}}}"


def sampler_factory(arg: Optional[str] = None) -> Sampler:
    """Entry point for ``OTEL_TRACES_SAMPLER=opik``; ``OTEL_TRACES_SAMPLER_ARG`` is a ratio (default 1.0)."""
    from opentelemetry.sdk.trace.sampling import ParentBasedTraceIdRatio

    if arg and arg.strip():
        try:
            rate = float(arg)
        except ValueError:
            raise ValueError(f"OTEL_TRACES_SAMPLER_ARG={arg!r} must be a sampling ratio between 0 and 1") from None
        return OpikSampler(ParentBasedTraceIdRatio(rate))
    return OpikSampler()
