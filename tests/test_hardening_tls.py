"""TLS: verified by default, a private CA via OTEL_EXPORTER_OPIK_CERTIFICATE, opt-out with a warning.

A throwaway CA and a server certificate for 127.0.0.1 are made with the
``openssl`` CLI; the Opik stand-in serves real HTTPS on loopback with them.
"""

from __future__ import annotations

import logging
import shutil
import ssl
import subprocess
from pathlib import Path
from typing import Any, Dict, Iterator

import pytest

from opentelemetry.exporter.opik import ConfigError, resolve_settings

try:
    from tests.conftest_privacy import make_exporter, provider_for
    from tests.opik_standin import OpikStandin
except ImportError:
    from conftest_privacy import make_exporter, provider_for  # type: ignore[no-redef]
    from opik_standin import OpikStandin  # type: ignore[no-redef]

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Path]:
    d = tmp_path_factory.mktemp("pki")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=Opik exporter test CA",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             "-addext", "subjectKeyIdentifier=hash", cwd=d)
    _openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost", cwd=d)
    (d / "ext.cnf").write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        "authorityKeyIdentifier=keyid\nsubjectKeyIdentifier=hash\n"
    )
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf", cwd=d)
    (d / "not-a-cert.pem").write_text("hello\n")
    return {"ca": d / "ca.pem", "cert": d / "server.pem", "key": d / "server.key", "bad": d / "not-a-cert.pem"}


@pytest.fixture
def tls_opik(pki: Dict[str, Path]) -> Iterator[OpikStandin]:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(pki["cert"]), str(pki["key"]))
    with OpikStandin() as standin:
        server = standin._server  # the stand-in's listening socket, wrapped: every connection is TLS
        assert server is not None
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
        yield standin


def _https(opik: OpikStandin) -> str:
    return opik.url.replace("http://", "https://")


def _send_one(exporter: Any) -> bool:
    tp = provider_for(exporter)
    with tp.get_tracer("t").start_as_current_span("over tls"):
        pass
    ok = exporter.force_flush(5_000)
    tp.shutdown()
    return ok


def test_a_private_ca_is_trusted(tls_opik: OpikStandin, pki: Dict[str, Path]) -> None:
    exporter = make_exporter(None, url=_https(tls_opik), certificate=str(pki["ca"]))
    assert _send_one(exporter)
    tls_opik.wait_for_counts(traces=1, spans=1)
    assert exporter.stats()["dropped"] == {}


def test_verification_is_on_by_default(tls_opik: OpikStandin, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="opentelemetry.exporter.opik")
    exporter = make_exporter(None, url=_https(tls_opik))
    _send_one(exporter)
    assert len(tls_opik.traces) == 0 and len(tls_opik.spans) == 0
    assert sum(exporter.stats()["dropped"].values()) >= 2  # the trace row and the span, counted
    assert "CERTIFICATE_VERIFY_FAILED" in caplog.text or "certificate" in caplog.text.lower()


def test_verification_off_is_honoured_with_a_warning(tls_opik: OpikStandin, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="opentelemetry.exporter.opik")
    settings = resolve_settings({"url": _https(tls_opik), "timeout": 2.0, "retry_deadline": 1.0},
                                env={"OPIK_CHECK_TLS_CERTIFICATE": "false"})
    assert settings.check_tls_certificate is False
    from opentelemetry.exporter.opik import OpikSpanExporter

    exporter = OpikSpanExporter(settings=settings)
    assert _send_one(exporter)
    tls_opik.wait_for_counts(traces=1, spans=1)
    assert "TLS certificate verification is off" in caplog.text


def test_certificate_from_the_environment(tls_opik: OpikStandin, pki: Dict[str, Path]) -> None:
    settings = resolve_settings({"url": _https(tls_opik), "timeout": 2.0, "retry_deadline": 1.0},
                                env={"OTEL_EXPORTER_OPIK_CERTIFICATE": str(pki["ca"])})
    from opentelemetry.exporter.opik import OpikSpanExporter

    exporter = OpikSpanExporter(settings=settings)
    assert settings.sources["certificate"] == "env OTEL_EXPORTER_OPIK_CERTIFICATE"
    assert _send_one(exporter)
    tls_opik.wait_for_counts(traces=1, spans=1)


@pytest.mark.parametrize("which", ["bad", "missing"])
def test_an_unusable_certificate_file_is_a_clear_config_error(pki: Dict[str, Path], which: str) -> None:
    path = str(pki["bad"]) if which == "bad" else str(pki["bad"].parent / "nope.pem")
    with pytest.raises(ConfigError, match="OTEL_EXPORTER_OPIK_CERTIFICATE"):
        make_exporter(None, url="https://127.0.0.1:9/api", certificate=path)


def test_tls_context_is_built_once_and_never_for_plain_http() -> None:
    import ssl

    from opentelemetry.exporter.opik._transport import _client_verify

    # plain HTTP never does TLS (the client follows no redirects): no CA bundle to load
    assert _client_verify("http://localhost:5173/api", True) is False
    shared = _client_verify("https://www.comet.com/opik/api", True)
    assert isinstance(shared, ssl.SSLContext)
    assert shared.verify_mode == ssl.CERT_REQUIRED and shared.check_hostname
    assert _client_verify("https://other.example/api", True) is shared  # one per process
    private = ssl.create_default_context()
    assert _client_verify("https://opik.internal/api", private) is private  # a private CA is kept
    assert _client_verify("https://opik.internal/api", False) is False  # verification off stays off
