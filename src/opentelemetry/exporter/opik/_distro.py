"""Zero code: this package's distro and SDK configurator for ``opentelemetry-instrument``.

``opentelemetry-instrument`` loads one distro (``opentelemetry_distro`` entry points, the first found
unless ``OTEL_PYTHON_DISTRO`` names one) and then one configurator (``opentelemetry_configurator``,
the first found unless ``OTEL_PYTHON_CONFIGURATOR`` names one). The ``instrument`` extra installs
``opentelemetry-instrumentation`` and no other distro, so ``opik`` is the one:

- :class:`OpikDistro` sets defaults only where the user set nothing: traces to ``opik``, metrics
  and logs to ``none`` (Opik takes traces; ``OTEL_LOGS_EXPORTER=opik`` brings content from log
  records), and ``OTEL_PYTHON_CONFIGURATOR=opik`` so its configurator is the one that runs. It
  puts a stderr fallback on this package's and the instrumentation loader's loggers, and says
  when an instrumentation fails to import.
- :class:`OpikConfigurator` is the SDK's own configurator, which first takes out of
  ``OTEL_{TRACES,METRICS,LOGS}_EXPORTER`` the exporters that are not installed (with a warning
  naming the variable), instead of letting one missing exporter abort all configuration.

With ``opentelemetry-distro`` installed too, which distro runs depends on install order unless
``OTEL_PYTHON_DISTRO`` says (``opik`` gives the above; ``distro`` gives OTLP defaults for all three
signals, which this configurator trims to the exporters that exist).
"""

from __future__ import annotations

import logging
import os
import sys
from importlib.metadata import entry_points
from typing import Any, Dict, List, Optional, Tuple

from opentelemetry.instrumentation.distro import BaseDistro  # type: ignore[attr-defined]
from opentelemetry.sdk._configuration import _OTelSDKConfigurator

_logger = logging.getLogger("opentelemetry.exporter.opik")

#: the defaults the distro sets when the variable is unset (or empty)
DEFAULTS: Tuple[Tuple[str, str], ...] = (
    ("OTEL_TRACES_EXPORTER", "opik"),
    ("OTEL_METRICS_EXPORTER", "none"),
    ("OTEL_LOGS_EXPORTER", "none"),
    ("OTEL_PYTHON_CONFIGURATOR", "opik"),
)
#: the loggers whose warnings must reach stderr even when only OTel's LoggingHandler is on the root
WATCHED_LOGGERS = ("opentelemetry.exporter.opik", "opentelemetry.instrumentation", "opentelemetry.sdk._configuration")
_SIGNALS = (("traces", "OTEL_TRACES_EXPORTER"), ("metrics", "OTEL_METRICS_EXPORTER"), ("logs", "OTEL_LOGS_EXPORTER"))


class OpikDistro(BaseDistro):  # type: ignore[misc]
    """Defaults for Opik (only where unset), stderr for our warnings, loud instrumentation import failures."""

    def _configure(self, **kwargs: Any) -> None:
        install_stderr_fallback()
        for name, value in DEFAULTS:
            if not os.environ.get(name, "").strip():
                os.environ[name] = value

    def load_instrumentor(self, entry_point: Any, **kwargs: Any) -> None:
        try:
            super().load_instrumentor(entry_point, **kwargs)
        except ModuleNotFoundError as exc:
            missing = exc.name or ""
            if missing.startswith("opentelemetry"):  # a broken instrumentation, not a library the app lacks
                _logger.warning(
                    "the %r instrumentation (%s) could not be loaded: %s; its spans will be missing. A version of "
                    "one of its OpenTelemetry dependencies does not match it (pip check shows which)",
                    entry_point.name, entry_point.value, exc,
                )
            raise


class OpikConfigurator(_OTelSDKConfigurator):  # type: ignore[misc]
    """The SDK configurator, minus exporters that are named but not installed."""

    def _configure(self, **kwargs: Any) -> None:
        install_stderr_fallback()
        if OpikDistro._instance is None and not os.environ.get("OTEL_PYTHON_DISTRO", "").strip():
            _logger.warning(
                "opentelemetry-instrument used another distro than this package's (opentelemetry-distro is installed "
                "too, and it was found first), so its defaults apply; set OTEL_PYTHON_DISTRO=opik to use this one"
            )
        drop_missing_exporters(os.environ)
        super()._configure(**kwargs)


def drop_missing_exporters(env: "os._Environ[str] | Dict[str, str]") -> List[str]:
    """Take the exporters no package provides out of ``OTEL_*_EXPORTER``; one warning each. Returns them."""
    dropped: List[str] = []
    for signal, var in _SIGNALS:
        raw = env.get(var, "")
        names = [n.strip() for n in raw.split(",") if n.strip()]
        if not names or raw.strip().lower() == "none":
            continue
        group = f"opentelemetry_{signal}_exporter"
        available = {ep.name for ep in entry_points(group=group)}
        kept = []
        for name in names:
            component = _component(name, signal, env)
            if component is None or component in available:
                kept.append(name)
                continue
            dropped.append(f"{var}={name}")
            _logger.warning(
                "%s names %r, but no installed package provides the %r %s exporter: %s are not exported. "
                "Set %s=none (or to an installed exporter%s), or install it",
                var, name, component, signal, signal, var, ", e.g. opik" if signal != "metrics" else "",
            )
        if len(kept) != len(names):
            env[var] = ",".join(kept) if kept else "none"
    return dropped


def _component(name: str, signal: str, env: "os._Environ[str] | Dict[str, str]") -> Optional[str]:
    """The entry point name the SDK looks up for ``name`` (``otlp`` depends on the protocol); None: unknown."""
    if name not in ("otlp", "otlp_proto_grpc", "otlp_proto_http"):
        return name
    protocol = (env.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "").strip()
    if name != "otlp":
        return name
    return {"": "otlp_proto_grpc", "grpc": "otlp_proto_grpc", "http/protobuf": "otlp_proto_http"}.get(protocol)


class StderrFallback(logging.Handler):
    """Writes a record to stderr only when no other handler would show it.

    Like :data:`logging.lastResort`, but it does not count OpenTelemetry's own ``LoggingHandler``
    (which the logging instrumentation puts on the root logger and which sends records to the log
    exporter, often ``none``) as somebody showing the record.
    """

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.setFormatter(logging.Formatter("%(name)s: %(levelname)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if _shown_elsewhere(record, self):
            return
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:  # noqa: BLE001 - a closed stderr never breaks the app
            pass


def _shown_elsewhere(record: logging.LogRecord, me: logging.Handler) -> bool:
    logger: Optional[logging.Logger] = logging.getLogger(record.name)
    while logger is not None:
        for handler in logger.handlers:
            if handler is me or isinstance(handler, (StderrFallback, logging.NullHandler)) or _is_otel_handler(handler):
                continue
            if record.levelno >= handler.level:
                return True
        if not logger.propagate:
            return False
        logger = logger.parent
    return False


def _is_otel_handler(handler: logging.Handler) -> bool:
    return type(handler).__module__.startswith("opentelemetry.")


def install_stderr_fallback() -> None:
    """Put a :class:`StderrFallback` on each watched logger that has none (idempotent)."""
    for name in WATCHED_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(h, StderrFallback) for h in logger.handlers):
            logger.addHandler(StderrFallback())


__all__ = ["DEFAULTS", "OpikConfigurator", "OpikDistro", "StderrFallback", "drop_missing_exporters",
           "install_stderr_fallback"]
