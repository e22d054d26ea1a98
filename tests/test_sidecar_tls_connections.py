"""Connection hygiene over TLS: the handshake, slow heads, endless bodies and idle keep-alives are bounded.

``test_sidecar_connections.py`` checks these in plain text with raw sockets and reader/writer threads, so it
is not in the TLS pass (one ``SSLSocket`` must not be read and written by two threads at once). Here the
hostile clients are TLS sockets driven from one thread (``select`` tells when the sidecar answered).

Found by running the connection tests against a TLS sidecar: asyncio gives a TLS handshake 60 s and uvicorn
sets no bound of its own, so a client that connected and never sent (or never finished) its ClientHello held
its socket for a minute, while ``--header-timeout`` and ``--idle-timeout`` only start after the handshake.
"""

from __future__ import annotations

import select
import socket
import time
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


def _trickle_until_answered(sock: socket.socket, pieces: List[bytes], every: float, limit: float) -> Optional[bytes]:
    """Send one piece every ``every`` s, from this thread only, until the sidecar answers; then read to the close.

    The socket may turn readable with TLS records that carry no data (TLS 1.3 session tickets): a short read
    that times out means no answer yet."""
    end = time.monotonic() + limit
    for piece in pieces:
        readable, _, _ = select.select([sock], [], [], every)
        if readable:
            sock.settimeout(0.05)
            try:
                first = sock.recv(65536)
            except socket.timeout:
                first = None  # a ticket, not an answer
            except ConnectionResetError:
                return b""
            if first is not None:
                rest = _closed_within(sock, 10) if first else b""
                return first + (rest or b"")
        if time.monotonic() > end:
            break
        try:
            sock.send(piece)
        except OSError:
            break
    return _closed_within(sock, 10)


def test_slow_heads_endless_bodies_and_idle_keep_alives_over_tls(opik: OpikStandin, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(var, raising=False)
    tls = SidecarTls.make(tmp_path)
    args = ("--header-timeout", "1.5", "--body-timeout", "2", "--idle-timeout", "1")
    with SidecarProcess(opik.url, *args, grpc=False, tls=tls) as sidecar:
        # slowloris over TLS: a byte every 0.2 s, the head never completes in time
        head = b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200
        answer = _trickle_until_answered(sidecar.connect(), [bytes([b]) for b in head], 0.2, 10)
        assert answer is not None and answer.startswith(b"HTTP/1.1 408 "), answer

        # a chunked body that never ends: a chunk every 0.3 s until the body timeout cuts it off
        endless = sidecar.connect()
        endless.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                        b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        answer = _trickle_until_answered(endless, [b"1\r\nx\r\n"] * 100, 0.3, 15)
        assert answer is not None and answer.startswith(b"HTTP/1.1 408 ") and b"OPIK_OTEL_BODY_TIMEOUT" in answer, answer

        # a kept-alive connection silent after its 200 is closed by the idle timeout
        kept = sidecar.connect()
        kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = _closed_within(kept, 10)
        assert answer is not None and answer.startswith(b"HTTP/1.1 200 "), answer

        # and none of it kept a real export out
        exporter = sidecar.otlp_http_exporter(timeout=10)
        assert exporter.export(_span("after-the-hostile-tls-clients")) is SpanExportResult.SUCCESS
        exporter.shutdown()
        wait_until(lambda: any(r["name"] == "after-the-hostile-tls-clients" for r in opik.spans.values()), 15,
                   "the good span stored")
        closed = 'opik_otel_http_connections_closed_total{reason="%s"}'
        text = sidecar.http_client(timeout=10).get(sidecar.url + "/metrics").text
        samples = {line.split()[0]: float(line.split()[1]) for line in text.splitlines()
                   if line.startswith("opik_otel_http_connections_closed_total")}
        assert samples.get(closed % "header_timeout") == 1, samples
        assert samples.get(closed % "body_timeout") == 1, samples
        assert samples.get(closed % "idle", 0) >= 1, samples


def test_grpc_messages_that_never_arrive_over_tls_are_cut_off_and_free_their_slots(opik: OpikStandin,
                                                                                   tmp_path: Path) -> None:
    """As in plain text: 3 calls that send headers and never a message, against --max-connections 3, end
    DEADLINE_EXCEEDED after the body timeout, and a real export over TLS then succeeds."""
    import threading

    import grpc

    export = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
    tls = SidecarTls.make(tmp_path)
    with SidecarProcess(opik.url, "--max-connections", "3", "--body-timeout", "2", tls=tls) as sidecar:
        release = threading.Event()

        def nothing() -> Iterator[bytes]:  # headers are sent, the message never is
            release.wait(30)
            return
            yield b""  # pragma: no cover - makes this a generator

        channels = [sidecar.grpc_channel() for _ in range(3)]
        try:
            calls = [
                ch.stream_unary(export, request_serializer=None, response_deserializer=None).future(nothing(), timeout=30)
                for ch in channels
            ]
            for call in calls:
                with pytest.raises(grpc.RpcError) as err:
                    call.result(timeout=20)
                assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
                assert "OPIK_OTEL_BODY_TIMEOUT" in (err.value.details() or "")
            exporter = sidecar.otlp_grpc_exporter(timeout=10)
            assert exporter.export(_span("after-stalled-grpc-over-tls")) is SpanExportResult.SUCCESS
            exporter.shutdown()
        finally:
            release.set()
            for ch in channels:
                ch.close()
        wait_until(lambda: any(r["name"] == "after-stalled-grpc-over-tls" for r in opik.spans.values()), 15,
                   "the span stored")
        assert sidecar.metric("opik_otel_grpc_messages_expired_total") == 3
