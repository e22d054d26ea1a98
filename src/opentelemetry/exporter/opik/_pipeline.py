"""Span records -> encoded Opik items: mapping, privacy, the user's mask hook, encoding.

The one place between decoding and delivery, shared by the exporter, the
sidecar and ``opik-otel import``.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from ._config import OpikSettings
from ._items import Item
from ._json import dumps
from ._mapping import Mapped, Mapper
from ._record import SpanRecord
from ._stats import Stats

_logger = logging.getLogger("opentelemetry.exporter.opik")

#: ``mask(item_dict, kind) -> item_dict | None``; ``kind`` is ``trace``, ``span`` or ``span_score``
MaskHook = Callable[[Dict[str, Any], str], Optional[Dict[str, Any]]]
#: a stage sees every mapped item and returns it (possibly changed) or None to drop it
Stage = Callable[[Mapped], Optional[Mapped]]


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
        self.mapper = mapper or Mapper(settings)
        self.mask = mask
        self.stats = stats or Stats()
        self.stages: List[Stage] = list(stages) if stages is not None else default_stages(settings)
        self._mask_failed: set = set()

    def process(self, records: Iterable[SpanRecord], default_project: Optional[str] = None) -> Processed:
        records = list(records)
        self.stats.add("spans_received", len(records))
        result = self.mapper.map(records, default_project)
        if result.rejected:
            self.stats.add("spans_rejected", len(result.rejected))
            for label, reason in result.rejected[:5]:
                _logger.warning("could not map %s: %s", label, reason)
        items: List[Item] = []
        for m in result.items:
            for stage in self.stages:
                m2 = stage(m)
                if m2 is None:
                    break
                m = m2
            else:
                data: Optional[Dict[str, Any]] = m.data
                if self.mask is not None:
                    data = self._apply_mask(m)
                if data is not None:
                    items.append(Item(m.kind, str(data.get("id", "")), dumps(data), m.label))
        return Processed(items, result.rejected)

    def _apply_mask(self, m: Mapped) -> Optional[Dict[str, Any]]:
        assert self.mask is not None
        try:
            data = self.mask(m.data, m.kind)
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
            return None
        return data


def default_stages(settings: OpikSettings) -> List[Stage]:
    """The privacy and filtering stages the settings ask for."""
    try:
        from ._privacy import stages_for
    except ImportError:  # pragma: no cover - during development only
        return []
    return stages_for(settings)
