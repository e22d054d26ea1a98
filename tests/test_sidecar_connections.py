"""Connection hygiene of ``opik-otel serve``: idle sockets, slow heads and bodies that never end are
closed by their timeouts, and none of them keeps a real export, ``/healthz`` or ``/readyz`` waiting.

Real sidecar processes, raw sockets as the hostile clients, the official OTLP exporters as the good
ones. The timeouts are set small (seconds) so the tests stay short; docs/cli.md has the defaults.
"""

from __future__ import annotations

import os
import resource
import socket
import sys
import threading
import time
from typing import Any, Iterator, List, Optional

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.trace.export import SpanExportResult
from opik_standin import OpikStandin
from sidecar_helpers import SidecarProcess, clean_env, make_spans, protobuf_body, wait_until

IDLE_SOCKETS = 500
ENDLESS_BODIES = 50
CHUNKED_HEAD = (
    b"POST /v1/traces HTTP/1.1\r\nHost: sidecar\r\nContent-Type: application/x-protobuf\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)


@pytest.fixture(autouse=True)
def _enough_files() -> None:
    """The test process holds the hostile sockets too: raise its soft open-files limit like the sidecar does."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 4 * (IDLE_SOCKETS + ENDLESS_BODIES)
    if soft < need:
        target = need if hard == resource.RLIM_INFINITY else min(hard, max(need, soft))
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < IDLE_SOCKETS + ENDLESS_BODIES + 100:
        pytest.skip(f"the hard open-files limit ({hard}) is too low for {IDLE_SOCKETS + ENDLESS_BODIES} sockets")


#: uvicorn's HTTP/1.1 parser: httptools with the ``fast`` extra, else h11 (the default install)
PARSERS = ("httptools", "h11")
_WITHOUT_HTTPTOOLS = (
    "import sys; sys.modules['httptools'] = None; "  # an install without the fast extra: importing it fails
    "from opentelemetry.exporter.opik._cli import main; sys.exit(main())"
)


def _sidecar(opik: OpikStandin, parser: str, *args: str, **kwargs: Any) -> SidecarProcess:
    proc = SidecarProcess(opik.url, *args, **kwargs)
    if parser == "h11":
        serve = proc.cmd.index("serve")
        proc.cmd = [sys.executable, "-c", _WITHOUT_HTTPTOOLS] + proc.cmd[serve:]
    return proc


def _uses_httptools(pid: int) -> bool:
    with open(f"/proc/{pid}/maps") as fh:
        return "httptools" in fh.read()


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _socket_fds(pid: int) -> int:
    """Sockets the process holds open (its listeners included)."""
    count = 0
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{name}").startswith("socket:"):
                count += 1
        except OSError:  # closed meanwhile
            pass
    return count


def _read_until_closed(sock: socket.socket, timeout: float) -> Optional[bytes]:
    """What the peer sent before closing; None if it is still open after ``timeout``."""
    sock.settimeout(timeout)
    got = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                return got
            got += chunk
    except socket.timeout:
        return None
    except ConnectionResetError:
        return got
    return None


class EndlessBodies:
    """Chunked requests whose body never ends: one more chunk every 0.3 s until the sidecar closes them."""

    def __init__(self, port: int, count: int, head: bytes = CHUNKED_HEAD) -> None:
        self.socks = [_connect(port) for _ in range(count)]
        for sock in self.socks:
            sock.sendall(head + b"5\r\nhello\r\n")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._trickle, daemon=True)
        self._thread.start()

    def _trickle(self) -> None:
        while not self._stop.wait(0.3):
            for sock in self.socks:
                try:
                    sock.send(b"1\r\nx\r\n")
                except OSError:  # closed by the sidecar: what the test waits for
                    pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for sock in self.socks:
            sock.close()


def _spans(name: str) -> List[Any]:
    def build(tracer: Any) -> None:
        with tracer.start_as_current_span(name):
            pass

    return make_spans(build)


def _metric(sidecar: SidecarProcess, line_start: str) -> float:
    text = httpx.get(sidecar.url + "/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.split()[-1])
    raise KeyError(line_start)


@pytest.fixture(params=PARSERS)
def hardened(opik: OpikStandin, request: Any) -> Iterator[SidecarProcess]:
    args = ("--header-timeout", "8", "--body-timeout", "8", "--idle-timeout", "2")
    with _sidecar(opik, request.param, *args, grpc=False) as proc:
        assert _uses_httptools(proc.pid) == (request.param == "httptools")
        yield proc


def test_idle_sockets_and_endless_bodies_do_not_keep_a_real_export_out(hardened: SidecarProcess, opik: OpikStandin) -> None:
    sidecar = hardened
    idle = [_connect(sidecar.port) for _ in range(IDLE_SOCKETS)]
    bodies = EndlessBodies(sidecar.port, ENDLESS_BODIES)
    try:
        # all of them are held by the sidecar while the good request is made (before, uvicorn's
        # limit_concurrency answered 503 to everything from 99 idle sockets on)
        wait_until(lambda: _socket_fds(sidecar.pid) >= IDLE_SOCKETS + ENDLESS_BODIES, 10, "the sidecar holding every socket")
        assert httpx.get(sidecar.url + "/healthz", timeout=5).status_code == 200

        exporter = HttpExporter(endpoint=sidecar.traces_url, timeout=10)
        t0 = time.monotonic()
        result = exporter.export(_spans("good-request"))
        took = time.monotonic() - t0
        exporter.shutdown()
        assert result is SpanExportResult.SUCCESS
        # the bound is one second; the margin is for a loaded 2-core machine
        assert took < 3.0, f"the good request took {took:.2f} s"
        assert _socket_fds(sidecar.pid) >= IDLE_SOCKETS + ENDLESS_BODIES, "the hostile sockets were not held during the request"
        wait_until(lambda: any(r["name"] == "good-request" for r in opik.spans.values()), 15, "the good span stored")

        # then the timeouts close them: the silent sockets without a word, the endless bodies with a 408
        for sock in idle:
            assert _read_until_closed(sock, 15) == b""
        answers = [_read_until_closed(sock, 15) for sock in bodies.socks]
        assert all(a is not None and a.startswith(b"HTTP/1.1 408 ") for a in answers), answers[:3]
        assert b"OPIK_OTEL_BODY_TIMEOUT" in (answers[0] or b"")
    finally:
        bodies.close()
        for sock in idle:
            sock.close()
    assert _metric(sidecar, 'opik_otel_http_connections_closed_total{reason="idle"}') >= IDLE_SOCKETS
    assert _metric(sidecar, 'opik_otel_http_connections_closed_total{reason="body_timeout"}') >= ENDLESS_BODIES
    assert _metric(sidecar, "opik_otel_http_requests_in_progress") == 0
    assert httpx.get(sidecar.url + "/healthz", timeout=5).status_code == 200


@pytest.mark.parametrize("parser", PARSERS)
def test_a_head_sent_byte_by_byte_gets_408_and_a_huge_head_431(opik: OpikStandin, parser: str) -> None:
    with _sidecar(opik, parser, "--header-timeout", "1.5", grpc=False) as sidecar:
        assert _uses_httptools(sidecar.pid) == (parser == "httptools")
        slow = _connect(sidecar.port)
        stop = threading.Event()

        def trickle() -> None:  # slowloris: a byte every 0.2 s, the head never completes in time
            for byte in (b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200):
                if stop.wait(0.2):
                    return
                try:
                    slow.send(bytes([byte]))
                except OSError:
                    return

        thread = threading.Thread(target=trickle, daemon=True)
        thread.start()
        answer = _read_until_closed(slow, 10)
        stop.set()
        thread.join(5)
        slow.close()
        assert answer is not None and answer.startswith(b"HTTP/1.1 408 "), answer

        big = _connect(sidecar.port)
        big.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\n")
        try:
            for _ in range(20):  # 20 x 8 KiB of one header: over the 64 KiB head limit
                big.sendall(b"X-Big: " + b"b" * 8192 + b"\r\n")
        except OSError:  # closed while sending: the answer is still readable
            pass
        answer = _read_until_closed(big, 10)
        big.close()
        assert answer is not None and answer.startswith(b"HTTP/1.1 431 "), answer

        # a kept-alive connection whose next head comes slowly is cut off as well
        kept = _connect(sidecar.port)
        kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        first = b""
        while not first.endswith(b"\r\n\r\nok\n"):  # the whole 200, head and body
            chunk = kept.recv(65536)
            assert chunk, first
            first += chunk
        assert first.startswith(b"HTTP/1.1 200 "), first
        kept.sendall(b"GET /heal")  # and no more
        answer = _read_until_closed(kept, 10)
        kept.close()
        assert answer is not None and answer.startswith(b"HTTP/1.1 408 "), answer
        assert _metric(sidecar, 'opik_otel_http_connections_closed_total{reason="header_timeout"}') == 2
        assert _metric(sidecar, 'opik_otel_http_connections_closed_total{reason="header_too_large"}') == 1


@pytest.mark.parametrize("parser", PARSERS)
def test_a_kept_alive_connection_silent_after_its_response_is_closed_by_the_idle_timeout(opik: OpikStandin, parser: str) -> None:
    with _sidecar(opik, parser, "--idle-timeout", "1", "--header-timeout", "30", grpc=False) as sidecar:
        kept = _connect(sidecar.port)
        body = protobuf_body(_spans("before-idle"))
        kept.sendall(
            b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode() + body
        )
        answer = _read_until_closed(kept, 10)  # uvicorn's timeout_keep_alive, long before the 30 s head timeout
        kept.close()
        assert answer is not None and answer.startswith(b"HTTP/1.1 200 "), answer
        assert _metric(sidecar, 'opik_otel_http_connections_closed_total{reason="idle"}') == 1


def test_the_open_files_limit_is_raised_to_the_hard_limit(opik: OpikStandin) -> None:
    """Started with a soft limit of 256 descriptors, the sidecar still holds 550 sockets."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard < IDLE_SOCKETS + ENDLESS_BODIES + 100:
        pytest.skip(f"the hard open-files limit ({hard}) is too low")
    proc = SidecarProcess(opik.url, "--header-timeout", "20", grpc=False)
    serve = proc.cmd.index("serve")
    proc.cmd = [
        sys.executable,
        "-c",
        "import resource, sys; resource.setrlimit(resource.RLIMIT_NOFILE, (256, resource.getrlimit(resource.RLIMIT_NOFILE)[1])); "
        "from opentelemetry.exporter.opik._cli import main; sys.exit(main())",
    ] + proc.cmd[serve:]
    with proc as sidecar:
        with open(f"/proc/{sidecar.pid}/limits") as fh:
            soft = next(line.split()[3] for line in fh if line.startswith("Max open files"))
        assert soft == ("unlimited" if hard == resource.RLIM_INFINITY else str(hard))
        socks = [_connect(sidecar.port) for _ in range(IDLE_SOCKETS + ENDLESS_BODIES)]
        try:
            wait_until(lambda: _socket_fds(sidecar.pid) >= IDLE_SOCKETS + ENDLESS_BODIES, 10, "the sidecar holding every socket")
            assert httpx.get(sidecar.url + "/healthz", timeout=5).status_code == 200
        finally:
            for sock in socks:
                sock.close()


@pytest.mark.parametrize("parser", PARSERS)
def test_full_request_slots_answer_503_while_healthz_and_readyz_answer(opik: OpikStandin, parser: str) -> None:
    with _sidecar(opik, parser, "--max-connections", "5", "--body-timeout", "3", grpc=False) as sidecar:
        bodies = EndlessBodies(sidecar.port, 5)
        try:
            wait_until(lambda: _metric(sidecar, "opik_otel_http_requests_in_progress") == 5, 10, "five requests in progress")
            body = protobuf_body(_spans("refused-while-full"))
            answer = httpx.post(sidecar.traces_url, content=body, headers={"Content-Type": "application/x-protobuf"}, timeout=5)
            assert answer.status_code == 503
            assert answer.headers["retry-after"] == "1"
            assert answer.headers["content-type"] == "application/x-protobuf"
            assert httpx.get(sidecar.url + "/healthz", timeout=5).status_code == 200
            ready = httpx.get(sidecar.url + "/readyz", timeout=5)
            assert ready.status_code == 503 and "OPIK_OTEL_MAX_CONNECTIONS" in ready.text, ready.text
            # the body timeout frees the slots; then the same request is taken
            answers = [_read_until_closed(sock, 10) for sock in bodies.socks]
            assert all(a is not None and a.startswith(b"HTTP/1.1 408 ") for a in answers), answers[:2]
        finally:
            bodies.close()
        wait_until(lambda: _metric(sidecar, "opik_otel_http_requests_in_progress") == 0, 10, "the slots freed")
        answer = httpx.post(sidecar.traces_url, content=body, headers={"Content-Type": "application/x-protobuf"}, timeout=10)
        assert answer.status_code == 200
        assert httpx.get(sidecar.url + "/readyz", timeout=5).status_code == 200
        assert _metric(sidecar, "opik_otel_http_requests_busy_total") == 1


@pytest.mark.parametrize("parser", PARSERS)
def test_unauthenticated_bodies_hold_no_request_slot(opik: OpikStandin, parser: str) -> None:
    token = "connections-test-token"
    with _sidecar(opik, parser, "--max-connections", "2", "--header-timeout", "3", grpc=False,
                  env=clean_env(OPIK_OTEL_AUTH_TOKEN=token)) as sidecar:
        bodies = EndlessBodies(sidecar.port, 10)  # no token: answered 401 before their body is read
        try:
            answers = [sock.recv(200) for sock in bodies.socks]
            assert all(a.startswith(b"HTTP/1.1 401 ") for a in answers), answers[:2]
            assert _metric(sidecar, "opik_otel_http_requests_in_progress") == 0
            exporter = HttpExporter(endpoint=sidecar.traces_url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
            assert exporter.export(_spans("authorized-request")) is SpanExportResult.SUCCESS
            exporter.shutdown()
            # the rest of their endless bodies is cut off by the head deadline of the next request
            assert all(_read_until_closed(sock, 10) is not None for sock in bodies.socks)
        finally:
            bodies.close()
        wait_until(lambda: any(r["name"] == "authorized-request" for r in opik.spans.values()), 15, "the authorized span stored")


grpc = pytest.importorskip("grpc")


def test_idle_grpc_connections_do_not_block_a_real_export(opik: OpikStandin) -> None:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"  # an empty SETTINGS frame
    with SidecarProcess(opik.url, "--max-connections", "5", "--header-timeout", "3", "--idle-timeout", "3") as sidecar:
        assert sidecar.grpc_port is not None, sidecar.start_line
        silent = [_connect(sidecar.grpc_port) for _ in range(200)]
        http2 = [_connect(sidecar.grpc_port) for _ in range(50)]
        for sock in http2:
            sock.sendall(preface)
        try:
            wait_until(lambda: _socket_fds(sidecar.pid) >= 250, 10, "the sidecar holding every gRPC socket")
            exporter = GrpcExporter(endpoint=f"127.0.0.1:{sidecar.grpc_port}", insecure=True, timeout=10)
            assert exporter.export(_spans("good-grpc-request")) is SpanExportResult.SUCCESS
            exporter.shutdown()
            wait_until(lambda: any(r["name"] == "good-grpc-request" for r in opik.spans.values()), 15, "the gRPC span stored")
            # grpc.server_handshake_timeout_ms closes the silent ones, grpc.max_connection_idle_ms the idle HTTP/2 ones
            assert all(_read_until_closed(sock, 15) is not None for sock in silent)
            assert all(_read_until_closed(sock, 15) is not None for sock in http2)
        finally:
            for sock in silent + http2:
                sock.close()


def test_docs_name_every_timeout_and_limit_with_its_default() -> None:
    """docs/cli.md 'Connections and timeouts' states each setting's variable and the default the sidecar uses."""
    from pathlib import Path

    from opentelemetry.exporter.opik.sidecar._connections import ConnectionLimits
    from opentelemetry.exporter.opik.sidecar._server import GRPC_MAX_CONNECTION_AGE_MS, ServeOptions

    text = (Path(__file__).resolve().parent.parent / "docs" / "cli.md").read_text(encoding="utf-8")
    section = text.split("### Connections and timeouts", 1)[1].split("\n## ", 1)[0]
    rows = {line.split("|")[1].strip(): line.split("|")[2].strip() for line in section.splitlines() if line.startswith("| ")}
    defaults = ServeOptions()
    for what, variable, value in (
        ("Idle keep-alive connection", "OPIK_OTEL_IDLE_TIMEOUT", f"{defaults.idle_timeout:g} s"),
        ("Request head", "OPIK_OTEL_HEADER_TIMEOUT", f"{defaults.header_timeout:g} s"),
        ("Request body", "OPIK_OTEL_BODY_TIMEOUT", f"{defaults.body_timeout:g} s"),
        ("Requests at once", "OPIK_OTEL_MAX_CONNECTIONS", str(defaults.max_connections)),
        ("Request head size", None, f"{ConnectionLimits().max_header_bytes // 1024} KiB"),
    ):
        assert rows.get(what) == value, (what, rows.get(what), value)
        assert variable is None or variable in section
    assert f"{GRPC_MAX_CONNECTION_AGE_MS // 1000} s" in section
    assert ServeOptions().connection_limits() == ConnectionLimits(max_requests=defaults.max_connections, retry_after=defaults.retry_after)


def test_grpc_messages_that_never_arrive_are_cut_off_and_free_their_slots(opik: OpikStandin) -> None:
    """Before the message deadline, 3 such calls against --max-connections 3 made every export RESOURCE_EXHAUSTED."""
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

    export = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
    with SidecarProcess(opik.url, "--max-connections", "3", "--body-timeout", "2") as sidecar:
        assert sidecar.grpc_port is not None, sidecar.start_line
        release = threading.Event()

        def nothing() -> Iterator[bytes]:  # headers are sent, the message never is
            release.wait(30)
            return
            yield b""  # pragma: no cover - makes this a generator

        channels = [grpc.insecure_channel(f"127.0.0.1:{sidecar.grpc_port}") for _ in range(3)]
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
            exporter = GrpcExporter(endpoint=f"127.0.0.1:{sidecar.grpc_port}", insecure=True, timeout=10)
            assert exporter.export(_spans("after-stalled-grpc")) is SpanExportResult.SUCCESS
            exporter.shutdown()
        finally:
            release.set()
            for ch in channels:
                ch.close()
        wait_until(lambda: any(r["name"] == "after-stalled-grpc" for r in opik.spans.values()), 15, "the span stored")
        assert _metric(sidecar, "opik_otel_grpc_messages_expired_total") == 3


def test_a_grpc_call_without_the_token_is_refused_before_its_message(opik: OpikStandin) -> None:
    """It never waits for its message (so holds no RPC slot for the body timeout); the token's holders are served."""
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

    token = "grpc-connections-token"
    export = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
    with SidecarProcess(opik.url, "--body-timeout", "60", env=clean_env(OPIK_OTEL_AUTH_TOKEN=token)) as sidecar:
        assert sidecar.grpc_port is not None, sidecar.start_line
        release = threading.Event()

        def nothing() -> Iterator[bytes]:
            release.wait(60)
            return
            yield b""  # pragma: no cover - makes this a generator

        with grpc.insecure_channel(f"127.0.0.1:{sidecar.grpc_port}") as channel:
            call = channel.stream_unary(export, request_serializer=None, response_deserializer=None)
            pending = call.future(nothing(), timeout=60)
            try:
                with pytest.raises(grpc.RpcError) as err:
                    pending.result(timeout=20)  # long before the 60 s body timeout
                assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
            finally:
                release.set()
        exporter = GrpcExporter(
            endpoint=f"127.0.0.1:{sidecar.grpc_port}", insecure=True, timeout=10, headers={"authorization": f"Bearer {token}"}
        )
        assert exporter.export(_spans("authorized-grpc")) is SpanExportResult.SUCCESS
        exporter.shutdown()
        wait_until(lambda: any(r["name"] == "authorized-grpc" for r in opik.spans.values()), 15, "the span stored")
        text = httpx.get(sidecar.url + "/metrics", timeout=10).text
        assert 'opik_otel_receiver_requests_total{protocol="grpc",status="UNAUTHENTICATED"} 1' in text, text


def test_grpc_calls_beyond_the_slots_get_unavailable_with_a_retry_delay(opik: OpikStandin) -> None:
    """Not grpcio's bare RESOURCE_EXHAUSTED (which the Collector drops): UNAVAILABLE + RetryInfo, retried by every OTLP sender."""
    from google.rpc.error_details_pb2 import RetryInfo
    from google.rpc.status_pb2 import Status
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

    export = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
    with SidecarProcess(opik.url, "--max-connections", "2", "--body-timeout", "4", "--retry-after", "2") as sidecar:
        assert sidecar.grpc_port is not None, sidecar.start_line
        release = threading.Event()

        def nothing() -> Iterator[bytes]:
            release.wait(30)
            return
            yield b""  # pragma: no cover - makes this a generator

        channels = [grpc.insecure_channel(f"127.0.0.1:{sidecar.grpc_port}") for _ in range(3)]
        try:
            stalled = [
                ch.stream_unary(export, request_serializer=None, response_deserializer=None).future(nothing(), timeout=30)
                for ch in channels[:2]
            ]
            wait_until(lambda: _metric(sidecar, "opik_otel_grpc_calls_in_progress") == 2, 10, "both slots taken")
            call = channels[2].unary_unary(export, request_serializer=None, response_deserializer=None)
            with pytest.raises(grpc.RpcError) as err:
                call(protobuf_body(_spans("refused-grpc")), timeout=10)
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
            trailing = dict(err.value.trailing_metadata())
            assert RetryInfo.FromString(trailing["google.rpc.retryinfo-bin"]).retry_delay.seconds == 2
            status = Status.FromString(trailing["grpc-status-details-bin"])
            assert status.code == 14 and status.details[0].Is(RetryInfo.DESCRIPTOR)
            for pending in stalled:  # the body timeout frees the slots
                with pytest.raises(grpc.RpcError) as err:
                    pending.result(timeout=20)
                assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        finally:
            release.set()
            for ch in channels:
                ch.close()
        exporter = GrpcExporter(endpoint=f"127.0.0.1:{sidecar.grpc_port}", insecure=True, timeout=10)
        assert exporter.export(_spans("after-busy-grpc")) is SpanExportResult.SUCCESS
        exporter.shutdown()
        assert _metric(sidecar, "opik_otel_grpc_calls_busy_total") == 1
        assert _metric(sidecar, "opik_otel_grpc_calls_in_progress") == 0
