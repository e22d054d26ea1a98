"""Connection hygiene for the OTLP/HTTP listener: timeouts, a request-head size limit, a bounded
number of requests in progress, and liveness that no load can block.

uvicorn closes a keep-alive connection that stays idle after a response (``timeout_keep_alive``,
the sidecar's idle timeout), but it has no deadline for a connection that never sends a request,
for a request head sent one byte at a time, or for a body that never ends, and its
``limit_concurrency`` counts idle connections (99 idle sockets made every request 503, ``/healthz``
included). So the sidecar runs without ``limit_concurrency`` and adds:

- :class:`GuardedHttpToolsProtocol` / :class:`GuardedH11Protocol` (uvicorn's own HTTP/1.1 protocols,
  whichever uvicorn's ``auto`` would pick): from the moment a connection opens, and from the first
  byte after a response, the request head must be complete within ``header_timeout`` (else 408 and
  the connection is closed; a connection that never sent a byte is closed without an answer, which
  a client could take for its next request's) and within ``max_header_bytes`` (else 431 and closed).
  The gRPC listener has the same timeouts from grpcio's options and ``_grpc_guard``.
- :class:`ConnectionGuard`, an ASGI wrapper: ``/healthz`` is answered on the event loop before
  anything else; a request takes one of ``max_requests`` slots when it first reads its body (so after
  the receiver's bearer check: unauthenticated requests never hold one) and keeps it until it
  returns; with every slot taken it is answered 503 + ``Retry-After`` and ``/readyz`` says so; the
  body must arrive within ``body_timeout`` of the request head (else 408 and the connection is
  closed). Idle connections hold no slot, so no number of them keeps real work out.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any, Awaitable, Callable, Dict, List, Optional, Tuple, cast

import h11
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from ._wire import GRPC_UNAVAILABLE, status_json, status_pb

Scope = Dict[str, Any]
Message = Dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

#: google.rpc.Code DEADLINE_EXCEEDED, in the body of a 408
GRPC_DEADLINE_EXCEEDED = 4
_TEXT = b"text/plain; charset=utf-8"
_DISCONNECT: Dict[str, Any] = {"type": "http.disconnect"}
#: close reasons counted in ``opik_otel_http_connections_closed_total``
REASONS = ("idle", "header_timeout", "header_too_large", "body_timeout")


@dataclasses.dataclass(frozen=True)
class ConnectionLimits:
    """How long and how much the OTLP/HTTP listener waits for and holds (see docs/cli.md)."""

    #: seconds a kept-alive connection may stay silent after a response (uvicorn ``timeout_keep_alive``)
    idle_timeout: float = 15.0
    #: seconds from connecting, or from the first byte of the next request, to the end of the request head
    header_timeout: float = 10.0
    #: seconds from the end of the request head to the end of its body
    body_timeout: float = 30.0
    #: bytes of one request head (request line and headers); beyond it 431
    max_header_bytes: int = 64 * 1024
    #: requests reading a body or being processed at once; beyond it 503 + Retry-After
    max_requests: int = 100
    #: seconds asked of a sender answered 503
    retry_after: float = 1.0


class ConnectionStats:
    """What the guards did, for ``/metrics``; touched on the event loop only."""

    def __init__(self) -> None:
        self.closed: Dict[str, int] = {reason: 0 for reason in REASONS}
        self.busy = 0
        self.in_progress = 0

    def metrics_text(self) -> str:
        lines = [
            "# HELP opik_otel_http_connections_closed_total OTLP/HTTP connections the sidecar closed, by reason",
            "# TYPE opik_otel_http_connections_closed_total counter",
        ]
        lines += [f'opik_otel_http_connections_closed_total{{reason="{r}"}} {n}' for r, n in self.closed.items()]
        lines += [
            "# HELP opik_otel_http_requests_in_progress OTLP/HTTP requests reading a body or being processed",
            "# TYPE opik_otel_http_requests_in_progress gauge",
            f"opik_otel_http_requests_in_progress {self.in_progress}",
            "# HELP opik_otel_http_requests_busy_total OTLP/HTTP requests answered 503 because every request slot was taken",
            "# TYPE opik_otel_http_requests_busy_total counter",
            f"opik_otel_http_requests_busy_total {self.busy}",
        ]
        return "\n".join(lines) + "\n"


def _raw_response(status: int, reason: str, message: str) -> bytes:
    body = message.encode("ascii")
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


_HEADER_TIMEOUT = _raw_response(408, "Request Timeout", "the request head did not arrive in time\n")
_HEADER_TOO_LARGE = _raw_response(431, "Request Header Fields Too Large", "the request head is too large\n")


class _HeadClock:
    """One connection's request-head deadline and byte count (created with the protocol, started on connect)."""

    def __init__(self, limits: ConnectionLimits, stats: ConnectionStats) -> None:
        self.limits = limits
        self.stats = stats
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._transport: Optional[asyncio.Transport] = None
        self._timer: Optional[asyncio.TimerHandle] = None
        self._bytes = 0
        #: a byte of the awaited head arrived (else the deadline closes a silent connection, without a 408)
        self._spoke = False

    def opened(self, loop: asyncio.AbstractEventLoop, transport: asyncio.Transport) -> None:
        self._loop = loop
        self._transport = transport
        self._start()  # a connection that never sends a request is closed too

    def before(self, waiting_for_head: bool) -> None:
        """Bytes arrived; with no request in progress they begin a head: its deadline runs from now."""
        if waiting_for_head:
            self._start()
            self._spoke = True

    def after(self, head_done: bool, counting: bool, received: int) -> None:
        """The parser took the bytes: a complete head stops the clock; else count them (431 beyond the limit)."""
        if head_done:
            self.stop()
            return
        if counting and self._timer is not None:
            self._bytes += received
            if self._bytes > self.limits.max_header_bytes:
                self.stop()
                self._close("header_too_large", _HEADER_TOO_LARGE)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._bytes = 0
        self._spoke = False

    def _start(self) -> None:
        if self._timer is None and self._loop is not None:
            self._bytes = 0
            self._spoke = False
            self._timer = self._loop.call_later(self.limits.header_timeout, self._expired)

    def _expired(self) -> None:
        self._timer = None
        if self._spoke:
            self._close("header_timeout", _HEADER_TIMEOUT)
        else:  # never said a word: no answer a client could take for its next request's
            self._close("idle", b"")

    def _close(self, reason: str, answer: bytes) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        self.stats.closed[reason] += 1
        if answer:
            transport.write(answer)
        transport.close()


