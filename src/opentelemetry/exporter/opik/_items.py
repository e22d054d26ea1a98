"""Encoded Opik items and the request bodies built from them.

Each item is JSON-encoded once, when it is queued: its exact size bounds the
writer's memory and the request byte budget, and a request body is the items'
bytes joined, never re-encoded.
"""

from __future__ import annotations

from typing import Dict, Sequence, Tuple

# kind -> (HTTP method, path under the base URL, body key)
ENDPOINTS: Dict[str, Tuple[str, str, str]] = {
    "trace": ("POST", "/v1/private/traces/batch", "traces"),
    "span": ("POST", "/v1/private/spans/batch", "spans"),
    "span_score": ("PUT", "/v1/private/spans/feedback-scores", "scores"),
}
#: traces are sent before their spans, scores after the spans they score
KIND_ORDER = ("trace", "span", "span_score")
#: the :class:`Stats` counter of delivered items, by kind
EXPORTED_COUNTER: Dict[str, str] = {"trace": "traces_exported", "span": "spans_exported", "span_score": "scores_exported"}


class Item:
    """One Opik row, encoded once; ``id`` and ``body`` never change across re-sends (upserts stay stable)."""

    __slots__ = ("kind", "id", "body", "label")

    def __init__(self, kind: str, id: str, body: bytes, label: str) -> None:
        self.kind = kind
        self.id = id
        self.body = body
        #: span name and OTel ids, for logs (never content)
        self.label = label

    @property
    def size(self) -> int:
        return len(self.body)

    def __repr__(self) -> str:
        return f"Item({self.kind}, {self.id}, {len(self.body)} bytes, {self.label})"


def request_body(kind: str, items: Sequence[Item]) -> bytes:
    """``{"<key>": [item, ...]}`` from the items' bytes, without re-encoding."""
    key = ENDPOINTS[kind][2]
    return b'{"' + key.encode() + b'":[' + b",".join(i.body for i in items) + b"]}"
