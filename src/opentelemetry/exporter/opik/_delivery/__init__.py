"""Delivery to Opik, one concern per module, in the order an item goes through them.

* :mod:`.sink`: the ``Sink`` protocol, the factory and the one shutdown sequence the exporter, the
  sidecar and import use.
* :mod:`.queue`: the bounded in-memory queue (queued and in flight, items and bytes).
* :mod:`.durable`: with a spool, the same items on disk until resolved (the durable queue).
* :mod:`.sender`: the sender thread (``Writer``): batches, flush, shutdown, re-sends from the
  spool, and applying each item's final outcome.
* :mod:`.resolve`: split (413), isolate (400/422), shrink; yields final outcomes, changes no state.
* :mod:`.retry`: one request sent again on transient failures until its deadline.
* :mod:`.policy`: what an answer means (``classify``) and the retry waits; pure functions.
* :mod:`.flush`: ``TracerProvider.force_flush()`` waits for the exporter too.
* :mod:`.sigterm`: the opt-in SIGTERM flush.
"""
