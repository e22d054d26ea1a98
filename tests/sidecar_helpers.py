"""Helpers for the sidecar tests: a running ``opik-otel serve`` subprocess, real SDK spans, spec OTLP/JSON."""

from __future__ import annotations

import base64
import dataclasses
import datetime
import http.client
import ipaddress
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

_START = re.compile(r"OTLP/HTTP on https?://(?P<host>[^ ]+):(?P<port>\d+)/v1/traces(?:, OTLP/gRPC on [^ ]+:(?P<grpc>\d+))?")


def opik_otel_command() -> List[str]:
    """The installed ``opik-otel`` script next to this interpreter, else the module."""
    script = Path(sys.executable).with_name("opik-otel")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "opentelemetry.exporter.opik._cli"]  # pragma: no cover


def clean_env(**extra: str) -> Dict[str, str]:
    """The test process's environment without any developer OPIK/OTEL settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPIK_", "OTEL_"))}
    env["OPIK_CONFIG_PATH"] = os.devnull  # "no config file" (a missing one is an error)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


@dataclasses.dataclass(frozen=True)
class SidecarTls:
    """A test CA and a server certificate it signed for 127.0.0.1 and localhost (made with ``cryptography``).

    For the TLS pass of the sidecar suite (``sidecar_transport`` in ``tests/conftest.py``): the sidecar
    serves with ``cert``/``key``, and the clients trust ``ca``.
    """

    ca: str
    cert: str
    key: str

    @classmethod
    def make(cls, directory: Path) -> "SidecarTls":
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        now = datetime.datetime.now(datetime.timezone.utc)

        def build(subject: str, key: Any, issuer: Any, issuer_key: Any, ca: bool) -> Any:
            name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
            b = (
                x509.CertificateBuilder().subject_name(name)
                .issuer_name(issuer.subject if issuer is not None else name)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
                .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            )
            if ca:
                b = b.add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), True)
            else:
                b = b.add_extension(x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False,
                ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            return b.sign(issuer_key, hashes.SHA256())

        ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
        ca = build("opik-otel sidecar suite CA", ca_key, None, ca_key, ca=True)
        server = build("127.0.0.1", key, ca, ca_key, ca=False)
        directory.mkdir(parents=True, exist_ok=True)
        paths = {name: directory / f"sidecar-suite-{name}.pem" for name in ("ca", "cert", "key")}
        paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        paths["cert"].write_bytes(server.public_bytes(serialization.Encoding.PEM))
        paths["key"].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption()))
        return cls(ca=str(paths["ca"]), cert=str(paths["cert"]), key=str(paths["key"]))

    def server_args(self) -> List[str]:
        return ["--tls-cert", self.cert, "--tls-key", self.key]

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca)

    def grpc_credentials(self) -> Any:
        import grpc

        return grpc.ssl_channel_credentials(root_certificates=Path(self.ca).read_bytes())

    def client_env(self) -> Dict[str, str]:
        """What makes a client trust the CA without code: httpx and ssl (``SSL_CERT_FILE``), the official
        OTLP exporters (``OTEL_EXPORTER_OTLP_CERTIFICATE``, as docs/cli.md tells users), Node (``NODE_EXTRA_CA_CERTS``)."""
        return {"SSL_CERT_FILE": self.ca, "OTEL_EXPORTER_OTLP_CERTIFICATE": self.ca, "NODE_EXTRA_CA_CERTS": self.ca}


#: the TLS every new :class:`SidecarProcess` serves with unless told otherwise; set only by the
#: ``sidecar_transport`` fixture for the TLS pass of the sidecar suite (None: plain, as before)
DEFAULT_TLS: Optional[SidecarTls] = None


class TransportClient:
    """One keep-alive ``httpx.Client`` per sidecar transport, made on first use: plain, or trusting the TLS
    pass's CA (:data:`DEFAULT_TLS`). For a module-level client, which exists before the TLS pass starts."""

    def __init__(self, **kwargs: Any) -> None:
        self._kwargs = kwargs
        self._clients: Dict[Optional[SidecarTls], Any] = {}

    def _client(self) -> Any:
        import httpx

        tls = DEFAULT_TLS
        if tls not in self._clients:
            verify: Union[ssl.SSLContext, bool] = tls.client_context() if tls is not None else True
            self._clients[tls] = httpx.Client(verify=verify, **self._kwargs)
        return self._clients[tls]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client(), name)


