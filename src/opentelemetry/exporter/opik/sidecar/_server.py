"""One ``opik-otel serve`` process: uvicorn (OTLP/HTTP) and grpcio (OTLP/gRPC) on one event loop.

The process is stateless apart from its queue (and the mapper's trace-start
cache), so it scales by replicas behind a trace-id-aware load balancer
(the Collector's ``loadbalancing`` exporter): each trace's spans then meet in
one replica. Stopping (SIGTERM/SIGINT) closes the listeners, lets in-flight
requests finish, then delivers what was acknowledged within the deadline and
spools the rest (with a spool dir); it exits 0, or 1 when acknowledged items
had to be dropped (``_stopping.py``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import ipaddress
import logging
import signal
import socket
import sys
import time
from typing import TYPE_CHECKING, Any, Callable, Iterator, List, Optional, TextIO
from urllib.parse import urlsplit, urlunsplit

import uvicorn

from .._config import OpikSettings
from .._delivery.sink import Sink, make_sink
from .._otlp import DecodeLimits
from .._pipeline import Pipeline
from .._stats import Stats
from .._transport import Transport
from ._connections import ConnectionGuard, ConnectionLimits, ConnectionStats, protocol_factory
from ._decode import Limits
from ._http import OtlpHttpApp
from ._receiver import Receiver
from ._stopping import report_stop
from ._tls import POLL_INTERVAL, Reloader, TlsConfigError, TlsFiles, expiry_warning

if TYPE_CHECKING:
    from ._grpc_guard import CallGuard

_logger = logging.getLogger("opentelemetry.exporter.opik.sidecar")


@dataclasses.dataclass
class ServeOptions:
    """How the sidecar listens and what it accepts (Opik settings are separate)."""

    host: str = "127.0.0.1"
    port: int = 4318
    #: None: no gRPC listener
    grpc_port: Optional[int] = 4317
    auth_token: Optional[str] = dataclasses.field(default=None, repr=False)
    max_body_bytes: int = 20 * 1024 * 1024
    max_spans_per_request: int = 20_000
    max_attributes: int = 10_000
    max_depth: int = 32
    #: HTTP requests reading a body or being processed at once (idle connections do not count), and
    #: concurrent gRPC RPCs; more: 503 + Retry-After / RESOURCE_EXHAUSTED
    max_connections: int = 100
    #: request bytes held at once across connections (None: 4 x max_body_bytes, at least 64 MiB)
    max_inflight_bytes: Optional[int] = None
    #: no effect (kept so existing settings still parse): requests are mapped before they are answered
    max_pending_spans: int = 8192
    #: a sender's Authorization / Comet-Workspace (headers or gRPC metadata) deliver its spans (one sink each)
    pass_credentials: bool = False
    #: seconds sent in Retry-After / RetryInfo when the queue to Opik is full
    retry_after: float = 1.0
    #: total seconds for a graceful stop (finish requests, deliver, spool)
    shutdown_timeout: float = 20.0
    #: also print each received trace as a tree (``--console``)
    console: bool = False
    #: TLS on both receivers (PEM chain and key), mTLS with a client CA; reloaded on SIGHUP or a file change
    tls_cert: Optional[str] = None
    tls_key: Optional[str] = None
    tls_client_ca: Optional[str] = None
    #: one accepted bearer token per line (instead of auth_token); reloaded like the TLS files
    auth_token_file: Optional[str] = None
    #: seconds a kept-alive connection may stay silent after a response (gRPC: with no RPC in progress)
    idle_timeout: float = 15.0
    #: seconds from connecting (or the next request's first byte) to the end of the request head
    #: (gRPC: the HTTP/2 and TLS handshake)
    header_timeout: float = 10.0
    #: seconds from the end of the request head to the end of its body (then 408 and the connection closes)
    body_timeout: float = 30.0

    def tls_files(self) -> TlsFiles:
        return TlsFiles(self.tls_cert, self.tls_key, self.tls_client_ca, self.auth_token_file)

    def connection_limits(self) -> ConnectionLimits:
        return ConnectionLimits(
            idle_timeout=self.idle_timeout,
            header_timeout=self.header_timeout,
            body_timeout=self.body_timeout,
            max_requests=self.max_connections,
            retry_after=self.retry_after,
        )

    def limits(self) -> Limits:
        return Limits(
            self.max_body_bytes,
            DecodeLimits(max_spans=self.max_spans_per_request, max_attributes=self.max_attributes, max_depth=self.max_depth),
        )


class ConfigurationError(Exception):
    """A setting that cannot be used (named in the message); ``opik-otel serve`` exits 2."""


class _Server(uvicorn.Server):
    """uvicorn, minus its signal handling: the sidecar stops in its own order."""

    def install_signal_handlers(self) -> None:  # uvicorn < 0.29
        pass

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # uvicorn >= 0.29
        yield


def public_url(url: str) -> str:
    """The URL without any ``user:password@``."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must say TCP: asyncio sets TCP_NODELAY on accepted sockets only then, and without it
    # every response (headers, then body) waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen for OTLP/HTTP on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(2048)
    sock.setblocking(False)
    return sock


