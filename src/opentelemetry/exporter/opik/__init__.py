"""OpenTelemetry span exporter for Opik (https://github.com/comet-ml/opik).

``OpikSpanExporter`` turns OTel traces into first-class Opik traces and spans;
``OpikSampler`` makes their ids agree across processes; ``opik-otel serve``
is the OTLP sidecar for everything that cannot load a Python exporter.
"""

from ._config import ConfigError, OpikSettings, resolve_settings
from ._exporter import OpikSpanExporter
from ._log_exporter import OpikLogExporter
from ._pipeline import MaskHook
from ._sampler import OpikSampler
from ._trace_link import opik_trace_id, opik_trace_url
from .version import __version__

__all__ = [
    "ConfigError",
    "MaskHook",
    "OpikLogExporter",
    "OpikSampler",
    "OpikSettings",
    "OpikSpanExporter",
    "opik_trace_id",
    "opik_trace_url",
    "resolve_settings",
    "__version__",
]
