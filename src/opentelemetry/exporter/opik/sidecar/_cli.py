"""``opik-otel serve`` arguments and entry: wired into the ``opik-otel`` parser by ``_cli.py``.

Every option also has an environment variable (``OPIK_OTEL_*``), so the
sidecar is configured the same way in a container as on a command line; Opik
settings resolve exactly as for the exporter (``OPIK_*``,
``OTEL_EXPORTER_OPIK_*``, ``~/.opik.config``).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from typing import Any, Callable, Dict, List, Mapping, Optional, TypeVar

from .._config import SPECS, ConfigError, resolve_settings
from ._server import ConfigurationError, ServeOptions, Sidecar, grpc_available

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
T = TypeVar("T")

# option -> (environment variable, parser, default)
_ENV: Dict[str, Any] = {
    "host": ("OPIK_OTEL_HOST", str, "127.0.0.1"),
    "port": ("OPIK_OTEL_PORT", int, 4318),
    "grpc_port": ("OPIK_OTEL_GRPC_PORT", int, 4317),
    "auth_token": ("OPIK_OTEL_AUTH_TOKEN", str, None),
    "max_body_bytes": ("OPIK_OTEL_MAX_BODY_BYTES", int, 20 * 1024 * 1024),
    "max_spans_per_request": ("OPIK_OTEL_MAX_SPANS_PER_REQUEST", int, 20_000),
    "max_attributes": ("OPIK_OTEL_MAX_ATTRIBUTES", int, 10_000),
    "max_depth": ("OPIK_OTEL_MAX_DEPTH", int, 32),
    "max_connections": ("OPIK_OTEL_MAX_CONNECTIONS", int, 100),
    "max_inflight_bytes": ("OPIK_OTEL_MAX_INFLIGHT_BYTES", int, None),
    "max_pending_spans": ("OPIK_OTEL_MAX_PENDING_SPANS", int, 8192),
    "retry_after": ("OPIK_OTEL_RETRY_AFTER", float, 1.0),
    "shutdown_timeout": ("OPIK_OTEL_SHUTDOWN_TIMEOUT", float, 20.0),
    "console": ("OPIK_OTEL_CONSOLE", lambda v: v.strip().lower() in ("1", "true", "yes", "on"), False),
    "tls_cert": ("OPIK_OTEL_TLS_CERT_FILE", str, None),
    "tls_key": ("OPIK_OTEL_TLS_KEY_FILE", str, None),
    "tls_client_ca": ("OPIK_OTEL_TLS_CLIENT_CA_FILE", str, None),
    "auth_token_file": ("OPIK_OTEL_AUTH_TOKEN_FILE", str, None),
}
_SETTING_FIELDS = tuple(s.field for s in SPECS)


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``serve`` options to ``parser`` (the ``serve`` subparser of ``opik-otel``)."""
    g = parser.add_argument_group("listening")
    g.add_argument("--host", help="address to listen on (default 127.0.0.1; 0.0.0.0 or :: for all, then set an auth token) [OPIK_OTEL_HOST]")
    g.add_argument("--port", type=int, metavar="PORT", help="OTLP/HTTP port (default 4318; 0 picks a free one) [OPIK_OTEL_PORT]")
    g.add_argument("--grpc-port", type=int, metavar="PORT", help="OTLP/gRPC port (default 4317 when grpcio is installed; 0 picks a free one) [OPIK_OTEL_GRPC_PORT]")
    g.add_argument("--no-grpc", action="store_true", help="do not listen for OTLP/gRPC")
    g.add_argument(
        "--auth-token",
        metavar="TOKEN",
        help="require 'Authorization: Bearer TOKEN' on every OTLP request (prefer the environment variable: "
        "arguments show in process lists) [OPIK_OTEL_AUTH_TOKEN]",
    )
    g.add_argument(
        "--auth-token-file",
        metavar="FILE",
        help="accept any bearer token listed in FILE (one per line, # comments); reread on SIGHUP or when it changes; "
        "instead of --auth-token [OPIK_OTEL_AUTH_TOKEN_FILE]",
    )

    g = parser.add_argument_group("TLS (both receivers, same ports; files reread on SIGHUP or when they change)")
    g.add_argument("--tls-cert", metavar="FILE", help="serve TLS (1.2 or later) with this PEM certificate chain [OPIK_OTEL_TLS_CERT_FILE]")
    g.add_argument("--tls-key", metavar="FILE", help="the PEM private key of --tls-cert [OPIK_OTEL_TLS_KEY_FILE]")
    g.add_argument(
        "--tls-client-ca",
        metavar="FILE",
        help="mTLS: require a client certificate signed by a CA in this PEM file [OPIK_OTEL_TLS_CLIENT_CA_FILE]",
    )

    g = parser.add_argument_group("Opik (override the environment and ~/.opik.config; the API key only comes from OPIK_API_KEY or the config file)")
    g.add_argument("--url", help="Opik API base URL, e.g. http://localhost:5173/api [OPIK_URL_OVERRIDE]")
    g.add_argument("--workspace", help="Opik workspace [OPIK_WORKSPACE]")
    g.add_argument("--project", help="default project for spans that name none [OPIK_PROJECT_NAME]")
    g.add_argument(
        "--project-from-service-name",
        action="store_true",
        default=None,
        help="use the resource service.name as project when no opik.project_name or projectName header is given",
    )
    g.add_argument("--spool-dir", metavar="DIR", help="keep what Opik cannot take (or what is left at shutdown) here and re-send it later")
    g.add_argument("--dry-run", action="store_true", default=None, help="print the Opik traces instead of sending them")
    g.add_argument("--console", action="store_true", default=None, help="also print each received trace as a tree as it arrives (while wiring a Collector) [OPIK_OTEL_CONSOLE]")
    g.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="any other exporter setting, e.g. --set max_queue_items=50000 (see `opik-otel settings`)",
    )

    g = parser.add_argument_group("limits (each answered with a clear status and message)")
    g.add_argument("--max-body-bytes", type=int, metavar="N", help="request body size, before and after decompression; larger: 413 (default 20 MiB) [OPIK_OTEL_MAX_BODY_BYTES]")
    g.add_argument("--max-spans-per-request", type=int, metavar="N", help="spans in one request; more: 413 (default 20000) [OPIK_OTEL_MAX_SPANS_PER_REQUEST]")
    g.add_argument("--max-attributes", type=int, metavar="N", help="attributes per span, event or resource; the rest are dropped and counted (default 10000) [OPIK_OTEL_MAX_ATTRIBUTES]")
    g.add_argument("--max-depth", type=int, metavar="N", help="nesting of array/kvlist values; deeper ones are replaced by a marker (default 32) [OPIK_OTEL_MAX_DEPTH]")
    g.add_argument("--max-connections", type=int, metavar="N", help="concurrent connections/RPCs; more: 503 (default 100) [OPIK_OTEL_MAX_CONNECTIONS]")
    g.add_argument(
        "--max-inflight-bytes",
        type=int,
        metavar="N",
        help="request bytes held at once across connections; more: 503 + Retry-After (default 4 x --max-body-bytes, "
        "at least 64 MiB) [OPIK_OTEL_MAX_INFLIGHT_BYTES]",
    )
    g.add_argument(
        "--max-pending-spans",
        type=int,
        metavar="N",
        help="spans answered but not yet mapped; beyond it a request waits up to 5 s for room, then 429 + Retry-After "
        "(default 8192) [OPIK_OTEL_MAX_PENDING_SPANS]",
    )

    g = parser.add_argument_group("behaviour")
    g.add_argument("--retry-after", type=float, metavar="SECONDS", help="delay asked of senders when the queue to Opik is full (429 / RESOURCE_EXHAUSTED; default 1) [OPIK_OTEL_RETRY_AFTER]")
    g.add_argument("--shutdown-timeout", type=float, metavar="SECONDS", help="on SIGTERM: time to finish requests and deliver; the rest is spooled (default 20) [OPIK_OTEL_SHUTDOWN_TIMEOUT]")
    g.add_argument("--log-level", default=None, choices=("debug", "info", "warning", "error"), help="log level on stderr (default info) [OPIK_OTEL_LOG_LEVEL]")


