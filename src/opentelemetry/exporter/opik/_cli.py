"""``opik-otel``: the command-line toolbox (check, settings, import, serve).

Each subcommand imports what it needs only when it runs, so ``opik-otel
check`` starts fast and never loads the sidecar's server stack.

Exit codes: 0 success; 1 the command ran but something failed (a check, a
rejected span); 2 bad usage or configuration (argparse's convention).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Dict, List, Optional, Sequence

from .version import __version__

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

_EPILOG = """\
Settings come from arguments, then the environment (OPIK_URL_OVERRIDE, OPIK_API_KEY,
OPIK_WORKSPACE, OPIK_PROJECT_NAME, OTEL_EXPORTER_OPIK_*), then ~/.opik.config, then
defaults: the same resolution as the exporter. The API key is never taken as an argument
(it would land in shell history and process lists): set OPIK_API_KEY or api_key in
~/.opik.config. `opik-otel settings` lists every setting.
"""


def _add_connection_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("connection (override the environment and ~/.opik.config)")
    g.add_argument("--url", help="Opik API base URL, e.g. http://localhost:5173/api (OPIK_URL_OVERRIDE)")
    g.add_argument("--workspace", help="Opik workspace (OPIK_WORKSPACE)")
    g.add_argument("--project", help="default project for spans that name none (OPIK_PROJECT_NAME)")
    g.add_argument("--timeout", type=float, metavar="SECONDS", help="seconds per HTTP request (OTEL_EXPORTER_OPIK_TIMEOUT)")


def _overrides(args: argparse.Namespace) -> Dict[str, Any]:
    return {
        "url": getattr(args, "url", None),
        "workspace": getattr(args, "workspace", None),
        "project_name": getattr(args, "project", None),
        "timeout": getattr(args, "timeout", None),
    }


def build_parser(with_serve_arguments: bool = False) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="opik-otel",
        description="OpenTelemetry to Opik: check a configuration, backfill OTLP files, run the OTLP sidecar.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"opik-otel {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "check",
        help="show the resolved settings and test that Opik accepts spans with them",
        description="Resolve the settings as the exporter does, print each with its source, then check that "
        "Opik is reachable, the API key and workspace are accepted and the project can be written. "
        "Exit code 0 only when every check passes; each failure prints a one-line fix.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_connection_arguments(p)

    p = sub.add_parser(
        "settings",
        help="print every setting with its value and source (no network)",
        description="Print every setting, its value as resolved now and where it came from; "
        "--markdown prints the reference table of all settings instead (docs/settings.md).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--markdown", action="store_true", help="print the settings reference as a Markdown table")
    _add_connection_arguments(p)

    p = sub.add_parser(
        "import",
        help="backfill traces into Opik from OTLP files (Collector file exporter JSON lines, protobuf, .json)",
        description="Send the spans in OTLP files to Opik as traces and spans. Reads the Collector `file` "
        "exporter's JSON lines (plain, .gz or .zst), OTLP/JSON documents (.json, one request or an array), "
        "and OTLP protobuf files (one ExportTraceServiceRequest/TracesData, or several, each prefixed by its "
        "length as a varint or, like the Collector's `format: proto`, as 4 bytes big-endian). Files are read in "
        "the order given, requests in file order, through one mapper: the Opik ids are the ones live export of "
        "the same requests produces, so a re-run (after an interruption, say) overwrites instead of duplicating.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="OTLP files; '-' reads standard input")
    p.add_argument("--dry-run", action="store_true", help="print the Opik traces as trees instead of sending them")
    p.add_argument(
        "--progress",
        choices=("auto", "bar", "lines", "none"),
        default="auto",
        help="progress on stderr: a bar on a terminal, plain lines otherwise (default: auto)",
    )
    p.add_argument("--flush-timeout", type=float, default=300.0, metavar="SECONDS", help="how long to wait at the end for delivery (default 300)")
    _add_connection_arguments(p)

    p = sub.add_parser(
        "serve",
        help="run the OTLP sidecar: receive OTLP/HTTP (and gRPC) spans and forward them to Opik",
        description="Receive OTLP spans (HTTP protobuf/JSON, and gRPC when grpcio is installed) and forward them "
        "to Opik through the same mapping and delivery as the in-process exporter.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    if with_serve_arguments:
        from .sidecar._cli import add_serve_arguments

        add_serve_arguments(p)
    return parser


def _command_of(argv: Sequence[str]) -> Optional[str]:
    for a in argv:
        if not a.startswith("-"):
            return a
    return None


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(with_serve_arguments=_command_of(argv) == "serve")
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        if args.command == "check":
            return _check(args)
        if args.command == "settings":
            return _settings(args)
        if args.command == "import":
            from ._import import run_import

            return run_import(args.files, _overrides(args), dry_run=args.dry_run, progress=args.progress,
                              flush_timeout=args.flush_timeout)
        if args.command == "serve":
            from .sidecar._cli import run_serve

            return run_serve(args)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    parser.error(f"unknown command {args.command!r}")
    return EXIT_USAGE  # pragma: no cover - parser.error exits


def _resolve(args: argparse.Namespace) -> Any:
    from ._config import ConfigError, resolve_settings

    try:
        return resolve_settings(_overrides(args))
    except ConfigError as exc:
        print(f"opik-otel: configuration error: {exc}", file=sys.stderr)
        return None


def _check(args: argparse.Namespace) -> int:
    from ._check import report, run_checks

    settings = _resolve(args)
    if settings is None:
        return EXIT_USAGE
    return report(settings, run_checks(settings) + _sidecar_file_checks(), sys.stdout)


def _sidecar_file_checks() -> List[Any]:
    """The sidecar's TLS and token files (``OPIK_OTEL_TLS_*``, ``OPIK_OTEL_AUTH_TOKEN_FILE``), read as ``serve`` reads them."""
    names = ("OPIK_OTEL_TLS_CERT_FILE", "OPIK_OTEL_TLS_KEY_FILE", "OPIK_OTEL_TLS_CLIENT_CA_FILE", "OPIK_OTEL_AUTH_TOKEN_FILE")
    given = [os.environ.get(n, "").strip() or None for n in names]
    if not any(given):
        return []  # the sidecar's server stack is only loaded when there is something to check
    from ._check import FAIL, OK, WARN, Check
    from .sidecar._tls import TlsFiles, check_files

    status = {"error": FAIL, "warning": WARN, "ok": OK}
    out: List[Any] = []
    if given[3] and os.environ.get("OPIK_OTEL_AUTH_TOKEN", "").strip():
        out.append(Check("sidecar auth", FAIL, "both OPIK_OTEL_AUTH_TOKEN and OPIK_OTEL_AUTH_TOKEN_FILE are set", "keep one"))
    for level, message in check_files(TlsFiles(*given)):
        out.append(Check("sidecar TLS" if "TOKEN" not in message else "sidecar auth", status[level], message,
                         "fix the file named, or unset the variable" if level == "error" else ""))
    return out


def _settings(args: argparse.Namespace) -> int:
    from ._check import format_settings, settings_markdown

    if args.markdown:
        sys.stdout.write(settings_markdown())
        return EXIT_OK
    settings = _resolve(args)
    if settings is None:
        return EXIT_USAGE
    sys.stdout.write(format_settings(settings) + "\n")
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
