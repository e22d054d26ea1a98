"""``python -m opentelemetry.exporter.opik.sidecar`` = ``opik-otel serve``."""

import sys

from ._cli import main

sys.exit(main())
