"""``TracerProvider.force_flush()`` waits for Opik when the exporter is a subclass that wraps ``export()``.

The exporter hooks the processor that calls its ``export()`` by looking at its caller. A subclass that
overrides ``export()`` and calls ``super().export()`` (to count, to log, to record what was acknowledged)
put itself between the two, so the processor was never hooked: the provider's flush returned ``True``
with every item still queued (measured: 0 of 20 spans stored, 40 items pending), and an ``os._exit``
then lost them all.
"""

from __future__ import annotations

from typing import Sequence

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExportResult
from opik_standin import Fault, OpikStandin

from opentelemetry.exporter.opik import OpikSpanExporter


class Counting(OpikSpanExporter):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.acked = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = super().export(spans)
        if result is SpanExportResult.SUCCESS:
            self.acked += len(spans)
        return result


class CountingTwice(Counting):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return super().export(spans)


@pytest.mark.parametrize("cls", [Counting, CountingTwice])
@pytest.mark.parametrize("processor", ["batch", "simple"])
def test_provider_flush_waits_for_a_subclass_that_wraps_export(opik: OpikStandin, cls: type, processor: str) -> None:
    opik.faults.add(Fault.stall(0.4, times=None))  # every answer takes 0.4 s: a flush that does not wait loses
    exporter = cls(url=opik.url, project_name="subclass")
    provider = TracerProvider(resource=Resource.create({"service.name": "subclass"}), shutdown_on_exit=False)
    if processor == "batch":
        provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=20))
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("subclass")
    try:
        for i in range(20):
            with tracer.start_as_current_span(f"sub-{i}"):
                with tracer.start_as_current_span(f"sub-{i}.child"):
                    pass
        assert provider.force_flush(30_000)
        # what os._exit(0) would find now: everything acknowledged is in Opik
        assert exporter.acked == 40
        assert {r["name"] for r in opik.traces.values()} == {f"sub-{i}" for i in range(20)}
        assert len(opik.spans) == 40 and opik.duplicates() == {}
    finally:
        provider.shutdown()
