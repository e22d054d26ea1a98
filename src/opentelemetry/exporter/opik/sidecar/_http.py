"""OTLP/HTTP receiver: a small ASGI app served by uvicorn.

``POST /v1/traces`` (protobuf or JSON, gzip/deflate, length or chunked) per
the OTLP/HTTP specification, plus ``/healthz``, ``/readyz`` and ``/metrics``.
Decompression, decoding and mapping run off the event loop (see
``work``), so health checks and slow uploads never wait behind a big batch.
"""

from __future__ import annotations

import asyncio
import functools
import time
from typing import Any, Awaitable, Callable, Dict, List, Optional, Tuple, Union

from ._auth import UNAUTHENTICATED_MESSAGE, bearer_ok
from ._decode import JSON_TYPES, PROTOBUF_TYPES
from ._decompress import ENCODINGS
from ._inflight import BUSY_MESSAGE
from ._outcome import LOGS, METRICS, OK, TRACES, Outcome
from ._receiver import Receiver
from ._sinks import Credentials
from ._tls import Tokens, as_tokens
from ._wire import (
    GRPC_INVALID_ARGUMENT,
    GRPC_UNAUTHENTICATED,
    GRPC_UNAVAILABLE,
    GRPC_UNIMPLEMENTED,
    HTTP_STATUS,
    error_body,
    status_json,
    status_pb,
    success_body,
)

Scope = Dict[str, Any]
Receive = Callable[[], Awaitable[Dict[str, Any]]]
Send = Callable[[Dict[str, Any]], Awaitable[None]]
#: runs a blocking function (on the one worker thread) and returns its result
Runner = Callable[..., Awaitable[Any]]

TRACES_PATH = "/v1/traces"
LOGS_PATH = "/v1/logs"  # GenAI content in log records, joined to its spans
METRICS_PATH = "/v1/metrics"  # accepted and discarded
_SIGNALS = {TRACES_PATH: TRACES, LOGS_PATH: LOGS, METRICS_PATH: METRICS}
_PB = b"application/x-protobuf"
_JSON = b"application/json"
_TEXT = b"text/plain; charset=utf-8"
_PROM = b"text/plain; version=0.0.4; charset=utf-8"
#: a body over the limit is still read (and discarded) up to this many times the limit,
#: so the client reads the 413 instead of a reset connection it would retry
_DRAIN_FACTOR = 4
#: the request headers the receiver reads
_HEADERS = (b"content-type", b"content-encoding", b"content-length", b"authorization", b"projectname", b"comet-workspace")


class _Disconnected(Exception):
    pass


_OVER_BUDGET = object()