class _UsageError(Exception):
    pass


def _option(args: argparse.Namespace, name: str, env: Mapping[str, str]) -> Any:
    var, parse, default = _ENV[name]
    value = getattr(args, name, None)
    if value is not None:
        source = f"--{name.replace('_', '-')}"
    else:
        raw = env.get(var, "").strip()
        if not raw:
            return default
        source = var
        try:
            value = parse(raw)
        except ValueError:
            raise _UsageError(f"{var} must be a {'number' if parse is not str else 'string'}") from None  # never the value
    if parse in (int, float) and name not in ("port", "grpc_port") and not value > 0:
        raise _UsageError(f"{source} must be positive")
    if name in ("port", "grpc_port") and not 0 <= value <= 65535:
        raise _UsageError(f"{source} must be a port between 0 and 65535")
    return value


def serve_options(args: argparse.Namespace, env: Optional[Mapping[str, str]] = None) -> ServeOptions:
    """The listening options from arguments, then ``OPIK_OTEL_*``, then defaults."""
    env = os.environ if env is None else env
    values = {name: _option(args, name, env) for name in _ENV}
    grpc_asked = getattr(args, "grpc_port", None) is not None or bool(env.get("OPIK_OTEL_GRPC_PORT", "").strip())
    if getattr(args, "no_grpc", False):
        values["grpc_port"] = None
    elif not grpc_available():
        if grpc_asked:
            raise _UsageError("OTLP/gRPC needs grpcio: pip install 'grpcio>=1.60' (what the [grpc] extra adds), or pass --no-grpc")
        values["grpc_port"] = None
    if values["auth_token"] and values["auth_token_file"]:
        raise _UsageError("set either OPIK_OTEL_AUTH_TOKEN (--auth-token) or OPIK_OTEL_AUTH_TOKEN_FILE (--auth-token-file), not both")
    if values["grpc_port"] is not None and values["grpc_port"] == values["port"] and values["port"] != 0:
        raise _UsageError(f"--port and --grpc-port are both {values['port']}: choose two ports")
    return ServeOptions(**values)