#: gRPC connections are closed (GOAWAY, in-flight RPCs get this much grace) after this long, so a
#: message that never ends cannot hold an RPC slot for ever and senders rebalance across replicas
GRPC_MAX_CONNECTION_AGE_MS = 300_000


def grpc_connection_options(opts: ServeOptions) -> List[tuple]:
    """grpcio's own connection settings for the sidecar's timeouts (docs/cli.md, "Connections and timeouts")."""
    return [
        ("grpc.server_handshake_timeout_ms", int(opts.header_timeout * 1000)),
        ("grpc.max_connection_idle_ms", int(opts.idle_timeout * 1000)),
        ("grpc.max_connection_age_ms", GRPC_MAX_CONNECTION_AGE_MS),
        ("grpc.max_connection_age_grace_ms", int(opts.body_timeout * 1000)),
        # the server pings a silent peer every 60 s and drops it when 20 s pass without an answer
        ("grpc.keepalive_time_ms", 60_000),
        ("grpc.keepalive_timeout_ms", 20_000),
        ("grpc.http2.max_pings_without_data", 0),
        # senders' own keepalive pings are welcome every 10 s, with or without calls in flight
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ]


def raise_open_files_limit() -> Optional[int]:
    """Raise the soft RLIMIT_NOFILE to the hard limit (each connection is a file descriptor);
    returns the soft limit now in force, None where there is no such limit."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft >= hard:
        return soft
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError) as exc:
        _logger.warning("could not raise the open-files limit from %s to %s: %s", soft, target, exc)
        return soft
    return target


def grpc_available() -> bool:
    try:
        import grpc  # noqa: F401
        from grpc import aio  # noqa: F401
    except ImportError:
        return False
    return True


def _make_writer(settings: OpikSettings, stats: Stats, stream: Optional[TextIO]) -> Sink:
    """The exporter's own sink: the writer (with the spool when configured), or the dry-run console."""
    return make_sink(settings, stats, console=stream)


