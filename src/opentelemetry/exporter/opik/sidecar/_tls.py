"""TLS material and bearer tokens for ``opik-otel serve``, and reloading them without a restart.

Both receivers use their server's own TLS: an ``ssl.SSLContext`` for uvicorn
(OTLP/HTTP, with ``/healthz``, ``/readyz`` and ``/metrics`` on the same
listener) and ``grpc.dynamic_ssl_server_credentials`` for grpcio. Nothing here
speaks TLS itself.

Reloading (``SIGHUP``, or a changed file seen by a poll every 2 s) builds a
complete new set of material first; only when all of it loads does it become
current, so a half-written file, a key that does not match or an empty token
file keep the old material (the reason is logged, never a file's contents).
New connections then use the new material: uvicorn's listener picks it in its
``sni_callback`` (called for every handshake, with or without SNI), gRPC asks
for it in its certificate fetcher. Connections already open, requests in
flight and the queue are untouched.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import logging
import os
import ssl
import threading
import time
from typing import Any, List, Optional, Sequence, Tuple

_logger = logging.getLogger("opentelemetry.exporter.opik.sidecar")

#: seconds between two looks at the files' modification times
POLL_INTERVAL = 2.0
#: a certificate expiring sooner than this is warned about
EXPIRY_WARNING_DAYS = 7

CERT_SETTING = "--tls-cert / OPIK_OTEL_TLS_CERT_FILE"
KEY_SETTING = "--tls-key / OPIK_OTEL_TLS_KEY_FILE"
CA_SETTING = "--tls-client-ca / OPIK_OTEL_TLS_CLIENT_CA_FILE"
TOKEN_FILE_SETTING = "--auth-token-file / OPIK_OTEL_AUTH_TOKEN_FILE"


class TlsConfigError(Exception):
    """A TLS or token file that cannot be used; the message names the setting, never the contents."""


@dataclasses.dataclass(frozen=True)
class TlsFiles:
    cert: Optional[str] = None
    key: Optional[str] = None
    client_ca: Optional[str] = None
    token_file: Optional[str] = None

    @property
    def tls(self) -> bool:
        """Any TLS file set (a key or CA without a certificate is refused by ``load_material``)."""
        return bool(self.cert or self.key or self.client_ca)

    def paths(self) -> List[str]:
        return [p for p in (self.cert, self.key, self.client_ca, self.token_file) if p]


class Tokens:
    """The accepted bearer tokens; replaced whole on a reload (readers see the old or the new set)."""

    def __init__(self, tokens: Sequence[str]) -> None:
        self._tokens: Tuple[bytes, ...] = tuple(t.encode("utf-8") for t in tokens)

    def replace(self, tokens: Sequence[str]) -> None:
        self._tokens = tuple(t.encode("utf-8") for t in tokens)

    def __len__(self) -> int:
        return len(self._tokens)

    def __repr__(self) -> str:  # never the tokens
        return f"Tokens({len(self._tokens)})"

    def accepts(self, given: bytes) -> bool:
        """Constant time per token, and every token is compared (no early exit)."""
        ok = False
        for token in self._tokens:
            ok |= hmac.compare_digest(given, token)
        return ok


def as_tokens(auth: Any) -> Optional[Tokens]:
    """``None``, one token (str) or a ``Tokens`` -> ``Tokens`` or ``None``."""
    if auth is None or isinstance(auth, Tokens):
        return auth
    return Tokens([auth]) if auth else None


def read_token_file(path: str) -> List[str]:
    """One token per line; blank lines and ``#`` comments ignored; at least one token."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise TlsConfigError(f"{TOKEN_FILE_SETTING}: cannot read {path}: {exc.strerror or type(exc).__name__}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise TlsConfigError(f"{TOKEN_FILE_SETTING}: {path} is not UTF-8 text") from None
    tokens = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if any(c.isspace() for c in line):
            raise TlsConfigError(f"{TOKEN_FILE_SETTING}: {path} has a line with spaces in it (one token per line)")
        tokens.append(line)
    if not tokens:
        raise TlsConfigError(f"{TOKEN_FILE_SETTING}: {path} lists no token")
    return tokens


