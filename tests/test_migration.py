"""Migrating from Opik's OTLP endpoint: Opik's documented OTLP variables configure the exporter.

``OTEL_EXPORTER_OTLP_ENDPOINT=<opik>/v1/private/otel`` plus
``OTEL_EXPORTER_OTLP_HEADERS=Authorization=<key>,projectName=<p>,Comet-Workspace=<w>``, with
``OTEL_TRACES_EXPORTER=opik`` and no ``OPIK_*`` settings, against a stand-in that requires that key
and workspace: the traces are stored under that project; one INFO line says where each setting came
from and the key never appears.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Dict

import pytest
from opik_standin import OpikStandin

from opentelemetry.exporter.opik._config import LOCAL_URL, resolve_settings

KEY = "opik-migration-key-5f2c9a0e41b37d68c0aa"
WORKSPACE = "team-migrated"
PROJECT = "my migrated app"  # sent URL-encoded, as the OTel spec says header values are

APP = textwrap.dedent(
    """
    from opentelemetry import trace
    tracer = trace.get_tracer("migration")
    with tracer.start_as_current_span("migrated-root"):
        with tracer.start_as_current_span("migrated-child"):
            pass
    """
)


def _otlp_env(url: str, endpoint_var: str = "OTEL_EXPORTER_OTLP_ENDPOINT", suffix: str = "/v1/private/otel",
              headers_var: str = "OTEL_EXPORTER_OTLP_HEADERS") -> Dict[str, str]:
    return {
        endpoint_var: url + suffix,
        headers_var: f"Authorization={KEY}, projectName=my%20migrated%20app ,Comet-Workspace={WORKSPACE}",
        "OPIK_CONFIG_PATH": os.devnull,
    }


def test_opentelemetry_instrument_with_opiks_otlp_variables_stores_under_the_right_project(tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text(APP)
    with OpikStandin(api_key=KEY, workspace=WORKSPACE) as opik:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPIK_", "OTEL_"))}
        env.update(_otlp_env(opik.url), OTEL_TRACES_EXPORTER="opik",
                   OTEL_PYTHON_DISTRO="opik")  # this venv also holds opentelemetry-distro (the test extra)
        instrument = Path(sys.executable).parent / "opentelemetry-instrument"
        proc = subprocess.run([str(instrument), sys.executable, str(script)], env=env,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr[-3000:]
        opik.wait_for_counts(traces=1, spans=2)
        (trace_row,) = opik.traces.values()
        assert trace_row["name"] == "migrated-root" and trace_row["project_name"] == PROJECT
        assert trace_row["workspace"] == WORKSPACE
        assert {s["project_name"] for s in opik.spans.values()} == {PROJECT}
        assert KEY not in proc.stderr + proc.stdout


@pytest.mark.parametrize(
    "endpoint_var,suffix,headers_var",
    [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "/v1/private/otel", "OTEL_EXPORTER_OTLP_HEADERS"),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "/v1/private/otel/v1/traces", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "/v1/private/otel/", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"),
    ],
)
def test_each_setting_says_where_it_came_from_in_one_info_line_without_the_key(
    caplog: pytest.LogCaptureFixture, endpoint_var: str, suffix: str, headers_var: str
) -> None:
    base = "https://opik.example.test/opik/api"
    with caplog.at_level(logging.INFO, logger="opentelemetry.exporter.opik"):
        s = resolve_settings(env=_otlp_env(base, endpoint_var, suffix, headers_var))
    assert (s.url, s.api_key, s.workspace, s.project_name) == (base, KEY, WORKSPACE, PROJECT)
    assert s.sources["url"].startswith(f"env {endpoint_var}")
    assert s.sources["api_key"] == f"env {headers_var} (authorization)"
    lines = [r.getMessage() for r in caplog.records if "OTLP settings" in r.getMessage()]
    assert len(lines) == 1, lines
    for field in ("url", "api_key", "workspace", "project_name"):
        assert f"{field} from env " in lines[0]
    assert KEY not in caplog.text and KEY not in repr(s)


def test_the_traces_variables_win_over_the_general_ones() -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector.test:4318",
           "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://opik.test:5173/api/v1/private/otel/v1/traces",
           "OTEL_EXPORTER_OTLP_HEADERS": "Authorization=general-key-not-this-one",
           "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "Authorization=traces%3Dkey", "OPIK_CONFIG_PATH": os.devnull}
    s = resolve_settings(env=env)
    assert s.url == "http://opik.test:5173/api" and s.api_key == "traces=key"


@pytest.mark.parametrize("endpoint", ["http://collector.test:4318", "http://localhost:4317",
                                      "https://api.honeycomb.io/v1/traces", "http://opik.test/api/v1/private/otelx"])
def test_an_otlp_endpoint_that_is_not_opiks_is_left_alone(endpoint: str) -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_EXPORTER_OTLP_HEADERS": f"Authorization={KEY}",
           "OPIK_CONFIG_PATH": os.devnull}
    s = resolve_settings(env=env)
    assert s.url == LOCAL_URL and s.api_key is None and s.sources["url"] == "default (local Opik)"


def test_opik_settings_win_and_the_otlp_ones_are_then_not_used() -> None:
    env = {**_otlp_env("http://opik.test:5173/api"), "OPIK_URL_OVERRIDE": "http://mine.test:5173/api"}
    s = resolve_settings(env=env)
    assert (s.url, s.api_key, s.workspace) == ("http://mine.test:5173/api", None, "default")  # no key sent elsewhere
    env = {**_otlp_env("http://opik.test:5173/api"), "OPIK_PROJECT_NAME": "from-opik-env", "OPIK_API_KEY": "k" * 20}
    s = resolve_settings(env=env)
    assert s.project_name == "from-opik-env" and s.workspace == "default"
    env = {**_otlp_env("http://opik.test:5173/api"), "OPIK_PROJECT_NAME": "from-opik-env"}
    s = resolve_settings(env=env)
    assert (s.project_name, s.workspace, s.api_key) == ("from-opik-env", WORKSPACE, KEY)


def test_a_malformed_header_entry_is_skipped_by_position_never_quoted(caplog: pytest.LogCaptureFixture) -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://opik.test:5173/api/v1/private/otel",
           "OTEL_EXPORTER_OTLP_HEADERS": f"{KEY},Comet-Workspace=w1", "OPIK_CONFIG_PATH": os.devnull}
    with caplog.at_level(logging.WARNING, logger="opentelemetry.exporter.opik"):
        s = resolve_settings(env=env)
    assert s.workspace == "w1" and s.api_key is None
    assert "OTEL_EXPORTER_OTLP_HEADERS: entry 1 is not 'name=value'" in caplog.text and KEY not in caplog.text
