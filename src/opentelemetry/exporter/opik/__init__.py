"""OpenTelemetry span exporter for Opik (https://github.com/comet-ml/opik).

``OpikSpanExporter`` turns OTel traces into first-class Opik traces and spans;
``OpikSampler`` makes their ids agree across processes; ``opik-otel serve``
is the OTLP sidecar for everything that cannot load a Python exporter.
"""

from ._config import ConfigError, OpikSettings, resolve_settings
from ._exporter import OpikSpanExporter
from ._sampler import OpikSampler
from .version import __version__

__all__ = ["ConfigError", "OpikSampler", "OpikSettings", "OpikSpanExporter", "resolve_settings", "__version__"]
