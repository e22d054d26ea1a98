"""Shared fixtures: the Opik stand-in, an isolated environment, SDK providers wired to it."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Callable, Iterator, List, Tuple

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor  # noqa: E402
from opik_standin import OpikStandin  # noqa: E402

from opentelemetry.exporter.opik import OpikSpanExporter  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _isolated_opik_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No test sees the developer's OPIK_* / OTEL_* settings or ~/.opik.config."""
    for key in list(os.environ):
        if key.startswith(("OPIK_", "OTEL_EXPORTER_OPIK_")):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("OPIK_CONFIG_PATH", os.devnull)  # "no config file" (a missing one is an error)


@pytest.fixture
def opik() -> Iterator[OpikStandin]:
    with OpikStandin() as standin:
        yield standin


ProviderFactory = Callable[..., Tuple[TracerProvider, OpikSpanExporter]]


@pytest.fixture
def provider_for(opik: OpikStandin) -> Iterator[ProviderFactory]:
    """``provider_for(batch=True, resource=..., sampler=..., **exporter_kwargs)``: an SDK provider exporting to the stand-in."""
    made: List[TracerProvider] = []

    def make(batch: bool = True, resource: Any = None, sampler: Any = None, **kwargs: Any) -> Tuple[TracerProvider, OpikSpanExporter]:
        kwargs.setdefault("url", opik.url)
        exporter = OpikSpanExporter(**kwargs)
        provider = TracerProvider(resource=resource or Resource.create({"service.name": "tests"}), sampler=sampler)
        provider.add_span_processor(BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter))
        made.append(provider)
        return provider, exporter

    yield make
    for p in made:
        p.shutdown()
