"""``opik-otel check`` and ``opik-otel settings`` against the Opik stand-in over real HTTP(S)."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import threading
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest
from opik_standin import OpikStandin

from opentelemetry.exporter.opik._check import run_checks, settings_markdown, suggest_api_url
from opentelemetry.exporter.opik._cli import main
from opentelemetry.exporter.opik._config import resolve_settings

ROOT = Path(__file__).resolve().parent.parent
KEY = "k3y-0123456789abcdefghijkl"


def run_cli(capsys: pytest.CaptureFixture, *argv: str) -> Tuple[int, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out + out.err


def lines_with(text: str, marker: str) -> List[str]:
    return [line for line in text.splitlines() if marker in line]


def test_check_passes_against_standin_and_reports_sources(
    opik: OpikStandin, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cfg = tmp_path / "opik.config"
    cfg.write_text("[opik]\nworkspace = default\nproject_name = from-file\n")
    monkeypatch.setenv("OPIK_CONFIG_PATH", str(cfg))
    monkeypatch.setenv("OPIK_URL_OVERRIDE", opik.url)
    monkeypatch.setenv("OTEL_EXPORTER_OPIK_TIMEOUT", "3")
    code, out = run_cli(capsys, "check")
    assert code == 0, out
    assert "All 3 checks passed" in out
    assert lines_with(out, "OPIK_URL_OVERRIDE")[0].split()[-2:] == ["env", "OPIK_URL_OVERRIDE"]
    assert lines_with(out, "OPIK_PROJECT_NAME")[0].rstrip().endswith(f"{cfg} [opik] project_name")
    assert "from-file" in lines_with(out, "OPIK_PROJECT_NAME")[0]
    assert lines_with(out, "OTEL_EXPORTER_OPIK_TIMEOUT")[0].split()[1:] == ["3", "env", "OTEL_EXPORTER_OPIK_TIMEOUT"]
    assert lines_with(out, "OTEL_EXPORTER_OPIK_BATCH_MAX_ITEMS")[0].split()[1:] == ["1000", "default"]
    assert "'from-file'" in out and "does not exist yet" in out
    # the write probe reached validation and wrote nothing
    assert opik.count("/v1/private/traces/batch", 422) == 1
    assert opik.traces == {} and opik.spans == {}


def test_check_argument_overrides_environment(opik: OpikStandin, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPIK_URL_OVERRIDE", "http://127.0.0.1:1/api")
    code, out = run_cli(capsys, "check", "--url", opik.url, "--project", "cli-project")
    assert code == 0, out
    assert lines_with(out, "OPIK_URL_OVERRIDE")[0].split()[1:] == [opik.url, "argument"]
    assert "'cli-project'" in out


def test_check_with_api_key_masks_it_and_passes(capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    with OpikStandin(api_key=KEY, workspace="team") as opik:
        monkeypatch.setenv("OPIK_URL_OVERRIDE", opik.url)
        monkeypatch.setenv("OPIK_API_KEY", KEY)
        monkeypatch.setenv("OPIK_WORKSPACE", "team")
        code, out = run_cli(capsys, "check")
    assert code == 0, out
    assert KEY not in out
    assert "k3y…(26 chars)" in lines_with(out, "OPIK_API_KEY")[0]
    assert opik.requests[-1].headers["authorization"] == KEY


def test_check_closed_port_fails_with_fix(capsys: pytest.CaptureFixture) -> None:
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, out = run_cli(capsys, "check", "--url", f"http://127.0.0.1:{port}/api")
    assert code == 1
    assert f"[FAIL] reachable: connection refused at 127.0.0.1:{port}" in out
    assert "fix: start Opik" in out and "--url (or OPIK_URL_OVERRIDE)" in out
    assert "[skip] credentials" in out and "[skip] project writable" in out


def test_check_wrong_api_key_401(capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    with OpikStandin(api_key=KEY) as opik:
        monkeypatch.setenv("OPIK_API_KEY", "wrong-key-0123456789abcdef")
        code, out = run_cli(capsys, "check", "--url", opik.url)
    assert code == 1
    assert "[ok]   reachable" in out
    (fail,) = lines_with(out, "[FAIL]")
    assert "HTTP 401" in fail and "was refused" in fail
    assert "fix: set OPIK_API_KEY to a valid key" in out
    assert "wrong-key-0123456789abcdef" not in out


def test_check_missing_api_key_401(capsys: pytest.CaptureFixture) -> None:
    with OpikStandin(api_key=KEY) as opik:
        code, out = run_cli(capsys, "check", "--url", opik.url)
    assert code == 1
    assert "requires an API key and none is set" in out
    assert "fix: set OPIK_API_KEY" in out


def test_check_wrong_workspace_403(capsys: pytest.CaptureFixture) -> None:
    with OpikStandin(workspace="team") as opik:
        code, out = run_cli(capsys, "check", "--url", opik.url, "--workspace", "someone-else")
    assert code == 1
    assert "HTTP 403" in out and "'someone-else'" in out
    assert "fix: set --workspace (or OPIK_WORKSPACE)" in out


def test_check_url_without_api_fails_with_fix(opik: OpikStandin, capsys: pytest.CaptureFixture) -> None:
    base = opik.url[: -len("/api")]
    code, out = run_cli(capsys, "check", "--url", base)
    assert code == 1
    assert "(the /api part is missing)" in out
    assert f"fix: set --url (or OPIK_URL_OVERRIDE) to {base}/api" in out


def test_check_otlp_endpoint_pasted_as_url(opik: OpikStandin, capsys: pytest.CaptureFixture) -> None:
    code, out = run_cli(capsys, "check", "--url", opik.url + "/v1/private/otel")
    assert code == 1
    assert f"to {opik.url}\n" in out


def test_check_url_answering_html_is_the_ui(capsys: pytest.CaptureFixture) -> None:
    """A 200 HTML page (Opik's UI without /api) is not the API."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class UI(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            body = b"<!doctype html><html><body>Opik</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), UI)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        code, out = run_cli(capsys, "check", "--url", url)
    finally:
        server.shutdown()
        server.server_close()
    assert code == 1
    assert "an HTML page" in out and f"to {url}/api" in out


def test_check_dns_failure(capsys: pytest.CaptureFixture) -> None:
    code, out = run_cli(capsys, "check", "--url", "http://opik-otel-test.invalid/api", "--timeout", "3")
    assert code == 1
    assert "DNS: the host name 'opik-otel-test.invalid' does not resolve" in out
    assert "fix: correct the host" in out


# -- TLS: a TLS front for the stand-in with a self-signed certificate --------------------


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> Tuple[str, str]:
    d = tmp_path_factory.mktemp("tls")
    crt, key = str(d / "cert.pem"), str(d / "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", crt, "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    return crt, key


@pytest.fixture
def tls_front(opik: OpikStandin, cert: Tuple[str, str]) -> Iterator[str]:
    """``https://127.0.0.1:<port>/api``: TLS terminated here, bytes forwarded to the stand-in."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*cert)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def serve() -> None:
        while not stop.is_set():
            try:
                raw, _ = listener.accept()
            except (socket.timeout, OSError):
                continue
            try:
                raw.settimeout(5)
                conn = ctx.wrap_socket(raw, server_side=True)
                conn.settimeout(None)
            except (ssl.SSLError, OSError):
                raw.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", opik.port))
            threading.Thread(target=pipe, args=(conn, upstream), daemon=True).start()
            threading.Thread(target=pipe, args=(upstream, conn), daemon=True).start()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield f"https://127.0.0.1:{listener.getsockname()[1]}/api"
    stop.set()
    t.join(2)
    listener.close()


def test_check_tls_untrusted_then_trusted(tls_front: str, cert: Tuple[str, str], capsys: pytest.CaptureFixture,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    code, out = run_cli(capsys, "check", "--url", tls_front, "--timeout", "5")
    assert code == 1
    assert "TLS error: the certificate of 127.0.0.1" in out
    assert "fix: set OTEL_EXPORTER_OPIK_CERTIFICATE" in out
    monkeypatch.setenv("OTEL_EXPORTER_OPIK_CERTIFICATE", cert[0])
    code, out = run_cli(capsys, "check", "--url", tls_front, "--timeout", "5")
    assert code == 0, out


def test_check_https_to_plain_http_port(opik: OpikStandin, capsys: pytest.CaptureFixture) -> None:
    code, out = run_cli(capsys, "check", "--url", opik.url.replace("http://", "https://"), "--timeout", "5")
    assert code == 1
    assert "does not speak HTTPS" in out
    assert f"fix: use {opik.url} in --url" in out


def test_check_unreadable_certificate_file(opik: OpikStandin, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    bad = tmp_path / "not-a-ca.pem"
    bad.write_text("nothing here")
    monkeypatch.setenv("OTEL_EXPORTER_OPIK_CERTIFICATE", str(bad))
    code, out = run_cli(capsys, "check", "--url", opik.url)
    assert code == 1
    assert "[FAIL] certificate" in out and "PEM" in out


# -- settings and configuration errors ---------------------------------------------------


def test_malformed_setting_is_a_usage_error(capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OPIK_TIMEOUT", "soon")
    code, out = run_cli(capsys, "check")
    assert code == 2
    assert "OTEL_EXPORTER_OPIK_TIMEOUT" in out and "soon" not in out  # the setting named, its value never echoed


def test_run_checks_api_matches_cli(opik: OpikStandin) -> None:
    checks = run_checks(resolve_settings({"url": opik.url}))
    assert [(c.name, c.status) for c in checks] == [("reachable", "ok"), ("credentials", "ok"), ("project writable", "ok")]


@pytest.mark.parametrize(
    "url, expected",
    [
        ("http://localhost:5173", "http://localhost:5173/api"),
        ("http://localhost:5173/api", None),
        ("https://www.comet.com", "https://www.comet.com/opik/api"),
        ("http://h:5173/api/v1/private/otel/v1/traces", "http://h:5173/api"),
        ("https://opik.corp/opik", "https://opik.corp/opik/api"),
    ],
)
def test_suggest_api_url(url: str, expected: object) -> None:
    assert suggest_api_url(url) == expected


def test_settings_markdown_doc_is_current() -> None:
    doc = (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    assert settings_markdown() in doc, "docs/settings.md is stale: regenerate with `opik-otel settings --markdown`"


def test_installed_entry_point_help_for_every_command() -> None:
    exe = Path(sys.executable).with_name("opik-otel")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "opentelemetry.exporter.opik._cli"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPIK_")}
    for sub in ([], ["check"], ["settings"], ["import"], ["serve"]):
        r = subprocess.run(cmd + sub + ["--help"], capture_output=True, text=True, env=env, timeout=60)
        assert r.returncode == 0, r.stderr
        assert "usage: opik-otel" in r.stdout
    r = subprocess.run(cmd + ["--version"], capture_output=True, text=True, env=env, timeout=60)
    from opentelemetry.exporter.opik import __version__

    assert r.stdout.strip() == f"opik-otel {__version__}"


def test_check_does_not_load_the_sidecar_stack(opik: OpikStandin) -> None:
    code = (
        "import sys; from opentelemetry.exporter.opik._cli import main; "
        f"rc = main(['check', '--url', {opik.url!r}]); "
        "print(rc, sorted(m for m in ('uvicorn', 'grpc', 'opentelemetry.exporter.opik.sidecar') if m in sys.modules))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       env={k: v for k, v in os.environ.items() if not k.startswith("OPIK_")})
    assert r.stdout.strip().splitlines()[-1] == "0 []", r.stdout + r.stderr