class OtlpHttpApp:
    """The ASGI application; ``work`` runs the blocking part of each request."""

    def __init__(
        self,
        receiver: Receiver,
        work: Runner,
        auth_token: Union[str, Tokens, None] = None,
        max_inflight_bytes: Optional[int] = None,
    ) -> None:
        self.receiver = receiver
        self.work = work
        self.token = as_tokens(auth_token)  # a token file's set is replaced in place on a reload
        #: more Prometheus lines for /metrics (the TLS/token reload counters)
        self.extra_metrics: Optional[Callable[[], str]] = None
        #: request bytes held at once by both receivers (read or waiting for the worker); beyond it: 503 + Retry-After
        self.inflight = receiver.inflight
        if max_inflight_bytes:
            self.inflight.max_bytes = max_inflight_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
            return
        if kind != "http":  # websockets: not ours
            return
        path = scope["path"]
        try:
            signal = _SIGNALS.get(path.rstrip("/")) if path.startswith("/v1/") else None
            if signal is not None:
                await self._otlp(scope, receive, send, path.rstrip("/"), signal)
            elif path in ("/healthz", "/readyz", "/metrics"):
                await self._health(path, scope, send)
            else:
                await _respond(send, 404, _TEXT, b"not found: OTLP goes to POST /v1/traces, /v1/logs or /v1/metrics\n")
        except _Disconnected:
            return

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _health(self, path: str, scope: Scope, send: Send) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            await _respond(send, 405, _TEXT, b"use GET\n", [(b"allow", b"GET, HEAD")])
            return
        if path == "/healthz":
            await _respond(send, 200, _TEXT, b"ok\n")
        elif path == "/readyz":
            ok, why = await asyncio.get_running_loop().run_in_executor(None, self.receiver.readiness)
            await _respond(send, 200 if ok else 503, _TEXT, (("ready: " if ok else "not ready: ") + why + "\n").encode())
        else:
            await _respond(send, 200, _PROM, (self.receiver.metrics_text() + (self.extra_metrics() if self.extra_metrics else "")).encode())

    async def _otlp(self, scope: Scope, receive: Receive, send: Send, signal_path: str, signal: str) -> None:
        t0 = time.perf_counter()
        headers: Dict[bytes, bytes] = {}
        for name, value in scope["headers"]:
            if name in _HEADERS:
                headers[name] = value
        ctype = headers.get(b"content-type", b"").split(b";", 1)[0].strip().lower()
        ctype_str = ctype.decode("latin-1")
        is_json = ctype_str in JSON_TYPES
        is_pb = ctype_str in PROTOBUF_TYPES
        as_json = not is_pb  # errors for an unknown type are answered in JSON

        async def fail(status: int, code: int, message: str, extra: Optional[List[Tuple[bytes, bytes]]] = None, retry_after: float = 0.0) -> None:
            body = status_json(code, message, retry_after) if as_json else status_pb(code, message, retry_after)
            await _respond(send, status, _JSON if as_json else _PB, body, extra)
            self.receiver.count_response("http", str(status), time.perf_counter() - t0)

        if scope["method"] != "POST":
            await fail(405, GRPC_UNIMPLEMENTED, f"{scope['method']} is not allowed on {signal_path}: use POST", [(b"allow", b"POST")])
            return
        if not bearer_ok(headers.get(b"authorization"), self.token):
            await fail(401, GRPC_UNAUTHENTICATED, UNAUTHENTICATED_MESSAGE, [(b"www-authenticate", b'Bearer realm="opik-otel"')])
            return
        if not (is_json or is_pb):
            shown = ctype.decode("latin-1")[:100] or "(none)"
            await fail(415, GRPC_INVALID_ARGUMENT, f"Content-Type {shown} is not supported: use application/x-protobuf or application/json")
            return
        encoding = headers.get(b"content-encoding", b"").strip().lower().decode("latin-1")
        if encoding not in ENCODINGS:
            await fail(415, GRPC_INVALID_ARGUMENT, f"Content-Encoding {encoding[:50]!r} is not supported: use gzip, deflate or none")
            return
        limit = self.receiver.limits.max_body_bytes
        too_large = f"the request body is larger than {limit} bytes; send smaller batches"
        length = headers.get(b"content-length")
        if length is not None and length.strip().isdigit() and int(length) > limit:
            await self._drain(receive, limit)
            await fail(413, GRPC_INVALID_ARGUMENT, too_large)
            return
        busy = BUSY_MESSAGE
        retry = self.receiver.retry_after
        retry_header = [(b"retry-after", str(max(1, int(round(retry)))).encode())]
        declared = int(length) if length is not None and length.strip().isdigit() else 0
        if not self.inflight.admits(declared):
            await self._drain(receive, limit)
            await fail(503, GRPC_UNAVAILABLE, busy, retry_header, retry)
            return
        held = [0]  # bytes of this request counted in the budget
        try:
            body = await self._read(receive, limit, held)
            if body is None:
                await fail(413, GRPC_INVALID_ARGUMENT, too_large)
                return
            if body is _OVER_BUDGET:
                await fail(503, GRPC_UNAVAILABLE, busy, retry_header, retry)
                return
            outcome: Outcome = await self.work(
                functools.partial(
                    self.receiver.handle,
                    body,
                    encoding,
                    ctype_str,
                    _text(headers.get(b"projectname")),
                    signal=signal,
                    credentials=self._credentials(headers),
                    received_at=time.monotonic(),
                )
            )
        finally:
            self.inflight.release(held[0])
        status, payload, extra = answer(outcome, is_json)
        await _respond(send, status, _JSON if is_json else _PB, payload, extra)
        self.receiver.count_response("http", str(status), time.perf_counter() - t0)

    def _credentials(self, headers: Dict[bytes, bytes]) -> Optional[Credentials]:
        """With ``--pass-credentials``: the Opik key (``Authorization``) and ``Comet-Workspace`` the sender sent."""
        if not self.receiver.pass_credentials:
            return None
        key = _text(headers.get(b"authorization")) if self.token is None else None  # else it holds the bearer token
        return Credentials.from_headers(key, _text(headers.get(b"comet-workspace")))

    async def _read(self, receive: Receive, limit: int, held: List[int]) -> Any:
        """The body (at most ``limit`` bytes on the wire); None when it is larger, ``_OVER_BUDGET``
        when the sidecar already holds too many request bytes. Adds what it holds to ``held``."""
        parts: List[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected()
            chunk = message.get("body", b"")
            more = message.get("more_body", False)
            if chunk:
                size += len(chunk)
                if size > limit:
                    if more:
                        await self._drain(receive, limit, size)
                    return None
                self.inflight.take(len(chunk))
                held[0] += len(chunk)
                budget = self.inflight
                if budget.held > budget.max_bytes and budget.held > held[0]:
                    if more:
                        await self._drain(receive, limit, size)
                    return _OVER_BUDGET
                parts.append(chunk)
            if not more:
                break
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def _drain(self, receive: Receive, limit: int, seen: int = 0) -> None:
        """Read and discard the rest of a body that is too large (bounded)."""
        while seen <= _DRAIN_FACTOR * limit:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected()
            seen += len(message.get("body", b""))
            if not message.get("more_body", False):
                return


def answer(outcome: Outcome, as_json: bool) -> Tuple[int, bytes, Optional[List[Tuple[bytes, bytes]]]]:
    """An outcome's HTTP status, body and extra headers (``Retry-After`` when the sender should retry)."""
    if outcome.code == OK:
        return 200, success_body(outcome, as_json), None
    retry = outcome.retry_after
    extra = [(b"retry-after", str(max(1, int(round(retry)))).encode())] if retry > 0 else None
    return HTTP_STATUS[outcome.code], error_body(outcome, as_json), extra


def _text(value: Optional[bytes]) -> Optional[str]:
    return value.decode("utf-8", "replace") if value is not None else None


async def _respond(send: Send, status: int, content_type: bytes, body: bytes, extra: Optional[List[Tuple[bytes, bytes]]] = None) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    if extra:
        headers.extend(extra)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


__all__ = ["OtlpHttpApp", "Runner", "answer"]
