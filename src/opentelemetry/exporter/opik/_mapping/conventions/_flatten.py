"""Prefixed and flattened attribute keys: one grouping pass, then reassembly.

OpenInference and old Traceloop spans flatten lists into keys such as
``llm.input_messages.3.message.tool_calls.0.tool_call.function.name``; several
families also spread a dict over ``<prefix>.<key>`` (``langsmith.metadata.*``,
``traceloop.association.properties.*``...). Finding those keys needs a pass
over every attribute key; it is part of the family index's one pass over a
span's keys (``_index.py``), which stores the groups on ``out.groups``. The
prefixes are the families' declarations (``Family.prefixes``).
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from .._model import MappedSpan

#: every prefix any family declares (``Family.prefixes``), set by ``conventions/__init__`` from the declarations
PREFIXES: Tuple[str, ...] = ()


def _head(key: str) -> Optional[str]:
    i = key.find(".")
    if i < 0:
        return None
    j = key.find(".", i + 1)
    return key[: j + 1] if j > 0 else None


class PrefixTable:
    """Prefixes grouped by their first two dot-separated segments.

    Each prefix ends with "." and has two dots, so a key costs one C-level
    ``startswith`` when it matches nothing and a slice plus a dict lookup when it might.
    """

    def __init__(self, prefixes: Sequence[str]) -> None:
        self.prefixes: Tuple[str, ...] = tuple(prefixes)
        self._by_head: Dict[str, List[str]] = {}
        for p in self.prefixes:
            h = _head(p)
            if h is None or not p.endswith("."):
                raise ValueError(f"flattened prefix {p!r} must end with '.' and have two dots")
            self._by_head.setdefault(h, []).append(p)

    def prefix_of(self, key: str) -> Optional[str]:
        if not key.startswith(self.prefixes):
            return None
        for p in self._by_head.get(key[: key.find(".", key.find(".") + 1) + 1], ()):
            if key.startswith(p):
                return p
        return None

    def add(self, found: Dict[str, List[str]], key: str) -> None:
        """Put ``key`` (which starts with one of the prefixes, or with none) in its prefix's group."""
        # every prefix has two dots, so a match has a second dot: its head picks the candidates
        cands = self._by_head.get(key[: key.find(".", key.find(".") + 1) + 1])
        if cands is None:
            return
        for p in cands:
            if key.startswith(p):
                lst = found.get(p)
                if lst is None:
                    found[p] = [key]
                else:
                    lst.append(key)
                return


_TABLE = PrefixTable(())


def use_prefixes(prefixes: Sequence[str]) -> None:
    """The families' prefixes (called once, by ``conventions/__init__``)."""
    global PREFIXES, _TABLE
    _TABLE = PrefixTable(tuple(dict.fromkeys(prefixes)))
    PREFIXES = _TABLE.prefixes


# OpenInference wraps each list item in a namespace segment right after its index.
_ITEM_NAMESPACES = frozenset(
    ("message", "tool_call", "message_content", "document", "prompt", "completion", "tool", "embedding")
)


def groups(out: MappedSpan) -> Dict[str, List[str]]:
    """``{prefix: [keys...]}`` for every known prefix present on the span.

    The family index fills ``out.groups`` in its one pass over the keys; a
    reader run on its own (without the index) pays one pass here, cached.
    """
    found = out.groups
    if found is not None:
        return found
    found = {}
    table = _TABLE
    starts = table.prefixes
    for key in out.record.attributes:
        if key.startswith(starts):
            table.add(found, key)
    out.groups = found
    return found


def collect(attrs: Mapping[str, Any], keys: Sequence[str], prefix: str) -> Dict[str, Any]:
    """``<prefix><name>`` keys as ``{name: value}`` (a spread-out dict, e.g. metadata)."""
    n = len(prefix)
    return {k[n:]: attrs[k] for k in keys if len(k) > n}


def _segments(suffix: str) -> List[Any]:
    path: List[Any] = []
    after_index = False
    for seg in suffix.split("."):
        if seg.isdigit():
            path.append(int(seg))
            after_index = True
            continue
        if after_index and seg in _ITEM_NAMESPACES:
            after_index = False
            continue
        after_index = False
        path.append(seg)
    return path


def _listify(node: Any) -> Any:
    if isinstance(node, dict):
        if node and all(isinstance(k, int) for k in node):
            # numeric order, gaps (dropped attributes) simply closed
            return [_listify(node[k]) for k in sorted(node)]
        return {k: _listify(v) for k, v in node.items()}
    return node


def unflatten(attrs: Mapping[str, Any], keys: Sequence[str], prefix: str) -> List[Any]:
    """Rebuild the list spread over ``<prefix>N.a.b`` keys, items in numeric order.

    Numeric segments become list positions (``10`` after ``9``), OpenInference's
    per-item namespaces (``message.``, ``tool_call.``, ``message_content.``,
    ``document.``...) are dropped, missing indexes are tolerated, and a key that
    collides with another (a leaf where a branch is expected) is skipped rather
    than failing the span.
    """
    n = len(prefix)
    root: Dict[Any, Any] = {}
    for key in keys:
        path = _segments(key[n:])
        if not path or not isinstance(path[0], int):
            continue
        node: Any = root
        ok = True
        for seg in path[:-1]:
            nxt = node.get(seg)
            if nxt is None:
                nxt = node[seg] = {}
            elif not isinstance(nxt, dict):
                ok = False
                break
            node = nxt
        if ok and path[-1] not in node:
            node[path[-1]] = attrs[key]
    result = _listify(root)
    return result if isinstance(result, list) else []