class _Guarded:
    """The request-head deadline and size limit, on top of one of uvicorn's HTTP/1.1 protocols.

    A subclass says only whether the bytes about to be read start a new request head (``_counting``)."""

    clock: _HeadClock
    cycle: Any
    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop

    def __init__(self, config: Config, server_state: ServerState, app_state: Dict[str, Any], *, clock: _HeadClock, _loop: Optional[asyncio.AbstractEventLoop] = None) -> None:
        super().__init__(config, server_state, app_state, _loop)  # type: ignore[call-arg]
        self.clock = clock

    def _counting(self, cycle: Any) -> bool:
        raise NotImplementedError

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self.clock.opened(self.loop, cast(asyncio.Transport, transport))  # uvicorn serves stream sockets

    def data_received(self, data: bytes) -> None:
        cycle = self.cycle
        waiting = cycle is None or cycle.response_complete
        # bytes after an early answer (a 401 before the body) finish the old body: timed, not counted
        counting = self._counting(cycle)
        self.clock.before(waiting)
        super().data_received(data)  # type: ignore[misc]
        if not self.transport.is_closing():
            self.clock.after(self.cycle is not cycle, counting, len(data))

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self.clock.stop()
        super().connection_lost(exc)  # type: ignore[misc]

    def timeout_keep_alive_handler(self) -> None:
        if not self.transport.is_closing():
            self.clock.stats.closed["idle"] += 1
        super().timeout_keep_alive_handler()  # type: ignore[misc]


class GuardedH11Protocol(_Guarded, H11Protocol):
    """uvicorn's h11 protocol with the request-head deadline and size limit."""

    def _counting(self, cycle: Any) -> bool:
        return (cycle is None or cycle.response_complete) and self.conn.their_state is not h11.SEND_BODY


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools is the ``fast`` extra
    HttpToolsProtocol = None  # type: ignore[assignment,misc]

if HttpToolsProtocol is not None:

    class GuardedHttpToolsProtocol(_Guarded, HttpToolsProtocol):
        """uvicorn's httptools protocol with the request-head deadline and size limit."""

        def _counting(self, cycle: Any) -> bool:
            return cycle is None or (cycle.response_complete and not cycle.more_body)


ProtocolFactory = Callable[..., asyncio.Protocol]


def protocol_factory(limits: ConnectionLimits, stats: ConnectionStats) -> ProtocolFactory:
    """What uvicorn's ``http=`` gets: the guarded httptools protocol when httptools is installed, else h11
    (the choice uvicorn's ``auto`` makes). uvicorn calls it with ``config``, ``server_state`` and ``app_state``."""
    cls: Callable[..., asyncio.Protocol] = GuardedHttpToolsProtocol if HttpToolsProtocol is not None else GuardedH11Protocol

    def make(config: Config, server_state: ServerState, app_state: Dict[str, Any], _loop: Optional[asyncio.AbstractEventLoop] = None) -> asyncio.Protocol:
        protocol: asyncio.Protocol = cls(config, server_state, app_state, clock=_HeadClock(limits, stats), _loop=_loop)
        return protocol

    return make


