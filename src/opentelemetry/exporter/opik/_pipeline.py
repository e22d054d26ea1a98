"""Span records -> encoded Opik items: mapping, privacy, the user's mask hook, encoding.

The one place between decoding and delivery, shared by the exporter, the
sidecar and ``opik-otel import``.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, Union

from . import _trace_link
from ._config import OpikSettings
from ._errors import trail
from ._items import Item
from ._json import dumps, loads
from ._mapping import Mapped, Mapper
from ._mapping._prompts import PromptLinker, rest_post
from ._record import SpanRecord
from ._stats import Stats

_logger = logging.getLogger("opentelemetry.exporter.opik")

#: ``mask(item_dict, kind) -> item_dict | None``; ``kind`` is ``trace``, ``span`` or ``span_score``
MaskHook = Callable[[Dict[str, Any], str], Optional[Dict[str, Any]]]
#: a stage sees every mapped item and returns it (possibly changed), None to drop (or hold)
#: it, or a list: items it held earlier and releases now (plus, usually, this one). The
#: released items go on through the later stages. A stage may also have ``begin(items)``
#: (called with each whole batch first, so a trace row can be judged by the spans that
#: came in the same batch) and ``drain(final) -> list`` (after each batch, and with
#: ``final=True`` from :meth:`Pipeline.close`) to release or expire what it holds.
#: A stage of this package may also have ``judge(item, body)``, the same as calling it with
#: ``body = dumps(item.data)`` at hand: the pipeline encodes an item once, before the first such
#: stage, and an item they all pass unchanged is sent as those very bytes (see :meth:`Pipeline._run`).
Stage = Callable[[Mapped], Union[None, Mapped, List[Mapped]]]
#: ``judge(item, body)``: a stage's call with ``body == dumps(item.data)`` given
Judge = Callable[[Mapped, bytes], Union[None, Mapped, List[Mapped]]]


class Processed:
    __slots__ = ("items", "rejected")

    def __init__(self, items: List[Item], rejected: List[Tuple[str, str]]) -> None:
        self.items = items
        #: ``(label, reason)`` of spans that could not be mapped
        self.rejected = rejected


class Pipeline:
    def __init__(
        self,
        settings: OpikSettings,
        mapper: Optional[Mapper] = None,
        mask: Optional[MaskHook] = None,
        stats: Optional[Stats] = None,
        stages: Optional[List[Stage]] = None,
    ) -> None:
        self.settings = settings
        self.mapper = mapper or Mapper(settings, prompts=None if settings.dry_run else PromptLinker(rest_post(settings)))
        _trace_link.register(self.mapper.cache, settings.url)  # opik_trace_id() asks this cache
        self.mask = mask
        self.stats = stats or Stats()
        self.stages: List[Stage] = list(stages) if stages is not None else default_stages(settings, self.stats)
        self._mask_failed: set = set()
        self._stage_failed = False
        #: ``settle(item, sent)`` of stages that act only once an item is known to leave (attachments)
        self._settlers = [f for f in (getattr(st, "settle", None) for st in self.stages) if f is not None]
        #: ``(stages, [stage.judge or None per stage])``, redone if ``stages`` is replaced
        self._judges: Tuple[List[Stage], List[Optional[Judge]]] = ([], [])

    def process(
        self, records: Iterable[SpanRecord], default_project: Optional[str] = None, updated_at: Optional[str] = None
    ) -> Processed:
        """``updated_at`` (ISO time) replaces the items' ``last_updated_at``: a span sent again, complete, must win the upsert."""
        records = list(records)
        self.stats.add("spans_received", len(records))
        items: List[Item] = []
        begins = [b for b in (getattr(stage, "begin", None) for stage in self.stages) if b is not None]
        if begins:
            # a stage judges items by their whole batch: map it all first
            result = self.mapper.map(records, default_project)
            rejected = result.rejected
            self._log_rejected(rejected)
            for begin in begins:
                begin(result.items)
            for m in result.items:
                if updated_at is not None and m.kind != "span_score":
                    m.data["last_updated_at"] = updated_at
                self._run(m, 0, items)
        else:
            # encode each span's items as soon as they are mapped, so its structures
            # die young instead of the whole batch feeding the cyclic GC; the items
            # keep the batch order (traces, then spans, then scores)
            rejected = []
            buckets: Dict[str, List[Item]] = {"trace": [], "span": [], "span_score": []}
            run = self._run
            for span_items in self.mapper.iter_map(records, default_project, rejected):
                for m in span_items:
                    if updated_at is not None and m.kind != "span_score":
                        m.data["last_updated_at"] = updated_at
                    out = buckets.get(m.kind)
                    run(m, 0, out if out is not None else buckets["span"])
            self._log_rejected(rejected)
            items = buckets["trace"] + buckets["span"] + buckets["span_score"]
        self._drain(False, items)
        return Processed(items, rejected)

    def _log_rejected(self, rejected: List[Tuple[str, str]]) -> None:
        if rejected:
            self.stats.add("spans_rejected", len(rejected))
            for label, reason in rejected[:5]:
                _logger.warning("could not map %s: %s", label, reason)

    def close(self) -> List[Item]:
        """Resolve what stages still hold (at shutdown); returns items to deliver, if any."""
        items: List[Item] = []
        self._drain(True, items)
        if self.mapper.prompts is not None:
            self.mapper.prompts.close()
        return items

    def _drain(self, final: bool, out: List[Item]) -> None:
        for i, stage in enumerate(self.stages):
            drain = getattr(stage, "drain", None)
            if drain is not None:
                for m in drain(final):
                    self._run(m, i + 1, out)

    def _run(self, m: Mapped, start: int, out: List[Item]) -> None:
        """Send one item through the stages from ``start`` on, then the mask hook and the encoder.

        The item is encoded once, before the first stage with ``judge``; the bytes stay its
        encoding while every stage hands back the very item (ours never change one in place,
        and the bytes are dropped before any other stage runs), and are then what is sent.
        """
        stages = self.stages
        known = self._judges
        judges = known[1] if known[0] is stages and len(known[1]) == len(stages) else self._judges_for(stages)
        body: Optional[bytes] = None  # dumps(m.data), while m is the item it was encoded from
        try:
            for i in range(start, len(stages)):
                judge = judges[i]
                if judge is not None:
                    if body is None:
                        body = dumps(m.data)
                    r = judge(m, body)
                else:
                    body = None  # a stage of the user's may change the item in place
                    r = stages[i](m)
                if r is None:
                    if self._settlers:
                        self._settle(m, False)
                    return
                if type(r) is list:
                    for m2 in r:
                        self._run(m2, i + 1, out)
                    return
                if r is not m:
                    body = None
                m = r  # type: ignore[assignment]
        except Exception as exc:  # noqa: BLE001 - fail closed: an item a privacy stage could not judge is not sent
            self._stage_error(m, exc)
            return
        self._emit(m, body, out)

    def _stage_error(self, m: Mapped, exc: Exception) -> None:
        self.stats.drop("stage_error")
        if self._settlers:
            self._settle(m, False)
        if not self._stage_failed:
            self._stage_failed = True
            _logger.error(
                "a privacy/filter stage failed on %s; such items are dropped (logged once): %s", m.label, trail(exc)
            )

    def _emit(self, m: Mapped, body: Optional[bytes], out: List[Item]) -> None:
        """The mask hook, then the encoded item into ``out`` (``body``: the item's encoding, if known)."""
        if self.mask is not None:
            data = self._apply_mask(m, body)
            if self._settlers:
                self._settle(m, data is not None)
            if data is not None:
                out.append(Item(m.kind, str(data.get("id", "")), dumps(data), m.label_key))
        else:
            if self._settlers:
                self._settle(m, True)
            out.append(Item(m.kind, str(m.data.get("id", "")), dumps(m.data) if body is None else body, m.label_key))

    def _judges_for(self, stages: List[Stage]) -> List[Optional[Judge]]:
        """Each stage's ``judge`` (None: the stage is called as it is), kept for this list of stages."""
        judges: List[Optional[Judge]] = [getattr(st, "judge", None) for st in stages]
        self._judges = (stages, judges)
        return judges

    def _settle(self, m: Mapped, sent: bool) -> None:
        for settle in self._settlers:
            try:
                settle(m, sent)
            except Exception as exc:  # noqa: BLE001 - the item itself is already decided
                _logger.error("a stage failed to settle %s: %s", m.label, trail(exc))

    def _apply_mask(self, m: Mapped, body: Optional[bytes]) -> Optional[Dict[str, Any]]:
        """Run the user's hook on a private plain-JSON copy of the item (``body``: its encoding, if known).

        The copy is what would be sent (tuples are lists, SDK mappings are dicts),
        and the hook may change it in place: the trace row and its root span share
        nested objects, which a hook must never see through one another.
        """
        assert self.mask is not None
        try:
            data = self.mask(loads(dumps(m.data) if body is None else body), m.kind)
        except Exception as exc:  # noqa: BLE001 - fail closed: a broken hook never leaks data
            self.stats.drop("mask_error")
            if m.kind not in self._mask_failed:
                self._mask_failed.add(m.kind)
                _logger.error(
                    "the mask hook raised %s on a %s; such items are dropped (fail closed). "
                    "Logged once per kind.",
                    type(exc).__name__,
                    m.kind,
                )
            return None
        if data is None:
            self.stats.drop("masked")
            return None
        if not isinstance(data, dict):
            self.stats.drop("mask_error")
            if m.kind not in self._mask_failed:
                self._mask_failed.add(m.kind)
                _logger.error(
                    "the mask hook returned %s (not a dict or None) for a %s; such items are dropped. "
                    "Logged once per kind.",
                    type(data).__name__,
                    m.kind,
                )
            return None
        return data


def default_stages(settings: OpikSettings, stats: Optional[Stats] = None) -> List[Stage]:
    """The privacy and filtering stages the settings ask for."""
    from ._privacy import stages_for

    return stages_for(settings, stats)
