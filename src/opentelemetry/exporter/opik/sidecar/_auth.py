"""The one bearer-token check of both receivers (HTTP ``Authorization`` header, gRPC metadata)."""

from __future__ import annotations

from typing import Optional, Union

from ._tls import Tokens

UNAUTHENTICATED_MESSAGE = "missing or wrong bearer token: send 'Authorization: Bearer <token>'"


def bearer_ok(header: Union[bytes, str, None], tokens: Optional[Tokens]) -> bool:
    """``Authorization: Bearer <token>`` against every accepted token, in constant time; no tokens: True."""
    if tokens is None:
        return True
    if not header:
        return False
    raw = header.encode("utf-8", "replace") if isinstance(header, str) else header
    scheme, _, given = raw.strip().partition(b" ")
    if scheme.lower() != b"bearer":
        return False
    return tokens.accepts(given.strip())


__all__ = ["UNAUTHENTICATED_MESSAGE", "bearer_ok"]
