"""One indexed pass over a span's attribute keys: which families it may be, and its flattened key groups.

Built once from the families' declarations. Each key of a span costs one dict
lookup (a marker of some family, or a sign ``finish``/``core`` look for) and,
when it is no marker, one C-level ``startswith`` over the flattened prefixes.
The span then runs only the readers of the families it carries a sign of, in
priority order; a span of an unrelated library (HTTP, DB) runs none.
"""

from __future__ import annotations

from typing import Dict, List, Mapping, Sequence, Tuple

from .._model import MappedSpan
from . import _common as c
from . import _flatten
from ._family import Family, Reader

#: index bit of a marker key that is also a flattened key (``gen_ai.prompt.0.role``): group it as well
_GROUP = 1 << 62
_MAX_PLANS = 4096


class FamilyIndex:
    """Family signs -> the readers a span needs (``readers``), with its key groups on ``out.groups``."""

    def __init__(self, families: Sequence[Family], signs: Mapping[str, int]) -> None:
        """``signs``: extra keys -> bits above the families' (read by ``finish``/``core`` from ``out.present``)."""
        if len(families) > 40:
            raise ValueError("at most 40 families: their bits must stay below the sign bits")
        self.families = tuple(families)
        self.prefixes: Tuple[str, ...] = tuple(dict.fromkeys(p for f in families for p in f.prefixes))
        self._table = _flatten.PrefixTable(self.prefixes)
        keys: Dict[str, int] = dict(signs)
        scopes: Dict[str, int] = {}
        events: Dict[str, int] = {}
        values: Dict[str, List[Tuple[str, int]]] = {}
        names: List[Tuple[str, int]] = []
        for i, f in enumerate(families):
            bit = 1 << i
            for k in f.markers:
                keys[k] = keys.get(k, 0) | bit
            for s in f.scopes:
                scopes[s] = scopes.get(s, 0) | bit
            for e in f.events:
                events[e] = events.get(e, 0) | bit
            for k, v in f.values:
                values.setdefault(k, []).append((v, bit))
            names.extend((n, bit) for n in f.span_names)
        for k in keys:
            if self._table.prefix_of(k) is not None:
                keys[k] |= _GROUP  # an indexed key that is also a flattened one (gen_ai.prompt.0.role)
        self._keys = keys
        self._scopes = scopes
        self._events = events
        self._values = tuple((k, tuple(pairs)) for k, pairs in values.items())
        self._names = tuple(names)
        self._name_starts = tuple(n for n, _ in names)
        self._family_bits = (1 << len(families)) - 1
        self._plans: Dict[int, Tuple[Reader, ...]] = {}

    def scan(self, out: MappedSpan) -> int:
        """The one pass: sets ``out.present`` (family and sign bits) and ``out.groups``; returns the family bits."""
        rec = out.record
        attrs = rec.attributes
        get = self._keys.get
        starts = self._table.prefixes
        mask = 0
        found: Dict[str, List[str]] = {}
        for k in attrs:
            b = get(k)
            if b is None:
                if not k.startswith(starts):
                    continue
            else:
                mask |= b
                if not b & _GROUP:
                    continue
            self._table.add(found, k)
        out.groups = found
        for k, pairs in self._values:
            v = attrs.get(k)
            if v is not None:
                for value, bit in pairs:
                    if v == value:
                        mask |= bit
        b = self._scopes.get(rec.scope_name)
        if b is not None:
            mask |= b
        if self._name_starts and rec.name.startswith(self._name_starts):
            for n, bit in self._names:
                if rec.name.startswith(n):
                    mask |= bit
        if rec.events and self._events:
            ev_bits = self._events.get
            for name in c.events(out):
                b = ev_bits(name)
                if b is not None:
                    mask |= b
        out.present = mask & ~_GROUP
        return mask & self._family_bits

    def readers(self, out: MappedSpan) -> Tuple[Reader, ...]:
        """The readers of the families ``out``'s span carries a sign of, in priority order."""
        mask = self.scan(out)
        plan = self._plans.get(mask)
        if plan is None:
            plan = tuple(f.read for i, f in enumerate(self.families) if mask >> i & 1)
            if len(self._plans) < _MAX_PLANS:
                self._plans[mask] = plan
        return plan
