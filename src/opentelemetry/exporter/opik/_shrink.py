"""Shrink one encoded item to a byte budget, visibly, instead of dropping it.

Used by the writer when Opik answers 413 for a single item, or an item alone
is over the request byte budget. The largest values inside ``input``,
``output``, ``metadata`` (and an error's ``traceback``/``message``) are cut,
largest first: a long string keeps its head and ends with a marker saying how
much was cut; a large container that holds no long string is replaced by a
marker string. ``metadata["opik.exporter.truncated"]`` records the original
size and the cut paths, so nobody mistakes a truncated span for the real one.
Ids, names, times and links are never touched, so the upsert lands on the
same row.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple, Union

from ._items import Item
from ._json import dumps, loads

NOTE_KEY = "opik.exporter.truncated"
#: the fields that may be cut (everything else identifies or links the row)
_FIELDS = ("input", "output", "metadata", "error_info")
#: room kept for the note added to metadata
_NOTE_ROOM = 600
#: strings at most this long are not worth cutting
_MIN_CUT = 64
_MAX_ROUNDS = 200

PathT = Tuple[Union[str, int], ...]


def marker(kept: int, original: int) -> str:
    return f"…[truncated by the Opik exporter: {original - kept} of {original} bytes cut]"


def _path_str(path: PathT) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _walk(value: Any, path: PathT, out: List[Tuple[int, PathT, bool]]) -> int:
    """Collect ``(encoded size, path, is_string)`` of every string and container; returns the size."""
    if isinstance(value, str):
        size = len(value.encode("utf-8", "surrogatepass")) + 2
        out.append((size, path, True))
        return size
    if isinstance(value, dict):
        size = 2
        for k, v in value.items():
            if path == ("metadata",) and k == NOTE_KEY:
                size += len(dumps(v)) + len(str(k)) + 4
                continue
            size += _walk(v, path + (k,), out) + len(str(k)) + 4
        out.append((size, path, False))
        return size
    if isinstance(value, list):
        size = 2
        for i, v in enumerate(value):
            size += _walk(v, path + (i,), out) + 1
        out.append((size, path, False))
        return size
    return len(dumps(value))


def _get(data: Any, path: PathT) -> Any:
    for p in path:
        data = data[p]
    return data


def _set(data: Any, path: PathT, value: Any) -> None:
    for p in path[:-1]:
        data = data[p]
    data[path[-1]] = value


def _cut_string(s: str, keep_bytes: int) -> str:
    raw = s.encode("utf-8", "surrogatepass")
    head = raw[: max(keep_bytes, 0)].decode("utf-8", "ignore")
    return head + marker(len(head.encode("utf-8", "surrogatepass")), len(raw))


def _container_marker(value: Any, path: PathT, size: int) -> Any:
    """A small stand-in of the same JSON shape where Opik's schema needs one (objects in arrays)."""
    text = f"[truncated by the Opik exporter: {size} bytes of JSON cut]"
    if isinstance(value, dict):
        return {"truncated": text}
    if len(path) == 1:  # a top-level list must stay a list of objects
        return [{"truncated": text}]
    return text


def shrink_item(item: Item, max_bytes: int) -> Optional[Item]:
    """A copy of ``item`` whose body fits ``max_bytes``, cut as described above; None if impossible."""
    if item.size <= max_bytes:
        return item
    try:
        data = loads(item.body)
    except ValueError:
        return None
    if not isinstance(data, dict) or not any(f in data for f in _FIELDS):
        return None
    md = data.get("metadata")
    if md is not None and not isinstance(md, dict):
        md = {"value": md}
        data["metadata"] = md
    note: Dict[str, Any] = {}
    if isinstance(md, dict) and isinstance(md.get(NOTE_KEY), dict):
        note = dict(md[NOTE_KEY])  # shrunk before: keep the first original size
    original = int(note.get("original_size_bytes", item.size))
    cut: List[str] = list(note.get("paths", []))
    target = max_bytes - _NOTE_ROOM
    if target <= 0:
        return None
    body = dumps(data)
    rounds = 0
    while len(body) > target and rounds < _MAX_ROUNDS:
        rounds += 1
        excess = len(body) - target
        found: List[Tuple[int, PathT, bool]] = []
        for f in _FIELDS:
            if f in data:
                _walk(data[f], (f,), found)
        strings = [c for c in found if c[2] and c[0] > _MIN_CUT + len(marker(0, c[0])) and c[1]]
        if strings:
            size, path, _ = max(strings)
            s = _get(data, path)
            raw_len = len(s.encode("utf-8", "surrogatepass"))
            # JSON escaping can make the encoded form longer than the raw text: cut proportionally.
            ratio = raw_len / max(len(dumps(s)), 1)
            keep = max(int((size - excess - len(marker(0, raw_len)) - 8) * ratio), _MIN_CUT // 2)
            if keep >= raw_len:
                keep = raw_len // 2
            _set(data, path, _cut_string(s, keep))
        else:
            containers = [c for c in found if not c[2] and c[0] > 128 and c[1] != ("error_info",)]
            if not containers:
                break
            # The smallest container whose removal covers the excess, else the largest one.
            covering = [c for c in containers if c[0] >= excess + 128]
            size, path, _ = min(covering) if covering else max(containers)
            _set(data, path, _container_marker(_get(data, path), path, size))
        p = _path_str(path)
        if p not in cut:
            cut.append(p)
        body = dumps(data)
    if len(body) > target:
        return None
    md = data.get("metadata")
    if not isinstance(md, dict):
        md = {}
        data["metadata"] = md
    md[NOTE_KEY] = {"original_size_bytes": original, "max_bytes": max_bytes, "paths": cut[:50]}
    body = dumps(data)
    if len(body) > max_bytes:
        return None
    return Item(item.kind, item.id, body, item.label)
