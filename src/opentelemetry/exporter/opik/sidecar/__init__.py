"""``opik-otel serve``: an OTLP receiver (HTTP and gRPC) that forwards to Opik.

Apps that cannot load the Python exporter (Node, Go, Java, or a fleet behind
the OpenTelemetry Collector) export OTLP here; spans go through the same
decoding-to-:class:`SpanRecord`, mapping and delivery as the in-process
exporter, so the same span gets the same Opik ids either way.
"""

from ._decode import Limits
from ._outcome import Outcome
from ._receiver import Receiver
from ._server import ServeOptions, Sidecar, run

__all__ = ["Limits", "Outcome", "Receiver", "ServeOptions", "Sidecar", "run"]
