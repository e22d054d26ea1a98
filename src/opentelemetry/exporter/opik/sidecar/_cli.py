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
from ._options import BY_FIELD, GROUPS, OPTIONS, ServeOption, serve_option_fields
from ._server import ConfigurationError, ServeOptions, Sidecar, grpc_available

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
T = TypeVar("T")

#: option -> (environment variable, parser, default): derived from the one table, ``_options.OPTIONS``
_ENV: Dict[str, Any] = {o.field: (o.env, o.parse, o.default) for o in OPTIONS}
_SETTING_FIELDS = tuple(s.field for s in SPECS)


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``serve`` options to ``parser`` (the ``serve`` subparser of ``opik-otel``): the rows of
    ``_options.OPTIONS`` by group, ``--no-grpc``, and the Opik settings a sidecar is commonly given."""
    groups = {name: parser.add_argument_group(name) for name in GROUPS[:2]}
    opik_group = _opik_arguments(parser)
    groups.update({name: parser.add_argument_group(name) for name in GROUPS[2:]})
    for option in OPTIONS:  # in group order: listening and TLS, then the Opik settings, then the rest
        if GROUPS.index(option.group) >= 2 and opik_group is not None:
            _opik_group_arguments(opik_group)  # the Opik settings between TLS and the limits, as in --help
            opik_group = None
        _add_option(groups[option.group], option)
        if option.field == "grpc_port":
            groups[option.group].add_argument("--no-grpc", action="store_true", help="do not listen for OTLP/gRPC")


def _add_option(group: Any, option: ServeOption) -> None:
    if option.kind == "bool":
        group.add_argument(option.flag, action="store_true", default=None, help=option.help_text())
    elif option.kind == "choice":
        group.add_argument(option.flag, default=None, choices=option.choices, help=option.help_text())
    else:
        kind = {"int": int, "port": int, "float": float}.get(option.kind, str)
        group.add_argument(option.flag, type=kind, metavar=option.metavar, help=option.help_text())


def _opik_arguments(parser: argparse.ArgumentParser) -> Any:
    return parser.add_argument_group(
        "Opik (override the environment and ~/.opik.config; the API key only comes from OPIK_API_KEY or the config file)"
    )


def _opik_group_arguments(g: Any) -> None:
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
    g.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="any other exporter setting, e.g. --set max_queue_items=50000 (see `opik-otel settings`)",
    )


class _UsageError(Exception):
    pass


def _option(args: argparse.Namespace, name: str, env: Mapping[str, str]) -> Any:
    """One option: its argument, else its variable, else its default; checked the same either way."""
    option = BY_FIELD[name]
    value = getattr(args, name, None)
    try:
        if value is not None:
            return option.check(value, option.flag) if option.kind in ("int", "float", "port") else value
        raw = env.get(option.env, "").strip()
        return option.parse(raw, option.env) if raw else option.default
    except ValueError as exc:  # the message names the option or variable, never the value
        raise _UsageError(str(exc)) from None


def serve_options(args: argparse.Namespace, env: Optional[Mapping[str, str]] = None) -> ServeOptions:
    """The listening options from arguments, then ``OPIK_OTEL_*``, then defaults."""
    env = os.environ if env is None else env
    values = {name: _option(args, name, env) for name in serve_option_fields()}
    grpc_asked = getattr(args, "grpc_port", None) is not None or bool(env.get("OPIK_OTEL_GRPC_PORT", "").strip())
    if getattr(args, "no_grpc", False):
        values["grpc_port"] = None
    elif not grpc_available():
        if grpc_asked:
            raise _UsageError("OTLP/gRPC needs grpcio: pip install 'grpcio>=1.60' (what the [grpc] extra adds), or pass --no-grpc")
        values["grpc_port"] = None
    if values["auth_token"] and values["auth_token_file"]:
        raise _UsageError("set either OPIK_OTEL_AUTH_TOKEN (--auth-token) or OPIK_OTEL_AUTH_TOKEN_FILE (--auth-token-file), not both")
    if values["pass_credentials"] and (values["auth_token"] or values["auth_token_file"]):
        raise _UsageError(
            "OPIK_OTEL_PASS_CREDENTIALS (--pass-credentials) reads the Opik API key from the Authorization header, where "
            "OPIK_OTEL_AUTH_TOKEN / OPIK_OTEL_AUTH_TOKEN_FILE expect the bearer token: set one or the other"
        )
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


#: the GIL switch interval while serving (CPython's default: 5 ms). The worker maps a request for tens of
#: ms while the event loop reads the next bodies; at 5 ms the interpreter forces a GIL hand-off between
#: them every 5 ms of mapping. At 50 ms: about 2% more spans per CPU-second on one core, measured side by
#: side (sparse and agent spans, 5 alternating rounds each, every round higher), with the p50/p99 latency
#: at 8,000 and 12,000 spans/s unchanged (a waiting thread gets the GIL when the holder blocks, at the latest
#: after this interval: a health check waits at most 50 ms behind a big batch).
SWITCH_INTERVAL = 0.05


def run_serve(args: argparse.Namespace, on_started: Optional[Callable[[Sidecar], None]] = None) -> int:
    """Run the sidecar until SIGTERM/SIGINT; returns the exit code."""
    env = os.environ
    try:
        level = str(_option(args, "log_level", env)).upper()
    except _UsageError as exc:
        print(f"opik-otel serve: {exc}", file=sys.stderr)
        return EXIT_USAGE
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
    switch = sys.getswitchinterval()
    sys.setswitchinterval(max(switch, SWITCH_INTERVAL))
    try:
        return asyncio.run(sidecar.serve(on_started=on_started))
    except OSError as exc:
        print(f"opik-otel serve: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        sys.setswitchinterval(switch)


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m opentelemetry.exporter.opik.sidecar``: the same as ``opik-otel serve``."""
    parser = argparse.ArgumentParser(
        prog="opik-otel serve",
        description="Receive OTLP spans (HTTP protobuf/JSON, and gRPC when grpcio is installed) and forward them "
        "to Opik through the same mapping and delivery as the in-process exporter.",
    )
    add_serve_arguments(parser)
    return run_serve(parser.parse_args(argv))