class _Default:
    pass


_DEFAULT = _Default()


class SidecarProcess:
    """``opik-otel serve`` in a subprocess on free ports; read its one start line for the ports.

    ``tls``: serve with this certificate (``--tls-cert``/``--tls-key`` added); by default
    :data:`DEFAULT_TLS` (None outside the TLS pass), and never when ``args`` set ``--tls-cert`` themselves.
    The client helpers (``url``, ``metric``, ``grpc_channel``, ``connect``, ``http_connection``,
    ``otlp_*_exporter``, ``http_client``) speak TLS to a TLS sidecar and plain text to a plain one.
    """

    def __init__(self, opik_url: str, *args: str, env: Optional[Dict[str, str]] = None, grpc: bool = True,
                 tls: Union[SidecarTls, None, _Default] = _DEFAULT) -> None:
        cmd = opik_otel_command() + ["serve", "--port", "0", "--url", opik_url]
        cmd += ["--grpc-port", "0"] if grpc else ["--no-grpc"]
        cmd += list(args)
        chosen = DEFAULT_TLS if isinstance(tls, _Default) else tls
        #: the TLS this helper added (None: plain, or TLS that ``args`` set up themselves)
        self.tls: Optional[SidecarTls] = None if "--tls-cert" in args else chosen
        if self.tls is not None:
            cmd += self.tls.server_args()
        self.cmd = cmd
        self.env = env if env is not None else clean_env()
        self.proc: Optional[subprocess.Popen] = None
        self.start_line = ""
        self.port = 0
        self.grpc_port: Optional[int] = None
        self._stderr: List[str] = []

    def start(self, timeout: float = 20.0) -> "SidecarProcess":
        # a second start would leave the first process running after the test (``with`` already starts it)
        assert self.proc is None, "this SidecarProcess was started already"
        self.proc = subprocess.Popen(
            self.cmd, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1
        )
        threading.Thread(target=self._pump_stderr, daemon=True).start()
        line: List[str] = []
        reader = threading.Thread(target=lambda: line.append(self.proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        reader.join(timeout)
        if not line or not line[0]:
            self.kill()
            raise AssertionError(f"the sidecar did not start: {self.stderr()}")
        self.start_line = line[0].strip()
        m = _START.search(self.start_line)
        assert m, self.start_line
        self.port = int(m.group("port"))
        self.grpc_port = int(m.group("grpc")) if m.group("grpc") else None
        return self

    def _pump_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for line in self.proc.stderr:
            self._stderr.append(line)

    def stderr(self) -> str:
        return "".join(self._stderr)

    @property
    def scheme(self) -> str:
        return "https" if self.tls is not None else "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def traces_url(self) -> str:
        return self.url + "/v1/traces"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def rss_mb(self) -> float:
        with open(f"/proc/{self.pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0  # pragma: no cover

    def metric(self, name: str) -> float:
        """One unlabelled sample of ``/metrics``."""
        import httpx

        text = httpx.get(self.url + "/metrics", timeout=10, verify=self.verify()).text
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise KeyError(name)

    def drain(self, timeout: float = 15.0) -> None:
        """Wait until nothing waits for delivery to Opik (so one test's items never land in the next)."""
        wait_until(lambda: self.metric("opik_otel_queue_items") == 0, timeout, "an empty sidecar queue")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # -- clients that follow the sidecar's transport (plain or TLS) -------------------------
    def verify(self) -> Union[ssl.SSLContext, bool]:
        """httpx's ``verify=`` for this sidecar: a context trusting the test CA under TLS, else the default."""
        return self.tls.client_context() if self.tls is not None else True

    def client_env(self) -> Dict[str, str]:
        """Environment for a client in another process (Node, an SDK app) to trust this sidecar: {} when plain."""
        return self.tls.client_env() if self.tls is not None else {}

    def http_client(self, **kwargs: Any) -> Any:
        """An ``httpx.Client`` that reaches this sidecar."""
        import httpx

        kwargs.setdefault("verify", self.verify())
        return httpx.Client(**kwargs)

    @property
    def grpc_target(self) -> str:
        assert self.grpc_port is not None, "this sidecar has no gRPC receiver"
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def grpc_url(self) -> str:
        """The gRPC receiver as an OTLP endpoint URL (``https://`` under TLS)."""
        return f"{self.scheme}://{self.grpc_target}"

    def grpc_channel(self, options: Optional[Sequence[Any]] = None) -> Any:
        """A grpc channel to the gRPC receiver: secure (trusting the test CA) under TLS, else insecure."""
        import grpc

        if self.tls is not None:
            return grpc.secure_channel(self.grpc_target, self.tls.grpc_credentials(), options=options)
        return grpc.insecure_channel(self.grpc_target, options=options)

    def otlp_grpc_exporter(self, **kwargs: Any) -> Any:
        """The official OTLP/gRPC span exporter pointed at this sidecar."""
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        if self.tls is not None:
            kwargs.setdefault("credentials", self.tls.grpc_credentials())
        return OTLPSpanExporter(endpoint=self.grpc_target, insecure=self.tls is None, **kwargs)

    def otlp_http_exporter(self, **kwargs: Any) -> Any:
        """The official OTLP/HTTP span exporter pointed at this sidecar (``certificate_file`` under TLS)."""
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        if self.tls is not None:
            kwargs.setdefault("certificate_file", self.tls.ca)
        return OTLPSpanExporter(endpoint=self.traces_url, **kwargs)

    def connect(self, timeout: float = 10.0, handshake: bool = True) -> socket.socket:
        """A socket to the HTTP receiver; under TLS wrapped and handshaken (``handshake=False``: raw TCP)."""
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls is None or not handshake:
            return sock
        return self.tls.client_context().wrap_socket(sock, server_hostname="127.0.0.1")

    def http_connection(self, timeout: float = 10.0) -> http.client.HTTPConnection:
        """An ``http.client`` connection to the HTTP receiver (HTTPS under TLS)."""
        if self.tls is not None:
            return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout,
                                               context=self.tls.client_context())
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 40.0) -> int:
        """Signal the sidecar and wait for it; returns its exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"the sidecar did not stop within {timeout}s: {self.stderr()}") from None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def __enter__(self) -> "SidecarProcess":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.alive():
            try:
                self.stop()
            except AssertionError:
                pass


def make_spans(build: Callable[[Any], None], resource: Optional[Dict[str, Any]] = None, sampler: Any = None) -> List[ReadableSpan]:
    """Finished SDK spans: ``build(tracer)`` creates them with a real ``TracerProvider``."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create(resource or {"service.name": "sidecar-tests"}), sampler=sampler)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    build(provider.get_tracer("sidecar.tests", "1.0"))
    provider.shutdown()
    return list(memory.get_finished_spans())


def protobuf_body(spans: Sequence[ReadableSpan]) -> bytes:
    """What the official OTLP exporters put on the wire for these spans."""
    return encode_spans(spans).SerializeToString()


def _hex_ids(node: Any) -> Any:
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k in ("traceId", "spanId", "parentSpanId") and isinstance(v, str):
                out[k] = base64.b64decode(v).hex()
            else:
                out[k] = _hex_ids(v)
        return out
    if isinstance(node, list):
        return [_hex_ids(v) for v in node]
    return node


def otlp_json(spans: Sequence[ReadableSpan]) -> Dict[str, Any]:
    """OTLP/JSON per the spec: lowerCamelCase, hex ids, int64 as strings, enums as integers."""
    msg = encode_spans(spans)
    return _hex_ids(MessageToDict(msg, use_integers_for_enums=True))


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout}s")
        time.sleep(0.05)


def rows_without_volatile(rows: Dict[str, Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
    """Stored rows, minus what the stand-in adds itself."""
    return {k: {f: v for f, v in row.items() if f not in ("workspace",)} for k, row in rows.items()}