async def _respond(send: Send, status: int, content_type: bytes, body: bytes, extra: Optional[List[Tuple[bytes, bytes]]] = None) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    headers += extra or []
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _wants_json(scope: Scope) -> bool:
    for name, value in scope.get("headers") or ():
        if name == b"content-type":
            return value.split(b";", 1)[0].strip().lower() not in (b"application/x-protobuf", b"application/protobuf")
    return True


class _Request:
    """One OTLP/HTTP request under the guard: its slot, its body deadline, its answer."""

    def __init__(self, guard: "ConnectionGuard", scope: Scope, receive: Receive, send: Send) -> None:
        self._guard = guard
        self._scope = scope
        self._receive = receive
        self._send = send
        self._deadline = asyncio.get_running_loop().time() + guard.limits.body_timeout
        self._holds_slot = False
        self._body_done = False
        self._started = False
        #: the guard answered (503 or 408): the app is told the client left, and its answer is dropped
        self._answered = False

    async def receive(self) -> Message:
        if self._answered:
            return dict(_DISCONNECT)
        if not self._holds_slot and not self._body_done:
            if not self._guard.take_slot():
                await self._busy()
                return dict(_DISCONNECT)
            self._holds_slot = True
        if self._body_done:
            return await self._receive()
        remaining = self._deadline - asyncio.get_running_loop().time()
        try:
            if remaining <= 0:
                raise asyncio.TimeoutError
            message = await asyncio.wait_for(self._receive(), remaining)
        except asyncio.TimeoutError:
            await self._body_timeout()
            return dict(_DISCONNECT)
        if message.get("type") != "http.request" or not message.get("more_body", False):
            self._body_done = True
        return message

    async def send(self, message: Message) -> None:
        if self._answered:
            return
        self._started = True
        await self._send(message)

    def release(self) -> None:
        if self._holds_slot:
            self._holds_slot = False
            self._guard.free_slot()

    async def _busy(self) -> None:
        guard = self._guard
        guard.stats.busy += 1
        self._answered = True
        retry = guard.limits.retry_after
        message = f"the sidecar is processing {guard.limits.max_requests} requests already (OPIK_OTEL_MAX_CONNECTIONS); retry later"
        as_json = _wants_json(self._scope)
        body = status_json(GRPC_UNAVAILABLE, message, retry) if as_json else status_pb(GRPC_UNAVAILABLE, message, retry)
        content_type = b"application/json" if as_json else b"application/x-protobuf"
        await _respond(self._send, 503, content_type, body, [(b"retry-after", str(max(1, int(round(retry)))).encode())])

    async def _body_timeout(self) -> None:
        guard = self._guard
        guard.stats.closed["body_timeout"] += 1
        self._answered = True
        if self._started:  # the app answered early and still reads: only the close is left (uvicorn closes)
            return
        message = f"the request body did not arrive within {guard.limits.body_timeout:g} s (OPIK_OTEL_BODY_TIMEOUT)"
        as_json = _wants_json(self._scope)
        body = status_json(GRPC_DEADLINE_EXCEEDED, message) if as_json else status_pb(GRPC_DEADLINE_EXCEEDED, message)
        content_type = b"application/json" if as_json else b"application/x-protobuf"
        await _respond(self._send, 408, content_type, body, [(b"connection", b"close")])


class ConnectionGuard:
    """The ASGI app uvicorn serves: liveness first, then ``app`` with bounded slots and a body deadline."""

    #: answered by the receiver app without reading a body: no slot, no deadline
    PASSTHROUGH = ("/readyz", "/metrics")

    def __init__(self, app: App, limits: ConnectionLimits, stats: Optional[ConnectionStats] = None) -> None:
        self.app = app
        self.limits = limits
        self.stats = stats or ConnectionStats()

    def take_slot(self) -> bool:
        if self.stats.in_progress >= self.limits.max_requests:
            return False
        self.stats.in_progress += 1
        return True

    def free_slot(self) -> None:
        self.stats.in_progress -= 1

    def full(self) -> bool:
        return self.stats.in_progress >= self.limits.max_requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if path == "/healthz":
            await self._liveness(scope, send)
            return
        if path in self.PASSTHROUGH:
            if path == "/readyz" and self.full() and scope["method"] in ("GET", "HEAD"):
                why = f"not ready: {self.limits.max_requests} requests in progress, the limit (OPIK_OTEL_MAX_CONNECTIONS)\n"
                await _respond(send, 503, _TEXT, why.encode())
                return
            await self.app(scope, receive, send)
            return
        request = _Request(self, scope, receive, send)
        try:
            await self.app(scope, request.receive, request.send)
        finally:
            request.release()

    @staticmethod
    async def _liveness(scope: Scope, send: Send) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            await _respond(send, 405, _TEXT, b"use GET\n", [(b"allow", b"GET, HEAD")])
            return
        await _respond(send, 200, _TEXT, b"ok\n")


__all__ = ["ConnectionGuard", "ConnectionLimits", "ConnectionStats", "protocol_factory", "REASONS"]