class Sidecar:
    """Everything one ``opik-otel serve`` runs. ``serve()`` returns the exit code."""

    def __init__(self, settings: OpikSettings, options: Optional[ServeOptions] = None, stream: Optional[TextIO] = None) -> None:
        self.settings = settings
        self.options = options or ServeOptions()
        self.stream = stream or sys.stdout
        if self.options.max_pending_spans != ServeOptions.max_pending_spans:
            _logger.warning(
                "--max-pending-spans (OPIK_OTEL_MAX_PENDING_SPANS) has no effect: requests are mapped before they "
                "are answered, and the queue to Opik is bounded by OTEL_EXPORTER_OPIK_MAX_QUEUE_ITEMS / "
                "OTEL_EXPORTER_OPIK_MAX_QUEUE_BYTES; remove the setting"
            )
        self.stats = Stats()
        self.pipeline = Pipeline(settings, stats=self.stats)
        self.writer = _make_writer(settings, self.stats, self.stream)
        if self.options.console and not settings.dry_run:
            from .._console import TeeWriter

            self.writer = TeeWriter(self.writer, self.stream)
        probe = None if settings.dry_run else Transport(settings)
        self.receiver = Receiver(
            settings,
            self.pipeline,
            self.writer,
            self.stats,
            limits=self.options.limits(),
            retry_after=self.options.retry_after,
            probe_transport=probe,
            pass_credentials=self.options.pass_credentials,
        )
        self.http_port: Optional[int] = None
        self.grpc_port: Optional[int] = None
        self._server: Optional[_Server] = None
        self._grpc: Any = None
        self._grpc_stop: Optional["asyncio.Task[Any]"] = None
        self._executor: Optional[concurrent.futures.ThreadPoolExecutor] = None
        self._stop_requested = False
        self._stopping_since: Optional[float] = None
        #: TLS material and tokens (read now: a bad file fails the start, naming its setting)
        files = self.options.tls_files()
        try:
            self.reloader = Reloader(files, None)
        except TlsConfigError as exc:
            raise ConfigurationError(str(exc)) from None
        if self.reloader.material is not None:
            warning = expiry_warning(files, self.reloader.material)
            if warning:
                _logger.warning("%s", warning)
        self._poll_task: Optional["asyncio.Task[Any]"] = None
        self.connection_stats = ConnectionStats()
        self._call_guard: Optional["CallGuard"] = None  # with a gRPC listener

    def _auth(self) -> Any:
        """What the receivers check: the token file's set (replaced on reloads), or the one token."""
        return self.reloader.tokens if self.reloader.tokens is not None else self.options.auth_token

    def reload(self, why: str = "SIGHUP") -> bool:
        """Reread the TLS files and token file; new connections use them (the old ones stay on failure)."""
        return self.reloader.reload(why)

    async def _poll_files(self) -> None:
        while True:
            await asyncio.sleep(POLL_INTERVAL)
            if self.reloader.changed():
                await asyncio.get_running_loop().run_in_executor(None, self.reload, "a file changed")

    # -- running -----------------------------------------------------------------------
    def _runner(self) -> Callable[..., Any]:
        # One worker decodes, maps and queues each request (Receiver.handle): Python code holds the
        # GIL anyway, one thread keeps requests in order and hand-offs few (event loop -> worker ->
        # the writer's sender), and the event loop stays free to read bodies and answer health checks.
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="opik-otel-work")
        executor = self._executor

        async def threaded(fn: Callable[..., Any], *args: Any) -> Any:
            return await asyncio.get_running_loop().run_in_executor(executor, fn, *args)

        return threaded

    async def serve(self, install_signals: bool = True, on_started: Optional[Callable[["Sidecar"], None]] = None) -> int:
        opts = self.options
        loop = asyncio.get_running_loop()
        work = self._runner()
        sock = _listen(opts.host, opts.port)
        self.http_port = sock.getsockname()[1]
        app = OtlpHttpApp(self.receiver, work, self._auth(), opts.max_inflight_bytes)
        reloads = self.reloader.files.paths()
        app.extra_metrics = self._extra_metrics
        files = raise_open_files_limit()
        _logger.debug("open-files limit: %s", files)
        limits = opts.connection_limits()
        grace = min(5.0, opts.shutdown_timeout / 4)
        kwargs: dict = dict(
            lifespan="off",
            access_log=False,
            log_level="warning",
            server_header=False,
            # no limit_concurrency: it counts idle connections; ConnectionGuard bounds requests instead
            timeout_keep_alive=opts.idle_timeout,
            http=protocol_factory(limits, self.connection_stats),
            ws="none",
            proxy_headers=False,
            # above the guard's own head limit by one read (256 KiB), so h11 too answers 431, not 400
            h11_max_incomplete_event_size=limits.max_header_bytes + 256 * 1024,
        )
        if "timeout_graceful_shutdown" in uvicorn.Config.__init__.__code__.co_varnames:
            kwargs["timeout_graceful_shutdown"] = grace
        tls_context = self.reloader.http_context()
        if tls_context is not None and "ssl_context_factory" in uvicorn.Config.__init__.__code__.co_varnames:
            kwargs["ssl_context_factory"] = lambda _config, _default: tls_context
        config = uvicorn.Config(ConnectionGuard(app, limits, self.connection_stats), **kwargs)
        if tls_context is not None and "ssl_context_factory" not in kwargs:  # older uvicorn: the loaded config's context
            config.load()
            config.ssl = tls_context
        self._server = _Server(config)
        if opts.grpc_port is not None:
            from ._grpc import start_grpc
            from ._grpc_guard import CallGuard

            self._call_guard = CallGuard(
                opts.body_timeout, opts.max_connections, opts.retry_after, self._auth(), self.receiver.count_response
            )
            try:
                creds = self.reloader.grpc_credentials() if self.reloader.material is not None else None
                self._grpc, self.grpc_port = await start_grpc(
                    self.receiver, work, opts.host, opts.grpc_port, self._auth(), self._call_guard.backstop, creds,
                    grpc_connection_options(opts),
                    interceptors=(self._call_guard,),
                )
            except OSError:
                sock.close()
                raise
        if install_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, self.request_stop)
            if reloads:
                with contextlib.suppress(NotImplementedError, RuntimeError, AttributeError):
                    loop.add_signal_handler(
                        signal.SIGHUP, lambda: loop.run_in_executor(None, self.reload, "SIGHUP")
                    )
        if reloads:
            self._poll_task = asyncio.ensure_future(self._poll_files())
        self.stream.write(self.start_line() + "\n")
        self.stream.flush()
        if not _is_loopback(opts.host) and not self._auth() and not opts.tls_client_ca:  # TLS alone authenticates no one
            _logger.warning(
                "listening on %s without an auth token: anyone who reaches this port can write to your Opik "
                "workspace; set OPIK_OTEL_AUTH_TOKEN or OPIK_OTEL_AUTH_TOKEN_FILE (or require client certificates "
                "with OPIK_OTEL_TLS_CLIENT_CA_FILE)",
                opts.host,
            )
        if on_started is not None:
            on_started(self)
        try:
            self.reloader.bound_handshakes(loop, opts.header_timeout)  # asyncio's default is 60 s
            await self._server.serve(sockets=[sock])
        finally:
            if self._poll_task is not None:
                self._poll_task.cancel()
            code = await self._finish()
            if install_signals:
                for sig in (signal.SIGTERM, signal.SIGINT, getattr(signal, "SIGHUP", signal.SIGTERM)):
                    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                        loop.remove_signal_handler(sig)
        return code

    def _extra_metrics(self) -> str:
        text = self.connection_stats.metrics_text()
        if self._call_guard is not None:
            text += self._call_guard.metrics_text()
        return text + self.reloader.metrics_text() if self.reloader.files.paths() else text

    def start_line(self) -> str:
        opts = self.options
        host = f"[{opts.host}]" if ":" in opts.host else opts.host
        scheme = "https" if self.reloader.material is not None else "http"
        bits = [f"OTLP/HTTP on {scheme}://{host}:{self.http_port}/v1/traces"]
        if self.grpc_port is not None:
            bits.append(f"OTLP/gRPC on {host}:{self.grpc_port}")
        elif opts.grpc_port is not None or not grpc_available():
            bits.append("OTLP/gRPC off (pip install 'grpcio>=1.60', what the [grpc] extra adds)")
        s = self.settings
        if s.dry_run:
            target = "dry run: printing Opik traces, sending nothing"
        else:
            target = f"Opik at {public_url(s.url)} (workspace {s.workspace!r}, default project {s.project_name!r})"
        auth = "bearer token required" if self._auth() else "no auth token"
        if self.reloader.material is not None:
            auth += "; TLS" + (" with client certificates (mTLS)" if opts.tls_client_ca else "")
        return f"opik-otel serve: {', '.join(bits)} -> {target}; {auth}"

    def request_stop(self) -> None:
        """First call: stop gracefully. Second call: stop now (the writer still spools what it can)."""
        server = self._server
        if self._stop_requested:
            if server is not None:
                server.force_exit = True
            return
        self._stop_requested = True
        self._stopping_since = time.monotonic()
        if server is not None:
            server.should_exit = True
        if self._grpc is not None and self._grpc_stop is None:
            self._grpc_stop = asyncio.ensure_future(self._grpc.stop(min(5.0, self.options.shutdown_timeout / 4)))

    async def _finish(self) -> int:
        if self._stopping_since is None:
            self._stopping_since = time.monotonic()
        if self._grpc is not None:
            if self._grpc_stop is None:
                self._grpc_stop = asyncio.ensure_future(self._grpc.stop(min(5.0, self.options.shutdown_timeout / 4)))
            with contextlib.suppress(Exception):
                await self._grpc_stop
        self.receiver.start_draining()
        loop = asyncio.get_running_loop()
        if self._executor is not None:
            await loop.run_in_executor(None, self._executor.shutdown, True)
        # spans still waiting for their OTLP logs go with what arrived
        await loop.run_in_executor(None, self.receiver.finish_join)
        remaining = max(self.options.shutdown_timeout - (time.monotonic() - self._stopping_since), 1.0)
        dropped_before = self.receiver.dropped_by_reason()
        # items a stage still holds (the genai filter) were acknowledged: released into the writer, then delivered
        done = await loop.run_in_executor(None, self.receiver.close, remaining)
        return report_stop(self.receiver, self.settings, done, dropped_before)


def run(settings: OpikSettings, options: Optional[ServeOptions] = None) -> int:
    """Serve until SIGTERM/SIGINT; returns the process exit code."""
    return asyncio.run(Sidecar(settings, options).serve())


__all__: List[str] = ["ConfigurationError", "ServeOptions", "Sidecar", "run", "grpc_available", "public_url"]
