"""A deadline for a gRPC request message to arrive: the gRPC side of ``--body-timeout``.

grpcio counts an RPC against ``maximum_concurrent_rpcs`` from its headers on, and a unary handler is
only called once the whole message has arrived; an RPC whose message never comes (headers, then
nothing, or a message trickled in) held its slot until the connection's maximum age: with
``--max-connections`` of them every real export was answered RESOURCE_EXHAUSTED. This interceptor
serves each unary method as a client-streaming one (the same bytes on the wire) so the message is
read here, within ``seconds``; a message not complete by then is answered DEADLINE_EXCEEDED, its slot
freed. A call without the sidecar's bearer token is refused UNAUTHENTICATED before its message is
read (the one check of ``_auth``), so it holds its slot no longer than that. Everything else (the
handler, its serializers) is unchanged.
"""

from __future__ import annotations

import asyncio
from typing import AsyncIterator, Awaitable, Callable, Optional, Union

import grpc
from grpc import aio

from ._auth import UNAUTHENTICATED_MESSAGE, bearer_ok
from ._tls import Tokens, as_tokens

UnaryBehaviour = Callable[[bytes, aio.ServicerContext], Awaitable[bytes]]
StreamBehaviour = Callable[[AsyncIterator[bytes], aio.ServicerContext], Awaitable[bytes]]
#: the receiver's response counter: (protocol, status, seconds)
CountResponse = Callable[[str, str, float], None]


class MessageDeadline(aio.ServerInterceptor):  # type: ignore[misc]
    """Read a unary RPC's one request message within ``seconds`` (``OPIK_OTEL_BODY_TIMEOUT``)."""

    def __init__(self, seconds: float, auth_token: Union[str, Tokens, None] = None, count: Optional[CountResponse] = None) -> None:
        self.seconds = seconds
        self.tokens = as_tokens(auth_token)  # a token file's set is replaced in place on a reload
        self._count = count
        #: RPCs answered DEADLINE_EXCEEDED because their message did not arrive in time
        self.expired = 0

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Optional[grpc.RpcMethodHandler]]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Optional[grpc.RpcMethodHandler]:
        handler = await continuation(handler_call_details)
        if handler is None or handler.request_streaming or handler.response_streaming or handler.unary_unary is None:
            return handler
        metadata = {k: v for k, v in (handler_call_details.invocation_metadata or ()) if isinstance(v, str)}
        behaviour = (
            self._within_deadline(handler.unary_unary)
            if bearer_ok(metadata.get("authorization"), self.tokens)
            else self._refuse
        )
        return grpc.stream_unary_rpc_method_handler(
            behaviour,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    async def _refuse(self, requests: AsyncIterator[bytes], context: aio.ServicerContext) -> bytes:
        if self._count is not None:
            self._count("grpc", "UNAUTHENTICATED", 0.0)
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, UNAUTHENTICATED_MESSAGE)
        raise AssertionError("unreachable")  # pragma: no cover - abort raises

    def _within_deadline(self, behaviour: UnaryBehaviour) -> StreamBehaviour:
        async def read_then_call(requests: AsyncIterator[bytes], context: aio.ServicerContext) -> bytes:
            try:
                request = await asyncio.wait_for(requests.__anext__(), self.seconds)
            except asyncio.TimeoutError:
                self.expired += 1
                await context.abort(
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                    f"the request message did not arrive within {self.seconds:g} s (OPIK_OTEL_BODY_TIMEOUT)",
                )
                raise AssertionError("unreachable") from None  # pragma: no cover - abort raises
            except StopAsyncIteration:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the call ended without a request message")
                raise AssertionError("unreachable") from None  # pragma: no cover - abort raises
            return await behaviour(request, context)

        return read_then_call

    def metrics_text(self) -> str:
        return (
            "# HELP opik_otel_grpc_messages_expired_total OTLP/gRPC calls answered DEADLINE_EXCEEDED: the request "
            "message did not arrive within the body timeout\n"
            "# TYPE opik_otel_grpc_messages_expired_total counter\n"
            f"opik_otel_grpc_messages_expired_total {self.expired}\n"
        )


__all__ = ["MessageDeadline"]
