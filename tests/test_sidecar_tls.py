"""``opik-otel serve`` as a network gateway: TLS and mTLS on both receivers, token files, reloading without a restart.

Certificates are made here with ``cryptography``: a CA, two server certificates
for 127.0.0.1/localhost with different serial numbers, a client certificate of
that CA and one of another CA. The senders are the official OTLP exporters; the
spans must reach the Opik stand-in.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import signal
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import grpc
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.trace.export import SpanExportResult
from opik_standin import OpikStandin
from sidecar_helpers import SidecarProcess, clean_env, make_spans, opik_otel_command, protobuf_body, wait_until

# ``requests`` lets these override an exporter's certificate_file; a user's shell normally has neither
for _var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
    os.environ.pop(_var, None)

SERIAL_A, SERIAL_B = 0x1A1A1A, 0x2B2B2B
NOW = datetime.datetime.now(datetime.timezone.utc)


# -- certificates ------------------------------------------------------------------------
def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: Optional[x509.Certificate],
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    serial: Optional[int] = None,
    ca: bool = False,
    server: bool = False,
    client: bool = False,
    not_before: Optional[datetime.datetime] = None,
    not_after: Optional[datetime.datetime] = None,
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    b = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject if issuer is not None else name)
        .public_key(key.public_key())
        .serial_number(serial or x509.random_serial_number())
        .not_valid_before(not_before or NOW - datetime.timedelta(days=1))
        .not_valid_after(not_after or NOW + datetime.timedelta(days=90))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        b = b.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    if server:
        b = b.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    if client:
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


class Pki:
    def __init__(self, d: Path) -> None:
        self.dir = d
        ca_key, other_key = _key(), _key()
        ca = _cert("opik-otel test CA", ca_key, None, ca_key, ca=True)
        other = _cert("another CA", other_key, None, other_key, ca=True)
        self.ca = self._write("ca.pem", _pem(ca))
        self.other_ca = self._write("other-ca.pem", _pem(other))
        for tag, serial in (("a", SERIAL_A), ("b", SERIAL_B)):
            k = _key()
            self._write(f"server-{tag}.key", _pem_key(k))
            self._write(f"server-{tag}.pem", _pem(_cert("127.0.0.1", k, ca, ca_key, serial=serial, server=True)))
        k = _key()
        self._write("expired.key", _pem_key(k))
        self._write(
            "expired.pem",
            _pem(_cert("127.0.0.1", k, ca, ca_key, server=True, not_before=NOW - datetime.timedelta(days=30),
                       not_after=NOW - datetime.timedelta(days=1))),
        )
        self._write("soon.key", _pem_key(k))
        self._write("soon.pem", _pem(_cert("127.0.0.1", k, ca, ca_key, server=True, not_after=NOW + datetime.timedelta(days=3))))
        for tag, (issuer, issuer_key) in (("client", (ca, ca_key)), ("foreign", (other, other_key))):
            k = _key()
            self._write(f"{tag}.key", _pem_key(k))
            self._write(f"{tag}.pem", _pem(_cert(f"{tag} workload", k, issuer, issuer_key, client=True)))

    def _write(self, name: str, data: bytes) -> Path:
        path = self.dir / name
        path.write_bytes(data)
        return path

    def path(self, name: str) -> str:
        return str(self.dir / name)

    def read(self, name: str) -> bytes:
        return (self.dir / name).read_bytes()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def opik_mod() -> Iterator[OpikStandin]:
    with OpikStandin() as standin:
        yield standin


@pytest.fixture
def opik(opik_mod: OpikStandin) -> OpikStandin:
    opik_mod.clear()
    return opik_mod


def _serving(opik: OpikStandin, *args: str, env: Optional[Dict[str, str]] = None) -> SidecarProcess:
    return SidecarProcess(opik.url, *args, env=env)


def _one_span(tag: str) -> List[Any]:
    def build(tracer: Any) -> None:
        with tracer.start_as_current_span(f"tls {tag}"):
            pass

    return make_spans(build)


def _verify(pki: Pki, client: Optional[str] = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=pki.path("ca.pem"))
    if client:
        ctx.load_cert_chain(pki.path(f"{client}.pem"), pki.path(f"{client}.key"))
    return ctx


def _grpc_creds(pki: Pki, client: Optional[str] = None) -> grpc.ChannelCredentials:
    if client is None:
        return grpc.ssl_channel_credentials(root_certificates=pki.read("ca.pem"))
    return grpc.ssl_channel_credentials(pki.read("ca.pem"), pki.read(f"{client}.key"), pki.read(f"{client}.pem"))


def _exporters(sc: SidecarProcess, pki: Pki, client: Optional[str] = None, timeout: float = 10) -> List[Any]:
    http_kw: Dict[str, Any] = {"certificate_file": pki.path("ca.pem")}
    if client:
        http_kw.update(client_certificate_file=pki.path(f"{client}.pem"), client_key_file=pki.path(f"{client}.key"))
    return [
        HttpExporter(endpoint=f"https://127.0.0.1:{sc.port}/v1/traces", timeout=timeout, **http_kw),
        GrpcExporter(endpoint=f"localhost:{sc.grpc_port}", insecure=False, credentials=_grpc_creds(pki, client), timeout=timeout),
    ]


def _peer_serial(port: int, pki: Pki, alpn: Optional[str] = None) -> int:
    """The serial number a new connection is shown."""
    ctx = _verify(pki)
    if alpn:
        ctx.set_alpn_protocols([alpn])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def _metric(sc: SidecarProcess, pki: Pki, sample: str) -> float:
    scheme = "https" if "https" in sc.start_line else "http"
    text = httpx.get(f"{scheme}://127.0.0.1:{sc.port}/metrics", verify=_verify(pki), timeout=10).text
    for line in text.splitlines():
        if line.startswith(sample + " "):
            return float(line.split()[1])
    raise KeyError(sample)


# -- TLS ---------------------------------------------------------------------------------
def test_tls_both_receivers_official_exporters(opik: OpikStandin, pki: Pki) -> None:
    with _serving(opik, "--tls-cert", pki.path("server-a.pem"), "--tls-key", pki.path("server-a.key")) as sc:
        assert "https://" in sc.start_line and "TLS" in sc.start_line
        http_exp, grpc_exp = _exporters(sc, pki)
        assert http_exp.export(_one_span("http")) == SpanExportResult.SUCCESS
        assert grpc_exp.export(_one_span("grpc")) == SpanExportResult.SUCCESS
        opik.wait_for_counts(traces=2, spans=2)
        assert sorted(r["name"] for r in opik.spans.values()) == ["tls grpc", "tls http"]
        # health and metrics on the same listener, over TLS; 1.2 is the minimum
        for path in ("/healthz", "/readyz", "/metrics"):
            assert httpx.get(f"https://127.0.0.1:{sc.port}{path}", verify=_verify(pki), timeout=10).status_code == 200, path
        old = _verify(pki)
        old.minimum_version = old.maximum_version = ssl.TLSVersion.TLSv1_1
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"https://127.0.0.1:{sc.port}/healthz", verify=old, timeout=5)
        # plain HTTP to the TLS port: no 200, nothing stored
        before = len(opik.spans)
        try:
            status: Optional[int] = httpx.post(
                f"http://127.0.0.1:{sc.port}/v1/traces",
                content=protobuf_body(_one_span("plain")),
                headers={"content-type": "application/x-protobuf"},
                timeout=5,
            ).status_code
        except httpx.HTTPError:
            status = None
        assert status != 200
        time.sleep(0.5)
        assert len(opik.spans) == before
        for exp in (http_exp, grpc_exp):
            exp.shutdown()
        sc.stop()
        assert "PRIVATE KEY" not in sc.stderr()


def test_mtls_both_protocols(opik: OpikStandin, pki: Pki) -> None:
    args = ("--tls-cert", pki.path("server-a.pem"), "--tls-key", pki.path("server-a.key"), "--tls-client-ca", pki.path("ca.pem"))
    with _serving(opik, *args) as sc:
        assert "mTLS" in sc.start_line
        exporters = _exporters(sc, pki, "client")
        for i, exp in enumerate(exporters):
            assert exp.export(_one_span(f"mtls {i}")) == SpanExportResult.SUCCESS
        opik.wait_for_counts(spans=2)
        stored = len(opik.spans)
        # no client certificate, and one from another CA: refused on both protocols, before any body
        for client in (None, "foreign"):
            for exp in _exporters(sc, pki, client, timeout=2):
                assert exp.export(_one_span(f"refused {client}")) == SpanExportResult.FAILURE, (client, exp)
                exp.shutdown()
            with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
                r = httpx.post(
                    f"https://127.0.0.1:{sc.port}/v1/traces",
                    content=protobuf_body(_one_span("raw")),
                    headers={"content-type": "application/x-protobuf"},
                    verify=_verify(pki, client),
                    timeout=5,
                )
                raise AssertionError(f"answered {r.status_code} without a valid client certificate")
        # the health endpoints need a client certificate too (same listener)
        assert httpx.get(f"https://127.0.0.1:{sc.port}/healthz", verify=_verify(pki, "client"), timeout=5).status_code == 200
        time.sleep(0.5)
        assert len(opik.spans) == stored
        for exp in exporters:
            exp.shutdown()


# -- token file --------------------------------------------------------------------------
def _post(sc: SidecarProcess, token: Optional[str], empty: bool = False) -> int:
    """One span (or, with ``empty``, a request with no spans: it stores nothing even when accepted)."""
    headers = {"content-type": "application/x-protobuf"}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    body = b"" if empty else protobuf_body(_one_span("tok"))
    return httpx.post(sc.traces_url, content=body, headers=headers, timeout=10).status_code


def _grpc_ok(sc: SidecarProcess, token: str) -> bool:
    exp = GrpcExporter(endpoint=f"127.0.0.1:{sc.grpc_port}", insecure=True, headers={"authorization": f"Bearer {token}"}, timeout=3)
    try:
        return exp.export(_one_span("tok grpc")) == SpanExportResult.SUCCESS
    finally:
        exp.shutdown()


def test_token_file_two_tokens_sighup_rotation(opik: OpikStandin, pki: Pki, tmp_path: Path) -> None:
    t1, t2, t3 = "tok-first-6f1c2a9b", "tok-second-93de7710", "tok-third-0b8e55aa"
    tokens = tmp_path / "tokens"
    tokens.write_text(f"# the gateway's tokens\n{t1}\n\n  {t2}  \n")
    with _serving(opik, "--auth-token-file", str(tokens)) as sc:
        assert "bearer token required" in sc.start_line
        assert _post(sc, t1) == 200 and _post(sc, t2) == 200
        assert _post(sc, t3) == 401 and _post(sc, None) == 401
        assert _grpc_ok(sc, t2) and not _grpc_ok(sc, t3)
        pid = sc.pid
        tokens.write_text(f"{t2}\n{t3}\n")
        sc.proc.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
        wait_until(lambda: _post(sc, t1, empty=True) == 401, 5, "the removed token refused")
        assert _post(sc, t3) == 200 and _post(sc, t2) == 200
        assert _grpc_ok(sc, t3) and not _grpc_ok(sc, t1)
        assert sc.pid == pid and sc.alive()
        assert _metric(sc, pki, 'opik_otel_reloads_total{result="ok"}') >= 1
        # a reload that fails (no token left) keeps the tokens and is counted and logged
        tokens.write_text("# nothing\n")
        sc.proc.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
        wait_until(lambda: _metric(sc, pki, 'opik_otel_reloads_total{result="failed"}') >= 1, 5, "a failed reload")
        assert _post(sc, t3) == 200 and _post(sc, t1) == 401
        assert "lists no token" in sc.stderr()
        opik.wait_for_counts(spans=7)  # the seven 200s above, nothing from a refused request
        sc.stop()
        log = sc.stderr() + sc.start_line
        for t in (t1, t2, t3):
            assert t not in log


# -- rotation ----------------------------------------------------------------------------
def _replace(src: Path, dst: Path) -> None:
    tmp = dst.with_suffix(".new")
    tmp.write_bytes(src.read_bytes())
    os.replace(tmp, dst)


@pytest.mark.parametrize("signal_it", [True, False], ids=["sighup", "file-change"])
def test_rotation_while_requests_stream(opik: OpikStandin, pki: Pki, tmp_path: Path, signal_it: bool) -> None:
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    _replace(Path(pki.path("server-a.pem")), cert)
    _replace(Path(pki.path("server-a.key")), key)
    with _serving(opik, "--tls-cert", str(cert), "--tls-key", str(key)) as sc:
        assert _peer_serial(sc.port, pki) == SERIAL_A
        assert _peer_serial(sc.grpc_port or 0, pki, alpn="h2") == SERIAL_A
        statuses: List[int] = []
        verify = _verify(pki)

        def stream() -> None:
            for i in range(20):
                with httpx.Client(verify=verify, timeout=10) as client:  # a new connection each time
                    r = client.post(
                        f"https://127.0.0.1:{sc.port}/v1/traces",
                        content=protobuf_body(_one_span(f"stream {i}")),
                        headers={"content-type": "application/x-protobuf"},
                    )
                statuses.append(r.status_code)
                time.sleep(0.2)

        sender = threading.Thread(target=stream)
        sender.start()
        time.sleep(0.5)
        _replace(Path(pki.path("server-b.pem")), cert)
        _replace(Path(pki.path("server-b.key")), key)
        t0 = time.monotonic()
        if signal_it:
            sc.proc.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
        wait_until(lambda: _peer_serial(sc.port, pki) == SERIAL_B, 10, "the new certificate on OTLP/HTTP")
        rotated_while_streaming = sender.is_alive() and len(statuses) < 20
        wait_until(lambda: _peer_serial(sc.grpc_port or 0, pki, alpn="h2") == SERIAL_B, 10, "the new certificate on OTLP/gRPC")
        took = time.monotonic() - t0
        sender.join(30)
        assert took < 10
        assert rotated_while_streaming, statuses
        assert statuses == [200] * 20
        grpc_exp = _exporters(sc, pki)[1]
        assert grpc_exp.export(_one_span("after rotation")) == SpanExportResult.SUCCESS
        grpc_exp.shutdown()
        opik.wait_for_counts(spans=21)
        assert sc.alive()
        assert _metric(sc, pki, 'opik_otel_reloads_total{result="ok"}') >= 1


def test_failed_tls_reload_keeps_the_old_material(opik: OpikStandin, pki: Pki, tmp_path: Path) -> None:
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    _replace(Path(pki.path("server-a.pem")), cert)
    _replace(Path(pki.path("server-a.key")), key)
    with _serving(opik, "--tls-cert", str(cert), "--tls-key", str(key), "--host", "127.0.0.1") as sc:
        _replace(Path(pki.path("server-b.key")), key)  # a key that does not match the certificate
        sc.proc.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
        wait_until(lambda: _metric(sc, pki, 'opik_otel_reloads_total{result="failed"}') >= 1, 10, "a failed reload")
        assert _peer_serial(sc.port, pki) == SERIAL_A and _peer_serial(sc.grpc_port or 0, pki, alpn="h2") == SERIAL_A
        assert _exporters(sc, pki)[0].export(_one_span("after a failed reload")) == SpanExportResult.SUCCESS
        key.write_text("not a key at all\n")  # unreadable as PEM: the file change alone, failing again
        wait_until(lambda: _metric(sc, pki, 'opik_otel_reloads_total{result="failed"}') >= 2, 10, "a second failed reload")
        assert _peer_serial(sc.port, pki) == SERIAL_A
        _replace(Path(pki.path("server-a.key")), key)  # fixed: the next reload succeeds
        wait_until(lambda: _metric(sc, pki, 'opik_otel_reloads_total{result="ok"}') >= 1, 10, "a good reload")
        opik.wait_for_counts(spans=1)
        assert sc.alive()
        sc.stop()
        log = sc.stderr()
        assert "does not match" in log and "OPIK_OTEL_TLS_KEY_FILE" in log and "keeping the current" in log
        assert "BEGIN" not in log and "not a key at all" not in log


def test_tls_listener_answers_as_the_plain_one(opik: OpikStandin, pki: Pki, tmp_path: Path) -> None:
    """Over TLS with a token file, the receivers answer exactly as in plain text: limits, bad input, auth, stop."""
    tokens = tmp_path / "tokens"
    tokens.write_text("tok-the-only-one-4c1d\n")
    args = ("--tls-cert", pki.path("server-a.pem"), "--tls-key", pki.path("server-a.key"), "--auth-token-file", str(tokens),
            "--max-body-bytes", "4096")
    with _serving(opik, *args) as sc:
        url = f"https://127.0.0.1:{sc.port}/v1/traces"
        auth = {"authorization": "Bearer tok-the-only-one-4c1d"}
        with httpx.Client(verify=_verify(pki), timeout=10) as client:
            pb = {"content-type": "application/x-protobuf", **auth}
            assert client.post(url, content=protobuf_body(_one_span("ok")), headers=pb).status_code == 200
            assert client.post(url, content=b"\xff\xff\xff\xff junk", headers=pb).status_code == 400
            assert client.post(url, content=b"x" * 10_000, headers=pb).status_code == 413
            assert client.post(url, content=b"{}", headers={"content-type": "text/plain", **auth}).status_code == 415
            assert client.get(url, headers=auth).status_code == 405
            assert client.post(url, content=b"", headers={"content-type": "application/x-protobuf"}).status_code == 401
            assert client.get(f"https://127.0.0.1:{sc.port}/v1/profiles").status_code == 404
            metrics = client.get(f"https://127.0.0.1:{sc.port}/metrics").text
        assert 'opik_otel_receiver_requests_total{protocol="http",status="413"}' in metrics
        channel = grpc.secure_channel(f"localhost:{sc.grpc_port}", _grpc_creds(pki))
        export = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")
        with pytest.raises(grpc.RpcError) as err:
            export(b"\xff\xff\xff\xff junk", metadata=(("authorization", "Bearer tok-the-only-one-4c1d"),), timeout=10)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.RpcError) as err:
            export(protobuf_body(_one_span("no token")), timeout=10)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        channel.close()
        opik.wait_for_counts(spans=1)
        assert sc.stop() == 0  # a graceful stop with TLS listeners


# -- misconfiguration --------------------------------------------------------------------
def _exit(pki: Pki, *args: str, env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    cmd = opik_otel_command() + ["serve", "--port", "0", "--grpc-port", "0", "--dry-run", *args]
    t0 = time.monotonic()
    done = subprocess.run(cmd, env=env or clean_env(), capture_output=True, text=True, timeout=15)
    assert time.monotonic() - t0 < 15
    return done


@pytest.mark.parametrize(
    "args,setting",
    [
        (("--tls-cert", "server-a.pem"), "OPIK_OTEL_TLS_KEY_FILE"),
        (("--tls-key", "server-a.key"), "OPIK_OTEL_TLS_CERT_FILE"),
        (("--tls-cert", "server-a.pem", "--tls-key", "server-b.key"), "OPIK_OTEL_TLS_KEY_FILE"),
        (("--tls-cert", "missing.pem", "--tls-key", "server-a.key"), "OPIK_OTEL_TLS_CERT_FILE"),
        (("--tls-cert", "server-a.pem", "--tls-key", "server-a.key", "--tls-client-ca", "missing.pem"), "OPIK_OTEL_TLS_CLIENT_CA_FILE"),
        (("--tls-cert", "expired.pem", "--tls-key", "expired.key"), "OPIK_OTEL_TLS_CERT_FILE"),
        (("--auth-token-file", "missing.txt"), "OPIK_OTEL_AUTH_TOKEN_FILE"),
        (("--auth-token-file", "server-a.pem", "--auth-token", "tok-on-the-line-77aa"), "OPIK_OTEL_AUTH_TOKEN_FILE"),
    ],
    ids=["cert-no-key", "key-no-cert", "key-mismatch", "cert-unreadable", "ca-unreadable", "expired", "token-file-unreadable",
         "token-and-file"],
)
def test_misconfiguration_fails_at_start(pki: Pki, args: tuple, setting: str) -> None:
    argv = [a if a.startswith("--") or a.startswith("tok-") else pki.path(a) for a in args]
    done = _exit(pki, *argv)
    assert done.returncode != 0, done.stderr
    assert setting in done.stderr, done.stderr
    out = done.stdout + done.stderr
    assert "BEGIN" not in out and "PRIVATE" not in out and "tok-on-the-line" not in out


def test_misconfiguration_from_environment_and_expiry_warning(opik: OpikStandin, pki: Pki, tmp_path: Path) -> None:
    empty = tmp_path / "tokens"
    empty.write_text("# none yet\n\n")
    done = _exit(pki, env=clean_env(OPIK_OTEL_AUTH_TOKEN_FILE=str(empty)))
    assert done.returncode != 0 and "OPIK_OTEL_AUTH_TOKEN_FILE" in done.stderr and "lists no token" in done.stderr
    done = _exit(pki, env=clean_env(OPIK_OTEL_TLS_KEY_FILE=pki.path("server-a.key")))
    assert done.returncode != 0 and "OPIK_OTEL_TLS_CERT_FILE" in done.stderr
    env = clean_env(OPIK_OTEL_TLS_CERT_FILE=pki.path("soon.pem"), OPIK_OTEL_TLS_KEY_FILE=pki.path("soon.key"))
    with _serving(opik, env=env) as sc:
        assert _peer_serial(sc.port, pki) > 0
        wait_until(lambda: "expires in" in sc.stderr(), 5, "the expiry warning")
        assert "OPIK_OTEL_TLS_CERT_FILE" in sc.stderr()


def test_check_reports_the_sidecar_files(opik: OpikStandin, pki: Pki) -> None:
    env = clean_env(OPIK_URL_OVERRIDE=opik.url, OPIK_OTEL_TLS_CERT_FILE=pki.path("server-a.pem"),
                    OPIK_OTEL_TLS_KEY_FILE=pki.path("server-b.key"))
    done = subprocess.run(opik_otel_command() + ["check"], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "[FAIL] sidecar TLS" in done.stdout and "does not match" in done.stdout and "OPIK_OTEL_TLS_KEY_FILE" in done.stdout
    assert "BEGIN" not in done.stdout + done.stderr
    env["OPIK_OTEL_TLS_KEY_FILE"] = pki.path("server-a.key")
    done = subprocess.run(opik_otel_command() + ["check"], env=env, capture_output=True, text=True, timeout=30)
    assert "[ok]" in done.stdout and "sidecar TLS: TLS certificate and key load" in done.stdout, done.stdout


def test_cert_manager_example_runs_and_follows_a_renewal(opik: OpikStandin, pki: Pki, tmp_path: Path) -> None:
    """examples/collector/kubernetes-gateway-tls.yaml: its settings, mounts and HTTPS probes against a real sidecar;
    a renewal done the way the kubelet updates a Secret volume (the ``..data`` symlink swapped) is picked up."""
    yaml = pytest.importorskip("yaml")
    manifest = Path(__file__).resolve().parent.parent / "examples" / "collector" / "kubernetes-gateway-tls.yaml"
    docs = [d for d in yaml.safe_load_all(manifest.read_text()) if d]
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert all("subPath" not in m for m in mounts.values())  # subPath mounts never see a renewal
    cert = next(d for d in docs if d["kind"] == "Certificate")
    volumes = {v["name"]: v["secret"]["secretName"] for v in deployment["spec"]["template"]["spec"]["volumes"]}
    env = {v["name"]: v["value"] for v in container["env"] if "value" in v and v["name"].startswith("OPIK_OTEL_")}
    tls_mount = next(p for p, m in mounts.items() if volumes[m["name"]] == cert["spec"]["secretName"])
    assert env["OPIK_OTEL_TLS_CERT_FILE"] == f"{tls_mount}/tls.crt" and env["OPIK_OTEL_TLS_KEY_FILE"] == f"{tls_mount}/tls.key"
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["scheme"] == "HTTPS"
    tokens_secret = next(d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"] == "opik-otel-tokens")
    # the mounted volumes, laid out as the kubelet does: <dir>/..data -> <dir>/..<version>/, files link through ..data
    local: Dict[str, str] = {}

    def kubelet_volume(mount: str, files: Dict[str, bytes], version: str) -> Path:
        d = tmp_path / mount.strip("/").replace("/", "_")
        (d / f"..{version}").mkdir(parents=True)
        for name, data in files.items():
            (d / f"..{version}" / name).write_bytes(data)
        tmp_link = d / "..data_tmp"
        tmp_link.symlink_to(f"..{version}")
        os.replace(tmp_link, d / "..data")
        for name in files:
            if not (d / name).is_symlink():
                (d / name).symlink_to(f"..data/{name}")
        return d

    tls_dir = kubelet_volume(tls_mount, {"tls.crt": pki.read("server-a.pem"), "tls.key": pki.read("server-a.key"),
                                         "ca.crt": pki.read("ca.pem")}, "v1")
    tok_mount = next(p for p, m in mounts.items() if volumes[m["name"]] == "opik-otel-tokens")
    tok_dir = kubelet_volume(tok_mount, {k: v.encode() for k, v in tokens_secret["stringData"].items()}, "v1")
    for var, value in env.items():
        for mount, d in ((tls_mount, tls_dir), (tok_mount, tok_dir)):
            if value.startswith(mount + "/"):
                local[var] = str(d / value[len(mount) + 1:])
    assert set(local) == {"OPIK_OTEL_TLS_CERT_FILE", "OPIK_OTEL_TLS_KEY_FILE", "OPIK_OTEL_AUTH_TOKEN_FILE"}
    with _serving(opik, env=clean_env(**local)) as sc:
        assert "bearer token required" in sc.start_line and "TLS" in sc.start_line
        for probe in ("livenessProbe", "readinessProbe"):
            path = container[probe]["httpGet"]["path"]
            assert httpx.get(f"https://127.0.0.1:{sc.port}{path}", verify=False, timeout=10).status_code == 200  # noqa: S501 - the kubelet's way
        token = next(t for t in tokens_secret["stringData"]["tokens"].splitlines() if t.strip() and not t.startswith("#"))
        r = httpx.post(f"https://127.0.0.1:{sc.port}/v1/traces", content=protobuf_body(_one_span("k8s")), verify=_verify(pki),
                       headers={"content-type": "application/x-protobuf", "authorization": f"Bearer {token.strip()}"}, timeout=10)
        assert r.status_code == 200
        assert _peer_serial(sc.port, pki) == SERIAL_A
        kubelet_volume(tls_mount, {"tls.crt": pki.read("server-b.pem"), "tls.key": pki.read("server-b.key"),
                                   "ca.crt": pki.read("ca.pem")}, "v2")
        wait_until(lambda: _peer_serial(sc.port, pki) == SERIAL_B, 10, "the renewed certificate")
        opik.wait_for_counts(spans=1)
