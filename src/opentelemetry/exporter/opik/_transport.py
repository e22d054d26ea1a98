"""HTTP to Opik: one pooled httpx client, gzip bodies, auth headers, exact outcomes.

The transport only sends and classifies; what to do about a status (retry,
split, bisect, pause) is the writer's decision. Every request runs with OTel
instrumentation suppressed, whichever thread sends it, so an instrumented
httpx never turns the exporter's own traffic into spans (which would be
exported, and traced again: a feedback loop).
"""

from __future__ import annotations

import email.utils
import logging
import re
import ssl
import threading
import time
from typing import Any, Dict, Mapping, Optional
from urllib.parse import urlsplit, urlunsplit

import httpx

from opentelemetry import context as otel_context

from ._compress import gzip_compressor
from ._config import OpikSettings
from .version import __version__

_logger = logging.getLogger("opentelemetry.exporter.opik")

#: answers worth repeating unchanged; everything else is final for that body
RETRYABLE_STATUS = frozenset((408, 429, 500, 502, 503, 504))
#: a RateLimit-Reset above this is an epoch timestamp, not delta-seconds
_EPOCH_THRESHOLD = 1_000_000_000


def suppressed_context(ctx: Optional[Any] = None) -> Any:
    """``ctx`` (default: current) with every OTel instrumentation suppressed."""
    ctx = otel_context.get_current() if ctx is None else ctx
    try:
        from opentelemetry.context import (
            _SUPPRESS_HTTP_INSTRUMENTATION_KEY,
            _SUPPRESS_INSTRUMENTATION_KEY,
        )

        ctx = otel_context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, True, ctx)
        ctx = otel_context.set_value(_SUPPRESS_HTTP_INSTRUMENTATION_KEY, True, ctx)
    except ImportError:  # pragma: no cover - API older than 1.27
        ctx = otel_context.set_value("suppress_instrumentation", True, ctx)
    try:  # older instrumentations check the key object of their own utils module
        from opentelemetry.instrumentation.utils import _SUPPRESS_HTTP_INSTRUMENTATION_KEY as _OLD_HTTP_KEY

        ctx = otel_context.set_value(_OLD_HTTP_KEY, True, ctx)
    except ImportError:
        pass
    return ctx


class Response:
    __slots__ = ("status", "headers", "text")

    def __init__(self, status: int, headers: Mapping[str, str], text: str) -> None:
        self.status = status
        self.headers = headers
        self.text = text

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def server_delay(self, now: Optional[float] = None) -> Optional[float]:
        """Seconds the server asked us to wait (``Retry-After``, ``RateLimit-Reset``, ``RateLimit``)."""
        return parse_server_delay(self.headers, now)


_RATELIMIT_T = re.compile(r"(?:^|[;,\s])t=(\d+(?:\.\d+)?)")


def parse_server_delay(headers: Mapping[str, str], now: Optional[float] = None) -> Optional[float]:
    """The largest wait any of the server's hints asks for, in seconds; None if none parse.

    * ``Retry-After``: delta-seconds or an HTTP date (RFC 9110).
    * ``RateLimit-Reset`` (and ``X-RateLimit-Reset``): delta-seconds, or a Unix
      timestamp when the number is that large (GitHub style).
    * ``RateLimit: ...;t=<seconds>`` (the structured-field draft).
    """
    now = time.time() if now is None else now
    best: Optional[float] = None

    def take(delay: float) -> None:
        nonlocal best
        if delay == delay and delay >= 0:  # not NaN, not negative
            best = delay if best is None else max(best, delay)

    raw = _header(headers, "retry-after")
    if raw:
        try:
            take(float(raw))
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(raw)
            except (TypeError, ValueError, IndexError):
                when = None
            if when is not None:
                take(max(when.timestamp() - now, 0.0))
    for name in ("ratelimit-reset", "x-ratelimit-reset"):
        raw = _header(headers, name)
        if raw:
            try:
                value = float(raw)
            except ValueError:
                continue
            take(max(value - now, 0.0) if value > _EPOCH_THRESHOLD else value)
    raw = _header(headers, "ratelimit")
    if raw:
        m = _RATELIMIT_T.search(raw)
        if m:
            take(float(m.group(1)))
    return best


def _header(headers: Mapping[str, str], name: str) -> Optional[str]:
    value = headers.get(name)
    if value is None and not isinstance(headers, httpx.Headers):
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    return value.strip() if isinstance(value, str) else None


