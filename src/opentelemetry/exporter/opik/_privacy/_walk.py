"""The one copy-on-write walk over an item's content: secret keys, blobs, depth, string candidates.

:func:`make_walk` builds the walk of an item's content fields: each value comes back as it is, or as a copy of the containers
on the way to what it replaced: an unchanged value is returned as the same
object, and nothing is ever changed in place (a trace row and its root span
share their nested objects).

What a walk does to the value:

* a key that names a secret (``api_key``, ``Authorization``...) has its
  whole value replaced by markers (the shape stays); a weak hint (``token``)
  replaces only an opaque string;
* a string over the blob limit that is a data: URI or a base64 run becomes
  a ``[blob omitted: ...]`` placeholder;
* nesting deeper than :data:`MAX_DEPTH` becomes ``[nested too deep]``;
* strings of :data:`MIN_SECRET_LEN` characters or more are collected in
  :attr:`WalkState.strs`, and, only in the walk built with ``scrub``, searched
  for secrets and scrubbed one by one.

The caller walks once without ``scrub``, judges all collected strings in one
batched check (:meth:`Scrubber.any_might_hold_secret`) and, only when that
check says a string may hold a secret, walks again with the ``scrub`` walk: the
same code, so there is no fast path that must agree with a slow one.

Sizes are not the walk's business: the caller has the item's JSON, whose length
bounds every field's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Callable, Dict, List, Optional, Sequence

from ._scrub import MIN_SECRET_LEN, KeyClass, Scrubber, looks_opaque, marker
from ._truncate import DEEP, MAX_DEPTH

#: the keys of the mapper's ``metadata.otel`` that carry the sender's data (ids, kind, scope are ours)
OTEL_WALKED = ("resource", "events", "status")

#: ``blob(string, parent) -> placeholder or None`` for a string over the blob limit
BlobReplacer = Callable[[str, Any], Optional[str]]
_NONE = object()
#: the types a walk returns as they are
_SCALARS = frozenset((int, float, bool, type(None)))
#: ``walk(item, state) -> a copy of the item with the fields that changed, or None``
Walk = Callable[[Dict[str, Any], "WalkState"], Optional[Dict[str, Any]]]


class WalkState:
    """What one walk of one item found: candidate strings, replacements made."""

    __slots__ = ("known", "resource", "strs", "blobs", "scrubbed")

    def __init__(self, known: Any = None) -> None:
        #: a ``metadata.otel.resource`` object known to pass unchanged: walked as it is
        self.known = known
        #: the ``metadata.otel.resource`` object this walk saw
        self.resource: Any = None
        #: strings of ``MIN_SECRET_LEN``+ characters outside secret keys, as they were before scrubbing
        self.strs: List[str] = []
        self.blobs = 0
        self.scrubbed = 0


def make_walk(
    fields: Sequence[str], scrubber: Optional[Scrubber], blob_max: int, blob: BlobReplacer, scrub: bool
) -> Walk:
    """The walk of an item's ``fields``; ``scrub``: search the strings it collects and replace secrets.

    ``metadata`` is the mapper's: its ``otel`` entry has parts that are the sender's (walked) and
    parts that are the mapper's own (ids, kind, scope: not walked).

    Built as closures over the settings: this runs on every field of every item,
    and a closure's constants are the cheapest loads Python has.
    """
    # scrubbing off: no key is known harmless, so every dict takes ``keyed`` (which then
    # only walks the values)
    clean: set = scrubber.clean if scrubber is not None else set()
    classify = scrubber.classify if scrubber is not None else None
    scrub_str = scrubber.scrub_str if scrubber is not None and scrub else None
    minlen = MIN_SECRET_LEN
    #: a string of ``minlen`` to this many characters is collected as it is (the scrubbing walk
    #: sends every one through ``string``)
    collect_max = blob_max if scrub_str is None else -1
    scalars = _SCALARS

    def string(x: str, st: WalkState, parent: Any) -> str:
        """A string of ``MIN_SECRET_LEN``+ characters: a blob placeholder, a candidate, or scrubbed."""
        if len(x) > blob_max:
            b = blob(x, parent)
            if b is not None:
                st.blobs += 1
                x = b  # it names the item's mime type (a data: URI head, a mime key): judged as any string
        st.strs.append(x)
        if scrub_str is None:
            return x
        y = scrub_str(x)
        if y is not x:
            st.scrubbed += 1
        return y

    def value(x: Any, depth: int, st: WalkState, parent: Any) -> Any:
        """Any value; ``walk_dict`` and ``walk_list`` handle the common types inline."""
        t = type(x)
        if t is str:
            return x if len(x) < minlen else string(x, st, parent)
        if t in scalars:
            return x
        if t is dict or (t is not list and t is not tuple and isinstance(x, Mapping)):
            return walk_dict(x, depth + 1, st, None)
        if t is list or t is tuple or isinstance(x, (list, tuple)):
            return walk_list(x, depth + 1, st)
        if isinstance(x, (bytes, bytearray)):
            s = bytes(x).decode("utf-8", "replace")
            y = value(s, depth, st, parent)
            return x if y == s else y
        return x

    def walk_dict(d: Any, depth: int, st: WalkState, own: Any) -> Any:
        """``own``: what the item's ``metadata`` (``d``) holds under ``otel`` (walked by ``otel`` if a
        dict); None for every other dict."""
        if depth >= MAX_DEPTH:
            return DEEP
        if not clean.issuperset(d):
            return keyed(d, depth, st, own)
        # every key is known harmless: the values only, until one changes (then ``keyed``
        # copies the dict and goes on from that entry)
        strs = st.strs
        for x in d.values():
            t = type(x)
            if t is str:
                n = len(x)
                if n < minlen:
                    continue
                if n <= collect_max:
                    strs.append(x)
                    continue
                y: Any = string(x, st, d)
            elif t is dict:
                y = otel(x, st) if x is own else walk_dict(x, depth + 1, st, None)
            elif t in scalars:
                continue
            elif t is list or t is tuple:
                y = walk_list(x, depth + 1, st)
            else:
                y = value(x, depth, st, d)
            if y is not x:
                return keyed(d, depth, st, own, x, y)
        return d

    def keyed(d: Any, depth: int, st: WalkState, own: Any, changed: Any = _NONE, to: Any = None) -> Any:
        """A dict whose keys are judged one by one: one with a key not known harmless, or one
        whose entry ``changed`` (not a key: a value) became ``to``, the first change in it; the
        entries before that one are unchanged and not walked again."""
        out: Optional[Dict[str, Any]] = None
        skip = changed is not _NONE
        for k, x in d.items():
            y: Any
            if skip:
                if x is not changed:
                    continue
                skip = False
                y = to
            else:
                cls = classify(k) if classify is not None else None
                if cls is None:
                    y = otel(x, st) if x is own and k == "otel" and type(x) is dict else value(x, depth, st, d)
                else:
                    y = judged(cls, x, depth, st, d)
            if y is not x:
                if out is None:
                    out = dict(d)
                if type(k) is not str:
                    del out[k]  # the encoder would write both under the same name
                    k = str(k)
                out[k] = y
        return d if out is None else out

    def judged(cls: KeyClass, x: Any, depth: int, st: WalkState, parent: Any) -> Any:
        """The value ``x`` of a key of class ``cls``."""
        if cls.allow:
            return x
        if cls.strong:
            y = secret(x, cls.label, depth)
        elif type(x) is str and looks_opaque(x):  # a weak hint: only opaque strings go
            y = marker(cls.label)
        else:
            return value(x, depth, st, parent)
        if y is not x:
            st.scrubbed += 1
        return y

    def walk_list(v: Any, depth: int, st: WalkState) -> Any:
        if depth >= MAX_DEPTH:
            return DEEP
        strs = st.strs
        for x in v:
            t = type(x)
            if t is str:
                n = len(x)
                if n < minlen:
                    continue
                if n <= collect_max:
                    strs.append(x)
                    continue
                y: Any = string(x, st, None)
            elif t is dict:
                y = walk_dict(x, depth + 1, st, None)
            elif t in scalars:
                continue
            elif t is list or t is tuple:
                y = walk_list(x, depth + 1, st)
            else:
                y = value(x, depth, st, None)
            if y is not x:
                # the first change: a copy, and the rest of the entries walked into it (the
                # entry is the first that is ``x``: an earlier one would have changed too)
                out = list(v)
                i = 0
                while out[i] is not x:
                    i += 1
                out[i] = y
                for j in range(i + 1, len(out)):
                    out[j] = value(out[j], depth, st, None)
                return out
        return v

    def otel(o: Dict[str, Any], st: WalkState) -> Dict[str, Any]:
        """The mapper's ``metadata.otel``: only the sender's parts (:data:`OTEL_WALKED`) are walked."""
        x = st.resource = o.get("resource")
        out = None if x is None or x is st.known else part(o, None, "resource", x, st)
        x = o.get("events")
        if x is not None:
            out = part(o, out, "events", x, st)
        x = o.get("status")
        if x is not None:
            out = part(o, out, "status", x, st)
        return o if out is None else out

    def part(o: Dict[str, Any], out: Optional[Dict[str, Any]], k: str, x: Any, st: WalkState) -> Optional[Dict[str, Any]]:
        """``out`` (a copy of ``o``, made when first needed) with ``o[k]``, that is ``x``, walked."""
        y = walk_dict(x, 2, st, None) if type(x) is dict else value(x, 1, st, o)
        if y is not x:
            if out is None:
                out = dict(o)
            out[k] = y
        return out

    def walk_item(d: Dict[str, Any], st: WalkState) -> Optional[Dict[str, Any]]:
        """A copy of the item ``d`` with the fields the walk changed, or None if it changed none."""
        new: Optional[Dict[str, Any]] = None
        for f in fields:
            v = d.get(f)
            if v is None:
                continue
            t = type(v)
            if t is dict:
                v2 = walk_dict(v, 0, st, v.get("otel") if f == "metadata" else None)
            elif t is list:
                v2 = walk_list(v, 0, st)
            else:
                v2 = value(v, 0, st, None)
            if v2 is not v:
                if new is None:
                    new = dict(d)
                new[f] = v2
        return new

    return walk_item


def secret(x: Any, label: str, depth: int) -> Any:
    """Everything under a key that names a secret: leaves become markers, the shape stays."""
    t = type(x)
    if x is None or t is bool:
        return x
    if t is str or isinstance(x, (bytes, bytearray)):
        if not len(x):
            return x
        m = marker(label)
        return x if x == m else m
    if t is int or t is float:
        return marker(label)
    if depth >= MAX_DEPTH:
        return DEEP
    if isinstance(x, Mapping):
        return _secret_mapping(x, label, depth)
    if isinstance(x, (list, tuple)):
        lst: Optional[List[Any]] = None
        for i, v in enumerate(x):
            y = secret(v, label, depth + 1)
            if y is not v:
                if lst is None:
                    lst = list(x)
                lst[i] = y
        return x if lst is None else lst
    return marker(label)


def _secret_mapping(x: Mapping, label: str, depth: int) -> Any:  # type: ignore[type-arg]
    changed = False
    pairs = []
    for k, v in x.items():
        y = secret(v, label, depth + 1)
        if y is not v or type(k) is not str:
            changed = True
        pairs.append((k, y))
    return {str(k): y for k, y in pairs} if changed else x
