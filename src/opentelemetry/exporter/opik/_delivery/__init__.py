"""Delivery to Opik, one concern per module.

* :mod:`.policy`: what an answer from Opik means (``classify``) and how long to wait before a retry
  (``retry_delay``); pure functions, no sockets, no state.
* :mod:`.durable`: the on-disk queue used when a spool directory is set (every accepted item is on
  disk before ``export()`` returns, and leaves it only once resolved).

The sender itself is still :class:`opentelemetry.exporter.opik._writer.Writer`.
"""
