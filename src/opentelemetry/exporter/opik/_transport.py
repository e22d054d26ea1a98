"""HTTP to Opik: one pooled httpx client, gzip bodies, auth headers, exact outcomes.

The transport only sends and classifies; what to do about a status (retry,
split, bisect, pause) is the writer's decision.
"""

from __future__ import annotations

import email.utils
import gzip
import logging
import ssl
import time
from typing import Any, Dict, Mapping, Optional

import httpx

from ._config import OpikSettings
from .version import __version__

_logger = logging.getLogger("opentelemetry.exporter.opik")

RETRYABLE_STATUS = frozenset((408, 429, 500, 502, 503, 504))


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
        """Seconds the server asked us to wait: ``Retry-After`` (seconds or HTTP date) or ``RateLimit-Reset``."""
        return parse_server_delay(self.headers, now)


def parse_server_delay(headers: Mapping[str, str], now: Optional[float] = None) -> Optional[float]:
    best: Optional[float] = None
    for name in ("retry-after", "ratelimit-reset"):
        raw = headers.get(name)
        if not raw:
            continue
        raw = raw.strip()
        try:
            delay = float(raw)
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(raw)
            except (TypeError, ValueError):
                continue
            if when is None:
                continue
            delay = when.timestamp() - (time.time() if now is None else now)
        if delay == delay and delay >= 0:
            best = delay if best is None else max(best, delay)
    return best


class TransportError(Exception):
    """The request did not get an HTTP answer (connection refused, timeout, TLS, DNS)."""


def _verify(settings: OpikSettings) -> Any:
    if not settings.check_tls_certificate:
        _logger.warning(
            "TLS certificate verification is off (OPIK_CHECK_TLS_CERTIFICATE=false): "
            "traffic to %s can be intercepted; use it only for testing",
            settings.url,
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


class Transport:
    """Sends pre-encoded JSON bodies to Opik over one pooled connection."""

    def __init__(self, settings: OpikSettings) -> None:
        self.settings = settings
        self.base = settings.url
        self._gzip = settings.compression == "gzip"
        self._level = settings.compression_level
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": f"opentelemetry-exporter-opik/{__version__}",
        }
        headers.update(settings.headers())
        self._headers = headers
        self._verify = _verify(settings)
        self._client: Optional[httpx.Client] = None

    def _get_client(self) -> httpx.Client:
        if self._client is None:
            t = self.settings.timeout
            self._client = httpx.Client(
                headers=self._headers,
                timeout=httpx.Timeout(t, connect=min(t, 10.0)),
                verify=self._verify,
                follow_redirects=False,
                trust_env=False,
            )
        return self._client

    def request(self, method: str, path: str, body: bytes, timeout: Optional[float] = None) -> Response:
        """Send ``body`` (uncompressed JSON); raises :class:`TransportError` without an answer."""
        headers: Dict[str, str] = {}
        if self._gzip and len(body) >= 256:
            body = gzip.compress(body, self._level, mtime=0)
            headers["Content-Encoding"] = "gzip"
        kwargs: Dict[str, Any] = {}
        if timeout is not None:
            t = max(timeout, 0.05)
            kwargs["timeout"] = httpx.Timeout(t, connect=min(t, 10.0))
        try:
            r = self._get_client().request(method, self.base + path, content=body, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}") from None
        return Response(r.status_code, r.headers, r.text[:2000])

    def get(self, path: str, timeout: Optional[float] = None) -> Response:
        try:
            r = self._get_client().get(self.base + path, timeout=timeout or self.settings.timeout)
        except httpx.HTTPError as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}") from None
        return Response(r.status_code, r.headers, r.text[:2000])

    def reset(self) -> None:
        """Forget the connection pool without closing it (after ``fork``: the parent owns the sockets)."""
        self._client = None

    def close(self) -> None:
        if self._client is not None:
            try:
                self._client.close()
            finally:
                self._client = None
