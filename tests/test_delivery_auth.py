"""401/403: one clear error, never the key, no request storm, nothing lost to a refusal that goes away."""

from __future__ import annotations

import logging
import time

import pytest
from conftest_delivery import assert_stored_exactly_once, log_lines, make_exporter, make_spans, provider_with
from opik_standin import Fault, OpikStandin

SECRET = "sk-wrong-9f8e7d6c5b4a3210-secret"


def test_401_logs_one_clear_error_without_the_key_and_sends_no_storm(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # everything, httpx and httpcore included
    with OpikStandin(api_key="the-right-key") as opik:
        exporter = make_exporter(opik.url, api_key=SECRET, workspace="team-a", retry_deadline=2.5)
        provider = provider_with(exporter)
        tracer = provider.get_tracer("auth")
        end = time.monotonic() + 1.0
        n = 0
        while time.monotonic() < end:  # a steady stream for a second
            with tracer.start_as_current_span(f"call-{n}"):
                pass
            n += 1
            time.sleep(0.01)
        assert exporter.force_flush(10_000)

        errors = [line for line in log_lines(caplog, logging.ERROR)]
        assert len(errors) == 1, errors
        line = errors[0]
        assert opik.url in line and "'team-a'" in line and "OPIK_API_KEY" in line and "401" in line
        assert SECRET not in caplog.text
        assert all(SECRET not in str(r.args) for r in caplog.records)
        # Backoff from 1 s (1, 2, then the last chance before the 2.5 s deadline): a handful of
        # requests, then the refusal is confirmed and nothing more is sent during the pause.
        sent = opik.count("/v1/private/traces/batch") + opik.count("/v1/private/spans/batch")
        assert 2 <= sent <= 4, sent
        stats = exporter.stats()
        assert stats["dropped"] == {"unauthorized": 2 * n}  # a trace and a span per call
        assert opik.spans == {}
        provider.shutdown()


def test_a_transient_401_loses_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    with OpikStandin() as opik:
        opik.faults.add(Fault.respond(401, times=1))
        exporter = make_exporter(opik.url)
        provider = provider_with(exporter)
        spans = make_spans(300)
        exporter.export(spans)
        assert exporter.force_flush(10_000)
        assert_stored_exactly_once(opik, spans)
        assert exporter.stats()["dropped"] == {}
        (line,) = log_lines(caplog, logging.ERROR)
        assert "401" in line and "Retrying" in line
        provider.shutdown()


def test_403_names_the_workspace_setting(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    with OpikStandin(workspace="team-a") as opik:
        exporter = make_exporter(opik.url, workspace="team-b", retry_deadline=1.2)
        exporter.export(make_spans(3))
        assert exporter.force_flush(5_000)
        exporter.export(make_spans(3, prefix="later"))  # during the pause: no request
        assert exporter.force_flush(5_000)
        (line,) = log_lines(caplog, logging.ERROR)
        assert "403" in line and "OPIK_WORKSPACE" in line and "'team-b'" in line
        assert 1 <= opik.count(status=403) <= 3
        assert exporter.stats()["dropped"] == {"unauthorized": 12}
        exporter.shutdown()


def test_after_the_pause_a_fixed_server_gets_the_new_spans(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    with OpikStandin(api_key="k1") as opik:
        exporter = make_exporter(opik.url, api_key="k0-wrong-key", retry_deadline=1.2)
        exporter._writer.auth_pause = 0.5  # type: ignore[union-attr]
        exporter.export(make_spans(2))
        assert exporter.force_flush(5_000)
        opik.api_key = None  # the operator fixed the server side
        time.sleep(0.6)
        later = make_spans(2, prefix="after")
        exporter.export(later)
        assert exporter.force_flush(5_000)
        assert {r["name"] for r in opik.spans.values()} == {"after0", "after1"}
        exporter.shutdown()


def test_shutdown_interrupts_the_auth_backoff() -> None:
    with OpikStandin(api_key="k1") as opik:
        exporter = make_exporter(opik.url, api_key="k0-wrong-key")  # default 120 s retry deadline
        exporter.export(make_spans(5))
        time.sleep(1.5)  # refused, now waiting in the backoff
        t0 = time.monotonic()
        exporter.shutdown()
        assert time.monotonic() - t0 < 12
        assert exporter.stats()["dropped"] == {"unauthorized": 10}
