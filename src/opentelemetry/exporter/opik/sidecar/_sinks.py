"""Delivery sinks by credentials: the sidecar's own, and with ``--pass-credentials`` one per sender's.

A sender that passes ``Authorization`` (its Opik API key) and/or ``Comet-Workspace`` (as for Opik's
own OTLP endpoint) gets its spans delivered with those credentials: one sink per (key, workspace),
created on first use, at most ``max_sinks`` of them; the least recently used one beyond that is
closed through the one shutdown sequence (:func:`close_sink`: delivered within the timeout, the rest
spooled or counted). What a sender does not pass comes from the sidecar's settings. A key is only
ever held in the sink's settings and transport; it is never logged, and a sink is named by a hash.

Each pass-through sink has its own :class:`Stats` (summed into ``/metrics``), its own queue bounds
(``max_queue_items`` / ``max_queue_bytes`` each) and, with a spool, its own directory
``<spool>/senders/<hash>``, re-sent when that sender's credentials come again.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import logging
import os
import threading
import time
from typing import Callable, Dict, List, Optional

from .._config import OpikSettings
from .._delivery.sink import Sink, close_sink
from .._join import LogJoin
from .._pipeline import Pipeline
from .._stats import Stats
from .._transport import Transport
from ._health import OpikProbe

_logger = logging.getLogger("opentelemetry.exporter.opik.sidecar")

#: at most this many sinks of passed credentials are open at once (the least recently used is closed)
MAX_SINKS = 16
#: an evicted sink gets this long to deliver what it holds (the rest is spooled or counted)
EVICT_TIMEOUT = 10.0
#: credentials Opik refused are remembered (at most this many, for this long) and opened no sink
MAX_REFUSED = 64
REFUSED_SECONDS = 5.0
_FIX = "check the Authorization (Opik API key) and Comet-Workspace the sender passes"


class CredentialsRefused(Exception):
    """Opik refuses credentials a sender passed: no sink is opened (none is evicted for them)."""

MakeSink = Callable[[OpikSettings, Stats], Sink]
#: maps and queues spans the log join releases into a target's sink
Deliver = Callable[["Target", list, bool], None]
MakePipeline = Callable[[OpikSettings, Stats], Pipeline]
MakeJoin = Callable[[Stats], LogJoin]


@dataclasses.dataclass(frozen=True)
class Credentials:
    """What a sender passed (``Authorization``, ``Comet-Workspace``); None: not passed."""

    api_key: Optional[str] = dataclasses.field(default=None, repr=False)
    workspace: Optional[str] = None

    @staticmethod
    def from_headers(authorization: Optional[str], workspace: Optional[str]) -> Optional["Credentials"]:
        key = (authorization or "").strip() or None
        ws = (workspace or "").strip() or None
        return Credentials(key, ws) if key or ws else None


class Target:
    """One sink and what belongs to it: its pipeline, its credentials' probe, its stats; the join's owner
    of its spans."""

    def __init__(self, name: str, pipeline: Pipeline, join: LogJoin, sink: Sink, stats: Stats, probe: OpikProbe, passed: bool) -> None:
        #: ``own`` or ``sender-<hash>``; never the key
        self.name = name
        #: maps this target's spans; what its stages hold back is released into this sink only
        self.pipeline = pipeline
        #: GenAI content these senders send as OTLP logs joins their spans here, and only here
        self.join = join
        #: OTLP logs came for this target: its LLM spans without content wait for them
        self.logs_seen = False
        self.sink = sink
        self.stats = stats
        self.probe = probe
        #: the credentials are a sender's (a refusal is the sender's to fix: 401)
        self.passed = passed
        #: maps and queues spans the log join releases (the pool sets it on every target)
        self.deliver: Optional[Deliver] = None

    def deliver_joined(self, records: list, resend: bool) -> None:
        """The join's Owner protocol: spans this target's senders sent, released with their content."""
        if self.deliver is None:  # pragma: no cover - the pool sets it before any span is joined
            raise RuntimeError(f"the delivery sink {self.name} has no way to queue joined spans")
        self.deliver(self, records, resend)


def sink_name(creds: Credentials) -> str:
    digest = hashlib.sha256(f"{creds.api_key or ''}\0{creds.workspace or ''}".encode("utf-8", "replace")).hexdigest()
    return "sender-" + digest[:16]


class SinkPool:
    """Thread-safe; the default target is never evicted."""

    def __init__(
        self,
        settings: OpikSettings,
        default: Target,
        make: MakeSink,
        make_pipeline: MakePipeline,
        make_join: MakeJoin,
        deliver: Deliver,
        *,
        max_sinks: int = MAX_SINKS,
        before_close: Optional[Callable[[Target], None]] = None,
    ) -> None:
        self.settings = settings
        self.default = default
        default.deliver = deliver
        self._deliver = deliver
        self._make = make
        self._make_pipeline = make_pipeline
        self._make_join = make_join
        self.max_sinks = max_sinks
        self._before_close = before_close
        self._lock = threading.Lock()
        self._passed: "collections.OrderedDict[Credentials, Target]" = collections.OrderedDict()
        #: probes of credentials Opik refused, newest last (bounded by MAX_REFUSED)
        self._refused: "collections.OrderedDict[Credentials, OpikProbe]" = collections.OrderedDict()
        self._closing: List[threading.Thread] = []
        #: counters of sinks closed so far (so /metrics never goes down)
        self._retired = Stats()

    def target(self, creds: Optional[Credentials]) -> Target:
        """The target of ``creds`` (the default one for None or the sidecar's own); new credentials are
        checked with Opik first: refused, they raise :class:`CredentialsRefused` and open no sink."""
        if creds is None:
            return self.default
        s = self.settings
        if (creds.api_key or s.api_key) == s.api_key and (creds.workspace or s.workspace) == s.workspace:
            return self.default  # the sidecar's own credentials
        evicted: Optional[Target] = None
        with self._lock:
            found = self._passed.get(creds)
            if found is not None:
                self._passed.move_to_end(creds)
                return found
        settings = self._settings_for(creds)
        probe = self._check(creds, settings)  # blocking, outside the lock (only the worker opens sinks)
        with self._lock:
            found = self._passed.get(creds)
            if found is not None:
                probe.close()
                return found
            target = self._create(creds, settings, probe)
            self._passed[creds] = target
            if len(self._passed) > self.max_sinks:
                _, evicted = self._passed.popitem(last=False)
        if evicted is not None:
            self._close_later(evicted)
        return target

    def _settings_for(self, creds: Credentials) -> OpikSettings:
        s = self.settings
        spool = os.path.join(s.spool_dir, "senders", sink_name(creds)[len("sender-"):]) if s.spool_dir else None
        return dataclasses.replace(s, api_key=creds.api_key or s.api_key, workspace=creds.workspace or s.workspace, spool_dir=spool)

    def _check(self, creds: Credentials, settings: OpikSettings) -> OpikProbe:
        """A probe of ``creds`` that Opik did not refuse; raises :class:`CredentialsRefused`."""
        with self._lock:
            probe = self._refused.get(creds)
        if probe is None:
            probe = OpikProbe(settings, None if settings.dry_run else Transport(settings), fix=_FIX)
        result = probe.check(REFUSED_SECONDS)
        with self._lock:
            if not result.refused:
                self._refused.pop(creds, None)
                return probe
            self._refused[creds] = probe
            self._refused.move_to_end(creds)
            stale = self._refused.popitem(last=False)[1] if len(self._refused) > MAX_REFUSED else None
        if stale is not None:
            stale.close()
        raise CredentialsRefused(result.why)

    def _create(self, creds: Credentials, settings: OpikSettings, probe: OpikProbe) -> Target:
        name = sink_name(creds)
        stats = Stats()
        sink = self._make(settings, stats)
        _logger.info("opened a delivery sink for a sender's credentials (%s, workspace %r)", name, settings.workspace)
        target = Target(name, self._make_pipeline(settings, stats), self._make_join(stats), sink, stats, probe, passed=True)
        target.deliver = self._deliver
        return target

    def targets(self) -> List[Target]:
        with self._lock:
            return [self.default, *self._passed.values()]

    # -- closing ----------------------------------------------------------------------
    def _close_later(self, target: Target) -> None:
        """Close an evicted sink off the request path (it may take up to EVICT_TIMEOUT to deliver)."""
        t = threading.Thread(target=self._close_one, args=(target, EVICT_TIMEOUT), name="opik-otel-close-sink", daemon=True)
        with self._lock:
            self._closing = [c for c in self._closing if c.is_alive()] + [t]
        t.start()

    def _close_one(self, target: Target, timeout: float) -> bool:
        """The one shutdown sequence for one target: what its pipeline holds is released into its sink."""
        if self._before_close is not None:
            try:
                self._before_close(target)
            except Exception:  # noqa: BLE001 - closing goes on
                _logger.exception("could not release the spans a closing sink's senders wait with")
        done = close_sink(target.sink, timeout, target.pipeline.close)
        target.probe.close()
        if target is not self.default:
            self._retire(target.stats)
            _logger.info("closed the delivery sink %s", target.name)
        return done

    def _retire(self, stats: Stats) -> None:
        snap = stats.snapshot()
        for key, value in snap.items():
            if key == "dropped" and isinstance(value, dict):
                for reason, n in value.items():
                    self._retired.drop(reason, n)
            elif isinstance(value, (int, float)) and not isinstance(value, bool) and not key.startswith("queue_") and not key.endswith("_max"):
                self._retired.add(key, value)

    def close(self, timeout: float) -> bool:
        """At shutdown: every sink at once within ``timeout``."""
        end = time.monotonic() + timeout
        with self._lock:
            passed = list(self._passed.values())
            self._passed.clear()
            closing = list(self._closing)
            refused = list(self._refused.values())
            self._refused.clear()
        for probe in refused:
            probe.close()
        results: Dict[str, bool] = {}
        threads = []
        for target in passed:
            t = threading.Thread(target=lambda tg=target: results.__setitem__(tg.name, self._close_one(tg, timeout)), daemon=True)
            t.start()
            threads.append(t)
        done = self._close_one(self.default, timeout)
        for t in threads + closing:
            t.join(max(end - time.monotonic(), 0.0) + 1.0)
        return done and all(results.get(t.name, False) for t in passed)

    # -- what /metrics and the exit line report --------------------------------------------
    def stats_snapshot(self, main: Stats) -> Dict[str, object]:
        """``main`` (the pipeline's and the default sink's) plus every pass-through sink's, open or closed."""
        out = main.snapshot()
        extra = [self._retired] + [t.stats for t in self.targets() if t is not self.default]
        for stats in extra:
            _merge(out, stats.snapshot())
        return out

    def gauges(self) -> Dict[str, float]:
        items = 0.0
        n_bytes = 0.0
        targets = self.targets()
        for t in targets:
            snap = t.stats.snapshot()
            items += t.sink.pending()
            value = snap.get("queue_bytes", 0)
            n_bytes += float(value) if isinstance(value, (int, float)) else 0.0
        return {"queue_items": items, "queue_bytes": n_bytes, "sinks": float(len(targets))}


def _merge(out: Dict[str, object], snap: Dict[str, object]) -> None:
    for key, value in snap.items():
        if key == "dropped" and isinstance(value, dict):
            dropped = out.setdefault("dropped", {})
            assert isinstance(dropped, dict)
            for reason, n in value.items():
                dropped[reason] = dropped.get(reason, 0) + n
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            prev = out.get(key, 0)
            prev_n = prev if isinstance(prev, (int, float)) else 0
            out[key] = max(prev_n, value) if key.endswith("_max") else prev_n + value


__all__ = ["MAX_SINKS", "Credentials", "SinkPool", "Target", "sink_name"]
