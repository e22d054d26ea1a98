"""``opik-otel check`` on URLs users paste: Opik's OTLP endpoint, a bad port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Dict

import pytest
from opik_standin import OpikStandin


def _check(**env: str) -> "subprocess.CompletedProcess[str]":
    script = Path(sys.executable).with_name("opik-otel")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "opentelemetry.exporter.opik._cli"]
    clean: Dict[str, str] = {k: v for k, v in os.environ.items() if not k.startswith(("OPIK_", "OTEL_"))}
    clean.update(OPIK_CONFIG_PATH=os.devnull, OTEL_EXPORTER_OPIK_TIMEOUT="3", **env)
    return subprocess.run(cmd + ["check"], capture_output=True, text=True, timeout=60, env=clean)


@pytest.mark.parametrize("suffix", ["/v1/private/otel", "/v1/private/otel/", "/v1/private/otel/v1/traces"])
def test_opiks_otlp_endpoint_is_named_as_such(suffix: str) -> None:
    with OpikStandin() as opik:
        r = _check(OPIK_URL_OVERRIDE=opik.url + suffix)
    out = r.stdout + r.stderr
    assert r.returncode == 1 and "Traceback" not in out
    assert "Opik's OTLP endpoint" in out and "the /api part is missing" not in out
    assert f"fix: set OPIK_URL_OVERRIDE to {opik.url}\n" in out


def test_otlp_endpoint_on_an_unreachable_host_still_says_so() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = _check(OPIK_URL_OVERRIDE=f"http://127.0.0.1:{port}/api/v1/private/otel")
    out = r.stdout + r.stderr
    assert r.returncode == 1 and "connection refused" in out
    assert "Opik's OTLP endpoint" in out and f"http://127.0.0.1:{port}/api" in out


def test_a_plain_host_without_api_is_still_the_missing_api_case() -> None:
    with OpikStandin() as opik:
        r = _check(OPIK_URL_OVERRIDE=opik.url[: -len("/api")])
    assert "the /api part is missing" in r.stdout and "OTLP endpoint" not in r.stdout


@pytest.mark.parametrize("url", ["http://localhost:abc/api", "http://localhost:70000/api", "http://localhost:5173:5173/api"])
def test_a_bad_port_is_a_configuration_error_not_a_crash(url: str) -> None:
    r = _check(OPIK_URL_OVERRIDE=url)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and "OPIK_URL_OVERRIDE" in r.stderr and "port" in r.stderr
