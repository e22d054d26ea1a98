"""The sidecar's own options: one table that drives ``serve_options``, ``--help`` and ``docs/settings.md``.

Each row is one option: its :class:`ServeOptions` field, its ``OPIK_OTEL_*`` variable, its kind (how
a value is parsed and checked, from the command line or the environment alike), its help text, and
the ``--help`` group it is shown in. The default is the :class:`ServeOptions` field's own (read from
the dataclass, so it is written once); ``default_text`` only says how a computed default reads.
Help texts and the docs append ``(default ...)`` and ``[OPIK_OTEL_...]`` themselves.

To add an option: a field on :class:`ServeOptions` and a row here; ``tests/test_settings_spec.py``
checks that every field has a row and every row a variable, a help text and a line in the docs.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, Optional, Tuple

#: how each kind reads from argparse (its ``type``) and what an environment value must look like
KINDS = ("str", "int", "float", "port", "bool", "choice")


@dataclasses.dataclass(frozen=True)
class ServeOption:
    field: str
    env: str
    kind: str
    help: str
    group: str
    metavar: Optional[str] = None
    #: how the default reads when the field's value is not the whole story (computed, or a size)
    default_text: Optional[str] = None
    #: the value of a ``choice`` option must be one of these
    choices: Tuple[str, ...] = ()
    #: not a ServeOptions field (read by ``run_serve`` itself)
    default_here: Any = None

    @property
    def flag(self) -> str:
        return "--" + self.field.replace("_", "-")

    @property
    def default(self) -> Any:
        fields = _serve_fields()
        if self.field in fields:
            f = fields[self.field]
            return f.default if f.default is not dataclasses.MISSING else None
        return self.default_here

    def shown_default(self) -> str:
        if self.default_text:
            return self.default_text
        value = self.default
        if value is None:
            return "not set"
        if isinstance(value, bool):
            return "on" if value else "off"
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)

    def help_text(self) -> str:
        """The ``--help`` text: the meaning, the default, the variable."""
        return f"{self.help} (default {self.shown_default()}) [{self.env}]"

    def parse(self, raw: str, source: str) -> Any:
        """``raw`` from the environment, or argparse's already typed value as text; errors name ``source``,
        never the value."""
        text = raw.strip()
        if self.kind == "str":
            return text
        if self.kind == "bool":
            low = text.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError(f"{source} must be true or false")
        if self.kind == "choice":
            if text.lower() not in self.choices:
                raise ValueError(f"{source} must be one of {', '.join(self.choices)}")
            return text.lower()
        return self.check(_number(self.kind, text, source), source)

    def check(self, value: Any, source: str) -> Any:
        """The range check of a number, whichever way it came."""
        if self.kind == "port":
            if not 0 <= value <= 65535:
                raise ValueError(f"{source} must be a port between 0 and 65535")
        elif self.kind in ("int", "float") and not value > 0:
            raise ValueError(f"{source} must be positive")
        return value


def _number(kind: str, text: str, source: str) -> Any:
    try:
        return float(text) if kind == "float" else int(text.replace("_", ""))
    except ValueError:
        raise ValueError(f"{source} must be a {'number' if kind == 'float' else 'whole number'}") from None


def _serve_fields() -> Dict[str, "dataclasses.Field[Any]"]:
    from ._server import ServeOptions

    return {f.name: f for f in dataclasses.fields(ServeOptions)}


LISTENING = "listening"
TLS = "TLS (both receivers, same ports; files reread on SIGHUP or when they change)"
LIMITS = "limits (each answered with a clear status and message)"
CONNECTIONS = "connections (see 'Connections and timeouts' in docs/cli.md)"
BEHAVIOUR = "behaviour"
#: the ``--help`` groups in the order they are shown (the Opik settings group sits after TLS)
GROUPS = (LISTENING, TLS, LIMITS, CONNECTIONS, BEHAVIOUR)

OPTIONS: Tuple[ServeOption, ...] = (
    ServeOption("host", "OPIK_OTEL_HOST", "str", "address to listen on (0.0.0.0 or :: for all, then set an auth token)",
                LISTENING),
    ServeOption("port", "OPIK_OTEL_PORT", "port", "OTLP/HTTP port; 0 picks a free one", LISTENING, "PORT"),
    ServeOption("grpc_port", "OPIK_OTEL_GRPC_PORT", "port", "OTLP/gRPC port; 0 picks a free one", LISTENING, "PORT",
                default_text="4317 when grpcio is installed"),
    ServeOption("auth_token", "OPIK_OTEL_AUTH_TOKEN", "str",
                "require 'Authorization: Bearer TOKEN' on every OTLP request (prefer the environment variable: "
                "arguments show in process lists)", LISTENING, "TOKEN"),
    ServeOption("auth_token_file", "OPIK_OTEL_AUTH_TOKEN_FILE", "str",
                "accept any bearer token listed in FILE (one per line, # comments); reread on SIGHUP or when it "
                "changes; instead of --auth-token", LISTENING, "FILE"),
    ServeOption("tls_cert", "OPIK_OTEL_TLS_CERT_FILE", "str", "serve TLS (1.2 or later) with this PEM certificate chain",
                TLS, "FILE"),
    ServeOption("tls_key", "OPIK_OTEL_TLS_KEY_FILE", "str", "the PEM private key of --tls-cert", TLS, "FILE"),
    ServeOption("tls_client_ca", "OPIK_OTEL_TLS_CLIENT_CA_FILE", "str",
                "mTLS: require a client certificate signed by a CA in this PEM file", TLS, "FILE"),
    ServeOption("max_body_bytes", "OPIK_OTEL_MAX_BODY_BYTES", "int",
                "request body size, before and after decompression; larger: 413", LIMITS, "N",
                default_text="20 MiB"),
    ServeOption("max_spans_per_request", "OPIK_OTEL_MAX_SPANS_PER_REQUEST", "int", "spans in one request; more: 413",
                LIMITS, "N"),
    ServeOption("max_attributes", "OPIK_OTEL_MAX_ATTRIBUTES", "int",
                "attributes per span, event or resource; the rest are dropped and counted", LIMITS, "N"),
    ServeOption("max_depth", "OPIK_OTEL_MAX_DEPTH", "int",
                "nesting of array/kvlist values; deeper ones are replaced by a marker", LIMITS, "N"),
    ServeOption("max_connections", "OPIK_OTEL_MAX_CONNECTIONS", "int",
                "HTTP requests reading a body or being processed at once, and concurrent gRPC RPCs (idle connections "
                "do not count); more: 503 + Retry-After / RESOURCE_EXHAUSTED", LIMITS, "N"),
    ServeOption("max_inflight_bytes", "OPIK_OTEL_MAX_INFLIGHT_BYTES", "int",
                "request bytes held at once across connections; more: 503 + Retry-After", LIMITS, "N",
                default_text="4 x --max-body-bytes, at least 64 MiB"),
    ServeOption("max_pending_spans", "OPIK_OTEL_MAX_PENDING_SPANS", "int",
                "no effect, kept so existing settings still parse: requests are mapped before they are answered",
                LIMITS, "N"),
    ServeOption("idle_timeout", "OPIK_OTEL_IDLE_TIMEOUT", "float",
                "close a kept-alive connection silent this long after a response (gRPC: with no RPC); keep it above "
                "a load balancer's idle timeout", CONNECTIONS, "SECONDS"),
    ServeOption("header_timeout", "OPIK_OTEL_HEADER_TIMEOUT", "float",
                "time from connecting (or a request's first byte) to the end of its head; then 408 and close "
                "(gRPC: the handshake)", CONNECTIONS, "SECONDS"),
    ServeOption("body_timeout", "OPIK_OTEL_BODY_TIMEOUT", "float",
                "time from a request's head to the end of its body; then 408 and close (gRPC: DEADLINE_EXCEEDED)",
                CONNECTIONS, "SECONDS"),
    ServeOption("retry_after", "OPIK_OTEL_RETRY_AFTER", "float",
                "delay asked of senders when the queue to Opik is full (429 / RESOURCE_EXHAUSTED)", BEHAVIOUR,
                "SECONDS"),
    ServeOption("shutdown_timeout", "OPIK_OTEL_SHUTDOWN_TIMEOUT", "float",
                "on SIGTERM: time to finish requests and deliver; the rest is spooled", BEHAVIOUR, "SECONDS"),
    ServeOption("pass_credentials", "OPIK_OTEL_PASS_CREDENTIALS", "bool",
                "deliver each sender's spans with the Authorization (Opik API key) and Comet-Workspace it sends, as "
                "Opik's own OTLP endpoint does (one delivery sink per key and workspace, at most 16); not with "
                "--auth-token", BEHAVIOUR),
    ServeOption("console", "OPIK_OTEL_CONSOLE", "bool",
                "also print each received trace as a tree as it arrives (while wiring a Collector)", BEHAVIOUR),
    ServeOption("log_level", "OPIK_OTEL_LOG_LEVEL", "choice", "log level on stderr", BEHAVIOUR,
                choices=("debug", "info", "warning", "error"), default_here="info"),
)
BY_FIELD: Dict[str, ServeOption] = {o.field: o for o in OPTIONS}


def serve_option_fields() -> Tuple[str, ...]:
    """The rows that are :class:`ServeOptions` fields (``log_level`` is read by ``run_serve``)."""
    fields = _serve_fields()
    return tuple(o.field for o in OPTIONS if o.field in fields)


__all__ = ["BY_FIELD", "GROUPS", "KINDS", "OPTIONS", "ServeOption", "serve_option_fields"]