def _read(path: str, setting: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise TlsConfigError(f"{setting}: cannot read {path}: {exc.strerror or type(exc).__name__}") from None
    if b"-----BEGIN" not in data:
        raise TlsConfigError(f"{setting}: {path} is not a PEM file")
    return data


def _not_after(cert_path: str) -> Optional[float]:
    """The first certificate's expiry (seconds since the epoch), by the ssl module's own decoder."""
    decode = getattr(getattr(ssl, "_ssl", None), "_test_decode_cert", None)
    if decode is None:  # pragma: no cover - not CPython
        return None
    try:
        info = decode(cert_path)
        return float(ssl.cert_time_to_seconds(info["notAfter"]))
    except (ssl.SSLError, OSError, KeyError, ValueError):
        return None


@dataclasses.dataclass
class Material:
    """One consistent set: the HTTP listener's context and the gRPC configuration, from the same bytes."""

    context: ssl.SSLContext
    cert_pem: bytes
    key_pem: bytes
    ca_pem: Optional[bytes]
    not_after: Optional[float]


def _context(cert: str, key: str, ca_pem: Optional[bytes]) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(["http/1.1"])
    try:
        ctx.load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        reason = getattr(exc, "reason", None) or ""
        if "KEY_VALUES_MISMATCH" in reason or "key values mismatch" in str(exc):
            raise TlsConfigError(f"{KEY_SETTING}: the key does not match the certificate of {CERT_SETTING}") from None
        if "PEM" in reason or "pem" in str(exc).lower():
            raise TlsConfigError(f"{CERT_SETTING} / {KEY_SETTING}: not a PEM certificate chain and key ({reason or 'SSL error'})") from None
        raise TlsConfigError(f"{CERT_SETTING} / {KEY_SETTING}: cannot load ({reason or 'SSL error'})") from None
    except OSError as exc:
        raise TlsConfigError(f"{CERT_SETTING} / {KEY_SETTING}: cannot read: {exc.strerror or type(exc).__name__}") from None
    if ca_pem is not None:
        try:
            ctx.load_verify_locations(cadata=ca_pem.decode("ascii", "replace"))
        except (ssl.SSLError, ValueError) as exc:
            raise TlsConfigError(f"{CA_SETTING}: not a PEM CA certificate ({getattr(exc, 'reason', None) or 'SSL error'})") from None
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def load_material(files: TlsFiles, now: Optional[float] = None) -> Material:
    """Read and check the certificate, key and client CA; raises ``TlsConfigError`` naming the setting."""
    if files.key and not files.cert:
        raise TlsConfigError(f"{KEY_SETTING} is set without {CERT_SETTING}")
    if files.cert and not files.key:
        raise TlsConfigError(f"{CERT_SETTING} is set without {KEY_SETTING}")
    if files.client_ca and not files.cert:
        raise TlsConfigError(f"{CA_SETTING} needs TLS: set {CERT_SETTING} and {KEY_SETTING}")
    assert files.cert and files.key
    cert_pem = _read(files.cert, CERT_SETTING)
    key_pem = _read(files.key, KEY_SETTING)
    ca_pem = _read(files.client_ca, CA_SETTING) if files.client_ca else None
    ctx = _context(files.cert, files.key, ca_pem)
    not_after = _not_after(files.cert)
    if not_after is not None and not_after <= (time.time() if now is None else now):
        raise TlsConfigError(f"{CERT_SETTING}: the certificate in {files.cert} has expired")
    return Material(ctx, cert_pem, key_pem, ca_pem, not_after)


def expiry_warning(files: TlsFiles, material: Material) -> Optional[str]:
    if material.not_after is None:
        return None
    left = material.not_after - time.time()
    if left < EXPIRY_WARNING_DAYS * 86400:
        return f"{CERT_SETTING}: the certificate in {files.cert} expires in {left / 3600:.1f} hours"
    return None


def check_files(files: TlsFiles) -> List[Tuple[str, str]]:
    """For ``opik-otel check``: ``[(level, message)]`` with level ``error``/``warning``/``ok``."""
    out: List[Tuple[str, str]] = []
    if files.cert or files.key or files.client_ca:
        try:
            material = load_material(files)
        except TlsConfigError as exc:
            out.append(("error", str(exc)))
        else:
            warning = expiry_warning(files, material)
            out.append(("warning", warning) if warning else ("ok", "TLS certificate and key load" + (", client CA loads" if files.client_ca else "")))
    if files.token_file:
        try:
            n = len(read_token_file(files.token_file))
        except TlsConfigError as exc:
            out.append(("error", str(exc)))
        else:
            out.append(("ok", f"{TOKEN_FILE_SETTING}: {n} token(s)"))
    return out


class Reloader:
    """The current TLS material and tokens; ``reload()`` swaps them when all of the new set loads."""

    def __init__(self, files: TlsFiles, tokens: Optional[Tokens]) -> None:
        self.files = files
        self.tokens = tokens
        self.material: Optional[Material] = None
        self.reloads_ok = 0
        self.reloads_failed = 0
        self._lock = threading.Lock()
        self._signature = self._stat()
        self._grpc_served: Optional[int] = None  # id() of the material gRPC last fetched
        if files.tls:
            self.material = load_material(files)
        if files.token_file:
            tokens_read = read_token_file(files.token_file)
            if self.tokens is None:
                self.tokens = Tokens(tokens_read)
            else:
                self.tokens.replace(tokens_read)

    # -- uvicorn -------------------------------------------------------------------------
    def http_context(self) -> Optional[ssl.SSLContext]:
        """The listener's context: new handshakes are switched to the current material's context."""
        if self.material is None:
            return None
        base = load_material(self.files).context  # same settings (verify mode, minimum version) as the current one

        def pick(sslobj: Any, server_name: Optional[str], ctx: ssl.SSLContext) -> None:
            current = self.material
            if current is not None and current.context is not ctx:
                sslobj.context = current.context

        base.sni_callback = pick
        return base

    def bound_handshakes(self, loop: asyncio.AbstractEventLoop, seconds: float) -> None:
        """Bound the HTTP listener's TLS handshake by ``seconds`` (the header timeout, as on gRPC).

        asyncio gives a TLS handshake 60 s and uvicorn passes no bound of its own: a client that
        connects and never sends its ClientHello held its socket for a minute, past
        ``OPIK_OTEL_HEADER_TIMEOUT`` and ``OPIK_OTEL_IDLE_TIMEOUT`` (which only start once the
        handshake is done; in plain text they close such a socket). The listener that uvicorn then
        creates on ``loop`` with ``ssl=`` gets ``ssl_handshake_timeout``. Nothing changes without TLS.
        """
        if self.material is None or seconds <= 0:
            return
        create_server = loop.create_server

        async def bounded(*args: Any, **kwargs: Any) -> asyncio.AbstractServer:
            if kwargs.get("ssl") is not None:
                kwargs.setdefault("ssl_handshake_timeout", seconds)
            return await create_server(*args, **kwargs)

        loop.create_server = bounded  # type: ignore[method-assign,assignment]

    # -- grpc ----------------------------------------------------------------------------
    def grpc_credentials(self) -> Any:
        import grpc

        material = self.material
        assert material is not None
        self._grpc_served = id(material)

        def config(m: Material) -> Any:
            return grpc.ssl_server_certificate_configuration([(m.key_pem, m.cert_pem)], root_certificates=m.ca_pem)

        def fetch() -> Any:
            current = self.material
            if current is None or id(current) == self._grpc_served:
                return None  # no change
            self._grpc_served = id(current)
            return config(current)

        return grpc.dynamic_ssl_server_credentials(
            config(material), fetch, require_client_authentication=material.ca_pem is not None
        )

    # -- reloading -----------------------------------------------------------------------
    def _stat(self) -> Tuple[Any, ...]:
        sig: List[Tuple[Any, ...]] = []
        for path in self.files.paths():
            try:
                st = os.stat(path)  # follows symlinks: a Kubernetes secret volume swaps a link
                sig.append((path, st.st_ino, st.st_mtime_ns, st.st_size))
            except OSError:
                sig.append((path, None))
        return tuple(sig)

    def changed(self) -> bool:
        return self._stat() != self._signature

    def reload(self, why: str) -> bool:
        """Reread every file; on any failure keep the old material and log why (never the contents)."""
        with self._lock:
            self._signature = self._stat()
            try:
                material = load_material(self.files) if self.files.tls else None
                tokens = read_token_file(self.files.token_file) if self.files.token_file else None
            except TlsConfigError as exc:
                self.reloads_failed += 1
                _logger.error("reload (%s) failed, keeping the current TLS material and tokens: %s", why, exc)
                return False
            if material is not None:
                self.material = material
                warning = expiry_warning(self.files, material)
                if warning:
                    _logger.warning("%s", warning)
            if tokens is not None and self.tokens is not None:
                self.tokens.replace(tokens)
            self.reloads_ok += 1
            parts = []
            if material is not None:
                parts.append("TLS certificate" + (" and client CA" if self.files.client_ca else ""))
            if tokens is not None:
                parts.append(f"{len(tokens)} auth token(s)")
            _logger.info("reloaded (%s): %s", why, ", ".join(parts))
            return True

    def metrics_text(self) -> str:
        """Prometheus lines appended to ``/metrics``."""
        lines = [
            "# HELP opik_otel_reloads_total reloads of the TLS certificate/key/client CA and token file, by result",
            "# TYPE opik_otel_reloads_total counter",
            f'opik_otel_reloads_total{{result="ok"}} {self.reloads_ok}',
            f'opik_otel_reloads_total{{result="failed"}} {self.reloads_failed}',
        ]
        if self.material is not None and self.material.not_after is not None:
            lines += [
                "# HELP opik_otel_tls_cert_not_after_seconds expiry of the served certificate (seconds since the epoch)",
                "# TYPE opik_otel_tls_cert_not_after_seconds gauge",
                f"opik_otel_tls_cert_not_after_seconds {int(self.material.not_after)}",
            ]
        return "\n".join(lines) + "\n"


__all__ = [
    "Material",
    "Reloader",
    "TlsConfigError",
    "TlsFiles",
    "Tokens",
    "as_tokens",
    "check_files",
    "load_material",
    "read_token_file",
]