def _setting_overrides(args: argparse.Namespace) -> Dict[str, Any]:
    out: Dict[str, Any] = {
        "url": args.url,
        "workspace": args.workspace,
        "project_name": args.project,
        "spool_dir": args.spool_dir,
        "dry_run": args.dry_run,
        "project_from_service_name": args.project_from_service_name,
    }
    for item in args.set or []:
        name, sep, value = item.partition("=")
        name = name.strip().lower().replace("-", "_")
        if not sep or name not in _SETTING_FIELDS:
            shown = name if sep and len(name) <= 40 and name.replace("_", "").isalpha() else "?"  # never a pasted value
            raise _UsageError(f"--set {shown}: expected NAME=VALUE with NAME one of: {', '.join(_SETTING_FIELDS)}")
        if name == "api_key":
            raise _UsageError("--set api_key is refused (it would show in process lists): set OPIK_API_KEY")
        out[name] = value
    return out


def run_serve(args: argparse.Namespace, on_started: Optional[Callable[[Sidecar], None]] = None) -> int:
    """Run the sidecar until SIGTERM/SIGINT; returns the exit code."""
    env = os.environ
    level = (args.log_level or env.get("OPIK_OTEL_LOG_LEVEL", "") or "info").strip().upper()
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("httpx", "httpcore"):  # one INFO line per request to Opik: far too many for a sidecar
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    try:
        options = serve_options(args, env)
        settings = resolve_settings(_setting_overrides(args))
    except (_UsageError, ConfigError) as exc:
        print(f"opik-otel serve: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        sidecar = Sidecar(settings, options)
    except (ImportError, ConfigurationError) as exc:  # a spool dir on a build without the spool; a TLS or token file
        print(f"opik-otel serve: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return asyncio.run(sidecar.serve(on_started=on_started))
    except OSError as exc:
        print(f"opik-otel serve: {exc}", file=sys.stderr)
        return EXIT_FAILED


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m opentelemetry.exporter.opik.sidecar``: the same as ``opik-otel serve``."""
    parser = argparse.ArgumentParser(
        prog="opik-otel serve",
        description="Receive OTLP spans (HTTP protobuf/JSON, and gRPC when grpcio is installed) and forward them "
        "to Opik through the same mapping and delivery as the in-process exporter.",
    )
    add_serve_arguments(parser)
    return run_serve(parser.parse_args(argv))
