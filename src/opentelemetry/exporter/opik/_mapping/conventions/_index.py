"""One indexed pass over a span's attribute keys: which families it may be, and its flattened key groups.

Built once from the families' declarations. Each key of a span costs one dict
lookup: a marker of some family, a sign ``finish``/``core`` look for, or a key
seen before (the table learns what other keys are: flattened or nothing, with
one C-level ``startswith`` over the flattened prefixes the first time). A key's
bits never change, so the union over a span's keys is remembered per key tuple:
spans of one instrumentation repeat theirs, and pay one tuple and one lookup.
The span then runs only the readers of the families it carries a sign of, in
priority order; a span of an unrelated library (HTTP, DB) runs none.
"""

from __future__ import annotations

from typing import Dict, List, Mapping, Sequence, Tuple

from .._model import MappedSpan
from . import _common as c
from . import _flatten
from ._family import Family, Reader

#: index bit of an indexed key that is also a flattened key (``gen_ai.prompt.0.role``): group it as well
_GROUP = 1 << 29
#: index bit of a key whose value may be a family's sign (``gen_ai.system = strands-agents``)
_VALUE = 1 << 25
_SPECIAL = _GROUP | _VALUE
#: the families' bits are below the signs' (``SIGN_THREAD``...)
_MAX_FAMILIES = 20
#: ``out.groups`` of a span without flattened keys (shared: readers only read groups)
_NO_GROUPS: Dict[str, List[str]] = {}
_MAX_PLANS = 4096
#: keys no family declares that the table remembers (attribute keys repeat from span to span)
_MAX_LEARNED = 8192
#: spans' key tuples whose bits are remembered (cleared when full)
_MAX_KEY_TUPLES = 1024


class FamilyIndex:
    """Family signs -> the readers a span needs (``readers``), with its key groups on ``out.groups``."""

    def __init__(self, families: Sequence[Family], signs: Mapping[str, int]) -> None:
        """``signs``: extra keys -> bits above the families' (read by ``finish``/``core`` from ``out.present``)."""
        if len(families) > _MAX_FAMILIES:
            raise ValueError(f"at most {_MAX_FAMILIES} families: their bits must stay below the sign bits")
        if any(bit < 1 << _MAX_FAMILIES or bit & _SPECIAL for bit in signs.values()):
            raise ValueError("sign bits must be above the families' and below the group bit")
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
        for k in values:
            keys[k] = keys.get(k, 0) | _VALUE
        for k in keys:
            if self._table.prefix_of(k) is not None:
                keys[k] |= _GROUP  # an indexed key that is also a flattened one (gen_ai.prompt.0.role)
        self._declared = keys
        #: the declared keys, plus learned ones: ``_GROUP`` for a flattened key, 0 for a key of no interest
        self._keys = dict(keys)
        self._scopes = scopes
        self._events = events
        self._values = {k: tuple(pairs) for k, pairs in values.items()}
        self._names = tuple(names)
        self._name_starts = tuple(n for n, _ in names)  # () matches no name
        self._family_bits = (1 << len(families)) - 1
        self._plans: Dict[int, Tuple[Reader, ...]] = {}
        #: a span's attribute keys, in order -> the union of their bits
        self._unions: Dict[Tuple[str, ...], int] = {}

    def readers(self, out: MappedSpan) -> Tuple[Reader, ...]:
        """The one pass over the span's keys: the readers of the families it carries a sign of, in priority order.

        Also sets ``out.present`` (family and sign bits) and ``out.groups`` (its flattened keys).
        """
        rec = out.record
        attrs = rec.attributes
        keys = tuple(attrs)
        mask = self._unions.get(keys)
        if mask is None:
            mask = self._union(keys)
        if mask & _VALUE:
            for k, pairs in self._values.items():
                if k in attrs:
                    value = attrs[k]
                    for v, bit in pairs:
                        if value == v:
                            mask |= bit
        if mask & _GROUP:
            # the keys with a flattened prefix (those with the _GROUP bit), in their order
            found: Dict[str, List[str]] = {}
            starts = self.prefixes
            add = self._table.add
            for k in keys:
                if k.startswith(starts):
                    add(found, k)
            out.groups = found
        else:
            out.groups = _NO_GROUPS
        b = self._scopes.get(rec.scope_name)
        if b is not None:
            mask |= b
        if rec.name.startswith(self._name_starts):
            for n, bit in self._names:
                if rec.name.startswith(n):
                    mask |= bit
        if rec.events:
            ev_bits = self._events.get
            for name in c.events(out):
                b = ev_bits(name)
                if b is not None:
                    mask |= b
        out.present = mask & ~_SPECIAL
        mask &= self._family_bits
        plan = self._plans.get(mask)
        if plan is None:
            plan = tuple(f.read for i, f in enumerate(self.families) if mask >> i & 1)
            if len(self._plans) < _MAX_PLANS:
                self._plans[mask] = plan
        return plan

    def _union(self, keys: Tuple[str, ...]) -> int:
        """The union of the keys' bits, remembered for the tuple (bounded)."""
        get = self._keys.get
        mask = 0
        for k in keys:
            b = get(k)
            mask |= b if b is not None else self._learn(k)
        if len(self._unions) >= _MAX_KEY_TUPLES:
            self._unions.clear()
        self._unions[keys] = mask
        return mask

    def _learn(self, key: str) -> int:
        """A key no family declares: ``_GROUP`` when it is a flattened one, else 0; remembered (bounded)."""
        b = _GROUP if self._table.prefix_of(key) is not None else 0
        keys = self._keys
        if len(keys) >= len(self._declared) + _MAX_LEARNED:
            keys = self._keys = dict(self._declared)  # a reader holding the old table still reads it right
        keys[key] = b
        return b
