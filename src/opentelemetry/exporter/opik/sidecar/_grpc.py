"""OTLP/gRPC receiver: ``TraceService/Export`` on grpcio's asyncio server (the ``grpc`` extra).

The method takes the raw request bytes (no deserializer) so the sidecar's own
decoder parses them once, with the same per-span isolation as OTLP/HTTP.
Backpressure is RESOURCE_EXHAUSTED carrying a ``RetryInfo`` both as the
``grpc-status-details-bin`` status detail (the OTLP spec's way, used by the
Collector) and as ``google.rpc.retryinfo-bin`` trailing metadata (what the
Python OTLP exporter reads).
"""

from __future__ import annotations

import time
from typing import Any, Optional, Tuple, Union

import grpc
from grpc import aio

from .._otlp_logs import logs_response, metrics_response
from . import _core
from ._core import Outcome, Receiver
from ._http import Runner, bearer_ok
from ._tls import Tokens, as_tokens
from ._wire import export_response, retry_info, status_pb

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
LOGS_SERVICE = "opentelemetry.proto.collector.logs.v1.LogsService"  # joined to spans
METRICS_SERVICE = "opentelemetry.proto.collector.metrics.v1.MetricsService"  # accepted and discarded

_CODES = {
    _core.INVALID: grpc.StatusCode.INVALID_ARGUMENT,
    _core.TOO_LARGE: grpc.StatusCode.INVALID_ARGUMENT,  # never RESOURCE_EXHAUSTED: clients would retry it
    _core.BUSY: grpc.StatusCode.RESOURCE_EXHAUSTED,
    _core.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
}


class OtlpGrpcService:
    def __init__(self, receiver: Receiver, work: Runner, auth_token: Union[str, Tokens, None] = None) -> None:
        self.receiver = receiver
        self.work = work
        self.token = as_tokens(auth_token)  # a token file's set is replaced in place on a reload

    def handler(self) -> grpc.GenericRpcHandler:
        method = grpc.unary_unary_rpc_method_handler(self.export)  # raw bytes in and out
        return grpc.method_handlers_generic_handler(SERVICE, {"Export": method})

    def other_handlers(self) -> Tuple[grpc.GenericRpcHandler, ...]:
        logs = grpc.unary_unary_rpc_method_handler(self.export_logs)
        metrics = grpc.unary_unary_rpc_method_handler(self.export_metrics)
        return (
            grpc.method_handlers_generic_handler(LOGS_SERVICE, {"Export": logs}),
            grpc.method_handlers_generic_handler(METRICS_SERVICE, {"Export": metrics}),
        )

    async def export_logs(self, request: bytes, context: aio.ServicerContext) -> bytes:
        return await self._other(request, context, True)

    async def export_metrics(self, request: bytes, context: aio.ServicerContext) -> bytes:
        return await self._other(request, context, False)

    async def _other(self, request: bytes, context: aio.ServicerContext, logs: bool) -> bytes:
        t0 = time.perf_counter()
        metadata = {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
        if self.token is not None:
            if not bearer_ok(metadata.get("authorization", "").encode("utf-8"), self.token):
                self.receiver.count_response("grpc", "UNAUTHENTICATED", time.perf_counter() - t0)
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token: send 'authorization: Bearer <token>'")
        outcome = await self.work(self.receiver.other_signal, logs, request, False)
        if outcome.code == _core.OK:
            self.receiver.count_response("grpc", "OK", time.perf_counter() - t0)
            return logs_response(outcome.rejected, outcome.message, as_json=False) if logs else metrics_response(False)
        code = _CODES[outcome.code]
        self.receiver.count_response("grpc", code.name, time.perf_counter() - t0)
        trailing: Tuple[Tuple[str, Any], ...] = ()
        if outcome.retry_after > 0:
            trailing = (
                ("google.rpc.retryinfo-bin", retry_info(outcome.retry_after)),
                ("grpc-status-details-bin", status_pb(code.value[0], outcome.message, outcome.retry_after)),
            )
        await context.abort(code, outcome.message, trailing_metadata=trailing)
        raise AssertionError("unreachable")  # pragma: no cover - abort raises

    async def export(self, request: bytes, context: aio.ServicerContext) -> bytes:
        t0 = time.perf_counter()
        metadata = {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
        if self.token is not None:
            if not bearer_ok(metadata.get("authorization", "").encode("utf-8"), self.token):
                self.receiver.count_response("grpc", "UNAUTHENTICATED", time.perf_counter() - t0)
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token: send 'authorization: Bearer <token>'")
        project = metadata.get("projectname")
        outcome, payload = await self.work(self._process, request, project)
        if outcome.code == _core.OK:
            self.receiver.count_response("grpc", "OK", time.perf_counter() - t0)
            return payload
        code = _CODES[outcome.code]
        self.receiver.count_response("grpc", code.name, time.perf_counter() - t0)
        trailing: Tuple[Tuple[str, Any], ...] = ()
        if outcome.retry_after > 0:
            trailing = (
                ("google.rpc.retryinfo-bin", retry_info(outcome.retry_after)),
                ("grpc-status-details-bin", status_pb(code.value[0], outcome.message, outcome.retry_after)),
            )
        await context.abort(code, outcome.message, trailing_metadata=trailing)
        raise AssertionError("unreachable")  # pragma: no cover - abort raises

    def _process(self, request: bytes, project: Optional[str]) -> Tuple[Outcome, bytes]:
        decoded = self.receiver.decode(request, is_json=False)
        outcome = decoded if isinstance(decoded, Outcome) else self.receiver.export(decoded, project)
        payload = export_response(outcome.rejected, outcome.message, as_json=False) if outcome.code == _core.OK else b""
        return outcome, payload


async def start_grpc(
    receiver: Receiver,
    work: Runner,
    host: str,
    port: int,
    auth_token: Union[str, Tokens, None],
    max_concurrent: int,
    credentials: Any = None,
) -> Tuple[aio.Server, int]:
    """Start the gRPC server (TLS with ``credentials``); returns it and the port it bound (useful with port 0)."""
    limit = receiver.limits.max_body_bytes
    server = aio.server(
        options=[
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", 4 * 1024 * 1024),
            ("grpc.so_reuseport", 0),
        ],
        maximum_concurrent_rpcs=max_concurrent,
    )
    service = OtlpGrpcService(receiver, work, auth_token)
    server.add_generic_rpc_handlers((service.handler(), *service.other_handlers()))
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        # TLS (and mTLS) by grpcio's own credentials; the dynamic ones ask the reloader for new material
        bound = server.add_secure_port(address, credentials) if credentials is not None else server.add_insecure_port(address)
    except RuntimeError as exc:
        raise OSError(f"cannot listen for OTLP/gRPC on {address}: {exc}") from None
    if not bound:
        raise OSError(f"cannot listen for OTLP/gRPC on {address} (is the port in use?)")
    await server.start()
    return server, bound