def safe_url(url: str) -> str:
    """``url`` without any ``user:password@`` part, for logs."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, "***@" + host, parts.path, parts.query, parts.fragment))


class TransportError(Exception):
    """The request did not get an HTTP answer (connection refused, timeout, TLS, DNS)."""

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        #: no answer within the timeout (Opik may still have stored the request)
        self.timed_out = timed_out


def _verify(settings: OpikSettings) -> Any:
    if not settings.check_tls_certificate:
        _logger.warning(
            "TLS certificate verification is off (OPIK_CHECK_TLS_CERTIFICATE=false): "
            "traffic to %s can be intercepted; use it only for testing",
            safe_url(settings.url),
        )
        return False
    if settings.certificate:
        try:
            return ssl.create_default_context(cafile=settings.certificate)
        except (OSError, ssl.SSLError) as exc:
            from ._config import ConfigError

            raise ConfigError(
                f"OTEL_EXPORTER_OPIK_CERTIFICATE={settings.certificate!r} could not be loaded as a PEM CA file: {exc}"
            ) from None
    return True


_default_tls: Optional[ssl.SSLContext] = None
_default_tls_lock = threading.Lock()


def _client_verify(base_url: str, verify: Any) -> Any:
    """What ``httpx.Client(verify=...)`` gets.

    Building a TLS context loads the whole CA bundle (tens of ms, more on a busy
    core), and httpx builds one per client even for plain HTTP. The client never
    follows redirects, so a plain ``http://`` base never needs one; the default
    verifying context is built once per process and shared (SSLContext is
    thread-safe).
    """
    global _default_tls
    if base_url.startswith("http://"):
        return False  # no TLS on this client: nothing to verify, no CA bundle to load
    make = getattr(httpx, "create_ssl_context", None)
    if verify is not True or make is None:
        return verify
    with _default_tls_lock:
        if _default_tls is None:
            _default_tls = make()
        return _default_tls


class Transport:
    """Sends pre-encoded JSON bodies to Opik over one pooled connection."""

    def __init__(self, settings: OpikSettings) -> None:
        self.settings = settings
        self.base = settings.url
        self._gzip = gzip_compressor(settings.compression_level) if settings.compression == "gzip" else None
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": f"opentelemetry-exporter-opik/{__version__}",
        }
        headers.update(settings.headers())
        self._headers = headers
        self._verify = _verify(settings)
        self._client: Optional[httpx.Client] = None
        self._lock = threading.Lock()

    def _get_client(self) -> httpx.Client:
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    t = self.settings.timeout
                    self._client = httpx.Client(
                        headers=self._headers,
                        timeout=httpx.Timeout(t, connect=min(t, 10.0)),
                        verify=_client_verify(self.base, self._verify),
                        follow_redirects=False,
                        trust_env=False,
                    )
                client = self._client
        return client

    def request(self, method: str, path: str, body: bytes, timeout: Optional[float] = None) -> Response:
        """Send ``body`` (uncompressed JSON); raises :class:`TransportError` without an answer."""
        headers: Dict[str, str] = {}
        if self._gzip is not None and len(body) >= 256:
            body = self._gzip(body)
            headers["Content-Encoding"] = "gzip"
        kwargs: Dict[str, Any] = {}
        if timeout is not None:
            t = max(timeout, 0.05)
            kwargs["timeout"] = httpx.Timeout(t, connect=min(t, 10.0))
        return self._send(method, path, content=body, headers=headers, **kwargs)

    def get(self, path: str, timeout: Optional[float] = None) -> Response:
        return self._send("GET", path, timeout=timeout or self.settings.timeout)

    def _send(self, method: str, path: str, **kwargs: Any) -> Response:
        token = otel_context.attach(suppressed_context())
        try:
            r = self._get_client().request(method, self.base + path, **kwargs)
            return Response(r.status_code, r.headers, r.text[:2000])
        except httpx.HTTPError as exc:
            timed_out = isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.ConnectTimeout)
            raise TransportError(f"{type(exc).__name__}: {exc}", timed_out=timed_out) from None
        except Exception as exc:  # noqa: BLE001 - e.g. the pool closed by shutdown() under us
            raise TransportError(f"{type(exc).__name__}: {exc}") from None
        finally:
            otel_context.detach(token)

    def reset(self) -> None:
        """Forget the connection pool without closing it (after ``fork``: the parent owns the sockets)."""
        self._lock = threading.Lock()
        self._client = None

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception:  # noqa: BLE001 - closing never raises into shutdown()
                pass
