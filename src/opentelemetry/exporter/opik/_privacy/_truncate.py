"""Size limits that keep JSON whole: shorten inside the structure, never cut the text.

:func:`fit` makes one value's JSON fit a byte budget: the longest strings are
shortened first (each keeps its head and ends with a visible marker), then, if
the bulk is many small entries, long lists/dicts keep their first entries and a
marker saying how many were left out. :func:`shrink_item` does the same to a
whole encoded item for the writer, when Opik answers 413 for it alone.

What was cut is recorded in the item's metadata, under ``truncated: true`` and
``opik.exporter.truncated: {"original_size_bytes": {field: bytes}, "max_bytes": N}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Dict, List, Optional, Tuple

from .._items import Item
from .._json import dumps, loads

NOTE_KEY = "opik.exporter.truncated"
MAX_DEPTH = 64
DEEP = "[nested too deep]"
#: strings are never cut below this many characters
MIN_KEEP = 32
#: a cut saves nothing unless the string is this much longer than what is kept
_SLACK = 48
#: fields shrink_item may cut; ids, times, links and usage are never touched
SHRINKABLE = ("input", "output", "metadata", "error_info", "name")
_NOTE_ROOM = 300


def cut_marker(original: str, kept: int) -> str:
    total = len(original.encode("utf-8", "surrogatepass"))
    kept_b = len(original[:kept].encode("utf-8", "surrogatepass"))
    return f"…[truncated {total - kept_b} of {total} bytes]"


def cut_string(s: str, keep: int) -> str:
    return s[:keep] + cut_marker(s, keep)


def _lengths(v: Any, out: List[int], depth: int) -> None:
    t = type(v)
    if t is str:
        if len(v) > MIN_KEEP + _SLACK:
            out.append(len(v))
    elif depth < MAX_DEPTH:
        if t is dict or isinstance(v, Mapping):
            for k, x in v.items():
                if type(k) is str and len(k) > MIN_KEEP + _SLACK:
                    out.append(len(k))
                _lengths(x, out, depth + 1)
        elif t is list or t is tuple:
            for x in v:
                _lengths(x, out, depth + 1)


def _limit(lengths: List[int], excess: int) -> int:
    """The longest string length ``L`` such that cutting every longer string to ``L`` saves ``excess``."""
    lo, hi = MIN_KEEP, max(lengths, default=MIN_KEEP)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        saved = sum(n - mid - _SLACK for n in lengths if n > mid + _SLACK)
        if saved >= excess:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _shorten(v: Any, lim: Optional[int], items: Optional[int], depth: int) -> Any:
    t = type(v)
    if t is str:
        if lim is not None and len(v) > lim + _SLACK:
            return cut_string(v, lim)
        return v
    if t is dict or (t is not list and t is not tuple and isinstance(v, Mapping)):
        if depth >= MAX_DEPTH:
            return DEEP
        out: Dict[str, Any] = {}
        n = len(v)
        for i, (k, x) in enumerate(v.items()):
            if items is not None and i >= items:
                out["…"] = f"[{n - items} more keys truncated]"
                break
            k = k if type(k) is str else str(k)
            if lim is not None and len(k) > max(lim, 256) + _SLACK:
                k = cut_string(k, max(lim, 256))
            out[k] = _shorten(x, lim, items, depth + 1)
        return out
    if t is list or t is tuple:
        if depth >= MAX_DEPTH:
            return DEEP
        seq = v if items is None or len(v) <= items else v[:items]
        lst = [_shorten(x, lim, items, depth + 1) for x in seq]
        if len(seq) < len(v):
            note = f"[{len(v) - len(seq)} more items truncated]"
            lst.append({"truncated": note} if lst and isinstance(lst[0], dict) else note)
        return lst
    return v


def fit(value: Any, max_bytes: int, size: Optional[int] = None, keep_keys: bool = False) -> Tuple[Any, int]:
    """``(value shortened so its JSON is at most max_bytes, original JSON size)``.

    ``keep_keys`` keeps every key of the top-level dict (``error_info`` must keep
    its required fields); otherwise a value nothing else can shrink becomes a
    small stub of the same JSON kind.
    """
    if size is None:
        size = len(dumps(value))
    if size <= max_bytes:
        return value, size
    lengths: List[int] = []
    _lengths(value, lengths, 0)
    lim: Optional[int] = _limit(lengths, size - max_bytes) if lengths else None
    items: Optional[int] = None
    for _ in range(24):
        v = _shorten(value, lim, items, 0)
        n = len(dumps(v))
        if n <= max_bytes:
            return v, size
        if lim is not None and lim > MIN_KEEP:
            # the estimate counted characters; multi-byte text and escapes need a deeper cut
            lim = max(MIN_KEEP, min(lim // 2, int(lim * max_bytes / n)))
        elif lim is None and lengths:
            lim = MIN_KEEP
        elif keep_keys:
            break  # fewer entries would drop required keys: cut the strings to their markers below
        else:
            lim = MIN_KEEP
            items = 256 if items is None else items // 4
            if items < 1:
                break
    if keep_keys and isinstance(value, Mapping):
        return {
            str(k): (cut_string(x, 0) if isinstance(x, str) and len(x) > MIN_KEEP else x) for k, x in value.items()
        }, size
    return stub(value, size), size


def stub(value: Any, size: int) -> Any:
    """A tiny value of the same JSON kind, saying how big the original was."""
    note = f"[truncated: {size} bytes]"
    if isinstance(value, str):
        return value[:MIN_KEEP] + "…" + note
    if isinstance(value, (list, tuple)):
        return [{"truncated": True, "original_size_bytes": size}]
    if isinstance(value, Mapping):
        return {"truncated": True, "original_size_bytes": size}
    return note


def add_note(metadata: Any, originals: Dict[str, int], max_bytes: int) -> Dict[str, Any]:
    """A new metadata dict carrying the truncation note (earlier original sizes win)."""
    md: Dict[str, Any] = (
        dict(metadata) if isinstance(metadata, Mapping) else ({} if metadata is None else {"value": metadata})
    )
    prev = md.get(NOTE_KEY)
    sizes: Dict[str, Any] = {}
    if isinstance(prev, Mapping) and isinstance(prev.get("original_size_bytes"), Mapping):
        sizes.update(prev["original_size_bytes"])
    for k, n in originals.items():
        sizes.setdefault(k, n)
    md["truncated"] = True
    md[NOTE_KEY] = {"original_size_bytes": sizes, "max_bytes": max_bytes}
    return md


def _share(sizes: Dict[str, int], budget: int) -> Dict[str, int]:
    """Water-filling: small fields keep their size, the large ones split what is left."""
    targets: Dict[str, int] = {}
    order = sorted(sizes, key=sizes.__getitem__)
    left = budget
    for i, f in enumerate(order):
        share = max(left // (len(order) - i), 64)
        if sizes[f] <= share:
            left -= sizes[f]
        else:
            targets[f] = share
            left -= share
    return targets


def shrink_item(item: Item, max_bytes: int) -> Optional[Item]:
    """A copy of ``item`` whose body fits ``max_bytes``, its largest content cut; None if impossible."""
    if item.size <= max_bytes:
        return item
    try:
        data = loads(item.body)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    sizes = {f: len(dumps(data[f])) for f in SHRINKABLE if data.get(f) is not None}
    if not sizes:
        return None
    fixed = item.size - sum(sizes.values())
    budget = max_bytes - fixed - _NOTE_ROOM
    for _ in range(4):
        if budget <= 0:
            return None
        new = dict(data)
        originals: Dict[str, int] = {}
        for f, target in _share(sizes, budget).items():
            new[f], originals[f] = fit(data[f], target, sizes[f], keep_keys=(f == "error_info"))
        if not originals:
            return None
        new["metadata"] = add_note(new.get("metadata"), originals, max_bytes)
        body = dumps(new)
        if len(body) <= max_bytes:
            return Item(item.kind, item.id, body, item.label)
        budget -= (len(body) - max_bytes) + budget // 4
    return None
