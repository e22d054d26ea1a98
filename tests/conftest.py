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


# -- the sidecar suite, once plain and once over TLS (issue 22) ----------------------------------
#: test files whose every test runs twice: against a plain sidecar and against a TLS one
#: (``SidecarProcess`` serves with the session CA's certificate; the clients trust the CA)
SIDECAR_TLS_PASS = frozenset({
    "test_sidecar_admission.py",
    "test_sidecar_backpressure.py",
    "test_sidecar_bad_input.py",
    "test_sidecar_dry_run.py",
    "test_sidecar_json.py",
    "test_sidecar_memory.py",
    "test_sidecar_otlp.py",
    "test_sidecar_passthrough.py",
    "test_sidecar_receiver.py",
    "test_sidecar_shutdown.py",
    "test_logs_sidecar.py",
})


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.path.name in SIDECAR_TLS_PASS and "sidecar_transport" in metafunc.fixturenames:
        metafunc.parametrize("sidecar_transport", ["plain", "tls"], ids=["plaintext", "tls"], indirect=True,
                             scope="module")


@pytest.fixture(scope="session")
def sidecar_tls_files(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from sidecar_helpers import SidecarTls

    return SidecarTls.make(tmp_path_factory.mktemp("sidecar-tls"))


@pytest.fixture(scope="module", autouse=True)
def sidecar_transport(request: pytest.FixtureRequest) -> Iterator[str]:
    """``plain`` (every test outside SIDECAR_TLS_PASS), or ``tls``: sidecars started in this module serve
    TLS, and httpx, ssl, the official OTLP exporters (``OTEL_EXPORTER_OTLP_CERTIFICATE``) and Node trust
    the session CA; ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` are cleared (they would override it)."""
    mode = getattr(request, "param", "plain")
    if mode != "tls":
        yield mode
        return
    import sidecar_helpers

    tls = request.getfixturevalue("sidecar_tls_files")
    with pytest.MonkeyPatch.context() as mp:
        for key in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
            mp.delenv(key, raising=False)
        for key, value in tls.client_env().items():
            mp.setenv(key, value)
        mp.setattr(sidecar_helpers, "DEFAULT_TLS", tls)
        yield mode
