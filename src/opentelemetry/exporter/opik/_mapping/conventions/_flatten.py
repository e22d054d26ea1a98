"""Prefixed and flattened attribute keys: one grouping pass, then reassembly.

OpenInference and old Traceloop spans flatten lists into keys such as
``llm.input_messages.3.message.tool_calls.0.tool_call.function.name``; several
families also spread a dict over ``<prefix>.<key>`` (``langsmith.metadata.*``,
``traceloop.association.properties.*``...). Finding those keys needs a pass
over every attribute key, so it is done at most once per span (:func:`groups`,
cached in ``out.scratch``) and only when a reader has already recognised its
family by plain dict lookups. Spans of other libraries (HTTP, DB) never pay it.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from .._model import MappedSpan

# Every prefix any reader asks for. Each ends with "." and is grouped by its
# first two dot-separated segments, so a key costs one C-level ``startswith``
# when it matches nothing and a slice plus a dict lookup when it might.
PREFIXES: Tuple[str, ...] = (
    # OpenInference
    "llm.input_messages.",
    "llm.output_messages.",
    "llm.prompts.",
    "llm.choices.",
    "llm.tools.",
    "retrieval.documents.",
    "embedding.embeddings.",
    "reranker.input_documents.",
    "reranker.output_documents.",
    # Traceloop (old format) and association properties
    "gen_ai.prompt.",
    "gen_ai.completion.",
    "traceloop.association.properties.",
    # Vercel AI SDK
    "ai.telemetry.metadata.",
    "ai.settings.context.",
    # LangSmith
    "langsmith.metadata.",
    # Langfuse
    "langfuse.trace.metadata.",
    "langfuse.observation.metadata.",
)


def _head(key: str) -> Optional[str]:
    i = key.find(".")
    if i < 0:
        return None
    j = key.find(".", i + 1)
    return key[: j + 1] if j > 0 else None


_BY_HEAD: Dict[str, List[str]] = {}
for _p in PREFIXES:
    _h = _head(_p)
    assert _h is not None
    _BY_HEAD.setdefault(_h, []).append(_p)
del _p, _h

# OpenInference wraps each list item in a namespace segment right after its index.
_ITEM_NAMESPACES = frozenset(
    ("message", "tool_call", "message_content", "document", "prompt", "completion", "tool", "embedding")
)


def groups(out: MappedSpan) -> Dict[str, List[str]]:
    """``{prefix: [keys...]}`` for every known prefix present on the span (one pass, cached)."""
    scratch = out.scratch
    if scratch is None:
        scratch = out.scratch = {}
    found = scratch.get("groups")
    if found is not None:
        return found
    found = {}
    starts = PREFIXES
    by_head = _BY_HEAD
    for key in out.record.attributes:
        if not key.startswith(starts):
            continue
        # every prefix has two dots, so a match has a second dot: its head picks the candidates
        cands = by_head.get(key[: key.find(".", key.find(".") + 1) + 1])
        if cands is None:
            continue
        for p in cands:
            if key.startswith(p):
                lst = found.get(p)
                if lst is None:
                    found[p] = [key]
                else:
                    lst.append(key)
                break
    scratch["groups"] = found
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
