"""A TLS sidecar bounds the handshake by the header timeout, as gRPC does and as plain text bounds a silent socket.

Found by running the connection tests against a TLS sidecar: asyncio gives a TLS handshake 60 s and uvicorn
sets no bound of its own, so a client that connected and never sent (or never finished) its ClientHello held
its socket for a minute, while ``--header-timeout`` and ``--idle-timeout`` only start after the handshake.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any, Iterator, List, Optional

import pytest
from opentelemetry.sdk.trace.export import SpanExportResult
from opik_standin import OpikStandin
from sidecar_helpers import SidecarProcess, SidecarTls, make_spans, wait_until

#: a TLS record header announcing a ClientHello of 512 bytes, then nothing: a handshake that never ends
PARTIAL_HELLO = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"


@pytest.fixture
def tls_sidecar(opik: OpikStandin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SidecarProcess]:
    for var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):  # they override certificate_file; a user's shell has neither
        monkeypatch.delenv(var, raising=False)
    tls = SidecarTls.make(tmp_path)
    with SidecarProcess(opik.url, "--header-timeout", "1.5", "--idle-timeout", "2", grpc=False, tls=tls) as sc:
        yield sc


def _closed_within(sock: socket.socket, timeout: float) -> Optional[bytes]:
    """What the peer sent before closing the socket; None if it is still open after ``timeout``."""
    sock.settimeout(timeout)
    got = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return got
            got += chunk
    except socket.timeout:
        return None
    except ConnectionResetError:
        return got


def _span(name: str) -> List[Any]:
    def build(tracer: Any) -> None:
        with tracer.start_as_current_span(name):
            pass

    return make_spans(build)


def test_a_handshake_that_never_starts_or_never_ends_is_closed_by_the_header_timeout(
    tls_sidecar: SidecarProcess, opik: OpikStandin
) -> None:
    silent = [tls_sidecar.connect(handshake=False) for _ in range(20)]
    stalled = [tls_sidecar.connect(handshake=False) for _ in range(5)]
    for sock in stalled:
        sock.sendall(PARTIAL_HELLO)
    try:
        exporter = tls_sidecar.otlp_http_exporter(timeout=10)
        assert exporter.export(_span("past-the-stalled-handshakes")) is SpanExportResult.SUCCESS
        exporter.shutdown()
        wait_until(lambda: any(r["name"] == "past-the-stalled-handshakes" for r in opik.spans.values()), 15,
                   "the good span stored")
        # the header timeout is 1.5 s; asyncio's own default would keep them 60 s
        for sock in silent + stalled:
            assert _closed_within(sock, 20) is not None, "a socket without a finished handshake was kept open"
    finally:
        for sock in silent + stalled:
            sock.close()
    assert tls_sidecar.alive()
    with tls_sidecar.http_client(timeout=10) as client:
        assert client.get(tls_sidecar.url + "/healthz").status_code == 200
