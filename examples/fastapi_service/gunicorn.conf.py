"""gunicorn settings for the example: 2 workers forked from a master that set up tracing.

``preload_app`` imports ``app`` (and so builds the tracer provider and the Opik
exporter) in the master, before the fork: the fork-safety case. Each worker's
exporter starts with an empty queue and its own connection; the app's lifespan
shutdown flushes it when the worker stops.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

wsgi_app = "app:app"
bind = os.environ.get("BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "uvicorn.workers.UvicornWorker"
preload_app = True
graceful_timeout = 20
accesslog = None

