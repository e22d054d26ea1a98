"""OTLP/gRPC receiver: ``TraceService/Export`` (and the logs and metrics services) on grpcio's asyncio server.

The methods take the raw request bytes (no deserializer) so the sidecar's own decoder parses them
once, with the same per-span isolation as OTLP/HTTP: every RPC goes to :meth:`Receiver.handle` on the
one worker thread, like an HTTP request. Backpressure is RESOURCE_EXHAUSTED carrying a ``RetryInfo``
both as the ``grpc-status-details-bin`` status detail (the OTLP spec's way, used by the Collector)
and as ``google.rpc.retryinfo-bin`` trailing metadata (what the Python OTLP exporter reads): OTLP
clients retry it only because of that delay. What can never be accepted (a message over
``--max-body-bytes``, too many spans) is INVALID_ARGUMENT, never retried.
"""

from __future__ import annotations

import functools
import time
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import grpc
from grpc import aio

from ._auth import bearer_ok
from ._http import Runner
from ._inflight import BUSY_MESSAGE
from ._outcome import LOGS, METRICS, OK, TOO_LARGE, TRACES, UNAVAILABLE, Outcome
from ._receiver import Receiver
from ._sinks import Credentials
from ._tls import Tokens, as_tokens
from ._wire import RPC_CODE, retry_info, status_pb, success_body

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
LOGS_SERVICE = "opentelemetry.proto.collector.logs.v1.LogsService"  # joined to spans
METRICS_SERVICE = "opentelemetry.proto.collector.metrics.v1.MetricsService"  # accepted and discarded
PROTOBUF = "application/x-protobuf"
#: grpcio itself refuses a message beyond this many times --max-body-bytes (RESOURCE_EXHAUSTED, which
#: clients retry); up to it the receiver reads the message and answers INVALID_ARGUMENT (never retried)
RECEIVE_FACTOR = 2

_STATUS = {code.value[0]: code for code in grpc.StatusCode}


class OtlpGrpcService:
    def __init__(self, receiver: Receiver, work: Runner, auth_token: Union[str, Tokens, None] = None) -> None:
        self.receiver = receiver
        self.work = work
        self.token = as_tokens(auth_token)  # a token file's set is replaced in place on a reload

    def handler(self) -> grpc.GenericRpcHandler:
        method = grpc.unary_unary_rpc_method_handler(functools.partial(self._export, signal=TRACES))  # raw bytes in and out
        return grpc.method_handlers_generic_handler(SERVICE, {"Export": method})

    def other_handlers(self) -> Tuple[grpc.GenericRpcHandler, ...]:
        logs = grpc.unary_unary_rpc_method_handler(functools.partial(self._export, signal=LOGS))
        metrics = grpc.unary_unary_rpc_method_handler(functools.partial(self._export, signal=METRICS))
        return (
            grpc.method_handlers_generic_handler(LOGS_SERVICE, {"Export": logs}),
            grpc.method_handlers_generic_handler(METRICS_SERVICE, {"Export": metrics}),
        )

    async def _export(self, request: bytes, context: aio.ServicerContext, signal: str) -> bytes:
        t0 = time.perf_counter()
        metadata: Dict[str, str] = {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
        if not bearer_ok(metadata.get("authorization"), self.token):
            self.receiver.count_response("grpc", "UNAUTHENTICATED", time.perf_counter() - t0)
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token: send 'authorization: Bearer <token>'")
        outcome = await self._handle(request, metadata, signal)
        if outcome.code == OK:
            self.receiver.count_response("grpc", "OK", time.perf_counter() - t0)
            return success_body(outcome, as_json=False)
        code = _STATUS[RPC_CODE[outcome.code]]
        self.receiver.count_response("grpc", code.name, time.perf_counter() - t0)
        trailing: Tuple[Tuple[str, Any], ...] = ()
        if outcome.retry_after > 0:
            trailing = (
                ("google.rpc.retryinfo-bin", retry_info(outcome.retry_after)),
                ("grpc-status-details-bin", status_pb(code.value[0], outcome.message, outcome.retry_after)),
            )
        await context.abort(code, outcome.message, trailing_metadata=trailing)
        raise AssertionError("unreachable")  # pragma: no cover - abort raises

    async def _handle(self, request: bytes, metadata: Dict[str, str], signal: str) -> Outcome:
        """The message's outcome: over the size limit or the held-bytes budget at once, else from the worker."""
        limit = self.receiver.limits.max_body_bytes
        if len(request) > limit:
            return Outcome(TOO_LARGE, f"the message is larger than {limit} bytes (--max-body-bytes); send smaller batches", signal=signal)
        budget = self.receiver.inflight
        if not budget.admits(len(request)):
            return Outcome(UNAVAILABLE, BUSY_MESSAGE, retry_after=self.receiver.retry_after, signal=signal)
        budget.take(len(request))
        try:
            outcome: Outcome = await self.work(
                functools.partial(
                    self.receiver.handle,
                    request,
                    "",
                    PROTOBUF,
                    metadata.get("projectname"),
                    signal=signal,
                    credentials=self._credentials(metadata),
                    received_at=time.monotonic(),
                )
            )
        finally:
            budget.release(len(request))
        return outcome

    def _credentials(self, metadata: Dict[str, str]) -> Optional[Credentials]:
        """With ``--pass-credentials``: the Opik key (``authorization``) and ``comet-workspace`` metadata."""
        if not self.receiver.pass_credentials:
            return None
        key = metadata.get("authorization") if self.token is None else None  # else it holds the bearer token
        return Credentials.from_headers(key, metadata.get("comet-workspace"))


async def start_grpc(
    receiver: Receiver,
    work: Runner,
    host: str,
    port: int,
    auth_token: Union[str, Tokens, None],
    max_concurrent: int,
    credentials: Any = None,
    connection_options: Sequence[Tuple[str, Any]] = (),
    interceptors: Sequence[aio.ServerInterceptor] = (),
) -> Tuple[aio.Server, int]:
    """Start the gRPC server (TLS with ``credentials``); returns it and the port it bound (useful with port 0)."""
    limit = receiver.limits.max_body_bytes
    server = aio.server(
        options=[
            ("grpc.max_receive_message_length", RECEIVE_FACTOR * limit),
            ("grpc.max_send_message_length", 4 * 1024 * 1024),
            ("grpc.so_reuseport", 0),
            *connection_options,  # timeouts and keepalive (sidecar/_server.py grpc_connection_options)
        ],
        maximum_concurrent_rpcs=max_concurrent,
        interceptors=list(interceptors),  # the call guard (sidecar/_grpc_guard.py)
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
