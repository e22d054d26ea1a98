"""The gRPC side of the connection guards: the bearer token first, a bounded number of calls in
progress answered with a retry delay, and a deadline for the request message (``--body-timeout``).

grpcio counts an RPC against ``maximum_concurrent_rpcs`` from its headers on, answers the call
beyond it ``RESOURCE_EXHAUSTED`` without a ``RetryInfo`` (which the Collector does not retry), and
calls a unary handler only once the whole message has arrived. So an RPC whose message never came
held its slot until the connection's maximum age, and with ``--max-connections`` of them every real
export was refused. :class:`CallGuard`, a server interceptor, serves each unary method as a
client-streaming one (the same bytes on the wire) and, before the message is read:

- refuses a call without the sidecar's bearer token ``UNAUTHENTICATED`` (the one check of ``_auth``);
- gives it one of ``max_calls`` slots, or answers ``UNAVAILABLE`` with a ``RetryInfo`` of
  ``retry_after`` (as ``google.rpc.retryinfo-bin`` and in ``grpc-status-details-bin``, like the
  receiver's own retry answers); grpcio's own limit stays as a backstop above it;
- reads the message within ``seconds``, else ``DEADLINE_EXCEEDED``, and the slot is free.

Then the receiver's handler runs unchanged.
"""

from __future__ import annotations

import asyncio
from typing import AsyncIterator, Awaitable, Callable, Optional, Union

import grpc
from grpc import aio

from ._auth import UNAUTHENTICATED_MESSAGE, bearer_ok
from ._tls import Tokens, as_tokens
from ._wire import GRPC_UNAVAILABLE, retry_info, status_pb

UnaryBehaviour = Callable[[bytes, aio.ServicerContext], Awaitable[bytes]]
StreamBehaviour = Callable[[AsyncIterator[bytes], aio.ServicerContext], Awaitable[bytes]]
#: the receiver's response counter: (protocol, status, seconds)
CountResponse = Callable[[str, str, float], None]
#: grpcio's own ``maximum_concurrent_rpcs``, as a multiple of ``max_calls``: calls beyond the guard's
#: slots are answered at once, so they pass grpcio's limit only briefly
BACKSTOP_FACTOR = 4


class CallGuard(aio.ServerInterceptor):  # type: ignore[misc]
    """Token check, ``max_calls`` slots and a ``seconds`` message deadline for every unary RPC."""

    def __init__(
        self,
        seconds: float,
        max_calls: int,
        retry_after: float,
        auth_token: Union[str, Tokens, None] = None,
        count: Optional[CountResponse] = None,
    ) -> None:
        self.seconds = seconds
        self.max_calls = max_calls
        self.retry_after = retry_after
        self.tokens = as_tokens(auth_token)  # a token file's set is replaced in place on a reload
        self._count = count
        self.in_progress = 0
        #: calls answered DEADLINE_EXCEEDED because their message did not arrive in time
        self.expired = 0
        #: calls answered UNAVAILABLE because every slot was taken
        self.busy = 0

    @property
    def backstop(self) -> int:
        """What grpcio's own ``maximum_concurrent_rpcs`` is set to."""
        return BACKSTOP_FACTOR * self.max_calls

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Optional[grpc.RpcMethodHandler]]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Optional[grpc.RpcMethodHandler]:
        handler = await continuation(handler_call_details)
        if handler is None or handler.request_streaming or handler.response_streaming or handler.unary_unary is None:
            return handler
        metadata = {k: v for k, v in (handler_call_details.invocation_metadata or ()) if isinstance(v, str)}
        behaviour = self._guarded(handler.unary_unary) if bearer_ok(metadata.get("authorization"), self.tokens) else self._refuse
        return grpc.stream_unary_rpc_method_handler(
            behaviour,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    async def _refuse(self, requests: AsyncIterator[bytes], context: aio.ServicerContext) -> bytes:
        self._counted("UNAUTHENTICATED")
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, UNAUTHENTICATED_MESSAGE)
        raise AssertionError("unreachable")  # pragma: no cover - abort raises

    def _guarded(self, behaviour: UnaryBehaviour) -> StreamBehaviour:
        async def slot_then_read_then_call(requests: AsyncIterator[bytes], context: aio.ServicerContext) -> bytes:
            if self.in_progress >= self.max_calls:
                await self._busy(context)
            self.in_progress += 1
            try:
                request = await self._read(requests, context)
                return await behaviour(request, context)
            finally:
                self.in_progress -= 1

        return slot_then_read_then_call

    async def _read(self, requests: AsyncIterator[bytes], context: aio.ServicerContext) -> bytes:
        try:
            return await asyncio.wait_for(requests.__anext__(), self.seconds)
        except asyncio.TimeoutError:
            self.expired += 1
            self._counted("DEADLINE_EXCEEDED")
            await context.abort(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                f"the request message did not arrive within {self.seconds:g} s (OPIK_OTEL_BODY_TIMEOUT)",
            )
        except StopAsyncIteration:
            self._counted("INVALID_ARGUMENT")
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the call ended without a request message")
        raise AssertionError("unreachable")  # pragma: no cover - abort raises

    async def _busy(self, context: aio.ServicerContext) -> None:
        self.busy += 1
        self._counted("UNAVAILABLE")
        message = f"the sidecar is processing {self.max_calls} calls already (OPIK_OTEL_MAX_CONNECTIONS); retry later"
        await context.abort(
            grpc.StatusCode.UNAVAILABLE,
            message,
            trailing_metadata=(
                ("google.rpc.retryinfo-bin", retry_info(self.retry_after)),
                ("grpc-status-details-bin", status_pb(GRPC_UNAVAILABLE, message, self.retry_after)),
            ),
        )

    def _counted(self, status: str) -> None:
        if self._count is not None:
            self._count("grpc", status, 0.0)

    def metrics_text(self) -> str:
        return (
            "# HELP opik_otel_grpc_messages_expired_total OTLP/gRPC calls answered DEADLINE_EXCEEDED: the request "
            "message did not arrive within the body timeout\n"
            "# TYPE opik_otel_grpc_messages_expired_total counter\n"
            f"opik_otel_grpc_messages_expired_total {self.expired}\n"
            "# HELP opik_otel_grpc_calls_busy_total OTLP/gRPC calls answered UNAVAILABLE with a retry delay because "
            "every call slot was taken\n"
            "# TYPE opik_otel_grpc_calls_busy_total counter\n"
            f"opik_otel_grpc_calls_busy_total {self.busy}\n"
            "# HELP opik_otel_grpc_calls_in_progress OTLP/gRPC calls holding a slot (reading or being processed)\n"
            "# TYPE opik_otel_grpc_calls_in_progress gauge\n"
            f"opik_otel_grpc_calls_in_progress {self.in_progress}\n"
        )


__all__ = ["BACKSTOP_FACTOR", "CallGuard"]
